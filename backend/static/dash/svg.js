//# allFunctionsCalledOnLoad
// Charts drawn as SVG: a real time axis (every bucket of the range, empty ones too), y ticks, labels.
import { count, dateLabel, dayLabel, hourLabel, monthDay } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const HOUR = 3600e3, DAY = 86400e3;

export function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const k in attrs) node.setAttribute(k, String(attrs[k]));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A "nice" axis maximum (1, 2, 2.5 or 5 times a power of ten) and its ticks. */
export function niceTicks(max, wanted = 4) {
  if (!(max > 0)) return { top: 1, ticks: [0, 1] };
  const rough = max / wanted, power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const whole = step >= 1 ? step : 1;
  const top = Math.ceil(max / whole) * whole;
  const ticks = [];
  for (let v = 0; v <= top + 1e-9; v += whole) ticks.push(v);
  return { top, ticks };
}

/** Every bucket start in [start, end) (ms since epoch), aligned to UTC hours or days. */
export function bucketStarts(start, end, stepMs) {
  const first = Math.floor(start / stepMs) * stepMs, out = [];
  for (let t = first; t < end; t += stepMs) out.push(t);
  return out;
}

function xTicks(starts, stepMs) {
  const span = starts.length * stepMs;
  let every, label;
  if (stepMs === HOUR && span <= 2 * DAY) { every = 3 * HOUR; label = hourLabel; }
  else if (span <= 8 * DAY) { every = DAY; label = dayLabel; }
  else if (span <= 31 * DAY) { every = (W < 600 ? 7 : 2) * DAY; label = monthDay; }
  else if (span <= 100 * DAY) { every = 7 * DAY; label = monthDay; }
  else { every = 30 * DAY; label = dateLabel; }
  return starts.map((t, i) => [t, i]).filter(([t]) => t % every === 0).map(([t, i]) => ({ i, text: label(t) }));
}

let W = 900, H = 230;
const L = 52, R = 10, T = 12, B = 34;

function frame(label, max, size = [900, 230]) {
  [W, H] = size;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const { top, ticks } = niceTicks(max);
  const y = (v) => H - B - (H - T - B) * v / top;
  for (const v of ticks) {
    svg.append(el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
               el("text", { class: "ytick", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, count(v)));
  }
  return { svg, y };
}

function axis(svg, starts, stepMs) {
  const bw = (W - L - R) / starts.length;
  for (const { i, text } of xTicks(starts, stepMs)) {
    const x = L + i * bw;
    svg.append(el("line", { class: "xtick", x1: x, x2: x, y1: H - B, y2: H - B + 5 }));
    if (x < W - R - 34) svg.append(el("text", { class: "xlabel", x: x + 2, y: H - B + 17 }, text));  // else clipped
  }
  svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  return bw;
}

/** Events and errors per bucket over [start, end): one bar per bucket (an empty bucket draws nothing), its
 *  errors overlaid in red. The overlay is one path for all buckets, not a rect each: a week of hourly
 *  buckets would be 168 more elements (a tenth of the page's) to style and lay out on the first frame. */
export function timelineChart(rows, { start, end, stepMs }) {
  const starts = bucketStarts(start, end, stepMs);
  const byStart = new Map(rows.map((r) => [Date.parse(r.bucket), r]));
  const max = Math.max(0, ...rows.map((r) => r.count));
  const { svg, y } = frame("events and errors per bucket", max);
  const bw = axis(svg, starts, stepMs);
  const errors = [];
  let empty = 0;
  starts.forEach((t, i) => {
    const r = byStart.get(t);
    if (!r || !r.count) { empty += 1; return; }
    const x = L + i * bw + (bw > 3 ? 0.5 : 0), w = Math.max(1, bw - (bw > 3 ? 1 : 0));
    const bar = el("rect", { class: "bar", x, y: y(r.count), width: w, height: y(0) - y(r.count),
                             "data-bucket": r.bucket, "data-count": r.count, "data-errors": r.errors });
    bar.append(el("title", {}, `${new Date(t).toISOString().slice(0, 16).replace("T", " ")} UTC: `
                                + `${count(r.count)} events, ${count(r.errors)} errors`));
    svg.append(bar);
    if (r.errors) errors.push(`M${x} ${y(r.errors)}h${w}V${y(0)}h${-w}z`);
  });
  if (errors.length) svg.append(el("path", { class: "err", d: errors.join("") }));
  svg.setAttribute("data-buckets", starts.length);
  svg.setAttribute("data-empty", empty);
  return svg;
}

const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#64748b"];
export const colour = (i) => PALETTE[i % PALETTE.length];

/** Installs per version per day as lines over every day of the range (a missing day is 0). */
export function adoptionChart(days, keys, { start, end }) {
  const starts = bucketStarts(start, end, DAY);
  const max = Math.max(0, ...days.map((d) => d.installs));
  const { svg, y } = frame("installs per version per day", max, [520, 220]);
  const bw = axis(svg, starts, DAY);
  keys.forEach((key, k) => {
    const byDay = new Map(days.filter((d) => d.key === key).map((d) => [Date.parse(d.bucket), d.installs]));
    const points = starts.map((t, i) => `${(L + (i + 0.5) * bw).toFixed(1)},${y(byDay.get(t) || 0).toFixed(1)}`);
    svg.append(el("polyline", { class: "line", points: points.join(" "), stroke: colour(k), "data-key": key }));
  });
  return svg;
}
