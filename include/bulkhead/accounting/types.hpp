// bulkhead/accounting/types.hpp: the vocabulary shared by meters, the journal
// and rollups.
//
// A series is one cumulative counter (or one allocation level) of one
// incarnation of one instance from one source:
//   (source, instance uuid, incarnation, counter name, width bits, kind).
// Names are labels inside the key; the key itself is the whole tuple.
//
// Times: `mono_time` is the source's monotonic clock (CLOCK_MONOTONIC for
// std::chrono::steady_clock on Linux) and orders samples; `wall_time` (UTC)
// only places usage in calendar-hour buckets. A monotonic clock restarts at
// every boot, so `source` must be unique per boot of the clock that stamps
// the samples (docs/accounting.md, "Identity").
//
// Thread-safety: values only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::accounting {

// usage: a cumulative counter; a delta is its increase over an interval.
// allocation: a level held (vCPUs, memory bytes); a delta is the level held
// over an interval, accounted as level x nanoseconds.
enum class series_kind : std::uint8_t { usage = 0, allocation = 1 };

// What a counter contributes to in the fixed rollup fields. Everything is
// also kept per counter name; the class only picks the headline field.
enum class counter_class : std::uint8_t {
  other = 0,
  cpu_time,          // "cpu_time_ns"
  disk_read_bytes,   // "disk/<target>/read_bytes"
  disk_write_bytes,  // "disk/<target>/write_bytes"
  net_rx_bytes,      // "net/<mac>/rx_bytes"
  net_tx_bytes,      // "net/<mac>/tx_bytes"
  vcpus,             // allocation "alloc/vcpus" -> vcpu_reserved_ns
  memory_bytes,      // allocation "alloc/memory_bytes" -> memory_reserved_byte_ns
};

inline constexpr std::string_view alloc_vcpus_counter = "alloc/vcpus";
inline constexpr std::string_view alloc_memory_counter = "alloc/memory_bytes";

[[nodiscard]] constexpr counter_class classify(std::string_view counter, series_kind kind) noexcept {
  if (kind == series_kind::allocation) {
    if (counter == alloc_vcpus_counter) return counter_class::vcpus;
    if (counter == alloc_memory_counter) return counter_class::memory_bytes;
    return counter_class::other;
  }
  if (counter == "cpu_time_ns") return counter_class::cpu_time;
  const auto ends = [&](std::string_view s) {
    return counter.size() > s.size() && counter.substr(counter.size() - s.size()) == s;
  };
  if (counter.starts_with("disk/")) {
    if (ends("/read_bytes")) return counter_class::disk_read_bytes;
    if (ends("/write_bytes")) return counter_class::disk_write_bytes;
  } else if (counter.starts_with("net/")) {
    if (ends("/rx_bytes")) return counter_class::net_rx_bytes;
    if (ends("/tx_bytes")) return counter_class::net_tx_bytes;
  }
  return counter_class::other;
}

// All-ones in the low `width_bits` bits; width 1..64.
[[nodiscard]] constexpr std::uint64_t width_mask(unsigned width_bits) noexcept {
  return width_bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width_bits) - 1;
}

inline constexpr std::size_t max_label_bytes = 255;    // source, counter, name, tenant
inline constexpr std::size_t max_reason_bytes = 1024;  // gap reasons

// A label kept in the journal: non-empty, at most max bytes, valid UTF-8, no
// control characters. `what` names the input in the error.
[[nodiscard]] inline result<void> validate_label(std::string_view s, std::string_view what,
                                                 std::size_t max = max_label_bytes) {
  if (s.empty()) return fail(errc::invalid_argument, std::string(what) + ": empty");
  if (s.size() > max)
    return fail(errc::invalid_argument,
                std::string(what) + " " + bulkhead::detail::quote(s) + ": longer than " + std::to_string(max) + " bytes");
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return fail(errc::invalid_argument, std::string(what) + " " + bulkhead::detail::quote(s) + ": contains a control character");
  if (!bulkhead::detail::is_utf8(s)) return fail(errc::invalid_argument, std::string(what) + " " + bulkhead::detail::quote(s) + ": not valid UTF-8");
  return {};
}

struct series_key {
  std::string source;   // backend source, unique per boot (see above)
  bulkhead::uuid uuid;  // the instance
  bulkhead::incarnation incarnation;
  std::string counter;  // "cpu_time_ns", "disk/vda/read_bytes" (docs/accounting.md)
  std::uint8_t width_bits = 64;  // usage: the counter wraps at 2^width_bits
  series_kind kind = series_kind::usage;
  friend bool operator==(const series_key&, const series_key&) = default;
};

[[nodiscard]] inline result<void> validate(const series_key& k) {
  if (auto r = validate_label(k.source, "series source"); !r) return r;
  if (auto r = validate_label(k.counter, "series counter"); !r) return r;
  if (k.width_bits < 1 || k.width_bits > 64)
    return fail(errc::out_of_range, "series " + bulkhead::detail::quote(k.counter) + ": width " +
                                        std::to_string(k.width_bits) + " bits is outside 1..64");
  if (k.kind != series_kind::usage && k.kind != series_kind::allocation)
    return fail(errc::invalid_argument, "series " + bulkhead::detail::quote(k.counter) + ": unknown kind");
  return {};
}

// Labels of an instance incarnation, for rollups by tenant and class. Kept
// with the series when it is first defined; never part of the identity.
struct instance_labels {
  std::string name;  // may be empty
  std::optional<std::string> tenant;
  std::optional<qos_class> qos;
  friend bool operator==(const instance_labels&, const instance_labels&) = default;
};

[[nodiscard]] inline result<void> validate(const instance_labels& l) {
  if (!l.name.empty())
    if (auto r = validate_label(l.name, "instance name"); !r) return r;
  if (l.tenant)
    if (auto r = validate_label(*l.tenant, "tenant"); !r) return r;
  return {};
}

// Why a delta looks the way it does. Bits, combinable.
namespace delta_flag {
inline constexpr std::uint8_t reset = 1;      // the counter went down: amount = its value since the reset
inline constexpr std::uint8_t wrap = 2;       // the counter wrapped at its width: amount is modulo 2^width
inline constexpr std::uint8_t after_gap = 4;  // the interval covers one or more failed reads
inline constexpr std::uint8_t all = reset | wrap | after_gap;
}  // namespace delta_flag

// One accounted interval of one series, as the journal stores it.
//   usage:      amount = the counter's increase over (start, end];
//   allocation: amount = the level held over (start, end].
// end_value is the raw counter value (usage) or the level observed (allocation)
// at `end`; a restarted meter resumes from it.
struct delta {
  mono_time start{};
  mono_time end{};
  wall_time wall_end{};
  std::uint64_t amount = 0;
  std::uint64_t end_value = 0;
  std::uint8_t flags = 0;
  friend bool operator==(const delta&, const delta&) = default;
};

// A failed read of an instance, closed by the next good sample:
// (start, end] is covered by that sample's deltas.
struct gap_record {
  std::string source;
  bulkhead::uuid uuid;  // the instance
  mono_time start{};      // the last good sample before the failure (or the first failure when none)
  mono_time end{};        // the first good sample after it
  wall_time wall_end{};   // wall time of `end`
  std::uint64_t failures = 0;  // failed reads reported in the gap
  std::string reason;     // the first failure's reason
  friend bool operator==(const gap_record&, const gap_record&) = default;
};

[[nodiscard]] inline std::int64_t ns_of(mono_time t) noexcept {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}
[[nodiscard]] inline std::int64_t ns_of(wall_time t) noexcept { return t.time_since_epoch().count(); }
[[nodiscard]] inline mono_time mono_from_ns(std::int64_t ns) noexcept {
  return mono_time{std::chrono::duration_cast<mono_clock::duration>(nanoseconds{ns})};
}
[[nodiscard]] inline wall_time wall_from_ns(std::int64_t ns) noexcept { return wall_time{nanoseconds{ns}}; }

}  // namespace bulkhead::accounting
