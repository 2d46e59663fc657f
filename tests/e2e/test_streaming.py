"""Bodies stream through the proxy in both directions without being buffered whole: 1 GiB each
way with the gateway's peak RSS under 64 MiB; chunked and close-delimited responses; chunked
request bodies re-framed for the upstream."""
import json
import time

import pytest
import requests

from conftest import assert_peak_rss_below, free_port, proxy_config
from rawhttp import Conn

GiB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024
BLOCK = 1 << 20


@pytest.fixture
def proxy(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    return gateway_factory(proxy_config(port, [app.address]), port)


def download(c, n, pause_after_head=0.0):
    """Reads a Content-Length response of n 'x' bytes; returns (bytes read, all were 'x')."""
    head = c.read_head()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert f"content-length: {n}".encode() in head.lower(), head
    if pause_after_head:
        time.sleep(pause_after_head)
    total = len(c.buf)
    ok = bytes(c.buf) == b"x" * len(c.buf)
    c.buf.clear()
    expected = b"x" * BLOCK
    view = bytearray(BLOCK)
    while total < n:
        k = c.sock.recv_into(view, min(BLOCK, n - total))
        if k == 0:
            break
        if view[:k] != expected[:k]:
            ok = False
        total += k
    return total, ok


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): 1 GiB download with a hand-paced reader (covered over HTTP/2 in test_http2)")
def test_1gib_download_streams_with_bounded_memory(proxy):
    with Conn(proxy.port, timeout=30) as c:
        c.send(f"GET /bytes/{GiB} HTTP/1.1\r\nHost: a\r\n\r\n")
        total, ok = download(c, GiB)
        assert total == GiB
        assert ok, "body bytes were altered"
        # The connection is still usable afterwards.
        c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"hello from app"
    assert_peak_rss_below(proxy, RSS_LIMIT_KIB)


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): a client that stops reading its socket")
def test_download_to_a_paused_client_is_not_buffered(proxy):
    # The client stops reading for a while: the gateway must push back on the upstream, not
    # keep reading it into memory.
    n = 512 << 20
    with Conn(proxy.port, timeout=30) as c:
        c.send(f"GET /bytes/{n} HTTP/1.1\r\nHost: a\r\n\r\n")
        total, ok = download(c, n, pause_after_head=3.0)
        assert total == n and ok
    assert_peak_rss_below(proxy, RSS_LIMIT_KIB)


def upload(c, n, chunked=False):
    block = b"u" * BLOCK
    if chunked:
        c.send("POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    else:
        c.send(f"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n")
    sent = 0
    while sent < n:
        k = min(BLOCK, n - sent)
        if chunked:
            c.sock.sendall(b"%x\r\n" % k + block[:k] + b"\r\n")
        else:
            c.sock.sendall(block[:k])
        sent += k
    if chunked:
        c.sock.sendall(b"0\r\n\r\n")
    return c.read_response()


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): 1 GiB upload with memory bounds")
def test_1gib_upload_streams_with_bounded_memory(proxy):
    with Conn(proxy.port, timeout=30) as c:
        r = upload(c, GiB)
        assert r.status == 200
        assert r.body == str(GiB).encode()
    assert_peak_rss_below(proxy, RSS_LIMIT_KIB)


@pytest.mark.http1_only("chunked request framing with memory bounds")
def test_chunked_upload_streams_with_bounded_memory(proxy):
    n = 256 << 20
    with Conn(proxy.port, timeout=30) as c:
        r = upload(c, n, chunked=True)
        assert r.status == 200
        assert r.body == str(n).encode()
    assert_peak_rss_below(proxy, RSS_LIMIT_KIB)


def test_chunked_response_passes_through(proxy, protocol):
    n = 1_000_003
    if protocol == "http1":  # the chunked framing on the client's wire, then the next request
        with Conn(proxy.port) as c:
            c.send(f"GET /chunked/{n} HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()  # checks the chunked framing strictly
            assert r.status == 200
            assert r.body == b"y" * n
            assert r.header("content-length") is None or r.header("transfer-encoding") is None
            c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            assert c.read_response().body == b"hello from app"
    else:
        r = requests.get(proxy.url + f"/chunked/{n}", timeout=10)
        assert r.status_code == 200 and r.content == b"y" * n
        assert "Transfer-Encoding" not in r.headers
    r = requests.get(proxy.url + "/chunked/10", timeout=5)
    assert r.content == b"y" * 10


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): a close-delimited body on the HTTP/1.1 wire")
def test_close_delimited_response_is_delivered_whole(proxy):
    n = 3_000_001
    with Conn(proxy.port) as c:
        c.send(f"GET /eof/{n} HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert len(r.body) == n and r.body == b"x" * n
        if r.header("content-length") is None and r.header("transfer-encoding") is None:
            assert c.closed_by_peer(2)  # delimited by close for the client too
        else:
            c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")  # re-framed: connection reusable
            assert c.read_response().body == b"hello from app"


def test_close_delimited_response_does_not_break_the_next_request(proxy):
    for _ in range(3):
        r = requests.get(proxy.url + "/eof/1000", timeout=5)
        assert r.content == b"x" * 1000
    assert requests.get(proxy.url + "/x", timeout=5).text == "hello from app"


@pytest.mark.http1_only("chunked request framing as sent on the wire")
def test_chunked_request_body_is_reframed(proxy):
    body_chunks = [b"hello", b" ", b"chunked" * 100, b"!"]
    total = sum(len(x) for x in body_chunks)
    raw = (b"POST /echo/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Type: text/plain\r\n\r\n")
    for i, chunk in enumerate(body_chunks):
        ext = b";name=value" if i == 1 else b""
        raw += b"%X" % len(chunk) + ext + b"\r\n" + chunk + b"\r\n"
    raw += b"0\r\nX-Trailer: t\r\n\r\n"
    with Conn(proxy.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 200
        seen = json.loads(r.body)
        assert seen["body_length"] == total
        names = [n.lower() for n, _ in seen["headers"]]
        te = [v.lower() for n, v in seen["headers"] if n.lower() == "transfer-encoding"]
        cl = [v for n, v in seen["headers"] if n.lower() == "content-length"]
        # Exactly one framing upstream: chunked, or a Content-Length equal to the body.
        assert (te == ["chunked"] and not cl) or (cl == [str(total)] and not te), seen["headers"]
        assert names.count("content-type") == 1
        # The connection stays in sync after the trailer.
        c.send("GET /echo/next HTTP/1.1\r\nHost: a\r\n\r\n")
        assert json.loads(c.read_response().body)["target"] == "/echo/next"


@pytest.mark.http1_only("pipelining after a Content-Length body")
def test_content_length_request_body_is_forwarded_exactly(proxy):
    with Conn(proxy.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
               b"GET /echo/after HTTP/1.1\r\nHost: a\r\n\r\n")
        seen = json.loads(c.read_response().body)
        assert seen["body_length"] == 10
        assert [v for n, v in seen["headers"] if n.lower() == "content-length"] == ["10"]
        assert json.loads(c.read_response().body)["target"] == "/echo/after"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): upload with memory bounds, the client socket pushed back")
def test_upload_to_a_paused_backend_is_not_buffered(proxy):
    # The backend reads nothing for 3 s: the gateway must stop reading the client, not pile
    # the body up in memory.
    n = 512 << 20
    block = b"u" * BLOCK
    with Conn(proxy.port, timeout=30) as c:
        c.send(f"POST /sink-after/3000 HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n")
        for _ in range(n // BLOCK):
            c.sock.sendall(block)
        r = c.read_response()
        assert r.status == 200 and r.body == str(n).encode()
    assert_peak_rss_below(proxy, RSS_LIMIT_KIB)


def test_download_with_curl(proxy, tmp_path):
    import subprocess
    out = tmp_path / "down.bin"
    n = 50 << 20
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", str(out), "-w", "%{http_code}",
                        proxy.url + f"/bytes/{n}"], capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "200"
    assert out.stat().st_size == n
