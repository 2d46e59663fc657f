"""Fixtures for end-to-end tests: the real intermission binary in front of
real backend processes, on 127.0.0.1 ports chosen at run time. Every process
a test starts is stopped when the test ends."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARY = os.environ.get("INTERMISSION_BIN", str(ROOT / "build" / "release" / "intermission"))
PYTHON = "/usr/bin/python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, tmp_path, name, port=None):
        self.name = name
        self.port = port or free_port()
        self.log = tmp_path / f"backend-{name}-{self.port}.log"
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(HERE / "backend.py"), "--port", str(self.port), "--name", self.name],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc)
        return self

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
        self.log_file = open(self.log, "ab")
        self.proc = subprocess.Popen([BINARY, "serve", "--config", str(self.config)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        code = None
        if self.proc is not None:
            code = stop(self.proc, sig, timeout)
            self.proc = None
            self.log_file.close()
        return code

    def log_text(self):
        return self.log.read_text(errors="replace")


@pytest.fixture
def backend_factory(tmp_path):
    started = []

    def make(name="app", port=None):
        b = Backend(tmp_path, name, port).start()
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
