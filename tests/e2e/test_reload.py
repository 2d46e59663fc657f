"""Hot reload through the API and SIGHUP: a valid config is swapped in on the next
request; an invalid one is refused with file:line:column errors while the old one keeps
serving; runtime state survives; connections opened before stay up; listeners open and
close; 50 reloads under load cost no socket error."""
import shutil
import signal
import socket

import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, start_wrk, wrk_result, write_token
from conftest import free_port, server_yaml, wait_until, write_tree
from early_signal import serve_and_signal_early
from rawhttp import Conn


def config(port, admin_port, targets, rules="", listen_extra=(), maintenance=""):
    listen = ", ".join(f'"127.0.0.1:{p}"' for p in (port, *listen_extra))
    listed = ", ".join(f'"{t}"' for t in targets)
    server = server_yaml(port).replace(f'listen: ["127.0.0.1:{port}"]', f"listen: [{listen}]")
    return server + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: [{listed}]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
{maintenance}    rules:
      - {{match: {{path: "/version"}}, fixed: {{status: 200, body: "v1"}}}}
{rules}    default_action: {{forward: app}}
"""


class Site:
    def __init__(self, tmp_path, backend_factory, gateway_factory):
        write_token(tmp_path)
        write_tree(tmp_path / "pages", {"maintenance.html": "<p>back soon</p>\n", "a.txt": "a\n"})
        self.app = backend_factory("app")
        self.port, self.admin_port = free_port(), free_port()
        self.gw = gateway_factory(self.config(), self.port)
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        assert wait_until(lambda: api(self.admin, "GET", "/healthz").status_code == 200)

    def config(self, **kw):
        return config(self.port, self.admin_port, kw.pop("targets", [self.app.address]), **kw)

    def rewrite(self, text):
        self.gw.config.write_text(text)

    def reload(self):
        return api(self.admin, "POST", "/v1/reload")

    def get(self, path, **kw):
        return requests.get(self.gw.url + path, timeout=5, **kw)


@pytest.fixture
def site(tmp_path, backend_factory, gateway_factory):
    return Site(tmp_path, backend_factory, gateway_factory)


V2_RULE = '      - {match: {path: "/new"}, fixed: {status: 200, body: "v2"}}\n'


def test_reload_through_the_api_takes_effect_on_the_next_request(site):
    assert site.get("/new").headers.get("X-Backend") == "app"
    before = api(site.admin, "GET", "/v1/sites").json()["generation"]
    site.rewrite(site.config(rules=V2_RULE))
    r = site.reload()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generation"] > before and body["sites"] == 1 and body["notes"] == []
    assert site.get("/new").text == "v2"
    entry = api(site.admin, "GET", "/v1/audit?limit=1").json()["entries"][0]
    assert entry["action"] == "reload" and entry["token"] == "ops"


@pytest.mark.parametrize("breakage,expected", [
    (lambda c: c.replace("default_action: {forward: app}", "default_action: {forward: nowhere}"),
     "nowhere"),
    (lambda c: c.replace("workers: 2", "workers: many"), "workers"),
    (lambda c: "sites: [unclosed\n", "YAML"),
    (lambda c: c + "bogus_key: 1\n", "bogus_key"),
])
def test_invalid_config_is_refused_and_the_old_one_keeps_serving(site, breakage, expected):
    site.rewrite(breakage(site.config(rules=V2_RULE)))
    r = site.reload()
    assert r.status_code == 400, r.text
    body = r.json()
    assert "still serving the previous one" in body["error"]
    assert body["errors"], body
    assert all(str(site.gw.config) in e for e in body["errors"]), body["errors"]
    assert any(expected in e for e in body["errors"]), body["errors"]
    # file:line:column
    assert any(e.split(str(site.gw.config) + ":")[1].split(":")[0].isdigit() for e in body["errors"])
    assert site.get("/version").text == "v1"
    assert site.get("/new").headers.get("X-Backend") == "app", "a part of the bad config was applied"
    entry = api(site.admin, "GET", "/v1/audit?limit=1").json()["entries"][0]
    assert entry["action"] == "reload.refused"


def test_missing_page_file_is_refused(site):
    site.rewrite(site.config(rules='      - {match: {path: "/p"}, page: {file: /gone.html, status: 200}}\n'))
    r = site.reload()
    assert r.status_code == 400 and any("gone.html" in e for e in r.json()["errors"]), r.text
    assert site.get("/p").headers.get("X-Backend") == "app"


def test_sighup_reloads_and_a_bad_config_on_sighup_keeps_serving(site):
    site.rewrite(site.config(rules=V2_RULE))
    site.gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: site.get("/new").text == "v2", timeout=5)
    site.rewrite("sites: [\n")
    site.gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in site.gw.log_text(), timeout=5)
    assert site.gw.alive()
    assert site.get("/new").text == "v2"


def test_runtime_maintenance_survives_a_reload_and_a_restart(site):
    r = api(site.admin, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "db"})
    assert r.status_code == 200
    # The declared config says maintenance is off; the operator's switch still wins.
    site.rewrite(site.config(rules=V2_RULE, maintenance="    maintenance: {enabled: false}\n"))
    assert site.reload().status_code == 200
    assert site.get("/new").status_code == 503
    state = api(site.admin, "GET", "/v1/sites/www/maintenance").json()
    assert state["on"] is True and state["source"] == "api" and state["config"]["enabled"] is False
    site.gw.stop()
    site.gw.start()
    assert site.get("/new").status_code == 503


def test_drain_survives_a_reload(site, backend_factory):
    other = backend_factory("other")
    site.rewrite(site.config(targets=[site.app.address, other.address]))
    assert site.reload().status_code == 200
    assert api(site.admin, "PUT", f"/v1/targets/app/{site.app.address}/drain").status_code == 200
    site.rewrite(site.config(targets=[other.address, site.app.address], rules=V2_RULE))
    assert site.reload().status_code == 200
    assert {site.get(f"/r{i}").headers["X-Backend"] for i in range(10)} == {"other"}


def test_keep_alive_and_websocket_opened_before_a_reload_keep_working(site):
    import websocket
    ws = websocket.create_connection(f"ws://127.0.0.1:{site.port}/ws", timeout=5)
    with Conn(site.port) as c:
        c.send("GET /version HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"v1"
        ws.send("before")
        assert ws.recv() == "before"
        site.rewrite(site.config(rules=V2_RULE))
        assert site.reload().status_code == 200
        c.send("GET /new HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"v2"
        ws.send("after")
        assert ws.recv() == "after"
    ws.close()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def test_listeners_added_and_removed_by_a_reload_open_and_close(site):
    extra = free_port()
    assert _refused(extra)
    site.rewrite(site.config(listen_extra=(extra,)))
    assert site.reload().status_code == 200
    assert requests.get(f"http://127.0.0.1:{extra}/version", timeout=5).text == "v1"
    site.rewrite(site.config())
    assert site.reload().status_code == 200
    assert wait_until(lambda: _refused(extra), timeout=5)
    assert site.get("/version").text == "v1"


def test_a_listener_that_cannot_open_refuses_the_reload(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        site.rewrite(site.config(listen_extra=(busy,), rules=V2_RULE))
        r = site.reload()
    assert r.status_code == 400 and any(f"127.0.0.1:{busy}" in e for e in r.json()["errors"]), r.text
    assert site.get("/new").headers.get("X-Backend") == "app"


def test_changes_that_need_a_restart_are_said(site):
    site.rewrite(site.config().replace("workers: 2", "workers: 3"))
    r = site.reload()
    assert r.status_code == 200
    assert any("server.workers" in n and "restart" in n for n in r.json()["notes"]), r.text


def test_reload_needs_post_and_the_token(site):
    assert api(site.admin, "GET", "/v1/reload").status_code == 405
    r = api(site.admin, "POST", "/v1/reload", token=None)
    assert r.status_code == 401 and "token" in r.json()["error"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_fifty_reloads_under_load_cost_no_socket_error(site, tmp_path):
    load = start_wrk(tmp_path, site.gw.url + "/", seconds=8)
    versions = [site.config(), site.config(rules=V2_RULE)]
    with requests.Session() as s:
        for i in range(50):
            site.rewrite(versions[i % 2])
            r = s.post(site.admin + "/v1/reload", headers={"Authorization": "Bearer " + TOKEN},
                       timeout=10)
            assert r.status_code == 200, r.text
    out, statuses = wrk_result(load)
    assert "Socket errors" not in out, out
    assert set(statuses) == {200}, statuses


def test_health_is_kept_across_a_reload_and_checks_go_on(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": "<p>back soon</p>\n"})
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    checks = ("    health: {path: /health, interval: 200ms, timeout: 200ms,"
              " healthy_threshold: 2, unhealthy_threshold: 1}\n")

    def text(rules=""):
        c = config(port, admin_port, [app.address], rules=rules)
        return c.replace(f'    targets: ["{app.address}"]\n', f'    targets: ["{app.address}"]\n' + checks)

    gw = gateway_factory(text(), port)
    admin = f"http://127.0.0.1:{admin_port}"

    def state():
        return api(admin, "GET", "/v1/targets").json()["target_groups"][0]["targets"][0]["state"]

    assert wait_until(lambda: state() == "healthy")
    app.kill()
    assert wait_until(lambda: state() == "unhealthy", timeout=5)
    gw.config.write_text(text(rules=V2_RULE))
    assert api(admin, "POST", "/v1/reload").status_code == 200
    # Still down after the reload: a reload does not trust a failed target again.
    assert state() == "unhealthy"
    assert requests.get(gw.url + "/x", timeout=5).status_code == 503
    app.start()
    # The new config's checks run: the target comes back after the healthy threshold.
    assert wait_until(lambda: state() == "healthy", timeout=5)
    assert requests.get(gw.url + "/x", timeout=5).headers.get("X-Backend") == "app"


def test_sighup_in_the_first_milliseconds_is_a_reload_not_a_death(tmp_path):
    # Before the fix, a SIGHUP that came before the control loop had its signal_set killed
    # the process (the default action of SIGHUP): a `systemctl reload` right after a start.
    early = 0
    for delay in (0, 0.001, 0.005) * 2:
        port = free_port()
        proc, unarmed = serve_and_signal_early(tmp_path, port, signal.SIGHUP, delay)
        early += unarmed
        log = tmp_path / f"early-{port}.log"
        try:
            reloaded = wait_until(lambda: proc.poll() is not None or "SIGHUP: reloading" in
                                  log.read_text(errors="replace"), timeout=10)
            assert proc.poll() is None, \
                f"SIGHUP {delay * 1000:.0f} ms into start-up: exit code {proc.returncode}\n" \
                + log.read_text(errors="replace")
            assert reloaded, log.read_text(errors="replace")
            assert wait_until(lambda: "reloaded " in log.read_text(errors="replace"), timeout=10)
            r = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            assert r.status_code == 200 and r.text == "ok"
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert early > 0, "every SIGHUP came after the gateway was ready: nothing was tested"
