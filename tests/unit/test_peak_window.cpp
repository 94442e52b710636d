// Time zones from TZif bytes (built in memory, RFC 8536), RFC 3339, and the
// peak-window calendar: absolute windows, daily windows crossing midnight and
// DST changes.
#include <doctest/doctest.h>

#include <memory>

#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/colocation/time_zone.hpp"
#include "tzif_writer.hpp"

using namespace bulkhead;
using namespace bulkhead::colocation;
using namespace std::chrono;
using bulkhead::test::make_tzif;

namespace {

wall_time at(const char* rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  REQUIRE_MESSAGE(t, rfc3339);
  return *t;
}
sys_seconds sys(const char* rfc3339) { return sys_seconds{floor<seconds>(at(rfc3339).time_since_epoch())}; }
local_seconds local(int y, unsigned m, unsigned d, int h, int mi, int s = 0) {
  return local_seconds{local_days{year{y} / month{m} / day{d}}.time_since_epoch() + hours{h} + minutes{mi} + seconds{s}};
}
std::shared_ptr<const time_zone> zone(const test::tzif_spec& z, const char* name) {
  auto r = colocation::time_zone::parse(name, make_tzif(z));
  REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
  return std::make_shared<const time_zone>(std::move(*r));
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("RFC 3339 parse and format") {
  CHECK(format_rfc3339(at("2026-11-11T00:00:00+08:00")) == "2026-11-10T16:00:00Z");
  CHECK(format_rfc3339(at("2026-03-29T01:00:00Z")) == "2026-03-29T01:00:00Z");
  CHECK(format_rfc3339(at("2026-03-29t01:00:00.250z")) == "2026-03-29T01:00:00.25Z");
  CHECK(format_rfc3339(at("2026-03-29 01:00:00-05:30")) == "2026-03-29T06:30:00Z");
  CHECK(at("1970-01-01T00:00:00.000000001Z").time_since_epoch().count() == 1);
  CHECK(format_rfc3339(at("2024-02-29T23:59:59+00:00")) == "2024-02-29T23:59:59Z");
  for (auto bad : {"", "2026-11-11", "2026-11-11T00:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                   "2026-11-11T24:00:00Z", "2026-11-11T00:00:60Z", "2026-11-11T00:00:00+8:00",
                   "2026-11-11T00:00:00.Z", "2026-11-11T00:00:00.1234567891Z", "2026-11-11T00:00:00Zjunk",
                   "2026/11/11T00:00:00Z"}) {
    auto r = parse_rfc3339(bad);
    REQUIRE_FALSE_MESSAGE(r, bad);
    CHECK(r.error().code() == errc::parse_error);
    CHECK(has(r.error().message(), "RFC 3339"));
  }
  CHECK(has(parse_rfc3339("2026-11-11T00:00:60Z").error().message(), "leap second"));
  CHECK(*parse_time_of_day("20:30") == seconds{73800});
  CHECK(*parse_time_of_day("00:00:01") == seconds{1});
  for (auto bad : {"24:00", "7:00", "12:60", "12:00:60", "noon", ""}) CHECK_FALSE(parse_time_of_day(bad));
}

TEST_CASE("zone names are validated component by component") {
  for (auto good : {"Europe/Berlin", "Asia/Shanghai", "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "EST5EDT"})
    CHECK_MESSAGE(validate_zone_name(good), good);
  for (auto bad : {"", "/etc/passwd", "../etc/passwd", "Europe/../../etc", "Europe//Berlin", "Europe/Berlin/",
                   "Europe/./Berlin", "Europe/Ber lin", "Europe/Berlin\n"}) {
    auto r = validate_zone_name(bad);
    REQUIRE_FALSE_MESSAGE(r, bad);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(has(r.error().message(), "time zone name"));
  }
}

TEST_CASE("POSIX TZ rule: Europe/Berlin's 2026 changes, from a slim TZif") {
  auto z = zone(test::berlin_like(), "Europe/Berlin");
  CHECK(z->footer() == "CET-1CEST,M3.5.0,M10.5.0/3");
  CHECK(z->offset_at(sys("2026-03-29T00:59:59Z")) == hours{1});
  CHECK(z->offset_at(sys("2026-03-29T01:00:00Z")) == hours{2});
  CHECK(z->at(sys("2026-07-01T12:00:00Z")).abbreviation == "CEST");
  CHECK(z->at(sys("2026-07-01T12:00:00Z")).is_dst);
  CHECK(z->offset_at(sys("2026-10-25T00:59:59Z")) == hours{2});
  CHECK(z->offset_at(sys("2026-10-25T01:00:00Z")) == hours{1});
  CHECK(z->at(sys("2026-12-24T12:00:00Z")).abbreviation == "CET");
  const auto tr = z->transitions(sys("2026-01-01T00:00:00Z"), sys("2027-01-01T00:00:00Z"));
  REQUIRE(tr.size() == 2);
  CHECK(tr[0] == sys("2026-03-29T01:00:00Z"));
  CHECK(tr[1] == sys("2026-10-25T01:00:00Z"));

  // Spring forward: 02:00..02:59 does not exist on 2026-03-29.
  CHECK(z->first_instant_at_or_after(local(2026, 3, 29, 1, 59, 59)) == sys("2026-03-29T00:59:59Z"));
  CHECK(z->first_instant_at_or_after(local(2026, 3, 29, 2, 0)) == sys("2026-03-29T01:00:00Z"));
  CHECK(z->first_instant_at_or_after(local(2026, 3, 29, 2, 30)) == sys("2026-03-29T01:00:00Z"));
  CHECK(z->first_instant_at_or_after(local(2026, 3, 29, 3, 0)) == sys("2026-03-29T01:00:00Z"));
  CHECK(z->first_instant_at_or_after(local(2026, 3, 29, 3, 1)) == sys("2026-03-29T01:01:00Z"));
  // Fall back: 02:00..02:59 happens twice on 2026-10-25; the first counts.
  CHECK(z->first_instant_at_or_after(local(2026, 10, 25, 2, 30)) == sys("2026-10-25T00:30:00Z"));
  CHECK(z->first_instant_at_or_after(local(2026, 10, 25, 3, 0)) == sys("2026-10-25T02:00:00Z"));
  CHECK(z->to_local(sys("2026-10-25T01:30:00Z")) == local(2026, 10, 25, 2, 30));  // the second 02:30
}

TEST_CASE("POSIX TZ rules: southern hemisphere, quoted names, fixed offsets, Julian days") {
  auto sydney = *parse_posix_tz("AEST-10AEDT,M10.1.0,M4.1.0/3");
  REQUIRE(sydney.dst_type);
  CHECK(sydney.dst_type->utoff == 39600);
  test::tzif_spec s;
  s.types = {{36000, false, "AEST"}};
  s.footer = "AEST-10AEDT,M10.1.0,M4.1.0/3";
  auto syd = zone(s, "Australia/Sydney");
  CHECK(syd->offset_at(sys("2026-01-15T00:00:00Z")) == hours{11});
  CHECK(syd->offset_at(sys("2026-07-01T00:00:00Z")) == hours{10});
  // 2026-04-05 03:00 AEDT = 2026-04-04T16:00Z; 2026-10-04 02:00 AEST = 2026-10-03T16:00Z.
  const auto tr = syd->transitions(sys("2026-01-01T00:00:00Z"), sys("2027-01-01T00:00:00Z"));
  REQUIRE(tr.size() == 2);
  CHECK(tr[0] == sys("2026-04-04T16:00:00Z"));
  CHECK(tr[1] == sys("2026-10-03T16:00:00Z"));

  auto tehran = *parse_posix_tz("<+0330>-3:30");
  CHECK(tehran.std_type.abbr == "+0330");
  CHECK(tehran.std_type.utoff == 12600);
  CHECK_FALSE(tehran.dst_type);
  auto j = *parse_posix_tz("XST5XDT,J60/2,J300/2");
  CHECK(j.start.kind == time_zone::rule_date_kind::julian_no_leap);
  CHECK(j.start.day == 60);
  auto neg = *parse_posix_tz("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1");  // version 3 negative times
  CHECK(neg.start.time == -7200);
  CHECK(neg.dst_type->utoff == -7200);
  for (auto bad : {"", "C", "CET", "CET-1CEST", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
                   "CET-1CEST,M3.5.7,M10.5.0", "CET-25", "<CE", "CET-1CEST,J0,J1", "CET-1CEST,M3.5.0/168,M10.5.0"}) {
    auto r = parse_posix_tz(bad);
    CHECK_FALSE_MESSAGE(r, bad);
  }
}

TEST_CASE("TZif transition tables, version 1 and 2") {
  test::tzif_spec v1;
  v1.version = 0;
  v1.types = {{0, false, "AAA"}, {3600, true, "BBB"}};
  v1.times = {1000, 2000};
  v1.idx = {1, 0};
  auto z = zone(v1, "Test/V1");
  CHECK(z->offset_at(sys_seconds{seconds{999}}) == seconds{0});
  CHECK(z->offset_at(sys_seconds{seconds{1000}}) == seconds{3600});
  CHECK(z->offset_at(sys_seconds{seconds{1999}}) == seconds{3600});
  CHECK(z->offset_at(sys_seconds{seconds{2000}}) == seconds{0});
  CHECK(z->at(sys_seconds{seconds{1500}}).abbreviation == "BBB");
  CHECK(z->transitions(sys_seconds{seconds{0}}, sys_seconds{seconds{5000}}).size() == 2);

  // Version 2: 64-bit table, then the footer rule after the last transition.
  auto v2 = test::berlin_like();
  v2.times = {-2422054408};  // 1893-04-01: LMT -> CET
  v2.types = {{3208, false, "LMT"}, {3600, false, "CET"}, {7200, true, "CEST"}};
  v2.idx = {1};
  auto b = zone(v2, "Test/V2");
  CHECK(b->offset_at(sys_seconds{seconds{-2422054409}}) == seconds{3208});
  CHECK(b->offset_at(sys("2026-06-01T00:00:00Z")) == hours{2});
}

TEST_CASE("malformed TZif is refused with the reason") {
  const auto bad = [](std::string bytes, const char* part) {
    auto r = colocation::time_zone::parse("Test/Bad", bytes);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::parse_error);
    CHECK_MESSAGE(has(r.error().message(), part), r.error().message());
  };
  bad("", "truncated header");
  bad("TZjf" + std::string(40, '\0'), "magic");
  auto ok = make_tzif(test::berlin_like());
  bad(ok.substr(0, ok.size() - 10), "");
  {
    auto s = ok;
    s[4] = '1';
    bad(s, "version");
  }
  test::tzif_spec z;
  z.times = {10, 5};
  z.idx = {0, 0};
  bad(make_tzif(z), "strictly ascending");
  z.times = {10};
  z.idx = {3};
  bad(make_tzif(z), "type index 3 out of range");
  z.times = {};
  z.idx = {};
  z.leapcnt = 2;
  auto leap = colocation::time_zone::parse("right/UTC", make_tzif(z));
  REQUIRE_FALSE(leap);
  CHECK(has(leap.error().message(), "leap-second"));
  z.leapcnt = 0;
  z.footer = "CET-1CEST";
  auto foot = colocation::time_zone::parse("Test/Foot", make_tzif(z));
  REQUIRE_FALSE(foot);
  CHECK(has(foot.error().describe(), "footer"));
  test::tzif_spec none;
  none.types = {};
  bad(make_tzif(none), "typecnt is 0");
}

TEST_CASE("absolute windows, overlap and validation") {
  peak_calendar cal;
  REQUIRE(cal.add_absolute("festival", "2026-11-11T00:00:00+08:00", "2026-11-11T01:00:00+08:00", ledger::rational::whole(0)));
  REQUIRE(cal.add_absolute("evening", "2026-11-10T20:00:00+08:00", "2026-11-11T02:00:00+08:00", *ledger::rational::make(1, 4)));
  CHECK_FALSE(cal.active_at(at("2026-11-10T19:59:59+08:00")));
  auto e = cal.active_at(at("2026-11-10T23:00:00+08:00"));
  REQUIRE(e);
  CHECK(e->name == "evening");
  auto f = cal.active_at(at("2026-11-11T00:30:00+08:00"));
  REQUIRE(f);
  CHECK(f->name == "festival");  // the smaller fraction governs
  CHECK(f->be_fraction.is_zero());
  CHECK(cal.active_at(at("2026-11-11T01:00:00+08:00"))->name == "evening");
  CHECK_FALSE(cal.active_at(at("2026-11-11T02:00:00+08:00")));
  CHECK(*cal.next_change_after(at("2026-11-10T23:00:00+08:00")) == at("2026-11-11T00:00:00+08:00"));
  CHECK(*cal.next_change_after(at("2026-11-11T00:00:00+08:00")) == at("2026-11-11T01:00:00+08:00"));
  CHECK_FALSE(cal.next_change_after(at("2026-11-12T00:00:00Z")));
  CHECK(cal.occurrences(at("2026-11-10T00:00:00Z"), at("2026-11-12T00:00:00Z")).size() == 2);

  CHECK(cal.add_absolute("festival", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", ledger::rational::whole(0)).error().code() ==
        errc::already_exists);
  CHECK(cal.add_absolute("x", "2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", ledger::rational::whole(0)).error().code() ==
        errc::invalid_argument);
  CHECK(cal.add_absolute("y", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", *ledger::rational::make(3, 2)).error().code() ==
        errc::out_of_range);
  auto bad = cal.add_absolute("z", "tomorrow", "2026-12-02T00:00:00Z", ledger::rational::whole(0));
  REQUIRE_FALSE(bad);
  CHECK(has(bad.error().describe(), "peak window 'z' start"));
  CHECK(cal.add_absolute("", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", ledger::rational::whole(0)).error().code() ==
        errc::invalid_argument);
}

TEST_CASE("daily window crossing midnight in a named zone") {
  auto sh = zone(test::shanghai_like(), "Asia/Shanghai");
  peak_calendar cal;
  REQUIRE(cal.add_daily("night", sh, "22:00", "02:00", ledger::rational::whole(0)));
  CHECK_FALSE(cal.active_at(at("2026-11-10T21:59:59+08:00")));
  CHECK(cal.active_at(at("2026-11-10T22:00:00+08:00")));
  CHECK(cal.active_at(at("2026-11-10T23:59:59+08:00")));
  CHECK(cal.active_at(at("2026-11-11T00:00:00+08:00")));
  auto o = cal.active_at(at("2026-11-11T01:59:59+08:00"));
  REQUIRE(o);
  CHECK(o->start == at("2026-11-10T22:00:00+08:00"));
  CHECK(o->end == at("2026-11-11T02:00:00+08:00"));
  CHECK_FALSE(cal.active_at(at("2026-11-11T02:00:00+08:00")));
  CHECK(*cal.next_change_after(at("2026-11-11T02:00:00+08:00")) == at("2026-11-11T22:00:00+08:00"));
  const auto week = cal.occurrences(at("2026-11-09T00:00:00+08:00"), at("2026-11-16T00:00:00+08:00"));
  // 2026-11-08's window ends 11-09 02:00, so it overlaps too: 8 occurrences.
  REQUIRE(week.size() == 8);
  for (const auto& w : week) CHECK(w.end - w.start == hours{4});
  CHECK(cal.add_daily("bad", sh, "10:00", "10:00", ledger::rational::whole(0)).error().code() == errc::invalid_argument);
  CHECK(cal.add_daily("bad", nullptr, "10:00", "11:00", ledger::rational::whole(0)).error().code() == errc::invalid_argument);
  CHECK(cal.add_daily("bad", sh, "25:00", "11:00", ledger::rational::whole(0)).error().code() == errc::parse_error);
}

TEST_CASE("daily window over Europe/Berlin's DST changes") {
  auto be = zone(test::berlin_like(), "Europe/Berlin");
  peak_calendar cal;
  REQUIRE(cal.add_daily("early", be, "02:00", "04:00", *ledger::rational::make(1, 10)));
  const auto occ = cal.occurrences(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"));
  REQUIRE(occ.size() == 3);
  // A normal day: 02:00-04:00 CET = 01:00-03:00Z.
  CHECK(occ[0].start == at("2026-03-28T01:00:00Z"));
  CHECK(occ[0].end == at("2026-03-28T03:00:00Z"));
  // Spring forward: 02:00 does not exist; the window starts when the clocks
  // jump to 03:00 CEST (01:00Z) and ends at 04:00 CEST (02:00Z): one hour.
  CHECK(occ[1].start == at("2026-03-29T01:00:00Z"));
  CHECK(occ[1].end == at("2026-03-29T02:00:00Z"));
  // The next day: 02:00-04:00 CEST = 00:00-02:00Z.
  CHECK(occ[2].start == at("2026-03-30T00:00:00Z"));

  const auto fall = cal.occurrences(at("2026-10-24T12:00:00Z"), at("2026-10-26T00:00:00Z"));
  REQUIRE(fall.size() == 1);
  // Fall back: from the first 02:00 (CEST, 00:00Z) to 04:00 CET (03:00Z): three hours.
  CHECK(fall[0].start == at("2026-10-25T00:00:00Z"));
  CHECK(fall[0].end == at("2026-10-25T03:00:00Z"));
  CHECK(cal.active_at(at("2026-10-25T01:30:00Z")));  // the second 02:30 is inside too

  // A window that crosses midnight on the night the clocks change.
  peak_calendar night;
  REQUIRE(night.add_daily("late", be, "23:30", "02:30", ledger::rational::whole(0)));
  const auto n = night.occurrences(at("2026-03-28T12:00:00Z"), at("2026-03-29T12:00:00Z"));
  REQUIRE(n.size() == 1);
  CHECK(n[0].start == at("2026-03-28T22:30:00Z"));
  CHECK(n[0].end == at("2026-03-29T01:00:00Z"));  // 02:30 was skipped: ends when the clocks jump
}
