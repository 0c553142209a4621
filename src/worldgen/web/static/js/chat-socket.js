// chat-socket.js — the chat's connection to /ws/worlds/{id} (docs/realtime.md), with no DOM:
// reconnects with jittered exponential back-off, heartbeats and a watchdog, replay after a
// reconnect, and delivery of every sent message until the server acknowledges it.
//
// Delivery: a sent message keeps its client id until the server stores it; after a reconnect
// the client says hello with the last stream id it saw, the server replays what it missed, and
// unacknowledged messages go again with the same ids (the server stores each id once). Stored
// messages reach `events.message` in stream order, each once.
//
// events (all optional):
//   state(state)                 "connecting" | "connected" | "reconnecting" | "closed"
//   welcome(frame)               a (re)connection's welcome: you, limits, presence, world
//   message(message, {live, mine}) a stored chat or ping, once, in stream order
//   ack(id)                      the server accepted the message with this client id
//   failed(id, text)             the server refused it (it will not be sent again)
//   presence(frame), world(frame), notice(text)   presence changes, world events, other errors
//   closed(reason)               "deleted" | "gone" | "signed-out": no more reconnecting
//
// Job frames (issue 15: a background job of the signed-in user changed state or progressed) go
// to every function registered with `watchJobs`, whichever part of the page opened the socket;
// `jobsLive()` says whether a socket that would carry them is connected (pages then poll the
// job's record only now and then, as a safety net for a frame lost while Redis restarted).

const RECONNECT_BASE_MS = 500;
const RECONNECT_CAP_MS = 15_000;
const RESEND_DELAY_MS = 1_000;
const CLOSE_NOT_FOUND = 4404;
const CLOSE_UNAUTHORIZED = 4401;

export function randomHex(bytes) {
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

const jobWatchers = new Set();
let liveSockets = 0; // connected (welcomed) sockets of this page

// Calls `watcher(frame)` with every `job` frame, and with `{type: "resync"}` each time a socket
// (re)connects; returns the function that stops it.
export function watchJobs(watcher) {
  jobWatchers.add(watcher);
  return () => jobWatchers.delete(watcher);
}

export const jobsLive = () => liveSockets > 0;

function socketUrl(worldId) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/worlds/${encodeURIComponent(worldId)}`;
}

export function openChatSocket(worldId, { guest, events = {} }) {
  const emit = (name, ...args) => events[name]?.(...args);
  const pending = new Map(); // client id -> message: sent, not yet stored
  let you = null; // set by a welcome, cleared when the connection drops
  let lastId = null; // newest stream id delivered
  let socket = null;
  let attempt = 0;
  let closedForGood = false;
  let heartbeatTimer = null;
  let watchdogTimer = null;
  let reconnectTimer = null;
  let lastHeard = 0;
  let heartbeatMs = 10_000;
  let live = false; // counted in liveSockets

  function setLive(now) {
    if (now !== live) liveSockets += now ? 1 : -1;
    live = now;
  }

  function transmit(message) {
    if (socket && socket.readyState === WebSocket.OPEN && you) {
      socket.send(JSON.stringify(message));
    }
  }

  function closeForGood(reason) {
    closedForGood = true;
    clearTimeout(reconnectTimer);
    emit("state", "closed");
    emit("closed", reason);
  }

  // A stored message, once, in stream order.
  function deliver(message, live) {
    if (!after(message.stream_id, lastId)) return;
    lastId = message.stream_id;
    const mine = pending.delete(message.id);
    emit("message", message, { live, mine });
  }

  function onWelcome(frame) {
    you = frame.you;
    heartbeatMs = Math.max(1000, frame.limits.heartbeat_s * 1000);
    attempt = 0;
    setLive(true);
    // Frames sent while no socket was connected are lost: watchers re-read their jobs once.
    for (const watcher of jobWatchers) watcher({ type: "resync" });
    emit("state", "connected");
    emit("welcome", frame);
    for (const message of frame.history) deliver(message, false);
    // Everything not acknowledged goes again, with its id: stored once whatever happened.
    for (const message of pending.values()) transmit(message);
    startHeartbeat();
  }

  function onError(frame) {
    const mine = frame.id ? pending.get(frame.id) : undefined;
    if (mine && frame.code === "unavailable") {
      setTimeout(() => transmit(mine), RESEND_DELAY_MS * (0.5 + Math.random()));
      return;
    }
    if (mine) {
      pending.delete(frame.id);
      emit("failed", frame.id, frame.message);
      return;
    }
    emit("notice", frame.message);
  }

  function onFrame(frame) {
    lastHeard = Date.now();
    switch (frame.type) {
      case "welcome":
        onWelcome(frame);
        break;
      case "chat":
      case "ping":
        deliver(frame, true);
        break;
      case "ack":
        if (pending.has(frame.id)) emit("ack", frame.id);
        break;
      case "presence":
        emit("presence", frame);
        break;
      case "world":
        emit("world", frame);
        if (frame.event === "deleted") closeForGood("deleted");
        break;
      case "error":
        onError(frame);
        break;
      case "job": // a background job of this user (world.js, preparing.js)
        for (const watcher of jobWatchers) watcher(frame);
        break;
      case "edit": // map edits and markers (edit-tools.js)
      case "marker":
        emit("edit", frame);
        break;
      default:
        break; // heartbeat answers, and message types from a newer server
    }
  }

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
    emit("state", "reconnecting");
    reconnectTimer = setTimeout(connect, delay);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (closedForGood || socket) return;
    you = null;
    const ws = new WebSocket(socketUrl(worldId));
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
      setLive(false);
      socket = null;
      you = null;
      if (closedForGood) return;
      if (event.code === CLOSE_NOT_FOUND) closeForGood("gone");
      // The session ended (logged out here or elsewhere): no reconnecting as someone else.
      else if (event.code === CLOSE_UNAUTHORIZED) closeForGood("signed-out");
      else scheduleReconnect();
    });
  }

  window.addEventListener("online", () => {
    if (!socket && !closedForGood) {
      attempt = 0;
      connect();
    }
  });

  emit("state", "connecting");
  connect();

  return {
    // Send a message that has a client id now (or once connected), until it is stored.
    send(message) {
      pending.set(message.id, message);
      transmit(message);
    },
    // Send a refused message again (same id: the server stores it at most once).
    retry(message) {
      if (closedForGood) return false;
      pending.set(message.id, message);
      transmit(message);
      return true;
    },
    // The ids still waiting for the server.
    isPending: (id) => pending.has(id),
    get you() {
      return you;
    },
    get closed() {
      return closedForGood;
    },
  };
}
