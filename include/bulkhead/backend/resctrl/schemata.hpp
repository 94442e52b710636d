// bulkhead/backend/resctrl/schemata.hpp: resctrl's info/ files and schemata
// (Documentation/arch/x86/resctrl.rst; since 6.14
// Documentation/filesystems/resctrl.rst) from text the caller hands in, and
// the placement of capacity bitmasks (header code; the backend reads and
// writes the files, bulkhead/backend/resctrl/backend.hpp).
//
// Schemata lines are "L3:<id>=<cbm>;..." (CDP: L3DATA and L3CODE) and
// "MB:<id>=<percent or MBps>"; cache ids may have gaps; reads may pad names
// and values with spaces ("    MB:0=2048;1=  16") and masks with zeros.
// The mask placement policy is the one described in backend.hpp (apply()).
//
// Thread-safety: values and pure functions.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulkhead/error.hpp"

namespace bulkhead::resctrl {

// --- info/ -----------------------------------------------------------------------
struct cache_info {
  std::string resource;           // "L3", "L3CODE", "L3DATA", "L2"
  std::uint64_t cbm_mask = 0;     // all ways: "100%"
  std::uint32_t min_cbm_bits = 1;
  std::uint32_t num_closids = 0;
  std::uint64_t shareable_bits = 0;  // ways hardware (I/O) may also use
  bool sparse_masks = false;         // non-contiguous masks allowed
  [[nodiscard]] std::uint32_t ways() const noexcept { return static_cast<std::uint32_t>(std::popcount(cbm_mask)); }
  friend bool operator==(const cache_info&, const cache_info&) = default;
};
struct mb_info {
  std::uint32_t min_bandwidth = 0;   // percent
  std::uint32_t bandwidth_gran = 1;  // percent
  std::uint32_t num_closids = 0;
  bool delay_linear = true;
  friend bool operator==(const mb_info&, const mb_info&) = default;
};
struct mon_info {
  std::uint32_t num_rmids = 0;
  std::vector<std::string> features;  // llc_occupancy, mbm_total_bytes, mbm_local_bytes ...
  friend bool operator==(const mon_info&, const mon_info&) = default;
};
struct info {
  std::vector<cache_info> caches;
  std::optional<mb_info> mb;
  std::optional<mon_info> mon;
  bool cdp = false;       // L3CODE and L3DATA instead of L3
  bool mba_mbps = false;  // MB values are MBps (mount option mba_MBps)
  // The smallest num_closids of the control resources (the kernel's limit).
  [[nodiscard]] std::uint32_t num_closids() const noexcept;
  [[nodiscard]] const cache_info* cache(std::string_view resource) const noexcept;
};

// --- schemata ----------------------------------------------------------------------
struct schemata_line {
  std::string resource;  // "L3", "L3DATA", "MB" ...
  std::vector<std::pair<std::uint32_t, std::uint64_t>> values;  // (domain id, value), file order
  [[nodiscard]] const std::uint64_t* find(std::uint32_t domain) const noexcept {
    for (const auto& v : values)
      if (v.first == domain) return &v.second;
    return nullptr;
  }
  friend bool operator==(const schemata_line&, const schemata_line&) = default;
};
using schemata = std::vector<schemata_line>;

// True for resources whose values are capacity bitmasks (hex): L2*, L3*.
[[nodiscard]] bool is_cache(std::string_view resource) noexcept;
// Parses a schemata file (padding tolerated). `what` names it in errors.
[[nodiscard]] result<schemata> parse_schemata(std::string_view text, std::string_view what = "schemata");
// "L3:0=7f0;2=7f0" (masks in hex, no padding), "MB:0=50".
[[nodiscard]] std::string format_schemata_line(const schemata_line& line);
[[nodiscard]] const schemata_line* find_line(const schemata& s, std::string_view resource) noexcept;

// --- capacity bitmasks -----------------------------------------------------------------
[[nodiscard]] constexpr bool cbm_contiguous(std::uint64_t m) noexcept {
  if (m == 0) return false;
  const auto low = m >> std::countr_zero(m);
  return (low & (low + 1)) == 0;
}
// Within cbm_mask, at least min_cbm_bits set, contiguous unless sparse
// masks are allowed. `what` names the mask in errors.
[[nodiscard]] result<void> check_cbm(std::uint64_t mask, const cache_info& info, std::string_view what);

// How the ways of one cache domain are used by everybody but the group being
// placed.
struct cbm_usage {
  std::uint64_t exclusive = 0;  // held by exclusive or pseudo-locked groups
  std::uint64_t shared = 0;     // held by other shareable groups (not the default group)
  // Shareable groups and the default group, each with its mask: an exclusive
  // placement must shrink those it overlaps.
  struct holder {
    std::string group;  // "" = the default group
    std::uint64_t mask = 0;
  };
  std::vector<holder> shrinkable;
};
struct cbm_choice {
  std::uint64_t mask = 0;
  std::vector<cbm_usage::holder> shrunk;  // holders with their new masks
};
// Chooses the mask of a group that wants `ways` ways of one domain, keeping
// `current` when it still fits (the policy in the header comment). Errors:
// out_of_range for a way count the cache cannot give, insufficient_capacity
// when nothing fits.
[[nodiscard]] result<cbm_choice> choose_cbm(const cache_info& info, std::uint32_t ways, bool exclusive,
                                            std::uint64_t current, const cbm_usage& usage, std::string_view what);

}  // namespace bulkhead::resctrl

#include "bulkhead/backend/resctrl/detail/schemata_impl.hpp"
