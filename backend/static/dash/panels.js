//# allFunctionsCalledOnLoad
// What each panel shows, from the API's answers. Text only (textContent); numbers carry data-value.
import { h, table } from "./dom.js";
import { DASH, change, count, isNum, ms, pct, signedPct, signedPoints, when } from "./format.js";
import { adoptionChart, colour, el } from "./svg.js";

const num = (value, text, cls = "") => h("td", { class: `num ${cls}`.trim(), dataset: { value: value ?? "" } },
                                         text);

function bar(value, max) {
  const svg = el("svg", { class: "minibar", viewBox: "0 0 100 10", preserveAspectRatio: "none",
                          "aria-hidden": "true" });
  svg.append(el("rect", { x: 0, y: 1, height: 8, width: max ? Math.max(0.5, 100 * value / max) : 0 }));
  return svg;
}

/** A name with its catalog description beneath (and as a tooltip). */
function named(name, description) {
  return h("div", { class: "named", title: description || undefined }, h("span", { class: "name" }, name),
           description ? h("span", { class: "desc" }, description) : null);
}

const CARDS = [["events", "Events"], ["errors", "Errors"], ["sessions", "Sessions"], ["installs", "Installs"],
               ["packages", "Packages"], ["last-upload", "Last upload"]];

export function renderCards(stats) {
  const values = { events: [stats.events, count(stats.events)], errors: [stats.errors, count(stats.errors)],
                   sessions: [stats.sessions, count(stats.sessions)], installs: [stats.installs, count(stats.installs)],
                   packages: [stats.packages, count(stats.packages)],
                   "last-upload": [stats.last_upload, when(stats.last_upload)] };
  const share = stats.events ? `${pct(stats.errors / stats.events, 2)} of events` : "";
  return CARDS.map(([id, label]) => h("div", { class: "card" }, h("span", { class: "label" }, label),
    h("span", { class: id === "last-upload" ? "value small" : "value", id: `card-${id}`,
                dataset: { value: values[id][0] ?? "" } }, values[id][1]),
    id === "errors" ? h("span", { class: "sub", id: "card-error-share" }, share) : null));
}

// ---- commands table --------------------------------------------------------------------------

export const COMMAND_COLUMNS = [
  ["name", "Command"], ["count", "Events"], ["count_change", "vs prev."], ["error_rate", "Error rate"],
  ["error_rate_change", "vs prev."], ["p50_ms", "p50"], ["p95_ms", "p95"], ["p95_change", "vs prev."],
  ["max_ms", "Max"],
];

export function commandRows(items) {
  return items.map((it) => ({
    ...it,
    count_change: it.previous ? change(it.count, it.previous.count) : null,
    error_rate_change: it.previous && isNum(it.error_rate) && isNum(it.previous.error_rate)
      ? it.error_rate - it.previous.error_rate : null,
    p95_change: it.previous ? change(it.p95_ms, it.previous.p95_ms) : null,
  }));
}

function sortRows(rows, { key, dir }) {
  const sign = dir === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = a[key], y = b[key];
    if (x === y) return a.name < b.name ? -1 : 1;
    if (x === null || x === undefined) return 1;  // unknown values last, either way
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sign;
  });
}

const trend = (x, worseWhenUp) => (!isNum(x) || Math.abs(x) < 0.005 ? "" : (x > 0) === worseWhenUp ? "worse" : "better");

export function renderCommands(items, describe, sort, { onSort, onPick, picked }) {
  const rows = sortRows(commandRows(items), sort);
  const headers = COMMAND_COLUMNS.map(([key, label]) => h("th", {
    class: key === "name" ? "" : "num", scope: "col", "data-sort": key, tabindex: 0,
    "aria-sort": sort.key === key ? (sort.dir === "asc" ? "ascending" : "descending") : "none",
    onclick: () => onSort(key), onkeydown: (e) => { if (e.key === "Enter") onSort(key); },
  }, label, sort.key === key ? (sort.dir === "asc" ? " ▲" : " ▼") : ""));
  const body = rows.map((r) => h("tr", {
    class: r.name === picked ? "picked clickable" : "clickable", tabindex: 0, "data-name": r.name,
    title: `Show only ${r.name} in every panel`,
    onclick: () => onPick(r.name), onkeydown: (e) => { if (e.key === "Enter") onPick(r.name); },
  },
  h("td", {}, named(r.name, describe(r.category, r.name))),
  num(r.count, count(r.count)),
  num(r.count_change, signedPct(r.count_change), "delta"),
  num(r.error_rate, pct(r.error_rate)),
  num(r.error_rate_change, signedPoints(r.error_rate_change), `delta ${trend(r.error_rate_change, true)}`),
  num(r.p50_ms, ms(r.p50_ms)), num(r.p95_ms, ms(r.p95_ms)),
  num(r.p95_change, signedPct(r.p95_change), `delta ${trend(r.p95_change, true)}`),
  num(r.max_ms, ms(r.max_ms))));
  return table(headers, body);
}

export function renderFeatures(items, describe, onPick) {
  const max = Math.max(0, ...items.map((it) => it.count));
  return table([h("th", {}, "Feature"), h("th", { class: "num" }, "Uses"), h("th", {}, ""),
                h("th", { class: "num" }, "vs prev.")],
  items.map((it) => h("tr", { class: "clickable", "data-name": it.name, onclick: () => onPick(it.name) },
    h("td", {}, named(it.name, describe(it.category, it.name))), num(it.count, count(it.count)),
    h("td", { class: "barcell" }, bar(it.count, max)),
    num(null, signedPct(it.previous ? change(it.count, it.previous.count) : null), "delta"))));
}

export function renderSlo(slo, describe) {
  const cls = (ok) => (ok ? "met" : "missed");
  return table(["Command", "Success (target)", "Budget left", "Burn rate", "p95 (target)"].map(
    (t, i) => h("th", { class: i ? "num" : "" }, t)),
  slo.commands.map((c) => h("tr", { "data-name": c.name },
    h("td", {}, named(c.name, describe(c.category, c.name))),
    num(c.success_rate, `${pct(c.success_rate, 2)} (${pct(slo.success_target, 1)})`, cls(c.success_met)),
    num(c.error_budget_remaining, pct(c.error_budget_remaining, 0), cls(c.error_budget_remaining >= 0)),
    num(c.burn_rate, `${c.burn_rate.toFixed(2)}×`, cls(c.burn_rate <= 1)),
    num(c.p95_ms, `${ms(c.p95_ms)} (${ms(c.p95_target_ms)})`, cls(c.latency_met)))));
}

export function renderKeyTable(label, rows) {
  const max = Math.max(0, ...rows.map((r) => r.events));
  return table([h("th", {}, label), h("th", { class: "num" }, "Events"), h("th", {}, ""),
                h("th", { class: "num" }, "Installs")],
  rows.map((r) => h("tr", { "data-key": r.key }, h("td", {}, r.key || "unknown"), num(r.events, count(r.events)),
                        h("td", { class: "barcell" }, bar(r.events, max)), num(r.installs, count(r.installs)))));
}

export function renderVersions(list, days, range) {
  const keys = list.map((r) => r.key).slice(0, 8);
  const legend = h("p", { class: "legend" }, keys.map((k, i) => {
    const swatch = el("svg", { viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true" });
    swatch.append(el("rect", { width: 10, height: 10, fill: colour(i) }));
    return h("span", { class: "swatch" }, swatch, k);
  }));
  return [h("p", { class: "caption" }, "Installs per day, per version (a day with none is drawn at 0)"),
          h("div", { class: "chart" }, adoptionChart(days, keys, range)), legend, renderKeyTable("Version", list)];
}

export function renderErrors(groups, { onPick, picked }) {
  return table(["Code", "Type", "Commands affected", "Count", "First seen", "Last seen"].map(
    (t, i) => h("th", { class: i === 3 ? "num" : "" }, t)),
  groups.map((g) => h("tr", {
    class: g.error_hash === picked ? "picked clickable" : "clickable", tabindex: 0, "data-hash": g.error_hash,
    title: "List the events of this error", onclick: () => onPick(g.error_hash),
    onkeydown: (e) => { if (e.key === "Enter") onPick(g.error_hash); },
  },
  h("td", { class: "code" }, g.error_code || h("span", { class: "muted" }, g.error_hash.slice(7, 19))),
  h("td", {}, g.error_type || DASH), h("td", {}, (g.commands || [g.name]).join(", ")),
  num(g.count, count(g.count)), h("td", {}, when(g.first_seen)), h("td", {}, when(g.last_seen)))));
}

export function renderSessions(s) {
  return [h("p", { class: "caption" }, `${count(s.count)} sessions started in the range · average `
            + `${ms(s.avg_duration_ms)} · ${s.avg_events.toFixed(1)} events each`),
          table(["Session", "Start", "Duration", "Events", "Errors"].map((t, i) => h("th", { class: i > 2 ? "num" : "" }, t)),
                s.items.map((r) => h("tr", {}, h("td", { class: "mono" }, r.session_id),
                  h("td", {}, when(r.first_ts)), h("td", {}, ms(r.duration_ms)), num(r.events, count(r.events)),
                  num(r.errors, count(r.errors)))))];
}

export function renderEvents(page, onPage) {
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const rows = page.items.map((e) => h("tr", {},
    h("td", {}, when(e.ts)), h("td", {}, e.category), h("td", {}, e.source), h("td", {}, e.name),
    h("td", { class: e.status === "error" ? "missed" : "" }, e.status || DASH),
    num(e.duration_ms, ms(e.duration_ms)), h("td", {}, e.error_code || DASH),
    h("td", { class: "mono" }, e.session_id ? e.session_id.slice(-12) : DASH)));
  const nav = h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { type: "button", disabled: page.page <= 1, onclick: () => onPage(page.page - 1) }, "← Newer"),
    h("span", { "data-total": page.total }, `page ${count(page.page)} of ${count(pages)} · ${count(page.total)} events`),
    h("button", { type: "button", disabled: page.page >= pages, onclick: () => onPage(page.page + 1) }, "Older →"));
  return [table(["Time", "Category", "Source", "Name", "Status", "Duration", "Code", "Session (end)"].map(
    (t, i) => h("th", { class: i === 5 ? "num" : "" }, t)), rows), nav];
}
