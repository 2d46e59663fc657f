"""A real HTTP/1.1 backend for end-to-end tests, with behaviours chosen by path:

  /health             200 "ok"
  /echo...            200, JSON of what it received (method, path, headers, body length)
  /status/N           status N
  /status/N/SIZE      status N with a SIZE-byte body ("x" * SIZE)
  /bytes/N            N bytes, Content-Length framed, streamed in 64 KiB pieces
  /chunked/N          N bytes, chunked
  /eof/N              N bytes, no length: ends when the connection closes
  /sink               reads the whole request body (any size) and answers its length
  /sink-after/MS      like /sink, but waits MS milliseconds before reading the body
  /slow/MS            waits MS milliseconds before answering
  /garbage            answers bytes that are not HTTP
  /close-mid          promises 1000 bytes, sends 10, closes
  /close-early        closes without answering
  /ws                 WebSocket echo (RFC 6455 handshake, text/binary frames echoed)
  /hop                200 with hop-by-hop response headers (Connection: X-Resp-Hop, Keep-Alive)
  /stall-body/N       promises N bytes, sends half, then stalls for a minute
  /drip/N/MS          N chunks of "drip\n", chunked, one every MS milliseconds
  /reset              resets the connection (RST) without answering
  /then-408/MS        200 "hello from NAME", then MS milliseconds later, whatever came meanwhile,
                      "408 Request Timeout" and close (how some servers end an idle keep-alive)
  /raw/NAME           a canned, possibly malformed response from RAW below, then close
  /stats              JSON counters: connections and requests seen (not counting /stats and
                      /admin requests), and the last requests (method, target, headers, body)
  /admin/health/fail  from now on /health answers 503 (/admin/health/ok: 200 again)
  anything else       200 "hello from NAME"

Every response built by response() carries "X-Backend: NAME". With --delay MS every
request except /health, /stats and /admin/* waits MS milliseconds before it is answered; with
--reset every such request is answered by a connection reset. /status/N for N = 1xx, 204 and
304 sends no body. /stats also counts the connections open right now ("open"; again not counting connections
that only carried /stats or /admin requests).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import socket
import struct

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NAME = "app"
DELAY_MS = 0
RESET = False
RAW = {
    # Both framings: Transfer-Encoding wins (RFC 9112 §6.3); the body is "hello".
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n",
    # Chunked, then the connection closes before the last chunk: a truncated body.
    "chunked-cut": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    # A head promising a body, then the connection closes before any body byte.
    "head-only": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    "chunked-head-only": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi",
    "bad-header": b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nhi",
    "nul-header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi",
    "early-hints": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
    "http10": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style body",
    # Error statuses with a chunked and a close-delimited body.
    "500-chunked": b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"b\r\nupstream500\r\n0\r\n\r\n",
    "500-eof": b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nupstream500 until close",
}
STATE = {"connections": 0, "open": 0, "requests": 0, "health_ok": True, "log": []}
LOG_KEEP = 2000


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, version, headers


def header(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


async def read_body(reader, headers):
    """Reads the request body; returns its length (streaming, not kept)."""
    total = 0
    if (header(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return total
            remaining = size
            while remaining:
                data = await reader.read(min(remaining, 1 << 16))
                if not data:
                    raise ConnectionError("body cut short")
                remaining -= len(data)
                total += len(data)
            await reader.readexactly(2)
    length = int(header(headers, "content-length") or 0)
    while total < length:
        data = await reader.read(min(length - total, 1 << 16))
        if not data:
            raise ConnectionError("body cut short")
        total += len(data)
    return total


def response(status, body=b"", headers=(), reason="OK"):
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
            f"X-Backend: {NAME}\r\n")
    for n, v in headers:
        head += f"{n}: {v}\r\n"
    return head.encode() + b"\r\n" + body


async def send_bytes(writer, n, piece=1 << 16):
    block = b"x" * piece
    while n > 0:
        k = min(n, piece)
        writer.write(block[:k])
        await writer.drain()
        n -= k


async def websocket(reader, writer, headers):
    key = header(headers, "sec-websocket-key")
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    await writer.drain()
    while True:
        b1, b2 = await reader.readexactly(2)
        opcode, masked, length = b1 & 0x0F, b2 & 0x80, b2 & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        mask = await reader.readexactly(4) if masked else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(length)))
        if opcode == 8:
            writer.write(b"\x88\x00")
            await writer.drain()
            return
        frame = bytes([0x80 | opcode])
        if len(data) < 126:
            frame += bytes([len(data)])
        elif len(data) < 65536:
            frame += bytes([126]) + len(data).to_bytes(2, "big")
        else:
            frame += bytes([127]) + len(data).to_bytes(8, "big")
        writer.write(frame + data)
        await writer.drain()


class HeadWriter:
    """For a HEAD request: passes the response head through and drops the body."""

    def __init__(self, writer):
        self.writer = writer
        self.head = bytearray()
        self.done = False

    def write(self, data):
        if self.done:
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end >= 0:
            self.writer.write(bytes(self.head[:end + 4]))
            self.done = True

    async def drain(self):
        await self.writer.drain()

    def close(self):
        self.writer.close()


def reset(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def handle(reader, writer, name):
    conn_id = None
    real_writer = writer
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            writer = HeadWriter(real_writer) if method == "HEAD" else real_writer
            path = target.split("?", 1)[0]
            control = path == "/stats" or path.startswith("/admin/")
            if not control:
                if conn_id is None:
                    STATE["connections"] += 1
                    STATE["open"] += 1
                    conn_id = STATE["connections"]
                STATE["requests"] += 1
                entry = {"method": method, "target": target, "version": version,
                         "headers": headers, "conn": conn_id, "body_length": None}
                STATE["log"].append(entry)
                del STATE["log"][:-LOG_KEEP]
            if path == "/ws" and (header(headers, "upgrade") or "").lower() == "websocket":
                await websocket(reader, writer, headers)
                return
            if path.startswith("/sink-after/"):
                await asyncio.sleep(int(path.split("/")[2]) / 1000)
            received = await read_body(reader, headers)
            if not control:
                entry["body_length"] = received
                if DELAY_MS and path != "/health":
                    await asyncio.sleep(DELAY_MS / 1000)
                if (RESET and path != "/health") or path == "/reset":
                    reset(real_writer)
                    return
            parts = path.strip("/").split("/")
            if path == "/stats":
                body = json.dumps({k: STATE[k] for k in ("connections", "open", "requests", "log")})
                writer.write(response(200, body.encode(), [("Content-Type", "application/json")]))
            elif path == "/admin/health/fail":
                STATE["health_ok"] = False
                writer.write(response(200, b"health now fails"))
            elif path == "/admin/health/ok":
                STATE["health_ok"] = True
                writer.write(response(200, b"health now ok"))
            elif path == "/health":
                if STATE["health_ok"]:
                    writer.write(response(200, b"ok"))
                else:
                    writer.write(response(503, b"unhealthy", reason="Service Unavailable"))
            elif parts[0] == "raw":
                writer.write(RAW[parts[1]])
                await writer.drain()
                writer.close()
                return
            elif parts[0] == "hop":
                writer.write(response(200, b"hop", [("Connection", "X-Resp-Hop, Keep-Alive"),
                                                    ("X-Resp-Hop", "secret"),
                                                    ("Keep-Alive", "timeout=5"),
                                                    ("X-End-To-End", "yes")]))
            elif parts[0] == "stall-body":
                n = int(parts[1])
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
                writer.write(b"s" * (n // 2))
                await writer.drain()
                await asyncio.sleep(60)
                return
            elif parts[0] == "echo":
                body = json.dumps({"method": method, "target": target, "version": version,
                                   "headers": headers, "body_length": received,
                                   "backend": name, "conn": conn_id}).encode()
                writer.write(response(200, body, [("Content-Type", "application/json")]))
            elif parts[0] == "status":
                code = int(parts[1])
                if code < 200 or code in (204, 304):
                    writer.write(f"HTTP/1.1 {code} Custom\r\nX-Backend: {NAME}\r\n\r\n".encode())
                elif len(parts) > 2:  # /status/N/SIZE: a SIZE-byte body
                    writer.write(f"HTTP/1.1 {code} Custom\r\nContent-Length: {parts[2]}\r\n"
                                 f"X-Backend: {NAME}\r\n\r\n".encode())
                    await send_bytes(writer, int(parts[2]))
                else:
                    writer.write(response(code, f"status {code} from {name}".encode(),
                                          reason="Custom"))
            elif parts[0] == "drip":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(int(parts[1])):
                    writer.write(b"5\r\ndrip\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(int(parts[2]) / 1000)
                writer.write(b"0\r\n\r\n")
            elif parts[0] == "bytes":
                n = int(parts[1])
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
                await send_bytes(writer, n)
            elif parts[0] == "chunked":
                n = int(parts[1])
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while n > 0:
                    k = min(n, 4000)
                    writer.write(f"{k:x}\r\n".encode() + b"y" * k + b"\r\n")
                    await writer.drain()
                    n -= k
                writer.write(b"0\r\n\r\n")
            elif parts[0] == "eof":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                await send_bytes(writer, int(parts[1]))
                await writer.drain()
                writer.close()
                return
            elif parts[0] in ("sink", "sink-after"):
                writer.write(response(200, str(received).encode()))
            elif parts[0] == "slow":
                await asyncio.sleep(int(parts[1]) / 1000)
                writer.write(response(200, b"slow"))
            elif parts[0] == "garbage":
                writer.write(b"this is not http\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            elif parts[0] == "close-mid":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                await writer.drain()
                writer.close()
                return
            elif parts[0] == "close-early":
                writer.close()
                return
            elif parts[0] == "then-408":
                writer.write(response(200, f"hello from {name}".encode(),
                                      [("Content-Type", "text/plain")]))
                await writer.drain()
                await asyncio.sleep(int(parts[1]) / 1000)
                writer.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                             b"Content-Length: 0\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(response(200, f"hello from {name}".encode(),
                                      [("Content-Type", "text/plain")]))
            await writer.drain()
            if (header(headers, "connection") or "").lower() == "close":
                writer.close()
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if conn_id is not None:
            STATE["open"] -= 1
        try:
            real_writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="app")
    parser.add_argument("--delay", type=int, default=0, help="ms to wait before each answer")
    parser.add_argument("--reset", action="store_true", help="reset every connection")
    parser.add_argument("--cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--key", help="PEM key of --cert")
    parser.add_argument("--client-ca", help="require a client certificate signed by this CA")
    args = parser.parse_args()
    global NAME, DELAY_MS, RESET
    NAME, DELAY_MS, RESET = args.name, args.delay, args.reset
    tls = None
    if args.cert:
        import ssl
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(args.client_ca)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.name), "127.0.0.1",
                                        args.port, limit=1 << 20, backlog=1024, ssl=tls)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
