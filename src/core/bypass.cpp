#include "core/bypass.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

namespace im::core {

namespace {

std::string signature(std::string_view secret, std::string_view site, std::int64_t expiry) {
    std::string message(site);
    message += '\n';
    message += std::to_string(expiry);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(kHex[mac[i] >> 4]);
        hex.push_back(kHex[mac[i] & 15]);
    }
    return hex;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

bool secret_equals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string make_bypass_token(std::string_view secret, std::string_view site, std::int64_t expiry) {
    return std::to_string(expiry) + "." + signature(secret, site, expiry);
}

bool verify_bypass_token(std::string_view secret, std::string_view site, std::string_view token,
                         std::int64_t now) {
    auto dot = token.find('.');
    if (secret.empty() || dot == std::string_view::npos || dot == 0) return false;
    std::int64_t expiry = 0;
    auto digits = token.substr(0, dot);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), expiry);
    if (ec != std::errc() || end != digits.data() + digits.size()) return false;
    bool signed_ok = secret_equals(token.substr(dot + 1), signature(secret, site, expiry));
    return signed_ok && expiry > now;
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        auto pair = trim(header.substr(0, semi));
        auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name)
            return trim(pair.substr(eq + 1));
        if (semi == std::string_view::npos) break;
        header.remove_prefix(semi + 1);
    }
    return {};
}

std::string_view query_value(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

}  // namespace im::core
