"""A real HTTP/1.1 backend for end-to-end tests, with behaviours chosen by path:

  /health             200 "ok"
  /echo...            200, JSON of what it received (method, path, headers, body length)
  /status/N           status N
  /bytes/N            N bytes, Content-Length framed, streamed in 64 KiB pieces
  /chunked/N          N bytes, chunked
  /eof/N              N bytes, no length: ends when the connection closes
  /sink               reads the whole request body (any size) and answers its length
  /slow/MS            waits MS milliseconds before answering
  /garbage            answers bytes that are not HTTP
  /close-mid          promises 1000 bytes, sends 10, closes
  /close-early        closes without answering
  /ws                 WebSocket echo (RFC 6455 handshake, text/binary frames echoed)
  anything else       200 "hello from NAME"
"""
import argparse
import asyncio
import base64
import hashlib
import json

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
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


async def handle(reader, writer, name):
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            path = target.split("?", 1)[0]
            if path == "/ws" and (header(headers, "upgrade") or "").lower() == "websocket":
                await websocket(reader, writer, headers)
                return
            received = await read_body(reader, headers)
            parts = path.strip("/").split("/")
            if path == "/health":
                writer.write(response(200, b"ok"))
            elif parts[0] == "echo":
                body = json.dumps({"method": method, "target": target, "version": version,
                                   "headers": headers, "body_length": received,
                                   "backend": name}).encode()
                writer.write(response(200, body, [("Content-Type", "application/json")]))
            elif parts[0] == "status":
                writer.write(response(int(parts[1]), f"status {parts[1]} from {name}".encode(),
                                      reason="Custom"))
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
            elif parts[0] == "sink":
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
        try:
            writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="app")
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.name), "127.0.0.1",
                                        args.port, limit=1 << 20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
