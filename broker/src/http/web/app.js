// taskmill dashboard: polls the broker's JSON API and renders it. No build
// step, no dependencies. The token comes from #token=... in the URL, the
// field in the header, or localStorage, in that order.
"use strict";

const REFRESH_MS = 2000;
const STATES = ["PENDING", "QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"];
const $ = (sel) => document.querySelector(sel);

let token = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("taskmill.token") || "";
let shownTask = new URLSearchParams(location.hash.slice(1)).get("task") || "";

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const res = await fetch(path, { headers, cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const msg = body.error_code ? body.error_code + ": " + body.error : "HTTP " + res.status;
    throw new Error(path + ": " + msg);
  }
  return body;
}

function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + (s % 60) + "s";
}

function bar(fraction) {
  const pct = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  return `<div class="bar" title="${pct}%"><i style="width:${pct}%"></i></div>`;
}

function taskLink(id) {
  return `<a class="id" data-task="${esc(id)}">${esc(id)}</a>`;
}

function renderStates(stats) {
  $("#states").innerHTML = STATES.map((s) =>
    `<div class="state ${s}" data-state="${s}">${s}<b class="count">${stats.states[s] || 0}</b></div>`).join("");
}

function renderQueues(stats, metrics) {
  $("#queues tbody").innerHTML = stats.queues.map((q) => {
    const prios = metrics.queued[q.name] || {};
    const byPrio = Object.keys(prios).filter((p) => prios[p] > 0).sort((a, b) => b - a)
      .map((p) => `p${p}: ${prios[p]}`).join(", ");
    return `<tr data-queue="${esc(q.name)}"><td>${esc(q.name)}</td><td class="num ready">${q.ready}</td>` +
      `<td class="num delayed">${q.delayed}</td><td class="num running">${q.running}</td><td>${esc(byPrio)}</td></tr>`;
  }).join("") || `<tr><td colspan="5">no tasks yet</td></tr>`;
}

function renderChart(metrics) {
  const data = metrics.finished_per_s || [];
  const c = $("#chart"), g = c.getContext("2d");
  const w = c.width, h = c.height, pad = 24;
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
  const last = data.slice(-61, -1);  // the last complete minute
  const rate = last.length ? last.reduce((a, b) => a + b, 0) / last.length : 0;
  $("#rate").textContent = `last minute: ${rate.toFixed(1)} tasks/s`;
}

function renderWorkers(workers) {
  $("#workers tbody").innerHTML = workers.map((w) => {
    const hs = w.handlers.map((h) => `<code>${esc(h.name)}@${esc(h.version)}</code>`).join(" ");
    const load = w.slots ? w.busy / w.slots : 0;
    return `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${hs}</td>` +
      `<td>${bar(load)} ${w.busy}/${w.slots}</td><td class="num">${w.generation}</td><td>${ago(w.last_seen_ms)}</td></tr>`;
  }).join("") || `<tr><td colspan="5">no workers</td></tr>`;
}

function renderFailures(tasks) {
  $("#failures tbody").innerHTML = tasks.map((t) =>
    `<tr data-failed="${esc(t.id)}"><td>${taskLink(t.id)}</td><td>${esc(t.handler)}</td>` +
    `<td class="num">${t.attempts}</td><td class="err">${esc(t.error)}</td><td>${ago(t.finished_ms)}</td></tr>`).join("") ||
    `<tr><td colspan="5">no failures</td></tr>`;
}

function renderRecent(tasks) {
  $("#recent tbody").innerHTML = tasks.map((t) => {
    const p = t.progress ? bar(t.progress.fraction) : "";
    return `<tr><td>${taskLink(t.id)}</td><td>${esc(t.handler)}</td><td>${esc(t.queue)}</td>` +
      `<td class="${t.state}">${t.state}</td><td>${p}</td></tr>`;
  }).join("");
}

async function renderTask() {
  if (!shownTask) {
    $("#task").innerHTML = "";
    return;
  }
  try {
    const t = await api("/api/v1/tasks/" + encodeURIComponent(shownTask));
    const rows = [
      ["id", `<span class="id">${esc(t.id)}</span>`], ["state", `<b class="${t.state}">${t.state}</b>`],
      ["handler", esc(t.handler)], ["queue", esc(t.queue)], ["priority", t.priority],
      ["attempts", `${t.attempts} (retries allowed: ${t.max_retries})`],
      ["progress", t.progress ? `${bar(t.progress.fraction)} ${Math.round(t.progress.fraction * 100)}% ${esc(t.progress.note)}` : "–"],
      ["worker", esc(t.worker || "–")], ["created", esc(t.created)], ["started", esc(t.started || "–")],
      ["finished", esc(t.finished || "–")], ["error", esc(t.error || "–")], ["tags", esc(t.tags.join(", "))],
      ["result", `<pre>${esc(t.result === null ? "–" : JSON.stringify(t.result, null, 2))}</pre>`],
    ];
    $("#task").innerHTML = `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
  } catch (e) {
    $("#task").textContent = e.message;
  }
}

async function refresh() {
  try {
    const health = await fetch("/health").then((r) => r.json());
    $("#health").textContent = `${health.status} · ${health.role} · store ${health.store.status}`;
    $("#health").className = "pill " + (health.status === "ok" ? "ok" : "bad");
    const [stats, metrics, workers, failed, recent] = await Promise.all([
      api("/api/v1/stats"), api("/api/v1/metrics"), api("/api/v1/workers"),
      api("/api/v1/tasks?state=FAILED&limit=20"), api("/api/v1/tasks?limit=15"),
    ]);
    $("#uptime").textContent = "up " + duration(stats.uptime_ms);
    renderStates(stats);
    renderQueues(stats, metrics);
    renderChart(metrics);
    renderWorkers(workers.workers);
    renderFailures(failed.tasks);
    renderRecent(recent.tasks);
    await renderTask();
    $("#error").hidden = true;
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (e) {
    $("#error").hidden = false;
    $("#error").textContent = e.message;
  }
}

$("#token").value = token;
$("#token").addEventListener("change", (e) => {
  token = e.target.value.trim();
  localStorage.setItem("taskmill.token", token);
  refresh();
});
$("#lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  shownTask = $("#task-id").value.trim();
  renderTask();
});
document.addEventListener("click", (e) => {
  const id = e.target.dataset && e.target.dataset.task;
  if (id) {
    shownTask = id;
    $("#task-id").value = id;
    renderTask();
  }
});
refresh();
setInterval(refresh, REFRESH_MS);
