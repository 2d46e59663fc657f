// A connection's read buffer. Parsed heads are views into it, so it only
// moves bytes (compact) between requests, never while one is in flight.
#pragma once

#include <boost/asio/buffer.hpp>
#include <cstring>
#include <memory>
#include <string_view>

namespace im::http {

class InputBuffer {
public:
    explicit InputBuffer(std::size_t capacity)
        : data_(std::make_unique_for_overwrite<char[]>(capacity)), capacity_(capacity) {}  // no memset

    std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    std::size_t capacity() const { return capacity_; }
    bool full() const { return end_ == capacity_; }

    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Moves the unread bytes to the front; invalidates views into the buffer.
    void compact() {
        if (begin_ == 0) return;
        std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    boost::asio::mutable_buffer free_space() {
        return boost::asio::buffer(data_.get() + end_, capacity_ - end_);
    }
    void commit(std::size_t n) { end_ += n; }
    void append(std::string_view bytes) {
        compact();
        std::size_t n = std::min(bytes.size(), capacity_ - end_);
        std::memcpy(data_.get() + end_, bytes.data(), n);
        end_ += n;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t capacity_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace im::http
