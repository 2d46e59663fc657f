#include "pages/conditional.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>

namespace im::pages {
namespace {

constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                    "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil); avoids
// timegm(), which depends on the process time zone machinery.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
    constexpr std::array<int, 12> kDaysIn{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kDaysIn[static_cast<std::size_t>(m - 1)];
}

// A tiny cursor over the date text; every method consumes only on success.
struct Cursor {
    std::string_view s;

    bool literal(std::string_view lit) {
        if (s.substr(0, lit.size()) != lit) return false;
        s.remove_prefix(lit.size());
        return true;
    }
    // Exactly `n` digits (a leading space stands for a zero when `space_pad`).
    bool digits(std::size_t n, int& out, bool space_pad = false) {
        if (s.size() < n) return false;
        int v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            char c = s[i];
            if (space_pad && i == 0 && c == ' ') c = '0';
            if (!std::isdigit(static_cast<unsigned char>(c))) return false;
            v = v * 10 + (c - '0');
        }
        s.remove_prefix(n);
        out = v;
        return true;
    }
    template <std::size_t N>
    bool one_of(const std::array<std::string_view, N>& names, int& index) {
        for (std::size_t i = 0; i < N; ++i) {
            if (literal(names[i])) {
                index = static_cast<int>(i);
                return true;
            }
        }
        return false;
    }
    bool time_of_day(int& h, int& m, int& sec) {
        return digits(2, h) && literal(":") && digits(2, m) && literal(":") && digits(2, sec);
    }
};

struct Fields {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

std::optional<std::time_t> to_time(const Fields& f) {
    if (f.month < 1 || f.month > 12 || f.day < 1 || f.day > days_in_month(f.year, f.month)) {
        return std::nullopt;
    }
    // 60 is a leap second; it is accepted and folded onto the next second.
    if (f.hour > 23 || f.minute > 59 || f.second > 60) return std::nullopt;
    std::int64_t days =
        days_from_civil(f.year, static_cast<unsigned>(f.month), static_cast<unsigned>(f.day));
    return static_cast<std::time_t>(days * 86400 + f.hour * 3600 + f.minute * 60 + f.second);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<Fields> parse_imf(Cursor c) {
    Fields f;
    int ignored = 0;
    if (!(c.one_of(kDays, ignored) && c.literal(", ") && c.digits(2, f.day) && c.literal(" ") &&
          c.one_of(kMonths, f.month) && c.literal(" ") && c.digits(4, f.year) && c.literal(" ") &&
          c.time_of_day(f.hour, f.minute, f.second) && c.literal(" GMT") && c.s.empty())) {
        return std::nullopt;
    }
    ++f.month;
    return f;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<Fields> parse_rfc850(Cursor c) {
    Fields f;
    int ignored = 0;
    if (!(c.one_of(kLongDays, ignored) && c.literal(", ") && c.digits(2, f.day) && c.literal("-") &&
          c.one_of(kMonths, f.month) && c.literal("-") && c.digits(2, f.year) && c.literal(" ") &&
          c.time_of_day(f.hour, f.minute, f.second) && c.literal(" GMT") && c.s.empty())) {
        return std::nullopt;
    }
    ++f.month;
    // RFC 9110 wants "more than 50 years in the future" read as the past century; with no
    // clock here, a fixed pivot gives the same answer until 2020 + 50.
    f.year += f.year < 70 ? 2000 : 1900;
    return f;
}

// "Sun Nov  6 08:49:37 1994"
std::optional<Fields> parse_asctime(Cursor c) {
    Fields f;
    int ignored = 0;
    if (!(c.one_of(kDays, ignored) && c.literal(" ") && c.one_of(kMonths, f.month) &&
          c.literal(" ") && c.digits(2, f.day, true) && c.literal(" ") &&
          c.time_of_day(f.hour, f.minute, f.second) && c.literal(" ") && c.digits(4, f.year) &&
          c.s.empty())) {
        return std::nullopt;
    }
    ++f.month;
    return f;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The opaque-tag of an entity-tag without its W/ prefix, i.e. the quoted part.
std::string_view opaque_tag(std::string_view etag) {
    if (etag.size() >= 2 && etag[0] == 'W' && etag[1] == '/') etag.remove_prefix(2);
    return etag;
}

}  // namespace

std::string format_http_date(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    // Names are spelled out rather than taken from strftime, whose %a/%b follow the locale.
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                          kDays[static_cast<std::size_t>(tm.tm_wday)].data(), tm.tm_mday,
                          kMonths[static_cast<std::size_t>(tm.tm_mon)].data(), tm.tm_year + 1900,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
    Cursor c{trim(text)};
    std::optional<Fields> f = parse_imf(c);
    if (!f) f = parse_rfc850(c);
    if (!f) f = parse_asctime(c);
    if (!f) return std::nullopt;
    return to_time(*f);
}

bool if_none_match_matches(std::string_view list, std::string_view etag) {
    std::string_view ours = opaque_tag(etag);
    list = trim(list);
    if (list == "*") return true;
    while (!list.empty()) {
        while (!list.empty() &&
               (list.front() == ',' || list.front() == ' ' || list.front() == '\t')) {
            list.remove_prefix(1);
        }
        if (list.empty()) break;
        if (list.size() >= 2 && list[0] == 'W' && list[1] == '/') list.remove_prefix(2);
        // Commas are legal inside an opaque-tag, so scan quote to quote rather than splitting.
        if (list.empty() || list.front() != '"') return false;
        std::size_t close = list.find('"', 1);
        if (close == std::string_view::npos) return false;
        if (list.substr(0, close + 1) == ours) return true;
        list.remove_prefix(close + 1);
    }
    return false;
}

}  // namespace im::pages
