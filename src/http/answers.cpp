#include "http/answers.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "core/bypass.hpp"
#include "http/respond.hpp"
#include "pages/compress.hpp"
#include "server/worker.hpp"

namespace im::http {

namespace {

std::string_view origin_target(const Request& req) {
    // The store wants origin-form: an absolute-form target ("http://h/p?q") is cut to "/p?q".
    auto end = req.target.data() + req.target.size();
    return {req.path.data(), static_cast<std::size_t>(end - req.path.data())};
}

// `stored`: the body is in the snapshot answered from (a stored file, a compiled
// page, a fixed text), not made for this request.
int send(Client& c, int status, std::string_view headers, std::string_view body, bool close,
         std::uint64_t& bytes, bool stored = true, std::string_view extra_headers = {}) {
    bool head = c.head_request;
    c.answer(Reply{status, headers, body, head, close, stored && c.answers_from_current, extra_headers});
    bytes = head ? 0 : body.size();
    return status;
}

}  // namespace

int answer_store(Client& c, const core::SiteView& site, bool close, std::uint64_t& bytes) {
    const auto& req = c.request;
    if (!site.store) {
        c.answer_error(404, close);
        return 404;
    }
    pages::Conditional cond{req.method, find_header(req.headers, "accept-encoding"),
                            find_header(req.headers, "if-none-match"),
                            find_header(req.headers, "if-modified-since")};
    auto answer = site.store->answer(origin_target(req), cond);
    // Error and maintenance pages are private, however they are asked for
    // (a directory whose index document is one included).
    if (answer.file && std::find(site.private_pages.begin(), site.private_pages.end(),
                                 answer.file->path) != site.private_pages.end())
        answer.kind = pages::Reply::Kind::not_found;
    switch (answer.kind) {
    case pages::Reply::Kind::ok:
    case pages::Reply::Kind::not_modified:
        return send(c, answer.status, answer.headers, answer.body, close, bytes);
    case pages::Reply::Kind::redirect:
        c.answer_error(301, close, "Location: " + answer.location + "\r\n");
        return 301;
    case pages::Reply::Kind::method_not_allowed:
        c.answer_error(405, close, "Allow: GET, HEAD\r\n");
        return 405;
    case pages::Reply::Kind::bad_request:
        c.answer_error(400, close);
        return 400;
    case pages::Reply::Kind::not_found:
        break;
    }
    c.answer_error(404, close);
    return 404;
}

int answer_page(Client& c, const core::Action& action, bool close, std::uint64_t& bytes) {
    const auto* page = action.page.get();
    if (!page) {
        // The file left the store after a reload: still answer with the status.
        c.answer_error(action.config->status, close);
        return action.config->status;
    }
    const auto& file = *page->file;
    auto coding = pages::choose_encoding(find_header(c.request.headers, "accept-encoding"),
                                         !file.gzip.empty(), !file.brotli.empty());
    switch (coding) {
    case pages::Encoding::brotli:
        return send(c, page->status, page->headers[2], file.brotli, close, bytes);
    case pages::Encoding::gzip:
        return send(c, page->status, page->headers[1], file.gzip, close, bytes);
    case pages::Encoding::identity:
        break;
    }
    return send(c, page->status, page->headers[0], file.identity, close, bytes);
}

int answer_fixed(Client& c, const core::Action& action, bool close, std::uint64_t& bytes) {
    return send(c, action.config->status, action.fixed_headers, action.config->body, close, bytes);
}

int answer_redirect(Client& c, const core::Action& action, bool close) {
    std::string headers = "Location: " + expand_location(action.config->location, c.request) + "\r\n";
    c.answer_error(action.config->status, close, headers);
    return action.config->status;
}

std::string expand_location(std::string_view t, const Request& req) {
    std::string out;
    out.reserve(t.size() + req.target.size() + req.host.size());
    while (!t.empty()) {
        if (t.starts_with("?{query}") && req.query.empty()) {
            t.remove_prefix(8);
        } else if (t.starts_with("{host}")) {
            out.append(req.host);
            t.remove_prefix(6);
        } else if (t.starts_with("{path}")) {
            out.append(req.path);
            t.remove_prefix(6);
        } else if (t.starts_with("{query}")) {
            out.append(req.query);
            t.remove_prefix(7);
        } else {
            out.push_back(t.front());
            t.remove_prefix(1);
        }
    }
    return out;
}

}  // namespace im::http

namespace im::http {

namespace {

// q-value of `type` in an Accept header (0 when absent); exact type only.
double accept_q(std::string_view accept, std::string_view type) {
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto item = accept.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        auto semi = item.find(';');
        auto name = item.substr(0, semi);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        if (iequals(name, type)) {
            if (semi == std::string_view::npos) return 1.0;
            auto params = item.substr(semi + 1);
            auto q = params.find("q=");
            if (q == std::string_view::npos) return 1.0;
            return std::strtod(std::string(params.substr(q + 2)).c_str(), nullptr);
        }
        if (comma == std::string_view::npos) break;
        accept.remove_prefix(comma + 1);
    }
    return 0.0;
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out.append(buf);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

// Retry-After and Vary of a maintenance answer, made in `room` without an
// allocation: in maintenance they go with every request.
std::string_view maintenance_lines(char (&room)[64], std::int64_t retry_after) {
    constexpr std::string_view head = "Retry-After: ", tail = "\r\nVary: Accept\r\n";
    char* at = std::copy(head.begin(), head.end(), room);
    at = std::to_chars(at, at + 20, retry_after).ptr;  // 20: a negative 64-bit number
    at = std::copy(tail.begin(), tail.end(), at);
    return {room, static_cast<std::size_t>(at - room)};
}

int send_variant(Client& c, const core::CompiledPage& page, int status, std::string_view extra,
                 bool close, std::uint64_t& bytes) {
    const auto& file = *page.file;
    auto coding = pages::choose_encoding(find_header(c.request.headers, "accept-encoding"),
                                         !file.gzip.empty(), !file.brotli.empty());
    int i = coding == pages::Encoding::brotli ? 2 : coding == pages::Encoding::gzip ? 1 : 0;
    std::string_view body = i == 2 ? file.brotli : i == 1 ? file.gzip : file.identity;
    return send(c, status, page.headers[i], body, close, bytes, true, extra);
}

}  // namespace

Variant negotiate(std::string_view accept) {
    double json = accept_q(accept, "application/json");
    double html = accept_q(accept, "text/html");
    if (json > 0 && json >= html) return Variant::json;
    if (html > 0) return Variant::html;
    return Variant::text;
}

int answer_maintenance(Client& c, const core::SiteView& site, const core::MaintenanceState* state,
                       std::int64_t retry_after, bool close, std::uint64_t& bytes) {
    const auto& m = site.config->maintenance;
    const std::string& message = state && !state->message.empty() ? state->message : m.message;
    char room[64];
    std::string_view extra = maintenance_lines(room, retry_after);
    auto variant = negotiate(find_header(c.request.headers, "accept"));
    const core::CompiledPage* page = variant == Variant::html   ? site.maintenance_page.get()
                                     : variant == Variant::json ? site.maintenance_json.get()
                                                                : site.maintenance_text.get();
    if (page) return send_variant(c, *page, m.status, extra, close, bytes);
    std::string body;
    std::string headers;
    if (variant == Variant::json) {
        body = "{\"status\":\"maintenance\",\"retry_after\":" + std::to_string(retry_after) +
               ",\"message\":";
        append_json_string(body, message);
        body += "}\n";
        headers = "Content-Type: application/json\r\n";
    } else {
        body = message + "\n";
        headers = "Content-Type: text/plain; charset=utf-8\r\n";
    }
    headers.append("Cache-Control: no-store\r\n").append(extra);
    return send(c, m.status, headers, body, close, bytes, false);
}

int answer_with_page(Client& c, const core::CompiledPage* page, int status, bool close,
                     std::uint64_t& bytes) {
    if (!page) {
        c.answer_error(status, close);
        return status;
    }
    return send_variant(c, *page, status ? status : page->status, {}, close, bytes);
}

int answer_https_redirect(Client& c) {
    const auto& tls = c.worker.snapshot()->config->tls;
    if (c.request.host.empty()) {  // HTTP/1.0 without Host: no name to send the client to
        c.answer_error(400, true);
        return 400;
    }
    std::uint16_t port = tls.redirect_port ? tls.redirect_port : tls.listen.front().port;
    std::string location = "https://";
    const bool v6 = c.request.host.find(':') != std::string_view::npos;
    location += v6 ? "[" + std::string(c.request.host) + "]" : std::string(c.request.host);
    if (port != 443) location += ":" + std::to_string(port);
    location += c.request.target;
    // 301 for what browsers fetch; 308 keeps the method and body of anything else.
    const bool safe = c.request.method == "GET" || c.request.method == "HEAD";
    c.answer_error(safe ? 301 : 308, true, "Location: " + location + "\r\n");
    return safe ? 301 : 308;
}

int answer_bypass_grant(Client& c, const config::Bypass& bypass, std::int64_t now, bool close) {
    auto token = core::query_value(c.request.query, "token");
    auto dot = token.find('.');
    std::int64_t expiry = std::strtoll(std::string(token.substr(0, dot)).c_str(), nullptr, 10);
    // The cookie lives until the token expires, but never longer than the configured ttl.
    auto ttl = std::chrono::duration_cast<std::chrono::seconds>(bypass.cookie_ttl).count();
    std::int64_t max_age = std::clamp<std::int64_t>(expiry - now, 0, ttl);
    std::string headers = "Set-Cookie: " + bypass.cookie_name + "=" + std::string(token) +
                          "; Max-Age=" + std::to_string(max_age) +
                          "; Path=/; HttpOnly; SameSite=Lax\r\nLocation: /\r\n";
    c.answer_error(302, close, headers);
    return 302;
}

}  // namespace im::http
