"""Maintenance mode from the config: the 503 answer (status, Retry-After, Cache-Control,
Vary), content negotiation (JSON / the branded page / plain text), the page's own assets and
robots.txt let through, `until` and scheduled windows switching maintenance on and off by
themselves, and the three operator bypasses (secret header, source networks, signed cookie
through a real cookie-carrying client). Bad maintenance config is rejected with a position."""
import ctypes
import gzip
import hashlib
import hmac
import json
import math
import subprocess
import textwrap
import threading
import time

import pytest
import requests

from conftest import (check_config, free_port, get_as_sent, server_yaml, text_position,
                      write_tree)
from h2lib import one_by_one
from rawhttp import Conn

def wait_for_v6(port, timeout=5.0):
    """The gateway is known to listen on 127.0.0.1; wait for its [::1] socket too."""
    import socket
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("::1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


MESSAGE = "We are upgrading the database, back soon."
DEFAULT_MESSAGE = "This site is down for maintenance. Please try again later."
MAINTENANCE_HTML = ("<!doctype html><title>Down for maintenance</title>\n"
                    "<h1>MAINTENANCE-PAGE</h1>\n" + "<p>We will be back very soon.</p>\n" * 40)
CSS = "body { font-family: serif; }\n" + ".x { color: red; }\n" * 30
ROBOTS = "User-agent: *\nDisallow: /\n"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'
BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8")
SECRET = "cookie-secret-0123456789abcdef"
BYPASS_VALUE = "let-me-in-8f2a"


def brotli_decompress(data, size_hint):
    lib = ctypes.CDLL("libbrotlidec.so.1")
    out_size = ctypes.c_size_t(size_hint + 1024)
    out = ctypes.create_string_buffer(out_size.value)
    ok = lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(out_size), out)
    assert ok == 1, "not a valid brotli stream"
    return out.raw[:out_size.value]


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def token(expiry, site="www", secret=SECRET):
    mac = hmac.new(secret.encode(), f"{site}\n{expiry}".encode(), hashlib.sha256).hexdigest()
    return f"{expiry}.{mac}"


def pages_root(tmp_path):
    return write_tree(tmp_path / "pages", {
        "index.html": "<h1>home from the store</h1>\n",
        "maintenance.html": MAINTENANCE_HTML,
        "assets/site.css": CSS,
        "assets/logo.svg": SVG,
        "robots.txt": ROBOTS,
        "other.css": "p{}\n",
    })


def config(port, root, app, maintenance, other_site=False):
    """Site www (default) forwards to `app` and has the maintenance block given (YAML text
    placed under `maintenance:`); with other_site, site `other` forwards to app without
    maintenance."""
    text = server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app}"]
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    default_action: {{forward: app}}
    maintenance:
{textwrap.indent(textwrap.dedent(maintenance).strip(), "      ")}
"""
    if other_site:
        text += """  - name: other
    hosts: [other.example]
    default_action: {forward: app}
"""
    return text


ON = f"""
enabled: true
reason: database upgrade
message: "{MESSAGE}"
retry_after: 2m
allow: ["/assets/*", "/robots.txt"]
"""


@pytest.fixture
def site(tmp_path, backend_factory, gateway_factory):
    """site(maintenance_yaml, other_site=False) -> (gateway, backend)."""
    def make(maintenance=ON, other_site=False):
        app = backend_factory("app")
        port = free_port()
        gw = gateway_factory(config(port, pages_root(tmp_path), app.address, maintenance,
                                    other_site), port)
        return gw, app
    return make


def vary_tokens(headers):
    return {v.strip().lower() for v in headers.get("Vary", "").split(",") if v.strip()}


def assert_maintenance_headers(r, status=503, retry_after="120"):
    assert r.status_code == status, (r.status_code, r.headers, r.text[:200])
    assert r.headers.get("Retry-After") == retry_after, r.headers
    assert "no-store" in r.headers.get("Cache-Control", ""), r.headers
    assert "accept" in vary_tokens(r.headers), r.headers


# --- the answer and its three variants -------------------------------------------------------

def test_curl_gets_the_message_as_plain_text(site):
    gw, app = site()
    out = subprocess.run(["curl", "-sS", "-i", gw.url + "/some/page"], capture_output=True,
                         timeout=10)
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == "503", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    assert headers["content-type"][0].startswith("text/plain"), headers
    assert headers["retry-after"] == ["120"], headers
    assert "no-store" in ",".join(headers["cache-control"]), headers
    assert "accept" in ",".join(headers["vary"]).lower(), headers
    assert body.decode().strip() == MESSAGE
    assert app.stats()["requests"] == 0, "a request reached the app during maintenance"


def test_json_for_api_clients(site):
    gw, app = site()
    r = requests.get(gw.url + "/api/orders", headers={"Accept": "application/json"}, timeout=5)
    assert_maintenance_headers(r)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json() == {"status": "maintenance", "retry_after": 120, "message": MESSAGE}
    assert app.stats()["requests"] == 0


def test_browser_gets_the_maintenance_page(site):
    gw, app = site()
    r = requests.get(gw.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert_maintenance_headers(r)
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert r.text == MAINTENANCE_HTML
    r = requests.get(gw.url + "/deep/link?x=1", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert r.status_code == 503 and r.text == MAINTENANCE_HTML
    assert app.stats()["requests"] == 0


@pytest.mark.parametrize("coding", ["gzip", "br", "identity"])
def test_maintenance_page_compressed_per_accept_encoding(site, coding):
    gw, _ = site()
    r = get_as_sent(gw.port, "/x", [("Accept", BROWSER_ACCEPT), ("Accept-Encoding", coding)])
    assert r.status == 503
    assert r.header("retry-after") == "120"
    assert "no-store" in (r.header("cache-control") or "")
    if coding == "gzip":
        assert r.header("content-encoding") == "gzip", r.headers
        assert gzip.decompress(r.body).decode() == MAINTENANCE_HTML
    elif coding == "br":
        assert r.header("content-encoding") == "br", r.headers
        assert brotli_decompress(r.body, len(MAINTENANCE_HTML)).decode() == MAINTENANCE_HTML
    else:
        assert r.header("content-encoding") in (None, "identity"), r.headers
        assert r.body.decode() == MAINTENANCE_HTML
    if coding != "identity":
        assert len(r.body) < len(MAINTENANCE_HTML)


@pytest.mark.parametrize("accept,variant", [
    ("application/json", "json"),
    ("application/json, text/plain, */*", "json"),           # axios' default
    ("text/html;q=0.5, application/json", "json"),
    (BROWSER_ACCEPT, "html"),
    ("application/json;q=0.2, text/html", "html"),
    ("*/*", "text"),
    ("text/plain", "text"),
    ("application/json;q=0, */*", "text"),                   # q=0: not acceptable
    (None, "text"),
])
def test_content_negotiation(site, accept, variant):
    gw, _ = site()
    headers = {"Accept": accept} if accept is not None else {"Accept": None}
    r = requests.get(gw.url + "/p", headers=headers, timeout=5)
    assert_maintenance_headers(r)
    ctype = r.headers.get("Content-Type", "")
    if variant == "json":
        assert ctype.startswith("application/json"), ctype
        assert r.json()["status"] == "maintenance"
    elif variant == "html":
        assert ctype.startswith("text/html"), ctype
        assert r.text == MAINTENANCE_HTML
    else:
        assert ctype.startswith("text/plain"), ctype
        assert r.text.strip() == MESSAGE


def test_default_message_and_retry_after(site):
    gw, _ = site("enabled: true")
    r = requests.get(gw.url + "/", headers={"Accept": "application/json"}, timeout=5)
    assert_maintenance_headers(r, retry_after="300")  # default 5m
    assert r.json() == {"status": "maintenance", "retry_after": 300, "message": DEFAULT_MESSAGE}
    r = requests.get(gw.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert r.status_code == 503 and r.text == MAINTENANCE_HTML  # default page /maintenance.html


def test_json_message_is_escaped(site):
    message = 'He said "back at 5" \\ caf\u00e9 \u2615 <b>&</b>'
    gw, _ = site(ON.replace(f'message: "{MESSAGE}"', "message: '" + message + "'"))
    r = requests.get(gw.url + "/", headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 503
    assert r.json()["message"] == message
    r = requests.get(gw.url + "/", headers={"Accept": "*/*"}, timeout=5)
    assert r.content.decode("utf-8").strip() == message


@pytest.mark.parametrize("status", [500, 200])
def test_status_is_configurable_and_never_cacheable(site, status):
    gw, _ = site(ON.replace("retry_after: 2m", "retry_after: 45s") + f"status: {status}\n")
    for accept in ("application/json", BROWSER_ACCEPT, "*/*"):
        r = requests.get(gw.url + "/", headers={"Accept": accept}, timeout=5)
        assert r.status_code == status, (accept, r.status_code)
        assert r.headers.get("Retry-After") == "45", (accept, r.headers)
        cache = r.headers.get("Cache-Control", "")
        assert "no-store" in cache and "max-age" not in cache and "public" not in cache, \
            (accept, r.headers)
        if accept == BROWSER_ACCEPT:
            assert r.text == MAINTENANCE_HTML


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): HEAD and POST on one kept-alive connection")
def test_head_and_post_get_the_maintenance_answer_on_a_kept_alive_connection(site):
    gw, app = site()
    with Conn(gw.port) as c:
        c.send("HEAD / HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 503 and r.header("retry-after") == "120" and r.body == b""
        body = "field=" + "v" * 5000
        c.send(f"POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded"
               f"\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        r = c.read_response()
        assert r.status == 503 and r.body.decode().strip() == MESSAGE
        c.send("GET /after HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n")
        r = c.read_response()
        assert r.status == 503 and json.loads(r.body)["status"] == "maintenance"
    assert app.stats()["requests"] == 0


@pytest.mark.h2c_only("the HTTP/2 form of "
                      "test_head_and_post_get_the_maintenance_answer_on_a_kept_alive_connection")
def test_head_and_post_get_the_maintenance_answer_on_one_h2_connection(site):
    gw, app = site()
    body = ("field=" + "v" * 5000).encode()
    head, post, after = one_by_one(
        gw.port, ("HEAD", "/", [("accept", "application/json")]),
        ("POST", "/form", [("content-type", "application/x-www-form-urlencoded"),
                           ("content-length", str(len(body)))], body),
        ("GET", "/after", [("accept", "application/json")]))
    assert head.status == 503 and head.header("retry-after") == "120", head
    assert post.status == 503 and post.body.decode().strip() == MESSAGE, post
    assert after.status == 503 and json.loads(after.body)["status"] == "maintenance", after
    assert app.stats()["requests"] == 0


@pytest.mark.http1_only("HTTP/1.0 and pipelining")
def test_http10_and_pipelined_requests_during_maintenance(site):
    gw, _ = site()
    with Conn(gw.port) as c:
        c.send("GET / HTTP/1.0\r\nAccept: application/json\r\n\r\n")
        r = c.read_response()
        assert r.status == 503 and json.loads(r.body)["retry_after"] == 120
    with Conn(gw.port) as c:
        c.send(f"GET /a HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n"
               f"GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n"
               f"GET /b HTTP/1.1\r\nHost: a\r\nAccept: {BROWSER_ACCEPT}\r\n\r\n"
               f"GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
        got = [c.read_response() for _ in range(4)]
    assert [r.status for r in got] == [503, 200, 503, 503]
    assert json.loads(got[0].body)["status"] == "maintenance"
    assert got[1].body.decode() == ROBOTS
    assert got[2].body.decode() == MAINTENANCE_HTML
    assert got[3].body.decode().strip() == MESSAGE


def test_page_assets_and_robots_are_served_during_maintenance(site):
    gw, app = site()
    r = requests.get(gw.url + "/assets/site.css", headers={"Accept": "text/css,*/*;q=0.1"},
                     timeout=5)
    assert r.status_code == 200 and r.text == CSS
    assert r.headers["Content-Type"].startswith("text/css")
    r = requests.get(gw.url + "/assets/logo.svg", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert r.status_code == 200 and r.text == SVG
    r = requests.get(gw.url + "/robots.txt", timeout=5)
    assert r.status_code == 200 and r.text == ROBOTS
    # Not under an allowed glob: the maintenance answer, although the file exists.
    r = requests.get(gw.url + "/other.css", timeout=5)
    assert r.status_code == 503 and r.text.strip() == MESSAGE
    assert app.stats()["requests"] == 0


def test_maintenance_off_reaches_the_app(site):
    gw, app = site(ON.replace("enabled: true", "enabled: false"))
    r = requests.get(gw.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    assert "Retry-After" not in r.headers
    assert app.stats()["requests"] == 1


def test_maintenance_is_per_site(site):
    gw, app = site(other_site=True)
    r = requests.get(gw.url + "/", headers={"Host": "other.example"}, timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    r = requests.get(gw.url + "/", headers={"Host": "www.example"}, timeout=5)
    assert r.status_code == 503


def test_until_gives_a_retry_after_counting_down(site):
    until = int(time.time()) + 600
    gw, _ = site(ON + f'until: "{rfc3339(until)}"\n')
    r1 = requests.get(gw.url + "/", headers={"Accept": "application/json"}, timeout=5)
    now = time.time()
    assert r1.status_code == 503
    first = int(r1.headers["Retry-After"])
    assert until - math.ceil(now) - 1 <= first <= until - int(now) + 1, (first, until - now)
    assert r1.json()["retry_after"] == first
    time.sleep(1.2)
    r2 = requests.get(gw.url + "/", timeout=5)
    second = int(r2.headers["Retry-After"])
    assert first - 3 <= second < first, (first, second)


# --- scheduled windows ---------------------------------------------------------------------

def test_scheduled_window_turns_maintenance_on_and_off_by_itself(site):
    start = int(time.time()) + 2
    end = start + 3
    gw, app = site(f"""
        message: "{MESSAGE}"
        windows:
          - {{start: "{rfc3339(start)}", end: "{rfc3339(end)}", reason: short test}}
        """)
    samples = []  # (sent, received, status, retry_after)
    with requests.Session() as s:
        while time.time() < end + 1.5:
            sent = time.time()
            r = s.get(gw.url + "/w", headers={"Accept": "application/json"}, timeout=5)
            samples.append((sent, time.time(), r.status_code, r.headers.get("Retry-After")))
            time.sleep(0.03)
    assert {x[2] for x in samples} <= {200, 503}, {x[2] for x in samples}
    # The gateway may read a coarse clock (a few ms behind): 50 ms of slack at each edge.
    slack = 0.05
    before = [x for x in samples if x[1] < start]
    during = [x for x in samples if x[0] >= start + slack and x[1] < end]
    after = [x for x in samples if x[0] >= end + slack]
    assert before and during and after
    assert all(x[2] == 200 for x in before), [x for x in before if x[2] != 200][:3]
    # Per request, second precision: no poll tick delays it.
    assert all(x[2] == 503 for x in during), \
        [(round(x[0] - start, 2), x[2]) for x in during if x[2] != 503][:5]
    assert all(x[2] == 200 for x in after), \
        [(round(x[0] - end, 2), x[2]) for x in after if x[2] != 200][:5]
    for sent, received, _, retry_after in during:
        remaining = int(retry_after)
        assert end - math.floor(received) - 1 <= remaining <= end - math.floor(sent - slack), \
            (remaining, end - sent)
    # It really counts down: the first answers of the window say more than the last ones.
    assert int(during[0][3]) > int(during[-1][3]), (during[0], during[-1])
    assert all(x[3] is None for x in before + after)


def test_windows_in_the_past_or_future_do_not_apply(site):
    now = int(time.time())
    gw, _ = site(f"""
        windows:
          - {{start: "{rfc3339(now - 7200)}", end: "{rfc3339(now - 3600)}"}}
          - {{start: "{rfc3339(now + 3600)}", end: "{rfc3339(now + 7200)}"}}
        """)
    r = requests.get(gw.url + "/", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")


def test_window_retry_after_counts_down_to_the_window_end(site):
    now = int(time.time())
    gw, _ = site(f"""
        windows:
          - {{start: "{rfc3339(now - 60)}", end: "{rfc3339(now + 900)}"}}
        """)
    sent = time.time()
    r = requests.get(gw.url + "/", headers={"Accept": "application/json"}, timeout=5)
    received = time.time()
    assert r.status_code == 503
    remaining = int(r.headers["Retry-After"])
    # Whole seconds to the end, on a clock that may be a few ms behind ours.
    end = now + 900
    assert end - math.floor(received) - 1 <= remaining <= end - math.floor(sent - 0.05), \
        (remaining, end - sent)
    assert r.json()["retry_after"] == remaining


# --- bypass: header ------------------------------------------------------------------------

BYPASS_HEADER = ON + f"bypass:\n  header: {{name: X-Ops-Bypass, value: {BYPASS_VALUE}}}\n"


@pytest.mark.parametrize("headers,bypassed", [
    ({"X-Ops-Bypass": BYPASS_VALUE}, True),
    ({"x-ops-bypass": BYPASS_VALUE}, True),               # header names are case-insensitive
    ({"X-Ops-Bypass": BYPASS_VALUE.upper()}, False),
    ({"X-Ops-Bypass": BYPASS_VALUE[:-1]}, False),
    ({"X-Ops-Bypass": BYPASS_VALUE + "x"}, False),
    ({"X-Ops-Bypass": "wrong"}, False),
    ({"X-Ops-Bypass": ""}, False),
    ({"X-Other": BYPASS_VALUE}, False),
    ({}, False),
], ids=["exact", "lowercase-name", "value-case", "prefix", "longer", "wrong", "empty",
        "other-header", "absent"])
def test_bypass_header(site, headers, bypassed):
    gw, app = site(BYPASS_HEADER)
    r = requests.get(gw.url + "/dashboard", headers={"Accept": "application/json", **headers},
                     timeout=5)
    if bypassed:
        assert (r.status_code, r.text) == (200, "hello from app")
        assert app.requests_for("/dashboard"), "the bypassed request did not reach the app"
    else:
        # A wrong value is treated as absent: the ordinary maintenance answer.
        assert_maintenance_headers(r)
        assert r.json()["status"] == "maintenance"
        assert app.stats()["requests"] == 0


def test_bypass_header_value_from_a_file(site, tmp_path):
    (tmp_path / "bypass-value").write_text(BYPASS_VALUE + "\n")
    gw, app = site(ON + f'bypass:\n  header: {{name: X-Ops-Bypass, value_file: '
                        f'"{tmp_path / "bypass-value"}"}}\n')
    r = requests.get(gw.url + "/", headers={"X-Ops-Bypass": BYPASS_VALUE}, timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    assert requests.get(gw.url + "/", headers={"X-Ops-Bypass": BYPASS_VALUE + "!"},
                        timeout=5).status_code == 503


def test_bypass_secrets_never_appear_in_the_logs(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    text = config(port, pages_root(tmp_path), app.address, ON + f"""
bypass:
  header: {{name: X-Ops-Bypass, value: {BYPASS_VALUE}}}
  cookie: {{secret: {SECRET}}}
""").replace('access_log: "off"', "access_log: stderr\n  log_level: debug")
    gw = gateway_factory(text, port)
    requests.get(gw.url + "/", headers={"X-Ops-Bypass": BYPASS_VALUE}, timeout=5)
    requests.get(gw.url + "/", headers={"X-Ops-Bypass": "wrong-value"}, timeout=5)
    requests.get(gw.url + "/", cookies={"intermission_bypass": token(int(time.time()) + 600)},
                 timeout=5)
    time.sleep(0.3)
    gw.stop()
    log = gw.log_text()
    assert "/" in log, "no access log written at all"
    assert BYPASS_VALUE not in log, "the bypass header value was logged"
    assert SECRET not in log, "the cookie secret was logged"


def test_bypass_token_is_not_written_to_the_access_log(tmp_path, backend_factory,
                                                      gateway_factory):
    """The signed token is a bearer credential until it expires: whoever reads the access log
    must not be able to replay it."""
    app = backend_factory("app")
    port = free_port()
    text = config(port, pages_root(tmp_path), app.address,
                  ON + f"bypass:\n  cookie: {{secret: {SECRET}}}\n").replace(
        'access_log: "off"', "access_log: stderr")
    gw = gateway_factory(text, port)
    tok = token(int(time.time()) + 600)
    r = requests.get(gw.url + f"/.intermission/bypass?token={tok}", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    time.sleep(0.3)
    gw.stop()
    log = gw.log_text()
    assert "/.intermission/bypass" in log, "the grant request is not in the access log at all"
    signature = tok.split(".", 1)[1]
    leaked = [line for line in log.splitlines() if signature in line]
    assert not leaked, f"bypass token logged: {leaked[0]}"


# --- bypass: source networks ---------------------------------------------------------------

@pytest.mark.parametrize("sources,bypassed", [
    ('["127.0.0.0/8"]', True),
    ('["127.0.0.1"]', True),
    ('["10.0.0.0/8", "127.0.0.1/32"]', True),
    ('["127.1.2.3/8"]', True),             # bits below the prefix are ignored
    ('["10.0.0.0/8"]', False),
    ('["127.0.0.2/32", "192.168.0.0/16"]', False),
    ('["::1"]', False),                     # a v6 loopback is not 127.0.0.1
])
def test_bypass_sources(site, sources, bypassed):
    gw, app = site(ON + f"bypass:\n  sources: {sources}\n")
    r = requests.get(gw.url + "/x", headers={"Accept": "application/json"}, timeout=5)
    if bypassed:
        assert (r.status_code, r.text) == (200, "hello from app")
    else:
        assert_maintenance_headers(r)
        assert app.stats()["requests"] == 0


def test_bypass_source_over_ipv6(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    text = config(port, pages_root(tmp_path), app.address,
                  ON + 'bypass:\n  sources: ["::1/128", "10.0.0.0/8"]\n').replace(
        f'listen: ["127.0.0.1:{port}"]', f'listen: ["127.0.0.1:{port}", "[::1]:{port}"]')
    gateway_factory(text, port)
    wait_for_v6(port)
    r = requests.get(f"http://[::1]:{port}/", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 503


# --- bypass: signed cookie -----------------------------------------------------------------

COOKIE = ON + f"bypass:\n  cookie: {{secret: {SECRET}, ttl: 1h}}\n"
CUSTOM_COOKIE = ON + (f"bypass:\n  cookie: {{secret: {SECRET}, path: /_ops/preview, ttl: 10m, "
                      f"name: ops_preview}}\n")


def parse_set_cookie(value):
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return name, val, attrs


def test_bypass_cookie_in_a_real_client_session(site):
    gw, app = site(COOKIE)
    tok = token(int(time.time()) + 1800)
    with requests.Session() as s:
        # A visitor's browser without the cookie: the page.
        r = s.get(gw.url + "/account", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
        assert r.status_code == 503 and r.text == MAINTENANCE_HTML
        grant = s.get(gw.url + f"/.intermission/bypass?token={tok}", allow_redirects=False,
                      timeout=5)
        assert grant.status_code == 302, (grant.status_code, grant.text[:200])
        assert grant.headers["Location"] == "/"
        name, value, attrs = parse_set_cookie(grant.headers["Set-Cookie"])
        assert (name, value) == ("intermission_bypass", tok)
        assert "httponly" in attrs
        assert 0 < int(attrs["max-age"]) <= 3600, attrs
        assert attrs.get("path", "/") == "/"
        assert s.cookies.get("intermission_bypass") == tok, "the client did not keep the cookie"
        # The same session now sees the real site, on every path.
        r = s.get(gw.url + "/account", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app")
        r = s.get(gw.url + "/api/x", headers={"Accept": "application/json"}, timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app")
    # A new client (no cookie) still gets the maintenance page.
    r = requests.get(gw.url + "/account", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert r.status_code == 503 and r.text == MAINTENANCE_HTML
    sent = app.requests_for("/account")
    assert len(sent) == 1 and any(n.lower() == "cookie" for n, _ in sent[0]["headers"])


def test_bypass_url_followed_like_a_browser_lands_on_the_real_site(site):
    gw, _ = site(COOKIE)
    with requests.Session() as s:
        r = s.get(gw.url + f"/.intermission/bypass?token={token(int(time.time()) + 600)}",
                  headers={"Accept": BROWSER_ACCEPT}, timeout=5)
        assert [h.status_code for h in r.history] == [302]
        assert (r.status_code, r.text) == (200, "hello from app")


def test_bypass_cookie_path_and_name_are_configurable(site):
    gw, _ = site(CUSTOM_COOKIE)
    tok = token(int(time.time()) + 300)
    with requests.Session() as s:
        # The default path is not the bypass URL here.
        r = s.get(gw.url + f"/.intermission/bypass?token={tok}", allow_redirects=False, timeout=5)
        assert r.status_code == 503 and "Set-Cookie" not in r.headers
        r = s.get(gw.url + f"/_ops/preview?token={tok}", allow_redirects=False, timeout=5)
        assert r.status_code == 302, r.status_code
        name, value, attrs = parse_set_cookie(r.headers["Set-Cookie"])
        assert (name, value) == ("ops_preview", tok)
        assert 0 < int(attrs["max-age"]) <= 300
        assert (s.get(gw.url + "/", timeout=5).status_code) == 200


def test_bypass_cookie_lifetime_is_capped_by_ttl(site):
    # The token may be valid for longer than `ttl`; the cookie lives at most `ttl` (10m).
    gw, _ = site(CUSTOM_COOKIE)
    r = requests.get(gw.url + f"/_ops/preview?token={token(int(time.time()) + 7200)}",
                     allow_redirects=False, timeout=5)
    assert r.status_code == 302
    _, _, attrs = parse_set_cookie(r.headers["Set-Cookie"])
    assert 0 < int(attrs["max-age"]) <= 600, f"Max-Age {attrs['max-age']} exceeds ttl 10m"


@pytest.mark.parametrize("kind", ["forged", "expired", "other-site", "other-secret", "garbage",
                                  "no-signature", "empty"])
def test_bad_bypass_token_gets_the_maintenance_page(site, kind):
    gw, app = site(COOKIE)
    future = int(time.time()) + 600
    bad = {
        "forged": f"{future}." + "0" * 64,
        "expired": token(int(time.time()) - 5),
        "other-site": token(future, site="other"),
        "other-secret": token(future, secret="another-secret-abcdefghij"),
        "garbage": "not-a-token",
        "no-signature": str(future),
        "empty": "",
    }[kind]
    with requests.Session() as s:
        r = s.get(gw.url + f"/.intermission/bypass?token={bad}",
                  headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False, timeout=5)
        assert r.status_code == 503, (kind, r.status_code, r.headers)
        assert "Set-Cookie" not in r.headers
        assert r.text == MAINTENANCE_HTML
        # Even carried as a cookie, a bad token does not pass.
        s.cookies.set("intermission_bypass", bad)
        r = s.get(gw.url + "/x", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
        assert r.status_code == 503 and r.text == MAINTENANCE_HTML, kind
    assert app.stats()["requests"] == 0


def test_bypass_cookie_stops_working_when_its_token_expires(site):
    gw, _ = site(COOKIE)
    expiry = int(time.time()) + 2
    with requests.Session() as s:
        r = s.get(gw.url + f"/.intermission/bypass?token={token(expiry)}", timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app")
        # Keep sending the cookie by hand after it expired (a client ignoring Max-Age).
        time.sleep(max(0.0, expiry - time.time()) + 1.1)
        r = requests.get(gw.url + "/y", cookies={"intermission_bypass": token(expiry)},
                         headers={"Accept": "application/json"}, timeout=5)
        assert r.status_code == 503, "an expired bypass cookie still passes"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): a hand-written Cookie line")
def test_bypass_cookie_among_other_cookies(site):
    gw, _ = site(COOKIE)
    tok = token(int(time.time()) + 600)
    with Conn(gw.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: a\r\nCookie: session=abc; intermission_bypass={tok}; "
               f"theme=dark\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"hello from app")


@pytest.mark.h2c_only("the HTTP/2 form of test_bypass_cookie_among_other_cookies")
def test_bypass_cookie_among_other_cookies_over_h2(site):
    gw, _ = site(COOKIE)
    cookies = ["session=abc", f"intermission_bypass={token(int(time.time()) + 600)}", "theme=dark"]
    # Separate `cookie` fields (crumbs, RFC 9113 §8.2.3), then the three in one field.
    crumbs, joined = one_by_one(gw.port, ("GET", "/", [("cookie", c) for c in cookies]),
                                ("GET", "/", [("cookie", "; ".join(cookies))]))
    assert (crumbs.status, crumbs.body) == (200, b"hello from app"), crumbs
    assert (joined.status, joined.body) == (200, b"hello from app"), joined


def test_bypassed_and_public_clients_at_the_same_time(site):
    """Operators and visitors concurrently: each gets its own answer, nothing crosses."""
    gw, _ = site(BYPASS_HEADER)
    errors = []

    def client(bypass):
        with requests.Session() as s:
            for i in range(40):
                h = {"X-Ops-Bypass": BYPASS_VALUE} if bypass else {}
                try:
                    r = s.get(gw.url + f"/c{i}", headers=h, timeout=5)
                except requests.RequestException as e:
                    errors.append(repr(e))
                    continue
                want = 200 if bypass else 503
                if r.status_code != want:
                    errors.append((bypass, r.status_code))

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- bad maintenance config ----------------------------------------------------------------

def base_check_config(tmp_path, maintenance):
    root = pages_root(tmp_path)
    return config(free_port(), root, "127.0.0.1:9", maintenance)


def assert_rejected_at(tmp_path, text, token_, words=()):
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc != 0, f"check accepted:\n{text}"
    line, _ = text_position(text, token_)
    assert any(e[0] == line and all(w.lower() in e[2].lower() for w in words) for e in errors), \
        f"expected an error at line {line} naming {list(words)}; got:\n{stderr}"
    return errors


def test_check_accepts_the_full_maintenance_block(tmp_path):
    (tmp_path / "hv").write_text("header-value\n")
    (tmp_path / "key").write_text("k" * 32 + "\n")
    text = base_check_config(tmp_path, f"""
        enabled: true
        reason: upgrade
        message: "{MESSAGE}"
        until: "2030-01-01T00:00:00Z"
        page: /maintenance.html
        status: 503
        retry_after: 5m
        allow: ["/assets/*", "/robots.txt"]
        windows:
          - {{start: "2030-01-01T00:00:00Z", end: "2030-01-01T03:00:00+02:00", reason: weekly}}
        bypass:
          header: {{name: X-Ops, value_file: "{tmp_path / 'hv'}"}}
          sources: ["10.0.0.0/8", "2001:db8::/32"]
          cookie: {{secret_file: "{tmp_path / 'key'}", path: /_ops/bypass, ttl: 1h, name: ops}}
        """)
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc == 0 and errors == [], stderr


def test_check_rejects_window_ending_before_its_start(tmp_path):
    text = base_check_config(tmp_path, """
        windows:
          - {start: "2030-01-01T03:00:00Z", end: "2030-01-01T02:00:00Z"}
        """)
    assert_rejected_at(tmp_path, text, 'end: "2030-01-01T02')


def test_check_rejects_window_ending_at_its_start(tmp_path):
    text = base_check_config(tmp_path, """
        windows:
          - start: "2030-01-01T03:00:00Z"
            end: "2030-01-01T05:00:00+02:00"
        """)
    assert_rejected_at(tmp_path, text, 'end: "2030-01-01T05')


def test_check_rejects_a_window_without_end(tmp_path):
    text = base_check_config(tmp_path, """
        windows:
          - {start: "2030-01-01T03:00:00Z"}
        """)
    assert_rejected_at(tmp_path, text, "start:", ["end"])


def test_check_rejects_an_impossible_timestamp(tmp_path):
    text = base_check_config(tmp_path, """
        windows:
          - {start: "2030-02-30T03:00:00Z", end: "2030-03-01T03:00:00Z"}
        """)
    assert_rejected_at(tmp_path, text, "2030-02-30")


def test_check_rejects_a_missing_maintenance_page(tmp_path):
    text = base_check_config(tmp_path, "page: /down.html\n")
    assert_rejected_at(tmp_path, text, "/down.html", ["down.html"])


def test_check_rejects_a_bad_bypass_cidr(tmp_path):
    text = base_check_config(tmp_path, 'bypass:\n  sources: ["10.0.0.0/8", "10.0.0.0/33"]\n')
    assert_rejected_at(tmp_path, text, "10.0.0.0/33", ["10.0.0.0/33"])


def test_check_rejects_a_bad_bypass_address(tmp_path):
    text = base_check_config(tmp_path, 'bypass:\n  sources: ["300.1.2.3/8"]\n')
    assert_rejected_at(tmp_path, text, "300.1.2.3/8", ["300.1.2.3"])


def test_check_rejects_a_bad_allow_glob(tmp_path):
    text = base_check_config(tmp_path, 'allow: ["/assets/*", "robots.txt"]\n')
    assert_rejected_at(tmp_path, text, '"robots.txt"', ["robots.txt"])


def test_check_rejects_a_short_cookie_secret_without_showing_it(tmp_path):
    text = base_check_config(tmp_path, "bypass:\n  cookie: {secret: tooshort99}\n")
    errors = assert_rejected_at(tmp_path, text, "tooshort99")
    assert all("tooshort99" not in e[2] for e in errors), errors


def test_check_rejects_header_bypass_without_a_value(tmp_path):
    text = base_check_config(tmp_path, "bypass:\n  header: {name: X-Ops}\n")
    assert_rejected_at(tmp_path, text, "header:")


def test_robots_txt_is_served_without_being_allowed(site):
    gw, _ = site(ON.replace('allow: ["/assets/*", "/robots.txt"]', 'allow: ["/assets/*"]'))
    r = requests.get(gw.url + "/robots.txt", timeout=5)
    assert r.status_code == 200 and r.text == ROBOTS
    assert requests.get(gw.url + "/", timeout=5).status_code == 503


def test_json_and_text_variants_can_be_files_of_the_store(site, tmp_path):
    write_tree(tmp_path / "pages", {"maint.json": '{"down": true, "brand": "acme"}\n',
                                    "maint.txt": "Acme is down for a moment.\n"})
    gw, _ = site(ON + "json_page: /maint.json\ntext_page: /maint.txt\n")
    r = requests.get(gw.url + "/x", headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 503 and r.json() == {"down": True, "brand": "acme"}
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Retry-After"] == "120" and "no-store" in r.headers["Cache-Control"]
    r = requests.get(gw.url + "/x", headers={"Accept": "*/*"}, timeout=5)
    assert r.status_code == 503 and r.text == "Acme is down for a moment.\n"
    r = requests.get(gw.url + "/x", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert "MAINTENANCE-PAGE" in r.text


def test_a_missing_json_page_is_a_config_error(tmp_path):
    text = config(free_port(), pages_root(tmp_path), "127.0.0.1:9", ON + "json_page: /nope.json\n")
    code, stderr, errors = check_config(tmp_path, text)
    assert code != 0 and any("/nope.json" in m for _, _, m in errors), stderr
