// map-grid.js — the cell grid overlay (used by map-adapter.js only; it gets Leaflet as `L`):
// canvas tiles with a line every `step` cells, where `step` is the smallest power of two that
// keeps lines at least MIN_GAP_PX apart, a stronger line every 8 steps, and the axes x = 0 and
// y = 0 in the accent colour. Lines sit on cell edges, so a cell lies between two lines.

import { el } from "./dom.js";

const TILE_PX = 256;
const CELL_PX_Z0 = 4;
const MIN_GAP_PX = 16;
const MAJOR_EVERY = 8;
const MINOR = "rgb(255 255 255 / 0.28)";
const MAJOR = "rgb(255 255 255 / 0.6)";
const SHADOW = "rgb(0 0 0 / 0.35)";
const AXIS = "rgb(224 138 0 / 0.95)";

// Cells between two grid lines at zoom z (a power of two).
export function gridStep(z) {
  const cellPx = CELL_PX_Z0 * 2 ** z;
  return 2 ** Math.max(0, Math.ceil(Math.log2(MIN_GAP_PX / cellPx)));
}

function drawLines(g, origin, cellPx, step, vertical) {
  const first = Math.ceil(origin / step) * step;
  const last = origin + TILE_PX / cellPx;
  for (let c = first; c < last; c += step) {
    const p = Math.round((c - origin) * cellPx);
    const major = c % (step * MAJOR_EVERY) === 0;
    const colour = c === 0 ? AXIS : major ? MAJOR : MINOR;
    const width = c === 0 || major ? 2 : 1;
    if (major || c === 0) {
      g.fillStyle = SHADOW;
      if (vertical) g.fillRect(p + width, 0, 1, TILE_PX);
      else g.fillRect(0, p + width, TILE_PX, 1);
    }
    g.fillStyle = colour;
    if (vertical) g.fillRect(p, 0, width, TILE_PX);
    else g.fillRect(0, p, TILE_PX, width);
  }
}

export function createGridLayer(L, { limits, bounds, className }) {
  const Grid = L.GridLayer.extend({
    createTile(coords) {
      const canvas = el("canvas", { width: TILE_PX, height: TILE_PX });
      const g = canvas.getContext("2d");
      const cellPx = CELL_PX_Z0 * 2 ** coords.z;
      const cells = TILE_PX / cellPx;
      const step = gridStep(coords.z);
      drawLines(g, coords.x * cells, cellPx, step, true);
      drawLines(g, coords.y * cells, cellPx, step, false);
      return canvas;
    },
  });
  return new Grid({
    tileSize: TILE_PX,
    minZoom: limits.zoom_min,
    maxZoom: limits.zoom_max,
    noWrap: true,
    bounds,
    className,
    pane: "overlayPane",
  });
}
