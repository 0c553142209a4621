// members.js — the world page's "People" section: what the signed-in user may do here
// (GET /api/worlds/{id}/access) decides what is shown. Editors get a rename form, owners get
// visibility, delete, invite links (create, copy, revoke), role changes and removals. Changes
// carry the world's version, so a stale page cannot overwrite someone else's rename (409).
// Everyone who belongs
// may see the members and leave. Nothing is shown that the user's role cannot do (the server
// checks again anyway). User text reaches the DOM through textContent only.

import { currentUser, loginHref } from "./account.js";
import { deleteJSON, getJSON, paths, patchJSON, postJSON } from "./api.js";
import { byId as $, copyText, el } from "./dom.js";
import { onWorldChange, updateWorld, world } from "./world-state.js";

const base = paths.world(world.id);
const section = $("people");

const EXPIRIES = [
  ["1 hour", 3600],
  ["1 day", 86400],
  ["7 days", 7 * 86400],
  ["30 days", 30 * 86400],
];

function status(text) {
  $("people-status").textContent = text;
}


// PATCH the world against the version this page shows. A 409 means someone changed it since:
// the page then shows what they made of it and says so (nothing is overwritten).
async function changeWorld(change, done) {
  try {
    const changed = await patchJSON(base, { ...change, version: world.version });
    updateWorld(changed);
    status(done);
  } catch (err) {
    if (err.status !== 409) {
      status(err.message);
      return;
    }
    updateWorld(await getJSON(base));
    const now = `it is now “${world.name}”, ${world.visibility}`;
    status(`Someone changed this world meanwhile (${now}); nothing was saved. Try again.`);
  }
}

function renameForm() {
  const input = el("input", {
    id: "rename-input",
    type: "text",
    required: true,
    value: world.name,
  });
  let edited = false; // the user's own text is never replaced under their fingers
  input.addEventListener("input", () => {
    edited = input.value !== world.name;
  });
  onWorldChange(() => {
    if (!edited) input.value = world.name;
  });
  const form = el(
    "form",
    { id: "rename-form", class: "row" },
    el("label", { htmlFor: "rename-input", class: "visually-hidden", text: "New name" }),
    input,
    el("button", { type: "submit", text: "Rename" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    edited = false;
    await changeWorld({ name: input.value.trim() }, "Renamed.");
    input.value = world.name;
  });
  return form;
}

// Owners choose who can see the world; the select shows the current choice.
function visibilityControl() {
  const select = el("select", { id: "visibility-select" });
  select.append(
    el("option", { value: "public", text: "Everyone (public)" }),
    el("option", { value: "private", text: "Only members (private)" }),
  );
  select.value = world.visibility;
  onWorldChange(() => {
    select.value = world.visibility;
  });
  select.addEventListener("change", async () => {
    const value = select.value;
    const done = value === "private" ? "Now private: only members see it." : "Now public.";
    select.disabled = true;
    await changeWorld({ visibility: value }, done);
    select.disabled = false;
  });
  return el(
    "div",
    { class: "row visibility-row" },
    el("label", { htmlFor: "visibility-select", text: "Who can see it" }),
    select,
  );
}

function deleteButton() {
  const button = el("button", { type: "button", id: "delete-world", class: "secondary", text: "Delete world…" });
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = "Click again to delete for good";
      return;
    }
    try {
      await deleteJSON(base);
      window.location.assign("/");
    } catch (err) {
      status(err.message);
    }
  });
  return button;
}

function memberRow(member, access, me) {
  const row = el("li", { class: "member" });
  row.dataset.userId = member.user_id;
  row.append(el("span", { class: "member-name", text: member.username }));
  const manage = access.actions.includes("manage");
  if (manage && !member.creator) {
    const select = el("select", { class: "member-role", ariaLabel: `Role of ${member.username}` });
    for (const role of ["viewer", "editor", "owner"]) {
      select.append(el("option", { value: role, text: role, selected: role === member.role }));
    }
    select.addEventListener("change", async () => {
      try {
        await patchJSON(`${base}/members/${encodeURIComponent(member.user_id)}`, { role: select.value });
        status(`${member.username} is now ${select.value}.`);
      } catch (err) {
        status(err.message);
      }
    });
    const remove = el("button", { type: "button", class: "secondary member-remove", text: "Remove" });
    remove.addEventListener("click", async () => {
      try {
        await deleteJSON(`${base}/members/${encodeURIComponent(member.user_id)}`);
        row.remove();
      } catch (err) {
        status(err.message);
      }
    });
    row.append(select, remove);
  } else {
    row.append(el("span", { class: "member-role hint", text: member.creator ? "owner (creator)" : member.role }));
  }
  if (me && member.user_id === me && !member.creator && !manage) {
    const leave = el("button", { type: "button", class: "secondary", id: "leave-world", text: "Leave" });
    leave.addEventListener("click", async () => {
      try {
        await deleteJSON(`${base}/members/${encodeURIComponent(member.user_id)}`);
        window.location.assign("/");
      } catch (err) {
        status(err.message);
      }
    });
    row.append(leave);
  }
  return row;
}

async function membersList(access, me) {
  const list = el("ul", { id: "member-list", class: "member-list" });
  const { members } = await getJSON(`${base}/members`);
  for (const member of members) list.append(memberRow(member, access, me));
  return list;
}

function inviteRow(invite) {
  const expires = new Date(invite.expires).toLocaleString();
  const row = el("li", { class: "invite" }, el("span", { text: `${invite.role}, until ${expires}` }));
  const revoke = el("button", { type: "button", class: "secondary invite-revoke", text: "Revoke" });
  revoke.addEventListener("click", async () => {
    try {
      await deleteJSON(`${base}/invites/${encodeURIComponent(invite.id)}`);
      row.remove();
    } catch (err) {
      status(err.message);
    }
  });
  row.append(revoke);
  return row;
}

async function invitePanel() {
  const role = el("select", { id: "invite-role" });
  role.append(el("option", { value: "viewer", text: "viewer" }), el("option", { value: "editor", text: "editor" }));
  const expiry = el("select", { id: "invite-expiry" });
  for (const [label, seconds] of EXPIRIES) {
    expiry.append(el("option", { value: String(seconds), text: label, selected: seconds === 7 * 86400 }));
  }
  const link = el("input", { id: "invite-link", type: "text", readOnly: true });
  const copy = el("button", { type: "button", id: "invite-copy", class: "secondary", text: "Copy" });
  const shown = el("div", { class: "row invite-shown", hidden: true }, link, copy);
  copy.addEventListener("click", async () => {
    const copied = await copyText(link.value, link);
    status(copied ? "Invite link copied; it is shown only now." : "Copy the selected link now.");
  });
  const list = el("ul", { id: "invite-list", class: "invite-list" });
  const form = el(
    "form",
    { id: "invite-form" },
    el("label", { htmlFor: "invite-role", text: "Invite as " }),
    role,
    el("label", { htmlFor: "invite-expiry", text: " for " }),
    expiry,
    el("button", { type: "submit", id: "invite-create", text: "Create link" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const invite = await postJSON(`${base}/invites`, {
        role: role.value,
        expires_in: Number(expiry.value),
      });
      link.value = new URL(invite.url, window.location.origin).href;
      shown.hidden = false;
      link.select();
      status("Share this link; it is shown only now.");
      list.append(inviteRow(invite));
    } catch (err) {
      status(err.message);
    }
  });
  const { invites } = await getJSON(`${base}/invites`);
  for (const invite of invites) list.append(inviteRow(invite));
  return el("div", { class: "invites" }, el("h3", { text: "Invite links" }), form, shown, list);
}

async function main() {
  if (!section) return;
  let access;
  try {
    access = await getJSON(`${base}/access`);
  } catch {
    return;
  }
  const me = await currentUser();
  const body = $("people-body");
  body.replaceChildren();
  document.body.dataset.role = access.role ?? "none";
  if (!access.signed_in) {
    body.append(el("p", { class: "hint" }, el("a", { href: loginHref(), text: "Sign in" }), " to chat or join."));
  }
  if (access.actions.includes("rename")) body.append(renameForm());
  if (access.actions.includes("change")) body.append(visibilityControl());
  if (access.actions.includes("delete")) body.append(deleteButton());
  if (access.actions.includes("members")) body.append(await membersList(access, me && me.id));
  if (access.actions.includes("invite")) body.append(await invitePanel());
  section.hidden = body.childElementCount === 0;
}

main().catch((err) => status(err.message));
