// Time zones read from files: a zoneinfo root built in a temporary directory
// (TZif bytes made by tests/unit/tzif_writer.hpp), links that try to leave
// the root, and the machine's own tzdata (Debian package tzdata) for
// Europe/Berlin's and Asia/Shanghai's real rules.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../unit/tzif_writer.hpp"
#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/colocation/time_zone.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::colocation;
using namespace std::chrono;

namespace {
wall_time at(const char* s) { return *parse_rfc3339(s); }
sys_seconds sys(const char* s) { return sys_seconds{floor<seconds>(at(s).time_since_epoch())}; }
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}
}  // namespace

TEST_CASE("zones load from an injected zoneinfo root, never from outside it") {
  test::temp_dir root("bulkhead-tz");
  test::temp_dir outside("bulkhead-tz-out");
  write(root.path() / "Europe" / "Berlin", test::make_tzif(test::berlin_like()));
  write(outside.path() / "Evil", test::make_tzif(test::shanghai_like()));
  std::filesystem::create_directories(root.path() / "Asia");
  std::filesystem::create_symlink("../Europe/Berlin", root.path() / "Asia" / "Alias");  // stays inside: allowed
  std::filesystem::create_symlink(outside.path() / "Evil", root.path() / "Asia" / "Escape");

  auto b = colocation::time_zone::open("Europe/Berlin", root.str());
  REQUIRE_MESSAGE(b, (b ? "" : b.error().describe()));
  CHECK(b->name() == "Europe/Berlin");
  CHECK(b->offset_at(sys("2026-07-01T00:00:00Z")) == hours{2});
  auto alias = colocation::time_zone::open("Asia/Alias", root.str());
  REQUIRE(alias);
  CHECK(alias->offset_at(sys("2026-07-01T00:00:00Z")) == hours{2});

  auto esc = colocation::time_zone::open("Asia/Escape", root.str());
  REQUIRE_FALSE(esc);
  CHECK(esc.error().code() == errc::unsafe_path);
  auto missing = colocation::time_zone::open("Europe/Atlantis", root.str());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == errc::not_found);
  CHECK(has(missing.error().describe(), "loading time zone 'Europe/Atlantis'"));
  auto dots = colocation::time_zone::open("../etc/passwd", root.str());
  REQUIRE_FALSE(dots);
  CHECK(dots.error().code() == errc::invalid_argument);
  auto noroot = colocation::time_zone::open("UTC", (root.path() / "nope").string());
  REQUIRE_FALSE(noroot);
  CHECK(has(noroot.error().describe(), "tzdata"));
  write(root.path() / "Bad", "not a tzif file at all, definitely not");
  auto garbage = colocation::time_zone::open("Bad", root.str());
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().code() == errc::parse_error);
}

TEST_CASE("the machine's tzdata: Europe/Berlin 2026 and Asia/Shanghai") {
  if (!std::filesystem::exists(std::string(default_zoneinfo_root) + "/Europe/Berlin"))
    test::skip("tzdata is not installed (apt-get install tzdata)");
  auto berlin = colocation::time_zone::open("Europe/Berlin");
  REQUIRE_MESSAGE(berlin, (berlin ? "" : berlin.error().describe()));
  const auto tr = berlin->transitions(sys("2026-01-01T00:00:00Z"), sys("2027-01-01T00:00:00Z"));
  REQUIRE(tr.size() == 2);
  CHECK(tr[0] == sys("2026-03-29T01:00:00Z"));
  CHECK(tr[1] == sys("2026-10-25T01:00:00Z"));
  CHECK(berlin->at(sys("2026-03-29T01:00:00Z")).abbreviation == "CEST");
  CHECK(berlin->at(sys("2026-10-25T01:00:00Z")).abbreviation == "CET");
  // History from the table: Berlin kept CET all year in 1970.
  CHECK(berlin->offset_at(sys("1970-07-01T00:00:00Z")) == hours{1});
  // Far future, from the footer rule: 2100-03-28 is the last Sunday of March.
  CHECK(berlin->offset_at(sys("2100-03-28T00:59:59Z")) == hours{1});
  CHECK(berlin->offset_at(sys("2100-03-28T01:00:00Z")) == hours{2});

  auto shanghai = colocation::time_zone::open("Asia/Shanghai");
  REQUIRE(shanghai);
  CHECK(shanghai->offset_at(sys("2026-11-11T00:00:00Z")) == hours{8});
  CHECK(shanghai->transitions(sys("2000-01-01T00:00:00Z"), sys("2030-01-01T00:00:00Z")).empty());

  // The festival's first hour, daily in Shanghai, and Berlin's DST days.
  peak_calendar cal;
  REQUIRE(cal.add_daily("festival", std::make_shared<const time_zone>(std::move(*shanghai)), "00:00", "01:00",
                        ledger::rational::whole(0)));
  auto o = cal.active_at(at("2026-11-11T00:30:00+08:00"));
  REQUIRE(o);
  CHECK(o->start == at("2026-11-10T16:00:00Z"));
  CHECK(o->end == at("2026-11-10T17:00:00Z"));
  peak_calendar eu;
  REQUIRE(eu.add_daily("early", std::make_shared<const time_zone>(std::move(*berlin)), "02:00", "04:00",
                       ledger::rational::whole(0)));
  const auto occ = eu.occurrences(at("2026-03-29T00:00:00Z"), at("2026-03-29T12:00:00Z"));
  REQUIRE(occ.size() == 1);
  CHECK(occ[0].start == at("2026-03-29T01:00:00Z"));
  CHECK(occ[0].end == at("2026-03-29T02:00:00Z"));
  const auto fall = eu.occurrences(at("2026-10-25T00:00:00Z"), at("2026-10-25T12:00:00Z"));
  REQUIRE(fall.size() == 1);
  CHECK(fall[0].end - fall[0].start == hours{3});

  // Every zone of the machine's database parses (a broad check of the reader).
  std::size_t parsed = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(default_zoneinfo_root)) {
    if (!e.is_regular_file()) continue;
    const auto rel = std::filesystem::relative(e.path(), default_zoneinfo_root).string();
    if (rel.rfind("right/", 0) == 0 || rel.find('.') != std::string::npos || rel == "leapseconds" || rel == "leap-seconds.list" ||
        rel == "SECURITY" || rel == "tzdata.zi" || rel.rfind("posixrules", 0) == 0)
      continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string head(4, '\0');
    f.read(head.data(), 4);
    if (head != "TZif") continue;
    auto z = colocation::time_zone::open(rel);
    CHECK_MESSAGE(z, rel << ": " << (z ? "" : z.error().describe()));
    if (z) (void)z->offset_at(sys("2026-06-01T00:00:00Z"));
    ++parsed;
  }
  MESSAGE("parsed " << parsed << " zones");
  CHECK(parsed > 300);
}
