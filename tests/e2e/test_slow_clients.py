"""Slow clients are cut off by the client timeouts and never starve the others: 1,000
connections that never finish their headers, header and body tricklers, idle connections,
and clients that never read their (large) response."""
import selectors
import socket
import threading
import time

import pytest
import requests

from conftest import free_port, proxy_config, wait_until
from rawhttp import Conn

TIMEOUTS = "header: 1s, body: 1s, send: 1s, keepalive: 2s"


@pytest.fixture
def proxy(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], server_timeouts=TIMEOUTS), port)
    gw.app = app
    return gw


class Latency:
    """A normal client hitting the gateway in the background, recording each latency."""

    def __init__(self, gw, path="/x"):
        self.gw, self.path = gw, path
        self.times, self.errors = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                r = requests.get(self.gw.url + self.path, timeout=5)
                if r.status_code != 200:
                    self.errors.append(r.status_code)
            except requests.RequestException as e:
                self.errors.append(repr(e))
            self.times.append(time.monotonic() - t0)
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def wait_closed(socks, timeout):
    """Waits until every socket is closed by the peer; returns {sock: (time closed, data)}."""
    sel = selectors.DefaultSelector()
    data = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        data[s] = b""
    closed = {}
    deadline = time.monotonic() + timeout
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BlockingIOError) as e:
                if isinstance(e, BlockingIOError):
                    continue
                chunk = b""
            if chunk:
                data[s] += chunk
            else:
                closed[s] = (time.monotonic(), data[s])
                sel.unregister(s)
    sel.close()
    return closed


def test_1000_connections_that_never_finish_their_headers(proxy):
    socks = []
    try:
        with Latency(proxy) as normal:
            t0 = time.monotonic()
            for i in range(1000):
                s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                s.sendall(f"GET /never/{i} HTTP/1.1\r\nHost: a\r\nX-Partial: ".encode())
                socks.append(s)
            opened = time.monotonic() - t0
            closed = wait_closed(socks, timeout=1.0 + opened + 4.0)
        assert len(closed) == 1000, f"{1000 - len(closed)} stalled connections still open"
        first = min(t for t, _ in closed.values()) - t0
        last = max(t for t, _ in closed.values()) - t0
        assert first >= 0.8, f"cut after {first:.2f}s, before the 1 s header timeout"
        assert last <= opened + 3.0, f"last one cut after {last:.2f}s"
        answers = {d[:12] for _, d in closed.values()}
        assert answers <= {b"", b"HTTP/1.1 408"}, answers
        # Meanwhile the normal client was served, and fast.
        assert not normal.errors, normal.errors[:5]
        assert len(normal.times) >= 5
        assert max(normal.times) < 0.5, f"normal requests took up to {max(normal.times):.2f}s"
    finally:
        for s in socks:
            s.close()
    assert proxy.app.stats()["requests"] >= len(normal.times)
    assert not proxy.app.requests_for("/never/")


def test_header_trickler_is_cut_at_the_header_timeout(proxy):
    # One byte every 200 ms: each byte arrives well within any per-read timeout, but the head
    # as a whole must be in within `header: 1s`.
    with Conn(proxy.port) as c:
        t0 = time.monotonic()
        cut = None
        for b in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 100:
            try:
                c.sock.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - t0
                break
            c.sock.settimeout(0.2)
            try:
                data = c.sock.recv(4096)
                if not data or data.startswith(b"HTTP/1.1 408"):
                    cut = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                cut = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 6:
                break
        assert cut is not None, "a header trickler was never cut off"
        assert 0.8 <= cut <= 2.5, cut


def test_idle_connections_are_closed_after_keepalive_timeout(proxy):
    socks = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(200)]
    # One connection that did a request first, then went idle.
    used = Conn(proxy.port)
    used.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert used.read_response().status == 200
    t0 = time.monotonic()
    try:
        closed = wait_closed(socks + [used.sock], timeout=6)
        assert len(closed) == 201
        first = min(t for t, _ in closed.values()) - t0
        assert first >= 1.5, f"idle connection closed after {first:.2f}s (keepalive: 2s)"
        assert all(d in (b"",) or d.startswith(b"HTTP/1.1 408") for _, d in closed.values())
    finally:
        for s in socks:
            s.close()
        used.close()


def test_body_trickler_is_cut_off(proxy):
    with Latency(proxy) as normal:
        with Conn(proxy.port, timeout=6) as c:
            c.send("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789")
            t0 = time.monotonic()
            # Then silence, longer than `body: 1s`.
            assert c.closed_by_peer(4), "a stalled request body was never cut off"
            elapsed = time.monotonic() - t0
            assert 0.8 <= elapsed <= 3.0, elapsed
            assert bytes(c.buf) == b"" or bytes(c.buf).startswith(b"HTTP/1.1 408"), bytes(c.buf)[:100]
    assert not normal.errors
    assert max(normal.times) < 0.5


def test_slow_byte_by_byte_body_trickler_is_cut_off(proxy):
    # One byte every 1.5 s: every gap is longer than `body: 1s`.
    with Conn(proxy.port, timeout=6) as c:
        c.send("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        t0 = time.monotonic()
        cut = False
        for i in range(4):
            try:
                c.send(b"b")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if c.closed_by_peer(1.5):
                cut = True
                break
        assert cut, "a body trickler survived"
        assert time.monotonic() - t0 < 4


def test_body_trickler_to_the_page_store_is_cut_off(tmp_path, gateway_factory):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.html").write_text("hi\n")
    port = free_port()
    gw = gateway_factory(f"""
server:
  workers: 2
  listen: ["127.0.0.1:{port}"]
  access_log: "off"
  timeouts: {{{TIMEOUTS}}}
sites:
  - name: www
    default: true
    pages: {{root: "{pages}"}}
""", port)
    with Conn(gw.port, timeout=6) as c:
        c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc")
        t0 = time.monotonic()
        assert c.closed_by_peer(4)
        assert time.monotonic() - t0 <= 3.0


def never_reading_client(port, path):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    return s


def drain(s, timeout=5.0):
    """Reads what is left; returns (bytes, ended by the peer)."""
    s.setblocking(True)
    s.settimeout(timeout)
    total = 0
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return total, True
            total += len(chunk)
    except ConnectionResetError:
        return total, True
    except socket.timeout:
        return total, False


def test_client_that_never_reads_is_cut_by_the_send_timeout(proxy):
    n = 200 << 20
    s = never_reading_client(proxy.port, f"/bytes/{n}")
    try:
        time.sleep(4.0)  # send: 1s; the gateway's writes stall as soon as the buffers fill
        got, ended = drain(s)
        assert ended, "connection still open"
        assert got < n // 2, f"received {got} of {n} bytes: the connection was not cut"
    finally:
        s.close()


def test_many_clients_that_never_read_do_not_starve_others(backend_factory, gateway_factory):
    # The big responses come from their own backend, so that the normal client's latency
    # measures the gateway, not a busy test backend.
    big, app = backend_factory("big"), backend_factory("app")
    port = free_port()
    proxy = gateway_factory(f"""
server:
  workers: 2
  listen: ["127.0.0.1:{port}"]
  access_log: "off"
  timeouts: {{{TIMEOUTS}}}
target_groups:
  big:
    targets: ["{big.address}"]
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    rules:
      - match: {{path: "/bytes/*"}}
        forward: big
    default_action: {{forward: app}}
""", port)
    baseline = proxy.fd_count()
    socks = []
    try:
        with Latency(proxy) as normal:
            for i in range(200):
                socks.append(never_reading_client(proxy.port, f"/bytes/{8 << 20}"))
            # send: 1s. Once the gateway has cut them all, it holds no socket for them (client
            # or upstream). What the kernel still has queued may trickle out after the close,
            # so this is judged on the gateway's descriptors, not on what the clients read.
            # A relay notices its client is gone on its next write, which waits for the next
            # piece from the (single-process, 200-stream) test backend: on a loaded 2-core
            # machine that can take seconds, hence the generous bound.
            cut = wait_until(lambda: proxy.fd_count() <= baseline + 4, timeout=20)
        if not cut:
            socks_now = proxy.sockets()
            clients = sum(1 for l, r, st in socks_now if l == port and st != 10)
            upstreams = sum(1 for l, r, st in socks_now if r == big.port)
            pytest.fail(f"gateway still holds {proxy.fd_count() - baseline} extra descriptors: "
                        f"{clients} client and {upstreams} upstream connections; big backend "
                        f"saw {big.stats()['requests']} requests")
        # They were real requests in flight: every one reached the backend.
        assert big.stats()["requests"] == 200
        assert not normal.errors, normal.errors[:5]
        assert max(normal.times) < 1.0, f"normal requests took up to {max(normal.times):.2f}s"
    finally:
        for s in socks:
            s.close()
    assert proxy.alive()


def test_many_stalled_bodies_are_cut_and_release_everything(proxy):
    baseline = proxy.fd_count()
    socks = []
    try:
        with Latency(proxy) as normal:
            t0 = time.monotonic()
            for i in range(300):
                s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                s.sendall(f"POST /sink/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
                          .encode() + b"b" * 100)
                socks.append(s)
            closed = wait_closed(socks, timeout=time.monotonic() - t0 + 4)
            assert len(closed) == 300, f"{300 - len(closed)} stalled bodies still open"
            # Client and upstream sockets of the stalled requests are all released.
            assert wait_until(lambda: proxy.fd_count() <= baseline + 4, timeout=3), \
                proxy.fd_count() - baseline
        assert not normal.errors, normal.errors[:5]
        assert max(normal.times) < 0.5, f"normal requests took up to {max(normal.times):.2f}s"
    finally:
        for s in socks:
            s.close()
