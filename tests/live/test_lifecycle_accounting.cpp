// Live test 2 (issue 7): bulkhead's accounting of a real guest across the
// events that break other meters.
//
// A hosting agent's loop (libvirt::backend::read_all -> accountant::ingest ->
// journal, every 500 ms) watches a guest that boots, reboots itself from
// inside (`reboot -f`: the same QEMU process, its counters go on), is
// destroyed and started again (a new QEMU process: a new incarnation whose
// counters start from zero), and is paused and resumed. Then the journal is
// read back (journal::open_read_only) and, per incarnation, bulkhead's
// accounted CPU time must equal the growth of libvirt's own counter read
// independently by the test with the C API, within what the domain can use in
// the brackets between the two reads (lifecycle_check.hpp). No delta may be negative: the raw counter
// never goes back within an incarnation, and the journal holds no reset and no
// wrap. The agent's meter rejects nothing and the journal sees no duplicate.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "lifecycle_check.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {
constexpr auto interval = 500ms;
}  // namespace

TEST_CASE("journaled accounting of a guest across reboot, destroy and start, pause and resume") {
  const auto& env = live::require_live();
  live::connection conn(env);
  test::temp_dir jdir("bulkhead-live-journal");
  live::agent agent(env, jdir.str(), {.batch_records = 8192, .max_delay = milliseconds{2}});

  live::guest g(env, conn, {.tag = "acct", .mode = live::guest_mode::idle, .reboot_after = 2s});
  const std::string id = g.uuid();
  live::lifecycle_log log(g, interval);
  const auto sample_until = [&](const std::function<bool()>& done, std::chrono::seconds timeout) {
    return live::sample_until(agent, log, g, id, interval, done, timeout);
  };
  using live::for_time;

  // Incarnation 1: boot 1, then the guest reboots itself (boot 2).
  log.begin();
  const unsigned id1 = g.id();
  sample_until([&] { return g.console_contains("BULKHEAD-READY boot=1 "); }, 120s);
  sample_until([&] { return g.console_contains("BULKHEAD-READY boot=2 "); }, 120s);
  CHECK(g.console_contains("BULKHEAD-REBOOTING boot=1"));
  CHECK(g.id() == id1);  // a reboot from inside keeps the QEMU process and the domain id
  sample_until(for_time(2s), 30s);
  log.end();

  // Destroyed, then one sample of the shut-off domain (bulkhead closes the
  // incarnation), then started again: incarnation 2, boot 3 of the disk.
  g.destroy();
  sample_until([] { return true; }, 30s);
  g.start();
  log.begin();
  CHECK(g.id() != id1);
  sample_until([&] { return g.console_contains("BULKHEAD-READY boot=3 "); }, 120s);

  // Paused and resumed within incarnation 2.
  sample_until(for_time(1s), 30s);
  g.suspend();
  sample_until(for_time(2s), 30s);
  g.resume();
  sample_until(for_time(2s), 30s);
  log.end();

  agent.flush();
  CHECK(agent.rejected() == 0);
  CHECK(agent.duplicates() == 0);
  CHECK(agent.failed() == 0);
  MESSAGE("agent: " << agent.good() << " samples, every " << interval.count() << " ms");

  // What is durable, read back the way bulkhead-inspect --journal reads it.
  auto view = accounting::journal::open_read_only(jdir.str());
  REQUIRE_MESSAGE(view.has_value(), (view ? std::string() : view.error().describe()));
  CHECK_FALSE(view->report.corruption.has_value());
  REQUIRE(log.records().size() == 2);
  log.check_against(view->totals, id);
  const auto inst = view->totals.instance(*uuid::parse(id));
  REQUIRE(inst.has_value());
  CHECK(inst->incarnations == 2);
  CHECK(inst->totals.gaps == 0);
  CHECK(inst->totals.resets == 0);
  CHECK(inst->totals.vcpu_reserved_ns > 0);  // allocation accounted beside usage
}
