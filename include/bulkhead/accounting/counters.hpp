// bulkhead/accounting/counters.hpp: a usage_sample flattened into named
// cumulative counters, and an instance's allocation levels from its spec.
//
// Counter names (docs/accounting.md lists them all):
//   cpu_time_ns  cpu_user_ns  cpu_system_ns  vcpu/<n>/time_ns
//   cpu_nr_periods  cpu_nr_throttled  cpu_throttled_ns  memory_oom_events
//   disk/<target>/{read_requests,write_requests,read_bytes,write_bytes,errors,
//                  throttled_requests,throttled_ns}
//   net/<key>/{rx_bytes,tx_bytes,rx_packets,tx_packets,rx_errors,tx_errors,
//              rx_drops,tx_drops,throttled_packets,throttled_ns}
// where <key> is the interface's MAC address when it has one (stable across
// restarts), else its target name. Gauges (memory_current, memory_rss,
// memory_available) are levels, not counters, and are not flattened.
// A knob the source did not report produces no counter (never a zero).
//
// Every counter is declared 64 bits wide unless the caller's width function
// says otherwise (offload cards with 32-bit registers).
//
// Thread-safety: functions of their arguments only.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "bulkhead/accounting/types.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead::accounting {

struct counter_value {
  std::string name;
  std::uint64_t value = 0;
  friend bool operator==(const counter_value&, const counter_value&) = default;
};

namespace detail {
inline std::uint64_t raw(const nanoseconds& d) noexcept {
  return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}
template <class T>
inline std::uint64_t raw(const T& q) noexcept {
  if constexpr (std::is_integral_v<T>) return q;
  else return q.count();
}
}  // namespace detail

// Appends the counters of `s` to `out` (cleared first). Reusing `out` across
// calls keeps its string buffers, so steady-state flattening does not
// allocate for names that fit their previous capacity.
inline void flatten(const usage_sample& s, std::vector<counter_value>& out) {
  std::size_t n = 0;
  const auto put = [&](std::string_view prefix, std::string_view key, std::string_view leaf, std::uint64_t v) {
    if (n == out.size()) out.emplace_back();
    auto& c = out[n++];
    c.name.assign(prefix);
    if (!key.empty()) {
      c.name += key;
      c.name += '/';
    }
    c.name += leaf;
    c.value = v;
  };
  const auto opt = [&](std::string_view prefix, std::string_view key, std::string_view leaf, const auto& k) {
    if (k) put(prefix, key, leaf, detail::raw(*k));
  };
  opt("", "", "cpu_time_ns", s.cpu_time);
  opt("", "", "cpu_user_ns", s.cpu_user);
  opt("", "", "cpu_system_ns", s.cpu_system);
  for (std::size_t i = 0; i < s.vcpu_time.size(); ++i)
    put("vcpu/", std::to_string(i), "time_ns", detail::raw(s.vcpu_time[i]));
  for (std::size_t i = 0; i < s.vcpu_wait.size(); ++i)
    put("vcpu/", std::to_string(i), "wait_ns", detail::raw(s.vcpu_wait[i]));
  for (std::size_t i = 0; i < s.vcpu_delay.size(); ++i)
    put("vcpu/", std::to_string(i), "delay_ns", detail::raw(s.vcpu_delay[i]));
  opt("", "", "cpu_nr_periods", s.cpu_nr_periods);
  opt("", "", "cpu_nr_throttled", s.cpu_nr_throttled);
  opt("", "", "cpu_throttled_ns", s.cpu_throttled_time);
  opt("", "", "memory_oom_events", s.memory_oom_events);
  for (const auto& d : s.disks) {
    if (d.target.empty()) continue;
    opt("disk/", d.target, "read_requests", d.read_requests);
    opt("disk/", d.target, "write_requests", d.write_requests);
    opt("disk/", d.target, "read_bytes", d.read_bytes);
    opt("disk/", d.target, "write_bytes", d.write_bytes);
    opt("disk/", d.target, "errors", d.errors);
    opt("disk/", d.target, "throttled_requests", d.throttled_requests);
    opt("disk/", d.target, "throttled_ns", d.throttled_time);
    opt("disk/", d.target, "flush_requests", d.flush_requests);
    opt("disk/", d.target, "read_time_ns", d.read_time);
    opt("disk/", d.target, "write_time_ns", d.write_time);
    opt("disk/", d.target, "flush_time_ns", d.flush_time);
  }
  for (const auto& i : s.interfaces) {
    const std::string& key = i.mac.empty() ? i.target : i.mac;
    if (key.empty()) continue;
    opt("net/", key, "rx_bytes", i.rx_bytes);
    opt("net/", key, "tx_bytes", i.tx_bytes);
    opt("net/", key, "rx_packets", i.rx_packets);
    opt("net/", key, "tx_packets", i.tx_packets);
    opt("net/", key, "rx_errors", i.rx_errors);
    opt("net/", key, "tx_errors", i.tx_errors);
    opt("net/", key, "rx_drops", i.rx_drops);
    opt("net/", key, "tx_drops", i.tx_drops);
    opt("net/", key, "throttled_packets", i.throttled_packets);
    opt("net/", key, "throttled_ns", i.throttled_time);
  }
  out.resize(n);
}

[[nodiscard]] inline std::vector<counter_value> flatten(const usage_sample& s) {
  std::vector<counter_value> out;
  flatten(s, out);
  return out;
}

// What an instance holds, for allocation accounting.
struct allocation_levels {
  std::optional<std::uint64_t> vcpus;  // vCPUs
  std::optional<bytes> memory;
  friend bool operator==(const allocation_levels&, const allocation_levels&) = default;
};

// From a spec as enforced:
//   vcpus  = cpu.vcpus (online), else cpu.max_vcpus;
//   memory = memory.max (libvirt <memory>: what the host set aside), else a
//            bounded memory.hard_limit, else memory.request.
// Unset when the spec does not say (a task with no vCPU count holds none).
[[nodiscard]] inline allocation_levels allocation_of(const quota_spec& q) {
  allocation_levels a;
  if (q.cpu.vcpus) a.vcpus = *q.cpu.vcpus;
  else if (q.cpu.max_vcpus) a.vcpus = *q.cpu.max_vcpus;
  if (q.memory.max) a.memory = *q.memory.max;
  else if (q.memory.hard_limit && q.memory.hard_limit->is_bounded()) a.memory = q.memory.hard_limit->value();
  else if (q.memory.request) a.memory = *q.memory.request;
  return a;
}

}  // namespace bulkhead::accounting
