// bulkhead/accounting/rollup.hpp: accounted totals by incarnation, instance,
// tenant, qos_class and calendar hour (UTC), for usage and allocation.
//
// A rollup is the state the journal rebuilds on open: the series it has seen
// and everything accounted to them. It is also usable on its own (tests,
// tools): define() a series, check() and apply() deltas, apply_gap() gaps.
//
// Headline fields (accounted_totals) come from the counter's class (see
// classify() in types.hpp); every counter is also kept by name (by_counter()).
// Units: *_ns nanoseconds, *_bytes bytes, vcpu_reserved_ns vCPU x ns,
// memory_reserved_byte_ns byte x ns; all 128-bit, never floating point.
//
// Calendar hours: a delta covers the wall interval (wall_end - (end - start),
// wall_end]. When that crosses an hour boundary the amount is split in
// proportion to the nanoseconds in each hour, rounded down, and the last hour
// takes the remainder, so the hours always sum exactly to the delta.
// Allocation integrals split exactly (level x ns of each piece).
//
// Thread-safety: a value; not thread-safe for concurrent mutation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bulkhead/accounting/types.hpp"
#include "bulkhead/error.hpp"

namespace bulkhead::accounting {

struct accounted_totals {
  u128 cpu_time_ns = 0;
  u128 disk_read_bytes = 0;
  u128 disk_write_bytes = 0;
  u128 net_rx_bytes = 0;
  u128 net_tx_bytes = 0;
  u128 vcpu_reserved_ns = 0;         // vCPU x ns
  u128 memory_reserved_byte_ns = 0;  // byte x ns
  std::uint64_t resets = 0;
  std::uint64_t wraps = 0;
  std::uint64_t gaps = 0;    // gap records of the instance(s)
  std::uint64_t deltas = 0;  // delta records accounted

  // Adds v to the field of class c (nothing for counter_class::other).
  void add(counter_class c, u128 v) noexcept {
    switch (c) {
      case counter_class::cpu_time: cpu_time_ns += v; break;
      case counter_class::disk_read_bytes: disk_read_bytes += v; break;
      case counter_class::disk_write_bytes: disk_write_bytes += v; break;
      case counter_class::net_rx_bytes: net_rx_bytes += v; break;
      case counter_class::net_tx_bytes: net_tx_bytes += v; break;
      case counter_class::vcpus: vcpu_reserved_ns += v; break;
      case counter_class::memory_bytes: memory_reserved_byte_ns += v; break;
      case counter_class::other: break;
    }
  }
  accounted_totals& operator+=(const accounted_totals& o) noexcept {
    cpu_time_ns += o.cpu_time_ns;
    disk_read_bytes += o.disk_read_bytes;
    disk_write_bytes += o.disk_write_bytes;
    net_rx_bytes += o.net_rx_bytes;
    net_tx_bytes += o.net_tx_bytes;
    vcpu_reserved_ns += o.vcpu_reserved_ns;
    memory_reserved_byte_ns += o.memory_reserved_byte_ns;
    resets += o.resets;
    wraps += o.wraps;
    gaps += o.gaps;
    deltas += o.deltas;
    return *this;
  }
  friend bool operator==(const accounted_totals&, const accounted_totals&) = default;
};

// One series as the journal knows it: identity, labels, what it accounted,
// and where it stands (a restarted meter resumes from last_end/last_end_value).
struct series_info {
  std::uint32_t id = 0;  // the journal's series number (dense, from 0)
  series_key key;
  instance_labels labels;
  counter_class cls = counter_class::other;
  bool has_delta = false;
  std::int64_t first_start = 0;  // mono ns of the first delta's start
  std::int64_t last_end = 0;     // mono ns of the last delta's end
  std::int64_t last_wall_end = 0;
  std::uint64_t last_end_value = 0;
  u128 total = 0;  // usage: counter units; allocation: level x ns
  std::uint64_t deltas = 0, resets = 0, wraps = 0, gaps_covered = 0;
  friend bool operator==(const series_info& a, const series_info& b) {
    return a.id == b.id && a.key == b.key && a.labels == b.labels && a.cls == b.cls && a.has_delta == b.has_delta &&
           a.first_start == b.first_start && a.last_end == b.last_end && a.last_wall_end == b.last_wall_end &&
           a.last_end_value == b.last_end_value && a.total == b.total && a.deltas == b.deltas &&
           a.resets == b.resets && a.wraps == b.wraps && a.gaps_covered == b.gaps_covered;
  }
};

struct incarnation_totals {
  std::string source;
  bulkhead::uuid uuid;
  bulkhead::incarnation incarnation;
  instance_labels labels;
  std::int64_t first_start = 0, last_end = 0;  // mono ns; 0 when nothing accounted
  accounted_totals totals;
};

struct instance_totals {
  bulkhead::uuid uuid;
  instance_labels labels;  // from its most recently defined series
  std::uint64_t incarnations = 0;
  accounted_totals totals;
};

struct tenant_totals {
  std::optional<std::string> tenant;
  accounted_totals totals;
};

struct qos_totals {
  std::optional<qos_class> qos;
  accounted_totals totals;
};

struct hour_totals {
  std::int64_t hour = 0;  // start of the UTC hour, seconds since the Unix epoch
  accounted_totals totals;
};

// What check() says about a delta before it is applied.
enum class delta_check : std::uint8_t {
  fresh,      // not accounted yet: apply it
  duplicate,  // its interval ends at or before what the series already accounted: a resubmission
};

class rollup {
 public:
  rollup() = default;
  rollup(const rollup& o);
  rollup& operator=(const rollup& o);
  rollup(rollup&&) noexcept = default;
  rollup& operator=(rollup&&) noexcept = default;

  // --- queries (sorted: by uuid / source / incarnation / name / hour) ------
  [[nodiscard]] std::vector<incarnation_totals> by_incarnation() const;
  [[nodiscard]] std::vector<instance_totals> by_instance() const;
  [[nodiscard]] std::optional<instance_totals> instance(const uuid& id) const;
  [[nodiscard]] std::vector<tenant_totals> by_tenant() const;
  [[nodiscard]] std::vector<qos_totals> by_qos() const;
  [[nodiscard]] std::vector<hour_totals> by_hour() const;
  [[nodiscard]] std::vector<hour_totals> by_instance_hour(const uuid& id) const;
  // Every counter of an instance by name (usage: counter units; allocation:
  // level x ns), summed over its incarnations.
  [[nodiscard]] std::map<std::string, u128> by_counter(const uuid& id) const;
  // Host-wide sum of everything.
  [[nodiscard]] accounted_totals total() const;

  [[nodiscard]] const std::vector<series_info>& series() const noexcept { return series_; }
  [[nodiscard]] const std::vector<gap_record>& gaps() const noexcept { return gaps_; }
  [[nodiscard]] std::optional<std::uint32_t> find(const series_key& key) const;

  // --- building it ----------------------------------------------------------
  // Defines a series (or returns the id of the same key defined before).
  // Errors: an invalid key or labels.
  [[nodiscard]] result<std::uint32_t> define(const series_key& key, const instance_labels& labels);
  // Errors: errc::not_found (no such series), errc::invalid_argument (end not
  // after start, a usage end_value wider than the series, flags unknown),
  // errc::conflict (the interval overlaps what the series accounted without
  // ending inside it, or lies before the series began: a monotonic clock that
  // restarted under the same source).
  [[nodiscard]] result<delta_check> check(std::uint32_t id, const delta& d) const;
  // Accounts a delta that check() called fresh.
  void apply(std::uint32_t id, const delta& d);
  // Records a gap; false when the same (source, instance, start, end) was
  // recorded already (a resubmission).
  bool apply_gap(const gap_record& g);
  [[nodiscard]] bool has_gap(const gap_record& g) const;

  // Same series, gaps and hour buckets.
  friend bool operator==(const rollup& a, const rollup& b);

  // Binary form for checkpoints (docs/journal-format.md, "Checkpoint body"):
  // serialize() appends it, parse() reads it back (errc::corrupt naming what
  // was wrong).
  void serialize(std::string& out) const;
  [[nodiscard]] static result<rollup> parse(std::string_view in);

 private:
  struct hour_key {
    std::uint32_t inst;
    std::int64_t hour;
    friend auto operator<=>(const hour_key&, const hour_key&) = default;
  };
  struct instance_entry {
    bulkhead::uuid uuid;
    std::uint32_t latest_series = 0;
    std::uint64_t gaps = 0;
  };
  std::uint32_t instance_index(const uuid& id);
  void add_hours(std::uint32_t inst, counter_class cls, series_kind kind, const delta& d);
  [[nodiscard]] static std::string key_string(const series_key& k);

  std::vector<series_info> series_;
  std::vector<std::uint32_t> series_inst_;  // series id -> instances_ index
  std::vector<instance_entry> instances_;
  std::map<uuid, std::uint32_t> instance_ix_;
  std::map<std::string, std::uint32_t> key_ix_;
  std::vector<gap_record> gaps_;
  std::set<std::tuple<std::string, uuid, std::int64_t, std::int64_t>> gap_ix_;
  std::map<hour_key, accounted_totals> hours_;
  // Per series: the hour bucket its last delta went to (a cache, not state).
  struct bucket_cache {
    std::int64_t hour = 0;
    accounted_totals* bucket = nullptr;
  };
  std::vector<bucket_cache> cache_;
};

// (bulkhead::to_decimal, in units.hpp, formats a 128-bit value in decimal.)
// Parses a decimal 128-bit value; errors name `what`.
[[nodiscard]] result<u128> parse_u128(std::string_view s, std::string_view what);

}  // namespace bulkhead::accounting

#include "bulkhead/accounting/detail/rollup_impl.hpp"
