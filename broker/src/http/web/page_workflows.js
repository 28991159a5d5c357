// #/workflows : the newest workflows (GET /api/v1/workflows, 50 a page);
// #/workflow/ID : one workflow's DAG, each step drawn with its state, as
// inline SVG (no library), live.
import { get } from "./api.js";
import { $, esc, ago, state, hashQuery, json } from "./util.js";
import { button } from "./actions.js";

const COLOURS = {
  SUCCEEDED: "#2e7d32", FAILED: "#c62828", RUNNING: "#1565c0", QUEUED: "#6a1b9a", RETRYING: "#ef6c00",
  CANCELLED: "#757575", EXPIRED: "#757575", PENDING: "#9e9e9e", SKIPPED: "#bdbdbd", WAITING: "#bdbdbd",
};

function listRow(w) {
  return `<tr data-workflow="${esc(w.id)}"><td><a class="id" href="#/workflow/${encodeURIComponent(w.id)}">${esc(w.id)}</a></td>` +
    `<td>${esc(w.name || "")}</td><td>${state(w.state)}</td><td class="num">${w.done}/${w.steps}</td><td class="num">${w.failed}</td>` +
    `<td>${ago(w.created_ms)}</td><td>${ago(w.finished_ms)}</td></tr>`;
}

export const workflows = {
  title: "workflows",
  mount(el) {
    const q = hashQuery();
    const f = { state: q.get("state") || "" };
    const before = q.get("before") || "";
    el.innerHTML = `<section class="wide"><h2>Workflows <small>newest first</small></h2>
<form id="wf-open" class="filters"><input name="id" size="34" placeholder="workflow id"> <button>open</button></form>
<table id="wf-list"><thead><tr><th>workflow</th><th>name</th><th>state</th><th class="num">done</th><th class="num">failed</th><th>created</th><th>finished</th></tr></thead><tbody></tbody></table>
<div class="pager"><a id="older" hidden>older »</a></div></section>`;
    $("#wf-open", el).addEventListener("submit", (e) => {
      e.preventDefault();
      const id = new FormData(e.target).get("id").trim();
      if (id) location.hash = "#/workflow/" + encodeURIComponent(id);
    });
    return {
      poll: 0,
      touches: (events) => events.some((e) => String(e.type).startsWith("workflow.")),
      async refresh() {
        const query = new URLSearchParams({ limit: 50 });
        if (f.state) query.set("state", f.state);
        if (before) query.set("before", before);
        try {
          const r = await get("/api/v1/workflows?" + query);
          $("#wf-list tbody", el).innerHTML = r.workflows.map(listRow).join("") || `<tr><td colspan="7">no workflows</td></tr>`;
          const older = $("#older", el);
          older.hidden = !r.next;
          if (r.next) older.href = "#/workflows?" + new URLSearchParams({ ...(f.state ? f : {}), before: r.next });
        } catch (e) {
          if (e.status !== 404 && e.status !== 405) throw e;
          $("#wf-list tbody", el).innerHTML = `<tr><td colspan="7">this broker does not list workflows; open one by id above</td></tr>`;
        }
      },
    };
  },
};

// Columns by depth (a step sits one column right of its deepest
// dependency), rows in definition order within a column.
function layout(steps) {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const depth = new Map();
  const depthOf = (s, seen = new Set()) => {
    if (depth.has(s.name)) return depth.get(s.name);
    if (seen.has(s.name)) return 0;
    seen.add(s.name);
    const d = Math.max(-1, ...(s.depends_on || []).map((n) => byName.has(n) ? depthOf(byName.get(n), seen) : -1)) + 1;
    depth.set(s.name, d);
    return d;
  };
  const cols = [];
  for (const s of steps) {
    const d = depthOf(s);
    (cols[d] = cols[d] || []).push(s);
  }
  const pos = new Map();
  cols.forEach((col, x) => col.forEach((s, y) => pos.set(s.name, { x, y })));
  return { cols, pos };
}

export function graph(steps) {
  const W = 170, H = 46, GX = 60, GY = 22, PAD = 10;
  const { cols, pos } = layout(steps);
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const width = PAD * 2 + cols.length * W + Math.max(0, cols.length - 1) * GX;
  const height = PAD * 2 + rows * H + (rows - 1) * GY;
  const at = (p) => ({ x: PAD + p.x * (W + GX), y: PAD + p.y * (H + GY) });
  let edges = "", nodes = "";
  for (const s of steps) {
    const to = at(pos.get(s.name));
    for (const dep of s.depends_on || []) {
      if (!pos.has(dep)) continue;
      const from = at(pos.get(dep));
      const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
      edges += `<path class="edge" d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}" marker-end="url(#arrow)"/>`;
    }
    const colour = COLOURS[s.state] || "#9e9e9e";
    const box = `<rect width="${W}" height="${H}" rx="6" fill="${colour}"/>` +
      `<text x="8" y="19" class="name">${esc(s.name)}</text><text x="8" y="36" class="sub">${esc(s.state)} · ${esc(s.handler)}</text>`;
    const inner = s.task ? `<a href="#/task/${encodeURIComponent(s.task)}">${box}</a>` : box;
    nodes += `<g class="step" data-step="${esc(s.name)}" data-state="${esc(s.state)}" transform="translate(${to.x},${to.y})">${inner}</g>`;
  }
  return `<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>` +
    edges + nodes + `</svg>`;
}

export const workflow = {
  title: "workflow",
  mount(el, id) {
    el.innerHTML = `<section class="wide"><h2>Workflow <span class="id">${esc(id)}</span> <span id="wf-state"></span> <span id="wf-actions"></span></h2>
<div id="wf-graph" class="graph"></div>
<table id="wf-steps"><thead><tr><th>step</th><th>handler</th><th>state</th><th>task</th><th class="num">attempts</th><th>error</th></tr></thead><tbody></tbody></table>
<h3>Result</h3><div id="wf-result"></div></section>`;
    let tasks = new Set();
    return {
      poll: 0,
      touches: (events) => events.some((e) => e.workflow === id || tasks.has(e.id)),
      async refresh() {
        const w = await get("/api/v1/workflows/" + encodeURIComponent(id));
        const steps = w.steps || [];
        tasks = new Set(steps.map((s) => s.task).filter(Boolean));
        $("#wf-state", el).innerHTML = `${esc(w.name || "")} ${state(w.state)}`;
        $("#wf-actions", el).innerHTML = ["SUCCEEDED", "FAILED", "CANCELLED"].includes(w.state) ? "" : button("wf-cancel", "cancel workflow", { id });
        $("#wf-graph", el).innerHTML = graph(steps);
        $("#wf-steps tbody", el).innerHTML = steps.map((s) =>
          `<tr><td>${esc(s.name)}</td><td>${esc(s.handler)}</td><td>${state(s.state)}</td>` +
          `<td>${s.task ? `<a class="id" href="#/task/${encodeURIComponent(s.task)}">${esc(s.task)}</a>` : "–"}</td>` +
          `<td class="num">${s.attempts ?? ""}</td><td class="err">${esc(s.error || "")}</td></tr>`).join("");
        $("#wf-result", el).innerHTML = json(w.result);
      },
    };
  },
};
