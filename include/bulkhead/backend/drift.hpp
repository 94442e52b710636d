// bulkhead/backend/drift.hpp: where the enforced spec drifted from the
// desired one, knob by knob; and the text form of knob values that apply
// reports and drift reports share.
//
// compare(desired, enforced):
//   - a knob unset in `desired` is not managed and is ignored;
//   - a knob set in `desired` and unset in `enforced` (the backend does not
//     have it for this instance, see bulkhead/model/quota.hpp), or named in
//     the reading's `unsupported` list, is reported in `unsupported`;
//   - a knob set in both with different values is reported in `differs`
//     with both values as text ("20000 us", "unlimited", "0-3");
//   - request knobs (cpu.request, memory.request) are admission inputs, not
//     enforced, and are not compared;
//   - cpu.shares and cpu.weight are one scheduler weight on two scales
//     (cgroup v1 / libvirt and cgroup v2). When the enforced spec carries only
//     the other one, the desired value is converted with the kernel's formula
//     below and compared on the enforced knob's scale;
//   - a disk (a cgroup device "MAJ:MIN") that the enforced spec does not list
//     has no limits: a desired bounded limit on it differs from "unlimited".
//
// Knob names are quota_spec field paths: "cpu.quota", "memory.hard_limit",
// "disks['8:16'].read_bytes_sec", "llc.allocations[cache 2]". A reading's
// `unsupported` list may name per-item knobs generically ("disks[].weight")
// or a whole group ("llc"); both match.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead {

// --- cpu.weight <-> cpu.shares -------------------------------------------------
// The kernel's own mapping (kernel/sched/core.c, cpu_weight_write_u64 and
// cpu_weight_read_u64; sched_weight_from_cgroup in kernel/sched/sched.h):
//   shares = round(weight * 1024 / 100)       weight 1..10000 -> shares 10..102400
//   weight = round(shares * 100 / 1024)       clamped to 1..10000
// so cpu.weight 100 (the v2 default) is cpu.shares 1024 (the v1 default) and a
// v2 group written weight w runs with exactly the scheduler weight of a v1
// group written shares_from_weight(w). weight -> shares -> weight is exact over
// 1..10000; shares -> weight -> shares rounds to a multiple of 10.24, and v1
// shares below 5 or above 102400 have no v2 equivalent (clamped).
// (runc and Kubernetes map the full ranges end to end instead,
// weight = 1 + (shares - 2) * 9999 / 262142, so 1024 shares become weight 39,
// not 100; libvirt on v2 writes its <shares> straight into cpu.weight.
// bulkhead uses the kernel's mapping because it preserves the scheduler
// weight, which is what a share means. docs/cgroups.md.)
inline constexpr std::uint64_t cpu_weight_default = 100;
inline constexpr std::uint64_t cpu_shares_default = 1024;

[[nodiscard]] constexpr std::uint64_t cpu_shares_from_weight(std::uint64_t weight) noexcept {
  weight = std::clamp(weight, cpu_weight_min, cpu_weight_max);
  return (weight * 1024 + cpu_weight_default / 2) / cpu_weight_default;
}
[[nodiscard]] constexpr std::uint64_t cpu_weight_from_shares(std::uint64_t shares) noexcept {
  shares = std::clamp(shares, cpu_shares_min, cpu_shares_max);
  return std::clamp((shares * cpu_weight_default + 512) / 1024, cpu_weight_min, cpu_weight_max);
}

// --- text forms of knob values ---------------------------------------------------
[[nodiscard]] inline std::string knob_text(std::uint64_t v) { return std::to_string(v); }
[[nodiscard]] inline std::string knob_text(std::uint32_t v) { return std::to_string(v); }
[[nodiscard]] inline std::string knob_text(bool v) { return v ? "true" : "false"; }
[[nodiscard]] inline std::string knob_text(microseconds v) { return std::to_string(v.count()) + " us"; }
[[nodiscard]] inline std::string knob_text(bytes v) { return std::to_string(v.count()) + " bytes"; }
[[nodiscard]] inline std::string knob_text(bytes_per_second v) { return std::to_string(v.count()) + " bytes/s"; }
[[nodiscard]] inline std::string knob_text(ops_per_second v) { return std::to_string(v.count()) + " ops/s"; }
[[nodiscard]] inline std::string knob_text(packets_per_second v) { return std::to_string(v.count()) + " packets/s"; }
[[nodiscard]] inline std::string knob_text(millicores v) { return std::to_string(v.count()) + " millicores"; }
[[nodiscard]] inline std::string knob_text(cache_ways v) { return std::to_string(v.count()) + " ways"; }
[[nodiscard]] inline std::string knob_text(const cpuset& v) { return v.empty() ? std::string("(empty)") : v.to_string(); }
template <class T>
[[nodiscard]] std::string knob_text(const limit<T>& v) {
  return v.is_unlimited() ? std::string("unlimited") : knob_text(v.value());
}
// A capacity bitmask as resctrl writes it, with a 0x prefix: "0x7f0".
[[nodiscard]] inline std::string mask_text(std::uint64_t mask) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), hex[mask & 0xf]);
    mask >>= 4;
  } while (mask);
  return "0x" + s;
}

// --- drift ---------------------------------------------------------------------
struct knob_drift {
  std::string knob;
  std::string desired;
  std::string actual;
  friend bool operator==(const knob_drift&, const knob_drift&) = default;
};

struct drift_report {
  std::vector<knob_drift> differs;
  // Desired knobs this backend does not enforce on this instance.
  std::vector<std::string> unsupported;
  // Parts of the reading that could not be read (instance_reading::partial):
  // a knob unreadable there shows up as unsupported here.
  std::vector<error> read_errors;
  [[nodiscard]] bool clean() const noexcept { return differs.empty(); }
};

namespace detail {

// "disks['8:16'].weight" -> "disks[].weight".
[[nodiscard]] inline std::string generic_knob(std::string_view k) {
  std::string out;
  int depth = 0;
  for (char c : k) {
    if (c == '[') {
      if (depth++ == 0) out += '[';
      continue;
    }
    if (c == ']' && depth > 0) {
      if (--depth == 0) out += ']';
      continue;
    }
    if (depth == 0) out += c;
  }
  return out;
}

class drift_walker {
 public:
  drift_walker(drift_report& out, const std::vector<std::string>& listed) : out_(out), listed_(listed) {}

  [[nodiscard]] bool listed(const std::string& knob) const {
    const auto g = generic_knob(knob);
    for (const auto& l : listed_) {
      if (g == l || knob == l) return true;
      if (g.size() > l.size() && g.compare(0, l.size(), l) == 0 && (g[l.size()] == '.' || g[l.size()] == '['))
        return true;
    }
    return false;
  }
  void unsupported(std::string knob) { out_.unsupported.push_back(std::move(knob)); }
  void differ(std::string knob, std::string d, std::string a) {
    out_.differs.push_back(knob_drift{std::move(knob), std::move(d), std::move(a)});
  }

  template <class T>
  void cmp(const std::string& name, const knob<T>& d, const knob<T>& e) {
    if (!d) return;
    if (listed(name) || !e) return unsupported(name);
    if (!(*d == *e)) differ(name, knob_text(*d), knob_text(*e));
  }

 private:
  drift_report& out_;
  const std::vector<std::string>& listed_;
};

inline std::string numa_text(const numa_tune& n) { return n.mode + " " + knob_text(n.nodeset); }

inline std::string cache_tunes_text(const std::vector<cache_tune>& v) {
  std::string s;
  for (const auto& t : v) {
    if (!s.empty()) s += "; ";
    s += "vcpus " + knob_text(t.vcpus) + ":";
    for (const auto& c : t.caches)
      s += " L" + std::to_string(c.level) + " " + c.type + " cache " + std::to_string(c.cache_id) + " " +
           knob_text(c.size);
  }
  return s.empty() ? std::string("(none)") : s;
}

template <class T>
std::string opt_text(const knob<T>& k) {
  return k ? knob_text(*k) : std::string("(none)");
}

inline void compare_cpu(drift_walker& w, const cpu_spec& d, const cpu_spec& e) {
  w.cmp("cpu.vcpus", d.vcpus, e.vcpus);
  w.cmp("cpu.max_vcpus", d.max_vcpus, e.max_vcpus);
  // shares and weight: one scheduler weight on two scales.
  if (d.shares) {
    if (w.listed("cpu.shares")) w.unsupported("cpu.shares");
    else if (e.shares) w.cmp("cpu.shares", d.shares, e.shares);
    else if (e.weight) {
      const auto want = cpu_weight_from_shares(*d.shares);
      if (want != *e.weight)
        w.differ("cpu.shares", knob_text(*d.shares) + " (cpu.weight " + knob_text(want) + ")",
                 "cpu.weight " + knob_text(*e.weight));
    } else w.unsupported("cpu.shares");
  }
  if (d.weight) {
    if (w.listed("cpu.weight")) w.unsupported("cpu.weight");
    else if (e.weight) w.cmp("cpu.weight", d.weight, e.weight);
    else if (e.shares) {
      const auto want = cpu_shares_from_weight(*d.weight);
      if (want != *e.shares)
        w.differ("cpu.weight", knob_text(*d.weight) + " (cpu.shares " + knob_text(want) + ")",
                 "cpu.shares " + knob_text(*e.shares));
    } else w.unsupported("cpu.weight");
  }
  w.cmp("cpu.period", d.period, e.period);
  w.cmp("cpu.quota", d.quota, e.quota);
  w.cmp("cpu.emulator_period", d.emulator_period, e.emulator_period);
  w.cmp("cpu.emulator_quota", d.emulator_quota, e.emulator_quota);
  w.cmp("cpu.burst", d.burst, e.burst);
  if (d.vcpu_pins) {
    if (w.listed("cpu.vcpu_pins") || !e.vcpu_pins) {
      w.unsupported("cpu.vcpu_pins");
    } else {
      for (const auto& p : *d.vcpu_pins) {
        const std::string name = "cpu.vcpu_pins[vcpu " + std::to_string(p.vcpu) + "]";
        const auto it = std::find_if(e.vcpu_pins->begin(), e.vcpu_pins->end(),
                                     [&](const vcpu_pin& x) { return x.vcpu == p.vcpu; });
        if (it == e.vcpu_pins->end()) w.differ(name, knob_text(p.cpus), "(not pinned)");
        else if (!(it->cpus == p.cpus)) w.differ(name, knob_text(p.cpus), knob_text(it->cpus));
      }
    }
  }
  w.cmp("cpu.emulator_pin", d.emulator_pin, e.emulator_pin);
  w.cmp("cpu.cpus", d.cpus, e.cpus);
  w.cmp("cpu.mems", d.mems, e.mems);
}

inline void compare_memory(drift_walker& w, const memory_spec& d, const memory_spec& e) {
  w.cmp("memory.max", d.max, e.max);
  w.cmp("memory.current", d.current, e.current);
  w.cmp("memory.hard_limit", d.hard_limit, e.hard_limit);
  w.cmp("memory.soft_limit", d.soft_limit, e.soft_limit);
  w.cmp("memory.swap_hard_limit", d.swap_hard_limit, e.swap_hard_limit);
  w.cmp("memory.high", d.high, e.high);
  w.cmp("memory.min", d.min, e.min);
  w.cmp("memory.low", d.low, e.low);
  if (d.numa) {
    if (w.listed("memory.numa") || !e.numa) w.unsupported("memory.numa");
    else if (!(*d.numa == *e.numa)) w.differ("memory.numa", numa_text(*d.numa), numa_text(*e.numa));
  }
}

// A disk limit: an absent disk entry means "no limit".
template <class T>
void cmp_disk_limit(drift_walker& w, const std::string& name, const knob<limit<T>>& d, const disk_spec* e,
                    knob<limit<T>> disk_spec::*member) {
  if (!d) return;
  if (w.listed(name)) return w.unsupported(name);
  if (!e) {
    if (d->is_bounded()) w.differ(name, knob_text(*d), "unlimited (no entry)");
    return;
  }
  w.cmp(name, d, e->*member);
}

inline void compare_disk(drift_walker& w, const disk_spec& d, const disk_spec* e) {
  const std::string p = "disks['" + d.target + "'].";
  using L = disk_spec;
  cmp_disk_limit(w, p + "total_bytes_sec", d.total_bytes_sec, e, &L::total_bytes_sec);
  cmp_disk_limit(w, p + "read_bytes_sec", d.read_bytes_sec, e, &L::read_bytes_sec);
  cmp_disk_limit(w, p + "write_bytes_sec", d.write_bytes_sec, e, &L::write_bytes_sec);
  cmp_disk_limit(w, p + "total_iops_sec", d.total_iops_sec, e, &L::total_iops_sec);
  cmp_disk_limit(w, p + "read_iops_sec", d.read_iops_sec, e, &L::read_iops_sec);
  cmp_disk_limit(w, p + "write_iops_sec", d.write_iops_sec, e, &L::write_iops_sec);
  cmp_disk_limit(w, p + "total_bytes_sec_max", d.total_bytes_sec_max, e, &L::total_bytes_sec_max);
  cmp_disk_limit(w, p + "read_bytes_sec_max", d.read_bytes_sec_max, e, &L::read_bytes_sec_max);
  cmp_disk_limit(w, p + "write_bytes_sec_max", d.write_bytes_sec_max, e, &L::write_bytes_sec_max);
  cmp_disk_limit(w, p + "total_iops_sec_max", d.total_iops_sec_max, e, &L::total_iops_sec_max);
  cmp_disk_limit(w, p + "read_iops_sec_max", d.read_iops_sec_max, e, &L::read_iops_sec_max);
  cmp_disk_limit(w, p + "write_iops_sec_max", d.write_iops_sec_max, e, &L::write_iops_sec_max);
  if (d.weight) {
    const std::string name = p + "weight";
    if (w.listed(name)) w.unsupported(name);
    else if (!e) w.differ(name, knob_text(*d.weight), "(no entry)");
    else w.cmp(name, d.weight, e->weight);
  }
}

inline void compare_direction(drift_walker& w, const std::string& name, const knob<direction_bandwidth>& d,
                              const knob<direction_bandwidth>* e) {
  if (!d) return;
  if (w.listed(name) || !e || !*e) return w.unsupported(name);
  const auto& a = **e;
  if (!(d->average == a.average)) w.differ(name + ".average", knob_text(d->average), knob_text(a.average));
  if (d->peak != a.peak) w.differ(name + ".peak", opt_text(d->peak), opt_text(a.peak));
  if (d->burst != a.burst) w.differ(name + ".burst", opt_text(d->burst), opt_text(a.burst));
  if (d->floor != a.floor) w.differ(name + ".floor", opt_text(d->floor), opt_text(a.floor));
  if (d->packets) {
    if (w.listed(name + ".packets") || !a.packets) w.unsupported(name + ".packets");
    else if (!(*d->packets == *a.packets)) w.differ(name + ".packets", knob_text(*d->packets), knob_text(*a.packets));
  }
}

inline void compare_masks(drift_walker& w, const std::string& name, const std::vector<cache_allocation>& d,
                          const std::vector<cache_allocation>& e) {
  for (const auto& a : d) {
    const std::string n = name + "[cache " + std::to_string(a.cache_id) + "]";
    const auto it = std::find_if(e.begin(), e.end(), [&](const cache_allocation& x) { return x.cache_id == a.cache_id; });
    if (it == e.end()) w.differ(n, mask_text(a.mask), "(no such cache)");
    else if (it->mask != a.mask) w.differ(n, mask_text(a.mask), mask_text(it->mask));
  }
}

inline void compare_llc(drift_walker& w, const knob<llc_spec>& d, const knob<llc_spec>& e) {
  if (!d) return;
  if (w.listed("llc") || !e) return w.unsupported("llc");
  if (d->ways.count() != 0 && d->ways != e->ways) w.differ("llc.ways", knob_text(d->ways), knob_text(e->ways));
  if (d->exclusive != e->exclusive) w.differ("llc.exclusive", knob_text(d->exclusive), knob_text(e->exclusive));
  compare_masks(w, "llc.allocations", d->allocations, e->allocations);
  compare_masks(w, "llc.code_allocations", d->code_allocations,
                e->code_allocations.empty() ? e->allocations : e->code_allocations);
}

inline void compare_mb(drift_walker& w, const knob<memory_bandwidth_spec>& d, const knob<memory_bandwidth_spec>& e) {
  if (!d) return;
  if (w.listed("memory_bandwidth") || !e) return w.unsupported("memory_bandwidth");
  const auto unit = [](bool mbps) { return std::string(mbps ? "MBps" : "percent"); };
  if (d->mbps != e->mbps) {
    w.differ("memory_bandwidth.unit", unit(d->mbps), unit(e->mbps));
    return;
  }
  for (const auto& a : d->allocations) {
    const std::string n = "memory_bandwidth[domain " + std::to_string(a.domain_id) + "]";
    const auto it = std::find_if(e->allocations.begin(), e->allocations.end(),
                                 [&](const bandwidth_allocation& x) { return x.domain_id == a.domain_id; });
    const auto text = [&](std::uint64_t v) { return std::to_string(v) + " " + unit(d->mbps); };
    if (it == e->allocations.end()) w.differ(n, text(a.value), "(no such domain)");
    else if (it->value != a.value) w.differ(n, text(a.value), text(it->value));
  }
}

}  // namespace detail

// Compares knob by knob; `unsupported` names knobs the backend lacks for this
// instance (instance_reading::unsupported).
[[nodiscard]] inline drift_report compare(const quota_spec& desired, const quota_spec& enforced,
                                          const std::vector<std::string>& unsupported = {}) {
  drift_report out;
  detail::drift_walker w(out, unsupported);
  detail::compare_cpu(w, desired.cpu, enforced.cpu);
  detail::compare_memory(w, desired.memory, enforced.memory);
  w.cmp("blkio_weight", desired.blkio_weight, enforced.blkio_weight);
  for (const auto& d : desired.disks) detail::compare_disk(w, d, enforced.disk(d.target));
  for (const auto& i : desired.interfaces) {
    const std::string name = "interfaces['" + i.mac + "']";
    const auto* e = enforced.interface(i.mac);
    if (!e) {
      if (i.inbound || i.outbound) w.differ(name, "present", "(no such interface)");
      continue;
    }
    detail::compare_direction(w, name + ".inbound", i.inbound, &e->inbound);
    detail::compare_direction(w, name + ".outbound", i.outbound, &e->outbound);
  }
  detail::compare_llc(w, desired.llc, enforced.llc);
  detail::compare_mb(w, desired.memory_bandwidth, enforced.memory_bandwidth);
  if (desired.cache_tunes) {
    if (w.listed("cache_tunes") || !enforced.cache_tunes) w.unsupported("cache_tunes");
    else if (!(*desired.cache_tunes == *enforced.cache_tunes))
      w.differ("cache_tunes", detail::cache_tunes_text(*desired.cache_tunes),
               detail::cache_tunes_text(*enforced.cache_tunes));
  }
  return out;
}

// The same against a reading: its enforced spec, its unsupported list, and
// its partial-read errors.
[[nodiscard]] inline drift_report compare(const quota_spec& desired, const instance_reading& reading) {
  auto out = compare(desired, reading.enforced, reading.unsupported);
  out.read_errors = reading.partial;
  return out;
}

}  // namespace bulkhead
