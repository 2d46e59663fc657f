// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
// Bodies are streamed, never buffered whole: the decoder hands back the data
// bytes it finds in each input piece and keeps only its small state.
#pragma once

#include <cstdint>
#include <string_view>

namespace im::http {

class ChunkedDecoder {
public:
    struct Step {
        std::size_t consumed = 0;  // input bytes used by this step
        std::string_view data;     // decoded body bytes (a view into the input)
    };

    // Decodes from the front of `in`. Call again with the rest while
    // consumed > 0 and !done() && !failed().
    Step feed(std::string_view in);
    bool done() const { return state_ == State::done; }
    bool failed() const { return state_ == State::failed; }
    void reset() { *this = ChunkedDecoder{}; }

private:
    enum class State { size, extension, size_lf, data, data_cr, data_lf, trailer, trailer_lf,
                       trailer_end_lf, done, failed };
    Step fail() { state_ = State::failed; return {}; }
    Step on_size_char(char c);

    State state_ = State::size;
    std::uint64_t remaining_ = 0;
    int digits_ = 0;
    std::size_t line_bytes_ = 0;  // extension or trailer bytes on the current line
    std::size_t trailer_bytes_ = 0;
    bool trailer_line_empty_ = true;
};

// Appends "size-in-hex CRLF" to out; used when re-framing a body as chunked.
void append_chunk_header(std::string& out, std::size_t size);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace im::http
