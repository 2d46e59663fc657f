// Streams a request body from the client: first the bytes already in the
// read buffer, then from the socket, decoding chunked framing on the way.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string_view>

#include "http/chunked.hpp"
#include "http/client.hpp"

namespace im::http {

class RequestBody {
public:
    // The head has been consumed from client.in already.
    RequestBody(Client& client, std::uint64_t max_bytes);

    // The next piece of body data (valid until the next call); empty once
    // done() or failed().
    boost::asio::awaitable<std::string_view> next();
    bool done() const { return done_; }
    bool failed() const { return error_status_ != 0 || client_gone_; }
    int error_status() const { return error_status_; }  // 400, 408, 413
    bool client_gone() const { return client_gone_; }
    std::uint64_t received() const { return received_; }
    // Reads and drops the rest of the body (for answers that do not use it).
    boost::asio::awaitable<bool> discard();

private:
    boost::asio::awaitable<bool> fill();
    std::string_view take_length();
    std::string_view take_chunked();
    void finish();

    Client& client_;
    std::uint64_t max_bytes_;
    bool chunked_;
    std::uint64_t remaining_ = 0;  // length framing
    ChunkedDecoder decoder_;
    bool from_buffer_ = true;    // pending_ points into client.in (else into scratch_)
    std::string_view pending_;   // raw bytes not yet decoded
    std::unique_ptr<char[]> scratch_;
    std::uint64_t received_ = 0;
    bool done_ = false;
    bool client_gone_ = false;
    int error_status_ = 0;
};

}  // namespace im::http
