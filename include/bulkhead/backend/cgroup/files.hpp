// bulkhead/backend/cgroup/files.hpp: parsers of cgroup control files, for
// text the caller hands in (header code; the backend reads the files).
// `what` names the file in errors. Text may end in a newline. Formats:
// Documentation/admin-guide/cgroup-v2.rst ("Interface Files", "Format"),
// cgroup-v1/memory.rst, cgroup-v1/blkio-controller.rst, cgroup-v1/cpuacct.rst,
// Documentation/scheduler/sched-bwc.rst.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::cgroup {

struct cpu_max {
  limit<microseconds> quota = unlimited;
  microseconds period{100000};
  friend bool operator==(const cpu_max&, const cpu_max&) = default;
};
// v2 cpu.max: "$MAX $PERIOD", $MAX a number or "max".
[[nodiscard]] result<cpu_max> parse_cpu_max(std::string_view text, std::string_view what = "cpu.max");
[[nodiscard]] std::string format_cpu_max(const cpu_max& v);

// v2 memory.max / memory.high / memory.min / memory.low: bytes or "max".
[[nodiscard]] result<limit<bytes>> parse_v2_bytes(std::string_view text, std::string_view what);
// v1 memory.*limit_in_bytes: bytes; the page-counter maximum
// ((2^63-1) / page_size * page_size) reads as unlimited.
[[nodiscard]] result<limit<bytes>> parse_v1_bytes(std::string_view text, std::uint64_t page_size, std::string_view what);

// One unsigned number, such as cpu.weight or cpuacct.usage.
[[nodiscard]] result<std::uint64_t> parse_u64(std::string_view text, std::string_view what);

// Flat keyed files ("key value" per line): cpu.stat, memory.events,
// memory.oom_control.
[[nodiscard]] result<std::map<std::string, std::uint64_t>> parse_flat_keyed(std::string_view text, std::string_view what);

// "MAJ:MIN" device numbers, checked and kept as text.
[[nodiscard]] result<std::string> parse_device(std::string_view text, std::string_view what);

// Nested keyed files: "MAJ:MIN key=value key=value" per line (io.max,
// io.stat). Values stay text ("max" is a value of io.max).
using nested_keyed = std::map<std::string, std::map<std::string, std::string>>;
[[nodiscard]] result<nested_keyed> parse_nested_keyed(std::string_view text, std::string_view what);

// v2 io.weight: "default N" then "MAJ:MIN N" lines.
struct io_weight {
  std::uint64_t default_weight = 100;
  std::map<std::string, std::uint64_t> devices;
};
[[nodiscard]] result<io_weight> parse_io_weight(std::string_view text, std::string_view what = "io.weight");

// v1 "MAJ:MIN value" files (blkio.throttle.*_device, blkio.weight_device).
[[nodiscard]] result<std::map<std::string, std::uint64_t>> parse_device_values(std::string_view text, std::string_view what);

// v1 blkio.throttle.io_service_bytes / io_serviced:
// "MAJ:MIN Read N", "... Write N", ... and a final "Total N".
struct blkio_rw {
  std::uint64_t read = 0;
  std::uint64_t write = 0;
};
[[nodiscard]] result<std::map<std::string, blkio_rw>> parse_blkio_stat(std::string_view text, std::string_view what);

}  // namespace bulkhead::cgroup

#include "bulkhead/backend/cgroup/detail/files_impl.hpp"
