"""The admin API beyond maintenance: sites with their live state, /healthz, and the
Unix-socket listener."""
import json
import subprocess

import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import free_port, server_yaml, wait_until, wait_for_port, write_tree


def config(port, admin_listen_yaml, targets):
    listed = ", ".join(f'"{t}"' for t in targets)
    return server_yaml(port) + admin_listen_yaml + f"""
target_groups:
  app:
    targets: [{listed}]
  spare:
    targets: ["127.0.0.1:1"]
sites:
  - name: www
    hosts: [www.example.com, "*.example.com"]
    default: true
    rules:
      - {{match: {{path: "/old/*"}}, redirect: {{location: "/new"}}}}
    default_action: {{forward: app}}
  - name: static
    hosts: [static.example.com]
    default_action: {{fixed: {{body: "static"}}}}
"""


@pytest.fixture
def gw(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    a, b = backend_factory("a"), backend_factory("b")
    port, admin_port = free_port(), free_port()
    g = gateway_factory(config(port, admin_yaml(admin_port), [a.address, b.address]), port)
    g.admin = f"http://127.0.0.1:{admin_port}"
    g.targets = (a, b)
    wait_for_port(admin_port)
    return g


def test_sites_show_config_summary_and_live_state(gw):
    sites = api(gw.admin, "GET", "/v1/sites").json()
    assert sites["generation"] > 0
    www, static = sites["sites"]
    assert www["name"] == "www" and www["hosts"] == ["www.example.com", "*.example.com"]
    assert www["default"] is True and www["rules"] == 1 and www["default_action"] == "forward"
    assert www["target_groups"] == [{"name": "app", "targets": 2, "healthy": 2, "serving": 2}]
    assert www["outage"] is False and www["maintenance"]["on"] is False
    assert static["default_action"] == "fixed" and static["target_groups"] == []

    a, b = gw.targets
    api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain")
    one = api(gw.admin, "GET", "/v1/sites/www").json()
    assert one["target_groups"][0]["serving"] == 1 and one["outage"] is False
    api(gw.admin, "PUT", f"/v1/targets/app/{b.address}/drain")
    assert api(gw.admin, "GET", "/v1/sites/www").json()["outage"] is True


def test_unknown_site_is_404_json(gw):
    r = api(gw.admin, "GET", "/v1/sites/nope")
    assert r.status_code == 404 and r.json() == {"error": "no site named 'nope'"}


def test_healthz_needs_no_token_and_everything_else_does(gw):
    r = requests.get(gw.admin + "/healthz", timeout=5)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    for path in ("/v1/sites", "/v1/targets", "/v1/audit"):
        r = requests.get(gw.admin + path, timeout=5)
        assert r.status_code == 401 and r.headers["Content-Type"] == "application/json"
    r = requests.get(gw.admin + "/v1/sites", headers={"Authorization": "Basic " + TOKEN}, timeout=5)
    assert r.status_code == 401


def test_admin_api_on_a_unix_socket(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    app = backend_factory("app")
    port = free_port()
    sock = tmp_path / "admin.sock"
    gw_text = config(port, admin_yaml(0).replace('"127.0.0.1:0"', '"unix:admin.sock"'), [app.address])
    g = gateway_factory(gw_text, port)
    assert wait_until(sock.exists, timeout=5)
    assert (sock.stat().st_mode & 0o777) == 0o600

    def curl(*args):
        return subprocess.run(["curl", "-sS", "--unix-socket", str(sock), *args], capture_output=True,
                              text=True, timeout=10)

    r = curl("http://admin/healthz")
    assert r.returncode == 0 and json.loads(r.stdout) == {"status": "ok"}, r.stderr
    r = curl("-H", f"Authorization: Bearer {TOKEN}", "-X", "PUT", "-d", '{"on": true}',
             "http://admin/v1/sites/www/maintenance")
    assert json.loads(r.stdout)["on"] is True
    assert requests.get(g.url + "/", timeout=5).status_code == 503
    entry = json.loads(curl("-H", f"Authorization: Bearer {TOKEN}", "http://admin/v1/audit").stdout)
    assert entry["entries"][0]["client"] == "unix"
    r = curl("http://admin/v1/sites")
    assert json.loads(r.stdout)["error"].startswith("missing or wrong admin token")


def test_maintenance_from_the_config_says_who_and_since_when(tmp_path, backend_factory, gateway_factory):
    import calendar
    import time
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": "<p>soon</p>\n"})
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    gw = gateway_factory(server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    maintenance: {{enabled: true, reason: "planned upgrade"}}
    default_action: {{forward: app}}
""", port)
    wait_for_port(admin_port)
    state = api(f"http://127.0.0.1:{admin_port}", "GET", "/v1/sites/www/maintenance").json()
    assert state["on"] is True and state["source"] == "config"
    declared = state["config"]
    assert declared["reason"] == "planned upgrade"
    assert declared["who"] == f"config {gw.config}"
    started = calendar.timegm(time.strptime(declared["started_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(started - time.time()) < 60
