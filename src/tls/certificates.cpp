#include "tls/certificates.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

namespace im::tls {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only.
constexpr const char* kModernCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char kSessionContext[] = "intermission";

struct TicketKey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};
struct TicketRing {
    TicketKey current{};
    TicketKey previous{};
    bool has_previous = false;
};
std::atomic<std::shared_ptr<const TicketRing>> g_tickets;

bool set_ticket_mac(EVP_MAC_CTX* mac, const TicketKey& k) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(k.hmac), sizeof k.hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's ticket callback: 1 = use this key, 2 = accepted but renew with
// the current key, 0 = unknown key (full handshake), -1 = error.
int on_ticket(SSL*, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int seal) {
    auto ring = g_tickets.load();
    if (!ring) return seal ? -1 : 0;
    if (seal) {
        const auto& k = ring->current;
        std::memcpy(name, k.name, sizeof k.name);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
        return set_ticket_mac(mac, k) ? 1 : -1;
    }
    const TicketKey* k = nullptr;
    if (std::memcmp(name, ring->current.name, 16) == 0) k = &ring->current;
    else if (ring->has_previous && std::memcmp(name, ring->previous.name, 16) == 0) k = &ring->previous;
    if (!k) return 0;
    if (!set_ticket_mac(mac, *k) || EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k->aes, iv) != 1)
        return -1;
    return k == &ring->current ? 1 : 2;
}

// `offer_h2` (the callback's argument): h2 first, then http/1.1; else http/1.1 only.
int on_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
            unsigned int in_len, void* offer_h2) {
    static const unsigned char kBoth[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    const unsigned char* ours = offer_h2 ? kBoth : kBoth + 3;
    unsigned int ours_len = offer_h2 ? sizeof kBoth : sizeof kBoth - 3;
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, out_len, ours, ours_len, in, in_len) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN (HTTP/1.1)
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

int on_server_name(SSL* ssl, int* alert, void* arg) {
    const auto* store = static_cast<const CertificateStore*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX* ctx = name ? store->find(name) : nullptr;
    if (!ctx) {
        if (!store->reject_unknown_names()) return SSL_TLSEXT_ERR_OK;  // the default certificate
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

std::string readable(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (in) return {};
    return "cannot read " + file.string() + ": " + std::strerror(errno);
}

std::int64_t to_unix(const ASN1_TIME* t) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

std::vector<std::string> dns_names(X509* cert) {
    std::vector<std::string> names;
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
        if (n->type != GEN_DNS) continue;
        const auto* s = n->d.dNSName;
        names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
    if (names.empty()) {  // an old certificate without SANs: its common name
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
            names.emplace_back(cn);
    }
    for (auto& n : names) std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    return names;
}

void apply_protocol_options(SSL_CTX* ctx, const config::Tls& tls, bool offer_h2) {
    SSL_CTX_set_min_proto_version(ctx, tls.min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    if (tls.session_tickets) SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
    else SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    // Any non-null pointer says yes: the callback only tests it.
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, offer_h2 ? ctx : nullptr);
}

// Loaded apart from the context so that "not a key" and "another certificate's key" say so.
std::string use_key(SSL_CTX* ctx, X509* cert, const config::Certificate& c) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(c.key.c_str(), "r"), BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
    if (!key) return "cannot load the key " + c.key.string() + ": " + openssl_errors();
    if (X509_check_private_key(cert, key.get()) != 1) {
        ERR_clear_error();
        return "the key " + c.key.string() + " does not match the certificate " + c.cert.string();
    }
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) return "cannot use the key " + c.key.string() + ": " + openssl_errors();
    return {};
}

}  // namespace

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

void rotate_ticket_keys() {
    auto next = std::make_shared<TicketRing>();
    if (auto old = g_tickets.load()) {
        next->previous = old->current;
        next->has_previous = true;
    }
    RAND_bytes(reinterpret_cast<unsigned char*>(&next->current), sizeof next->current);
    g_tickets.store(std::move(next));
}

CertificateStore::Loaded CertificateStore::load(const config::Tls& tls, const std::filesystem::path& source,
                                                bool offer_h2) {
    Loaded out;
    auto store = std::shared_ptr<CertificateStore>(new CertificateStore());
    store->reject_unknown_ = tls.reject_unknown_names;
    if (!g_tickets.load()) rotate_ticket_keys();
    for (std::size_t i = 0; i < tls.certificates.size(); ++i) {
        const auto& c = tls.certificates[i];
        const std::string where = config::where(source, c.position) + "tls.certificates[" + std::to_string(i) + "]: ";
        if (auto e = readable(c.cert); !e.empty()) { out.errors.push_back(where + e); continue; }
        if (auto e = readable(c.key); !e.empty()) { out.errors.push_back(where + e); continue; }
        auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
        SSL_CTX* ctx = context->native_handle();
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx, c.cert.c_str()) != 1) {
            out.errors.push_back(where + "cannot load the certificate " + c.cert.string() + ": " + openssl_errors());
            continue;
        }
        X509* cert = SSL_CTX_get0_certificate(ctx);
        if (auto e = use_key(ctx, cert, c); !e.empty()) {
            out.errors.push_back(where + e);
            continue;
        }
        CertificateInfo info{c.cert.string(), c.names.empty() ? dns_names(cert) : c.names,
                             to_unix(X509_get0_notAfter(cert))};
        if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
            char when[32];
            std::time_t t = info.not_after;
            std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
            out.errors.push_back(where + "the certificate " + c.cert.string() + " expired on " + when);
            continue;
        }
        const std::string ciphers = tls.ciphers.empty() ? kModernCiphers : tls.ciphers;
        if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
            out.errors.push_back(where + "no usable cipher in tls.ciphers '" + ciphers + "': " + openssl_errors());
            continue;
        }
        apply_protocol_options(ctx, tls, offer_h2);
        const std::size_t index = store->contexts_.size();
        for (const auto& name : info.names) {
            if (name.starts_with("*.")) store->wildcards_.emplace_back(name.substr(1), index);
            else store->exact_.emplace(name, index);
        }
        if (c.is_default) store->default_ = index;
        store->contexts_.push_back(std::move(context));
        store->info_.push_back(std::move(info));
    }
    if (!out.errors.empty()) return out;
    if (store->contexts_.empty()) {
        out.errors.push_back(source.string() + ": tls.certificates: no certificate loaded");
        return out;
    }
    std::stable_sort(store->wildcards_.begin(), store->wildcards_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    // Every context may start a handshake after a switch; each needs the name callback's store.
    for (auto& context : store->contexts_) {
        SSL_CTX_set_tlsext_servername_callback(context->native_handle(), on_server_name);
        SSL_CTX_set_tlsext_servername_arg(context->native_handle(), store.get());
    }
    out.store = std::move(store);
    return out;
}

SSL_CTX* CertificateStore::find(std::string_view name) const {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!lower.empty() && lower.back() == '.') lower.pop_back();
    if (auto it = exact_.find(lower); it != exact_.end()) return contexts_[it->second]->native_handle();
    for (const auto& [suffix, index] : wildcards_) {
        // "*.example.com" covers one label: a.example.com, not a.b.example.com.
        if (lower.size() > suffix.size() && lower.ends_with(suffix) &&
            lower.find('.') == lower.size() - suffix.size())
            return contexts_[index]->native_handle();
    }
    return nullptr;
}

UpstreamContext make_upstream_context(const config::UpstreamTls& tls) {
    UpstreamContext out;
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* ctx = context->native_handle();
    SSL_CTX_set_min_proto_version(ctx, tls.min_version);
    ERR_clear_error();
    if (!tls.ca_file.empty()) {
        if (auto e = readable(tls.ca_file); !e.empty()) return {nullptr, e};
        if (SSL_CTX_load_verify_locations(ctx, tls.ca_file.c_str(), nullptr) != 1)
            return {nullptr, "cannot load the CA file " + tls.ca_file.string() + ": " + openssl_errors()};
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return {nullptr, "cannot load the system's trust store: " + openssl_errors()};
    }
    SSL_CTX_set_verify(ctx, tls.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!tls.client_cert.empty()) {
        if (auto e = readable(tls.client_cert); !e.empty()) return {nullptr, e};
        if (SSL_CTX_use_certificate_chain_file(ctx, tls.client_cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, tls.client_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            return {nullptr, "cannot use the client certificate " + tls.client_cert.string() + " with " +
                                 tls.client_key.string() + ": " + openssl_errors()};
    }
    out.context = std::move(context);
    return out;
}

}  // namespace im::tls
