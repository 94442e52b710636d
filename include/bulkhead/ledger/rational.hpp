// bulkhead/ledger/rational.hpp: an exact, non-negative rational number.
//
// Used for Placement's allocation_ratio (capacity = (total - reserved) x
// ratio) and for fractions such as a peak window's BE cap. Never a float:
// "1.5" parses to 3/2 and 0.1 is exactly 1/10. Both parts are unsigned 64-bit
// and kept in lowest terms; the denominator is never 0.
//
// apply_floor / apply_ceil multiply a 64-bit count by the ratio in 128 bits
// and round as their name says; they return nullopt when the result does not
// fit 64 bits.
//
// Thread-safety: a value; no shared state.
#pragma once

#include <compare>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::ledger {

class rational {
 public:
  // 1/1.
  constexpr rational() noexcept = default;

  // num/den in lowest terms; invalid_argument when den is 0.
  [[nodiscard]] static result<rational> make(std::uint64_t num, std::uint64_t den) {
    if (den == 0) return fail(errc::invalid_argument, "ratio " + std::to_string(num) + "/0: the denominator is 0");
    return rational(num, den);
  }
  // A whole number.
  [[nodiscard]] static constexpr rational whole(std::uint64_t n) noexcept { return rational(n, 1); }
  // n/100.
  [[nodiscard]] static constexpr rational from_percent(percent p) noexcept { return rational(p.count(), 100); }

  // Text forms: "4", "1.5", "0.125", "3/2". At most 18 digits after the
  // point. No sign, no exponent, no spaces inside.
  [[nodiscard]] static result<rational> parse(std::string_view text) {
    const auto t = bulkhead::detail::trim(text);
    const auto bad = [&](std::string why) {
      return fail(errc::parse_error, "ratio " + bulkhead::detail::quote(text) + ": " + std::move(why));
    };
    if (t.empty()) return bad("empty");
    if (auto slash = t.find('/'); slash != std::string_view::npos) {
      auto n = bulkhead::detail::parse_u64(t.substr(0, slash), "numerator");
      if (!n) return bad(n.error().message());
      auto d = bulkhead::detail::parse_u64(t.substr(slash + 1), "denominator");
      if (!d) return bad(d.error().message());
      if (*d == 0) return bad("the denominator is 0");
      return rational(*n, *d);
    }
    auto dot = t.find('.');
    if (dot == std::string_view::npos) {
      auto n = bulkhead::detail::parse_u64(t, "ratio");
      if (!n) return bad(n.error().message());
      return rational(*n, 1);
    }
    const auto ip = t.substr(0, dot);
    const auto fp = t.substr(dot + 1);
    if (ip.empty() || fp.empty()) return bad("expected digits on both sides of '.'");
    if (fp.size() > 18) return bad("more than 18 digits after the point");
    auto i = bulkhead::detail::parse_u64(ip, "integer part");
    if (!i) return bad(i.error().message());
    auto f = bulkhead::detail::parse_u64(fp, "fraction part");
    if (!f) return bad(f.error().message());
    std::uint64_t den = 1;
    for (std::size_t k = 0; k < fp.size(); ++k) den *= 10;
    auto whole = bulkhead::detail::mul_u64(*i, den);
    if (!whole) return fail(errc::overflow, "ratio " + bulkhead::detail::quote(text) + ": does not fit 64 bits");
    auto num = bulkhead::detail::add_u64(*whole, *f);
    if (!num) return fail(errc::overflow, "ratio " + bulkhead::detail::quote(text) + ": does not fit 64 bits");
    return rational(*num, den);
  }

  [[nodiscard]] constexpr std::uint64_t num() const noexcept { return num_; }
  [[nodiscard]] constexpr std::uint64_t den() const noexcept { return den_; }
  [[nodiscard]] constexpr bool is_zero() const noexcept { return num_ == 0; }

  // floor(x * num / den), nullopt when it does not fit 64 bits.
  [[nodiscard]] constexpr std::optional<std::uint64_t> apply_floor(std::uint64_t x) const noexcept {
    return bulkhead::detail::muldiv_floor(x, num_, den_);
  }
  // ceil(x * num / den), nullopt when it does not fit 64 bits.
  [[nodiscard]] constexpr std::optional<std::uint64_t> apply_ceil(std::uint64_t x) const noexcept {
    return bulkhead::detail::muldiv_ceil(x, num_, den_);
  }

  // "3/2", or "4" for a whole number.
  [[nodiscard]] std::string to_string() const {
    return den_ == 1 ? std::to_string(num_) : std::to_string(num_) + "/" + std::to_string(den_);
  }

  friend constexpr bool operator==(const rational&, const rational&) noexcept = default;
  // Exact comparison by cross-multiplication in 128 bits.
  friend constexpr std::strong_ordering operator<=>(const rational& a, const rational& b) noexcept {
    const u128 l = static_cast<u128>(a.num_) * b.den_;
    const u128 r = static_cast<u128>(b.num_) * a.den_;
    return l < r ? std::strong_ordering::less : l > r ? std::strong_ordering::greater : std::strong_ordering::equal;
  }

 private:
  constexpr rational(std::uint64_t n, std::uint64_t d) noexcept {
    const auto g = std::gcd(n, d);  // d != 0, so g != 0
    num_ = n / g;
    den_ = d / g;
  }
  std::uint64_t num_ = 1;
  std::uint64_t den_ = 1;
};

}  // namespace bulkhead::ledger
