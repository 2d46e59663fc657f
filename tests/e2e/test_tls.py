"""HTTPS at the edge: certificates chosen by SNI (exact, wildcard, default, or an alert),
TLS 1.2 and 1.3, ALPN, session tickets, the HTTP→HTTPS redirect, HSTS, certificates
reloaded without dropping connections, clear errors for bad certificates, bad
handshakes that never stall a worker, and records that arrive in pieces, several at once,
larger than the room left for them, or as a close_notify."""
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import requests

from adminlib import admin_yaml, api, write_token
from certs import CA
from conftest import BINARY, free_port, run_binary, server_yaml, wait_until, write_tree

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def tls_yaml(port, certs, extra=""):
    lines = "".join(f"    - {{cert: {c}, key: {k}{extra_c}}}\n" for c, k, extra_c in certs)
    return f"""tls:
  listen: ["127.0.0.1:{port}"]
  certificates:
{lines}{extra}"""


class Site:
    """A gateway with a plain and an HTTPS listener in front of one backend."""

    def __init__(self, tmp_path, backend_factory, gateway_factory, tls_extra="", certs=None):
        self.tmp = tmp_path
        self.ca = CA(tmp_path / "certs")
        www = self.ca.issue("www", ["www.example.com", "*.example.com"])
        other = self.ca.issue("other", ["other.test"])
        self.certs = certs or [(www[0], www[1], ""), (other[0], other[1], "")]
        write_tree(tmp_path / "pages", {"index.html": "<p>home</p>\n", "maintenance.html": "<p>soon</p>\n"})
        write_token(tmp_path)
        self.app = backend_factory("app")
        self.port, self.https_port, self.admin_port = free_port(), free_port(), free_port()
        self.tls_extra = tls_extra
        self.gw = gateway_factory(self.config(), self.port)
        wait_until(lambda: _connects(self.https_port))

    def config(self, certs=None, tls_extra=None):
        return server_yaml(self.port) + admin_yaml(self.admin_port) + tls_yaml(
            self.https_port, certs or self.certs, self.tls_extra if tls_extra is None else tls_extra) + f"""
target_groups:
  app:
    targets: ["{self.app.address}"]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    rules:
      - {{match: {{path: "/"}}, store: {{}}}}
    default_action: {{forward: app}}
"""

    def curl(self, host, path="/", *args):
        # HTTP/1.1 over TLS here; the same over HTTP/2 is test_http2.py's.
        return subprocess.run(["curl", "-sS", "-i", "--http1.1", "--max-time", "10", "--cacert", str(self.ca.pem),
                               "--resolve", f"{host}:{self.https_port}:127.0.0.1", *args,
                               f"https://{host}:{self.https_port}{path}"],
                              capture_output=True, text=True, timeout=20)

    def s_client(self, *args, servername=None):
        cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{self.https_port}", "-CAfile", str(self.ca.pem)]
        if servername:
            cmd += ["-servername", servername]
        return subprocess.run(cmd + list(args), input="", capture_output=True, text=True,
                              errors="replace", timeout=20)  # an h2 server sends binary frames


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def site(tmp_path, backend_factory, gateway_factory):
    return Site(tmp_path, backend_factory, gateway_factory, tls_extra='  hsts: "max-age=600"\n  redirect_http: true\n')


def subject(out):
    for line in out.splitlines():
        if line.startswith("subject="):
            return line
    return ""


def test_the_certificate_is_chosen_by_sni(site):
    assert "www.example.com" in subject(site.s_client(servername="www.example.com").stdout)
    assert "www.example.com" in subject(site.s_client(servername="api.example.com").stdout)  # wildcard
    assert "other.test" in subject(site.s_client(servername="other.test").stdout)
    # Unknown and absent names get the default certificate (the first).
    assert "www.example.com" in subject(site.s_client(servername="unknown.invalid").stdout)
    assert "www.example.com" in subject(site.s_client().stdout)


def test_https_requests_are_verified_and_served(site):
    r = site.curl("www.example.com")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP/1.1 200") and "<p>home</p>" in r.stdout
    r = site.curl("other.test", "/app")
    assert r.returncode == 0 and "hello from app" in r.stdout, r.stderr
    # A name the certificate does not carry fails verification, as it should.
    r = site.curl("wrong.test")
    assert r.returncode != 0 and "certificate" in r.stderr.lower()


def test_tls_12_and_13_and_alpn(site):
    for version in ("-tls1_2", "-tls1_3"):
        out = site.s_client(version, "-alpn", "h2,http/1.1", servername="www.example.com").stdout
        assert ("TLSv1.2" if version == "-tls1_2" else "TLSv1.3") in out
        assert "ALPN protocol: h2" in out  # HTTP/2 is on by default and preferred
        assert "Verify return code: 0 (ok)" in out
        out = site.s_client(version, "-alpn", "http/1.1", servername="www.example.com").stdout
        assert "ALPN protocol: http/1.1" in out


def test_session_tickets_resume(site, tmp_path):
    sess = tmp_path / "session.pem"
    first = site.s_client("-tls1_2", "-sess_out", str(sess), servername="www.example.com")
    assert "New, TLSv1.2" in first.stdout
    again = site.s_client("-tls1_2", "-sess_in", str(sess), servername="www.example.com")
    assert "Reused, TLSv1.2" in again.stdout, again.stdout[-800:]


def test_plain_http_is_redirected_to_https(site):
    r = requests.get(f"http://127.0.0.1:{site.port}/a/b?x=1", headers={"Host": "www.example.com"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://www.example.com:{site.https_port}/a/b?x=1"
    r = requests.post(f"http://127.0.0.1:{site.port}/form", data="x", headers={"Host": "www.example.com"},
                      allow_redirects=False, timeout=5)
    assert r.status_code == 308
    assert "Strict-Transport-Security" not in r.headers  # HSTS only over HTTPS


def test_hsts_and_forwarded_proto_on_https(site):
    for path in ("/", "/echo", "/missing-page-404"):
        r = site.curl("www.example.com", path)
        assert "strict-transport-security: max-age=600" in r.stdout.lower(), (path, r.stdout[:400])
    echo = site.curl("www.example.com", "/echo")
    assert '["x-forwarded-proto", "https"]' in echo.stdout.lower(), echo.stdout


def test_maintenance_over_https(site):
    assert api(f"http://127.0.0.1:{site.admin_port}", "PUT", "/v1/sites/www/maintenance",
               {"on": True}).status_code == 200
    r = site.curl("www.example.com", "/anything", "-H", "Accept: text/html")
    assert r.stdout.startswith("HTTP/1.1 503") and "<p>soon</p>" in r.stdout


def test_unknown_names_can_be_refused(tmp_path, backend_factory, gateway_factory):
    site = Site(tmp_path, backend_factory, gateway_factory, tls_extra="  unknown_name: reject\n")
    assert site.s_client(servername="www.example.com").returncode == 0
    out = site.s_client(servername="unknown.invalid")
    assert out.returncode != 0 and "unrecognized name" in (out.stdout + out.stderr).lower()
    assert site.curl("www.example.com").returncode == 0  # the gateway is fine


def test_min_version_13_refuses_12(tmp_path, backend_factory, gateway_factory):
    site = Site(tmp_path, backend_factory, gateway_factory, tls_extra='  min_version: "1.3"\n')
    assert site.s_client("-tls1_2", servername="www.example.com").returncode != 0
    assert "TLSv1.3" in site.s_client("-tls1_3", servername="www.example.com").stdout


def test_garbage_and_stalled_handshakes_do_not_stall_the_worker(tmp_path, backend_factory, gateway_factory):
    site = Site(tmp_path, backend_factory, gateway_factory)
    site.gw.config.write_text(site.config().replace("access_log", "timeouts: {header: 1s}\n  access_log"))
    assert api(f"http://127.0.0.1:{site.admin_port}", "POST", "/v1/reload").status_code == 200
    garbage = socket.create_connection(("127.0.0.1", site.https_port), timeout=5)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP at a TLS port
    stalled = [socket.create_connection(("127.0.0.1", site.https_port), timeout=5) for _ in range(20)]
    assert site.curl("www.example.com").returncode == 0  # served meanwhile
    assert garbage.recv(4096)[:1] in (b"\x15", b"")  # an alert or a close, never an HTTP answer
    t0 = time.monotonic()
    for s in stalled:
        s.settimeout(10)
        assert s.recv(10) == b""  # closed by the gateway: the handshake timed out
    assert time.monotonic() - t0 < 9
    for s in stalled + [garbage]:
        s.close()


def test_changed_certificate_files_are_picked_up_without_dropping_connections(site):
    # A connection opened before the change keeps working after it.
    with socket.create_connection(("127.0.0.1", site.https_port)) as raw:
        ctx = ssl.create_default_context(cafile=str(site.ca.pem))
        with ctx.wrap_socket(raw, server_hostname="www.example.com") as before:
            new_cert, new_key = site.ca.issue("renewed", ["www.example.com", "renewed.example.net"])
            shutil.copy(new_cert, site.certs[0][0])
            shutil.copy(new_key, site.certs[0][1])
            assert wait_until(lambda: _san_has(site, "renewed.example.net"), timeout=10), \
                "the renewed certificate was never served"
            before.sendall(b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            assert before.recv(100).startswith(b"HTTP/1.1 200")


def _san_has(site, name):
    pem = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.https_port}",
                          "-servername", "www.example.com"], input="", capture_output=True, text=True,
                         timeout=10).stdout
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem,
                          capture_output=True, text=True, timeout=10).stdout
    return name in text


def test_a_bad_certificate_on_reload_keeps_the_previous_one(site):
    stray = site.ca.stray_key("stray")
    site.gw.config.write_text(site.config(certs=[(site.certs[0][0], stray, "")]))
    r = api(f"http://127.0.0.1:{site.admin_port}", "POST", "/v1/reload")
    assert r.status_code == 400
    assert any("does not match" in e and str(stray) in e for e in r.json()["errors"]), r.text
    assert site.curl("www.example.com").returncode == 0


@pytest.mark.parametrize("problem,expected", [
    ("expired", "expired on"),
    ("mismatch", "does not match the certificate"),
    ("missing", "cannot read"),
    ("garbage", "cannot load the certificate"),
])
def test_bad_certificates_stop_start_up_naming_the_file(tmp_path, problem, expected):
    ca = CA(tmp_path / "certs")
    cert, key = ca.issue("c", ["www.example.com"], expired=(problem == "expired"))
    if problem == "mismatch":
        key = ca.stray_key("other")
    if problem == "missing":
        cert = tmp_path / "certs" / "nope.pem"
    if problem == "garbage":
        cert.write_text("not a certificate\n")
    config = tmp_path / "gw.yaml"
    config.write_text(server_yaml(free_port()) + tls_yaml(free_port(), [(cert, key, "")]) +
                      "sites:\n  - name: www\n    default: true\n    default_action: {fixed: {body: x}}\n")
    for command in ("check", "serve"):
        out = run_binary(command, "--config", str(config))
        assert out.returncode != 0, out
        assert expected in out.stderr and (str(cert) in out.stderr or str(key) in out.stderr), out.stderr


@pytest.mark.parametrize("tls_section,expected", [
    ('tls:\n  listen: ["127.0.0.1:{p}"]\n', "missing required key 'certificates'"),
    ('tls:\n  certificates: [{{cert: a.pem, key: a.key}}]\n', "missing required key 'listen'"),
    ('tls:\n  listen: ["127.0.0.1:{p}"]\n  certificates: [{{cert: a.pem}}]\n', "expected {cert:"),
    ('tls:\n  listen: ["127.0.0.1:{p}"]\n  certificates: [{{cert: a, key: b}}]\n  min_version: "1.1"\n',
     "bad TLS version '1.1'"),
    ('tls:\n  listen: ["127.0.0.1:{s}"]\n  certificates: [{{cert: a, key: b}}]\n', "in both 'server.listen'"),
    ('tls:\n  listen: ["127.0.0.1:{p}"]\n  certificates: [{{cert: a, key: b}}]\n  unknown_name: drop\n',
     "expected default or reject"),
])
def test_bad_tls_sections_are_config_errors(tmp_path, tls_section, expected):
    s, p = free_port(), free_port()
    config = tmp_path / "gw.yaml"
    config.write_text(server_yaml(s) + tls_section.format(p=p, s=s) +
                      "sites:\n  - name: www\n    default: true\n    default_action: {fixed: {body: x}}\n")
    out = run_binary("check", "--config", str(config))
    assert out.returncode != 0 and expected in out.stderr, out.stderr
    assert f"{config}:" in out.stderr  # file:line:column


# The TLS layer reads what the socket has into one buffer and writes records straight to the
# socket: bodies larger than a record, many requests in one read, and clients that vanish.

def test_large_bodies_both_ways_over_https(site, tmp_path):
    n = 24 * 1024 * 1024 + 3  # many records, partial writes and a last short record
    r = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "60", "--cacert", str(site.ca.pem),
                        "--resolve", f"www.example.com:{site.https_port}:127.0.0.1", "-o", "-",
                        f"https://www.example.com:{site.https_port}/bytes/{n}"],
                       capture_output=True, timeout=90)
    assert r.returncode == 0 and len(r.stdout) == n, (r.returncode, len(r.stdout), r.stderr[-300:])
    upload = tmp_path / "upload.bin"
    upload.write_bytes(bytes(range(256)) * (n // 256))
    up = site.curl("www.example.com", "/sink", "--data-binary", f"@{upload}", "-H", "Content-Type: application/octet-stream")
    assert up.returncode == 0 and "HTTP/1.1 200 OK" in up.stdout, up.stdout[:300] + up.stderr  # after a 100
    assert up.stdout.rstrip().endswith(str(upload.stat().st_size)), up.stdout[-300:]


def _read_answer(s, buffered):
    """One Content-Length framed answer from s: (status line, body, bytes after it)."""
    while b"\r\n\r\n" not in buffered:
        chunk = s.recv(65536)
        assert chunk, "the connection closed before an answer"
        buffered += chunk
    head, rest = buffered.split(b"\r\n\r\n", 1)
    length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk, "the connection closed inside an answer"
        rest += chunk
    return head.split(b"\r\n")[0], rest[:length], rest[length:]


def test_pipelined_requests_in_one_record_over_https(site):
    ctx = ssl.create_default_context(cafile=str(site.ca.pem))
    ctx.set_alpn_protocols(["http/1.1"])
    sizes = (10, 70000, 5)
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="www.example.com") as s:
        # One write: one record holding three heads.
        s.sendall(b"".join(f"GET /bytes/{n} HTTP/1.1\r\nHost: www.example.com\r\n\r\n".encode() for n in sizes))
        left = b""
        for n in sizes:
            status, body, left = _read_answer(s, left)
            assert status == b"HTTP/1.1 200 OK" and len(body) == n, (status, len(body))


def test_clients_that_vanish_mid_tls_leave_the_gateway_serving(site):
    ctx = ssl.create_default_context(cafile=str(site.ca.pem))
    for _ in range(10):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", site.https_port), timeout=10),
                            server_hostname="www.example.com")
        s.sendall(b"GET /bytes/5000000 HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset, no close_notify, most of the answer unsent
    half = ctx.wrap_socket(socket.create_connection(("127.0.0.1", site.https_port), timeout=10),
                           server_hostname="www.example.com")
    half.sendall(b"GET / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 100\r\n\r\nonly some")
    half.close()  # the TCP connection ends inside a request body
    r = site.curl("www.example.com", "/x")
    assert r.returncode == 0 and "hello from app" in r.stdout, r.stdout + r.stderr


class RawTls:
    """A TLS client whose records go to the socket exactly as the test cuts them: the
    gateway must put a record together from pieces, and take several at once."""

    def __init__(self, site):
        ctx = ssl.create_default_context(cafile=str(site.ca.pem))
        ctx.set_alpn_protocols(["http/1.1"])
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="www.example.com")
        self.sock = socket.create_connection(("127.0.0.1", site.https_port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                self._feed()
        self.sock.sendall(self.outgoing.read())

    def _feed(self):
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
        return data

    def records(self, plaintext):
        """The encrypted bytes of `plaintext`, one record (it is small), not sent yet."""
        self.tls.write(plaintext)
        return self.outgoing.read()

    def recv(self, n):
        """Plaintext as a socket's recv gives it: b"" once the gateway ended the connection
        (close_notify or FIN)."""
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                if not self._feed():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def ended(self, timeout=5):
        """Whether the gateway ends the connection within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while self.recv(65536):
                pass
            return True
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


def request(n):
    return f"GET /bytes/{n} HTTP/1.1\r\nHost: www.example.com\r\n\r\n".encode()


def test_records_in_pieces_and_several_in_one_segment_over_https(site):
    c = RawTls(site)
    try:
        # One record cut into 7-byte segments, its 5-byte header split too.
        wire = c.records(request(11))
        for i in range(0, len(wire), 7):
            c.sock.sendall(wire[i:i + 7])
            time.sleep(0.005)
        status, body, left = _read_answer(c, b"")
        assert status == b"HTTP/1.1 200 OK" and len(body) == 11 and left == b""
        # Two whole records and the first 3 bytes of a third in one segment; the rest later.
        first, second, third = c.records(request(12)), c.records(request(13)), c.records(request(14))
        c.sock.sendall(first + second + third[:3])
        for n in (12, 13):
            status, body, left = _read_answer(c, left)
            assert status == b"HTTP/1.1 200 OK" and len(body) == n, (status, len(body))
        time.sleep(0.05)
        c.sock.sendall(third[3:])
        status, body, left = _read_answer(c, left)
        assert status == b"HTTP/1.1 200 OK" and len(body) == 14 and left == b""
    finally:
        c.close()


@pytest.mark.parametrize("with_request", [False, True], ids=["idle", "after-a-request-in-the-same-segment"])
def test_close_notify_from_the_client_ends_the_connection(site, with_request):
    c = RawTls(site)
    try:
        c.sock.sendall(c.records(request(3)))
        status, _, _ = _read_answer(c, b"")
        assert status == b"HTTP/1.1 200 OK"
        last = c.records(request(4)) if with_request else b""
        try:
            c.tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # its own close_notify is out; the gateway's comes later
        c.sock.sendall(last + c.outgoing.read())
        if with_request:
            status, body, _ = _read_answer(c, b"")
            assert status == b"HTTP/1.1 200 OK" and len(body) == 4
        assert c.ended(), "the gateway kept the connection open after the client's close_notify"
    finally:
        c.close()
    assert site.curl("www.example.com", "/x").returncode == 0


def padded_request(n, size):
    """A GET /bytes/n of exactly `size` bytes, an X-Pad field making up the difference."""
    head = f"GET /bytes/{n} HTTP/1.1\r\nHost: www.example.com\r\nX-Pad: {{}}\r\n\r\n"
    return head.format("p" * (size - len(head.format("")))).encode()


def test_a_record_larger_than_the_room_left_for_it_is_read_whole(site):
    # The gateway reads requests into a buffer of max_header_bytes + 16 KiB (32 KiB here)
    # and moves its bytes to the front only when it is full. Two records fill it to 16 KiB
    # and 100 bytes, the last 140 of them the start of a request; a third, full record
    # (16 KiB of plaintext) then finds less room than it holds. OpenSSL keeps the rest, and
    # the gateway must take it from there, not wait for the socket: it stays silent while
    # the client waits for its answers.
    c = RawTls(site)
    try:
        second = padded_request(2, 8000)
        first_record = padded_request(1, 16384 - 40) + second[:40]
        second_record = second[40:140]
        third_record = second[140:] + padded_request(3, 4000)
        third_record += padded_request(4, 16384 - len(third_record))
        assert len(first_record) == len(third_record) == 16384
        c.sock.sendall(c.records(first_record))
        status, body, left = _read_answer(c, b"")
        assert status == b"HTTP/1.1 200 OK" and len(body) == 1
        c.sock.sendall(c.records(second_record))
        time.sleep(0.05)  # read before the third comes
        c.sock.sendall(c.records(third_record))
        for n in (2, 3, 4):
            status, body, left = _read_answer(c, left)
            assert status == b"HTTP/1.1 200 OK" and len(body) == n, (status, len(body))
    finally:
        c.close()
