// early-tiles.js — asks for the far-zoom tiles that cover the opening view as soon as the world
// page's HTML has arrived, before Leaflet and the page's modules have loaded and run (a few
// hundred milliseconds later). map-tiles.js paints its placeholders from those same tiles (it
// asks for them by the same URLs, and the browser hands this document's images over), so a new
// world's whole view shows the world, scaled, that much sooner; the server computes far tiles
// first anyway (they are cheap).
//
// A classic script, the first of the head (after the page data): the parser waits only for this
// small file, and not for any stylesheet; it reads the page data and the window's size. It
// mirrors three facts of the modules: the cover zoom of map-tiles.js (3 zooms out, at most -3,
// at least the far limit), the pixel grid of map-adapter.js (4·2^z px a cell, 256 px tiles) and
// world.js's reading of the #z/x/y hash (z = 0 at cell 0, 0 without a valid one); a browser
// test checks that they agree. The window bounds the map, so the tiles asked for are the cover
// of the view or a little more, never less.
(() => {
  const data = document.getElementById("world-data");
  if (!data) return;
  const world = JSON.parse(data.textContent);
  const limits = world.limits;
  if (world.preparing || !world.tile_url || !limits) return;
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const m = /^#(-?\d+)\/(-?\d+)\/(-?\d+)$/.exec(window.location.hash);
  const [z0, x0, y0] = m ? m.slice(1).map(Number) : [0, 0, 0];
  const z = clamp(z0, limits.zoom_min, limits.zoom_max);
  const x = clamp(x0, -limits.coord_max, limits.coord_max - 1) + 0.5;
  const y = clamp(y0, -limits.coord_max, limits.coord_max - 1) + 0.5;
  const zc = Math.max(limits.zoom_min, Math.min(z - 3, -3));
  if (zc >= z) return;
  const cellPx = 4 * 2 ** zc; // at the cover zoom
  const shrink = 2 ** (z - zc); // view pixels per cover pixel
  const halfW = window.innerWidth / 2 / shrink;
  const halfH = window.innerHeight / 2 / shrink;
  const edge = Math.floor(limits.coord_max / (256 / cellPx)); // tiles from 0 to the world's edge
  const first = (c, half) => Math.max(-edge, Math.floor((c * cellPx - half) / 256));
  const last = (c, half) => Math.min(edge - 1, Math.floor((c * cellPx + half) / 256));
  const early = [];
  for (let ty = first(y, halfH); ty <= last(y, halfH); ty++) {
    for (let tx = first(x, halfW); tx <= last(x, halfW); tx++) {
      const img = new Image();
      img.fetchPriority = "high"; // not held back behind the page's scripts and stylesheets
      img.src = world.tile_url
        .replace("{z}", String(zc))
        .replace("{x}", String(tx))
        .replace("{y}", String(ty));
      early.push(img); // kept until the page goes: the browser reuses them for the same URLs
    }
  }
  window.worldgenEarlyTiles = early;
})();
