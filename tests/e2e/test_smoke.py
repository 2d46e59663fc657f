"""The gateway serves a site from its page store and forwards the rest."""
import requests

from conftest import free_port, h2c_server_yaml


def config(port, backend, pages):
    return f"""
server:
  workers: 2
  listen: ["127.0.0.1:{port}"]
  access_log: "off"
{h2c_server_yaml()}target_groups:
  app:
    targets: ["{backend}"]
sites:
  - name: www
    default: true
    pages: {{root: "{pages}"}}
    rules:
      - match: {{path: "/static/*"}}
        store: {{}}
    default_action: {{forward: app}}
"""


def test_store_and_forward(tmp_path, backend_factory, gateway_factory):
    pages = tmp_path / "pages"
    (pages / "static").mkdir(parents=True)
    (pages / "static" / "site.css").write_text("body { color: #123; }\n")
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(config(port, app.address, pages), port)

    r = requests.get(gw.url + "/static/site.css")
    assert r.status_code == 200
    assert r.text == "body { color: #123; }\n"
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"

    r = requests.get(gw.url + "/anything")
    assert r.status_code == 200
    assert r.text == "hello from app"
    assert "intermission" in r.headers["Via"]
    assert gw.stop() == 0
