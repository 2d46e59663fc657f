"""SIGTERM: stop accepting, let requests in flight finish (up to drain_timeout), exit 0."""
import signal
import socket
import threading
import time

import requests

from conftest import free_port, proxy_config
from early_signal import serve_and_signal_early
from rawhttp import Conn


def start(backend_factory, gateway_factory, drain="10s"):
    app = backend_factory("app")
    port = free_port()
    config = proxy_config(port, [app.address], server_extra=f"  drain_timeout: {drain}\n")
    return gateway_factory(config, port)


def in_flight(gw, path):
    """Starts a request in a thread; returns (thread, result dict)."""
    result = {}

    def run():
        try:
            r = requests.get(gw.url + path, timeout=20)
            result["status"], result["body"] = r.status_code, r.text
        except requests.RequestException as e:
            result["error"] = repr(e)

    t = threading.Thread(target=run)
    t.start()
    return t, result


def connect_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_lets_the_request_in_flight_finish(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory, drain="30s")
    t, result = in_flight(gw, "/slow/1500")
    time.sleep(0.3)
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # New connections are refused while the old request is still running.
    assert gw.proc.poll() is None, "exited before the request in flight finished"
    assert connect_refused(gw.port), "still accepting new connections after SIGTERM"
    t.join()
    assert result.get("status") == 200, result
    assert result["body"] == "slow"
    code = gw.proc.wait(timeout=10)
    assert code == 0
    # It exits once the last request is done, not at the end of the drain timeout (30 s);
    # the margin is wide because a loaded CI machine can stall any process for a second.
    assert time.monotonic() - t0 < 15


def test_sigterm_with_idle_gateway_exits_0_quickly(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory, drain="30s")
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
    t0 = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - t0 < 15, "waited for the drain timeout with nothing in flight"


def test_idle_keep_alive_connection_does_not_hold_up_shutdown(backend_factory, gateway_factory):
    # The drain timeout (30 s) is far above the bound checked: a connection that held up
    # the exit would keep the process alive until the drain timeout.
    gw = start(backend_factory, gateway_factory, drain="30s")
    with Conn(gw.port) as c:
        c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(timeout=40) == 0
        assert time.monotonic() - t0 < 15, "an idle keep-alive connection delayed the exit"
        assert c.closed_by_peer(2)


def test_response_in_flight_on_keep_alive_connection_says_close(backend_factory,
                                                                 gateway_factory):
    gw = start(backend_factory, gateway_factory)
    with Conn(gw.port) as c:
        c.send("GET /slow/1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)
        gw.proc.send_signal(signal.SIGTERM)
        r = c.read_response()
        assert r.status == 200 and r.body == b"slow"
        # Draining: the connection is not kept for another request.
        assert (r.header("connection") or "").lower() == "close" or c.closed_by_peer(2)
    assert gw.proc.wait(timeout=10) == 0


def test_drain_timeout_bounds_the_wait(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory, drain="1s")
    t, result = in_flight(gw, "/slow/15000")
    time.sleep(0.3)
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    code = gw.proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert code == 0
    assert 0.8 <= elapsed < 3, elapsed
    t.join()
    assert "status" not in result or result["status"] != 200, result


def test_several_requests_in_flight_all_finish(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory)
    flights = [in_flight(gw, f"/slow/{800 + 100 * i}") for i in range(6)]
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)
    for t, result in flights:
        t.join()
        assert result.get("status") == 200, result
    assert gw.proc.wait(timeout=10) == 0


def test_sigint_also_drains(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory)
    t, result = in_flight(gw, "/slow/800")
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGINT)
    t.join()
    assert result.get("status") == 200, result
    assert gw.proc.wait(timeout=10) == 0


def test_sigterm_with_an_open_websocket_exits_within_the_drain_timeout(backend_factory,
                                                                       gateway_factory):
    import websocket
    gw = start(backend_factory, gateway_factory, drain="1s")
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=5)
    try:
        ws.send("hi")
        assert ws.recv() == "hi"
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 3
    finally:
        ws.close()


def test_upload_in_flight_completes_after_sigterm(backend_factory, gateway_factory):
    gw = start(backend_factory, gateway_factory)
    n = 20 << 20
    with Conn(gw.port, timeout=10) as c:
        c.send(f"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n")
        c.sock.sendall(b"u" * (n // 2))
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        c.sock.sendall(b"u" * (n - n // 2))
        r = c.read_response()
        assert r.status == 200 and r.body == str(n).encode()
    assert gw.proc.wait(timeout=10) == 0


def test_signals_during_the_drain_neither_kill_it_nor_reload(backend_factory, gateway_factory):
    # Before, the first SIGHUP of a drain ended the reload handler and a second one killed
    # the process (SIGHUP's default action) in the middle of the requests it was finishing.
    gw = start(backend_factory, gateway_factory, drain="30s")
    t, result = in_flight(gw, "/slow/1500")
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    for sig in (signal.SIGHUP, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        gw.proc.send_signal(sig)
        time.sleep(0.05)
    t.join()
    assert result.get("status") == 200, result
    assert gw.proc.wait(timeout=10) == 0
    assert "SIGHUP: reloading" not in gw.log_text()


def test_sigterm_in_the_first_milliseconds_drains_and_exits_0(tmp_path):
    early = 0
    for delay in (0, 0.001, 0.005) * 2:
        port = free_port()
        proc, unarmed = serve_and_signal_early(tmp_path, port, signal.SIGTERM, delay)
        early += unarmed
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = (tmp_path / f"early-{port}.log").read_text(errors="replace")
        # -15 would be the default action: killed before the gateway could handle it.
        assert code == 0, f"SIGTERM {delay * 1000:.0f} ms into start-up: exit code {code}\n{log}"
        assert "draining" in log, log
    # The point of the test: some signals came before the gateway had its handler.
    assert early > 0, "every SIGTERM came after the gateway was ready: nothing was tested"
