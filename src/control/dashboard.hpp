// The dashboard: a web page on the admin listener, served from files embedded in the
// binary (see dashboard_files.hpp). The page itself needs no token; every API call it
// makes sends one.
#pragma once

#include <boost/beast/http.hpp>
#include <optional>

namespace im::control {

// The answer for a request under /dashboard, or nullopt when the request is for the API.
std::optional<boost::beast::http::response<boost::beast::http::string_body>> dashboard_response(
    const boost::beast::http::request<boost::beast::http::string_body>& req);

}  // namespace im::control
