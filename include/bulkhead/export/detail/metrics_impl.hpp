// bulkhead/export/detail/metrics_impl.hpp (internal): the metrics writer's definitions;
// the contract is in bulkhead/export/metrics.hpp.
#pragma once

#include "bulkhead/export/metrics.hpp"

#include <map>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::metrics {

namespace detail {

inline std::string cores_text(std::uint64_t millicores) {
  std::string s = std::to_string(millicores / 1000);
  if (auto frac = millicores % 1000) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03llu", static_cast<unsigned long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    s += f;
  }
  return s;
}

inline std::string us_seconds(microseconds us) { return seconds_text(us.count() * 1000); }

}  // namespace detail

inline std::string seconds_text(std::int64_t ns) {
  const bool neg = ns < 0;
  const auto u = neg ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
  std::string s = (neg ? "-" : "") + std::to_string(u / nanos_per_second);
  if (auto frac = u % nanos_per_second) {
    char buf[16];
    std::snprintf(buf, sizeof buf, ".%09llu", static_cast<unsigned long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    s += f;
  }
  return s;
}

inline std::string render(std::span<const source> sources, format f) {
  writer w;
  render(sources, w);
  return w.text(f);
}

inline void render(std::span<const source> sources, writer& b) {
  const auto g = kind::gauge;
  const auto c = kind::counter;
  for (const auto& s : sources) {
    const std::string src = label("source", s.uri);
    b.add("bulkhead_source_up", g, "", "1 when the source was read, 0 when it failed.",
          src + "," + label("kind", s.kind), s.up ? "1" : "0");
    if (s.host) {
      b.add("bulkhead_host_cpus", g, "", "Logical CPUs of the host.", src, std::to_string(s.host->cpus));
      b.add("bulkhead_host_memory_bytes", g, "bytes", "Memory of the host.", src, std::to_string(s.host->memory.count()));
      for (const auto& n : s.host->numa) {
        const std::string l = src + "," + label("node", std::to_string(n.id));
        b.add("bulkhead_host_numa_node_cpus", g, "", "Logical CPUs of a NUMA node.", l, std::to_string(n.cpus.size()));
        b.add("bulkhead_host_numa_node_memory_bytes", g, "bytes", "Memory of a NUMA node.", l,
              std::to_string(n.memory.count()));
      }
    }
    for (const auto& r : s.instances) {
      const auto& i = r.info;
      const std::string il = label("uuid", i.id.uuid.to_string()) + "," + label("name", i.name) + "," +
                             label("tenant", i.tenant.value_or("")) + "," +
                             label("qos_class", i.qos ? std::string(to_string(*i.qos)) : "") + "," +
                             label("isolation", to_string(i.isolation)) + "," + src;
      b.add("bulkhead_instance", kind::info, "", "Instance identity, kind and state.",
            il + "," + label("kind", to_string(i.kind)) + "," + label("state", to_string(i.state)) + "," +
                label("incarnation", i.id.incarnation ? std::to_string(i.id.incarnation->value) : ""),
            "1");
      // Quotas.
      const auto& q = r.enforced;
      if (q.cpu.vcpus) b.add("bulkhead_instance_vcpus", g, "", "Online vCPUs.", il, std::to_string(*q.cpu.vcpus));
      if (auto cap = vm_cpu_cap(q.cpu); cap && cap->is_bounded())
        b.add("bulkhead_instance_cpu_cap_cores", g, "cores", "CPU ceiling over all vCPUs (CFS quota / period x vCPUs).",
              il, detail::cores_text(cap->value().count()));
      if (q.cpu.shares) b.add("bulkhead_instance_cpu_shares", g, "", "CPU shares (relative weight).", il, std::to_string(*q.cpu.shares));
      if (q.cpu.weight) b.add("bulkhead_instance_cpu_weight", g, "", "cgroup v2 cpu.weight.", il, std::to_string(*q.cpu.weight));
      if (q.cpu.period)
        b.add("bulkhead_instance_cpu_period_seconds", g, "seconds", "CFS period.", il, detail::us_seconds(*q.cpu.period));
      if (q.cpu.quota && q.cpu.quota->is_bounded())
        b.add("bulkhead_instance_cpu_quota_seconds", g, "seconds", "CFS quota per period (per vCPU for VMs).", il,
              detail::us_seconds(q.cpu.quota->value()));
      if (q.memory.max)
        b.add("bulkhead_instance_memory_max_bytes", g, "bytes", "Memory size of the instance.", il,
              std::to_string(q.memory.max->count()));
      const auto mem_limit = [&](const char* n, const char* help, const knob<limit<bytes>>& k) {
        if (k && k->is_bounded()) b.add(n, g, "bytes", help, il, std::to_string(k->value().count()));
      };
      mem_limit("bulkhead_instance_memory_hard_limit_bytes", "Memory hard limit.", q.memory.hard_limit);
      mem_limit("bulkhead_instance_memory_soft_limit_bytes", "Memory soft limit.", q.memory.soft_limit);
      mem_limit("bulkhead_instance_memory_high_bytes", "Memory throttling threshold (cgroup v2 memory.high).", q.memory.high);
      for (const auto& d : q.disks) {
        const auto lim = [&](const char* n, const char* unit, const char* help, const char* dir, const auto& k) {
          if (k && k->is_bounded())
            b.add(n, g, unit, help, il + "," + label("target", d.target) + "," + label("direction", dir),
                  std::to_string(k->value().count()));
        };
        lim("bulkhead_instance_disk_limit_bytes_per_second", "bytes_per_second", "Disk bandwidth limit.", "total", d.total_bytes_sec);
        lim("bulkhead_instance_disk_limit_bytes_per_second", "bytes_per_second", "Disk bandwidth limit.", "read", d.read_bytes_sec);
        lim("bulkhead_instance_disk_limit_bytes_per_second", "bytes_per_second", "Disk bandwidth limit.", "write", d.write_bytes_sec);
        lim("bulkhead_instance_disk_limit_iops", "", "Disk operations-per-second limit.", "total", d.total_iops_sec);
        lim("bulkhead_instance_disk_limit_iops", "", "Disk operations-per-second limit.", "read", d.read_iops_sec);
        lim("bulkhead_instance_disk_limit_iops", "", "Disk operations-per-second limit.", "write", d.write_iops_sec);
      }
      for (const auto& n : q.interfaces)
        for (const auto* dir : {&n.inbound, &n.outbound}) {
          if (!*dir || (*dir)->average.is_unlimited()) continue;
          b.add("bulkhead_instance_interface_limit_bytes_per_second", g, "bytes_per_second",
                "Interface average bandwidth limit.",
                il + "," + label("mac", n.mac) + "," + label("direction", dir == &n.inbound ? "inbound" : "outbound"),
                std::to_string((*dir)->average.value().count()));
        }
      // Counters.
      const auto& u = r.usage;
      const auto secs = [&](const char* n, const char* help, const knob<nanoseconds>& k) {
        if (k) b.add(n, c, "seconds", help, il, seconds_text(k->count()));
      };
      secs("bulkhead_instance_cpu_seconds", "CPU time used by the instance.", u.cpu_time);
      secs("bulkhead_instance_cpu_user_seconds", "CPU time in user mode.", u.cpu_user);
      secs("bulkhead_instance_cpu_system_seconds", "CPU time in kernel mode.", u.cpu_system);
      secs("bulkhead_instance_cpu_throttled_seconds", "Time the instance was throttled by its CPU quota.", u.cpu_throttled_time);
      for (std::size_t v = 0; v < u.vcpu_time.size(); ++v)
        b.add("bulkhead_instance_vcpu_seconds", c, "seconds", "CPU time of one vCPU.",
              il + "," + label("vcpu", std::to_string(v)), seconds_text(u.vcpu_time[v].count()));
      for (std::size_t v = 0; v < u.vcpu_wait.size(); ++v)
        b.add("bulkhead_instance_vcpu_wait_seconds", c, "seconds",
              "Time one vCPU's thread waited (libvirt vcpu.<n>.wait).", il + "," + label("vcpu", std::to_string(v)),
              seconds_text(u.vcpu_wait[v].count()));
      for (std::size_t v = 0; v < u.vcpu_delay.size(); ++v)
        b.add("bulkhead_instance_vcpu_delay_seconds", c, "seconds",
              "Time one vCPU's thread was runnable but not running (libvirt vcpu.<n>.delay).",
              il + "," + label("vcpu", std::to_string(v)), seconds_text(u.vcpu_delay[v].count()));
      if (u.cpu_nr_periods)
        b.add("bulkhead_instance_cpu_periods", c, "", "CFS enforcement periods that elapsed with the instance runnable.",
              il, std::to_string(*u.cpu_nr_periods));
      if (u.cpu_nr_throttled)
        b.add("bulkhead_instance_cpu_throttled_periods", c, "", "CFS periods in which the instance was throttled.", il,
              std::to_string(*u.cpu_nr_throttled));
      if (u.memory_oom_events)
        b.add("bulkhead_instance_memory_oom_events", c, "", "Processes killed by the OOM killer inside the instance.", il,
              std::to_string(*u.memory_oom_events));
      if (u.memory_current)
        b.add("bulkhead_instance_memory_current_bytes", g, "bytes", "Memory in use (balloon size for a VM).", il,
              std::to_string(u.memory_current->count()));
      if (u.memory_rss)
        b.add("bulkhead_instance_memory_rss_bytes", g, "bytes", "Resident memory (RSS) of the instance.", il,
              std::to_string(u.memory_rss->count()));
      if (u.memory_available)
        b.add("bulkhead_instance_memory_available_bytes", g, "bytes", "Memory the guest sees (balloon).", il,
              std::to_string(u.memory_available->count()));
      for (const auto& d : u.disks) {
        const std::string dl = il + "," + label("target", d.target);
        const auto cnt = [&](const char* n, const char* unit, const char* help, const auto& k) {
          if (k) b.add(n, c, unit, help, dl, std::to_string(k->count()));
        };
        cnt("bulkhead_instance_disk_read_bytes", "bytes", "Bytes read from the disk.", d.read_bytes);
        cnt("bulkhead_instance_disk_write_bytes", "bytes", "Bytes written to the disk.", d.write_bytes);
        cnt("bulkhead_instance_disk_read_requests", "", "Read requests completed.", d.read_requests);
        cnt("bulkhead_instance_disk_write_requests", "", "Write requests completed.", d.write_requests);
        cnt("bulkhead_instance_disk_flush_requests", "", "Flush requests completed.", d.flush_requests);
        cnt("bulkhead_instance_disk_errors", "", "Requests that failed.", d.errors);
        cnt("bulkhead_instance_disk_throttled_requests", "", "Requests delayed by the disk's limit.", d.throttled_requests);
        const auto dsecs = [&](const char* n, const char* help, const knob<nanoseconds>& k) {
          if (k) b.add(n, c, "seconds", help, dl, seconds_text(k->count()));
        };
        dsecs("bulkhead_instance_disk_read_time_seconds", "Time read requests spent in the block layer.", d.read_time);
        dsecs("bulkhead_instance_disk_write_time_seconds", "Time write requests spent in the block layer.", d.write_time);
        dsecs("bulkhead_instance_disk_flush_time_seconds", "Time flush requests spent in the block layer.", d.flush_time);
        if (d.throttled_time)
          b.add("bulkhead_instance_disk_throttled_seconds", c, "seconds", "Time requests waited on the disk's limit.", dl,
                seconds_text(d.throttled_time->count()));
      }
      for (const auto& n : u.interfaces) {
        const std::string nl = il + "," + label("mac", n.mac);
        const auto cnt = [&](const char* name, const char* unit, const char* help, const auto& k) {
          if (k) b.add(name, c, unit, help, nl, std::to_string(k->count()));
        };
        cnt("bulkhead_instance_network_receive_bytes", "bytes", "Bytes received.", n.rx_bytes);
        cnt("bulkhead_instance_network_transmit_bytes", "bytes", "Bytes transmitted.", n.tx_bytes);
        cnt("bulkhead_instance_network_receive_packets", "", "Packets received.", n.rx_packets);
        cnt("bulkhead_instance_network_transmit_packets", "", "Packets transmitted.", n.tx_packets);
        cnt("bulkhead_instance_network_receive_drops", "", "Received packets dropped.", n.rx_drops);
        cnt("bulkhead_instance_network_transmit_drops", "", "Transmitted packets dropped.", n.tx_drops);
        cnt("bulkhead_instance_network_receive_errors", "", "Receive errors.", n.rx_errors);
        cnt("bulkhead_instance_network_transmit_errors", "", "Transmit errors.", n.tx_errors);
        cnt("bulkhead_instance_network_throttled_packets", "", "Packets delayed or dropped by the interface's limit.",
            n.throttled_packets);
        if (n.throttled_time)
          b.add("bulkhead_instance_network_throttled_seconds", c, "seconds", "Time packets waited on the interface's limit.",
                nl, seconds_text(n.throttled_time->count()));
      }
    }
  }
}

}  // namespace bulkhead::metrics
