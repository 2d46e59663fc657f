"""Listener rules: each condition (path, host, header, method, query, source) alone and
combined (AND across conditions, OR within one), first match wins, the default action, and
every action: forward, weighted forward among two groups, fixed, redirect with its location
template, page. Bad rules are rejected by `intermission check` with file:line:column."""
import collections
import time

import pytest
import requests

from conftest import check_config, free_port, server_yaml, text_position, write_tree
from h2lib import one_by_one
from rawhttp import Conn

def wait_for_v6(port, timeout=5.0):
    """The gateway is known to listen on 127.0.0.1; wait for its [::1] socket too."""
    import socket
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("::1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


PROMO = "<!doctype html><title>Promo</title>\n<h1>PROMO-PAGE</h1>\n" + "<p>offer</p>\n" * 40
GONE = "<!doctype html><title>Gone</title>\n<h1>GONE-PAGE</h1>\n"

RULES = """
      - match: {path: "/h/*", host: ["api.example.com", "*.api.example.com"]}
        fixed: {body: host-rule}
      - match: {path: "/hd/*", header: {name: X-Canary, value: ["1", "yes*"]}}
        forward: canary
      - match:
          path: "/hd2/*"
          header: [{name: X-A, value: a}, {name: X-B, value: ["b", "bb"]}]
        fixed: {body: two-headers}
      - match: {path: "/m/*", method: [POST, put]}
        fixed: {body: write-method}
      - match: {path: "/q/*", query: [{key: version, value: "2*"}, {key: debug}]}
        fixed: {body: query-rule}
      - match: {path: "/s/*", source: ["10.0.0.0/8", "127.0.0.0/8"]}
        fixed: {body: source-in}
      - match: {path: "/s2/*", source: ["10.0.0.0/8", "::1"]}
        fixed: {body: source-out}
      - match: {path: "/and/*", method: GET, header: {name: X-K, value: k}, query: {key: z}}
        fixed: {body: all-conditions}
      - match: {path: ["/first/*", "/also-first"]}
        fixed: {body: first}
      - match: {path: "/first/*"}
        fixed: {body: second}
      - match: {path: "/fixed"}
        fixed: {status: 429, content_type: "application/problem+json", body: '{"title":"slow down"}', retry_after: 45s}
      - match: {path: "/plain"}
        fixed: {body: "just text"}
      - match: {path: "/old/*"}
        redirect: {location: "https://{host}/new{path}?{query}", status: 301}
      - match: {path: "/go"}
        redirect: {location: "/target"}
      - match: {path: "/temp"}
        redirect: {location: "https://elsewhere.example{path}", status: 307}
      - match: {path: "/promo"}
        page: {file: /promo.html}
      - match: {path: "/gone/*"}
        page: {file: /gone.html, status: 410, retry_after: 10s}
      - match: {path: "/w/*"}
        forward: [{group: app, weight: 50}, {group: canary, weight: 50}]
      - match: {path: "/w99/*"}
        forward: [{group: app, weight: 99}, {group: canary, weight: 1}]
      - match: {path: "/w1/*"}
        forward: [{group: app, weight: 1}, {group: canary, weight: 99}]
      - match: {path: "/static/?.txt"}
        store: {}
      - match: {}
        fixed: {body: catch-all}
"""


@pytest.fixture
def ruled(tmp_path, backend_factory, gateway_factory):
    app = backend_factory("app")
    canary = backend_factory("canary")
    root = write_tree(tmp_path / "pages", {"promo.html": PROMO, "gone.html": GONE,
                                           "static/a.txt": "file a\n",
                                           "static/ab.txt": "file ab\n"})
    port = free_port()
    text = server_yaml(port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
  canary:
    targets: ["{canary.address}"]
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    rules:{RULES}
    default_action: {{forward: app}}
  - name: plain
    hosts: [plain.example]
    rules:
      - match: {{path: "/c/*"}}
        forward: canary
    default_action: {{forward: app}}
"""
    gw = gateway_factory(text, port)
    gw.app, gw.canary = app, canary
    return gw


def get(gw, path, headers=None, method="GET", **kw):
    return requests.request(method, gw.url + path, headers=headers or {}, timeout=5,
                            allow_redirects=False, **kw)


def raw(gw, request):
    with Conn(gw.port) as c:
        c.send(request)
        return c.read_response(request.split(" ", 1)[0])


# --- conditions ----------------------------------------------------------------------------

@pytest.mark.parametrize("host,matched", [
    ("api.example.com", True),
    ("API.Example.COM", True),               # lowercased
    ("api.example.com:8080", True),          # without its port
    ("eu.api.example.com", True),            # wildcard
    ("a.b.api.example.com", True),           # `*` runs over dots
    ("api.example.com.evil.net", False),
    ("example.com", False),
    ("xapi.example.com", False),
])
def test_host_condition(ruled, host, matched):
    r = get(ruled, "/h/x", {"Host": host})
    assert r.status_code == 200
    assert r.text == ("host-rule" if matched else "catch-all"), (host, r.text)


@pytest.mark.parametrize("headers,matched", [
    ({"X-Canary": "1"}, True),
    ({"x-canary": "yes"}, True),             # header name case-insensitive
    ({"X-Canary": "yes-please"}, True),      # value glob
    ({"X-Canary": "YES"}, False),            # value globs are case-sensitive
    ({"X-Canary": "0"}, False),
    ({"X-Canary": "11"}, False),
    ({"X-Other": "1"}, False),
    ({}, False),
])
def test_header_condition_forwards_to_the_canary(ruled, headers, matched):
    r = get(ruled, "/hd/x", headers)
    assert r.status_code == 200
    if matched:
        assert r.text == "hello from canary", headers
    else:
        assert r.text == "catch-all", (headers, r.text)


@pytest.mark.parametrize("headers,matched", [
    ({"X-A": "a", "X-B": "b"}, True),
    ({"X-A": "a", "X-B": "bb"}, True),
    ({"X-A": "a"}, False),                   # every header entry must hold
    ({"X-B": "b"}, False),
    ({"X-A": "a", "X-B": "c"}, False),
])
def test_several_header_entries_must_all_hold(ruled, headers, matched):
    assert get(ruled, "/hd2/x", headers).text == ("two-headers" if matched else "catch-all")


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): one header name sent twice as two lines")
def test_header_repeated_one_field_matching_is_enough(ruled):
    r = raw(ruled, "GET /hd/x HTTP/1.1\r\nHost: a\r\nX-Canary: 0\r\nX-Canary: 1\r\n\r\n")
    assert r.body == b"hello from canary"


@pytest.mark.h2c_only("the HTTP/2 form of test_header_repeated_one_field_matching_is_enough")
def test_header_repeated_one_field_matching_is_enough_over_h2(ruled):
    [r] = one_by_one(ruled.port, ("GET", "/hd/x", [("x-canary", "0"), ("x-canary", "1")]))
    assert r.body == b"hello from canary", r


@pytest.mark.parametrize("method,matched", [
    ("POST", True), ("PUT", True), ("GET", False), ("DELETE", False), ("PATCH", False),
])
def test_method_condition(ruled, method, matched):
    r = get(ruled, "/m/x", method=method, data=b"body" if method in ("POST", "PUT") else None)
    assert r.text == ("write-method" if matched else "catch-all"), (method, r.text)


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): HEAD framing read off the wire")
def test_method_condition_head(ruled):
    r = raw(ruled, "HEAD /m/x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.status == 200 and r.body == b""  # HEAD is not POST/PUT: the catch-all, bodiless


@pytest.mark.h2c_only("the HTTP/2 form of test_method_condition_head")
def test_method_condition_head_over_h2(ruled):
    [r] = one_by_one(ruled.port, ("HEAD", "/m/x"))  # one_by_one checks HEAD is bodiless
    assert r.status == 200, r


QUERIES = [
    ("version=2&debug", True),
    ("debug=1&version=2.1", True),
    ("a=b&version=20&debug=&c=d", True),
    ("version=1&version=2&debug", True),     # any occurrence of the key may match
    ("version=2", False),                    # `debug` must be present too
    ("debug", False),
    ("version=3&debug", False),
    ("version=%32&debug", False),            # raw value, not percent-decoded
    ("xversion=2&debug", False),
    ("", False),
]


@pytest.mark.parametrize("query,matched", QUERIES)
@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): query strings requests would rewrite")
def test_query_condition(ruled, query, matched):
    # Raw socket: requests would rewrite %32 into 2.
    r = raw(ruled, f"GET /q/x{'?' + query if query else ''} HTTP/1.1\r\nHost: a\r\n\r\n")
    r.text = r.body.decode()
    assert r.text == ("query-rule" if matched else "catch-all"), (query, r.text)


@pytest.mark.parametrize("query,matched", QUERIES)
@pytest.mark.h2c_only("the HTTP/2 form of test_query_condition")
def test_query_condition_over_h2(ruled, query, matched):
    [r] = one_by_one(ruled.port, ("GET", f"/q/x{'?' + query if query else ''}"))
    assert r.body.decode() == ("query-rule" if matched else "catch-all"), (query, r)


def test_source_condition(ruled):
    # The tests connect from 127.0.0.1: in 127.0.0.0/8, not in 10.0.0.0/8 or ::1.
    assert get(ruled, "/s/x").text == "source-in"
    assert get(ruled, "/s2/x").text == "catch-all"


def test_source_condition_over_ipv6(tmp_path, gateway_factory):
    port = free_port()
    text = server_yaml(port).replace(f'listen: ["127.0.0.1:{port}"]',
                                     f'listen: ["127.0.0.1:{port}", "[::1]:{port}"]') + """
sites:
  - name: www
    default: true
    rules:
      - match: {source: "::1"}
        fixed: {body: v6-loopback}
      - match: {source: "127.0.0.0/8"}
        fixed: {body: v4-loopback}
    default_action: {fixed: {body: other}}
"""
    gateway_factory(text, port)
    wait_for_v6(port)
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "v4-loopback"
    assert requests.get(f"http://[::1]:{port}/", timeout=5).text == "v6-loopback"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): CR/LF injection in an HTTP/1.1 request line")
def test_redirect_template_cannot_inject_headers(ruled):
    r = raw(ruled, "GET /old/a%0d%0aX-Injected:%20yes?q=%0d%0aX-Q:%201 HTTP/1.1\r\n"
                   "Host: www.example.com\r\n\r\n")
    assert r.status in (301, 400), r
    assert r.header("x-injected") is None and r.header("x-q") is None, r.headers
    if r.status == 301:
        assert "\r" not in r.header("location") and "\n" not in r.header("location")


def test_conditions_are_anded(ruled):
    full = {"X-K": "k"}
    assert get(ruled, "/and/x?z=1", full).text == "all-conditions"
    assert get(ruled, "/and/x", full).text == "catch-all"              # query missing
    assert get(ruled, "/and/x?z=1").text == "catch-all"                # header missing
    assert get(ruled, "/and/x?z=1", full, method="DELETE").text == "catch-all"  # method
    assert get(ruled, "/other?z=1", full).text == "catch-all"          # path


def test_path_globs(ruled):
    assert get(ruled, "/first/a/b/c").text == "first"                  # `*` runs over `/`
    assert get(ruled, "/also-first").text == "first"                   # OR within a condition
    assert get(ruled, "/also-first/x").text == "catch-all"             # the whole path
    assert get(ruled, "/first").text == "catch-all"
    assert get(ruled, "/static/a.txt").text == "file a\n"              # `?` is one character
    assert get(ruled, "/static/ab.txt").text == "catch-all"


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): un-normalized targets requests would rewrite")
def test_path_condition_sees_the_normalized_path(ruled):
    # ("/a/../promo" may be refused with 400: the gateway rejects dot-dot segments.)
    for target in ("/%70romo", "//promo", "/./promo"):
        r = raw(ruled, f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n")
        assert r.status == 200 and b"PROMO-PAGE" in r.body, (target, r)


@pytest.mark.h2c_only("the HTTP/2 form of test_path_condition_sees_the_normalized_path")
def test_path_condition_sees_the_normalized_path_over_h2(ruled):
    targets = ("/%70romo", "//promo", "/./promo")
    for target, r in zip(targets, one_by_one(ruled.port, *[("GET", t) for t in targets])):
        assert r.status == 200 and b"PROMO-PAGE" in r.body, (target, r)


def test_first_match_wins(ruled):
    assert get(ruled, "/first/x").text == "first"


def test_default_action_when_no_rule_matches(ruled):
    r = get(ruled, "/anything", {"Host": "plain.example"})
    assert (r.status_code, r.text) == (200, "hello from app")
    r = get(ruled, "/c/1", {"Host": "plain.example"})
    assert (r.status_code, r.text) == (200, "hello from canary")


# --- actions -------------------------------------------------------------------------------

def test_fixed_response(ruled):
    r = get(ruled, "/fixed")
    assert r.status_code == 429
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.text == '{"title":"slow down"}'
    assert r.headers["Retry-After"] == "45"
    assert ruled.app.stats()["requests"] == 0 and ruled.canary.stats()["requests"] == 0


def test_fixed_response_defaults(ruled):
    r = get(ruled, "/plain")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "just text"
    assert "Retry-After" not in r.headers


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): a body read off and pipelining on one connection")
def test_fixed_response_to_head_and_post(ruled):
    r = raw(ruled, "HEAD /fixed HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.status == 429 and r.body == b"" and r.header("content-length") in (None, "21")
    # A body the fixed answer does not use is read off: the connection stays in sync.
    with Conn(ruled.port) as c:
        c.send("POST /plain HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /fixed "
               "HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"just text"
        assert c.read_response().status == 429


@pytest.mark.h2c_only("the HTTP/2 form of test_fixed_response_to_head_and_post")
def test_fixed_response_to_head_and_post_over_h2(ruled):
    # A body the fixed answer does not use must not upset the next stream.
    head, post, fixed = one_by_one(ruled.port, ("HEAD", "/fixed"),
                                   ("POST", "/plain", [("content-length", "5")], b"hello"),
                                   ("GET", "/fixed"))
    assert head.status == 429 and head.header("content-length") in (None, "21"), head
    assert post.body == b"just text", post
    assert fixed.status == 429, fixed


def test_redirect_with_template(ruled):
    r = get(ruled, "/old/a/b?x=1&y=2", {"Host": "www.example.com"})
    assert r.status_code == 301
    assert r.headers["Location"] == "https://www.example.com/new/old/a/b?x=1&y=2"
    assert ruled.app.stats()["requests"] == 0


def test_redirect_drops_the_question_mark_without_a_query(ruled):
    r = get(ruled, "/old/a", {"Host": "www.example.com"})
    assert r.status_code == 301
    assert r.headers["Location"] == "https://www.example.com/new/old/a"


def test_redirect_default_status_and_other_statuses(ruled):
    r = get(ruled, "/go")
    assert (r.status_code, r.headers["Location"]) == (302, "/target")
    r = get(ruled, "/temp?q=1")
    assert (r.status_code, r.headers["Location"]) == (307, "https://elsewhere.example/temp")


def test_redirect_followed_by_a_real_client(ruled):
    r = requests.get(ruled.url + "/go", timeout=5)  # follows to /target: catch-all
    assert [h.status_code for h in r.history] == [302]
    assert r.text == "catch-all"


def test_page_action(ruled):
    r = get(ruled, "/promo")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text == PROMO
    assert "Retry-After" not in r.headers


def test_page_action_with_status_and_retry_after(ruled):
    r = get(ruled, "/gone/x")
    assert r.status_code == 410
    assert r.text == GONE
    assert r.headers["Retry-After"] == "10"
    assert ruled.app.stats()["requests"] == 0


def test_forward_reaches_the_group(ruled):
    r = get(ruled, "/hd/x", {"X-Canary": "1"})
    assert r.text == "hello from canary"
    sent = ruled.canary.requests_for("/hd/x")
    assert len(sent) == 1 and sent[0]["method"] == "GET"


def backend_split(gw, prefix, n):
    counts = collections.Counter()
    with requests.Session() as s:
        for i in range(n):
            r = s.get(gw.url + f"{prefix}{i}", timeout=5)
            assert r.status_code == 200, r.status_code
            counts[r.text.removeprefix("hello from ")] += 1
    return counts


def test_weighted_forward_50_50(ruled):
    counts = backend_split(ruled, "/w/", 200)
    assert set(counts) <= {"app", "canary"}
    # 100 expected each; 60 is more than 5 standard deviations away.
    assert counts["app"] >= 60 and counts["canary"] >= 60, counts
    assert ruled.app.stats()["requests"] + ruled.canary.stats()["requests"] == 200


def test_weighted_forward_99_1(ruled):
    counts = backend_split(ruled, "/w99/", 300)
    # 3 expected on the canary.
    assert counts["canary"] <= 15 and counts["app"] >= 285, counts


def test_weighted_forward_1_99(ruled):
    counts = backend_split(ruled, "/w1/", 300)
    assert counts["app"] <= 15 and counts["canary"] >= 285, counts


def test_weighted_forward_over_fresh_connections(ruled):
    counts = collections.Counter()
    for i in range(100):
        counts[requests.get(ruled.url + f"/w/{i}", timeout=5).text] += 1
    assert counts["hello from app"] >= 25 and counts["hello from canary"] >= 25, counts


# --- bad rules -----------------------------------------------------------------------------

def rules_config(tmp_path, rules, groups="  app:\n    targets: [\"127.0.0.1:9\"]\n"):
    root = write_tree(tmp_path / "pages", {"promo.html": PROMO})
    return server_yaml(free_port()) + f"""
target_groups:
{groups}sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    rules:
{rules}    default_action: {{forward: app}}
"""


def assert_rejected_at(tmp_path, text, token, words=()):
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc != 0, f"check accepted:\n{text}"
    tokens = token if isinstance(token, tuple) else (token,)
    lines = {text_position(text, t)[0] for t in tokens}
    assert any(e[0] in lines and all(w.lower() in e[2].lower() for w in words) for e in errors), \
        f"expected an error at line {sorted(lines)} naming {list(words)}; got:\n{stderr}"


def test_check_accepts_every_condition_and_action(tmp_path):
    root = write_tree(tmp_path / "p2", {"promo.html": PROMO, "gone.html": GONE})
    text = server_yaml(free_port()) + f"""
target_groups:
  app: {{targets: ["127.0.0.1:9"]}}
  canary: {{targets: ["127.0.0.1:10"]}}
sites:
  - name: www
    default: true
    pages: {{root: "{root}"}}
    rules:{RULES}
    default_action: {{forward: app}}
"""
    rc, stderr, errors = check_config(tmp_path, text)
    assert rc == 0 and errors == [], stderr


@pytest.mark.parametrize("rule,token,words", [
    ("      - match: {path: /a}\n        fixed: {body: x}\n        forward: app\n",
     ("- match: {path: /a}", "forward: app\n"), []),
    ("      - match: {path: /a}\n", "- match: {path: /a}", []),
    ("      - match: {path: /a, colour: red}\n        fixed: {}\n", "colour", ["colour"]),
    ("      - match: {path: /a}\n        explode: {}\n", "explode", ["explode"]),
    ("      - match: {path: []}\n        fixed: {}\n", "path: []", []),
    ("      - match: {method: \"GE T\"}\n        fixed: {}\n", "GE T", []),
    ("      - match: {header: {name: X-A}}\n        fixed: {}\n", "header:", ["value"]),
    ("      - match: {query: {value: x}}\n        fixed: {}\n", "query:", ["key"]),
    ("      - match: {path: /a}\n        fixed: {status: 99}\n", "status: 99}", ["99"]),
    ("      - match: {path: /a}\n        redirect: {location: \"/{nope}\"}\n", "{nope}", []),
    ("      - match: {path: /a}\n        redirect: {location: /b, status: 200}\n", "status: 200}", []),
    ("      - match: {path: /a}\n        redirect: {status: 301}\n", "redirect:", ["location"]),
], ids=["two-actions", "no-action", "unknown-condition", "unknown-action", "empty-condition",
        "bad-method", "header-without-value", "query-without-key", "fixed-status",
        "redirect-placeholder", "redirect-status", "redirect-without-location"])
def test_check_rejects_invalid_rules(tmp_path, rule, token, words):
    assert_rejected_at(tmp_path, rules_config(tmp_path, rule), token, words)


def test_check_rejects_forward_to_an_unknown_group(tmp_path):
    text = rules_config(tmp_path, "      - match: {path: /a}\n        forward: nosuch\n")
    assert_rejected_at(tmp_path, text, "nosuch", ["nosuch"])


def test_check_rejects_weighted_forward_to_an_unknown_group(tmp_path):
    text = rules_config(tmp_path, "      - match: {path: /a}\n        forward: [{group: app, "
                                  "weight: 5}, {group: ghost, weight: 5}]\n")
    assert_rejected_at(tmp_path, text, "ghost", ["ghost"])


def test_check_rejects_default_action_to_an_unknown_group(tmp_path):
    text = rules_config(tmp_path, "      - fixed: {}\n").replace("{forward: app}",
                                                               "{forward: phantom}")
    assert_rejected_at(tmp_path, text, "phantom", ["phantom"])


@pytest.mark.parametrize("weight", ["0", "1001", "-1", "1.5"])
def test_check_rejects_bad_weights(tmp_path, weight):
    text = rules_config(tmp_path, "      - match: {path: /a}\n        forward: [{group: app, "
                                  f"weight: {weight}}}]\n")
    assert_rejected_at(tmp_path, text, f"weight: {weight}")


def test_check_rejects_a_group_twice_in_a_weighted_forward(tmp_path):
    text = rules_config(tmp_path, "      - match: {path: /a}\n        forward: [{group: app}, "
                                  "{group: app}]\n")
    assert_rejected_at(tmp_path, text, "{group: app}]")


def test_check_rejects_a_missing_page_file(tmp_path):
    text = rules_config(tmp_path, "      - match: {path: /a}\n        page: {file: /absent.html}\n")
    assert_rejected_at(tmp_path, text, "/absent.html", ["absent.html"])


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "300.0.0.0/8", "10.0.0.0/", "::1/129",
                                  "10.0.0.0/8 ", "fe80::1%eth0", "[::1]"])
def test_check_rejects_bad_source_cidrs(tmp_path, cidr):
    text = rules_config(tmp_path, f'      - match: {{source: ["127.0.0.0/8", "{cidr}"]}}\n'
                                  "        fixed: {}\n")
    assert_rejected_at(tmp_path, text, f'"{cidr}"')


@pytest.mark.parametrize("condition,glob", [
    ("path", "static/*"),          # must start with /
    ("path", ""),
    ("host", "example.com:8080"),  # no port
    ("host", "exa mple.com"),
    ("host", "ex/ample.com"),
])
def test_check_rejects_bad_globs(tmp_path, condition, glob):
    good = "/ok" if condition == "path" else "ok.example"
    text = rules_config(tmp_path, f'      - match: {{{condition}: ["{good}", "{glob}"]}}\n'
                                  "        fixed: {}\n")
    assert_rejected_at(tmp_path, text, f'"{glob}"')
