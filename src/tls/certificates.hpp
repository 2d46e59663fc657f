// The certificates of the `tls` section, loaded and checked once (the key
// matches, not expired), with the SNI choice between them. Immutable once
// built: a reload or a changed file builds a new store, and a store that
// fails to build leaves the previous one serving.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace im::tls {

// What the admin API and the logs say of a certificate.
struct CertificateInfo {
    std::string file;
    std::vector<std::string> names;
    std::int64_t not_after = 0;  // UTC seconds
};

class CertificateStore {
public:
    struct Loaded {
        std::shared_ptr<const CertificateStore> store;  // null when there were errors
        std::vector<std::string> errors;                // each names the file
    };
    // Errors start with "file:line:column: " of the certificate in `source`.
    // `offer_h2`: ALPN offers h2 before http/1.1.
    static Loaded load(const config::Tls& tls, const std::filesystem::path& source, bool offer_h2);

    // The context every handshake starts with: the default certificate, and
    // the callbacks that switch to the certificate for the client's name.
    boost::asio::ssl::context& handshake_context() const { return *contexts_[default_]; }
    // The context serving `name` (exact, then the longest wildcard), or null.
    SSL_CTX* find(std::string_view name) const;
    bool reject_unknown_names() const { return reject_unknown_; }
    const std::vector<CertificateInfo>& certificates() const { return info_; }

private:
    std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;
    std::vector<CertificateInfo> info_;
    std::unordered_map<std::string, std::size_t> exact_;
    std::vector<std::pair<std::string, std::size_t>> wildcards_;  // ".example.com", longest first
    std::size_t default_ = 0;
    bool reject_unknown_ = false;
};

// Session ticket keys: one current key that seals new tickets and the
// previous one that still opens tickets sealed before the last rotation.
// Process-wide, since every certificate context must open every ticket.
void rotate_ticket_keys();

// A client context for a target group's https:// targets (CA, client
// certificate, minimum version). Errors name the file.
struct UpstreamContext {
    std::shared_ptr<boost::asio::ssl::context> context;  // null on error
    std::string error;
};
UpstreamContext make_upstream_context(const config::UpstreamTls& tls);

// OpenSSL's reasons for the last failure, drained from its error queue.
std::string openssl_errors();

}  // namespace im::tls
