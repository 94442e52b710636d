// bulkhead/export/metrics.hpp: host and instance readings as Prometheus
// metrics, in two text formats:
//   - openmetrics: OpenMetrics 1.0 (counter families named without _total,
//     samples with it, # UNIT lines, a final # EOF);
//   - prometheus: the classic text exposition format 0.0.4, which
//     node_exporter's textfile collector reads and `promtool check metrics`
//     lints (there a counter's # TYPE names the _total sample).
// Values are in base units: seconds as exact decimal fractions of the
// nanosecond counters, bytes, bytes per second, cores as exact decimal
// fractions of millicores. A limit that is unlimited has no sample (absent
// means no limit). Every instance series carries the labels uuid, name,
// tenant, qos_class, isolation, source; label values are escaped (backslash,
// double quote, newline) and made valid UTF-8. The metric names are listed
// in docs/metrics.md. Every counter bulkhead reads (accounting/counters.hpp)
// and every gauge of usage_sample (except resctrl's cache monitors) has a
// series.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/export/metrics_writer.hpp"
#include "bulkhead/model/instance.hpp"

namespace bulkhead::metrics {

struct source {
  std::string kind;  // "libvirt", "offload", ...
  std::string uri;
  bool up = false;
  const host_capacity* host = nullptr;
  std::span<const instance_reading> instances;
};

[[nodiscard]] std::string render(std::span<const source> sources, format f);
// The same families added to `out` (to write them beside others in one
// exposition: bulkhead-agent adds the accounted totals, accounted_metrics.hpp).
void render(std::span<const source> sources, writer& out);

// 48772617035 ns -> "48.772617035"; exact, no floating point.
[[nodiscard]] std::string seconds_text(std::int64_t ns);

}  // namespace bulkhead::metrics

#include "bulkhead/export/detail/metrics_impl.hpp"
