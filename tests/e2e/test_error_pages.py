"""Custom error responses (the CDN's custom_error_response): upstream statuses mapped to pages
of the store with an optional status override and Retry-After, unmapped statuses passed
through with the upstream's own body, gateway failures (connect refused, reset, timeout, a
response that is not HTTP) mapped to their pages, and error pages that are not publicly
addressable unless configured. Bad `errors` entries are rejected with a position."""
import gzip
import time

import pytest
import requests

from conftest import (check_config, free_port, get_as_sent, server_yaml, text_position,
                      write_tree)
from h2lib import one_by_one
from rawhttp import Conn

PAGES = {
    "index.html": "<h1>home</h1>\n",
    "errors/404.html": "<!doctype html><h1>ERROR-404-PAGE</h1>\n" + "<p>not here</p>\n" * 30,
    "errors/4xx.html": "<!doctype html><h1>ERROR-4XX-PAGE</h1>\n",
    "errors/5xx.html": "<!doctype html><h1>ERROR-5XX-PAGE</h1>\n" + "<p>sorry</p>\n" * 30,
    "errors/gateway.html": "<!doctype html><h1>ERROR-GATEWAY-PAGE</h1>\n",
    "errors/timeout.html": "<!doctype html><h1>ERROR-TIMEOUT-PAGE</h1>\n",
    "errors/bad.html": "<!doctype html><h1>ERROR-BAD-RESPONSE-PAGE</h1>\n",
    "outage.html": "<!doctype html><h1>OUTAGE-PAGE</h1>\n",
    "maintenance.html": "<!doctype html><h1>MAINTENANCE-PAGE</h1>\n",
    "oops/index.html": "<!doctype html><h1>OOPS-INDEX-PAGE</h1>\n",
}
MARKERS = [b"ERROR-404-PAGE", b"ERROR-4XX-PAGE", b"ERROR-5XX-PAGE", b"ERROR-GATEWAY-PAGE",
           b"ERROR-TIMEOUT-PAGE", b"ERROR-BAD-RESPONSE-PAGE", b"OUTAGE-PAGE",
           b"MAINTENANCE-PAGE", b"OOPS-INDEX-PAGE"]

ERRORS = """
    errors:
      - match: 404
        page: /errors/404.html
      - match: "404-410"
        page: /errors/4xx.html
      - match: [500, "502-504"]
        page: /errors/5xx.html
        status: 503
        retry_after: 30s
      - match: [connect_failed, reset]
        page: /errors/gateway.html
        status: 503
        retry_after: 15s
      - match: timeout
        page: /errors/timeout.html
      - match: [bad_response]
        page: /errors/bad.html
        status: 502
    outage: {page: /outage.html}
"""


def site_config(port, root, app, dead, resetter, errors=ERRORS, extra_site=""):
    return server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app}"]
  slow:
    targets: ["{app}"]
    timeouts: {{response_header: 400ms}}
  dead:
    targets: ["{dead}"]
  resetter:
    targets: ["{resetter}"]
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    rules:
      - match: {{path: "/dead/*"}}
        forward: dead
      - match: {{path: "/rst/*"}}
        forward: resetter
      - match: {{path: "/slow/*"}}
        forward: slow
{extra_site}    default_action: {{forward: app}}
{errors}"""


@pytest.fixture
def gw(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    resetter = backend_factory("resetter", reset=True)
    root = write_tree(tmp_path / "pages", PAGES)
    port = free_port()
    g = gateway_factory(site_config(port, root, app.address, f"127.0.0.1:{free_port()}",
                                    resetter.address), port)
    g.app = app
    return g


def markers_in(body):
    if isinstance(body, str):
        body = body.encode()
    return [m for m in MARKERS if m in body]


def assert_page(r, marker, status, retry_after=None):
    assert r.status_code == status, (r.status_code, r.headers, r.text[:200])
    assert markers_in(r.text) == [marker], r.text[:300]
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert r.headers.get("Retry-After") == retry_after, r.headers


# --- upstream statuses ---------------------------------------------------------------------

def test_upstream_404_gets_the_404_page_with_404(gw):
    r = requests.get(gw.url + "/status/404", timeout=5)
    assert_page(r, b"ERROR-404-PAGE", 404)
    assert "status 404 from app" not in r.text
    assert gw.app.requests_for("/status/404"), "the request did not reach the app"


def test_first_matching_entry_wins(gw):
    # 404 is in the first entry and in "404-410": the first entry's page.
    assert_page(requests.get(gw.url + "/status/404", timeout=5), b"ERROR-404-PAGE", 404)
    # Without a status override the original status is kept.
    for code in (405, 409, 410):
        assert_page(requests.get(gw.url + f"/status/{code}", timeout=5), b"ERROR-4XX-PAGE",
                    code)


def test_upstream_500_gets_the_5xx_page_with_503_and_retry_after(gw):
    r = requests.get(gw.url + "/status/500", timeout=5)
    assert_page(r, b"ERROR-5XX-PAGE", 503, "30")
    assert "status 500 from app" not in r.text


@pytest.mark.parametrize("code", [502, 503, 504])
def test_upstream_statuses_in_a_range_are_mapped(gw, code):
    r = requests.get(gw.url + f"/status/{code}", timeout=5)
    assert_page(r, b"ERROR-5XX-PAGE", 503, "30")
    assert "from app" not in r.text


@pytest.mark.parametrize("code", [200, 201, 400, 401, 403, 411, 429, 501, 505, 599])
def test_unmapped_statuses_pass_through_untouched(gw, code):
    r = requests.get(gw.url + f"/status/{code}", timeout=5)
    assert r.status_code == code
    assert r.text == f"status {code} from app"
    assert r.headers.get("X-Backend") == "app"
    assert not markers_in(r.text)


def test_ordinary_answers_are_untouched(gw):
    r = requests.get(gw.url + "/hello", timeout=5)
    assert (r.status_code, r.text) == (200, "hello from app")
    assert "Retry-After" not in r.headers


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): HEAD then GET on one kept-alive connection")
def test_mapped_page_answers_head_without_a_body(gw):
    with Conn(gw.port) as c:
        c.send("HEAD /status/500 HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 503 and r.body == b"" and r.header("retry-after") == "30"
        c.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"hello from app"


@pytest.mark.h2c_only("the HTTP/2 form of test_mapped_page_answers_head_without_a_body")
def test_mapped_page_answers_head_without_a_body_over_h2(gw):
    head, hello = one_by_one(gw.port, ("HEAD", "/status/500"), ("GET", "/hello"))
    assert head.status == 503 and head.header("retry-after") == "30", head
    assert hello.body == b"hello from app", hello


def test_mapped_page_is_compressed_per_accept_encoding(gw):
    r = get_as_sent(gw.port, "/status/500", [("Accept-Encoding", "gzip")])
    assert r.status == 503 and r.header("content-encoding") == "gzip", r.headers
    assert gzip.decompress(r.body).decode() == PAGES["errors/5xx.html"]


def test_replaced_bodies_keep_connections_in_sync(gw, protocol):
    """The upstream's own body of a mapped answer is dropped, not left in the pooled
    connection for the next request to read."""
    with requests.Session() as s:
        for i in range(10):
            r = s.get(gw.url + "/status/500", timeout=5)
            assert r.status_code == 503 and b"ERROR-5XX-PAGE" in r.content
            r = s.get(gw.url + f"/echo/{i}", timeout=5)
            assert r.status_code == 200 and r.json()["target"] == f"/echo/{i}", r.text[:200]
            r = s.get(gw.url + "/status/404", timeout=5)
            assert r.status_code == 404 and b"ERROR-404-PAGE" in r.content
    if protocol != "http1":
        return  # pipelining is HTTP/1.1's
    # Pipelined on one client connection too.
    with Conn(gw.port) as c:
        c.send(b"GET /status/502 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        got = [c.read_response() for _ in range(4)]
    assert [r.status for r in got] == [503, 200, 404, 200]
    assert got[1].body == got[3].body == b"hello from app"


def test_large_replaced_body_does_not_leak_into_the_next_answer(gw):
    """A mapped upstream answer with a 2 MB body: the page replaces it, and the next request
    on the same client connection gets its own answer, not the rest of that body."""
    with requests.Session() as s:
        for i in range(3):
            r = s.get(gw.url + "/status/503/2000000", timeout=10)
            assert r.status_code == 503 and markers_in(r.content) == [b"ERROR-5XX-PAGE"]
            assert len(r.content) < 10000
            r = s.get(gw.url + f"/echo/{i}", timeout=10)
            assert r.status_code == 200 and r.json()["target"] == f"/echo/{i}"
    # Unmapped with a large body: passed through whole.
    r = requests.get(gw.url + "/status/501/300000", timeout=10)
    assert r.status_code == 501 and r.content == b"x" * 300000


@pytest.mark.parametrize("name", ["500-chunked", "500-eof"])
def test_mapped_status_with_chunked_or_close_delimited_body(gw, name):
    with requests.Session() as s:
        r = s.get(gw.url + f"/raw/{name}", timeout=5)
        assert r.status_code == 503 and markers_in(r.content) == [b"ERROR-5XX-PAGE"]
        assert b"upstream500" not in r.content
        r = s.get(gw.url + "/hello", timeout=5)
        assert (r.status_code, r.text) == (200, "hello from app")


# --- gateway failures ----------------------------------------------------------------------

def test_connect_refused_gets_the_gateway_page(gw):
    t0 = time.monotonic()
    r = requests.get(gw.url + "/dead/x", timeout=5)
    assert time.monotonic() - t0 < 2
    assert_page(r, b"ERROR-GATEWAY-PAGE", 503, "15")


def test_reset_gets_the_gateway_page(gw):
    r = requests.get(gw.url + "/rst/x", timeout=5)
    assert_page(r, b"ERROR-GATEWAY-PAGE", 503, "15")


def test_upstream_closing_without_an_answer_gets_a_page(gw):
    r = requests.get(gw.url + "/close-early", timeout=5)
    assert r.status_code in (502, 503), r.status_code
    assert len(markers_in(r.text)) == 1 and b"ERROR-GATEWAY-PAGE" in r.content, r.text[:200]


def test_timeout_gets_the_timeout_page_with_504(gw):
    t0 = time.monotonic()
    r = requests.get(gw.url + "/slow/3000", timeout=10)
    elapsed = time.monotonic() - t0
    assert 0.3 <= elapsed < 2.5, elapsed
    assert_page(r, b"ERROR-TIMEOUT-PAGE", 504)


def test_bad_response_gets_the_bad_response_page(gw):
    r = requests.get(gw.url + "/garbage", timeout=5)
    assert_page(r, b"ERROR-BAD-RESPONSE-PAGE", 502)
    assert "this is not http" not in r.text
    r = requests.get(gw.url + "/raw/bad-status", timeout=5)
    assert_page(r, b"ERROR-BAD-RESPONSE-PAGE", 502)


def test_failures_without_an_entry_still_get_a_branded_page(tmp_path, backend_factory,
                                                            gateway_factory):
    """Only 404 is mapped: a connect failure gets the outage page (no bare 502 text)."""
    app = backend_factory("app")
    root = write_tree(tmp_path / "pages", PAGES)
    port = free_port()
    errors = "    errors:\n      - {match: 404, page: /errors/404.html}\n" \
             "    outage: {page: /outage.html}\n"
    gw = gateway_factory(site_config(port, root, app.address, f"127.0.0.1:{free_port()}",
                                     app.address, errors=errors), port)
    for path in ("/dead/x", "/garbage"):
        r = requests.get(gw.url + path, timeout=5)
        assert 500 <= r.status_code <= 599, (path, r.status_code)
        assert markers_in(r.text) == [b"OUTAGE-PAGE"], (path, r.text[:200])
    r = requests.get(gw.url + "/status/500", timeout=5)  # not mapped: the app's own answer
    assert (r.status_code, r.text) == (500, "status 500 from app")


# --- error pages are private ---------------------------------------------------------------

ERROR_PAGE_TARGETS = [
    "/errors/5xx.html", "/errors/404.html", "/errors/gateway.html", "/outage.html",
    "/errors/%35xx.html", "/errors/./5xx.html", "//errors/5xx.html", "/errors//5xx.html",
]


def store_site(tmp_path, gateway_factory):
    """A site that serves its page store by default, with the error pages configured."""
    root = write_tree(tmp_path / "pages", PAGES)
    port = free_port()
    return gateway_factory(server_yaml(port) + f"""
sites:
  - name: docs
    default: true
    pages: {{root: "{root}"}}
{ERRORS}""", port)


@pytest.mark.parametrize("target", ERROR_PAGE_TARGETS)
@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): un-normalized targets requests would rewrite")
def test_error_pages_are_not_addressable(tmp_path, gateway_factory, target):
    """A site that serves its page store by default still does not serve its error pages."""
    gw = store_site(tmp_path, gateway_factory)
    assert requests.get(gw.url + "/index.html", timeout=5).status_code == 200  # the store serves
    for method in ("GET", "HEAD"):
        with Conn(gw.port) as c:
            c.send(f"{method} {target} HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\n\r\n")
            r = c.read_response(method)
        assert r.status in (400, 404), (method, target, r)
        assert not markers_in(r.body), (method, target, r.body[:200])


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("target", ERROR_PAGE_TARGETS)
@pytest.mark.h2c_only("the HTTP/2 form of test_error_pages_are_not_addressable")
def test_error_pages_are_not_addressable_over_h2(tmp_path, gateway_factory, target, method):
    gw = store_site(tmp_path, gateway_factory)
    index, r, again = one_by_one(gw.port, ("GET", "/index.html"),
                                 (method, target, [("accept-encoding", "gzip, br")]),
                                 ("GET", "/index.html"))
    assert index.status == 200, index  # the store serves
    assert r.status in (400, 404), (method, target, r)
    assert not markers_in(r.body), (method, target, r)
    assert again.status == 200 and again.body == PAGES["index.html"].encode(), again


def test_error_page_used_as_a_directory_index_is_not_addressable(tmp_path, gateway_factory):
    root = write_tree(tmp_path / "pages", PAGES)
    port = free_port()
    text = server_yaml(port) + f"""
sites:
  - name: docs
    default: true
    pages: {{root: "{root}"}}
    errors:
      - {{match: "500-599", page: /oops/index.html}}
"""
    gw = gateway_factory(text, port)
    for target in ("/oops/index.html", "/oops/", "/oops"):
        r = requests.get(gw.url + target, timeout=5, allow_redirects=True)
        assert not markers_in(r.content), (target, r.status_code, r.text[:200])
        assert r.status_code == 404, (target, r.status_code)


def test_error_pages_served_when_listed_in_allow_or_by_a_page_rule(tmp_path, backend_factory,
                                                                   gateway_factory):
    app = backend_factory("app")
    root = write_tree(tmp_path / "pages", PAGES)
    port = free_port()
    extra = ("      - match: {path: /sorry}\n"
             "        page: {file: /errors/5xx.html}\n")
    errors = ERRORS + ("    maintenance:\n      enabled: true\n"
                       '      allow: ["/errors/*"]\n')
    gw = gateway_factory(site_config(port, root, app.address, f"127.0.0.1:{free_port()}",
                                     app.address, errors=errors, extra_site=extra), port)
    r = requests.get(gw.url + "/errors/5xx.html", timeout=5)
    assert (r.status_code, markers_in(r.content)) == (200, [b"ERROR-5XX-PAGE"])
    r = requests.get(gw.url + "/errors/404.html", timeout=5)
    assert (r.status_code, markers_in(r.content)) == (200, [b"ERROR-404-PAGE"])
    # The outage page is not under /errors/*: still private.
    r = requests.get(gw.url + "/outage.html", timeout=5)
    assert b"OUTAGE-PAGE" not in r.content
    # A page rule (bypassed maintenance would not matter: allow covers only /errors/*).
    port2 = free_port()
    gw2 = gateway_factory(site_config(port2, root, app.address, f"127.0.0.1:{free_port()}",
                                      app.address, extra_site=extra), port2)
    r = requests.get(gw2.url + "/sorry", timeout=5)
    assert (r.status_code, markers_in(r.content)) == (200, [b"ERROR-5XX-PAGE"])
    r = requests.get(gw2.url + "/errors/5xx.html", timeout=5)  # forwarded to the app
    assert (r.status_code, r.text) == (200, "hello from app")


# --- bad `errors` entries ------------------------------------------------------------------

def errors_config(tmp_path, errors, pages=True):
    root = write_tree(tmp_path / "pages", PAGES)
    site_pages = f'    pages: {{root: "{root}"}}\n' if pages else ""
    return server_yaml(free_port()) + f"""
target_groups:
  app: {{targets: ["127.0.0.1:9"]}}
sites:
  - name: www
    default: true
{site_pages}    default_action: {{forward: app}}
    errors:
{errors}"""


def assert_rejected_at(tmp_path, text, token, words=()):
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc != 0, f"check accepted:\n{text}"
    line, _ = text_position(text, token)
    assert any(e[0] == line and all(w.lower() in e[2].lower() for w in words) for e in errors), \
        f"expected an error at line {line} naming {list(words)}; got:\n{stderr}"


def test_check_accepts_the_errors_block(tmp_path):
    text = errors_config(tmp_path, ERRORS.split("errors:\n", 1)[1])
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc == 0 and errors == [], stderr


def test_check_rejects_a_missing_error_page(tmp_path):
    text = errors_config(tmp_path, "      - {match: 500, page: /errors/missing.html}\n")
    assert_rejected_at(tmp_path, text, "/errors/missing.html", ["missing.html"])


def test_check_rejects_an_unknown_failure_name(tmp_path):
    text = errors_config(tmp_path, "      - {match: [500, exploded], page: /errors/5xx.html}\n")
    assert_rejected_at(tmp_path, text, "exploded", ["exploded"])


@pytest.mark.parametrize("match", ['"504-502"', "600", "99", '"500-"', "[]"])
def test_check_rejects_bad_statuses(tmp_path, match):
    text = errors_config(tmp_path, f"      - {{match: {match}, page: /errors/5xx.html}}\n")
    assert_rejected_at(tmp_path, text, f"match: {match}")


def test_check_rejects_a_bad_override_status(tmp_path):
    text = errors_config(tmp_path, "      - {match: 500, page: /errors/5xx.html, status: 700}\n")
    assert_rejected_at(tmp_path, text, "status: 700")


def test_check_rejects_an_entry_without_page(tmp_path):
    text = errors_config(tmp_path, "      - {match: 500, status: 503}\n")
    assert_rejected_at(tmp_path, text, "match: 500", ["page"])


def test_check_rejects_errors_in_a_site_without_pages(tmp_path):
    text = errors_config(tmp_path, "      - {match: 500, page: /errors/5xx.html}\n", pages=False)
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc != 0 and errors, stderr


def test_no_healthy_target_gets_its_error_page(tmp_path, backend_factory, gateway_factory):
    from conftest import wait_until
    root = write_tree(tmp_path / "pages", {"maintenance.html": "<h1>OUTAGE-PAGE</h1>\n",
                                           "errors/nh.html": "<h1>NO-HEALTHY-TARGET-PAGE</h1>\n"})
    app = backend_factory("app")
    port = free_port()
    gw = gateway_factory(server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
    health: {{path: /health, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 1}}
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    errors:
      - {{match: no_healthy_target, page: /errors/nh.html, status: 503, retry_after: 30s}}
    default_action: {{forward: app}}
""", port)
    assert requests.get(gw.url + "/x", timeout=5).status_code == 200
    app.kill()
    # (a Response is falsy when its status is an error: wrap it)
    got = wait_until(lambda: (lambda r: [r] if "NO-HEALTHY" in r.text else None)(
        requests.get(gw.url + "/x", timeout=5)), timeout=5)
    assert got, "the no_healthy_target page was never served"
    r = got[0]
    assert r.status_code == 503 and r.headers.get("Retry-After") == "30"
    assert "OUTAGE-PAGE" not in r.text
