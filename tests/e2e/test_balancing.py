"""Balancing across the targets of a group: round robin and least outstanding requests."""
import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import free_port, proxy_config


def served_by(r):
    assert r.status_code == 200, r.text
    return r.text.removeprefix("hello from ")


def test_round_robin_alternates_on_one_connection(backend_factory, gateway_factory):
    a, b = backend_factory("a"), backend_factory("b")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address, b.address],
                                      group_extra="    balance: round_robin\n"), port)
    with requests.Session() as s:
        names = [served_by(s.get(gw.url + f"/r{i}", timeout=5)) for i in range(20)]
    counts = collections.Counter(names)
    assert counts["a"] == 10 and counts["b"] == 10, counts
    # Strict alternation: never the same target twice in a row.
    assert all(x != y for x, y in zip(names, names[1:])), names


def test_round_robin_spreads_new_connections(backend_factory, gateway_factory):
    a, b = backend_factory("a"), backend_factory("b")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address, b.address]), port)
    counts = collections.Counter(served_by(requests.get(gw.url + f"/n{i}", timeout=5))
                                 for i in range(40))
    assert set(counts) == {"a", "b"}, counts
    assert 12 <= counts["a"] <= 28, counts
    assert a.stats()["requests"] == counts["a"]
    assert b.stats()["requests"] == counts["b"]


def test_least_outstanding_avoids_the_busy_target(backend_factory, gateway_factory):
    a, b = backend_factory("a"), backend_factory("b")
    port = free_port()
    # One worker: outstanding counts are per worker (shared-nothing), so the slow request and
    # the fast ones must meet in the same one for the choice to be observable.
    gw = gateway_factory(proxy_config(port, [a.address, b.address], workers=1,
                                      group_extra="    balance: least_outstanding\n"), port)
    slow_result = {}

    def slow():
        r = requests.get(gw.url + "/slow/2500", timeout=10)
        slow_result["status"] = r.status_code
        slow_result["backend"] = r.headers.get("X-Backend")

    t = threading.Thread(target=slow)
    t.start()
    # Wait until the slow request has reached a backend.
    deadline = time.monotonic() + 2
    busy = None
    while busy is None and time.monotonic() < deadline:
        for backend in (a, b):
            if backend.requests_for("/slow/"):
                busy = backend
        time.sleep(0.02)
    assert busy is not None, "the slow request never reached a backend"
    idle = b if busy is a else a
    with requests.Session() as s:
        names = [served_by(s.get(gw.url + f"/f{i}", timeout=5)) for i in range(10)]
    t.join()
    assert slow_result["status"] == 200
    assert slow_result["backend"] == busy.name
    assert names == [idle.name] * 10, f"busy={busy.name}: {names}"


def test_least_outstanding_sends_most_load_to_the_fast_target(backend_factory, gateway_factory):
    slow = backend_factory("slow", delay_ms=400)
    fast = backend_factory("fast")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [slow.address, fast.address],
                                      group_extra="    balance: least_outstanding\n"), port)

    def worker(i):
        names = []
        with requests.Session() as s:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                names.append(served_by(s.get(gw.url + f"/w{i}", timeout=5)))
        return names

    with ThreadPoolExecutor(4) as pool:
        names = [n for part in pool.map(worker, range(4)) for n in part]
    counts = collections.Counter(names)
    # Round robin would give the slow target half of the requests.
    assert counts["fast"] >= 4 * counts["slow"], counts
