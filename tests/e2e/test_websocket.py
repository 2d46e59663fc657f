"""WebSocket (HTTP/1.1 Upgrade) passes through the gateway to the backend and back."""
import base64
import os

import pytest
import requests
import websocket

from conftest import free_port, proxy_config
from rawhttp import Conn


@pytest.fixture
def proxy(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [app.address]), port)
    gw.app = app
    return gw


def test_websocket_echo_text_and_binary(proxy):
    ws = websocket.create_connection(f"ws://127.0.0.1:{proxy.port}/ws", timeout=5)
    try:
        for msg in ("hello", "", "ünïcode ✓", "x" * 200):
            ws.send(msg)
            assert ws.recv() == msg
        data = os.urandom(70_000)  # 64-bit length frame
        ws.send_binary(data)
        opcode, payload = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY
        assert payload == data
    finally:
        ws.close()


def test_websocket_many_messages_both_ways(proxy):
    ws = websocket.create_connection(f"ws://127.0.0.1:{proxy.port}/ws", timeout=5)
    try:
        for i in range(200):
            ws.send(f"m{i}")
        got = [ws.recv() for _ in range(200)]
        assert got == [f"m{i}" for i in range(200)]
    finally:
        ws.close()


def test_websocket_handshake_reaches_backend_intact(proxy):
    key = base64.b64encode(os.urandom(16)).decode()
    with Conn(proxy.port) as c:
        c.send(f"GET /ws HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response()
        assert r.status == 101
        assert (r.header("upgrade") or "").lower() == "websocket"
        assert "upgrade" in (r.header("connection") or "").lower()
        import hashlib
        expected = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert r.header("sec-websocket-accept") == expected
        # A masked text frame "ping" and its echo (unmasked, from the server).
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"ping"))
        c.send(b"\x81\x84" + mask + payload)
        assert c.read_exact(6) == b"\x81\x04ping"
    seen = proxy.app.requests_for("/ws")
    assert len(seen) == 1
    names = {n.lower(): v for n, v in seen[0]["headers"]}
    assert names.get("upgrade", "").lower() == "websocket"
    assert "upgrade" in names.get("connection", "").lower()
    assert names.get("sec-websocket-key") == key


def test_gateway_serves_other_requests_while_a_websocket_is_open(proxy):
    ws = websocket.create_connection(f"ws://127.0.0.1:{proxy.port}/ws", timeout=5)
    try:
        ws.send("one")
        assert ws.recv() == "one"
        assert requests.get(proxy.url + "/x", timeout=5).text == "hello from app"
        ws.send("two")
        assert ws.recv() == "two"
    finally:
        ws.close()


def test_websocket_close_handshake(proxy):
    ws = websocket.create_connection(f"ws://127.0.0.1:{proxy.port}/ws", timeout=5)
    ws.send("bye")
    assert ws.recv() == "bye"
    ws.close()  # sends a close frame; the backend answers one; no exception
    assert requests.get(proxy.url + "/x", timeout=5).status_code == 200


def test_idle_websocket_is_closed_after_the_tunnel_timeout(backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    gateway_factory(proxy_config(port, [app.address],
                    group_extra="    timeouts: {tunnel: 500ms}\n"), port)
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=5)
    try:
        ws.send("still here")
        assert ws.recv() == "still here"
        import time
        time.sleep(1.5)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError,
                            websocket.WebSocketTimeoutException, OSError)) as e:
            ws.send("late")
            ws.recv()
        assert not isinstance(e.value, websocket.WebSocketTimeoutException), \
            "the idle tunnel was still open after 3x the tunnel timeout"
    finally:
        ws.close()


def handshake(key):
    return (f"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def masked_text(text):
    mask = b"\x0a\x0b\x0c\x0d"
    data = text.encode()
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_frames_sent_right_behind_the_handshake_are_relayed(proxy):
    key = base64.b64encode(os.urandom(16)).decode()
    with Conn(proxy.port) as c:
        # The client does not wait for the 101 before its first frame.
        c.send(handshake(key) + masked_text("eager"))
        r = c.read_response()
        assert r.status == 101
        assert c.read_exact(7) == b"\x81\x05eager"


def test_refused_upgrade_stays_plain_http(proxy):
    key = base64.b64encode(os.urandom(16)).decode()
    with Conn(proxy.port) as c:
        # /x is not a WebSocket endpoint: the backend answers 200 and the connection must go
        # on as HTTP/1.1, not become a tunnel.
        c.send(handshake(key).replace(b"GET /ws ", b"GET /x "))
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello from app"
        c.send("GET /echo/after HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        import json
        assert json.loads(r.body)["target"] == "/echo/after"
