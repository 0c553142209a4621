// api.js — the one place that talks to the JSON API: fetch with a timeout, and errors turned
// into short, human-readable messages (ApiError.message) that pages show inline.

const TIMEOUT_MS = 120_000;

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

// FastAPI answers {"detail": "text"} or, for validation errors, {"detail": [{loc, msg}, ...]}.
function detailMessage(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((d) => {
        const field = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return field ? `${field}: ${d.msg}` : String(d.msg);
      })
      .join("; ");
  }
  if (status === 503) return "The server is busy or its storage is unavailable; try again.";
  return `The server answered ${status}.`;
}

async function request(method, url, { json, accept = "application/json" } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const init = { method, headers: { Accept: accept }, signal: controller.signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
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
    throw new ApiError(detailMessage(body, response.status), response.status);
  }
  return response;
}

export async function getJSON(url) {
  return (await request("GET", url)).json();
}

export async function postJSON(url, body) {
  return (await request("POST", url, { json: body })).json();
}

export async function getBlob(url) {
  return (await request("GET", url, { accept: "image/png" })).blob();
}
