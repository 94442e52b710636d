// bulkhead/backend/resctrl/detail/schemata_impl.hpp (internal): schemata and
// info parsing, capacity bitmask placement; the contract is in
// bulkhead/backend/resctrl/schemata.hpp.
//
// Formats: Documentation/arch/x86/resctrl.rst
// ("Schemata files", "Cache Bit Masks", "Memory bandwidth Allocation").
#pragma once

#include "bulkhead/backend/resctrl/schemata.hpp"

#include <algorithm>
#include <limits>

#include "bulkhead/backend/drift.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::resctrl {

inline std::uint32_t info::num_closids() const noexcept {
  std::uint32_t n = std::numeric_limits<std::uint32_t>::max();
  for (const auto& c : caches) n = std::min(n, c.num_closids);
  if (mb) n = std::min(n, mb->num_closids);
  return n == std::numeric_limits<std::uint32_t>::max() ? 0 : n;
}

inline const cache_info* info::cache(std::string_view resource) const noexcept {
  for (const auto& c : caches)
    if (c.resource == resource) return &c;
  return nullptr;
}

inline bool is_cache(std::string_view r) noexcept {
  return r.size() >= 2 && r[0] == 'L' && (r[1] == '2' || r[1] == '3');
}

inline result<schemata> parse_schemata(std::string_view text, std::string_view what) {
  schemata out;
  std::size_t n = 0;
  std::optional<error> err;
  bulkhead::detail::split(text, '\n', [&](std::string_view line) {
    ++n;
    if (err) return;
    line = bulkhead::detail::trim(line);
    if (line.empty()) return;
    const std::string where = std::string(what) + " line " + std::to_string(n);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      err = error(errc::parse_error, where + ": " + bulkhead::detail::quote(line) + " is not \"RESOURCE:id=value;...\"");
      return;
    }
    schemata_line l;
    l.resource = std::string(bulkhead::detail::trim(line.substr(0, colon)));
    const bool hex = is_cache(l.resource);
    bulkhead::detail::split(line.substr(colon + 1), ';', [&](std::string_view item) {
      if (err) return;
      item = bulkhead::detail::trim(item);
      if (item.empty()) return;  // a trailing ';'
      const auto eq = item.find('=');
      if (eq == std::string_view::npos) {
        err = error(errc::parse_error, where + ": " + bulkhead::detail::quote(item) + " is not id=value");
        return;
      }
      auto id = bulkhead::detail::parse_u64(bulkhead::detail::trim(item.substr(0, eq)), where + " domain id");
      if (!id || *id > std::numeric_limits<std::uint32_t>::max()) {
        err = id ? error(errc::out_of_range, where + ": domain id " + bulkhead::detail::quote(item.substr(0, eq)) + " is too large")
                 : id.error();
        return;
      }
      const auto vtext = bulkhead::detail::trim(item.substr(eq + 1));
      auto v = hex ? bulkhead::detail::parse_hex_u64(vtext, where + " " + l.resource + " mask")
                   : bulkhead::detail::parse_u64(vtext, where + " " + l.resource + " value");
      if (!v) {
        err = v.error();
        return;
      }
      for (const auto& [d, x] : l.values)
        if (d == *id) {
          err = error(errc::parse_error, where + ": domain " + std::to_string(d) + " listed twice");
          return;
        }
      l.values.emplace_back(static_cast<std::uint32_t>(*id), *v);
    });
    if (err) return;
    for (const auto& x : out)
      if (x.resource == l.resource) {
        err = error(errc::parse_error, where + ": resource " + bulkhead::detail::quote(l.resource) + " listed twice");
        return;
      }
    out.push_back(std::move(l));
  });
  if (err) return fail(std::move(*err));
  return out;
}

inline std::string format_schemata_line(const schemata_line& line) {
  std::string s = line.resource + ":";
  const bool hex = is_cache(line.resource);
  bool first = true;
  for (const auto& [id, v] : line.values) {
    if (!first) s += ';';
    first = false;
    s += std::to_string(id) + "=";
    s += hex ? mask_text(v).substr(2) : std::to_string(v);
  }
  return s;
}

inline const schemata_line* find_line(const schemata& s, std::string_view resource) noexcept {
  for (const auto& l : s)
    if (l.resource == resource) return &l;
  return nullptr;
}

inline result<void> check_cbm(std::uint64_t mask, const cache_info& info, std::string_view what) {
  const std::string w(what);
  if (mask == 0) return fail(errc::invalid_argument, w + ": empty mask");
  if ((mask & ~info.cbm_mask) != 0)
    return fail(errc::out_of_range, w + ": mask " + mask_text(mask) + " has bits outside " + info.resource +
                                        " cbm_mask " + mask_text(info.cbm_mask));
  if (static_cast<std::uint32_t>(std::popcount(mask)) < info.min_cbm_bits)
    return fail(errc::out_of_range, w + ": mask " + mask_text(mask) + " has " + std::to_string(std::popcount(mask)) +
                                        " bits; " + info.resource + " needs at least min_cbm_bits " +
                                        std::to_string(info.min_cbm_bits));
  if (!info.sparse_masks && !cbm_contiguous(mask))
    return fail(errc::invalid_argument, w + ": mask " + mask_text(mask) +
                                            " is not contiguous (this cache needs all its 1-bits in one block)");
  return {};
}

namespace detail {
inline bool valid_mask(std::uint64_t m, const cache_info& info) {
  return m != 0 && (m & ~info.cbm_mask) == 0 && static_cast<std::uint32_t>(std::popcount(m)) >= info.min_cbm_bits &&
         (info.sparse_masks || cbm_contiguous(m));
}
inline std::uint64_t run_of(std::uint32_t ways, std::uint32_t start) {
  const std::uint64_t ones = ways >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << ways) - 1;
  return ones << start;
}
}  // namespace detail

inline result<cbm_choice> choose_cbm(const cache_info& info, std::uint32_t ways, bool exclusive, std::uint64_t current,
                              const cbm_usage& usage, std::string_view what) {
  const std::string w(what);
  if (ways == 0 || ways > info.ways())
    return fail(errc::out_of_range, w + ": " + std::to_string(ways) + " ways; " + info.resource + " has " +
                                        std::to_string(info.ways()) + " (cbm_mask " + mask_text(info.cbm_mask) + ")");
  if (ways < info.min_cbm_bits)
    return fail(errc::out_of_range, w + ": " + std::to_string(ways) + " ways is below " + info.resource +
                                        " min_cbm_bits " + std::to_string(info.min_cbm_bits));
  const std::uint32_t width = 64 - static_cast<std::uint32_t>(std::countl_zero(info.cbm_mask));
  const auto fits = [&](std::uint64_t m, std::uint64_t allowed) {
    return static_cast<std::uint32_t>(std::popcount(m)) == ways && (m & ~allowed) == 0 && detail::valid_mask(m, info);
  };
  if (!exclusive) {
    const std::uint64_t allowed = info.cbm_mask & ~usage.exclusive;
    if (fits(current, allowed)) return cbm_choice{current, {}};
    std::optional<std::uint64_t> best;
    int best_overlap = std::numeric_limits<int>::max();
    for (std::uint32_t start = 0; start + ways <= width; ++start) {
      const auto m = detail::run_of(ways, start);
      if ((m & ~allowed) != 0) continue;
      const int overlap = std::popcount(m & usage.shared);
      if (overlap < best_overlap) {
        best = m;
        best_overlap = overlap;
      }
    }
    if (!best)
      return fail(errc::insufficient_capacity, w + ": no " + std::to_string(ways) +
                                                   " contiguous ways outside exclusive allocations (free: " +
                                                   mask_text(allowed) + " of " + mask_text(info.cbm_mask) + ")");
    return cbm_choice{*best, {}};
  }
  const std::uint64_t allowed = info.cbm_mask & ~usage.exclusive & ~info.shareable_bits;
  const auto plan = [&](std::uint64_t m, std::vector<cbm_usage::holder>& out) {
    out.clear();
    for (const auto& h : usage.shrinkable) {
      if ((h.mask & m) == 0) continue;
      const auto nm = h.mask & ~m;
      if (!detail::valid_mask(nm, info)) return false;
      out.push_back(cbm_usage::holder{h.group, nm});
    }
    return true;
  };
  std::vector<cbm_usage::holder> shrunk;
  if (fits(current, allowed) && plan(current, shrunk)) return cbm_choice{current, shrunk};
  std::optional<cbm_choice> best;
  for (std::uint32_t start = width >= ways ? width - ways + 1 : 0; start-- > 0;) {
    const auto m = detail::run_of(ways, start);
    if ((m & ~allowed) != 0) continue;
    if (!plan(m, shrunk)) continue;
    if (!best || shrunk.size() < best->shrunk.size()) best = cbm_choice{m, shrunk};
  }
  if (!best)
    return fail(errc::insufficient_capacity,
                w + ": no " + std::to_string(ways) + " contiguous ways for an exclusive allocation (free of exclusive "
                    "groups and of shareable_bits " + mask_text(info.shareable_bits) + ": " + mask_text(allowed) +
                    "; every group it overlaps must keep at least " + std::to_string(info.min_cbm_bits) +
                    " contiguous ways)");
  return *best;
}


}  // namespace bulkhead::resctrl
