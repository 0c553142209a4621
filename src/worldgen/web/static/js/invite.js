// invite.js — the page behind an invite link (/invite#<token>). The token lives in the URL
// fragment, which browsers never send to servers (so no log sees it); this page posts it in a
// request body: first to show what the link offers, then to join. A visitor who must sign in
// first keeps the token in sessionStorage for the round trip through /login.

import { currentUser } from "./account.js";
import { paths, postJSON } from "./api.js";
import { byId as $ } from "./dom.js";

const KEY = "worldgen-invite";

function token() {
  const fromHash = decodeURIComponent(window.location.hash.slice(1));
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    window.history.replaceState(null, "", window.location.pathname);
    return fromHash;
  }
  return sessionStorage.getItem(KEY) ?? "";
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
  let preview;
  try {
    preview = await postJSON(paths.invitePreview, { token: value });
  } catch {
    sessionStorage.removeItem(KEY);
    fail("This invite link is not valid any more: ask for a new one.");
    return;
  }
  $("invite-world").textContent = preview.world_name;
  $("invite-role").textContent = preview.role;
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
    try {
      const joined = await postJSON(paths.inviteAccept, { token: value });
      sessionStorage.removeItem(KEY);
      window.location.assign(joined.page);
    } catch (err) {
      join.disabled = false;
      fail(err.message);
    }
  });
}

main();
