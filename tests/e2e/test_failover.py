"""Automatic failover: when every target of a group fails its health checks, requests that
would be forwarded there get the site's outage page (its own, else the maintenance page) at
once; when a target comes back past the healthy threshold, traffic flows again with no
operator action. A request whose upstream dies before answering gets the branded page too,
and no client ever gets an empty reply while backends die and return."""
import threading
import time

import pytest
import requests

from conftest import (check_config, free_port, get_as_sent, server_yaml, text_position, wait_until,
                      write_tree)

OUTAGE = "<!doctype html><title>Outage</title>\n<h1>OUTAGE-PAGE</h1>\n" + "<p>soon</p>\n" * 30
MAINTENANCE = "<!doctype html><title>Maintenance</title>\n<h1>MAINTENANCE-PAGE</h1>\n"
CSS = "body{color:black}\n"
HEALTH = """    health:
      path: /health
      interval: 100ms
      timeout: 100ms
      healthy_threshold: 2
      unhealthy_threshold: 2
"""
OUTAGE_BLOCK = "    outage: {page: /outage.html, retry_after: 20s}\n"


def config(port, root, app_targets, api_target, outage=OUTAGE_BLOCK, health=HEALTH):
    targets = ", ".join(f'"{t}"' for t in app_targets)
    return server_yaml(port) + f"""
target_groups:
  app:
    targets: [{targets}]
{health}  api:
    targets: ["{api_target}"]
{health}
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
      - match: {{path: "/api/*"}}
        forward: api
    default_action: {{forward: app}}
{outage}"""


@pytest.fixture
def root(tmp_path):
    return write_tree(tmp_path / "pages", {"outage.html": OUTAGE,
                                           "maintenance.html": MAINTENANCE,
                                           "static/site.css": CSS})


@pytest.fixture
def farm(root, backend_factory, gateway_factory):
    """farm(outage=...) -> (gateway, a, b, api): group app = a + b, group api = api."""
    def make(outage=OUTAGE_BLOCK, health=HEALTH):
        a, b, api = backend_factory("a"), backend_factory("b"), backend_factory("api")
        port = free_port()
        gw = gateway_factory(config(port, root, [a.address, b.address], api.address, outage,
                                    health), port)
        return gw, a, b, api
    return make


def is_outage(r, body=OUTAGE):
    return r.status_code == 503 and r.text == body


def wait_for_outage(gw, timeout=3.0, body=OUTAGE, status=503):
    return wait_until(lambda: (lambda r: r.status_code == status and r.text == body)(
        requests.get(gw.url + "/probe", timeout=5)), timeout=timeout)


def test_all_targets_down_gets_the_outage_page_at_once(farm):
    gw, a, b, _ = farm()
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
    a.kill()
    b.kill()
    assert wait_for_outage(gw), "never switched to the outage page with every target down"
    with requests.Session() as s:
        for i in range(10):
            t0 = time.monotonic()
            r = s.get(gw.url + f"/page{i}", headers={"Accept": "text/html"}, timeout=5)
            elapsed = time.monotonic() - t0
            assert is_outage(r), (r.status_code, r.text[:200])
            assert r.headers["Content-Type"].startswith("text/html")
            assert r.headers.get("Retry-After") == "20", r.headers
            assert "no-store" in r.headers.get("Cache-Control", ""), r.headers
            assert elapsed < 1.0, f"outage answer took {elapsed:.3f}s: not immediate"


def test_outage_leaves_other_groups_and_the_store_alone(farm):
    gw, a, b, api = farm()
    a.kill()
    b.kill()
    assert wait_for_outage(gw)
    r = requests.get(gw.url + "/api/orders", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from api")
    r = requests.get(gw.url + "/static/site.css", timeout=5)
    assert (r.status_code, r.text) == (200, CSS)


def test_outage_page_is_compressed_per_accept_encoding(farm):
    import gzip
    gw, a, b, _ = farm()
    a.kill()
    b.kill()
    assert wait_for_outage(gw)
    r = get_as_sent(gw.port, "/", [("Accept-Encoding", "gzip")])
    assert r.status == 503 and r.header("content-encoding") == "gzip"
    assert gzip.decompress(r.body).decode() == OUTAGE


def test_traffic_flows_again_when_a_target_recovers(farm):
    gw, a, b, _ = farm()
    a.kill()
    b.kill()
    assert wait_for_outage(gw)
    a.start()  # same port; no operator action on the gateway
    t0 = time.monotonic()
    back = wait_until(lambda: requests.get(gw.url + "/back", timeout=5).status_code == 200,
                      timeout=4, interval=0.02)
    assert back, "traffic never flowed again after a target came back"
    # Two good checks 100 ms apart are needed: not before ~0.1 s, well within 2 s.
    assert time.monotonic() - t0 < 2.0
    with requests.Session() as s:
        for i in range(10):
            r = s.get(gw.url + f"/after{i}", timeout=5)
            assert (r.status_code, r.text) == (200, "hello from a"), (i, r.status_code)


def test_recovery_needs_the_healthy_threshold(farm):
    slow_health = HEALTH.replace("interval: 100ms", "interval: 300ms").replace(
        "timeout: 100ms", "timeout: 200ms").replace("healthy_threshold: 2", "healthy_threshold: 3")
    gw, a, b, _ = farm(health=slow_health)
    a.kill()
    b.kill()
    assert wait_for_outage(gw, timeout=4)
    b.start()
    started = time.monotonic()
    first_ok = wait_until(lambda: requests.get(gw.url + "/r", timeout=5).status_code == 200 and
                          time.monotonic(), timeout=5, interval=0.02)
    assert first_ok, "never recovered"
    # Three good checks 300 ms apart: at least ~0.6 s after the restart.
    assert first_ok - started >= 0.5, f"back after {first_ok - started:.2f}s, before 3 checks"


def test_outage_defaults_to_the_maintenance_page(farm):
    gw, a, b, _ = farm(outage="")
    a.kill()
    b.kill()
    assert wait_for_outage(gw, body=MAINTENANCE), "no maintenance page with every target down"
    r = requests.get(gw.url + "/x", timeout=5)
    assert r.status_code == 503 and r.text == MAINTENANCE
    assert r.headers.get("Retry-After") == "30", r.headers  # default 30s


def test_outage_status_and_retry_after_are_configurable(farm):
    gw, a, b, _ = farm(outage="    outage: {page: /outage.html, status: 500, retry_after: 90s}\n")
    a.kill()
    b.kill()
    # Until the health checks mark both down, a forward that fails gets the outage page with
    # the failure's status (502): wait for the outage itself.
    assert wait_for_outage(gw, status=500, timeout=4), "no outage page with the configured 500"
    r = requests.get(gw.url + "/x", timeout=5)
    assert r.text == OUTAGE
    assert r.status_code == 500, f"outage.status 500 configured, got {r.status_code}"
    assert r.headers.get("Retry-After") == "90"


def test_maintenance_wins_over_outage_and_bypassed_operators_see_the_outage(farm):
    maintenance = ("    maintenance:\n      enabled: true\n      retry_after: 1m\n"
                   "      bypass: {header: {name: X-Ops, value: open-sesame}}\n")
    gw, a, b, _ = farm(outage=OUTAGE_BLOCK + maintenance)
    r = requests.get(gw.url + "/x", headers={"X-Ops": "open-sesame"}, timeout=5)
    assert r.text.startswith("hello from"), r.text[:100]
    a.kill()
    b.kill()
    ops = wait_until(lambda: is_outage(
        requests.get(gw.url + "/x", headers={"X-Ops": "open-sesame"}, timeout=5)), timeout=3)
    assert ops, "the bypassed operator never saw the outage page"
    r = requests.get(gw.url + "/x", headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 503 and r.json()["status"] == "maintenance"
    assert r.headers["Retry-After"] == "60"


def test_one_target_down_is_not_an_outage(farm):
    gw, a, b, _ = farm()
    a.kill()
    with requests.Session() as s:
        for i in range(20):
            r = s.get(gw.url + f"/one{i}", timeout=5)
            assert (r.status_code, r.text) == (200, "hello from b"), (i, r.status_code, r.text)


def test_upstream_dying_mid_request_gets_the_branded_page(root, backend_factory,
                                                          gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(config(port, root, [app.address], app.address, health=""), port)
    result = {}

    def slow_request():
        try:
            result["r"] = requests.get(gw.url + "/slow/5000", timeout=10)
        except requests.RequestException as e:
            result["r"] = e

    t = threading.Thread(target=slow_request)
    t.start()
    assert wait_until(lambda: app.requests_for("/slow/"), timeout=3), "request never arrived"
    app.kill()  # the upstream dies before it answers
    t.join()
    r = result["r"]
    assert isinstance(r, requests.Response), f"client got {r!r} instead of an answer"
    assert 500 <= r.status_code <= 599, r.status_code
    assert r.text == OUTAGE, f"{r.status_code} with {r.text[:120]!r} instead of the branded page"


@pytest.mark.parametrize("path", ["/reset", "/close-early", "/garbage"])
def test_upstream_failing_before_the_response_gets_the_branded_page(root, backend_factory,
                                                                    gateway_factory, path):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(config(port, root, [app.address], app.address, health=""), port)
    r = requests.get(gw.url + path, timeout=5)
    assert 500 <= r.status_code <= 599, r.status_code
    assert r.text == OUTAGE, f"{path}: {r.status_code} {r.text[:120]!r}"


def test_no_empty_replies_while_backends_die_and_return(farm):
    gw, a, b, _ = farm()
    stop = threading.Event()
    problems, statuses = [], []

    def visitor(keep_alive):
        s = requests.Session() if keep_alive else None
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = (s or requests).get(gw.url + f"/v{i}", timeout=5)
            except requests.RequestException as e:
                problems.append(repr(e))
                continue
            statuses.append(r.status_code)
            if r.status_code == 200:
                if r.text not in ("hello from a", "hello from b"):
                    problems.append(("200 with", r.text[:80]))
            elif r.text != OUTAGE:
                problems.append((r.status_code, r.text[:120]))
            time.sleep(0.005)

    threads = [threading.Thread(target=visitor, args=(k,)) for k in (True, True, False, False)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        a.kill()
        time.sleep(0.3)
        b.kill()
        time.sleep(1.0)
        a.start()
        time.sleep(0.8)
        b.start()
        time.sleep(0.8)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == [], problems[:10]
    assert 200 in statuses and 503 in statuses, set(statuses)
    assert set(statuses) <= {200, 502, 503, 504}, set(statuses)
    assert statuses[-1] == 200


# --- bad outage config ---------------------------------------------------------------------

def assert_rejected_at(tmp_path, text, token, words=()):
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc != 0, f"check accepted:\n{text}"
    line, _ = text_position(text, token)
    assert any(e[0] == line and all(w.lower() in e[2].lower() for w in words) for e in errors), \
        f"expected an error at line {line} naming {list(words)}; got:\n{stderr}"


def test_check_accepts_the_outage_block(tmp_path, root):
    text = config(free_port(), root, ["127.0.0.1:9"], "127.0.0.1:10",
                  outage="    outage: {page: /outage.html, status: 503, retry_after: 0s}\n")
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc == 0 and errors == [], stderr


def test_check_rejects_a_missing_outage_page(tmp_path, root):
    text = config(free_port(), root, ["127.0.0.1:9"], "127.0.0.1:10",
                  outage="    outage: {page: /nowhere.html}\n")
    assert_rejected_at(tmp_path, text, "/nowhere.html", ["nowhere.html"])


def test_check_rejects_a_bad_outage_status(tmp_path, root):
    text = config(free_port(), root, ["127.0.0.1:9"], "127.0.0.1:10",
                  outage="    outage: {page: /outage.html, status: 99}\n")
    assert_rejected_at(tmp_path, text, "status: 99")


def test_check_rejects_an_outage_page_in_a_site_without_pages(tmp_path, root):
    text = config(free_port(), root, ["127.0.0.1:9"], "127.0.0.1:10",
                  outage="    outage: {page: /outage.html}\n").replace(
        f'    pages: {{root: "{root}"}}\n', "").replace(
        '      - match: {path: "/static/*"}\n        store: {}\n', "")
    assert_rejected_at(tmp_path, text, "/outage.html")
