#include "pages/store.hpp"

#include "pages/compress.hpp"
#include "pages/conditional.hpp"

namespace im::pages {
namespace {

struct Variant {
    std::string_view body, headers, headers_304, etag;
};

Variant pick_variant(const File& file, std::string_view accept_encoding) {
    switch (choose_encoding(accept_encoding, !file.gzip.empty(), !file.brotli.empty())) {
        case Encoding::brotli:
            return {file.brotli, file.headers_brotli, file.headers_304_brotli, file.etag_brotli};
        case Encoding::gzip:
            return {file.gzip, file.headers_gzip, file.headers_304_gzip, file.etag_gzip};
        case Encoding::identity:
            break;
    }
    return {file.identity, file.headers_identity, file.headers_304_identity, file.etag};
}

// RFC 9110 §13.2.2 for GET/HEAD: If-None-Match decides alone when present; otherwise
// If-Modified-Since, ignored when unparseable.
bool is_not_modified(const File& file, std::string_view etag, const Conditional& request) {
    if (!request.if_none_match.empty()) {
        return if_none_match_matches(request.if_none_match, etag);
    }
    if (!request.if_modified_since.empty()) {
        std::optional<std::time_t> since = parse_http_date(request.if_modified_since);
        return since && file.mtime <= *since;
    }
    return false;
}

Reply status_only(Reply::Kind kind, int status) {
    Reply reply;
    reply.kind = kind;
    reply.status = status;
    return reply;
}

}  // namespace

const File* Store::lookup(const Index& index, std::string_view key) {
    auto it = index.find(key);
    return it == index.end() ? nullptr : it->second;
}

const File* Store::find(std::string_view normalized_path) const {
    return lookup(by_path_, normalized_path);
}

Reply Store::answer(std::string_view raw_target, const Conditional& request) const {
    if (request.method != "GET" && request.method != "HEAD") {
        return status_only(Reply::Kind::method_not_allowed, 405);
    }
    std::size_t question = raw_target.find('?');
    std::string_view raw_path = raw_target.substr(0, question);
    std::string_view query =
        question == std::string_view::npos ? std::string_view{} : raw_target.substr(question);

    // The common request is already canonical; only decode (and allocate) when it is not.
    std::optional<std::string> normalized;
    std::string_view path = raw_path;
    if (!is_normalized(raw_path)) {
        normalized = normalize_path(raw_path);
        if (!normalized) return status_only(Reply::Kind::bad_request, 400);
        path = *normalized;
    }

    if (path.back() == '/') {
        const File* index = lookup(dir_index_, path.substr(0, path.size() - 1));
        return index ? serve(*index, request) : status_only(Reply::Kind::not_found, 404);
    }
    if (const File* file = lookup(by_path_, path)) return serve(*file, request);
    if (lookup(dir_index_, path)) {
        Reply reply = status_only(Reply::Kind::redirect, 301);
        reply.location = encode_path(path);
        reply.location.push_back('/');
        reply.location += encode_query(query);
        return reply;
    }
    return status_only(Reply::Kind::not_found, 404);
}

Reply Store::serve(const File& file, const Conditional& request) const {
    Variant variant = pick_variant(file, request.accept_encoding);
    Reply reply;
    reply.file = &file;
    if (is_not_modified(file, variant.etag, request)) {
        reply.kind = Reply::Kind::not_modified;
        reply.status = 304;
        reply.headers = variant.headers_304;
        return reply;
    }
    reply.kind = Reply::Kind::ok;
    reply.status = 200;
    reply.headers = variant.headers;
    reply.body = variant.body;
    return reply;
}

}  // namespace im::pages
