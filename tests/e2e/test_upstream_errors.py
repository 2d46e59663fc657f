"""An upstream that refuses, sends garbage, closes mid-response or stalls: the client gets a
clean 502/504 (or, once the response has started, a cut connection), within the configured
timeouts, and the gateway keeps serving everybody else."""
import socket
import threading
import time

import pytest
import requests

from conftest import free_port, server_yaml, wait_until
from h2lib import one_by_one
from rawhttp import ClosedError, Conn


def config(port, bad, good, workers=2, timeouts="", retries=""):
    return server_yaml(port, workers) + f"""
target_groups:
  bad:
    targets: ["{bad}"]
    {retries}
    timeouts: {{{timeouts}}}
  good:
    targets: ["{good}"]
sites:
  - name: www
    default: true
    rules:
      - match: {{path: ["/bad/*", "/raw/*", "/garbage", "/close-*", "/slow/*", "/stall-body/*"]}}
        forward: bad
    default_action: {{forward: good}}
"""


@pytest.fixture
def blackhole():
    """A 127.0.0.1 port whose listen queue is full: new connection attempts get no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(64):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
        time.sleep(0.01)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.fail("could not make a blackhole: a connect attempt still succeeded")
    except socket.timeout:
        pass
    finally:
        probe.close()
    yield port
    for s in fillers:
        s.close()
    listener.close()


def good_still_answers(gw):
    r = requests.get(gw.url + "/x", timeout=5)
    assert r.status_code == 200 and r.text == "hello from good"


@pytest.fixture
def setup(backend_factory, gateway_factory):
    def make(timeouts="", workers=2, bad_address=None):
        bad = backend_factory("bad") if bad_address is None else None
        good = backend_factory("good")
        port = free_port()
        gw = gateway_factory(config(port, bad_address or bad.address, good.address, workers,
                                    timeouts), port)
        return gw
    return make


def test_connect_refused_is_502(setup):
    gw = setup(bad_address=f"127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    r = requests.get(gw.url + "/bad/x", timeout=10)
    assert r.status_code == 502
    assert time.monotonic() - t0 < 2
    good_still_answers(gw)


def test_connect_timeout_is_504(setup, blackhole):
    gw = setup(timeouts="connect: 300ms", bad_address=f"127.0.0.1:{blackhole}")
    t0 = time.monotonic()
    r = requests.get(gw.url + "/bad/x", timeout=10)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert 0.25 <= elapsed < 2.0, elapsed
    good_still_answers(gw)


def test_garbage_from_upstream_is_502(setup):
    gw = setup()
    r = requests.get(gw.url + "/garbage", timeout=10)
    assert r.status_code == 502
    assert "this is not http" not in r.text
    good_still_answers(gw)


def test_upstream_closing_without_answer_is_502(setup):
    gw = setup()
    r = requests.get(gw.url + "/close-early", timeout=10)
    assert r.status_code == 502
    good_still_answers(gw)


def test_upstream_closing_mid_response_cuts_the_client_connection(setup, protocol):
    gw = setup()
    if protocol != "http1":
        # HTTP/2: the connection stays; the cut must reach the client as an error on the
        # stream (RST_STREAM, or an end short of Content-Length), never as a whole answer.
        t0 = time.monotonic()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(gw.url + "/close-mid", timeout=5)
        assert time.monotonic() - t0 < 3
        good_still_answers(gw)
        return
    with Conn(gw.port, timeout=5) as c:
        c.send("GET /close-mid HTTP/1.1\r\nHost: a\r\n\r\n")
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"content-length: 1000" in head.lower()
        t0 = time.monotonic()
        assert c.closed_by_peer(3), "client connection left open after the upstream closed"
        assert bytes(c.buf) == b"0123456789"
        assert time.monotonic() - t0 < 3
    # requests (urllib3 1.26) does not enforce Content-Length: the body is simply short.
    try:
        assert len(requests.get(gw.url + "/close-mid", timeout=5).content) < 1000
    except requests.exceptions.ChunkedEncodingError:
        pass
    good_still_answers(gw)


def test_response_header_timeout_is_504(setup):
    gw = setup(timeouts="response_header: 500ms")
    t0 = time.monotonic()
    r = requests.get(gw.url + "/slow/5000", timeout=10)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert 0.4 <= elapsed < 2.0, elapsed
    good_still_answers(gw)


def test_response_within_header_timeout_is_fine(setup):
    gw = setup(timeouts="response_header: 2s")
    r = requests.get(gw.url + "/slow/300", timeout=10)
    assert r.status_code == 200 and r.text == "slow"


@pytest.mark.http1_only("the client connection closed after a cut body")
def test_upstream_stalling_mid_body_is_cut_by_idle_timeout(setup):
    gw = setup(timeouts="idle: 500ms")
    with Conn(gw.port, timeout=10) as c:
        c.send("GET /stall-body/2000 HTTP/1.1\r\nHost: a\r\n\r\n")
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 200"), head
        t0 = time.monotonic()
        assert c.closed_by_peer(4), "stalled upstream body not cut by the idle timeout"
        assert time.monotonic() - t0 < 3
        assert len(c.buf) == 1000
    good_still_answers(gw)


def test_stalled_upstream_does_not_block_the_worker(setup):
    gw = setup(timeouts="response_header: 10s", workers=1)
    results = {}

    def stalled():
        try:
            results["slow"] = requests.get(gw.url + "/slow/3000", timeout=10).status_code
        except requests.RequestException as e:
            results["slow"] = repr(e)

    t = threading.Thread(target=stalled)
    t.start()
    time.sleep(0.3)
    for _ in range(10):
        t0 = time.monotonic()
        good_still_answers(gw)
        # A blocked worker would hold this request until the 3 s stall ends.
        assert time.monotonic() - t0 < 2
    t.join()
    assert results["slow"] == 200


def test_misbehaving_upstreams_in_a_row_never_crash_the_gateway(setup, protocol):
    gw = setup(timeouts="response_header: 300ms, idle: 300ms")
    for path in ("/garbage", "/close-early", "/slow/2000", "/garbage", "/close-early"):
        try:
            r = requests.get(gw.url + path, timeout=10)
            assert r.status_code in (502, 503, 504), (path, r.status_code)
        except requests.exceptions.ConnectionError:
            pytest.fail(f"{path}: connection error instead of an answer")
        good_still_answers(gw)
    if protocol != "http1":
        assert gw.alive()
        return  # pipelining is HTTP/1.1's
    # A pipelined mix on one connection: each gets its own answer, in order.
    with Conn(gw.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /garbage HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"hello from good"
        assert c.read_response().status in (502, 503)
        assert c.read_response().body == b"hello from good"
    assert gw.alive()


# --- malformed upstream responses: never passed on as they are ------------------------------

@pytest.mark.http1_only("chunked framing as seen on the wire")
def test_upstream_response_with_both_framings_is_reframed(setup):
    gw = setup()
    with Conn(gw.port, timeout=5) as c:
        c.send("GET /raw/cl-and-te HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        if r.status == 200:
            assert r.body == b"hello"
            assert not (r.header("content-length") and r.header("transfer-encoding")), r.headers
            if r.header("content-length"):
                assert r.header("content-length") == "5"
        else:
            assert r.status == 502
    good_still_answers(gw)


def test_upstream_duplicate_content_length_is_502(setup):
    gw = setup()
    assert requests.get(gw.url + "/raw/dup-cl", timeout=5).status_code == 502
    good_still_answers(gw)


def test_upstream_bad_status_line_or_header_is_502(setup):
    gw = setup()
    for name in ("bad-status", "bad-header", "nul-header"):
        r = requests.get(gw.url + f"/raw/{name}", timeout=5)
        assert r.status_code == 502, (name, r.status_code, r.headers)
    good_still_answers(gw)


@pytest.mark.http1_only("chunked framing as seen on the wire")
def test_upstream_invalid_chunk_cuts_the_response(setup):
    gw = setup()
    with Conn(gw.port, timeout=5) as c:
        c.send("GET /raw/bad-chunk HTTP/1.1\r\nHost: a\r\n\r\n")
        try:
            head = c.read_head()
        except ClosedError:
            pytest.fail("connection closed with no response at all (expected a 502, or the "
                        "response head followed by a cut)")
        if head.startswith(b"HTTP/1.1 502"):
            return
        assert head.startswith(b"HTTP/1.1 200"), head
        # Already started: the client connection must end without a valid last chunk.
        assert c.closed_by_peer(3), "connection left open after an invalid upstream chunk"
        assert b"0\r\n\r\n" not in bytes(c.buf)
    good_still_answers(gw)


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): 1xx heads on the HTTP/1.1 wire")
def test_upstream_interim_response_then_final(setup):
    gw = setup()
    with Conn(gw.port, timeout=5) as c:
        c.send("GET /raw/early-hints HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()  # skips any relayed 1xx
        assert r.status == 200 and r.body == b"final"


@pytest.mark.h2c_only("the HTTP/2 form of test_upstream_interim_response_then_final")
def test_upstream_interim_response_then_final_over_h2(setup):
    gw = setup()
    [r] = one_by_one(gw.port, ("GET", "/raw/early-hints"))
    assert r.status == 200 and r.body == b"final", r
    # A relayed 103 is an interim head of its own, not merged into the final one.
    assert r.header("link") is None, r
    assert all(dict(head)[":status"].startswith("1") for head in r.informational), r.informational


def test_upstream_http10_close_delimited_response(setup):
    gw = setup()
    r = requests.get(gw.url + "/raw/http10", timeout=5)
    assert r.status_code == 200 and r.text == "old style body"
    good_still_answers(gw)


@pytest.mark.http1_only("chunked framing as seen on the wire")
def test_truncated_chunked_upstream_body_is_not_completed_for_the_client(setup):
    gw = setup()
    with Conn(gw.port, timeout=5) as c:
        c.send("GET /raw/chunked-cut HTTP/1.1\r\nHost: a\r\n\r\n")
        try:
            head = c.read_head()
        except ClosedError:
            pytest.fail("connection closed with no response at all")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert c.closed_by_peer(3), "connection left open after the upstream closed"
        body = bytes(c.buf)
        # The client must be able to tell the body is incomplete: no final chunk, or a
        # Content-Length it did not get.
        import re
        cl = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if b"transfer-encoding: chunked" in head.lower():
            assert not body.endswith(b"0\r\n\r\n"), body
        elif cl:
            assert len(body) < int(cl.group(1)), (head, body)
        else:
            pytest.fail(f"re-framed as close-delimited: the truncation cannot be seen: {head!r}")
    good_still_answers(gw)


@pytest.mark.http1_only("the client connection closed after a cut body")
@pytest.mark.parametrize("name", ["head-only", "chunked-head-only"])
def test_upstream_closing_right_after_the_head(setup, name):
    gw = setup()
    with Conn(gw.port, timeout=5) as c:
        c.send(f"GET /raw/{name} HTTP/1.1\r\nHost: a\r\n\r\n")
        try:
            head = c.read_head()
        except ClosedError:
            pytest.fail("connection closed with no response at all (expected a 502, or the "
                        "response head followed by a cut)")
        if not head.startswith(b"HTTP/1.1 502"):
            assert head.startswith(b"HTTP/1.1 200"), head
            assert c.closed_by_peer(3)
            assert not bytes(c.buf).endswith(b"0\r\n\r\n")
    good_still_answers(gw)


@pytest.mark.parametrize("path,status", [("/garbage", 502), ("/slow/3000", 504),
                                         ("/close-early", 502)])
def test_upstream_failure_is_in_the_error_log_with_context(backend_factory, gateway_factory,
                                                           path, status):
    bad, good = backend_factory("bad"), backend_factory("good")
    port = free_port()
    # access_log off: whatever names the target in the output is the error log.
    gw = gateway_factory(config(port, bad.address, good.address,
                                timeouts="response_header: 500ms"), port)
    assert requests.get(gw.url + path, timeout=10).status_code == status
    line = wait_until(lambda: next((l for l in gw.log_text().splitlines()
                                    if bad.address in l), None), timeout=2)
    assert line, f"no error log line naming {bad.address} after {status} on {path}:\n" \
                 f"{gw.log_text()}"
