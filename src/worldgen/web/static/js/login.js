// login.js — the sign-in page: one form that signs in or, with the other button, creates the
// account; then back to ?next= (a same-site path only). Errors are shown inline as text.

import { safeNext } from "./account.js";
import { paths, postJSON } from "./api.js";
import { byId } from "./dom.js";

const form = byId("login-form");
const username = byId("login-username");
const password = byId("login-password");
const errorBox = byId("login-error");
const buttons = form.querySelectorAll("button");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

// "3 minutes", "40 seconds", "2 hours": a wait, rounded up.
function duration(seconds) {
  const [n, unit] =
    seconds < 60
      ? [Math.max(1, seconds), "second"]
      : seconds < 3600
        ? [Math.ceil(seconds / 60), "minute"]
        : [Math.ceil(seconds / 3600), "hour"];
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

// A validation error names the field; say what a good value looks like instead of pydantic's
// wording. Too many attempts say when to try again (Retry-After). Anything else keeps the API's
// message.
function message(err) {
  if (err.status === 429) {
    if (err.retryAfter === null) return "Too many attempts; wait a little and try again.";
    const when = new Date(Date.now() + err.retryAfter * 1000);
    const clock = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return `Too many attempts. Try again in ${duration(err.retryAfter)} (at ${clock}).`;
  }
  const detail = err.body && err.body.detail;
  if (Array.isArray(detail) && detail.length > 0) {
    const field = detail[0].loc ? detail[0].loc[detail[0].loc.length - 1] : "";
    if (field === "username") {
      return "A username has 3 to 32 letters, digits, dots, dashes or underscores.";
    }
    if (field === "password") return "A password has 8 to 1024 characters.";
    return String(detail[0].msg);
  }
  return err.message;
}

async function submit(action) {
  showError("");
  buttons.forEach((b) => (b.disabled = true));
  try {
    await postJSON(paths.auth(action), {
      username: username.value.trim(),
      password: password.value,
    });
    const next = new URLSearchParams(window.location.search).get("next");
    window.location.assign(safeNext(next ?? "/"));
  } catch (err) {
    showError(message(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === "register" ? "register" : "login";
  submit(action);
});
