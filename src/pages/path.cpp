#include "pages/path.hpp"

namespace im::pages {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes percent escapes, refusing what could smuggle a separator or a terminator past the
// segment checks: %2f would make "a%2f..%2fb" look like one segment, %5c and %00 mean
// something to some file systems and tools.
std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            int hi = hex_value(in[i + 1]);
            int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            if (c == '/') return std::nullopt;
            i += 2;
        }
        if (c == '\0' || c == '\\') return std::nullopt;
        out.push_back(c);
    }
    return out;
}

}  // namespace

std::optional<std::string> normalize_path(std::string_view raw_path) {
    if (raw_path.empty() || raw_path.front() != '/') return std::nullopt;
    auto decoded = percent_decode(raw_path);
    if (!decoded) return std::nullopt;

    std::string_view rest = *decoded;
    // "/docs/" and "/docs/." both name the directory; the slash is what selects its index.
    const bool trailing_slash = rest.ends_with('/') || rest.ends_with("/.");
    std::string out;
    out.reserve(rest.size());
    while (!rest.empty()) {
        std::size_t slash = rest.find('/');
        std::string_view segment = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (segment == "..") return std::nullopt;
        if (segment.empty() || segment == ".") continue;
        out.push_back('/');
        out.append(segment);
    }
    if (out.empty() || trailing_slash) out.push_back('/');
    return out;
}

bool is_normalized(std::string_view path) {
    if (path.empty() || path.front() != '/') return false;
    // One pass, no splitting: this runs on every request.
    for (std::size_t i = 1; i < path.size(); ++i) {
        char c = path[i];
        if (c == '%' || c == '\\' || c == '\0') return false;
        if (path[i - 1] != '/') continue;
        if (c == '/') return false;  // "//"
        if (c == '.') {
            std::size_t end = i + 1;
            if (end < path.size() && path[end] == '.') ++end;
            if (end == path.size() || path[end] == '/') return false;  // "." or ".." segment
        }
    }
    return true;
}

namespace {
constexpr char kHex[] = "0123456789ABCDEF";

void append_escaped(std::string& out, unsigned char u) {
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xF]);
}
}  // namespace

std::string encode_path(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (char c : path) {
        auto u = static_cast<unsigned char>(c);
        bool safe = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                    std::string_view("/-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
        if (safe) {
            out.push_back(c);
        } else {
            append_escaped(out, u);
        }
    }
    return out;
}

std::string encode_query(std::string_view query) {
    std::string out;
    out.reserve(query.size());
    for (char c : query) {
        auto u = static_cast<unsigned char>(c);
        if (u > 0x20 && u < 0x7F) {
            out.push_back(c);
        } else {
            append_escaped(out, u);
        }
    }
    return out;
}

}  // namespace im::pages
