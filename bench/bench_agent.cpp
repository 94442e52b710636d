// The agent's own cost per round (issue 14), beside its baseline in the same
// run:
//   agent_round/N:  agent::tick() over one synthetic source of N instances
//                   (each read like a libvirt domain: CPU, 2 vCPUs, a disk, a
//                   NIC and an allocation: 36 series) with the journal on
//                   disk: read, ingest, flush (one fdatasync), totals,
//                   snapshot;
//   hand_loop/N:    the loop a hosting agent writes by hand (read_all,
//                   accountant::ingest, journal::flush) on the same source:
//                   the baseline; the ratio is what the composition adds
//                   (totals by instance and tenant, the snapshot);
//   render/N:       one scrape's rendering of the snapshot (classic text).
// CPU is the whole process's (CLOCK_PROCESS_CPUTIME_ID: the journal's commit
// thread included), reported per round and per instance; at 1 Hz, CPU per
// round in ms / 10 is the percentage of one core.
//
// The synthetic source is a backend of this file: the per-instance cost of
// reading real libvirt is measured by bench_live_agent on real guests.
// The journal lives under $BULKHEAD_BENCH_DIR, else $TMPDIR, else /tmp.
#include <benchmark/benchmark.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/agent/agent.hpp"
#include "bulkhead/agent/metrics.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;

namespace {

std::int64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

fs::path bench_dir(const std::string& name) {
  const char* base = std::getenv("BULKHEAD_BENCH_DIR");
  if (!base || !*base) base = std::getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  auto p = fs::path(base) / ("bulkhead-bench-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  return p;
}

// N instances that read like running libvirt domains; every counter grows
// at every read.
class synthetic_host final : public backend {
 public:
  explicit synthetic_host(std::size_t n) : n_(n) {}
  [[nodiscard]] std::string_view kind() const noexcept override { return "synthetic"; }
  [[nodiscard]] const std::string& source() const noexcept override { return source_; }
  result<host_capacity> capacity() override {
    host_capacity c;
    c.cpus = 64;
    c.memory = bytes{256ull << 30};
    return c;
  }
  result<std::vector<instance_info>> discover() override { return fail(errc::unsupported, "read_all only"); }
  result<instance_reading> read(const instance_info&) override { return fail(errc::unsupported, "read_all only"); }
  result<apply_report> apply(const instance_info&, const quota_spec&) override {
    return fail(errc::unsupported, "read only");
  }
  result<host_reading> read_all() override {
    ++reads_;
    host_reading h;
    h.source = source_;
    h.instances.reserve(n_);
    const auto now = mono_clock::now();
    const auto wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
    for (std::size_t i = 0; i < n_; ++i) {
      instance_reading r;
      std::array<std::uint8_t, 16> b{};
      b[0] = 0x5e;
      b[14] = static_cast<std::uint8_t>(i >> 8);
      b[15] = static_cast<std::uint8_t>(i);
      r.info.id = {uuid{b}, incarnation{i + 1}};
      r.info.name = "guest-" + std::to_string(i);
      r.info.tenant = "tenant-" + std::to_string(i % 10);
      r.info.state = instance_state::running;
      r.enforced.cpu.vcpus = 2;
      r.enforced.memory.max = bytes{4ull << 30};
      auto& u = r.usage;
      u.read_at = now;
      u.wall = wall;
      const auto k = reads_ * 1000 + i;
      u.cpu_time = nanoseconds{static_cast<std::int64_t>(k * 7919)};
      u.cpu_user = nanoseconds{static_cast<std::int64_t>(k * 5003)};
      u.cpu_system = nanoseconds{static_cast<std::int64_t>(k * 2903)};
      u.vcpu_time = {nanoseconds{static_cast<std::int64_t>(k * 3001)}, nanoseconds{static_cast<std::int64_t>(k * 3011)}};
      u.vcpu_wait = {nanoseconds{static_cast<std::int64_t>(k * 11)}, nanoseconds{static_cast<std::int64_t>(k * 13)}};
      u.vcpu_delay = {nanoseconds{static_cast<std::int64_t>(k * 17)}, nanoseconds{static_cast<std::int64_t>(k * 19)}};
      u.memory_current = bytes{2ull << 30};
      disk_counters d;
      d.target = "vda";
      d.read_requests = operations{k * 3};
      d.write_requests = operations{k * 5};
      d.read_bytes = bytes{k * 4096};
      d.write_bytes = bytes{k * 8192};
      d.errors = operations{0};
      d.flush_requests = operations{k};
      d.read_time = nanoseconds{static_cast<std::int64_t>(k * 100)};
      d.write_time = nanoseconds{static_cast<std::int64_t>(k * 200)};
      d.flush_time = nanoseconds{static_cast<std::int64_t>(k * 300)};
      u.disks.push_back(d);
      interface_counters n;
      n.mac = "52:54:00:00:" + std::to_string(10 + i / 100) + ":" + std::to_string(10 + i % 100);
      n.target = "vnet" + std::to_string(i);
      n.rx_bytes = bytes{k * 1500};
      n.tx_bytes = bytes{k * 1400};
      n.rx_packets = packets{k};
      n.tx_packets = packets{k};
      n.rx_errors = packets{0};
      n.tx_errors = packets{0};
      n.rx_drops = packets{0};
      n.tx_drops = packets{0};
      u.interfaces.push_back(n);
      h.instances.push_back(std::move(r));
    }
    return h;
  }

 private:
  std::size_t n_;
  std::uint64_t reads_ = 0;
  std::string source_ = "synthetic:///host";
};

agent::source_spec synthetic(std::size_t n) {
  return agent::source_spec{"synthetic", "synthetic", [n]() -> result<std::unique_ptr<backend>> {
                              return std::unique_ptr<backend>(std::make_unique<synthetic_host>(n));
                            },
                            "synthetic"};
}

void report_cpu(benchmark::State& state, std::int64_t cpu_ns, std::size_t n) {
  const double rounds = static_cast<double>(state.iterations());
  state.counters["cpu_us_per_round"] = static_cast<double>(cpu_ns) / 1e3 / rounds;
  state.counters["cpu_us_per_instance"] = static_cast<double>(cpu_ns) / 1e3 / rounds / static_cast<double>(n);
  state.counters["core_pct_at_1Hz"] = static_cast<double>(cpu_ns) / 1e9 / rounds * 100.0;
}

void BM_agent_round(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = bench_dir("agent-round");
  agent::options o;
  o.journal_dir = dir.string();
  o.sources.push_back(synthetic(n));
  o.checkpoint = {0, seconds{0}};  // checkpoints are measured by bench_accounting
  auto a = agent::agent::open(std::move(o));
  if (!a) {
    state.SkipWithError(a.error().describe().c_str());
    return;
  }
  (void)(*a)->tick();  // baselines
  const auto c0 = process_cpu_ns();
  for (auto _ : state) {
    auto r = (*a)->tick();
    if (!r || !r->durable) state.SkipWithError("round not durable");
  }
  report_cpu(state, process_cpu_ns() - c0, n);
  a->reset();
  fs::remove_all(dir);
}

void BM_hand_loop(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = bench_dir("hand-loop");
  auto j = accounting::journal::open(dir.string());
  if (!j) {
    state.SkipWithError(j.error().describe().c_str());
    return;
  }
  std::shared_ptr<accounting::journal> jp = std::move(*j);
  auto acc = accounting::accountant::make(jp);
  synthetic_host host(n);
  (void)acc->ingest(*host.read_all());
  (void)jp->flush();
  const auto c0 = process_cpu_ns();
  for (auto _ : state) {
    auto r = host.read_all();
    auto rep = acc->ingest(*r);
    if (!rep || !jp->flush()) state.SkipWithError("round failed");
    benchmark::DoNotOptimize(r);
  }
  report_cpu(state, process_cpu_ns() - c0, n);
  acc = std::unexpected(error(errc::invalid_argument, "done"));
  jp.reset();
  fs::remove_all(dir);
}

void BM_render(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = bench_dir("render");
  agent::options o;
  o.journal_dir = dir.string();
  o.sources.push_back(synthetic(n));
  auto a = agent::agent::open(std::move(o));
  (void)(*a)->tick();
  (void)(*a)->tick();
  const auto s = (*a)->current();
  std::size_t bytes_out = 0;
  for (auto _ : state) {
    auto text = agent::render_metrics(*s, metrics::format::prometheus);
    bytes_out = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes_out);
  state.counters["us_per_instance"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                                     benchmark::Counter::kInvert);
  a->reset();
  fs::remove_all(dir);
}

}  // namespace

BENCHMARK(BM_agent_round)->Arg(3)->Arg(200)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_hand_loop)->Arg(3)->Arg(200)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_render)->Arg(3)->Arg(200)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
