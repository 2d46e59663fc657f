#include "pages/mime.hpp"

#include <array>

namespace im::pages {
namespace {

struct MimeEntry {
    std::string_view extension;
    std::string_view type;
    bool compressible;
    bool text;
};

constexpr std::array kTypes{
    MimeEntry{"html", "text/html; charset=utf-8", true, true},
    MimeEntry{"htm", "text/html; charset=utf-8", true, true},
    MimeEntry{"css", "text/css; charset=utf-8", true, true},
    MimeEntry{"js", "text/javascript; charset=utf-8", true, true},
    MimeEntry{"mjs", "text/javascript; charset=utf-8", true, true},
    MimeEntry{"svg", "image/svg+xml; charset=utf-8", true, true},
    MimeEntry{"txt", "text/plain; charset=utf-8", true, true},
    MimeEntry{"json", "application/json; charset=utf-8", true, true},
    MimeEntry{"xml", "application/xml; charset=utf-8", true, true},
    MimeEntry{"map", "application/json; charset=utf-8", true, true},
    MimeEntry{"webmanifest", "application/manifest+json", true, true},
    MimeEntry{"ico", "image/x-icon", true, false},
    MimeEntry{"png", "image/png", false, false},
    MimeEntry{"jpg", "image/jpeg", false, false},
    MimeEntry{"jpeg", "image/jpeg", false, false},
    MimeEntry{"gif", "image/gif", false, false},
    MimeEntry{"webp", "image/webp", false, false},
    MimeEntry{"avif", "image/avif", false, false},
    MimeEntry{"woff", "font/woff", false, false},
    MimeEntry{"woff2", "font/woff2", false, false},
    MimeEntry{"ttf", "font/ttf", false, false},
    MimeEntry{"otf", "font/otf", false, false},
    MimeEntry{"pdf", "application/pdf", false, false},
    MimeEntry{"wasm", "application/wasm", false, false},
};

// Extensions compared are ASCII; std::tolower would consult the locale for every character.
char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != b[i]) return false;
    }
    return true;
}

const MimeEntry* lookup(std::string_view path) {
    std::size_t slash = path.rfind('/');
    std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return nullptr;
    std::string_view extension = name.substr(dot + 1);
    for (const auto& entry : kTypes) {
        if (iequals(extension, entry.extension)) return &entry;
    }
    return nullptr;
}

}  // namespace

std::string_view mime_type(std::string_view path) {
    const MimeEntry* entry = lookup(path);
    return entry ? entry->type : "application/octet-stream";
}

bool is_compressible(std::string_view path) {
    const MimeEntry* entry = lookup(path);
    return entry && entry->compressible;
}

bool is_text(std::string_view path) {
    const MimeEntry* entry = lookup(path);
    return entry && entry->text;
}

}  // namespace im::pages
