// The API, as the console calls it: JSON in and out, errors as ApiError with the server's
// field problems (422) so forms can show them beside their fields. A request that cannot reach
// the API at all raises the "API unreachable" banner until one gets through again.

export class ApiError extends Error {
  constructor(status, body) {
    const fields = (body && body.fields) || [];
    const text = fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    super(text || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.fields = fields;
    this.body = body;
  }
}

const listeners = new Set();
let reachable = true;
const unauthorized = new Set();

/** Call fn() whenever the API refuses the console's key (401): it must sign in again. */
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

/** Call fn(reachable) whenever the API's reachability changes. */
export function onReachability(fn) {
  listeners.add(fn);
  fn(reachable);
  return () => listeners.delete(fn);
}

export function setReachable(value) {
  if (value === reachable) return;
  reachable = value;
  for (const fn of listeners) fn(value);
}

/**
 * api("/v1/tasks", {method: "POST", json: {...}}) -> parsed JSON (or null for 204).
 * `body` sends raw bytes (uploads); `query` adds URL parameters, skipping empty values.
 */
export async function api(path, { method = "GET", json, body, query, headers = {} } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value != null && value !== "") params.set(key, String(value));
    }
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    setReachable(false);
    throw new ApiError(0, { message: "the API cannot be reached" });
  }
  setReachable(true); // any answer, even an error, means the API is there
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (response.status === 401 && path !== "/v1/session") for (const fn of unauthorized) fn();
  if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : { message: data });
  return data;
}

/** The console's user: what the task list filters on by default (kept in the browser). */
export function consoleUser() {
  return localStorage.getItem("genqueue.user") || "console";
}

export function setConsoleUser(user) {
  localStorage.setItem("genqueue.user", user || "console");
}
