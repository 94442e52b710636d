// The journal under concurrent use (issue 9; run under ThreadSanitizer by
// tools/bootstrap.sh): appenders on several threads defining and appending
// to their own series and waiting on tickets, a thread checkpointing (which
// pauses appends and retires segments), readers taking snapshots, stats and
// read-only opens beside the writer, all at once, with small segments so
// rotation happens too. Afterwards every total is exact, and a reopen
// recovers the same state.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;

namespace {

constexpr int threads = 6;
constexpr int series_per_thread = 2;
constexpr int deltas_per_series = 150;

mono_time at(std::int64_t ms) { return mono_time{} + std::chrono::milliseconds(1'000 + ms); }
wall_time wall(std::int64_t ms) { return wall_time{} + std::chrono::milliseconds(1'700'000'000'000 + ms); }

series_key key_of(int t, int s) {
  std::array<std::uint8_t, 16> b{};
  b[0] = 0x9c;
  b[15] = static_cast<std::uint8_t>(t);
  return series_key{"group-commit@boot", uuid{b}, incarnation{1}, s == 0 ? "cpu_time_ns" : "disk/vda/write_bytes", 64,
                    series_kind::usage};
}
std::uint64_t amount(int t, int s, int k) { return static_cast<std::uint64_t>(1000 * (t + 1) + 10 * s + k % 7); }

}  // namespace

TEST_CASE("appenders, a checkpointer and readers at once: totals exact, recovery identical") {
  test::temp_dir dir("bulkhead-group-commit");
  const journal_options opt{.batch_records = 32, .max_delay = milliseconds(1), .segment_bytes = 4096};
  rollup final_state;
  std::uint64_t checkpoints = 0;
  {
    auto j = journal::open(dir.str(), opt);
    REQUIRE(j);
    journal& jr = **j;
    std::atomic<int> failures{0}, appenders_left{threads};
    std::atomic<std::uint64_t> reads{0}, raced{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::uint32_t ids[series_per_thread];
        for (int s = 0; s < series_per_thread; ++s) {
          auto id = jr.define(key_of(t, s), {"task-" + std::to_string(t), std::string("tenant"), qos_class::BE});
          if (!id) ++failures;
          ids[s] = id ? *id : 0;
        }
        std::uint64_t value[series_per_thread] = {};
        for (int k = 0; k < deltas_per_series; ++k) {
          for (int s = 0; s < series_per_thread; ++s) {
            const auto a = amount(t, s, k);
            value[s] += a;
            auto r = jr.append(ids[s], delta{at(k * 1000), at((k + 1) * 1000), wall((k + 1) * 1000), a, value[s], 0});
            if (!r || r->duplicate) {
              ++failures;
              continue;
            }
            if (k % 10 == 9 && !jr.wait(r->t)) ++failures;
          }
        }
        if (!jr.flush()) ++failures;
        --appenders_left;
      });
    }
    std::thread checkpointer([&] {
      while (appenders_left.load() > 0) {
        if (!jr.checkpoint()) ++failures;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    std::thread reader([&] {
      do {
        const auto snap = jr.snapshot();
        const auto st = jr.stats();
        if (jr.durable_seq() > jr.last_seq()) ++failures;
        if (jr.failure()) ++failures;
        (void)jr.series();
        if (snap.total().deltas > st.appended) ++failures;
        auto view = journal::open_read_only(dir.str());
        // A read-only open beside the writer sees a durable prefix: never
        // corruption, never more than was appended. It may lose a race with
        // segment retirement more often than it retries (not_found, said so).
        if (!view) {
          if (view.error().code() != errc::not_found) ++failures;
          else ++raced;
        } else if (view->report.corruption || view->totals.total().deltas > jr.stats().appended) {
          ++failures;
        }
        ++reads;
      } while (appenders_left.load() > 0);
    });
    for (auto& th : pool) th.join();
    checkpointer.join();
    reader.join();
    CHECK(failures.load() == 0);
    CHECK(reads.load() > 0);
    MESSAGE("read-only opens beside the writer: ", reads.load(), ", lost a race with retirement: ", raced.load());
    REQUIRE(jr.flush());
    final_state = jr.snapshot();
    const auto st = jr.stats();
    checkpoints = st.checkpoints;
    CHECK(st.appended == static_cast<std::uint64_t>(threads * series_per_thread * (1 + deltas_per_series)));
    CHECK(st.duplicates == 0);
    CHECK(jr.durable_seq() == jr.last_seq());
  }
  CHECK(checkpoints > 0);
  // Exact totals: every delta counted once.
  u128 cpu = 0, disk = 0;
  for (int t = 0; t < threads; ++t)
    for (int k = 0; k < deltas_per_series; ++k) {
      cpu += amount(t, 0, k);
      disk += amount(t, 1, k);
    }
  CHECK(final_state.total().cpu_time_ns == cpu);
  CHECK(final_state.total().disk_write_bytes == disk);
  CHECK(final_state.total().deltas == static_cast<std::uint64_t>(threads * series_per_thread * deltas_per_series));
  CHECK(final_state.series().size() == static_cast<std::size_t>(threads * series_per_thread));

  auto again = journal::open(dir.str(), opt);
  REQUIRE(again);
  CHECK((*again)->snapshot() == final_state);
  CHECK_FALSE((*again)->recovery().torn_segment);
  CHECK((*again)->recovery().quarantined.empty());
}
