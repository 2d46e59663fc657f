#include "tls/upstream.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

namespace im::tls {

namespace asio = boost::asio;

boost::asio::awaitable<std::string> client_handshake(TlsStream& stream, const config::UpstreamTls& tls,
                                                     const config::Address& target) {
    SSL* ssl = stream.native_handle();
    const std::string& name = tls.server_name.empty() ? target.host : tls.server_name;
    boost::system::error_code ec;
    asio::ip::make_address(name, ec);
    const bool is_ip = !ec;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI carries names, never addresses
    if (tls.verify) {
        bool pinned = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                            : SSL_set1_host(ssl, name.c_str()) == 1;
        if (!pinned) co_return "cannot verify the name '" + name + "'";
    }
    auto hec = co_await stream.handshake(TlsStream::Role::client);
    if (!hec) co_return std::string();
    long verify = SSL_get_verify_result(ssl);
    if (tls.verify && verify != X509_V_OK)
        co_return std::string("certificate refused: ") + X509_verify_cert_error_string(verify);
    co_return "TLS handshake failed: " + hec.message();
}

}  // namespace im::tls
