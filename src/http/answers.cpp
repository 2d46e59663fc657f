#include "http/answers.hpp"

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

int send(Client& c, int status, std::string_view headers, std::string_view body, bool close,
         std::uint64_t& bytes) {
    bool head = c.request.method == "HEAD";
    append_reply(c.out, Reply{status, headers, body, head, close}, c.worker.date.value());
    bytes = head ? 0 : body.size();
    return status;
}

}  // namespace

int answer_store(Client& c, const core::SiteView& site, bool close, std::uint64_t& bytes) {
    const auto& req = c.request;
    auto date = c.worker.date.value();
    if (!site.store) {
        append_error(c.out, 404, close, date);
        return 404;
    }
    pages::Conditional cond{req.method, find_header(req.headers, "accept-encoding"),
                            find_header(req.headers, "if-none-match"),
                            find_header(req.headers, "if-modified-since")};
    auto answer = site.store->answer(origin_target(req), cond);
    switch (answer.kind) {
    case pages::Reply::Kind::ok:
    case pages::Reply::Kind::not_modified:
        return send(c, answer.status, answer.headers, answer.body, close, bytes);
    case pages::Reply::Kind::redirect:
        append_error(c.out, 301, close, date, "Location: " + answer.location + "\r\n");
        return 301;
    case pages::Reply::Kind::method_not_allowed:
        append_error(c.out, 405, close, date, "Allow: GET, HEAD\r\n");
        return 405;
    case pages::Reply::Kind::bad_request:
        append_error(c.out, 400, close, date);
        return 400;
    case pages::Reply::Kind::not_found:
        break;
    }
    append_error(c.out, 404, close, date);
    return 404;
}

int answer_page(Client& c, const core::Action& action, bool close, std::uint64_t& bytes) {
    const auto* page = action.page.get();
    if (!page) {
        // The file left the store after a reload: still answer with the status.
        append_error(c.out, action.config->status, close, c.worker.date.value());
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
    append_error(c.out, action.config->status, close, c.worker.date.value(), headers);
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
