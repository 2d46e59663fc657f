#include "pages/compress.hpp"

#include <brotli/encode.h>
#include <zlib.h>

#include <cctype>
#include <limits>

namespace im::pages {

std::optional<std::string> gzip_compress(std::string_view data) {
    // One-shot deflate counts in uInt; bigger files are simply served uncompressed.
    if (data.size() > std::numeric_limits<uInt>::max() / 2) return std::nullopt;
    z_stream stream{};
    // 15 window bits + 16 asks zlib for the gzip wrapper instead of the zlib one.
    if (deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        return std::nullopt;
    }
    std::string out(deflateBound(&stream, data.size()), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    stream.avail_in = static_cast<uInt>(data.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&stream, Z_FINISH);
    std::size_t produced = stream.total_out;
    deflateEnd(&stream);
    if (rc != Z_STREAM_END) return std::nullopt;
    out.resize(produced);
    return out;
}

std::optional<std::string> brotli_compress(std::string_view data, bool text) {
    std::size_t size = BrotliEncoderMaxCompressedSize(data.size());
    if (size == 0) return std::nullopt;
    std::string out(size, '\0');
    BROTLI_BOOL ok = BrotliEncoderCompress(
        BROTLI_MAX_QUALITY, BROTLI_DEFAULT_WINDOW, text ? BROTLI_MODE_TEXT : BROTLI_MODE_GENERIC,
        data.size(), reinterpret_cast<const std::uint8_t*>(data.data()), &size,
        reinterpret_cast<std::uint8_t*>(out.data()));
    if (!ok) return std::nullopt;
    out.resize(size);
    return out;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Header tokens are ASCII; std::tolower would consult the locale on every character.
char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

// q-value in thousandths (RFC 9110 §12.4.2: at most three decimals). Malformed -> 1000, the
// lenient reading: the client did name the coding.
int parse_qvalue(std::string_view v) {
    if (v.empty() || (v[0] != '0' && v[0] != '1')) return 1000;
    int whole = v[0] - '0';
    int fraction = 0;
    int scale = 100;
    if (v.size() > 1 && v[1] == '.') {
        for (std::size_t i = 2; i < v.size() && i < 5; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(v[i]))) break;
            fraction += (v[i] - '0') * scale;
            scale /= 10;
        }
    }
    int q = whole * 1000 + fraction;
    return q > 1000 ? 1000 : q;
}

// Extracts q from ";q=0.5;other=x" parameters; 1000 when absent.
int qvalue_of(std::string_view params) {
    while (!params.empty()) {
        std::size_t semi = params.find(';');
        std::string_view param = trim(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
            return parse_qvalue(trim(param.substr(2)));
        }
    }
    return 1000;
}

struct Acceptance {
    int gzip = -1;  // -1 = not named
    int brotli = -1;
    int star = -1;
};

Acceptance parse_accept_encoding(std::string_view value) {
    Acceptance result;
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view item = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        std::size_t semi = item.find(';');
        std::string_view coding = trim(item.substr(0, semi));
        int q = semi == std::string_view::npos ? 1000 : qvalue_of(item.substr(semi + 1));
        if (iequals(coding, "br")) {
            result.brotli = q;
        } else if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
            result.gzip = q;
        } else if (coding == "*") {
            result.star = q;
        }
    }
    return result;
}

}  // namespace

Encoding choose_encoding(std::string_view accept_encoding, bool have_gzip, bool have_brotli) {
    if (accept_encoding.empty() || (!have_gzip && !have_brotli)) return Encoding::identity;
    Acceptance a = parse_accept_encoding(accept_encoding);
    int star = a.star < 0 ? 0 : a.star;
    int brotli = have_brotli ? (a.brotli < 0 ? star : a.brotli) : 0;
    int gzip = have_gzip ? (a.gzip < 0 ? star : a.gzip) : 0;
    if (brotli > 0 && brotli >= gzip) return Encoding::brotli;
    if (gzip > 0) return Encoding::gzip;
    return Encoding::identity;
}

}  // namespace im::pages
