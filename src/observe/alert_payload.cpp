// What an alert says: the JSON a webhook gets, Slack's {"text"} and the e-mail. Pure
// functions of the alert, so the words can be tested without a network.
#include <boost/json/serialize.hpp>
#include <ctime>

#include "config/values.hpp"
#include "observe/alerts.hpp"

namespace im::observe {

namespace json = boost::json;

namespace {

// SMTP allows 998 bytes a line; longer reason texts are cut into pieces.
constexpr std::size_t kMaxLine = 900;

// Header values come partly from operators (site names are checked, reasons are not): a CR
// or LF would start a new header.
std::string header_value(std::string_view text) {
    std::string out;
    for (unsigned char c : text) out += (c < ' ' || c == 0x7f) ? ' ' : static_cast<char>(c);
    return out;
}

// Lines end in CRLF, as SMTP wants, and none is longer than kMaxLine.
void add_lines(std::string& out, std::string_view text, std::string_view indent = "") {
    std::size_t start = 0;
    while (start <= text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        auto line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        do {
            out.append(indent).append(line.substr(0, kMaxLine)).append("\r\n");
            line.remove_prefix(std::min(line.size(), kMaxLine));
        } while (!line.empty());
        start = end + 1;
    }
}

std::string scalar_text(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_null()) return "-";
    return json::serialize(v);
}

// The details as indented "key: value" lines, lists as "- " items: readable in any mail client.
void add_details(std::string& out, const json::value& v, const std::string& indent) {
    if (v.is_object()) {
        for (const auto& [key, item] : v.as_object()) {
            if (item.is_object() || (item.is_array() && !item.as_array().empty())) {
                add_lines(out, std::string(key) + ":", indent);
                add_details(out, item, indent + "  ");
            } else if (item.is_array()) {
                add_lines(out, std::string(key) + ": none", indent);
            } else {
                add_lines(out, std::string(key) + ": " + scalar_text(item), indent);
            }
        }
    } else if (v.is_array()) {
        for (const auto& item : v.as_array()) {
            std::string sub;
            add_details(sub, item, indent + "  ");
            if (sub.size() >= indent.size() + 2) sub.replace(indent.size(), 2, "- ");
            out += sub;
        }
    } else {
        add_lines(out, scalar_text(v), indent);
    }
}

std::string mail_date(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                  tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

// Slack reads &, < and > as markup.
std::string slack_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else
            out += c;
    }
    return out;
}

}  // namespace

std::string_view event_name(AlertEvent event) {
    switch (event) {
        case AlertEvent::site_down:
            return "site.down";
        case AlertEvent::site_recovered:
            return "site.recovered";
        case AlertEvent::maintenance_on:
            return "maintenance.on";
        case AlertEvent::maintenance_off:
            return "maintenance.off";
        case AlertEvent::window_start:
            return "window.start";
        case AlertEvent::window_end:
            return "window.end";
    }
    return "unknown";
}

std::string alert_json(const Alert& a) {
    return json::serialize(json::object{{"event", event_name(a.event)},
                                        {"site", a.site},
                                        {"time", config::format_timestamp(a.time)},
                                        {"reason", a.reason},
                                        {"message", a.message},
                                        {"details", a.details}});
}

std::string slack_json(const Alert& a) {
    std::string text = "[intermission] " + a.message;
    if (!a.reason.empty()) text += "\nReason: " + a.reason;
    text += "\n" + std::string(event_name(a.event)) + " at " + config::format_timestamp(a.time);
    return json::serialize(json::object{{"text", slack_escape(text)}});
}

std::string webhook_body(const Alert& alert, config::AlertWebhook::Format format) {
    return format == config::AlertWebhook::Format::slack ? slack_json(alert) : alert_json(alert);
}

std::string email_subject(const Alert& a) {
    return header_value("[intermission] " + a.message);
}

std::string email_text(const Alert& a) {
    std::string out;
    add_lines(out, a.message);
    out += "\r\n";
    add_lines(out, "Event:  " + std::string(event_name(a.event)));
    add_lines(out, "Site:   " + a.site);
    add_lines(out, "Time:   " + config::format_timestamp(a.time));
    add_lines(out, "Reason: " + (a.reason.empty() ? std::string("-") : a.reason));
    if (!a.details.empty()) {
        out += "\r\nDetails:\r\n";
        add_details(out, a.details, "  ");
    }
    out += "\r\n-- \r\nSent by intermission.\r\n";
    return out;
}

std::string email_message(const Alert& a, const config::AlertEmail& mail,
                          const std::string& message_id) {
    std::string to;
    for (const auto& r : mail.to) to += (to.empty() ? "" : ", ") + r;
    std::string out;
    out += "From: " + mail.from + "\r\n";
    out += "To: " + to + "\r\n";
    out += "Subject: " + email_subject(a) + "\r\n";
    out += "Date: " + mail_date(a.time) + "\r\n";
    out += "Message-ID: <" + message_id + ">\r\n";
    out += "MIME-Version: 1.0\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Transfer-Encoding: 8bit\r\n";
    out += "X-Intermission-Event: " + std::string(event_name(a.event)) + "\r\n";
    out += "X-Intermission-Site: " + header_value(a.site) + "\r\n";
    out += "\r\n";
    return out + email_text(a);
}

}  // namespace im::observe
