// bulkhead/model/quota.hpp: quota_spec, one vocabulary for every backend.
//
// Knob semantics: every knob is knob<T> = std::optional<T>.
//   - In a desired spec, an unset knob is not managed: apply() leaves it alone
//     and drift ignores it.
//   - In a spec read back from a backend, an unset knob is one the backend
//     does not have for this instance (the reading lists it as unsupported);
//     a knob with no limit is set to `unlimited`, never left unset.
// Quantities are in base units (bytes, bytes/s, ops/s, microseconds for CFS);
// backends convert at their boundary (libvirt KiB and kilobytes/s, cgroup
// files, card registers).
//
// validate() checks a spec once, before anything is applied, and names the
// field and the bad value ("cpu.shares: 1 is outside 2..262144").
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead {

template <class T>
using knob = std::optional<T>;

struct vcpu_pin {
  std::uint32_t vcpu = 0;
  cpuset cpus;
  friend bool operator==(const vcpu_pin&, const vcpu_pin&) = default;
};

// Kernel ranges (Documentation/admin-guide/cgroup-v1 and cgroup-v2.rst,
// Documentation/scheduler/sched-bwc.rst).
inline constexpr std::uint64_t cpu_shares_min = 2;
inline constexpr std::uint64_t cpu_shares_max = 262144;
inline constexpr std::uint64_t cpu_weight_min = 1;
inline constexpr std::uint64_t cpu_weight_max = 10000;
inline constexpr microseconds cfs_period_min{1000};
inline constexpr microseconds cfs_period_max{1000000};
inline constexpr microseconds cfs_quota_min{1000};
// libvirt caps <quota> at 17592186044415 us (virCgroupSetCpuCfsQuota).
inline constexpr microseconds cfs_quota_max{17592186044415};
inline constexpr std::uint64_t blkio_weight_min = 10;   // v1 blkio.weight / libvirt blkiotune
inline constexpr std::uint64_t blkio_weight_max = 1000;
inline constexpr std::uint64_t io_weight_min = 1;        // v2 io.weight
inline constexpr std::uint64_t io_weight_max = 10000;

struct cpu_spec {
  knob<std::uint32_t> vcpus;      // online vCPUs (libvirt <vcpu current=...>)
  knob<std::uint32_t> max_vcpus;  // libvirt <vcpu>
  knob<millicores> request;       // guaranteed share, used for admission only
  knob<std::uint64_t> shares;     // libvirt <shares>, cgroup v1 cpu.shares
  knob<std::uint64_t> weight;     // cgroup v2 cpu.weight
  // CFS bandwidth. For libvirt the quota applies to each vCPU thread
  // (<cputune><quota>); for a cgroup, to the whole group (cpu.max).
  knob<microseconds> period;
  knob<limit<microseconds>> quota;
  knob<microseconds> emulator_period;
  knob<limit<microseconds>> emulator_quota;
  knob<microseconds> burst;  // cgroup v2 cpu.max.burst
  knob<std::vector<vcpu_pin>> vcpu_pins;
  knob<cpuset> emulator_pin;
  knob<cpuset> cpus;  // cpuset.cpus of a task's group
  knob<cpuset> mems;  // cpuset.mems of a task's group
  friend bool operator==(const cpu_spec&, const cpu_spec&) = default;
};

struct numa_tune {
  std::string mode;  // libvirt: strict, preferred, interleave, restrictive
  cpuset nodeset;
  friend bool operator==(const numa_tune&, const numa_tune&) = default;
};

struct memory_spec {
  knob<bytes> max;      // libvirt <memory> (maximum)
  knob<bytes> current;  // libvirt <currentMemory>
  knob<bytes> request;  // guaranteed amount, used for admission only
  knob<limit<bytes>> hard_limit;       // memtune hard_limit; memory.max; v1 memory.limit_in_bytes
  knob<limit<bytes>> soft_limit;       // memtune soft_limit; v1 memory.soft_limit_in_bytes
  knob<limit<bytes>> swap_hard_limit;  // memtune swap_hard_limit
  knob<limit<bytes>> high;             // cgroup v2 memory.high
  knob<bytes> min;                     // cgroup v2 memory.min
  knob<bytes> low;                     // cgroup v2 memory.low
  knob<numa_tune> numa;
  friend bool operator==(const memory_spec&, const memory_spec&) = default;
};

// One disk (libvirt target "vda") or block device (cgroup "MAJ:MIN").
// In libvirt, total_* and read_*/write_* of one kind are mutually exclusive.
struct disk_spec {
  std::string target;
  knob<limit<bytes_per_second>> total_bytes_sec, read_bytes_sec, write_bytes_sec;
  knob<limit<ops_per_second>> total_iops_sec, read_iops_sec, write_iops_sec;
  // Burst ceilings (libvirt *_max, QEMU throttling "bps_max").
  knob<limit<bytes_per_second>> total_bytes_sec_max, read_bytes_sec_max, write_bytes_sec_max;
  knob<limit<ops_per_second>> total_iops_sec_max, read_iops_sec_max, write_iops_sec_max;
  knob<std::uint64_t> weight;  // per-device io.weight / blkio weight_device
  friend bool operator==(const disk_spec&, const disk_spec&) = default;
};

// One direction of an interface's bandwidth (libvirt <inbound>/<outbound>,
// an offload card function's rx/tx limiter).
struct direction_bandwidth {
  limit<bytes_per_second> average = unlimited;
  knob<bytes_per_second> peak;
  knob<bytes> burst;
  knob<bytes_per_second> floor;  // libvirt inbound only
  knob<limit<packets_per_second>> packets;  // offload cards only
  friend bool operator==(const direction_bandwidth&, const direction_bandwidth&) = default;
};

struct interface_spec {
  std::string mac;     // the key: "52:54:00:12:34:56", lower case
  std::string target;  // host-side name (vnet0), informative
  knob<direction_bandwidth> inbound;
  knob<direction_bandwidth> outbound;
  friend bool operator==(const interface_spec&, const interface_spec&) = default;
};

// resctrl cache allocation (Documentation/arch/x86/resctrl.rst).
struct cache_allocation {
  std::uint32_t cache_id = 0;
  std::uint64_t mask = 0;  // capacity bitmask
  friend bool operator==(const cache_allocation&, const cache_allocation&) = default;
};
struct llc_spec {
  cache_ways ways{0};      // how many ways; masks derived when allocations is empty
  bool exclusive = false;  // LSE: ways nobody else may use
  std::vector<cache_allocation> allocations;  // explicit per-cache masks (read back)
  // With code/data prioritisation (CDP) on, `allocations` are the data masks
  // (L3DATA) and these the code masks (L3CODE). Empty: same as `allocations`.
  std::vector<cache_allocation> code_allocations;
  friend bool operator==(const llc_spec&, const llc_spec&) = default;
};
struct bandwidth_allocation {
  std::uint32_t domain_id = 0;
  std::uint64_t value = 0;  // percent, or MBps with mba_MBps
  friend bool operator==(const bandwidth_allocation&, const bandwidth_allocation&) = default;
};
struct memory_bandwidth_spec {
  bool mbps = false;  // values are MBps (mount option mba_MBps), else percent
  std::vector<bandwidth_allocation> allocations;
  friend bool operator==(const memory_bandwidth_spec&, const memory_bandwidth_spec&) = default;
};

// libvirt <cputune><cachetune vcpus=...><cache id level type size unit/>:
// a cache allocation by size for a set of vCPUs (formatdomain, "CPU Tuning").
struct cache_tune_entry {
  std::uint32_t cache_id = 0;
  std::uint32_t level = 3;
  std::string type;  // both, code, data
  bytes size{0};
  friend bool operator==(const cache_tune_entry&, const cache_tune_entry&) = default;
};
struct cache_tune {
  cpuset vcpus;
  std::vector<cache_tune_entry> caches;
  friend bool operator==(const cache_tune&, const cache_tune&) = default;
};

struct quota_spec {
  cpu_spec cpu;
  memory_spec memory;
  knob<std::uint64_t> blkio_weight;  // libvirt <blkiotune><weight>, v1 blkio.weight, v2 io.weight default
  std::vector<disk_spec> disks;
  std::vector<interface_spec> interfaces;
  knob<llc_spec> llc;
  knob<memory_bandwidth_spec> memory_bandwidth;
  knob<std::vector<cache_tune>> cache_tunes;  // libvirt cachetune, read only
  friend bool operator==(const quota_spec&, const quota_spec&) = default;

  [[nodiscard]] const disk_spec* disk(std::string_view target) const noexcept {
    for (const auto& d : disks)
      if (d.target == target) return &d;
    return nullptr;
  }
  [[nodiscard]] const interface_spec* interface(std::string_view mac) const noexcept {
    for (const auto& i : interfaces)
      if (i.mac == mac) return &i;
    return nullptr;
  }
};

// The CPU ceiling of a VM in millicores: per-vCPU quota/period times vCPUs.
// Unlimited when no quota is set; nullopt when the spec cannot tell (no vCPU
// count, no period).
[[nodiscard]] inline std::optional<limit<millicores>> vm_cpu_cap(const cpu_spec& c) {
  if (!c.quota || c.quota->is_unlimited()) return limit<millicores>{unlimited};
  if (!c.period || !c.vcpus) return std::nullopt;
  auto per = to_millicores(c.quota->value(), *c.period);
  if (!per) return std::nullopt;
  auto total = per->checked_mul(*c.vcpus);
  if (!total) return std::nullopt;
  return limit<millicores>{*total};
}

namespace detail {
inline std::string range_msg(const std::string& field, std::uint64_t v, std::uint64_t lo, std::uint64_t hi) {
  return field + ": " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi);
}
inline bool valid_mac(std::string_view m) {
  if (m.size() != 17) return false;
  for (std::size_t i = 0; i < 17; ++i) {
    if (i % 3 == 2) {
      if (m[i] != ':') return false;
    } else if (!((m[i] >= '0' && m[i] <= '9') || (m[i] >= 'a' && m[i] <= 'f'))) {
      return false;
    }
  }
  return true;
}
}  // namespace detail

// Checks every rule that can be checked without a backend. The first broken
// rule is returned; its message names the field and the bad value.
[[nodiscard]] inline result<void> validate(const quota_spec& s) {
  using bulkhead::detail::range_msg;
  const auto bad = [](errc c, std::string m) { return fail(c, std::move(m)); };
  const auto& c = s.cpu;
  if (c.vcpus && *c.vcpus == 0) return bad(errc::out_of_range, "cpu.vcpus: 0; an instance needs at least 1");
  if (c.max_vcpus && *c.max_vcpus == 0) return bad(errc::out_of_range, "cpu.max_vcpus: 0; an instance needs at least 1");
  if (c.vcpus && c.max_vcpus && *c.vcpus > *c.max_vcpus)
    return bad(errc::out_of_range, "cpu.vcpus: " + std::to_string(*c.vcpus) + " exceeds cpu.max_vcpus " +
                                       std::to_string(*c.max_vcpus));
  if (c.shares && (*c.shares < cpu_shares_min || *c.shares > cpu_shares_max))
    return bad(errc::out_of_range, range_msg("cpu.shares", *c.shares, cpu_shares_min, cpu_shares_max));
  if (c.weight && (*c.weight < cpu_weight_min || *c.weight > cpu_weight_max))
    return bad(errc::out_of_range, range_msg("cpu.weight", *c.weight, cpu_weight_min, cpu_weight_max));
  const auto check_period = [&](const knob<microseconds>& p, const char* name) -> result<void> {
    if (p && (*p < cfs_period_min || *p > cfs_period_max))
      return fail(errc::out_of_range, std::string(name) + ": " + std::to_string(p->count()) +
                                          " us is outside 1000..1000000 us");
    return {};
  };
  const auto check_quota = [&](const knob<limit<microseconds>>& q, const char* name) -> result<void> {
    if (q && q->is_bounded() && (q->value() < cfs_quota_min || q->value() > cfs_quota_max))
      return fail(errc::out_of_range, std::string(name) + ": " + std::to_string(q->value().count()) +
                                          " us is outside 1000..17592186044415 us (or unlimited)");
    return {};
  };
  if (auto r = check_period(c.period, "cpu.period"); !r) return r;
  if (auto r = check_period(c.emulator_period, "cpu.emulator_period"); !r) return r;
  if (auto r = check_quota(c.quota, "cpu.quota"); !r) return r;
  if (auto r = check_quota(c.emulator_quota, "cpu.emulator_quota"); !r) return r;
  if (c.burst && c.burst->count() < 0)
    return bad(errc::out_of_range, "cpu.burst: " + std::to_string(c.burst->count()) + " us is negative");
  if (c.vcpu_pins) {
    std::set<std::uint32_t> seen;
    for (const auto& p : *c.vcpu_pins) {
      const std::string f = "cpu.vcpu_pins[vcpu " + std::to_string(p.vcpu) + "]";
      if (!seen.insert(p.vcpu).second) return bad(errc::invalid_argument, f + ": vCPU pinned twice");
      if (p.cpus.empty()) return bad(errc::invalid_argument, f + ": empty cpu set");
      const auto limit_vcpus = c.max_vcpus ? c.max_vcpus : c.vcpus;
      if (limit_vcpus && p.vcpu >= *limit_vcpus)
        return bad(errc::out_of_range, f + ": no such vCPU (the instance has " + std::to_string(*limit_vcpus) + ")");
    }
  }
  if (c.emulator_pin && c.emulator_pin->empty()) return bad(errc::invalid_argument, "cpu.emulator_pin: empty cpu set");
  if (c.cpus && c.cpus->empty()) return bad(errc::invalid_argument, "cpu.cpus: empty cpu set");

  const auto& m = s.memory;
  if (m.max && m.max->count() == 0) return bad(errc::out_of_range, "memory.max: 0 bytes");
  if (m.current && m.max && *m.current > *m.max)
    return bad(errc::out_of_range, "memory.current: " + std::to_string(m.current->count()) +
                                       " bytes exceeds memory.max " + std::to_string(m.max->count()));
  if (m.hard_limit && m.soft_limit && m.hard_limit->is_bounded() && m.soft_limit->is_bounded() &&
      m.soft_limit->value() > m.hard_limit->value())
    return bad(errc::out_of_range, "memory.soft_limit: above memory.hard_limit " +
                                       std::to_string(m.hard_limit->value().count()) + " bytes");
  if (m.hard_limit && m.swap_hard_limit && m.hard_limit->is_bounded() && m.swap_hard_limit->is_bounded() &&
      m.swap_hard_limit->value() < m.hard_limit->value())
    return bad(errc::out_of_range, "memory.swap_hard_limit: " + std::to_string(m.swap_hard_limit->value().count()) +
                                       " bytes is below memory.hard_limit (libvirt requires swap_hard_limit >= hard_limit)");
  if (m.min && m.low && *m.min > *m.low)
    return bad(errc::out_of_range, "memory.min: above memory.low");
  if (m.numa) {
    const auto& mode = m.numa->mode;
    if (mode != "strict" && mode != "preferred" && mode != "interleave" && mode != "restrictive")
      return bad(errc::invalid_argument, "memory.numa.mode: " + bulkhead::detail::quote(mode) +
                                             " is not one of: strict, preferred, interleave, restrictive");
    if (m.numa->nodeset.empty()) return bad(errc::invalid_argument, "memory.numa.nodeset: empty");
  }
  if (s.blkio_weight && (*s.blkio_weight < blkio_weight_min || *s.blkio_weight > blkio_weight_max))
    return bad(errc::out_of_range, range_msg("blkio_weight", *s.blkio_weight, blkio_weight_min, blkio_weight_max));

  std::set<std::string> targets;
  for (const auto& d : s.disks) {
    const std::string f = "disks[" + bulkhead::detail::quote(d.target) + "]";
    if (d.target.empty()) return bad(errc::invalid_argument, "disks[]: empty target");
    if (!targets.insert(d.target).second) return bad(errc::invalid_argument, f + ": listed twice");
    const auto set = [](const auto& k) { return k && k->is_bounded(); };
    if (set(d.total_bytes_sec) && (set(d.read_bytes_sec) || set(d.write_bytes_sec)))
      return bad(errc::invalid_argument, f + ": total_bytes_sec cannot be combined with read/write_bytes_sec");
    if (set(d.total_iops_sec) && (set(d.read_iops_sec) || set(d.write_iops_sec)))
      return bad(errc::invalid_argument, f + ": total_iops_sec cannot be combined with read/write_iops_sec");
    const auto burst_ok = [&](const auto& base, const auto& mx, const char* name) -> result<void> {
      if (set(mx) && (!set(base) || mx->value() < base->value()))
        return fail(errc::invalid_argument, f + ": " + name + "_max needs " + name + " set and no lower than it");
      return {};
    };
    if (auto r = burst_ok(d.total_bytes_sec, d.total_bytes_sec_max, "total_bytes_sec"); !r) return r;
    if (auto r = burst_ok(d.read_bytes_sec, d.read_bytes_sec_max, "read_bytes_sec"); !r) return r;
    if (auto r = burst_ok(d.write_bytes_sec, d.write_bytes_sec_max, "write_bytes_sec"); !r) return r;
    if (auto r = burst_ok(d.total_iops_sec, d.total_iops_sec_max, "total_iops_sec"); !r) return r;
    if (auto r = burst_ok(d.read_iops_sec, d.read_iops_sec_max, "read_iops_sec"); !r) return r;
    if (auto r = burst_ok(d.write_iops_sec, d.write_iops_sec_max, "write_iops_sec"); !r) return r;
    if (d.weight && (*d.weight < io_weight_min || *d.weight > io_weight_max))
      return bad(errc::out_of_range, range_msg(f + ".weight", *d.weight, io_weight_min, io_weight_max));
  }
  std::set<std::string> macs;
  for (const auto& i : s.interfaces) {
    const std::string f = "interfaces[" + bulkhead::detail::quote(i.mac) + "]";
    if (!bulkhead::detail::valid_mac(i.mac))
      return bad(errc::invalid_argument, f + ": not a lower-case MAC address (aa:bb:cc:dd:ee:ff)");
    if (!macs.insert(i.mac).second) return bad(errc::invalid_argument, f + ": listed twice");
    for (const auto* dir : {&i.inbound, &i.outbound}) {
      if (!*dir) continue;
      const auto& b = **dir;
      const char* dn = dir == &i.inbound ? ".inbound" : ".outbound";
      if (b.average.is_unlimited() && (b.peak || b.burst))
        return bad(errc::invalid_argument, f + dn + ": peak or burst given without an average");
      if (b.average.is_bounded() && b.average.value().count() == 0)
        return bad(errc::out_of_range, f + dn + ".average: 0; use unlimited for no limit");
      if (b.peak && b.average.is_bounded() && *b.peak < b.average.value())
        return bad(errc::out_of_range, f + dn + ".peak: " + std::to_string(b.peak->count()) +
                                           " bytes/s is below the average");
      if (b.floor && dir == &i.outbound) return bad(errc::invalid_argument, f + ".outbound.floor: libvirt allows floor on inbound only");
    }
  }
  if (s.llc) {
    if (s.llc->ways.count() == 0 && s.llc->allocations.empty())
      return bad(errc::out_of_range, "llc.ways: 0; give a number of ways or explicit masks");
    for (const auto& a : s.llc->allocations)
      if (a.mask == 0) return bad(errc::invalid_argument, "llc.allocations[cache " + std::to_string(a.cache_id) + "]: empty mask");
    for (const auto& a : s.llc->code_allocations)
      if (a.mask == 0)
        return bad(errc::invalid_argument, "llc.code_allocations[cache " + std::to_string(a.cache_id) + "]: empty mask");
  }
  if (s.memory_bandwidth && !s.memory_bandwidth->mbps)
    for (const auto& a : s.memory_bandwidth->allocations)
      if (a.value == 0 || a.value > 100)
        return bad(errc::out_of_range, range_msg("memory_bandwidth[domain " + std::to_string(a.domain_id) + "]", a.value, 1, 100));
  return {};
}

}  // namespace bulkhead
