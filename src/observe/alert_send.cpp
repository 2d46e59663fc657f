// One delivery attempt with libcurl's easy API: a webhook POST or a message over SMTP. Runs on
// the delivery thread only, so blocking within the destination's timeout is fine.
#include <curl/curl.h>

#include <boost/url/parse.hpp>
#include <cstring>
#include <memory>

#include "observe/alerts.hpp"

namespace im::observe {

namespace {

using Easy = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using List = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// Called by libcurl at least once a second while a transfer runs: a shutdown cuts it short.
int on_progress(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(abort)->load() ? 1 : 0;
}

std::size_t discard(char*, std::size_t size, std::size_t count, void*) {
    return size * count;
}

struct Upload {
    const std::string* text;
    std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* data) {
    auto* up = static_cast<Upload*>(data);
    const std::size_t n = std::min(size * count, up->text->size() - up->offset);
    std::memcpy(buffer, up->text->data() + up->offset, n);
    up->offset += n;
    return n;
}

// Settings every transfer shares: no signals (we are a thread), a deadline, only the
// protocols we mean, curl's own words on failure.
Easy prepare(const std::string& url, config::Duration timeout, const std::filesystem::path& ca,
             const char* protocols, const std::atomic<bool>& abort, char* error) {
    Easy h(curl_easy_init(), curl_easy_cleanup);
    if (!h) return h;
    curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(h.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h.get(), CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(&abort));
    if (!ca.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, ca.c_str());
    return h;
}

std::string curl_error(CURLcode code, const char* detail) {
    std::string out = curl_easy_strerror(code);
    if (detail[0] != '\0') out += std::string(": ") + detail;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

// scheme://host[:port]: the path and query of a hook URL are often its secret, and userinfo is.
std::string origin(const std::string& url) {
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u) return "(bad URL)";
    std::string out = std::string(u->scheme()) + "://" + std::string(u->encoded_host_and_port());
    return out;
}

}  // namespace

std::string webhook_label(const config::AlertWebhook& hook) {
    return "webhook " + origin(hook.url);
}

std::string email_label(const config::AlertEmail& mail) {
    std::string to;
    for (const auto& r : mail.to) to += (to.empty() ? "" : ", ") + r;
    return "e-mail via " + origin(mail.server) + " to " + to;
}

std::string post_webhook(const config::AlertWebhook& hook, const std::string& body,
                         const std::atomic<bool>& abort) {
    char error[CURL_ERROR_SIZE] = {};
    auto h = prepare(hook.url, hook.timeout, hook.ca_file, "http,https", abort, error);
    if (!h) return "cannot start a transfer (curl_easy_init failed)";
    List headers(curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
    curl_slist_append(headers.get(), "User-Agent: intermission-alerts");
    curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, discard);
    if (auto code = curl_easy_perform(h.get()); code != CURLE_OK) return curl_error(code, error);
    long status = 0;
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return "the webhook answered HTTP " + std::to_string(status);
    return {};
}

std::string send_mail(const config::AlertEmail& mail, const std::string& message,
                      const std::atomic<bool>& abort) {
    char error[CURL_ERROR_SIZE] = {};
    auto h = prepare(mail.server, mail.timeout, mail.ca_file, "smtp,smtps", abort, error);
    if (!h) return "cannot start a transfer (curl_easy_init failed)";
    const std::string from = "<" + mail.from + ">";
    curl_easy_setopt(h.get(), CURLOPT_MAIL_FROM, from.c_str());
    List rcpt(nullptr, curl_slist_free_all);
    for (const auto& to : mail.to) {
        auto* grown = curl_slist_append(rcpt.get(), ("<" + to + ">").c_str());
        if (!rcpt) rcpt.reset(grown);
    }
    curl_easy_setopt(h.get(), CURLOPT_MAIL_RCPT, rcpt.get());
    if (mail.starttls)
        curl_easy_setopt(h.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!mail.username.empty()) {
        curl_easy_setopt(h.get(), CURLOPT_USERNAME, mail.username.c_str());
        curl_easy_setopt(h.get(), CURLOPT_PASSWORD, mail.password.c_str());
    }
    Upload upload{&message};
    curl_easy_setopt(h.get(), CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(h.get(), CURLOPT_READDATA, &upload);
    curl_easy_setopt(h.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    if (auto code = curl_easy_perform(h.get()); code != CURLE_OK) return curl_error(code, error);
    return {};
}

}  // namespace im::observe
