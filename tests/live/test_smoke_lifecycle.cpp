// Smoke test of the live machinery across a guest's lifecycle: /init reboots
// the guest from inside exactly once per disk (`reboot -f`, same QEMU process,
// CPU time keeps counting), destroy and start make a new QEMU process that does
// not reboot again, and pause and resume work. Also reports what an idle guest
// costs the host.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "live_guest.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

TEST_CASE("reboot from inside once, destroy and start, pause and resume") {
  const auto& env = live::require_live();
  live::connection conn(env);
  live::guest g(env, conn, {.tag = "cycle", .mode = live::guest_mode::idle, .reboot_after = 1s});

  const auto boot1 = g.wait_ready(1);
  const unsigned id1 = g.id();
  const auto c1 = live::read_cpu(g.domain());
  MESSAGE("boot 1 to /init (" << live::to_string(env.accel) << "): " << boot1.count() << " ms");

  // Boot 2: the guest rebooted itself; the same QEMU process, counters go on.
  g.wait_ready(2);
  CHECK(g.console_contains("BULKHEAD-REBOOTING boot=1"));
  CHECK(g.id() == id1);
  const auto c2 = live::read_cpu(g.domain());
  CHECK(c2.cpu_time > c1.cpu_time);

  // What an idle guest costs the host.
  const pid_t pid = g.qemu_pid();
  std::this_thread::sleep_for(3s);
  const auto c3 = live::read_cpu(g.domain());
  const auto idle = live::share_of_core(c3.cpu_time - c2.cpu_time, c3.at - c2.at);
  MESSAGE("idle guest: " << idle.count() << " millicores, QEMU RSS " << live::process_rss(pid).count() / (1024 * 1024)
                         << " MiB");
  CHECK(idle.count() < 500);

  // Destroy and start: a new QEMU process (a new incarnation); boot 3 of the disk.
  g.destroy();
  CHECK(g.state() == VIR_DOMAIN_SHUTOFF);
  g.start();
  const auto boot3 = g.wait_ready(3);
  CHECK(g.id() != id1);
  MESSAGE("boot 3 after start (" << live::to_string(env.accel) << "): " << boot3.count() << " ms");
  // reboot_after applies to the disk's first boot only: three times its delay
  // later there is still no reboot.
  std::this_thread::sleep_for(3s);
  CHECK_FALSE(g.console_contains("BULKHEAD-REBOOTING boot=3"));
  CHECK_FALSE(g.console_contains("BULKHEAD-READY boot=4 "));

  // Pause: the vCPU stops; resume: it runs again.
  g.suspend();
  CHECK(g.state() == VIR_DOMAIN_PAUSED);
  const auto p1 = live::read_cpu(g.domain());
  std::this_thread::sleep_for(1s);
  const auto p2 = live::read_cpu(g.domain());
  REQUIRE(p1.vcpu_time);
  REQUIRE(p2.vcpu_time);
  MESSAGE("vCPU time while paused: +" << (*p2.vcpu_time - *p1.vcpu_time).count() << " ns in 1 s");
  CHECK(*p2.vcpu_time - *p1.vcpu_time < nanoseconds{50ms});
  g.resume();
  CHECK(g.state() == VIR_DOMAIN_RUNNING);
}
