// bulkhead/colocation/clock.hpp: the injectable clock the co-location engine
// takes its time from.
//
// Production code passes system_clock_source; tests and the simulation pass a
// manual_clock and move it themselves, so 24 hours of control run in
// milliseconds. Time is wall-clock (wall_time, UTC nanoseconds since the
// epoch) because peak windows are calendar times.
//
// Thread-safety: now() may be called from any thread; manual_clock's setters
// too (the time is one atomic).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "bulkhead/api.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::colocation {

class BULKHEAD_API clock_source {
 public:
  clock_source() = default;
  clock_source(const clock_source&) = delete;
  clock_source& operator=(const clock_source&) = delete;
  virtual ~clock_source() = default;
  [[nodiscard]] virtual wall_time now() const = 0;
};

class system_clock_source final : public clock_source {
 public:
  [[nodiscard]] wall_time now() const override {
    return std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  }
};

class manual_clock final : public clock_source {
 public:
  explicit manual_clock(wall_time start = wall_time{}) noexcept : ns_(start.time_since_epoch().count()) {}
  [[nodiscard]] wall_time now() const override { return wall_time{nanoseconds{ns_.load(std::memory_order_acquire)}}; }
  void set(wall_time t) noexcept { ns_.store(t.time_since_epoch().count(), std::memory_order_release); }
  // Moves the clock forward by d (d >= 0 is the caller's contract).
  void advance(nanoseconds d) noexcept { ns_.fetch_add(d.count(), std::memory_order_acq_rel); }

 private:
  std::atomic<std::int64_t> ns_;
};

}  // namespace bulkhead::colocation
