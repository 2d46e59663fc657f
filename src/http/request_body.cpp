#include "http/request_body.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "server/worker.hpp"

namespace im::http {

namespace asio = boost::asio;
namespace {
constexpr std::size_t kScratch = 16 * 1024;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

RequestBody::RequestBody(Client& client, std::uint64_t max_bytes)
    : client_(client), max_bytes_(max_bytes), chunked_(client.request.chunked) {
    remaining_ = chunked_ ? 0 : client.request.content_length.value_or(0);
    // Take what is buffered now; nothing writes into client.in until the
    // request is over, so the head's views stay valid.
    pending_ = client.in.view();
    client.in.consume(client.in.size());
    if (!chunked_ && remaining_ == 0) finish();
    else if (!chunked_ && max_bytes_ && remaining_ > max_bytes_) error_status_ = 413;
}

void RequestBody::finish() {
    done_ = true;
    if (!pending_.empty()) client_.carry.assign(pending_);
    pending_ = {};
}

std::string_view RequestBody::take_length() {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, pending_.size()));
    auto piece = pending_.substr(0, n);
    pending_.remove_prefix(n);
    remaining_ -= n;
    if (remaining_ == 0) finish();
    return piece;
}

std::string_view RequestBody::take_chunked() {
    auto step = decoder_.feed(pending_);
    pending_.remove_prefix(step.consumed);
    if (decoder_.failed() || (step.consumed == 0 && !decoder_.done())) {
        error_status_ = 400;
        return {};
    }
    if (decoder_.done()) finish();
    return step.data;
}

asio::awaitable<bool> RequestBody::fill() {
    auto& worker = client_.worker;
    if (client_.request.expect_continue && received_ == 0 && from_buffer_) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        client_.guard.arm(worker.snapshot()->config->server.timeouts.send);
        auto [ec, n] = co_await client_.channel().write(asio::buffer(kContinue));
        if (ec) {
            client_gone_ = true;
            co_return false;
        }
    }
    from_buffer_ = false;
    if (!scratch_) scratch_ = std::make_unique_for_overwrite<char[]>(kScratch);
    client_.guard.arm(worker.snapshot()->config->server.timeouts.body);
    auto [ec, n] = co_await client_.channel().read_some(asio::buffer(scratch_.get(), kScratch));
    client_.guard.disarm();
    if (ec || n == 0) {
        if (client_.guard.expired()) error_status_ = 408;
        else client_gone_ = true;
        co_return false;
    }
    pending_ = std::string_view(scratch_.get(), n);
    co_return true;
}

asio::awaitable<std::string_view> RequestBody::next() {
    while (!done_ && !failed()) {
        if (pending_.empty() && !co_await fill()) break;
        auto piece = chunked_ ? take_chunked() : take_length();
        if (failed()) break;
        if (piece.empty()) continue;
        received_ += piece.size();
        if (max_bytes_ && received_ > max_bytes_) {
            error_status_ = 413;
            break;
        }
        co_return piece;
    }
    co_return std::string_view{};
}

asio::awaitable<bool> RequestBody::discard() {
    while (!done_ && !failed()) co_await next();
    co_return done_;
}

}  // namespace im::http
