// bulkhead/agent/sources.hpp: the sources an agent reads that need no
// libvirt (cgroup parents, offload cards); libvirt URIs are in
// bulkhead/agent/libvirt.hpp, in the libvirt library. Each returns a
// source_spec whose connect() opens the backend anew (at agent::open() and
// after the source failed). The agent only reads: it never calls apply().
//
// Thread-safety: the specs are values; connect() is called by the agent only.
#pragma once

#include <string>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/api.hpp"
#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/offload/backend.hpp"

namespace bulkhead::agent {

// The task groups beneath options.parent, with the mounts as given.
[[nodiscard]] BULKHEAD_API source_spec cgroup_source(cgroup::options options);

// The task groups beneath `parent` (relative to each hierarchy's mount
// point), with the hierarchies found in the mount table at `mount_table`
// (read again at every connect; "/proc/self/mountinfo" on a host) and looked
// up beneath `fs_root` ("/" on a host). Errors of connect(): the mount
// table's (not_found, parse_error), then cgroup::backend::open's.
[[nodiscard]] BULKHEAD_API source_spec cgroup_host_source(std::string parent, std::string fs_root = "/",
                                             std::string mount_table = "/proc/self/mountinfo");

// Emulated cards from a description file (docs/offload-card.md), on the
// steady clock, re-read at every connect.
[[nodiscard]] BULKHEAD_API source_spec card_source(std::string description_file);

// Offload hardware as Linux shows it beneath `sysfs_root` ("/sys"), with
// the instances of the bindings file (docs/offload.md), re-read at every
// connect.
[[nodiscard]] BULKHEAD_API source_spec card_sysfs_source(std::string sysfs_root, std::string bindings_file);

}  // namespace bulkhead::agent
