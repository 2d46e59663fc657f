"""TLS to the targets (https://): verified against a CA file, with SNI and the name to check,
an optional client certificate, health checks over the same TLS; a target that fails
verification is a gateway failure answered with the branded page and logged with why."""
import pytest
import requests

from adminlib import admin_yaml, api, write_token
from certs import CA
from conftest import free_port, server_yaml, wait_until, write_tree


@pytest.fixture
def pki(tmp_path):
    ca = CA(tmp_path / "ca")
    other = CA(tmp_path / "other-ca", "another CA")
    server = ca.issue("app", ["app.internal"], ips=["127.0.0.1"])
    client = ca.issue("client", ["gateway.internal"])
    return ca, other, server, client


def start(tmp_path, backend_factory, gateway_factory, pki, group_tls, backend_args=(), health=""):
    ca, other, (cert, key), client = pki
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": "<p>we are fixing it</p>\n"})
    app = backend_factory("app", tls_args=["--cert", str(cert), "--key", str(key), *backend_args])
    port, admin_port = free_port(), free_port()
    text = server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["https://{app.address}"]
    tls: {group_tls}
{health}
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    errors:
      - {{match: [connect_failed, reset], page: /maintenance.html, status: 502}}
    default_action: {{forward: app}}
"""
    gw = gateway_factory(text, port)
    gw.admin = f"http://127.0.0.1:{admin_port}"
    return gw


def test_verified_https_target(tmp_path, backend_factory, gateway_factory, pki):
    ca = pki[0]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {ca.pem}}}")
    r = requests.get(gw.url + "/x", timeout=5)
    assert r.status_code == 200 and r.text == "hello from app"
    echo = requests.get(gw.url + "/echo", timeout=5).json()
    assert echo["method"] == "GET" and echo["backend"] == "app"


def test_large_bodies_both_ways_to_an_https_target(tmp_path, backend_factory, gateway_factory, pki):
    ca = pki[0]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {ca.pem}}}")
    n = 12 * 1024 * 1024 + 5  # many TLS records each way, on a pooled connection
    for _ in range(2):
        r = requests.get(gw.url + f"/bytes/{n}", timeout=60)
        assert r.status_code == 200 and len(r.content) == n
    body = bytes(range(256)) * (n // 256)
    up = requests.post(gw.url + "/sink", data=body, timeout=60)
    assert up.status_code == 200 and str(len(body)) in up.text, up.text[:200]


def test_server_name_is_sent_and_checked(tmp_path, backend_factory, gateway_factory, pki):
    ca = pki[0]
    gw = start(tmp_path, backend_factory, gateway_factory, pki,
               f"{{ca_file: {ca.pem}, server_name: app.internal}}")
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200


@pytest.mark.parametrize("group_tls,why", [
    ("{{ca_file: {other}}}", "certificate refused"),
    ("{{ca_file: {ca}, server_name: wrong.internal}}", "certificate refused"),
])
def test_a_refused_certificate_is_a_gateway_failure(tmp_path, backend_factory, gateway_factory, pki,
                                                   group_tls, why):
    ca, other = pki[0], pki[1]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, group_tls.format(ca=ca.pem, other=other.pem))
    r = requests.get(gw.url + "/x", headers={"Accept": "text/html"}, timeout=5)
    assert r.status_code == 502 and "we are fixing it" in r.text, (r.status_code, r.text[:200])
    assert wait_until(lambda: why in gw.log_text(), timeout=5), gw.log_text()[-2000:]


def test_verify_false_accepts_any_certificate(tmp_path, backend_factory, gateway_factory, pki):
    other = pki[1]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {other.pem}, verify: false}}")
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200


def test_client_certificate_for_a_target_that_requires_one(tmp_path, backend_factory, gateway_factory, pki):
    ca, _, _, (ccert, ckey) = pki
    gw = start(tmp_path, backend_factory, gateway_factory, pki,
               f"{{ca_file: {ca.pem}, client_cert: {ccert}, client_key: {ckey}}}",
               backend_args=["--client-ca", str(ca.pem)])
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200


def test_without_the_client_certificate_the_target_refuses(tmp_path, backend_factory, gateway_factory, pki):
    ca = pki[0]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {ca.pem}}}",
               backend_args=["--client-ca", str(ca.pem)])
    r = requests.get(gw.url + "/x", headers={"Accept": "text/html"}, timeout=5)
    assert r.status_code == 502 and "we are fixing it" in r.text


HEALTH = "    health: {path: /health, interval: 300ms, timeout: 300ms, healthy_threshold: 1, unhealthy_threshold: 1}\n"


def target_state(gw):
    return api(gw.admin, "GET", "/v1/targets").json()["target_groups"][0]["targets"][0]


def test_health_checks_use_the_same_tls(tmp_path, backend_factory, gateway_factory, pki):
    ca = pki[0]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {ca.pem}}}", health=HEALTH)
    assert wait_until(lambda: target_state(gw)["last_check"] is not None, timeout=5)
    assert target_state(gw)["state"] == "healthy", target_state(gw)


def test_health_check_refuses_an_unverified_target(tmp_path, backend_factory, gateway_factory, pki):
    other = pki[1]
    gw = start(tmp_path, backend_factory, gateway_factory, pki, f"{{ca_file: {other.pem}}}", health=HEALTH)
    assert wait_until(lambda: target_state(gw)["state"] == "unhealthy", timeout=5)
    assert "certificate refused" in target_state(gw)["last_error"]
    r = requests.get(gw.url + "/x", headers={"Accept": "text/html"}, timeout=5)
    assert r.status_code == 503 and "we are fixing it" in r.text  # the outage page


def test_bad_upstream_tls_files_are_errors(tmp_path, backend_factory, gateway_factory, pki):
    from conftest import run_binary
    config = tmp_path / "gw.yaml"
    config.write_text(server_yaml(free_port()) + """
target_groups:
  app:
    targets: ["https://127.0.0.1:9"]
    tls: {ca_file: missing-ca.pem}
sites:
  - name: www
    default: true
    default_action: {forward: app}
""")
    out = run_binary("check", "--config", str(config))
    assert out.returncode != 0 and "missing-ca.pem" in out.stderr and "target group 'app'" in out.stderr
    config.write_text(config.read_text().replace("{ca_file: missing-ca.pem}", "{client_cert: c.pem}"))
    out = run_binary("check", "--config", str(config))
    assert out.returncode != 0 and "expected both client_cert and client_key" in out.stderr
