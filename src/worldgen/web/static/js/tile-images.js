// tile-images.js — loading map tile images and keeping the decoded ones (for map-tiles.js): a
// tile's key, the cache of decoded images its placeholders paint from, and image loads that can
// be aborted, retried, and asked for ahead of others.

const CACHE_MAX = 600; // decoded tile images kept for placeholders (about 150 MB at most)
const RETRY_DELAYS_MS = [1000, 3000, 9000]; // a failed tile is asked for again after these
const EMPTY_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAIBTAA7";

export const keyOf = (z, x, y) => `${z}/${x}/${y}`;

// Loaded tile images by z/x/y, least recently used first out. `onPut` listeners learn of every
// new image (so waiting placeholders can use it).
export class TileImages {
  constructor() {
    this.images = new Map();
    this.listeners = [];
  }

  get(z, x, y) {
    const key = keyOf(z, x, y);
    const img = this.images.get(key);
    if (img) {
      this.images.delete(key);
      this.images.set(key, img);
    }
    return img;
  }

  has(z, x, y) {
    return this.images.has(keyOf(z, x, y));
  }

  put(z, x, y, img) {
    const key = keyOf(z, x, y);
    this.images.delete(key);
    this.images.set(key, img);
    while (this.images.size > CACHE_MAX) this.images.delete(this.images.keys().next().value);
    for (const fn of this.listeners) fn(z, x, y, img);
  }
}

// Load one image; resolves to it once decoded (null on error or abort). `priority` "high": the
// browser gives it the next free connection before the other images waiting for one.
export function loadImage(url, signal, priority = "auto") {
  return new Promise((resolve) => {
    const img = new Image();
    img.alt = "";
    img.decoding = "async";
    img.fetchPriority = priority;
    const finish = (ok) => {
      img.onload = img.onerror = null;
      if (!ok) {
        resolve(null);
        return;
      }
      img.decode().then(
        () => resolve(img),
        () => resolve(img),
      );
    };
    img.onload = () => finish(true);
    img.onerror = () => finish(false);
    signal?.addEventListener("abort", () => {
      if (!img.complete) {
        img.onload = img.onerror = null;
        img.src = EMPTY_GIF;
        resolve(null);
      }
    });
    img.src = url;
  });
}

// loadImage, tried again after RETRY_DELAYS_MS (with jitter) when it fails: a busy server
// answers 503 and asks for a retry. Resolves to null once every try failed or on abort.
export async function loadWithRetries(url, signal) {
  for (let attempt = 0; ; attempt++) {
    const img = await loadImage(url, signal);
    if (img || signal.aborted || attempt >= RETRY_DELAYS_MS.length) return img;
    const delay = RETRY_DELAYS_MS[attempt] * (0.75 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (signal.aborted) return null;
  }
}
