// bulkhead/backend/cgroup/detail/mounts_impl.hpp (internal): hierarchy
// detection from a mount table; the contract is in
// bulkhead/backend/cgroup/mounts.hpp.
#pragma once

#include "bulkhead/backend/cgroup/mounts.hpp"

#include <algorithm>
#include <set>

namespace bulkhead::cgroup {

namespace detail {
// v1 controller names as they appear in a cgroup mount's options
// (Documentation/admin-guide/cgroup-v1/cgroups.rst and the controllers' docs).
inline constexpr std::string_view v1_controllers[] = {"cpu",        "cpuacct", "cpuset", "memory", "blkio",
                                               "devices",    "freezer", "net_cls", "net_prio", "perf_event",
                                               "hugetlb",    "pids",    "rdma",   "misc",   "debug"};
}  // namespace detail

inline result<mounts> mounts::make(const std::vector<mount_entry>& table) {
  mounts out;
  std::set<std::string> seen;
  bool v1_with_controllers = false;
  bool has_v2 = false;
  for (const auto& e : table) {
    hierarchy h;
    h.mount_point = e.mount_point;
    std::string key;
    if (e.fstype == "cgroup2") {
      h.v2 = true;
      key = "cgroup2";
    } else if (e.fstype == "cgroup") {
      for (const auto& o : e.options)
        if (std::find(std::begin(detail::v1_controllers), std::end(detail::v1_controllers), o) != std::end(detail::v1_controllers) &&
            std::find(h.controllers.begin(), h.controllers.end(), o) == h.controllers.end())
          h.controllers.push_back(o);
      std::sort(h.controllers.begin(), h.controllers.end());
      h.name = e.option_value("name").value_or("");
      key = "cgroup:" + h.name + ":";
      for (const auto& c : h.controllers) key += c + ",";
    } else {
      continue;
    }
    if (!seen.insert(key).second) continue;  // the same hierarchy mounted again
    if (h.v2) has_v2 = true;
    else if (!h.controllers.empty()) v1_with_controllers = true;
    out.hierarchies.push_back(std::move(h));
  }
  if (out.hierarchies.empty())
    return fail(errc::not_found, "the mount table has no cgroup or cgroup2 mount (is cgroupfs mounted?)");
  if (!has_v2 && !v1_with_controllers)
    return fail(errc::unsupported, "the mount table has only named cgroup v1 hierarchies without controllers");
  out.layout = has_v2 ? (v1_with_controllers ? layout::hybrid : layout::unified) : layout::legacy;
  return out;
}

inline result<mounts> mounts::parse(std::string_view mount_table_text, std::string_view what) {
  auto t = parse_mount_table(mount_table_text, what);
  if (!t) return fail(std::move(t.error()));
  auto m = make(*t);
  if (!m) return fail(std::move(m.error()).in(std::string(what)));
  return m;
}

}  // namespace bulkhead::cgroup
