"""A signal sent to `intermission serve` before its handlers are in place: the window
between blocking signals at start and arming them (test_shutdown.py, test_reload.py)."""
import random
import subprocess
import time

from conftest import BINARY, server_yaml


def signal_bits(pid, field):
    """A signal set of /proc/PID/status (SigBlk: blocked, SigCgt: caught) as a bit mask."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


def serve_and_signal_early(tmp_path, port, sig, delay):
    """Starts `intermission serve` and sends `sig` `delay` seconds after the process blocked
    it, the first thing `serve` does, long before the signal handlers are in place: the
    brotli variant of a 150 KB page (built at load time) keeps it a good fraction of a second
    in between. (Before `serve`, the process is still being exec'd and dynamically linked, a
    window no program can guard.) Returns (process, whether sent before the handler was)."""
    pages = tmp_path / "early-pages"
    if not pages.exists():
        pages.mkdir()
        rnd = random.Random(1)
        words = ["".join(rnd.choices("abcdefghijklmnop", k=rnd.randint(2, 9))) for _ in range(5000)]
        (pages / "index.html").write_text(" ".join(rnd.choices(words, k=25000)))
    config = tmp_path / f"early-{port}.yaml"
    config.write_text(server_yaml(port) + f"""
sites:
  - name: www
    default: true
    pages: {{root: "{pages}", watch: false}}
    default_action: {{fixed: {{body: "ok"}}}}
""")
    log = open(tmp_path / f"early-{port}.log", "wb")
    proc = subprocess.Popen([BINARY, "serve", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    bit = 1 << (sig - 1)
    deadline = time.monotonic() + 10
    while not signal_bits(proc.pid, "SigBlk") & bit:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"serve never blocked signal {sig} (exit code {proc.returncode})")
    if delay:
        time.sleep(delay)
    unarmed = not signal_bits(proc.pid, "SigCgt") & bit
    proc.send_signal(sig)
    return proc, unarmed
