// Batch capacity of a host with 200 instances (goal: under 20 us), against a
// baseline in the same run: the same formula computed the naive way, with
// Kubernetes-style resource lists (string-keyed maps of doubles per
// instance, summed map by map). Also one suppression step and a peak-window
// lookup.
//   ./bench_colocation --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bulkhead/colocation/be_capacity.hpp"
#include "bulkhead/colocation/clock.hpp"
#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/colocation/suppression.hpp"

using namespace bulkhead;
using namespace bulkhead::colocation;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

node_load host_with(std::size_t n, bool cells) {
  node_load l;
  l.cpu_capacity = millicores{128000};
  l.memory_capacity = bytes{1024 * GiB};
  l.system_cpu_used = millicores{3000};
  l.system_cpu_reserved = millicores{4000};
  l.system_memory_used = bytes{12 * GiB};
  l.system_memory_reserved = bytes{16 * GiB};
  static constexpr qos_class classes[] = {qos_class::LS, qos_class::LS, qos_class::LSR, qos_class::LSE, qos_class::BE};
  for (std::size_t i = 0; i < n; ++i) {
    std::array<std::uint8_t, 16> b{};
    b[14] = static_cast<std::uint8_t>(i >> 8);
    b[15] = static_cast<std::uint8_t>(i);
    instance_load in;
    in.uuid = uuid{b};
    in.qos = classes[i % 5];
    if (cells && i % 3 != 0) in.cell = static_cast<std::uint32_t>(i % 2);
    in.cpu_request = millicores{500 + 100 * (i % 7)};
    if (i % 11 != 0) in.cpu_used = millicores{100 + 37 * (i % 13)};
    in.memory_request = bytes{GiB + (i % 5) * GiB / 2};
    if (i % 11 != 0) in.memory_used = bytes{GiB / 2 + (i % 9) * GiB / 8};
    l.instances.push_back(in);
  }
  if (cells) l.cells = {{0, millicores{64000}, bytes{512 * GiB}}, {1, millicores{64000}, bytes{512 * GiB}}};
  return l;
}

void BM_be_capacity(benchmark::State& state) {
  const auto load = host_with(static_cast<std::size_t>(state.range(0)), state.range(1) != 0);
  const be_config cfg;
  for (auto _ : state) {
    auto r = compute_be_capacity(load, cfg);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_be_capacity)->Args({200, 0})->Args({200, 1})->Unit(benchmark::kMicrosecond);

// --- the naive baseline: resource lists as string-keyed maps of doubles -----------
struct naive_pod {
  std::string name;
  std::string qos;
  std::map<std::string, double> request;
  std::map<std::string, double> usage;  // empty: no sample
};

std::map<std::string, double> naive_batch(const std::map<std::string, double>& capacity,
                                          const std::map<std::string, double>& sys_used,
                                          const std::map<std::string, double>& sys_reserved,
                                          const std::vector<naive_pod>& pods,
                                          const std::map<std::string, double>& threshold) {
  std::map<std::string, double> hp_used;
  for (const auto& p : pods) {
    if (p.qos == "BE") continue;
    for (const auto& [k, v] : p.request) {
      auto u = p.usage.find(k);
      double counted = u == p.usage.end() ? v : u->second;
      if (p.qos == "LSE" && k == "cpu") counted = std::max(counted, v);
      hp_used[k] += counted;
    }
  }
  std::map<std::string, double> out;
  for (const auto& [k, cap] : capacity) {
    const double margin = cap * (100.0 - threshold.at(k)) / 100.0;
    const double sys = std::max(sys_used.at(k), sys_reserved.at(k));
    out[k] = std::max(0.0, cap - margin - sys - hp_used[k]);
  }
  return out;
}

void BM_naive_be_capacity(benchmark::State& state) {
  const auto load = host_with(static_cast<std::size_t>(state.range(0)), false);
  std::vector<naive_pod> pods;
  for (const auto& in : load.instances) {
    naive_pod p;
    p.name = in.uuid.to_string();
    p.qos = std::string(to_string(in.qos));
    p.request = {{"cpu", static_cast<double>(in.cpu_request.count())}, {"memory", static_cast<double>(in.memory_request.count())}};
    if (in.cpu_used) p.usage["cpu"] = static_cast<double>(in.cpu_used->count());
    if (in.memory_used) p.usage["memory"] = static_cast<double>(in.memory_used->count());
    pods.push_back(std::move(p));
  }
  const std::map<std::string, double> cap = {{"cpu", 128000.0}, {"memory", 1024.0 * GiB}};
  const std::map<std::string, double> su = {{"cpu", 3000.0}, {"memory", 12.0 * GiB}};
  const std::map<std::string, double> sr = {{"cpu", 4000.0}, {"memory", 16.0 * GiB}};
  const std::map<std::string, double> th = {{"cpu", 60.0}, {"memory", 65.0}};
  for (auto _ : state) {
    auto r = naive_batch(cap, su, sr, pods, th);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_naive_be_capacity)->Args({200, 0})->Unit(benchmark::kMicrosecond);

void BM_suppression_step(benchmark::State& state) {
  manual_clock clock;
  auto ctl = *suppression_controller::make(suppression_config{}, clock);
  suppression_input in;
  in.capacity = millicores{128000};
  in.system_used = millicores{3000};
  in.system_reserved = millicores{4000};
  std::uint64_t i = 0;
  for (auto _ : state) {
    in.non_be_used = millicores{20000 + (i++ % 64) * 500};
    auto d = ctl.step(in);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_suppression_step);

void BM_peak_calendar_active_at(benchmark::State& state) {
  auto tz = colocation::time_zone::open("Asia/Shanghai");
  if (!tz) {
    state.SkipWithError(tz.error().describe().c_str());
    return;
  }
  peak_calendar cal;
  (void)cal.add_daily("festival", std::make_shared<const time_zone>(std::move(*tz)), "00:00", "01:00", ledger::rational::whole(0));
  wall_time t = *parse_rfc3339("2026-11-10T12:00:00+08:00");
  for (auto _ : state) {
    t += std::chrono::seconds{1};
    auto a = cal.active_at(t);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_peak_calendar_active_at);

}  // namespace

BENCHMARK_MAIN();
