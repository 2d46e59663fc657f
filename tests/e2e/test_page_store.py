"""The page store: index documents, MIME types, content ETags and 304s, Last-Modified,
HEAD, Cache-Control per site and per path, gzip/brotli variants chosen by Accept-Encoding,
robots.txt, files changed on disk picked up without a restart, and path traversal attempts
that must never read outside the root."""
import ctypes
import email.utils
import gzip
import os
import time

import pytest
import requests

from conftest import free_port, get_as_sent, server_yaml, wait_until
from h2lib import PROTOCOL_ERROR, one_by_one
from rawhttp import Conn, send_and_read_all, status_of

OLD_MTIME = 1_600_000_000  # 2020-09-13T12:26:40Z
CSS = ("/* site styles */\n" + "".join(f".rule-{i} {{ color: #{i:06x}; margin: {i}px; }}\n"
                                       for i in range(200)))
HTML = "<!doctype html><title>Home</title>\n" + "<p>Welcome to the site.</p>\n" * 40

MIME = {
    "page.html": "text/html",
    "style.css": "text/css",
    "app.js": ("text/javascript", "application/javascript"),
    "logo.svg": "image/svg+xml",
    "a.png": "image/png",
    "a.jpg": "image/jpeg",
    "a.gif": "image/gif",
    "a.webp": "image/webp",
    "favicon.ico": ("image/x-icon", "image/vnd.microsoft.icon"),
    "f.woff": "font/woff",
    "f.woff2": "font/woff2",
    "f.ttf": ("font/ttf", "application/x-font-ttf", "font/sfnt"),
    "notes.txt": "text/plain",
    "data.json": "application/json",
    "feed.xml": ("application/xml", "text/xml"),
    "app.js.map": "application/json",
}


def brotli_decompress(data, size_hint):
    lib = ctypes.CDLL("libbrotlidec.so.1")
    out_size = ctypes.c_size_t(size_hint + 1024)
    out = ctypes.create_string_buffer(out_size.value)
    ok = lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(out_size), out)
    assert ok == 1, "not a valid brotli stream"
    return out.raw[:out_size.value]


@pytest.fixture
def site(tmp_path, gateway_factory):
    base = tmp_path / "site"
    root = base / "pages"
    for d in ("static", "docs", "img", "fonts"):
        (root / d).mkdir(parents=True)
    (root / "index.html").write_text(HTML)
    (root / "docs" / "index.html").write_text("<h1>docs index</h1>\n")
    (root / "docs" / "guide.html").write_text("<h1>guide</h1>\n")
    (root / "static" / "site.css").write_text(CSS)
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (root / "copy-a.txt").write_text("same content\n")
    (root / "copy-b.txt").write_text("same content\n")
    (root / "old.txt").write_text("old file\n")
    (root / "hello world.txt").write_text("spaced name\n")
    (root / "café.txt").write_text("utf-8 name\n")
    os.utime(root / "old.txt", (OLD_MTIME, OLD_MTIME))
    for name in MIME:
        (root / name).write_bytes(b"content of " + name.encode())
    # Outside the root: must never be served.
    (base / "secret.txt").write_text("TOPSECRET-OUTSIDE\n")
    os.symlink(base / "secret.txt", root / "leak.txt")
    os.symlink(base, root / "leakdir")
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_text("other site\n")
    (other / "static").mkdir()
    (other / "static" / "x.css").write_text("x{}\n")
    port = free_port()
    config = server_yaml(port) + f"""
sites:
  - name: www
    default: true
    pages:
      root: "{root}"
      cache_control: "public, max-age=60"
      cache_control_paths:
        - {{path: "/static/*", value: "public, max-age=31536000, immutable"}}
        - {{path: "/docs/*", value: "no-cache"}}
  - name: other
    hosts: ["other.test"]
    pages:
      root: "{other}"
      cache_control: "private, max-age=5"
"""
    gw = gateway_factory(config, port)
    gw.root = root
    gw.base = base
    return gw


def get(gw, path, **headers):
    headers.setdefault("Accept-Encoding", "identity")  # requests asks for gzip by default
    return requests.get(gw.url + path, headers=headers, timeout=5, allow_redirects=False)


# --- index, MIME, robots --------------------------------------------------------------------

def test_index_document_for_root_and_directories(site):
    r = get(site, "/")
    assert r.status_code == 200
    assert r.text == HTML
    assert r.headers["Content-Type"].startswith("text/html")
    r = get(site, "/docs/")
    assert r.status_code == 200 and r.text == "<h1>docs index</h1>\n"
    # The directory without its slash: a redirect to it, or the index itself.
    r = get(site, "/docs")
    assert (r.status_code in (301, 308) and r.headers["Location"] == "/docs/") or \
        (r.status_code == 200 and r.text == "<h1>docs index</h1>\n"), (r.status_code, r.headers)
    assert get(site, "/index.html").text == HTML
    assert get(site, "/docs/guide.html").text == "<h1>guide</h1>\n"


def test_encoded_file_names_and_query_strings(site):
    assert get(site, "/hello%20world.txt").text == "spaced name\n"
    assert get(site, "/caf%C3%A9.txt").text == "utf-8 name\n"
    r = get(site, "/robots.txt?v=123")
    assert r.status_code == 200 and r.text.startswith("User-agent")
    assert get(site, "/?utm=x").text == HTML


def test_missing_file_is_404(site):
    for path in ("/nope.html", "/docs/nope/", "/static/"):
        r = get(site, path)
        assert r.status_code == 404, path


@pytest.mark.parametrize("name", sorted(MIME))
def test_mime_types(site, name):
    r = get(site, "/" + name)
    assert r.status_code == 200
    assert r.content == b"content of " + name.encode()
    ctype = r.headers["Content-Type"].split(";")[0].strip().lower()
    expected = MIME[name] if isinstance(MIME[name], tuple) else (MIME[name],)
    assert ctype in expected, (name, r.headers["Content-Type"])


def test_text_types_declare_utf8(site):
    for name in ("page.html", "style.css", "notes.txt"):
        assert "charset=utf-8" in get(site, "/" + name).headers["Content-Type"].lower()


def test_robots_txt_is_served_like_any_file(site):
    r = get(site, "/robots.txt")
    assert r.status_code == 200
    assert r.text == "User-agent: *\nDisallow: /private/\n"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "ETag" in r.headers


# --- ETag, 304, Last-Modified ---------------------------------------------------------------

def test_strong_etag_derived_from_content(site):
    a = get(site, "/copy-a.txt").headers["ETag"]
    b = get(site, "/copy-b.txt").headers["ETag"]
    other = get(site, "/robots.txt").headers["ETag"]
    assert not a.startswith("W/") and a.startswith('"') and a.endswith('"'), a
    assert a == b, "identical content must give identical ETags"
    assert a != other
    assert get(site, "/copy-a.txt").headers["ETag"] == a  # stable


def test_if_none_match_gives_304(site):
    r = get(site, "/robots.txt")
    etag = r.headers["ETag"]
    for inm in (etag, f'"nope", {etag}', "*"):
        r304 = get(site, "/robots.txt", **{"If-None-Match": inm})
        assert r304.status_code == 304, inm
        assert r304.content == b""
        assert r304.headers["ETag"] == etag
    assert get(site, "/robots.txt", **{"If-None-Match": '"nope"'}).status_code == 200


@pytest.mark.http1_only("pipelining: no body bytes on the HTTP/1.1 wire after a 304")
def test_304_has_no_body_on_the_wire(site):
    etag = get(site, "/").headers["ETag"]
    with Conn(site.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\n\r\n"
               "GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 304
        r2 = c.read_response()
        assert r2.status == 200 and r2.body.startswith(b"User-agent")


def test_last_modified_and_if_modified_since(site):
    r = get(site, "/old.txt")
    expected = email.utils.formatdate(OLD_MTIME, usegmt=True)
    assert r.headers["Last-Modified"] == expected
    assert get(site, "/old.txt", **{"If-Modified-Since": expected}).status_code == 304
    later = email.utils.formatdate(OLD_MTIME + 3600, usegmt=True)
    assert get(site, "/old.txt", **{"If-Modified-Since": later}).status_code == 304
    earlier = email.utils.formatdate(OLD_MTIME - 3600, usegmt=True)
    r = get(site, "/old.txt", **{"If-Modified-Since": earlier})
    assert r.status_code == 200 and r.text == "old file\n"
    assert get(site, "/old.txt", **{"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    r = get(site, "/old.txt", **{"If-Modified-Since": later, "If-None-Match": '"nope"'})
    assert r.status_code == 200


@pytest.mark.http1_only("pipelining: no body bytes on the HTTP/1.1 wire after HEAD")
def test_head_has_the_get_headers_and_no_body(site):
    g = get(site, "/static/site.css")
    with Conn(site.port) as c:
        c.send("HEAD /static/site.css HTTP/1.1\r\nHost: a\r\n\r\n"
               "GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        h = c.read_response("HEAD")
        assert h.status == 200
        assert h.header("content-length") == str(len(CSS.encode()))
        assert h.header("etag") == g.headers["ETag"]
        assert h.header("content-type") == g.headers["Content-Type"]
        assert h.header("cache-control") == g.headers["Cache-Control"]
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.body.startswith(b"User-agent"), "HEAD sent a body"


@pytest.mark.h2c_only("the HTTP/2 form of test_head_has_the_get_headers_and_no_body")
def test_head_has_the_get_headers_and_no_body_over_h2(site):
    h, g = one_by_one(site.port, ("HEAD", "/static/site.css"), ("GET", "/static/site.css"))
    assert h.status == 200 and g.status == 200, (h, g)
    assert h.header("content-length") == g.header("content-length") == str(len(CSS.encode()))
    for name in ("etag", "content-type", "cache-control"):
        assert h.header(name) is not None and h.header(name) == g.header(name), (name, h, g)
    assert g.body == CSS.encode()


# Answers the gateway makes itself rather than from a file: a missing file, the directory
# without its slash, a link out of the root.
OWN_ANSWERS = ["/nope.html", "/docs", "/leak.txt"]


def check_own_answers_to_head(heads):
    missing, directory, link = heads
    assert missing.status == 404 and int(missing.header("content-length")) > 0, missing
    assert directory.status in (200, 301, 308), directory
    assert link.status in (400, 404), link


@pytest.mark.http1_only("pipelining: no body bytes on the HTTP/1.1 wire after HEAD")
def test_the_gateways_own_answers_to_head_have_no_body(site):
    with Conn(site.port) as c:
        c.send("".join(f"HEAD {t} HTTP/1.1\r\nHost: a\r\n\r\n" for t in OWN_ANSWERS) +
               "GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        heads = [c.read_response("HEAD") for _ in OWN_ANSWERS]
        check_own_answers_to_head(heads)
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.body.startswith(b"User-agent"), "a HEAD answer sent a body"


@pytest.mark.h2c_only("the HTTP/2 form of test_the_gateways_own_answers_to_head_have_no_body")
def test_the_gateways_own_answers_to_head_have_no_body_over_h2(site):
    *heads, robots = one_by_one(site.port, *[("HEAD", t) for t in OWN_ANSWERS], ("GET", "/robots.txt"))
    check_own_answers_to_head(heads)
    assert robots.status == 200 and robots.body.startswith(b"User-agent"), robots


def test_other_methods_are_refused(site):
    r = requests.post(site.url + "/robots.txt", data=b"x", timeout=5)
    assert r.status_code == 405
    assert "GET" in r.headers.get("Allow", "")


# --- Cache-Control ---------------------------------------------------------------------------

def test_cache_control_per_site_and_per_path(site):
    assert get(site, "/robots.txt").headers["Cache-Control"] == "public, max-age=60"
    assert get(site, "/").headers["Cache-Control"] == "public, max-age=60"
    assert get(site, "/static/site.css").headers["Cache-Control"] == \
        "public, max-age=31536000, immutable"
    assert get(site, "/docs/guide.html").headers["Cache-Control"] == "no-cache"
    r = requests.get(site.url + "/", headers={"Host": "other.test"}, timeout=5)
    assert r.text == "other site\n"
    assert r.headers["Cache-Control"] == "private, max-age=5"
    # Per-path rules belong to their site only.
    r = requests.get(site.url + "/static/x.css", headers={"Host": "other.test"}, timeout=5)
    assert r.headers["Cache-Control"] == "private, max-age=5"


# --- compression ----------------------------------------------------------------------------

def test_gzip_variant(site):
    r = requests.get(site.url + "/static/site.css", headers={"Accept-Encoding": "gzip"},
                     timeout=5, stream=True)
    raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert int(r.headers["Content-Length"]) == len(raw) < len(CSS)
    assert gzip.decompress(raw).decode() == CSS
    assert "accept-encoding" in r.headers["Vary"].lower()


def test_brotli_variant(site):
    r = requests.get(site.url + "/static/site.css", headers={"Accept-Encoding": "br"},
                     timeout=5, stream=True)
    raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "br"
    assert int(r.headers["Content-Length"]) == len(raw) < len(CSS)
    assert brotli_decompress(raw, len(CSS)).decode() == CSS
    assert "accept-encoding" in r.headers["Vary"].lower()


@pytest.mark.parametrize("accept,expected", [
    (None, None),
    ("identity", None),
    ("gzip, deflate", "gzip"),
    ("gzip;q=1.0, br;q=0.5", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("gzip;q=0, br;q=0", None),
    ("deflate", None),
    ("gzip, br", ("br", "gzip")),
    ("*", ("br", "gzip")),
])
def test_encoding_chosen_by_accept_encoding(site, accept, expected):
    headers = [("Accept-Encoding", accept)] if accept is not None else []
    r = get_as_sent(site.port, "/static/site.css", headers)
    assert r.status == 200
    enc = r.header("content-encoding")
    if expected is None:
        assert enc is None, (accept, enc)
        assert r.body == CSS.encode()
    else:
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert enc in allowed, (accept, enc)
    assert "accept-encoding" in (r.header("vary") or "").lower(), "Vary missing"


def test_compressed_variant_revalidates_with_its_own_etag(site):
    r = get(site, "/static/site.css", **{"Accept-Encoding": "gzip"})
    etag = r.headers["ETag"]
    assert etag != get(site, "/static/site.css", **{"Accept-Encoding": "identity"}).headers["ETag"]
    r304 = get(site, "/static/site.css", **{"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert r304.status_code == 304
    assert "accept-encoding" in r304.headers.get("Vary", "").lower()


# --- changes on disk ------------------------------------------------------------------------

def test_changed_file_is_picked_up_without_restart(site):
    before = get(site, "/robots.txt")
    (site.root / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    r = wait_until(lambda: (lambda x: x if x.text == "User-agent: *\nDisallow: /\n" else None)(
        get(site, "/robots.txt")), timeout=5)
    assert r, "changed file not picked up within 5 s"
    assert r.headers["ETag"] != before.headers["ETag"]
    assert int(r.headers["Content-Length"]) == len("User-agent: *\nDisallow: /\n")


def test_added_and_removed_files_are_picked_up(site):
    (site.root / "static" / "new.js").write_text("console.log(1)\n")
    assert wait_until(lambda: get(site, "/static/new.js").status_code == 200, timeout=5)
    assert get(site, "/static/new.js").text == "console.log(1)\n"
    (site.root / "copy-b.txt").unlink()
    assert wait_until(lambda: get(site, "/copy-b.txt").status_code == 404, timeout=5)
    assert get(site, "/copy-a.txt").status_code == 200


def test_compressed_variant_follows_the_change(site):
    new_css = CSS.replace("color", "colour")
    (site.root / "static" / "site.css").write_text(new_css)

    def changed():
        r = requests.get(site.url + "/static/site.css", headers={"Accept-Encoding": "gzip"},
                         timeout=5)
        return r.text == new_css

    assert wait_until(changed, timeout=5)


# --- path traversal -------------------------------------------------------------------------

TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/static/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%252e%252e/secret.txt",
    "/..\\secret.txt",
    "/static\\..\\..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/..%5csecret.txt",
    "/secret.txt%00",
    "/robots.txt%00.html",
    "/%00/../secret.txt",
    "//../secret.txt",
    "/./../secret.txt",
    "/..;/secret.txt",
    "/.../secret.txt",
    "/leak.txt",
    "/leakdir/secret.txt",
    "/leakdir/pages/robots.txt",
    "http://a/../secret.txt",
    "http://a/%2e%2e/secret.txt",
]
# Harmless non-canonical spellings of a real file: they still resolve inside the root.
HARMLESS = ("/static/./site.css", "/docs/../robots.txt", "/%72obots.txt")


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): traversal targets requests would normalize")
@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_never_leaves_the_root(site, target):
    raw = send_and_read_all(site.port, f"GET {target} HTTP/1.1\r\nHost: a\r\n"
                                       "Connection: close\r\n\r\n".encode("latin-1"))
    status = status_of(raw)
    assert status in (400, 404), (target, raw[:200])
    assert b"TOPSECRET" not in raw
    assert b"root:x:0" not in raw


def assert_refused_over_h2(target, s):
    """s answers a traversal attempt: 400 or 404 or a reset stream, and nothing from outside
    the root. An absolute-form :path is a malformed HTTP/2 request (RFC 9113 §8.3.1: origin
    form only), refused with 400 or RST_STREAM PROTOCOL_ERROR."""
    if target.startswith("http://"):
        assert s.status == 400 or s.reset == PROTOCOL_ERROR, (target, s)
    else:
        assert s.status in (400, 404) or s.reset is not None, (target, s)
    assert b"TOPSECRET" not in s.body and b"root:x:0" not in s.body, (target, s)


@pytest.mark.h2c_only("the HTTP/2 form of test_path_traversal_never_leaves_the_root")
@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_never_leaves_the_root_over_h2(site, target):
    assert_refused_over_h2(target, *one_by_one(site.port, ("GET", target)))


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): a NUL byte in the request line")
def test_raw_nul_byte_in_target(site):
    raw = send_and_read_all(site.port, b"GET /robots.txt\x00/../../secret.txt HTTP/1.1\r\n"
                                       b"Host: a\r\nConnection: close\r\n\r\n")
    assert status_of(raw) in (400, 404), raw[:200]
    assert b"TOPSECRET" not in raw


@pytest.mark.http1_only("raw HTTP/1.1 socket (rawhttp): traversal targets requests would normalize")
def test_the_site_still_serves_after_traversal_attempts(site):
    for target in TRAVERSALS[:10]:
        send_and_read_all(site.port, f"GET {target} HTTP/1.1\r\nHost: a\r\n"
                                     "Connection: close\r\n\r\n".encode(), timeout=2)
    assert get(site, "/robots.txt").status_code == 200
    for target in HARMLESS:
        raw = send_and_read_all(site.port, f"GET {target} HTTP/1.1\r\nHost: a\r\n"
                                           "Connection: close\r\n\r\n".encode())
        assert status_of(raw) in (200, 400, 404), (target, raw[:100])
        assert b"TOPSECRET" not in raw


@pytest.mark.h2c_only("the HTTP/2 form of test_the_site_still_serves_after_traversal_attempts")
def test_the_site_still_serves_after_traversal_attempts_over_h2(site):
    # All on one connection: refusing a stream must not cost the others.
    attempts = TRAVERSALS[:10]
    answers = one_by_one(site.port, *[("GET", t) for t in attempts + ["/robots.txt", *HARMLESS]])
    for target, s in zip(attempts, answers):
        assert_refused_over_h2(target, s)
    robots = answers[len(attempts)]
    assert robots.status == 200 and robots.body.startswith(b"User-agent"), robots
    for target, s in zip(HARMLESS, answers[len(attempts) + 1:]):
        assert s.status in (200, 400, 404), (target, s)
        assert b"TOPSECRET" not in s.body


@pytest.mark.http1_only("pipelining with Content-Length and chunked bodies")
def test_request_body_to_the_store_is_read_off(site):
    with Conn(site.port) as c:
        c.send(b"POST /robots.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /robots.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n"
               b"GET /old.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 405
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"User-agent")
        r = c.read_response()
        assert r.status == 200 and r.body == b"old file\n"


def test_weak_if_none_match_comparison(site):
    # RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
    etag = get(site, "/robots.txt").headers["ETag"]
    assert get(site, "/robots.txt", **{"If-None-Match": "W/" + etag}).status_code == 304


def test_change_in_a_subdirectory_is_picked_up(site):
    (site.root / "docs" / "guide.html").write_text("<h1>guide v2</h1>\n")
    assert wait_until(lambda: get(site, "/docs/guide.html").text == "<h1>guide v2</h1>\n",
                      timeout=5), "a change in a subdirectory was not picked up"


def test_new_directory_and_its_files_are_picked_up(site):
    (site.root / "blog").mkdir()
    time.sleep(0.4)  # the directory alone first, as a deploy tool would do
    (site.root / "blog" / "post.html").write_text("<h1>post</h1>\n")
    assert wait_until(lambda: get(site, "/blog/post.html").status_code == 200, timeout=5), \
        "a file in a directory created after start was not picked up"
    (site.root / "blog" / "post.html").write_text("<h1>post v2</h1>\n")
    assert wait_until(lambda: get(site, "/blog/post.html").text == "<h1>post v2</h1>\n",
                      timeout=5), "a later change in a new directory was not picked up"


def test_atomic_rename_deploy_is_picked_up(site):
    tmp = site.base / "robots.tmp"
    tmp.write_text("User-agent: *\nAllow: /\n")
    os.rename(tmp, site.root / "robots.txt")
    assert wait_until(lambda: get(site, "/robots.txt").text == "User-agent: *\nAllow: /\n",
                      timeout=5), "a file replaced by rename was not picked up"


def small_site(tmp_path, gateway_factory, pages_options):
    root = tmp_path / "small"
    root.mkdir()
    (root / "site.css").write_text(CSS)
    port = free_port()
    return gateway_factory(server_yaml(port) + f"""
sites:
  - name: www
    default: true
    pages: {{root: "{root}", {pages_options}}}
""", port), root


def test_compress_false_serves_identity_only(tmp_path, gateway_factory):
    gw, _ = small_site(tmp_path, gateway_factory, "compress: false")
    r = get(gw, "/site.css", **{"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200
    assert "Content-Encoding" not in r.headers
    assert r.text == CSS


def test_watch_false_keeps_serving_the_loaded_content(tmp_path, gateway_factory):
    gw, root = small_site(tmp_path, gateway_factory, "watch: false")
    (root / "site.css").write_text("changed\n")
    time.sleep(1.0)
    assert get(gw, "/site.css").text == CSS
