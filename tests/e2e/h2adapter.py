"""A `requests` transport adapter that speaks HTTP/2 cleartext with prior knowledge (h2c).

It lets the end-to-end tests written with `requests` run unchanged over HTTP/2
(`pytest --protocol h2c`, see conftest.py):

- `H2C_PORTS` holds the ports of the gateways' plain-HTTP listeners. conftest's
  `Gateway.start()` adds them in h2c mode (and only then).
- `install(monkeypatch)` patches `requests.Session.get_adapter`: an `http://` URL whose port is
  in `H2C_PORTS` gets the session's `H2CAdapter` (created on first use and mounted under a
  prefix no URL has, so `Session.close()` closes it too); every other URL (backends, the admin
  API, webhook sinks) keeps requests' own HTTP/1.1 adapter. conftest calls it from an autouse
  fixture that is active in h2c mode only, so the patch is undone after each test.

What `send()` does, per request: takes the adapter's idle connection to that host and port (or
opens one and sends the connection preface), sends the request as one stream (`:authority` from the Host header or the URL; the fields HTTP/2 has no
place for, Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, Host and TE
other than "trailers", left out), the body with flow control (bytes, str, a file or any
iterable of bytes: a generator is sent piece by piece as it yields, nothing is buffered), and
returns as soon as the response's HEADERS arrived. The body is read lazily from the socket as
the caller reads (`stream=True`, `iter_content`, `raw.read`), with flow-control credit given
back only for what was read, so downloads are streamed, not buffered. Once the body has been
read whole the connection goes back to the adapter (one adapter per Session), so a Session's
requests share one connection as they do over HTTP/1.1 keep-alive (a worker's round robin
sees them all); a response closed before its end closes its connection. An idle connection
the server has closed or sent GOAWAY on is not reused; a request that finds its reused
connection gone before any answer is sent again once on a new one (only with a body that can
be sent twice), as urllib3 does.

The answer is a genuine `requests.Response` whose `raw` is a `urllib3.response.HTTPResponse`
over that lazy body, so Content-Encoding is decoded by urllib3 exactly as for HTTP/1.1, and
whose `raw._original_response.msg` is an `http.client.HTTPMessage` with every header field
(several Set-Cookie fields all reach the cookie jar). The reason phrase is the standard one
(HTTP/2 has none). Redirects are followed by requests itself. 1xx answers are skipped.

Failures map to what requests raises over HTTP/1.1: no connection -> ConnectionError
(ConnectTimeout on a connect timeout), no answer in time -> ReadTimeout, the connection closed
or the stream reset before the answer -> ConnectionError; a body cut by RST_STREAM or a close
raises urllib3's ProtocolError while it is read (requests turns it into ChunkedEncodingError),
and a read timeout within the body raises ReadTimeoutError (ConnectionError in requests)."""
import http.client
import io
import select
import socket
import threading
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import requests
import requests.adapters
import requests.exceptions
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict
from urllib3._collections import HTTPHeaderDict
from urllib3.response import HTTPResponse

from h2lib import whole_frames

H2C_PORTS = set()
_PORTS_LOCK = threading.Lock()

# Request fields that do not exist in HTTP/2 (RFC 9113 §8.2.2), or that become pseudo-fields.
_DROPPED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
            "host"}
_MOUNT = "h2c-adapter-internal://"  # a prefix no URL starts with: only there to be closed


def register_port(port):
    with _PORTS_LOCK:
        H2C_PORTS.add(int(port))


def unregister_port(port):
    with _PORTS_LOCK:
        H2C_PORTS.discard(int(port))


def _timeouts(timeout):
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    return connect, read


class _Conn:
    """One HTTP/2 connection, carrying one request stream at a time."""

    def __init__(self, host, port, connect_timeout):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.inbuf = bytearray()
        self.closed = False
        self.goaway = False
        self.key = (host, port)
        self.start_stream()
        self.flush()

    def start_stream(self):
        self.sid = None
        self.headers = None          # [(bytes, bytes)] of the final answer
        self.data = bytearray()      # body received and not yet read by the caller
        self.ended = False
        self.reset = None            # error code of a RST_STREAM, or "GOAWAY ..." text

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def pump(self, timeout):
        """Reads once (up to timeout seconds) and handles the frames. Raises socket.timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            raise
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbuf += data
        for one in whole_frames(self.inbuf):  # one at a time: see h2lib.whole_frames
            for ev in self.conn.receive_data(one):
                self._handle(ev)
        try:
            self.flush()
        except OSError:
            self.close()

    def _handle(self, ev):
        if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == self.sid:
            self.headers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == self.sid:
            self.data += ev.data
            # Credit for the data itself is given back as the caller reads it; padding now.
            self.give_credit(ev.flow_controlled_length - len(ev.data))
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == self.sid:
            self.ended = True
        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == self.sid:
            self.reset = f"RST_STREAM {ev.error_code!r}"
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = True
            if self.sid is not None and not self.ended and (
                    ev.last_stream_id is None or ev.last_stream_id < self.sid):
                self.reset = f"GOAWAY {ev.error_code!r} last_stream_id={ev.last_stream_id}"
            self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def reusable(self):
        """An idle connection still open, with no GOAWAY and nothing pending from the server."""
        if self.closed or self.goaway:
            return False
        try:
            while select.select([self.sock], [], [], 0)[0]:
                self.pump(0.05)
                if self.closed or self.goaway:
                    return False
        except (OSError, h2.exceptions.ProtocolError):
            self.close()
            return False
        return True

    @property
    def finished(self):
        return self.ended or self.reset is not None or self.closed

    def give_credit(self, n):
        """Flow-control credit back for n bytes the caller has read."""
        if n > 0 and not self.closed:  # the connection's window too, after the stream ended
            try:
                self.conn.acknowledge_received_data(n, self.sid)
                self.flush()
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, OSError):
                pass

    def send_request(self, fields, body, end_stream, read_timeout):
        self.sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.sid, fields, end_stream=end_stream)
        self.flush()
        if body is None:
            return  # END_STREAM went with the HEADERS
        self._send_body(body, read_timeout)
        if not self.finished:
            self.conn.end_stream(self.sid)
            self.flush()
        elif self.ended and self.reset is None and not self.closed:
            # Answered before the body was all sent: the rest is not wanted (RFC 9113 §8.1);
            # the stream is closed so that the connection can serve the next request.
            self.conn.reset_stream(self.sid, h2.errors.ErrorCodes.NO_ERROR)
            self.flush()

    def _send_body(self, body, read_timeout):
        for piece in body:
            if isinstance(piece, str):
                piece = piece.encode("utf-8")
            view = memoryview(piece)
            while len(view):
                if self.finished:
                    return  # answered or refused before the body was all sent
                window = min(self.conn.local_flow_control_window(self.sid),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    self.pump(read_timeout)
                    continue
                k = min(window, len(view))
                self.conn.send_data(self.sid, view[:k].tobytes())
                self.flush()
                view = view[k:]
            # Answers that come early (413, an error page) are seen while the body is sent.
            if select.select([self.sock], [], [], 0)[0]:
                self.pump(read_timeout)


class _Body(io.RawIOBase):
    """The answer's body, read from the connection as the caller asks for it."""

    def __init__(self, conn, read_timeout, release):
        self.c = conn
        self.read_timeout = read_timeout
        self.release = release  # called once with the connection when the body was read whole
        self.done = False       # read whole: the connection may already carry another stream

    def readable(self):
        return True

    def readinto(self, b):
        c = self.c
        if self.done:
            return 0
        while not c.data:
            if c.ended:
                self.done = True
                if self.release is not None:
                    release, self.release = self.release, None
                    release(c)
                return 0
            if c.reset is not None or c.closed:
                raise urllib3.exceptions.ProtocolError(
                    f"HTTP/2 body cut: {c.reset or 'connection closed'}")
            try:
                c.pump(self.read_timeout)
            except socket.timeout:
                raise urllib3.exceptions.ReadTimeoutError(
                    None, None, f"Read timed out. (read timeout={self.read_timeout})")
            except h2.exceptions.ProtocolError as e:
                c.close()
                raise urllib3.exceptions.ProtocolError(f"HTTP/2 protocol error: {e!r}")
        n = min(len(b), len(c.data))
        b[:n] = c.data[:n]
        del c.data[:n]
        c.give_credit(n)
        return n

    def close(self):
        if self.release is not None:  # not read to its end: the connection cannot be reused
            self.release = None
            self.c.close()
        super().close()


class _Original:
    """What requests reads from `raw._original_response`: `.msg` (cookies) and friends."""

    def __init__(self, status, reason, msg):
        self.status, self.reason, self.msg, self.version = status, reason, msg, 20
        self.headers = msg

    def isclosed(self):
        return True

    def close(self):
        pass


def _body_pieces(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return [bytes(body)] if len(body) else None
    if isinstance(body, str):
        return [body.encode("utf-8")] if body else None
    if hasattr(body, "read"):
        def chunks():
            while True:
                piece = body.read(1 << 16)
                if not piece:
                    return
                yield piece
        return chunks()
    return iter(body)


class H2CAdapter(requests.adapters.BaseAdapter):
    """requests' transport over h2c prior knowledge (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.idle = {}      # (host, port) -> [connections]
        self.lock = threading.Lock()

    def _checkout(self, host, port, connect_timeout):
        """(connection, reused)."""
        while True:
            with self.lock:
                pool = self.idle.get((host, port), [])
                c = pool.pop() if pool else None
            if c is None:
                break
            if c.reusable():
                c.start_stream()
                return c, True
            c.close()
        return _Conn(host, port, connect_timeout), False

    def _release(self, c):
        with self.lock:
            if not c.closed and not c.goaway:
                self.idle.setdefault(c.key, []).append(c)
                return
        c.close()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        host, port = url.hostname, url.port or 80
        connect_timeout, read_timeout = _timeouts(timeout)
        replayable = request.body is None or isinstance(request.body, (bytes, str))
        for attempt in (1, 2):
            try:
                c, reused = self._checkout(host, port, connect_timeout)
            except socket.timeout as e:
                raise requests.exceptions.ConnectTimeout(e, request=request)
            except OSError as e:
                raise requests.exceptions.ConnectionError(e, request=request)
            try:
                return self._exchange(c, request, url, stream, read_timeout)
            except requests.exceptions.ConnectionError:
                c.close()
                # A reused connection the server let go of before it answered: once more.
                # (GOAWAY below this stream's id: not processed, RFC 9113 §6.8.)
                if not (reused and replayable and attempt == 1 and c.headers is None
                        and (c.closed or (c.reset or "").startswith("GOAWAY"))):
                    raise
            except BaseException:
                c.close()
                raise

    def _exchange(self, c, request, url, stream, read_timeout):
        headers = CaseInsensitiveDict(request.headers)
        authority = headers.get("Host") or url.netloc
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        fields = [(":method", request.method), (":scheme", "http"), (":authority", authority),
                  (":path", path)]
        for name, value in headers.items():
            lname = name.lower()
            if lname in _DROPPED or lname == "te" and value.lower() != "trailers":
                continue
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            fields.append((lname, value))
        fields = [(n.encode("latin-1") if isinstance(n, str) else n,
                   v.encode("latin-1") if isinstance(v, str) else v) for n, v in fields]
        pieces = _body_pieces(request.body)
        try:
            c.send_request(fields, pieces, pieces is None, read_timeout)
            while c.headers is None:
                if c.reset is not None or c.closed:
                    raise requests.exceptions.ConnectionError(
                        f"HTTP/2 stream ended before an answer: {c.reset or 'connection closed'}",
                        request=request)
                c.pump(read_timeout)
        except socket.timeout as e:
            raise requests.exceptions.ReadTimeout(
                f"Read timed out. (read timeout={read_timeout}) {e}", request=request)
        except h2.exceptions.ProtocolError as e:
            raise requests.exceptions.ConnectionError(f"HTTP/2 protocol error: {e!r}",
                                                      request=request)
        except OSError as e:
            c.close()
            raise requests.exceptions.ConnectionError(e, request=request)
        return self.build_response(request, c, read_timeout, stream)

    def build_response(self, request, c, read_timeout, stream):
        status = None
        msg = http.client.HTTPMessage()
        hdict = HTTPHeaderDict()
        for name, value in c.headers:
            name, value = name.decode("latin-1"), value.decode("latin-1")
            if name == ":status":
                status = int(value)
            elif not name.startswith(":"):
                msg[name] = value  # HTTPMessage keeps every occurrence (Set-Cookie...)
                hdict.add(name, value)
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        original = _Original(status, reason, msg)
        raw = HTTPResponse(body=io.BufferedReader(_Body(c, read_timeout, self._release), 1 << 16),
                           headers=hdict, status=status, reason=reason, version=20,
                           preload_content=False, decode_content=False,
                           original_response=original, request_method=request.method,
                           request_url=request.url)
        r = requests.Response()
        r.status_code = status
        # Several fields of one name are joined as http.client does it for HTTP/1.1.
        r.headers = CaseInsensitiveDict()
        for name in hdict.keys():
            r.headers[name] = ", ".join(hdict.getlist(name))
        r.encoding = requests.utils.get_encoding_from_headers(r.headers)
        r.raw = raw
        r.reason = reason
        r.url = request.url
        r.request = request
        r.connection = self
        requests.cookies.extract_cookies_to_jar(r.cookies, request, raw)
        if not stream:
            r.content  # noqa: B018  (read now, as HTTPAdapter does, and free the connection)
        return r

    def close(self):
        # Only the idle ones, as urllib3's pool does: a response being read (stream=True,
        # requests.get() closes its Session before returning) keeps its connection.
        with self.lock:
            conns = [c for pool in self.idle.values() for c in pool]
            self.idle = {}
        for c in conns:
            c.close()


def _h2c_url(url):
    parts = urlsplit(url)
    try:
        return parts.scheme == "http" and (parts.port or 80) in H2C_PORTS
    except ValueError:
        return False


def install(monkeypatch):
    """Routes requests to the registered gateway ports through H2CAdapter until the test ends."""
    original = requests.Session.get_adapter

    def get_adapter(self, url):
        if _h2c_url(url):
            adapter = self.adapters.get(_MOUNT)
            if adapter is None:
                adapter = H2CAdapter()
                self.adapters[_MOUNT] = adapter
            return adapter
        return original(self, url)

    monkeypatch.setattr(requests.Session, "get_adapter", get_adapter)
