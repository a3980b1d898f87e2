//# allFunctionsCalledOnLoad
// Numbers and times as the page shows them (UTC everywhere).
export const DASH = "–";

export const isNum = (x) => typeof x === "number" && Number.isFinite(x);
// 1234567 -> "1,234,567" (what Intl.NumberFormat("en-US") gives, without loading ICU's locale data
// on a fresh page: that cost the first table ~20 ms)
const grouped = (n) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
export const count = (n) => (isNum(n) ? (n < 0 ? "-" + grouped(-n) : grouped(n)) : DASH);
export const pct = (x, digits = 1) => (isNum(x) ? (x * 100).toFixed(digits) + " %" : DASH);

export function ms(x) {
  if (!isNum(x)) return DASH;
  if (x < 10) return x.toFixed(1) + " ms";
  if (x < 1000) return Math.round(x) + " ms";
  if (x < 60000) return (x / 1000).toFixed(x < 10000 ? 2 : 1) + " s";
  if (x < 3600000) return (x / 60000).toFixed(1) + " min";
  return (x / 3600000).toFixed(1) + " h";
}

/** 2026-11-28T01:02:03.456Z -> "2026-11-28 01:02 UTC" */
export function when(ts) {
  if (!ts) return DASH;
  return ts.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "") + " UTC";
}

/** Relative change of a vs b as text, with its sign; null when b is 0 or unknown. */
export function change(now, before) {
  if (!isNum(now) || !isNum(before) || before === 0) return null;
  return (now - before) / before;
}

export function signedPct(x) {
  if (!isNum(x)) return DASH;
  const v = Math.round(x * 100);
  return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v) + " %";
}

export function signedPoints(x) {
  if (!isNum(x)) return DASH;
  const v = x * 100;
  return (v > 0.05 ? "+" : v < -0.05 ? "−" : "±") + Math.abs(v).toFixed(1) + " pt";
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const two = (n) => String(n).padStart(2, "0");
export const hourLabel = (t) => { const d = new Date(t); return `${two(d.getUTCHours())}:00`; };
export const dayLabel = (t) => { const d = new Date(t); return `${DAYS[d.getUTCDay()]} ${d.getUTCDate()}`; };
export const dateLabel = (t) => new Date(t).toISOString().slice(0, 10);
export const monthDay = (t) => new Date(t).toISOString().slice(5, 10);
