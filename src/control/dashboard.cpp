#include "control/dashboard.hpp"

#include "control/dashboard_files.hpp"

namespace im::control {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kPrefix = "/dashboard";

// The page loads nothing but its own files and talks to nothing but this listener; the
// bypass preview opens in another tab, which the policy does not govern.
constexpr std::string_view kPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'";

std::string_view content_type(std::string_view name) {
    auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
    if (ends(".html")) return "text/html; charset=utf-8";
    if (ends(".js")) return "text/javascript; charset=utf-8";
    if (ends(".css")) return "text/css; charset=utf-8";
    return "application/octet-stream";
}

const DashboardFile* find_file(std::string_view name) {
    for (const auto& f : dashboard_files())
        if (f.name == name) return &f;
    return nullptr;
}

http::response<http::string_body> answer(const http::request<http::string_body>& req,
                                         http::status status, std::string_view type,
                                         std::string_view body) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::content_type, type);
    // The page changes with the binary; a stale copy talking to a newer API helps no one.
    res.set(http::field::cache_control, "no-store");
    res.set("Content-Security-Policy", kPolicy);
    res.set("X-Content-Type-Options", "nosniff");
    // The admin address (and a bypass link) stay out of the Referer of the preview tab.
    res.set("Referrer-Policy", "no-referrer");
    res.body() = std::string(body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
    return res;
}

}  // namespace

std::optional<http::response<http::string_body>> dashboard_response(
    const http::request<http::string_body>& req) {
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (!target.starts_with(kPrefix)) return std::nullopt;
    std::string_view rest = target.substr(kPrefix.size());
    if (!rest.empty() && rest.front() != '/') return std::nullopt;  // e.g. /dashboards

    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        auto res = answer(req, http::status::method_not_allowed, "text/plain; charset=utf-8",
                          "use GET on the dashboard\n");
        res.set(http::field::allow, "GET, HEAD");
        return res;
    }
    std::string_view name = rest.size() <= 1 ? "index.html" : rest.substr(1);
    if (const auto* file = find_file(name))
        return answer(req, http::status::ok, content_type(file->name), file->content);
    return answer(req, http::status::not_found, "text/plain; charset=utf-8",
                  "no such dashboard file; the page is at /dashboard/\n");
}

}  // namespace im::control
