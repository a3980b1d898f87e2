/* BranchPy telemetry dashboard: plain JS, no dependencies, no CDN.
 * The read key comes from the URL fragment (#key=…, removed from the address
 * bar at once) or the form, is kept in sessionStorage only, and is sent as
 * X-API-Key with every data call. All data is written with textContent. */
"use strict";

const API = document.body.dataset.api;
const STORE = "branchpy.telemetry.readKey";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = params.get("key");
  if (key) {
    sessionStorage.setItem(STORE, key);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function getJson(path, params) {
  const url = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { "X-API-Key": sessionStorage.getItem(STORE) || "" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = body.error || {};
    throw new ApiError(response.status, err.code || "http_error", err.message || response.statusText);
  }
  return body;
}

const fmt = (n) => (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en-US");
const pct = (x) => (x === null || x === undefined) ? "–" : (x * 100).toFixed(2) + " %";
function ms(x) {
  if (x === null || x === undefined) return "–";
  if (x < 1000) return Math.round(x) + " ms";
  if (x < 60000) return (x / 1000).toFixed(1) + " s";
  if (x < 3600000) return (x / 60000).toFixed(1) + " min";
  return (x / 3600000).toFixed(1) + " h";
}
const when = (ts) => ts ? ts.replace("T", " ").replace(/\.\d+Z$/, " UTC") : "–";

function setText(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function empty(container, message) {
  container.replaceChildren();
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = message;
  container.append(p);
}

function drawTimeline(container, rows) {
  if (!rows.length) return empty(container, "No events in this range.");
  const W = 900, H = 220, pad = 30, max = Math.max(...rows.map((r) => r.count));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "events per bucket" });
  const bw = (W - 2 * pad) / rows.length;
  rows.forEach((r, i) => {
    const h = (H - 2 * pad) * r.count / max, he = (H - 2 * pad) * r.errors / max;
    const x = pad + i * bw, w = Math.max(1, bw - 1);
    const bar = svgEl("rect", { class: "bar", x, y: H - pad - h, width: w, height: h });
    bar.append(svgEl("title", {}, `${when(r.bucket)}: ${r.count} events, ${r.errors} errors`));
    svg.append(bar, svgEl("rect", { class: "err", x, y: H - pad - he, width: w, height: he }));
  });
  svg.append(svgEl("text", { x: pad, y: H - 8 }, when(rows[0].bucket)),
             svgEl("text", { x: W - pad, y: H - 8, "text-anchor": "end" }, when(rows[rows.length - 1].bucket)),
             svgEl("text", { x: pad, y: pad - 10 }, `max ${fmt(max)} / bucket`));
  container.replaceChildren(svg);
}

function drawBars(container, rows) {
  if (!rows.length) return empty(container, "No events in this range.");
  const W = 420, row = 24, label = 110, H = rows.length * row + 4, max = Math.max(...rows.map((r) => r.count));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  rows.forEach((r, i) => {
    const y = i * row + 2, w = (W - label - 70) * r.count / max;
    svg.append(svgEl("text", { x: 0, y: y + 15 }, r.key),
               svgEl("rect", { class: "bar", x: label, y, width: Math.max(1, w), height: row - 6 }),
               svgEl("text", { x: label + w + 6, y: y + 15, "data-key": r.key }, fmt(r.count)));
  });
  container.replaceChildren(svg);
}

function fillTable(id, rows, cells) {
  const body = $(id);
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = 5; td.className = "empty"; td.textContent = "Nothing yet.";
    tr.append(td); body.append(tr); return;
  }
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const text of cells(r)) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
}

async function load() {
  const range = $("range").value;
  const bucket = ["24h", "7d"].includes(range) ? "hour" : "day";
  const window = { from: range };
  document.body.dataset.state = "loading";
  setText("status", "Loading…", "");
  try {
    const [stats, timeline, cats, srcs, errs, slo, sessions] = await Promise.all([
      getJson("/stats"), getJson("/aggregate/timeline", { ...window, bucket }),
      getJson("/aggregate/category", window), getJson("/aggregate/source", window),
      getJson("/errors/recent", { limit: 10 }), getJson("/errors/slo", window),
      getJson("/sessions", { ...window, limit: 20 }),
    ]);
    setText("card-events", fmt(stats.events));
    setText("card-packages", fmt(stats.packages));
    setText("card-sessions", fmt(stats.sessions));
    setText("card-errors", fmt(stats.errors));
    setText("card-installs", fmt(stats.installs));
    setText("card-last-upload", when(stats.last_upload));
    drawTimeline($("timeline"), timeline);
    drawBars($("categories"), cats);
    drawBars($("sources"), srcs);
    fillTable("errors-body", errs, (e) => [e.error_code || e.error_hash.slice(0, 15), e.name || "–", fmt(e.count), when(e.last_seen)]);
    setText("slo-success", `${pct(slo.success_rate)} (target ${pct(slo.success_target)})`, slo.success_met ? "met" : "missed");
    setText("slo-budget", pct(slo.error_budget_remaining), slo.error_budget_remaining >= 0 ? "met" : "missed");
    setText("slo-burn", slo.burn_rate.toFixed(2) + "×", slo.burn_rate <= 1 ? "met" : "missed");
    setText("slo-p95", `${ms(slo.p95_ms)} (target ${ms(slo.p95_target_ms)})`, slo.latency_met ? "met" : "missed");
    setText("sessions-summary", `${fmt(sessions.count)} sessions · avg ${ms(sessions.avg_duration_ms)} · ${sessions.avg_events.toFixed(1)} events each`);
    fillTable("sessions-body", sessions.items, (s) => [s.session_id, when(s.first_ts), ms(s.duration_ms), fmt(s.events), fmt(s.errors)]);
    setText("status", `Updated ${new Date().toISOString().replace("T", " ").slice(0, 19)} UTC · range ${range}`, "");
    document.body.dataset.state = "ready";
  } catch (err) {
    document.body.dataset.state = "error";
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      sessionStorage.removeItem(STORE);
      showKeyForm();
      setText("status", `The key was refused (${err.code}): enter a key with the read scope.`, "error");
    } else {
      setText("status", `Could not load the data: ${err.message}`, "error");
    }
  }
}

function showKeyForm() {
  $("key-form").hidden = false;
  $("forget-key").hidden = true;
}

function start() {
  takeKeyFromFragment();
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(STORE, $("key-input").value.trim());
    $("key-input").value = "";
    $("key-form").hidden = true;
    $("forget-key").hidden = false;
    load();
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    showKeyForm();
    document.body.dataset.state = "needs-key";
    setText("status", "Enter a read key to see the data.", "");
  });
  $("range").addEventListener("change", load);
  if (sessionStorage.getItem(STORE)) {
    $("forget-key").hidden = false;
    load();
  } else {
    showKeyForm();
    document.body.dataset.state = "needs-key";
    setText("status", "Enter a read key to see the data.", "");
  }
}

start();
