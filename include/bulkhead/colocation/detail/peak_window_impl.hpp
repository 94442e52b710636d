// bulkhead/colocation/detail/peak_window_impl.hpp (internal): the peak calendar's definitions;
// the contract is in bulkhead/colocation/peak_window.hpp.
#pragma once

#include "bulkhead/colocation/peak_window.hpp"

#include <algorithm>
#include <cstdio>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::colocation {

namespace detail {
using namespace std::chrono;

inline std::optional<int> digits(std::string_view s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

inline wall_time to_wall(sys_seconds s) { return wall_time{duration_cast<nanoseconds>(s.time_since_epoch())}; }
inline sys_seconds to_sys_floor(wall_time t) { return sys_seconds{floor<seconds>(t.time_since_epoch())}; }

}  // namespace detail

inline result<wall_time> parse_rfc3339(std::string_view text) {
  const auto s = bulkhead::detail::trim(text);
  const auto bad = [&](std::string why) {
    return fail(errc::parse_error, "RFC 3339 date-time " + bulkhead::detail::quote(text) + ": " + std::move(why));
  };
  // YYYY-MM-DDTHH:MM:SS
  if (s.size() < 20) return bad("too short; expected e.g. 2026-11-11T00:00:00+08:00");
  const auto y = detail::digits(s, 0, 4), mo = detail::digits(s, 5, 2), d = detail::digits(s, 8, 2), h = detail::digits(s, 11, 2), mi = detail::digits(s, 14, 2),
             se = detail::digits(s, 17, 2);
  if (!y || s[4] != '-' || !mo || s[7] != '-' || !d) return bad("date is not YYYY-MM-DD");
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return bad("expected 'T' between date and time");
  if (!h || s[13] != ':' || !mi || s[16] != ':' || !se) return bad("time is not HH:MM:SS");
  const std::chrono::year_month_day ymd{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*mo)}, std::chrono::day{static_cast<unsigned>(*d)}};
  if (*mo < 1 || *mo > 12 || !ymd.ok()) return bad("no such date");
  if (*h > 23 || *mi > 59) return bad("hour or minute out of range");
  if (*se == 60) return bad("leap second 60 cannot be represented in POSIX time");
  if (*se > 59) return bad("second out of range");
  std::size_t p = 19;
  std::int64_t frac_ns = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    std::size_t n = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (++n > 9) return bad("more than 9 fraction digits");
      frac_ns = frac_ns * 10 + (s[p] - '0');
      ++p;
    }
    if (n == 0) return bad("no digits after '.'");
    for (; n < 9; ++n) frac_ns *= 10;
  }
  if (p >= s.size()) return bad("missing offset ('Z' or +HH:MM)");
  std::int64_t off = 0;
  if (s[p] == 'Z' || s[p] == 'z') {
    ++p;
  } else if (s[p] == '+' || s[p] == '-') {
    const auto oh = detail::digits(s, p + 1, 2), om = detail::digits(s, p + 4, 2);
    if (!oh || p + 3 >= s.size() || s[p + 3] != ':' || !om) return bad("offset is not +HH:MM");
    if (*oh > 23 || *om > 59) return bad("offset out of range");
    off = (s[p] == '-' ? -1 : 1) * (*oh * 3600 + *om * 60);
    p += 6;
  } else {
    return bad("missing offset ('Z' or +HH:MM)");
  }
  if (p != s.size()) return bad("unexpected text after the offset");
  const auto secs = std::chrono::sys_days{ymd}.time_since_epoch() + std::chrono::hours{*h} + std::chrono::minutes{*mi} + seconds{*se} - seconds{off};
  return wall_time{std::chrono::duration_cast<nanoseconds>(secs) + nanoseconds{frac_ns}};
}

inline std::string format_rfc3339(wall_time t) {
  const auto s = floor<seconds>(t.time_since_epoch());
  auto ns = (t.time_since_epoch() - s).count();
  const auto dd = floor<std::chrono::days>(sys_seconds{s});
  const std::chrono::year_month_day ymd{dd};
  const std::chrono::hh_mm_ss<seconds> tod{sys_seconds{s} - dd};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
                static_cast<int>(tod.seconds().count()));
  std::string out = buf;
  if (ns) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09lld", static_cast<long long>(ns));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  out += 'Z';
  return out;
}

inline result<seconds> parse_time_of_day(std::string_view text) {
  const auto s = bulkhead::detail::trim(text);
  const auto bad = [&] {
    return fail(errc::parse_error, "time of day " + bulkhead::detail::quote(text) + ": expected HH:MM or HH:MM:SS, 00:00 to 23:59:59");
  };
  if (s.size() != 5 && s.size() != 8) return bad();
  const auto h = detail::digits(s, 0, 2), m = detail::digits(s, 3, 2);
  if (!h || s[2] != ':' || !m || *h > 23 || *m > 59) return bad();
  int sec = 0;
  if (s.size() == 8) {
    const auto x = detail::digits(s, 6, 2);
    if (s[5] != ':' || !x || *x > 59) return bad();
    sec = *x;
  }
  return seconds{*h * 3600 + *m * 60 + sec};
}

inline std::vector<window_occurrence> daily_occurrences(const std::string& name, const daily_window& w, const ledger::rational& f,
                                                 std::chrono::local_days first_day, std::chrono::local_days last_day) {
  std::vector<window_occurrence> out;
  for (auto d = first_day; d <= last_day; d += std::chrono::days{1}) {
    const auto start = w.zone->first_instant_at_or_after(local_seconds{d.time_since_epoch()} + w.start);
    const auto end_day = w.end > w.start ? d : d + std::chrono::days{1};
    const auto end = w.zone->first_instant_at_or_after(local_seconds{end_day.time_since_epoch()} + w.end);
    if (end <= start) continue;  // both ends inside one skipped hour
    out.push_back({name, detail::to_wall(start), detail::to_wall(end), f});
  }
  return out;
}

inline result<void> peak_calendar::check_new(const std::string& name, const ledger::rational& f) const {
  if (name.empty() || name.size() > 64)
    return fail(errc::invalid_argument, "peak window name " + bulkhead::detail::quote(name) + ": must be 1..64 characters");
  for (char c : name)
    if (c < 0x20 || c > 0x7e)
      return fail(errc::invalid_argument, "peak window name " + bulkhead::detail::quote(name) + ": printable ASCII only");
  for (const auto& w : windows_)
    if (w.name == name) return fail(errc::already_exists, "peak window " + bulkhead::detail::quote(name) + " is already in the calendar");
  if (f > ledger::rational::whole(1))
    return fail(errc::out_of_range, "peak window " + bulkhead::detail::quote(name) + ": be_fraction " + f.to_string() +
                                        " is above 1");
  return {};
}

inline result<void> peak_calendar::add_absolute(std::string name, wall_time start, wall_time end, ledger::rational be_fraction) {
  if (auto r = check_new(name, be_fraction); !r) return r;
  if (end <= start)
    return fail(errc::invalid_argument, "peak window " + bulkhead::detail::quote(name) + ": end " + format_rfc3339(end) +
                                            " is not after start " + format_rfc3339(start));
  windows_.push_back({std::move(name), be_fraction, absolute_window{start, end}});
  return {};
}

inline result<void> peak_calendar::add_absolute(std::string name, std::string_view start_rfc3339, std::string_view end_rfc3339,
                                         ledger::rational be_fraction) {
  auto s = parse_rfc3339(start_rfc3339);
  if (!s) return fail(std::move(s.error()).in("peak window " + bulkhead::detail::quote(name) + " start"));
  auto e = parse_rfc3339(end_rfc3339);
  if (!e) return fail(std::move(e.error()).in("peak window " + bulkhead::detail::quote(name) + " end"));
  return add_absolute(std::move(name), *s, *e, be_fraction);
}

inline result<void> peak_calendar::add_daily(std::string name, std::shared_ptr<const time_zone> zone,
                                      std::string_view start_time_of_day, std::string_view end_time_of_day,
                                      ledger::rational be_fraction) {
  if (auto r = check_new(name, be_fraction); !r) return r;
  if (!zone) return fail(errc::invalid_argument, "peak window " + bulkhead::detail::quote(name) + ": no time zone");
  auto s = parse_time_of_day(start_time_of_day);
  if (!s) return fail(std::move(s.error()).in("peak window " + bulkhead::detail::quote(name) + " start"));
  auto e = parse_time_of_day(end_time_of_day);
  if (!e) return fail(std::move(e.error()).in("peak window " + bulkhead::detail::quote(name) + " end"));
  if (*s == *e)
    return fail(errc::invalid_argument, "peak window " + bulkhead::detail::quote(name) +
                                            ": start equals end; a window needs a length (use an absolute window for "
                                            "whole days)");
  windows_.push_back({std::move(name), be_fraction, daily_window{std::move(zone), *s, *e}});
  return {};
}

namespace detail {
// Occurrences of w that may contain or follow t closely: local start days
// from the day before t's local day to `ahead` days after.
inline std::vector<window_occurrence> around(const peak_window& w, wall_time t, int ahead) {
  if (const auto* a = std::get_if<absolute_window>(&w.when)) return {{w.name, a->start, a->end, w.be_fraction}};
  const auto& d = std::get<daily_window>(w.when);
  const auto local_day = floor<days>(d.zone->to_local(to_sys_floor(t)));
  return daily_occurrences(w.name, d, w.be_fraction, local_day - days{1}, local_day + days{ahead});
}
}  // namespace detail

inline std::optional<window_occurrence> peak_calendar::active_at(wall_time t) const {
  std::optional<window_occurrence> best;
  for (const auto& w : windows_)
    for (auto& o : detail::around(w, t, 0)) {
      if (!(o.start <= t && t < o.end)) continue;
      if (!best || o.be_fraction < best->be_fraction || (o.be_fraction == best->be_fraction && o.end > best->end))
        best = std::move(o);
    }
  return best;
}

inline std::optional<wall_time> peak_calendar::next_change_after(wall_time t) const {
  std::optional<wall_time> best;
  const auto consider = [&](wall_time x) {
    if (x > t && (!best || x < *best)) best = x;
  };
  for (const auto& w : windows_)
    for (const auto& o : detail::around(w, t, 2)) {
      consider(o.start);
      consider(o.end);
    }
  return best;
}

inline std::vector<window_occurrence> peak_calendar::occurrences(wall_time from, wall_time to) const {
  std::vector<window_occurrence> out;
  if (to <= from) return out;
  for (const auto& w : windows_) {
    if (const auto* a = std::get_if<absolute_window>(&w.when)) {
      if (a->start < to && a->end > from) out.push_back({w.name, a->start, a->end, w.be_fraction});
      continue;
    }
    const auto& d = std::get<daily_window>(w.when);
    const auto first = std::chrono::floor<std::chrono::days>(d.zone->to_local(detail::to_sys_floor(from))) - std::chrono::days{1};
    auto last = std::chrono::floor<std::chrono::days>(d.zone->to_local(detail::to_sys_floor(to))) + std::chrono::days{1};
    if (last - first > std::chrono::days{max_enumerated_days}) last = first + std::chrono::days{max_enumerated_days};
    for (auto& o : daily_occurrences(w.name, d, w.be_fraction, first, last))
      if (o.start < to && o.end > from) out.push_back(std::move(o));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.start != b.start ? a.start < b.start : a.name < b.name;
  });
  return out;
}

}  // namespace bulkhead::colocation
