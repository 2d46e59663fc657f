"""HTTP/2 on client connections (h2 over TLS by ALPN, h2c by prior knowledge; upstreams stay
HTTP/1.1): every feature answers the same as over HTTP/1.1, streams are multiplexed (a slow
one never holds up a fast one), bodies stream both ways with bounded memory, the configured
limits are enforced (concurrent streams, header list size, frame size), protocol errors get
the right GOAWAY or RST_STREAM and never hurt other clients, idle and stalled connections are
cut by the configured timeouts, SIGTERM and reloads send GOAWAY and let streams in flight
finish, `http2.enabled` and `http2.cleartext` switch h2 and h2c, and bad `server.http2`
values are config errors with file:line:column.

Clients: curl (--http1.1 / --http2 / --http2-prior-knowledge), nghttp, h2load, openssl
s_client, and h2lib (python3-h2, and frames written by hand for what no library sends)."""
import hashlib
import hmac
import json
import os
import pprint
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import h2lib
from adminlib import admin_yaml, api, write_token
from certs import CA
from conftest import (BINARY, assert_peak_rss_below, check_config, free_port, server_yaml, text_position,
                      wait_until, write_tree)
from h2lib import (CANCEL, CONTINUATION, ENABLE_PUSH, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR,
                   HEADERS, INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS, MAX_FRAME_SIZE,
                   NO_ERROR, PING, PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS,
                   WINDOW_UPDATE, H2Client, RawH2, request_fields)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("openssl") is None,
                                reason="curl and openssl are needed")

MiB = 1 << 20
NO_RFC7540_PRIORITIES = 0x9  # a SETTINGS id (RFC 9218 §2.1)
PRIORITY_UPDATE = 0x10       # a frame type (RFC 9218 §7.1)
RSS_LIMIT_KIB = 64 * 1024  # as in test_streaming.py
SECRET = "cookie-secret-0123456789abcdef"
BYPASS_VALUE = "let-me-in-8f2a"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MESSAGE = "Upgrading the database, back soon."
CSS = "body { font-family: serif; }\n" + ".rule { color: #333; margin: 0 auto; }\n" * 60
PAGES = {
    "index.html": "<!doctype html><h1>HOME-FROM-THE-STORE</h1>\n",
    "page.html": "<!doctype html><h1>PAGE-ACTION</h1>\n",
    "static/site.css": CSS,
    "static/app.js": "console.log('app');\n" * 40,
    "robots.txt": "User-agent: *\nDisallow:\n",
    "maintenance.html": "<!doctype html><h1>MAINTENANCE-PAGE</h1>\n" + "<p>soon</p>\n" * 30,
    "outage.html": "<!doctype html><h1>OUTAGE-PAGE</h1>\n",
    "errors/5xx.html": "<!doctype html><h1>ERROR-5XX-PAGE</h1>\n",
    "errors/gateway.html": "<!doctype html><h1>ERROR-GATEWAY-PAGE</h1>\n",
}
OTHER_PAGES = {"index.html": "<p>OTHER-SITE</p>\n"}
OLD_MTIME = 1_600_000_000


def bypass_token(expiry, site="maint", secret=SECRET):
    """A bypass token as the admin API issues them: expiry.HMAC-SHA256(site \\n expiry)."""
    mac = hmac.new(secret.encode(), f"{site}\n{expiry}".encode(), hashlib.sha256).hexdigest()
    return f"{expiry}.{mac}"


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# --- the gateway under test ---------------------------------------------------------------

class CurlResult:
    def __init__(self, proc, head_file, body_file):
        self.returncode, self.stderr = proc.returncode, proc.stderr
        version, _, status = proc.stdout.strip().partition(" ")
        self.version = version                       # "1.1" or "2"
        self.status = int(status) if status.isdigit() else None
        self.body = body_file.read_bytes() if body_file.exists() else b""
        self.headers = []                            # [(lowercase name, value)], final head
        blocks = [b for b in head_file.read_bytes().decode("latin-1").split("\r\n\r\n") if b.strip()] \
            if head_file.exists() else []
        for block in blocks:
            lines = block.split("\r\n")
            code = lines[0].split(" ")[1] if " " in lines[0] else ""
            if code.startswith("1") and block is not blocks[-1]:
                continue  # an interim response
            self.headers = [(n.strip().lower(), v.strip()) for n, _, v in
                            (line.partition(":") for line in lines[1:] if line)]

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def ok(self):
        return self.returncode == 0

    def __repr__(self):
        return (f"<curl rc={self.returncode} HTTP/{self.version} {self.status} {self.headers} "
                f"body={self.body[:120]!r} stderr={self.stderr.strip()[-300:]!r}>")


class Edge:
    """One gateway with most features, on a plain listener (h2c when http2.cleartext) and an
    HTTPS listener (h2 by ALPN), in front of one backend:

    - site www (www.example.com, default): page store (/static/*, /page), rules on path,
      header, method, query and source; fixed, redirect and page actions; error pages for
      upstream 5xx and for a group that refuses connections (/dead/*); a /version answer that
      reloads change;
    - site other (other.test): another page store;
    - site maint (maint.example.com): maintenance on, /static/* allowed, bypass by header and
      signed cookie;
    - site ops (ops.example.com): maintenance on, bypassed for 127.0.0.0/8 (every test client).
    """

    def __init__(self, tmp_path, backend_factory, gateway_factory, http2="{cleartext: true}",
                 timeouts="", limits="", server_extra="", group_extra="", delay_ms=0):
        self.tmp = tmp_path
        self.ca = CA(tmp_path / "certs")
        self.cert, self.key = self.ca.issue("edge", ["www.example.com", "*.example.com",
                                                     "other.test"])
        self.pages = write_tree(tmp_path / "pages", PAGES)
        os.utime(self.pages / "robots.txt", (OLD_MTIME, OLD_MTIME))
        self.other_pages = write_tree(tmp_path / "other-pages", OTHER_PAGES)
        write_token(tmp_path)
        self.app = backend_factory("app", delay_ms=delay_ms)
        self.port, self.https_port, self.admin_port, self.dead_port, self.dead_port2 = \
            free_port(), free_port(), free_port(), free_port(), free_port()
        self.http2, self.timeouts, self.limits = http2, timeouts, limits
        self.server_extra, self.group_extra = server_extra, group_extra
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.gw = gateway_factory(self.config(), self.port)
        assert wait_until(lambda: connects(self.https_port), timeout=10), "no HTTPS listener"
        self._n = 0

    def config(self, version="v1", http2=None):
        http2 = self.http2 if http2 is None else http2
        extra = (f"  http2: {http2}\n" if http2 else "") + self.server_extra
        return server_yaml(self.port, 2, self.limits, self.timeouts, extra) + \
            admin_yaml(self.admin_port) + f"""tls:
  listen: ["127.0.0.1:{self.https_port}"]
  certificates:
    - {{cert: "{self.cert}", key: "{self.key}"}}
  hsts: "max-age=600"
target_groups:
  app:
    targets: ["{self.app.address}"]
{self.group_extra}  dead:
    targets: ["127.0.0.1:{self.dead_port}"]
  dead2:
    targets: ["127.0.0.1:{self.dead_port2}"]
sites:
  - name: www
    hosts: ["www.example.com"]
    default: true
    pages:
      root: "{self.pages}"
      cache_control_paths:
        - {{path: "/static/*", value: "public, max-age=31536000, immutable"}}
    rules:
      - {{match: {{path: "/version"}}, fixed: {{body: "{version}"}}}}
      - {{match: {{path: ["/static/*", "/robots.txt"]}}, store: {{}}}}
      - {{match: {{host: "*.example.com", path: "/hostrule"}}, fixed: {{body: "host rule"}}}}
      - {{match: {{path: "/fixed"}}, fixed: {{status: 202, body: "fixed answer", content_type: "text/x-fixed"}}}}
      - {{match: {{path: "/old/*"}}, redirect: {{location: "https://www.example.com/new{{path}}", status: 301}}}}
      - {{match: {{header: {{name: X-Canary, value: ["1", "yes"]}}}}, fixed: {{body: "canary"}}}}
      - {{match: {{method: DELETE}}, fixed: {{status: 403, body: "no deletes"}}}}
      - {{match: {{query: {{key: debug}}}}, fixed: {{body: "debug mode"}}}}
      - {{match: {{path: "/internal", source: "127.0.0.0/8"}}, fixed: {{body: "internal only"}}}}
      - {{match: {{path: "/intranet", source: "10.0.0.0/8"}}, fixed: {{body: "intranet only"}}}}
      - {{match: {{path: "/page"}}, page: {{file: /page.html}}}}
      - {{match: {{path: "/busy"}}, page: {{file: /page.html, status: 429, retry_after: 7s}}}}
      - {{match: {{path: "/dead/*"}}, forward: dead}}
      - {{match: {{path: "/dead2/*"}}, forward: dead2}}
    default_action: {{forward: app}}
    errors:
      - {{match: [500, "502-504"], page: /errors/5xx.html, status: 503, retry_after: 30s}}
      - {{match: connect_failed, page: /errors/gateway.html, status: 502}}
    outage: {{page: /outage.html, retry_after: 20s}}
  - name: other
    hosts: [other.test]
    pages: {{root: "{self.other_pages}"}}
  - name: maint
    hosts: [maint.example.com]
    pages: {{root: "{self.pages}"}}
    default_action: {{forward: app}}
    maintenance:
      enabled: true
      message: "{MESSAGE}"
      retry_after: 2m
      allow: ["/static/*"]
      bypass:
        header: {{name: X-Ops-Bypass, value: {BYPASS_VALUE}}}
        cookie: {{secret: {SECRET}, ttl: 1h}}
  - name: ops
    hosts: [ops.example.com]
    pages: {{root: "{self.pages}"}}
    default_action: {{forward: app}}
    maintenance:
      enabled: true
      bypass: {{sources: ["127.0.0.0/8"]}}
"""

    # clients -------------------------------------------------------------------------------

    def tls(self, alpn=("h2",)):
        return h2lib.tls_context(self.ca.pem, alpn)

    def h2(self, host="www.example.com", **kw):
        """python3-h2 over TLS (ALPN h2), SNI and :authority host."""
        return H2Client(self.https_port, tls=self.tls(), server_name=host,
                        authority=f"{host}:{self.https_port}", **kw)

    def h2c(self, host="www.example.com", **kw):
        return H2Client(self.port, authority=f"{host}:{self.port}", **kw)

    def raw(self, host="www.example.com", preface=True, timeout=10.0):
        """Hand-written frames over TLS (ALPN h2)."""
        return RawH2(self.https_port, tls=self.tls(), server_name=host, preface=preface,
                     timeout=timeout)

    def fields(self, path="/", method="GET", host="www.example.com", extra=()):
        return request_fields(path, method, f"{host}:{self.https_port}", "https", extra)

    def curl(self, proto, host, path, *args, timeout=30):
        """curl with proto h1 / h2 (HTTPS) or h1c / h2c (plain; h2c = prior knowledge)."""
        self._n += 1
        head, body = self.tmp / f"curl-{self._n}.head", self.tmp / f"curl-{self._n}.body"
        plain = proto in ("h1c", "h2c")
        port = self.port if plain else self.https_port
        flag = {"h1": "--http1.1", "h1c": "--http1.1", "h2": "--http2",
                "h2c": "--http2-prior-knowledge"}[proto]
        cmd = ["curl", "-sS", flag, "--max-time", str(timeout), "--cacert", str(self.ca.pem),
               "--resolve", f"{host}:{port}:127.0.0.1", "-D", str(head), "-o", str(body),
               "-w", "%{http_version} %{http_code}", *args,
               f"{'http' if plain else 'https'}://{host}:{port}{path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
        return CurlResult(proc, head, body)

    def serves(self):
        """A new h2 client gets an answer: the gateway did not crash or stall a worker."""
        with self.h2(timeout=10) as c:
            r = c.get("/still-alive", timeout=10)
        return r.status == 200 and r.body == b"hello from app"

    def rewrite(self, text):
        self.gw.config.write_text(text)


@pytest.fixture
def edge(tmp_path, backend_factory, gateway_factory):
    return Edge(tmp_path, backend_factory, gateway_factory)


@pytest.fixture
def make_edge(tmp_path, backend_factory, gateway_factory):
    """make_edge(http2=..., timeouts=..., limits=..., server_extra=..., ...) -> Edge."""
    return lambda **kw: Edge(tmp_path, backend_factory, gateway_factory, **kw)


def no_connection_headers(headers):
    """RFC 9113 §8.2.2: an h2 message never carries connection-specific fields."""
    return [(n, v) for n, v in headers if n in h2lib.CONNECTION_SPECIFIC]


# --- the same answers over HTTP/1.1 and HTTP/2 ----------------------------------------------

# Headers that differ by protocol, not by meaning.
PER_CONNECTION = {"date", "connection", "keep-alive", "transfer-encoding"}


def feature_table(edge):
    """(name, host, path (or (HTTP/1.1 path, HTTP/2 path)), curl arguments, status HTTP/1.1
    gets). The status is checked on the
    HTTP/1.1 answer, so the table cannot pass by comparing two equally wrong answers."""
    etag = edge.curl("h1", "www.example.com", "/static/site.css").header("etag")
    modified = edge.curl("h1", "www.example.com", "/robots.txt").header("last-modified")
    assert etag and modified, "the page store sends no ETag / Last-Modified"
    token = bypass_token(int(time.time()) + 1800)
    return [
        ("store: index", "www.example.com", "/", [], 200),
        ("store: identity", "www.example.com", "/static/site.css", [], 200),
        ("store: gzip", "www.example.com", "/static/site.css", ["-H", "Accept-Encoding: gzip"], 200),
        ("store: br", "www.example.com", "/static/site.css", ["-H", "Accept-Encoding: br"], 200),
        ("store: HEAD", "www.example.com", "/static/site.css", ["-I"], 200),
        ("store: If-None-Match", "www.example.com", "/static/site.css",
         ["-H", f"If-None-Match: {etag}"], 304),
        ("store: If-Modified-Since", "www.example.com", "/robots.txt",
         ["-H", f"If-Modified-Since: {modified}"], 304),
        ("store: missing file", "www.example.com", "/static/nope.css", [], 404),
        ("store: POST refused", "www.example.com", "/static/site.css", ["-d", "x=1"], 405),
        ("rule: fixed", "www.example.com", "/fixed", [], 202),
        ("rule: redirect", "www.example.com", "/old/a/b", [], 301),
        ("rule: host (from :authority)", "www.example.com", "/hostrule", [], 200),
        ("rule: host does not match", "other.test", "/hostrule", [], 404),
        ("rule: header", "www.example.com", "/anything", ["-H", "X-Canary: yes"], 200),
        ("rule: method", "www.example.com", "/thing", ["-X", "DELETE"], 403),
        ("rule: query", "www.example.com", "/q?debug=1&x=2", [], 200),
        ("rule: source matches", "www.example.com", "/internal", [], 200),
        ("rule: source does not match", "www.example.com", "/intranet", [], 200),
        ("rule: page", "www.example.com", "/page", [], 200),
        ("rule: page with status", "www.example.com", "/busy", [], 429),
        ("proxy: plain", "www.example.com", "/hello", [], 200),
        ("proxy: echo", "www.example.com", "/echo/a?b=c&d", ["-H", "X-Custom: one",
                                                             "-H", "Accept-Language: fr"], 200),
        ("proxy: POST body", "www.example.com", "/echo/post", ["--data-binary", "hello body"], 200),
        ("proxy: PUT body", "www.example.com", "/echo/put", ["-X", "PUT", "--data-binary",
                                                             "x" * 70000], 200),
        ("proxy: HEAD", "www.example.com", "/bytes/5000", ["-I"], 200),
        ("proxy: chunked response", "www.example.com", "/chunked/100000", [], 200),
        ("proxy: close-delimited response", "www.example.com", "/eof/50000", [], 200),
        ("proxy: large response", "www.example.com", "/bytes/300000", [], 200),
        ("proxy: hop-by-hop stripped", "www.example.com", "/hop", [], 200),
        ("proxy: upstream 404 passes", "www.example.com", "/status/404", [], 404),
        ("proxy: upstream 204", "www.example.com", "/status/204", [], 204),
        ("errors: upstream 500 mapped", "www.example.com", "/status/500", [], 503),
        ("errors: upstream 502 mapped", "www.example.com", "/status/502/20", [], 503),
        # A refused target is left out for a while after the first failure (then the outage
        # page answers), so each protocol gets a group of its own.
        ("errors: connect refused", "www.example.com", ("/dead/x", "/dead2/x"), [], 502),
        ("site by authority: other", "other.test", "/", [], 200),
        ("site: unknown name to the default", "nosuch.example.com", "/hello", [], 200),
        ("maintenance: browser", "maint.example.com", "/x", ["-H", f"Accept: {BROWSER_ACCEPT}"], 503),
        ("maintenance: JSON", "maint.example.com", "/x", ["-H", "Accept: application/json"], 503),
        ("maintenance: text", "maint.example.com", "/x", [], 503),
        ("maintenance: gzip page", "maint.example.com", "/x",
         ["-H", f"Accept: {BROWSER_ACCEPT}", "-H", "Accept-Encoding: gzip"], 503),
        ("maintenance: allowed path", "maint.example.com", "/static/app.js", [], 200),
        ("maintenance: bypass header", "maint.example.com", "/x",
         ["-H", f"X-Ops-Bypass: {BYPASS_VALUE}"], 200),
        ("maintenance: wrong bypass header", "maint.example.com", "/x",
         ["-H", "X-Ops-Bypass: nope"], 503),
        ("maintenance: bypass cookie", "maint.example.com", "/x",
         ["-b", f"intermission_bypass={token}"], 200),
        ("maintenance: bypass source", "ops.example.com", "/x", [], 200),
    ]


def comparable_headers(result, drop_length):
    out = {}
    for n, v in result.headers:
        if n in PER_CONNECTION or (n == "content-length" and drop_length):
            continue
        out.setdefault(n, []).append(v)
    return out


def comparable_echo(body):
    """The backend's echo of what it received, minus what depends on the connection: its
    connection number, and the Via the gateway adds (it names the client's protocol,
    "1.1 intermission" or "2 intermission", RFC 9110 §7.6.3)."""
    seen = json.loads(body)
    seen.pop("conn", None)
    headers = {}
    for n, v in seen.pop("headers"):
        if n.lower() == "via":
            assert v.endswith("intermission"), v
            continue
        headers.setdefault(n.lower(), []).append(v)
    seen["headers"] = headers
    return seen


def differences(h1, h2, head=False):
    """What differs between the HTTP/1.1 and the HTTP/2 answer (curl results); head: curl -I,
    whose output file holds the head, not a body."""
    out = []
    if h2.returncode != 0 or h2.version != "2":
        return [f"over HTTP/2: {h2!r}"]
    if h2.status != h1.status:
        out.append(f"status {h1.status} over HTTP/1.1, {h2.status} over HTTP/2")
    bad = no_connection_headers(h2.headers)
    if bad:
        out.append(f"connection-specific headers over HTTP/2: {bad}")
    echo = h1.header("content-type") == "application/json" and h1.body.startswith(b'{"method"')
    if echo:
        if comparable_echo(h1.body) != comparable_echo(h2.body):
            out.append(f"the backend saw {comparable_echo(h1.body)} over HTTP/1.1, "
                       f"{comparable_echo(h2.body)} over HTTP/2")
    elif not head and h1.body != h2.body:
        out.append(f"body {h1.body[:200]!r} ({len(h1.body)} B) over HTTP/1.1, "
                   f"{h2.body[:200]!r} ({len(h2.body)} B) over HTTP/2")
    # A length is optional over HTTP/2 (DATA frames delimit the body) but never a different
    # one; HTTP/1.1 may have chunked what it could not count.
    # An echo's length differs by the Via it quotes ("1.1" or "2"): compared above instead.
    chunked = h1.header("transfer-encoding") is not None
    if not chunked and not echo and h2.header("content-length") is not None and \
            h2.header("content-length") != h1.header("content-length"):
        out.append(f"content-length {h1.header('content-length')} over HTTP/1.1, "
                   f"{h2.header('content-length')} over HTTP/2")
    a, b = comparable_headers(h1, True), comparable_headers(h2, True)
    if a != b:
        only1 = {k: v for k, v in a.items() if b.get(k) != v}
        only2 = {k: v for k, v in b.items() if a.get(k) != v}
        out.append(f"headers differ: HTTP/1.1 {only1} / HTTP/2 {only2}")
    return out


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_same_answers_over_http1_and_http2(edge, transport):
    """Every feature, one request each, sent by curl over HTTP/1.1 and over HTTP/2 to the
    same gateway: the same status, body and headers (but Date and framing). Over TLS with
    ALPN h2, and over the plain listener with prior knowledge (h2c)."""
    h1, h2 = ("h1", "h2") if transport == "tls" else ("h1c", "h2c")
    failures = {}
    for name, host, path, args, status in feature_table(edge):
        path1, path2 = path if isinstance(path, tuple) else (path, path)
        a = edge.curl(h1, host, path1, *args)
        assert a.ok and a.version == "1.1" and a.status == status, (name, a)
        b = edge.curl(h2, host, path2, *args)
        found = differences(a, b, head="-I" in args)
        if found:
            failures[name] = found
    assert not failures, "HTTP/2 answers differ from HTTP/1.1:\n" + pprint.pformat(failures, width=110)


def test_https_h2_forwards_x_forwarded_proto_https_and_sends_hsts(edge):
    with edge.h2() as c:
        for path in ("/echo", "/fixed", "/static/site.css", "/status/500", "/dead/x"):
            r = c.get(path)
            assert r.status in (200, 202, 502, 503), r
            assert r.header("strict-transport-security") == "max-age=600", (path, r.headers)
        seen = json.loads(c.get("/echo/proto").body)
    headers = {n.lower(): v for n, v in seen["headers"]}
    assert headers["x-forwarded-proto"] == "https", seen
    # Upstreams stay HTTP/1.1, with the :authority as Host.
    assert seen["version"] == "HTTP/1.1", seen
    assert headers["host"] == f"www.example.com:{edge.https_port}", seen
    assert "127.0.0.1" in headers["x-forwarded-for"], seen


def test_h2c_forwards_x_forwarded_proto_http_and_no_hsts(edge):
    with edge.h2c() as c:
        r = c.get("/echo/proto")
        assert r.status == 200, r
        assert r.header("strict-transport-security") is None, r.headers
    headers = {n.lower(): v for n, v in json.loads(r.body)["headers"]}
    assert headers["x-forwarded-proto"] == "http", headers
    assert headers["host"] == f"www.example.com:{edge.port}", headers


def test_responses_never_carry_connection_specific_headers(edge):
    # The library's own check is off so that such a header is seen here, not as an exception.
    with edge.h2(validate_inbound=False) as c:
        for path, accept in [("/hop", "*/*"), ("/eof/1000", "*/*"), ("/chunked/1000", "*/*"),
                             ("/status/500", "*/*"), ("/dead/x", "*/*"), ("/fixed", "*/*"),
                             ("/static/site.css", "*/*")]:
            r = c.get(path, headers=[("accept", accept)])
            assert r.status is not None, (path, r)
            assert not no_connection_headers(r.headers), (path, r.headers)
        hop = c.get("/hop")
        assert hop.header("x-end-to-end") == "yes" and hop.header("x-resp-hop") is None, hop.headers
    with edge.h2("maint.example.com", validate_inbound=False) as c:
        r = c.get("/x", headers=[("accept", BROWSER_ACCEPT)])
        assert r.status == 503 and not no_connection_headers(r.headers), r.headers


@pytest.mark.parametrize("path", ["/close-mid", "/raw/chunked-cut", "/raw/chunked-head-only",
                                  "/raw/bad-chunk"])
def test_a_forwarded_body_cut_short_is_never_ended_as_whole(edge, path):
    """The target promises a body and breaks off (closes mid-length, before the last chunk,
    or sends a bad chunk): the stream is reset or answered with an error, never ended as if
    the body were whole, and the connection serves the next stream."""
    with edge.h2() as c:
        r = c.get(path)
        assert r.reset is not None or (r.status or 0) >= 500, r
        if r.status == 200:
            assert r.reset is not None and not r.ended, r
        assert c.get("/hello").status == 200
    assert edge.serves()


def test_forwarded_bodies_of_every_framing_arrive_whole_on_one_connection(edge):
    """Length, chunked and close-delimited answers from the target, one after another on one
    connection: each stream ends with exactly the target's bytes and its length where known."""
    with edge.h2() as c:
        for path, n in [("/bytes/70000", 70000), ("/chunked/70000", 70000), ("/eof/70000", 70000),
                        ("/bytes/1", 1), ("/chunked/1", 1), ("/status/204", 0)]:
            r = c.get(path)
            assert r.ended and r.reset is None and len(r.body) == n, (path, r)
            length = r.header("content-length")
            assert length is None or int(length) == n, (path, r.headers)


# --- maintenance, bypass, outage over h2 ------------------------------------------------------

def test_maintenance_switched_on_applies_to_the_next_stream_of_an_open_connection(edge):
    with edge.h2() as c:
        assert c.get("/a").status == 200
        assert api(edge.admin, "PUT", "/v1/sites/www/maintenance", {"on": True}).status_code == 200
        r = c.get("/b", headers=[("accept", "application/json")])
        assert r.status == 503, r
        assert r.header("retry-after") is not None and "no-store" in r.header("cache-control"), r.headers
        assert json.loads(r.body)["status"] == "maintenance", r.body
        r = c.get("/c", headers=[("accept", BROWSER_ACCEPT)])
        assert r.status == 503 and b"MAINTENANCE-PAGE" in r.body, r
        r = c.get("/d", headers=[("accept", "*/*")])
        assert r.status == 503 and r.header("content-type").startswith("text/plain"), r.headers
        assert api(edge.admin, "PUT", "/v1/sites/www/maintenance", {"on": False}).status_code == 200
        assert c.get("/e").status == 200
    assert [e["target"] for e in edge.app.requests_for("/")] == ["/a", "/e"]


def test_bypass_cookie_granted_by_the_bypass_url_over_h2(edge):
    token = bypass_token(int(time.time()) + 600)
    with edge.h2("maint.example.com") as c:
        assert c.get("/account", headers=[("accept", BROWSER_ACCEPT)]).status == 503
        grant = c.get(f"/.intermission/bypass?token={token}")
        assert grant.status == 302, grant
        cookie = grant.header("set-cookie")
        assert cookie and cookie.startswith(f"intermission_bypass={token}"), grant.headers
        r = c.get("/account", headers=[("cookie", f"intermission_bypass={token}")])
        assert (r.status, r.body) == (200, b"hello from app"), r
        # Several cookie fields (h2 may split them, RFC 9113 §8.2.3) still carry it.
        r = c.get("/account2", headers=[("cookie", "a=b"), ("cookie", f"intermission_bypass={token}")])
        assert (r.status, r.body) == (200, b"hello from app"), r
        assert c.get("/account", headers=[("accept", BROWSER_ACCEPT)]).status == 503


def test_outage_page_when_every_target_is_down_and_back_when_they_return(make_edge):
    edge = make_edge(group_extra="""    health:
      path: /health
      interval: 100ms
      timeout: 100ms
      healthy_threshold: 2
      unhealthy_threshold: 2
""")
    with edge.h2() as c:
        assert c.get("/x").status == 200
    edge.app.kill()

    def outage():
        with edge.h2() as c:
            r = c.get("/probe", headers=[("accept", BROWSER_ACCEPT)])
        return r if r.status == 503 and b"OUTAGE-PAGE" in r.body else None
    r = wait_until(outage, timeout=10)
    assert r, "never switched to the outage page over h2 with every target down"
    assert r.header("retry-after") == "20", r.headers
    edge.app.start()

    def back():
        with edge.h2() as c:
            r = c.get("/probe")
        return r.status == 200 and r.body == b"hello from app"
    assert wait_until(back, timeout=10), "traffic never came back over h2"


# --- multiplexing -----------------------------------------------------------------------------

def test_a_slow_stream_does_not_hold_up_fast_ones_on_the_same_connection(edge):
    with edge.h2() as c:
        slow = c.request("/slow/5000")
        fast = [c.request(f"/fast/{i}") for i in range(19)]
        assert c.wait(lambda: all(c.streams[s].finished for s in fast), timeout=20), c.streams
        for s in fast:
            assert (c.streams[s].status, c.streams[s].body) == (200, b"hello from app"), c.streams[s]
        assert not c.streams[slow].finished, "the slow stream ended before the fast ones"
        r = c.response(slow, timeout=20)
        assert (r.status, r.body) == (200, b"slow"), r
    seen = edge.app.requests_for("/fast/")
    assert len(seen) == 19


def test_interleaved_downloads_on_one_connection_arrive_whole(edge):
    sizes = [1, 1000, 16384, 16385, 100_000, 262_144, 262_145, 1_500_000]
    with edge.h2() as c:
        sids = {c.request(f"/bytes/{n}"): n for n in sizes}
        sids.update({c.request(f"/chunked/{n}"): n for n in (1, 70_000, 600_000)})
        assert c.wait(lambda: all(c.streams[s].finished for s in sids), timeout=30)
        for sid, n in sids.items():
            r = c.streams[sid]
            assert r.status == 200 and r.ended, r
            assert len(r.data) == n and r.data.strip(b"xy") == b"", (n, len(r.data))


def test_interleaved_uploads_on_one_connection_reach_the_backend_whole(edge):
    sizes = [3 * MiB, 1, 200_000, 2 * MiB + 7]
    with edge.h2() as c:
        sids = [c.request("/sink", method="POST", end_stream=False) for _ in sizes]
        left = dict(zip(sids, sizes))
        piece = b"u" * 65536
        while left:  # round robin: the gateway gets the bodies' DATA frames interleaved
            for sid in list(left):
                k = min(left[sid], len(piece))
                c.send_body(sid, piece[:k], end_stream=(k == left[sid]))
                left[sid] -= k
                if not left[sid]:
                    del left[sid]
        for sid, n in zip(sids, sizes):
            r = c.response(sid, timeout=30)
            assert (r.status, r.body) == (200, str(n).encode()), (n, r)


def test_nghttp_makes_20_requests_on_one_connection(edge):
    if shutil.which("nghttp") is None:
        pytest.skip("nghttp is not installed")
    out = subprocess.run(["nghttp", "-nv", "-m", "20", f"https://127.0.0.1:{edge.https_port}/many"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    assert out.stdout.count(":status: 200") == 20, out.stdout[-3000:]
    assert len(edge.app.requests_for("/many")) == 20


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_h2load_every_request_succeeds(edge, scheme):
    if shutil.which("h2load") is None:
        pytest.skip("h2load is not installed")
    port = edge.https_port if scheme == "https" else edge.port  # http: h2c, prior knowledge
    out = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "16",
                          f"{scheme}://127.0.0.1:{port}/load"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "400 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert "status codes: 400 2xx" in out.stdout, out.stdout
    if scheme == "https":
        assert "Application protocol: h2" in out.stdout, out.stdout


# --- streaming bodies -------------------------------------------------------------------------

def big_file(tmp_path, n):
    path = tmp_path / f"upload-{n}.bin"
    block = b"u" * MiB
    with open(path, "wb") as f:
        for _ in range(n // MiB):
            f.write(block)
        f.write(block[:n % MiB])
    return path


def test_large_download_over_h2_is_intact_with_bounded_memory(edge, tmp_path):
    n = 200 * MiB
    r = edge.curl("h2", "www.example.com", f"/bytes/{n}", timeout=120)
    assert r.ok and r.version == "2" and r.status == 200, r
    out = tmp_path / f"curl-{edge._n}.body"
    assert out.stat().st_size == n
    digest, expected = hashlib.sha256(), hashlib.sha256()
    with open(out, "rb") as f:
        while True:
            block = f.read(MiB)
            if not block:
                break
            digest.update(block)
            expected.update(b"x" * len(block))
    assert digest.hexdigest() == expected.hexdigest(), "body bytes were altered"
    out.unlink()
    assert_peak_rss_below(edge.gw, RSS_LIMIT_KIB)


@pytest.mark.parametrize("length", ["content-length", "no-length"])
def test_large_upload_over_h2_streams_with_bounded_memory(edge, tmp_path, length):
    """With a content-length (curl -T file), and without (curl -T - from a pipe: DATA frames
    only): the whole body reaches the backend, framed once, and memory stays bounded."""
    n = 128 * MiB
    path = big_file(tmp_path, n)
    if length == "content-length":
        r = edge.curl("h2", "www.example.com", "/sink", "-T", str(path), timeout=180)
    else:
        with open(path, "rb") as f:
            head, body = tmp_path / "up.head", tmp_path / "up.body"
            proc = subprocess.run(
                ["curl", "-sS", "--http2", "--max-time", "180", "--cacert", str(edge.ca.pem),
                 "--resolve", f"www.example.com:{edge.https_port}:127.0.0.1", "-D", str(head),
                 "-o", str(body), "-w", "%{http_version} %{http_code}", "-T", "-",
                 f"https://www.example.com:{edge.https_port}/sink"],
                stdin=f, capture_output=True, text=True, timeout=200)
            r = CurlResult(proc, head, body)
    path.unlink()
    assert r.ok and r.version == "2" and r.status == 200, r
    assert r.body == str(n).encode(), r.body
    sent = edge.app.requests_for("/sink")[-1]
    te = [v.lower() for k, v in sent["headers"] if k.lower() == "transfer-encoding"]
    cl = [v for k, v in sent["headers"] if k.lower() == "content-length"]
    assert sent["body_length"] == n
    if length == "content-length":
        assert cl == [str(n)] and not te, sent["headers"]
    else:
        assert (te == ["chunked"] and not cl) or (cl == [str(n)] and not te), sent["headers"]
    assert_peak_rss_below(edge.gw, RSS_LIMIT_KIB)


def test_upload_to_a_paused_backend_is_not_buffered(edge, tmp_path):
    # The backend reads nothing for 3 s: the gateway must stop giving the client window
    # (WINDOW_UPDATE) instead of piling the body up in memory.
    n = 128 * MiB
    path = big_file(tmp_path, n)
    r = edge.curl("h2", "www.example.com", "/sink-after/3000", "-T", str(path), timeout=180)
    path.unlink()
    assert r.ok and r.version == "2" and r.status == 200 and r.body == str(n).encode(), r
    assert_peak_rss_below(edge.gw, RSS_LIMIT_KIB)


def test_a_client_that_gives_no_window_is_not_buffered_for(edge):
    # The client reads its socket but never returns flow-control credit: the gateway may send
    # 65535 bytes (the client's window) and must then stop reading the upstream.
    n = 512 * MiB
    with edge.h2(auto_ack=False) as c:
        sid = c.request(f"/bytes/{n}")
        assert c.wait(lambda: c.streams[sid].headers is not None, timeout=10), c.streams
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            c.pump(0.2)
        got = len(c.streams[sid].data)
        assert 0 < got <= 65535, f"{got} bytes sent into a 65535-byte window"
        assert_peak_rss_below(edge.gw, RSS_LIMIT_KIB)
        # Cancelling the stream frees it; the connection goes on serving.
        c.conn.reset_stream(sid, error_code=CANCEL)
        c.auto_ack = True
        c.conn.acknowledge_received_data(c.unacked, sid)
        c.flush()
        r = c.get("/after-cancel")
        assert (r.status, r.body) == (200, b"hello from app"), r


def test_request_bodies_without_content_length_reach_the_backend(edge):
    with edge.h2() as c:
        sid = c.request("/echo/nolength", method="POST", end_stream=False,
                        headers=[("content-type", "text/plain")])
        for piece in (b"hello ", b"h2 ", b"data" * 5000, b"!"):
            c.send_body(sid, piece, end_stream=False)
        c.send_body(sid, b"", end_stream=True)
        r = c.response(sid)
        assert r.status == 200, r
        seen = json.loads(r.body)
        assert seen["body_length"] == 6 + 3 + 20000 + 1, seen
        # A POST whose HEADERS end the stream has an empty body.
        r = c.get("/echo/empty", method="POST")
        assert r.status == 200 and json.loads(r.body)["body_length"] == 0, r
        # A body announced by content-length arrives with it.
        r = c.response(c.request("/echo/cl", method="POST", body=b"0123456789",
                                 headers=[("content-length", "10")]))
        seen = json.loads(r.body)
        assert seen["body_length"] == 10
        assert [v for n, v in seen["headers"] if n.lower() == "content-length"] == ["10"], seen


def test_an_answer_before_the_upload_ends_is_a_clean_413(make_edge, tmp_path):
    """An answer that needs no more of the body (413 over limits.max_body_bytes) ends the
    stream's response; the rest of the upload is read off and dropped, not answered with
    RST_STREAM at once, which curl 7.88 reports as a failed transfer (exit 92)."""
    edge = make_edge(limits="max_body_bytes: 1000")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(300_000))
    for proto in ("h2", "h2c"):
        r = edge.curl(proto, "www.example.com", "/echo/too-big", "-T", str(upload))
        assert r.ok and r.version == "2" and r.status == 413, r
    # A client that keeps sending far past the answer is reset (NO_ERROR), and its
    # connection goes on serving.
    with edge.raw() as raw:
        raw.handshake()
        raw.headers(1, edge.fields("/echo/too-big", method="PUT",
                                   extra=[("content-length", str(4 * MiB))]), end_stream=False)
        def credit(sid):  # what the server's windows allow now (RFC 9113 §6.9)
            granted = sum(struct.unpack("!I", f.payload)[0] & 0x7FFFFFFF for f in raw.frames
                          if f.type == WINDOW_UPDATE and f.sid == sid)
            return granted + (raw.server_settings.get(INITIAL_WINDOW_SIZE, 65535) if sid else 65535)
        sent = 0
        while sent < 4 * MiB and raw.stream(1).reset is None and not raw.closed:
            n = min(16384, credit(0) - sent, credit(1) - sent)
            if n <= 0:
                raw.until(lambda r: r.stream(1).reset is not None or r.closed or
                          min(credit(0), credit(1)) > sent, timeout=10)
                continue
            try:
                raw.data(1, b"x" * n)
            except OSError:
                break
            sent += n
            raw.until(lambda r: False, timeout=0.001)  # take in what came meanwhile
        raw.until(lambda r: r.stream(1).reset is not None or r.closed, timeout=10)
        assert raw.stream(1).status == 413, raw.stream(1)
        assert raw.stream(1).reset == NO_ERROR, raw.stream(1)
        assert not raw.goaways, raw.goaways
        raw.headers(3, edge.fields("/after"))
        assert raw.until(lambda r: r.stream(3).finished, timeout=10)
        assert raw.stream(3).status == 200, raw.stream(3)
    assert edge.app.requests_for("/echo/too-big") == []


# --- settings and limits ----------------------------------------------------------------------

def test_settings_advertise_the_defaults(edge):
    with edge.raw() as raw:
        s = raw.handshake()
    assert s.get(MAX_CONCURRENT_STREAMS) == 128, s
    assert s.get(INITIAL_WINDOW_SIZE) == 256 * 1024, s
    assert s.get(MAX_FRAME_SIZE, 16384) == 16384, s
    assert s.get(ENABLE_PUSH, 0) == 0, s  # a server never announces push (RFC 9113 §6.5.2)
    assert s.get(NO_RFC7540_PRIORITIES) == 1, s  # RFC 9218 §2.1


def test_priority_signals_of_either_kind_are_taken_and_every_stream_answered(edge):
    """The gateway says SETTINGS_NO_RFC7540_PRIORITIES; clients that still send RFC 7540
    PRIORITY frames or HEADERS with priority, or RFC 9218 PRIORITY_UPDATE, are served all the
    same, with no connection error."""
    with edge.raw() as raw:
        raw.handshake()
        raw.send_frame(h2lib.PRIORITY, 0, 1, struct.pack("!IB", 0, 15))
        raw.headers(1, edge.fields("/static/site.css"))
        block = h2lib.literal_block(edge.fields("/static/app.js"))
        raw.send_frame(HEADERS, h2lib.END_STREAM | h2lib.END_HEADERS | h2lib.PRIORITY_FLAG, 3,
                       struct.pack("!IB", 0x80000001, 200) + block)
        raw.send_frame(PRIORITY_UPDATE, 0, 0, struct.pack("!I", 5) + b"u=1, i")
        raw.headers(5, edge.fields("/hello"))
        assert raw.until(lambda r: all(r.stream(i).finished for i in (1, 3, 5)), timeout=10), raw.frames
        assert [raw.stream(i).status for i in (1, 3, 5)] == [200, 200, 200], raw.frames
        assert raw.stream(1).body == CSS.encode()
        assert raw.stream(5).body == b"hello from app"
        assert not raw.goaways and not any(raw.stream(i).reset for i in (1, 3, 5)), raw.frames


def test_settings_advertise_the_configured_values(make_edge):
    edge = make_edge(http2="{max_concurrent_streams: 7, initial_window_size: 1MiB, "
                           "max_frame_size: 32KiB}")
    with edge.raw() as raw:
        s = raw.handshake()
    assert (s.get(MAX_CONCURRENT_STREAMS), s.get(INITIAL_WINDOW_SIZE), s.get(MAX_FRAME_SIZE)) == \
        (7, MiB, 32 * 1024), s


def test_more_streams_than_max_concurrent_streams_are_refused(make_edge):
    edge = make_edge(http2="{max_concurrent_streams: 4}")
    with edge.raw() as raw:
        assert raw.handshake().get(MAX_CONCURRENT_STREAMS) == 4
        for sid in (1, 3, 5, 7):
            raw.headers(sid, edge.fields("/slow/2000"))
        raw.headers(9, edge.fields("/slow/2001"))  # the fifth at once
        raw.until(lambda r: r.goaways or all(r.stream(s).finished for s in (1, 3, 5, 7, 9)),
                  timeout=20)
        if raw.stream(9).reset is not None:
            # RFC 9113 §5.1.2: a stream error, REFUSED_STREAM (retry later) or PROTOCOL_ERROR;
            # the four streams within the limit are answered.
            assert raw.stream(9).reset in (REFUSED_STREAM, PROTOCOL_ERROR), raw.stream(9)
            for sid in (1, 3, 5, 7):
                s = raw.stream(sid)
                assert (s.status, s.body) == (200, b"slow"), s
            # and the connection takes a new stream once some have ended
            raw.headers(11, edge.fields("/after"))
            assert raw.until(lambda r: r.stream(11).finished, timeout=10)
            assert raw.stream(11).status == 200, raw.stream(11)
        else:
            # Accepted too: a connection error (nghttp2 does this once the client has
            # acknowledged the limit), as long as the fifth stream was not processed.
            assert raw.goaways, f"the fifth stream was neither refused nor reset: {raw.frames}"
            assert raw.goaways[0].error_code == PROTOCOL_ERROR, raw.goaways
            assert raw.goaways[0].last_stream_id < 9, raw.goaways
            assert raw.stream(9).status is None, raw.stream(9)
    assert edge.app.requests_for("/slow/2001") == [], "the stream over the limit was forwarded"
    assert edge.serves()


@pytest.mark.parametrize("where", ["http2.max_header_list_size", "limits.max_header_bytes"])
def test_a_header_list_over_the_limit_is_refused(make_edge, where):
    if where == "http2.max_header_list_size":
        edge = make_edge(http2="{max_header_list_size: 4KiB}")
    else:  # max_header_list_size: 0 (the default) means limits.max_header_bytes
        edge = make_edge(limits="max_header_bytes: 4KiB")
    with edge.raw() as raw:
        raw.handshake()
        raw.headers(1, edge.fields("/big", extra=[("x-big", "b" * 8000)]))
        raw.until(lambda r: r.stream(1).finished or r.goaways or r.closed, timeout=10)
        s = raw.stream(1)
        # Preferred: a 431 answer on the stream. Accepted: the stream reset, or the
        # connection closed with a GOAWAY; in every case the request is not forwarded and
        # the gateway keeps serving (checked below).
        if s.headers is not None:
            assert s.status == 431, s
        else:
            assert s.reset is not None or raw.goaways, (s, raw.frames)
    assert edge.app.requests_for("/big") == [], "the oversized request was forwarded"
    with edge.raw() as raw:  # under the limit is fine
        raw.handshake()
        raw.headers(1, edge.fields("/small", extra=[("x-small", "s" * 1500)]))
        assert raw.until(lambda r: r.stream(1).finished, timeout=10)
        assert raw.stream(1).status == 200, raw.stream(1)
    assert edge.serves()


@pytest.mark.parametrize("kind", ["DATA", "HEADERS"])
def test_a_frame_over_max_frame_size_is_a_frame_size_error(edge, kind):
    with edge.raw() as raw:
        raw.handshake()
        if kind == "DATA":
            raw.headers(1, edge.fields("/sink", method="POST"), end_stream=False)
            raw.data(1, b"d" * 20000, end_stream=True)
        else:  # one HEADERS frame of 17000 bytes, not split into CONTINUATION
            raw.headers(1, edge.fields("/x", extra=[("x-pad", "p" * 16900)]), max_frame=1 << 20)
        assert raw.until(lambda r: r.goaways, timeout=10), raw.frames
        assert raw.goaways[0].error_code == FRAME_SIZE_ERROR, raw.goaways
        assert raw.read_until_closed(timeout=10), "the connection stayed open after GOAWAY"
    assert edge.serves()


def test_frames_up_to_a_larger_configured_max_frame_size_are_accepted(make_edge):
    edge = make_edge(http2="{max_frame_size: 32KiB}")
    with edge.raw() as raw:
        assert raw.handshake().get(MAX_FRAME_SIZE) == 32768
        raw.headers(1, edge.fields("/sink", method="POST"), end_stream=False)
        raw.data(1, b"d" * 30000, end_stream=True)
        assert raw.until(lambda r: r.stream(1).finished or r.goaways, timeout=10)
        assert (raw.stream(1).status, raw.stream(1).body) == (200, b"30000"), raw.frames
        raw.headers(3, edge.fields("/sink", method="POST"), end_stream=False)
        try:
            raw.data(3, b"d" * 40000, end_stream=True)
        except OSError:
            pass  # the server may hang up after the frame's head, before all of it is sent
        assert raw.until(lambda r: r.goaways, timeout=10), raw.frames
        assert raw.goaways[0].error_code == FRAME_SIZE_ERROR, raw.goaways


# --- protocol errors --------------------------------------------------------------------------

def _even_stream(edge, raw):
    raw.headers(2, edge.fields("/even"))


CONNECTION_ERRORS = [
    # (id, what the client sends after the handshake, the GOAWAY error code expected)
    ("DATA on stream 0", lambda edge, raw: raw.data(0, b"hello"), PROTOCOL_ERROR),
    ("WINDOW_UPDATE of 0 on the connection",
     lambda edge, raw: raw.send_frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 0)), PROTOCOL_ERROR),
    ("HEADERS on an even stream id", _even_stream, PROTOCOL_ERROR),
    ("CONTINUATION without HEADERS",
     lambda edge, raw: raw.send_frame(CONTINUATION, 0x4, 1, b""), PROTOCOL_ERROR),
    ("SETTINGS of a length not a multiple of 6",
     lambda edge, raw: raw.send_frame(SETTINGS, 0, 0, b"\x00\x03\x00"), FRAME_SIZE_ERROR),
    ("PING of 7 bytes", lambda edge, raw: raw.send_frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
    ("connection window over 2^31-1",
     lambda edge, raw: raw.send(h2lib.frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 0x7FFFFFFF)) * 2),
     FLOW_CONTROL_ERROR),
]


@pytest.mark.parametrize("send,code", [c[1:] for c in CONNECTION_ERRORS],
                         ids=[c[0] for c in CONNECTION_ERRORS])
def test_connection_errors_get_goaway(edge, send, code):
    with edge.raw() as raw:
        raw.handshake()
        send(edge, raw)
        assert raw.until(lambda r: r.goaways, timeout=10), f"no GOAWAY: {raw.frames}"
        assert raw.goaways[0].error_code == code, raw.goaways
        assert raw.read_until_closed(timeout=10), "the connection stayed open after GOAWAY"
    assert edge.app.requests_for("/even") == []
    assert edge.serves()


STREAM_ERRORS = [
    # (id, request fields): malformed requests (RFC 9113 §8.1.1, §8.2, §8.3)
    ("uppercase header name", lambda f: f + [("X-Upper", "1")]),
    ("connection header", lambda f: f + [("connection", "keep-alive")]),
    ("keep-alive header", lambda f: f + [("keep-alive", "timeout=5")]),
    ("transfer-encoding header", lambda f: f + [("transfer-encoding", "chunked")]),
    ("upgrade header", lambda f: f + [("upgrade", "websocket")]),
    ("te other than trailers", lambda f: f + [("te", "gzip")]),
    ("no :path", lambda f: [x for x in f if x[0] != ":path"]),
    ("no :method", lambda f: [x for x in f if x[0] != ":method"]),
    ("unknown pseudo-header", lambda f: f[:1] + [(":foo", "bar")] + f[1:]),
    ("pseudo-header after a regular one", lambda f: [("x-a", "1")] + f),
    ("pseudo-header twice", lambda f: f + [(":path", "/again")]),
    # The pipeline takes a stream's head as HTTP/1.1 lines: nothing may break a line.
    ("LF in a value", lambda f: f + [("x-a", "1\nGET /again HTTP/1.1")]),
    ("CR LF CR LF in a value", lambda f: f + [("x-a", "1\r\n\r\nGET /again HTTP/1.1\r\n\r\n")]),
    ("CR in a value", lambda f: f + [("x-a", "1\r2")]),
    ("NUL in a value", lambda f: f + [("x-a", "1\x002")]),
    ("LF in a name", lambda f: f + [("x-a\nx-b", "1")]),
    ("space in :path", lambda f: [(n, "/malformed HTTP/1.1") if n == ":path" else (n, v) for n, v in f]),
    ("LF in :path", lambda f: [(n, "/malformed\nx-a: 1") if n == ":path" else (n, v) for n, v in f]),
    ("LF in :method", lambda f: [(n, "GET\nx") if n == ":method" else (n, v) for n, v in f]),
    ("LF in :authority", lambda f: [(n, "www.example.com\nx-a: 1") if n == ":authority" else (n, v)
                                    for n, v in f]),
]


@pytest.mark.parametrize("mangle", [c[1] for c in STREAM_ERRORS], ids=[c[0] for c in STREAM_ERRORS])
def test_malformed_requests_get_rst_stream_protocol_error(edge, mangle):
    with edge.raw() as raw:
        raw.handshake()
        raw.headers(1, mangle(edge.fields("/malformed")))
        assert raw.until(lambda r: r.stream(1).finished or r.goaways, timeout=10), raw.frames
        assert not raw.goaways, f"a stream error closed the connection: {raw.goaways}"
        assert raw.stream(1).reset == PROTOCOL_ERROR, raw.stream(1)
        # The connection goes on: the next stream is served.
        raw.headers(3, edge.fields("/next"))
        assert raw.until(lambda r: r.stream(3).finished, timeout=10), raw.frames
        assert (raw.stream(3).status, raw.stream(3).body) == (200, b"hello from app"), raw.stream(3)
    assert edge.app.requests_for("/malformed") == [] and edge.app.requests_for("/again") == []
    assert edge.serves()


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
                                     b"\x00\x01\x02\x03 not a preface at all " * 4],
                         ids=["http/1.1 request", "random bytes"])
def test_garbage_instead_of_the_preface_closes_the_connection(edge, garbage):
    with edge.raw(preface=False) as raw:
        raw.send(garbage)
        assert raw.read_until_closed(timeout=10), "the connection stayed open after garbage"
        assert all(g.error_code == PROTOCOL_ERROR for g in raw.goaways), raw.goaways
        assert not any(f.type == HEADERS for f in raw.frames), raw.frames
    assert edge.serves()


def test_a_preface_not_followed_by_settings_is_a_protocol_error(edge):
    with edge.raw(preface=False) as raw:
        raw.send(PREFACE + h2lib.frame(PING, 0, 0, b"12345678"))
        assert raw.read_until_closed(timeout=10), "the connection stayed open"
        assert raw.goaways and raw.goaways[0].error_code == PROTOCOL_ERROR, raw.frames
    assert edge.serves()


def test_many_bad_connections_at_once_do_not_stall_the_workers(edge):
    bad = []
    for i in range(30):
        raw = edge.raw(timeout=15)
        raw.handshake()
        if i % 3 == 0:
            raw.data(0, b"x")
        elif i % 3 == 1:
            raw.headers(1, edge.fields("/m", extra=[("X-Bad", "1")]))
        else:
            raw.send(b"\xff" * 64)
        bad.append(raw)
    assert edge.serves()
    for raw in bad:
        raw.close()
    assert edge.gw.alive()


# --- timeouts ---------------------------------------------------------------------------------

def test_idle_h2_connections_are_closed_after_the_keepalive_timeout(make_edge):
    edge = make_edge(timeouts="header: 1s, keepalive: 2s")
    silent = edge.raw()  # preface and SETTINGS, then nothing
    silent.handshake()
    used = edge.raw()    # one request, then nothing
    used.handshake()
    used.headers(1, edge.fields("/x"))
    assert used.until(lambda r: r.stream(1).finished, timeout=10)
    t0 = time.monotonic()
    try:
        results = {}

        def watch(name, raw):
            results[name] = (raw.read_until_closed(timeout=15), time.monotonic() - t0)
        threads = [threading.Thread(target=watch, args=a) for a in (("silent", silent), ("used", used))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, (closed, after) in results.items():
            assert closed, f"the {name} idle connection was still open after 15 s (keepalive: 2s)"
            assert after >= 1.0, f"the {name} idle connection was closed after {after:.2f}s"
    finally:
        silent.close()
        used.close()
    assert edge.serves()


def test_after_the_preface_an_idle_connection_gets_keepalive_not_the_header_timeout(make_edge):
    # The header timeout bounds the preface only: once SETTINGS came, an idle connection
    # may wait for its first request as long as keepalive allows.
    edge = make_edge(timeouts="header: 1s, keepalive: 4s")
    with edge.raw() as raw:
        raw.handshake()
        t0 = time.monotonic()
        assert not raw.read_until_closed(timeout=2.5), "closed at the header timeout"
        raw.headers(1, edge.fields("/late"))
        assert raw.until(lambda r: r.stream(1).finished, timeout=10)
        assert raw.stream(1).status == 200, raw.stream(1)
        assert raw.read_until_closed(timeout=15), "still open 15 s after its last stream"
        assert time.monotonic() - t0 >= 2.5 + 3.0  # keepalive (4 s) after the stream, with slack


def test_a_stream_in_flight_longer_than_keepalive_is_not_cut(make_edge):
    # keepalive is for idle connections; a connection with an open stream is not idle.
    edge = make_edge(timeouts="header: 1s, keepalive: 1s")
    with edge.h2() as c:
        r = c.get("/slow/3000", timeout=20)
        assert (r.status, r.body) == (200, b"slow"), r
        assert not c.goaways or c.goaways[0][1] >= 1, c.goaways


def test_stalled_tls_handshakes_are_cut_at_the_header_timeout(make_edge):
    edge = make_edge(timeouts="header: 1s, keepalive: 30s")
    hello = bytes.fromhex("160301020001")  # a TLS record and ClientHello header, then nothing
    stalled = [socket.create_connection(("127.0.0.1", edge.https_port), timeout=15) for _ in range(10)]
    half = [socket.create_connection(("127.0.0.1", edge.https_port), timeout=15) for _ in range(10)]
    for s in half:
        s.sendall(hello)
    try:
        assert edge.serves()  # served meanwhile, over h2
        t0 = time.monotonic()
        for s in stalled + half:
            try:
                while s.recv(4096):  # an alert may come first; then the close
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                pytest.fail("a stalled TLS handshake was still open after 15 s (header: 1s)")
        # keepalive is 30 s: closing them this early is the header timeout's doing.
        assert time.monotonic() - t0 < 12, "stalled handshakes outlived the header timeout"
    finally:
        for s in stalled + half:
            s.close()


def test_a_partial_preface_is_cut_by_a_timeout(make_edge):
    edge = make_edge(timeouts="header: 1s, keepalive: 2s")
    with edge.raw(preface=False, timeout=20) as raw:
        raw.send(PREFACE[:10])
        t0 = time.monotonic()
        assert raw.read_until_closed(timeout=15), "a half-sent preface held the connection open"
        assert time.monotonic() - t0 < 12
    assert edge.serves()


# --- GOAWAY on shutdown and reload ------------------------------------------------------------

def test_sigterm_sends_goaway_and_lets_the_stream_in_flight_finish(make_edge):
    edge = make_edge(server_extra="  drain_timeout: 30s\n")
    with edge.raw(timeout=30) as raw:
        raw.handshake()
        raw.headers(1, edge.fields("/slow/2500"))
        time.sleep(0.5)  # the request is at the backend
        edge.gw.proc.send_signal(signal.SIGTERM)
        assert raw.until(lambda r: r.stream(1).finished and r.goaways, timeout=25), raw.frames
        assert all(g.error_code == NO_ERROR for g in raw.goaways), raw.goaways
        # The GOAWAY comes while the stream is still running (so the client can send its next
        # requests elsewhere), and does not disown it.
        first_goaway = raw.frames.index(raw.goaways[0])
        last_of_stream = max(i for i, f in enumerate(raw.frames) if f.sid == 1)
        assert first_goaway < last_of_stream, raw.frames
        assert raw.goaways[-1].last_stream_id >= 1, raw.goaways
        assert (raw.stream(1).status, raw.stream(1).body) == (200, b"slow"), raw.stream(1)
    assert edge.gw.proc.wait(timeout=25) == 0


def test_an_idle_h2_connection_does_not_hold_up_shutdown(make_edge):
    edge = make_edge(server_extra="  drain_timeout: 30s\n")
    with edge.h2() as c:
        assert c.get("/x").status == 200
        t0 = time.monotonic()
        edge.gw.proc.send_signal(signal.SIGTERM)
        assert edge.gw.proc.wait(timeout=25) == 0
        # well before the 30 s drain timeout (wide margin: the machine may be loaded)
        assert time.monotonic() - t0 < 15
        c.wait(lambda: c.closed, timeout=5)
        assert c.closed, "the connection was left open by a process that exited?"
        assert all(code == NO_ERROR for code, _, _ in c.goaways), c.goaways


@pytest.mark.parametrize("how", ["SIGHUP", "admin API"])
def test_reload_sends_goaway_lets_the_stream_finish_and_new_connections_see_the_new_config(
        make_edge, how):
    edge = make_edge()
    with edge.h2() as c:
        assert c.get("/version").body == b"v1"
    with edge.raw(timeout=30) as raw:
        raw.handshake()
        raw.headers(1, edge.fields("/slow/2000"))
        time.sleep(0.3)
        edge.rewrite(edge.config(version="v2"))
        if how == "SIGHUP":
            edge.gw.proc.send_signal(signal.SIGHUP)
        else:
            r = api(edge.admin, "POST", "/v1/reload")
            assert r.status_code == 200, r.text
        assert raw.until(lambda r: r.stream(1).finished and r.goaways, timeout=20), raw.frames
        assert all(g.error_code == NO_ERROR for g in raw.goaways), raw.goaways
        assert (raw.stream(1).status, raw.stream(1).body) == (200, b"slow"), raw.stream(1)

    def new_config():
        with edge.h2() as c:
            return c.get("/version").body == b"v2"
    assert wait_until(new_config, timeout=10), "a new connection does not see the new config"
    assert edge.gw.alive()


def test_a_stored_page_stalled_by_flow_control_survives_a_reload_that_replaces_it(make_edge):
    """A stored file is sent from the snapshot it lives in, without a copy per stream: a stream
    the client's window holds up halfway keeps that snapshot, so a reload that replaces the
    file (and frees the old store) must not change or cut the bytes still to come."""
    edge = make_edge()
    old = b"".join(b"old-%06d\n" % i for i in range(30_000))  # 330 KB, over any first window
    # As long as the old file, so that the allocator may hand its freed memory to them.
    new = [b"".join(b"%s-%06d\n" % (tag, i) for i in range(30_000)) for tag in (b"NEW", b"NXT")]
    (edge.pages / "static" / "big.txt").write_bytes(old)
    edge.gw.proc.send_signal(signal.SIGHUP)

    def serves(body):
        with edge.h2() as c:
            r = c.get("/static/big.txt")
            return r.status == 200 and r.body == body
    assert wait_until(lambda: serves(old), timeout=10), "the new file is not served"

    with edge.raw(timeout=30) as raw:
        raw.give_credit = False
        raw.handshake()
        raw.headers(1, edge.fields("/static/big.txt"))
        raw.headers(3, edge.fields("/static/big.txt"))
        # Both streams share the client's 65535-byte connection window, then stop.
        assert raw.until(lambda r: len(r.stream(1).data) + len(r.stream(3).data) >= 65535,
                         timeout=10), raw.frames[-5:]
        raw.until(lambda r: False, timeout=0.3)
        assert len(raw.stream(1).data) + len(raw.stream(3).data) == 65535
        assert not raw.stream(1).finished and not raw.stream(3).finished

        for body in new:  # were the old file freed, the second could take its memory
            (edge.pages / "static" / "big.txt").write_bytes(body)
            edge.gw.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda: serves(body), timeout=10), "the reload did not take"
        assert raw.until(lambda r: r.goaways, timeout=10), "no GOAWAY after the reload"

        # One stream is given up by the client, the other is let go on.
        raw.send_frame(h2lib.RST_STREAM, 0, 3, struct.pack("!I", CANCEL))
        raw.send_frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 1 << 30))
        raw.send_frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 1 << 30))
        assert raw.until(lambda r: r.stream(1).finished, timeout=20), raw.stream(1)
        assert raw.stream(1).status == 200 and raw.stream(1).reset is None, raw.stream(1)
        assert raw.stream(1).body == old, (len(raw.stream(1).body), raw.stream(1).body[-40:])
    assert edge.serves() and edge.gw.alive()


# --- h2c, and switching h2 off ----------------------------------------------------------------

def test_h2c_with_prior_knowledge_when_cleartext_is_on(edge):
    r = edge.curl("h2c", "www.example.com", "/hello")
    assert (r.ok, r.version, r.status, r.body) == (True, "2", 200, b"hello from app"), r
    r = edge.curl("h1c", "www.example.com", "/hello")  # HTTP/1.1 on the same listener
    assert (r.ok, r.version, r.status, r.body) == (True, "1.1", 200, b"hello from app"), r
    # An HTTP/1.1 Upgrade: h2c request gets an answer (over HTTP/1.1 or HTTP/2), not a hang.
    out = subprocess.run(["curl", "-sS", "--http2", "--max-time", "10", "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code}", f"http://127.0.0.1:{edge.port}/up"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout in ("1.1 200", "2 200"), out
    with edge.h2c() as c:
        sids = [c.request(f"/h2c/{i}") for i in range(10)]
        for sid in sids:
            assert c.response(sid).status == 200


def test_h2c_prior_knowledge_is_refused_when_cleartext_is_off(make_edge):
    edge = make_edge(http2="")  # defaults: h2 over TLS, no h2c
    with socket.create_connection(("127.0.0.1", edge.port), timeout=15) as s:
        s.sendall(PREFACE + h2lib.settings_frame())
        data, t0 = b"", time.monotonic()
        try:
            while time.monotonic() - t0 < 12:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("an h2c preface on a plain listener without cleartext hung")
    # The HTTP/1.1 parser sees "PRI * HTTP/2.0": a 400 or a 505 (HTTP Version Not Supported)
    # answer, or a close, are all fine; a hang is not (above).
    assert data == b"" or data.startswith((b"HTTP/1.1 4", b"HTTP/1.1 505")), data[:200]
    r = edge.curl("h2c", "www.example.com", "/hello", timeout=10)
    assert r.returncode != 28, "curl timed out"  # 28: operation timed out
    assert not (r.ok and r.version == "2"), r
    assert edge.curl("h1c", "www.example.com", "/hello").status == 200
    # and h2 over TLS is on by default
    assert edge.curl("h2", "www.example.com", "/hello").version == "2"


def s_client_alpn(edge, protocols):
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{edge.https_port}",
                          "-servername", "www.example.com", "-CAfile", str(edge.ca.pem),
                          "-alpn", protocols], input="", capture_output=True, text=True,
                         errors="replace", timeout=20)
    return out.stdout


def test_alpn_offers_h2_then_http11_by_default(edge):
    assert "ALPN protocol: h2" in s_client_alpn(edge, "h2,http/1.1")
    assert "ALPN protocol: h2" in s_client_alpn(edge, "http/1.1,h2")  # the server's preference
    assert "ALPN protocol: http/1.1" in s_client_alpn(edge, "http/1.1")
    r = edge.curl("h2", "www.example.com", "/hello")
    assert (r.version, r.status) == ("2", 200), r


def test_http2_disabled_negotiates_http11_only(make_edge):
    edge = make_edge(http2="{enabled: false}")
    out = s_client_alpn(edge, "h2,http/1.1")
    assert "ALPN protocol: h2" not in out
    assert "ALPN protocol: http/1.1" in out or "No ALPN negotiated" in out, out[-1500:]
    r = edge.curl("h2", "www.example.com", "/hello")  # curl falls back to HTTP/1.1
    assert (r.ok, r.version, r.status, r.body) == (True, "1.1", 200, b"hello from app"), r
    # A client offering only h2 does not get it.
    try:
        sock = h2lib.connect(edge.https_port, edge.tls(("h2",)), "www.example.com")
        assert sock.selected_alpn_protocol() != "h2"
        sock.close()
    except OSError:
        pass  # refusing the handshake (no_application_protocol) is fine too


# --- config errors ----------------------------------------------------------------------------

def http2_config(port, lines):
    body = "".join(f"    {line}\n" for line in lines)
    return f"""server:
  workers: 1
  listen: ["127.0.0.1:{port}"]
  http2:
{body}sites:
  - name: www
    default: true
    default_action: {{fixed: {{body: x}}}}
"""


def test_a_valid_http2_section_with_every_key_is_accepted(tmp_path):
    text = http2_config(free_port(), ["enabled: true", "cleartext: true",
                                      "max_concurrent_streams: 100000",
                                      "initial_window_size: 2147483647",
                                      "max_frame_size: 16777215", "max_header_list_size: 0"])
    code, stderr, errors = check_config(tmp_path, text)
    assert code == 0 and not errors, stderr
    text = http2_config(free_port(), ["max_concurrent_streams: 1", "initial_window_size: 1",
                                      "max_frame_size: 16KiB", "max_header_list_size: 64KiB"])
    code, stderr, errors = check_config(tmp_path, text)
    assert code == 0 and not errors, stderr


BAD_HTTP2 = [
    # (id, the bad line, its key, its value, a word the message must contain)
    ("max_frame_size below 16KiB", "max_frame_size: 1000", "max_frame_size", "1000", "1000"),
    ("max_frame_size of 16MiB", "max_frame_size: 16MiB", "max_frame_size", "16MiB", "max_frame_size"),
    ("max_concurrent_streams of 0", "max_concurrent_streams: 0", "max_concurrent_streams", "0",
     "max_concurrent_streams"),
    ("max_concurrent_streams over 100000", "max_concurrent_streams: 100001",
     "max_concurrent_streams", "100001", "100001"),
    ("initial_window_size of 0", "initial_window_size: 0", "initial_window_size", "0",
     "initial_window_size"),
    ("initial_window_size of 2GiB", "initial_window_size: 2GiB", "initial_window_size", "2GiB",
     "2GiB"),
    ("initial_window_size not a size", "initial_window_size: lots", "initial_window_size", "lots",
     "lots"),
    ("unknown key", "max_streams: 10", "max_streams", "max_streams", "max_streams"),
    ("enabled not a boolean", "enabled: yes", "enabled", "yes", "yes"),
    ("cleartext not a boolean", "cleartext: 1", "cleartext", "1", "cleartext"),
]


@pytest.mark.parametrize("line,key,value,word", [c[1:] for c in BAD_HTTP2], ids=[c[0] for c in BAD_HTTP2])
def test_bad_http2_values_are_config_errors_with_a_position(tmp_path, line, key, value, word):
    text = http2_config(free_port(), ["enabled: true", line] if not line.startswith("enabled")
                        else [line])
    code, stderr, errors = check_config(tmp_path, text)
    assert code != 0, f"check accepted:\n{text}"
    key_at = text_position(text, key + ":")
    value_at = (key_at[0], key_at[1] + len(key) + 2)
    matching = [e for e in errors if e[0] == key_at[0] and word.lower() in e[2].lower()]
    assert matching, f"no error at line {key_at[0]} naming {word!r}: {stderr}"
    assert (matching[0][0], matching[0][1]) in (key_at, value_at), (matching, key_at, value_at)
    # serve refuses it too
    r = subprocess.run([BINARY, "serve", "--config",
                        str(tmp_path / "check.yaml")], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0


def test_http2_as_a_list_is_a_config_error(tmp_path):
    text = http2_config(free_port(), ["x"]).replace("  http2:\n    x\n", "  http2: [true]\n")
    code, stderr, errors = check_config(tmp_path, text)
    assert code != 0 and any(e[0] == 4 and "http2" in e[2] for e in errors), stderr
