// Reserve + release of a 4-resource request (cpu, memory, disk IOPS, network
// bandwidth), on one and two threads, against a baseline measured in the same
// run: a naive ledger with one global mutex, string-keyed maps, per-consumer
// maps of amounts and a floating-point allocation ratio (the obvious first
// implementation). Items per second = reserve+release pairs per second.
// Also the per-host lock on its own (issue 15): the ledger's spin lock
// against std::mutex, uncontended and with two threads on one lock, around an
// empty critical section and one of about a reserve's length.
//   ./bench_ledger --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "bulkhead/ledger/ledger.hpp"

using namespace bulkhead;
using namespace bulkhead::ledger;
using rk = resource_kind;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

uuid id(std::uint64_t n) {
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  b[0] = 0xbe;
  return uuid{b};
}

host_spec spec(const std::string& name) {
  host_spec h;
  h.name = name;
  h.inventories = {
      any_inventory::of(inventory<rk::cpu>{.total = millicores{128000}, .reserved = millicores{4000},
                                           .allocation_ratio = rational::whole(4)}),
      any_inventory::of(inventory<rk::memory>{.total = bytes{1024 * GiB}, .reserved = bytes{16 * GiB},
                                              .step_size = bytes{1ull << 20}}),
      any_inventory::of(inventory<rk::disk_iops>{.total = ops_per_second{1000000}}),
      any_inventory::of(inventory<rk::net_bandwidth>{.total = bytes_per_second{12500000000}}),
  };
  return h;
}

resource_amounts request() {
  resource_amounts a;
  a.set<rk::cpu>(millicores{4000})
      .set<rk::memory>(bytes{8 * GiB})
      .set<rk::disk_iops>(ops_per_second{3000})
      .set<rk::net_bandwidth>(bytes_per_second{125000000});
  return a;
}

// --- bulkhead -------------------------------------------------------------------

std::unique_ptr<bulkhead::ledger::ledger> g_ledger;
host_ref g_hosts[2];

void setup_bulkhead(const benchmark::State& state) {
  if (state.thread_index() != 0) return;
  g_ledger = std::make_unique<bulkhead::ledger::ledger>();
  g_hosts[0] = *g_ledger->add_host(spec("h0"));
  g_hosts[1] = *g_ledger->add_host(spec("h1"));
}

// range(0): 0 = every thread on one host, 1 = thread i on host i.
void BM_bulkhead_reserve_release(benchmark::State& state) {
  setup_bulkhead(state);
  reservation_request r;
  r.uuid = id(static_cast<std::uint64_t>(state.thread_index()) + 1);
  r.tenant = "tenant-a";
  r.amounts = request();
  for (auto _ : state) {
    const host_ref h = g_hosts[state.range(0) ? state.thread_index() % 2 : 0];
    auto res = g_ledger->reserve(h, r);
    if (!res) {
      state.SkipWithError(res.error().describe().c_str());
      break;
    }
    auto rel = g_ledger->release(h, r.uuid);
    benchmark::DoNotOptimize(rel);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_bulkhead_reserve_release)->Arg(0)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_bulkhead_reserve_release)->Arg(1)->Threads(2)->UseRealTime();

// --- the naive baseline -------------------------------------------------------------

class naive_ledger {
 public:
  void add(const std::string& host, const std::string& rc, std::uint64_t total, std::uint64_t reserved, double ratio) {
    std::lock_guard g(mu_);
    inv_[host + "/" + rc] = {total, reserved, ratio, 0};
  }
  bool reserve(const std::string& host, const std::string& consumer, const std::map<std::string, std::uint64_t>& want) {
    std::lock_guard g(mu_);
    if (alloc_.count(consumer)) return false;
    for (const auto& [rc, n] : want) {
      auto& i = inv_.at(host + "/" + rc);
      const auto cap = static_cast<std::uint64_t>(static_cast<double>(i.total - i.reserved) * i.ratio);
      if (i.used + n > cap) return false;
    }
    for (const auto& [rc, n] : want) inv_.at(host + "/" + rc).used += n;
    alloc_[consumer] = {host, want};
    return true;
  }
  bool release(const std::string& consumer) {
    std::lock_guard g(mu_);
    auto it = alloc_.find(consumer);
    if (it == alloc_.end()) return false;
    for (const auto& [rc, n] : it->second.amounts) inv_.at(it->second.host + "/" + rc).used -= n;
    alloc_.erase(it);
    return true;
  }

 private:
  struct inv {
    std::uint64_t total, reserved;
    double ratio;
    std::uint64_t used;
  };
  struct allocation {
    std::string host;
    std::map<std::string, std::uint64_t> amounts;
  };
  std::mutex mu_;
  std::map<std::string, inv> inv_;
  std::unordered_map<std::string, allocation> alloc_;
};

std::unique_ptr<naive_ledger> g_naive;

void BM_naive_reserve_release(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_naive = std::make_unique<naive_ledger>();
    for (const char* h : {"h0", "h1"}) {
      g_naive->add(h, "VCPU", 128000, 4000, 4.0);
      g_naive->add(h, "MEMORY_MB", 1024 * GiB, 16 * GiB, 1.0);
      g_naive->add(h, "DISK_IOPS", 1000000, 0, 1.0);
      g_naive->add(h, "NET_BW", 12500000000, 0, 1.0);
    }
  }
  const std::map<std::string, std::uint64_t> want = {
      {"VCPU", 4000}, {"MEMORY_MB", 8 * GiB}, {"DISK_IOPS", 3000}, {"NET_BW", 125000000}};
  const std::string consumer = id(static_cast<std::uint64_t>(state.thread_index()) + 1).to_string();
  for (auto _ : state) {
    const std::string host = state.range(0) ? (state.thread_index() % 2 ? "h1" : "h0") : "h0";
    if (!g_naive->reserve(host, consumer, want)) {
      state.SkipWithError("naive reserve refused");
      break;
    }
    benchmark::DoNotOptimize(g_naive->release(consumer));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_naive_reserve_release)->Arg(0)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_naive_reserve_release)->Arg(1)->Threads(2)->UseRealTime();

// With compare-and-swap: view() for the generations, then reserve with them.
void BM_bulkhead_view_reserve_release(benchmark::State& state) {
  setup_bulkhead(state);
  reservation_request r;
  r.uuid = id(100);
  r.tenant = "tenant-a";
  r.amounts = request();
  for (auto _ : state) {
    auto snap = g_ledger->view(g_hosts[0]);
    r.seen = snap->generations;
    auto res = g_ledger->reserve(g_hosts[0], r);
    if (!res) {
      state.SkipWithError(res.error().describe().c_str());
      break;
    }
    benchmark::DoNotOptimize(g_ledger->release(g_hosts[0], r.uuid));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_bulkhead_view_reserve_release);

// --- the per-host lock alone --------------------------------------------------------

// A ledger lives in a program with threads. glibc skips the atomic
// instructions of an uncontended std::mutex while the process has never had a
// second thread (__libc_single_threaded), which would flatter the mutex in the
// single-thread runs; one thread started and joined before any benchmark
// makes every run see the multi-threaded process a ledger runs in.
const bool g_multi_threaded = [] {
  std::thread([] {}).join();
  return true;
}();

// range(0): work inside the critical section, in dependent multiply-adds
// (0: lock and unlock only; 64: about the length of a reserve's books).
template <class Lock>
void BM_lock(benchmark::State& state) {
  static Lock lock;
  static std::uint64_t shared = 1;
  const auto work = state.range(0);
  for (auto _ : state) {
    lock.lock();
    std::uint64_t x = shared;
    for (std::int64_t i = 0; i < work; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    shared = x;
    lock.unlock();
  }
  benchmark::DoNotOptimize(shared);
  benchmark::DoNotOptimize(g_multi_threaded);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_TEMPLATE(BM_lock, std::mutex)->Arg(0)->Arg(64)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(BM_lock, bulkhead::ledger::detail::spin_lock)->Arg(0)->Arg(64)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
