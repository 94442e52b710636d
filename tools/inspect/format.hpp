// Text formatting for bulkhead-inspect's human output: sizes, durations,
// CPU caps, and column fitting that respects UTF-8.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::inspect {

// Decodes one well-formed UTF-8 sequence (as left by printable()).
inline std::uint32_t decode_cp(std::string_view cp) {
  const auto c = static_cast<unsigned char>(cp[0]);
  if (c < 0x80) return c;
  std::uint32_t v = cp.size() == 2 ? (c & 0x1f) : cp.size() == 3 ? (c & 0x0f) : (c & 0x07);
  for (std::size_t i = 1; i < cp.size(); ++i) v = (v << 6) | (static_cast<unsigned char>(cp[i]) & 0x3f);
  return v;
}

// Terminal columns of one code point: 2 for East Asian wide and full-width
// ranges (Unicode UAX #11, the common blocks), 0 for combining marks, else 1.
inline std::size_t cp_width(std::uint32_t v) {
  if ((v >= 0x0300 && v <= 0x036f) || (v >= 0x200b && v <= 0x200f)) return 0;
  if ((v >= 0x1100 && v <= 0x115f) || (v >= 0x2e80 && v <= 0xa4cf) || (v >= 0xac00 && v <= 0xd7a3) ||
      (v >= 0xf900 && v <= 0xfaff) || (v >= 0xfe30 && v <= 0xfe4f) || (v >= 0xff00 && v <= 0xff60) ||
      (v >= 0xffe0 && v <= 0xffe6) || (v >= 0x1f300 && v <= 0x1f64f) || (v >= 0x1f900 && v <= 0x1f9ff) ||
      (v >= 0x20000 && v <= 0x3fffd))
    return 2;
  return 1;
}

// Control characters and invalid bytes replaced, so a hostile name cannot
// move the cursor or break the table.
inline std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += '?';
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Keep a whole, well-formed sequence; replace anything else.
      std::size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      bool ok = len > 0 && i + len <= s.size();
      for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {
        out.append(s.substr(i, len));
        i += len - 1;
      } else {
        out += '?';
      }
    }
  }
  return out;
}

// The code points of s as byte ranges.
inline std::vector<std::string_view> code_points(std::string_view t) {
  std::vector<std::string_view> cps;
  for (std::size_t i = 0; i < t.size();) {
    std::size_t len = 1;
    while (i + len < t.size() && (static_cast<unsigned char>(t[i + len]) & 0xc0) == 0x80) ++len;
    cps.push_back(t.substr(i, len));
    i += len;
  }
  return cps;
}

// Display width in terminal columns.
inline std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (auto cp : code_points(s)) n += cp_width(decode_cp(cp));
  return n;
}

// Fits text into exactly `width` columns, keeping its start and its end and
// marking the cut with '~' ("web-fron~nd-01"): instance names often differ
// only at the end.
inline std::string fit_middle(std::string_view s, std::size_t width) {
  const std::string t = printable(s);
  const std::size_t w = columns(t);
  if (w <= width) return t + std::string(width - w, ' ');
  const auto cps = code_points(t);
  const std::size_t keep = width - 1, head_w = (keep + 1) / 2, tail_w = keep - head_w;
  std::string head, tail;
  std::size_t hw = 0, tw = 0, i = 0, j = cps.size();
  while (i < cps.size() && hw + cp_width(decode_cp(cps[i])) <= head_w) hw += cp_width(decode_cp(cps[i++]));
  while (j > i && tw + cp_width(decode_cp(cps[j - 1])) <= tail_w) tw += cp_width(decode_cp(cps[--j]));
  for (std::size_t k = 0; k < i; ++k) head += cps[k];
  for (std::size_t k = j; k < cps.size(); ++k) tail += cps[k];
  return head + "~" + tail + std::string(width - 1 - hw - tw, ' ');
}

// Fits text into exactly `width` columns: truncated with '~' or padded.
inline std::string fit(std::string_view s, std::size_t width, bool right = false) {
  const std::string t = printable(s);
  const std::size_t w = columns(t);
  if (w > width) {
    std::string out;
    std::size_t n = 0;
    for (auto cp : code_points(t)) {
      const auto cw = cp_width(decode_cp(cp));
      if (n + cw + 1 > width) break;
      out += cp;
      n += cw;
    }
    return out + "~" + std::string(width - 1 - n, ' ');
  }
  const std::string pad(width - w, ' ');
  return right ? pad + t : t + pad;
}

// Words after `head`, wrapped at `width` columns; continuation lines are
// indented by two spaces. Nothing is cut: every word is printed whole.
inline std::vector<std::string> wrap_words(std::string_view head, const std::vector<std::string>& words,
                                           std::size_t width) {
  std::vector<std::string> lines{printable(head)};
  for (const auto& w : words) {
    const std::string t = printable(w);
    if (columns(lines.back()) + 1 + columns(t) > width && columns(lines.back()) > 2) lines.emplace_back(" ");
    lines.back() += " " + t;
  }
  return lines;
}

// 1536 -> "1.5K", binary units, one decimal below 10.
inline std::string human_bytes(std::uint64_t b) {
  static constexpr const char* units[] = {"B", "K", "M", "G", "T", "P", "E"};
  std::size_t u = 0;
  std::uint64_t whole = b, frac10 = 0;
  while (whole >= 1024 && u + 1 < std::size(units)) {
    frac10 = (whole % 1024) * 10 / 1024;
    whole /= 1024;
    ++u;
  }
  char buf[32];
  if (u > 0 && whole < 10) std::snprintf(buf, sizeof buf, "%llu.%llu%s", static_cast<unsigned long long>(whole),
                                         static_cast<unsigned long long>(frac10), units[u]);
  else std::snprintf(buf, sizeof buf, "%llu%s", static_cast<unsigned long long>(whole), units[u]);
  return buf;
}

// Millicores as percent of one core, like top: 2500 -> "250%".
inline std::string cores_percent(std::uint64_t millicores) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llu%%", static_cast<unsigned long long>(millicores / 10));
  return buf;
}

// Nanoseconds of CPU time as H:MM:SS (ps's TIME), or "123h" when long.
inline std::string cpu_time(std::uint64_t ns) {
  const std::uint64_t s = ns / 1'000'000'000ull;
  char buf[32];
  if (s >= 100 * 3600)
    std::snprintf(buf, sizeof buf, "%lluh", static_cast<unsigned long long>(s / 3600));
  else
    std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  return buf;
}

}  // namespace bulkhead::inspect
