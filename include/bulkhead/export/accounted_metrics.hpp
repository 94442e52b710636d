// bulkhead/export/accounted_metrics.hpp: the journal's accounted totals as
// metrics, per instance and per tenant.
//
// Every value is an integer in the unit its name ends with, written in full
// decimal (128-bit totals included), never as a float of seconds:
//   bulkhead_accounted_cpu_nanoseconds_total                CPU time, ns
//   bulkhead_accounted_disk_{read,write}_bytes_total        disk bytes
//   bulkhead_accounted_network_{receive,transmit}_bytes_total
//   bulkhead_accounted_vcpu_nanoseconds_total               vCPUs held x ns
//   bulkhead_accounted_memory_byte_nanoseconds_total        bytes held x ns
//   bulkhead_accounted_{gaps,resets,wraps}_total            counts
//   bulkhead_accounted_incarnations                         gauge
// with the labels uuid, name, tenant, qos_class (the labels of the
// instance's most recently defined series; empty when unknown), and the same
// families prefixed bulkhead_tenant_ (label tenant only, "" for instances
// without one) summed per tenant. docs/metrics.md says why a billing check
// should read these rather than rate() over raw counters, and what a float64
// scrape keeps of them (exact up to 2^53).
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>

#include "bulkhead/accounting/rollup.hpp"
#include "bulkhead/export/metrics_writer.hpp"

namespace bulkhead::metrics {

struct accounted {
  std::span<const accounting::instance_totals> instances;
  std::span<const accounting::tenant_totals> tenants;
};

namespace detail {
inline void add_totals(writer& w, const std::string& prefix, const std::string& labels, const std::string& who,
                       const accounting::accounted_totals& t) {
  using bulkhead::to_decimal;
  const auto c = kind::counter;
  w.add(prefix + "cpu_nanoseconds", c, "nanoseconds", "CPU time accounted to the " + who + " (journal, exact).", labels,
        to_decimal(t.cpu_time_ns));
  w.add(prefix + "disk_read_bytes", c, "bytes", "Disk bytes read, accounted to the " + who + ".", labels,
        to_decimal(t.disk_read_bytes));
  w.add(prefix + "disk_write_bytes", c, "bytes", "Disk bytes written, accounted to the " + who + ".", labels,
        to_decimal(t.disk_write_bytes));
  w.add(prefix + "network_receive_bytes", c, "bytes", "Network bytes received, accounted to the " + who + ".", labels,
        to_decimal(t.net_rx_bytes));
  w.add(prefix + "network_transmit_bytes", c, "bytes", "Network bytes transmitted, accounted to the " + who + ".",
        labels, to_decimal(t.net_tx_bytes));
  w.add(prefix + "vcpu_nanoseconds", c, "vcpu_nanoseconds",
        "vCPUs held by the " + who + " integrated over time (vCPU x ns).", labels, to_decimal(t.vcpu_reserved_ns));
  w.add(prefix + "memory_byte_nanoseconds", c, "byte_nanoseconds",
        "Memory held by the " + who + " integrated over time (byte x ns).", labels,
        to_decimal(t.memory_reserved_byte_ns));
  w.add(prefix + "gaps", c, "", "Failed reads of the " + who + " journaled as gaps.", labels, std::to_string(t.gaps));
  w.add(prefix + "resets", c, "", "Counter resets seen in the " + who + "'s series.", labels, std::to_string(t.resets));
  w.add(prefix + "wraps", c, "", "Counter wraps seen in the " + who + "'s series.", labels, std::to_string(t.wraps));
}
}  // namespace detail

inline void render(const accounted& a, writer& w) {
  for (const auto& i : a.instances) {
    const std::string l = label("uuid", i.uuid.to_string()) + "," + label("name", i.labels.name) + "," +
                          label("tenant", i.labels.tenant.value_or("")) + "," +
                          label("qos_class", i.labels.qos ? std::string(to_string(*i.labels.qos)) : "");
    detail::add_totals(w, "bulkhead_accounted_", l, "instance", i.totals);
    w.add("bulkhead_accounted_incarnations", kind::gauge, "", "Incarnations of the instance the journal holds.", l,
          std::to_string(i.incarnations));
  }
  for (const auto& t : a.tenants)
    detail::add_totals(w, "bulkhead_tenant_accounted_", label("tenant", t.tenant.value_or("")), "tenant",
                                 t.totals);
}

}  // namespace bulkhead::metrics
