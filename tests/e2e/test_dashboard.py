"""The dashboard on the admin listener, end to end: the page and its files as served, then
the page itself in headless Chromium (Debian's, driven by playwright-core through
tests/dashboard/driver.js): sign-in, live site and target health, maintenance on and off
with the public URL checked from here, the bypass preview, errors shown to the operator.

The browser tests fail (never skip) when node, Chromium or playwright-core is missing:
scripts/test.sh installs them. DASHBOARD_SCREENSHOT=path saves a screenshot of the
dashboard during the run (docs/img/dashboard.png is made that way)."""
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time

import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import ROOT, free_port, server_yaml, wait_for_port, wait_until, write_tree

DRIVER_DIR = ROOT / "tests" / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECRET = "cookie-secret-0123456789abcdef"
PAGE = "<!doctype html><title>Back soon</title><h1>Back soon</h1><p>We are upgrading.</p>\n"
FILES = {"/dashboard/": "text/html", "/dashboard/api.js": "text/javascript",
         "/dashboard/app.js": "text/javascript", "/dashboard/style.css": "text/css"}


def config(port, admin_port, app, api_backend, dead_port, spare_port):
    return server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["{app.address}", "127.0.0.1:{dead_port}"]
    health: {{path: /health, interval: 300ms, timeout: 250ms, healthy_threshold: 1, unhealthy_threshold: 1}}
  api:
    targets: ["{api_backend.address}"]
    health: {{path: /health, interval: 300ms, timeout: 250ms}}
  spare:
    targets: ["127.0.0.1:{spare_port}"]
sites:
  - name: www
    hosts: [www.example.com]
    default: true
    pages: {{root: pages}}
    maintenance:
      bypass: {{cookie: {{secret: {SECRET}}}}}
    default_action: {{forward: app}}
  - name: api
    hosts: [api.example.com]
    default_action: {{forward: api}}
"""


@pytest.fixture
def dash(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": PAGE})
    app, api_backend = backend_factory("app"), backend_factory("api")
    port, admin_port, dead_port = free_port(), free_port(), free_port()
    gw = gateway_factory(config(port, admin_port, app, api_backend, dead_port, free_port()), port)
    gw.admin = f"http://127.0.0.1:{admin_port}"
    gw.app, gw.dead = app, f"127.0.0.1:{dead_port}"
    wait_for_port(admin_port)

    def settled():
        groups = api(gw.admin, "GET", "/v1/targets").json()["target_groups"]
        states = {(g["name"], t["address"]): t["state"] for g in groups for t in g["targets"]}
        return states[("app", app.address)] == "healthy" and states[("app", gw.dead)] == "unhealthy"
    assert wait_until(settled, timeout=10), "health checks did not settle"
    return gw


def fetch(url):
    return requests.get(url, headers={"Accept": "text/html"}, timeout=5)  # as a browser asks


def test_page_and_files_are_served_without_a_token_or_anything_external(dash):
    for path, kind in FILES.items():
        r = fetch(dash.admin + path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith(kind) and "charset=utf-8" in r.headers["Content-Type"]
        assert r.headers["Cache-Control"] == "no-store"
        policy = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        # No URL with a host in it: whatever the page talks to, it builds at run time.
        assert not re.findall(r"https?://[\w\[]", r.text), path
        assert not re.findall(r"[\"'(]//\w", r.text), path  # protocol-relative
    html = fetch(dash.admin + "/dashboard/").text
    assert fetch(dash.admin + "/dashboard").text == html
    assert set(re.findall(r'(?:src|href)="([^"]*)"', html)) == {
        "data:,", "/dashboard/style.css", "/dashboard/api.js", "/dashboard/app.js"}
    assert "style=" not in html and "<script>" not in html  # nothing inline: the CSP forbids it
    assert "@import" not in fetch(dash.admin + "/dashboard/style.css").text
    assert "url(" not in fetch(dash.admin + "/dashboard/style.css").text

    missing = fetch(dash.admin + "/dashboard/nope.js")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    post = requests.post(dash.admin + "/dashboard/", timeout=5)
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"
    head = requests.head(dash.admin + "/dashboard/app.js", timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 1000 and not head.content
    # The API still wants its token; the page is not a way around it.
    assert fetch(dash.admin + "/v1/sites").status_code == 401
    assert fetch(dash.admin + "/dashboards").status_code == 401


class Browser:
    """One Chromium, driven command by command through tests/dashboard/driver.js."""

    def __init__(self, tmp_path, allow):
        missing = []
        if not shutil.which("node"):
            missing.append("node (Debian package nodejs)")
        if not os.access(CHROMIUM, os.X_OK):
            missing.append(f"{CHROMIUM} (Debian package chromium)")
        if not (DRIVER_DIR / "node_modules" / "playwright-core").is_dir():
            missing.append("playwright-core (npm ci --prefix tests/dashboard)")
        if missing:
            pytest.fail("the dashboard tests need " + ", ".join(missing) +
                        "; scripts/test.sh installs them", pytrace=False)
        self.stderr_path = tmp_path / "driver.stderr"
        self.proc = subprocess.Popen(
            ["node", str(DRIVER_DIR / "driver.js"), json.dumps({"allow": allow})],
            cwd=DRIVER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.stderr_path, "wb"), text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.version = self._answer(timeout=60)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _answer(self, timeout=30):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the browser driver did not answer in {timeout}s")
        if line is None:
            pytest.fail("the browser driver exited: " + self.stderr_path.read_text(errors="replace"))
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError("browser: " + answer["error"])
        return answer["value"]

    def __call__(self, op, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        return self._answer()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "close"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def browser(tmp_path, dash):
    b = Browser(tmp_path, [dash.admin, dash.url])
    yield b
    b.close()


def site(name, selector=""):
    return f'[data-site="{name}"] {selector}'.strip()


def sign_in(browser, dash, token=TOKEN):
    assert browser("goto", url=dash.admin + "/dashboard/") == 200
    browser("fill", selector="#token", value=token)
    browser("click", selector="#sign-in-form button[type=submit]")


def no_problems(browser):
    problems = browser("problems")
    assert problems == {"page_errors": [], "csp": [], "external": []}, problems


def test_wrong_token_gets_a_clear_sign_in_error_and_a_refused_token_signs_out(dash, browser):
    sign_in(browser, dash, token="not-the-token-at-all")
    text = browser("wait_text", selector="#sign-in-error", text="Wrong admin token")
    assert "missing or wrong admin token" in text
    assert browser("visible", selector="#dashboard") is False
    assert browser("eval", expression="sessionStorage.length") == 0

    browser("fill", selector="#token", value=TOKEN)
    browser("click", selector="#sign-in-form button[type=submit]")
    browser("wait_text", selector=site("www", ".site-name"), text="www")
    assert browser("eval", expression="Object.keys(sessionStorage)") == ["intermission.token"]
    assert browser("eval", expression="localStorage.getItem('intermission.token')") is None
    browser("click", selector="#sign-out")
    browser("wait_text", selector="#sign-in-error", text="Signed out")
    assert browser("eval", expression="sessionStorage.length") == 0
    assert browser("count", selector="[data-site]") == 0

    # Signed in again, then the token is taken away (new token file, reload): the next
    # poll's 401 brings the sign-in form back with the reason.
    sign_in(browser, dash)
    browser("wait_text", selector=site("www", ".site-name"), text="www")
    (dash.tmp_path / "admin-token").write_text("a-brand-new-token-0123456789\n")
    assert api(dash.admin, "POST", "/v1/reload").status_code == 200
    browser("wait_text", selector="#sign-in-error", text="refused the token")
    assert browser("visible", selector="#dashboard") is False
    no_problems(browser)


def test_maintenance_on_and_off_from_the_dashboard(dash, browser):
    app_row = site("www", f'tr[data-target="{dash.app.address}"]')
    dead_row = site("www", f'tr[data-target="{dash.dead}"]')
    assert fetch(dash.url + "/").status_code == 200
    sign_in(browser, dash)
    browser("wait_text", selector=site("www", ".site-state"), text="serving")
    browser("wait_text", selector=f"{app_row} .state", text="healthy")
    browser("wait_text", selector=f"{dead_row} .state", text="unhealthy")
    assert browser("text", selector=f"{dead_row} .error-text")  # why it is down
    assert "ms" in browser("text", selector=f"{app_row} td:nth-child(3)")
    browser("wait_text", selector=site("www", ".group h4"), text="1/2 healthy, 1 serving")
    browser("wait_text", selector=site("api", ".site-state"), text="serving")
    browser("wait_text", selector="#other-groups", text="spare")
    assert browser("eval", expression=f"document.querySelectorAll('{app_row} .bar').length") >= 1

    browser("fill", selector=site("www", "input[name=reason]"), value="database upgrade")
    browser("fill", selector=site("www", "input[name=until]"), value="45m")
    browser("click", selector=site("www", "button[name=on]"))
    browser("wait_text", selector=site("www", ".site-state"), text="maintenance")
    browser("wait_text", selector=site("www", "dd.m-reason"), text="database upgrade")
    browser("wait_text", selector=site("www", "dd.m-source"), text="api (set by ops")
    assert "(in 4" in browser("text", selector=site("www", "dd.m-until"))
    r = fetch(dash.url + "/")
    assert r.status_code == 503 and "Back soon" in r.text
    state = api(dash.admin, "GET", "/v1/sites/www/maintenance").json()
    assert state["on"] is True and state["runtime"]["reason"] == "database upgrade" and state["until"]
    browser("wait_text", selector="#audit", text="maintenance.on")

    # The preview: a bypass link opened in a new tab shows the real site.
    browser("fill", selector=site("www", "input[name=base]"), value=dash.url)
    tab = browser("popup", selector=site("www", ".preview-form button[type=submit]"))
    assert tab["text"] == "hello from app" and tab["url"].startswith(dash.url)
    assert fetch(dash.url + "/").status_code == 503  # visitors still get the page
    browser("wait_text", selector="#audit", text="bypass.issue")

    if os.environ.get("DASHBOARD_SCREENSHOT"):
        time.sleep(12)  # a few more polls: some recent history to show
        browser("screenshot", path=os.environ["DASHBOARD_SCREENSHOT"])

    browser("click", selector=site("www", "button[name=off]"))
    browser("wait_text", selector=site("www", ".site-state"), text="serving")
    browser("wait_text", selector=site("www", "dd.m-state"), text="off")
    assert fetch(dash.url + "/").status_code == 200
    browser("click", selector=site("www", "button[name=clear]"))
    browser("wait_text", selector=site("www", "dd.m-source"), text="config")
    assert api(dash.admin, "GET", "/v1/sites/www/maintenance").json()["runtime"] is None
    browser("wait_text", selector="#audit", text="maintenance.clear")
    no_problems(browser)


def test_api_errors_are_shown_and_api_text_is_never_markup(dash, browser):
    sign_in(browser, dash)
    browser("wait_text", selector=site("www", ".site-state"), text="serving")

    browser("fill", selector=site("www", "input[name=until]"), value="next tuesday")
    browser("click", selector=site("www", "button[name=on]"))
    text = browser("wait_text", selector="#banner-text", text="bad 'until'")
    assert text.startswith("PUT /v1/sites/www/maintenance: ")
    assert fetch(dash.url + "/").status_code == 200
    until = json.dumps(site("www", "input[name=until]"))
    assert browser("eval", expression=f"document.querySelector({until}).value") == "next tuesday"

    # A site without a bypass cookie secret: the API's 409 reaches the operator.
    browser("fill", selector=site("api", "input[name=base]"), value="http://127.0.0.1:1")
    browser("click", selector=site("api", ".preview-form button[type=submit]"))
    browser("wait_text", selector="#banner-text", text="cookie.secret_file")
    browser("click", selector="#banner-close")
    browser("wait_hidden", selector="#banner")

    reason = '<img src=x onerror="window.pwned=1"> upgrade'
    browser("fill", selector=site("www", "input[name=until]"), value="")
    browser("fill", selector=site("www", "input[name=reason]"), value=reason)
    browser("click", selector=site("www", "button[name=on]"))
    assert browser("wait_text", selector=site("www", "dd.m-reason"), text="upgrade") == reason
    browser("wait_text", selector="#audit", text="<img src=x")
    assert browser("eval", expression="document.querySelectorAll('main img').length") == 0
    assert browser("eval", expression="window.pwned === undefined") is True
    no_problems(browser)
