#include "config/values.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace im::config {
namespace {

constexpr std::string_view kDurationExpected =
    "expected a number with a unit: ms, s, m, h, e.g. 250ms or 2s";
constexpr std::string_view kSizeExpected =
    "expected a number of bytes, optionally with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, "
    "e.g. 16KiB";
constexpr std::string_view kAddressExpected =
    "expected host:port with a port from 1 to 65535, e.g. 127.0.0.1:8080, app.internal:9000 or "
    "[::1]:8080";
constexpr std::string_view kStatusExpected =
    "expected a status from 100 to 599 or a range low-high, e.g. 200 or 200-399";
constexpr std::string_view kCidrExpected =
    "expected an IP address or a network address/prefix, e.g. 10.0.0.0/8, 192.168.1.5 or "
    "2001:db8::/32";
constexpr std::string_view kTimestampExpected =
    "expected an RFC 3339 timestamp with Z or an offset, e.g. 2026-11-24T03:00:00Z or "
    "2026-11-24T05:00:00+02:00";
// Ten years: long enough for any timeout, short enough that nothing overflows downstream.
constexpr double kMaxDurationMs = 10.0 * 365 * 24 * 3600 * 1000;

template <typename T>
Parsed<T> fail(std::string_view expected) {
    return Parsed<T>{std::nullopt, std::string(expected)};
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::size_t count_digits(std::string_view s, std::size_t from) {
    std::size_t i = from;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i - from;
}

// Milliseconds per unit and the unit's rank (a later part must have a lower rank).
struct DurationUnit {
    std::string_view name;
    double ms;
    int rank;
};
constexpr DurationUnit kDurationUnits[] = {
    {"h", 3600000.0, 3}, {"m", 60000.0, 2}, {"s", 1000.0, 1}, {"ms", 1.0, 0}};

const DurationUnit* duration_unit(std::string_view name) {
    for (const auto& unit : kDurationUnits)
        if (unit.name == name) return &unit;
    return nullptr;
}

bool size_unit(std::string_view unit, std::uint64_t& factor) {
    constexpr std::uint64_t k = 1000, ki = 1024;
    if (unit.empty() || unit == "B")
        factor = 1;
    else if (unit == "KB")
        factor = k;
    else if (unit == "MB")
        factor = k * k;
    else if (unit == "GB")
        factor = k * k * k;
    else if (unit == "TB")
        factor = k * k * k * k;
    else if (unit == "KiB")
        factor = ki;
    else if (unit == "MiB")
        factor = ki * ki;
    else if (unit == "GiB")
        factor = ki * ki * ki;
    else if (unit == "TiB")
        factor = ki * ki * ki * ki;
    else
        return false;
    return true;
}

bool is_ipv4_like(std::string_view host) {
    for (char c : host)
        if (!is_digit(c) && c != '.') return false;
    return true;
}

// Exactly `n` digits at text[i], as a number; advances i.
bool fixed_number(std::string_view text, std::size_t& i, std::size_t n, int& out) {
    if (i + n > text.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < n; ++k) {
        if (!is_digit(text[i + k])) return false;
        out = out * 10 + (text[i + k] - '0');
    }
    i += n;
    return true;
}

bool expect_char(std::string_view text, std::size_t& i, char a, char b = '\0') {
    if (i >= text.size() || (text[i] != a && (b == '\0' || text[i] != b))) return false;
    ++i;
    return true;
}

bool is_ip(std::string_view host, int family) {
    std::string copy(host);
    unsigned char buf[16];
    return inet_pton(family, copy.c_str(), buf) == 1;
}

}  // namespace

Parsed<Duration> parse_duration(std::string_view text) {
    if (text.empty()) return fail<Duration>(kDurationExpected);
    double total = 0;
    int last_rank = 4;
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t start = i;
        std::size_t digits = count_digits(text, i);
        if (digits == 0) return fail<Duration>(kDurationExpected);
        i += digits;
        if (i < text.size() && text[i] == '.') {
            const std::size_t fraction = count_digits(text, i + 1);
            if (fraction == 0) return fail<Duration>(kDurationExpected);
            i += 1 + fraction;
        }
        double number = 0;
        std::from_chars(text.data() + start, text.data() + i, number);
        const std::size_t unit_start = i;
        while (i < text.size() && is_alpha(text[i])) ++i;
        const DurationUnit* unit = duration_unit(text.substr(unit_start, i - unit_start));
        if (unit == nullptr) return fail<Duration>(kDurationExpected);
        if (unit->rank >= last_rank)
            return fail<Duration>("expected units in decreasing order, each once, e.g. 1h30m");
        last_rank = unit->rank;
        total += number * unit->ms;
    }
    if (total > kMaxDurationMs) return fail<Duration>("expected a duration of at most 87600h");
    return {Duration(static_cast<Duration::rep>(std::llround(total))), {}};
}

std::string format_duration(Duration d) {
    auto ms = d.count();
    if (ms == 0) return "0s";
    std::string out;
    if (ms < 0) out = "-", ms = -ms;
    const std::pair<long long, const char*> units[] = {
        {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    for (const auto& [size, name] : units) {
        if (ms >= size) {
            out += std::to_string(ms / size) + name;
            ms %= size;
        }
    }
    return out;
}

Parsed<std::uint64_t> parse_size(std::string_view text) {
    const std::size_t digits = count_digits(text, 0);
    if (digits == 0) return fail<std::uint64_t>(kSizeExpected);
    std::uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
    if (ec != std::errc()) return fail<std::uint64_t>("expected a size that fits in 64 bits");
    std::uint64_t factor = 1;
    if (!size_unit(text.substr(digits), factor)) return fail<std::uint64_t>(kSizeExpected);
    if (number > std::numeric_limits<std::uint64_t>::max() / factor)
        return fail<std::uint64_t>("expected a size that fits in 64 bits");
    return {number * factor, {}};
}

Parsed<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
    std::string expected =
        "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return fail<std::int64_t>(expected);
    if (value < min || value > max) return fail<std::int64_t>(expected);
    return {value, {}};
}

// An IPv6 host (stored without brackets) is bracketed so that the text parses back.
std::string Address::text() const {
    const bool v6 = host.find(':') != std::string::npos;
    char port_text[8];
    auto end = std::to_chars(port_text, port_text + sizeof port_text, port).ptr;
    std::string out;
    // Exactly: a short text ("10.0.0.7:8080") then fits in the string itself, no allocation.
    out.reserve(host.size() + (v6 ? 2 : 0) + 1 + static_cast<std::size_t>(end - port_text));
    if (v6) out += '[';
    out += host;
    if (v6) out += ']';
    out += ':';
    out.append(port_text, end);
    return out;
}

Parsed<Address> parse_address(std::string_view text) {
    std::string_view host;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return fail<Address>(kAddressExpected);
        host = text.substr(1, close - 1);
        rest = text.substr(close + 1);
        if (!is_ip(host, AF_INET6)) return fail<Address>("expected a valid IPv6 address in []");
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail<Address>(kAddressExpected);
        host = text.substr(0, colon);
        rest = text.substr(colon);
        if (host.find(':') != std::string_view::npos)
            return fail<Address>("expected an IPv6 address in brackets, e.g. [::1]:8080");
        if (is_ipv4_like(host) ? !is_ip(host, AF_INET) : !is_valid_hostname(host))
            return fail<Address>(kAddressExpected);
    }
    if (rest.size() < 2 || rest.front() != ':') return fail<Address>(kAddressExpected);
    auto port = parse_integer(rest.substr(1), 1, 65535);
    if (!port) return fail<Address>(kAddressExpected);
    return {Address{std::string(host), static_cast<std::uint16_t>(*port.value)}, {}};
}

Parsed<std::string> parse_host_pattern(std::string_view text) {
    constexpr std::string_view expected =
        "expected a host name without a port, e.g. www.example.com, or a leading wildcard, "
        "e.g. *.example.com";
    std::string host;
    host.reserve(text.size());
    for (char c : text) host += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        if (is_ip(std::string_view(host).substr(1, host.size() - 2), AF_INET6)) return {host, {}};
        return fail<std::string>("expected a valid IPv6 address in []");
    }
    std::string_view name = host;
    if (name.starts_with("*.")) name.remove_prefix(2);
    if (name.find('*') != std::string_view::npos)
        return fail<std::string>("expected a wildcard only as a leading '*.', e.g. *.example.com");
    if (!is_valid_hostname(name)) return fail<std::string>(expected);
    return {host, {}};
}

Parsed<StatusRange> parse_status_range(std::string_view text) {
    const auto dash = text.find('-');
    auto low = parse_integer(text.substr(0, dash), 100, 599);
    auto high =
        dash == std::string_view::npos ? low : parse_integer(text.substr(dash + 1), 100, 599);
    if (!low || !high) return fail<StatusRange>(kStatusExpected);
    if (*low.value > *high.value)
        return fail<StatusRange>("expected the low status of a range not to exceed the high one");
    return {StatusRange{static_cast<int>(*low.value), static_cast<int>(*high.value)}, {}};
}

std::optional<std::array<std::uint8_t, 16>> parse_ip_bytes(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string copy(text);
    std::array<std::uint8_t, 16> bytes{};
    if (copy.find(':') != std::string::npos) {
        if (inet_pton(AF_INET6, copy.c_str(), bytes.data()) != 1) return std::nullopt;
        return bytes;
    }
    unsigned char v4[4];
    if (inet_pton(AF_INET, copy.c_str(), v4) != 1) return std::nullopt;
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    std::memcpy(bytes.data() + 12, v4, 4);
    return bytes;
}

Parsed<Cidr> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view host = text.substr(0, slash);
    const bool v6 = host.find(':') != std::string_view::npos;
    auto bytes = parse_ip_bytes(host);
    if (!bytes) {
        if (!host.empty() && host.front() == '[')
            return fail<Cidr>("expected an IPv6 network without brackets, e.g. 2001:db8::/32");
        return fail<Cidr>(kCidrExpected);
    }
    const int max = v6 ? 128 : 32;
    Cidr cidr;
    cidr.bytes = *bytes;
    cidr.text = std::string(text);
    cidr.prefix = 128;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        int prefix = 0;
        std::size_t i = 0;
        if (digits.empty() || digits.size() > 3 ||
            !fixed_number(digits, i, digits.size(), prefix) || prefix > max)
            return fail<Cidr>(std::string("expected a prefix length from 0 to ") +
                              std::to_string(max) + " after '/' for an " + (v6 ? "IPv6" : "IPv4") +
                              " network");
        cidr.prefix = v6 ? prefix : prefix + 96;
    }
    return {std::move(cidr), {}};
}

Parsed<std::int64_t> parse_timestamp(std::string_view text) {
    using namespace std::chrono;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    std::size_t i = 0;
    if (!fixed_number(text, i, 4, y) || !expect_char(text, i, '-') ||
        !fixed_number(text, i, 2, mo) || !expect_char(text, i, '-') ||
        !fixed_number(text, i, 2, d) || !expect_char(text, i, 'T', 't') ||
        !fixed_number(text, i, 2, h) || !expect_char(text, i, ':') ||
        !fixed_number(text, i, 2, mi) || !expect_char(text, i, ':') ||
        !fixed_number(text, i, 2, sec))
        return fail<std::int64_t>(kTimestampExpected);
    if (i < text.size() && text[i] == '.') {
        const std::size_t fraction = count_digits(text, i + 1);
        if (fraction == 0) return fail<std::int64_t>(kTimestampExpected);
        i += 1 + fraction;  // sub-second precision is not kept
    }
    int offset = 0;  // seconds east of UTC
    if (expect_char(text, i, 'Z', 'z')) {
        offset = 0;
    } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
        const int sign = text[i++] == '-' ? -1 : 1;
        int oh = 0, om = 0;
        if (!fixed_number(text, i, 2, oh) || !expect_char(text, i, ':') ||
            !fixed_number(text, i, 2, om))
            return fail<std::int64_t>(kTimestampExpected);
        if (oh > 23 || om > 59)
            return fail<std::int64_t>("expected a UTC offset from -23:59 to +23:59");
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return fail<std::int64_t>(kTimestampExpected);
    }
    if (i != text.size()) return fail<std::int64_t>(kTimestampExpected);
    const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                              day{static_cast<unsigned>(d)}};
    if (!date.ok())
        return fail<std::int64_t>(
            "expected a date that exists: month 01-12 and a day within that month");
    if (h > 23 || mi > 59 || sec > 59)
        return fail<std::int64_t>(
            "expected a time of day with hours 00-23, minutes and seconds "
            "00-59");
    const std::int64_t days = sys_days(date).time_since_epoch().count();
    return {days * 86400 + h * 3600 + mi * 60 + sec - offset, {}};
}

std::string format_timestamp(std::int64_t seconds) {
    using namespace std::chrono;
    const sys_seconds t{std::chrono::seconds(seconds)};
    const sys_days day = floor<days>(t);
    const year_month_day date{day};
    const hh_mm_ss time{t - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()));
    return buf;
}

std::optional<GatewayFailure> parse_gateway_failure(std::string_view text) {
    for (auto f : {GatewayFailure::connect_failed, GatewayFailure::reset, GatewayFailure::timeout,
                   GatewayFailure::no_healthy_target, GatewayFailure::bad_response})
        if (gateway_failure_name(f) == text) return f;
    return std::nullopt;
}

std::string_view gateway_failure_name(GatewayFailure failure) {
    switch (failure) {
        case GatewayFailure::connect_failed:
            return "connect_failed";
        case GatewayFailure::reset:
            return "reset";
        case GatewayFailure::timeout:
            return "timeout";
        case GatewayFailure::no_healthy_target:
            return "no_healthy_target";
        case GatewayFailure::bad_response:
            return "bad_response";
    }
    return "unknown";
}

bool is_ip_address(std::string_view host) {
    return is_ip(host, AF_INET) || is_ip(host, AF_INET6);
}

bool is_valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '.') {
            if (label == 0 || label > 63) return false;
            if (name[i - 1] == '-' || name[i - label] == '-') return false;
            label = 0;
        } else if (is_alpha(name[i]) || is_digit(name[i]) || name[i] == '-' || name[i] == '_') {
            ++label;
        } else {
            return false;
        }
    }
    return true;
}

bool is_valid_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

}  // namespace im::config

namespace im::config {

bool Cidr::contains(const std::array<std::uint8_t, 16>& address) const {
    int full = prefix / 8;
    for (int i = 0; i < full; ++i)
        if (address[static_cast<std::size_t>(i)] != bytes[static_cast<std::size_t>(i)]) return false;
    int bits = prefix % 8;
    if (bits == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
    return (address[static_cast<std::size_t>(full)] & mask) == (bytes[static_cast<std::size_t>(full)] & mask);
}

}  // namespace im::config
