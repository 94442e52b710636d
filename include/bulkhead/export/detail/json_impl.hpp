// bulkhead/export/detail/json_impl.hpp (internal): the definitions of the
// inspect-JSON forms; the contract is in bulkhead/export/json.hpp.
#pragma once

#include "bulkhead/export/json.hpp"

#include <algorithm>

namespace bulkhead {

namespace detail::inspect_json {

using json = nlohmann::json;

template <class Q>
json q(const knob<Q>& k) {
  return k ? json(k->count()) : json(nullptr);
}
template <class Q>
json lim(const knob<limit<Q>>& k) {
  return k && k->is_bounded() ? json(k->value().count()) : json(nullptr);
}
inline json us(const knob<microseconds>& k) { return k ? json(k->count()) : json(nullptr); }
inline json us_lim(const knob<limit<microseconds>>& k) {
  return k && k->is_bounded() ? json(k->value().count()) : json(nullptr);
}
inline json ns(const knob<nanoseconds>& k) { return k ? json(k->count()) : json(nullptr); }
template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
inline json ids(const cpuset& s) { return json(s.ids()); }

// libvirt's <bandwidth> units: kilobytes/s (1000 bytes) and kilobytes (1024
// bytes) for burst; exact when the value came from libvirt, rounded down
// otherwise (the *_bytes_sec / *_bytes fields are always exact).
inline json kbytes_sec(const std::optional<bytes_per_second>& b) {
  return b ? json(b->count() / kilobyte_factor) : json(nullptr);
}

inline void direction(json& out, const char* dir, const knob<direction_bandwidth>& d) {
  const std::string p = dir;
  const bool on = d && d->average.is_bounded();
  std::optional<bytes_per_second> avg, peak, floor;
  std::optional<bytes> burst;
  if (on) {
    avg = d->average.value();
    peak = d->peak;
    burst = d->burst;
  }
  if (d) floor = d->floor;
  out[p + "_average_kbytes_sec"] = kbytes_sec(avg);
  out[p + "_peak_kbytes_sec"] = kbytes_sec(peak);
  out[p + "_burst_kbytes"] = burst ? json(burst->count() / kib_factor) : json(nullptr);
  out[p + "_floor_kbytes_sec"] = kbytes_sec(floor);
  out[p + "_average_bytes_sec"] = avg ? json(avg->count()) : json(nullptr);
  out[p + "_peak_bytes_sec"] = peak ? json(peak->count()) : json(nullptr);
  out[p + "_burst_bytes"] = burst ? json(burst->count()) : json(nullptr);
  out[p + "_packets_sec"] = d && d->packets && d->packets->is_bounded() ? json(d->packets->value().count()) : json(nullptr);
}

}  // namespace detail::inspect_json

inline void to_json(nlohmann::json& j, const error& e) {
  j = nlohmann::json{{"code", to_string(e.code())}, {"message", e.describe()}};
}

inline void to_json(nlohmann::json& j, const host_capacity& h) {
  using json = nlohmann::json;
  json cells = json::array();
  for (const auto& c : h.numa) cells.push_back({{"id", c.id}, {"cpus", detail::inspect_json::ids(c.cpus)}, {"memory_bytes", c.memory.count()}});
  j = json{{"cpus", h.cpus},
              {"memory_bytes", h.memory.count()},
              {"numa_nodes", std::move(cells)},
              {"numa_derived", h.numa_derived},
              {"sockets", h.sockets},
              {"cores_per_socket", h.cores_per_socket},
              {"threads_per_core", h.threads_per_core},
              {"mhz", detail::inspect_json::opt(h.mhz)},
              {"cpu_model", h.cpu_model}};
}

inline void to_json(nlohmann::json& j, const quota_spec& s) {
  using json = nlohmann::json;
  json o;
  const auto& c = s.cpu;
  o["vcpus"] = detail::inspect_json::opt(c.vcpus);
  o["max_vcpus"] = detail::inspect_json::opt(c.max_vcpus);
  o["cpu_request_millicores"] = detail::inspect_json::q(c.request);
  o["cpu_shares"] = detail::inspect_json::opt(c.shares);
  o["cpu_weight"] = detail::inspect_json::opt(c.weight);
  o["cpu_period_us"] = detail::inspect_json::us(c.period);
  o["cpu_quota_us"] = detail::inspect_json::us_lim(c.quota);
  o["emulator_period_us"] = detail::inspect_json::us(c.emulator_period);
  o["emulator_quota_us"] = detail::inspect_json::us_lim(c.emulator_quota);
  o["cpu_burst_us"] = detail::inspect_json::us(c.burst);
  const auto cap = vm_cpu_cap(c);
  o["cpu_cap_millicores"] = cap && cap->is_bounded() ? json(cap->value().count()) : json(nullptr);
  json pins = json::array();
  if (c.vcpu_pins)
    for (const auto& p : *c.vcpu_pins) pins.push_back({{"vcpu", p.vcpu}, {"cpus", detail::inspect_json::ids(p.cpus)}});
  o["vcpu_pins"] = std::move(pins);
  o["emulator_pin"] = c.emulator_pin ? detail::inspect_json::ids(*c.emulator_pin) : json(nullptr);
  o["cpuset_cpus"] = c.cpus ? detail::inspect_json::ids(*c.cpus) : json(nullptr);
  o["cpuset_mems"] = c.mems ? detail::inspect_json::ids(*c.mems) : json(nullptr);
  const auto& m = s.memory;
  o["memory_max_bytes"] = detail::inspect_json::q(m.max);
  o["memory_current_bytes"] = detail::inspect_json::q(m.current);
  o["memory_request_bytes"] = detail::inspect_json::q(m.request);
  o["memory_hard_limit_bytes"] = detail::inspect_json::lim(m.hard_limit);
  o["memory_soft_limit_bytes"] = detail::inspect_json::lim(m.soft_limit);
  o["memory_swap_hard_limit_bytes"] = detail::inspect_json::lim(m.swap_hard_limit);
  o["memory_high_bytes"] = detail::inspect_json::lim(m.high);
  o["memory_min_bytes"] = detail::inspect_json::q(m.min);
  o["memory_low_bytes"] = detail::inspect_json::q(m.low);
  o["numa"] = m.numa ? json{{"mode", m.numa->mode}, {"nodeset", detail::inspect_json::ids(m.numa->nodeset)}} : json(nullptr);
  o["blkio_weight"] = detail::inspect_json::opt(s.blkio_weight);
  json disks = json::array();
  for (const auto& d : s.disks)
    disks.push_back({{"target", d.target},
                     {"total_bytes_sec", detail::inspect_json::lim(d.total_bytes_sec)},
                     {"read_bytes_sec", detail::inspect_json::lim(d.read_bytes_sec)},
                     {"write_bytes_sec", detail::inspect_json::lim(d.write_bytes_sec)},
                     {"total_iops_sec", detail::inspect_json::lim(d.total_iops_sec)},
                     {"read_iops_sec", detail::inspect_json::lim(d.read_iops_sec)},
                     {"write_iops_sec", detail::inspect_json::lim(d.write_iops_sec)},
                     {"total_bytes_sec_max", detail::inspect_json::lim(d.total_bytes_sec_max)},
                     {"read_bytes_sec_max", detail::inspect_json::lim(d.read_bytes_sec_max)},
                     {"write_bytes_sec_max", detail::inspect_json::lim(d.write_bytes_sec_max)},
                     {"total_iops_sec_max", detail::inspect_json::lim(d.total_iops_sec_max)},
                     {"read_iops_sec_max", detail::inspect_json::lim(d.read_iops_sec_max)},
                     {"write_iops_sec_max", detail::inspect_json::lim(d.write_iops_sec_max)},
                     {"weight", detail::inspect_json::opt(d.weight)}});
  o["disks"] = std::move(disks);
  json ifs = json::array();
  for (const auto& i : s.interfaces) {
    json e{{"mac", i.mac}, {"target", i.target}};
    detail::inspect_json::direction(e, "inbound", i.inbound);
    detail::inspect_json::direction(e, "outbound", i.outbound);
    ifs.push_back(std::move(e));
  }
  o["interfaces"] = std::move(ifs);
  if (s.llc) {
    json a = json::array();
    for (const auto& x : s.llc->allocations) a.push_back({{"cache_id", x.cache_id}, {"mask", x.mask}});
    o["llc"] = {{"ways", s.llc->ways.count()}, {"exclusive", s.llc->exclusive}, {"allocations", std::move(a)}};
  } else {
    o["llc"] = nullptr;
  }
  if (s.memory_bandwidth) {
    json a = json::array();
    for (const auto& x : s.memory_bandwidth->allocations) a.push_back({{"domain_id", x.domain_id}, {"value", x.value}});
    o["memory_bandwidth"] = {{"unit", s.memory_bandwidth->mbps ? "mbytes_sec" : "percent"}, {"allocations", std::move(a)}};
  } else {
    o["memory_bandwidth"] = nullptr;
  }
  if (s.cache_tunes) {
    json t = json::array();
    for (const auto& ct : *s.cache_tunes) {
      json caches = json::array();
      for (const auto& e : ct.caches)
        caches.push_back({{"id", e.cache_id}, {"level", e.level}, {"type", e.type}, {"size_bytes", e.size.count()}});
      t.push_back({{"vcpus", detail::inspect_json::ids(ct.vcpus)}, {"caches", std::move(caches)}});
    }
    o["cachetune"] = std::move(t);
  } else {
    o["cachetune"] = nullptr;
  }
  j = std::move(o);
}

inline void to_json(nlohmann::json& j, const usage_sample& u) {
  using json = nlohmann::json;
  json o;
  o["read_at_monotonic_ns"] = u.read_at.time_since_epoch().count();
  o["read_at_unix_ns"] = u.wall.time_since_epoch().count();
  o["cpu_time_ns"] = detail::inspect_json::ns(u.cpu_time);
  o["cpu_user_ns"] = detail::inspect_json::ns(u.cpu_user);
  o["cpu_system_ns"] = detail::inspect_json::ns(u.cpu_system);
  json v = json::array();
  for (const auto& t : u.vcpu_time) v.push_back(t.count());
  o["vcpu_time_ns"] = std::move(v);
  json vw = json::array(), vd = json::array();
  for (const auto& t : u.vcpu_wait) vw.push_back(t.count());
  for (const auto& t : u.vcpu_delay) vd.push_back(t.count());
  o["vcpu_wait_ns"] = std::move(vw);
  o["vcpu_delay_ns"] = std::move(vd);
  o["cpu_nr_periods"] = detail::inspect_json::opt(u.cpu_nr_periods);
  o["cpu_nr_throttled"] = detail::inspect_json::opt(u.cpu_nr_throttled);
  o["cpu_throttled_ns"] = detail::inspect_json::ns(u.cpu_throttled_time);
  o["memory_current_bytes"] = detail::inspect_json::q(u.memory_current);
  o["memory_rss_bytes"] = detail::inspect_json::q(u.memory_rss);
  o["memory_available_bytes"] = detail::inspect_json::q(u.memory_available);
  o["memory_oom_events"] = detail::inspect_json::opt(u.memory_oom_events);
  json disks = json::array();
  for (const auto& d : u.disks)
    disks.push_back({{"target", d.target},
                     {"read_requests", detail::inspect_json::q(d.read_requests)},
                     {"read_bytes", detail::inspect_json::q(d.read_bytes)},
                     {"write_requests", detail::inspect_json::q(d.write_requests)},
                     {"write_bytes", detail::inspect_json::q(d.write_bytes)},
                     {"errors", detail::inspect_json::q(d.errors)},
                     {"flush_requests", detail::inspect_json::q(d.flush_requests)},
                     {"read_time_ns", detail::inspect_json::ns(d.read_time)},
                     {"write_time_ns", detail::inspect_json::ns(d.write_time)},
                     {"flush_time_ns", detail::inspect_json::ns(d.flush_time)},
                     {"throttled_requests", detail::inspect_json::q(d.throttled_requests)},
                     {"throttled_ns", detail::inspect_json::ns(d.throttled_time)}});
  o["disks"] = std::move(disks);
  json ifs = json::array();
  for (const auto& i : u.interfaces)
    ifs.push_back({{"mac", i.mac},
                   {"target", i.target},
                   {"rx_bytes", detail::inspect_json::q(i.rx_bytes)},
                   {"tx_bytes", detail::inspect_json::q(i.tx_bytes)},
                   {"rx_packets", detail::inspect_json::q(i.rx_packets)},
                   {"tx_packets", detail::inspect_json::q(i.tx_packets)},
                   {"rx_errors", detail::inspect_json::q(i.rx_errors)},
                   {"tx_errors", detail::inspect_json::q(i.tx_errors)},
                   {"rx_drops", detail::inspect_json::q(i.rx_drops)},
                   {"tx_drops", detail::inspect_json::q(i.tx_drops)},
                   {"throttled_packets", detail::inspect_json::q(i.throttled_packets)},
                   {"throttled_ns", detail::inspect_json::ns(i.throttled_time)}});
  o["interfaces"] = std::move(ifs);
  j = std::move(o);
}

inline void to_json(nlohmann::json& j, const instance_reading& r) {
  using json = nlohmann::json;
  const auto& i = r.info;
  json modes = json::object();
  for (const auto& [k, name] : enum_names<resource_kind>::values)
    if (auto m = i.modes.get(k)) modes[std::string(name)] = std::string(to_string(*m));
  json warnings = json::array();
  for (const auto& e : r.partial) warnings.push_back(e.describe());
  j = json{{"uuid", i.id.uuid.to_string()},
              {"name", i.name},
              {"kind", to_string(i.kind)},
              {"state", to_string(i.state)},
              {"incarnation", i.id.incarnation ? json(i.id.incarnation->value) : json(nullptr)},
              {"isolation", to_string(i.isolation)},
              {"isolation_modes", std::move(modes)},
              {"qos_class", i.qos ? json(std::string(to_string(*i.qos))) : json(nullptr)},
              {"tenant", detail::inspect_json::opt(i.tenant)},
              {"source", i.source},
              {"persistent", i.persistent},
              {"quota", json(r.enforced)},
              {"usage", json(r.usage)},
              {"unsupported", r.unsupported},
              {"warnings", std::move(warnings)}};
}

inline void to_json(nlohmann::json& j, const instance_failure& f) {
  using json = nlohmann::json;
  j = json{{"uuid", f.uuid ? json(f.uuid->to_string()) : json(nullptr)},
              {"name", f.name},
              {"error", f.why.describe()},
              {"error_code", to_string(f.why.code())}};
}

}  // namespace bulkhead
