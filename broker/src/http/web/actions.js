// The operator's actions, each one call of the /api/v1 routes a script
// uses. Buttons carry data-act and the target (data-id, data-queue,
// data-schedule); they are rendered only for a write role, and the broker
// refuses the call anyway for any other.
import { post, del, get, finishJob, canWrite } from "./api.js";
import { $, esc } from "./util.js";

let afterAction = () => {};
export function whenDone(fn) { afterAction = fn; }

export function toast(text, bad = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = "toast" + (bad ? " bad" : "");
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

// Resolves true when the operator confirms.
export function confirmBox(text) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.onclose = () => resolve(d.returnValue === "ok");
    d.returnValue = "";
    d.showModal();
  });
}

// A button, or "" for a role that may not write.
export function button(act, label, data = {}, cls = "") {
  if (!canWrite()) return "";
  const attrs = Object.entries(data).map(([k, v]) => ` data-${k}="${esc(v)}"`).join("");
  return `<button class="act ${cls}" data-act="${act}"${attrs}>${esc(label)}</button>`;
}

const enc = encodeURIComponent;

function jobText(job) {
  return job ? `${job.kind} (${job.filter}): matched ${job.matched}, changed ${job.changed}` : "done";
}

const single = {
  "cancel": (d) => post(`/api/v1/tasks/${enc(d.id)}/cancel`).then((r) => "cancel: " + (r.note || "cancelled")),
  "retry": (d) => post(`/api/v1/tasks/${enc(d.id)}/retry`).then(() => "queued again"),
  "delete": async (d) => {
    if (!(await confirmBox(`Delete task ${d.id}?`))) return null;
    await del(`/api/v1/tasks/${enc(d.id)}`);
    location.hash = "#/tasks";
    return "deleted";
  },
  "run-now": (d) => post(`/api/v1/tasks/${enc(d.id)}/run-now`).then(() => "queued now"),
  "pause": (d) => post(`/api/v1/queues/${enc(d.queue)}/pause`).then(() => `queue ${d.queue} paused`),
  "resume": (d) => post(`/api/v1/queues/${enc(d.queue)}/resume`).then(() => `queue ${d.queue} resumed`),
  "purge": async (d) => {
    if (!(await confirmBox(`Purge queue ${d.queue}: cancel its ${d.count} ready and delayed task(s)? Running tasks go on.`))) return null;
    const job = await finishJob(await post(`/api/v1/queues/${enc(d.queue)}/purge`));
    return jobText(job);
  },
  "trigger": (d) => post(`/api/v1/schedules/${enc(d.schedule)}/trigger`).then((r) => `fired: task ${r.id || ""}`),
  "sched-pause": (d) => post(`/api/v1/schedules/${enc(d.schedule)}/pause`).then(() => `schedule ${d.schedule} paused`),
  "sched-resume": (d) => post(`/api/v1/schedules/${enc(d.schedule)}/resume`).then(() => `schedule ${d.schedule} resumed`),
  "wf-cancel": (d) => post(`/api/v1/workflows/${enc(d.id)}/cancel`).then(() => "workflow cancelled"),
};

// Acts on selected ids, one call each (delete takes them all at once).
export async function onSelection(verb, ids) {
  if (!ids.length) return;
  if (!(await confirmBox(`${verb} ${ids.length} selected task(s)?`))) return;
  if (verb === "delete") {
    const reply = await post("/api/v1/tasks/delete", { ids });
    return report(jobText(await finishJob(reply)));
  }
  let ok = 0, failed = 0;
  for (const id of ids) {
    try { await post(`/api/v1/tasks/${enc(id)}/${verb}`); ok++; } catch { failed++; }
  }
  report(`${verb}: ${ok} done` + (failed ? `, ${failed} refused` : ""), failed > 0);
}

// Acts on every task matching `filter` ({state, queue, ...}), after a
// confirmation that states how many match.
export async function onFilter(verb, filter, count) {
  if (!(await confirmBox(`${verb} every task matching ${describe(filter)}: ${count} task(s)?`))) return;
  try {
    const job = await finishJob(await post(`/api/v1/tasks/${verb}`, filter));
    report(jobText(job));
  } catch (e) {
    report(e.message, true);
  }
}

function describe(filter) {
  const parts = Object.entries(filter).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(", ") : "(no filter)";
}

function report(text, bad = false) {
  toast(text, bad);
  afterAction();
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-act]");
  if (!b || !single[b.dataset.act]) return;
  b.disabled = true;
  try {
    const text = await single[b.dataset.act](b.dataset);
    if (text !== null) report(text);
  } catch (err) {
    report(err.message, true);
  } finally {
    b.disabled = false;
  }
});

export { get };
