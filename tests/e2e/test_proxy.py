"""Forwarding: keep-alive and pipelining on the client side, connection reuse on the upstream
side, the headers a proxy adds and removes, request details passed through, and the access
log."""
import json
import re
import time

import pytest
import requests

from conftest import free_port, proxy_config, server_yaml, wait_until
from h2lib import one_by_one
from rawhttp import Conn, exchange


def start(backend_factory, gateway_factory, workers=2, server_extra=""):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], workers=workers,
                                      server_extra=server_extra), port)
    return app, gw


def echo(r):
    assert r.status_code == 200, r.text
    return json.loads(r.text)


def header_values(seen, name):
    return [v for n, v in seen["headers"] if n.lower() == name.lower()]


# --- client side: keep-alive and pipelining -------------------------------------------------

@pytest.mark.http1_only("keep-alive connection reuse")
def test_keep_alive_serves_several_requests_on_one_connection(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        for i in range(5):
            c.send(f"GET /k{i} HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            assert r.status == 200
            assert r.body == b"hello from app"
            assert (r.header("connection") or "").lower() != "close"
        assert not c.closed_by_peer(0.3)


@pytest.mark.http1_only("HTTP/1.0")
def test_http10_request_gets_an_answer_and_close(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        c.send("GET /old HTTP/1.0\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello from app"
        assert c.closed_by_peer(2)


@pytest.mark.http1_only("Connection: close")
def test_connection_close_is_honoured(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        c.send("GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert (r.header("connection") or "").lower() == "close"
        assert c.closed_by_peer(2)


@pytest.mark.http1_only("pipelining")
def test_pipelined_requests_answered_in_order(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    pages = tmp_path / "pages"
    (pages / "static").mkdir(parents=True)
    (pages / "static" / "a.txt").write_text("static a\n")
    port = free_port()
    gw = gateway_factory(server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    pages: {{root: "{pages}"}}
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
    default_action: {{forward: app}}
""", port)
    # The slow first answer must not let the quicker ones overtake it.
    batch = (b"GET /slow/300 HTTP/1.1\r\nHost: a\r\n\r\n"
             b"GET /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\n"
             b"POST /echo/post HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
             b"GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n"
             b"HEAD /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\n"
             b"GET /echo/last HTTP/1.1\r\nHost: a\r\n\r\n")
    with Conn(gw.port) as c:
        c.send(batch)
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        r4 = c.read_response()
        r5 = c.read_response("HEAD")
        r6 = c.read_response()
    assert (r1.status, r1.body) == (200, b"slow")
    assert (r2.status, r2.body) == (200, b"static a\n")
    e3 = json.loads(r3.body)
    assert (r3.status, e3["method"], e3["target"], e3["body_length"]) == (200, "POST", "/echo/post", 5)
    assert r4.status == 404 and r4.body == b"status 404 from app"
    assert r5.status == 200 and r5.header("content-length") == "9"
    assert json.loads(r6.body)["target"] == "/echo/last"


@pytest.mark.http1_only("pipelining")
def test_many_pipelined_requests_in_one_send(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    n = 100
    batch = b"".join(f"GET /echo/{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(n))
    with Conn(gw.port) as c:
        c.send(batch)
        targets = [json.loads(c.read_response().body)["target"] for _ in range(n)]
    assert targets == [f"/echo/{i}" for i in range(n)]


# --- upstream side: keep-alive reuse --------------------------------------------------------

def test_upstream_connections_are_reused(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory, workers=1)
    with requests.Session() as s:
        for i in range(30):
            assert s.get(gw.url + f"/u{i}", timeout=5).status_code == 200
    for i in range(10):  # new client connections, same worker pool
        assert requests.get(gw.url + f"/v{i}", timeout=5).status_code == 200
    stats = app.stats()
    assert stats["requests"] == 40
    assert stats["connections"] <= 2, f"{stats['connections']} upstream connections for 40 requests"


def test_upstream_reuse_with_two_workers(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory, workers=2)
    for i in range(40):
        assert requests.get(gw.url + f"/v{i}", timeout=5).status_code == 200
    stats = app.stats()
    assert stats["requests"] == 40
    assert stats["connections"] <= 4, stats["connections"]


def test_pool_max_connections_limits_concurrent_upstream_connections(backend_factory,
                                                                     gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], workers=1,
                                      group_extra="    pool: {max_connections: 2}\n"), port)
    import threading
    results = []

    def one(i):
        try:
            results.append(requests.get(gw.url + f"/slow/300?{i}", timeout=10).status_code)
        except requests.RequestException as e:
            results.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = app.stats()
    assert stats["connections"] <= 2, stats["connections"]
    # Requests beyond the limit wait for a free connection or get a clean 5xx, never hang.
    assert len(results) == 6 and all(r == 200 or r in (502, 503, 504) for r in results), results
    assert results.count(200) >= 2


# --- headers -------------------------------------------------------------------------------

@pytest.mark.http1_only("Connection/Keep-Alive hop-by-hop fields do not exist in HTTP/2")
def test_hop_by_hop_request_headers_are_removed(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    r = exchange(gw.port,
                 b"GET /echo HTTP/1.1\r\nHost: www.example.com\r\n"
                 b"Connection: keep-alive, X-Hop-Custom, x-other-hop\r\n"
                 b"X-Hop-Custom: secret\r\nX-Other-Hop: also secret\r\n"
                 b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                 b"TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n"
                 b"X-End-To-End: kept\r\n\r\n")
    seen = json.loads(r.body)
    names = {n.lower() for n, _ in seen["headers"]}
    for hop in ("x-hop-custom", "x-other-hop", "keep-alive", "proxy-connection", "te",
                "trailer", "upgrade"):
        assert hop not in names, f"{hop} was forwarded: {seen['headers']}"
    for n, v in seen["headers"]:
        if n.lower() == "connection":
            assert "x-hop-custom" not in v.lower(), v
    assert header_values(seen, "x-end-to-end") == ["kept"]


@pytest.mark.http1_only("Connection/Keep-Alive hop-by-hop fields on an HTTP/1.1 connection")
def test_hop_by_hop_response_headers_are_removed(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        c.send("GET /hop HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hop"
        assert r.header("x-resp-hop") is None, r.headers
        assert r.header("keep-alive") is None, r.headers
        assert r.header("x-end-to-end") == "yes"
        # The upstream's Connection header did not close the client connection either.
        c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"hello from app"


def via_received(protocol):
    """The Via entry the gateway adds to a request: the protocol it received it in."""
    return {"http1": "1.1 intermission", "h2c": "2 intermission"}[protocol]


def test_forwarded_headers_are_added(backend_factory, gateway_factory, protocol):
    app, gw = start(backend_factory, gateway_factory)
    seen = echo(requests.get(gw.url + "/echo", headers={"Host": "shop.example.com"}, timeout=5))
    assert header_values(seen, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(seen, "x-forwarded-proto") == ["http"]
    assert header_values(seen, "x-forwarded-host") == ["shop.example.com"]
    assert header_values(seen, "host") == ["shop.example.com"]
    via = header_values(seen, "via")
    assert len(via) == 1 and via[0].split(",")[-1].strip() == via_received(protocol), via


def test_x_forwarded_for_is_appended_not_replaced(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    seen = echo(requests.get(gw.url + "/echo", headers={"X-Forwarded-For": "203.0.113.7"},
                             timeout=5))
    xff = ", ".join(header_values(seen, "x-forwarded-for"))
    assert re.fullmatch(r"203\.0\.113\.7,\s*127\.0\.0\.1", xff), xff


def test_client_x_forwarded_proto_and_host_are_not_trusted(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    seen = echo(requests.get(gw.url + "/echo", headers={"Host": "real.example.com",
                                                        "X-Forwarded-Proto": "https",
                                                        "X-Forwarded-Host": "evil.example.com"},
                             timeout=5))
    assert header_values(seen, "x-forwarded-proto") == ["http"]
    assert header_values(seen, "x-forwarded-host") == ["real.example.com"]


def test_via_is_appended_to_request_and_response(backend_factory, gateway_factory, protocol):
    app, gw = start(backend_factory, gateway_factory)
    r = requests.get(gw.url + "/echo", headers={"Via": "1.0 upstream-cdn"}, timeout=5)
    seen = echo(r)
    via = ", ".join(header_values(seen, "via"))
    assert re.fullmatch(r"1\.0 upstream-cdn,\s*" + re.escape(via_received(protocol)), via), via
    # The answer came from the upstream over HTTP/1.1, whatever the client spoke.
    assert r.headers["Via"].split(",")[-1].strip() == "1.1 intermission", r.headers["Via"]


def test_request_details_pass_through(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    r = requests.put(gw.url + "/echo/some/path?q=1&b=%20x", data=b"x" * 1234,
                     headers={"X-Custom": "v1", "Cookie": "a=b", "Authorization": "Bearer t"},
                     timeout=5)
    seen = echo(r)
    assert seen["method"] == "PUT"
    assert seen["target"] == "/echo/some/path?q=1&b=%20x"
    assert seen["body_length"] == 1234
    assert header_values(seen, "x-custom") == ["v1"]
    assert header_values(seen, "cookie") == ["a=b"]
    assert header_values(seen, "authorization") == ["Bearer t"]
    assert seen["version"] == "HTTP/1.1"
    for method in ("DELETE", "PATCH", "OPTIONS"):
        assert echo(requests.request(method, gw.url + "/echo", timeout=5))["method"] == method


def test_upstream_status_and_headers_pass_through(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    for status in (201, 301, 404, 418):
        r = requests.get(gw.url + f"/status/{status}", allow_redirects=False, timeout=5)
        assert r.status_code == status
        assert r.text == f"status {status} from app"
        assert r.headers["X-Backend"] == "app"


@pytest.mark.http1_only("pipelining: no body bytes on the HTTP/1.1 wire after HEAD")
def test_head_request_forwarded_without_body(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        c.send("HEAD /bytes/5000 HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200
        # The next bytes must be the next response, not a stray body.
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"hello from app"


@pytest.mark.h2c_only("the HTTP/2 form of test_head_request_forwarded_without_body")
def test_head_request_forwarded_without_body_over_h2(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    head, nxt = one_by_one(gw.port, ("HEAD", "/bytes/5000"), ("GET", "/x"))
    assert head.status == 200 and head.header("content-length") == "5000", head
    assert nxt.status == 200 and nxt.body == b"hello from app", nxt


# --- access log -----------------------------------------------------------------------------

def test_access_log_line_per_request(tmp_path, backend_factory, gateway_factory, protocol):
    app = backend_factory("app")
    port = free_port()
    log = tmp_path / "access.log"
    config = proxy_config(port, [app.address]).replace('access_log: "off"', f'access_log: "{log}"')
    gw = gateway_factory(config, port)
    requests.get(gw.url + "/bytes/1234", timeout=5)
    requests.get(gw.url + "/status/404", timeout=5)
    lines = wait_until(lambda: [l for l in log.read_text().splitlines() if l.strip()]
                       if log.exists() and len(log.read_text().splitlines()) >= 2 else None, 5)
    assert lines, "no access log lines"
    first = next(l for l in lines if "/bytes/1234" in l)
    version = {"http1": "HTTP/1.1", "h2c": "HTTP/2.0"}[protocol]
    assert f'"GET /bytes/1234 {version}" 200 1234' in first, first
    assert "site=www" in first
    assert f"target={app.address}" in first
    assert re.search(r"upstream_ms=\d+(\.\d+)?", first), first
    assert re.search(r"total_ms=\d+(\.\d+)?", first), first
    assert first.split()[1] == "127.0.0.1"
    second = next(l for l in lines if "/status/404" in l)
    assert f'"GET /status/404 {version}" 404' in second, second


# --- upstream connection pool ----------------------------------------------------------------

def test_stale_pooled_connection_after_backend_restart_is_not_a_failure(backend_factory,
                                                                         gateway_factory):
    app, gw = start(backend_factory, gateway_factory, workers=1)
    assert requests.get(gw.url + "/before", timeout=5).status_code == 200
    app.kill()
    app.start()  # same port; the pooled connection is now dead
    for i in range(5):
        r = requests.get(gw.url + f"/after{i}", timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app"), (i, r.status_code)


def test_request_that_cannot_be_retried_avoids_a_pooled_connection_the_target_closed(
        backend_factory, gateway_factory):
    """A POST is never retried once its bytes left, so a kept-alive connection the target has
    closed (here: the target restarted) must be noticed before the POST is sent on it: the
    POST reaches the restarted target, and the target is not marked down."""
    app, gw = start(backend_factory, gateway_factory, workers=1)
    assert requests.get(gw.url + "/before", timeout=5).status_code == 200
    app.kill()
    app.start()  # same port; the pooled connection is now dead
    r = requests.post(gw.url + "/echo/after", data=b"x" * 1000, timeout=5)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert (r.json()["method"], r.json()["body_length"]) == ("POST", 1000)
    assert "down" not in gw.log_text().lower()


def test_reset_on_a_kept_alive_connection_does_not_take_the_target_down(backend_factory,
                                                                        gateway_factory):
    """A reset on a reused connection may be a keep-alive race, not a failing target: the POST
    it hit cannot be replayed (502), but the target stays in rotation. A reset on a new
    connection does take it down (test_health.py)."""
    app, gw = start(backend_factory, gateway_factory, workers=1)
    with requests.Session() as s:
        assert s.get(gw.url + "/warm", timeout=5).status_code == 200
        # /reset: the backend reads the whole request, then resets the connection.
        assert s.post(gw.url + "/reset", data=b"x" * 100, timeout=5).status_code == 502
        r = s.get(gw.url + "/after", timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app")
    assert "down" not in gw.log_text().lower()


def test_stale_pooled_connection_is_retried_on_the_same_target(backend_factory, gateway_factory):
    """The target closed a kept-alive connection: the request goes to that same target on a new
    connection, so round robin stays even and nobody is marked down."""
    a, b = backend_factory("a"), backend_factory("b")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address, b.address], workers=1), port)
    with requests.Session() as s:
        def names(n):
            return [s.get(gw.url + f"/n{i}", timeout=5).text.removeprefix("hello from ")
                    for i in range(n)]
        assert names(3) == ["a", "b", "a"]  # one pooled connection to each; "b" is next
        a.kill()
        a.start()  # same port; the pooled connection to "a" is now dead
        assert names(10) == ["b", "a"] * 5
    assert "down" not in gw.log_text().lower()


def test_a_408_the_target_sent_on_an_idle_pooled_connection_is_not_taken_as_the_answer(
        backend_factory, gateway_factory):
    """Some servers end an idle keep-alive connection with an unasked-for 408 before they close
    it. The next GET on that pooled connection (sent without checking it first: a GET can be
    retried) reads that 408; it answers no request of ours, so the GET goes to the same target
    on a new connection, and the target is not marked down."""
    app, gw = start(backend_factory, gateway_factory, workers=1)
    with requests.Session() as s:
        for i in range(3):
            r = s.get(gw.url + "/then-408/100", timeout=5)
            assert (r.status_code, r.text) == (200, "hello from app"), (i, r.status_code)
            time.sleep(0.4)  # the 408 and the close are on the pooled connection now
        r = s.get(gw.url + "/after", timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app"), r.status_code
    assert "down" not in gw.log_text().lower()


def test_a_408_in_answer_to_a_request_on_a_new_connection_is_relayed(backend_factory,
                                                                      gateway_factory):
    """Only on a reused connection is a 408 taken for the target's keep-alive timeout: on a
    new connection it is the target's answer, and the client gets it."""
    app, gw = start(backend_factory, gateway_factory, workers=1)
    r = requests.get(gw.url + "/status/408", timeout=5)
    assert r.status_code == 408 and r.text == "status 408 from app", (r.status_code, r.text)
    assert app.stats()["requests"] == 1


def test_pool_idle_timeout_closes_idle_upstream_connections(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], workers=1,
                                      group_extra="    pool: {idle_timeout: 500ms}\n"), port)
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
    assert app.stats()["open"] >= 1, "the upstream connection was not kept for reuse"
    assert wait_until(lambda: app.stats()["open"] == 0, timeout=3), \
        "idle pooled connection not closed after pool.idle_timeout"


def test_pool_keeps_connections_without_idle_timeout(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory, workers=1)
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
    time.sleep(1.0)
    assert app.stats()["open"] == 1


def test_pool_max_idle(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], workers=1,
                                      group_extra="    pool: {max_idle: 1}\n"), port)
    import threading
    threads = [threading.Thread(target=requests.get, args=(gw.url + f"/slow/300?{i}",),
                                kwargs={"timeout": 5}) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert app.stats()["connections"] >= 2
    assert wait_until(lambda: app.stats()["open"] <= 1, timeout=2), app.stats()["open"]


# --- more framing through the proxy -------------------------------------------------------

@pytest.mark.http1_only("pipelining after 204/304")
def test_bodiless_upstream_statuses_keep_the_connection_in_sync(backend_factory,
                                                                gateway_factory):
    app, gw = start(backend_factory, gateway_factory, workers=1)
    with Conn(gw.port) as c:
        c.send(b"GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /echo/after HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 204
        assert c.read_response().status == 304
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["target"] == "/echo/after"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): chunk timing on the HTTP/1.1 wire")
def test_streamed_response_is_not_held_back(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        t0 = time.monotonic()
        c.send("GET /drip/10/200 HTTP/1.1\r\nHost: a\r\n\r\n")
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 200")
        # The first piece arrives long before the 2 s the whole answer takes.
        while b"drip" not in bytes(c.buf):
            assert c._fill()
        first = time.monotonic() - t0
        assert first < 0.8, f"first piece after {first:.2f}s: the response was buffered"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): one header name sent twice as two lines")
def test_several_x_forwarded_for_fields_are_combined(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    r = exchange(gw.port, b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\n"
                          b"X-Forwarded-For: 198.51.100.2\r\n\r\n")
    assert_forwarded_for_both(json.loads(r.body))


def assert_forwarded_for_both(seen):
    """The backend saw the two X-Forwarded-For values of the request, then the client's."""
    xff = ", ".join(header_values(seen, "x-forwarded-for"))
    assert re.fullmatch(r"198\.51\.100\.1,\s*198\.51\.100\.2,\s*127\.0\.0\.1", xff), xff


@pytest.mark.h2c_only("the HTTP/2 form of test_several_x_forwarded_for_fields_are_combined")
def test_several_x_forwarded_for_fields_are_combined_over_h2(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    [r] = one_by_one(gw.port, ("GET", "/echo", [("x-forwarded-for", "198.51.100.1"),
                                                ("x-forwarded-for", "198.51.100.2")]))
    assert r.status == 200, r
    assert_forwarded_for_both(json.loads(r.body))


def test_expect_100_continue_upload_with_curl(backend_factory, gateway_factory, tmp_path):
    import subprocess
    app, gw = start(backend_factory, gateway_factory)
    data = tmp_path / "upload.bin"
    data.write_bytes(b"z" * (3 << 20))
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Expect: 100-continue",
                          "--expect100-timeout", "6",
                          "--data-binary", f"@{data}", gw.url + "/sink"],
                         capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert out.stdout == str(3 << 20)
    # curl waits 6 s for a "100 Continue" that never comes before sending anyway.
    assert elapsed < 5, f"upload took {elapsed:.2f}s: no 100 Continue relayed"


def test_workers_setting_starts_that_many_event_loops(backend_factory, gateway_factory):
    import os
    app = backend_factory("app")
    counts = {}
    for workers in (1, 4):
        port = free_port()
        gw = gateway_factory(proxy_config(port, [app.address], workers=workers), port)
        assert requests.get(gw.url + "/x", timeout=5).status_code == 200
        counts[workers] = len(os.listdir(f"/proc/{gw.pid}/task"))
        gw.stop()
    assert counts[4] - counts[1] == 3, counts


@pytest.mark.http1_only("absolute-form request target")
def test_absolute_form_target_is_sent_upstream_in_origin_form(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    r = exchange(gw.port, b"GET http://www.example.com/echo/abs?q=1 HTTP/1.1\r\n"
                          b"Host: www.example.com\r\n\r\n")
    seen = json.loads(r.body)
    assert seen["target"] == "/echo/abs?q=1"
    assert header_values(seen, "host") == ["www.example.com"]


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): Latin-1 and token characters in HTTP/1.1 header lines")
def test_unusual_but_valid_requests_are_accepted(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    r = exchange(gw.port, b"PURGE /echo/" + b"p" * 8000 + b" HTTP/1.1\r\nHost: a\r\n"
                          b"X-Latin: caf\xe9\r\nX-Empty:\r\n"
                          b"X-A!#$%&'*+.^_`|~: token chars\r\n"
                          b"X-Spaces:    padded    \r\n\r\n")
    assert r.status == 200, r
    seen = json.loads(r.body)
    assert seen["method"] == "PURGE"
    assert len(seen["target"]) == len("/echo/") + 8000
    assert header_values(seen, "x-latin") == ["caf\xe9"]
    assert header_values(seen, "x-empty") == [""]
    assert header_values(seen, "x-a!#$%&'*+.^_`|~") == ["token chars"]
    assert header_values(seen, "x-spaces") == ["padded"]


def test_bodies_around_the_size_sent_with_their_head_arrive_whole(backend_factory, gateway_factory):
    """Small bodies go out in one buffer with their head, larger ones as a second piece: every
    size on either side of that line arrives whole, in order, on one kept-alive connection."""
    app, gw = start(backend_factory, gateway_factory, workers=1)
    sizes = [0, 1, 4095, 4096, 4097, 70_000, 3, 4096]
    with requests.Session() as s:
        got = [s.get(gw.url + f"/bytes/{n}", timeout=5) for n in sizes]
    assert [(r.status_code, len(r.content)) for r in got] == [(200, n) for n in sizes]
    assert all(set(r.content) <= {ord("x")} for r in got)
    assert app.stats()["connections"] == 1


@pytest.mark.http1_only("pipelining")
def test_many_pipelined_large_responses(backend_factory, gateway_factory):
    app, gw = start(backend_factory, gateway_factory)
    sizes = [1 << 20, 10, 300_000, 0, 2 << 20, 5]
    batch = b"".join(f"GET /bytes/{n} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for n in sizes)
    with Conn(gw.port, timeout=10) as c:
        c.send(batch)
        got = [len(c.read_response().body) for _ in sizes]
    assert got == sizes


@pytest.mark.http1_only("malformed HTTP/1.1 request lines and framing")
def test_access_log_records_rejected_requests_too(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    log = tmp_path / "access.log"
    config = proxy_config(port, [app.address], limits="max_header_bytes: 1KiB")
    config = config.replace('access_log: "off"', f'access_log: "{log}"')
    gw = gateway_factory(config, port)
    from rawhttp import send_and_read_all
    send_and_read_all(port, b"GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n", timeout=3)
    send_and_read_all(port, b"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 2000 + b"\r\n\r\n",
                      timeout=3)
    send_and_read_all(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n", timeout=3)
    requests.get(gw.url + "/marker", timeout=5)

    def lines():
        text = log.read_text() if log.exists() else ""
        return text if "/marker" in text else None

    text = wait_until(lines, timeout=5)
    assert text, "no access log line for the normal request"
    statuses = [int(m) for m in re.findall(r'" (\d{3}) ', text)]
    # One line per request, rejected ones included: an operator must see them.
    assert statuses.count(400) >= 2 and 431 in statuses, text
