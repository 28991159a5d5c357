// #/task/ID : everything about one task (GET /api/v1/tasks/ID): payload,
// result, error, attempt history, progress, checkpoint size, parent,
// children and workflow as links, and what may be done with it now.
import { get } from "./api.js";
import { $, esc, ago, bar, bytes, taskLink, state, json, workflowOf, FINAL } from "./util.js";
import { button } from "./actions.js";

function actions(t) {
  const b = [];
  if (!FINAL.has(t.state)) b.push(button("cancel", "cancel", { id: t.id }));
  if (["FAILED", "CANCELLED", "EXPIRED"].includes(t.state)) b.push(button("retry", "retry", { id: t.id }));
  if (["PENDING", "RETRYING"].includes(t.state)) b.push(button("run-now", "run now", { id: t.id }));
  if (FINAL.has(t.state) && !workflowOf(t)) b.push(button("delete", "delete", { id: t.id }, "danger"));
  return b.join(" ");
}

function history(t) {
  if (!t.history || !t.history.length) return "–";
  return `<table class="history"><thead><tr><th>attempt</th><th>worker</th><th>version</th><th>started</th><th>finished</th><th>outcome</th><th>error</th></tr></thead><tbody>` +
    t.history.map((a) => `<tr><td class="num">${a.attempt}</td><td>${esc(a.worker)}</td><td>${esc(a.version || "")}</td><td>${esc(a.started || "")}</td>` +
      `<td>${esc(a.finished || "running")}</td><td>${esc(a.outcome || "")}</td><td class="err">${esc(a.error || "")}</td></tr>`).join("") +
    `</tbody></table>`;
}

function detail(t) {
  const wf = workflowOf(t);
  const parent = !t.parent ? "–" : wf === t.parent ? `workflow <a href="#/workflow/${encodeURIComponent(wf)}">${esc(wf)}</a>` : taskLink(t.parent);
  const rows = [
    ["id", `<span class="id">${esc(t.id)}</span>`], ["state", state(t.state)],
    ["handler", esc(t.handler)], ["queue", `<a href="#/tasks?queue=${encodeURIComponent(t.queue)}">${esc(t.queue)}</a>`], ["priority", t.priority],
    ["attempts", `${t.attempts} (retries allowed: ${t.max_retries})`],
    ["progress", t.progress ? `${bar(t.progress.fraction)} ${Math.round(t.progress.fraction * 100)}% ${esc(t.progress.note)}` : "–"],
    ["checkpoint", t.checkpoint_size ? bytes(t.checkpoint_size) : "none"],
    ["worker", esc(t.worker || "–")], ["created", `${esc(t.created)} <small>${ago(t.created_ms)}</small>`],
    ["due", esc(t.eta || "–")], ["started", esc(t.started || "–")], ["finished", t.finished ? `${esc(t.finished)} <small>${ago(t.finished_ms)}</small>` : "–"],
    ["error", t.error ? `<span class="err">${esc(t.error)}</span>${t.error_code !== null ? ` (code ${esc(t.error_code)})` : ""}` : "–"],
    ["tags", esc((t.tags || []).join(", ")) || "–"],
    ["workflow", wf ? `<a class="workflow" href="#/workflow/${encodeURIComponent(wf)}">${esc(wf)}</a>` : "–"],
    ["parent", parent],
    ["children", (t.children || []).length ? t.children.map(taskLink).join("<br>") : "–"],
    ["deleted at", esc(t.delete_at || "kept")],
    ["payload", `${json(t.payload)} <small>${bytes(t.payload_size)} msgpack</small>`],
    ["result", json(t.result)],
    ["attempts made", history(t)],
  ];
  return `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd data-field="${k}">${v}</dd>`).join("")}</dl>`;
}

export default {
  title: "task",
  mount(el, id) {
    el.innerHTML = `<section class="wide"><h2>Task <span class="id">${esc(id)}</span> <span id="task-actions"></span></h2><div id="task"></div></section>`;
    let children = new Set();
    return {
      poll: 0,
      touches: (events) => events.some((e) => e.id === id || children.has(e.id)),
      async refresh() {
        try {
          const t = await get("/api/v1/tasks/" + encodeURIComponent(id));
          children = new Set(t.children || []);
          $("#task", el).innerHTML = detail(t);
          $("#task-actions", el).innerHTML = actions(t);
          el.dataset.state = t.state;
        } catch (e) {
          if (e.status !== 404) throw e;
          $("#task", el).textContent = "No task " + id + " (never existed, or deleted).";
          $("#task-actions", el).innerHTML = "";
        }
      },
    };
  },
};
