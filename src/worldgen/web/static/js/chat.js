// chat.js — the world's chat panel over the WebSocket /ws/worlds/{id} (docs/realtime.md):
// messages, who is here, a connection-state indicator, an unread badge while the panel is
// collapsed, and pings that appear on everyone's map and fade.
//
// Delivery: every sent message keeps its client id until the server acknowledges it; after a
// reconnect (jittered exponential back-off) the client says hello with the last stream id it
// saw, the server replays what it missed, and unacknowledged messages are sent again with the
// same ids (the server stores each id once). Frames are shown in stream order, each once.
//
// Safety: user text reaches the DOM only through textContent; no HTML is ever built from data.

const RECONNECT_BASE_MS = 500;
const RECONNECT_CAP_MS = 15_000;
const RESEND_DELAY_MS = 1_000;
const LOG_MAX = 500;
const PING_FRESH_MS = 30_000;
const GUEST_KEY = "worldgen.guest";

// --- small helpers -------------------------------------------------------------------------

function el(tag, { cls, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, v);
  return node;
}

function randomHex(bytes) {
  const a = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Stream ids "ms-seq" compare as number pairs (both parts fit a double exactly in practice).
function streamKey(id) {
  const [ms, seq] = String(id).split("-").map(Number);
  return [ms || 0, seq || 0];
}

function after(a, b) {
  if (b === null) return true;
  const [x, y] = [streamKey(a), streamKey(b)];
  return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
}

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

function socketUrl(worldId) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/worlds/${encodeURIComponent(worldId)}`;
}

// --- the panel ------------------------------------------------------------------------------

function buildPanel(section) {
  section.replaceChildren();
  const title = el("h2", { text: "Chat", attrs: { id: "chat-title" } });
  const status = el("p", {
    cls: "chat-status",
    text: "connecting…",
    attrs: { id: "chat-status", role: "status", "data-state": "connecting" },
  });
  const peopleTitle = el("h3", { cls: "chat-people-title", text: "Here now" });
  const people = el("ul", { cls: "chat-people", attrs: { id: "chat-people" } });
  const older = el("button", {
    cls: "secondary chat-older",
    text: "Show earlier messages",
    attrs: { type: "button", id: "chat-older", hidden: "" },
  });
  const log = el("ol", {
    cls: "chat-log",
    attrs: { id: "chat-log", "aria-live": "polite", "aria-label": "Messages" },
  });
  const form = el("form", { cls: "chat-form", attrs: { id: "chat-form" } });
  const label = el("label", { cls: "visually-hidden", text: "Message", attrs: { for: "chat-input" } });
  const input = el("textarea", {
    attrs: {
      id: "chat-input",
      rows: "2",
      maxlength: "4000",
      placeholder: "Say something… (Enter sends)",
      autocomplete: "off",
    },
  });
  const send = el("button", { text: "Send", attrs: { type: "submit", id: "chat-send" } });
  const hint = el("p", { cls: "hint chat-hint", attrs: { id: "chat-hint" } });
  form.append(label, input, send);
  const ping = el("button", {
    cls: "secondary",
    text: "Ping the centre of the map",
    attrs: { type: "button", id: "chat-ping" },
  });
  section.append(title, status, peopleTitle, people, older, log, form, hint, ping);
  return { status, people, older, log, form, input, hint, ping };
}

// The unread badge sits on the panel bar, which stays visible when the panel is collapsed.
function buildBadge(panel) {
  const bar = panel.querySelector(".panel-bar") ?? panel;
  const badge = el("span", {
    cls: "chat-unread",
    attrs: { id: "chat-unread", hidden: "", "aria-live": "polite" },
  });
  bar.append(badge);
  return badge;
}

function timeOf(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// --- the client -----------------------------------------------------------------------------

export function startChat({ section, panel, world, map, onRename }) {
  const ui = buildPanel(section);
  const badge = buildBadge(panel);
  const guest = guestIdentity();
  const pending = new Map(); // client id -> {message, node}: sent, not yet acknowledged
  const presence = new Map(); // session -> user
  let you = null;
  let lastId = null; // newest stream id shown
  let oldestId = null; // oldest stream id shown (for "earlier messages")
  let socket = null;
  let attempt = 0;
  let closedForGood = false;
  let heartbeatTimer = null;
  let watchdogTimer = null;
  let lastHeard = 0;
  let heartbeatMs = 10_000;
  let limits = { text_max: 2000, label_max: 80 };
  let unread = 0;
  let reconnectTimer = null;

  // --- state indicator, unread badge ---

  function setState(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  const collapsed = () => panel.classList.contains("collapsed");

  function bumpUnread() {
    if (!collapsed()) return;
    unread += 1;
    badge.textContent = `${unread} unread`;
    badge.hidden = false;
  }

  new MutationObserver(() => {
    if (!collapsed()) {
      unread = 0;
      badge.hidden = true;
      badge.textContent = "";
    }
  }).observe(panel, { attributes: true, attributeFilter: ["class"] });

  // --- who is here: one line per user, however many tabs they have open ---

  function renderPresence() {
    const users = new Map();
    for (const user of presence.values()) {
      const seen = users.get(user.id);
      users.set(user.id, { user, tabs: (seen?.tabs ?? 0) + 1 });
    }
    const items = [...users.values()]
      .sort((a, b) => a.user.name.localeCompare(b.user.name))
      .map(({ user, tabs }) => {
        const li = el("li", { text: user.name });
        if (you && user.id === you.id) li.append(el("span", { cls: "chat-you", text: " (you)" }));
        if (user.guest && !user.name.startsWith("guest")) {
          li.append(el("span", { cls: "chat-guest", text: " guest" }));
        }
        if (tabs > 1) li.append(el("span", { cls: "hint", text: ` ×${tabs}` }));
        return li;
      });
    ui.people.replaceChildren(...items);
  }

  // --- the log ---

  function trimLog() {
    while (ui.log.children.length > LOG_MAX) ui.log.firstElementChild.remove();
  }

  function line(message, { cls } = {}) {
    const li = el("li", { cls: `chat-line ${cls ?? ""}`.trim() });
    if (message.stream_id) li.dataset.streamId = message.stream_id;
    if (message.id) li.dataset.id = message.id;
    const who = el("span", { cls: "chat-who", text: message.user?.name ?? "" });
    const when = el("time", {
      cls: "chat-time",
      text: message.ts ? timeOf(message.ts) : "sending…",
    });
    li.append(who, " ", when, el("br"));
    if (message.type === "ping") {
      const where = `${message.x}, ${message.y}`;
      const go = el("button", {
        cls: "link chat-goto",
        text: `pinged ${where}${message.label ? ` — ${message.label}` : ""}`,
        attrs: { type: "button", title: `Show cell ${where}` },
      });
      go.addEventListener("click", () => map.setView({ z: 2, x: message.x + 0.5, y: message.y + 0.5 }));
      li.append(go);
    } else {
      li.append(el("span", { cls: "chat-text", text: message.text }));
    }
    return li;
  }

  function systemLine(text) {
    ui.log.append(el("li", { cls: "chat-line chat-system", text }));
    trimLog();
    ui.log.lastElementChild.scrollIntoView({ block: "nearest" });
  }

  // A stored message, once, in stream order; its own pending line (if any) is replaced.
  function show(message, { live }) {
    if (!after(message.stream_id, lastId)) return;
    lastId = message.stream_id;
    if (oldestId === null) oldestId = message.stream_id;
    const mine = pending.get(message.id);
    if (mine) {
      mine.node.remove();
      pending.delete(message.id);
    }
    ui.log.append(line(message));
    trimLog();
    ui.log.lastElementChild.scrollIntoView({ block: "nearest" });
    const fresh = live || Date.now() - message.ts < PING_FRESH_MS;
    if (message.type === "ping" && fresh) map.addPing(message.x, message.y, message.user.name);
    if (live && (!you || message.user.id !== you.id)) bumpUnread();
  }

  async function loadOlder() {
    if (oldestId === null) return;
    ui.older.disabled = true;
    try {
      const query = new URLSearchParams({ before: oldestId, limit: "50" });
      const url = `/api/worlds/${encodeURIComponent(world.id)}/chat?${query}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
      const nodes = page.messages.map((m) => line(m));
      ui.log.prepend(...nodes);
      if (page.messages.length) oldestId = page.messages[0].stream_id;
      ui.older.hidden = page.before === null;
    } catch {
      ui.hint.textContent = "Could not load earlier messages; try again.";
    } finally {
      ui.older.disabled = false;
    }
  }
  ui.older.addEventListener("click", loadOlder);

  // --- sending ---

  function transmit(message) {
    if (socket && socket.readyState === WebSocket.OPEN && you) {
      socket.send(JSON.stringify(message));
    }
  }

  function queue(message, node) {
    pending.set(message.id, { message, node });
    transmit(message);
  }

  function sendText() {
    const text = ui.input.value;
    if (!text.trim()) return;
    if (codePoints(text) > limits.text_max) {
      ui.hint.textContent = `Messages are limited to ${limits.text_max} characters.`;
      return;
    }
    ui.hint.textContent = "";
    const message = { type: "chat", id: randomHex(12), text };
    const node = line({ ...message, user: you ?? { name: guest.name } }, { cls: "pending" });
    ui.log.append(node);
    ui.log.lastElementChild.scrollIntoView({ block: "nearest" });
    ui.input.value = "";
    queue(message, node);
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
    const view = map.getView();
    const message = {
      type: "ping",
      id: randomHex(12),
      x: Math.floor(view.x),
      y: Math.floor(view.y),
    };
    const node = el("li", { cls: "chat-line pending", text: "pinging…" });
    ui.log.append(node);
    queue(message, node);
  });

  // --- receiving ---

  function onWelcome(frame) {
    you = frame.you;
    limits = frame.limits;
    heartbeatMs = Math.max(1000, frame.limits.heartbeat_s * 1000);
    attempt = 0;
    setState("connected", "connected");
    // Chatting needs an account: guests watch, and are told how to join in.
    ui.input.disabled = ui.ping.disabled = Boolean(you.guest);
    ui.form.querySelector("button").disabled = Boolean(you.guest);
    if (you.guest) ui.hint.textContent = "Sign in to chat and drop pings.";
    presence.clear();
    for (const entry of frame.presence) presence.set(entry.session, entry.user);
    renderPresence();
    if (frame.world.name !== world.name) rename(frame.world.name);
    const first = lastId === null;
    for (const message of frame.history) show(message, { live: false });
    if (first) ui.older.hidden = frame.history.length < 50;
    // Everything not acknowledged goes again, with its id: stored once whatever happened.
    for (const { message } of pending.values()) transmit(message);
    startHeartbeat();
  }

  function rename(name) {
    world.name = name;
    if (onRename) onRename(name);
  }

  function onError(frame) {
    const mine = frame.id ? pending.get(frame.id) : undefined;
    if (mine && frame.code === "unavailable") {
      setTimeout(() => transmit(mine.message), RESEND_DELAY_MS * (0.5 + Math.random()));
      return;
    }
    if (mine) {
      pending.delete(frame.id);
      mine.node.classList.remove("pending");
      mine.node.classList.add("failed");
      mine.node.append(el("span", { cls: "error", text: ` — not sent: ${frame.message}` }));
      return;
    }
    ui.hint.textContent = frame.message;
  }

  function onFrame(frame) {
    lastHeard = Date.now();
    switch (frame.type) {
      case "welcome":
        onWelcome(frame);
        break;
      case "chat":
      case "ping":
        show(frame, { live: true });
        break;
      case "ack": {
        const mine = pending.get(frame.id);
        if (mine) mine.node.classList.add("acked");
        break;
      }
      case "presence":
        if (frame.joined) presence.set(frame.joined.session, frame.joined.user);
        if (frame.left) presence.delete(frame.left.session);
        renderPresence();
        break;
      case "world":
        if (frame.event === "renamed" && frame.name) {
          rename(frame.name);
          systemLine(`The world is now called “${frame.name}”.`);
        } else if (frame.event === "deleted") {
          closedForGood = true;
          systemLine("This world was deleted.");
          setState("closed", "world deleted");
        }
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // heartbeat answers, and message types from a newer server
    }
  }

  // --- the connection: heartbeats, a watchdog, reconnects with jittered back-off ---

  function stopTimers() {
    clearInterval(heartbeatTimer);
    clearInterval(watchdogTimer);
    heartbeatTimer = watchdogTimer = null;
  }

  function startHeartbeat() {
    stopTimers();
    heartbeatTimer = setInterval(() => transmit({ type: "heartbeat" }), heartbeatMs);
    // A connection that stays silent through several heartbeats is dead, even if the browser
    // has not noticed: drop it and reconnect.
    watchdogTimer = setInterval(() => {
      if (socket && Date.now() - lastHeard > 3 * heartbeatMs) socket.close();
    }, heartbeatMs);
  }

  function scheduleReconnect() {
    if (closedForGood) return;
    attempt += 1;
    const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt - 1, 10));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    setState("reconnecting", "reconnecting…");
    reconnectTimer = setTimeout(connect, delay);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (closedForGood || socket) return;
    you = null;
    const ws = new WebSocket(socketUrl(world.id));
    socket = ws;
    ws.addEventListener("open", () => {
      lastHeard = Date.now();
      const hello = { type: "hello", guest };
      if (lastId !== null) hello.last_id = lastId;
      ws.send(JSON.stringify(hello));
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      stopTimers();
      socket = null;
      you = null;
      if (event.code === 4404) {
        closedForGood = true;
        setState("closed", "this world no longer exists");
        return;
      }
      if (event.code === 4401) {
        // The session ended (logged out here or elsewhere): no reconnecting as someone else.
        closedForGood = true;
        setState("closed", "signed out");
        ui.input.disabled = ui.ping.disabled = true;
        ui.form.querySelector("button").disabled = true;
        return;
      }
      scheduleReconnect();
    });
  }

  window.addEventListener("online", () => {
    if (!socket && !closedForGood) {
      attempt = 0;
      connect();
    }
  });

  connect();
  return {
    // For tests and debugging: the state a user sees.
    get state() {
      return ui.status.dataset.state;
    },
  };
}
