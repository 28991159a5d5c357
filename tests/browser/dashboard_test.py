#!/usr/bin/env python3
"""The dashboard in headless Chromium (chromedriver, selenium) against a real
broker and host on loopback: log in with a write token, cancel a running
task, pause a queue, retry a failed task into it, resume it, open a
workflow's graph, and check what the page shows against the API; then, with
a read token, no action button is rendered and the API refuses (403 JSON).
Screenshots are saved in --artifacts."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    print("SKIP: python3-selenium is not installed (scripts/install-deps.sh)")
    sys.exit(77)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WRITER = "w-" + os.urandom(8).hex()
READER = "r-" + os.urandom(8).hex()


def wait_until(what, pred, timeout=20.0):
    """Polls pred() until it returns a true value (returned), or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)  # polling interval, not synchronisation


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def get(self, path):
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def submit(self, task):
        status, body = self.call("POST", "/api/v1/tasks", task)
        assert status == 201, body
        return body["ids"][0]

    def state(self, task_id):
        return self.get("/api/v1/tasks/" + task_id)["state"]


class System:
    """A broker (no PUB socket: the page needs none) and one host."""

    def __init__(self, args, tmp):
        data = os.path.join(tmp, "broker")
        os.makedirs(data)
        self.procs = []
        self.logs = []
        self.spawn([args.broker, "--data-dir", data, "--frontend", "tcp://127.0.0.1:0",
                    "--backend", "tcp://127.0.0.1:0", "--events", "", "--http", "127.0.0.1:0",
                    "--http-token", "ops:write:" + WRITER, "--http-token", "viewer:read:" + READER],
                   os.path.join(tmp, "broker.log"))
        eps_file = os.path.join(data, "endpoints.json")
        wait_until("the broker's endpoints.json", lambda: os.path.exists(eps_file))
        eps = json.load(open(eps_file))
        self.url = eps["http"]
        run_dir = os.path.join(tmp, "host.run")
        os.makedirs(run_dir)
        self.spawn([args.host, "--broker", eps["backend"], "--plugins", args.plugins, "--processes", "1",
                    "--concurrency", "4", "--run-dir", run_dir], os.path.join(tmp, "host.log"))

    def spawn(self, argv, log):
        out = open(log, "wb")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()

    def dump_logs(self):
        for log in self.logs:
            print("---- " + log)
            print(open(log, errors="replace").read()[-4000:])


def browser(profile):
    o = Options()
    o.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1400,1200", "--user-data-dir=" + profile]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


class Page:
    def __init__(self, driver, base, shots):
        self.d, self.base, self.shots = driver, base, shots
        self.wait = WebDriverWait(driver, 20, poll_frequency=0.05)

    def go(self, route):
        self.d.execute_script("location.hash = arguments[0]", route)

    def find(self, css):
        return self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css), message="no element " + css)

    def until(self, what, pred):
        return self.wait.until(lambda d: pred(), message=what)

    def attr(self, css, name):
        """The attribute of the first match, read in one step (the page may
        re-render between two WebDriver calls); None when absent."""
        return self.d.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            css, name)

    def texts(self, css, name):
        """The attribute of every match, read in one step."""
        return self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute(arguments[1]));",
            css, name)

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def shot(self, name):
        self.d.save_screenshot(os.path.join(self.shots, name + ".png"))

    def loaded(self, route, css):
        """Opens `route` and waits for `css` in the page it renders."""
        self.go(route)
        return self.find(css)

    def confirm(self):
        self.find("dialog#confirm[open]")
        self.find("#confirm-ok").click()


def as_writer(page, api, sys_):
    d = page.d
    # The old link form: the token logs in once, then leaves the address.
    d.get(sys_.url + "/#token=" + WRITER)
    page.find("body[data-loaded='1']")
    assert WRITER not in d.current_url, d.current_url
    assert "ops (write)" in page.find("#me").text
    page.until("the stream to connect", lambda: page.find("#live").text == "live")
    assert d.execute_script("return localStorage.length") == 0, "nothing kept in localStorage"
    page.shot("01-overview")

    # Overview against the API: the FAILED tile and a queue's depth.
    stats = api.get("/api/v1/stats")
    page.until("the FAILED tile to match the API", lambda: page.d.execute_script(
        "const b = document.querySelector(\"a.state[data-state='FAILED'] b.count\"); return b && b.textContent;")
        == str(stats["states"].get("FAILED", 0)))

    # Cancel a running task from its page.
    running = sys_.running
    page.loaded("#/task/" + running, "button[data-act='cancel']").click()
    wait_until("the task to be cancelled", lambda: api.state(running) == "CANCELLED")
    page.until("the page to show CANCELLED", lambda: page.attr(".page", "data-state") == "CANCELLED")
    assert not page.all("button[data-act='cancel']"), "a cancelled task has no cancel button"
    page.shot("02-cancelled")

    # Pause fail-q from the queues page.
    row = "tr[data-queue='fail-q']"
    page.loaded("#/queues", row + " button[data-act='pause']").click()
    page.until("the row to show paused", lambda: page.attr(row, "data-paused") == "true")
    assert [q for q in api.get("/api/v1/queues")["queues"] if q["name"] == "fail-q"][0]["paused"] is True

    # Retry the failed task: it waits QUEUED in the paused queue.
    failed = sys_.failed
    page.loaded("#/task/" + failed, "button[data-act='retry']").click()
    wait_until("the retried task to be queued", lambda: api.state(failed) == "QUEUED")
    page.until("the page to show QUEUED", lambda: page.attr(".page", "data-state") == "QUEUED")
    page.shot("03-retried")

    # Resume: the task runs (and fails again: its handler always fails).
    page.loaded("#/queues", row + " button[data-act='resume']").click()
    page.until("the row to show running", lambda: page.attr(row, "data-paused") == "false")
    wait_until("the retried task to run again", lambda: api.get("/api/v1/tasks/" + failed)["finished_ms"] > 0)
    assert [q for q in api.get("/api/v1/queues")["queues"] if q["name"] == "fail-q"][0]["paused"] is False

    # The failures view: FAILED newest-finished first, as the API lists them.
    page.loaded("#/tasks?state=FAILED", "#tasks tbody tr[data-task]")
    listed = api.get("/api/v1/tasks?state=FAILED&limit=50")["tasks"]
    page.until("the failures to match the API", lambda: page.texts("#tasks tbody tr[data-task]", "data-task") == [t["id"] for t in listed])
    page.shot("04-failures")

    # The workflow's graph: every step drawn with the state the API gives.
    wf = api.get("/api/v1/workflows/" + sys_.workflow)
    page.loaded("#/workflow/" + sys_.workflow, "svg#dag g.step")
    want = {s["name"]: s["state"] for s in wf["steps"]}
    page.until("the graph to show every step's state", lambda: dict(zip(
        page.texts("svg#dag g.step", "data-step"), page.texts("svg#dag g.step", "data-state"))) == want)
    page.shot("05-workflow")

    # The workers page: real slots, prefetch apart, and each worker's memory
    # (from its heartbeats), as the API gives them.
    workers = api.get("/api/v1/workers")["workers"]
    wid = workers[0]["id"]
    cell = "tr[data-worker='%s'] td[data-field='memory']" % wid
    page.loaded("#/workers", "tr[data-worker]")
    page.until("the worker's memory", lambda: page.find(cell).text.endswith("MiB"))
    row = page.find("tr[data-worker='%s']" % wid).text
    assert "/%d" % workers[0]["slots"] in row, row
    page.shot("06-workers")

    # Logging out forgets the session.
    page.find("#logout").click()
    page.find("#login:not([hidden])")


def as_reader(page, api_read, sys_):
    page.find("#login-token").send_keys(READER)
    page.find("#login-button").click()
    page.find("body[data-loaded='1']")
    assert "viewer (read)" in page.find("#me").text
    page.loaded("#/task/" + sys_.failed, "dd[data-field='state']")
    page.loaded("#/queues", "tr[data-queue='fail-q']")
    page.shot("07-read-only")
    assert not page.all("button[data-act]"), "no action buttons for a read token"
    page.loaded("#/tasks", "#tasks tbody tr[data-task]")
    assert not page.all("input.pick") and not page.all("button[data-all]"), "no selection for a read token"
    # The API refuses, by token and by the page's own session.
    status, body = api_read.call("POST", "/api/v1/queues/fail-q/pause")
    assert status == 403 and "error" in body, (status, body)
    status, body = api_read.call("POST", "/api/v1/tasks/" + sys_.failed + "/retry")
    assert status == 403, (status, body)
    reply = page.d.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/v1/queues/fail-q/pause', {method: 'POST', headers: {'X-Taskmill-CSRF': '1'}})"
        ".then(async (r) => done([r.status, await r.json()]));")
    assert reply[0] == 403 and "error" in reply[1], reply


def prepare(api, sys_):
    wait_until("the host's worker", lambda: len(api.get("/api/v1/workers")["workers"]) > 0)
    sys_.running = api.submit({"handler": "demo.sleep", "payload": {"ms": 60000}, "queue": "slow-q"})
    sys_.failed = api.submit({"handler": "demo.fail", "payload": {"mode": "permanent"}, "queue": "fail-q"})
    api.submit({"handler": "echo.echo", "queue": "fail-q", "delay_ms": 3600000})  # fail-q stays listed
    status, body = api.call("POST", "/api/v1/workflows", {"name": "diamond", "steps": [
        {"name": "a", "handler": "echo.echo", "payload": {"x": 1}},
        {"name": "b", "handler": "echo.echo", "depends_on": ["a"]},
        {"name": "c", "handler": "echo.echo", "depends_on": ["a"]},
        {"name": "d", "handler": "echo.echo", "depends_on": ["b", "c"]}]})
    assert status == 201, body
    sys_.workflow = body["ids"][0]
    wait_until("a running task", lambda: api.state(sys_.running) == "RUNNING")
    wait_until("a failed task", lambda: api.state(sys_.failed) == "FAILED")
    wait_until("the workflow to finish", lambda: api.get("/api/v1/workflows/" + sys_.workflow)["state"] == "SUCCEEDED")


def main():
    p = argparse.ArgumentParser()
    for a in ["--broker", "--host", "--plugins", "--artifacts"]:
        p.add_argument(a, required=True)
    args = p.parse_args()
    for exe in [CHROMIUM, CHROMEDRIVER]:
        if not os.path.exists(exe):
            print("SKIP: %s is not installed (scripts/install-deps.sh)" % exe)
            return 77
    shutil.rmtree(args.artifacts, ignore_errors=True)
    os.makedirs(args.artifacts)
    tmp = tempfile.mkdtemp(prefix="taskmill-browser-")
    sys_ = System(args, tmp)
    driver = None
    started = time.monotonic()
    try:
        api = Api(sys_.url, WRITER)
        prepare(api, sys_)
        driver = browser(os.path.join(tmp, "profile"))
        page = Page(driver, sys_.url, args.artifacts)
        try:
            as_writer(page, api, sys_)
            as_reader(page, Api(sys_.url, READER), sys_)
        except Exception:
            page.shot("failure")
            try:
                print("browser console:", driver.get_log("browser"))
            except Exception:  # not every driver keeps the console
                pass
            raise
        print("dashboard browser test passed in %.1f s; screenshots in %s" % (time.monotonic() - started,
                                                                              args.artifacts))
        return 0
    except Exception:
        sys_.dump_logs()
        raise
    finally:
        if driver is not None:
            driver.quit()
        sys_.stop()
        if not os.environ.get("TASKMILL_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
