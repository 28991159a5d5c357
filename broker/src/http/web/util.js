// Small helpers shared by the dashboard's pages: escaping, times, bars,
// links. Every value from the broker goes through esc() before it meets
// innerHTML.
export const STATES = ["PENDING", "QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"];
export const FINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]);

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// "12 s ago", "in 3 min"; "" for 0 (not set).
export function ago(ms) {
  if (!ms) return "";
  const d = (Date.now() - ms) / 1000, s = Math.abs(d);
  const text = s < 60 ? s.toFixed(0) + " s" : s < 3600 ? (s / 60).toFixed(0) + " min" : s < 172800 ? (s / 3600).toFixed(1) + " h" : (s / 86400).toFixed(0) + " d";
  return d >= 0 ? text + " ago" : "in " + text;
}

export function duration(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + (s % 60) + "s";
}

// Seconds as "350 µs", "12 ms", "1.5 s".
export function secs(s) {
  if (s === null || s === undefined) return "–";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 1 : 0) + " ms";
  return s.toFixed(s < 10 ? 2 : 0) + " s";
}

export function bytes(n) {
  if (!n) return "0";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

export function bar(fraction) {
  const pct = Math.round(Math.min(1, Math.max(0, fraction || 0)) * 100);
  return `<div class="bar" title="${pct}%"><i style="width:${pct}%"></i></div>`;
}

export function taskLink(id) {
  return id ? `<a class="id" href="#/task/${encodeURIComponent(id)}">${esc(id)}</a>` : "–";
}

export function state(s) {
  return `<span class="st ${esc(s)}">${esc(s)}</span>`;
}

export function json(v) {
  return `<pre>${esc(v === null || v === undefined ? "–" : JSON.stringify(v, null, 2))}</pre>`;
}

// The workflow a task belongs to: its "workflow:ID" tag.
export function workflowOf(task) {
  const tag = (task.tags || []).find((t) => t.startsWith("workflow:"));
  return tag ? tag.slice("workflow:".length) : "";
}

// The query of the hash route: "#/tasks?state=FAILED" -> URLSearchParams.
export function hashQuery() {
  const q = location.hash.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : location.hash.slice(q + 1));
}
