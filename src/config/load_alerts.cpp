// The `alerts` section: where alerts go (webhooks, an SMTP server) and how often. The SMTP
// password is read from a file so that it stays out of the YAML, and never appears in errors.
#include <boost/url/parse.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "config/reader.hpp"

namespace im::config::detail {
namespace {

constexpr std::uintmax_t kMaxPasswordFile = 64 * 1024;

// An absolute URL whose scheme is one of `schemes` and that names a host.
void read_url(Reader& r, const Entry& e, std::string& out,
              std::initializer_list<std::string_view> schemes, const std::string& example) {
    auto s = r.scalar(e, "a URL");
    if (!s) return;
    std::string allowed;
    for (auto scheme : schemes)
        allowed += (allowed.empty() ? "" : " or ") + std::string(scheme) + "://";
    auto url = boost::urls::parse_absolute_uri(*s);
    auto bad = [&](const std::string& why) {
        r.error(e, "bad URL '" + *s + "' for " + in_quotes(e.path) + " (" + why + ", e.g. " +
                       example + ")");
    };
    if (!url) return bad("expected a URL starting with " + allowed);
    const std::string scheme(url->scheme());
    if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end())
        return bad("expected a URL starting with " + allowed);
    if (!url->has_authority() || url->host().empty()) return bad("expected a host after //");
    if (url->has_fragment()) return bad("expected no #fragment");
    out = *s;
}

// "ops@example.com": what SMTP's MAIL FROM and RCPT TO take; display names are not supported.
bool is_mail_address(std::string_view a) {
    const auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
    for (unsigned char c : a)
        if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"')
            return false;
    return a.find('@') == at;
}

void read_mail_address(Reader& r, const Entry& e, std::string& out) {
    auto s = r.scalar(e, "an e-mail address");
    if (!s) return;
    if (is_mail_address(*s))
        out = *s;
    else
        r.error(e, "bad e-mail address '" + *s + "' for " + in_quotes(e.path) +
                       " (expected local@domain, e.g. ops@example.com, without a name or <>)");
}

void read_recipients(Reader& r, const Entry& e, std::vector<std::string>& to) {
    auto list = r.scalars(e, true, "an e-mail address");
    if (!list) return;
    if (list->empty())
        r.error(e, "expected at least one recipient for " + in_quotes(e.path) +
                       ", e.g. [\"ops@example.com\"]");
    for (const auto& item : *list) {
        std::string address;
        read_mail_address(r, item, address);
        if (address.empty()) continue;
        if (std::find(to.begin(), to.end(), address) != to.end())
            r.error(item, "duplicate recipient '" + address + "' in " + in_quotes(e.path));
        else
            to.push_back(std::move(address));
    }
}

// The file's content without trailing whitespace; errors name the file, never the content.
void read_password_file(Reader& r, const Entry& e, std::string& password) {
    std::string name;
    r.text(e, name);
    if (name.empty()) return;
    const auto path = r.resolve(name);
    const std::string what = "password file '" + name + "' for " + in_quotes(e.path);
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::is_regular_file(status))
        return r.error(e, "cannot read the " + what + " (" + path.string() + " is not a file)");
    if (std::filesystem::file_size(path, ec) > kMaxPasswordFile)
        return r.error(e, "the " + what + " is larger than 64KiB");
    std::ifstream in(path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) return r.error(e, "cannot read the " + what);
    while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back())))
        content.pop_back();
    if (content.empty()) return r.error(e, "the " + what + " is empty");
    password = std::move(content);
}

void read_file_path(Reader& r, const Entry& e, std::filesystem::path& out) {
    std::string name;
    r.text(e, name);
    if (name.empty()) return;
    out = r.resolve(name);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(out, ec))
        r.error(e, "cannot read '" + name + "' for " + in_quotes(e.path) + " (" + out.string() +
                       " is not a file)");
}

void read_format(Reader& r, const Entry& e, AlertWebhook::Format& format) {
    auto s = r.scalar(e, "json or slack");
    if (!s) return;
    if (*s == "json")
        format = AlertWebhook::Format::json;
    else if (*s == "slack")
        format = AlertWebhook::Format::slack;
    else
        r.error(e,
                "bad format '" + *s + "' for " + in_quotes(e.path) + " (expected json or slack)");
}

void read_webhook(Reader& r, const Entry& item, std::vector<AlertWebhook>& webhooks) {
    AlertWebhook hook;
    bool have_url = false;
    const bool is_map = r.fields(
        item, {
                  {"url",
                   [&](const Entry& e) {
                       have_url = true;
                       read_url(r, e, hook.url, {"http", "https"}, "http://127.0.0.1:9000/hook");
                   }},
                  {"format", [&](const Entry& e) { read_format(r, e, hook.format); }},
                  {"timeout", [&](const Entry& e) { r.duration(e, hook.timeout); }},
                  {"ca_file", [&](const Entry& e) { read_file_path(r, e, hook.ca_file); }},
              });
    if (is_map && !have_url)
        r.error(item, "missing required key 'url' in " + in_quotes(item.path) +
                          " (expected the URL alerts are POSTed to)");
    if (!hook.url.empty()) webhooks.push_back(std::move(hook));
}

void read_webhooks(Reader& r, const Entry& e, std::vector<AlertWebhook>& webhooks) {
    auto list = r.items(e);
    if (!list) return;
    if (list->empty())
        r.error(e, "expected at least one webhook for " + in_quotes(e.path) +
                       ", e.g. [{url: \"http://127.0.0.1:9000/hook\"}]");
    for (const auto& item : *list) read_webhook(r, item, webhooks);
}

// The keys of `email` that need each other; each is set when present.
struct EmailKeys {
    std::optional<Entry> server, from, to, username, password, starttls;
};

// What only the whole `email` map can tell: required keys, and keys that need each other.
void check_email(Reader& r, const Entry& e, const AlertEmail& mail, const EmailKeys& keys) {
    for (auto [key, present] : {std::pair{"server", keys.server.has_value()},
                                {"from", keys.from.has_value()},
                                {"to", keys.to.has_value()}})
        if (!present)
            r.error_at_key(
                e, std::string("missing required key '") + key + "' in " + in_quotes(e.path));
    if (keys.username && !keys.password)
        r.error_at_key(*keys.username, "'username' in " + in_quotes(e.path) +
                                           " needs 'password_file' (the SMTP password)");
    if (keys.password && !keys.username)
        r.error_at_key(*keys.password,
                       "'password_file' in " + in_quotes(e.path) + " needs 'username'");
    if (keys.starttls && mail.starttls && mail.server.starts_with("smtps://"))
        r.error(*keys.starttls, "'starttls' in " + in_quotes(e.path) +
                                    " needs an smtp:// server (smtps:// is TLS from the first "
                                    "byte)");
}

void read_email(Reader& r, const Entry& e, std::optional<AlertEmail>& out) {
    AlertEmail mail;
    EmailKeys keys;
    // Notes that the key is there, then reads it.
    auto at = [](std::optional<Entry>& slot, auto read) {
        return [&slot, read](const Entry& v) {
            slot = v;
            read(v);
        };
    };
    const bool is_map = r.fields(
        e,
        {
            {"server", at(keys.server,
                          [&](const Entry& v) {
                              read_url(r, v, mail.server, {"smtp", "smtps"}, "smtp://127.0.0.1:25");
                          })},
            {"starttls", at(keys.starttls, [&](const Entry& v) { r.boolean(v, mail.starttls); })},
            {"username", at(keys.username, [&](const Entry& v) { r.text(v, mail.username); })},
            {"password_file",
             at(keys.password, [&](const Entry& v) { read_password_file(r, v, mail.password); })},
            {"from", at(keys.from, [&](const Entry& v) { read_mail_address(r, v, mail.from); })},
            {"to", at(keys.to, [&](const Entry& v) { read_recipients(r, v, mail.to); })},
            {"timeout", [&](const Entry& v) { r.duration(v, mail.timeout); }},
            {"ca_file", [&](const Entry& v) { read_file_path(r, v, mail.ca_file); }},
        });
    if (!is_map) return;
    check_email(r, e, mail, keys);
    out = std::move(mail);
}

}  // namespace

void read_alerts(Reader& r, const Entry& entry, Alerts& alerts) {
    alerts.enabled = true;
    bool have_destination = false;
    const bool is_map = r.fields(
        entry,
        {
            {"min_interval", [&](const Entry& e) { r.duration(e, alerts.min_interval, true); }},
            {"retries", [&](const Entry& e) { r.integer(e, alerts.retries, 0, 100); }},
            {"backoff", [&](const Entry& e) { r.duration(e, alerts.backoff); }},
            {"webhooks",
             [&](const Entry& e) {
                 have_destination = true;
                 read_webhooks(r, e, alerts.webhooks);
             }},
            {"email",
             [&](const Entry& e) {
                 have_destination = true;
                 read_email(r, e, alerts.email);
             }},
        });
    if (is_map && !have_destination)
        r.error_at_key(entry, "expected 'webhooks' or 'email' in 'alerts' (where alerts are sent)");
}

}  // namespace im::config::detail
