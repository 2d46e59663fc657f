"""Alerts: site down / recovered, maintenance on / off and scheduled windows reach a real
webhook receiver (webhook_sink.py) and a real SMTP server (smtp_sink.py, aiosmtpd). A
destination that fails is retried with backoff and logged; a dead or silent one never slows
the site; flapping is damped by min_interval and the last state still arrives."""
import json
import socket
import subprocess
import time
from datetime import datetime, timezone

import pytest
import requests

from adminlib import admin_yaml, api, write_token
from conftest import HERE, PYTHON, check_config, free_port, server_yaml, stop, wait_for_port, wait_until

HEALTH = """    health:
      path: /health
      interval: 100ms
      timeout: 100ms
      healthy_threshold: 1
      unhealthy_threshold: 1
"""


class Sink:
    """webhook_sink.py or smtp_sink.py in its own process; records() reads what it got."""

    def __init__(self, tmp_path, script, args=(), name=None):
        self.port = free_port()
        name = name or script.split(".")[0]
        self.out = tmp_path / f"{name}-{self.port}.jsonl"
        self.log = open(tmp_path / f"{name}-{self.port}.log", "ab")
        self.proc = subprocess.Popen([PYTHON, str(HERE / script), "--port", str(self.port),
                                      "--out", str(self.out), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def records(self):
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def events(self):
        return [r["body"]["event"] for r in self.records() if r["status"] < 300]

    def wait_for(self, predicate, timeout=10.0):
        return wait_until(lambda: [r for r in self.records() if predicate(r)], timeout=timeout)

    def stop(self):
        stop(self.proc)
        self.log.close()


@pytest.fixture
def sinks(tmp_path):
    started = []

    def make(script, *args, name=None):
        s = Sink(tmp_path, script, args, name)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def delivered(sink, event, timeout=10.0):
    """The body of the first webhook POST for `event` that was answered 2xx."""
    found = sink.wait_for(lambda r: r["status"] < 300 and r["body"].get("event") == event, timeout)
    assert found, f"no {event} webhook within {timeout}s; got {sink.records()}"
    return found[0]["body"]


def mails(smtp, subject_part, timeout=10.0):
    found = smtp.wait_for(lambda r: subject_part in r["data"], timeout)
    assert found, f"no mail with '{subject_part}' within {timeout}s; got {smtp.records()}"
    return found


def subject_of(mail):
    for line in mail["data"].split("\r\n"):
        if line.startswith("Subject: "):
            return line[len("Subject: "):]
    return None


def alerts_yaml(webhooks=(), email=None, min_interval="0s", retries=3, backoff="200ms"):
    out = f"alerts:\n  min_interval: {min_interval}\n  retries: {retries}\n  backoff: {backoff}\n"
    if webhooks:
        out += "  webhooks:\n" + "".join(f"    - {w}\n" for w in webhooks)
    if email:
        out += "  email:\n" + "".join(f"    {k}: {v}\n" for k, v in email.items())
    return out


def email_to(smtp_port, **extra):
    mail = {"server": f'"smtp://127.0.0.1:{smtp_port}"', "from": '"intermission@example.com"',
            "to": '["ops@example.com", "oncall@example.com"]', "timeout": "2s"}
    mail.update(extra)
    return mail


def site_config(port, admin_port, backend, alerts, health=HEALTH, windows="", extra_sites=""):
    return server_yaml(port) + admin_yaml(admin_port) + alerts + f"""
target_groups:
  app:
    targets: ["{backend}"]
{health}
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    default_action: {{forward: app}}
    maintenance:
      reason: "planned"
{windows}{extra_sites}"""


@pytest.fixture
def start(tmp_path, backend_factory, gateway_factory):
    """start(alerts_yaml, ...) -> gateway with .admin and .app (the backend)."""
    write_token(tmp_path)
    pages = tmp_path / "pages"
    pages.mkdir(exist_ok=True)
    (pages / "maintenance.html").write_text("<h1>back soon</h1>\n")

    def make(alerts, **kw):
        app = backend_factory("app")
        port, admin_port = free_port(), free_port()
        gw = gateway_factory(site_config(port, admin_port, app.address, alerts, **kw), port)
        gw.admin = f"http://127.0.0.1:{admin_port}"
        wait_for_port(admin_port)
        gw.app = app
        return gw
    return make


def rfc3339(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_site_down_and_recovered_reach_the_webhook_and_the_mailbox(start, sinks):
    hook, smtp = sinks("webhook_sink.py"), sinks("smtp_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}'], email_to(smtp.port)))
    assert requests.get(gw.url + "/", timeout=5).status_code == 200
    gw.app.kill()
    down = delivered(hook, "site.down")
    assert down["site"] == "www"
    assert down["message"] == "www is down: visitors get the outage page"
    assert "target group 'app': no target takes traffic" in down["reason"]
    assert abs(datetime.strptime(down["time"], "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=timezone.utc).timestamp() - time.time()) < 30
    target = down["details"]["groups"][0]["targets"][0]
    assert target["address"] == gw.app.address and target["healthy"] is False
    assert target["last_error"], down
    assert hook.records()[0]["content_type"] == "application/json"
    mail = mails(smtp, "is down")[0]
    assert mail["mail_from"] == "intermission@example.com"
    assert mail["rcpt_tos"] == ["ops@example.com", "oncall@example.com"]
    assert subject_of(mail) == "[intermission] www is down: visitors get the outage page"
    assert target["last_error"] in mail["data"]
    assert requests.get(gw.url + "/", timeout=5).status_code == 503  # the outage page

    gw.app.start()
    up = delivered(hook, "site.recovered")
    assert up["message"] == "www has recovered: visitors get the site again"
    assert subject_of(mails(smtp, "has recovered")[0]) == \
        "[intermission] www has recovered: visitors get the site again"
    assert hook.events() == ["site.down", "site.recovered"]


def test_maintenance_on_and_off_through_the_api(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}']))
    r = api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "deploy 42"})
    assert r.status_code == 200, r.text
    on = delivered(hook, "maintenance.on")
    assert on["reason"] == "deploy 42"
    assert on["message"] == "www is in maintenance: visitors get the maintenance page"
    assert on["details"]["who"] == "ops" and on["details"]["source"] == "api"
    assert api(gw.admin, "DELETE", "/v1/sites/www/maintenance").status_code == 200
    off = delivered(hook, "maintenance.off")
    assert off["message"] == "www is out of maintenance: visitors get the site again"
    assert off["details"]["source"] == "config"
    # A switch that changes nothing visitors see says nothing.
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": False})
    time.sleep(0.5)
    assert hook.events() == ["maintenance.on", "maintenance.off"]


def test_draining_every_target_is_an_outage_too(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}']), health="")
    path = f"/v1/targets/app/{gw.app.address}/drain"
    assert api(gw.admin, "PUT", path, {"reason": "deploy"}).status_code == 200
    down = delivered(hook, "site.down")
    assert down["reason"] == f"target group 'app': no target takes traffic ({gw.app.address}: drained)"
    assert api(gw.admin, "DELETE", path).status_code == 200
    delivered(hook, "site.recovered")


def test_a_scheduled_window_alerts_when_it_starts_and_ends(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}']))
    begin = int(time.time()) + 2
    r = api(gw.admin, "POST", "/v1/sites/www/maintenance/windows",
            {"start": rfc3339(begin), "end": rfc3339(begin + 2), "reason": "db failover test"})
    assert r.status_code == 200, r.text
    started = delivered(hook, "window.start", timeout=6)
    arrived = time.time()
    assert begin <= arrived < begin + 1.0, f"window.start {arrived - begin:.2f}s after the start"
    assert started["reason"] == "db failover test"
    assert started["details"] == {"start": rfc3339(begin), "end": rfc3339(begin + 2),
                                  "reason": "db failover test", "source": "api"}
    ended = delivered(hook, "window.end", timeout=6)
    assert begin + 2 <= time.time() < begin + 3.0
    assert ended["message"] == "www: scheduled maintenance ended: visitors get the site again"
    assert hook.events() == ["window.start", "window.end"]


def test_a_window_from_the_config_alerts_too(start, sinks):
    hook = sinks("webhook_sink.py")
    begin = int(time.time()) + 3  # after the gateway is up: a window already running is no news
    windows = (f'      windows: [{{start: "{rfc3339(begin)}", end: "{rfc3339(begin + 1)}", '
               f'reason: weekly}}]\n')
    start(alerts_yaml([f'{{url: "{hook.url}"}}']), windows=windows)
    assert delivered(hook, "window.start", timeout=8)["details"]["source"] == "config"
    assert delivered(hook, "window.end", timeout=5)["reason"] == "weekly"


def test_slack_format_sends_text(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}", format: slack}}']))
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "db <migration>"})
    found = hook.wait_for(lambda r: r["status"] < 300)
    assert found, hook.records()
    body = found[0]["body"]
    assert list(body) == ["text"]
    assert body["text"].startswith("[intermission] www is in maintenance")
    assert "db &lt;migration&gt;" in body["text"]


def test_a_failing_webhook_is_retried_with_backoff(start, sinks):
    hook = sinks("webhook_sink.py", "--fail", "2")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}'], retries=3, backoff="200ms"))
    t0 = time.monotonic()
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    delivered(hook, "maintenance.on")
    elapsed = time.monotonic() - t0
    assert [r["status"] for r in hook.records()] == [500, 500, 204]
    assert elapsed >= 0.55, f"3 attempts in {elapsed:.2f}s: the backoff (200ms, 400ms) was skipped"
    log = gw.log_text()
    where = f"webhook http://127.0.0.1:{hook.port}"
    assert f"{where} failed (attempt 1 of 4): the webhook answered HTTP 500; retrying in 200ms" in log
    assert f"{where} failed (attempt 2 of 4): the webhook answered HTTP 500; retrying in 400ms" in log
    assert wait_until(lambda: f"sent to {where} (attempt 3 of 4)" in gw.log_text())


def test_a_retry_keeps_the_order_of_a_sites_alerts(start, sinks):
    hook = sinks("webhook_sink.py", "--fail", "2")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}'], retries=3, backoff="200ms"))
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": False})
    delivered(hook, "maintenance.off")
    assert [(r["body"]["event"], r["status"]) for r in hook.records()] == [
        ("maintenance.on", 500), ("maintenance.on", 500), ("maintenance.on", 204),
        ("maintenance.off", 204)]


def silent_server():
    """A socket that accepts connections and never says a word."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def test_unreachable_destinations_are_logged_and_retried_while_the_site_answers(start, sinks):
    silent = silent_server()
    refused = free_port()
    shop = """  - name: shop
    hosts: [shop.test]
    default_action: {forward: app}
"""
    try:
        alerts = alerts_yaml([f'{{url: "http://127.0.0.1:{silent.getsockname()[1]}/", timeout: 1s}}'],
                             email_to(refused, timeout="1s"), retries=2, backoff="200ms")
        gw = start(alerts, extra_sites=shop)
        api(gw.admin, "PUT", "/v1/sites/shop/maintenance", {"on": True})
        # While the delivery thread waits on a silent webhook and a refused SMTP port, www
        # answers as fast as ever.
        worst, deadline = 0.0, time.monotonic() + 3.0
        with requests.Session() as s:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                assert s.get(gw.url + "/", timeout=5).status_code == 200
                worst = max(worst, time.monotonic() - t0)
        # A request held up by a delivery would wait out the 1 s webhook timeout.
        assert worst < 0.9, f"a request took {worst:.2f}s while alerts were failing"
        def gave_up():
            log = gw.log_text()
            return log.count("giving up") >= 2 and log
        log = wait_until(gave_up, timeout=15)
        assert log, gw.log_text()
        assert f"e-mail via smtp://127.0.0.1:{refused} to ops@example.com, oncall@example.com " \
               f"failed (attempt 1 of 3): Couldn't connect to server" in log
        assert "failed (attempt 3 of 3)" in log and "retrying in 400ms" in log
        assert "Timeout was reached" in log
        assert gw.alive()
    finally:
        silent.close()


def test_flapping_is_damped_and_the_last_state_is_sent(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}'], min_interval="3s"))
    flips = lambda word: gw.log_text().count(word)
    down_word = f"target {gw.app.address} is down"
    for i, path in enumerate(["fail", "ok", "fail", "ok"]):
        gw.app.get(f"/admin/health/{path}")
        word = down_word if path == "fail" else "is healthy again"
        assert wait_until(lambda: flips(word) >= i // 2 + 1, timeout=3), gw.log_text()
    t_down = delivered(hook, "site.down", timeout=1)
    assert hook.events() == ["site.down"]  # the next three are held
    up = delivered(hook, "site.recovered", timeout=6)
    assert up["details"]["held_back"] == 2
    time.sleep(0.5)
    assert hook.events() == ["site.down", "site.recovered"], t_down


def test_maintenance_toggles_are_damped(start, sinks):
    hook = sinks("webhook_sink.py")
    gw = start(alerts_yaml([f'{{url: "{hook.url}"}}'], min_interval="2s"))
    for on in (True, False, True, False, True):
        assert api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": on}).status_code == 200
    delivered(hook, "maintenance.on", timeout=2)
    time.sleep(1.0)
    assert hook.events() == ["maintenance.on"]
    # The last toggle left it on: what was sent first is still true, nothing more to say.
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": False})
    delivered(hook, "maintenance.off", timeout=4)
    assert hook.events() == ["maintenance.on", "maintenance.off"]


def self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key: the SMTP server's, and the CA that trusts it."""
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_smtp_with_starttls_and_auth(tmp_path, start, sinks):
    cert, key = self_signed(tmp_path)
    password = "smtp-pass-7c1e0d"
    (tmp_path / "smtp-password").write_text(password + "\n")
    smtp = sinks("smtp_sink.py", "--cert", str(cert), "--key", str(key), "--require-starttls",
                 "--auth", f"alerts:{password}")
    mail = email_to(smtp.port, starttls="true", username="alerts", password_file="smtp-password",
                    ca_file=str(cert))
    gw = start(alerts_yaml(email=mail))
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True, "reason": "tls test"})
    got = mails(smtp, "is in maintenance")[0]
    assert got["tls"] is True and got["login"] == "alerts"
    assert "Reason: tls test" in got["data"]
    assert password not in gw.log_text()


def test_wrong_smtp_password_is_logged_without_the_password(tmp_path, start, sinks):
    cert, key = self_signed(tmp_path)
    (tmp_path / "smtp-password").write_text("wrong-password-93a1\n")
    smtp = sinks("smtp_sink.py", "--cert", str(cert), "--key", str(key), "--require-starttls",
                 "--auth", "alerts:right-password")
    mail = email_to(smtp.port, starttls="true", username="alerts", password_file="smtp-password",
                    ca_file=str(cert))
    gw = start(alerts_yaml(email=mail, retries=0))
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    log = wait_until(lambda: "giving up" in gw.log_text() and gw.log_text(), timeout=10)
    assert log and "Login denied" in log, gw.log_text()
    assert "wrong-password-93a1" not in log
    assert smtp.records() == []


def test_shutdown_abandons_pending_retries(start):
    refused = free_port()
    gw = start(alerts_yaml([f'{{url: "http://127.0.0.1:{refused}/"}}'], retries=5, backoff="10s"))
    api(gw.admin, "PUT", "/v1/sites/www/maintenance", {"on": True})
    assert wait_until(lambda: "retrying in 10s" in gw.log_text(), timeout=5), gw.log_text()
    t0 = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - t0 < 8.0, "shutdown waited for the 10 s retry"
    assert "abandoned after 1 attempt(s)" in gw.log_text()


def test_a_reload_sends_to_the_new_destinations(start, sinks):
    old, new = sinks("webhook_sink.py", name="old"), sinks("webhook_sink.py", name="new")
    gw = start(alerts_yaml([f'{{url: "{old.url}"}}']))
    # The new config also switches maintenance on: that is news as well.
    text = gw.config.read_text().replace(old.url, new.url)
    text = text.replace('      reason: "planned"\n', '      reason: "planned"\n      enabled: true\n')
    gw.config.write_text(text)
    r = api(gw.admin, "POST", "/v1/reload")
    assert r.status_code == 200, r.text
    on = delivered(new, "maintenance.on")
    assert on["details"]["source"] == "config" and on["reason"] == "planned"
    assert old.records() == []


BAD_ALERTS = [
    ("alerts:\n  retry: 3\n  webhooks: [{url: \"http://a/\"}]\n", "retry",
     "unknown key 'retry' in 'alerts'"),
    ("alerts:\n  webhooks: [{url: \"ftp://hooks.example.com/\"}]\n", "\"ftp:",
     "bad URL 'ftp://hooks.example.com/'"),
    ("alerts:\n  backoff: 1 sec\n  webhooks: [{url: \"http://a/\"}]\n", "1 sec",
     "bad duration '1 sec'"),
    ("alerts:\n  email: {server: \"smtp://a:25\", from: \"x@example.com\", to: []}\n", "[]",
     "expected at least one recipient"),
    ("alerts:\n  email: {server: \"smtp://a:25\", from: \"me\", to: [ops@example.com]}\n", "\"me\"",
     "bad e-mail address 'me'"),
    ("alerts:\n  min_interval: 1m\n", "alerts", "expected 'webhooks' or 'email'"),
]


@pytest.mark.parametrize("alerts,token,message", BAD_ALERTS)
def test_check_rejects_a_bad_alerts_section(tmp_path, alerts, token, message):
    text = server_yaml(8080) + alerts + """target_groups: {app: {targets: ["127.0.0.1:9000"]}}
sites: [{name: www, default: true, default_action: {forward: app}}]
"""
    code, stderr, errors = check_config(tmp_path, text)
    assert code != 0, stderr
    assert errors, stderr
    line, column, got = errors[0]
    offset = text.index(token)
    assert (line, column) == (text.count("\n", 0, offset) + 1,
                              offset - text.rfind("\n", 0, offset)), stderr
    assert message in got, stderr
