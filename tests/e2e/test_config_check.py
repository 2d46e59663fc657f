"""`intermission check` and `serve` on valid and invalid configs: every error is reported as
file:line:column: message, names the problem, and makes the command exit non-zero."""
import re
import socket

import pytest

from conftest import free_port, run_binary


def locate(text, token, nth=0):
    """1-based (line, column) of the nth occurrence of token in text."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(token, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def errors_of(stderr, path):
    """[(line, column, message)] for every `path:line:column: message` line."""
    pattern = re.compile(r"^" + re.escape(str(path)) + r":(\d+):(\d+): (.+)$", re.M)
    return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in pattern.finditer(stderr)]


VALID = """\
server:
  workers: 2
  listen: ["127.0.0.1:{port}"]
  limits: {{max_header_bytes: 16KiB, max_headers: 100, max_body_bytes: 10MiB}}
  timeouts: {{header: 10s, body: 30s, send: 30s, keepalive: 1m}}
  drain_timeout: 5s
  access_log: stderr
  log_level: info
target_groups:
  app:
    targets: ["127.0.0.1:9001", "127.0.0.1:9002"]
    balance: least_outstanding
    retries: 1
    health:
      path: /health
      expect: ["200-399"]
      interval: 2s
      timeout: 1s
      healthy_threshold: 2
      unhealthy_threshold: 2
      host: app.internal
      passive_cooldown: 10s
    pool: {{max_idle: 16, max_connections: 100, idle_timeout: 30s}}
    timeouts: {{connect: 250ms, response_header: 30s, idle: 60s, tunnel: 1h}}
  api:
    targets: ["localhost:9003", "[::1]:9004"]
    balance: round_robin
sites:
  - name: www
    hosts: ["www.example.com", "*.example.com"]
    pages:
      root: "{pages}"
      index: index.html
      cache_control: "public, max-age=300"
      cache_control_paths:
        - {{path: "/static/*", value: "public, max-age=31536000, immutable"}}
      compress: true
      watch: true
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
      - match: {{path: ["/api/*", "/v2/*"]}}
        forward: api
    default_action: {{forward: app}}
  - name: fallback
    default: true
    pages: {{root: "{pages}"}}
    default_action: {{store: {{}}}}
"""


@pytest.fixture
def pages(tmp_path):
    root = tmp_path / "pages"
    (root / "static").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hi</h1>\n")
    (root / "static" / "app.css").write_text("body{}\n")
    return root


def write(tmp_path, text, name="intermission.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def valid_text(pages):
    return VALID.format(port=free_port(), pages=pages)


def test_check_accepts_a_valid_config_with_every_key(tmp_path, pages):
    path = write(tmp_path, valid_text(pages))
    r = run_binary("check", "--config", str(path))
    assert r.returncode == 0, r.stderr
    assert errors_of(r.stderr, path) == []


def bad_config(tmp_path, pages, old, new):
    text = valid_text(pages)
    assert old in text, old
    text = text.replace(old, new, 1)
    return write(tmp_path, text), text


# (id, replaced text, replacement, token whose position the error must point at (a key or a
#  value; the column may be the key's or the value's), words the message must contain)
BAD_INPUTS = [
    ("unknown key in server", "  drain_timeout: 5s\n", "  drain_timeout: 5s\n  drian_timout: 5s\n",
     ("drian_timout", "drian_timout"), ["drian_timout"]),
    ("unknown key in a target group", "    balance: least_outstanding\n",
     "    balance: least_outstanding\n    balanse: round_robin\n",
     ("balanse", "balanse"), ["balanse"]),
    ("unknown key in a site", "  - name: fallback\n", "  - name: fallback\n    hostz: [a.b]\n",
     ("hostz", "hostz"), ["hostz"]),
    ("unknown top-level key", "target_groups:\n", "target_group:\n  x: 1\ntarget_groups:\n",
     ("target_group:", "target_group:"), ["target_group"]),
    ("wrong type: list expected", 'targets: ["localhost:9003", "[::1]:9004"]',
     'targets: "localhost:9003"',
     ("targets: \"localhost", '"localhost:9003"'), ["targets"]),
    ("wrong type: integer expected", "  workers: 2\n", "  workers: lots\n",
     ("workers", "lots"), ["lots"]),
    ("wrong type: map expected", "    pool: {max_idle: 16, max_connections: 100, idle_timeout: 30s}\n",
     "    pool: [16, 100]\n", ("pool", "[16, 100]"), ["pool"]),
    ("wrong type: boolean expected", "      compress: true\n", "      compress: maybe\n",
     ("compress", "maybe"), ["maybe"]),
    ("bad duration: unknown unit", "header: 10s", "header: 10 parsecs",
     ("header", "10 parsecs"), ["10 parsecs"]),
    ("bad duration: no unit", "      interval: 2s\n", "      interval: 2\n",
     ("interval: 2\n", "2\n      timeout"), ["interval"]),
    ("bad duration: negative", "connect: 250ms", "connect: -250ms",
     ("connect", "-250ms"), ["-250ms"]),
    ("bad address: port out of range", '"127.0.0.1:9002"', '"127.0.0.1:99999"',
     ('"127.0.0.1:99999"', '"127.0.0.1:99999"'), ["127.0.0.1:99999"]),
    ("bad address: no port", '"127.0.0.1:9002"', '"127.0.0.1"',
     ('"127.0.0.1"]', '"127.0.0.1"]'), ["127.0.0.1"]),
    ("bad address: bad IPv4", '"127.0.0.1:9002"', '"300.1.1.1:9002"',
     ('"300.1.1.1:9002"', '"300.1.1.1:9002"'), ["300.1.1.1"]),
    ("bad listen address", 'listen: ["127.0.0.1:', 'listen: ["127.0.0.256:',
     ('"127.0.0.256:', '"127.0.0.256:'), ["127.0.0.256"]),
    ("duplicate site names", "  - name: fallback\n", "  - name: www\n",
     ("www\n    default", "www\n    default"), ["duplicate", "www"]),
    ("forward to an unknown target group", "        forward: api\n", "        forward: apii\n",
     ("apii", "apii"), ["apii"]),
    ("bad balance method", "balance: round_robin", "balance: random",
     ("random", "random"), ["random"]),
    ("bad status range", 'expect: ["200-399"]', 'expect: ["399-200"]',
     ('"399-200"', '"399-200"'), ["399-200"]),
    ("bad log level", "log_level: info", "log_level: chatty",
     ("chatty", "chatty"), ["chatty"]),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_check_rejects_bad_input_with_location(tmp_path, pages, case):
    _, old, new, (key_token, value_token), words = case
    path, text = bad_config(tmp_path, pages, old, new)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0, f"check accepted a bad config:\n{text}\nstdout: {r.stdout}"
    errors = errors_of(r.stderr, path)
    assert errors, f"no file:line:column: message on stderr: {r.stderr!r}"
    key_at = locate(text, key_token)
    value_at = locate(text, value_token)
    expected_line = {key_at[0], value_at[0]}
    matching = [e for e in errors if e[0] in expected_line
                and all(w.lower() in e[2].lower() for w in words)]
    assert matching, (f"expected an error at line {sorted(expected_line)} naming {words}; "
                      f"got {errors}")
    line, column, message = matching[0]
    assert (line, column) in (key_at, value_at), (
        f"error points at {line}:{column}, expected {key_at} (key) or {value_at} (value): "
        f"{message}")


def test_check_rejects_missing_page_root(tmp_path, pages):
    missing = tmp_path / "no-such-folder"
    text = valid_text(pages).replace(f'root: "{pages}"\n      index', f'root: "{missing}"\n      index')
    path = write(tmp_path, text)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0
    errors = errors_of(r.stderr, path)
    line, _ = locate(text, str(missing))
    assert any(e[0] == line and "no-such-folder" in e[2] for e in errors), r.stderr


def test_check_rejects_page_root_that_is_a_file(tmp_path, pages):
    text = valid_text(pages).replace(f'root: "{pages}"\n      index',
                                     f'root: "{pages / "index.html"}"\n      index')
    path = write(tmp_path, text)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0
    line, _ = locate(text, "index.html\"")
    assert any(e[0] == line for e in errors_of(r.stderr, path)), r.stderr


def test_check_rejects_duplicate_yaml_key(tmp_path, pages):
    # A repeated key must not silently override the first one.
    text = valid_text(pages).replace("  drain_timeout: 5s\n", "  drain_timeout: 5s\n  drain_timeout: 6s\n")
    path = write(tmp_path, text)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0
    line, _ = locate(text, "drain_timeout: 6s")
    assert any(e[0] == line and "drain_timeout" in e[2] for e in errors_of(r.stderr, path)), r.stderr


def test_check_reports_yaml_syntax_error_with_location(tmp_path, pages):
    text = valid_text(pages).replace("  workers: 2\n", "  workers: [2\n")
    path = write(tmp_path, text)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0
    errors = errors_of(r.stderr, path)
    assert errors and errors[0][0] >= 1, r.stderr


def test_check_reports_every_error_not_just_the_first(tmp_path, pages):
    text = valid_text(pages)
    text = text.replace("  workers: 2\n", "  workers: lots\n")
    text = text.replace("header: 10s", "header: soon")
    text = text.replace("  - name: fallback\n", "  - name: www\n")
    path = write(tmp_path, text)
    r = run_binary("check", "--config", str(path))
    assert r.returncode != 0
    lines = {e[0] for e in errors_of(r.stderr, path)}
    for token in ("lots", "soon", "www\n    default"):
        assert locate(text, token)[0] in lines, (token, r.stderr)


def test_check_missing_file(tmp_path):
    r = run_binary("check", "--config", str(tmp_path / "absent.yaml"))
    assert r.returncode != 0
    assert "absent.yaml" in r.stderr


def test_serve_with_bad_config_exits_non_zero_with_the_message(tmp_path, pages):
    port = free_port()
    text = VALID.format(port=port, pages=pages).replace("header: 10s", "header: 10 parsecs")
    path = write(tmp_path, text)
    r = run_binary("serve", "--config", str(path), timeout=15)
    assert r.returncode != 0
    line, column = locate(text, "10 parsecs")
    errors = errors_of(r.stderr, path)
    assert any(e[0] == line and "10 parsecs" in e[2] for e in errors), r.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_serve_with_missing_page_root_exits_non_zero(tmp_path, pages):
    port = free_port()
    missing = tmp_path / "gone"
    text = VALID.format(port=port, pages=pages).replace(f'root: "{pages}"}}', f'root: "{missing}"}}')
    path = write(tmp_path, text)
    r = run_binary("serve", "--config", str(path), timeout=15)
    assert r.returncode != 0
    assert any("gone" in e[2] for e in errors_of(r.stderr, path)), r.stderr


def test_errors_found_after_parsing_still_say_file_line_column(tmp_path):
    # A target that does not resolve is only found when the config is put to use; the error
    # points at its line all the same.
    config = tmp_path / "late.yaml"
    config.write_text(f"""server:
  listen: ["127.0.0.1:{free_port()}"]
target_groups:
  app:
    targets:
      - "127.0.0.1:9000"
      - "no-such-host.invalid:80"
sites:
  - name: www
    default: true
    default_action: {{forward: app}}
""")
    for command in ("check", "serve"):
        out = run_binary(command, "--config", str(config))
        assert out.returncode != 0
        assert f"{config}:7:9: target group 'app': cannot resolve 'no-such-host.invalid:80'" in out.stderr, \
            out.stderr
