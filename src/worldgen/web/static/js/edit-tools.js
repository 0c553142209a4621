// edit-tools.js — shaping the world together (issue 14): the Edit section of the panel with a
// toolbar (select a rectangle, regenerate it, restore it, paint with a palette of the model's
// tiles or colours, lock and unlock brushes, markers, undo, redo; Ctrl+Z / Ctrl+Shift+Z), the
// history of operations (the owner may restore an earlier version) and the markers
// (edit-markers.js: place, rename, move, delete).
// Editing needs the world's "edit" action (GET /access): for anyone else every tool is disabled
// and the reason shown. Applied edits arrive as "edit" frames on the world's socket (ours too):
// the map reloads the tiles over the changed cells, which reveal themselves over about a second
// in the order the solver decided them (the frame's "reveal").
// Text from other people (markers, names) goes in as text only (dom.js).

import { edits as api } from "./api.js";
import { el } from "./dom.js";
import { createMarkers } from "./edit-markers.js";
import { decodeReveal } from "./edit-reveal.js";
import { loadLegend } from "./legend.js";

const HISTORY_SHOWN = 30;
const TOOLS = [
  ["select", "Select", "Drag on the map to select a rectangle"],
  ["paint", "Paint", "Drag over cells to paint them with the chosen tile"],
  ["lock", "Lock", "Drag over cells to lock them (they survive later edits)"],
  ["unlock", "Unlock", "Drag over cells to unlock them"],
  ["marker", "Marker", "Click a cell to place a marker"],
];

const rectOf = (list) => (list ? { x: list[0], y: list[1], w: list[2], h: list[3] } : null);
const when = (ts) => new Date(ts * 1000).toLocaleTimeString();
const typing = (target) => target instanceof HTMLElement && target.closest("input, textarea");

function spanOf(a, b) {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.abs(a.x - b.x) + 1, h: Math.abs(a.y - b.y) + 1 };
}

export function startEditing({ section, world, map }) {
  const status = el("p", { class: "hint edit-status", attrs: { role: "status" } });
  const reason = el("p", { class: "hint edit-reason", hidden: true });
  const toolButtons = new Map();
  const bar = el("div", { class: "edit-toolbar", attrs: { role: "toolbar", "aria-label": "Edit tools" } });
  for (const [name, label, title] of TOOLS) {
    const button = el("button", {
      type: "button",
      class: "secondary edit-tool",
      text: label,
      attrs: { "aria-pressed": "false", title },
      data: { tool: name },
    });
    button.addEventListener("click", () => choose(tool === name ? null : name));
    toolButtons.set(name, button);
    bar.append(button);
  }
  const action = (label, title, fn) => {
    const button = el("button", { type: "button", class: "secondary", text: label, attrs: { title } });
    button.addEventListener("click", fn);
    bar.append(button);
    return button;
  };
  const regenerate = action("Regenerate", "Re-solve the selected rectangle", () =>
    rectOp("regenerate"),
  );
  const restoreArea = action("Restore", "Put the selection back as generated", () =>
    rectOp("restore"),
  );
  const undoButton = action("Undo", "Undo your last edit (Ctrl+Z)", () => stack("undo"));
  const redoButton = action("Redo", "Redo (Ctrl+Shift+Z)", () => stack("redo"));
  const palette = el("ul", { class: "edit-palette", attrs: { "aria-label": "Palette" } });
  const marks = createMarkers({
    world,
    map,
    run,
    say: (text) => (status.textContent = text),
    useMarkerTool: () => tool !== "marker" && choose("marker"),
  });
  const history = el("ol", { class: "edit-history", reversed: true });
  section.replaceChildren(
    el("h2", { id: "edit-title", text: "Edit" }),
    reason,
    bar,
    status,
    palette,
    marks.form,
    el("h3", { text: "Markers" }),
    marks.list,
    el("h3", { text: "History" }),
    history,
  );

  let canEdit = false;
  let isOwner = false;
  let tool = null;
  let selection = null; // {x, y, w, h}
  let anchor = null;
  let brushed = new Map(); // "x,y" -> {x, y}
  let chosen = null; // variant index to paint
  let version = 0;
  let ready = false; // the log and markers are loaded
  let locked = []; // locked cells in view, shown while a lock tool is chosen
  const seen = new Set(); // versions already shown (our own answer and its frame)

  function enable(on) {
    for (const button of bar.querySelectorAll("button")) button.disabled = !on;
    if (on) {
      regenerate.disabled = restoreArea.disabled = !selection;
    }
  }

  function choose(name) {
    tool = name;
    for (const [n, button] of toolButtons) button.setAttribute("aria-pressed", String(n === name));
    map.setEditing(Boolean(name));
    palette.hidden = name !== "paint";
    marks.showFor(name === "marker");
    brushed = new Map();
    showSelection();
    loadLocks();
  }

  // While Lock or Unlock is chosen, the view's locked cells are outlined (when it is small
  // enough for the server to list them).
  async function loadLocks() {
    if (tool !== "lock" && tool !== "unlock") {
      locked = [];
      showSelection();
      return;
    }
    const b = map.getCellBounds();
    const x = Math.floor(b.west);
    const y = Math.floor(b.north);
    const view = { x, y, w: Math.ceil(b.east) - x, h: Math.ceil(b.south) - y };
    try {
      const found = await api.locks(world.id, view);
      locked = found.cells.map(([cx, cy]) => ({ x: cx, y: cy, w: 1, h: 1 }));
    } catch {
      locked = [];
      status.textContent = "Zoom in to see the locked cells.";
    }
    showSelection();
  }

  map.onViewChange(() => loadLocks());

  function showSelection() {
    const cells = [...brushed.values()].map((c) => ({ x: c.x, y: c.y, w: 1, h: 1 }));
    map.setSelection(selection && tool === "select" ? [selection, ...cells] : cells, locked);
    if (canEdit) regenerate.disabled = restoreArea.disabled = !selection;
  }

  async function run(label, call) {
    status.textContent = `${label}…`;
    try {
      const result = await call();
      if (result?.op) applied({ ...result.op, reveal: result.reveal });
      status.textContent = result?.op ? `${label}: done (version ${result.version}).` : "";
    } catch (err) {
      const wait = err.retryAfter ? ` Retry in ${err.retryAfter} s.` : "";
      status.textContent = `${label} refused: ${err.message}${wait}`;
    }
  }

  const rectOp = (kind) =>
    selection && run(kind === "regenerate" ? "Regenerate" : "Restore", () =>
      api.apply(world.id, { kind, rect: selection, version }),
    );
  const stack = (which) => run(which === "undo" ? "Undo" : "Redo", () => api[which](world.id));

  function brushOp() {
    const cells = [...brushed.values()];
    brushed = new Map();
    if (!cells.length) return;
    // Cells travel relative to their corner, so a large brush stroke stays a small request.
    const at = [Math.min(...cells.map((c) => c.x)), Math.min(...cells.map((c) => c.y))];
    const rel = (c) => [c.x - at[0], c.y - at[1]];
    if (tool === "paint") {
      if (chosen === null) {
        status.textContent = "Choose a tile in the palette first.";
        showSelection();
        return;
      }
      run("Paint", () =>
        api.apply(world.id, {
          kind: "paint",
          at,
          cells: cells.map((c) => [...rel(c), chosen]),
          version,
        }),
      );
    } else {
      const kind = tool;
      run(kind === "lock" ? "Lock" : "Unlock", () =>
        api.apply(world.id, { kind, at, cells: cells.map(rel), version }),
      );
    }
  }

  map.onCellDrag((phase, cell) => {
    if (!canEdit || !tool) return;
    if (tool === "select") {
      if (phase === "start") anchor = cell;
      if (anchor) selection = spanOf(anchor, cell);
      if (phase === "end") anchor = null;
      showSelection();
    } else if (tool === "marker") {
      if (phase === "end") marks.pick(cell);
    } else {
      brushed.set(`${cell.x},${cell.y}`, cell);
      showSelection();
      if (phase === "end") brushOp();
    }
  });

  // --- what happened: our answers and everyone's frames ---

  function applied(op) {
    version = Math.max(version, op.id);
    if (seen.has(op.id)) return;
    seen.add(op.id);
    const area = rectOf(op.changed ?? op.rect);
    if (area) map.refreshCells(area, op.id, decodeReveal(op.reveal));
    if (op.kind === "lock" || op.kind === "unlock" || op.kind === "revert") loadLocks();
    addHistory(op);
  }

  function addHistory(op) {
    const what = op.kind === "revert" ? `undo/redo of #${op.target}` : op.kind;
    const item = el(
      "li",
      { class: "edit-history-item", data: { version: String(op.id) } },
      el("span", { text: `#${op.id} ${what} by ${op.author_name} at ${when(op.ts)}` }),
    );
    if (isOwner) {
      const back = el("button", { type: "button", class: "link", text: "restore to here" });
      back.addEventListener("click", () =>
        run("Restore version", () => api.restore(world.id, op.id)),
      );
      item.append(" ", back);
    }
    history.prepend(item);
    while (history.children.length > HISTORY_SHOWN) history.lastElementChild.remove();
  }

  async function catchUp() {
    const [log, all] = await Promise.all([api.log(world.id, version), api.markers(world.id)]);
    for (const op of log.ops) applied(op);
    marks.replace(all);
  }

  function onEvent(frame) {
    if (frame.type === "reconnected") {
      if (ready) catchUp().catch(() => {});
    } else if (frame.type === "edit") {
      applied({ ...frame, ts: Date.now() / 1000 });
    } else if (frame.type === "marker") {
      if (frame.marker) marks.put(frame.marker);
      if (frame.deleted) marks.forget(frame.deleted);
    }
  }

  document.addEventListener("keydown", (e) => {
    if (!canEdit || !(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "z" || typing(e.target)) {
      return;
    }
    e.preventDefault();
    stack(e.shiftKey ? "redo" : "undo");
  });

  // --- start: who we are, the palette, the log and the markers ---

  async function start() {
    enable(false);
    palette.hidden = true;
    try {
      const access = await api.access(world.id);
      canEdit = access.actions.includes("edit");
      isOwner = access.actions.includes("change");
      if (!canEdit) {
        reason.hidden = false;
        reason.textContent = access.signed_in
          ? "You can view this world but not edit it: only its owner and editors can."
          : "Sign in as an editor of this world to edit it.";
      }
    } catch {
      reason.hidden = false;
      reason.textContent = "Editing is unavailable right now.";
    }
    enable(canEdit);
    marks.setCanEdit(canEdit);
    const [log, all] = await Promise.all([api.log(world.id), api.markers(world.id)]);
    for (const op of log.ops.slice(-HISTORY_SHOWN)) {
      seen.add(op.id);
      addHistory(op);
    }
    version = log.version;
    marks.replace(all);
    ready = true;
    if (canEdit) await fillPalette();
  }

  async function fillPalette() {
    const [legend, region] = await Promise.all([loadLegend(world.id), api.labels(world.id)]);
    const labels = region.tiles ?? region.colors;
    for (const entry of legend.entries) {
      const index = entry.members
        .map((m) => labels.indexOf(region.tiles ? `${m} 0` : m))
        .find((i) => i >= 0);
      if (index === undefined) continue;
      const button = el(
        "button",
        { type: "button", class: "edit-swatch", attrs: { title: entry.label, "aria-pressed": "false" } },
        el("img", { src: entry.picture, alt: "", width: 20, height: 20 }),
        el("span", { text: entry.label }),
      );
      button.addEventListener("click", () => {
        chosen = index;
        for (const b of palette.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-pressed", "true");
      });
      palette.append(el("li", {}, button));
    }
  }

  start().catch(() => {
    status.textContent = "Could not load the edit history; reload the page.";
  });
  return { onEvent };
}
