"""docs/openapi.yaml and the admin API agree: every documented path and method answers
with one of its documented statuses and JSON, and every answer of a known endpoint is
documented."""
import time

import pytest
import yaml

from adminlib import admin_yaml, api, write_token
from conftest import ROOT, free_port, server_yaml, wait_for_port

SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())

BODIES = {
    ("put", "/v1/sites/{site}/maintenance"): {"on": False, "reason": "spec check"},
    ("post", "/v1/sites/{site}/maintenance/windows"): {
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))},
    ("put", "/v1/targets/{group}/{target}/drain"): {"reason": "spec check"},
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory, request):
    tmp_path = tmp_path_factory.mktemp("openapi")
    write_token(tmp_path)
    port, admin_port = free_port(), free_port()
    import subprocess
    from conftest import BINARY
    text = server_yaml(port) + admin_yaml(admin_port) + """
target_groups:
  app:
    targets: ["127.0.0.1:9"]
sites:
  - name: www
    default: true
    default_action: {forward: app}
"""
    (tmp_path / "intermission.yaml").write_text(text)
    proc = subprocess.Popen([BINARY, "serve", "--config", str(tmp_path / "intermission.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(admin_port, proc)
        yield f"http://127.0.0.1:{admin_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


OPERATIONS = [(path, method) for path, item in SPEC["paths"].items()
              for method in item if method in ("get", "put", "post", "delete")]


@pytest.mark.parametrize("path,method", OPERATIONS)
def test_documented_operation_answers_a_documented_status(gw, path, method):
    url = path.format(site="www", group="app", target="127.0.0.1:9")
    r = api(gw, method.upper(), url, BODIES.get((method, path)))
    documented = SPEC["paths"][path][method]["responses"]
    assert str(r.status_code) in documented, (r.status_code, r.text)
    answer = documented[str(r.status_code)]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].split("/")[-1]]
    content_type = r.headers["Content-Type"].split(";")[0]
    assert content_type in answer.get("content", {}), (content_type, answer)
    assert "no such endpoint" not in r.text


def test_every_endpoint_of_the_router_is_documented(gw):
    # The router's endpoints, as docs/admin-api.md lists them.
    table = (ROOT / "docs" / "admin-api.md").read_text()
    import re
    for method, path in re.findall(r"^\| `(GET|PUT|POST|DELETE) (/[^ `?]*)", table, re.M):
        assert path in SPEC["paths"], path
        assert method.lower() in SPEC["paths"][path], (method, path)
