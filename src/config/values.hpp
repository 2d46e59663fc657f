// Parsers for the scalar values of the config file: durations, sizes, integers, addresses,
// host patterns and status ranges. Pure functions of a string, so they can be tested alone and
// reused by the admin API and the CLI.
#pragma once

#include <array>
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

// An IP network "10.0.0.0/8", "2001:db8::/32", or one address "192.168.1.5" (= /32),
// "2001:db8::1" (= /128). IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) with the prefix plus 96,
// so one Cidr::contains() serves both families. The prefix is 0-32 for IPv4 and 0-128 for IPv6;
// host bits set below the prefix ("10.1.2.3/8") are kept as written and ignored by contains().
// No brackets, no zone ("%eth0"), no spaces.
Parsed<Cidr> parse_cidr(std::string_view text);

// An IPv4 or IPv6 literal (no brackets) as 16 bytes, IPv4 mapped to ::ffff:a.b.c.d.
std::optional<std::array<std::uint8_t, 16>> parse_ip_bytes(std::string_view text);

// An RFC 3339 timestamp "2026-11-24T03:00:00Z" or "2026-11-24T05:00:00+02:00" as UTC seconds
// since the epoch. 'T' and 'Z' may be lowercase; fractional seconds ("03:00:00.5Z") are
// accepted and dropped. The offset is required; years 0000-9999; the date must exist
// (no month 13, no February 30); hours 00-23, minutes and seconds 00-59 (no leap second).
Parsed<std::int64_t> parse_timestamp(std::string_view text);

// The UTC seconds as "2026-11-24T03:00:00Z"; parse_timestamp() reads it back.
std::string format_timestamp(std::int64_t seconds);

// "connect_failed", "reset", "timeout", "no_healthy_target" or "bad_response".
std::optional<GatewayFailure> parse_gateway_failure(std::string_view text);
std::string_view gateway_failure_name(GatewayFailure failure);

// An IPv4 or IPv6 (without brackets) literal.
bool is_ip_address(std::string_view host);

// A DNS name of letters, digits, '-' and '_' labels (1-63 characters, 253 in all).
bool is_valid_hostname(std::string_view name);

// A site or target group name: [A-Za-z0-9_.-]+.
bool is_valid_name(std::string_view name);

}  // namespace im::config
