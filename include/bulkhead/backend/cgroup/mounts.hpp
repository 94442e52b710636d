// bulkhead/backend/cgroup/mounts.hpp: which cgroup hierarchy serves which
// controller, from a mount table the caller hands in (header code).
//
// The layouts (Documentation/admin-guide/cgroup-v2.rst, "Mounting", and
// cgroup-v1/cgroups.rst):
//   - unified: only cgroup2 is mounted; every controller is v2;
//   - legacy:  only v1 hierarchies (one per controller, or co-mounted such
//              as cpu,cpuacct);
//   - hybrid:  v1 controller hierarchies plus a cgroup2 mount (systemd's
//              /sys/fs/cgroup/unified).
//
// Thread-safety: values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/backend/mount_table.hpp"
#include "bulkhead/error.hpp"

namespace bulkhead::cgroup {

enum class layout : std::uint8_t { unified, legacy, hybrid };

[[nodiscard]] constexpr std::string_view to_string(layout l) noexcept {
  switch (l) {
    case layout::unified: return "unified";
    case layout::legacy: return "legacy";
    case layout::hybrid: return "hybrid";
  }
  return "?";
}

// The controllers bulkhead manages. `io` is v2's io and v1's blkio;
// `cpuacct` is v1's cpuacct and, in v2, the core cpu.stat usage fields.
enum class controller : std::uint8_t { cpu, cpuacct, cpuset, memory, io };
inline constexpr std::array all_controllers{controller::cpu, controller::cpuacct, controller::cpuset,
                                            controller::memory, controller::io};

[[nodiscard]] constexpr std::string_view to_string(controller c) noexcept {
  switch (c) {
    case controller::cpu: return "cpu";
    case controller::cpuacct: return "cpuacct";
    case controller::cpuset: return "cpuset";
    case controller::memory: return "memory";
    case controller::io: return "io";
  }
  return "?";
}

struct hierarchy {
  std::string mount_point;               // absolute, as in the mount table
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: the controllers mounted there ("cpu", "cpuacct"); v2: empty
  std::string name;                      // v1 named hierarchy ("systemd"), else empty
  friend bool operator==(const hierarchy&, const hierarchy&) = default;
};

struct mounts {
  cgroup::layout layout = cgroup::layout::unified;
  // Every cgroup and cgroup2 mount, in table order; a hierarchy mounted
  // twice (a bind mount) is listed once, at its first mount point.
  std::vector<hierarchy> hierarchies;

  [[nodiscard]] const hierarchy* unified() const noexcept {
    for (const auto& h : hierarchies)
      if (h.v2) return &h;
    return nullptr;
  }
  // The v1 hierarchy a controller is bound to ("cpu", "blkio"), if any.
  [[nodiscard]] const hierarchy* v1(std::string_view controller) const noexcept {
    for (const auto& h : hierarchies)
      for (const auto& c : h.controllers)
        if (!h.v2 && c == controller) return &h;
    return nullptr;
  }

  // The hierarchy in use, from a mount table's text (mount_table.hpp).
  // Errors: parse_error for a malformed table, not_found when it has no
  // cgroup mount.
  [[nodiscard]] static result<mounts> parse(std::string_view mount_table_text, std::string_view what = "mount table");
  // The same from a parsed table.
  [[nodiscard]] static result<mounts> make(const std::vector<mount_entry>& table);
};

}  // namespace bulkhead::cgroup

#include "bulkhead/backend/cgroup/detail/mounts_impl.hpp"
