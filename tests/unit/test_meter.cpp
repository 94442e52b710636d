// The meter rules (bulkhead/accounting/meter.hpp), one case each; every case
// fails if its rule is missing.
#include <doctest/doctest.h>

#include "bulkhead/accounting/meter.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;

namespace {
const uuid vm1 = *uuid::parse("11111111-1111-1111-1111-111111111111");
const uuid vm2 = *uuid::parse("22222222-2222-2222-2222-222222222222");

mono_time at(std::int64_t s) { return mono_time{} + std::chrono::seconds(100 + s); }
wall_time wall(std::int64_t s) { return wall_time{} + std::chrono::seconds(1'700'000'000 + s); }

series_key key(std::string counter, std::uint64_t run = 1, std::uint8_t width = 64, const uuid& u = vm1,
               series_kind kind = series_kind::usage) {
  return series_key{"test:///default", u, incarnation{run}, std::move(counter), width, kind};
}

sample_result feed(meter& m, series_handle h, std::int64_t s, std::uint64_t v) { return m.observe(h, at(s), wall(s), v); }
}  // namespace

TEST_CASE("first sample sets the baseline and accounts nothing from before it") {
  meter m;
  auto h = m.series(key("cpu_time_ns")).value();
  auto r = feed(m, h, 0, 5'000'000'000);  // the VM ran 5 s before we looked
  CHECK(r.outcome == sample_outcome::baseline);
  CHECK_FALSE(r.accounted());
  CHECK(m.totals(h).amount == 0);
  auto r2 = feed(m, h, 1, 5'700'000'000);
  REQUIRE(r2.accounted());
  CHECK(r2.d.amount == 700'000'000);
  CHECK(r2.d.start == at(0));
  CHECK(r2.d.end == at(1));
  CHECK(r2.d.end_value == 5'700'000'000);
  CHECK(r2.d.flags == 0);
  CHECK(m.totals(h).amount == 700'000'000);
  CHECK(m.stats().baselines == 1);
}

TEST_CASE("a counter that goes down is a reset: the new value is growth since the reset") {
  meter m;
  auto h = m.series(key("disk/vda/read_bytes")).value();
  feed(m, h, 0, 1000);
  feed(m, h, 1, 1500);
  auto r = feed(m, h, 2, 200);  // reset, then 200 more
  REQUIRE(r.accounted());
  CHECK(r.d.amount == 200);  // not 200 - 1500 (negative), not 0
  CHECK((r.d.flags & delta_flag::reset) != 0);
  CHECK(m.totals(h).resets == 1);
  CHECK(m.totals(h).amount == 700);
  auto r2 = feed(m, h, 3, 250);
  CHECK(r2.d.amount == 50);
  CHECK(r2.d.flags == 0);
}

TEST_CASE("a 32-bit counter that goes down by more than half its range wrapped: modulo 2^32") {
  meter m;
  auto h = m.series(key("net/52:54:00:aa:bb:cc/rx_bytes", 1, 32)).value();
  feed(m, h, 0, 0xFFFF'FF00u);
  auto r = feed(m, h, 1, 0x100);  // wrapped: 0x100 bytes to the top, 0x100 after
  REQUIRE(r.accounted());
  CHECK(r.d.amount == 0x200);
  CHECK((r.d.flags & delta_flag::wrap) != 0);
  CHECK((r.d.flags & delta_flag::reset) == 0);
  CHECK(m.totals(h).wraps == 1);
  CHECK(m.totals(h).resets == 0);
  // A drop of less than half the range is still a reset at 32 bits.
  feed(m, h, 2, 0x7000'0000u);
  auto r2 = feed(m, h, 3, 0x1000);
  CHECK((r2.d.flags & delta_flag::reset) != 0);
  CHECK(r2.d.amount == 0x1000);
  // A 32-bit series refuses a value wider than 32 bits.
  CHECK(feed(m, h, 4, 0x1'0000'0000ull).outcome == sample_outcome::out_of_range);
  // The same drop on a 64-bit series is a reset, not a wrap.
  auto h64 = m.series(key("net/52:54:00:aa:bb:cc/tx_bytes")).value();
  feed(m, h64, 0, 0xFFFF'FF00u);
  auto r3 = feed(m, h64, 1, 0x100);
  CHECK((r3.d.flags & delta_flag::reset) != 0);
  CHECK(r3.d.amount == 0x100);
}

TEST_CASE("a 64-bit counter wraps too") {
  meter m;
  auto h = m.series(key("cpu_time_ns")).value();
  feed(m, h, 0, ~std::uint64_t{0} - 9);
  auto r = feed(m, h, 1, 5);
  CHECK((r.d.flags & delta_flag::wrap) != 0);
  CHECK(r.d.amount == 15);
}

TEST_CASE("a new incarnation is a new series; the old one is closed with what it had") {
  meter m;
  auto a = m.series(key("cpu_time_ns", 1)).value();
  feed(m, a, 0, 100);
  feed(m, a, 1, 400);
  CHECK(m.close_incarnation("test:///default", vm1, incarnation{1}) == 1);
  auto b = m.series(key("cpu_time_ns", 2)).value();
  CHECK_FALSE(a == b);
  // The new incarnation's counter starts near 0: a baseline, not a reset of
  // the old series and not 400 -> 30 arithmetic.
  auto r = feed(m, b, 2, 30);
  CHECK(r.outcome == sample_outcome::baseline);
  CHECK(m.totals(a).resets == 0);
  CHECK(feed(m, b, 3, 90).d.amount == 60);
  // The old one keeps its 300 and rejects late samples.
  CHECK(feed(m, a, 4, 900).outcome == sample_outcome::closed);
  CHECK(m.totals(a).amount == 300);
  CHECK(m.totals(a).closed);
  CHECK(m.totals(b).amount == 60);
  // Other instances are untouched.
  auto other = m.series(key("cpu_time_ns", 1, 64, vm2)).value();
  feed(m, other, 0, 1);
  CHECK(m.close_incarnation("test:///default", vm2, incarnation{7}) == 0);
  CHECK(feed(m, other, 1, 2).accounted());
}

TEST_CASE("samples not newer than the last one are rejected and counted, never accounted") {
  meter m;
  auto h = m.series(key("cpu_time_ns")).value();
  feed(m, h, 10, 1000);
  feed(m, h, 20, 2000);
  auto old = feed(m, h, 15, 1500);  // older by monotonic time
  CHECK(old.outcome == sample_outcome::out_of_order);
  auto same = feed(m, h, 20, 2500);  // same time
  CHECK(same.outcome == sample_outcome::out_of_order);
  CHECK(m.stats().out_of_order == 2);
  CHECK(m.totals(h).rejected == 2);
  CHECK(m.totals(h).amount == 1000);
  // The series continues from the last accepted sample, not the rejected one.
  auto r = feed(m, h, 30, 3000);
  CHECK(r.d.amount == 1000);
  CHECK(r.d.start == at(20));
  // Without the rule, the old sample (1500 < 2000) would have read as a reset.
  CHECK(m.totals(h).resets == 0);
}

TEST_CASE("a failed read advances nothing: the next good sample covers the gap, which is recorded") {
  meter m;
  auto cpu = m.series(key("cpu_time_ns")).value();
  auto disk = m.series(key("disk/vda/write_bytes")).value();
  feed(m, cpu, 0, 1000);
  feed(m, disk, 0, 10);
  feed(m, cpu, 1, 2000);
  feed(m, disk, 1, 20);
  REQUIRE(m.read_failed("test:///default", vm1, at(2), "virDomainGetInfo: timeout"));
  REQUIRE(m.read_failed("test:///default", vm1, at(3), "virDomainGetInfo: timeout"));
  CHECK(m.gap_open("test:///default", vm1));
  CHECK(m.take_gaps().empty());
  auto r = feed(m, cpu, 4, 5000);
  REQUIRE(r.accounted());
  CHECK(r.d.start == at(1));  // the whole interval, exactly
  CHECK(r.d.end == at(4));
  CHECK(r.d.amount == 3000);
  CHECK((r.d.flags & delta_flag::after_gap) != 0);
  CHECK_FALSE(m.gap_open("test:///default", vm1));
  auto gaps = m.take_gaps();
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].start == at(1));
  CHECK(gaps[0].end == at(4));
  CHECK(gaps[0].failures == 2);
  CHECK(gaps[0].reason == "virDomainGetInfo: timeout");
  CHECK(gaps[0].uuid == vm1);
  // The other counter of the instance also covers the gap in one delta.
  auto d = feed(m, disk, 4, 50);
  CHECK(d.d.amount == 30);
  CHECK(d.d.start == at(1));
  CHECK((d.d.flags & delta_flag::after_gap) != 0);
  CHECK(m.totals(cpu).gaps_covered == 1);
  CHECK(m.take_gaps().empty());
  CHECK(m.stats().failed_reads == 2);
  CHECK(m.stats().gaps == 1);
  CHECK(m.totals(cpu).amount == 4000);
}

TEST_CASE("allocation integrates the level held over each interval in 128 bits") {
  meter m;
  auto mem = m.series(key("alloc/memory_bytes", 1, 64, vm1, series_kind::allocation)).value();
  const std::uint64_t tib = 1ull << 40;
  CHECK(feed(m, mem, 0, 4 * tib).outcome == sample_outcome::baseline);
  // 4 TiB held for 10 s: 4 * 2^40 * 10^10 byte-ns, far beyond 64 bits.
  auto r = feed(m, mem, 10, 8 * tib);
  REQUIRE(r.accounted());
  CHECK(r.d.amount == 4 * tib);  // the level held over (0, 10]
  CHECK(r.d.end_value == 8 * tib);
  const u128 want = static_cast<u128>(4 * tib) * 10'000'000'000ull;
  CHECK(m.totals(mem).amount == want);
  CHECK(want > static_cast<u128>(~std::uint64_t{0}));
  // A level that goes down is not a reset.
  feed(m, mem, 11, tib);
  CHECK(m.totals(mem).resets == 0);
  CHECK(m.totals(mem).amount == want + static_cast<u128>(8 * tib) * 1'000'000'000ull);
}

TEST_CASE("series are interned: the same key gives the same handle") {
  meter m;
  auto a = m.series(key("cpu_time_ns")).value();
  auto b = m.series(key("cpu_time_ns")).value();
  CHECK(a == b);
  CHECK(m.size() == 1);
  CHECK(m.find(key("cpu_time_ns")).value() == a);
  CHECK_FALSE(m.find(key("cpu_time_ns", 2)));
  auto w = m.series(key("cpu_time_ns", 1, 32));  // a different width is a different series
  CHECK_FALSE(*w == a);
}

TEST_CASE("bad keys are refused with the input named") {
  meter m;
  auto r = m.series(key("cpu_time_ns", 1, 0));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::out_of_range);
  CHECK(r.error().message().find("width 0") != std::string::npos);
  auto e = m.series(key(""));
  REQUIRE_FALSE(e);
  CHECK(e.error().message().find("series counter") != std::string::npos);
  auto c = m.series(key("cpu\ntime"));
  REQUIRE_FALSE(c);
  CHECK(c.error().message().find("control character") != std::string::npos);
  CHECK_FALSE(m.read_failed("", vm1, at(0), "x"));
}

TEST_CASE("resume continues a series from a previous meter's last value") {
  meter m;
  auto h = m.series(key("cpu_time_ns")).value();
  m.resume(h, at(5), wall(5), 5000);
  auto r = feed(m, h, 6, 5600);
  REQUIRE(r.accounted());  // not a baseline: nothing between 5 and 6 is lost
  CHECK(r.d.amount == 600);
  CHECK(r.d.start == at(5));
  m.resume(h, at(1), wall(1), 0);  // older: ignored
  CHECK(feed(m, h, 7, 5700).d.amount == 100);
}
