// login.js — the sign-in page: one form that signs in or, with the other button, creates the
// account; then back to ?next= (a same-site path only). Errors are shown inline as text.

import { safeNext } from "./account.js";

const form = document.getElementById("login-form");
const username = document.getElementById("login-username");
const password = document.getElementById("login-password");
const errorBox = document.getElementById("login-error");
const buttons = form.querySelectorAll("button");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function message(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    const field = detail[0].loc ? detail[0].loc[detail[0].loc.length - 1] : "";
    if (field === "username") {
      return "A username has 3 to 32 letters, digits, dots, dashes or underscores.";
    }
    if (field === "password") return "A password has 8 to 1024 characters.";
    return String(detail[0].msg);
  }
  if (status === 429) return "Too many attempts; wait a little and try again.";
  return `The server answered ${status}.`;
}

async function submit(action) {
  showError("");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const response = await fetch(`/api/auth/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: username.value.trim(), password: password.value }),
    });
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch {
        // not JSON
      }
      showError(message(body, response.status));
      return;
    }
    const next = new URLSearchParams(window.location.search).get("next");
    window.location.assign(safeNext(next ?? "/"));
  } catch {
    showError("Could not reach the server; check your connection and try again.");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === "register" ? "register" : "login";
  submit(action);
});
