// Builds TZif files in memory for tests (RFC 8536 section 3: header, data
// block, and for version 2+ a second header, a 64-bit data block and the
// "\n<TZ string>\n" footer). Only what the tests need: no leap seconds unless
// asked, no UT/standard indicators.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bulkhead::test {

struct tzif_type {
  std::int32_t utoff = 0;
  bool dst = false;
  std::string abbr;
};

struct tzif_spec {
  char version = '2';  // 0 for a version 1 file
  std::vector<std::int64_t> times;
  std::vector<std::uint8_t> idx;
  std::vector<tzif_type> types{{0, false, "UTC"}};
  std::string footer;  // version 2+ only
  std::uint32_t leapcnt = 0;
};

inline void put32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>(v >> (8 * i) & 0xff);
}
inline void put64(std::string& s, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) s += static_cast<char>(v >> (8 * i) & 0xff);
}

inline std::string tzif_block(const tzif_spec& z, bool wide, char version) {
  std::string chars;
  std::vector<std::uint8_t> desig;
  for (const auto& t : z.types) {
    desig.push_back(static_cast<std::uint8_t>(chars.size()));
    chars += t.abbr;
    chars += '\0';
  }
  std::string s = "TZif";
  s += version;
  s += std::string(15, '\0');
  put32(s, 0);  // isutcnt
  put32(s, 0);  // isstdcnt
  put32(s, z.leapcnt);
  put32(s, static_cast<std::uint32_t>(z.times.size()));
  put32(s, static_cast<std::uint32_t>(z.types.size()));
  put32(s, static_cast<std::uint32_t>(chars.size()));
  for (auto t : z.times) wide ? put64(s, static_cast<std::uint64_t>(t)) : put32(s, static_cast<std::uint32_t>(t));
  for (auto i : z.idx) s += static_cast<char>(i);
  for (std::size_t i = 0; i < z.types.size(); ++i) {
    put32(s, static_cast<std::uint32_t>(z.types[i].utoff));
    s += static_cast<char>(z.types[i].dst ? 1 : 0);
    s += static_cast<char>(desig[i]);
  }
  s += chars;
  for (std::uint32_t i = 0; i < z.leapcnt; ++i) {
    wide ? put64(s, 78796800 + i) : put32(s, 78796800 + i);
    put32(s, i + 1);
  }
  return s;
}

inline std::string make_tzif(const tzif_spec& z) {
  if (z.version == 0) return tzif_block(z, false, 0);
  std::string s = tzif_block(z, false, z.version);
  s += tzif_block(z, true, z.version);
  s += '\n';
  s += z.footer;
  s += '\n';
  return s;
}

// Europe/Berlin as a "slim" file: no transitions, the footer rule does it all
// (CET-1CEST,M3.5.0,M10.5.0/3: last Sunday of March 02:00 CET, last Sunday
// of October 03:00 CEST).
inline tzif_spec berlin_like() {
  tzif_spec z;
  z.types = {{3600, false, "CET"}, {7200, true, "CEST"}};
  z.footer = "CET-1CEST,M3.5.0,M10.5.0/3";
  return z;
}

inline tzif_spec shanghai_like() {
  tzif_spec z;
  z.types = {{28800, false, "CST"}};
  z.footer = "CST-8";
  return z;
}

}  // namespace bulkhead::test
