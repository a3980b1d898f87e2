//# allFunctionsCalledOnLoad
// The filter bar's state, kept in the URL's query string (never the key).
export const RANGES = {
  "24h": { label: "24 hours", bucket: "hour", seconds: 86400 },
  "7d": { label: "7 days", bucket: "hour", seconds: 7 * 86400 },
  "30d": { label: "30 days", bucket: "day", seconds: 30 * 86400 },
  "90d": { label: "90 days", bucket: "day", seconds: 90 * 86400 },
  "365d": { label: "1 year", bucket: "day", seconds: 365 * 86400 },
};
export const BUCKET_SECONDS = { hour: 3600, day: 86400 };
export const FIELDS = ["category", "source", "name", "version"];
const CATEGORIES = ["command", "feature", "error", "performance", "session", "system"];
const SOURCES = ["cli", "extension", "daemon"];
const MAX_TEXT = 200;

export function readState(search = location.search) {
  const q = new URLSearchParams(search);
  const text = (k) => { const v = q.get(k) || ""; return v.length <= MAX_TEXT ? v : ""; };
  const page = Number.parseInt(q.get("page") || "1", 10);
  return {
    range: q.get("range") in RANGES ? q.get("range") : "7d",
    category: CATEGORIES.includes(q.get("category")) ? q.get("category") : "",
    source: SOURCES.includes(q.get("source")) ? q.get("source") : "",
    name: text("name"),
    version: text("version"),
    error: text("error"),  // the events explorer's error group
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

export function toSearch(state) {
  const q = new URLSearchParams();
  if (state.range !== "7d") q.set("range", state.range);
  for (const k of [...FIELDS, "error"]) if (state[k]) q.set(k, state[k]);
  if (state.page > 1) q.set("page", String(state.page));
  const s = q.toString();
  return s ? "?" + s : "";
}

export function writeState(state, { replace = false } = {}) {
  const url = location.pathname + toSearch(state);
  if (url === location.pathname + location.search) return;
  (replace ? history.replaceState : history.pushState).call(history, null, "", url);
}

/** The API's parameters for a state: a window back from now and the filters that are set. */
export function apiParams(state, fields = FIELDS) {
  const out = { from: state.range };
  for (const k of fields) if (state[k]) out[k] = state[k];
  return out;
}

export const activeFields = (state) => FIELDS.filter((k) => state[k]);
export const FIELD_LABELS = { category: "category", source: "source", name: "command", version: "version" };
