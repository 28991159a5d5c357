// Live updates: the broker's event stream (GET /api/v1/events,
// Server-Sent Events). Events are gathered and handed to the listeners at
// most once a second, so a burst of thousands costs one refresh. When the
// stream is refused (the broker caps them) or fails, the page polls
// instead and tries the stream again later.
const FLUSH_MS = 1000;
const RETRY_STREAM_MS = 30000;

const listeners = new Set();
let source = null;
let pending = [];
let timer = 0;
let wanted = false;
let mode = "off";  // "live" | "polling" | "off"
let onMode = () => {};

export function onModeChange(fn) { onMode = fn; }
export const isLive = () => mode === "live";

// fn(events) with the events of the last second; returns an unsubscribe.
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setMode(m) {
  if (mode !== m) {
    mode = m;
    onMode(m);
  }
}

function flush() {
  timer = 0;
  const batch = pending;
  pending = [];
  for (const fn of listeners) fn(batch);
}

function queue(ev) {
  pending.push(ev);
  if (!timer) timer = setTimeout(flush, FLUSH_MS);
}

export function start() {
  if (source) source.close();
  wanted = true;
  source = new EventSource("/api/v1/events");
  source.onopen = () => setMode("live");
  source.onmessage = (e) => {
    try { queue(JSON.parse(e.data)); } catch { /* not JSON: ignore */ }
  };
  // The stream skipped events we were too slow for: refresh everything.
  source.addEventListener("dropped", () => queue({ type: "dropped" }));
  source.onerror = () => {
    if (source && source.readyState === EventSource.CLOSED) {
      setMode("polling");
      source = null;
      setTimeout(() => { if (wanted && !source) start(); }, RETRY_STREAM_MS);
    } else {
      setMode("polling");  // reconnecting: poll meanwhile
    }
  };
}

export function stop() {
  wanted = false;
  if (source) source.close();
  source = null;
  setMode("off");
}
