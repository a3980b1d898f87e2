//# allFunctionsCalledOnLoad
// Data calls: the read key from sessionStorage as X-API-Key; errors as ApiError with the API's code.
export const KEY_STORE = "branchpy.telemetry.readKey";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get refusesKey() { return this.status === 401 || this.status === 403; }
}

export function readKey() { return sessionStorage.getItem(KEY_STORE) || ""; }
export function storeKey(key) { sessionStorage.setItem(KEY_STORE, key); }
export function forgetKey() { sessionStorage.removeItem(KEY_STORE); }

/** Move a `#key=…` fragment into sessionStorage and out of the address bar (and history). */
export function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = params.get("key");
  if (key) storeKey(key);
  if (location.hash) history.replaceState(history.state, "", location.pathname + location.search);
}

export async function getJson(base, path, params, signal) {
  const url = new URL(base + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const response = await fetch(url, { headers: { "X-API-Key": readKey() }, signal, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const err = (body && body.error) || {};
    throw new ApiError(response.status, err.code || "http_error", err.message || response.statusText);
  }
  return body;
}
