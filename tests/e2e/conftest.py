"""Fixtures for end-to-end tests: the real intermission binary in front of
real backend processes, on 127.0.0.1 ports chosen at run time. Every process
a test starts is stopped when the test ends.

`--protocol h2c` runs the modules in H2C_MODULES over HTTP/2 cleartext (prior knowledge): every
gateway's `server:` section gets `http2: {cleartext: true}` (server_yaml(), or
h2c_server_yaml() for a section written by hand), and every request `requests` sends to a
gateway's plain listener goes through tests/e2e/h2adapter.py. Tests that are HTTP/1.1 by nature
carry `@pytest.mark.http1_only("why")` and are skipped in that mode, with the reason; their
HTTP/2 twins (tests/e2e/h2lib.py clients, written for the h2c gateways) carry
`@pytest.mark.h2c_only("why")` and are skipped in the HTTP/1.1 pass. The `protocol` fixture
says which mode runs ("http1" or "h2c") for assertions that differ."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import h2adapter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARY = os.environ.get("INTERMISSION_BIN", str(ROOT / "build" / "release" / "intermission"))
PYTHON = "/usr/bin/python3"

# The modules run again over HTTP/2 (h2c) by scripts/test.sh; in h2c mode the tests of every
# other module are deselected.
H2C_MODULES = [
    "test_smoke", "test_maintenance", "test_error_pages", "test_failover", "test_rules",
    "test_routing", "test_page_store", "test_proxy", "test_upstream_errors", "test_streaming",
    "test_health", "test_balancing", "test_drain", "test_bypass_api",
]
PROTOCOLS = ("http1", "h2c")
PROTOCOL = "http1"  # set from --protocol in pytest_configure


def pytest_addoption(parser):
    parser.addoption("--protocol", choices=PROTOCOLS, default="http1",
                     help="client protocol to the gateways: http1 (default) or h2c (HTTP/2 "
                          "cleartext, prior knowledge; runs the H2C_MODULES only)")


def pytest_configure(config):
    global PROTOCOL
    PROTOCOL = config.getoption("--protocol")
    config.addinivalue_line(
        "markers", "http1_only(reason): HTTP/1.1 by nature (raw sockets, pipelining, "
                   "Connection/keep-alive, chunked framing on the wire); skipped with --protocol h2c")
    config.addinivalue_line(
        "markers", "h2c_only(reason): the HTTP/2 twin of an http1_only test (h2lib clients to "
                   "the h2c gateways); skipped without --protocol h2c")


def pytest_collection_modifyitems(config, items):
    # The tests marked for the other protocol are skipped, with their reason.
    name, label = ("http1_only", "HTTP/1.1 only") if PROTOCOL == "h2c" else ("h2c_only", "h2c only")
    for item in items:
        marker = item.get_closest_marker(name)
        if marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"{label}: {why}"))
    if PROTOCOL != "h2c":
        return
    kept, deselected = [], []
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        (kept if module in H2C_MODULES else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture
def protocol():
    """The client protocol of this run: "http1" or "h2c"."""
    return PROTOCOL


# The pass against the ASan+UBSan build (scripts/test.sh) points the sanitizers' log_path
# into this directory: every process the tests start writes its reports there, not to a
# log a test may never read. A new report fails the test that was running when it appeared.
SANITIZER_LOGS = os.environ.get("INTERMISSION_SANITIZER_LOGS")
SANITIZED = bool(SANITIZER_LOGS)
_reports_seen = set()


def _new_sanitizer_reports():
    reports = sorted(set(os.listdir(SANITIZER_LOGS)) - _reports_seen)
    _reports_seen.update(reports)
    return "\n".join(f"--- {name}\n" + (Path(SANITIZER_LOGS) / name).read_text(errors="replace")[:6000]
                     for name in reports)


@pytest.fixture(autouse=True)
def _no_sanitizer_reports():
    """Set up before, torn down after the test's own fixtures: the test's processes are
    stopped (and have written what they had to say at exit) when this looks."""
    yield
    if SANITIZED and (text := _new_sanitizer_reports()):
        pytest.fail("sanitizer report (from a process of this test, or of an earlier test "
                    f"module's shared fixtures):\n{text}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _no_sanitizer_reports_at_the_end():
    """The last module's shared processes stop after the last test's check."""
    yield
    if SANITIZED and (text := _new_sanitizer_reports()):
        pytest.fail(f"sanitizer report after the last test:\n{text}", pytrace=False)


def assert_peak_rss_below(process, limit_kib):
    """The process's peak RSS (VmHWM) is below the limit. Not under the sanitizers: ASan's
    shadow memory and freed-memory quarantine are hundreds of MiB by themselves; the pass
    against the Release build holds the bound."""
    peak = process.status_kib("VmHWM")
    if not SANITIZED:
        assert peak < limit_kib, f"peak RSS {peak} KiB"


@pytest.fixture(autouse=True)
def _h2c_transport(monkeypatch):
    """In h2c mode, requests to the gateways' plain listeners go over HTTP/2 (h2adapter)."""
    if PROTOCOL != "h2c":
        yield
        return
    h2adapter.install(monkeypatch)
    yield
    h2adapter.H2C_PORTS.clear()


def h2c_server_yaml():
    """The `server:` keys (indented by two) that the protocol mode adds: h2c on plain listeners."""
    return "  http2: {cleartext: true}\n" if PROTOCOL == "h2c" else ""


def get_as_sent(port, path, headers=()):
    """GET path from a gateway with exactly these header fields (and Host: a); the answer as a
    rawhttp.Response whose body is as sent, Content-Encoding not decoded. HTTP/1.1: a raw
    socket; h2c: requests through h2adapter, without requests' default fields."""
    from rawhttp import Conn, Response
    if PROTOCOL == "http1":
        with Conn(port) as c:
            c.send(f"GET {path} HTTP/1.1\r\nHost: a\r\n" +
                   "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n")
            return c.read_response()
    import requests
    fields = {"Host": "a", "Accept": None, "Accept-Encoding": None, "User-Agent": None,
              "Connection": None}
    fields.update(dict(headers))
    r = requests.get(f"http://127.0.0.1:{port}{path}", headers=fields, stream=True, timeout=10)
    with r:
        body = r.raw.read(decode_content=False)
    return Response(r.status_code, r.reason, "HTTP/2", list(r.headers.items()), body, b"")


def plain_listen_ports(config_text):
    """The ports of a gateway config's `server.listen` addresses."""
    import yaml
    try:
        listen = (yaml.safe_load(config_text) or {}).get("server", {}).get("listen", [])
    except (yaml.YAMLError, AttributeError):
        return []
    return [int(str(a).rsplit(":", 1)[1]) for a in listen or [] if ":" in str(a)]


_ports_given = set()


def free_port():
    """A port nothing listens on, and never one this test run handed out before: bind()
    to port 0 may give a port back as soon as it is closed, so two picked one after the
    other (a gateway's listener and its admin API) could be the same port."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_for_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(proc, sig=signal.SIGTERM, timeout=10.0):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Backend:
    """tests/e2e/backend.py in its own process (so it can be killed and restarted)."""

    def __init__(self, tmp_path, name, port=None, delay_ms=0, reset=False, tls_args=()):
        self.name = name
        self.tls_args = list(tls_args)  # e.g. ["--cert", c, "--key", k]: serve HTTPS
        self.reset = reset
        self.auto_port = port is None
        self.port = port or free_port()
        self.delay_ms = delay_ms
        self.log = tmp_path / f"backend-{name}-{self.port}.log"
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        for attempt in range(3):
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [PYTHON, str(HERE / "backend.py"), "--port", str(self.port), "--name",
                     self.name, "--delay", str(self.delay_ms)] + (["--reset"] if self.reset else [])
                    + self.tls_args,
                    stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_for_port(self.port, self.proc)
                self.auto_port = False  # a restart must come back on the same port
                return self
            except RuntimeError:
                # A port picked by free_port() can be taken by someone else before the backend
                # binds it; only then (first start, port not imposed) is another one tried.
                stop(self.proc, signal.SIGKILL)
                if not self.auto_port or attempt == 2:
                    raise
                self.port = free_port()
        return self

    def get(self, path, timeout=5.0):
        """GET straight to this backend (not through the gateway)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n\r\n", 1)[1]

    def stats(self):
        """Connections and requests this backend has seen, and its request log."""
        return json.loads(self.get("/stats"))

    def requests_for(self, path_prefix):
        return [e for e in self.stats()["log"] if e["target"].startswith(path_prefix)]

    def kill(self):
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)
            self.proc = None

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


class Gateway:
    """The intermission binary with a config written from a YAML string."""

    def __init__(self, tmp_path, config_text, port):
        self.tmp_path = tmp_path
        self.port = port
        self.config = tmp_path / "intermission.yaml"
        self.config.write_text(config_text)
        self.log = tmp_path / "gateway.log"
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        if PROTOCOL == "h2c" and "http2: {cleartext: true}" not in self.config.read_text():
            raise AssertionError("h2c mode: this gateway config's server: section lacks "
                                 "h2c_server_yaml() (server_yaml() and proxy_config() add it)")
        self.log_file = open(self.log, "ab")
        self.proc = subprocess.Popen([BINARY, "serve", "--config", str(self.config)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc)
        if PROTOCOL == "h2c":
            self.h2c_ports = [self.port] + plain_listen_ports(self.config.read_text())
            for port in self.h2c_ports:
                h2adapter.register_port(port)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        code = None
        if self.proc is not None:
            code = stop(self.proc, sig, timeout)
            self.proc = None
            self.log_file.close()
            # The port may be a backend's next (free_port()): not HTTP/2 any more.
            for port in getattr(self, "h2c_ports", ()):
                h2adapter.unregister_port(port)
        return code

    def log_text(self):
        return self.log.read_text(errors="replace")

    @property
    def pid(self):
        return self.proc.pid

    def status_kib(self, field):
        """A field of /proc/PID/status in KiB, e.g. VmHWM (peak RSS) or VmRSS."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def fd_count(self):
        """Open file descriptors of the gateway process (sockets included)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def descriptors(self):
        """{fd: what it is}: "tcp LOCAL->REMOTE STATE" for a TCP socket, else the link's text
        (a file, pipe:[..], anon_inode:[eventfd], a socket of another family). Says what a
        descriptor leak is made of."""
        tcp = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local = int(parts[1].split(":")[1], 16)
                    remote = int(parts[2].split(":")[1], 16)
                    tcp[parts[9]] = f"tcp {local}->{remote} state {int(parts[3], 16)}"
        out = {}
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                link = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                link = tcp.get(link[8:-1], link)
            out[int(fd)] = link
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def backend_factory(tmp_path):
    started = []

    def make(name="app", port=None, delay_ms=0, reset=False, tls_args=()):
        b = Backend(tmp_path, name, port, delay_ms, reset, tls_args).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.kill()


@pytest.fixture
def gateway_factory(tmp_path):
    started = []

    def make(config_text, port):
        g = Gateway(tmp_path, config_text, port).start()
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop(signal.SIGKILL)


def run_binary(*args, timeout=30):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


def server_yaml(port, workers=2, limits="", timeouts="", extra=""):
    """The `server:` section most tests use; limits/timeouts are flow maps' insides."""
    out = f"""server:
  workers: {workers}
  listen: ["127.0.0.1:{port}"]
  access_log: "off"
""" + h2c_server_yaml()
    if limits:
        out += f"  limits: {{{limits}}}\n"
    if timeouts:
        out += f"  timeouts: {{{timeouts}}}\n"
    return out + extra


def proxy_config(port, targets, workers=2, group_extra="", server_timeouts="", limits="",
                 server_extra=""):
    """One default site forwarding everything to the group `app`."""
    targets = ", ".join(f'"{t}"' for t in targets)
    return server_yaml(port, workers, limits, server_timeouts, server_extra) + f"""
target_groups:
  app:
    targets: [{targets}]
{group_extra}
sites:
  - name: www
    default: true
    default_action: {{forward: app}}
"""


def wait_until(predicate, timeout=5.0, interval=0.05):
    """Polls predicate until it returns a true value; returns that value or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def write_tree(root, files):
    """Writes {relative path: str or bytes} under root (folders made as needed); returns root."""
    root = Path(root)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def text_position(text, token, nth=0):
    """1-based (line, column) of the nth occurrence of token in text."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(token, start + 1)
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def check_config(tmp_path, text, name="check.yaml"):
    """Runs `intermission check --config` on text. Returns (exit code, stderr,
    [(line, column, message)] of every `file:line:column: message` line)."""
    import re
    path = Path(tmp_path) / name
    path.write_text(text)
    r = run_binary("check", "--config", str(path))
    pattern = re.compile(r"^" + re.escape(str(path)) + r":(\d+):(\d+): (.+)$", re.M)
    errors = [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in pattern.finditer(r.stderr)]
    return r.returncode, r.stderr, errors
