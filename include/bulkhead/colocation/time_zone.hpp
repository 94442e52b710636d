// bulkhead/colocation/time_zone.hpp: a named time zone read from a TZif file.
//
// libstdc++ 12 has no std::chrono time zone database, so bulkhead reads the
// zone's TZif file itself (RFC 8536, versions 1 to 4) from an injected
// zoneinfo root (Debian: /usr/share/zoneinfo, package tzdata):
//   - the transition table (the 64-bit one of version 2+ files);
//   - the footer's POSIX TZ string (RFC 8536 section 3.3, POSIX.1-2017
//     section 8.3 "TZ", with the version 3 extension of transition times
//     from -167 to 167 hours) for instants after the last transition, which
//     is all of them in "slim" files;
//   - zones with leap-second records (the "right/" zones) are refused: wall
//     time here is POSIX time, which has no leap seconds.
// Parsing (TZif bytes, POSIX TZ strings) is header code; loading a zone file
// (open()) is compiled in libbulkhead-core. Files are read through
// rooted_dir (no link may lead out of the root) and the zone name is
// validated first (validate_zone_name).
//
// Thread-safety: a time_zone is immutable after construction; share it freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::colocation {

inline constexpr std::string_view default_zoneinfo_root = "/usr/share/zoneinfo";

using sys_seconds = std::chrono::sys_seconds;
using local_seconds = std::chrono::local_seconds;

// A tz database name such as "Europe/Berlin", "Asia/Shanghai", "UTC",
// "Etc/GMT+5", "America/Argentina/Buenos_Aires": 1..255 bytes; components
// separated by '/', each non-empty, not "." or "..", of ASCII letters,
// digits, '_', '-', '+' and '.'; no leading '/'.
[[nodiscard]] result<void> validate_zone_name(std::string_view name);

class time_zone {
 public:
  // What the clocks of the zone show at an instant.
  struct local_info {
    std::chrono::seconds utc_offset{0};  // local = UTC + utc_offset
    bool is_dst = false;
    std::string abbreviation;  // "CEST"
  };

  // Parses the bytes of a TZif file the caller hands in (header code);
  // `name` labels errors and name().
  [[nodiscard]] static result<time_zone> parse(std::string name, std::string_view bytes);
  // Reads `name` beneath an opened zoneinfo root (libbulkhead-core).
  [[nodiscard]] BULKHEAD_API static result<time_zone> open(const rooted_dir& zoneinfo, std::string_view name);
  // Opens the root (default: /usr/share/zoneinfo) and reads `name`
  // (libbulkhead-core).
  [[nodiscard]] BULKHEAD_API static result<time_zone> open(std::string_view name,
                                              const std::string& zoneinfo_root = std::string(default_zoneinfo_root));

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  [[nodiscard]] local_info at(sys_seconds t) const;
  [[nodiscard]] std::chrono::seconds offset_at(sys_seconds t) const;
  [[nodiscard]] local_seconds to_local(sys_seconds t) const;

  // The earliest instant at which the zone's clocks show `local` or later.
  // For a local time that exists once, that instant; for one skipped by a
  // spring-forward gap, the end of the gap (the clocks jump past it); for one
  // repeated by a fall-back overlap, its first occurrence.
  [[nodiscard]] sys_seconds first_instant_at_or_after(local_seconds local) const;

  // Instants in [from, to) at which the UTC offset or DST flag changes.
  [[nodiscard]] std::vector<sys_seconds> transitions(sys_seconds from, sys_seconds to) const;

  // The footer rule as written ("CET-1CEST,M3.5.0,M10.5.0/3"); empty if none.
  [[nodiscard]] const std::string& footer() const noexcept { return footer_; }

  // Internal representation, public for the parser's helpers.
  struct type {
    std::int32_t utoff = 0;
    bool dst = false;
    std::string abbr;
  };
  enum class rule_date_kind : std::uint8_t { julian_no_leap, zero_based, month_week_day };
  struct rule_date {
    rule_date_kind kind = rule_date_kind::month_week_day;
    int day = 0;      // Jn: 1..365; n: 0..365; Mm.w.d: d (0 = Sunday)
    int month = 0;    // Mm.w.d
    int week = 0;     // Mm.w.d: 1..5, 5 = last
    std::int32_t time = 7200;  // seconds after local midnight; may be negative or past 24 h
  };
  struct posix_rule {
    type std_type;
    std::optional<type> dst_type;
    rule_date start, end;  // when dst_type
  };

 private:
  time_zone() = default;
  [[nodiscard]] std::size_t type_index_at(std::int64_t t) const;
  [[nodiscard]] type type_at(std::int64_t t) const;
  // Rule transitions of one year: (instant, dst after it).
  void rule_transitions(int year, std::vector<std::pair<std::int64_t, bool>>& out) const;

  std::string name_;
  std::vector<std::int64_t> times_;
  std::vector<std::uint8_t> idx_;
  std::vector<type> types_;
  std::string footer_;
  std::optional<posix_rule> rule_;
};

// Parses a POSIX TZ string (as found in a TZif footer).
[[nodiscard]] result<time_zone::posix_rule> parse_posix_tz(std::string_view text);

}  // namespace bulkhead::colocation

#include "bulkhead/colocation/detail/time_zone_impl.hpp"
