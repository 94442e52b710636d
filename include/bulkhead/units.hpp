// bulkhead/units.hpp: strong unit types.
//
// Every quantity carries its unit in its type; there are no bare numbers with
// units in comments. Quantities are unsigned 64-bit integers. Arithmetic is
// overflow-checked in two flavours:
//   - checked_add / checked_sub / checked_mul return std::nullopt on overflow
//     or underflow (use these on input paths);
//   - operators + - * throw bulkhead::overflow_error (a programming error: the
//     caller let an unchecked value through).
// Conversions between units are explicit functions that fail rather than
// round silently, unless their name says how they round.
//
// Thread-safety: all types here are values; no shared state.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bulkhead {

// Thrown only by the operator forms of quantity arithmetic. Parsers and
// anything fed by external input use the checked_* forms instead.
class overflow_error : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

__extension__ using u128 = unsigned __int128;  // 128-bit accumulators (GCC and Clang)

namespace detail {
[[nodiscard]] constexpr std::optional<std::uint64_t> add_u64(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
[[nodiscard]] constexpr std::optional<std::uint64_t> sub_u64(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}
[[nodiscard]] constexpr std::optional<std::uint64_t> mul_u64(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r{};
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
// a * num / den computed exactly in 128 bits, rounded down; nullopt when the
// result does not fit 64 bits or den is 0.
[[nodiscard]] constexpr std::optional<std::uint64_t> muldiv_floor(std::uint64_t a, std::uint64_t num,
                                                                  std::uint64_t den) noexcept {
  if (den == 0) return std::nullopt;
  const u128 r = static_cast<u128>(a) * num / den;
  if (r > std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
  return static_cast<std::uint64_t>(r);
}
[[nodiscard]] constexpr std::optional<std::uint64_t> muldiv_ceil(std::uint64_t a, std::uint64_t num,
                                                                 std::uint64_t den) noexcept {
  if (den == 0) return std::nullopt;
  const u128 p = static_cast<u128>(a) * num;
  const u128 r = p / den + (p % den != 0 ? 1 : 0);
  if (r > std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
  return static_cast<std::uint64_t>(r);
}
}  // namespace detail

// A count of some unit. Tag names the unit: Tag::symbol is used in messages
// and JSON field suffixes.
template <class Tag>
class quantity {
 public:
  using rep = std::uint64_t;
  using tag = Tag;

  constexpr quantity() noexcept = default;
  constexpr explicit quantity(rep v) noexcept : v_(v) {}

  [[nodiscard]] constexpr rep count() const noexcept { return v_; }
  [[nodiscard]] static constexpr quantity zero() noexcept { return quantity{0}; }
  [[nodiscard]] static constexpr quantity max() noexcept {
    return quantity{std::numeric_limits<rep>::max()};
  }
  [[nodiscard]] static constexpr std::string_view symbol() noexcept { return Tag::symbol; }

  friend constexpr auto operator<=>(quantity, quantity) noexcept = default;

  [[nodiscard]] constexpr std::optional<quantity> checked_add(quantity o) const noexcept {
    auto r = bulkhead::detail::add_u64(v_, o.v_);
    return r ? std::optional<quantity>{quantity{*r}} : std::nullopt;
  }
  [[nodiscard]] constexpr std::optional<quantity> checked_sub(quantity o) const noexcept {
    auto r = bulkhead::detail::sub_u64(v_, o.v_);
    return r ? std::optional<quantity>{quantity{*r}} : std::nullopt;
  }
  [[nodiscard]] constexpr std::optional<quantity> checked_mul(rep k) const noexcept {
    auto r = bulkhead::detail::mul_u64(v_, k);
    return r ? std::optional<quantity>{quantity{*r}} : std::nullopt;
  }

  // Throwing forms: bulkhead::overflow_error on overflow or underflow.
  friend constexpr quantity operator+(quantity a, quantity b) {
    auto r = a.checked_add(b);
    if (!r) throw overflow_error(std::string("overflow adding ") + std::string(Tag::symbol));
    return *r;
  }
  friend constexpr quantity operator-(quantity a, quantity b) {
    auto r = a.checked_sub(b);
    if (!r) throw overflow_error(std::string("underflow subtracting ") + std::string(Tag::symbol));
    return *r;
  }
  friend constexpr quantity operator*(quantity a, rep k) {
    auto r = a.checked_mul(k);
    if (!r) throw overflow_error(std::string("overflow multiplying ") + std::string(Tag::symbol));
    return *r;
  }
  constexpr quantity& operator+=(quantity o) { return *this = *this + o; }
  constexpr quantity& operator-=(quantity o) { return *this = *this - o; }

 private:
  rep v_ = 0;
};

// --- the units ---------------------------------------------------------------
struct bytes_tag { static constexpr std::string_view symbol = "bytes"; };
// libvirt's <memory>, <currentMemory> and <memtune> values are KiB
// (formatdomain: "the units ... default to KiB").
struct kibibytes_tag { static constexpr std::string_view symbol = "kib"; };
// libvirt's <bandwidth> average/peak/floor. libvirt passes them to tc with the
// suffix "kbps", which tc reads as kilobytes (1000 bytes) per second.
struct kilobytes_per_second_tag { static constexpr std::string_view symbol = "kbytes_sec"; };
// libvirt's <bandwidth> burst: "kilobytes"; handed to tc with suffix "kb",
// which tc reads as 1024 bytes.
struct kilobytes_tag { static constexpr std::string_view symbol = "kbytes"; };
struct bytes_per_second_tag { static constexpr std::string_view symbol = "bytes_sec"; };
struct bits_per_second_tag { static constexpr std::string_view symbol = "bits_sec"; };
struct ops_per_second_tag { static constexpr std::string_view symbol = "ops_sec"; };
struct operations_tag { static constexpr std::string_view symbol = "ops"; };
struct packets_tag { static constexpr std::string_view symbol = "packets"; };
struct packets_per_second_tag { static constexpr std::string_view symbol = "packets_sec"; };
// Thousandths of one logical CPU.
struct millicores_tag { static constexpr std::string_view symbol = "millicores"; };
struct cache_ways_tag { static constexpr std::string_view symbol = "cache_ways"; };
struct percent_tag { static constexpr std::string_view symbol = "percent"; };
struct megabytes_per_second_tag { static constexpr std::string_view symbol = "mbytes_sec"; };

using bytes = quantity<bytes_tag>;
using kibibytes = quantity<kibibytes_tag>;
using kilobytes_per_second = quantity<kilobytes_per_second_tag>;
using kilobytes = quantity<kilobytes_tag>;
using bytes_per_second = quantity<bytes_per_second_tag>;
using bits_per_second = quantity<bits_per_second_tag>;
using ops_per_second = quantity<ops_per_second_tag>;
using operations = quantity<operations_tag>;
using packets = quantity<packets_tag>;
using packets_per_second = quantity<packets_per_second_tag>;
using millicores = quantity<millicores_tag>;
using cache_ways = quantity<cache_ways_tag>;
using percent = quantity<percent_tag>;
using megabytes_per_second = quantity<megabytes_per_second_tag>;

// Time: std::chrono, signed 64-bit. Durations in accounting are never negative;
// the meters reject what would make them so.
using nanoseconds = std::chrono::nanoseconds;
using microseconds = std::chrono::microseconds;
using milliseconds = std::chrono::milliseconds;
using seconds = std::chrono::seconds;
// The monotonic clock every reading is stamped with.
using mono_clock = std::chrono::steady_clock;
using mono_time = mono_clock::time_point;
using wall_clock = std::chrono::system_clock;
using wall_time = std::chrono::time_point<wall_clock, nanoseconds>;

inline constexpr std::uint64_t kib_factor = 1024;
inline constexpr std::uint64_t kilobyte_factor = 1000;
inline constexpr std::uint64_t nanos_per_second = 1'000'000'000;
inline constexpr std::uint64_t millicores_per_core = 1000;

// --- explicit conversions ----------------------------------------------------
[[nodiscard]] constexpr std::optional<bytes> to_bytes(kibibytes k) noexcept {
  auto r = bulkhead::detail::mul_u64(k.count(), kib_factor);
  return r ? std::optional<bytes>{bytes{*r}} : std::nullopt;
}
// Exact: nullopt unless b is a whole number of KiB.
[[nodiscard]] constexpr std::optional<kibibytes> to_kibibytes_exact(bytes b) noexcept {
  if (b.count() % kib_factor != 0) return std::nullopt;
  return kibibytes{b.count() / kib_factor};
}
// Rounds up, so that a limit converted to KiB never shrinks below its bytes.
[[nodiscard]] constexpr kibibytes to_kibibytes_ceil(bytes b) noexcept {
  return kibibytes{b.count() / kib_factor + (b.count() % kib_factor != 0 ? 1 : 0)};
}
[[nodiscard]] constexpr std::optional<bytes_per_second> to_bytes_per_second(kilobytes_per_second k) noexcept {
  auto r = bulkhead::detail::mul_u64(k.count(), kilobyte_factor);
  return r ? std::optional<bytes_per_second>{bytes_per_second{*r}} : std::nullopt;
}
[[nodiscard]] constexpr std::optional<kilobytes_per_second> to_kilobytes_per_second_exact(
    bytes_per_second b) noexcept {
  if (b.count() % kilobyte_factor != 0) return std::nullopt;
  return kilobytes_per_second{b.count() / kilobyte_factor};
}
[[nodiscard]] constexpr std::optional<bytes> to_bytes(kilobytes k) noexcept {
  auto r = bulkhead::detail::mul_u64(k.count(), kib_factor);
  return r ? std::optional<bytes>{bytes{*r}} : std::nullopt;
}
[[nodiscard]] constexpr std::optional<bits_per_second> to_bits_per_second(bytes_per_second b) noexcept {
  auto r = bulkhead::detail::mul_u64(b.count(), 8);
  return r ? std::optional<bits_per_second>{bits_per_second{*r}} : std::nullopt;
}
// Rounds down: a byte rate derived from a bit rate never exceeds it.
[[nodiscard]] constexpr bytes_per_second to_bytes_per_second_floor(bits_per_second b) noexcept {
  return bytes_per_second{b.count() / 8};
}

// CFS bandwidth <-> millicores. quota/period in microseconds as the kernel's
// cpu.max and libvirt's <cputune> give them
// (Documentation/scheduler/sched-bwc.rst).
// millicores = quota * 1000 / period, rounded down.
[[nodiscard]] constexpr std::optional<millicores> to_millicores(microseconds quota, microseconds period) noexcept {
  if (quota.count() < 0 || period.count() <= 0) return std::nullopt;
  auto r = bulkhead::detail::muldiv_floor(static_cast<std::uint64_t>(quota.count()), millicores_per_core,
                                static_cast<std::uint64_t>(period.count()));
  return r ? std::optional<millicores>{millicores{*r}} : std::nullopt;
}
// quota = millicores * period / 1000, rounded up so the cap is never below the
// request; nullopt for a non-positive period or overflow.
[[nodiscard]] constexpr std::optional<microseconds> to_cfs_quota(millicores m, microseconds period) noexcept {
  if (period.count() <= 0) return std::nullopt;
  auto r = bulkhead::detail::muldiv_ceil(m.count(), static_cast<std::uint64_t>(period.count()), millicores_per_core);
  if (!r || *r > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return microseconds{static_cast<std::int64_t>(*r)};
}

// Duration as unsigned nanoseconds; nullopt when negative.
[[nodiscard]] constexpr std::optional<std::uint64_t> to_unsigned_ns(nanoseconds d) noexcept {
  if (d.count() < 0) return std::nullopt;
  return static_cast<std::uint64_t>(d.count());
}

// A 128-bit value in decimal (totals that may exceed 64 bits, in JSON and
// reports).
[[nodiscard]] inline std::string to_decimal(u128 v) {
  if (v == 0) return "0";
  char buf[40];
  std::size_t n = sizeof buf;
  while (v != 0) {
    buf[--n] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  return std::string(buf + n, sizeof buf - n);
}

// --- limit<T>: a value, or unlimited -----------------------------------------
// Never a sentinel: "no limit" is its own state, not -1 or 0.
struct unlimited_t {
  explicit constexpr unlimited_t() = default;
};
inline constexpr unlimited_t unlimited{};

template <class T>
class limit {
 public:
  constexpr limit(unlimited_t) noexcept {}               // NOLINT(google-explicit-constructor)
  constexpr limit(T v) noexcept : v_(v), bounded_(true) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] constexpr bool is_unlimited() const noexcept { return !bounded_; }
  [[nodiscard]] constexpr bool is_bounded() const noexcept { return bounded_; }
  // Precondition: is_bounded().
  [[nodiscard]] constexpr T value() const noexcept { return v_; }
  [[nodiscard]] constexpr std::optional<T> bound() const noexcept {
    return bounded_ ? std::optional<T>{v_} : std::nullopt;
  }
  // True when x fits under the limit.
  [[nodiscard]] constexpr bool admits(T x) const noexcept { return !bounded_ || x <= v_; }

  friend constexpr bool operator==(const limit& a, const limit& b) noexcept {
    return a.bounded_ == b.bounded_ && (!a.bounded_ || a.v_ == b.v_);
  }

 private:
  T v_{};
  bool bounded_ = false;
};

}  // namespace bulkhead
