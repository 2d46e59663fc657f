"""The `intermission` CLI against a real gateway's admin API: every command, text and --json
output, where the address and token come from, and the exit codes (0 done, 1 refused by the
API, 2 bad usage, 3 unreachable, 4 token refused), each error one line on stderr."""
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import BINARY, free_port, server_yaml, wait_for_port

TOKEN = "ops-token-0123456789abcdef"
OTHER_TOKEN = "ci-token-fedcba9876543210"


def config(port, admin_port, a, b, www_message="Back soon."):
    return server_yaml(port) + f"""
admin:
  listen: "127.0.0.1:{admin_port}"
  tokens: [{{name: ops, file: admin-token}}, {{name: ci, file: ci-token}}]
target_groups:
  app:
    targets: ["{a}", "{b}"]
  v6:
    targets: ["[::1]:9"]
sites:
  - name: www
    default: true
    maintenance: {{message: "{www_message}"}}
    default_action: {{forward: app}}
  - name: shop
    hosts: ["shop.test"]
    maintenance: {{enabled: true, reason: "migrating the catalogue"}}
    default_action: {{forward: app}}
"""


@pytest.fixture
def gw(tmp_path, backend_factory, gateway_factory):
    (tmp_path / "admin-token").write_text(TOKEN + "\n")
    (tmp_path / "ci-token").write_text(OTHER_TOKEN + "\n")
    a, b = backend_factory("a"), backend_factory("b")
    port, admin_port = free_port(), free_port()
    g = gateway_factory(config(port, admin_port, a.address, b.address), port)
    wait_for_port(admin_port, g.proc)
    g.admin_address = f"127.0.0.1:{admin_port}"
    g.admin = "http://" + g.admin_address
    g.a, g.b = a, b
    g.token_file = tmp_path / "admin-token"
    g.flags = ["--admin", g.admin_address, "--token-file", str(g.token_file)]
    g.backends = (a.address, b.address)
    return g


def cli(*args, env=None, cwd=None, timeout=30):
    """The binary with a clean INTERMISSION_* environment plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTERMISSION_")}
    clean.update(env or {})
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout,
                          env=clean, cwd=cwd)


def run(gw, *args, **kw):
    return cli(*args, *gw.flags, **kw)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_error_line(result, code):
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("intermission: "), lines[0]
    assert result.stdout == ""
    assert TOKEN not in result.stderr and OTHER_TOKEN not in result.stderr
    return lines[0]


def public_status(gw, host=None):
    headers = {"Host": host} if host else {}
    return requests.get(gw.url + "/", headers=headers, timeout=5).status_code


def api_answers(gw, method, path):
    r = requests.request(method, gw.admin + path, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=5)
    return r.status_code != 404 or "no such endpoint" not in r.text


def needs(gw, method, path):
    if not api_answers(gw, method, path):
        pytest.skip(f"the admin API has no {method} {path} yet")


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# --- maintenance on / off / clear / status -------------------------------------------------

def test_maintenance_on_off_clear_take_effect_on_the_next_request(gw):
    assert public_status(gw) == 200
    out = ok(run(gw, "maintenance", "on", "www", "--reason", "deploy 42", "--message", "Soon!"))
    assert out.startswith("site www: maintenance on\n")
    assert re.search(r"^  source: +api ", out, re.M), out
    assert re.search(r"^  reason: +deploy 42$", out, re.M), out
    assert re.search(r"^  message: +Soon!$", out, re.M), out
    assert re.search(r"^  who: +ops, since ", out, re.M), out
    assert public_status(gw) == 503

    out = ok(run(gw, "maintenance", "off", "www"))
    assert out.startswith("site www: maintenance off\n")
    assert re.search(r"^  runtime: +off, set by ops$", out, re.M), out
    assert public_status(gw) == 200

    out = ok(run(gw, "maintenance", "clear", "www"))
    assert re.search(r"^  source: +config \(no runtime override\)$", out, re.M), out
    assert re.search(r"^  runtime: +none$", out, re.M), out
    assert public_status(gw) == 200


def test_status_shows_which_wins_config_or_api(gw):
    out = ok(run(gw, "maintenance", "status"))
    header, *rows = out.splitlines()
    assert header.split() == ["SITE", "MAINTENANCE", "SOURCE", "CONFIG", "RUNTIME", "UNTIL",
                              "WHO", "REASON"]
    table = {r.split()[0]: r.split() for r in rows}
    assert table["www"][1:5] == ["off", "config", "off", "none"]
    assert table["shop"][1:5] == ["on", "config", "on", "none"]
    assert "migrating the catalogue" in out
    assert public_status(gw, "shop.test") == 503

    # The runtime override "off" wins over the config's enabled: true.
    ok(run(gw, "maintenance", "off", "shop", "--reason", "catalogue done"))
    assert public_status(gw, "shop.test") == 200
    out = ok(run(gw, "maintenance", "status", "shop"))
    assert out.startswith("site shop: maintenance off\n")
    assert re.search(r"^  source: +api \(the runtime override wins over the config", out, re.M)
    assert re.search(r"^  config: +on$", out, re.M), out
    assert re.search(r"^  runtime: +off, set by ops$", out, re.M), out
    table = {r.split()[0]: r.split() for r in ok(run(gw, "maintenance", "status")).splitlines()[1:]}
    assert table["shop"][1:7] == ["off", "api", "on", "off", "-", "ops"]

    ok(run(gw, "maintenance", "clear", "shop"))
    assert public_status(gw, "shop.test") == 503


def test_until_takes_a_duration_or_an_rfc3339_time(gw):
    before = time.time()
    state = json.loads(ok(run(gw, "maintenance", "on", "www", "--until", "30m", "--json")))
    assert state["on"] is True and state["source"] == "api"
    assert before + 1800 - 5 <= seconds(state["runtime"]["until"]) <= time.time() + 1800 + 5
    retry_after = int(requests.get(gw.url + "/", timeout=5).headers["Retry-After"])
    assert 1700 < retry_after <= 1801

    out = ok(run(gw, "maintenance", "on", "www", "--until", "2099-01-01T02:00:00+02:00"))
    assert re.search(r"^  until: +2099-01-01T00:00:00Z \(in ", out, re.M), out
    out = ok(run(gw, "maintenance", "on", "www", "--until", "1h30m", "--json"))
    assert abs(seconds(json.loads(out)["until"]) - (time.time() + 5400)) < 10


@pytest.mark.parametrize("value", ["tomorrow", "30", "-5m", "0s", "2026-13-01T00:00:00Z", ""])
def test_bad_until_is_exit_2_before_asking_the_api(gw, value):
    line = one_error_line(run(gw, "maintenance", "on", "www", "--until", value), 2)
    assert "--until" in line and "RFC 3339" in line
    assert public_status(gw) == 200 or value == ""
    # Found locally: the same answer when the admin API is not even there.
    r = cli("maintenance", "on", "www", "--until", "tomorrow", "--admin",
            f"127.0.0.1:{free_port()}", "--token", TOKEN)
    one_error_line(r, 2)


def test_json_output_is_the_api_answer(gw):
    state = json.loads(ok(run(gw, "maintenance", "status", "www", "--json")))
    assert set(state) >= {"site", "on", "source", "until", "config", "runtime"}
    assert state["config"]["message"] == "Back soon."
    sites = json.loads(ok(run(gw, "sites", "--json")))
    assert [s["name"] for s in sites["sites"]] == ["www", "shop"]
    targets = json.loads(ok(run(gw, "targets", "--json")))
    assert [g["name"] for g in targets["target_groups"]] == ["app", "v6"]
    ok(run(gw, "maintenance", "on", "www", "--reason", "json"))
    audit = json.loads(ok(run(gw, "audit", "--json")))
    assert audit["entries"][0]["action"] == "maintenance.on"
    assert json.loads(ok(run(gw, "maintenance", "status", "--json")))["sites"][0]["name"] == "www"


# --- sites, targets, audit -----------------------------------------------------------------

def test_sites_table(gw):
    header, *rows = ok(run(gw, "sites")).splitlines()
    assert header.split() == ["SITE", "HOSTS", "DEFAULT", "PAGES", "MAINTENANCE", "SOURCE",
                              "OUTAGE", "SERVING"]
    assert rows[0].split() == ["www", "-", "yes", "no", "off", "config", "no", "app", "2/2"]
    assert rows[1].split() == ["shop", "shop.test", "no", "no", "on", "config", "no", "app", "2/2"]


def test_targets_table(gw):
    header, *rows = ok(run(gw, "targets")).splitlines()
    assert header.split() == ["GROUP", "TARGET", "STATE", "DRAINED", "IN_FLIGHT", "LATENCY",
                              "LAST_CHECK", "FAILURES", "LAST_ERROR"]
    cells = [r.split() for r in rows]
    assert [(c[0], c[1], c[2]) for c in cells] == [
        ("app", gw.backends[0], "healthy"), ("app", gw.backends[1], "healthy"),
        ("v6", "[::1]:9", "healthy")]


def test_audit_lists_the_changes_newest_first(gw):
    ok(run(gw, "maintenance", "on", "www", "--reason", "db upgrade"))
    ok(run(gw, "maintenance", "off", "www", "--reason", "db done"))
    ok(run(gw, "maintenance", "clear", "www"))
    header, *rows = ok(run(gw, "audit")).splitlines()
    assert header.split() == ["TIME", "ACTION", "TARGET", "WHO", "CLIENT", "REASON"]
    assert [r.split()[1] for r in rows[:3]] == ["maintenance.clear", "maintenance.off",
                                               "maintenance.on"]
    assert rows[2].split()[2:] == ["www", "ops", "127.0.0.1", "db", "upgrade"]
    assert len(ok(run(gw, "audit", "--limit", "1")).splitlines()) == 2
    page = json.loads(ok(run(gw, "audit", "--offset", "2", "--limit", "1", "--json")))
    assert [e["action"] for e in page["entries"]] == ["maintenance.on"]
    assert ok(run(gw, "audit", "--offset", "100")) == "no audit entries\n"


# --- maintenance windows -------------------------------------------------------------------

def test_schedule_add_list_clear(gw):
    out = ok(run(gw, "maintenance", "schedule", "www", "--start", "1h", "--end", "2h",
                 "--reason", "db upgrade"))
    assert out.startswith("site www: maintenance off (source: api)\n"), out
    window = re.search(r"^  window: +(\S+) +to +(\S+) +api +db upgrade$", out, re.M)
    assert window, out
    assert abs(seconds(window.group(1)) - (time.time() + 3600)) < 10
    assert seconds(window.group(2)) - seconds(window.group(1)) == 3600
    assert public_status(gw) == 200  # scheduled, not on now

    start = iso(time.time() + 7200)
    end = iso(time.time() + 9000)
    ok(run(gw, "maintenance", "schedule", "www", "--start", start, "--end", end))
    listed = ok(run(gw, "maintenance", "schedule", "www", "--list"))
    assert len(re.findall(r"^  window: ", listed, re.M)) == 2
    assert f"{start}  to  {end}" in listed
    state = json.loads(ok(run(gw, "maintenance", "schedule", "www", "--list", "--json")))
    assert len(state["runtime"]["windows"]) == 2

    out = ok(run(gw, "maintenance", "schedule", "www", "--clear"))
    assert "no maintenance windows" in out
    assert "no maintenance windows" in ok(run(gw, "maintenance", "schedule", "www", "--list"))
    actions = [e["action"] for e in json.loads(ok(run(gw, "audit", "--json")))["entries"]]
    assert actions[:3] == ["maintenance.unschedule", "maintenance.schedule", "maintenance.schedule"]


def test_a_window_that_starts_now_switches_maintenance_on(gw):
    ok(run(gw, "maintenance", "schedule", "www", "--start", "now", "--end", "10m"))
    assert public_status(gw) == 503
    ok(run(gw, "maintenance", "schedule", "www", "--clear"))
    assert public_status(gw) == 200


def test_schedule_errors(gw):
    line = one_error_line(run(gw, "maintenance", "schedule", "www", "--start", "1h"), 2)
    assert "--start and --end" in line
    line = one_error_line(run(gw, "maintenance", "schedule", "www", "--start", "2h", "--end",
                              "1h"), 2)
    assert "must be after --start" in line
    one_error_line(run(gw, "maintenance", "schedule", "www", "--start", "soon", "--end", "1h"), 2)
    one_error_line(run(gw, "maintenance", "schedule", "www", "--list", "--clear"), 2)
    line = one_error_line(run(gw, "maintenance", "schedule", "www", "--start",
                              "2000-01-01T00:00:00Z", "--end", "2000-01-01T01:00:00Z"), 1)
    assert line.startswith("intermission: 400 Bad Request: ") and "already ended" in line


# --- where the address and the token come from ---------------------------------------------

def test_address_and_token_from_flags_env_or_config(gw, tmp_path):
    admin = ["--admin", gw.admin]  # the http:// form
    ok(cli("sites", *admin, "--token", TOKEN))
    ok(cli("sites", *admin, "--token-file", str(gw.token_file)))
    ok(cli("sites", *admin, env={"INTERMISSION_TOKEN": TOKEN}))
    ok(cli("sites", *admin, env={"INTERMISSION_TOKEN_FILE": str(gw.token_file)}))
    ok(cli("sites", env={"INTERMISSION_ADMIN": gw.admin_address, "INTERMISSION_TOKEN": TOKEN}))
    # The gateway's own config: admin.listen and the first token, or the one named.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok(cli("sites", "-c", str(gw.config), cwd=elsewhere))
    ok(cli("sites", "--config", str(gw.config), "--token-name", "ci", cwd=elsewhere))
    ok(cli("sites", cwd=tmp_path))  # ./intermission.yaml
    ok(cli("maintenance", "on", "www", "--reason", "from ci", "--admin", gw.admin_address,
           "--token-file", str(tmp_path / "ci-token")))
    assert json.loads(ok(run(gw, "audit", "--json")))["entries"][0]["token"] == "ci"
    line = one_error_line(cli("sites", "-c", str(gw.config), "--token-name", "nobody"), 2)
    assert "no admin token named 'nobody'" in line


def test_first_found_wins_flag_then_env_then_config(gw, tmp_path):
    # A wrong flag is not rescued by a right environment, nor a wrong environment by the config.
    one_error_line(cli("sites", "--admin", gw.admin_address, "--token", "x" * 20,
                       env={"INTERMISSION_TOKEN": TOKEN}), 4)
    one_error_line(cli("sites", env={"INTERMISSION_TOKEN": "y" * 20}, cwd=tmp_path), 4)
    dead = f"127.0.0.1:{free_port()}"
    one_error_line(cli("sites", env={"INTERMISSION_ADMIN": dead}, cwd=tmp_path), 3)
    ok(cli("sites", "--admin", gw.admin_address, env={"INTERMISSION_ADMIN": dead}, cwd=tmp_path))


def test_a_config_with_a_mistake_elsewhere_still_names_the_admin_api(gw, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(gw.config.read_text().replace("forward: app", "forward: nope"))
    assert cli("check", "--config", str(broken)).returncode != 0
    ok(cli("sites", "-c", str(broken)))


def test_admin_api_on_a_unix_socket(tmp_path, backend_factory, gateway_factory):
    (tmp_path / "admin-token").write_text(TOKEN + "\n")
    (tmp_path / "ci-token").write_text(OTHER_TOKEN + "\n")
    a = backend_factory("a")
    port = free_port()
    text = config(port, 0, a.address, a.address).replace('"127.0.0.1:0"', '"unix:admin.sock"')
    g = gateway_factory(text.replace(f'["{a.address}", "{a.address}"]', f'["{a.address}"]'), port)
    sock = tmp_path / "admin.sock"
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # From the config (listen: "unix:admin.sock", beside it), and from the flag.
    assert "www" in ok(cli("sites", "-c", str(g.config), cwd="/"))
    out = ok(cli("maintenance", "on", "www", "--admin", f"unix:{sock}", "--token", TOKEN))
    assert out.startswith("site www: maintenance on\n")
    assert public_status(g) == 503
    entries = json.loads(ok(cli("audit", "--json", "-c", str(g.config))))["entries"]
    assert entries[0]["client"] == "unix"
    line = one_error_line(cli("sites", "--admin", f"unix:{tmp_path}/nothing.sock", "--token",
                              TOKEN), 3)
    assert line == (f"intermission: cannot reach the admin API at unix:{tmp_path}/nothing.sock: "
                    "No such file or directory")


def test_wrong_token_is_exit_4(gw):
    line = one_error_line(cli("maintenance", "on", "www", "--admin", gw.admin_address,
                              "--token", "wrong-token-wrong-token"), 4)
    assert line.startswith("intermission: the admin API refused the token (401): ")
    assert "wrong-token" not in line
    assert public_status(gw) == 200


def test_no_token_anywhere_is_exit_2(gw, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(cli("sites", "--admin", gw.admin_address, cwd=empty), 2)
    assert "no admin token" in line
    line = one_error_line(cli("sites", "--admin", gw.admin_address, "--token-file",
                              str(tmp_path / "missing")), 2)
    assert "cannot read the token file" in line
    line = one_error_line(cli("sites", "-c", str(tmp_path / "missing.yaml")), 2)
    assert "missing.yaml" in line


# --- unreachable, refused, bad usage -------------------------------------------------------

def test_unreachable_admin_is_exit_3():
    port = free_port()
    line = one_error_line(cli("targets", "--admin", f"127.0.0.1:{port}", "--token", TOKEN), 3)
    assert line == (f"intermission: cannot reach the admin API at 127.0.0.1:{port}: "
                    "Connection refused")


def test_admin_that_never_answers_is_exit_3_after_the_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        line = one_error_line(cli("sites", "--admin", f"127.0.0.1:{port}", "--token", TOKEN), 3)
        assert 4 <= time.monotonic() - started < 15
    assert line == f"intermission: the admin API at 127.0.0.1:{port} did not answer within 5s"


class FakeAdmin:
    """An admin API stand-in that records each request and answers what the test says."""

    def __init__(self, status=200, body=b'{"ok": true}'):
        self.status, self.body, self.seen = status, body, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake.seen.append((self.command, self.path, self.headers.get("Authorization"),
                                  self.rfile.read(length)))
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            do_GET = do_PUT = do_POST = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_requests_follow_the_api_contract():
    with FakeAdmin() as fake:
        flags = ["--admin", fake.address, "--token", TOKEN]
        ok(cli("maintenance", "on", "www", "--reason", "r", "--message", "m", "--until",
               "2026-11-24T05:00:00+02:00", *flags))
        ok(cli("maintenance", "off", "www", *flags))
        ok(cli("drain", "v6", "[::1]:9", "--reason", "k", *flags))
        ok(cli("undrain", "app", "10.0.0.5:8080", *flags))
        ok(cli("maintenance", "schedule", "www", "--start", "2099-01-01T00:00:00Z", "--end",
               "2099-01-01T01:00:00Z", *flags))
        ok(cli("audit", "--limit", "7", "--offset", "3", *flags))
        ok(cli("reload", *flags))
    bearer = f"Bearer {TOKEN}"
    assert [(m, p, a) for m, p, a, _ in fake.seen] == [
        ("PUT", "/v1/sites/www/maintenance", bearer),
        ("PUT", "/v1/sites/www/maintenance", bearer),
        ("PUT", "/v1/targets/v6/%5B::1%5D:9/drain", bearer),
        ("DELETE", "/v1/targets/app/10.0.0.5:8080/drain", bearer),
        ("POST", "/v1/sites/www/maintenance/windows", bearer),
        ("GET", "/v1/audit?offset=3&limit=7", bearer),
        ("POST", "/v1/reload", bearer)]
    bodies = [json.loads(b) if b else None for *_, b in fake.seen]
    assert bodies[0] == {"on": True, "reason": "r", "message": "m", "until": "2026-11-24T03:00:00Z"}
    assert bodies[1] == {"on": False}
    assert bodies[2] == {"reason": "k"}
    assert bodies[4] == {"start": "2099-01-01T00:00:00Z", "end": "2099-01-01T01:00:00Z"}
    assert bodies[6] is None


def test_server_errors_and_odd_answers_are_exit_1():
    with FakeAdmin(500, b'{"error": "the change was not applied: disk full"}') as fake:
        line = one_error_line(cli("maintenance", "on", "www", "--admin", fake.address,
                                  "--token", TOKEN), 1)
    assert line == ("intermission: 500 Internal Server Error: the change was not applied: "
                    "disk full")
    with FakeAdmin(200, b"<html>a proxy login page</html>") as fake:
        line = one_error_line(cli("sites", "--admin", fake.address, "--token", TOKEN), 1)
    assert "without a JSON object" in line
    with FakeAdmin(403, b'{"error": "two\\nlines"}') as fake:
        line = one_error_line(cli("sites", "--admin", fake.address, "--token", TOKEN), 1)
    assert line == "intermission: 403 Forbidden: two lines"


def test_unknown_site_is_exit_1_with_the_api_message(gw):
    for args in (["maintenance", "on", "nope"], ["maintenance", "status", "nope"],
                 ["maintenance", "clear", "nope"], ["maintenance", "schedule", "nope", "--list"]):
        line = one_error_line(run(gw, *args), 1)
        assert line == "intermission: 404 Not Found: no site named 'nope'", line


@pytest.mark.parametrize("args, says", [
    (["maintenance"], "maintenance needs a command: on, off, clear, status or schedule"),
    (["maintenance", "on"], "SITE"),
    (["maintenance", "toggle", "www"], "schedule, not 'toggle'"),
    (["maintenance", "on", "www", "--colour", "red"], "--colour"),
    (["maintenance", "on", "a/b"], "bad site name"),
    (["audit", "--limit", "0"], "--limit"),
    (["audit", "--limit", "many"], "--limit"),
    (["drain", "app"], "TARGET"),
    (["drain", "app", "no-port"], "host:port"),
    (["sites", "--admin", "https://127.0.0.1:9901"], "plain HTTP"),
    (["sites", "--admin", "127.0.0.1"], "--admin"),
])
def test_bad_usage_is_exit_2_and_one_line(gw, args, says):
    result = cli(*args, "--token", TOKEN) if "--admin" in args else run(gw, *args)
    line = one_error_line(result, 2)
    assert says in line, line


def test_help_documents_the_commands_and_exit_codes():
    top = cli("--help")
    assert top.returncode == 0
    for command in ("maintenance", "sites", "targets", "drain", "undrain", "reload", "audit"):
        assert command in top.stdout
    for args in (["maintenance", "--help"], ["maintenance", "on", "--help"], ["drain", "--help"]):
        r = cli(*args)
        assert r.returncode == 0 and "Exit codes: 0 done" in r.stdout, r.stdout
    assert "--until" in cli("maintenance", "on", "--help").stdout


# --- drain, undrain, reload (need the server side of issue 4) ------------------------------

def backends_hit(gw, n=8):
    return {requests.get(gw.url + "/", timeout=5).headers["X-Backend"] for _ in range(n)}


def test_drain_and_undrain_a_target(gw):
    needs(gw, "GET", "/v1/targets/app/x/drain")
    assert backends_hit(gw) == {"a", "b"}
    out = ok(run(gw, "drain", "app", gw.backends[0], "--reason", "kernel update"))
    assert out.startswith(f"target {gw.backends[0]} in group app: drained"), out
    assert backends_hit(gw) == {"b"}
    rows = [r.split() for r in ok(run(gw, "targets")).splitlines()[1:]]
    assert [r[3] for r in rows if r[1] == gw.backends[0]] == ["yes"]
    assert [r[3] for r in rows if r[1] == gw.backends[1]] == ["no"]

    out = ok(run(gw, "undrain", "app", gw.backends[0]))
    assert out.startswith(f"target {gw.backends[0]} in group app: in service"), out
    assert backends_hit(gw) == {"a", "b"}
    assert json.loads(ok(run(gw, "drain", "app", gw.backends[1], "--json")))["drained"] is True
    assert ok(run(gw, "sites")).splitlines()[1].split()[6:] == ["no", "app", "1/2"]
    ok(run(gw, "drain", "app", gw.backends[0]))
    assert ok(run(gw, "sites")).splitlines()[1].split()[6:] == ["yes", "app", "0/2"]
    entries = json.loads(ok(run(gw, "audit", "--json")))["entries"]
    assert any(e.get("reason") == "kernel update" for e in entries)


def test_drain_percent_encodes_an_ipv6_target(gw):
    needs(gw, "GET", "/v1/targets/app/x/drain")
    ok(run(gw, "drain", "v6", "[::1]:9"))
    rows = [r.split() for r in ok(run(gw, "targets")).splitlines()[1:]]
    assert [r[3] for r in rows if r[0] == "v6"] == ["yes"]
    ok(run(gw, "undrain", "v6", "[::1]:9"))


def test_drain_unknown_group_or_target_is_exit_1(gw):
    needs(gw, "GET", "/v1/targets/app/x/drain")
    line = one_error_line(run(gw, "drain", "app", "127.0.0.1:1"), 1)
    assert line.startswith("intermission: 404 Not Found: ")
    line = one_error_line(run(gw, "undrain", "nogroup", gw.backends[0]), 1)
    assert line.startswith("intermission: 404 Not Found: ")
    assert backends_hit(gw) == {"a", "b"}


def test_reload_applies_a_good_config(gw):
    needs(gw, "POST", "/v1/reload")
    text = gw.config.read_text()
    gw.config.write_text(text.replace("Back soon.", "Back after the reload."))
    out = ok(run(gw, "reload"))
    assert re.match(r"reloaded the config: 2 sites, 2 target groups, generation \d+\n", out), out
    state = json.loads(ok(run(gw, "maintenance", "status", "www", "--json")))
    assert state["config"]["message"] == "Back after the reload."
    assert json.loads(ok(run(gw, "reload", "--json")))["generation"] >= 1


def test_reload_of_a_bad_config_prints_each_error_and_keeps_serving(gw):
    needs(gw, "POST", "/v1/reload")
    gw.config.write_text(gw.config.read_text().replace("forward: app", "forward: nope"))
    # The token comes from the config being reloaded: its mistake is elsewhere.
    r = cli("reload", "-c", str(gw.config))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("intermission: 400 Bad Request: "), r.stderr
    located = [l for l in lines[:-1] if re.match(r"^.*intermission\.yaml:\d+:\d+: ", l)]
    assert len(located) == 2 and all("nope" in l for l in located), r.stderr
    assert r.stdout == "" and TOKEN not in r.stderr
    assert public_status(gw) == 200
