"""The maintenance switch through the admin API: effective on the next
request, durable across a kill -9, audited, refused without the right token,
and harmless to requests in flight (100 toggles under wrk load)."""
import json
import shutil
import signal
import subprocess

import pytest
import requests

from adminlib import start_wrk, wrk_result
from conftest import BINARY, free_port, server_yaml, wait_until

TOKEN = "ops-token-0123456789abcdef"


def config(port, admin_port, backend):
    return server_yaml(port) + f"""
admin:
  listen: "127.0.0.1:{admin_port}"
  tokens: [{{name: ops, file: admin-token}}]
target_groups:
  app:
    targets: ["{backend}"]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    maintenance:
      message: "Back soon."
      allow: ["/assets/*"]
    default_action: {{forward: app}}
"""


@pytest.fixture
def site(tmp_path, backend_factory, gateway_factory):
    (tmp_path / "admin-token").write_text(TOKEN + "\n")
    pages = tmp_path / "pages"
    (pages / "assets").mkdir(parents=True)
    (pages / "maintenance.html").write_text("<html><body>We'll be right back</body></html>\n")
    (pages / "assets" / "site.css").write_text("body{}\n")
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    gw = gateway_factory(config(port, admin_port, app.address), port)
    gw.admin = f"http://127.0.0.1:{admin_port}"
    gw.app = app
    return gw


def api(gw, method, path, body=None, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, gw.admin + path, headers=headers,
                            data=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
                            timeout=5)


def test_toggle_takes_effect_on_the_next_request(site):
    assert requests.get(site.url + "/").status_code == 200
    r = api(site, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "deploy 42"})
    assert r.status_code == 200, r.text
    assert r.json()["on"] is True and r.json()["source"] == "api"
    page = requests.get(site.url + "/", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "right back" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert int(page.headers["Retry-After"]) > 0
    js = requests.get(site.url + "/", headers={"Accept": "application/json"})
    assert js.status_code == 503 and js.json()["status"] == "maintenance"
    assert js.json()["message"] == "Back soon."
    assert requests.get(site.url + "/assets/site.css").status_code == 200
    r = api(site, "DELETE", "/v1/sites/www/maintenance")
    assert r.status_code == 200 and r.json()["on"] is False and r.json()["source"] == "config"
    assert requests.get(site.url + "/").status_code == 200


def test_until_drives_retry_after(site):
    r = api(site, "PUT", "/v1/sites/www/maintenance", {"on": True, "until": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200
    ra = int(requests.get(site.url + "/").headers["Retry-After"])
    assert ra > 60 * 60 * 24 * 365


def test_auth_failures_are_401_json(site):
    for token in (None, "wrong-token-wrong-token", TOKEN + "x"):
        r = api(site, "GET", "/v1/sites", token=token)
        assert r.status_code == 401
        assert "token" in r.json()["error"]
    assert api(site, "PUT", "/v1/sites/www/maintenance", {"on": True}, token="nope").status_code == 401
    assert requests.get(site.url + "/").status_code == 200  # nothing changed
    assert requests.get(site.admin + "/healthz").json() == {"status": "ok"}
    assert TOKEN not in site.log_text()


@pytest.mark.parametrize("body, message", [
    ("{not json", "JSON"),
    ("[1, 2]", "JSON object"),
    ({"reason": "x"}, "'on'"),
    ({"on": "yes"}, "'on'"),
    ({"on": True, "until": "tomorrow"}, "until"),
    ({"on": True, "colour": "red"}, "unknown field 'colour'"),
])
def test_bad_bodies_get_a_json_error(site, body, message):
    r = api(site, "PUT", "/v1/sites/www/maintenance", body)
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert requests.get(site.url + "/").status_code == 200


def test_unknown_site_and_endpoint(site):
    assert api(site, "PUT", "/v1/sites/nope/maintenance", {"on": True}).status_code == 404
    assert api(site, "GET", "/v1/nothing").status_code == 404


def test_audit_log_records_who_did_what(site):
    api(site, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "db upgrade"})
    api(site, "DELETE", "/v1/sites/www/maintenance")
    entries = api(site, "GET", "/v1/audit").json()["entries"]
    assert [e["action"] for e in entries[:2]] == ["maintenance.clear", "maintenance.on"]
    assert entries[1]["token"] == "ops" and entries[1]["reason"] == "db upgrade"
    assert entries[1]["before"]["on"] is False and entries[1]["after"]["on"] is True
    assert entries[1]["client"] == "127.0.0.1"
    page = api(site, "GET", "/v1/audit?offset=1&limit=1").json()["entries"]
    assert len(page) == 1 and page[0]["action"] == "maintenance.on"


def test_state_survives_kill_9_and_corrupt_state_stops_startup(site, tmp_path):
    api(site, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "survive"})
    site.stop(signal.SIGKILL)
    site.start()
    assert requests.get(site.url + "/").status_code == 503
    state = api(site, "GET", "/v1/sites/www/maintenance").json()
    assert state["runtime"]["reason"] == "survive"
    site.stop()

    (tmp_path / "intermission.state.json").write_text("{ torn")
    out = subprocess.run([BINARY, "serve", "--config", str(site.config)], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode != 0
    assert "corrupt" in out.stderr and "--fresh-state" in out.stderr
    fresh = subprocess.Popen([BINARY, "serve", "--config", str(site.config), "--fresh-state"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _status(site.url) == 200, timeout=10)
    finally:
        fresh.terminate()
        fresh.wait(timeout=10)


def _status(url):
    try:
        return requests.get(url + "/", timeout=1).status_code
    except requests.RequestException:
        return None


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_hundred_toggles_under_load_only_200_and_503(site, tmp_path):
    load = start_wrk(tmp_path, site.url + "/", seconds=6, connections=32)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    for i in range(100):
        r = session.put(site.admin + "/v1/sites/www/maintenance", data=json.dumps({"on": i % 2 == 0}),
                        timeout=5)
        assert r.status_code == 200
    out, statuses = wrk_result(load, timeout=60)
    assert "Socket errors" not in out, out
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.get(200, 0) > 0 and statuses.get(503, 0) > 0, statuses


def _iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_window_scheduled_through_the_api_starts_and_ends_by_itself(site):
    import time
    start = int(time.time()) + 2
    r = api(site, "POST", "/v1/sites/www/maintenance/windows",
            {"start": _iso(start), "end": _iso(start + 2), "reason": "short deploy"})
    assert r.status_code == 200, r.text
    assert r.json()["runtime"]["windows"][0]["reason"] == "short deploy"
    assert requests.get(site.url + "/").status_code == 200
    assert wait_until(lambda: _status(site.url) == 503, timeout=4)
    ra = int(requests.get(site.url + "/").headers["Retry-After"])
    assert 0 < ra <= 2
    assert wait_until(lambda: _status(site.url) == 200, timeout=4)
    listed = api(site, "GET", "/v1/sites/www/maintenance/windows").json()
    assert len(listed["runtime"]["windows"]) == 1
    assert api(site, "DELETE", "/v1/sites/www/maintenance/windows").json()["runtime"]["windows"] == []


@pytest.mark.parametrize("body, message", [
    ({"start": "2030-01-01T00:00:00Z"}, "missing 'end'"),
    ({"start": "2030-01-01T01:00:00Z", "end": "2030-01-01T00:00:00Z"}, "after its start"),
    ({"start": "2000-01-01T00:00:00Z", "end": "2000-01-01T01:00:00Z"}, "already ended"),
    ({"start": "soon", "end": "2030-01-01T00:00:00Z"}, "bad 'start'"),
])
def test_bad_windows_are_refused(site, body, message):
    r = api(site, "POST", "/v1/sites/www/maintenance/windows", body)
    assert r.status_code == 400
    assert message in r.json()["error"]
