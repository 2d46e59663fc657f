// Parsers for the scalar values of the config file: durations, sizes, integers, addresses,
// host patterns and status ranges. Pure functions of a string, so they can be tested alone and
// reused by the admin API and the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace im::config {

// A parsed value, or a description of what a valid text looks like (for the error message).
template <typename T>
struct Parsed {
    std::optional<T> value;
    std::string expected;  // set when value is empty, e.g. "a number with a unit: ms, s, ..."

    explicit operator bool() const { return value.has_value(); }
};

// "250ms", "2s", "1m", "1h", "1m30s", "1.5s": numbers each followed by a unit, units in
// decreasing order (h, m, s, ms) and each at most once. Fractions are rounded to the nearest
// millisecond. A bare number, a sign, spaces, an unknown unit or an empty text are rejected.
Parsed<Duration> parse_duration(std::string_view text);

// The shortest text parse_duration() reads back as `d`, e.g. "1m30s", "250ms", "0s".
std::string format_duration(Duration d);

// A byte count: "16384", "512B", "10KB" (10000), "16KiB" (16384); units B, KB, MB, GB, TB,
// KiB, MiB, GiB, TiB (case-sensitive); whole numbers only.
Parsed<std::uint64_t> parse_size(std::string_view text);

// A decimal integer within [min, max]; no sign for positive values, no spaces.
Parsed<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max);

// "host:port" with a port from 1 to 65535; an IPv6 host in brackets ("[::1]:8080", stored
// without the brackets). The host is a DNS name or an IPv4 address.
Parsed<Address> parse_address(std::string_view text);

// A site host: "www.example.com" or a leading wildcard "*.example.com", no port. The result is
// lowercased.
Parsed<std::string> parse_host_pattern(std::string_view text);

// "200" or "200-399", statuses from 100 to 599, low <= high.
Parsed<StatusRange> parse_status_range(std::string_view text);

// An IPv4 or IPv6 (without brackets) literal.
bool is_ip_address(std::string_view host);

// A DNS name of letters, digits, '-' and '_' labels (1-63 characters, 253 in all).
bool is_valid_hostname(std::string_view name);

// A site or target group name: [A-Za-z0-9_.-]+.
bool is_valid_name(std::string_view name);

}  // namespace im::config
