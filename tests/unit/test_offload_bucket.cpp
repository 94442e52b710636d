// Token bucket rules: burst, refill, one-time burst, sub-millisecond waits,
// oversize requests, reservations, and the bounds that make it exact.
#include <doctest/doctest.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "bulkhead/backend/offload/token_bucket.hpp"

using namespace bulkhead;
using namespace bulkhead::offload;

namespace {

mono_time at_ns(std::int64_t ns) { return from_ns(ns); }

bucket_core make(std::uint64_t rate, std::uint64_t burst, std::uint64_t otb = 0, std::int64_t start = 0) {
  auto b = bucket_core::make(rate, burst, otb, at_ns(start), "test");
  REQUIRE(b);
  return *b;
}

// Deterministic 64-bit generator (splitmix64).
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

}  // namespace

TEST_CASE("make() rejects parameters outside the limits, naming the input") {
  for (auto [rate, burst, otb] : {std::tuple{0ull, 1ull, 0ull}, std::tuple{(1ull << 40) + 1, 1ull, 0ull},
                                  std::tuple{1ull, 0ull, 0ull}, std::tuple{1ull, (1ull << 50) + 1, 0ull},
                                  std::tuple{1ull, 1ull, (1ull << 50) + 1}}) {
    auto b = bucket_core::make(rate, burst, otb, mono_time{}, "functions['x'].qos.tx.bandwidth");
    REQUIRE_FALSE(b);
    CHECK(b.error().code() == errc::out_of_range);
    CHECK(b.error().message().rfind("functions['x'].qos.tx.bandwidth.", 0) == 0);
  }
  CHECK(bucket_core::make(1ull << 40, 1ull << 50, 1ull << 50, mono_time{}, "x"));
}

TEST_CASE("a bucket starts full, admits its burst at once, then waits exactly") {
  auto b = make(1000, 10);  // 1000 units/s: one unit per 1,000,000 ns
  for (int i = 0; i < 10; ++i) CHECK(b.try_admit_ns(0, 1) == 0);
  CHECK(b.try_admit_ns(0, 1) == 1'000'000);
  CHECK(b.try_admit_ns(999'999, 1) == 1);  // one nanosecond short
  CHECK(b.try_admit_ns(1'000'000, 1) == 0);
  CHECK(b.try_admit_ns(1'000'000, 1) == 1'000'000);
  // A refusal takes nothing: the same request at the stated time passes.
  const auto w = b.try_admit_ns(1'500'000, 2);
  CHECK(w == 1'500'000);
  CHECK(b.try_admit_ns(1'500'000 + w, 2) == 0);
}

TEST_CASE("refill is exact: no drift over many refills at a rate that does not divide a second") {
  auto b = make(3, 1);  // 3 units/s, capacity 1: each unit takes 333,333,333.3 ns
  std::int64_t t = 0;
  std::uint64_t admitted = 0;
  // A backlogged source: retry exactly when told.
  while (t <= 100 * 1'000'000'000ll) {
    const auto w = b.try_admit_ns(t, 1);
    if (w == 0) ++admitted;
    else t += w;
  }
  // In [0, 100 s]: 1 (the full bucket) + 3 per second for 100 s, to the unit.
  CHECK(admitted == 1 + 300);
}

TEST_CASE("an idle bucket refills to its burst, never beyond") {
  auto b = make(1'000'000, 500);
  for (int i = 0; i < 500; ++i) REQUIRE(b.try_admit_ns(0, 1) == 0);
  const std::int64_t later = 3600ll * 1'000'000'000;  // an hour idle
  CHECK(b.available(at_ns(later)) == 500);
  CHECK(b.try_admit_ns(later, 500) == 0);
  CHECK(b.try_admit_ns(later, 1) == 1000);
  // Idle for ~292 years at the highest rate: no overflow, still capped.
  auto big = make(1ull << 40, 1ull << 50);
  CHECK(big.try_admit_ns(0, 1ull << 49) == 0);
  CHECK(big.available(at_ns(INT64_MAX)) == (1ull << 50));
}

TEST_CASE("sub-millisecond and sub-microsecond waits are exact and never zero") {
  auto b = make(10'000'000, 1);  // 100 ns per unit
  CHECK(b.try_admit_ns(0, 1) == 0);
  CHECK(b.try_admit_ns(0, 1) == 100);
  CHECK(b.try_admit_ns(99, 1) == 1);
  CHECK(b.try_admit_ns(100, 1) == 0);
  auto fast = make(3'000'000'000ull, 1);  // a third of a nanosecond per unit
  CHECK(fast.try_admit_ns(0, 1) == 0);
  CHECK(fast.try_admit_ns(0, 1) == 1);  // rounded up, not truncated to 0
  CHECK(fast.try_admit_ns(1, 1) == 0);
}

TEST_CASE("one-time burst: spent first, never refilled, and usable while the bucket is in debt") {
  auto b = make(1000, 2, 5);
  CHECK(b.try_admit_ns(0, 4) == 0);  // from the one-time burst
  CHECK(b.one_time_left() == 1);
  CHECK(b.available(at_ns(0)) == 2);  // the bucket is untouched
  CHECK(b.try_admit_ns(0, 3) == 0);   // 1 from the one-time burst, 2 from the bucket
  CHECK(b.one_time_left() == 0);
  CHECK(b.try_admit_ns(0, 1) == 1'000'000);
  // Long idle: the bucket refills, the one-time burst does not.
  const std::int64_t later = 10'000'000'000;
  CHECK(b.available(at_ns(later)) == 2);
  // 3 > capacity 2: admitted on a full bucket, leaving a debt of 1 (no one-time burst left to help).
  CHECK(b.try_admit_ns(later, 3) == 0);
  CHECK(b.one_time_left() == 0);
  CHECK(b.try_admit_ns(later, 1) == 2'000'000);

  auto d = make(1000, 2, 1);
  CHECK(d.try_admit_ns(0, 2) == 0);  // 1 from one-time, 1 from the bucket
  // Oversize (5 > capacity 2): waits for a full bucket, 1 unit away.
  CHECK(d.try_admit_ns(0, 5) == 1'000'000);
}

TEST_CASE("a request larger than the bucket passes when it is full and leaves a debt") {
  auto b = make(1000, 10);
  CHECK(b.try_admit_ns(0, 25) == 0);  // full: admitted, balance -15
  // The next unit needs the debt repaid and one more: 16 units = 16 ms.
  CHECK(b.try_admit_ns(0, 1) == 16'000'000);
  CHECK(b.try_admit_ns(16'000'000, 1) == 0);
  // A second oversize request waits for a full bucket: 10 units after the last one.
  CHECK(b.try_admit_ns(16'000'000, 25) == 10'000'000);
  // Over a long run oversize requests still get exactly the rate.
  auto c = make(1000, 10);
  std::int64_t t = 0;
  std::uint64_t units = 0;
  while (t < 60ll * 1'000'000'000) {
    const auto w = c.try_admit_ns(t, 25);
    if (w == 0) units += 25;
    else t += w;
  }
  // 10 (the first full bucket is used by the first request) + 1000/s for 60 s, plus the last request's debt.
  CHECK(units >= 60'000);
  CHECK(units <= 60'000 + 25);
}

TEST_CASE("reservations: earliest() and commit() schedule a FIFO at exact times") {
  auto b = make(1000, 2);
  std::vector<std::int64_t> due;
  for (int i = 0; i < 5; ++i) {
    const auto e = b.earliest_ns(0, 1);
    b.commit_ns(e, 1);
    due.push_back(e);
  }
  CHECK(due == std::vector<std::int64_t>{0, 0, 1'000'000, 2'000'000, 3'000'000});
  // try_admit before the last reservation waits for it.
  CHECK(b.try_admit_ns(500'000, 1) == 3'500'000);
  // A request offered later than the queue's tail starts from its own time.
  const auto e = b.earliest_ns(10'000'000, 1);
  CHECK(e == 10'000'000);
}

TEST_CASE("reconfigure keeps the tokens, up to the new burst") {
  auto b = make(1000, 100);
  REQUIRE(b.try_admit_ns(0, 40) == 0);  // 60 left
  REQUIRE(b.reconfigure(2000, 50, at_ns(0), "x"));
  CHECK(b.available(at_ns(0)) == 50);
  CHECK(b.try_admit_ns(0, 50) == 0);
  CHECK(b.try_admit_ns(0, 1) == 500'000);  // the new rate
  CHECK_FALSE(b.reconfigure(0, 50, at_ns(0), "x"));
}

TEST_CASE("property: a backlogged source gets rate x T, never more than burst + rate x T") {
  rng r{42};
  for (int round = 0; round < 300; ++round) {
    const std::uint64_t rate = 1 + r.below(50'000'000);
    const std::uint64_t burst = 1 + r.below(100'000);
    const std::uint64_t max_cost = 1 + r.below(burst * 2);
    auto b = make(rate, burst);
    const std::int64_t horizon = 1'000'000'000;
    std::int64_t t = 0;
    std::uint64_t units = 0, last_cost = 0;
    int steps = 0;
    while (t < horizon && steps < 200'000) {
      const std::uint64_t cost = 1 + r.below(max_cost);
      std::int64_t w;
      while ((w = b.try_admit_ns(t, cost)) != 0) t += w;
      if (t >= horizon) break;
      units += cost;
      last_cost = cost;
      ++steps;
      // Sometimes the source pauses.
      if (r.below(10) == 0) t += static_cast<std::int64_t>(r.below(1'000'000));
    }
    (void)last_cost;
    // Debt is at most one request's excess over the burst.
    const u128 allowed = static_cast<u128>(rate) * static_cast<u128>(t) / 1'000'000'000u + burst + max_cost;
    INFO("rate " << rate << " burst " << burst << " units " << units);
    CHECK(static_cast<u128>(units) <= allowed);
  }
}

TEST_CASE("dual limiter: a request passes both buckets or neither") {
  auto bytes_b = byte_bucket::make(bucket_spec<bytes, bytes_per_second>{bytes_per_second{1000}, bytes{1500}, bytes{0}},
                                   at_ns(0), "bw");
  auto pkts = packet_bucket::make(bucket_spec<packets, packets_per_second>{packets_per_second{10}, packets{2}, packets{0}},
                                  at_ns(0), "pps");
  REQUIRE(bytes_b);
  REQUIRE(pkts);
  dual_limiter<packets, packets_per_second> l(*bytes_b, *pkts);
  CHECK(l.try_admit_ns(0, bytes{100}) == 0);
  CHECK(l.try_admit_ns(0, bytes{100}) == 0);
  // Packets exhausted (2): refused for 100 ms; bytes untouched.
  CHECK(l.try_admit_ns(0, bytes{100}) == 100'000'000);
  CHECK(l.byte_side().core()->available(at_ns(0)) == 1300);
  // At 100 ms one packet is back; 1400 bytes needs 1300 + 100 ms x 1000 B/s = 1400: exactly enough.
  CHECK(l.try_admit_ns(100'000'000, bytes{1400}) == 0);
  // Unlimited buckets never wait.
  dual_limiter<packets, packets_per_second> none;
  CHECK_FALSE(none.limited());
  CHECK(none.try_admit_ns(5, bytes{1ull << 40}) == 0);
}
