// bulkhead/model/instance.hpp: what a backend reports about a host and its
// instances: capacity, identity, the spec as enforced, raw counters.
//
// Counters are raw and cumulative, as the source gives them, stamped with the
// monotonic time they were read. Turning them into usage is the meters' job
// (bulkhead/accounting); nothing here subtracts.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead {

struct numa_cell {
  std::uint32_t id = 0;
  cpuset cpus;
  bytes memory{0};
  friend bool operator==(const numa_cell&, const numa_cell&) = default;
};

struct host_capacity {
  std::uint32_t cpus = 0;  // logical CPUs
  std::uint32_t sockets = 0;
  std::uint32_t cores_per_socket = 0;
  std::uint32_t threads_per_core = 0;
  std::optional<std::uint32_t> mhz;
  std::string cpu_model;
  bytes memory{0};
  std::vector<numa_cell> numa;
  // True when the source gave no NUMA topology and `numa` was derived by
  // splitting CPUs and memory evenly over the reported node count.
  bool numa_derived = false;
  friend bool operator==(const host_capacity&, const host_capacity&) = default;
};

// Per resource, how it is isolated for one instance. Unset: not applicable.
class isolation_profile {
 public:
  void set(resource_kind r, isolation_mode m) noexcept { modes_[static_cast<std::size_t>(r)] = m; }
  [[nodiscard]] std::optional<isolation_mode> get(resource_kind r) const noexcept {
    return modes_[static_cast<std::size_t>(r)];
  }
  friend bool operator==(const isolation_profile&, const isolation_profile&) = default;

 private:
  std::array<std::optional<isolation_mode>, enum_names<resource_kind>::values.size()> modes_{};
};

struct instance_info {
  instance_id id;
  std::string name;    // a label, never a key; may hold any UTF-8
  std::string source;  // the backend source it came from (URI, root)
  instance_kind kind = instance_kind::vm;
  instance_state state = instance_state::nostate;
  isolation_level isolation = isolation_level::vm;
  isolation_profile modes;
  std::optional<qos_class> qos;
  std::optional<std::string> tenant;
  bool persistent = false;  // has a saved config beside its live state
};

struct disk_counters {
  std::string target;
  knob<operations> read_requests, write_requests;
  knob<bytes> read_bytes, write_bytes;
  knob<operations> errors;
  // Throttling, where the source counts it (offload cards).
  knob<operations> throttled_requests;
  knob<nanoseconds> throttled_time;
  // Flushes and the time requests spent in the block layer, where the source
  // counts them (libvirt block.<n>.fl.reqs, rd.times, wr.times, fl.times).
  knob<operations> flush_requests;
  knob<nanoseconds> read_time, write_time, flush_time;
};

struct interface_counters {
  std::string mac;
  std::string target;
  knob<bytes> rx_bytes, tx_bytes;
  knob<packets> rx_packets, tx_packets;
  knob<packets> rx_errors, tx_errors, rx_drops, tx_drops;
  knob<packets> throttled_packets;
  knob<nanoseconds> throttled_time;
};

// resctrl monitoring of one L3 domain (mon_data/mon_L3_XX,
// Documentation/arch/x86/resctrl.rst). A value the kernel reports as
// "Unavailable" is left unset.
struct cache_monitor_sample {
  std::uint32_t domain_id = 0;
  knob<bytes> llc_occupancy;  // a gauge: bytes of L3 held now
  knob<bytes> mbm_total;      // cumulative bytes of memory traffic
  knob<bytes> mbm_local;      // cumulative bytes to the local NUMA node
};

struct usage_sample {
  mono_time read_at{};  // monotonic time of the read
  wall_time wall{};     // wall-clock time of the read, for calendar buckets
  knob<nanoseconds> cpu_time, cpu_user, cpu_system;
  std::vector<nanoseconds> vcpu_time;  // index = vCPU number
  knob<std::uint64_t> cpu_nr_periods, cpu_nr_throttled;
  knob<nanoseconds> cpu_throttled_time;
  knob<bytes> memory_current;  // balloon current (VM) or memory.current (cgroup)
  knob<bytes> memory_rss;
  knob<bytes> memory_available;  // balloon: what the guest sees
  knob<std::uint64_t> memory_oom_events;  // memory.events oom / oom_kill
  std::vector<disk_counters> disks;
  std::vector<interface_counters> interfaces;
  std::vector<cache_monitor_sample> cache_monitors;  // resctrl only
  // Per vCPU (index = vCPU number), where the source counts them: libvirt's
  // vcpu.<n>.wait and vcpu.<n>.delay, the host scheduler's wait and run-queue
  // delay of the vCPU's thread (ns, cumulative).
  std::vector<nanoseconds> vcpu_wait;
  std::vector<nanoseconds> vcpu_delay;
};

// One instance as read: identity, the spec as enforced now, its counters.
struct instance_reading {
  instance_info info;
  quota_spec enforced;
  usage_sample usage;
  // Knobs this backend cannot read or set for this instance ("cpu.weight",
  // "memory.high"), so tools can say "unsupported" instead of "unlimited".
  std::vector<std::string> unsupported;
  // Parts that could not be read (a stats call refused); the rest is valid.
  std::vector<error> partial;
};

struct instance_failure {
  std::optional<bulkhead::uuid> uuid;  // unset when the source could not tell
  std::string name;
  error why;
};

// A whole host as read from one source. A failure of one instance never hides
// the others: it is listed in `failures` and the rest are in `instances`.
struct host_reading {
  std::string source;
  std::vector<instance_reading> instances;
  std::vector<instance_failure> failures;
  // Set when the source itself failed part-way (a lost connection): what was
  // read before is still in `instances`.
  std::optional<error> source_error;
};

}  // namespace bulkhead
