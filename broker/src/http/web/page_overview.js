// #/ : tasks by state (each tile opens the list filtered by it), queues,
// throughput, workers and the newest failures.
import { get } from "./api.js";
import { $, esc, ago, bar, taskLink, STATES } from "./util.js";

export function stateTiles(stats, current = "") {
  return STATES.map((s) =>
    `<a class="state ${s}${s === current ? " here" : ""}" href="#/tasks?state=${s}" data-state="${s}">${s}<b class="count">${stats.states[s] || 0}</b></a>`).join("");
}

function queuesRows(stats, metrics) {
  return stats.queues.map((q) => {
    const prios = (metrics.queued || {})[q.name] || {};
    const byPrio = Object.keys(prios).filter((p) => prios[p] > 0).sort((a, b) => b - a).map((p) => `p${p}: ${prios[p]}`).join(", ");
    return `<tr data-queue="${esc(q.name)}"><td><a href="#/tasks?queue=${encodeURIComponent(q.name)}">${esc(q.name)}</a>${q.paused ? ' <span class="pill bad">paused</span>' : ""}</td>` +
      `<td class="num ready">${q.ready}</td><td class="num delayed">${q.delayed}</td><td class="num running">${q.running}</td><td>${esc(byPrio)}</td></tr>`;
  }).join("") || `<tr><td colspan="5">no tasks yet</td></tr>`;
}

function drawChart(canvas, data) {
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...data);
  g.strokeStyle = "#e3e5ea";
  g.fillStyle = "#667";
  g.font = "11px sans-serif";
  for (const f of [0, 0.5, 1]) {
    const y = h - pad - f * (h - 2 * pad);
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke();
    g.fillText(String(+(max * f).toFixed(max < 10 ? 1 : 0)), 0, y + 4);
  }
  g.strokeStyle = "#1565c0";
  g.lineWidth = 1.5;
  g.beginPath();
  data.forEach((v, i) => {
    const x = pad + (i / Math.max(1, data.length - 1)) * (w - pad);
    const y = h - pad - (v / max) * (h - 2 * pad);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
  g.fillText("-5 min", pad, h - 6);
  g.fillText("now", w - 24, h - 6);
}

function workerRows(workers) {
  return workers.map((w) => {
    const hs = w.handlers.map((h) => `<code>${esc(h.name)}@${esc(h.version)}</code>`).join(" ");
    const running = w.running ?? w.busy;
    return `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${hs}</td>` +
      `<td>${bar(w.slots ? running / w.slots : 0)} ${running}/${w.slots}</td><td class="num">${w.generation}</td><td>${ago(w.last_seen_ms)}</td></tr>`;
  }).join("") || `<tr><td colspan="5">no workers</td></tr>`;
}

function failureRows(tasks) {
  return tasks.map((t) =>
    `<tr data-failed="${esc(t.id)}"><td>${taskLink(t.id)}</td><td>${esc(t.handler)}</td>` +
    `<td class="num">${t.attempts}</td><td class="err">${esc(t.error)}</td><td>${ago(t.finished_ms)}</td></tr>`).join("") ||
    `<tr><td colspan="5">no failures</td></tr>`;
}

export default {
  title: "overview",
  mount(el) {
    el.innerHTML = `
<section class="wide"><h2>Tasks by state</h2><div id="states" class="states"></div></section>
<section><h2>Queues <a class="more" href="#/queues">operate →</a></h2>
  <table id="queues"><thead><tr><th>queue</th><th class="num">ready</th><th class="num">delayed</th><th class="num">running</th><th>ready by priority</th></tr></thead><tbody></tbody></table></section>
<section><h2>Throughput <small>(finished tasks/s, last 5 minutes)</small></h2><canvas id="chart" width="560" height="160"></canvas><div id="rate"></div></section>
<section class="wide"><h2>Workers <a class="more" href="#/workers">details →</a></h2>
  <table id="workers"><thead><tr><th>worker</th><th>handlers</th><th>running / slots</th><th class="num">generation</th><th>last seen</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Newest failures <small>(by finish time)</small> <a class="more" href="#/tasks?state=FAILED">all failures →</a></h2>
  <table id="failures"><thead><tr><th>task</th><th>handler</th><th class="num">attempts</th><th>error</th><th>finished</th></tr></thead><tbody></tbody></table></section>`;
    return {
      poll: 5000,
      touches: (events) => events.some((e) => String(e.type).startsWith("task.") || String(e.type).startsWith("worker.")),
      async refresh() {
        const [stats, metrics, workers, failed] = await Promise.all([
          get("/api/v1/stats"), get("/api/v1/metrics"), get("/api/v1/workers"), get("/api/v1/tasks?state=FAILED&limit=20"),
        ]);
        $("#states", el).innerHTML = stateTiles(stats);
        $("#queues tbody", el).innerHTML = queuesRows(stats, metrics);
        const data = metrics.finished_per_s || [];
        drawChart($("#chart", el), data);
        const last = data.slice(-61, -1);
        $("#rate", el).textContent = `last minute: ${(last.length ? last.reduce((a, b) => a + b, 0) / last.length : 0).toFixed(1)} tasks/s`;
        $("#workers tbody", el).innerHTML = workerRows(workers.workers);
        $("#failures tbody", el).innerHTML = failureRows(failed.tasks);
      },
    };
  },
};
