// api.js — the one place that talks to the server over HTTP: every JSON call, every download,
// with a timeout, and errors turned into short, human-readable messages (ApiError.message) that
// pages show inline. No other module calls fetch.

const TIMEOUT_MS = 120_000;

export class ApiError extends Error {
  // status: the HTTP status (0 when the server was not reached); body: the parsed JSON error
  // body or null; retryAfter: seconds from a Retry-After header (429, 503) or null.
  constructor(message, status, { body = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

// FastAPI answers {"detail": "text"} or, for validation errors, {"detail": [{loc, msg}, ...]}.
function detailMessage(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((d) => {
        const path = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body") : [];
        const field = path.join(".");
        // pydantic prefixes a validator's own words with "Value error, ": not for people.
        const msg = String(d.msg).replace(/^Value error, /, "");
        // A message that names its field ("the name has 300 characters…") needs no prefix.
        const last = String(path[path.length - 1] ?? "");
        if (last && msg.toLowerCase().includes(last.toLowerCase())) {
          return msg.charAt(0).toUpperCase() + msg.slice(1);
        }
        return field ? `${field}: ${msg}` : msg;
      })
      .join("; ");
  }
  if (status === 429) return "Too many attempts; wait a little and try again.";
  if (status === 503) return "The server is busy or its storage is unavailable; try again.";
  return `The server answered ${status}.`;
}

// Retry-After is either seconds or an HTTP date; null when absent or unreadable.
function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

async function request(method, url, { json, form, accept = "application/json" } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const init = { method, headers: { Accept: accept }, signal: controller.signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  if (form !== undefined) init.body = form; // multipart: the browser writes the boundary
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    const why = err.name === "AbortError" ? "timed out" : "could not reach the server";
    throw new ApiError(`The request ${why}; check your connection and try again.`, 0);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's error page): fall back to the status code.
    }
    throw new ApiError(detailMessage(body, response.status), response.status, {
      body,
      retryAfter: retryAfterSeconds(response),
    });
  }
  return response;
}

// The JSON body of a successful answer; null for 204 No Content.
async function jsonOf(response) {
  return response.status === 204 ? null : response.json();
}

export async function getJSON(url) {
  return jsonOf(await request("GET", url));
}

export async function postJSON(url, body) {
  return jsonOf(await request("POST", url, { json: body }));
}

export async function patchJSON(url, body) {
  return jsonOf(await request("PATCH", url, { json: body }));
}

export async function deleteJSON(url) {
  return jsonOf(await request("DELETE", url));
}

export async function getBlob(url) {
  return (await request("GET", url, { accept: "image/png" })).blob();
}

// The API's paths, built in one place (ids are escaped).
export const paths = {
  world: (id) => `/api/worlds/${encodeURIComponent(id)}`,
  me: "/api/auth/me",
  logout: "/api/auth/logout",
  auth: (action) => `/api/auth/${action}`,
  tilesets: "/api/tilesets",
  worlds: "/api/worlds",
  invitePreview: "/api/invites/preview",
  inviteAccept: "/api/invites/accept",
};

// Map edits and markers of a world (POST answers carry the operation and the new version).
export const edits = {
  access: (id) => getJSON(`${paths.world(id)}/access`),
  apply: (id, op) => postJSON(`${paths.world(id)}/edits`, op),
  log: (id, after = 0) => getJSON(`${paths.world(id)}/edits?${new URLSearchParams({ after })}`),
  undo: (id) => postJSON(`${paths.world(id)}/undo`, {}),
  redo: (id) => postJSON(`${paths.world(id)}/redo`, {}),
  restore: (id, version) => postJSON(`${paths.world(id)}/restore`, { version }),
  locks: (id, r) => getJSON(`${paths.world(id)}/locks?${new URLSearchParams(r)}`),
  labels: (id) => getJSON(`${paths.world(id)}/region?${new URLSearchParams({ x: 0, y: 0, w: 1, h: 1 })}`),
  markers: (id) => getJSON(`${paths.world(id)}/markers`),
  addMarker: (id, marker) => postJSON(`${paths.world(id)}/markers`, marker),
  updateMarker: (id, markerId, changes) =>
    patchJSON(`${paths.world(id)}/markers/${encodeURIComponent(markerId)}`, changes),
  deleteMarker: (id, markerId) =>
    deleteJSON(`${paths.world(id)}/markers/${encodeURIComponent(markerId)}`),
};

// Background jobs (large exports): queue one, read its state; the result is a plain link.
export const jobs = {
  exportPng: (worldId, region) => postJSON(`${paths.world(worldId)}/exports`, region),
  get: (jobId) => getJSON(`/api/jobs/${encodeURIComponent(jobId)}`),
  mine: (worldId) => getJSON(`/api/jobs?${new URLSearchParams({ world_id: worldId })}`),
  cancel: (jobId) => deleteJSON(`/api/jobs/${encodeURIComponent(jobId)}`),
};

// Uploaded models (a sample PNG or a tileset zip) and the preparation of worlds made from them.
export const models = {
  list: () => getJSON("/api/models"),
  upload: async (formData) => jsonOf(await request("POST", "/api/models", { form: formData })),
  preparation: (worldId) => getJSON(`${paths.world(worldId)}/preparation`),
  retry: (worldId) => postJSON(`${paths.world(worldId)}/preparation`, {}),
};
