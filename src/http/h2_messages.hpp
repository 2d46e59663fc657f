// HTTP/2 streams ride the HTTP/1.1 request pipeline, so that rules,
// maintenance, bypass, error pages, the store and forwarding behave the same
// on both protocols: a stream's header fields become an HTTP/1.1 request
// head, and the HTTP/1.1 answer written back becomes HTTP/2 header fields
// and DATA. Pure translation, no I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.hpp"
#include "http/message.hpp"

namespace im::http::h2 {

// A request's header fields as they arrive (names lowercase, checked by
// nghttp2), written out as the HTTP/1.1 head the parser takes.
class RequestHead {
public:
    // Beyond these the request is answered 431, like an HTTP/1.1 head.
    RequestHead(std::size_t max_bytes, std::size_t max_fields)
        : max_bytes_(max_bytes), max_fields_(max_fields) {}
    // For the next stream: empty again, the buffers kept.
    void reset(std::size_t max_bytes, std::size_t max_fields);

    void add(std::string_view name, std::string_view value);
    bool too_large() const { return too_large_; }
    // The head, ending in the blank line. `has_body`: DATA frames follow;
    // without a content-length they are framed chunked.
    void finish(bool has_body, std::string& head);
    bool chunked() const { return chunked_; }
    std::string_view method() const { return method_; }

private:
    std::string method_, path_, authority_;
    std::string fields_;  // "name: value\r\n" each
    std::string cookie_;  // HTTP/2 splits cookies (RFC 9113 §8.2.3); HTTP/1.1 wants one field
    std::string host_;    // a Host field, used when :authority is missing
    bool has_content_length_ = false;
    bool chunked_ = false;
    bool too_large_ = false;
    std::size_t bytes_ = 0;
    std::size_t fields_count_ = 0;
    std::size_t max_bytes_;
    std::size_t max_fields_;
};

// An HTTP/1.1 response, as the pipeline writes it, turned into what an
// HTTP/2 stream sends: header blocks (interim 1xx ones, then the final one)
// and the body without its HTTP/1.1 framing.
class ResponseTranslator {
public:
    // Views into the bytes last fed and into the translator (lowercase names):
    // valid until the next feed().
    struct Field {
        std::string_view name;  // lowercase
        std::string_view value;
    };
    struct Head {
        int status = 0;
        std::vector<Field> fields;
        bool final = true;      // not a 1xx
        bool has_body = false;  // DATA frames follow
    };

    explicit ResponseTranslator(std::string_view request_method = {}) { reset(request_method); }
    // For the answer to another request: the state cleared, the buffers kept.
    void reset(std::string_view request_method);

    // Takes the next bytes of the answer: completed heads go to `heads`,
    // body bytes are appended to `body`. False when the bytes are not a valid
    // response (which would be a bug before here): the stream is reset.
    bool feed(std::string_view bytes, std::vector<Head>& heads, std::string& body);
    bool head_done() const { return state_ != State::head; }
    // The body reached its announced end (length or last chunk), or has none.
    bool complete() const { return state_ == State::done; }
    // The body has no announced end: it ends when the answer does.
    bool open_ended() const { return state_ == State::until_end; }

private:
    enum class State { head, length, chunked, until_end, done };
    bool take_head(std::string_view head, std::vector<Head>& heads);

    bool head_request_ = false;
    State state_ = State::head;
    std::string pending_;  // a head that came in pieces
    // What the views of the heads handed out point into, besides the input: the
    // lowercase names (reserved per feed so that it never moves) and the one head
    // of a feed that came in pieces.
    std::string names_;
    std::string taken_;
    std::uint64_t remaining_ = 0;
    ChunkedDecoder chunks_;
    Response response_;  // the parsed head, reused
};

// The fields of "Name: value\r\n" lines as the gateway writes them, names
// lowercased into `names` (reserved by the caller so that it does not move
// while the fields point into it), connection-specific fields left out.
void add_fields(std::string_view lines, std::vector<ResponseTranslator::Field>& fields, std::string& names);
// The same for fields parsed already (a forwarded answer's): names lowercased
// into `names` (reserved as above), connection-specific fields left out.
void add_fields(std::span<const Header> headers, std::vector<ResponseTranslator::Field>& fields,
                std::string& names);

}  // namespace im::http::h2
