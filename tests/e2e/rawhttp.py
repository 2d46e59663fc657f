"""Raw-socket HTTP/1.1 helpers for the end-to-end tests: the requests library normalizes what
it sends (paths, header names, framing), so malformed input and framing checks go through
these instead. Nothing here is clever on purpose: it reads exactly what the gateway sent."""
import socket
import time


class Response:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # [(name, value)] in the order received
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers} body={self.body[:80]!r}>"


class ClosedError(Exception):
    """The peer closed the connection before a whole response arrived."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class Conn:
    """One client connection with a read buffer."""

    def __init__(self, port, timeout=10.0, rcvbuf=None, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return self._take(i + 2)
            if not self._fill():
                raise ClosedError("connection closed while reading a line", bytes(self.buf))

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ClosedError(f"connection closed after {len(self.buf)} of {n} bytes",
                                  bytes(self.buf))
        return self._take(n)

    def read_to_close(self, limit=None):
        while self._fill():
            if limit is not None and len(self.buf) > limit:
                break
        return self._take(len(self.buf))

    def read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                return self._take(i + 4)
            if not self._fill():
                raise ClosedError("connection closed before a response head", bytes(self.buf))

    def read_response(self, method="GET"):
        """Reads one response, honouring its framing (RFC 9112 §6.3)."""
        while True:
            raw_head = self.read_head()
            lines = raw_head.decode("latin-1").split("\r\n")
            version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
            status = int(status)
            headers = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers.append((name, value.strip()))
            resp = Response(status, reason, version, headers, b"", raw_head)
            if 100 <= status < 200 and status != 101:
                continue  # interim response
            break
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", f"unexpected response Transfer-Encoding {te!r}"
            resp.body = self.read_chunked()
        elif cl is not None:
            resp.body = self.read_exact(int(cl))
        else:
            resp.body = self.read_to_close()
        return resp

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.read_line()
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.read_line() != b"\r\n":
                    pass
                return bytes(body)
            body += self.read_exact(size)
            assert self.read_exact(2) == b"\r\n", "chunk data not followed by CRLF"

    def closed_by_peer(self, timeout=3.0):
        """True when the peer closes (EOF or reset) within timeout, with nothing more sent
        (anything sent before the close is kept in self.buf)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self._fill():
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
        return False


def exchange(port, data, method="GET", timeout=10.0):
    """Sends data on a new connection and reads one response."""
    with Conn(port, timeout) as c:
        c.send(data)
        return c.read_response(method)


def send_and_read_all(port, data, timeout=5.0):
    """Sends data, then reads everything until the peer closes (or timeout)."""
    with Conn(port, timeout) as c:
        c.send(data)
        out = bytearray()
        try:
            while True:
                chunk = c.sock.recv(1 << 16)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return bytes(out)


def status_of(raw):
    """The status code of the first response in raw bytes, or None."""
    if not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None
