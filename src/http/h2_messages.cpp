#include "http/h2_messages.hpp"

#include <algorithm>

#include "http/message.hpp"

namespace im::http::h2 {

namespace {

// Into room the caller reserved (the fields point into `out`): no reallocation, and a loop
// the compiler vectorizes, where push_back checked capacity per character.
void append_lowercase(std::string& out, std::string_view s) {
    std::size_t at = out.size();
    out.resize(at + s.size());
    char* to = out.data() + at;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        to[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

}  // namespace

void add_fields(std::string_view lines, std::vector<ResponseTranslator::Field>& fields, std::string& names) {
    while (!lines.empty()) {
        auto eol = lines.find("\r\n");
        std::string_view line = lines.substr(0, eol);
        lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || is_connection_field(line.substr(0, colon))) continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        std::size_t at = names.size();
        append_lowercase(names, line.substr(0, colon));
        fields.push_back({std::string_view(names).substr(at, colon), value});
    }
}

void add_fields(std::span<const Header> headers, std::vector<ResponseTranslator::Field>& fields,
                std::string& names) {
    for (const auto& f : headers) {
        if (is_connection_field(f.name)) continue;
        std::size_t at = names.size();
        append_lowercase(names, f.name);
        fields.push_back({std::string_view(names).substr(at), f.value});
    }
}

void RequestHead::add(std::string_view name, std::string_view value) {
    // The same measure as SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
    bytes_ += name.size() + value.size() + 32;
    if (bytes_ > max_bytes_ || ++fields_count_ > max_fields_) too_large_ = true;
    if (too_large_) return;
    if (!name.empty() && name[0] == ':') {
        if (name == ":method") method_ = value;
        else if (name == ":path") path_ = value;
        else if (name == ":authority") authority_ = value;
        return;  // :scheme is the connection's (X-Forwarded-Proto says it)
    }
    if (name == "cookie") {
        if (!cookie_.empty()) cookie_.append("; ");
        cookie_.append(value);
        return;
    }
    if (name == "host") {
        host_ = value;
        return;
    }
    if (name == "te") return;  // only "trailers" is allowed in HTTP/2; hop-by-hop anyway
    if (name == "content-length") has_content_length_ = true;
    fields_.append(name).append(": ").append(value).append("\r\n");
}

void RequestHead::reset(std::size_t max_bytes, std::size_t max_fields) {
    method_.clear();
    path_.clear();
    authority_.clear();
    fields_.clear();
    cookie_.clear();
    host_.clear();
    has_content_length_ = chunked_ = too_large_ = false;
    bytes_ = fields_count_ = 0;
    max_bytes_ = max_bytes;
    max_fields_ = max_fields;
}

void RequestHead::finish(bool has_body, std::string& head) {
    chunked_ = has_body && !has_content_length_;
    head.clear();
    head.reserve(method_.size() + path_.size() + authority_.size() + fields_.size() + cookie_.size() + 64);
    head.append(method_).append(" ").append(path_).append(" HTTP/1.1\r\nhost: ");
    head.append(authority_.empty() ? host_ : authority_).append("\r\n");
    head.append(fields_);
    if (!cookie_.empty()) head.append("cookie: ").append(cookie_).append("\r\n");
    if (chunked_) head.append("transfer-encoding: chunked\r\n");
    head.append("\r\n");
}

void ResponseTranslator::reset(std::string_view request_method) {
    head_request_ = request_method == "HEAD";
    state_ = State::head;
    pending_.clear();
    remaining_ = 0;
    chunks_.reset();
}

bool ResponseTranslator::take_head(std::string_view bytes, std::vector<Head>& heads) {
    Response& r = response_;
    // Our own answer: the limits only guard against a runaway, not a client.
    if (!parse_response(bytes, Limits{1 << 20, 10000}, r)) return false;
    Head h;
    h.status = r.status;
    h.final = r.status >= 200;
    h.fields.reserve(r.headers.size());
    add_fields(r.headers, h.fields, names_);
    if (!h.final) {
        heads.push_back(std::move(h));
        return true;  // the final head follows
    }
    switch (head_request_ ? BodyFraming::none : response_framing(r, "GET")) {
    case BodyFraming::none: state_ = State::done; break;
    case BodyFraming::length:
        remaining_ = r.content_length.value_or(0);
        state_ = remaining_ ? State::length : State::done;
        break;
    case BodyFraming::chunked: state_ = State::chunked; break;
    case BodyFraming::until_close: state_ = State::until_end; break;
    }
    h.has_body = state_ != State::done;
    heads.push_back(std::move(h));
    return true;
}

bool ResponseTranslator::feed(std::string_view bytes, std::vector<Head>& heads, std::string& body) {
    // The views handed out last time are no longer in use. Every name is a piece of
    // the pending bytes or of these: with this much room names_ never moves.
    names_.clear();
    names_.reserve(pending_.size() + bytes.size());
    while (!bytes.empty()) {
        switch (state_) {
        case State::head: {
            if (pending_.empty()) {
                // Usually the whole head comes in one write: no copy.
                long end = find_head_end(bytes);
                if (end < 0) return false;
                if (end > 0) {
                    if (!take_head(bytes.substr(0, static_cast<std::size_t>(end)), heads)) return false;
                    bytes.remove_prefix(static_cast<std::size_t>(end));
                    break;
                }
            }
            std::size_t before = pending_.size();
            pending_.append(bytes);
            long end = find_head_end(pending_);
            if (end < 0) return false;
            if (end == 0) return true;  // more to come
            std::size_t used = static_cast<std::size_t>(end) - before;
            pending_.resize(static_cast<std::size_t>(end));
            taken_ = std::move(pending_);
            pending_.clear();
            if (!take_head(taken_, heads)) return false;
            bytes.remove_prefix(used);
            break;
        }
        case State::length: {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
            body.append(bytes.substr(0, n));
            bytes.remove_prefix(n);
            remaining_ -= n;
            if (remaining_ == 0) state_ = State::done;
            break;
        }
        case State::chunked: {
            auto step = chunks_.feed(bytes);
            if (chunks_.failed()) return false;
            body.append(step.data);
            bytes.remove_prefix(step.consumed);
            if (chunks_.done()) state_ = State::done;
            else if (step.consumed == 0) return false;  // the decoder cannot move on
            break;
        }
        case State::until_end: body.append(bytes); return true;
        case State::done: return true;  // nothing may follow an answer on a stream
        }
    }
    return true;
}

}  // namespace im::http::h2
