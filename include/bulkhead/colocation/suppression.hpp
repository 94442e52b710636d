// bulkhead/colocation/suppression.hpp: the BE CPU suppression controller.
//
// Called once per control interval with what online work used in the last
// one, it produces the CPU limit of all BE work (Koordinator's CPU suppress,
// facts in ANCHORS.md):
//   threshold_capacity = floor(capacity x threshold / 100)
//   target = max(0, threshold_capacity - non_be_used - max(system_used, system_reserved))
//   target = min(max(target, floor), capacity)
// and moves the limit towards it:
//   - a shrink is applied at once (online demand rose: give CPU back now);
//   - a rise is capped at floor(capacity x max_growth / 100) per step;
//   - a change smaller than floor(capacity x dead_band / 100) is skipped;
//   - when the host ran out of CPU last interval (non_be_used + be_used +
//     system_used within the dead band of capacity), online usage understates
//     online demand (it got what BE left it), so the limit drops to the floor
//     at once ("saturated") and regrows at the normal pace;
//   - inside a peak window the limit is at most floor(capacity x fraction),
//     applied at once, never skipped, and below the floor when the fraction
//     says so (0: BE gets nothing and is frozen); after the window the limit
//     grows back at the normal pace.
// The decision carries a quota spec for a backend to apply: CFS quota per
// period (cgroup cpu.max / cpu.cfs_quota_us) or a cpuset of whole CPUs taken
// from the BE-allowed CPUs, highest ids first. A limit of 0 cannot be said
// with CFS quota (the kernel's minimum is 1 ms, Documentation/scheduler/
// sched-bwc.rst) nor an empty cpuset, so the spec sets `freeze` (cgroup v2
// cgroup.freeze, v1 freezer) and the smallest quota as a fallback.
//
// Time comes from the injected clock (the window in force at clock.now()).
// Thread-safety: one controller belongs to one control loop; not for
// concurrent use. The calendar and clock must outlive it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "bulkhead/colocation/clock.hpp"
#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::colocation {

namespace detail {
__extension__ using i128 = __int128;  // signed 128-bit intermediates (GCC and Clang)
}  // namespace detail

enum class suppress_mode : std::uint8_t { cfs_quota, cpuset };
enum class suppression_reason : std::uint8_t {
  first_step,    // no previous limit: set to the target
  shrink,        // target below the limit: applied at once
  grow,          // target above the limit, within the growth cap
  grow_capped,   // target above the limit, rise capped
  unchanged,     // target equals the limit
  dead_band,     // change smaller than the dead band: skipped
  window_cap,    // a peak window capped the limit
  saturated,     // the host ran out of CPU: dropped to the floor
};

}  // namespace bulkhead::colocation

namespace bulkhead {
template <>
struct enum_names<colocation::suppress_mode> {
  static constexpr std::array values{
      std::pair{colocation::suppress_mode::cfs_quota, std::string_view{"cfs_quota"}},
      std::pair{colocation::suppress_mode::cpuset, std::string_view{"cpuset"}},
  };
  static constexpr std::string_view what = "suppress mode";
};
template <>
struct enum_names<colocation::suppression_reason> {
  static constexpr std::array values{
      std::pair{colocation::suppression_reason::first_step, std::string_view{"first_step"}},
      std::pair{colocation::suppression_reason::shrink, std::string_view{"shrink"}},
      std::pair{colocation::suppression_reason::grow, std::string_view{"grow"}},
      std::pair{colocation::suppression_reason::grow_capped, std::string_view{"grow_capped"}},
      std::pair{colocation::suppression_reason::unchanged, std::string_view{"unchanged"}},
      std::pair{colocation::suppression_reason::dead_band, std::string_view{"dead_band"}},
      std::pair{colocation::suppression_reason::window_cap, std::string_view{"window_cap"}},
      std::pair{colocation::suppression_reason::saturated, std::string_view{"saturated"}},
  };
  static constexpr std::string_view what = "suppression reason";
};
}  // namespace bulkhead

namespace bulkhead::colocation {

struct suppression_config {
  percent threshold{65};            // Koordinator's cpuSuppressThresholdPercent default
  millicores floor{2000};           // BE keeps at least this outside peak windows (Koordinator: 2 cores in cpuset mode)
  percent max_growth{10};           // of capacity per step (Koordinator: 10%)
  percent dead_band{1};             // of capacity (Koordinator: changes under 1% skipped)
  suppress_mode mode = suppress_mode::cfs_quota;
  microseconds period{100000};      // CFS period for quota specs
};

struct suppression_input {
  millicores capacity{0};         // CPU of the host (or of the pool BE shares)
  millicores non_be_used{0};      // LS, LSR, LSE and SYSTEM-class instances, last interval
  millicores system_used{0};      // host processes outside instances
  millicores system_reserved{0};  // kept for them
  std::optional<millicores> be_used;  // what BE used last interval, if measured (saturation check)
  cpuset be_cpus;                 // cpuset mode: CPUs BE may use (cpu_pools_view::be_allowed)
};

// Each term of the decision.
struct suppression_explanation {
  millicores capacity{0};
  percent threshold{0};
  millicores threshold_capacity{0};
  millicores non_be_used{0};
  millicores system_used{0};
  millicores system_reserved{0};
  millicores system_term{0};
  millicores formula{0};  // max(0, threshold_capacity - non_be_used - system_term)
  millicores deficit{0};  // how far below 0 it went
  millicores floor{0};
  millicores target{0};   // formula raised to the floor, at most capacity (cpuset: whole CPUs)
  std::optional<millicores> previous;
  millicores growth_cap{0};  // largest rise allowed this step
  millicores dead_band{0};
  std::optional<millicores> be_used;
  bool saturated = false;  // non_be_used + be_used + system_used came within dead_band of capacity
  std::optional<window_occurrence> window;
  std::optional<millicores> window_cap;
  millicores limit{0};
};

// What a backend applies to the BE group.
struct be_cpu_spec {
  millicores limit{0};
  bool freeze = false;  // limit 0: freeze BE (cgroup.freeze / freezer)
  cpu_spec cpu;         // period + quota (cfs_quota mode) or cpus (cpuset mode)
};

struct suppression_decision {
  wall_time at{};
  millicores limit{0};
  bool changed = false;  // the spec differs from the previous step's
  suppression_reason reason = suppression_reason::unchanged;
  be_cpu_spec spec;
  suppression_explanation why;
};

[[nodiscard]] inline result<void> validate(const suppression_config& c) {
  if (c.threshold.count() > 100)
    return fail(errc::out_of_range, "suppression threshold: " + std::to_string(c.threshold.count()) + " percent is above 100");
  if (c.max_growth.count() == 0)
    return fail(errc::out_of_range, "suppression max_growth: 0 percent would never let BE grow");
  if (c.dead_band.count() >= 100)
    return fail(errc::out_of_range, "suppression dead_band: " + std::to_string(c.dead_band.count()) +
                                        " percent would skip every change");
  if (c.period < cfs_period_min || c.period > cfs_period_max)
    return fail(errc::out_of_range, "suppression period: " + std::to_string(c.period.count()) +
                                        " us is outside 1000..1000000 us");
  return {};
}

class suppression_controller {
 public:
  // calendar may be null (no peak windows). initial: the BE limit in force
  // now (read back from the group), if known.
  [[nodiscard]] static result<suppression_controller> make(const suppression_config& config, const clock_source& clock,
                                                           const peak_calendar* calendar = nullptr,
                                                           std::optional<millicores> initial = std::nullopt) {
    if (auto r = validate(config); !r) return fail(r.error());
    return suppression_controller(config, clock, calendar, initial);
  }

  [[nodiscard]] const suppression_config& config() const noexcept { return config_; }
  [[nodiscard]] std::optional<millicores> current() const noexcept { return current_; }

  // One control step. errc::invalid_argument for a zero capacity or, in
  // cpuset mode, no BE CPUs.
  [[nodiscard]] result<suppression_decision> step(const suppression_input& in) {
    if (in.capacity.count() == 0) return fail(errc::invalid_argument, "suppression input: capacity is 0");
    if (config_.mode == suppress_mode::cpuset && in.be_cpus.empty())
      return fail(errc::invalid_argument, "suppression input: cpuset mode needs the BE-allowed CPUs (be_cpus)");
    const auto now = clock_->now();
    const std::uint64_t cap = in.capacity.count();
    const auto pct = [&](percent p) { return bulkhead::detail::muldiv_floor(cap, p.count(), 100).value_or(cap); };

    suppression_explanation e;
    e.capacity = in.capacity;
    e.threshold = config_.threshold;
    e.threshold_capacity = millicores{pct(config_.threshold)};
    e.non_be_used = in.non_be_used;
    e.system_used = in.system_used;
    e.system_reserved = in.system_reserved;
    e.system_term = std::max(in.system_used, in.system_reserved);
    const detail::i128 f = static_cast<detail::i128>(e.threshold_capacity.count()) - in.non_be_used.count() - e.system_term.count();
    e.formula = millicores{f > 0 ? static_cast<std::uint64_t>(f) : 0};
    e.deficit = millicores{f < 0 ? static_cast<std::uint64_t>(-f) : 0};
    e.floor = config_.floor;
    std::uint64_t target = std::min(std::max(e.formula.count(), config_.floor.count()), cap);
    if (config_.mode == suppress_mode::cpuset) {
      const std::uint64_t max_cpus = in.be_cpus.size() * millicores_per_core;
      target = std::min(target, max_cpus) / millicores_per_core * millicores_per_core;
    }
    e.target = millicores{target};
    e.previous = current_;
    e.growth_cap = millicores{pct(config_.max_growth)};
    e.dead_band = millicores{pct(config_.dead_band)};

    e.be_used = in.be_used;
    if (in.be_used) {
      const u128 total = static_cast<u128>(in.non_be_used.count()) + in.be_used->count() + in.system_used.count();
      e.saturated = total + e.dead_band.count() >= cap;
    }

    suppression_reason reason = suppression_reason::unchanged;
    std::uint64_t limit = target;
    if (e.saturated && current_ && std::min(target, config_.floor.count()) < current_->count()) {
      limit = std::min(target, config_.floor.count());
      reason = suppression_reason::saturated;
    } else if (!current_) {
      reason = suppression_reason::first_step;
    } else {
      const std::uint64_t prev = current_->count();
      if (target < prev) {
        reason = suppression_reason::shrink;
      } else if (target > prev) {
        const std::uint64_t room = e.growth_cap.count();
        if (target - prev > room) {
          limit = prev + room;
          if (config_.mode == suppress_mode::cpuset)
            limit = std::max(prev + millicores_per_core, limit / millicores_per_core * millicores_per_core);
          limit = std::min(limit, target);
          reason = limit < target ? suppression_reason::grow_capped : suppression_reason::grow;
        } else {
          reason = suppression_reason::grow;
        }
      }
    }
    bool forced = false;
    if (calendar_) {
      if (auto w = calendar_->active_at(now)) {
        const std::uint64_t wcap = w->be_fraction.apply_floor(cap).value_or(cap);
        std::uint64_t c = wcap;
        if (config_.mode == suppress_mode::cpuset) c = c / millicores_per_core * millicores_per_core;
        e.window = std::move(*w);
        e.window_cap = millicores{c};
        if (limit >= c) {
          // Shrinking to the cap is never skipped; growing up to it is a
          // normal rise.
          forced = !current_ || current_->count() > c;
          limit = c;
          reason = suppression_reason::window_cap;
        }
      }
    }
    if (current_ && !forced && reason != suppression_reason::first_step && reason != suppression_reason::saturated) {
      const std::uint64_t prev = current_->count();
      const std::uint64_t diff = limit > prev ? limit - prev : prev - limit;
      if (diff != 0 && diff < e.dead_band.count() && limit != 0) {
        limit = prev;
        reason = suppression_reason::dead_band;
      }
    }
    e.limit = millicores{limit};

    suppression_decision d;
    d.at = now;
    d.limit = e.limit;
    d.changed = !current_ || current_->count() != limit;
    d.reason = reason;
    d.spec = spec_for(e.limit, in.be_cpus);
    d.why = std::move(e);
    current_ = d.limit;
    return d;
  }

  // The spec for a limit, as step() builds it.
  [[nodiscard]] be_cpu_spec spec_for(millicores lim, const cpuset& be_cpus) const {
    be_cpu_spec s;
    s.limit = lim;
    s.freeze = lim.count() == 0;
    if (config_.mode == suppress_mode::cfs_quota) {
      s.cpu.period = config_.period;
      auto q = to_cfs_quota(lim, config_.period).value_or(cfs_quota_max);
      s.cpu.quota = limit<microseconds>{std::clamp(q, cfs_quota_min, cfs_quota_max)};
    } else {
      const auto ids = be_cpus.ids();
      const std::size_t n = std::max<std::size_t>(1, std::min<std::size_t>(ids.size(), lim.count() / millicores_per_core));
      cpuset c;
      for (std::size_t i = 0; i < n && i < ids.size(); ++i) c.insert(ids[ids.size() - 1 - i]);
      s.cpu.cpus = std::move(c);
    }
    return s;
  }

 private:
  suppression_controller(const suppression_config& c, const clock_source& clock, const peak_calendar* cal,
                         std::optional<millicores> initial)
      : config_(c), clock_(&clock), calendar_(cal), current_(initial) {}
  suppression_config config_;
  const clock_source* clock_;
  const peak_calendar* calendar_;
  std::optional<millicores> current_;
};

}  // namespace bulkhead::colocation
