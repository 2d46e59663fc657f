"""GET /metrics on the admin listener (docs/metrics.md): the exposition parses, requests of
each kind move the right counters by the right amounts, the upstream histogram counts the
forwarded requests, target and site gauges follow health checks, drains and maintenance,
failovers are counted once each way, counters survive a reload, and a scrape needs the token."""
import re
import threading
import time

import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import free_port, server_yaml, wait_for_port
from rawhttp import Conn, exchange

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): value}. Every line is a HELP, a TYPE or a sample
    `name{labels} value`; every family has HELP then TYPE before its samples, which are
    together; histogram buckets are cumulative and end with +Inf equal to _count."""
    samples, types, current, finished = {}, {}, None, set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in types and name not in finished, f"family {name} twice"
            if current:
                finished.add(current)
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current, f"TYPE {name} without its HELP"
            assert kind in ("counter", "gauge", "histogram")
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = tuple(LABEL.findall(labels_text or ""))
        assert ",".join(f'{k}="{v}"' for k, v in labels) == (labels_text or ""), line
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if types.get(family) != "histogram":
            family = name
        assert family == current and family in types, f"sample outside its family: {line!r}"
        if types[family] == "counter":
            assert name.endswith("_total"), name
        samples[(name, labels)] = float(value)
    for family, kind in types.items():
        if kind == "histogram":
            check_histogram(samples, family)
    return samples


def check_histogram(samples, family):
    series = {}
    for (name, labels), value in samples.items():
        if name == family + "_bucket":
            rest = tuple(l for l in labels if l[0] != "le")
            assert labels[-1][0] == "le"
            series.setdefault(rest, []).append((float(labels[-1][1]), value))
    for rest, buckets in series.items():
        counts = [v for _, v in sorted(buckets)]
        assert counts == sorted(counts), f"{family}{rest}: buckets not cumulative"
        assert sorted(buckets)[-1][0] == float("inf")
        assert counts[-1] == samples[(family + "_count", rest)]


def value(samples, name, **labels):
    """A sample's value; 0 when absent (counters are listed once they moved)."""
    for (n, l), v in samples.items():
        if n == name and dict(l) == labels:
            return v
    return 0


def present(samples, name, **labels):
    return any(n == name and dict(l) == labels for (n, l) in samples)


def config(port, admin_port, app, health=True):
    checks = """
    health: {path: /health, interval: 200ms, timeout: 150ms, healthy_threshold: 1,
             unhealthy_threshold: 1}""" if health else ""
    return server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["{app}"]{checks}
  dead:
    targets: ["127.0.0.1:1"]
sites:
  - name: www
    hosts: [www.example.com]
    default: true
    pages: {{root: pages}}
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
    default_action: {{forward: app}}
  - name: shop
    hosts: [shop.example.com]
    default_action: {{forward: dead}}
"""


@pytest.fixture
def gw(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    pages = tmp_path / "pages"
    (pages / "static").mkdir(parents=True)
    (pages / "static" / "site.css").write_text("body { color: teal }\n")
    (pages / "maintenance.html").write_text("<html><body>Back soon</body></html>\n")
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    g = gateway_factory(config(port, admin_port, app.address), port)
    g.admin = f"http://127.0.0.1:{admin_port}"
    g.app = app
    wait_for_port(admin_port)
    return g


def scrape(gw):
    r = requests.get(gw.admin + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def total(samples, name="intermission_requests_total"):
    return sum(v for (n, _), v in samples.items() if n == name)


def scrape_until(gw, predicate, timeout=10.0):
    """The first scrape for which predicate holds, or None after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gw)
        if predicate(samples):
            return samples
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def send(gw, head, body=b""):
    """One request on its own connection; (bytes sent, response)."""
    data = head.encode() + body
    return len(data), exchange(gw.port, data)


def get(path, host="www.example.com"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n"


def test_requests_move_their_counters_by_their_amounts(gw):
    before = scrape(gw)
    sent, bodies = 0, 0
    for head, body, status in [
        (get("/"), b"", 200),
        (get("/status/404"), b"", 404),
        ("POST /echo HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\n\r\n", b"hello", 200),
        (get("/static/site.css"), b"", 200),
    ]:
        n, r = send(gw, head, body)
        assert r.status == status, r
        sent, bodies = sent + n, bodies + len(r.body)
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    n, r = send(gw, get("/"))
    assert r.status == 503
    sent, bodies = sent + n, bodies + len(r.body)
    api(gw.admin, "DELETE", "/v1/sites/www/maintenance")
    _, r = send(gw, "GET / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 1\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n")
    assert r.status == 400
    # A relayed response is counted just after its last byte went out: wait for the count.
    after = scrape_until(gw, lambda s: total(s) - total(before) >= 6, timeout=2)
    assert after, "the requests were not counted"

    def moved(**labels):
        name = "intermission_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(site="www", action="forward", code="2xx") == 2
    assert moved(site="www", action="forward", code="4xx") == 1
    assert moved(site="www", action="store", code="2xx") == 1
    assert moved(site="www", action="maintenance", code="5xx") == 1
    assert moved(site="-", action="refused", code="4xx") == 1
    assert total(after) - total(before) == 6
    for name, expected in (("intermission_request_bytes_total", sent),
                           ("intermission_response_bytes_total", bodies)):
        assert value(after, name, site="www") - value(before, name, site="www") == expected, name
    assert value(after, "intermission_build_info", version="0.1.0") == 1


def test_upstream_histogram_counts_forwarded_requests(gw):
    for i in range(5):
        assert send(gw, get(f"/r{i}"))[1].status == 200
    assert send(gw, get("/status/500"))[1].status == 500
    m = scrape_until(gw, lambda s: total(s) >= 6, timeout=2)
    assert value(m, "intermission_upstream_response_seconds_count", group="app") == 6
    assert value(m, "intermission_upstream_response_seconds_bucket", group="app", le="+Inf") == 6
    assert 0 < value(m, "intermission_upstream_response_seconds_sum", group="app") < 6 * 5
    assert value(m, "intermission_upstream_response_seconds_count", group="dead") == 0
    # A connect failure: no response, so no time, but a failure of the group.
    assert send(gw, get("/", host="shop.example.com"))[1].status == 502
    m = scrape(gw)
    assert value(m, "intermission_upstream_failures_total", group="dead", reason="connect") == 1
    assert value(m, "intermission_upstream_response_seconds_count", group="dead") == 0
    assert value(m, "intermission_requests_total", site="shop", action="forward", code="5xx") == 1


def test_health_flips_and_failover_transitions(gw):
    m = scrape(gw)
    target = gw.app.address
    assert value(m, "intermission_target_healthy", group="app", target=target) == 1
    assert present(m, "intermission_site_outage", site="www")
    assert value(m, "intermission_site_outage", site="www") == 0
    gw.app.kill()
    m = scrape_until(gw, lambda s: value(s, "intermission_site_outage", site="www") == 1)
    assert m, "www never went into outage"
    assert value(m, "intermission_target_healthy", group="app", target=target) == 0
    assert value(m, "intermission_failover_transitions_total", site="www", to="outage") == 1
    assert value(m, "intermission_failover_transitions_total", site="www", to="recovered") == 0
    assert send(gw, get("/"))[1].status == 503
    assert value(scrape(gw), "intermission_requests_total", site="www", action="outage",
                 code="5xx") == 1
    gw.app.start()
    m = scrape_until(gw, lambda s: value(s, "intermission_target_healthy", group="app",
                                         target=target) == 1)
    assert m, "the target never came back"
    assert value(m, "intermission_site_outage", site="www") == 0
    assert value(m, "intermission_failover_transitions_total", site="www", to="outage") == 1
    assert value(m, "intermission_failover_transitions_total", site="www", to="recovered") == 1


def test_drain_and_maintenance_gauges(gw):
    target = gw.app.address
    api(gw.admin, "PUT", f"/v1/targets/app/{target}/drain")
    m = scrape(gw)
    assert value(m, "intermission_target_drained", group="app", target=target) == 1
    assert value(m, "intermission_site_outage", site="www") == 1  # its only target
    assert value(m, "intermission_failover_transitions_total", site="www", to="outage") == 1
    api(gw.admin, "DELETE", f"/v1/targets/app/{target}/drain")
    m = scrape(gw)
    assert value(m, "intermission_target_drained", group="app", target=target) == 0
    assert value(m, "intermission_failover_transitions_total", site="www", to="recovered") == 1

    assert present(m, "intermission_maintenance_active", site="www")
    assert value(m, "intermission_maintenance_active", site="www") == 0
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    m = scrape(gw)
    assert value(m, "intermission_maintenance_active", site="www") == 1
    assert value(m, "intermission_maintenance_active", site="shop") == 0


def test_connections_and_requests_in_flight(gw):
    assert scrape_until(gw, lambda s: value(s, "intermission_client_connections") == 0)
    slow = threading.Thread(target=send, args=(gw, get("/slow/1500")))
    slow.start()
    try:
        m = scrape_until(gw, lambda s: value(s, "intermission_target_in_flight", group="app",
                                             target=gw.app.address) == 1)
        assert m, "the slow request never showed in flight"
        assert value(m, "intermission_client_connections") == 1
    finally:
        slow.join()
    m = scrape(gw)
    assert value(m, "intermission_target_in_flight", group="app", target=gw.app.address) == 0
    assert scrape_until(gw, lambda s: value(s, "intermission_client_connections") == 0)


def test_new_connections_go_to_the_worker_with_the_fewest(gw):
    """The kernel hashes connections over the workers' listeners (SO_REUSEPORT); the
    accepting worker hands a connection on when another has two fewer. Without that, 24
    connections split 12/12 only by luck (half the time they differ by 4 or more)."""
    assert scrape_until(gw, lambda s: value(s, "intermission_client_connections") == 0)
    conns = []
    try:
        for i in range(24):
            c = Conn(gw.port)
            conns.append(c)
            c.send(get(f"/spread/{i}"))
            assert c.read_response().status == 200  # accepted, counted and served
        m = scrape_until(gw, lambda s: value(s, "intermission_client_connections") == 24)
        assert m, "the 24 open connections were not all counted"
        per_worker = [value(m, "intermission_worker_client_connections", worker=str(w))
                      for w in (0, 1)]
        assert sum(per_worker) == 24, per_worker
        assert abs(per_worker[0] - per_worker[1]) <= 2, per_worker
        for i, c in enumerate(conns):  # the handed-over ones serve on, keep-alive
            c.send(get(f"/again/{i}"))
            assert c.read_response().status == 200
    finally:
        for c in conns:
            c.close()
    assert scrape_until(gw, lambda s: value(s, "intermission_client_connections") == 0 and
                        all(value(s, "intermission_worker_client_connections", worker=str(w)) == 0
                            for w in (0, 1)))


def test_counters_survive_a_reload(gw):
    for i in range(3):
        assert send(gw, get(f"/r{i}"))[1].status == 200
    before = scrape_until(gw, lambda s: total(s) >= 3, timeout=2)
    assert value(before, "intermission_config_generation") == 1
    text = gw.config.read_text().replace("  - name: shop", "  - name: blog\n    hosts: [blog.example.com]\n"
                                         "    default_action: {fixed: {body: blog}}\n  - name: shop")
    gw.config.write_text(text)
    assert api(gw.admin, "POST", "/v1/reload").status_code == 200
    gw.config.write_text("sites: [oops")
    assert api(gw.admin, "POST", "/v1/reload").status_code == 400
    after = scrape(gw)
    for name, labels in (("intermission_requests_total", dict(site="www", action="forward", code="2xx")),
                         ("intermission_upstream_response_seconds_count", dict(group="app")),
                         ("intermission_request_bytes_total", dict(site="www"))):
        assert value(after, name, **labels) == value(before, name, **labels) > 0, name
    assert value(after, "intermission_config_generation") == 2
    assert value(after, "intermission_reloads_total", result="ok") == 1
    assert value(after, "intermission_reloads_total", result="refused") == 1
    assert present(after, "intermission_maintenance_active", site="blog")
    assert send(gw, get("/"))[1].status == 200
    assert scrape_until(gw, lambda s: total(s) == total(before) + 1, timeout=2)
    assert value(scrape(gw), "intermission_requests_total", site="www", action="forward",
                 code="2xx") == value(before, "intermission_requests_total", site="www",
                                      action="forward", code="2xx") + 1


def test_scrape_needs_the_token(gw):
    r = requests.get(gw.admin + "/metrics", timeout=5)
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/json"
    r = requests.get(gw.admin + "/metrics", headers={"Authorization": "Bearer wrong-token-000000"},
                     timeout=5)
    assert r.status_code == 401
    r = api(gw.admin, "POST", "/metrics")
    assert r.status_code == 405 and "GET" in r.json()["error"]
    # A scrape config's query string does not change the answer.
    r = requests.get(gw.admin + "/metrics?x=1", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=5)
    assert r.status_code == 200 and "# TYPE intermission_requests_total counter" in r.text
