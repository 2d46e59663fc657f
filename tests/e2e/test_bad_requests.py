"""Malformed and ambiguous requests sent raw over sockets: the right 4xx, the connection closed
where framing is in doubt (no request smuggling, RFC 9112 §6.3 and §11.2), nothing of it
reaching the backend, and what does reach the backend cleanly re-framed."""
import json
import time

import pytest

from conftest import free_port, proxy_config
from rawhttp import ClosedError, Conn


@pytest.fixture
def proxy(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address]), port)
    gw.app = app
    return gw


def answer(port, raw, timeout=5.0):
    """Sends raw bytes; returns (status or None, closed after the answer, the Conn's rest)."""
    with Conn(port, timeout) as c:
        c.send(raw)
        try:
            r = c.read_response()
        except ClosedError:
            return None, True, b""
        closed = c.closed_by_peer(3)
        return r.status, closed, bytes(c.buf)


def assert_rejected(proxy, raw, statuses=(400,), must_close=True):
    status, closed, rest = answer(proxy.port, raw)
    assert status in statuses, f"{raw!r}: got {status}, expected one of {statuses}"
    if must_close:
        assert closed, f"{raw!r}: connection left open after {status}"
    assert not rest.startswith(b"HTTP/"), f"{raw!r}: a second response followed: {rest[:100]!r}"
    return status


def backend_requests(proxy):
    return proxy.app.stats()["requests"]


def ok(proxy):
    """The gateway still answers a good request on a new connection."""
    with Conn(proxy.port) as c:
        c.send("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello from app"


# --- request line ---------------------------------------------------------------------------

BAD_REQUEST_LINES = [
    b"GET\r\n\r\n",
    b"GET /\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.x\r\nHost: a\r\n\r\n",
    b"GET / http/1.1\r\nHost: a\r\n\r\n",
    b"GET noslash HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
]


@pytest.mark.parametrize("raw", BAD_REQUEST_LINES, ids=range(len(BAD_REQUEST_LINES)))
def test_malformed_request_line_is_400(proxy, raw):
    assert_rejected(proxy, raw)
    assert backend_requests(proxy) == 0
    ok(proxy)


def test_unsupported_http_version(proxy):
    assert_rejected(proxy, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", (400, 505))
    assert_rejected(proxy, b"GET / HTTP/3.1\r\nHost: a\r\n\r\n", (400, 505))
    assert backend_requests(proxy) == 0


# --- header fields --------------------------------------------------------------------------

BAD_HEADERS = {
    "no colon": b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n",
    "space in name": b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo : x\r\n\r\n",
    "tab before colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo\t: x\r\n\r\n",
    "space before colon of Host": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "empty name": b"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n",
    "NUL in value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
    "NUL in name": b"GET / HTTP/1.1\r\nHost: a\r\nX\x00A: b\r\n\r\n",
    "CR in value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n",
    "CR in name": b"GET / HTTP/1.1\r\nHost: a\r\nX\rA: b\r\n\r\n",
    "LF in value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\nb\r\n\r\n",
    "LF in name": b"GET / HTTP/1.1\r\nHost: a\r\nX\nA: b\r\n\r\n",
    "non-token in name": b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
    "missing Host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two Hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad Host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "Host with two colons": b"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n",
    "Host with userinfo": b"GET / HTTP/1.1\r\nHost: evil.example@a\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_malformed_header_is_400(proxy, raw):
    assert_rejected(proxy, raw)
    assert backend_requests(proxy) == 0
    ok(proxy)


def test_oversized_headers_are_431(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address],
                                      limits="max_header_bytes: 1KiB, max_headers: 10"), port)
    gw.app = app
    # Just under the limits: fine.
    with Conn(port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: a\r\nX-Big: {'v' * 700}\r\n\r\n")
        assert c.read_response().status == 200
    # One big header over the byte limit.
    assert_rejected(gw, f"GET / HTTP/1.1\r\nHost: a\r\nX-Big: {'v' * 2000}\r\n\r\n".encode(),
                    (431,))
    # Many small headers over the byte limit.
    many = "".join(f"X-H{i}: {'v' * 50}\r\n" for i in range(40))
    assert_rejected(gw, f"GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n".encode(), (431,))
    # More fields than max_headers.
    fields = "".join(f"X-{i}: v\r\n" for i in range(20))
    assert_rejected(gw, f"GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n".encode(), (431,))
    # An overlong request line.
    assert_rejected(gw, f"GET /{'a' * 3000} HTTP/1.1\r\nHost: a\r\n\r\n".encode(), (414, 431))
    # An endless head that never ends: cut at the limit, not buffered forever.
    with Conn(port) as c:
        c.send("GET / HTTP/1.1\r\nHost: a\r\n")
        try:
            for _ in range(100):
                c.send("X-Filler: " + "f" * 500 + "\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 431
    assert app.stats()["requests"] == 1


# --- body framing and smuggling -------------------------------------------------------------

FRAMING = {
    "CL and TE": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "TE and CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 4\r\n\r\n5c\r\nGPOST /smuggled HTTP/1.1\r\nHost: a\r\n"
                 b"Content-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
    "duplicate differing CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                              b"Content-Length: 6\r\n\r\nhello!",
    "CL list differing": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "negative CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "plus-signed CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
    "hex CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello",
    "CL with junk": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello",
    "empty CL": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    "overflowing CL": b"POST /echo HTTP/1.1\r\nHost: a\r\n"
                      b"Content-Length: 99999999999999999999999999\r\n\r\nhello",
}


@pytest.mark.parametrize("raw", list(FRAMING.values()), ids=list(FRAMING))
def test_ambiguous_framing_is_400_and_closed(proxy, raw):
    assert_rejected(proxy, raw)
    assert backend_requests(proxy) == 0
    ok(proxy)


OBFUSCATED_TE = {
    "xchunked": b"Transfer-Encoding: xchunked\r\n",
    "chunked, identity": b"Transfer-Encoding: chunked, identity\r\n",
    "identity": b"Transfer-Encoding: identity\r\n",
    "two TE fields": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    "folded": b"Transfer-Encoding:\r\n chunked\r\n",
    "folded after value": b"Transfer-Encoding: identity\r\n chunked\r\n",
    "quoted": b'Transfer-Encoding: "chunked"\r\n',
    "vertical tab": b"Transfer-Encoding: \x0bchunked\r\n",
    "space before colon": b"Transfer-Encoding : chunked\r\n",
    "chunked twice": b"Transfer-Encoding: chunked, chunked\r\n",
    "unknown coding": b"Transfer-Encoding: foo\r\n",
}


@pytest.mark.parametrize("te", list(OBFUSCATED_TE.values()), ids=list(OBFUSCATED_TE))
def test_obfuscated_transfer_encoding_is_rejected_and_closed(proxy, te):
    raw = (b"POST /echo HTTP/1.1\r\nHost: a\r\n" + te + b"\r\n"
           b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_rejected(proxy, raw, (400, 501))
    assert backend_requests(proxy) == 0
    ok(proxy)


def test_transfer_encoding_in_http10_does_not_smuggle(proxy):
    raw = (b"POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    status, closed, rest = answer(proxy.port, raw)
    assert status in (200, 400, 501)
    assert closed
    assert not proxy.app.requests_for("/smuggled")


BAD_CHUNKS = {
    "not hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "negative": b"-5\r\nhello\r\n0\r\n\r\n",
    "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "overflow": b"fffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "leading space": b" 5\r\nhello\r\n0\r\n\r\n",
    "empty size": b"\r\nhello\r\n0\r\n\r\n",
    "data longer than size": b"3\r\nhello\r\n0\r\n\r\n",
    "no CRLF after data": b"5\r\nhelloXX0\r\n\r\n",
    "NUL in size": b"5\x00\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("body", list(BAD_CHUNKS.values()), ids=list(BAD_CHUNKS))
def test_invalid_chunk_is_400(proxy, body):
    raw = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    assert_rejected(proxy, raw)
    ok(proxy)


def test_body_over_max_body_bytes_is_413(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], limits="max_body_bytes: 1KiB"), port)
    gw.app = app
    with Conn(port) as c:
        c.send(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n" + b"b" * 1024)
        assert c.read_response().body == b"1024"
    assert_rejected(gw, b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"
                    + b"b" * 5000, (413,))
    chunked = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    status, closed, _ = answer(port, b"POST /sink HTTP/1.1\r\nHost: a\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    # The limit is found while streaming: a 413 if no answer started yet, else a cut.
    assert status in (413, None) and closed


# --- what reaches the backend ---------------------------------------------------------------

def test_forwarded_request_is_cleanly_reframed(proxy):
    with Conn(proxy.port) as c:
        c.send(b"POST /echo/a HTTP/1.1\r\nhost: a\r\ncontent-length: 005\r\n"
               b"x-tab:\tvalue with\ttab \t\r\n\r\nhello"
               b"POST /echo/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
               b"POST /echo/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n"
               b"0\r\n\r\n"
               b"GET /echo/d HTTP/1.1\r\nHost: a\r\n\r\n")
        a, b, cc, d = (json.loads(c.read_response().body) for _ in range(4))
    assert (a["target"], a["body_length"]) == ("/echo/a", 5)
    assert (b["target"], b["body_length"]) == ("/echo/b", 5)
    assert (cc["target"], cc["body_length"]) == ("/echo/c", 0)
    assert d["target"] == "/echo/d" and d["body_length"] == 0
    for seen in (a, b, cc, d):
        names = [n.lower() for n, _ in seen["headers"]]
        assert not ("content-length" in names and "transfer-encoding" in names), seen["headers"]
        for n, v in seen["headers"]:
            assert "\r" not in v and "\n" not in v and "\x00" not in v
            if n.lower() == "content-length":
                assert int(v) == seen["body_length"]
            if n.lower() == "transfer-encoding":
                assert v.lower() == "chunked"
    tab = [v for n, v in a["headers"] if n.lower() == "x-tab"]
    assert tab == ["value with\ttab"], tab
    # The backend saw exactly these four requests, nothing smuggled between them.
    assert [e["target"] for e in proxy.app.stats()["log"]] == ["/echo/a", "/echo/b", "/echo/c",
                                                              "/echo/d"]


def test_empty_host_is_never_forwarded_as_two_hosts(proxy):
    # An empty Host is allowed (RFC 9112 §3.2); whatever the gateway makes of it, the
    # upstream must get one Host field, never two.
    with Conn(proxy.port) as c:
        c.send(b"GET /echo/empty-host HTTP/1.1\r\nHost: \r\n\r\n")
        r = c.read_response()
    if r.status == 400:
        assert backend_requests(proxy) == 0
        return
    assert r.status == 200, r
    seen = json.loads(r.body)
    hosts = [v for n, v in seen["headers"] if n.lower() == "host"]
    assert len(hosts) == 1, f"forwarded with Host fields {hosts}"


def test_get_with_body_is_forwarded_with_its_body(proxy):
    with Conn(proxy.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /echo/2 HTTP/1.1\r\nHost: a\r\n\r\n")
        first = json.loads(c.read_response().body)
        second = json.loads(c.read_response().body)
    assert first["body_length"] == 3
    assert second["target"] == "/echo/2"


def test_garbage_flood_does_not_crash(proxy):
    import os
    for _ in range(20):
        with Conn(proxy.port, timeout=3) as c:
            try:
                c.send(os.urandom(4096))
                c.read_to_close(limit=1 << 16)
            except OSError:
                pass
    time.sleep(0.1)
    assert proxy.alive()
    ok(proxy)
