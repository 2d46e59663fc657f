// The page store: a site's directory of static pages (maintenance and error pages, assets),
// read into memory at start-up with every response header prebuilt, so that answering is a
// hash lookup and a few comparisons.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pages/mime.hpp"
#include "pages/path.hpp"

namespace im::pages {

struct StoreOptions {
    std::filesystem::path root;
    std::string index = "index.html";
    std::string cache_control = "public, max-age=300";
    // (glob on the file's URL path, value), first match wins; see im::config::glob_match.
    std::vector<std::pair<std::string, std::string>> cache_control_paths;
    bool compress = true;
    std::uint64_t max_total_bytes = 256ull << 20;  // all files together, identity bytes
};

// One file, with everything needed to answer for it prebuilt at load time.
struct File {
    std::string path;           // normalized URL path, e.g. "/css/site.css"
    std::string mime;           // e.g. "text/css; charset=utf-8"
    std::string etag;           // strong, from content: "\"<16 hex of sha256>\""
    std::string etag_gzip;      // "\"<16 hex>-gzip\"": each coding is its own representation
    std::string etag_brotli;    // "\"<16 hex>-br\""
    std::string last_modified;  // IMF-fixdate of the file's mtime
    std::string cache_control;
    std::time_t mtime = 0;
    std::string identity, gzip, brotli;  // bodies; gzip/brotli empty when not worth it
    // Header lines ("Name: value\r\n"...) without Date, Content-Length, Connection and the
    // status line: Content-Type, ETag, Last-Modified, Cache-Control, Vary (when a compressed
    // variant exists), Content-Encoding (gzip/br). Empty for a variant that does not exist.
    std::string headers_identity, headers_gzip, headers_brotli;
    // For a 304: ETag, Last-Modified, Cache-Control, Vary lines only.
    std::string headers_304_identity, headers_304_gzip, headers_304_brotli;
};

struct Conditional {  // what the request said; empty string_view = header absent
    std::string_view method;
    std::string_view accept_encoding;
    std::string_view if_none_match;
    std::string_view if_modified_since;
};

struct Reply {
    enum class Kind { ok, not_modified, not_found, redirect, bad_request, method_not_allowed };
    Kind kind = Kind::not_found;
    int status = 404;
    const File* file = nullptr;  // ok / not_modified
    std::string_view headers;    // pre-serialized header lines to send (ok / not_modified)
    std::string_view body;       // ok (the caller drops it for HEAD, keeping Content-Length)
    std::string location;        // redirect: e.g. "/docs/" (+ "?query" if the request had one)
};

class Store {
  public:
    struct LoadResult {
        std::shared_ptr<const Store> store;  // null when there are errors
        std::vector<std::string> errors;     // each names the file and the reason
        std::vector<std::string> warnings;   // skipped entries (symlinks out of the root, ...)
    };

    static LoadResult load(const StoreOptions& options);

    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // raw_target = the request target as received (still percent-encoded; may have "?query").
    // Allocates only when the path needs decoding or normalizing, and for redirects.
    Reply answer(std::string_view raw_target, const Conditional& request) const;

    // Exact lookup of a file by normalized path, e.g. "/errors/503.html"; directories and
    // their index documents are not aliased here.
    const File* find(std::string_view normalized_path) const;

    std::size_t file_count() const { return files_.size(); }
    std::uint64_t total_bytes() const { return total_bytes_; }

  private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Index = std::unordered_map<std::string, const File*, Hash, std::equal_to<>>;

    Store() = default;
    static const File* lookup(const Index& index, std::string_view key);
    Reply serve(const File& file, const Conditional& request) const;

    std::vector<File> files_;  // never resized after load: the indexes point into it
    Index by_path_;            // "/docs/index.html" -> file
    Index dir_index_;          // "/docs" (root: "") -> that directory's index document
    std::uint64_t total_bytes_ = 0;
};

}  // namespace im::pages
