// The dashboard: a web page on the admin listener, served from files embedded in the
// binary at build time (dashboard/ → cmake/embed_dashboard.cmake). The page itself needs
// no token; every API call it makes sends one.
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <span>
#include <string_view>

namespace im::control {

struct DashboardFile {
    std::string_view name;     // e.g. "app.js"
    std::string_view content;  // the file's bytes
};

// Every embedded file (defined in the generated source).
std::span<const DashboardFile> dashboard_files();

// The answer for a request under /dashboard, or nullopt when the request is for the API.
std::optional<boost::beast::http::response<boost::beast::http::string_body>> dashboard_response(
    const boost::beast::http::request<boost::beast::http::string_body>& req);

}  // namespace im::control
