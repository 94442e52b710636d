// bulkhead/accounting/detail/codec.hpp (internal): the byte encoding shared by
// journal records and rollup checkpoints (docs/journal-format.md):
// little-endian fixed fields, LEB128 varints, zigzag for signed values. The
// journal's CRC-32C is compiled with it (src/accounting/codec.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "bulkhead/units.hpp"

namespace bulkhead::accounting::detail {

inline void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void put_u64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}
inline std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

inline constexpr std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline constexpr std::int64_t unzigzag(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// Appends to a caller-owned buffer (no allocation once it has grown).
struct writer {
  std::string& out;
  void u8(std::uint8_t v) { out.push_back(static_cast<char>(v)); }
  void var(std::uint64_t v) {
    char b[10];
    int n = 0;
    while (v >= 0x80) {
      b[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    b[n++] = static_cast<char>(v);
    out.append(b, static_cast<std::size_t>(n));
  }
  void svar(std::int64_t v) { var(zigzag(v)); }
  void u128v(u128 v) {
    var(static_cast<std::uint64_t>(v));
    var(static_cast<std::uint64_t>(v >> 64));
  }
  void str(std::string_view s) {
    var(s.size());
    out.append(s);
  }
  void raw(const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
};

// Reads from a span; every read checks bounds and sets `ok` false on failure
// (the caller checks once at the end).
struct reader {
  const char* p;
  const char* end;
  bool ok = true;
  [[nodiscard]] std::size_t left() const { return static_cast<std::size_t>(end - p); }
  std::uint8_t u8() {
    if (p >= end) {
      ok = false;
      return 0;
    }
    return static_cast<std::uint8_t>(*p++);
  }
  std::uint64_t var() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) {
        ok = false;
        return 0;
      }
      const auto b = static_cast<unsigned char>(*p++);
      if (shift == 63 && b > 1) {
        ok = false;
        return 0;
      }
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::int64_t svar() { return unzigzag(var()); }
  u128 u128v() {
    const u128 lo = var();
    const u128 hi = var();
    return lo | hi << 64;
  }
  std::string_view str(std::size_t max) {
    const auto n = var();
    if (!ok || n > max || n > left()) {
      ok = false;
      return {};
    }
    std::string_view s(p, n);
    p += n;
    return s;
  }
  bool raw(void* dst, std::size_t n) {
    if (n > left()) {
      ok = false;
      return false;
    }
    std::memcpy(dst, p, n);
    p += n;
    return true;
  }
};

}  // namespace bulkhead::accounting::detail
