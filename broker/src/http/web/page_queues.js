// #/queues : every queue with its counts, pause and limits (GET
// /api/v1/queues); pause, resume and purge for a write role.
import { get } from "./api.js";
import { $, esc } from "./util.js";
import { button } from "./actions.js";

function limits(l) {
  const parts = [];
  if (l && l.rate !== null) parts.push(`${l.rate}/s (burst ${l.burst})`);
  if (l && l.max_running !== null) parts.push(`≤ ${l.max_running} running`);
  return parts.join(", ") || "–";
}

function row(q) {
  const acts = [
    q.paused ? button("resume", "resume", { queue: q.name }) : button("pause", "pause", { queue: q.name }),
    button("purge", "purge", { queue: q.name, count: q.ready + q.delayed }, "danger"),
  ].join(" ");
  return `<tr data-queue="${esc(q.name)}" data-paused="${q.paused}"><td><a href="#/tasks?queue=${encodeURIComponent(q.name)}">${esc(q.name)}</a></td>` +
    `<td class="num">${q.ready}</td><td class="num">${q.delayed}</td><td class="num">${q.running}</td>` +
    `<td class="paused">${q.paused ? '<span class="pill bad">paused</span>' : "running"}</td><td>${esc(limits(q.limits))}</td><td>${acts}</td></tr>`;
}

export default {
  title: "queues",
  mount(el) {
    el.innerHTML = `<section class="wide"><h2>Queues</h2>
<table id="queue-table"><thead><tr><th>queue</th><th class="num">ready</th><th class="num">delayed</th><th class="num">running</th><th>state</th><th>limits</th><th></th></tr></thead><tbody></tbody></table></section>`;
    return {
      poll: 5000,
      touches: (events) => events.some((e) => String(e.type).startsWith("task.") || String(e.type).startsWith("job.")),
      async refresh() {
        const { queues } = await get("/api/v1/queues");
        $("#queue-table tbody", el).innerHTML = queues.map(row).join("") || `<tr><td colspan="7">no queues yet</td></tr>`;
      },
    };
  },
};
