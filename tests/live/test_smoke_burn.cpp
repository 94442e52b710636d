// Smoke test of the live machinery: a guest whose /init burns its vCPU uses
// more than 80% of a host core, as libvirt (virDomainGetCPUStats) and the
// kernel (the domain's cpuacct cgroup) both say.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "live_guest.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

TEST_CASE("a guest burning its vCPU uses more than 80% of a core") {
  const auto& env = live::require_live();
  live::connection conn(env);
  live::guest g(env, conn, {.tag = "burn", .mode = live::guest_mode::burn});
  const auto boot = g.wait_ready();
  MESSAGE("boot to /init (" << live::to_string(env.accel) << "): " << boot.count() << " ms");

  const pid_t pid = g.qemu_pid();
  const auto a = live::read_cpu(g.domain());
  const auto cg_a = live::cgroup_cpu_usage(pid);
  std::this_thread::sleep_for(3s);
  const auto b = live::read_cpu(g.domain());
  const auto cg_b = live::cgroup_cpu_usage(pid);

  const nanoseconds wall = b.at - a.at;
  const nanoseconds used = b.cpu_time - a.cpu_time;
  const auto share = live::share_of_core(used, wall);
  MESSAGE("domain cpu_time over " << wall.count() / 1000000 << " ms: " << share.count()
                                  << " millicores; QEMU RSS " << live::process_rss(pid).count() / (1024 * 1024)
                                  << " MiB");
  CHECK(share > millicores{800});

  if (a.vcpu_time && b.vcpu_time) {
    const auto vshare = live::share_of_core(*b.vcpu_time - *a.vcpu_time, wall);
    MESSAGE("vcpu_time: " << vshare.count() << " millicores");
    CHECK(vshare > millicores{800});
  } else {
    MESSAGE("libvirt reports no vcpu_time here");
  }

  // The kernel's own count for the same group agrees with libvirt's (the two
  // reads are a libvirt round trip apart, so allow 100 ms of a 3 s window).
  REQUIRE(cg_a);
  REQUIRE(cg_b);
  const nanoseconds cg_used = *cg_b - *cg_a;
  MESSAGE("cgroup cpuacct: " << live::share_of_core(cg_used, wall).count() << " millicores");
  CHECK(live::share_of_core(cg_used, wall) > millicores{800});
  const auto diff = cg_used > used ? cg_used - used : used - cg_used;
  CHECK(diff < nanoseconds{100ms});
}
