// Live test 1 (issue 7): CPU enforcement through bulkhead on a real guest.
//
// A guest burns its one vCPU. bulkhead (libvirt::backend::apply on a
// read-write qemu:///system connection) sets a CFS cap of 25% of a core
// (cpu.period 100000 us, cpu.quota 25000 us per vCPU: libvirt <cputune>
// <period>/<quota>, Documentation/scheduler/sched-bwc.rst); bulkhead's own
// meter of the vCPU's time (counter vcpu/0/time_ns, read with
// libvirt::backend::read) over at least 5 s must read 25% +/- 3 points. The cap
// is raised live to 50% (50 +/- 3), then removed (quota unlimited): above 80%.
//
// The host may be busy (2 cores shared with builds while developing; in CI
// the live tests run alone). A burning vCPU is always running or queued, and
// libvirt's vcpu.<n>.delay (the thread's schedstat run_delay) counts all the
// queued time: waiting for a host CPU AND waiting while its group is throttled
// by the cap (a throttled thread stays queued; seen here: under a 50% cap on
// a quiet host, 498 millicores run and 496 "delay"). The throttled part is the
// vcpu<n> cgroup's cpu.stat throttled_time (Documentation/scheduler/
// sched-bwc.rst), so in a window W the vCPU waited for a host CPU
// D = delay - throttled and could have run at most W - D whatever the cap.
// A window is judged only when W - D leaves the vCPU room to pass its target
// (the cap + 3 points, or 80% without a cap): otherwise a reading "within the
// cap" could be the host's doing and a low uncapped reading surely is. Such a
// window is measured again (up to 3 windows, as load comes and goes); if the
// host never leaves room, the test FAILS saying the host was too loaded to
// judge, with the figures. A judged window decides. Tolerances are never
// widened.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "live_bulkhead.hpp"
#include "vcpu_priority.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {

struct phase {
  const char* name;
  limit<microseconds> quota;
  std::int64_t target;     // millicores
  bool at_least = false;   // true: share > target; false: |share - target| <= tolerance
};

constexpr std::int64_t tolerance = 30;  // 3 points of one core, in millicores
constexpr auto window = 6s;             // at least 5 s, as the issue asks
constexpr auto step = 1s;               // bulkhead samples once a second
constexpr int max_windows = 3;

// libvirt's own view of the live vCPU period and quota.
std::pair<std::uint64_t, std::int64_t> libvirt_vcpu_bandwidth(virDomainPtr dom) {
  int n = 0;
  char* type = virDomainGetSchedulerType(dom, &n);
  std::free(type);
  std::vector<virTypedParameter> p(static_cast<std::size_t>(std::max(n, 1)));
  if (virDomainGetSchedulerParametersFlags(dom, p.data(), &n, VIR_DOMAIN_AFFECT_LIVE) != 0)
    throw live::error("virDomainGetSchedulerParametersFlags failed");
  unsigned long long period = 0;
  long long quota = 0;
  virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_SCHEDULER_VCPU_PERIOD, &period);
  virTypedParamsGetLLong(p.data(), n, VIR_DOMAIN_SCHEDULER_VCPU_QUOTA, &quota);
  return {period, quota};
}

}  // namespace

TEST_CASE("bulkhead caps a burning guest's vCPU at 25% and 50% of a core, then lifts the cap") {
  const auto& env = live::require_live();
  live::connection conn(env);
  live::guest g(env, conn, {.tag = "cpucap", .mode = live::guest_mode::burn});
  const auto boot = g.wait_ready();
  MESSAGE("boot to /init (" << live::to_string(env.accel) << "): " << boot.count() << " ms");

  auto be = live::bulkhead_backend(env);  // read-write: apply() needs it
  const auto inst = live::find_instance(*be, g);
  live::counter_meter vcpu(*be, inst, "vcpu/0/time_ns");
  const pid_t pid = g.qemu_pid();
  const live::vcpu_priority priority(pid);
  MESSAGE("cpu.shares raised to " << cpu_shares_max << " for the test on: "
                                  << (priority.raised().empty() ? std::string("nothing (no v1 cpu group found)") : priority.raised()));
  REQUIRE_MESSAGE(live::vcpu_throttled(pid, 0).has_value(), "no vcpu0 cgroup with cpu.stat for the guest");
  REQUIRE(live::read_vcpu_stats(g.domain()).delay.has_value());  // libvirt reports vcpu.0.delay

  const phase phases[] = {
      {"cap 25%", microseconds{25000}, 250},
      {"cap 50%", microseconds{50000}, 500},
      {"no cap", unlimited, 800, true},
  };
  for (const auto& ph : phases) {
    const std::string phase_name = ph.name;
    CAPTURE(phase_name);
    quota_spec spec;
    spec.cpu.period = microseconds{100000};
    spec.cpu.quota = ph.quota;
    auto rep = be->apply(inst, spec);
    REQUIRE_MESSAGE(rep.has_value(), (rep ? std::string() : rep.error().describe()));
    for (const auto& f : rep->failed) FAIL_CHECK(f.knob << ": " << f.why.describe());
    CHECK(rep->unsupported.empty());
    // Read back by bulkhead and, independently, by libvirt's scheduler API.
    const auto back = live::read_instance(*be, inst);
    CHECK(back.enforced.cpu.period == spec.cpu.period);
    CHECK(back.enforced.cpu.quota == spec.cpu.quota);
    const auto [period, quota] = libvirt_vcpu_bandwidth(g.domain());
    CHECK(period == 100000u);
    if (ph.quota.is_bounded()) CHECK(quota == ph.quota.value().count());
    else CHECK(quota < 0);  // libvirt: no limit (a negative quota)
    std::this_thread::sleep_for(1s);  // a period or two under the new quota before measuring

    bool ok = false;
    std::string why;
    for (int w = 1; w <= max_windows && !ok; ++w) {
      const auto a = live::read_vcpu_stats(g.domain());
      const auto ta = live::vcpu_throttled(pid, 0);
      const auto m = vcpu.measure(window, step);
      const auto b = live::read_vcpu_stats(g.domain());
      const auto tb = live::vcpu_throttled(pid, 0);
      REQUIRE(ta.has_value());
      REQUIRE(tb.has_value());
      const nanoseconds wall = b.at - a.at;
      const auto s = static_cast<std::int64_t>(
          live::share_of_core(nanoseconds{static_cast<std::int64_t>(m.amount)}, m.covered).count());
      const auto permille = [&](nanoseconds d) {
        return static_cast<std::int64_t>(live::share_of_core(std::max(d, nanoseconds{0}), wall).count());
      };
      const std::int64_t delay = permille(*b.delay - *a.delay);  // queued: for a host CPU or throttled
      const std::int64_t throttled = permille(*tb - *ta);
      const std::int64_t waited = std::max<std::int64_t>(delay - throttled, 0);  // for a host CPU
      const std::int64_t could = 1000 - waited;  // runnable time minus the wait for a host CPU
      MESSAGE(phase_name << ", window " << w << ": bulkhead's meter read " << s << " millicores of vCPU time over "
                         << m.covered.count() / 1000000 << " ms (" << m.deltas << " deltas); vcpu.0.delay " << delay
                         << ", of which throttled by the cap " << throttled << " and waiting for a host CPU " << waited
                         << " millicores, so it could have run at most " << could);
      // Judge a window only when the host left the vCPU room to exceed the
      // target: otherwise a reading "within the cap" may be the host's doing.
      const std::int64_t room = ph.at_least ? ph.target : ph.target + tolerance;
      const bool starved = could < room;
      if (!starved) {
        ok = ph.at_least ? s > ph.target : (s >= ph.target - tolerance && s <= ph.target + tolerance);
        if (!ok) {
          std::ostringstream o;
          o << ph.name << ": bulkhead's meter read " << s << " millicores, wanted " << (ph.at_least ? "above " : "")
            << ph.target << (ph.at_least ? "" : " +/- 30") << "; the vCPU waited for a host CPU only " << waited
            << " millicores of the window (it could have run " << could << "), so the host was not what held it";
          why = o.str();
        }
        break;  // judged
      }
      std::ostringstream o;
      o << "HOST TOO LOADED to judge " << ph.name << " in " << w << " windows: in the last the vCPU waited for a host CPU "
        << waited << " millicores of the time, so it could have run at most " << could << " millicores, not the "
        << room << " needed to tell " << (ph.at_least ? "an uncapped vCPU" : "the cap") << " from the host's load; bulkhead read "
        << s << " (wanted " << (ph.at_least ? "above " : "") << ph.target << (ph.at_least ? "" : " +/- 30")
        << "). Other work held the host's cores: run the live suite alone.";
      why = o.str();
    }
    CHECK_MESSAGE(ok, why);
  }
}
