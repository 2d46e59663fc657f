"""HTTP/2 clients for the end-to-end tests.

Two on purpose:

- `H2Client`: a well-behaved client on python3-h2 (flow control, HPACK, settings), for
  requests, multiplexing, uploads and downloads, GOAWAY on shutdown and reload;
- `RawH2`: frames written by hand with struct.pack and read back one by one, for everything a
  correct client library refuses to send (DATA on stream 0, oversized frames, uppercase header
  names, connection-specific headers, even stream ids...). Its header blocks are HPACK literals
  "without indexing" (RFC 7541 §6.2.2) so they never change the server's dynamic table; what
  the server sends is decoded with hpack.Decoder to keep the decoder state right.

Both speak h2c (plain socket, prior knowledge) or h2 over TLS with ALPN ["h2"]."""
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# Flags
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
# Error codes (RFC 9113 §7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
# Settings ids
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade")


def whole_frames(inbuf):
    """Takes the complete frames off the front of the bytearray inbuf, one at a time.

    A client feeds python-h2 one frame at a time: python-h2 moves the whole connection to
    CLOSED when a GOAWAY arrives and then refuses the frames of streams still in flight, which
    a graceful GOAWAY (RFC 9113 §6.8) lets the server finish."""
    while len(inbuf) >= 9:
        end = 9 + int.from_bytes(inbuf[:3], "big")
        if len(inbuf) < end:
            return
        one = bytes(inbuf[:end])
        del inbuf[:end]
        yield one


def tls_context(cafile=None, alpn=("h2",)):
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def connect(port, tls=None, server_name=None, timeout=10.0):
    """A socket to 127.0.0.1:port; with tls (an SSLContext) wrapped, SNI server_name."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=server_name)
    return sock


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None      # [(name, value)] of the final response, str
        self.informational = []  # 1xx heads
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None        # error code of a RST_STREAM from the server
        self.done_at = None      # time.monotonic() when it ended or was reset

    @property
    def finished(self):
        return self.ended or self.reset is not None

    @property
    def status(self):
        return int(self.header(":status")) if self.headers is not None else None

    def header(self, name):
        for n, v in self.headers or []:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers or [] if n == name]

    @property
    def body(self):
        return bytes(self.data)

    def __repr__(self):
        return (f"<Stream {self.sid} status={self.status} reset={self.reset} ended={self.ended} "
                f"headers={self.headers} body={bytes(self.data[:120])!r}>")


class H2Client:
    """python3-h2 over a socket. `scheme` is what :scheme says ("https" over TLS)."""

    def __init__(self, port, tls=None, server_name=None, authority=None, timeout=10.0,
                 validate_inbound=True, auto_ack=True, settings=None):
        self.sock = connect(port, tls, server_name, timeout)
        if tls is not None:
            assert self.sock.selected_alpn_protocol() == "h2", \
                f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2"
        self.scheme = "https" if tls is not None else "http"
        self.authority = authority or (f"{server_name}:{port}" if server_name else f"127.0.0.1:{port}")
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_inbound_headers=validate_inbound)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaways = []        # [(error_code, last_stream_id, additional_data)]
        self.remote_settings = {}
        self.closed = False      # the server closed the TCP connection
        self.auto_ack = auto_ack  # give flow-control credit back as data arrives
        self.events = []
        self.unacked = 0         # flow-controlled bytes received and not acknowledged
        self.inbuf = bytearray()
        self.flush()

    # --- plumbing ---------------------------------------------------------------------------

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pump(self, timeout=1.0):
        """Reads once (up to timeout) and handles what arrived. False on timeout or EOF."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        # One frame at a time (whole_frames says why); after a GOAWAY the state is put back.
        self.inbuf += data
        for one in whole_frames(self.inbuf):
            try:
                events = self.conn.receive_data(one)
            except h2.exceptions.ProtocolError as e:
                raise AssertionError(f"the server broke the HTTP/2 protocol: {e!r}") from e
            for ev in events:
                self._handle(ev)
                if isinstance(ev, h2.events.ConnectionTerminated):
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def _stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def _handle(self, ev):
        self.events.append(type(ev).__name__)
        if isinstance(ev, h2.events.ResponseReceived):
            self._stream(ev.stream_id).headers = list(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self._stream(ev.stream_id).informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived):
            self._stream(ev.stream_id).trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self._stream(ev.stream_id).data += ev.data
            if self.auto_ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            else:
                self.unacked += ev.flow_controlled_length
        elif isinstance(ev, h2.events.StreamEnded):
            s = self._stream(ev.stream_id)
            s.ended, s.done_at = True, time.monotonic()
        elif isinstance(ev, h2.events.StreamReset):
            s = self._stream(ev.stream_id)
            if ev.remote_reset:
                s.reset, s.done_at = int(ev.error_code), time.monotonic()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaways.append((int(ev.error_code), ev.last_stream_id, ev.additional_data))
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value

    def wait(self, predicate, timeout=10.0):
        """Pumps until predicate() holds (True), the connection closes or timeout (False)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self.pump(min(left, 0.5)) and self.closed:
                return predicate()
        return True

    def wait_settings(self, timeout=10.0):
        assert self.wait(lambda: bool(self.remote_settings) or
                         "RemoteSettingsChanged" in self.events, timeout), "no SETTINGS from the server"
        return self.remote_settings

    # --- requests ---------------------------------------------------------------------------

    def request(self, path="/", method="GET", headers=(), body=None, end_stream=True,
                authority=None):
        """Opens a stream; body (bytes) is sent with flow control. Returns the stream id."""
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", self.scheme),
                  (":authority", authority or self.authority), (":path", path)]
        fields += [(n.lower(), v) for n, v in headers]
        self._stream(sid)
        self.conn.send_headers(sid, fields, end_stream=end_stream and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end_stream=end_stream)
        return sid

    def send_body(self, sid, data, end_stream=True, timeout=30.0):
        """Sends data (bytes, or an iterable of bytes) on sid, waiting for window updates."""
        pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        deadline = time.monotonic() + timeout
        for piece in pieces:
            view = memoryview(piece)
            while len(view):
                window = min(self.conn.local_flow_control_window(sid),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    if self.streams[sid].finished:
                        return False  # answered or reset before the body was all sent
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no flow-control credit for {timeout}s on stream {sid}")
                    if not self.pump(0.5) and self.closed:
                        return False
                    continue
                k = min(window, len(view))
                self.conn.send_data(sid, view[:k].tobytes())
                view = view[k:]
                self.flush()
                deadline = time.monotonic() + timeout
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()
        return True

    def response(self, sid, timeout=15.0):
        """Waits for stream sid to end (or be reset); returns its Stream."""
        self.wait(lambda: self.streams[sid].finished, timeout)
        return self.streams[sid]

    def get(self, path="/", headers=(), timeout=15.0, **kw):
        return self.response(self.request(path, headers=headers, **kw), timeout)


def one_by_one(port, *reqs, timeout=15.0):
    """Sends reqs on one h2c connection, each after the answer to the one before: tuples
    (method, path[, headers[, body]]). Returns their Streams, every one answered (ended or
    reset); an answer to HEAD must have ended without content (RFC 9110 §9.3.2)."""
    out = []
    with H2Client(port) as c:
        for method, path, *rest in reqs:
            headers, body = (*rest, *((), None)[len(rest):])
            s = c.response(c.request(path, method=method, headers=headers, body=body), timeout)
            assert s.finished, f"no answer to {method} {path} in {timeout}s: {s}"
            if method == "HEAD":
                assert s.ended and s.reset is None and s.body == b"", f"HEAD {path}: {s}"
            out.append(s)
    return out


class Frame:
    def __init__(self, type, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = type, flags, sid, payload

    @property
    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack("!I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack("!I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self):
        return struct.unpack("!I", self.payload[:4])[0] & 0x7FFFFFFF

    def __repr__(self):
        names = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
                 "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
        name = names[self.type] if self.type < len(names) else f"type{self.type}"
        extra = f" error={self.error_code}" if self.error_code is not None else ""
        if self.type == GOAWAY:
            extra += f" last={self.last_stream_id} debug={self.payload[8:]!r}"
        return f"<{name} flags={self.flags:#x} sid={self.sid} len={len(self.payload)}{extra}>"


def frame(type, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + struct.pack("!BBI", type, flags, sid) + payload


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack("!HI", k, v) for k, v in pairs))


def _hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal_block(fields):
    """A header block of literals without indexing, new names, no Huffman: exactly the bytes
    given (uppercase and all), and no change to the peer's dynamic table."""
    out = bytearray()
    for name, value in fields:
        n = name.encode("latin-1") if isinstance(name, str) else name
        v = value.encode("latin-1") if isinstance(value, str) else value
        out += b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v
    return bytes(out)


def request_fields(path="/", method="GET", authority="127.0.0.1", scheme="http", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path)] + list(extra)


class RawH2:
    """Frames by hand. With preface=True the connection preface and an empty SETTINGS go out
    at once; `handshake()` then reads the server's SETTINGS and acknowledges them."""

    def __init__(self, port, tls=None, server_name=None, timeout=10.0, preface=True):
        self.sock = connect(port, tls, server_name, timeout)
        if tls is not None:
            assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.scheme = "https" if tls is not None else "http"
        self.buf = bytearray()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.frames = []          # every frame received
        self.streams = {}         # sid -> Stream
        self.goaways = []         # GOAWAY frames
        self.server_settings = {}
        self.closed = False
        self._block = None        # (sid, bytes) of a header block awaiting CONTINUATION
        self.give_credit = True   # WINDOW_UPDATE for every DATA received (off: the window runs dry)
        if preface:
            self.send(PREFACE + settings_frame())

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
        self.sock.sendall(data)

    def send_frame(self, type, flags, sid, payload=b""):
        self.send(frame(type, flags, sid, payload))

    def headers(self, sid, fields, end_stream=True, max_frame=16384):
        """HEADERS (+ CONTINUATION when the block is longer than max_frame)."""
        block = literal_block(fields)
        first, rest = block[:max_frame], block[max_frame:]
        flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
        out = frame(HEADERS, flags, sid, first)
        while rest:
            piece, rest = rest[:max_frame], rest[max_frame:]
            out += frame(CONTINUATION, 0 if rest else END_HEADERS, sid, piece)
        self.streams.setdefault(sid, Stream(sid))
        self.send(out)

    def data(self, sid, payload, end_stream=False):
        self.send_frame(DATA, END_STREAM if end_stream else 0, sid, payload)

    def _fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(1 << 16)
        except (socket.timeout, ssl.SSLWantReadError):
            return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def read_frame(self, timeout=10.0):
        """The next frame, None on timeout, False when the connection is closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    type_, flags, sid = struct.unpack("!BBI", self.buf[3:9])
                    payload = bytes(self.buf[9:9 + length])
                    del self.buf[:9 + length]
                    f = Frame(type_, flags, sid & 0x7FFFFFFF, payload)
                    self._handle(f)
                    return f
            if self.closed:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            got = self._fill(left)
            if got is None:
                return None

    def _handle(self, f):
        self.frames.append(f)
        if f.type == SETTINGS and not f.flags & ACK:
            for i in range(0, len(f.payload) - 5, 6):
                k, v = struct.unpack("!HI", f.payload[i:i + 6])
                self.server_settings[k] = v
            try:
                self.send(settings_frame(ack=True))
            except OSError:
                pass
        elif f.type == PING and not f.flags & ACK:
            try:
                self.send(frame(PING, ACK, 0, f.payload))
            except OSError:
                pass
        elif f.type == GOAWAY:
            self.goaways.append(f)
        elif f.type == RST_STREAM:
            s = self.streams.setdefault(f.sid, Stream(f.sid))
            s.reset, s.done_at = f.error_code, time.monotonic()
        elif f.type in (HEADERS, CONTINUATION):
            payload = f.payload
            if f.type == HEADERS:
                if f.flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if f.flags & PRIORITY_FLAG:
                    payload = payload[5:]
                self._block = (f.sid, payload, f.flags & END_STREAM)
            else:
                sid, block, es = self._block
                self._block = (sid, block + payload, es)
            if f.flags & END_HEADERS:
                sid, block, es = self._block
                self._block = None
                fields = [(n.decode() if isinstance(n, bytes) else n,
                           v.decode("latin-1") if isinstance(v, bytes) else v)
                          for n, v in self.decoder.decode(block, raw=True)]
                s = self.streams.setdefault(sid, Stream(sid))
                status = dict(fields).get(":status", "")
                if s.headers is None and status.startswith("1"):
                    s.informational.append(fields)
                elif s.headers is None:
                    s.headers = fields
                else:
                    s.trailers = fields
                if es:
                    s.ended, s.done_at = True, time.monotonic()
        elif f.type == DATA:
            s = self.streams.setdefault(f.sid, Stream(f.sid))
            payload = f.payload
            if f.flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            s.data += payload
            if f.payload and self.give_credit:  # so that bigger answers are not stalled
                try:
                    self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", len(f.payload))) +
                              frame(WINDOW_UPDATE, 0, f.sid, struct.pack("!I", len(f.payload))))
                except OSError:
                    pass
            if f.flags & END_STREAM:
                s.ended, s.done_at = True, time.monotonic()

    def handshake(self, timeout=10.0):
        """Reads until the server's SETTINGS (acknowledged on arrival); returns them."""
        deadline = time.monotonic() + timeout
        while not any(f.type == SETTINGS and not f.flags & ACK for f in self.frames):
            f = self.read_frame(deadline - time.monotonic())
            if not f:
                raise AssertionError(f"no SETTINGS from the server; got {self.frames}")
        return self.server_settings

    def until(self, predicate, timeout=10.0):
        """Reads frames until predicate(self) holds (True), or timeout / close (False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            f = self.read_frame(deadline - time.monotonic())
            if not f:
                return predicate(self)
        return True

    def read_until_closed(self, timeout=10.0):
        """Reads (and handles) everything until the server closes: True, or False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(deadline - time.monotonic())
            if f is False:
                return True
            if f is None:
                return False

    def stream(self, sid):
        return self.streams.setdefault(sid, Stream(sid))
