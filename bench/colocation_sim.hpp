// A trace-driven simulation of one host over 24 hours of simulated time,
// comparing in one run:
//   (a) static partitioning: online keeps its full request always, batch
//       gets the fixed rest;
//   (b) bulkhead co-location: the suppression controller sets the BE limit
//       every control interval from what online used;
//   (c) (b) plus a peak window (the festival's first hour, daily 00:00-01:00
//       in Asia/Shanghai, BE fraction 0).
// Time comes from a manual_clock moved by the simulation, so a day runs in
// well under a second. Every quantity is an integer (millicores, ms).
//
// The host model, per tick (100 ms):
//   available = capacity - system_used
//   batch     = min(BE limit, available)        (the backlog never runs dry)
//   online    = min(online demand, available - batch)
// BE holds the CPU it was given for the tick: the pessimistic case for
// online, so any shortfall a controller leaves is visible. Online shortfall
// "because batch held the CPU" is min(unmet online demand, batch) per tick.
// The controller sees only what was used in the last interval (online's
// usage is what it got, not what it wanted).
//
// The trace (the same for all three variants): a daily curve of online
// demand in per-mille of its request (quiet nights, busy evenings), noise
// per second and per tick from a seeded generator, a flash sale at 20:00
// (+40% of the request at once for 10 minutes), the festival at 00:00 (95% of
// the request at once for 20 minutes, easing to 60% by 01:00), an overnight
// spike at 04:00 (95% at once for 5 minutes, when BE holds the most CPU) and
// a milder rise at 09:30. System processes use about 1.5 cores.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bulkhead/colocation/clock.hpp"
#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/colocation/suppression.hpp"
#include "bulkhead/colocation/time_zone.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::sim {

using namespace bulkhead::colocation;

struct config {
  millicores capacity{64000};
  millicores online_request{56000};  // sized for the festival peak
  millicores system_used{1500};      // mean; +-200 noise
  millicores system_reserved{2000};
  milliseconds tick{100};
  milliseconds control_interval{1000};
  std::string start = "2026-11-10T12:00:00+08:00";
  std::chrono::hours length{24};
  std::string zone = "Asia/Shanghai";
  std::string zoneinfo_root = std::string(default_zoneinfo_root);
  std::string window_start = "00:00";
  std::string window_end = "01:00";
  std::uint64_t seed = 20261111;
  suppression_config suppress{};
  std::uint64_t job_core_seconds = 600;  // one batch job's work, for "jobs completed"
  bool feed_be_usage = true;  // give the controller BE usage (its saturation rule); false: Koordinator's inputs only
};

struct variant_result {
  std::string name;
  // Integrals in millicore-milliseconds.
  std::uint64_t capacity_mcms = 0;
  std::uint64_t online_demand_mcms = 0;
  std::uint64_t online_used_mcms = 0;
  std::uint64_t batch_used_mcms = 0;
  std::uint64_t system_used_mcms = 0;
  std::uint64_t shortfall_batch_mcms = 0;     // online unmet because batch held the CPU
  std::uint64_t shortfall_capacity_mcms = 0;  // online unmet with batch at 0 (the host was full)
  std::uint64_t batch_in_window_mcms = 0;     // batch CPU inside a peak window occurrence
  std::uint64_t shortfall_episodes = 0;       // runs of ticks with batch-caused shortfall
  std::uint64_t longest_episode_ms = 0;
  std::uint64_t controller_steps = 0;
  std::uint64_t limit_changes = 0;

  // Utilisation in basis points (1/100 of a percent).
  [[nodiscard]] std::uint64_t utilisation_bp() const {
    return capacity_mcms ? static_cast<std::uint64_t>(
                               (static_cast<u128>(online_used_mcms) + batch_used_mcms + system_used_mcms) * 10000 /
                               capacity_mcms)
                         : 0;
  }
};

struct report {
  config cfg;
  std::uint64_t ticks = 0;
  std::string window_start_utc, window_end_utc;
  variant_result a, b, c;
};

// Core-seconds from millicore-milliseconds, to 3 decimals: "123.456".
inline std::string core_seconds(std::uint64_t mcms) {
  const std::uint64_t milli = mcms / 1000;  // 1e6 millicore-ms = 1 core-second
  return std::to_string(milli / 1000) + "." + std::to_string(1000 + milli % 1000).substr(1);
}
inline std::string percent_bp(std::uint64_t bp) {
  return std::to_string(bp / 100) + "." + std::to_string(100 + bp % 100).substr(1) + "%";
}

namespace detail_sim {

// Per-mille of the online request by local hour (linear in between).
inline constexpr std::array<std::int64_t, 25> curve_pm = {300, 220, 150, 110, 100, 100, 130, 190, 260,
                                                           320, 360, 380, 400, 380, 360, 360, 370, 390,
                                                           420, 450, 480, 470, 430, 370, 300};

struct trace {
  std::vector<std::uint32_t> demand;  // millicores per tick
  std::vector<std::uint32_t> system;  // millicores per tick
};

inline trace make_trace(const config& c, wall_time start, std::chrono::seconds utc_offset, std::uint64_t ticks) {
  trace t;
  t.demand.resize(ticks);
  t.system.resize(ticks);
  std::mt19937_64 rng(c.seed);
  const auto uniform = [&](std::int64_t lo, std::int64_t hi) {  // inclusive; exact modulo mapping
    return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
  };
  const std::int64_t req = static_cast<std::int64_t>(c.online_request.count());
  const std::int64_t tick_ms = c.tick.count();
  const std::int64_t per_second = 1000 / tick_ms;
  const std::int64_t day_ms = 86400000;
  const std::int64_t local0 =
      (start.time_since_epoch().count() / 1000000 + utc_offset.count() * 1000) % day_ms;  // local ms of day at start
  std::int64_t second_noise = 0;
  for (std::uint64_t i = 0; i < ticks; ++i) {
    const std::int64_t since = static_cast<std::int64_t>(i) * tick_ms;
    if (static_cast<std::int64_t>(i) % per_second == 0) second_noise = uniform(-30, 30);
    const std::int64_t local = (local0 + since) % day_ms;
    const std::int64_t h = local / 3600000, into = local % 3600000;
    std::int64_t pm = curve_pm[static_cast<std::size_t>(h)] +
                      (curve_pm[static_cast<std::size_t>(h) + 1] - curve_pm[static_cast<std::size_t>(h)]) * into / 3600000;
    const bool second_day = since >= day_ms - local0;  // past local midnight after the start
    const std::int64_t minute = local / 60000;
    // Flash sale at 20:00 on the first evening: +400 at once for 10 min, easing over 5.
    if (!second_day && minute >= 20 * 60 && minute < 20 * 60 + 15) {
      const std::int64_t m = local - 20 * 3600000;
      pm += m < 600000 ? 400 : 400 - 400 * (m - 600000) / 300000;
    }
    // Festival at 00:00: 950 at once for 20 min, easing to 600 by 01:00, to the curve by 02:00.
    if (second_day && minute < 120) {
      const std::int64_t m = local;
      std::int64_t f = m < 1200000 ? 950 : m < 3600000 ? 950 - 350 * (m - 1200000) / 2400000 : 600 - (600 - pm) * (m - 3600000) / 3600000;
      pm = std::max(pm, f);
    }
    // An overnight spike at 04:00: 95% of the request at once for 5 min, when
    // BE holds the most CPU (the case the saturation rule is for).
    if (second_day && minute >= 4 * 60 && minute < 4 * 60 + 5) pm = std::max<std::int64_t>(pm, 950);
    // A milder rise at 09:30: +150 for 15 min.
    if (second_day && minute >= 9 * 60 + 30 && minute < 9 * 60 + 45) pm += 150;
    pm += second_noise + uniform(-10, 10);
    pm = std::clamp<std::int64_t>(pm, 20, 1000);
    t.demand[i] = static_cast<std::uint32_t>(req * pm / 1000);
    t.system[i] = static_cast<std::uint32_t>(static_cast<std::int64_t>(c.system_used.count()) + uniform(-200, 200));
  }
  return t;
}

}  // namespace detail_sim

enum class variant : std::uint8_t { static_partition, colocation, colocation_with_window };

inline result<variant_result> run_variant(const config& c, const detail_sim::trace& tr, wall_time start,
                                          const peak_calendar& cal, variant v) {
  variant_result r;
  r.name = v == variant::static_partition ? "a_static" : v == variant::colocation ? "b_colocation" : "c_colocation_window";
  manual_clock clock(start);
  const std::uint64_t cap = c.capacity.count();
  const std::uint64_t static_batch = cap - c.system_reserved.count() - c.online_request.count();
  std::optional<suppression_controller> ctl;
  if (v != variant::static_partition) {
    auto made = suppression_controller::make(c.suppress, clock, v == variant::colocation_with_window ? &cal : nullptr,
                                             c.suppress.floor);
    if (!made) return fail(made.error());
    ctl.emplace(std::move(*made));
  }
  std::uint64_t limit = v == variant::static_partition ? static_batch : c.suppress.floor.count();
  const auto tick = c.tick;
  const std::uint64_t tick_ms = static_cast<std::uint64_t>(tick.count());
  wall_time next_control = start + c.control_interval;
  // Calendar: the window occurrences, for "batch inside the window" (all variants).
  const auto occ = cal.occurrences(start, start + c.length);
  std::optional<wall_time> next_change =
      v == variant::colocation_with_window ? cal.next_change_after(start) : std::optional<wall_time>{};
  std::uint64_t iv_online = 0, iv_batch = 0, iv_sys = 0, iv_ticks = 0;
  std::uint64_t run_ms = 0;
  for (std::size_t i = 0; i < tr.demand.size(); ++i) {
    const wall_time now = start + tick * static_cast<std::int64_t>(i);
    clock.set(now);
    // Control: every interval, and at every calendar change (window edges).
    const bool edge = next_change && now >= *next_change;
    if (ctl && (now >= next_control || edge)) {
      suppression_input in;
      in.capacity = c.capacity;
      const std::uint64_t n = std::max<std::uint64_t>(iv_ticks, 1);
      in.non_be_used = millicores{iv_online / n};
      if (c.feed_be_usage) in.be_used = millicores{iv_batch / n};
      in.system_used = millicores{iv_sys / n};
      in.system_reserved = c.system_reserved;
      auto d = ctl->step(in);
      if (!d) return fail(d.error());
      ++r.controller_steps;
      r.limit_changes += d->changed ? 1 : 0;
      limit = d->limit.count();
      iv_online = iv_batch = iv_sys = iv_ticks = 0;
      if (now >= next_control) next_control = now + c.control_interval;
      if (edge) next_change = cal.next_change_after(now);
    }
    const std::uint64_t sys = tr.system[i], demand = tr.demand[i];
    const std::uint64_t avail = cap - sys;
    const std::uint64_t batch = std::min(limit, avail);
    const std::uint64_t online = std::min<std::uint64_t>(demand, avail - batch);
    const std::uint64_t unmet = demand - online;
    const std::uint64_t by_batch = std::min(unmet, batch);
    r.capacity_mcms += cap * tick_ms;
    r.online_demand_mcms += demand * tick_ms;
    r.online_used_mcms += online * tick_ms;
    r.batch_used_mcms += batch * tick_ms;
    r.system_used_mcms += sys * tick_ms;
    r.shortfall_batch_mcms += by_batch * tick_ms;
    r.shortfall_capacity_mcms += (unmet - by_batch) * tick_ms;
    for (const auto& o : occ)
      if (o.start <= now && now < o.end) r.batch_in_window_mcms += batch * tick_ms;
    if (by_batch) {
      if (run_ms == 0) ++r.shortfall_episodes;
      run_ms += tick_ms;
      r.longest_episode_ms = std::max(r.longest_episode_ms, run_ms);
    } else {
      run_ms = 0;
    }
    iv_online += online;
    iv_batch += batch;
    iv_sys += sys;
    ++iv_ticks;
  }
  return r;
}

inline result<report> run(const config& c) {
  if (c.tick.count() <= 0 || 1000 % c.tick.count() != 0)
    return fail(errc::invalid_argument, "simulation tick must divide one second");
  if (c.control_interval < c.tick) return fail(errc::invalid_argument, "control interval shorter than a tick");
  if (c.online_request.count() + c.system_reserved.count() > c.capacity.count())
    return fail(errc::invalid_argument, "online request and system reservation exceed the capacity");
  auto start = parse_rfc3339(c.start);
  if (!start) return fail(start.error());
  auto tz = colocation::time_zone::open(c.zone, c.zoneinfo_root);
  if (!tz) return fail(tz.error());
  auto zone = std::make_shared<const time_zone>(std::move(*tz));
  peak_calendar cal;
  if (auto r = cal.add_daily("festival", zone, c.window_start, c.window_end, ledger::rational::whole(0)); !r) return fail(r.error());
  report rep;
  rep.cfg = c;
  rep.ticks = static_cast<std::uint64_t>(std::chrono::duration_cast<milliseconds>(c.length).count() / c.tick.count());
  const auto occ = cal.occurrences(*start, *start + c.length);
  if (!occ.empty()) {
    rep.window_start_utc = format_rfc3339(occ.front().start);
    rep.window_end_utc = format_rfc3339(occ.front().end);
  }
  const auto offset = zone->offset_at(sys_seconds{std::chrono::floor<std::chrono::seconds>(start->time_since_epoch())});
  const auto tr = detail_sim::make_trace(c, *start, offset, rep.ticks);
  auto a = run_variant(c, tr, *start, cal, variant::static_partition);
  if (!a) return fail(a.error());
  auto b = run_variant(c, tr, *start, cal, variant::colocation);
  if (!b) return fail(b.error());
  auto cc = run_variant(c, tr, *start, cal, variant::colocation_with_window);
  if (!cc) return fail(cc.error());
  rep.a = std::move(*a);
  rep.b = std::move(*b);
  rep.c = std::move(*cc);
  return rep;
}

}  // namespace bulkhead::sim
