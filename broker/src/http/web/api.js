// The broker's /api/v1 as the dashboard uses it: the same routes a script
// uses, authorised by the session cookie that POST /api/v1/login set. Every
// request carries X-Taskmill-CSRF, which the broker requires of a write
// authorised by the cookie (another site cannot set it).
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Reads {"error_code", "error"} and the older {"error": {code, message}}.
function errorOf(status, body) {
  if (body && typeof body.error === "string") return new ApiError(status, body.error_code || "error", body.error);
  if (body && body.error && typeof body.error === "object") return new ApiError(status, body.error.code, body.error.message);
  return new ApiError(status, "http_" + status, "HTTP " + status);
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export async function request(method, path, body) {
  const init = { method, cache: "no-store", credentials: "same-origin", headers: { "X-Taskmill-CSRF": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = errorOf(res.status, data);
    if (res.status === 401 && !path.endsWith("/login")) onUnauthorized(err);
    throw err;
  }
  return data ?? {};
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});
export const del = (path) => request("DELETE", path);

// Who we are: {role: "none" | "read" | "write", name, via}.
export const me = { role: "none", name: null };
export async function whoami() {
  Object.assign(me, await get("/api/v1/whoami"));
  return me;
}
export async function login(token) {
  Object.assign(me, await post("/api/v1/login", { token }));
  return me;
}
export async function logout() {
  await post("/api/v1/logout");
  Object.assign(me, { role: "none", name: null });
}
export const canWrite = () => me.role === "write";

// Follows a bulk job (200 done, or 202 running) to its end.
export async function finishJob(reply) {
  let job = reply.job;
  while (job && job.state !== "done") {
    await new Promise((r) => setTimeout(r, 500));
    job = await get("/api/v1/jobs/" + job.id);
  }
  return job;
}
