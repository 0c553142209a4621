// map-tiles.js — the world's tile layer, a Leaflet GridLayer that never shows a blank rectangle
// while tiles load (used by map-adapter.js only; it gets Leaflet as `L`).
//
// Each tile is a <div> holding a <canvas> placeholder and, once it has loaded and decoded, the
// real <img> on top. The placeholder is painted at once from the best tile of another zoom this
// page has already loaded (the nearest ancestor, scaled up; then whichever of the four tiles of
// the next zoom in are loaded, scaled down), and repainted when a better one arrives. A "cover"
// of cheap far-zoom tiles around the view (3 times its width and height, at least 3 zooms out)
// is kept loaded, so a zoom out or a pan always finds an ancestor to scale. During a zoom
// animation the new zoom's tiles cover the target view from its first frame (Leaflet's own
// GridLayer covers only the old view until the animation ends, leaving a ring blank).

import { el } from "./dom.js";
import { revealInOrder } from "./edit-reveal.js";
import { keyOf, loadImage, loadWithRetries, TileImages } from "./tile-images.js";

const TILE_PX = 256;
// Far zooms (this one and out) are summaries that cost a few milliseconds a tile: the cover
// comes from them.
const COVER_ZOOM_MAX = -3;
const COVER_STEPS = 3; // the cover is at least this many zooms out (early-tiles.js mirrors it)
const COVER_SPAN = 3; // ...and covers the view's centre area this many times as wide and high
const ANCESTOR_STEPS = 12; // the farthest ancestor worth scaling (1/4096 of its width)
const PRUNE_HOLD_MS = 400; // old-zoom tiles stay this long after a zoom ends
const REVEAL_MS = 1100; // the edited tile's reveal animation (edit.css), then the old image goes

// A tile's placeholder canvas: paints the best available picture of its area from `cache`.
// `rank` is how good the current picture is (lower is better; Infinity when empty).
class Placeholder {
  constructor(coords, zoomMin, zoomMax) {
    this.coords = coords;
    this.zoomMin = zoomMin;
    this.zoomMax = zoomMax;
    this.rank = Infinity;
    this.canvas = el("canvas", {
      class: "world-tile-placeholder",
      width: TILE_PX,
      height: TILE_PX,
    });
  }

  // Paint from the nearest cached ancestor, then any cached child tiles over it. Returns whether
  // anything was painted; `data-cover` says if all of the tile ("whole") or some ("part") is.
  paint(cache) {
    const { x, y, z } = this.coords;
    const g = this.canvas.getContext("2d");
    let painted = false;
    let whole = false;
    const farthest = Math.max(this.zoomMin, z - ANCESTOR_STEPS);
    for (let k = 1; z - k >= farthest; k++) {
      const n = 2 ** k;
      const ax = Math.floor(x / n);
      const ay = Math.floor(y / n);
      const img = cache.get(z - k, ax, ay);
      if (!img) continue;
      const side = TILE_PX / n;
      g.imageSmoothingEnabled = false;
      const [sx, sy] = [(x - ax * n) * side, (y - ay * n) * side];
      g.drawImage(img, sx, sy, side, side, 0, 0, TILE_PX, TILE_PX);
      this.rank = k;
      painted = true;
      whole = true;
      break;
    }
    if (z + 1 <= this.zoomMax) {
      const half = TILE_PX / 2;
      let children = 0;
      // Nearest sampling: smoothing would blend each quarter's edge with transparency.
      g.imageSmoothingEnabled = false;
      for (let j = 0; j < 2; j++) {
        for (let i = 0; i < 2; i++) {
          const img = cache.get(z + 1, 2 * x + i, 2 * y + j);
          if (!img) continue;
          g.drawImage(img, i * half, j * half, half, half);
          this.rank = Math.min(this.rank, 0.5);
          painted = true;
          children += 1;
        }
      }
      whole ||= children === 4;
    }
    if (painted) this.canvas.dataset.cover = whole ? "whole" : "part";
    return painted;
  }

  // Whether a newly cached image at (z, x, y) would improve this placeholder.
  improvedBy(z, x, y) {
    const c = this.coords;
    if (z === c.z + 1) return Math.floor(x / 2) === c.x && Math.floor(y / 2) === c.y;
    const k = c.z - z;
    if (k < 1 || k >= this.rank) return false;
    return Math.floor(c.x / 2 ** k) === x && Math.floor(c.y / 2 ** k) === y;
  }
}

// createWorldTiles(L, {url, limits, bounds, className}) -> a GridLayer to add to the map. Besides
// Leaflet's tile events it fires "tileabort" (a tile removed before it loaded) and
// "coverloading" ({pending}: cover tiles still loading).
export function createWorldTiles(L, { url, limits, bounds, className }) {
  const cache = new TileImages();
  let cover = null; // created below, once the layer exists
  const waiting = new Map(); // tile key -> {placeholder, tile}: tiles still loading
  const edited = new Map(); // tile key -> the world version of the last edit of its cells
  const tileUrl = ({ x, y, z }) => {
    const base = url.replace("{z}", String(z)).replace("{x}", String(x)).replace("{y}", String(y));
    const version = edited.get(keyOf(z, x, y));
    return version === undefined ? base : `${base}?v=${version}`;
  };

  cache.listeners.push((z, x, y) => {
    for (const { placeholder, tile } of waiting.values()) {
      if (!placeholder.improvedBy(z, x, y)) continue;
      if (placeholder.paint(cache) && !placeholder.canvas.isConnected) {
        tile.prepend(placeholder.canvas);
      }
    }
  });

  const Layer = L.GridLayer.extend({
    createTile(coords, done) {
      const tile = el("div", { class: "world-tile" });
      const key = keyOf(coords.z, coords.x, coords.y);
      const placeholder = new Placeholder(coords, limits.zoom_min, limits.zoom_max);
      if (placeholder.paint(cache)) tile.append(placeholder.canvas);
      else cover.rescue(coords);
      const controller = new AbortController();
      tile.abort = () => controller.abort();
      waiting.set(key, { placeholder, tile });
      // Asked for once every tile of this update has asked for its rescue: a browser sends a
      // host six requests at a time, first come first served, and the far ancestors that fill
      // the outer tiles (milliseconds of work) must not queue behind the zoom's cell tiles
      // (hundreds of milliseconds each at z = -1 and -2).
      queueMicrotask(() => {
        if (controller.signal.aborted) return;
        loadWithRetries(tileUrl(coords), controller.signal).then((img) => {
          if (waiting.get(key)?.tile === tile) waiting.delete(key);
          if (controller.signal.aborted) return;
          if (!img) {
            tile.classList.add("world-tile-error"); // the placeholder (if any) stays
            done(new Error(`tile ${key} did not load`), tile);
            return;
          }
          img.className = "world-tile-image";
          tile.append(img);
          placeholder.canvas.remove();
          cache.put(coords.z, coords.x, coords.y, img);
          done(null, tile);
        });
      });
      return tile;
    },

    // With fadeAnimation off, Leaflet prunes the old zoom's tiles as soon as a new tile is
    // ready, even during a zoom animation, when they still cover what the new zoom's tiles (at
    // the animation's current scale) do not. Keep them until a moment after the zoom ends: a
    // busy browser may still be drawing the animation's last frames by then.
    _pruneTiles() {
      if (this._noPrune || performance.now() < this._holdUntil) return;
      L.GridLayer.prototype._pruneTiles.call(this);
    },

    onAdd(map) {
      L.GridLayer.prototype.onAdd.call(this, map);
      this._holdUntil = 0;
      map.on("zoomstart", () => {
        this._holdUntil = Infinity;
        clearTimeout(this._holdTimer);
      });
      map.on("zoomend", () => {
        this._holdUntil = performance.now() + PRUNE_HOLD_MS;
        this._holdTimer = setTimeout(() => this._pruneTiles(), PRUNE_HOLD_MS + 1);
      });
    },

    // Leaflet sizes the tile range of a zoom animation by the larger of the two zooms, so a
    // zoom out covers only the old view until the animation ends; cover the target view.
    _getTiledPixelBounds(center) {
      const map = this._map;
      const mapZoom = map._animatingZoom ? map._animateToZoom : map.getZoom();
      const scale = map.getZoomScale(mapZoom, this._tileZoom);
      const pixelCenter = map.project(center, this._tileZoom).floor();
      const halfSize = map.getSize().divideBy(scale * 2);
      return L.bounds(pixelCenter.subtract(halfSize), pixelCenter.add(halfSize));
    },
  });

  const layer = new Layer({
    tileSize: TILE_PX,
    minZoom: limits.zoom_min,
    maxZoom: limits.zoom_max,
    noWrap: true,
    bounds,
    keepBuffer: 2,
    updateWhenZooming: true,
    className,
  });

  cover = createCover(layer, cache, tileUrl, limits);

  // An edit changed the cells of `rect` ({x, y, w, h}) at world `version`: the tiles over it
  // get new URLs at every zoom, and the ones on screen reload and reveal their new image over
  // the old one: in the order the solver decided the cells when `reveal` says it (see
  // revealInOrder), else in one wave from the rectangle's centre.
  layer.refreshCells = (rect, version, reveal = null) => {
    for (let z = limits.zoom_min; z <= limits.zoom_max; z++) {
      const n = TILE_PX / (4 * 2 ** z);
      for (let ty = Math.floor(rect.y / n); ty <= Math.floor((rect.y + rect.h - 1) / n); ty++) {
        for (let tx = Math.floor(rect.x / n); tx <= Math.floor((rect.x + rect.w - 1) / n); tx++) {
          edited.set(keyOf(z, tx, ty), version);
        }
      }
    }
    for (const { el: tile, coords } of Object.values(layer._tiles ?? {})) {
      if (edited.get(keyOf(coords.z, coords.x, coords.y)) !== version) continue;
      // One wave for the whole edit: it grows from the rectangle's centre at the same speed on
      // every tile and reaches its farthest cell as the animation ends (edit.css).
      const n = TILE_PX / (4 * 2 ** coords.z);
      const centre = [
        (rect.x + rect.w / 2 - coords.x * n) / n,
        (rect.y + rect.h / 2 - coords.y * n) / n,
      ];
      const reach = Math.hypot(rect.w / 2, rect.h / 2) / n + 0.05;
      loadWithRetries(tileUrl(coords), new AbortController().signal).then((img) => {
        if (!img) return;
        const old = [...tile.querySelectorAll(".world-tile-image")];
        if (reveal) {
          cache.put(coords.z, coords.x, coords.y, img);
          const duration = REVEAL_MS - 100;
          revealInOrder(tile, img, coords, reveal, duration, () => old.forEach((o) => o.remove()));
          return;
        }
        img.className = "world-tile-image world-tile-edited";
        img.style.setProperty("--reveal-x", `${centre[0] * 100}%`);
        img.style.setProperty("--reveal-y", `${centre[1] * 100}%`);
        img.style.setProperty("--reveal-r", `${reach * 100}%`);
        tile.append(img);
        cache.put(coords.z, coords.x, coords.y, img);
        setTimeout(() => old.forEach((o) => o.remove()), REVEAL_MS);
      });
    }
  };

  // A tile removed before it loaded: cancel its request, and say so (the loading count).
  layer.on("tileunload", ({ tile, coords }) => {
    const key = keyOf(coords.z, coords.x, coords.y);
    if (waiting.get(key)?.tile !== tile) return;
    waiting.delete(key);
    tile.abort();
    layer.fire("tileabort", { tile, coords });
  });

  // After the view's own tiles: they matter first, and the cover is for the next move.
  layer.on("load", () => layer._map && cover.refresh(layer._map));
  layer.on("add", () => {
    const map = layer._map;
    map.on("moveend", () => layer.isLoading() || cover.refresh(map));
  });
  return layer;
}

// The cover: far-zoom tiles around the view, loaded after the view's own tiles, and the one
// far ancestor of any tile that found nothing to show while it loads (a pan beyond the cover).
function createCover(layer, cache, tileUrl, limits) {
  const loading = new Map(); // key -> AbortController: cover tiles on their way
  const rescues = new Set(); // keys of ancestors asked for by empty tiles (never cancelled)
  const announce = () => layer.fire("coverloading", { pending: loading.size });
  const coverZoom = (z) => Math.max(limits.zoom_min, Math.min(z - COVER_STEPS, COVER_ZOOM_MAX));

  function wanted(map) {
    const z = map.getZoom();
    const zc = coverZoom(z);
    if (zc >= z) return [];
    const size = map.getSize();
    const centre = map.project(map.getCenter(), zc);
    const scale = map.getZoomScale(z, zc);
    const half = size.multiplyBy(COVER_SPAN / (2 * scale));
    const min = centre.subtract(half).divideBy(TILE_PX).floor();
    const max = centre.add(half).divideBy(TILE_PX).floor();
    const n = 2 ** (limits.zoom_max - zc) * 16; // cells per tile at zc (16 at zoom_max)
    const edge = Math.floor(limits.coord_max / n);
    const tiles = [];
    for (let y = Math.max(min.y, -edge); y <= Math.min(max.y, edge - 1); y++) {
      for (let x = Math.max(min.x, -edge); x <= Math.min(max.x, edge - 1); x++) {
        tiles.push({ z: zc, x, y });
      }
    }
    return tiles;
  }

  function refresh(map) {
    const want = wanted(map);
    const keys = new Set(want.map((c) => keyOf(c.z, c.x, c.y)));
    for (const [key, controller] of loading) {
      if (!keys.has(key)) {
        controller.abort();
        loading.delete(key);
      }
    }
    for (const c of want) {
      const key = keyOf(c.z, c.x, c.y);
      if (loading.has(key) || rescues.has(key) || cache.has(c.z, c.x, c.y)) continue;
      const controller = new AbortController();
      loading.set(key, controller);
      loadImage(tileUrl(c), controller.signal, "high").then((img) => {
        if (loading.get(key) !== controller) return;
        loading.delete(key);
        if (img) cache.put(c.z, c.x, c.y, img);
        announce();
      });
    }
    announce();
  }

  // A tile at `coords` has no placeholder: fetch its ancestor at the cover zoom.
  function rescue({ x, y, z }) {
    const zc = coverZoom(z);
    if (zc >= z) return;
    const n = 2 ** (z - zc);
    const c = { z: zc, x: Math.floor(x / n), y: Math.floor(y / n) };
    const key = keyOf(c.z, c.x, c.y);
    if (rescues.has(key) || loading.has(key) || cache.has(c.z, c.x, c.y)) return;
    rescues.add(key);
    loadImage(tileUrl(c), undefined, "high").then((img) => {
      rescues.delete(key);
      if (img) cache.put(c.z, c.x, c.y, img);
    });
  }

  return { refresh, rescue };
}
