"""Draining a target for a deploy: no new requests go to it, requests in flight finish,
the drain is durable (restart, kill -9, reload) and audited, and bad calls get a clear
JSON error."""
import signal
import threading
import time

import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import free_port, server_yaml, wait_until


def config(port, admin_port, targets):
    listed = ", ".join(f'"{t}"' for t in targets)
    return server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: [{listed}]
sites:
  - name: www
    default: true
    default_action: {{forward: app}}
"""


@pytest.fixture
def farm(tmp_path, backend_factory, gateway_factory):
    write_token(tmp_path)
    a, b = backend_factory("a"), backend_factory("b")
    port, admin_port = free_port(), free_port()
    gw = gateway_factory(config(port, admin_port, [a.address, b.address]), port)
    gw.admin = f"http://127.0.0.1:{admin_port}"
    wait_until(lambda: api(gw.admin, "GET", "/healthz").status_code == 200)
    return gw, a, b


def backends_seen(gw, n=20):
    seen = []
    with requests.Session() as s:
        for i in range(n):
            r = s.get(gw.url + f"/r{i}", timeout=5)
            seen.append((r.status_code, r.headers.get("X-Backend")))
    return seen


def target(gw, address):
    for group in api(gw.admin, "GET", "/v1/targets").json()["target_groups"]:
        for t in group["targets"]:
            if t["address"] == address:
                return t
    raise KeyError(address)


def test_drained_target_gets_no_new_requests_and_comes_back_after_undrain(farm):
    gw, a, b = farm
    assert {name for _, name in backends_seen(gw)} == {"a", "b"}
    r = api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain", {"reason": "deploy v2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["drained"] is True and body["drain"]["reason"] == "deploy v2"
    assert body["drain"]["who"] == "ops" and body["generation"] > 0
    assert backends_seen(gw) == [(200, "b")] * 20
    assert target(gw, a.address)["drained"] is True
    assert target(gw, b.address)["drained"] is False

    r = api(gw.admin, "DELETE", f"/v1/targets/app/{a.address}/drain")
    assert r.status_code == 200 and r.json()["drained"] is False
    assert {name for _, name in backends_seen(gw)} == {"a", "b"}


def test_request_in_flight_finishes_and_in_flight_is_reported(farm):
    gw, a, b = farm
    results = []

    def slow():
        results.append(requests.get(gw.url + "/slow/2500", timeout=20))

    # Each worker balances on its own: of four slow requests, some are on each target.
    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    assert wait_until(lambda: target(gw, a.address)["in_flight"] + target(gw, b.address)["in_flight"] == 4,
                      timeout=5)
    r = api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain")
    assert r.status_code == 200
    on_a = r.json()["in_flight"]
    for t in threads:
        t.join()
    assert all(r.status_code == 200 and r.text == "slow" for r in results)
    # The requests in flight to the drained target finished there.
    assert sum(1 for r in results if r.headers["X-Backend"] == "a") == on_a
    assert target(gw, a.address)["in_flight"] == 0


def test_every_target_drained_gives_the_outage_answer(farm):
    gw, a, b = farm
    for t in (a, b):
        assert api(gw.admin, "PUT", f"/v1/targets/app/{t.address}/drain").status_code == 200
    before = a.stats()["requests"] + b.stats()["requests"]
    for path in ("/x", "/y"):
        r = requests.get(gw.url + path, timeout=5)
        assert r.status_code == 503, r.text
    assert a.stats()["requests"] + b.stats()["requests"] == before, "a drained target was used"


def test_drain_survives_kill_9_and_restart(farm):
    gw, a, b = farm
    assert api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain", {"reason": "r"}).status_code == 200
    gw.stop(signal.SIGKILL)
    gw.start()
    assert wait_until(lambda: api(gw.admin, "GET", "/healthz").status_code == 200)
    assert target(gw, a.address)["drained"] is True
    assert backends_seen(gw, 10) == [(200, "b")] * 10


def test_drain_and_undrain_are_audited(farm):
    gw, a, _ = farm
    api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain", {"reason": "deploy"})
    api(gw.admin, "DELETE", f"/v1/targets/app/{a.address}/drain")
    entries = api(gw.admin, "GET", "/v1/audit").json()["entries"]
    assert [e["action"] for e in entries[:2]] == ["target.undrain", "target.drain"]
    drain = entries[1]
    assert drain["target"] == f"app/{a.address}" and drain["reason"] == "deploy"
    assert drain["token"] == "ops" and drain["before"]["drained"] is False
    assert drain["after"]["drained"] is True
    assert TOKEN not in str(entries)


@pytest.mark.parametrize("method,path,body,status,message", [
    ("PUT", "/v1/targets/nope/127.0.0.1:1/drain", None, 404, "no target group named 'nope'"),
    ("PUT", "/v1/targets/app/127.0.0.1:1/drain", None, 404, "has no target '127.0.0.1:1'"),
    ("PUT", "/v1/targets/app/{a}/drain", "not json", 400, "JSON object"),
    ("PUT", "/v1/targets/app/{a}/drain", "[1]", 400, "JSON object"),
    ("PUT", "/v1/targets/app/{a}/drain", {"reason": 5}, 400, "bad 'reason'"),
    ("PUT", "/v1/targets/app/{a}/drain", {"why": "x"}, 400, "unknown field 'why'"),
    ("GET", "/v1/targets/app/{a}/drain", None, 405, "PUT or DELETE"),
    ("PUT", "/v1/targets/app/{a}", None, 404, "no such endpoint"),
])
def test_bad_drain_calls_get_a_json_error(farm, method, path, body, status, message):
    gw, a, _ = farm
    r = api(gw.admin, method, path.format(a=a.address), body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert target(gw, a.address)["drained"] is False


def test_drain_needs_the_token(farm):
    gw, a, _ = farm
    for token in (None, "wrong-token-0123456789"):
        r = api(gw.admin, "PUT", f"/v1/targets/app/{a.address}/drain", token=token)
        assert r.status_code == 401 and "token" in r.json()["error"]
    assert target(gw, a.address)["drained"] is False


def test_percent_encoded_target_is_understood(farm):
    gw, a, _ = farm
    encoded = a.address.replace(":", "%3A")
    r = api(gw.admin, "PUT", f"/v1/targets/app/{encoded}/drain")
    assert r.status_code == 200 and r.json()["address"] == a.address
    time.sleep(0.05)
    assert target(gw, a.address)["drained"] is True
