//# allFunctionsCalledOnLoad
// BranchPy telemetry dashboard: ES modules, no dependencies, no build step, no CDN.
// Each module's first line asks V8 to compile all its functions with the module, and to keep them in the
// code cache: nearly all of them run for the first render, which otherwise compiles each on the main
// thread when it is first called, between an answer and its panel (4-7 ms of every load, cache or not).
// The filter bar lives in the URL's query string; the read key in sessionStorage only.
// Every load has a generation: an answer that arrives after the filters changed is dropped.
import { ApiError, forgetKey, getJson, readKey, storeKey, takeKeyFromFragment } from "./dash/api.js";
import { $, setPanel, setScope } from "./dash/dom.js";
import * as P from "./dash/panels.js";
import { BUCKET_SECONDS, FIELD_LABELS, RANGES, activeFields, apiParams, readState, writeState } from "./dash/state.js";
import { timelineChart } from "./dash/svg.js";

const API = document.body.dataset.api;
let state = readState();
let generation = 0;
let inFlight = null;
let sort = { key: "count", dir: "desc" };
let lastNames = null;
const descriptions = new Map();
const describe = (category, name) => descriptions.get(`${category}/${name}`) || "";
// Settles (never fails) once the catalog's descriptions are in, or could not be had: the panels that show
// descriptions wait for it, so each is drawn once, with them.
let catalogLoaded = Promise.resolve();

// panel id -> the filters its data honours (the range always)
const HONOURS = {
  "p-cards": ["category", "source", "name", "version"], "p-timeline": ["category", "source", "name", "version"],
  "p-commands": ["category", "source", "name", "version"], "p-features": ["category", "source", "name", "version"],
  "p-slo": ["category", "source", "name", "version"], "p-versions": ["category", "source", "name", "version"],
  "p-platform": ["category", "source", "name", "version"], "p-errors": ["category", "name"], "p-sessions": [],
  "p-events": ["category", "source", "name"],
};
const NOTES = {
  "p-cards": "Sessions and packages are counted over the range only, installs under the version filter only: "
    + "none of them belongs to one command.",
  "p-commands": "p50/p95 cover every source and version of a command.",
  "p-errors": "Error groups are kept per command, not per source or version.",
  "p-sessions": "A session spans several commands, sources and versions.",
  "p-events": "An event does not record its version.",
};

/** What a panel says when a filter is set that its data cannot honour (or honours only in part). */
function scopeNote(id) {
  const ignored = activeFields(state).filter((f) => !HONOURS[id].includes(f));
  const partly = { "p-cards": activeFields(state).length, "p-commands": state.source || state.version };
  if (ignored.length) return `Not narrowed by ${ignored.map((f) => FIELD_LABELS[f]).join(", ")}. ${NOTES[id]}`;
  return partly[id] ? NOTES[id] : "";
}

function syncControls() {
  for (const k of ["range", "category", "source", "name", "version"]) {
    const select = $(`f-${k}`);
    if (state[k] && ![...select.options].some((o) => o.value === state[k])) {
      select.append(new Option(state[k], state[k]));
    }
    select.value = state[k] || "";
  }
  $("f-clear").disabled = !activeFields(state).length && !state.error;
}

function setFilters(change, { push = true } = {}) {
  state = { ...state, page: 1, ...change };
  if (push) writeState(state);
  syncControls();
  load();
}

function fillOptions(id, values) {
  const select = $(id), keep = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  for (const v of values) if (v && !known.has(v)) { select.append(new Option(v, v)); known.add(v); }
  select.value = keep;
}

// ---- loading ----------------------------------------------------------------------------------

function authFailed(err) {
  forgetKey();
  showKeyForm(`The key was refused (${err.code}): enter a key with the read scope.`);
}

/** Render into the panel once its answers are in, unless a newer load has started since. */
async function panel(id, gen, answers, render, isEmpty, emptyText) {
  setPanel(id, "loading", "Loading…");
  setScope(id, scopeNote(id));
  try {
    const data = await Promise.all(answers);
    if (gen !== generation) return "stale";
    const started = performance.now();
    if (isEmpty && isEmpty(...data)) setPanel(id, "empty", emptyText);
    else setPanel(id, "ready", render(...data));
    performance.measure(`render ${id}`, { start: started, end: performance.now() });
    return "ok";
  } catch (err) {
    if (gen !== generation || err.name === "AbortError") return "stale";
    if (err instanceof ApiError && err.refusesKey) return err;
    setPanel(id, "error", `Could not load this panel: ${err.message}${err.code ? ` (${err.code})` : ""}`);
    return "error";
  }
}

async function load() {
  if (!readKey()) return showKeyForm("Enter a read key to see the data.");
  const gen = ++generation;
  performance.mark(`dashboard-load-${gen}`);
  if (inFlight) inFlight.abort();
  const controller = inFlight = new AbortController();
  // every request leaves before any panel is touched (the browser runs six at a time)
  const get = (path, params) => {
    const answer = getJson(API, path, params, controller.signal);
    answer.catch(() => {});  // handled by its panel; never an unhandled rejection
    return answer;
  };
  const range = RANGES[state.range], bucket = range.bucket, now = Date.now();
  const window = apiParams(state);
  const span = { start: now - range.seconds * 1000, end: now, stepMs: BUCKET_SECONDS[bucket] * 1000 };
  document.body.dataset.state = "loading";
  document.body.dataset.generation = gen;
  setStatus(`Loading ${range.label}…`);
  $("timeline-caption").textContent = `1 bar = 1 ${bucket} (UTC) · ${RANGES[state.range].label} · `
    + "blue: events, red: errors; an empty bucket is a gap";
  const calls = {
    errors: get("/errors/recent", { ...apiParams(state, ["category", "name"]), limit: 20 }),
    platform: get("/aggregate/platform", window),
    names: get("/aggregate/name", window),
    versions: get("/aggregate/version", window),
    adoption: get("/aggregate/version/timeline", window),
    stats: get("/stats", window),
    timeline: get("/aggregate/timeline", { ...window, bucket }),
    slo: get("/errors/slo", window),
    sessions: get("/sessions", { from: state.range, limit: 15 }),
    events: get("/events", { ...apiParams(state, ["category", "source", "name"]), error_hash: state.error,
                             page: state.page, per_page: 25 }),
  };
  performance.mark(`dashboard-sent-${gen}`);  // every call issued (tests/bench reports the time it took)
  const pick = (name) => setFilters({ name: state.name === name ? "" : name });
  const results = await Promise.all([
    panel("p-cards", gen, [calls.stats], P.renderCards),
    panel("p-timeline", gen, [calls.timeline], (rows) => timelineChart(rows, span)),
    panel("p-commands", gen, [calls.names, catalogLoaded], (report) => {
      lastNames = report;
      return renderCommandsTable();
    }, (r) => !commandItems(r).length, "No command in this range and selection."),
    panel("p-features", gen, [calls.names, catalogLoaded], (r) => P.renderFeatures(featureItems(r), describe, pick),
          (r) => !featureItems(r).length, "No feature used in this range and selection."),
    panel("p-slo", gen, [calls.slo, catalogLoaded], (slo) => P.renderSlo(slo, describe),
          (slo) => !slo.commands.length, "No command reported a status in this range."),
    panel("p-versions", gen, [calls.versions, calls.adoption], (list, days) => {
      fillOptions("f-version", list.map((r) => r.key));
      return P.renderVersions(list, days, span);
    }, (list) => !list.length, "No version seen in this range."),
    panel("p-platform", gen, [calls.platform],
          (p) => [P.renderKeyTable("OS", p.os), P.renderKeyTable("Python", p.python)],
          (p) => !p.os.length, "No platform seen in this range."),
    panel("p-errors", gen, [calls.errors], (groups) => P.renderErrors(groups, { onPick: pickError, picked: state.error }),
          (g) => !g.length, "No error in this range."),
    panel("p-sessions", gen, [calls.sessions], P.renderSessions,
          (s) => !s.count && !s.items.length, "No session started in this range."),
    panel("p-events", gen, [calls.events],
          (page) => P.renderEvents(page, (n) => { state.page = n; writeState(state); load(); }),
          (page) => !page.total, state.error ? "No event of this error in this range." : "No event in this range."),
  ]);
  if (gen !== generation) return;
  calls.names.then((r) => fillOptions("f-name", r.items.map((it) => it.name))).catch(() => {});
  const refused = results.find((r) => r instanceof ApiError);
  if (refused) return authFailed(refused);
  const failed = results.filter((r) => r === "error").length;
  document.body.dataset.state = failed ? "error" : "ready";
  performance.mark(`dashboard-ready-${gen}`);  // every panel drawn (tests/bench measures the first)
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ");
  setStatus(failed ? `${failed} panel(s) could not be loaded; see them below.`
                   : `Updated ${stamp} UTC · ${range.label}${describeFilters()}`, failed ? "error" : "");
}

const describeFilters = () => activeFields(state).map((f) => ` · ${FIELD_LABELS[f]} ${state[f]}`).join("")
  + (state.error ? " · one error group" : "");

function commandItems(report) {
  const category = state.category || "command";
  return report.items.filter((it) => it.category === category);
}
const featureItems = (report) => report.items.filter((it) => it.category === "feature");

function renderCommandsTable() {
  return P.renderCommands(commandItems(lastNames), describe, sort, {
    picked: state.name,
    onPick: (name) => setFilters({ name: state.name === name ? "" : name }),
    onSort: (key) => {
      sort = { key, dir: sort.key === key && sort.dir === "desc" ? "asc" : "desc" };
      setPanel("p-commands", "ready", renderCommandsTable());
    },
  });
}

function pickError(hash) {
  setFilters({ error: state.error === hash ? "" : hash });
  $("p-events").scrollIntoView({ block: "start" });
}

function setStatus(text, cls = "") {
  const node = $("status");
  node.textContent = text;
  node.className = cls;
}

function showKeyForm(message) {
  $("key-form").hidden = false;
  $("forget-key").hidden = true;
  document.body.dataset.state = "needs-key";
  setStatus(message, message.startsWith("The key was refused") ? "error" : "");
  $("key-input").focus();
}

function loadCatalog() {
  catalogLoaded = getJson(API, "/catalog", {}).then((catalog) => {
    for (const ev of catalog.events) descriptions.set(`${ev.category}/${ev.name}`, ev.description);
    fillOptions("f-name", catalog.events.filter((ev) => ev.category === "command" || ev.category === "feature")
                                   .map((ev) => ev.name).sort());
  }, (err) => {
    if (!(err instanceof ApiError && err.refusesKey)) setStatus(`The catalog could not be loaded: ${err.message}`);
  });
}

function start() {
  takeKeyFromFragment();
  writeState(state, { replace: true });
  syncControls();
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    storeKey($("key-input").value.trim());
    $("key-input").value = "";
    $("key-form").hidden = true;
    $("forget-key").hidden = false;
    loadCatalog();
    load();
  });
  $("forget-key").addEventListener("click", () => { forgetKey(); showKeyForm("Enter a read key to see the data."); });
  for (const k of ["range", "category", "source", "name", "version"]) {
    $(`f-${k}`).addEventListener("change", (ev) => setFilters({ [k]: ev.target.value }));
  }
  $("f-clear").addEventListener("click", () => setFilters({ category: "", source: "", name: "", version: "", error: "" }));
  window.addEventListener("popstate", () => { state = readState(); syncControls(); load(); });
  if (readKey()) {
    $("forget-key").hidden = false;
    loadCatalog();
    load();
  } else {
    showKeyForm("Enter a read key to see the data.");
  }
}

start();
