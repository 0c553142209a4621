// edit-reveal.js — an edit's change revealed in the order the solver decided its cells
// (issue 14, "watch it collapse"). The server sends, with each applied edit, the change's box
// cut into squares of step x step cells, one byte each: the first of `frames` steps in which a
// cell of the square was decided (255: no cell of it changed). edit-tools.js decodes it; the
// tile layer (map-tiles.js) plays it on each reloaded tile over about a second.

import { el } from "./dom.js";

const TILE_PX = 256;

// An edit's reveal as the server sends it (data: base64 of one byte per square, row by row) to
// what the map plays: the changed cells in the order the solver decided them.
export function decodeReveal(reveal) {
  if (!reveal?.data) return null;
  const bytes = atob(reveal.data);
  const squares = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) squares[i] = bytes.charCodeAt(i);
  if (squares.length !== reveal.w * reveal.h) return null;
  return { ...reveal, squares };
}

// The new image of an edited tile, revealed in the order the solver decided its cells:
// `reveal` ({x, y, step, w, h, frames, squares}: edit-tools.js) gives, for each square of
// step x step cells of the change's box, the first of `frames` steps in which one of its cells
// was decided (255: none changed). A canvas over the old image receives each step's squares
// from the new image, over `duration` ms; then the image replaces the canvas and `done` runs.
export function revealInOrder(tile, img, coords, reveal, duration, done) {
  const n = TILE_PX / (4 * 2 ** coords.z); // cells along the tile
  const px = TILE_PX / n; // pixels along a cell (below 1 at far zooms)
  const buckets = Array.from({ length: reveal.frames }, () => []);
  const size = reveal.step * px;
  for (let j = 0; j < reveal.h; j++) {
    const dy = (reveal.y + j * reveal.step - coords.y * n) * px;
    if (dy >= TILE_PX || dy + size <= 0) continue;
    for (let i = 0; i < reveal.w; i++) {
      const frame = reveal.squares[j * reveal.w + i];
      const dx = (reveal.x + i * reveal.step - coords.x * n) * px;
      if (frame === 255 || dx >= TILE_PX || dx + size <= 0) continue;
      buckets[Math.min(frame, reveal.frames - 1)].push([dx, dy]);
    }
  }
  const canvas = el("canvas", {
    class: "world-tile-image world-tile-ordered",
    width: TILE_PX,
    height: TILE_PX,
  });
  tile.append(canvas);
  const ctx = canvas.getContext("2d");
  const started = performance.now();
  let shown = -1;
  const step = (now) => {
    const due = Math.min(
      reveal.frames - 1,
      Math.floor(((now - started) / duration) * reveal.frames),
    );
    while (shown < due) {
      shown += 1;
      for (const [dx, dy] of buckets[shown]) {
        ctx.drawImage(img, dx, dy, size, size, dx, dy, size, size);
      }
    }
    if (shown < reveal.frames - 1 && tile.isConnected) {
      requestAnimationFrame(step);
      return;
    }
    img.className = "world-tile-image world-tile-edited world-tile-ordered";
    tile.append(img);
    canvas.remove();
    done();
  };
  requestAnimationFrame(step);
}
