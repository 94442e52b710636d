// resctrl schemata text, capacity bitmask rules and the way allocator.
#include <doctest/doctest.h>

#include "bulkhead/backend/resctrl/backend.hpp"
#include "bulkhead/backend/resctrl/schemata.hpp"

using namespace bulkhead;

namespace {
resctrl::cache_info l3(std::uint64_t cbm = 0x7ff, std::uint32_t min = 2, std::uint64_t shareable = 0, bool sparse = false) {
  resctrl::cache_info c;
  c.resource = "L3";
  c.cbm_mask = cbm;
  c.min_cbm_bits = min;
  c.num_closids = 16;
  c.shareable_bits = shareable;
  c.sparse_masks = sparse;
  return c;
}
}  // namespace

TEST_CASE("schemata: padding, gaps in cache ids, trailing separators, CDP") {
  auto s = resctrl::parse_schemata("    L3:0=0ff;2=7ff;\n    MB:0=2048;1=  16;2=2048;3=2048\n");
  REQUIRE(s);
  REQUIRE(s->size() == 2);
  const auto* l = resctrl::find_line(*s, "L3");
  REQUIRE(l);
  CHECK(l->values == std::vector<std::pair<std::uint32_t, std::uint64_t>>{{0, 0xff}, {2, 0x7ff}});
  CHECK(l->find(1) == nullptr);
  CHECK(*resctrl::find_line(*s, "MB")->find(1) == 16);
  CHECK(resctrl::format_schemata_line(*l) == "L3:0=ff;2=7ff");
  CHECK(resctrl::format_schemata_line(*resctrl::find_line(*s, "MB")) == "MB:0=2048;1=16;2=2048;3=2048");

  auto cdp = resctrl::parse_schemata("L3DATA:0=fffff;1=fffff\nL3CODE:0=0ff00;1=0ff00\n");
  REQUIRE(cdp);
  CHECK(*resctrl::find_line(*cdp, "L3CODE")->find(0) == 0xff00);
  CHECK(resctrl::is_cache("L3DATA"));
  CHECK(resctrl::is_cache("L2"));
  CHECK_FALSE(resctrl::is_cache("MB"));
  CHECK_FALSE(resctrl::is_cache("SMBA"));
}

TEST_CASE("schemata: malformed text is refused with the line") {
  for (auto bad : {"L3 0=ff\n", "L3:0ff\n", "L3:0=fg\n", "MB:0=0x10\n", "L3:0=1;0=3\n", "L3:0=1\nL3:1=1\n", ":0=1\n",
                   "L3:99999999999=1\n"}) {
    auto r = resctrl::parse_schemata(std::string("MB:0=100\n") + bad, "g/schemata");
    REQUIRE_FALSE(r);
    INFO(r.error().describe());
    CHECK(r.error().message().rfind("g/schemata line ", 0) == 0);
  }
}

TEST_CASE("capacity bitmasks: contiguous, within cbm_mask, at least min_cbm_bits") {
  CHECK(resctrl::cbm_contiguous(0x3));
  CHECK(resctrl::cbm_contiguous(0x6));
  CHECK(resctrl::cbm_contiguous(0xc));
  CHECK(resctrl::cbm_contiguous(0x7f0));
  CHECK_FALSE(resctrl::cbm_contiguous(0x5));
  CHECK_FALSE(resctrl::cbm_contiguous(0x9));
  CHECK_FALSE(resctrl::cbm_contiguous(0xa));
  CHECK_FALSE(resctrl::cbm_contiguous(0));
  const auto c = l3();
  CHECK(resctrl::check_cbm(0x0f0, c, "m"));
  CHECK(resctrl::check_cbm(0x5, c, "m").error().message().find("not contiguous") != std::string::npos);
  CHECK(resctrl::check_cbm(0x1, c, "m").error().message().find("min_cbm_bits 2") != std::string::npos);
  CHECK(resctrl::check_cbm(0x800, c, "m").error().message().find("outside L3 cbm_mask 0x7ff") != std::string::npos);
  CHECK(resctrl::check_cbm(0, c, "m").error().code() == errc::invalid_argument);
  CHECK(resctrl::check_cbm(0x505, l3(0x7ff, 2, 0, true), "m"));  // sparse masks allowed
}

TEST_CASE("shared placement: keep a fitting mask, avoid exclusive ways, prefer unused ways") {
  const auto c = l3();
  resctrl::cbm_usage u;
  u.exclusive = 0x300;
  u.shared = 0x00f;
  // Current mask still fits: kept.
  auto keep = resctrl::choose_cbm(c, 4, false, 0x0f0, u, "x");
  REQUIRE(keep);
  CHECK(keep->mask == 0x0f0);
  // A current mask on exclusive ways is moved; ways nobody uses are preferred.
  auto move = resctrl::choose_cbm(c, 4, false, 0x3c0, u, "x");
  REQUIRE(move);
  CHECK((move->mask & 0x300) == 0);
  CHECK((move->mask & 0x00f) == 0);
  CHECK(move->mask == 0x0f0);
  CHECK(move->shrunk.empty());
  // 9 ways would need the exclusive ones.
  auto none = resctrl::choose_cbm(c, 9, false, 0, u, "llc.allocations[cache 0]");
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == errc::insufficient_capacity);
  CHECK(none.error().message().find("llc.allocations[cache 0]") != std::string::npos);
  CHECK(resctrl::choose_cbm(c, 1, false, 0, u, "x").error().code() == errc::out_of_range);   // below min_cbm_bits
  CHECK(resctrl::choose_cbm(c, 12, false, 0, u, "x").error().code() == errc::out_of_range);  // more than the cache has
}

TEST_CASE("exclusive placement: from the top, around hardware bits, shrinking the default group") {
  const auto c = l3(0x7ff, 2, 0x400);
  resctrl::cbm_usage u;
  u.exclusive = 0x300;
  u.shrinkable = {{"", 0x0ff}, {"batch", 0x00f}};
  auto a = resctrl::choose_cbm(c, 2, true, 0, u, "x");
  REQUIRE(a);
  CHECK(a->mask == 0x0c0);  // highest free run: not 0x400 (hardware), not 0x300 (exclusive)
  REQUIRE(a->shrunk.size() == 1);
  CHECK(a->shrunk[0].group.empty());
  CHECK(a->shrunk[0].mask == 0x03f);
  // A run that would leave a group with a broken or too small mask is skipped.
  resctrl::cbm_usage tight;
  tight.shrinkable = {{"", 0x007}};
  auto t = resctrl::choose_cbm(l3(0x007, 1), 1, true, 0, tight, "x");
  REQUIRE(t);
  CHECK(t->mask == 0x4);  // 0x2 would split the default group into 0x5
  CHECK(t->shrunk[0].mask == 0x3);
  resctrl::cbm_usage full;
  full.shrinkable = {{"", 0x7ff}};
  full.exclusive = 0x0;
  auto f = resctrl::choose_cbm(l3(0x7ff, 2), 10, true, 0, full, "x");  // would leave the default group 1 way
  REQUIRE_FALSE(f);
  CHECK(f.error().code() == errc::insufficient_capacity);
  // An exclusive group that already fits keeps its ways.
  resctrl::cbm_usage kept;
  kept.exclusive = 0x300;
  kept.shrinkable = {{"", 0x03f}};
  auto k = resctrl::choose_cbm(c, 2, true, 0x0c0, kept, "x");
  REQUIRE(k);
  CHECK(k->mask == 0x0c0);
  CHECK(k->shrunk.empty());
}
