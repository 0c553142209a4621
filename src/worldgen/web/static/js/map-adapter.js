// map-adapter.js — the only module that uses Leaflet directly (window.L, from leaflet.js loaded
// before the page's modules; map-tiles.js and map-grid.js get it from here). It speaks in world
// cells and integer zooms so that another map library could replace Leaflet by reimplementing
// this small interface:
//   createMap(element, {tileUrl, limits}) -> { getView, setView, getCellBounds, cellPx,
//       zoomIn, zoomOut, onViewChange, onPointer, onClick, onLoading, addPing, setCrosshair,
//       setGrid, setEditing, onCellDrag, setSelection, setMarkers, refreshCells }
// The map shows nothing until the first setView, so listeners registered before it see the
// first tiles load. element.dataset.cover holds how many far-zoom "cover" tiles (placeholders
// for the next move, map-tiles.js) are still loading.

import { el } from "./dom.js";
import { createGridLayer } from "./map-grid.js";
import { createWorldTiles } from "./map-tiles.js";

// At z = 0 one cell is 4 px; every zoom step doubles that (z = 2: 16 px, a tile is 16x16 cells).
const CELL_PX_Z0 = 4;
// How long a ping stays on the map (its CSS animation fades it over the same time).
export const PING_MS = 8000;

// A LatLng here is (cell y, cell x): Leaflet's CRS.Simple with a transformation that keeps y
// growing downward and puts cell (cx, cy) at pixel (4·2^z·cx, 4·2^z·cy), so Leaflet's tile
// x, y, z are exactly the server's /tiles/{id}/{z}/{x}/{y}.png (no flips, no offsets).
function cellCRS(L) {
  return L.extend({}, L.CRS.Simple, {
    transformation: new L.Transformation(CELL_PX_Z0, 0, CELL_PX_Z0, 0),
  });
}

const cellOf = (latlng) => ({ x: Math.floor(latlng.lng), y: Math.floor(latlng.lat) });

// limits (from the page data): zoom_min, zoom_max, and coord_max, the farthest the map may
// wander in cells (the region/export API's coordinate bound).
export function createMap(element, { tileUrl, limits }) {
  const L = window.L;
  if (!L) throw new Error("Leaflet did not load");
  const edge = limits.coord_max;
  const bounds = L.latLngBounds([-edge, -edge], [edge, edge]);
  const map = L.map(element, {
    crs: cellCRS(L),
    minZoom: limits.zoom_min,
    maxZoom: limits.zoom_max,
    zoomSnap: 1,
    maxBounds: bounds,
    attributionControl: false,
    keyboard: true,
    // A fading tile would show what is under it; tiles here are never blank, so no fade.
    fadeAnimation: false,
  });
  const layer = createWorldTiles(L, { url: tileUrl, limits, bounds, className: "world-tiles" });
  layer.addTo(map);
  layer.on("coverloading", ({ pending }) => {
    element.dataset.cover = String(pending);
  });
  const grid = createGridLayer(L, { limits, bounds, className: "world-grid" });
  const editLayer = L.layerGroup().addTo(map); // the selection or the brushed cells
  const markerLayer = L.layerGroup().addTo(map);
  let editing = false;
  const dragFns = [];
  const cellRect = (r, className = "edit-selection") =>
    L.rectangle([[r.y, r.x], [r.y + r.h, r.x + r.w]], { interactive: false, className });

  // The container changes size when the side panel opens or closes.
  new ResizeObserver(() => map.invalidateSize({ pan: false })).observe(element);

  const adapter = {
    // The view as {z, x, y}: zoom and the centre in (fractional) cells.
    getView() {
      const c = map.getCenter();
      return { z: map.getZoom(), x: c.lng, y: c.lat };
    },
    setView({ z, x, y }) {
      map.setView([y, x], z, { animate: false });
    },
    // The visible area in (fractional) cells: west <= x < east, north <= y < south.
    getCellBounds() {
      const b = map.getBounds();
      return {
        west: b.getWest(),
        east: b.getEast(),
        north: Math.min(b.getSouth(), b.getNorth()),
        south: Math.max(b.getSouth(), b.getNorth()),
      };
    },
    // Screen pixels per cell at the current zoom.
    cellPx() {
      return CELL_PX_Z0 * 2 ** map.getZoom();
    },
    zoomIn() {
      map.zoomIn();
    },
    zoomOut() {
      map.zoomOut();
    },
    onViewChange(fn) {
      map.on("moveend", () => fn(adapter.getView()));
    },
    // fn({x, y}) with the integer cell under the pointer, or fn(null) when it leaves the map.
    onPointer(fn) {
      map.on("mousemove", (e) => fn(cellOf(e.latlng)));
      map.on("mouseout", () => fn(null));
    },
    // fn({x, y}) with the cell that was clicked or tapped (not after a drag).
    onClick(fn) {
      map.on("click", (e) => fn(cellOf(e.latlng)));
    },
    // fn(pending) with the number of tiles still loading (0 when the view is complete).
    onLoading(fn) {
      let pending = 0;
      const done = () => fn((pending = Math.max(0, pending - 1)));
      layer.on("tileloadstart", () => fn(++pending));
      layer.on("tileload tileerror tileabort", done);
      layer.on("load", () => fn((pending = 0)));
    },
    // A marker on cell (x, y) that fades away. The label is set as text, never as HTML: the
    // icon is an element built here, not a string Leaflet would parse.
    addPing(x, y, label, { local = false } = {}) {
      const text = el("span", { class: "map-ping-label", text: label ?? "" });
      const node = el("div", { class: "map-ping-dot" }, text);
      const className = local ? "map-ping map-ping-local" : "map-ping";
      const icon = L.divIcon({ className, html: node, iconSize: [0, 0] });
      const marker = L.marker([y + 0.5, x + 0.5], { icon, interactive: false, keyboard: false });
      marker.addTo(map);
      setTimeout(() => marker.remove(), PING_MS);
    },
    // A crosshair pointer over the map (while the next click picks a place).
    setCrosshair(on) {
      element.classList.toggle("map-pinging", on);
    },
    // Show or hide the cell grid overlay.
    setGrid(on) {
      if (on) grid.addTo(map);
      else grid.remove();
    },
    // While editing, a drag on the map picks cells (onCellDrag) instead of panning.
    setEditing(on) {
      editing = on;
      if (on) map.dragging.disable();
      else map.dragging.enable();
      element.classList.toggle("map-editing", on);
    },
    // fn(phase, {x, y}) with phase "start", "move" or "end" for drags while editing.
    onCellDrag(fn) {
      dragFns.push(fn);
    },
    // Outline cells: rects [{x, y, w, h}, ...] selected, and locked cells (none: empty lists).
    setSelection(rects, locked = []) {
      editLayer.clearLayers();
      for (const r of locked) cellRect(r, "edit-locked").addTo(editLayer);
      for (const r of rects) cellRect(r).addTo(editLayer);
    },
    // Markers [{id, x, y, label, text}]: label shown, text as the tooltip, both as text only.
    setMarkers(markers) {
      markerLayer.clearLayers();
      for (const m of markers) {
        const node = el("div", { class: "map-marker-dot", attrs: { title: m.text ?? "" } },
          el("span", { class: "map-marker-label", text: m.label }));
        const icon = L.divIcon({ className: "map-marker", html: node, iconSize: [0, 0] });
        L.marker([m.y + 0.5, m.x + 0.5], { icon, interactive: false, keyboard: false })
          .addTo(markerLayer);
      }
    },
    // The cells of rect changed at world version: reload the tiles over them.
    refreshCells(rect, version, reveal = null) {
      layer.refreshCells(rect, version, reveal);
    },
  };
  let dragging = false;
  const drag = (phase) => (e) => {
    if (!editing || (phase !== "start" && !dragging)) return;
    dragging = phase !== "end";
    for (const fn of dragFns) fn(phase, cellOf(e.latlng));
  };
  map.on("mousedown", drag("start"));
  map.on("mousemove", drag("move"));
  map.on("mouseup", drag("end"));
  return adapter;
}
