// Store::load: walks the root, reads every servable file and prebuilds its responses.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "config/glob.hpp"
#include "pages/compress.hpp"
#include "pages/conditional.hpp"
#include "pages/store.hpp"

namespace im::pages {
namespace fs = std::filesystem;

namespace {

// Below this, compression overhead (headers, CPU at the client) outweighs the saving.
constexpr std::size_t kMinCompressSize = 256;

std::string quoted(const fs::path& p) {
    return "'" + p.string() + "'";
}

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

// First 16 hex digits of the content's SHA-256: content-derived, so identical on every
// instance of a fleet and across restarts, unlike an mtime-based tag.
std::optional<std::string> content_hash(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
        return std::nullopt;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < 8 && i < length; ++i) {
        hex.push_back(kHex[digest[i] >> 4]);
        hex.push_back(kHex[digest[i] & 0xF]);
    }
    return hex;
}

const std::string& cache_control_for(const StoreOptions& options, std::string_view url) {
    for (const auto& [glob, value] : options.cache_control_paths) {
        if (config::glob_match(glob, url)) return value;
    }
    return options.cache_control;
}

std::string header_block(const File& file, std::string_view etag, std::string_view encoding,
                         bool vary, bool for_304) {
    std::string h;
    if (!for_304) h.append("Content-Type: ").append(file.mime).append("\r\n");
    h.append("ETag: ").append(etag).append("\r\n");
    h.append("Last-Modified: ").append(file.last_modified).append("\r\n");
    h.append("Cache-Control: ").append(file.cache_control).append("\r\n");
    if (vary) h.append("Vary: Accept-Encoding\r\n");
    if (!for_304 && !encoding.empty()) {
        h.append("Content-Encoding: ").append(encoding).append("\r\n");
    }
    return h;
}

void compress_variants(File& file, bool text) {
    // A variant is kept only if it saves bytes; otherwise clients get identity for free.
    if (auto gz = gzip_compress(file.identity); gz && gz->size() < file.identity.size()) {
        file.gzip = std::move(*gz);
    }
    if (auto br = brotli_compress(file.identity, text); br && br->size() < file.identity.size()) {
        file.brotli = std::move(*br);
    }
}

void build_headers(File& file) {
    bool vary = !file.gzip.empty() || !file.brotli.empty();
    file.headers_identity = header_block(file, file.etag, {}, vary, false);
    file.headers_304_identity = header_block(file, file.etag, {}, vary, true);
    if (!file.gzip.empty()) {
        file.headers_gzip = header_block(file, file.etag_gzip, "gzip", vary, false);
        file.headers_304_gzip = header_block(file, file.etag_gzip, "gzip", vary, true);
    }
    if (!file.brotli.empty()) {
        file.headers_brotli = header_block(file, file.etag_brotli, "br", vary, false);
        file.headers_304_brotli = header_block(file, file.etag_brotli, "br", vary, true);
    }
}

bool inside(const fs::path& root, const fs::path& target) {
    auto [r, t] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
    return r == root.end();
}

class Loader {
  public:
    explicit Loader(const StoreOptions& options) : options_(options) {}

    void run(const fs::path& root);

    std::vector<File> files;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    std::uint64_t total_bytes = 0;

  private:
    void walk(const fs::path& dir, const std::string& url_prefix);
    void visit(const fs::directory_entry& entry, const std::string& url);
    void visit_symlink(const fs::path& link, const std::string& url);
    void add_file(const fs::path& path, std::string url);
    bool read_file(const fs::path& path, std::string& content, std::time_t& mtime);

    const StoreOptions& options_;
    fs::path root_;
    bool stop_ = false;  // set once over max_total_bytes: every further file is pointless
};

void Loader::run(const fs::path& root) {
    std::error_code ec;
    fs::file_status status = fs::status(root, ec);
    if (!fs::exists(status)) {
        errors.push_back("page store root " + quoted(root) + ": does not exist");
        return;
    }
    if (!fs::is_directory(status)) {
        errors.push_back("page store root " + quoted(root) + ": is not a directory");
        return;
    }
    root_ = fs::canonical(root, ec);
    if (ec) {
        errors.push_back("page store root " + quoted(root) + ": " + ec.message());
        return;
    }
    walk(root_, "/");
}

void Loader::walk(const fs::path& dir, const std::string& url_prefix) {
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        entries.push_back(*it);
    }
    if (ec) {
        errors.push_back(quoted(dir) + ": cannot list directory: " + ec.message());
        return;
    }
    // Sorted so that errors, warnings and the over-limit cut are the same on every run.
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.path() < b.path(); });
    for (const auto& entry : entries) {
        if (stop_) return;
        std::string name = entry.path().filename().string();
        // Hidden files are editor swap files, .git, .htaccess...: never meant to be served.
        if (name.empty() || name.front() == '.') continue;
        visit(entry, url_prefix + name);
    }
}

void Loader::visit(const fs::directory_entry& entry, const std::string& url) {
    std::error_code ec;
    fs::file_status status = entry.symlink_status(ec);
    if (ec) {
        errors.push_back(quoted(entry.path()) + ": " + ec.message());
    } else if (fs::is_symlink(status)) {
        visit_symlink(entry.path(), url);
    } else if (fs::is_directory(status)) {
        walk(entry.path(), url + "/");
    } else if (fs::is_regular_file(status)) {
        add_file(entry.path(), url);
    } else {
        warnings.push_back(quoted(entry.path()) + ": skipped, not a regular file");
    }
}

void Loader::visit_symlink(const fs::path& link, const std::string& url) {
    std::error_code ec;
    fs::path target = fs::weakly_canonical(link, ec);
    if (ec) {
        warnings.push_back(quoted(link) + ": skipped symlink: " + ec.message());
        return;
    }
    // A link out of the root would publish whatever it points at (/etc, a home directory).
    if (!inside(root_, target)) {
        warnings.push_back(quoted(link) + ": skipped symlink, its target " + quoted(target) +
                           " is outside the root " + quoted(root_));
        return;
    }
    fs::file_status status = fs::status(target, ec);
    if (ec || !fs::exists(status)) {
        warnings.push_back(quoted(link) + ": skipped dangling symlink");
    } else if (fs::is_regular_file(status)) {
        add_file(link, url);
    } else {
        // Directory links could form cycles and would serve the same files twice.
        warnings.push_back(quoted(link) + ": skipped symlink to a non-file (not followed)");
    }
}

bool Loader::read_file(const fs::path& path, std::string& content, std::time_t& mtime) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errors.push_back(quoted(path) + ": cannot open: " + errno_text(errno));
        return false;
    }
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0;
    if (!ok) errors.push_back(quoted(path) + ": cannot stat: " + errno_text(errno));
    auto size = static_cast<std::uint64_t>(ok ? st.st_size : 0);
    if (ok && total_bytes + size > options_.max_total_bytes) {
        errors.push_back(quoted(path) + ": the page store " + quoted(root_) + " exceeds " +
                         std::to_string(options_.max_total_bytes) + " bytes (max_total_bytes)");
        stop_ = true;
        ok = false;
    }
    if (ok) {
        content.resize(size);
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::read(fd, content.data() + done, size - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                errors.push_back(quoted(path) + ": cannot read: " + errno_text(errno));
                ok = false;
                break;
            }
            if (n == 0) break;  // shrank while reading: serve what is there
            done += static_cast<std::size_t>(n);
        }
        content.resize(done);
        mtime = st.st_mtime;
    }
    ::close(fd);
    return ok;
}

void Loader::add_file(const fs::path& path, std::string url) {
    File file;
    if (!read_file(path, file.identity, file.mtime)) return;
    std::optional<std::string> hash = content_hash(file.identity);
    if (!hash) {
        errors.push_back(quoted(path) + ": cannot compute SHA-256 (OpenSSL)");
        return;
    }
    total_bytes += file.identity.size();
    file.path = std::move(url);
    file.mime = std::string(mime_type(file.path));
    file.etag = "\"" + *hash + "\"";
    file.etag_gzip = "\"" + *hash + "-gzip\"";
    file.etag_brotli = "\"" + *hash + "-br\"";
    file.last_modified = format_http_date(file.mtime);
    file.cache_control = cache_control_for(options_, file.path);
    if (options_.compress && is_compressible(file.path) &&
        file.identity.size() >= kMinCompressSize) {
        compress_variants(file, is_text(file.path));
    }
    build_headers(file);
    files.push_back(std::move(file));
}

// "/docs/index.html" with index "index.html" -> "/docs"; the root's index -> "".
std::optional<std::string_view> directory_of_index(std::string_view path, std::string_view index) {
    if (path.size() <= index.size() || !path.ends_with(index)) return std::nullopt;
    std::string_view dir = path.substr(0, path.size() - index.size());
    if (dir.back() != '/') return std::nullopt;
    return dir.substr(0, dir.size() - 1);
}

}  // namespace

Store::LoadResult Store::load(const StoreOptions& options) {
    Loader loader(options);
    loader.run(options.root);
    LoadResult result;
    result.errors = std::move(loader.errors);
    result.warnings = std::move(loader.warnings);
    if (!result.errors.empty()) return result;

    std::shared_ptr<Store> store(new Store);
    store->files_ = std::move(loader.files);
    store->total_bytes_ = loader.total_bytes;
    for (const File& file : store->files_) {
        store->by_path_.emplace(file.path, &file);
        if (auto dir = directory_of_index(file.path, options.index)) {
            store->dir_index_.emplace(std::string(*dir), &file);
        }
    }
    result.store = std::move(store);
    return result;
}

}  // namespace im::pages
