"""Slow clients are cut off by the client timeouts and never starve the others: 1,000 at once
of each kind (connections that never finish their headers, stalled request bodies, clients
that never read their response, idle connections), each while a normal client keeps being
served; and single header and body tricklers, a client that never reads a 200 MiB answer."""
import errno
import resource
import selectors
import socket
import threading
import time

import pytest
import requests

from conftest import free_port, proxy_config, wait_until
from rawhttp import Conn

TIMEOUTS = "header: 1s, body: 1s, send: 1s, keepalive: 2s"
# The 1,000-connection tests: the timeout that cuts them is SLOW seconds, long enough for all
# 1,000 to be open at once (in batches, on a loaded 2-core machine) before the first is cut.
SLOW = 3.0
MASS_TIMEOUTS = "header: 3s, body: 3s, send: 3s, keepalive: 3s"
N = 1000
# A normal request starved by the slow ones would wait for them to be cut (SLOW); one this
# far below says it was served meanwhile, with room for a loaded machine's stalls.
NORMAL_BOUND = SLOW / 2


@pytest.fixture(scope="module", autouse=True)
def descriptors():
    """This process holds the 1,000 client sockets, and the backends it starts inherit its
    limit: the soft RLIMIT_NOFILE goes up to the hard one (the gateway raises its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass  # the tests that need many say so (the `many` fixture)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def many():
    """For the 1,000-connection tests: the gateway holds a client and an upstream socket
    for each, and this process and the backend one each."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)  # raised to the hard limit
    if 0 <= soft < 2 * N + 500:  # RLIM_INFINITY is -1
        pytest.skip(f"the open-file limit (RLIMIT_NOFILE) is {soft}: too low for {N} connections")
    return N


def make_proxy(backend_factory, gateway_factory, timeouts):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address], server_timeouts=timeouts), port)
    gw.app = app
    return gw


@pytest.fixture
def proxy(backend_factory, gateway_factory):
    return make_proxy(backend_factory, gateway_factory, TIMEOUTS)


@pytest.fixture
def mass_proxy(backend_factory, gateway_factory):
    return make_proxy(backend_factory, gateway_factory, MASS_TIMEOUTS)


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


def open_many(socks, port, n, first_bytes=None, setup=None, batch=100):
    """Opens n connections to the gateway, `batch` at a time: each batch is connected (and
    has sent first_bytes(i), if given) before the next starts, so that a busy machine's listen
    queue never overflows. Appends the sockets to `socks` (the caller closes them) and
    returns {socket: time its first bytes were sent}."""
    sent = {}
    for start in range(0, n, batch):
        group = []
        for i in range(start, min(n, start + batch)):
            s = socket.socket()
            socks.append(s)
            if setup:
                setup(s)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            group.append((i, s))
        sel = selectors.DefaultSelector()
        for _, s in group:
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + 10
        left = len(group)
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                sel.unregister(key.fileobj)
                left -= 1
        sel.close()
        assert left == 0, f"{left} connections not established after 10 s"
        for i, s in group:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert err == 0, f"connection {i}: {errno.errorcode.get(err, err)}"
            s.settimeout(10)
            if first_bytes:
                s.sendall(first_bytes(i))
            sent[s] = time.monotonic()
    return sent


def served_while_connected(gw, baseline, n, path="/x"):
    """While all n slow connections are open (the gateway holds a descriptor for each), a
    normal client gets 10 answers in a row, each well within the slow ones' timeout."""
    assert wait_until(lambda: gw.fd_count() >= baseline + n, timeout=10), \
        f"the gateway holds {gw.fd_count() - baseline} descriptors more, not {n}: not all accepted"
    for _ in range(10):
        t0 = time.monotonic()
        r = requests.get(gw.url + path, timeout=10)
        took = time.monotonic() - t0
        assert r.status_code == 200, r.status_code
        assert took < NORMAL_BOUND, f"a normal request took {took:.2f}s among {n} slow ones"
    held = gw.fd_count() - baseline
    assert held >= n, f"only {held} of the {n} slow connections were still open: check too late"


def left_over(gw, before, app_port):
    """The descriptors the gateway holds beyond `before` ({fd: what}, gw.descriptors()),
    as (pooled connections to app_port, open or closed by it since, and everything else)."""
    kept, other = {}, {}
    for fd, what in gw.descriptors().items():
        if fd not in before:
            (kept if f"->{app_port} state " in what else other)[fd] = what
    return kept, other


def released(gw, before, app_port):
    """Whether the slow connections' descriptors are all gone: what the gateway holds beyond
    `before` is at most the normal client's connection in flight and the kept-alive
    connections the normal requests left to app_port: one a worker, a few more when a slow
    answer overlapped the next request, never one a slow connection."""
    kept, other = left_over(gw, before, app_port)
    return len(other) <= 1 and len(kept) <= 8


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


def test_1000_connections_that_never_finish_their_headers(mass_proxy, many):
    proxy = mass_proxy
    baseline = proxy.fd_count()
    before = proxy.descriptors()
    socks = []
    try:
        with Latency(proxy) as normal:
            sent = open_many(socks, proxy.port, many,
                             lambda i: f"GET /never/{i} HTTP/1.1\r\nHost: a\r\nX-Partial: ".encode())
            served_while_connected(proxy, baseline, many)
            closed = wait_closed(socks, timeout=max(sent.values()) - time.monotonic() + SLOW + 6)
        assert len(closed) == many, f"{many - len(closed)} stalled connections still open"
        # `header` counts from each connection's first byte; cut no earlier, and not much later.
        early = min(t - sent[s] for s, (t, _) in closed.items())
        assert early >= SLOW - 0.2, f"cut {early:.2f}s after its first byte: header timeout is {SLOW}s"
        answers = {d[:12] for _, d in closed.values()}
        assert answers <= {b"", b"HTTP/1.1 408"}, answers
        # Meanwhile the normal client was served, and fast.
        assert not normal.errors, normal.errors[:5]
        assert len(normal.times) >= 5
        assert max(normal.times) < NORMAL_BOUND, f"normal requests took up to {max(normal.times):.2f}s"
        assert wait_until(lambda: released(proxy, before, proxy.app.port), timeout=5), \
            left_over(proxy, before, proxy.app.port)
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


def test_1000_idle_connections_are_closed_after_keepalive_timeout(backend_factory,
                                                                 gateway_factory, many):
    # header: 1s, keepalive: 3s: a connection that never sent a byte is idle, not a slow head.
    proxy = make_proxy(backend_factory, gateway_factory, "header: 1s, body: 1s, send: 1s, keepalive: 3s")
    baseline = proxy.fd_count()
    socks = []
    try:
        opened = open_many(socks, proxy.port, many)
        # One connection that did a request first, then went idle.
        used = Conn(proxy.port)
        socks.append(used.sock)
        used.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert used.read_response().status == 200
        opened[used.sock] = time.monotonic()
        served_while_connected(proxy, baseline, many + 1)
        closed = wait_closed(socks, timeout=SLOW + 6)
        assert len(closed) == many + 1, f"{many + 1 - len(closed)} idle connections still open"
        early = min(t - opened[s] for s, (t, _) in closed.items())
        assert early >= SLOW - 0.2, f"idle connection closed after {early:.2f}s (keepalive: {SLOW}s)"
        assert all(d in (b"",) or d.startswith(b"HTTP/1.1 408") for _, d in closed.values())
    finally:
        for s in socks:
            s.close()


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


def test_1000_clients_that_never_read_do_not_starve_others(backend_factory, gateway_factory,
                                                           many):
    # The big responses come from their own backend, so that the normal client's latency
    # measures the gateway, not a busy test backend.
    big, app = backend_factory("big"), backend_factory("app")
    port = free_port()
    proxy = gateway_factory(f"""
server:
  workers: 2
  listen: ["127.0.0.1:{port}"]
  access_log: "off"
  timeouts: {{{MASS_TIMEOUTS}}}
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
    # Each answer is far more than what a stalled connection takes in: 64 KiB of the relay's
    # buffer, and the kernel's. The client's small MSS keeps the gateway's send buffer to it
    # near 100 KiB (on loopback it would grow to 4 MiB, the whole answer), and the 1,000
    # answers' bytes within what the kernel lets TCP buffers hold.
    n = 384 << 10

    def never_reads(s):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1024)

    baseline = proxy.fd_count()
    before = proxy.descriptors()
    socks = []
    try:
        with Latency(proxy) as normal:
            open_many(socks, port, many, lambda i: f"GET /bytes/{n} HTTP/1.1\r\nHost: a\r\n\r\n"
                      .encode(), setup=never_reads)
            served_while_connected(proxy, baseline, many)
            # send: 3s. Once the gateway has cut them all, it holds no descriptor for them
            # (client or upstream socket, nor anything else). A relay notices its client is gone
            # on its next write, which may wait for the next piece from the (single-process,
            # 1,000-stream) test backend: on a loaded 2-core machine that can take seconds,
            # hence the generous bound.
            cut = wait_until(lambda: released(proxy, before, app.port), timeout=SLOW + 30)
        assert cut, (f"gateway still holds descriptors it did not have before (client port "
                     f"{port}, big {big.port}, app {app.port}): {left_over(proxy, before, app.port)}"
                     f"; big backend saw {big.stats()['requests']} requests; the normal client's "
                     f"slowest of {len(normal.times)}: {max(normal.times, default=0):.2f}s, errors "
                     f"{normal.errors[:3]}")
        # They were real requests in flight: every one reached the backend.
        assert big.stats()["requests"] == many
        assert not normal.errors, normal.errors[:5]
        assert max(normal.times) < NORMAL_BOUND, f"normal requests took up to {max(normal.times):.2f}s"
        # Cut, not finished: what was queued for them trickles out, then the end; never all.
        closed = wait_closed(socks, timeout=15)
        assert len(closed) == many, f"{many - len(closed)} client sockets not ended by the gateway"
        most = max(len(d) for _, d in closed.values())
        assert most < n, f"a client got {most} bytes: the whole answer, not cut by the send timeout"
    finally:
        for s in socks:
            s.close()
    assert proxy.alive()


def test_1000_stalled_bodies_are_cut_and_release_everything(mass_proxy, many):
    proxy = mass_proxy
    baseline = proxy.fd_count()
    before = proxy.descriptors()
    socks = []
    try:
        with Latency(proxy) as normal:
            last = open_many(socks, proxy.port, many, lambda i: (
                f"POST /sink/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
                .encode() + b"b" * 100))
            served_while_connected(proxy, baseline, many)
            # A trickle: another piece on each, which restarts its `body` timeout (between two
            # reads). Only where the first piece is recent enough that the gateway cannot have
            # cut it yet: a piece sent after the cut would spoil the measure below.
            for s in socks:
                if time.monotonic() - last[s] < SLOW / 2:
                    s.sendall(b"c" * 100)
                    last[s] = time.monotonic()
            closed = wait_closed(socks, timeout=max(last.values()) - time.monotonic() + SLOW + 6)
            assert len(closed) == many, f"{many - len(closed)} stalled bodies still open"
            early = min(t - last[s] for s, (t, _) in closed.items())
            assert early >= SLOW - 0.2, f"cut {early:.2f}s after its last piece (body: {SLOW}s)"
            # Client and upstream sockets of the stalled requests are all released.
            assert wait_until(lambda: released(proxy, before, proxy.app.port), timeout=10), \
                left_over(proxy, before, proxy.app.port)
        assert not normal.errors, normal.errors[:5]
        assert max(normal.times) < NORMAL_BOUND, f"normal requests took up to {max(normal.times):.2f}s"
    finally:
        for s in socks:
            s.close()


def test_gateway_raises_its_open_file_limit_to_the_hard_one(backend_factory, gateway_factory):
    # Started with the usual soft limit (1024), as from a shell: a gateway that kept it could
    # not hold even the 1,000 connections above (each proxied one is two descriptors).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 1024
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"the hard open-file limit is {hard}: nothing to raise")
    app = backend_factory("app")
    port = free_port()
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        gw = gateway_factory(proxy_config(port, [app.address],
                                          server_extra="  log_level: debug\n"), port)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{gw.pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    gw_soft, gw_hard = line.split()[3:5]
    assert gw_soft == gw_hard, line
    assert f"open-file limit (RLIMIT_NOFILE) raised from {low} to {gw_hard}" in gw.log_text()
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
