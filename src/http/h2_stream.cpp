// A stream as the request pipeline sees it: a byte pipe carrying one
// HTTP/1.1 exchange. Request DATA is handed out as the pipeline reads it (and
// only then given back to the client's flow-control window, so an upload
// never piles up here); the answer is translated and queued for nghttp2,
// and a writer waits while more than kBuffered bytes are queued.
#include "http/h2_stream.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include <boost/container/small_vector.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace im::http::h2 {

namespace asio = boost::asio;

namespace {
constexpr std::size_t kBuffered = 64 * 1024;      // answer bytes a stream may queue
constexpr std::size_t kDiscardLimit = 1024 * 1024;  // request bytes read off after the answer
constexpr std::size_t kKeptBuffer = 16 * 1024;  // a reused stream keeps buffers up to this size

void keep_small(std::string& buffer) {
    buffer.clear();
    if (buffer.capacity() > kKeptBuffer) buffer = std::string();
}
}  // namespace

// The timer never expires (it is made with time_point::max and never re-armed):
// cancel() is the only way out, and it wakes every waiter, each of which then
// checks what it waits for. So one Wakeup serves a stream's reader and writer.
asio::awaitable<void> Wakeup::wait() {
    if (!pending_) {
        ++waiting_;
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        --waiting_;
    }
    pending_ = false;
}

Stream::Stream(Connection& connection, const asio::any_io_executor& ex, std::int32_t id,
               std::size_t max_header_bytes, std::size_t max_fields)
    : head(max_header_bytes, max_fields), connection_(connection), id_(id), changed_(ex) {}

void Stream::reuse(std::int32_t id, std::size_t max_header_bytes, std::size_t max_fields) {
    head.reset(max_header_bytes, max_fields);
    head_text.clear();
    id_ = id;
    keep_small(request_);
    read_ = unconsumed_ = 0;
    request_done_ = discarding_ = false;
    discarded_ = 0;
    answering_ = whole_ = relaying_ = relayed_ = false;
    heads_.clear();
    keep_small(response_);
    unpin();  // none left: a stream is reused only once closed
    sent_ = 0;
    data_deferred_ = finished_ = closed_ = false;
    changed_.reset();
}

asio::awaitable<tls::IoResult> Stream::read_some(asio::mutable_buffer buffer) {
    while (true) {
        if (read_ < request_.size()) {
            std::size_t n = std::min(buffer.size(), request_.size() - read_);
            std::memcpy(buffer.data(), request_.data() + read_, n);
            read_ += n;
            if (read_ == request_.size()) {
                request_.clear();
                read_ = 0;
                if (unconsumed_ && !closed_) {
                    // Read: the client may send that much again.
                    nghttp2_session_consume(connection_.session(), id_, unconsumed_);
                    unconsumed_ = 0;
                    connection_.want_send();
                }
            }
            co_return tls::IoResult{boost::system::error_code{}, n};
        }
        if (request_done_) co_return tls::IoResult{asio::error::eof, 0};
        if (closed_) co_return tls::IoResult{asio::error::connection_reset, 0};
        co_await changed_.wait();
    }
}

void Stream::submit(const ResponseTranslator::Head& h) {
    // Three digits (RFC 9110 §15), without printf's machinery on every answer.
    char status[3] = {static_cast<char>('0' + h.status / 100 % 10), static_cast<char>('0' + h.status / 10 % 10),
                      static_cast<char>('0' + h.status % 10)};
    boost::container::small_vector<nghttp2_nv, 16> nv;
    auto field = [](std::string_view name, std::string_view value) {
        return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                          value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    nv.push_back(field(":status", std::string_view(status, 3)));
    for (const auto& f : h.fields) nv.push_back(field(f.name, f.value));
    auto* session = connection_.session();
    if (!h.final) {
        nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, id_, nullptr, nv.data(), nv.size(), nullptr);
        return;
    }
    nghttp2_data_provider body{};
    body.source.ptr = this;
    body.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t*, std::size_t length,
                            std::uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
        return static_cast<Stream*>(source->ptr)->provide(length, flags);
    };
    // nghttp2 copies the fields before it returns.
    nghttp2_submit_response(session, id_, nv.data(), nv.size(), h.has_body ? &body : nullptr);
}

bool Stream::deliver(std::string_view bytes) {
    if (!answering_) {
        translator_.reset(head.method());
        answering_ = true;
    }
    if (!translator_.feed(bytes, heads_, response_)) {
        reset(NGHTTP2_INTERNAL_ERROR);
        return false;
    }
    // Before the next feed: the heads are views into what it keeps.
    for (const auto& h : heads_) submit(h);
    heads_.clear();
    if (buffered() || translator_.complete()) resume_data();
    connection_.want_send();
    return true;
}

void Stream::reply(const Reply& r, Stamp stamp) {
    answering_ = whole_ = true;
    // What append_reply writes, as fields: 204 and 304 have neither length nor body.
    bool framed = r.status != 204 && r.status != 304;
    auto& h = reply_head_;
    h.status = r.status;
    h.fields.clear();
    h.fields.push_back({"date", stamp.date});
    reply_names_.clear();
    reply_names_.reserve(stamp.extra.size() + r.headers.size() + r.extra_headers.size());
    add_fields(stamp.extra, h.fields, reply_names_);
    add_fields(r.headers, h.fields, reply_names_);
    add_fields(r.extra_headers, h.fields, reply_names_);
    char length[24];
    if (framed) {
        auto end = std::to_chars(length, length + sizeof length, r.body.size()).ptr;
        h.fields.push_back({"content-length", std::string_view(length, static_cast<std::size_t>(end - length))});
    }
    h.has_body = framed && !r.head_only && !r.body.empty();
    if (h.has_body && r.stored && !closed_) {
        stored_ = r.body;
        pinned_ = connection_.pin_current();
    } else if (h.has_body) {
        response_.assign(r.body);
    }
    submit(h);
    connection_.want_send();
}

void Stream::relay_head(int status, std::span<const Header> fields, Stamp stamp, bool has_body) {
    answering_ = relaying_ = true;
    auto& h = reply_head_;
    h.status = status;
    h.final = true;
    h.has_body = has_body;
    h.fields.clear();
    reply_names_.clear();
    std::size_t name_bytes = stamp.extra.size();
    for (const auto& f : fields) name_bytes += f.name.size();
    reply_names_.reserve(name_bytes);
    add_fields(fields, h.fields, reply_names_);
    add_fields(stamp.extra, h.fields, reply_names_);
    submit(h);
    connection_.want_send();
}

void Stream::relay_done() {
    relayed_ = true;
    resume_data();
    connection_.want_send();
}

// A forwarded body's bytes as they are; anything else is HTTP/1.1 to translate.
bool Stream::take(std::string_view bytes) {
    if (!relaying_) return deliver(bytes);
    response_.append(bytes);
    if (buffered()) resume_data();
    connection_.want_send();
    return true;
}

asio::awaitable<tls::IoResult> Stream::write(tls::Pieces buffers) {
    if (closed_) co_return tls::IoResult{asio::error::broken_pipe, 0};
    std::size_t total = 0;
    for (const auto& b : buffers) {
        if (!take({static_cast<const char*>(b.data()), b.size()}))
            co_return tls::IoResult{asio::error::invalid_argument, 0};
        total += b.size();
    }
    // Backpressure: the client's window (or its reading) sets the pace.
    while (buffered() > kBuffered && !closed_) co_await changed_.wait();
    if (closed_) co_return tls::IoResult{asio::error::broken_pipe, 0};
    co_return tls::IoResult{boost::system::error_code{}, total};
}

void Stream::finish() {
    finished_ = true;
    if (closed_) return;
    if (!answering_ || (!whole_ && !relaying_ && !translator_.head_done())) {
        reset(NGHTTP2_INTERNAL_ERROR);  // no answer at all: never the case unless a bug
        return;
    }
    resume_data();
    connection_.want_send();
}

void Stream::resume_data() {
    if (!data_deferred_) return;
    data_deferred_ = false;
    nghttp2_session_resume_data(connection_.session(), id_);
}

bool Stream::body_ended() const {
    if (whole_ || relayed_) return true;
    if (relaying_) return false;  // until relay_done()
    return translator_.complete() || (finished_ && translator_.open_ended());
}

ssize_t Stream::provide(std::size_t length, std::uint32_t* flags) {
    std::size_t n = std::min(length, buffered());
    bool last = n == buffered();
    bool ended = body_ended();
    if (n == 0 && !ended) {
        // The answer stopped short of its announced length: the client must not take it as whole.
        if (finished_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        data_deferred_ = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (last && ended) *flags |= NGHTTP2_DATA_FLAG_EOF;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;  // send_frame() writes the bytes straight into the batch
    return static_cast<ssize_t>(n);
}

void Stream::send_frame(const std::uint8_t* frame_head, std::size_t length, std::string& out) {
    out.append(reinterpret_cast<const char*>(frame_head), 9);  // no padding: none is asked for
    out.append(body().substr(sent_, length));
    sent_ += length;
    if (sent_ == body().size()) {
        unpin();
        response_.clear();
        sent_ = 0;
    } else if (!pinned_ && sent_ >= kBuffered) {
        // The writer appends while frames take from the front: without this the
        // string would grow by all a download's bytes whenever it is never quite empty.
        response_.erase(0, sent_);
        sent_ = 0;
    }
    if (buffered() <= kBuffered / 2) changed_.notify();
}

void Stream::discard() {
    discarding_ = true;
    request_.clear();
    read_ = 0;
    discarded_ += unconsumed_;
    if (unconsumed_) nghttp2_session_consume(connection_.session(), id_, unconsumed_);
    unconsumed_ = 0;
    if (discarded_ > kDiscardLimit) reset(NGHTTP2_NO_ERROR);
    connection_.want_send();
}

void Stream::received(std::string_view data) {
    if (discarding_) {
        unconsumed_ += data.size();
        discard();
        return;
    }
    if (head.chunked()) {
        append_chunk_header(request_, data.size());
        request_.append(data).append("\r\n");
    } else {
        request_.append(data);
    }
    unconsumed_ += data.size();
    changed_.notify();
}

void Stream::request_ended() {
    if (request_done_) return;
    if (head.chunked()) request_.append(kLastChunk);
    request_done_ = true;
    changed_.notify();
}

void Stream::unpin() {
    if (!pinned_) return;
    connection_.unpin(pinned_);
    pinned_ = nullptr;
    stored_ = {};
}

void Stream::closed() {
    if (closed_) return;
    closed_ = true;
    unpin();  // what is left of a stored body will not be sent
    // Bytes the pipeline will never read still count against the connection's window.
    if (unconsumed_) nghttp2_session_consume_connection(connection_.session(), unconsumed_);
    unconsumed_ = 0;
    changed_.notify();
}

void Stream::reset(std::uint32_t code) {
    if (closed_) return;
    nghttp2_submit_rst_stream(connection_.session(), NGHTTP2_FLAG_NONE, id_, code);
    closed();
    connection_.want_send();
}

}  // namespace im::http::h2
