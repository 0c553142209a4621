// invite.js — the page behind an invite link (/invite#<token>). The token lives in the URL
// fragment, which browsers never send to servers (so no log sees it); this page posts it in a
// request body: first to show what the link offers, then to join. A visitor who must sign in
// first keeps the token in sessionStorage for the round trip through /login.

import { currentUser } from "./account.js";

const KEY = "worldgen-invite";
const $ = (id) => document.getElementById(id);

function token() {
  const fromHash = decodeURIComponent(window.location.hash.slice(1));
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    window.history.replaceState(null, "", window.location.pathname);
    return fromHash;
  }
  return sessionStorage.getItem(KEY) ?? "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

function fail(text) {
  $("invite-status").textContent = text;
  $("invite-join").hidden = true;
  $("invite-login").hidden = true;
}

async function main() {
  const value = token();
  if (!value) {
    fail("This invite link is incomplete: ask for a new one.");
    return;
  }
  const preview = await post("/api/invites/preview", { token: value });
  if (!preview.ok) {
    sessionStorage.removeItem(KEY);
    fail("This invite link is not valid any more: ask for a new one.");
    return;
  }
  $("invite-world").textContent = preview.data.world_name;
  $("invite-role").textContent = preview.data.role;
  $("invite-offer").hidden = false;
  $("invite-status").textContent = "";
  const user = await currentUser();
  if (!user) {
    $("invite-login").hidden = false;
    return;
  }
  const join = $("invite-join");
  join.hidden = false;
  join.addEventListener("click", async () => {
    join.disabled = true;
    const joined = await post("/api/invites/accept", { token: value });
    if (!joined.ok) {
      join.disabled = false;
      fail(joined.data.detail ?? `The server answered ${joined.status}.`);
      return;
    }
    sessionStorage.removeItem(KEY);
    window.location.assign(joined.data.page);
  });
}

main();
