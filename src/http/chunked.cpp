#include "http/chunked.hpp"

#include <string>

namespace im::http {
namespace {
constexpr std::size_t kMaxLine = 4096;        // chunk extensions we skip
constexpr std::size_t kMaxTrailers = 16384;   // trailer section we skip
constexpr int kMaxDigits = 15;                // < 2^60: no overflow

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

ChunkedDecoder::Step ChunkedDecoder::on_size_char(char c) {
    int v = hex_value(c);
    if (v >= 0) {
        if (++digits_ > kMaxDigits) return fail();
        remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
        return {1, {}};
    }
    if (digits_ == 0) return fail();
    if (c == '\r') state_ = State::size_lf;
    else if (c == ';' || c == ' ' || c == '\t') state_ = State::extension;
    else return fail();
    return {1, {}};
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in) {
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        switch (state_) {
        case State::size: {
            auto s = on_size_char(c);
            if (failed()) return s;
            ++i;
            break;
        }
        case State::extension:
            // Extensions carry nothing we use; skip them, bounded.
            if (c == '\r') state_ = State::size_lf;
            else if (c == '\n' || c == '\0' || ++line_bytes_ > kMaxLine) return fail();
            ++i;
            break;
        case State::size_lf:
            if (c != '\n') return fail();
            ++i;
            line_bytes_ = 0;
            if (remaining_ == 0) {
                state_ = State::trailer;
                trailer_line_empty_ = true;
            } else {
                state_ = State::data;
            }
            break;
        case State::data: {
            if (i > 0) return {i, {}};  // hand back data in its own step
            std::size_t n = std::min<std::uint64_t>(remaining_, in.size());
            remaining_ -= n;
            if (remaining_ == 0) state_ = State::data_cr;
            return {n, in.substr(0, n)};
        }
        case State::data_cr:
            if (c != '\r') return fail();
            state_ = State::data_lf;
            ++i;
            break;
        case State::data_lf:
            if (c != '\n') return fail();
            state_ = State::size;
            digits_ = 0;
            remaining_ = 0;
            ++i;
            break;
        case State::trailer:
            if (c == '\r') {
                state_ = trailer_line_empty_ ? State::trailer_end_lf : State::trailer_lf;
            } else if (c == '\n' || c == '\0' || ++trailer_bytes_ > kMaxTrailers) {
                return fail();
            } else {
                trailer_line_empty_ = false;
            }
            ++i;
            break;
        case State::trailer_lf:
            if (c != '\n') return fail();
            state_ = State::trailer;
            trailer_line_empty_ = true;
            ++i;
            break;
        case State::trailer_end_lf:
            if (c != '\n') return fail();
            state_ = State::done;
            return {i + 1, {}};
        case State::done:
        case State::failed:
            return {i, {}};
        }
    }
    return {i, {}};
}

void append_chunk_header(std::string& out, std::size_t size) {
    char buf[24];
    int n = 0;
    char tmp[20];
    do {
        tmp[n++] = "0123456789abcdef"[size & 15];
        size >>= 4;
    } while (size);
    for (int k = 0; k < n; ++k) buf[k] = tmp[n - 1 - k];
    buf[n] = '\r';
    buf[n + 1] = '\n';
    out.append(buf, static_cast<std::size_t>(n + 2));
}

}  // namespace im::http
