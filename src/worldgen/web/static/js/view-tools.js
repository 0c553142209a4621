// view-tools.js — the world page's view tools: the scale bar (in cells), the "go to x, y" box,
// the copy-link button and the grid toggle.

import { byId as $, copyText } from "./dom.js";

const SCALE_MAX_PX = 140;
const NICE = [1, 2, 5];

// The longest "nice" length in cells (1, 2, 5 × 10^k) drawn at most SCALE_MAX_PX wide.
export function scaleLength(cellPx) {
  let best = 1;
  for (let power = 1; power <= 1e9; power *= 10) {
    for (const n of NICE) {
      if (n * power * cellPx <= SCALE_MAX_PX) best = n * power;
    }
  }
  return best;
}

// "12, -40" or "12 -40" -> {x, y}; null for anything else.
export function parseCell(text) {
  const m = /^\s*\(?\s*(-?\d+)\s*[,;\s]\s*(-?\d+)\s*\)?\s*$/.exec(text);
  return m ? { x: Number(m[1]), y: Number(m[2]) } : null;
}

export function startViewTools({ map, limits }) {
  // --- scale bar ---
  function updateScale() {
    const cellPx = map.cellPx();
    const cells = scaleLength(cellPx);
    $("map-scale-bar").style.width = `${Math.round(cells * cellPx)}px`;
    const unit = cells === 1 ? "cell" : "cells";
    $("map-scale-text").textContent = `${cells.toLocaleString("en")} ${unit}`;
  }
  map.onViewChange(updateScale);

  // --- go to x, y ---
  const gotoInput = $("goto-cell");
  const gotoStatus = $("goto-status");
  $("goto-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const cell = parseCell(gotoInput.value);
    const edge = limits.coord_max;
    if (!cell) {
      gotoStatus.textContent = "Type two whole numbers, x and y, e.g. 120, -45.";
      return;
    }
    if (Math.abs(cell.x) > edge - 1 || Math.abs(cell.y) > edge - 1) {
      gotoStatus.textContent = `Coordinates go from ${-edge} to ${edge - 1}.`;
      return;
    }
    gotoStatus.textContent = "";
    const view = map.getView();
    map.setView({ z: view.z, x: cell.x + 0.5, y: cell.y + 0.5 });
    map.addPing(cell.x, cell.y, `${cell.x}, ${cell.y}`, { local: true });
  });

  // --- copy link ---
  const linkStatus = $("copy-link-status");
  $("copy-link").addEventListener("click", async () => {
    const copied = await copyText(window.location.href);
    linkStatus.textContent = copied
      ? "Link copied: it opens this view."
      : "Could not copy; copy the address bar instead.";
  });
  map.onViewChange(() => {
    linkStatus.textContent = "";
  });

  // --- grid ---
  const gridToggle = $("grid-toggle");
  gridToggle.addEventListener("change", () => map.setGrid(gridToggle.checked));
  map.setGrid(gridToggle.checked);

  return { updateScale };
}
