// The `tls` section (HTTPS listeners, certificates, protocol options) and
// a target group's `tls` (how https:// targets are verified). The files are
// only named here; src/tls loads and checks them, naming the file on error.
#include <algorithm>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

void read_version(Reader& r, const Entry& e, int& version) {
    auto s = r.scalar(e, "a TLS version");
    if (!s) return;
    if (*s == "1.2") version = 0x0303;
    else if (*s == "1.3") version = 0x0304;
    else r.error(e, "bad TLS version '" + *s + "' for " + in_quotes(e.path) + " (expected \"1.2\" or \"1.3\")");
}

void read_path(Reader& r, const Entry& e, std::filesystem::path& out) {
    std::string text;
    r.text(e, text);
    if (!text.empty()) out = r.resolve(text);
}

void read_certificate(Reader& r, const Entry& item, Certificate& c) {
    c.position = Reader::position(item);
    bool is_map = r.fields(item, {
        {"cert", [&](const Entry& e) { read_path(r, e, c.cert); }},
        {"key", [&](const Entry& e) { read_path(r, e, c.key); }},
        {"names", [&](const Entry& e) {
             if (auto list = r.scalars(e, true, "a host name"))
                 for (const auto& n : *list) {
                     auto parsed = parse_host_pattern(n.value.Scalar());
                     if (parsed) c.names.push_back(*parsed.value);
                     else r.error(n, "bad name '" + n.value.Scalar() + "' for " + in_quotes(n.path) + " (" + parsed.expected + ")");
                 }
         }},
        {"default", [&](const Entry& e) { r.boolean(e, c.is_default); }},
    });
    if (is_map && (c.cert.empty() || c.key.empty()))
        r.error_at_key(item, "expected {cert: <PEM certificate and chain>, key: <PEM key>} for " +
                                 in_quotes(item.path));
}

void read_certificates(Reader& r, const Entry& e, std::vector<Certificate>& out) {
    auto list = r.items(e);
    if (!list) return;
    for (const auto& item : *list) read_certificate(r, item, out.emplace_back());
    if (out.empty()) r.error(e, "expected at least one certificate for " + in_quotes(e.path));
    auto defaults = std::count_if(out.begin(), out.end(), [](const Certificate& c) { return c.is_default; });
    if (defaults > 1) r.error(e, "more than one certificate has 'default: true' in " + in_quotes(e.path));
}

void read_unknown_name(Reader& r, const Entry& e, bool& reject) {
    auto s = r.scalar(e, "default or reject");
    if (!s) return;
    if (*s == "default") reject = false;
    else if (*s == "reject") reject = true;
    else r.error(e, "bad value '" + *s + "' for " + in_quotes(e.path) + " (expected default or reject)");
}

void read_addresses(Reader& r, const Entry& e, std::vector<Address>& out) {
    auto list = r.items(e);
    if (!list) return;
    for (const auto& item : *list) {
        auto a = r.address(item);
        if (!a) continue;
        if (!is_ip_address(a->host))
            r.error(item, "bad listen address '" + a->text() + "' for " + in_quotes(item.path) +
                              " (expected an IP address and a port, e.g. 0.0.0.0:8443)");
        else if (std::find(out.begin(), out.end(), *a) != out.end())
            r.error(item, "duplicate listen address '" + a->text() + "'");
        else out.push_back(*a);
    }
}

}  // namespace

void read_tls(Reader& r, const Entry& entry, Tls& tls) {
    tls.enabled = true;
    bool have_certificates = false;
    bool is_map = r.fields(entry, {
        {"listen", [&](const Entry& e) { read_addresses(r, e, tls.listen); }},
        {"certificates", [&](const Entry& e) {
             have_certificates = true;
             read_certificates(r, e, tls.certificates);
         }},
        {"unknown_name", [&](const Entry& e) { read_unknown_name(r, e, tls.reject_unknown_names); }},
        {"min_version", [&](const Entry& e) { read_version(r, e, tls.min_version); }},
        {"ciphers", [&](const Entry& e) { r.text(e, tls.ciphers); }},
        {"session_tickets", [&](const Entry& e) { r.boolean(e, tls.session_tickets); }},
        {"ticket_key_rotation", [&](const Entry& e) { r.duration(e, tls.ticket_key_rotation); }},
        {"redirect_http", [&](const Entry& e) { r.boolean(e, tls.redirect_http); }},
        {"redirect_port", [&](const Entry& e) { r.integer(e, tls.redirect_port, 1, 65535); }},
        {"hsts", [&](const Entry& e) { r.text(e, tls.hsts); }},
        {"watch", [&](const Entry& e) { r.boolean(e, tls.watch); }},
    });
    if (is_map && !have_certificates)
        r.error_at_key(entry, "missing required key 'certificates' in 'tls' (expected a list of "
                              "{cert: <file>, key: <file>})");
    if (is_map && tls.listen.empty())
        r.error_at_key(entry, "missing required key 'listen' in 'tls' (expected HTTPS addresses, e.g. "
                              "[\"0.0.0.0:8443\"])");
}

void read_upstream_tls(Reader& r, const Entry& entry, UpstreamTls& tls) {
    tls.position = Reader::position(entry);
    r.fields(entry, {
        {"ca_file", [&](const Entry& e) { read_path(r, e, tls.ca_file); }},
        {"verify", [&](const Entry& e) { r.boolean(e, tls.verify); }},
        {"server_name", [&](const Entry& e) { r.text(e, tls.server_name); }},
        {"min_version", [&](const Entry& e) { read_version(r, e, tls.min_version); }},
        {"client_cert", [&](const Entry& e) { read_path(r, e, tls.client_cert); }},
        {"client_key", [&](const Entry& e) { read_path(r, e, tls.client_key); }},
    });
    if (tls.client_cert.empty() != tls.client_key.empty())
        r.error_at_key(entry, "expected both client_cert and client_key in " + in_quotes(entry.path));
}

}  // namespace im::config::detail
