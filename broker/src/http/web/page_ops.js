// #/schedules, #/workers, #/handlers: the figures of each, refreshed when
// an event concerns them or every 5 s for those no event carries.
import { get } from "./api.js";
import { $, esc, ago, bar, bytes, secs } from "./util.js";
import { button } from "./actions.js";

function table(el, id, head, rows, empty) {
  $(`#${id} tbody`, el).innerHTML = rows.join("") || `<tr><td colspan="${head}">${empty}</td></tr>`;
}

function skeleton(title, id, heads, note = "") {
  return `<section class="wide"><h2>${title} ${note}</h2><table id="${id}"><thead><tr>${heads.map((h) =>
    `<th${h.startsWith("#") ? ' class="num"' : ""}>${h.replace(/^#/, "")}</th>`).join("")}</tr></thead><tbody></tbody></table></section>`;
}

export const schedules = {
  title: "schedules",
  mount(el) {
    const heads = ["schedule", "handler", "queue", "when", "last fire", "next fire", "#misfires", "state", ""];
    el.innerHTML = skeleton("Schedules", "sched", heads);
    return {
      poll: 5000,
      touches: (events) => events.some((e) => String(e.type).startsWith("schedule.")),
      async refresh() {
        const r = await get("/api/v1/schedules");
        table(el, "sched", heads.length, (r.schedules || []).map((s) => {
          const acts = [button("trigger", "run now", { schedule: s.name }),
            s.paused ? button("sched-resume", "resume", { schedule: s.name }) : button("sched-pause", "pause", { schedule: s.name })].join(" ");
          const when = s.cron ? `cron ${esc(s.cron)}${s.timezone ? " " + esc(s.timezone) : ""}` : `every ${esc(s.every)}`;
          return `<tr data-schedule="${esc(s.name)}"><td>${esc(s.name)}</td><td>${esc(s.handler)}</td><td>${esc(s.queue)}</td><td>${when}</td>` +
            `<td>${ago(s.last_fire_ms) || "never"}</td><td>${s.paused ? "–" : ago(s.next_fire_ms)}</td><td class="num">${s.misfires ?? "–"}</td>` +
            `<td>${s.paused ? '<span class="pill bad">paused</span>' : "active"}</td><td>${acts}</td></tr>`;
        }), "no schedules configured");
      },
    };
  },
};

export const workers = {
  title: "workers",
  mount(el) {
    const heads = ["worker", "host", "#pid", "running / slots", "#prefetch", "#generation", "plugins", "#memory", "queues", "last seen"];
    el.innerHTML = skeleton("Workers", "worker-table", heads, "<small>(slots: tasks run at once; prefetch: tasks held waiting for a slot)</small>");
    return {
      poll: 5000,
      touches: (events) => events.some((e) => String(e.type).startsWith("worker.") || String(e.type).startsWith("plugin.")),
      async refresh() {
        const r = await get("/api/v1/workers");
        table(el, "worker-table", heads.length, r.workers.map((w) => {
          const running = w.running ?? w.busy;
          const plugins = [...new Set(w.handlers.map((h) => `${h.plugin}@${h.version}`))].map((p) => `<code>${esc(p)}</code>`).join(" ");
          return `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${esc(w.host)}</td><td class="num">${w.pid}</td>` +
            `<td>${bar(w.slots ? running / w.slots : 0)} ${running}/${w.slots}</td><td class="num">${w.prefetch ?? "–"}</td>` +
            `<td class="num">${w.generation}</td><td>${plugins}</td><td class="num" data-field="memory">${w.rss_bytes ? bytes(w.rss_bytes) : "–"}</td>` +
            `<td>${esc((w.queues || []).join(", ") || "all")}</td><td>${ago(w.last_seen_ms)}</td></tr>`;
        }), "no workers");
      },
    };
  },
};

export const handlers = {
  title: "handlers",
  mount(el) {
    const heads = ["handler", "#rate /s", "#run p50", "#run p95", "#wait p50", "#failure rate", "#running", "#submitted", "#succeeded", "#failed", "#retried"];
    el.innerHTML = skeleton("Handlers", "handler-table", heads, "<small>(run time from the start of each attempt)</small>");
    return {
      poll: 5000,
      touches: () => false,
      async refresh() {
        try {
          const r = await get("/api/v1/handlers");
          table(el, "handler-table", heads.length, r.handlers.map((h) =>
            `<tr data-handler="${esc(h.name)}"><td><a href="#/tasks?handler=${encodeURIComponent(h.name)}">${esc(h.name)}</a></td>` +
            `<td class="num">${(h.rate_per_s ?? 0).toFixed(2)}</td><td class="num">${secs(h.run_p50_s)}</td><td class="num">${secs(h.run_p95_s)}</td>` +
            `<td class="num">${secs(h.wait_p50_s)}</td><td class="num">${((h.failure_rate ?? 0) * 100).toFixed(1)}%</td><td class="num">${h.running ?? 0}</td>` +
            `<td class="num">${h.submitted}</td><td class="num">${h.succeeded}</td><td class="num">${h.failed}</td><td class="num">${h.retried}</td></tr>`), "no handler has run yet");
        } catch (e) {
          if (e.status !== 404) throw e;
          table(el, "handler-table", heads.length, [], "this broker has no GET /api/v1/handlers");
        }
      },
    };
  },
};
