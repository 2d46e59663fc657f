"""Sites chosen by the Host header (exact, wildcard, default) and path rules choosing the page
store or a target group."""
import pytest
import requests

from conftest import free_port, server_yaml
from rawhttp import exchange


@pytest.fixture
def routed(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    api = backend_factory("api")
    roots = {}
    for site in ("www", "wild", "fallback"):
        root = tmp_path / f"pages-{site}"
        (root / "static").mkdir(parents=True)
        (root / "index.html").write_text(f"index of {site}\n")
        (root / "static" / "file.txt").write_text(f"static file of {site}\n")
        roots[site] = root
    port = free_port()
    config = server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
  api:
    targets: ["{api.address}"]
sites:
  - name: www
    hosts: ["www.example.com", "example.com"]
    pages: {{root: "{roots['www']}"}}
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
      - match: {{path: ["/api/*", "/v2/*"]}}
        forward: api
    default_action: {{forward: app}}
  - name: wild
    hosts: ["*.example.org"]
    pages: {{root: "{roots['wild']}"}}
    rules:
      - match: {{path: "/app/*"}}
        forward: app
  - name: fallback
    default: true
    pages: {{root: "{roots['fallback']}"}}
    default_action: {{store: {{}}}}
"""
    return gateway_factory(config, port)


def get(gw, path, host):
    return requests.get(gw.url + path, headers={"Host": host}, timeout=5)


def test_exact_host_default_action_forwards(routed):
    r = get(routed, "/anything", "www.example.com")
    assert r.status_code == 200
    assert r.text == "hello from app"
    r = get(routed, "/", "example.com")
    assert r.text == "hello from app"


def test_host_match_ignores_case_and_port(routed):
    assert get(routed, "/x", "WWW.Example.COM").text == "hello from app"
    assert get(routed, "/x", "www.example.com:8080").text == "hello from app"
    assert get(routed, "/static/file.txt", "www.example.com:8080").text == "static file of www\n"


def test_path_rule_to_page_store(routed):
    r = get(routed, "/static/file.txt", "www.example.com")
    assert r.status_code == 200
    assert r.text == "static file of www\n"
    r = get(routed, "/static/missing.txt", "www.example.com")
    assert r.status_code == 404
    assert "hello from" not in r.text


def test_path_rule_with_several_globs_to_other_group(routed):
    assert get(routed, "/api/users", "www.example.com").text == "hello from api"
    assert get(routed, "/v2/x", "www.example.com").text == "hello from api"
    # Not matched by any rule: the default action.
    assert get(routed, "/apiary", "www.example.com").text == "hello from app"
    assert get(routed, "/static", "www.example.com").text == "hello from app"


def test_wildcard_host(routed):
    r = get(routed, "/", "shop.example.org")
    assert r.status_code == 200
    assert r.text == "index of wild\n"
    assert get(routed, "/static/file.txt", "a.example.org").text == "static file of wild\n"
    assert get(routed, "/app/x", "blog.example.org").text == "hello from app"


def test_wildcard_does_not_match_the_apex(routed):
    # "*.example.org" names subdomains; the bare domain is not one of them.
    assert get(routed, "/", "example.org").text == "index of fallback\n"


def test_unknown_host_goes_to_default_site(routed):
    r = get(routed, "/", "nobody.test")
    assert r.status_code == 200
    assert r.text == "index of fallback\n"
    assert get(routed, "/static/file.txt", "other.test").text == "static file of fallback\n"


@pytest.mark.http1_only("absolute-form request target and Host (RFC 9112 §3.2.2)")
def test_host_from_absolute_form_target(routed):
    # RFC 9112 §3.2.2: with an absolute-form target the Host is the target's authority.
    r = exchange(routed.port, b"GET http://www.example.com/static/file.txt HTTP/1.1\r\n"
                              b"Host: nobody.test\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert r.body == b"static file of www\n"


def test_unknown_host_without_default_site_is_404(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    port = free_port()
    config = server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    hosts: ["www.example.com", "*.example.net"]
    default_action: {{forward: app}}
"""
    gw = gateway_factory(config, port)
    assert get(gw, "/", "www.example.com").text == "hello from app"
    assert get(gw, "/", "x.example.net").text == "hello from app"
    for host in ("nobody.test", "example.net", "www.example.com.evil.test"):
        r = get(gw, "/", host)
        assert r.status_code == 404, host
        assert "hello from" not in r.text
    assert app.stats()["requests"] == 2


def test_every_listen_address_serves(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    port, port2 = free_port(), free_port()
    config = server_yaml(port).replace(f'listen: ["127.0.0.1:{port}"]',
                                       f'listen: ["127.0.0.1:{port}", "127.0.0.1:{port2}"]') + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    default_action: {{forward: app}}
"""
    gateway_factory(config, port)
    for p in (port, port2):
        r = requests.get(f"http://127.0.0.1:{p}/x", timeout=5)
        assert r.text == "hello from app"
