"""Target health: active checks with thresholds (a failing target leaves rotation only after
`unhealthy_threshold` failed checks and comes back only after `healthy_threshold` good ones),
passive detection (a connect failure marks a target down at once and the idempotent request is
retried elsewhere), expected statuses, check Host header and path, all targets down -> 503."""
import collections
import time

import requests

from conftest import free_port, proxy_config, wait_until

INTERVAL = 0.3
HEALTH = """    health:
      path: {path}
      expect: [{expect}]
      interval: 300ms
      timeout: 200ms
      healthy_threshold: {healthy}
      unhealthy_threshold: {unhealthy}
{extra}"""


def health_yaml(path="/health", expect='"200-399"', healthy=3, unhealthy=3, extra=""):
    return HEALTH.format(path=path, expect=expect, healthy=healthy, unhealthy=unhealthy,
                         extra=extra)


def names_for(gw, n, session=None, path="/r"):
    """Backend names serving n sequential requests (every one must be a 200)."""
    s = session or requests.Session()
    out = []
    for i in range(n):
        r = s.get(gw.url + f"{path}{i}", timeout=5)
        assert r.status_code == 200, (r.status_code, r.text)
        out.append(r.text.removeprefix("hello from "))
    return out


def names_during(gw, seconds, path="/d"):
    """Backend names serving sequential requests sent for the given time."""
    out = []
    deadline = time.monotonic() + seconds
    with requests.Session() as s:
        i = 0
        while time.monotonic() < deadline:
            r = s.get(gw.url + f"{path}{i}", timeout=5)
            assert r.status_code == 200, (r.status_code, r.text)
            out.append(r.text.removeprefix("hello from "))
            i += 1
            time.sleep(0.02)
    return out


def start_pair(backend_factory, gateway_factory, health, workers=2):
    a, b = backend_factory("a"), backend_factory("b")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address, b.address], workers=workers,
                                      group_extra=health), port)
    return a, b, gw


def test_failing_checks_take_a_target_out_only_after_the_unhealthy_threshold(
        backend_factory, gateway_factory):
    a, b, gw = start_pair(backend_factory, gateway_factory, health_yaml(), workers=1)
    assert set(names_for(gw, 4)) == {"a", "b"}
    a.get("/admin/health/fail")
    # Fewer than 3 failed checks fit in the first 0.45 s: "a" must still be in rotation.
    early = names_during(gw, 0.45)
    assert "a" in early, f"left rotation before the unhealthy threshold: {early}"
    # After 3 checks (plus slack) it must be out: every request goes to "b".
    time.sleep(3 * INTERVAL + 0.8)
    later = names_for(gw, 10)
    assert later == ["b"] * 10, later
    log = gw.log_text()
    assert a.address in log and "down" in log.lower(), log[-2000:]


def test_recovered_target_returns_only_after_the_healthy_threshold(backend_factory,
                                                                   gateway_factory):
    a, b, gw = start_pair(backend_factory, gateway_factory, health_yaml(), workers=1)
    a.get("/admin/health/fail")
    assert wait_until(lambda: names_for(gw, 4) == ["b"] * 4, timeout=5), "a never left rotation"
    a.get("/admin/health/ok")
    early = names_during(gw, 0.45)
    assert set(early) == {"b"}, f"came back before the healthy threshold: {early}"
    time.sleep(3 * INTERVAL + 0.8)
    assert collections.Counter(names_for(gw, 10)) == {"a": 5, "b": 5}


def test_killed_target_leaves_rotation_and_returns_after_restart(backend_factory,
                                                                 gateway_factory):
    a, b, gw = start_pair(backend_factory, gateway_factory, health_yaml())
    assert set(names_for(gw, 6)) == {"a", "b"}
    a.kill()
    # Every request succeeds: connect failures are retried on "b" (idempotent GETs).
    assert names_for(gw, 10, path="/k") == ["b"] * 10
    time.sleep(3 * INTERVAL + 0.5)
    assert names_for(gw, 10, path="/k2") == ["b"] * 10
    a.start()  # same port
    early = names_during(gw, 0.45)
    assert set(early) == {"b"}, f"restarted target came back before the healthy threshold: {early}"
    assert wait_until(lambda: "a" in names_for(gw, 6), timeout=4), "restarted target never returned"
    # Once back, round robin splits evenly again.
    assert collections.Counter(names_for(gw, 10, requests.Session())) == {"a": 5, "b": 5}


def test_passive_detection_without_active_checks(backend_factory, gateway_factory):
    a, b, gw = start_pair(backend_factory, gateway_factory, "", workers=2)
    a.kill()
    # No health section: the first connect failure marks "a" down and the GET is retried.
    t0 = time.monotonic()
    assert names_for(gw, 20) == ["b"] * 20
    assert time.monotonic() - t0 < 5
    assert b.stats()["requests"] == 20
    assert wait_until(lambda: a.address in gw.log_text(), timeout=2), gw.log_text()[-2000:]


def test_connect_failure_on_new_connections_retries_each_time(backend_factory, gateway_factory):
    # Fresh connections land on either worker; each worker's first attempt on the dead
    # target must be retried, never surfaced.
    a, b, gw = start_pair(backend_factory, gateway_factory, "", workers=2)
    a.kill()
    for i in range(20):
        r = requests.get(gw.url + f"/n{i}", timeout=5)
        assert r.status_code == 200 and r.text == "hello from b"


def test_all_targets_down_is_503(backend_factory, gateway_factory):
    a, b, gw = start_pair(backend_factory, gateway_factory, health_yaml(unhealthy=2), workers=2)
    a.kill()
    b.kill()
    assert wait_until(lambda: requests.get(gw.url + "/x", timeout=5).status_code == 503,
                      timeout=4), "never answered 503 with every target down"
    for i in range(5):
        assert requests.get(gw.url + f"/y{i}", timeout=5).status_code == 503
    b.start()
    assert wait_until(lambda: requests.get(gw.url + "/z", timeout=5).status_code == 200,
                      timeout=5), "never recovered after a target came back"
    time.sleep(1.2)  # see test_target_declared_healthy_is_used_at_once for the first second
    for i in range(4):
        assert requests.get(gw.url + f"/z{i}", timeout=5).text == "hello from b"


def test_target_declared_healthy_is_used_at_once(backend_factory, gateway_factory):
    b = backend_factory("b")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [b.address], workers=1, group_extra="""    health:
      path: /health
      interval: 100ms
      timeout: 100ms
      healthy_threshold: 1
      unhealthy_threshold: 1
"""), port)
    assert requests.get(gw.url + "/a", timeout=5).status_code == 200
    b.kill()
    assert requests.get(gw.url + "/b", timeout=5).status_code in (502, 503)
    b.start()
    assert wait_until(lambda: "healthy again" in gw.log_text(), timeout=3), gw.log_text()
    # The health checks say it is back: requests must reach it, not get "no healthy target".
    r = requests.get(gw.url + "/c", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from b"), \
        f"{r.status_code} right after the target was declared healthy again"


def test_all_targets_down_without_health_checks(backend_factory, gateway_factory):
    dead1, dead2 = free_port(), free_port()
    port = free_port()
    gw = gateway_factory(proxy_config(port, [f"127.0.0.1:{dead1}", f"127.0.0.1:{dead2}"]), port)
    statuses = [requests.get(gw.url + f"/x{i}", timeout=5).status_code for i in range(6)]
    # Connect refused (502) until both are known down, then "no healthy target" (503).
    assert all(s in (502, 503) for s in statuses), statuses
    assert statuses[-1] == 503, statuses


def test_expected_status_decides_health(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    # /status/302 answers 302: healthy for 200-399, unhealthy for 200 only.
    gw = gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml(
        path="/status/302", expect="200", unhealthy=1)), port)
    assert wait_until(lambda: requests.get(gw.url + "/x", timeout=5).status_code == 503,
                      timeout=3), "302 accepted although only 200 is expected"

    port2 = free_port()
    gw2 = gateway_factory(proxy_config(port2, [a.address], group_extra=health_yaml(
        path="/status/302", expect='"200-399"', unhealthy=1)), port2)
    time.sleep(4 * INTERVAL)
    for i in range(5):
        assert requests.get(gw2.url + f"/x{i}", timeout=5).status_code == 200


def test_expected_status_list(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml(
        path="/status/204", expect='200, "204-205"', unhealthy=1)), port)
    time.sleep(4 * INTERVAL)
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200


def test_check_timeout_counts_as_failure(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml(
        path="/slow/1000", unhealthy=2)), port)
    assert wait_until(lambda: requests.get(gw.url + "/x", timeout=5).status_code == 503,
                      timeout=4), "a check slower than its timeout was not counted as a failure"


def test_checks_use_configured_path_and_host(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml(
        path="/health?probe=1", extra="      host: status.internal\n")), port)
    checks = wait_until(lambda: a.requests_for("/health")[:2]
                        if len(a.requests_for("/health")) >= 2 else None, timeout=3)
    assert checks, "no health checks reached the backend"
    for c in checks:
        assert c["target"] == "/health?probe=1"
        assert c["method"] in ("GET", "HEAD")
        hosts = [v for n, v in c["headers"] if n.lower() == "host"]
        assert hosts == ["status.internal"], c["headers"]


def test_checks_default_host_is_the_target_address(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml()), port)
    checks = wait_until(lambda: a.requests_for("/health"), timeout=3)
    assert checks
    hosts = [v for n, v in checks[0]["headers"] if n.lower() == "host"]
    assert hosts == [a.address], checks[0]["headers"]


def test_checks_run_at_the_configured_interval(backend_factory, gateway_factory):
    a = backend_factory("a")
    port = free_port()
    gateway_factory(proxy_config(port, [a.address], group_extra=health_yaml()), port)
    time.sleep(2.0)
    n = len(a.requests_for("/health"))
    # 300 ms apart: about 6-7 in 2 s (a check per interval, one checker for all workers).
    assert 4 <= n <= 9, n


def test_reset_marks_target_down_and_idempotent_request_is_retried(backend_factory,
                                                                   gateway_factory):
    bad = backend_factory("bad", reset=True)
    good = backend_factory("good")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [bad.address, good.address], workers=1), port)
    with requests.Session() as s:
        names = [s.get(gw.url + f"/r{i}", timeout=5) for i in range(10)]
    assert [(r.status_code, r.text) for r in names] == [(200, "hello from good")] * 10
    # Marked down at once: after the first reset no further request was sent to it.
    assert bad.stats()["requests"] == 1, bad.stats()["requests"]
    assert wait_until(lambda: bad.address in gw.log_text(), timeout=2)


def test_non_idempotent_request_is_not_retried_once_sent(backend_factory, gateway_factory):
    bad = backend_factory("bad", reset=True)  # reads the request, then resets
    good = backend_factory("good")
    port = free_port()
    gw = gateway_factory(proxy_config(port, [bad.address, good.address], workers=1), port)
    with requests.Session() as s:
        statuses = [s.post(gw.url + f"/echo/{i}", data=b"payload", timeout=5).status_code
                    for i in range(6)]
    # Round robin sends one of the first two POSTs to the resetting target: it was sent, so
    # it must not be replayed elsewhere (502); that target is then out of rotation.
    assert sorted(statuses[:2]) == [200, 502], statuses
    assert statuses[2:] == [200] * 4, statuses
    assert bad.stats()["requests"] == 1
    assert good.stats()["requests"] == 5


def test_retries_zero_surfaces_the_connect_failure(backend_factory, gateway_factory):
    good = backend_factory("good")
    dead = f"127.0.0.1:{free_port()}"
    port = free_port()
    gw = gateway_factory(proxy_config(port, [dead, good.address], workers=1,
                                      group_extra="    retries: 0\n"), port)
    with requests.Session() as s:
        statuses = [s.get(gw.url + f"/g{i}", timeout=5).status_code for i in range(6)]
    assert sorted(statuses[:2]) == [200, 502], statuses
    assert statuses[2:] == [200] * 4, statuses
