// chat.js — the world's chat: joins the connection (chat-socket.js) to the panel
// (chat-view.js). Messages, who is here, a connection-state indicator, an unread badge while
// the panel is collapsed, and pings that appear on everyone's map and fade.

import { currentUser } from "./account.js";
import { getJSON, paths } from "./api.js";
import { openChatSocket, randomHex } from "./chat-socket.js";
import { createChatView } from "./chat-view.js";

const PING_FRESH_MS = 30_000;
// A line not stored this long after it was sent on an open connection offers a retry.
const SEND_TIMEOUT_MS = 10_000;
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

// onWorldChange({name?, visibility?, version?}) hears of changes others made to the world;
// onEdit(frame) of map edits and markers ("edit" and "marker" frames, and "reconnected").
export function startChat({ section, panel, world, map, onWorldChange, onEdit }) {
  const view = createChatView({
    section,
    panel,
    onGoto: (x, y) => map.setView({ z: 2, x: x + 0.5, y: y + 0.5 }),
  });
  const { ui } = view;
  const guest = guestIdentity();
  const lines = new Map(); // client id -> {message, node, timer}: sent, not yet stored
  const presence = new Map(); // session -> user
  let you = null; // who the server says we are, while connected
  let lastYou = null; // ...and who it said we were, through reconnects
  let me = null; // the signed-in account (account.js), before any welcome
  let connected = false;
  let limits = { text_max: 2000, label_max: 80 };
  let oldestId = null; // oldest stream id shown (for "earlier messages")
  let pinging = false;
  currentUser().then((user) => {
    me = user;
  });

  // The author shown on our own pending lines: never a guest name for a signed-in user.
  const author = () => you ?? lastYou ?? (me ? { name: me.username } : { name: guest.name });

  // --- our own lines until the server stores them ---

  function watch(id) {
    const line = lines.get(id);
    if (!line) return;
    clearTimeout(line.timer);
    if (!connected) {
      view.lineStatus(line.node, "waiting for the connection…");
      return;
    }
    view.lineStatus(line.node, "sending…");
    line.timer = setTimeout(() => {
      view.lineStatus(line.node, "not sent yet", { retry: () => retry(id) });
    }, SEND_TIMEOUT_MS);
  }

  function retry(id) {
    const line = lines.get(id);
    if (line && socket.retry(line.message)) watch(id);
  }

  function track(message, node) {
    lines.set(message.id, { message, node, timer: null });
    view.append(node);
    socket.send(message);
    watch(message.id);
  }

  function settle(id) {
    const line = lines.get(id);
    if (line) clearTimeout(line.timer);
    lines.delete(id);
    return line;
  }


  const socket = openChatSocket(world.id, {
    guest,
    events: {
      state(state) {
        view.setState(state, STATE_TEXT[state]);
        connected = state === "connected";
        for (const id of lines.keys()) watch(id);
      },
      welcome(frame) {
        const first = oldestId === null;
        onEdit?.({ type: "reconnected" }); // edits made while away are in the log
        you = lastYou = frame.you;
        limits = frame.limits;
        // Chatting needs an account: guests watch, and are told how to join in.
        view.setCanSend(!you.guest);
        if (you.guest) view.hint("Sign in to chat and drop pings.");
        presence.clear();
        for (const entry of frame.presence) presence.set(entry.session, entry.user);
        view.renderPresence(presence.values(), you);
        if (frame.world.name !== world.name) onWorldChange({ name: frame.world.name });
        if (first) ui.older.hidden = frame.history.length < HISTORY_PAGE;
      },
      message(message, { live }) {
        if (oldestId === null) oldestId = message.stream_id;
        settle(message.id)?.node.remove();
        view.append(view.line(message));
        const fresh = live || Date.now() - message.ts < PING_FRESH_MS;
        if (message.type === "ping" && fresh) {
          const who = message.user.name;
          map.addPing(message.x, message.y, message.label ? `${who}: ${message.label}` : who);
        }
        if (live && (!you || message.user.id !== you.id)) view.bumpUnread();
      },
      ack(id) {
        lines.get(id)?.node.classList.add("acked");
      },
      failed(id, text) {
        const line = lines.get(id); // kept for a retry
        if (!line) return;
        clearTimeout(line.timer);
        view.lineStatus(line.node, "not sent", {
          failed: true,
          reason: text,
          retry: () => retry(id),
        });
      },
      presence(frame) {
        if (frame.joined) presence.set(frame.joined.session, frame.joined.user);
        if (frame.left) presence.delete(frame.left.session);
        view.renderPresence(presence.values(), you);
      },
      world(frame) {
        const version = frame.version ?? undefined;
        if (frame.event === "renamed" && frame.name) {
          onWorldChange({ name: frame.name, version });
          view.systemLine(`The world is now called “${frame.name}”.`);
        } else if (frame.event === "changed" && frame.visibility) {
          onWorldChange({ visibility: frame.visibility, version });
          view.systemLine(`The world is now ${frame.visibility}.`);
        } else if (frame.event === "deleted") {
          view.systemLine("This world was deleted.");
        }
      },
      notice(text) {
        view.hint(text);
      },
      edit(frame) {
        onEdit?.(frame);
      },
      closed(reason) {
        view.setState("closed", CLOSED_TEXT[reason] ?? "closed");
        setPinging(false);
        view.setCanSend(false);
        if (reason !== "signed-out") view.hint("This world no longer exists: nothing can be sent.");
        for (const id of [...lines.keys()]) {
          view.lineStatus(settle(id).node, "not sent", { failed: true });
        }
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
    ui.input.value = "";
    track(message, view.line({ ...message, user: author() }, { cls: "pending" }));
  }

  // --- pings: "Ping a place…" arms the map; the next click there pings that cell ---

  function setPinging(on) {
    pinging = on;
    view.setPinging(on);
    map.setCrosshair(on);
    view.hint(on ? "Click the map where you want to ping (Esc cancels)." : "");
  }

  function sendPing(cell) {
    const label = ui.pingLabel.value.trim();
    if ([...label].length > limits.label_max) {
      view.hint(`Ping labels are limited to ${limits.label_max} characters.`);
      return;
    }
    setPinging(false);
    const message = { type: "ping", id: randomHex(12), x: cell.x, y: cell.y };
    if (label) message.label = label;
    ui.pingLabel.value = "";
    track(message, view.line({ ...message, user: author() }, { cls: "pending" }));
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
  ui.ping.addEventListener("click", () => setPinging(!pinging));
  ui.pingCentre.addEventListener("click", () => {
    const centre = map.getView();
    sendPing({ x: Math.floor(centre.x), y: Math.floor(centre.y) });
  });
  map.onClick((cell) => {
    if (pinging && !ui.ping.disabled) sendPing(cell);
  });
  document.addEventListener("keydown", (event) => {
    if (pinging && event.key === "Escape") setPinging(false);
  });

  return {
    // For tests and debugging: the state a user sees.
    get state() {
      return view.state;
    },
  };
}
