#include "upstream/headers.hpp"

#include "http/respond.hpp"

namespace im::upstream {

using http::iequals;

namespace {

constexpr std::string_view kVia = "1.1 intermission";

bool connection_names(std::string_view connection_value, std::string_view name) {
    while (!connection_value.empty()) {
        auto comma = connection_value.find(',');
        auto item = connection_value.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, name)) return true;
        if (comma == std::string_view::npos) break;
        connection_value.remove_prefix(comma + 1);
    }
    return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

// Fields we always set ourselves, whatever the peer sent. These checks run for
// every field of every forwarded request and answer: the length picks the one
// or two names worth comparing.
bool replaced_on_request(std::string_view name) {
    switch (name.size()) {
        case 3:
            return iequals(name, "via");
        case 6:
            return iequals(name, "expect");
        case 14:
            return iequals(name, "content-length");
        case 15:
            return iequals(name, "x-forwarded-for");
        case 16:
            return iequals(name, "x-forwarded-host");
        case 17:
            return iequals(name, "x-forwarded-proto");
        default:
            return false;
    }
}

bool replaced_on_response(std::string_view name) {
    switch (name.size()) {
        case 3:
            return iequals(name, "via");
        case 14:
            return iequals(name, "content-length");
        default:
            return false;
    }
}

// Hop-by-hop by definition (RFC 9110 §7.6.1), whatever Connection lists.
bool hop_by_hop_name(std::string_view name) {
    return http::is_connection_field(name) || iequals(name, "te") || iequals(name, "trailer");
}

// Every value of a (list-valued) field joined, then ours.
void append_list_value(std::string& out, const std::vector<http::Header>& headers, std::string_view name,
                       std::string_view ours) {
    for (const auto& h : headers)
        if (iequals(h.name, name) && !h.value.empty()) out.append(h.value).append(", ");
    out.append(ours);
}

void append_list_field(std::string& out, const std::vector<http::Header>& headers,
                       std::string_view name, std::string_view ours) {
    out.append(name).append(": ");
    append_list_value(out, headers, name, ours);
    out.append("\r\n");
}

std::string_view via_of(const http::Response& res) { return res.minor_version == 0 ? "1.0 intermission" : kVia; }

}  // namespace

bool is_hop_by_hop(std::string_view name, std::string_view connection_value) {
    if (hop_by_hop_name(name)) return true;
    // A name longer than the whole Connection value cannot be one of its items.
    return name.size() <= connection_value.size() && connection_names(connection_value, name);
}

void build_request_head(std::string& out, const http::Request& req, const ForwardContext& ctx) {
    auto connection = http::find_header(req.headers, "connection");
    out.append(req.method).push_back(' ');
    // Absolute-form targets become origin-form: targets expect a path.
    out.append(req.path);
    if (!req.query.empty() || req.target.find('?') != std::string_view::npos)
        out.append("?").append(req.query);
    out.append(" HTTP/1.1\r\n");
    std::string_view host;
    for (const auto& h : req.headers) {
        if (is_hop_by_hop(h.name, connection) || replaced_on_request(h.name)) continue;
        if (iequals(h.name, "host")) {
            host = req.authority.empty() ? h.value : req.authority;
            if (!host.empty()) append_field(out, h.name, host);  // empty: one fallback below
            continue;
        }
        append_field(out, h.name, h.value);
    }
    if (host.empty()) {
        host = req.authority.empty() ? ctx.fallback_host : req.authority;
        append_field(out, "Host", host);
    }
    append_list_field(out, req.headers, "X-Forwarded-For", ctx.client_ip);
    append_field(out, "X-Forwarded-Proto", ctx.proto);
    append_field(out, "X-Forwarded-Host", host);
    // Via names the protocol the request came with (RFC 9110 §7.6.3).
    std::string_view via = ctx.http2 ? "2 intermission" : req.minor_version == 0 ? "1.0 intermission" : kVia;
    append_list_field(out, req.headers, "Via", via);
    if (req.chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    } else if (req.content_length) {
        out.append("Content-Length: ");
        http::append_decimal(out, *req.content_length);
        out.append("\r\n");
    }
    if (req.upgrade) {
        out.append("Connection: upgrade\r\n");
        append_field(out, "Upgrade", http::find_header(req.headers, "upgrade"));
    }
    out.append("\r\n");
}

void build_response_head(std::string& out, const http::Response& res, const ResponseFraming& framing,
                         http::Stamp stamp, bool upgrade) {
    auto connection = http::find_header(res.headers, "connection");
    // Keep the application's reason phrase; it is what it meant to say.
    out.append("HTTP/1.1 ");
    http::append_decimal(out, static_cast<std::uint64_t>(res.status));
    out.push_back(' ');
    out.append(res.reason.empty() ? http::reason_phrase(res.status) : res.reason);
    out.append("\r\n");
    bool has_date = false;
    for (const auto& h : res.headers) {
        if (is_hop_by_hop(h.name, connection) || replaced_on_response(h.name)) continue;
        has_date = has_date || iequals(h.name, "date");
        append_field(out, h.name, h.value);
    }
    if (!has_date) append_field(out, "Date", stamp.date);
    append_list_field(out, res.headers, "Via", via_of(res));
    if (framing.length && res.content_length) {
        out.append("Content-Length: ");
        http::append_decimal(out, *res.content_length);
        out.append("\r\n");
    } else if (framing.chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    if (upgrade) {
        out.append("Connection: upgrade\r\n");
        append_field(out, "Upgrade", http::find_header(res.headers, "upgrade"));
    } else if (framing.close) {
        out.append("Connection: close\r\n");
    }
    out.append(stamp.extra);
    out.append("\r\n");
}

void response_fields(const http::Response& res, bool length, http::Stamp stamp,
                     std::vector<http::Header>& fields, std::string& storage) {
    auto connection = http::find_header(res.headers, "connection");
    fields.clear();
    storage.clear();
    append_list_value(storage, res.headers, "Via", via_of(res));
    std::size_t via_end = storage.size();
    if (length && res.content_length) http::append_decimal(storage, *res.content_length);
    std::string_view made(storage);  // not appended to from here on: the views stay valid
    bool has_date = false;
    for (const auto& h : res.headers) {
        if (is_hop_by_hop(h.name, connection) || replaced_on_response(h.name)) continue;
        has_date = has_date || iequals(h.name, "date");
        fields.push_back(h);
    }
    if (!has_date) fields.push_back({"date", stamp.date});
    fields.push_back({"via", made.substr(0, via_end)});
    if (made.size() > via_end) fields.push_back({"content-length", made.substr(via_end)});
}

}  // namespace im::upstream
