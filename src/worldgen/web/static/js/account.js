// account.js — who is signed in: fills every [data-account] element with the username and a
// "Log out" button, or a "Sign in" link; other modules await currentUser(). User text goes to
// the DOM through textContent only.

import { getJSON, paths, postJSON } from "./api.js";
import { el } from "./dom.js";

let cached = null;

// The signed-in user ({id, username}) or null; one GET /api/auth/me per page, and none when the
// page says nobody is signed in (<body data-signed-in="false">, from the server's session).
export function currentUser() {
  if (cached === null) {
    cached =
      document.body.dataset.signedIn === "false"
        ? Promise.resolve(null)
        : getJSON(paths.me).catch(() => null);
  }
  return cached;
}

// A same-site path to come back to after signing in ("/" for anything else: no open redirect).
export function safeNext(value) {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//")) return "/";
  if (value.includes("\\") || /[\u0000-\u001f]/.test(value)) return "/";
  return value;
}

export function loginHref() {
  const here = window.location.pathname + window.location.search;
  return `/login?next=${encodeURIComponent(safeNext(here))}`;
}

export async function logout() {
  await postJSON(paths.logout).catch(() => null);
  cached = null;
}

function render(slot, user) {
  if (!user) {
    slot.replaceChildren(el("a", { class: "account-login", href: loginHref(), text: "Sign in" }));
    return;
  }
  const button = el("button", {
    type: "button",
    class: "secondary account-logout",
    text: "Log out",
  });
  button.addEventListener("click", async () => {
    button.disabled = true;
    await logout();
    window.location.reload();
  });
  slot.replaceChildren(el("span", { class: "account-name", text: user.username }), button);
}

const slots = document.querySelectorAll("[data-account]");
if (slots.length > 0) {
  currentUser().then((user) => slots.forEach((slot) => render(slot, user)));
}
