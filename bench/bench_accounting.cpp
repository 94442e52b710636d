// Accounting benchmarks (issue 3), each beside its baseline in the same run:
//   meter:    samples/s for 10,000 instances x 8 counters on one core, with
//             pre-resolved series handles; baseline: a naive meter keyed by
//             std::map<(source, uuid, incarnation, counter), state>.
//   journal:  durable deltas/s with group commit and bytes per record on
//             disk; baseline: one fdatasync per record.
//   recovery: records/s verified and replayed by open_read_only(); baseline:
//             reading the same files and checking only the CRCs.
// The journal lives under $BULKHEAD_BENCH_DIR, else $TMPDIR, else /tmp: put
// it on the disk you want to measure.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/crc.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/meter.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {

constexpr int instances = 10'000;
constexpr int per_instance = 8;
const char* counter_names[per_instance] = {"cpu_time_ns",        "vcpu/0/time_ns",      "disk/vda/read_bytes",
                                           "disk/vda/write_bytes", "net/52:54:00:aa:bb:cc/rx_bytes",
                                           "net/52:54:00:aa:bb:cc/tx_bytes", "disk/vda/read_requests",
                                           "disk/vda/write_requests"};

uuid vm(int i) {
  std::array<std::uint8_t, 16> b{};
  b[0] = 0x42;
  b[13] = static_cast<std::uint8_t>(i >> 16);
  b[14] = static_cast<std::uint8_t>(i >> 8);
  b[15] = static_cast<std::uint8_t>(i);
  return uuid{b};
}

fs::path bench_dir(const std::string& name) {
  const char* base = std::getenv("BULKHEAD_BENCH_DIR");
  if (!base || !*base) base = std::getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  auto p = fs::path(base) / ("bulkhead-bench-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// --- meter ------------------------------------------------------------------

void BM_meter_handles(benchmark::State& state) {
  meter m;
  std::vector<series_handle> hs;
  hs.reserve(instances * per_instance);
  for (int i = 0; i < instances; ++i)
    for (int c = 0; c < per_instance; ++c)
      hs.push_back(m.series(series_key{"qemu:///system@boot", vm(i), incarnation{1}, counter_names[c], 64,
                                       series_kind::usage})
                       .value());
  std::vector<std::uint64_t> value(hs.size(), 0);
  std::int64_t round = 0;
  u128 sum = 0;
  for (auto _ : state) {
    ++round;
    const auto t = mono_time{} + std::chrono::seconds(round);
    const auto w = wall_time{} + std::chrono::seconds(1'700'000'000 + round);
    for (std::size_t k = 0; k < hs.size(); ++k) {
      value[k] += (k * 7 + static_cast<std::size_t>(round)) & 0xFFF;
      const auto r = m.observe(hs[k], t, w, value[k]);
      sum += r.d.amount;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(hs.size()));
}
BENCHMARK(BM_meter_handles)->Unit(benchmark::kMillisecond);

// The baseline: what a first meter looks like, keyed by a std::map of the
// whole identity, with the same rules.
struct naive_state {
  std::int64_t last_t = -1;
  std::uint64_t last = 0;
  u128 total = 0;
  std::uint64_t resets = 0;
};
void BM_meter_naive_map(benchmark::State& state) {
  using key = std::tuple<std::string, uuid, std::uint64_t, std::string>;
  std::map<key, naive_state> m;
  std::vector<key> keys;
  for (int i = 0; i < instances; ++i)
    for (int c = 0; c < per_instance; ++c) keys.emplace_back("qemu:///system@boot", vm(i), 1, counter_names[c]);
  std::vector<std::uint64_t> value(keys.size(), 0);
  std::int64_t round = 0;
  for (auto _ : state) {
    ++round;
    const std::int64_t t = round * 1'000'000'000;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      value[k] += (k * 7 + static_cast<std::size_t>(round)) & 0xFFF;
      auto& s = m[keys[k]];
      if (s.last_t >= 0 && t > s.last_t) {
        if (value[k] >= s.last) s.total += value[k] - s.last;
        else {
          s.total += value[k];
          ++s.resets;
        }
      }
      s.last_t = t;
      s.last = value[k];
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(keys.size()));
}
BENCHMARK(BM_meter_naive_map)->Unit(benchmark::kMillisecond);

// --- journal ----------------------------------------------------------------

constexpr int journal_series = 1000;

struct journal_feed {
  std::vector<std::uint32_t> ids;
  std::vector<std::uint64_t> value;
  std::vector<std::int64_t> at;
  explicit journal_feed(journal& j) {
    for (int i = 0; i < journal_series; ++i) {
      ids.push_back(j.define(series_key{"qemu:///system@boot", vm(i / per_instance), incarnation{1},
                                        counter_names[i % per_instance], 64, series_kind::usage})
                        .value());
      value.push_back(0);
      at.push_back(1'000'000'000);
    }
  }
  // Appends n deltas round robin; returns the last ticket.
  ticket append(journal& j, std::int64_t n) {
    ticket last{};
    for (std::int64_t k = 0; k < n; ++k) {
      const auto s = static_cast<std::size_t>(k % journal_series);
      const std::uint64_t amount = 1'000'000 + (static_cast<std::uint64_t>(k) * 7919) % 100'000'000;
      const auto start = at[s];
      at[s] += 1'000'000'000;
      value[s] += amount;
      auto r = j.append(ids[s], delta{mono_time{} + std::chrono::nanoseconds(start),
                                      mono_time{} + std::chrono::nanoseconds(at[s]),
                                      wall_time{} + std::chrono::nanoseconds(1'700'000'000'000'000'000 + at[s]),
                                      amount, value[s], 0});
      last = r->t;
    }
    return last;
  }
};

std::uint64_t segment_bytes_on_disk(const fs::path& dir) {
  std::uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".bhj") n += e.file_size();
  return n;
}

void journal_bench(benchmark::State& state, journal_options o, std::int64_t per_iteration, bool wait_each) {
  const auto dir = bench_dir("journal");
  std::uint64_t records = 0;
  {
    auto j = journal::open(dir.string(), o).value();
    journal_feed f(*j);
    (void)j->flush();
    const auto base = segment_bytes_on_disk(dir);
    for (auto _ : state) {
      if (wait_each) {
        for (std::int64_t k = 0; k < per_iteration; ++k) (void)j->wait(f.append(*j, 1));
      } else {
        (void)j->wait(f.append(*j, per_iteration));
      }
      records += static_cast<std::uint64_t>(per_iteration);
    }
    const auto st = j->stats();
    state.counters["bytes_per_record"] =
        static_cast<double>(segment_bytes_on_disk(dir) - base) / static_cast<double>(records);
    state.counters["records_per_fdatasync"] =
        static_cast<double>(st.appended) / static_cast<double>(std::max<std::uint64_t>(st.batches, 1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  fs::remove_all(dir);
}

void BM_journal_group_commit(benchmark::State& state) {
  journal_bench(state, {.batch_records = static_cast<std::size_t>(state.range(0)),
                        .max_delay = std::chrono::milliseconds(2), .segment_bytes = 64ull << 20},
                1'000'000, false);
}
BENCHMARK(BM_journal_group_commit)->Arg(8192)->Arg(65536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_journal_fdatasync_each(benchmark::State& state) {
  journal_bench(state, {.batch_records = 1, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 64ull << 20},
                2000, true);
}
BENCHMARK(BM_journal_fdatasync_each)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

// --- recovery ---------------------------------------------------------------

struct recovery_fixture {
  fs::path dir;
  std::uint64_t records = 0;
  recovery_fixture() {
    dir = bench_dir("recovery");
    auto j = journal::open(dir.string(), {.batch_records = 65536, .max_delay = std::chrono::milliseconds(5)}).value();
    journal_feed f(*j);
    (void)j->wait(f.append(*j, 4'000'000));
    records = j->last_seq();
  }
  ~recovery_fixture() { fs::remove_all(dir); }
};
recovery_fixture& fixture() {
  static recovery_fixture f;
  return f;
}

void BM_recovery_open_read_only(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) {
    auto v = journal::open_read_only(f.dir.string());
    if (!v || v->report.records != f.records) state.SkipWithError("recovery did not replay every record");
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(f.records));
}
BENCHMARK(BM_recovery_open_read_only)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// The floor: read every segment and check every record's CRC, nothing else.
void BM_recovery_crc_only(benchmark::State& state) {
  auto& f = fixture();
  std::string buf;
  for (auto _ : state) {
    std::uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(f.dir)) {
      if (e.path().extension() != ".bhj") continue;
      const int fd = ::open(e.path().c_str(), O_RDONLY);
      buf.resize(e.file_size());
      std::size_t got = 0;
      while (got < buf.size()) {
        const auto r = ::read(fd, buf.data() + got, buf.size() - got);
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
      }
      ::close(fd);
      std::size_t off = 32;
      while (off + 16 <= got) {
        std::uint32_t lt = 0;
        std::memcpy(&lt, buf.data() + off + 4, 4);
        const std::size_t len = lt & 0xFFFFFF;
        boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> c;
        c.process_bytes(buf.data() + off + 4, 12 + len);
        std::uint32_t stored = 0;
        std::memcpy(&stored, buf.data() + off, 4);
        if (stored != c.checksum()) break;
        off += 16 + len;
        ++n;
      }
    }
    if (n != f.records) state.SkipWithError("CRC scan did not see every record");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(f.records));
}
BENCHMARK(BM_recovery_crc_only)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
