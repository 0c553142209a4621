// chat.js — the world's chat: joins the connection (chat-socket.js) to the panel
// (chat-view.js). Messages, who is here, a connection-state indicator, an unread badge while
// the panel is collapsed, and pings that appear on everyone's map and fade.

import { getJSON, paths } from "./api.js";
import { openChatSocket, randomHex } from "./chat-socket.js";
import { createChatView } from "./chat-view.js";
import { el } from "./dom.js";

const PING_FRESH_MS = 30_000;
const GUEST_KEY = "worldgen.guest";
const HISTORY_PAGE = 50;

const STATE_TEXT = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  closed: "closed",
};
const CLOSED_TEXT = {
  deleted: "world deleted",
  gone: "this world no longer exists",
  "signed-out": "signed out",
};

const codePoints = (text) => [...text].length;

// A guest keeps one identity for the tab's life (sessionStorage); signed-in users are named by
// the server from their session instead, and it ignores this.
function guestIdentity() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(GUEST_KEY) ?? "null");
    if (saved && /^g-[0-9a-f]{8,32}$/.test(saved.id) && typeof saved.name === "string") {
      return saved;
    }
  } catch {
    // Unreadable storage: make a new identity.
  }
  const id = `g-${randomHex(8)}`;
  const guest = { id, name: `guest-${id.slice(2, 6)}` };
  try {
    sessionStorage.setItem(GUEST_KEY, JSON.stringify(guest));
  } catch {
    // Storage may be disabled; the identity then lasts for this page only.
  }
  return guest;
}

export function startChat({ section, panel, world, map, onRename }) {
  const view = createChatView({
    section,
    panel,
    onGoto: (x, y) => map.setView({ z: 2, x: x + 0.5, y: y + 0.5 }),
  });
  const { ui } = view;
  const guest = guestIdentity();
  const nodes = new Map(); // client id -> its pending line
  const presence = new Map(); // session -> user
  let you = null;
  let limits = { text_max: 2000, label_max: 80 };
  let oldestId = null; // oldest stream id shown (for "earlier messages")

  function rename(name) {
    world.name = name;
    if (onRename) onRename(name);
  }

  const socket = openChatSocket(world.id, {
    guest,
    events: {
      state(state) {
        view.setState(state, STATE_TEXT[state]);
      },
      welcome(frame) {
        const first = oldestId === null;
        you = frame.you;
        limits = frame.limits;
        // Chatting needs an account: guests watch, and are told how to join in.
        view.setCanSend(!you.guest);
        if (you.guest) view.hint("Sign in to chat and drop pings.");
        presence.clear();
        for (const entry of frame.presence) presence.set(entry.session, entry.user);
        view.renderPresence(presence.values(), you);
        if (frame.world.name !== world.name) rename(frame.world.name);
        if (first) ui.older.hidden = frame.history.length < HISTORY_PAGE;
      },
      message(message, { live }) {
        if (oldestId === null) oldestId = message.stream_id;
        const node = nodes.get(message.id);
        if (node) {
          node.remove();
          nodes.delete(message.id);
        }
        view.append(view.line(message));
        const fresh = live || Date.now() - message.ts < PING_FRESH_MS;
        if (message.type === "ping" && fresh) map.addPing(message.x, message.y, message.user.name);
        if (live && (!you || message.user.id !== you.id)) view.bumpUnread();
      },
      ack(id) {
        nodes.get(id)?.classList.add("acked");
      },
      failed(id, text) {
        const node = nodes.get(id);
        nodes.delete(id);
        if (node) view.failed(node, text);
      },
      presence(frame) {
        if (frame.joined) presence.set(frame.joined.session, frame.joined.user);
        if (frame.left) presence.delete(frame.left.session);
        view.renderPresence(presence.values(), you);
      },
      world(frame) {
        if (frame.event === "renamed" && frame.name) {
          rename(frame.name);
          view.systemLine(`The world is now called “${frame.name}”.`);
        } else if (frame.event === "deleted") {
          view.systemLine("This world was deleted.");
        }
      },
      notice(text) {
        view.hint(text);
      },
      closed(reason) {
        view.setState("closed", CLOSED_TEXT[reason] ?? "closed");
        if (reason === "signed-out") view.setCanSend(false);
      },
    },
  });

  async function loadOlder() {
    if (oldestId === null) return;
    ui.older.disabled = true;
    try {
      const query = new URLSearchParams({ before: oldestId, limit: String(HISTORY_PAGE) });
      const page = await getJSON(`${paths.world(world.id)}/chat?${query}`);
      view.prepend(page.messages.map((m) => view.line(m)));
      if (page.messages.length) oldestId = page.messages[0].stream_id;
      ui.older.hidden = page.before === null;
    } catch {
      view.hint("Could not load earlier messages; try again.");
    } finally {
      ui.older.disabled = false;
    }
  }
  ui.older.addEventListener("click", loadOlder);

  function sendText() {
    const text = ui.input.value;
    if (!text.trim()) return;
    if (codePoints(text) > limits.text_max) {
      view.hint(`Messages are limited to ${limits.text_max} characters.`);
      return;
    }
    view.hint("");
    const message = { type: "chat", id: randomHex(12), text };
    const node = view.line({ ...message, user: you ?? { name: guest.name } }, { cls: "pending" });
    view.append(node);
    ui.input.value = "";
    nodes.set(message.id, node);
    socket.send(message);
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendText();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText();
    }
  });
  ui.ping.addEventListener("click", () => {
    const centre = map.getView();
    const message = {
      type: "ping",
      id: randomHex(12),
      x: Math.floor(centre.x),
      y: Math.floor(centre.y),
    };
    const node = el("li", { class: "chat-line pending", text: "pinging…" });
    view.append(node);
    nodes.set(message.id, node);
    socket.send(message);
  });

  return {
    // For tests and debugging: the state a user sees.
    get state() {
      return view.state;
    },
  };
}
