// chat-view.js — the chat panel's DOM, with no networking: the connection state, who is here,
// the message log (with its pending and failed lines), the form, and the unread badge shown on
// the panel bar while the panel is collapsed.
//
// Safety: user text reaches the DOM only through textContent (dom.js el); no HTML is ever
// built from data.

import { el } from "./dom.js";

const LOG_MAX = 500;

function timeOf(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function buildPanel(section) {
  section.replaceChildren();
  const title = el("h2", { text: "Chat", id: "chat-title" });
  const status = el("p", {
    class: "chat-status",
    text: "connecting…",
    id: "chat-status",
    attrs: { role: "status", "data-state": "connecting" },
  });
  const peopleTitle = el("h3", { class: "chat-people-title", text: "Here now" });
  const people = el("ul", { class: "chat-people", id: "chat-people" });
  const older = el("button", {
    class: "secondary chat-older",
    text: "Show earlier messages",
    type: "button",
    id: "chat-older",
    hidden: true,
  });
  const log = el("ol", {
    class: "chat-log",
    id: "chat-log",
    attrs: { "aria-live": "polite", "aria-label": "Messages" },
  });
  const input = el("textarea", {
    id: "chat-input",
    rows: 2,
    maxLength: 4000,
    placeholder: "Say something… (Enter sends)",
    autocomplete: "off",
  });
  const send = el("button", { text: "Send", type: "submit", id: "chat-send" });
  const form = el(
    "form",
    { class: "chat-form", id: "chat-form" },
    el("label", { class: "visually-hidden", text: "Message", htmlFor: "chat-input" }),
    input,
    send,
  );
  const hint = el("p", { class: "hint chat-hint", id: "chat-hint" });
  const pingLabel = el("input", {
    type: "text",
    id: "ping-label",
    maxLength: 80,
    placeholder: "Ping label (optional)",
    autocomplete: "off",
  });
  const ping = el("button", {
    class: "secondary",
    text: "Ping a place…",
    type: "button",
    id: "chat-ping",
    attrs: { "aria-pressed": "false" },
  });
  const pingCentre = el("button", {
    class: "secondary",
    text: "Ping the centre",
    type: "button",
    id: "chat-ping-centre",
    hidden: true,
  });
  const pings = el(
    "div",
    { class: "chat-pings" },
    el("label", { class: "visually-hidden", text: "Ping label", htmlFor: "ping-label" }),
    pingLabel,
    el("div", { class: "chat-ping-buttons" }, ping, pingCentre),
  );
  section.append(title, status, peopleTitle, people, older, log, form, hint, pings);
  return { status, people, older, log, form, input, send, hint, ping, pingLabel, pingCentre };
}

// The unread badge sits on the panel bar, which stays visible when the panel is collapsed.
function buildBadge(panel) {
  const bar = panel.querySelector(".panel-bar") ?? panel;
  const badge = el("span", {
    class: "chat-unread",
    id: "chat-unread",
    hidden: true,
    attrs: { "aria-live": "polite" },
  });
  bar.append(badge);
  return badge;
}

// createChatView({section, panel, onGoto}) -> the panel's parts and what can be done to them.
// onGoto(x, y) is called when a ping line's link is clicked.
export function createChatView({ section, panel, onGoto }) {
  const ui = buildPanel(section);
  const badge = buildBadge(panel);
  let unread = 0;

  const collapsed = () => panel.classList.contains("collapsed");

  new MutationObserver(() => {
    if (!collapsed()) {
      unread = 0;
      badge.hidden = true;
      badge.textContent = "";
    }
  }).observe(panel, { attributes: true, attributeFilter: ["class"] });

  function scrollToEnd() {
    // The log scrolls by itself; scrollIntoView would also scroll the whole side panel.
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function trimLog() {
    while (ui.log.children.length > LOG_MAX) ui.log.firstElementChild.remove();
  }

  // One message as a log line; `cls` adds classes ("pending").
  function line(message, { cls } = {}) {
    const li = el("li", { class: `chat-line ${cls ?? ""}`.trim() });
    if (message.stream_id) li.dataset.streamId = message.stream_id;
    if (message.id) li.dataset.id = message.id;
    const who = el("span", { class: "chat-who", text: message.user?.name ?? "" });
    const when = el("time", {
      class: "chat-time",
      text: message.ts ? timeOf(message.ts) : "sending…",
    });
    li.append(who, " ", when, el("br"));
    if (message.type === "ping") {
      const where = `${message.x}, ${message.y}`;
      const go = el("button", {
        class: "link chat-goto",
        text: `pinged ${where}${message.label ? ` — ${message.label}` : ""}`,
        type: "button",
        title: `Show cell ${where}`,
      });
      go.addEventListener("click", () => onGoto(message.x, message.y));
      li.append(go);
    } else {
      li.append(el("span", { class: "chat-text", text: message.text }));
    }
    return li;
  }

  return {
    ui,
    line,
    setState(state, text) {
      ui.status.dataset.state = state;
      ui.status.textContent = text;
    },
    get state() {
      return ui.status.dataset.state;
    },
    // Append a line (a node from line(), or a new one for a stored message) and show it.
    append(node) {
      ui.log.append(node);
      trimLog();
      scrollToEnd();
    },
    prepend(nodes) {
      ui.log.prepend(...nodes);
    },
    systemLine(text) {
      this.append(el("li", { class: "chat-line chat-system", text }));
    },
    // Say where a pending line stands: `text` replaces "sending…"; `failed` marks it as not
    // sent (with `reason`), and `retry` (a function) adds a Retry button that calls it.
    lineStatus(node, text, { failed = false, reason, retry } = {}) {
      const when = node.querySelector(".chat-time");
      if (when) when.textContent = text;
      node.querySelector(".chat-problem")?.remove();
      node.classList.toggle("failed", failed);
      node.classList.toggle("pending", !failed);
      if (!failed && !retry) return;
      const problem = el("span", { class: "chat-problem" });
      if (reason) problem.append(el("span", { class: "error", text: ` — ${reason}` }));
      if (retry) {
        const again = el("button", { class: "link chat-retry", type: "button", text: "Retry" });
        again.addEventListener("click", retry);
        problem.append(" ", again);
      }
      node.append(problem);
    },
    hint(text) {
      ui.hint.textContent = text;
    },
    // Who is here: one line per user, however many tabs they have open.
    renderPresence(users, you) {
      const byUser = new Map();
      for (const user of users) {
        const seen = byUser.get(user.id);
        byUser.set(user.id, { user, tabs: (seen?.tabs ?? 0) + 1 });
      }
      const items = [...byUser.values()]
        .sort((a, b) => a.user.name.localeCompare(b.user.name))
        .map(({ user, tabs }) => {
          const li = el("li", { text: user.name });
          if (you && user.id === you.id) {
            li.append(el("span", { class: "chat-you", text: " (you)" }));
          }
          if (user.guest && !user.name.startsWith("guest")) {
            li.append(el("span", { class: "chat-guest", text: " guest" }));
          }
          if (tabs > 1) li.append(el("span", { class: "hint", text: ` ×${tabs}` }));
          return li;
        });
      ui.people.replaceChildren(...items);
    },
    // Whether this person may write: the input, Send and the ping controls follow it.
    setCanSend(allowed) {
      for (const control of [ui.input, ui.send, ui.ping, ui.pingLabel, ui.pingCentre]) {
        control.disabled = !allowed;
      }
    },
    // Ping mode: the ping button becomes "Cancel", and "Ping the centre" appears beside it.
    setPinging(on) {
      ui.ping.textContent = on ? "Cancel ping" : "Ping a place…";
      ui.ping.setAttribute("aria-pressed", String(on));
      ui.pingCentre.hidden = !on;
    },
    bumpUnread() {
      if (!collapsed()) return;
      unread += 1;
      badge.textContent = `${unread} unread`;
      badge.hidden = false;
    },
  };
}
