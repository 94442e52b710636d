// bulkhead/accounting/meter.hpp: raw cumulative counters -> exact deltas.
//
// The rules (docs/accounting.md, each one tested in tests/unit/test_meter.cpp):
//  - FIRST SAMPLE: the first sample of a series (an incarnation's counter)
//    sets its baseline and accounts nothing; what the counter held before it
//    is never accounted (it belongs to no interval this meter saw).
//  - RESET: a usage counter that goes down by at most half its range within
//    one series was reset: its new value is accounted as growth since the
//    reset, and the reset is counted.
//  - WRAP: a counter that goes down by more than half its range (2^(w-1) for
//    width w) wrapped: the delta is (new - old) mod 2^w, and the wrap counted.
//  - NEW INCARNATION: a new incarnation is a new series with its own first
//    sample; close_incarnation() closes the old one with what it had, and a
//    closed series rejects later samples.
//  - OUT OF ORDER: a sample whose monotonic time is not after the series'
//    last one is rejected and counted, never accounted.
//  - GAP: read_failed() advances nothing; the next good sample's delta covers
//    the whole interval since the last good one (flag after_gap), and a
//    gap_record (start, end, reason) is kept until take_gaps().
//  - ALLOCATION series hold a level (vCPUs, bytes): each sample accounts the
//    level seen at the previous sample over the interval since it, as
//    level x nanoseconds in 128 bits; the level is taken as held through a gap.
// Integers only; nothing here rounds.
//
// Hot path: series() interns a key once and returns a handle; observe() on a
// handle does no allocation and no lookup (except when closing a gap). About
// 50-100 bytes of state per series.
//
// Thread-safety: not thread-safe; one meter per thread, or serialise calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bulkhead/accounting/types.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::accounting {

struct series_handle {
  std::uint32_t index = 0;
  friend constexpr bool operator==(series_handle, series_handle) = default;
};

enum class sample_outcome : std::uint8_t {
  accounted,     // a delta was produced (its amount may be 0)
  baseline,      // first sample of the series: baseline set, nothing accounted
  out_of_order,  // not newer than the series' last sample: rejected
  closed,        // the series' incarnation was closed: rejected
  out_of_range,  // a usage value wider than the series' declared width: rejected
};

[[nodiscard]] constexpr std::string_view to_string(sample_outcome o) noexcept {
  switch (o) {
    case sample_outcome::accounted: return "accounted";
    case sample_outcome::baseline: return "baseline";
    case sample_outcome::out_of_order: return "out_of_order";
    case sample_outcome::closed: return "closed";
    case sample_outcome::out_of_range: return "out_of_range";
  }
  return "?";
}

struct sample_result {
  sample_outcome outcome = sample_outcome::baseline;
  delta d;  // meaningful when outcome == accounted
  [[nodiscard]] constexpr bool accounted() const noexcept { return outcome == sample_outcome::accounted; }
};

// What one series accounted so far in this meter (not durable: the journal's
// rollups are the durable totals).
struct series_totals {
  u128 amount = 0;  // usage: sum of deltas (counter units); allocation: level x ns
  std::uint64_t deltas = 0;
  std::uint64_t resets = 0;
  std::uint64_t wraps = 0;
  std::uint64_t gaps_covered = 0;
  std::uint64_t rejected = 0;  // out_of_order + closed + out_of_range samples
  bool closed = false;
};

struct meter_stats {
  std::uint64_t samples = 0;
  std::uint64_t accounted = 0;
  std::uint64_t baselines = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t closed = 0;
  std::uint64_t out_of_range = 0;
  std::uint64_t resets = 0;
  std::uint64_t wraps = 0;
  std::uint64_t failed_reads = 0;
  std::uint64_t gaps = 0;  // gaps closed
};

class meter {
 public:
  meter();
  ~meter();
  meter(meter&&) noexcept;
  meter& operator=(meter&&) noexcept;

  // Interns a series: the same key always gives the same handle. Labels are
  // kept from the first call. Errors: the key fails validate(key).
  [[nodiscard]] result<series_handle> series(const series_key& key, const instance_labels& labels = {});
  [[nodiscard]] std::optional<series_handle> find(const series_key& key) const;

  // The hot path. `raw` is the counter's cumulative value (usage) or the level
  // held from now on (allocation). Precondition: h came from this meter.
  sample_result observe(series_handle h, mono_time t, wall_time wall, std::uint64_t raw);

  // A read of (source, uuid) failed at `at`. Nothing advances; the gap
  // stays open until the instance's next good sample at or after `at`.
  // Errors: an invalid source or a reason that fails validate_label.
  [[nodiscard]] result<void> read_failed(const std::string& source, const bulkhead::uuid& uuid, mono_time at,
                                         std::string_view reason);

  // Closes every series of (source, uuid, incarnation): they keep their totals
  // and reject later samples. Returns how many were closed.
  std::size_t close_incarnation(const std::string& source, const bulkhead::uuid& uuid, bulkhead::incarnation incarnation);

  // Seeds a series that has seen no sample with the state a previous meter
  // left (e.g. from the journal after a restart), so the next sample accounts
  // from `last_value` at `last` instead of being a baseline. Ignored when the
  // series already has a newer sample.
  void resume(series_handle h, mono_time last, wall_time last_wall, std::uint64_t last_value);

  // Gaps closed since the last call, oldest first.
  [[nodiscard]] std::vector<gap_record> take_gaps();
  // Whether (source, uuid) has a failed read not yet covered.
  [[nodiscard]] bool gap_open(const std::string& source, const bulkhead::uuid& uuid) const;

  [[nodiscard]] const series_key& key(series_handle h) const;
  [[nodiscard]] const instance_labels& labels(series_handle h) const;
  [[nodiscard]] series_totals totals(series_handle h) const;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] const meter_stats& stats() const noexcept { return stats_; }

  struct impl;

 private:
  void close_gap(std::uint32_t inst, std::int64_t t, wall_time wall);
  std::unique_ptr<impl> p_;
  meter_stats stats_;
};

}  // namespace bulkhead::accounting

#include "bulkhead/accounting/detail/meter_impl.hpp"
