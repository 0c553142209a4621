// world.js — the world page: the map (through map-adapter.js), the #z/x/y hash that makes a
// link reopen the same view, the cursor's cell, the loading indicator, the PNG export of the
// visible area and the collapsible side panel (whose #chat section a later module fills).

import { getBlob } from "./api.js";
import { startChat } from "./chat.js";
import { MAX_CELL, MAX_ZOOM, MIN_ZOOM, createMap } from "./map-adapter.js";

// The export API's bounds: at most 1024 cells and 4096 px along a side, 1..16 px per cell.
const EXPORT_MAX_CELLS = 1024;
const EXPORT_MAX_PX = 4096;
const EXPORT_MAX_SCALE = 16;

const world = JSON.parse(document.getElementById("world-data").textContent);
const $ = (id) => document.getElementById(id);

// --- the #z/x/y hash: zoom and the integer cell at the centre of the view ---

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function parseHash(hash) {
  const m = /^#(-?\d+)\/(-?\d+)\/(-?\d+)$/.exec(hash);
  if (!m) return null;
  const [z, x, y] = m.slice(1).map(Number);
  return {
    z: clamp(z, MIN_ZOOM, MAX_ZOOM),
    x: clamp(x, -MAX_CELL, MAX_CELL - 1),
    y: clamp(y, -MAX_CELL, MAX_CELL - 1),
  };
}

const centreCell = (view) => ({ z: view.z, x: Math.floor(view.x), y: Math.floor(view.y) });
const formatHash = ({ z, x, y }) => `#${z}/${x}/${y}`;
// A cell's view centres the map on the middle of that cell, so the hash reads back the same.
const cellView = ({ z, x, y }) => ({ z, x: x + 0.5, y: y + 0.5 });

const initial = parseHash(window.location.hash) ?? { z: 0, x: 0, y: 0 };
const map = createMap($("map"), { tileUrl: world.tile_url });

function onView(view) {
  const cell = centreCell(view);
  const hash = formatHash(cell);
  if (window.location.hash !== hash) {
    window.history.replaceState(null, "", hash);
  }
  $("view-zoom").textContent = String(cell.z);
  $("view-centre").textContent = `${cell.x}, ${cell.y}`;
  updateExportNote();
  if (!$("export").disabled) $("export-status").textContent = "";
}

map.onViewChange(onView);
window.addEventListener("hashchange", () => {
  const target = parseHash(window.location.hash);
  if (target && formatHash(centreCell(map.getView())) !== formatHash(target)) {
    map.setView(cellView(target));
  }
});

// --- cursor cell and loading indicator ---

map.onPointer((cell) => {
  $("map-cursor").hidden = !cell;
  $("cursor-cell").textContent = cell ? `x ${cell.x}, y ${cell.y}` : "";
});

// The count is for the eye only: screen readers hear "Loading tiles…" once, not every change.
map.onLoading((pending) => {
  $("map-loading").hidden = pending === 0;
  $("map-loading-count").textContent = pending ? `(${pending})` : "";
});

// --- export: the visible area, clamped to the API's bounds around the centre ---

function exportRegion() {
  const b = map.getCellBounds();
  let x = Math.floor(b.west);
  let y = Math.floor(b.north);
  let w = Math.max(1, Math.ceil(b.east) - x);
  let h = Math.max(1, Math.ceil(b.south) - y);
  const clipped = w > EXPORT_MAX_CELLS || h > EXPORT_MAX_CELLS;
  if (w > EXPORT_MAX_CELLS) {
    x += Math.floor((w - EXPORT_MAX_CELLS) / 2);
    w = EXPORT_MAX_CELLS;
  }
  if (h > EXPORT_MAX_CELLS) {
    y += Math.floor((h - EXPORT_MAX_CELLS) / 2);
    h = EXPORT_MAX_CELLS;
  }
  const scale = clamp(Math.floor(EXPORT_MAX_PX / Math.max(w, h)), 1, EXPORT_MAX_SCALE);
  return { x, y, w, h, scale, clipped };
}

function updateExportNote() {
  const r = exportRegion();
  const size = `${r.w}×${r.h} cells, ${r.w * r.scale}×${r.h * r.scale} px`;
  $("export-note").textContent = r.clipped
    ? `The view is larger than ${EXPORT_MAX_CELLS}×${EXPORT_MAX_CELLS} cells: ` +
      `the export covers its centre (${size}).`
    : `Exports the visible area (${size}).`;
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Progress and errors go to a live region; the note above it changes with every move, silently.
async function onExport() {
  const button = $("export");
  const status = $("export-status");
  const r = exportRegion();
  const query = new URLSearchParams({ x: r.x, y: r.y, w: r.w, h: r.h, scale: r.scale });
  button.disabled = true;
  status.textContent = "Exporting… (a large area takes a few seconds)";
  try {
    const blob = await getBlob(`${world.export_url}?${query}`);
    saveBlob(blob, `world-${world.id}_${r.x}_${r.y}_${r.w}x${r.h}.png`);
    status.textContent = "Exported.";
  } catch (err) {
    status.textContent = `Export failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

$("export").addEventListener("click", onExport);

// --- the side panel (a bottom sheet on narrow screens) ---

const panel = $("panel");
const toggle = $("panel-toggle");
toggle.addEventListener("click", () => {
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = open ? "Hide panel" : "Show panel";
  panel.classList.toggle("collapsed", !open);
});

map.setView(cellView(initial)); // fires the first view change: hash, panel, export note

startChat({
  section: $("chat"),
  panel,
  world,
  map,
  onRename(name) {
    $("world-name").textContent = name;
    document.title = `${name} — worldgen`;
  },
});
