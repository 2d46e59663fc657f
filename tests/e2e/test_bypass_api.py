"""An operator gets a preview of the real site during maintenance without computing an
HMAC by hand: POST /v1/sites/{site}/bypass returns a signed, time-limited token and the URL
that turns it into the bypass cookie."""
import pytest
import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import free_port, server_yaml, write_tree

SECRET = "cookie-secret-0123456789abcdef"


def start(tmp_path, backend_factory, gateway_factory, cookie=True):
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": "<p>back soon</p>\n"})
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    bypass = f"      bypass: {{cookie: {{secret: {SECRET}, ttl: 2h}}}}\n" if cookie else ""
    gw = gateway_factory(server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    maintenance:
      enabled: true
{bypass}    default_action: {{forward: app}}
""", port)
    gw.admin = f"http://127.0.0.1:{admin_port}"
    return gw


def test_issued_token_gives_a_browser_the_real_site(tmp_path, backend_factory, gateway_factory):
    gw = start(tmp_path, backend_factory, gateway_factory)
    assert requests.get(gw.url + "/", timeout=5).status_code == 503
    r = api(gw.admin, "POST", "/v1/sites/www/bypass", {"ttl": "30m"})
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["path"] == "/.intermission/bypass?token=" + grant["token"]
    browser = requests.Session()
    first = browser.get(gw.url + grant["path"], timeout=5, allow_redirects=False)
    assert first.status_code == 302 and "intermission_bypass" in first.headers["Set-Cookie"]
    assert "Max-Age=1800" in first.headers["Set-Cookie"] or "Max-Age=179" in first.headers["Set-Cookie"]
    page = browser.get(gw.url + "/", timeout=5)
    assert page.status_code == 200 and page.text == "hello from app"
    # Visitors still get the page.
    assert requests.get(gw.url + "/", timeout=5).status_code == 503


def test_issuing_is_audited_without_the_token(tmp_path, backend_factory, gateway_factory):
    gw = start(tmp_path, backend_factory, gateway_factory)
    token = api(gw.admin, "POST", "/v1/sites/www/bypass").json()["token"]
    entry = api(gw.admin, "GET", "/v1/audit?limit=1").json()["entries"][0]
    assert entry["action"] == "bypass.issue" and entry["target"] == "www" and entry["after"]["expires"]
    assert token not in str(entry) and token.split(".")[1] not in gw.log_text()


@pytest.mark.parametrize("body,status,message", [
    ({"ttl": "25h"}, 400, "bad 'ttl'"),
    ({"ttl": 30}, 400, "bad 'ttl'"),
    ({"ttl": "soon"}, 400, "bad 'ttl'"),
    ({"site": "x"}, 400, "unknown field 'site'"),
    ("[]", 400, "JSON object"),
])
def test_bad_bypass_requests(tmp_path, backend_factory, gateway_factory, body, status, message):
    gw = start(tmp_path, backend_factory, gateway_factory)
    r = api(gw.admin, "POST", "/v1/sites/www/bypass", body)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_bypass_needs_a_cookie_secret_a_site_and_the_token(tmp_path, backend_factory, gateway_factory):
    gw = start(tmp_path, backend_factory, gateway_factory, cookie=False)
    r = api(gw.admin, "POST", "/v1/sites/www/bypass")
    assert r.status_code == 409 and "cookie.secret_file" in r.json()["error"]
    assert api(gw.admin, "POST", "/v1/sites/nope/bypass").status_code == 404
    assert api(gw.admin, "GET", "/v1/sites/www/bypass").status_code == 405
    assert api(gw.admin, "POST", "/v1/sites/www/bypass", token=None).status_code == 401
    assert TOKEN not in gw.log_text()
