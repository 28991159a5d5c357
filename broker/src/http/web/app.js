// taskmill dashboard: hash routes (#/tasks, #/task/ID, #/queues,
// #/workflows, #/workflow/ID, #/schedules, #/workers, #/handlers), a login
// form, and a runner that refreshes the page shown when an event touches it
// (pushed by GET /api/v1/events) or, for figures no event carries, every
// few seconds. Plain ES modules, no build step, no dependencies.
import { $, esc, duration } from "./util.js";
import { me, whoami, login, logout, whenUnauthorized, get } from "./api.js";
import * as live from "./live.js";
import { whenDone, toast } from "./actions.js";
import overview from "./page_overview.js";
import tasks from "./page_tasks.js";
import task from "./page_task.js";
import queues from "./page_queues.js";
import { workflows, workflow } from "./page_workflows.js";
import { schedules, workers, handlers } from "./page_ops.js";

const POLL_MS = 5000;  // without the stream, and for figures no event carries

const routes = [
  [/^#\/?$/, overview], [/^#\/tasks$/, tasks], [/^#\/task\/([^/?]+)$/, task], [/^#\/queues$/, queues],
  [/^#\/workflows$/, workflows], [/^#\/workflow\/([^/?]+)$/, workflow], [/^#\/schedules$/, schedules],
  [/^#\/workers$/, workers], [/^#\/handlers$/, handlers],
];

let shown = null;  // {ctrl, last, busy, again, unsubscribe}

async function refresh() {
  const s = shown;
  if (!s) return;
  if (s.busy) { s.again = true; return; }
  s.busy = true;
  try {
    await s.ctrl.refresh();
    $("#error").hidden = true;
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (e) {
    if (e.status !== 401) {
      $("#error").hidden = false;
      $("#error").textContent = e.message;
    }
  } finally {
    s.busy = false;
    s.last = Date.now();
    if (s.again && shown === s) { s.again = false; refresh(); }
  }
}

function route() {
  if (me.role === "none") return;
  const path = location.hash.split("?")[0] || "#/";
  let page = null, params = [];
  for (const [re, p] of routes) {
    const m = path.match(re);
    if (m) { page = p; params = m.slice(1).map(decodeURIComponent); break; }
  }
  if (shown) shown.unsubscribe();
  // A fresh element per page: the listeners of the last one go with it.
  const el = document.createElement("div");
  el.className = "page";
  $("#view").replaceChildren(el);
  if (!page) {
    el.innerHTML = `<section><h2>Not found</h2><p>No page ${esc(location.hash)}. <a href="#/">overview</a></p></section>`;
    shown = null;
    return;
  }
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("here", path.startsWith(a.getAttribute("href")) && a.getAttribute("href") !== "#/" || a.getAttribute("href") === path);
  document.title = "taskmill · " + page.title;
  const s = { ctrl: page.mount(el, ...params), last: 0, busy: false, again: false };
  s.unsubscribe = live.subscribe((events) => {
    if (events.some((e) => e.type === "dropped") || s.ctrl.touches(events)) refresh();
  });
  shown = s;
  refresh();
}

function tick() {
  if (!shown) return;
  const every = live.isLive() ? shown.ctrl.poll : POLL_MS;
  if (every && Date.now() - shown.last >= every) refresh();
}

async function health() {
  try {
    const h = await fetch("/health", { cache: "no-store" }).then((r) => r.json());
    $("#health").textContent = `${h.status} · ${h.role} · up ${duration(h.uptime_ms)}`;
    $("#health").className = "pill " + (h.status === "ok" ? "ok" : "bad");
  } catch {
    $("#health").textContent = "unreachable";
    $("#health").className = "pill bad";
  }
}

function showLogin(message) {
  live.stop();
  if (shown) shown.unsubscribe();
  shown = null;
  $("#view").innerHTML = "";
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#me").textContent = "";
  $("#logout").hidden = true;
  $("#login-token").focus();
}

function signedIn() {
  $("#login").hidden = true;
  $("#me").textContent = `${me.name || "anonymous"} (${me.role})`;
  $("#me").dataset.role = me.role;
  $("#logout").hidden = me.via !== "session";
  live.start();
  route();
}

// A link with the token ("#token=SECRET", or "#/tasks?state=FAILED&token=
// SECRET") logs in once; the token then leaves the address (and the
// history) at once, and the page the link named is shown.
async function tokenFromLink() {
  const h = location.hash.slice(1);
  const qi = h.indexOf("?");
  const routed = h.startsWith("/");
  const path = routed ? (qi < 0 ? h : h.slice(0, qi)) : "/";
  const q = new URLSearchParams(routed ? (qi < 0 ? "" : h.slice(qi + 1)) : h);
  const token = q.get("token");
  if (!token) return "none";
  q.delete("token");
  const rest = routed ? q.toString() : "";
  history.replaceState(null, "", location.pathname + "#" + path + (rest ? "?" + rest : ""));
  try {
    await login(token);
    return "in";
  } catch (e) {
    showLogin(e.message);
    return "refused";
  }
}

async function start() {
  live.onModeChange((m) => {
    $("#live").textContent = m === "live" ? "live" : m === "polling" ? "polling every 5 s" : "";
    $("#live").className = "pill " + (m === "live" ? "ok" : "");
  });
  whenUnauthorized(() => showLogin("Your session has ended; log in again."));
  whenDone(refresh);
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await login($("#login-token").value.trim());
      $("#login-token").value = "";
      signedIn();
    } catch (err) {
      $("#login-error").textContent = err.message;
    }
  });
  $("#logout").addEventListener("click", async () => {
    await logout().catch(() => {});
    showLogin("Logged out.");
  });
  window.addEventListener("hashchange", route);
  health();
  setInterval(health, POLL_MS);
  setInterval(tick, 1000);
  const link = await tokenFromLink();
  if (link === "refused") return;
  if (link === "none") await whoami().catch(() => {});
  if (me.role === "none") showLogin(); else signedIn();
}

start().catch((e) => toast(e.message, true));
export { get };
