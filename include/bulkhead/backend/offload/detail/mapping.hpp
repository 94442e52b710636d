// bulkhead/backend/offload/detail/mapping.hpp (internal): card functions into
// the common vocabulary (quota_spec, usage_sample, isolation profile), shared
// by both offload backends. The mapping is documented in
// bulkhead/backend/offload/backend.hpp.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/backend/offload/card.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead::offload::detail {

inline knob<direction_bandwidth> direction_of(const knob<rate_qos_view<bytes, bytes_per_second>>& bw,
                                              const knob<rate_qos_view<packets, packets_per_second>>& pk) {
  if (!bw && !pk) return std::nullopt;
  direction_bandwidth d;
  if (bw) {
    d.average = bw->rate;
    if (bw->rate.is_bounded() && bw->burst) d.burst = *bw->burst;
  }
  if (pk) d.packets = pk->rate;
  return d;
}

inline interface_spec interface_of(const function_view& f) {
  interface_spec s;
  s.mac = f.mac;
  s.target = f.target;
  s.inbound = direction_of(f.qos.rx_bandwidth, f.qos.rx_packets);
  s.outbound = direction_of(f.qos.tx_bandwidth, f.qos.tx_packets);
  return s;
}

inline disk_spec disk_of(const function_view& f) {
  disk_spec d;
  d.target = f.target.empty() ? f.address : f.target;
  if (f.qos.disk_bandwidth) d.total_bytes_sec = f.qos.disk_bandwidth->rate;
  if (f.qos.disk_iops) d.total_iops_sec = f.qos.disk_iops->rate;
  return d;
}

template <class T>
knob<T> sum(const knob<T>& a, const knob<T>& b) {
  if (!a || !b) return std::nullopt;
  return T{a->count() + b->count()};
}

inline interface_counters interface_counters_of(const function_view& f) {
  const auto& c = f.counters;
  interface_counters i;
  i.mac = f.mac;
  i.target = f.target;
  i.rx_bytes = c.rx.byte_count;
  i.tx_bytes = c.tx.byte_count;
  i.rx_packets = c.rx.packet_count;
  i.tx_packets = c.tx.packet_count;
  i.rx_errors = c.rx.errors;
  i.tx_errors = c.tx.errors;
  i.rx_drops = c.rx.drops;
  i.tx_drops = c.tx.drops;
  i.throttled_packets = sum(c.rx.throttled, c.tx.throttled);
  i.throttled_time = c.throttled_time;
  return i;
}

inline disk_counters disk_counters_of(const function_view& f) {
  const auto& c = f.counters.disk;
  disk_counters d;
  d.target = f.target.empty() ? f.address : f.target;
  d.read_requests = c.read_requests;
  d.write_requests = c.write_requests;
  d.read_bytes = c.read_bytes;
  d.write_bytes = c.write_bytes;
  d.errors = c.errors;
  d.throttled_requests = c.throttled;
  d.throttled_time = c.throttled_time;
  return d;
}

// Card-enforced resources are `hardware`; a bare-metal board's CPU and memory
// are `dedicated`.
inline void set_modes(instance_info& info, const std::vector<const function_view*>& fns, bool has_board) {
  info.modes.set(resource_kind::offload_function, isolation_mode::hardware);
  for (const auto* f : fns) {
    if (f->type == function_type::virtio_net) {
      info.modes.set(resource_kind::net_bandwidth, isolation_mode::hardware);
      info.modes.set(resource_kind::net_pps, isolation_mode::hardware);
    } else {
      info.modes.set(resource_kind::disk_bandwidth, isolation_mode::hardware);
      info.modes.set(resource_kind::disk_iops, isolation_mode::hardware);
    }
  }
  if (has_board) {
    info.modes.set(resource_kind::cpu, isolation_mode::dedicated);
    info.modes.set(resource_kind::memory, isolation_mode::dedicated);
  }
}

// Knobs of the common vocabulary that a card function never has.
inline void add_unsupported(std::vector<std::string>& out, const std::vector<const function_view*>& fns) {
  bool net = false, blk = false;
  for (const auto* f : fns) (f->type == function_type::virtio_net ? net : blk) = true;
  if (net) {
    for (const char* k : {"interfaces[].inbound.peak", "interfaces[].inbound.floor", "interfaces[].outbound.peak"})
      out.emplace_back(k);
  }
  if (blk) {
    for (const char* k : {"disks[].read_bytes_sec", "disks[].write_bytes_sec", "disks[].read_iops_sec",
                          "disks[].write_iops_sec", "disks[].total_bytes_sec_max", "disks[].total_iops_sec_max",
                          "disks[].read_bytes_sec_max", "disks[].write_bytes_sec_max", "disks[].read_iops_sec_max",
                          "disks[].write_iops_sec_max", "disks[].weight", "blkio_weight"})
      out.emplace_back(k);
  }
}

}  // namespace bulkhead::offload::detail
