// world.js — the world page: the map (through map-adapter.js), the #z/x/y hash that makes a
// link reopen the same view, the cursor's cell and its name, the legend, the loading
// indicator, the view tools (view-tools.js), the PNG export of the visible area and the
// collapsible side panel (whose #chat section chat.js fills).

import { currentUser } from "./account.js";
import { getBlob, jobs } from "./api.js";
import { startChat } from "./chat.js";
import { jobsLive, watchJobs } from "./chat-socket.js";
import { byId as $, saveBlob } from "./dom.js";
import { startEditing } from "./edit-tools.js";
import { cellNamer, classOf, loadLegend, renderLegend } from "./legend.js";
import { createMap } from "./map-adapter.js";
import { startViewTools } from "./view-tools.js";
import { onWorldChange, updateWorld, world } from "./world-state.js";

// The API's bounds, from the page data: zooms, coordinates, and the export's at most
// export_cells cells and export_px px along a side at 1..export_scale px per cell.
const limits = world.limits;

// --- the #z/x/y hash: zoom and the integer cell at the centre of the view ---

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function parseHash(hash) {
  const m = /^#(-?\d+)\/(-?\d+)\/(-?\d+)$/.exec(hash);
  if (!m) return null;
  const [z, x, y] = m.slice(1).map(Number);
  return {
    z: clamp(z, limits.zoom_min, limits.zoom_max),
    x: clamp(x, -limits.coord_max, limits.coord_max - 1),
    y: clamp(y, -limits.coord_max, limits.coord_max - 1),
  };
}

const centreCell = (view) => ({ z: view.z, x: Math.floor(view.x), y: Math.floor(view.y) });
const formatHash = ({ z, x, y }) => `#${z}/${x}/${y}`;
// A cell's view centres the map on the middle of that cell, so the hash reads back the same.
const cellView = ({ z, x, y }) => ({ z, x: x + 0.5, y: y + 0.5 });

const initial = parseHash(window.location.hash) ?? { z: 0, x: 0, y: 0 };
const map = createMap($("map"), { tileUrl: world.tile_url, limits });

function onView(view) {
  const cell = centreCell(view);
  const hash = formatHash(cell);
  if (window.location.hash !== hash) {
    window.history.replaceState(null, "", hash);
  }
  $("view-zoom").textContent = String(cell.z);
  $("view-centre").textContent = `${cell.x}, ${cell.y}`;
  updateExportNote();
  updateJobNote();
  if (!$("export").disabled) $("export-status").textContent = "";
}

map.onViewChange(onView);
window.addEventListener("hashchange", () => {
  const target = parseHash(window.location.hash);
  if (target && formatHash(centreCell(map.getView())) !== formatHash(target)) {
    map.setView(cellView(target));
  }
});

// --- legend, cursor cell and its name, loading indicator ---

const NAME_DELAY_MS = 200; // a name is asked for once the pointer rests this long on a cell
let legend = null;
let nameOf = cellNamer(world.id, null);
let markLegend = () => {};
let pointed = null; // the cell whose name is wanted
let nameTimer = null;

loadLegend(world.id).then(
  (loaded) => {
    legend = loaded;
    nameOf = cellNamer(world.id, legend);
    markLegend = renderLegend($("legend-list"), legend);
    $("legend").hidden = false;
  },
  () => {
    $("legend").hidden = true;
  },
);

async function showName(cell) {
  const found = await nameOf(cell);
  if (pointed !== cell) return; // the pointer moved on
  const klass = found ? classOf(legend, found.key) : "";
  $("cursor-name").textContent = found ? ` — ${found.name}${klass ? ` (${klass})` : ""}` : "";
  markLegend(found?.key);
}

function point(cell) {
  pointed = cell;
  clearTimeout(nameTimer);
  $("map-cursor").hidden = !cell;
  $("cursor-cell").textContent = cell ? `x ${cell.x}, y ${cell.y}` : "";
  $("cursor-name").textContent = "";
  markLegend(null);
  if (cell) nameTimer = setTimeout(() => showName(cell), NAME_DELAY_MS);
}

map.onPointer((cell) => {
  const same = cell && pointed && cell.x === pointed.x && cell.y === pointed.y;
  if (!same) point(cell);
});
map.onClick(point); // touch screens have no hover: a tap names the cell

// The count is for the eye only: screen readers hear "Loading tiles…" once, not every change.
map.onLoading((pending) => {
  $("map-loading").hidden = pending === 0;
  $("map-loading-count").textContent = pending ? `(${pending})` : "";
});

// --- export: the visible area, clamped to the API's bounds around the centre ---

function exportRegion() {
  const { export_cells: maxCells, export_px: maxPx, export_scale: maxScale } = limits;
  const b = map.getCellBounds();
  let x = Math.floor(b.west);
  let y = Math.floor(b.north);
  let w = Math.max(1, Math.ceil(b.east) - x);
  let h = Math.max(1, Math.ceil(b.south) - y);
  const clipped = w > maxCells || h > maxCells;
  if (w > maxCells) {
    x += Math.floor((w - maxCells) / 2);
    w = maxCells;
  }
  if (h > maxCells) {
    y += Math.floor((h - maxCells) / 2);
    h = maxCells;
  }
  const scale = clamp(Math.floor(maxPx / Math.max(w, h)), 1, maxScale);
  return { x, y, w, h, scale, clipped };
}

function updateExportNote() {
  const r = exportRegion();
  const size = `${r.w}×${r.h} cells, ${r.w * r.scale}×${r.h * r.scale} px`;
  $("export-note").textContent = r.clipped
    ? `The view is larger than ${limits.export_cells}×${limits.export_cells} cells: ` +
      `the export covers its centre (${size}).`
    : `Exports the visible area (${size}).`;
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

// --- large exports: a background job (signed-in users), followed live through the world's
// socket (`job` frames, chat-socket.js); its record is read about once a second while no socket
// is connected, and every JOB_SAFETY_POLL_MS while one is (a frame may be lost) ---

const JOB_POLL_MS = 1000;
const JOB_SAFETY_POLL_MS = 10_000;
const JOB_GIVE_UP_MS = 6 * 3600 * 1000; // the job's own time limit

// The visible area, clamped around the centre to job_export_px px a side at scale >= 1.
function jobRegion() {
  const maxPx = limits.job_export_px;
  const b = map.getCellBounds();
  let x = Math.floor(b.west);
  let y = Math.floor(b.north);
  let w = Math.max(1, Math.ceil(b.east) - x);
  let h = Math.max(1, Math.ceil(b.south) - y);
  if (w > maxPx) {
    x += Math.floor((w - maxPx) / 2);
    w = maxPx;
  }
  if (h > maxPx) {
    y += Math.floor((h - maxPx) / 2);
    h = maxPx;
  }
  const scale = clamp(Math.floor(maxPx / Math.max(w, h)), 1, limits.export_scale);
  return { x, y, w, h, scale };
}

function updateJobNote() {
  const r = jobRegion();
  $("export-job-note").textContent =
    `Up to ${limits.job_export_px} px a side: ${r.w}×${r.h} cells, ` +
    `${r.w * r.scale}×${r.h * r.scale} px. Runs in the background; keep this page open.`;
}

// The job's record, or `job` unchanged when it cannot be read now (a network error, the server
// restarting): the next round tries again. Gone (404) or signed out (401) ends the following.
async function readJob(job) {
  try {
    return await jobs.get(job.id);
  } catch (err) {
    if (err.status === 401 || err.status === 404) throw err;
    return job;
  }
}

// Follows a job (`start` gives its first state) to its end: progress bar, then the link.
async function followExportJob(start) {
  const button = $("export-job");
  const status = $("export-job-status");
  const bar = $("export-job-progress");
  const link = $("export-job-download");
  const cancel = $("export-job-cancel");
  button.disabled = true;
  link.hidden = true;
  bar.value = 0;
  bar.hidden = false;
  status.textContent = "Queued…";
  let job = null;
  let fresh = null; // the newest frame of the job, not yet shown
  let reread = false; // a socket (re)connected: frames sent meanwhile were lost
  let wake = null;
  const unwatch = watchJobs((frame) => {
    if (frame.type === "resync") reread = true;
    else if (job && frame.id === job.id) fresh = frame;
    else return;
    wake?.();
  });
  const pause = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  try {
    job = await start();
    const started = Date.now();
    cancel.onclick = () => {
      cancel.disabled = true;
      jobs.cancel(job.id).catch(() => {}); // 409: it ended meanwhile; the next news says how
    };
    cancel.disabled = false;
    cancel.hidden = false;
    while (job.state === "queued" || job.state === "running") {
      if (Date.now() - started > JOB_GIVE_UP_MS) throw new Error("the job is taking too long");
      bar.value = job.percent;
      status.textContent = job.state === "queued" ? "Queued…" : `${job.percent}% (${job.stage})`;
      if (!fresh && !reread) await pause(jobsLive() ? JOB_SAFETY_POLL_MS : JOB_POLL_MS);
      wake = null;
      const [frame, resync] = [fresh, reread];
      fresh = null;
      reread = false;
      if (frame && !resync && frame.state !== "done") {
        job = { ...job, ...frame }; // a frame has every field shown until the job is done
      } else {
        job = await readJob(job); // done (the link is in the record), a resync, or a safety poll
      }
    }
    if (job.state === "failed") throw new Error(job.message || "the job failed");
    bar.value = 100;
    link.href = job.result;
    link.download = ""; // the server's file name: world, x and y
    link.hidden = false;
    const until = new Date(job.expires * 1000).toLocaleTimeString();
    status.textContent = `Ready: ${Math.ceil(job.size / 1024)} KB, the link works until ${until}.`;
  } catch (err) {
    bar.hidden = true;
    status.textContent =
      err.status === 401
        ? "Sign in to export large areas."
        : `Export failed: ${err.message}` +
          (err.retryAfter ? ` (try again in ${err.retryAfter} s)` : "");
  } finally {
    unwatch();
    cancel.hidden = true;
    button.disabled = false;
  }
}

function onExportJob() {
  return followExportJob(() => jobs.exportPng(world.id, { ...jobRegion(), format: "png" }));
}

// A page opened again follows the export that is still running for this world.
currentUser()
  .then((user) => (user ? jobs.mine(world.id) : { jobs: [] }))
  .then(({ jobs: running }) => {
    const job = running.find((j) => j.kind === "export");
    if (job) followExportJob(() => Promise.resolve(job));
  })
  .catch(() => {}); // nothing to resume

$("export-job").addEventListener("click", onExportJob);

// --- the side panel (a bottom sheet on narrow screens) ---

const panel = $("panel");
const toggle = $("panel-toggle");
toggle.addEventListener("click", () => {
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = open ? "Hide panel" : "Show panel";
  panel.classList.toggle("collapsed", !open);
});

startViewTools({ map, limits });
map.setView(cellView(initial)); // fires the first view change: hash, panel, scale, export note

// The header and the title follow the name, whoever changed it.
onWorldChange(() => {
  $("world-name").textContent = world.name;
  document.title = `${world.name} — worldgen`;
});

const editing = startEditing({ section: $("edit"), world, map });
startChat({
  section: $("chat"),
  panel,
  world,
  map,
  onWorldChange: updateWorld,
  onEdit: editing.onEvent,
});
