// apply() of an unchanged spec, per instance, for the cgroup and resctrl
// backends (the common case of a reconcile loop: reads only, no writes).
// Baseline in the same run: apply() of a spec that differs in every knob each
// time (alternating two specs), which reads, writes and reads back each knob.
//
//   cgroup, real: a group on this machine's cgroup hierarchy (root needed;
//     skipped otherwise), cpu + cpuacct + memory controllers;
//   cgroup, v2 fixture: tests/fixtures/cgroup-v2 copied to a temporary
//     directory on tmpfs (/dev/shm) when there is one (regular files: the
//     cost of the backend's own work);
//   resctrl, fixture: tests/fixtures/resctrl copied likewise (no resctrl on
//     this machine).
//
// Run: ./build-rel/bench/bench_apply_unchanged --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/resctrl/backend.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "cgroup_fixture_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

instance_info task(std::string name) {
  instance_info i;
  i.name = std::move(name);
  i.id.uuid = task_uuid(i.name);
  return i;
}

quota_spec cgroup_spec(bool b, bool with_high) {
  quota_spec s;
  s.cpu.period = 100000us;
  s.cpu.quota = limit<microseconds>{b ? 30000us : 50000us};
  s.cpu.weight = b ? 100 : 200;
  s.memory.hard_limit = limit<bytes>{bytes{b ? (128ull << 20) : (1ull << 30)}};
  if (with_high) s.memory.high = limit<bytes>{bytes{b ? (96ull << 20) : (805306368ull)}};
  return s;
}

quota_spec resctrl_spec(bool b) {
  quota_spec s;
  s.llc = llc_spec{cache_ways{0}, false, {{0, b ? 0x078u : 0x0f0u}, {2, b ? 0x078u : 0x0f0u}}, {}};
  s.memory_bandwidth = memory_bandwidth_spec{false, {{0, b ? 90u : 100u}, {2, b ? 40u : 50u}}};
  return s;
}

struct real_group {
  std::unique_ptr<cgroup::backend> b;
  instance_info i;
  std::string why;  // set when unavailable
  ~real_group() {
    if (b && !i.name.empty()) (void)b->remove(i);
  }
};

struct state {
  std::unique_ptr<test::temp_dir> tmp;
  std::unique_ptr<cgroup::backend> v2;
  std::unique_ptr<resctrl::backend> rc;
  real_group real;
};
state* g_state = nullptr;

void setup(state& s) {
  // Fixture copies in memory (tmpfs), as cgroupfs and resctrl are, unless
  // TMPDIR says otherwise.
  std::error_code ec;
  if (!std::getenv("TMPDIR") && std::filesystem::is_directory("/dev/shm", ec)) ::setenv("TMPDIR", "/dev/shm", 1);
  s.tmp = std::make_unique<test::temp_dir>("bulkhead-bench");
  // cgroup v2 fixture.
  const auto v2root = test::copy_fixture(s.tmp->path(), "cgroup-v2");
  cgroup::options o;
  o.fs_root = v2root.string();
  o.mounts = cgroup::mounts::parse(test::slurp(v2root / "mountinfo")).value();
  o.parent = "bulkhead";
  s.v2 = std::move(cgroup::backend::open(o).value());
  // resctrl fixture.
  const auto rtop = test::copy_fixture(s.tmp->path(), "resctrl");
  s.rc = std::move(resctrl::backend::open(resctrl::options{(rtop / "sys/fs/resctrl").string(), false}).value());
  // The real hierarchy.
  if (::geteuid() != 0) {
    s.real.why = "not root";
    return;
  }
  auto text = read_text_file("/proc/self/mountinfo");
  auto m = text ? cgroup::mounts::parse(*text) : result<cgroup::mounts>(fail(text.error()));
  if (!m) {
    s.real.why = m.error().describe();
    return;
  }
  cgroup::options r;
  r.mounts = *m;
  r.controllers = {cgroup::controller::cpu, cgroup::controller::cpuacct, cgroup::controller::memory};
  auto b = cgroup::backend::open(r);
  if (!b) {
    s.real.why = b.error().describe();
    return;
  }
  s.real.b = std::move(*b);
  auto i = s.real.b->create("bulkhead-bench-" + std::to_string(::getpid()));
  if (!i) {
    s.real.why = i.error().describe();
    return;
  }
  s.real.i = *i;
  if (auto a = s.real.b->apply(s.real.i, cgroup_spec(false, false)); !a || !a->failed.empty())
    s.real.why = "apply failed";
}

template <class Backend>
void run_apply(benchmark::State& st, Backend& b, const instance_info& i, const quota_spec& a, const quota_spec& alt,
               bool alternate) {
  // Make sure the instance holds `a` first.
  if (auto r = b.apply(i, a); !r || !r->failed.empty()) {
    st.SkipWithError("setup apply failed");
    return;
  }
  if (!alternate) {
    auto r = b.apply(i, a);
    if (!r || !r->changed.empty()) {
      st.SkipWithError("the unchanged spec changed something");
      return;
    }
  }
  bool flip = false;
  std::size_t changes = 0;
  for (auto _ : st) {
    flip = alternate && !flip;
    auto r = b.apply(i, flip ? alt : a);
    if (!r || !r->failed.empty()) {
      st.SkipWithError(r ? r->failed[0].why.describe().c_str() : r.error().describe().c_str());
      return;
    }
    changes += r->changed.size();
    benchmark::DoNotOptimize(r);
  }
  st.counters["knobs_changed_per_apply"] =
      benchmark::Counter(static_cast<double>(changes) / static_cast<double>(st.iterations()));
}

void BM_cgroup_real_apply_unchanged(benchmark::State& st) {
  auto& r = g_state->real;
  if (!r.why.empty()) return st.SkipWithError(r.why.c_str());
  run_apply(st, *r.b, r.i, cgroup_spec(false, false), {}, false);
}
void BM_cgroup_real_apply_rewrite(benchmark::State& st) {
  auto& r = g_state->real;
  if (!r.why.empty()) return st.SkipWithError(r.why.c_str());
  run_apply(st, *r.b, r.i, cgroup_spec(false, false), cgroup_spec(true, false), true);
}
void BM_cgroup_v2_fixture_apply_unchanged(benchmark::State& st) {
  run_apply(st, *g_state->v2, task("web"), cgroup_spec(false, true), {}, false);
}
void BM_cgroup_v2_fixture_apply_rewrite(benchmark::State& st) {
  run_apply(st, *g_state->v2, task("web"), cgroup_spec(false, true), cgroup_spec(true, true), true);
}
void BM_resctrl_fixture_apply_unchanged(benchmark::State& st) {
  run_apply(st, *g_state->rc, task("web"), resctrl_spec(false), {}, false);
}
void BM_resctrl_fixture_apply_unchanged_ways(benchmark::State& st) {
  quota_spec s = resctrl_spec(false);
  s.llc = llc_spec{cache_ways{4}, false, {}, {}};
  run_apply(st, *g_state->rc, task("web"), s, {}, false);
}
void BM_resctrl_fixture_apply_rewrite(benchmark::State& st) {
  run_apply(st, *g_state->rc, task("web"), resctrl_spec(false), resctrl_spec(true), true);
}

BENCHMARK(BM_cgroup_real_apply_unchanged)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cgroup_real_apply_rewrite)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cgroup_v2_fixture_apply_unchanged)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cgroup_v2_fixture_apply_rewrite)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_resctrl_fixture_apply_unchanged)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_resctrl_fixture_apply_unchanged_ways)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_resctrl_fixture_apply_rewrite)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  state s;
  setup(s);
  g_state = &s;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_state = nullptr;
  return 0;  // `s` removes the real group and the temporary copies
}
