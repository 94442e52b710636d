// bulkhead/colocation/peak_window.hpp: a calendar of peak windows, in which
// BE (batch) capacity is capped at a stated fraction of the host's capacity.
//
// Two kinds of window:
//   - absolute: [start, end) given as RFC 3339 date-times
//     ("2026-11-11T00:00:00+08:00"); RFC 3339 section 5.6 grammar, with 'T'
//     or a space between date and time, 'Z' or a numeric offset, at most 9
//     fraction digits; second 60 (a leap second) is refused;
//   - daily: every day from a local time of day to another in a named time
//     zone ("20:00" to "02:00" in "Asia/Shanghai"); an end at or before the
//     start crosses midnight. Each day's window starts at the earliest instant
//     at which the zone's clocks show the start time or later, and likewise
//     ends (time_zone::first_instant_at_or_after): on a spring-forward day a
//     start inside the gap begins when the clocks jump past it, on a fall-back
//     day a time shown twice counts from its first occurrence, so a window may
//     be an hour shorter or longer on DST days, and never vanishes or repeats.
//
// be_fraction is an exact rational (ledger::rational) in [0, 1]: 0 hands everything to online
// work; 1/4 lets BE keep at most a quarter of the host. When windows overlap
// the smallest fraction governs.
//
// Thread-safety: the calendar is built single-threaded; once built, its const
// members may be called from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bulkhead/colocation/time_zone.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/ledger/rational.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::colocation {

[[nodiscard]] result<wall_time> parse_rfc3339(std::string_view text);
// UTC with 'Z'; fraction digits only when the time has them (trailing zeros cut).
[[nodiscard]] std::string format_rfc3339(wall_time t);
// "HH:MM" or "HH:MM:SS", 00:00:00 .. 23:59:59.
[[nodiscard]] result<std::chrono::seconds> parse_time_of_day(std::string_view text);

struct absolute_window {
  wall_time start{};
  wall_time end{};
};
struct daily_window {
  std::shared_ptr<const time_zone> zone;
  std::chrono::seconds start{0};  // after local midnight
  std::chrono::seconds end{0};    // after local midnight; <= start: the next day
};

struct peak_window {
  std::string name;
  ledger::rational be_fraction;
  std::variant<absolute_window, daily_window> when;
};

// One concrete occurrence of a window.
struct window_occurrence {
  std::string name;
  wall_time start{};
  wall_time end{};
  ledger::rational be_fraction;
  friend bool operator==(const window_occurrence&, const window_occurrence&) = default;
};

class peak_calendar {
 public:
  // Names: 1..64 printable ASCII characters, unique in the calendar.
  [[nodiscard]] result<void> add_absolute(std::string name, std::string_view start_rfc3339, std::string_view end_rfc3339,
                                          ledger::rational be_fraction);
  [[nodiscard]] result<void> add_absolute(std::string name, wall_time start, wall_time end, ledger::rational be_fraction);
  [[nodiscard]] result<void> add_daily(std::string name, std::shared_ptr<const time_zone> zone,
                                       std::string_view start_time_of_day, std::string_view end_time_of_day,
                                       ledger::rational be_fraction);

  [[nodiscard]] const std::vector<peak_window>& windows() const noexcept { return windows_; }
  [[nodiscard]] bool empty() const noexcept { return windows_.empty(); }

  // The occurrence in force at t (start <= t < end); with several, the one
  // with the smallest fraction (then the one ending last).
  [[nodiscard]] std::optional<window_occurrence> active_at(wall_time t) const;
  // The first instant after t at which any window starts or ends: the moment
  // a controller must run again so the cap applies exactly on time.
  [[nodiscard]] std::optional<wall_time> next_change_after(wall_time t) const;
  // Every occurrence overlapping [from, to), by start time. A daily window
  // contributes at most max_enumerated_days occurrences (ten years) per call.
  static constexpr int max_enumerated_days = 3660;
  [[nodiscard]] std::vector<window_occurrence> occurrences(wall_time from, wall_time to) const;

 private:
  [[nodiscard]] result<void> check_new(const std::string& name, const ledger::rational& f) const;
  std::vector<peak_window> windows_;
};

// Occurrences of one daily window whose local start date lies in
// [first_day, last_day] (local calendar days).
[[nodiscard]] std::vector<window_occurrence> daily_occurrences(const std::string& name, const daily_window& w,
                                                               const ledger::rational& f, std::chrono::local_days first_day,
                                                               std::chrono::local_days last_day);

}  // namespace bulkhead::colocation

#include "bulkhead/colocation/detail/peak_window_impl.hpp"
