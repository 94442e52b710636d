// bulkhead/ledger/amounts.hpp: the unit of each resource kind, and a set of
// amounts (one per kind) as a reservation asks for them.
//
// Each resource_kind has exactly one unit (unit_of<K>):
//   cpu              millicores            memory            bytes
//   disk_bandwidth   bytes_per_second      disk_iops         ops_per_second
//   net_bandwidth    bytes_per_second      net_pps           packets_per_second
//   llc              cache_ways            memory_bandwidth  megabytes_per_second
//   offload_function offload_functions (a count of card functions: VFs, vDPA devices)
// so `amounts.set<resource_kind::memory>(bytes{...})` cannot be given
// millicores by mistake. Generic code (the ledger's books, JSON) reads the
// count with count(kind) and the unit's symbol with unit_symbol(kind).
//
// Thread-safety: values; no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "bulkhead/model/enums.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::ledger {

// A count of offload-card functions (SR-IOV VFs, vDPA devices, virtio
// functions) an instance holds.
struct offload_functions_tag {
  static constexpr std::string_view symbol = "functions";
};
using offload_functions = quantity<offload_functions_tag>;

inline constexpr std::size_t resource_kind_count = enum_names<resource_kind>::values.size();

template <resource_kind K>
struct unit_of_t;
template <> struct unit_of_t<resource_kind::cpu> { using type = millicores; };
template <> struct unit_of_t<resource_kind::memory> { using type = bytes; };
template <> struct unit_of_t<resource_kind::disk_bandwidth> { using type = bytes_per_second; };
template <> struct unit_of_t<resource_kind::disk_iops> { using type = ops_per_second; };
template <> struct unit_of_t<resource_kind::net_bandwidth> { using type = bytes_per_second; };
template <> struct unit_of_t<resource_kind::net_pps> { using type = packets_per_second; };
template <> struct unit_of_t<resource_kind::llc> { using type = cache_ways; };
template <> struct unit_of_t<resource_kind::memory_bandwidth> { using type = megabytes_per_second; };
template <> struct unit_of_t<resource_kind::offload_function> { using type = offload_functions; };
template <resource_kind K>
using unit_of = typename unit_of_t<K>::type;

// The symbol of a kind's unit ("millicores", "bytes", ...).
[[nodiscard]] constexpr std::string_view unit_symbol(resource_kind k) noexcept {
  switch (k) {
    case resource_kind::cpu: return millicores::symbol();
    case resource_kind::memory: return bytes::symbol();
    case resource_kind::disk_bandwidth: return bytes_per_second::symbol();
    case resource_kind::disk_iops: return ops_per_second::symbol();
    case resource_kind::net_bandwidth: return bytes_per_second::symbol();
    case resource_kind::net_pps: return packets_per_second::symbol();
    case resource_kind::llc: return cache_ways::symbol();
    case resource_kind::memory_bandwidth: return megabytes_per_second::symbol();
    case resource_kind::offload_function: return offload_functions::symbol();
  }
  return "?";
}

[[nodiscard]] constexpr std::size_t kind_index(resource_kind k) noexcept { return static_cast<std::size_t>(k); }

// At most one amount per resource kind. A zero amount is the same as none
// (set<K>(0) removes the kind). Cheap to copy (80 bytes, no allocation).
class resource_amounts {
 public:
  template <resource_kind K>
  resource_amounts& set(unit_of<K> v) noexcept {
    return set_count(K, v.count());
  }
  template <resource_kind K>
  [[nodiscard]] unit_of<K> get() const noexcept {
    return unit_of<K>{v_[kind_index(K)]};
  }

  // Generic access: the count in unit_of<k>.
  resource_amounts& set_count(resource_kind k, std::uint64_t count) noexcept {
    v_[kind_index(k)] = count;
    if (count) mask_ |= static_cast<std::uint16_t>(1u << kind_index(k));
    else mask_ &= static_cast<std::uint16_t>(~(1u << kind_index(k)));
    return *this;
  }
  [[nodiscard]] std::uint64_t count(resource_kind k) const noexcept { return v_[kind_index(k)]; }
  [[nodiscard]] bool has(resource_kind k) const noexcept { return mask_ >> kind_index(k) & 1u; }
  [[nodiscard]] bool empty() const noexcept { return mask_ == 0; }
  // Bit i set when kind i has a non-zero amount.
  [[nodiscard]] std::uint16_t mask() const noexcept { return mask_; }

  // Calls f(kind, count) for every kind with a non-zero amount, in kind order.
  template <class F>
  void for_each(F&& f) const {
    for (std::uint16_t m = mask_; m; m &= static_cast<std::uint16_t>(m - 1)) {
      const auto i = static_cast<std::size_t>(__builtin_ctz(m));
      f(static_cast<resource_kind>(i), v_[i]);
    }
  }

  friend bool operator==(const resource_amounts&, const resource_amounts&) = default;

 private:
  std::array<std::uint64_t, resource_kind_count> v_{};
  std::uint16_t mask_ = 0;
};

}  // namespace bulkhead::ledger
