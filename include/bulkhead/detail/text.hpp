// bulkhead/detail/text.hpp: strict integer parsing and small text helpers
// shared by every parser (XML attributes, cgroup and sysfs files, JSON specs).
//
// Strict: no sign, no leading/trailing garbage, no empty input, no overflow.
// Errors are errc::parse_error or errc::overflow with a message that quotes
// the offending text (truncated to 64 bytes and made printable).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"

namespace bulkhead::detail {

// The text made safe to quote in a message: at most `max` bytes (64 by
// default: input values; paths use quote_path), control and non-ASCII bytes
// shown as \xNN.
[[nodiscard]] inline std::string quote(std::string_view s, std::size_t max = 64) {
  std::string out = "'";
  std::size_t n = 0;
  for (unsigned char c : s) {
    if (n++ == max) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  out += "'";
  return out;
}

// A path quoted whole (up to 4096 bytes): the part that matters is usually
// at its end.
[[nodiscard]] inline std::string quote_path(std::string_view s) { return quote(s, 4096); }

[[nodiscard]] constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Decimal unsigned 64-bit. `what` names the input in the error message.
[[nodiscard]] inline result<std::uint64_t> parse_u64(std::string_view s, std::string_view what) {
  std::uint64_t v = 0;
  if (s.empty()) return fail(errc::parse_error, std::string(what) + ": empty where a number was expected");
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec == std::errc::result_out_of_range)
    return fail(errc::overflow, std::string(what) + ": " + quote(s) + " does not fit 64 bits");
  if (ec != std::errc{} || p != s.data() + s.size())
    return fail(errc::parse_error, std::string(what) + ": " + quote(s) + " is not a non-negative integer");
  return v;
}

// Decimal signed 64-bit (for formats that use -1, such as cgroup v1 quotas).
[[nodiscard]] inline result<std::int64_t> parse_i64(std::string_view s, std::string_view what) {
  std::int64_t v = 0;
  if (s.empty()) return fail(errc::parse_error, std::string(what) + ": empty where a number was expected");
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec == std::errc::result_out_of_range)
    return fail(errc::overflow, std::string(what) + ": " + quote(s) + " does not fit 64 bits");
  if (ec != std::errc{} || p != s.data() + s.size())
    return fail(errc::parse_error, std::string(what) + ": " + quote(s) + " is not an integer");
  return v;
}

// Hexadecimal, optional 0x prefix (sysfs vendor/device ids, resctrl masks).
[[nodiscard]] inline result<std::uint64_t> parse_hex_u64(std::string_view s, std::string_view what) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  std::uint64_t v = 0;
  if (s.empty()) return fail(errc::parse_error, std::string(what) + ": empty where a hex number was expected");
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec == std::errc::result_out_of_range)
    return fail(errc::overflow, std::string(what) + ": " + quote(s) + " does not fit 64 bits");
  if (ec != std::errc{} || p != s.data() + s.size())
    return fail(errc::parse_error, std::string(what) + ": " + quote(s) + " is not a hex number");
  return v;
}

// Splits on a single separator character; empty fields are kept.
template <class F>
constexpr void split(std::string_view s, char sep, F&& f) {
  while (true) {
    auto i = s.find(sep);
    f(s.substr(0, i));
    if (i == std::string_view::npos) return;
    s.remove_prefix(i + 1);
  }
}

// The length of the longest prefix of s that is valid UTF-8 (no overlongs,
// no surrogates, max U+10FFFF): s.size() when all of s is; else the offset
// of the first bad sequence.
[[nodiscard]] constexpr std::size_t utf8_valid_prefix(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return i;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return i;
}

// True when s is valid UTF-8 (no overlongs, no surrogates, max U+10FFFF).
[[nodiscard]] constexpr bool is_utf8(std::string_view s) noexcept { return utf8_valid_prefix(s) == s.size(); }

}  // namespace bulkhead::detail
