// #/tasks?state=&queue=&handler=&tag=&since=&until=&before= : the broker's
// indexed listing, 50 a page, newest first (final states by finish time,
// so state=FAILED is "newest failures first"; state=RUNNING is read from
// memory and shows each task's worker and progress). Rows can be selected
// for retry, cancel or delete; so can everything matching the filter.
import { get, canWrite } from "./api.js";
import { $, $$, esc, ago, bar, taskLink, state, hashQuery, STATES } from "./util.js";
import { onSelection, onFilter } from "./actions.js";
import { stateTiles } from "./page_overview.js";

const PAGE = 50;
const FILTERS = ["state", "queue", "handler", "tag", "since", "until"];

function filterOf(q) {
  const f = {};
  for (const k of FILTERS) if (q.get(k)) f[k] = q.get(k);
  return f;
}

// The filter as a bulk body ("all" when there is none).
function bulkBody(f) {
  const body = {};
  for (const k of ["state", "queue", "handler", "tag"]) if (f[k]) body[k] = f[k];
  // As written: the broker reads them as the listing did ("1h30m", ISO).
  if (f.since) body.since = f.since;
  if (f.until) body.until = f.until;
  if (!Object.keys(body).length) body.all = true;
  return body;
}

function hashOf(f, before = "") {
  const q = new URLSearchParams(f);
  if (before) q.set("before", before);
  const s = q.toString();
  return "#/tasks" + (s ? "?" + s : "");
}

function row(t, running) {
  const check = canWrite() ? `<td><input type="checkbox" class="pick" value="${esc(t.id)}"></td>` : "";
  const when = running ? ago(t.started_ms) : t.finished_ms ? ago(t.finished_ms) : ago(t.created_ms);
  const progress = t.progress ? `${bar(t.progress.fraction)} <small>${esc(t.progress.note)}</small>` : "";
  return `<tr data-task="${esc(t.id)}">${check}<td>${taskLink(t.id)}</td><td>${esc(t.handler)}</td><td>${esc(t.queue)}</td>` +
    `<td>${state(t.state)}</td><td class="num">${t.attempts}</td><td>${esc(t.worker || "")}</td><td>${progress}</td>` +
    `<td>${when}</td><td class="err">${esc(t.error || "")}</td></tr>`;
}

async function countMatching(f, first, stats) {
  if (!first.next) return String(first.tasks.length);
  const keys = Object.keys(f);
  if (keys.length === 1 && keys[0] === "state") return String(stats.states[f.state] || 0);
  if (keys.length === 0) return String(Object.values(stats.states).reduce((a, b) => a + b, 0));
  let n = 0, before = "";
  for (let i = 0; i < 5; i++) {  // at most 50,000, a page of the index at a time
    const r = await get("/api/v1/tasks?" + new URLSearchParams({ ...f, limit: 10000 }) + before);
    n += r.tasks.length;
    if (!r.next) return String(n);
    before = "&before=" + encodeURIComponent(r.next);
  }
  return "more than " + n;
}

export default {
  title: "tasks",
  mount(el) {
    const q = hashQuery();
    const f = filterOf(q);
    const before = q.get("before") || "";
    const running = f.state === "RUNNING";
    let first = { tasks: [] }, stats = { states: {} }, shownIds = new Set();
    const opt = (s) => `<option${s === f.state ? " selected" : ""}>${s}</option>`;
    const bulk = canWrite() ? `<div class="bulk">selected: <button data-sel="retry">retry</button> <button data-sel="cancel">cancel</button> <button data-sel="delete">delete</button>
      · all matching: <button data-all="retry">retry all</button> <button data-all="cancel">cancel all</button> <button data-all="delete">delete all</button></div>` : "";
    el.innerHTML = `
<section class="wide"><div id="tiles" class="states"></div></section>
<section class="wide"><h2>Tasks <small>${before ? "(older page)" : "newest first"}</small>
  <span class="views"><a href="#/tasks?state=RUNNING">running now</a> · <a href="#/tasks?state=FAILED">failures</a> · <a href="#/tasks">all</a></span></h2>
<form id="filters" class="filters">
  <label>state <select name="state"><option value="">any</option>${STATES.map(opt).join("")}</select></label>
  <label>queue <input name="queue" size="10" value="${esc(f.queue || "")}"></label>
  <label>handler <input name="handler" size="14" value="${esc(f.handler || "")}"></label>
  <label>tag <input name="tag" size="12" value="${esc(f.tag || "")}"></label>
  <label>since <input name="since" size="16" placeholder="1h, 7d, 2026-12-01" value="${esc(f.since || "")}"></label>
  <label>until <input name="until" size="16" value="${esc(f.until || "")}"></label>
  <button>filter</button> <a href="#/tasks">clear</a>
</form>
${bulk}
<table id="tasks"><thead><tr>${canWrite() ? '<th><input type="checkbox" id="pick-all" title="select the page"></th>' : ""}<th>task</th><th>handler</th><th>queue</th><th>state</th><th class="num">attempts</th><th>worker</th><th>progress</th><th>${running ? "started" : "finished / created"}</th><th>error</th></tr></thead><tbody></tbody></table>
<div class="pager"><a id="newest" href="${esc(hashOf(f))}" ${before ? "" : "hidden"}>« newest</a> <a id="older" hidden>older »</a></div>
</section>`;
    $("#filters", el).addEventListener("submit", (e) => {
      e.preventDefault();
      const nf = {};
      for (const [k, v] of new FormData(e.target)) if (String(v).trim()) nf[k] = String(v).trim();
      location.hash = hashOf(nf);
    });
    el.addEventListener("change", (e) => {
      if (e.target.id === "pick-all") for (const c of $$(".pick", el)) c.checked = e.target.checked;
    });
    el.addEventListener("click", async (e) => {
      const sel = e.target.dataset.sel, all = e.target.dataset.all;
      if (sel) await onSelection(sel, $$(".pick:checked", el).map((c) => c.value));
      if (all) await onFilter(all, bulkBody(f), await countMatching(f, first, stats));
    });
    return {
      poll: 0,
      touches: (events) => events.some((e) => String(e.type).startsWith("task.") &&
        (shownIds.has(e.id) || ((!f.queue || e.queue === f.queue) && (!f.handler || String(e.handler).split("@")[0] === f.handler) &&
          (!f.state || e.state === f.state)))),
      async refresh() {
        const query = new URLSearchParams({ ...f, limit: PAGE });
        if (before) query.set("before", before);
        [first, stats] = await Promise.all([get("/api/v1/tasks?" + query), get("/api/v1/stats")]);
        $("#tiles", el).innerHTML = stateTiles(stats, f.state);
        const picked = new Set($$(".pick:checked", el).map((c) => c.value));
        $("#tasks tbody", el).innerHTML = first.tasks.map((t) => row(t, running)).join("") ||
          `<tr><td colspan="10">no task matches</td></tr>`;
        for (const c of $$(".pick", el)) c.checked = picked.has(c.value);
        shownIds = new Set(first.tasks.map((t) => t.id));
        const older = $("#older", el);
        older.hidden = !first.next;
        if (first.next) older.href = hashOf(f, first.next);
      },
    };
  },
};
