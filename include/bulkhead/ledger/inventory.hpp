// bulkhead/ledger/inventory.hpp: one inventory with OpenStack Placement's
// semantics, and the rules an allocation against it must obey.
//
// An inventory of one resource kind on one provider (a host, a NUMA cell or an
// offload card) has
//   total, reserved, min_unit, max_unit, step_size, allocation_ratio
// and
//   capacity = floor((total - reserved - pinned) x allocation_ratio)
// computed exactly (128-bit intermediate, rounded down). `pinned` is zero
// except for a CPU pool, where CPU ids given exclusively to LSE or LSR
// instances leave the shared (over-committable) pool; see ledger.hpp.
// An allocation of n obeys min_unit <= n <= max_unit, n % step_size == 0 and
// used + n <= capacity (Placement's rules; its "allocation_ratio" is a float,
// ours an exact rational so 1.5 x 3 is exactly 4 and never 4.4999).
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bulkhead/error.hpp"
#include "bulkhead/ledger/amounts.hpp"
#include "bulkhead/ledger/rational.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::ledger {

// The typed form callers write: inventory<resource_kind::memory>{.total = bytes{...}}.
template <resource_kind K>
struct inventory {
  using unit = unit_of<K>;
  unit total{0};
  unit reserved{0};
  unit min_unit{1};
  limit<unit> max_unit = unlimited;
  unit step_size{1};
  rational allocation_ratio{};  // 1/1
};

// The same, for any kind: counts are in unit_of<kind> (unit_symbol(kind)).
// Build it from the typed form with any_inventory::of(inventory<K>{...}).
struct any_inventory {
  resource_kind kind = resource_kind::cpu;
  std::uint64_t total = 0;
  std::uint64_t reserved = 0;
  std::uint64_t min_unit = 1;
  std::optional<std::uint64_t> max_unit;  // none: no maximum
  std::uint64_t step_size = 1;
  rational allocation_ratio{};

  template <resource_kind K>
  [[nodiscard]] static any_inventory of(const inventory<K>& i) {
    any_inventory a;
    a.kind = K;
    a.total = i.total.count();
    a.reserved = i.reserved.count();
    a.min_unit = i.min_unit.count();
    if (i.max_unit.is_bounded()) a.max_unit = i.max_unit.value().count();
    a.step_size = i.step_size.count();
    a.allocation_ratio = i.allocation_ratio;
    return a;
  }
  friend bool operator==(const any_inventory&, const any_inventory&) = default;
};

namespace detail {
// "8589934592 bytes"
[[nodiscard]] inline std::string counted(std::uint64_t n, resource_kind k) {
  return std::to_string(n) + " " + std::string(unit_symbol(k));
}
}  // namespace detail

// floor((total - reserved - pinned) x ratio); 0 when reserved + pinned cover
// the total; nullopt when the result does not fit 64 bits.
[[nodiscard]] constexpr std::optional<std::uint64_t> inventory_capacity(std::uint64_t total, std::uint64_t reserved,
                                                                        std::uint64_t pinned,
                                                                        const rational& ratio) noexcept {
  if (reserved >= total) return 0;
  const std::uint64_t base = total - reserved;
  if (pinned >= base) return 0;
  return ratio.apply_floor(base - pinned);
}

// The inventory itself is acceptable: total >= 1, reserved <= total,
// min_unit >= 1, step_size >= 1, max_unit >= min_unit, ratio > 0, capacity
// fits 64 bits. `where` names it in the error ("host 'h1' cell 0").
// allow_zero_total: for inventories that may legitimately be empty (the
// batch capacity the co-location engine publishes can be 0).
[[nodiscard]] inline result<void> validate(const any_inventory& i, const std::string& where,
                                           bool allow_zero_total = false) {
  const std::string f = where + " " + std::string(to_string(i.kind)) + " inventory: ";
  const auto c = [&](std::uint64_t n) { return detail::counted(n, i.kind); };
  if (i.total == 0 && !allow_zero_total) return fail(errc::out_of_range, f + "total is 0");
  if (i.reserved > i.total)
    return fail(errc::out_of_range, f + "reserved " + c(i.reserved) + " exceeds total " + c(i.total));
  if (i.min_unit == 0) return fail(errc::out_of_range, f + "min_unit is 0 (at least 1)");
  if (i.step_size == 0) return fail(errc::out_of_range, f + "step_size is 0 (at least 1)");
  if (i.max_unit && *i.max_unit < i.min_unit)
    return fail(errc::out_of_range, f + "max_unit " + c(*i.max_unit) + " is below min_unit " + c(i.min_unit));
  if (i.allocation_ratio.is_zero()) return fail(errc::out_of_range, f + "allocation_ratio is 0");
  if (!inventory_capacity(i.total, i.reserved, 0, i.allocation_ratio))
    return fail(errc::overflow, f + "capacity (" + c(i.total - i.reserved) + " x " + i.allocation_ratio.to_string() +
                                    ") does not fit 64 bits");
  return {};
}

// n obeys min_unit, max_unit and step_size (the cheap test).
[[nodiscard]] constexpr bool obeys_unit_rules(const any_inventory& i, std::uint64_t n) noexcept {
  return n >= i.min_unit && (!i.max_unit || n <= *i.max_unit) && (i.step_size == 1 || n % i.step_size == 0);
}

// n obeys min_unit, max_unit and step_size. errc::out_of_range naming the
// rule, the amount asked and the bound.
[[nodiscard]] inline result<void> check_unit_rules(const any_inventory& i, std::uint64_t n, const std::string& where) {
  const auto c = [&](std::uint64_t x) { return detail::counted(x, i.kind); };
  const std::string f = where + " " + std::string(to_string(i.kind)) + ": asked " + c(n) + ", ";
  if (n < i.min_unit) return fail(errc::out_of_range, f + "below min_unit " + c(i.min_unit));
  if (i.max_unit && n > *i.max_unit) return fail(errc::out_of_range, f + "above max_unit " + c(*i.max_unit));
  if (n % i.step_size != 0)
    return fail(errc::out_of_range, f + "not a multiple of step_size " + c(i.step_size));
  return {};
}

}  // namespace bulkhead::ledger
