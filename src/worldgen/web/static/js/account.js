// account.js — who is signed in: fills every [data-account] element with the username and a
// "Log out" button, or a "Sign in" link; other modules await currentUser(). User text goes to
// the DOM through textContent only.

let cached = null;

// The signed-in user ({id, username}) or null; one GET /api/auth/me per page.
export function currentUser() {
  if (cached === null) {
    cached = fetch("/api/auth/me", { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
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
  await fetch("/api/auth/logout", { method: "POST", headers: { Accept: "application/json" } });
  cached = null;
}

function render(slot, user) {
  slot.replaceChildren();
  if (user) {
    const name = document.createElement("span");
    name.className = "account-name";
    name.textContent = user.username;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary account-logout";
    button.textContent = "Log out";
    button.addEventListener("click", async () => {
      button.disabled = true;
      await logout();
      window.location.reload();
    });
    slot.append(name, button);
  } else {
    const link = document.createElement("a");
    link.className = "account-login";
    link.href = loginHref();
    link.textContent = "Sign in";
    slot.append(link);
  }
}

const slots = document.querySelectorAll("[data-account]");
if (slots.length > 0) {
  currentUser().then((user) => slots.forEach((slot) => render(slot, user)));
}
