// bulkhead/backend/task_id.hpp: the identity of a co-located task.
//
// A task is a group of processes under a cgroup parent (and, when it has a
// cache allocation, a resctrl group of the same name). Its identity:
//   - uuid: the group name itself when the name is a UUID (a control plane
//     that has its own ids names groups after them); otherwise the RFC 4122
//     version-5 (SHA-1, name-based) UUID of the name in bulkhead's task
//     namespace. The same name gives the same UUID on every host, in every
//     run, and in both backends, so a task's cgroup and resctrl group join up.
//     The cgroup parent is not part of it: one backend manages one parent.
//   - incarnation: the inode number of the group's directory. Removing and
//     re-creating the group (a restart) gives a new directory and so a new
//     incarnation; cgroupfs and resctrl (kernfs) do not reuse inode numbers
//     while the system is up.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid.hpp>

#include "bulkhead/model/ids.hpp"

namespace bulkhead {

// bulkhead's namespace for name-based task UUIDs. Fixed forever: changing it
// would change every task's identity.
inline constexpr std::array<std::uint8_t, 16> task_uuid_namespace{
    0x4a, 0xea, 0x9a, 0xea, 0x2b, 0xa3, 0x48, 0xae, 0xa2, 0x7c, 0x89, 0xf8, 0x2b, 0x51, 0x39, 0x5f};

[[nodiscard]] inline uuid task_uuid(std::string_view group_name) {
  if (group_name.size() == 36 || group_name.size() == 32)
    if (auto u = uuid::parse(group_name)) return *u;
  boost::uuids::uuid ns{};
  std::copy(task_uuid_namespace.begin(), task_uuid_namespace.end(), ns.begin());
  const boost::uuids::name_generator_sha1 gen(ns);
  const boost::uuids::uuid u = gen(group_name.data(), group_name.size());
  std::array<std::uint8_t, 16> b{};
  std::copy(u.begin(), u.end(), b.begin());
  return uuid{b};
}

}  // namespace bulkhead
