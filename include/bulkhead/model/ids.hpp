// bulkhead/model/ids.hpp: instance identity.
//
// An instance is keyed by a stable UUID plus an incarnation: a new incarnation
// at every start, restart of the backing process, or migration. Counters
// belong to an incarnation; names are labels, never keys.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead {

class uuid {
 public:
  constexpr uuid() noexcept = default;
  constexpr explicit uuid(const std::array<std::uint8_t, 16>& b) noexcept : b_(b) {}

  // Canonical 8-4-4-4-12 hex form, either case; also the 32-hex form without
  // dashes (libvirt accepts both).
  [[nodiscard]] static result<uuid> parse(std::string_view s) {
    std::array<std::uint8_t, 16> b{};
    std::size_t n = 0;
    int hi = -1;
    const bool dashed = s.size() == 36;
    if (!dashed && s.size() != 32)
      return fail(errc::parse_error, "uuid " + bulkhead::detail::quote(s) + ": expected 36 characters (8-4-4-4-12) or 32 hex digits");
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
        if (c != '-') return fail(errc::parse_error, "uuid " + bulkhead::detail::quote(s) + ": expected '-' at position " + std::to_string(i));
        continue;
      }
      int v = -1;
      if (c >= '0' && c <= '9') v = c - '0';
      else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
      if (v < 0) return fail(errc::parse_error, "uuid " + bulkhead::detail::quote(s) + ": not a hex digit at position " + std::to_string(i));
      if (hi < 0) {
        hi = v;
      } else {
        b[n++] = static_cast<std::uint8_t>(hi << 4 | v);
        hi = -1;
      }
    }
    return uuid{b};
  }

  // Lower-case canonical form.
  [[nodiscard]] std::string to_string() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
      s += hex[b_[i] >> 4];
      s += hex[b_[i] & 0xf];
    }
    return s;
  }

  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept { return b_; }
  [[nodiscard]] constexpr bool is_nil() const noexcept {
    for (auto x : b_)
      if (x) return false;
    return true;
  }
  friend constexpr auto operator<=>(const uuid&, const uuid&) noexcept = default;

 private:
  std::array<std::uint8_t, 16> b_{};
};

// A run of an instance. For libvirt: the domain id of a running domain (a new
// one at every start). For cgroups: the group's inode or creation number. The
// value is opaque; only equality matters.
struct incarnation {
  std::uint64_t value = 0;
  friend constexpr auto operator<=>(const incarnation&, const incarnation&) noexcept = default;
};

// Everywhere in bulkhead an instance's UUID is called `uuid` and its
// incarnation `incarnation`.
struct instance_id {
  bulkhead::uuid uuid;
  // None when the instance is not running (a shut-off domain has no
  // incarnation and no counters).
  std::optional<bulkhead::incarnation> incarnation;
  friend constexpr auto operator<=>(const instance_id&, const instance_id&) noexcept = default;
};

}  // namespace bulkhead

template <>
struct std::hash<bulkhead::uuid> {
  std::size_t operator()(const bulkhead::uuid& u) const noexcept {
    // FNV-1a over the 16 bytes.
    std::uint64_t h = 1469598103934665603ull;
    for (auto b : u.bytes()) {
      h ^= b;
      h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
  }
};
