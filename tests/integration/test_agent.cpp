// The agent composition (bulkhead/agent/agent.hpp) with real parts: a
// writable copy of a cgroup fixture whose counters the test sets, libvirt's
// test driver in process and behind a private libvirtd the test kills and
// restarts, the journal on real directories and on a small tmpfs that fills
// up or turns read-only.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent_support.hpp"
#include "net.hpp"
#include "bulkhead/agent/agent.hpp"
#include "bulkhead/agent/libvirt.hpp"
#include "bulkhead/agent/metrics.hpp"
#include "bulkhead/agent/sources.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

// The web group's uuid, as the cgroup backend derives it from its name.
std::optional<uuid> uuid_of(const agent::snapshot& s, const std::string& name) {
  for (const auto& src : s.sources)
    for (const auto& i : src.instances)
      if (i.info.name == name) return i.info.id.uuid;
  return std::nullopt;
}

const accounting::instance_totals* totals_of(const std::vector<accounting::instance_totals>& v, const uuid& id) {
  for (const auto& t : v)
    if (t.uuid == id) return &t;
  return nullptr;
}

// What the journal holds, read as a second process would.
accounting::accounted_totals durable(const std::string& dir, const uuid& id) {
  auto v = accounting::journal::open_read_only(dir);
  REQUIRE(v);
  auto t = v->totals.instance(id);
  return t ? t->totals : accounting::accounted_totals{};
}

agent::options cgroup_options_for(const test::cgroup_copy& cg, const std::string& journal) {
  agent::options o;
  o.journal_dir = journal;
  o.interval = 1000ms;
  o.reconnect_min = 100ms;
  o.sources.push_back(agent::cgroup_host_source("bulkhead", cg.root(), cg.mount_table()));
  return o;
}

std::unique_ptr<agent::agent> open_or_fail(agent::options o) {
  auto a = agent::agent::open(std::move(o));
  if (!a) FAIL(a.error().describe());
  return std::move(*a);
}

}  // namespace

TEST_CASE("each round accounts exactly what the counters grew, durable when tick() returns") {
  test::cgroup_copy cg;
  test::temp_dir j("bulkhead-agent-journal");
  cg.set_cpu("web", 1'000'000);
  cg.set_disk("web", 100, 200);
  auto a = open_or_fail(cgroup_options_for(cg, j.str()));
  auto s0 = a->current();
  REQUIRE(s0);
  CHECK(s0->round == 0);
  CHECK(s0->journal_up);

  auto r1 = a->tick();
  REQUIRE(r1);
  CHECK(r1->round == 1);
  CHECK(r1->durable);
  CHECK(r1->sources_up == 1);
  CHECK(r1->ingested.baselines > 0);
  CHECK(r1->ingested.accounted == 0);
  const auto s1 = a->current();
  REQUIRE(s1->sources.size() == 1);
  CHECK(s1->sources[0].up);
  CHECK(s1->sources[0].kind == "cgroup");
  CHECK(s1->sources[0].name == "bulkhead");
  CHECK(s1->sources[0].instances.size() == 2);  // web, batch
  CHECK(s1->sources[0].instances[0].info.source == "cgroup:bulkhead");  // the series' source
  const auto web = uuid_of(*s1, "web");
  REQUIRE(web);

  std::uint64_t cpu = 1'000'000, rd = 100, wr = 200;
  for (int round = 2; round <= 6; ++round) {
    cpu += 12'345 * static_cast<std::uint64_t>(round);
    rd += 4096;
    wr += 8192 * static_cast<std::uint64_t>(round);
    cg.set_cpu("web", cpu);
    cg.set_disk("web", rd, wr);
    std::this_thread::sleep_for(2ms);  // a later monotonic time for the next sample
    auto r = a->tick();
    REQUIRE(r);
    CHECK(r->durable);
    CHECK_FALSE(r->journal_error);
    CHECK(r->ingested.accounted > 0);
    // Published and durable: the snapshot's totals are what a second reader
    // of the journal finds.
    const auto s = a->current();
    CHECK(s->round == static_cast<std::uint64_t>(round));
    const auto* t = totals_of(s->instances, *web);
    REQUIRE(t);
    CHECK(t->totals.cpu_time_ns == cpu - 1'000'000);
    CHECK(t->totals.disk_read_bytes == rd - 100);
    CHECK(t->totals.disk_write_bytes == wr - 200);
    const auto d = durable(j.str(), *web);
    CHECK(d.cpu_time_ns == t->totals.cpu_time_ns);
    CHECK(d.disk_write_bytes == t->totals.disk_write_bytes);
    CHECK(s->durable_seq > 0);
  }
  // The metrics of the snapshot carry the same integers.
  const auto text = agent::render_metrics(*a->current(), metrics::format::prometheus);
  CHECK(text.find("bulkhead_accounted_cpu_nanoseconds_total{uuid=\"" + web->to_string() + "\",name=\"web\",tenant=\"\",qos_class=\"\"} " +
                  std::to_string(cpu - 1'000'000) + "\n") != std::string::npos);
  CHECK(a->stop());
}

TEST_CASE("an agent restarted on the same journal continues every series: nothing lost, nothing twice") {
  test::cgroup_copy cg;
  test::temp_dir j("bulkhead-agent-journal");
  cg.set_cpu("web", 5'000);
  uuid web;
  {
    auto a = open_or_fail(cgroup_options_for(cg, j.str()));
    REQUIRE(a->tick());
    web = *uuid_of(*a->current(), "web");
    cg.set_cpu("web", 6'000);
    std::this_thread::sleep_for(2ms);
    REQUIRE(a->tick());
    CHECK(a->stop());
  }
  cg.set_cpu("web", 9'000);  // grew while no agent ran
  {
    auto a = open_or_fail(cgroup_options_for(cg, j.str()));
    // open() publishes the journal's totals before any round.
    REQUIRE(totals_of(a->current()->instances, web));
    CHECK(totals_of(a->current()->instances, web)->totals.cpu_time_ns == 1'000);
    auto r = a->tick();
    REQUIRE(r);
    CHECK(r->ingested.baselines == 0);  // resumed, not restarted
    CHECK(totals_of(a->current()->instances, web)->totals.cpu_time_ns == 4'000);
  }
  CHECK(durable(j.str(), web).cpu_time_ns == 4'000);
}

TEST_CASE("a source that cannot connect at first is retried and read once it answers") {
  test::temp_dir j("bulkhead-agent-journal");
  test::temp_dir nodes("bulkhead-agent-node");
  const auto node = nodes.path() / "node.xml";
  agent::options o;
  o.journal_dir = j.str();
  o.interval = 1000ms;
  o.reconnect_min = 100ms;
  o.sources.push_back(agent::libvirt_source("test://" + node.string()));
  // A missing node file is a configuration error at open() ...
  auto bad = agent::agent::open(o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == errc::not_found);
  CHECK(bad.error().describe().find(node.string()) != std::string::npos);
  // ... but a connection refused is a source that is down: it starts, and
  // is retried.
  test::private_libvirtd lvd;
  lvd.stop();
  agent::options o2;
  o2.journal_dir = j.str();
  o2.interval = 1000ms;
  o2.reconnect_min = 100ms;
  o2.sources.push_back(agent::libvirt_source(lvd.uri()));
  auto a = open_or_fail(o2);
  auto r1 = a->tick();
  REQUIRE(r1);
  CHECK(r1->sources_down == 1);
  CHECK(r1->connected.empty());
  auto s1 = a->current();
  CHECK_FALSE(s1->sources[0].up);
  CHECK_FALSE(s1->sources[0].connected);
  REQUIRE(s1->sources[0].last_error);
  CHECK(s1->sources[0].last_error->code() == errc::connection_failed);
  CHECK(s1->sources[0].last_error->describe().find(lvd.uri()) != std::string::npos);
  lvd.start();
  std::this_thread::sleep_for(150ms);  // past the first back-off
  auto r2 = a->tick();
  REQUIRE(r2);
  CHECK(r2->connected.size() == 1);
  CHECK(r2->sources_up == 1);
  auto s2 = a->current();
  CHECK(s2->sources[0].up);
  CHECK(s2->sources[0].connects == 1);
  CHECK_FALSE(s2->sources[0].instances.empty());
}

TEST_CASE("a lost source: its failed reads are journaled as a gap, and it is read again at the next round") {
  test::private_libvirtd lvd;
  test::temp_dir j("bulkhead-agent-journal");
  agent::options o;
  o.journal_dir = j.str();
  o.interval = 1000ms;
  o.reconnect_min = 100ms;
  o.sources.push_back(agent::libvirt_source(lvd.uri()));
  auto a = open_or_fail(o);
  REQUIRE(a->tick());
  std::this_thread::sleep_for(5ms);
  auto r = a->tick();
  REQUIRE(r);
  CHECK(r->ingested.accounted > 0);
  const auto inst = a->current()->sources[0].instances.front().info.id.uuid;

  lvd.stop();  // libvirtd dies: the connection breaks
  auto lost = a->tick();
  REQUIRE(lost);
  CHECK(lost->sources_down == 1);
  REQUIRE(lost->lost.size() == 1);
  CHECK(lost->lost[0].second.describe().find(lvd.uri()) != std::string::npos);
  CHECK(lost->ingested.failures >= 1);
  CHECK_FALSE(a->current()->sources[0].up);
  CHECK(a->current()->sources[0].instances.empty());  // no stale reading is published
  std::this_thread::sleep_for(150ms);
  auto still = a->tick();  // retried (the back-off allows it), refused again
  REQUIRE(still);
  CHECK(still->sources_down == 1);
  CHECK(still->ingested.failures >= 1);

  lvd.start();
  std::this_thread::sleep_for(250ms);  // past the second back-off (200 ms)
  auto back = a->tick();
  REQUIRE(back);
  CHECK(back->connected.size() == 1);
  CHECK(back->sources_up == 1);
  CHECK(back->ingested.gaps >= 1);
  CHECK(back->durable);
  // The gap is in the journal: from the last good sample to the first one
  // after, with every failed read counted and the reason.
  auto v = accounting::journal::open_read_only(j.str());
  REQUIRE(v);
  const accounting::gap_record* g = nullptr;
  for (const auto& x : v->totals.gaps())
    if (x.uuid == inst) g = &x;
  REQUIRE(g);
  CHECK(g->failures >= 2);
  CHECK(g->end > g->start);
  CHECK_FALSE(g->reason.empty());
  const auto s = a->current();
  CHECK(s->sources[0].connects == 2);
  CHECK(s->sources[0].failed_rounds >= 2);
  CHECK(s->stats.failed_reads >= 2);
}

TEST_CASE("open() refuses a journal directory it must not or cannot use, saying why") {
  SUBCASE("missing") {
    agent::options o;
    o.journal_dir = "/nonexistent/bulkhead-journal";
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().code() == errc::not_found);
    CHECK(a.error().describe().find("/nonexistent/bulkhead-journal") != std::string::npos);
    CHECK(a.error().describe().find("does not exist") != std::string::npos);
  }
  SUBCASE("not a directory") {
    test::temp_dir t;
    std::ofstream(t.path() / "file") << "x";
    agent::options o;
    o.journal_dir = (t.path() / "file").string();
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().describe().find("is not a directory") != std::string::npos);
  }
  SUBCASE("writable by everyone") {
    test::temp_dir t;
    ::chmod(t.str().c_str(), 0777);
    agent::options o;
    o.journal_dir = t.str();
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().code() == errc::permission_denied);
    CHECK(a.error().describe().find("writable by every user (mode 0777)") != std::string::npos);
    CHECK(std::filesystem::is_empty(t.path()));  // nothing was created
  }
  SUBCASE("read-only") {
    test::tmpfs_mount m("256k");
    m.remount_read_only();
    agent::options o;
    o.journal_dir = m.str();
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().code() == errc::permission_denied);
    CHECK(a.error().describe().find("read-only file system") != std::string::npos);
  }
  SUBCASE("locked by another writer") {
    test::temp_dir t;
    auto j = accounting::journal::open(t.str());
    REQUIRE(j);
    agent::options o;
    o.journal_dir = t.str();
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().code() == errc::conflict);
    CHECK(a.error().describe().find(t.str()) != std::string::npos);
    CHECK(a.error().describe().find("this process") != std::string::npos);
  }
  SUBCASE("bad options") {
    test::temp_dir t;
    agent::options o;
    o.journal_dir = t.str();
    o.interval = 0ms;
    CHECK(agent::agent::open(o).error().code() == errc::invalid_argument);
    o.interval = 1000ms;
    o.sources.push_back(agent::source_spec{"cgroup", "x", {}, ""});
    CHECK(agent::agent::open(o).error().code() == errc::invalid_argument);
  }
  SUBCASE("a source that cannot be used as given") {
    test::cgroup_copy cg;
    test::temp_dir t;
    agent::options o;
    o.journal_dir = t.str();
    o.sources.push_back(agent::cgroup_host_source("no-such-parent", cg.root(), cg.mount_table()));
    auto a = agent::agent::open(o);
    REQUIRE_FALSE(a);
    CHECK(a.error().describe().find("no-such-parent") != std::string::npos);
  }
}

TEST_CASE("journal files are readable by their owner and group only") {
  test::cgroup_copy cg;
  test::temp_dir j("bulkhead-agent-journal");
  const auto old = ::umask(0);  // the journal's own mode, whatever the caller's umask
  {
    auto a = open_or_fail(cgroup_options_for(cg, j.str()));
    REQUIRE(a->tick());
    cg.set_cpu("web", 1'842'000'200'000);
    std::this_thread::sleep_for(2ms);
    REQUIRE(a->tick());
    CHECK(a->stop());  // a checkpoint too
  }
  ::umask(old);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(j.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    struct stat st{};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    INFO(e.path().string());
    CHECK((st.st_mode & 0777) == 0640);
  }
  CHECK(files >= 3);  // LOCK, a segment, a checkpoint
}

TEST_CASE("a full disk fails rounds, never acknowledges them, and loses nothing once there is room") {
  test::cgroup_copy cg;
  test::tmpfs_mount disk("1m");
  const auto jdir = disk.str() + "/journal";
  std::filesystem::create_directory(jdir);
  ::chmod(jdir.c_str(), 0750);
  cg.set_cpu("web", 10);
  auto a = open_or_fail(cgroup_options_for(cg, jdir));
  REQUIRE(a->tick());
  const auto web = *uuid_of(*a->current(), "web");
  cg.set_cpu("web", 110);
  std::this_thread::sleep_for(2ms);
  REQUIRE(a->tick());
  CHECK(totals_of(a->current()->instances, web)->totals.cpu_time_ns == 100);

  disk.fill();
  std::uint64_t cpu = 110;
  bool failed = false;
  // Rounds fill what is left of the segment's last page, then fail.
  for (int i = 0; i < 200 && !failed; ++i) {
    cpu += 1000;
    cg.set_cpu("web", cpu);
    std::this_thread::sleep_for(2ms);
    auto r = a->tick();
    REQUIRE(r);  // never a crash, never an exception: a report
    if (r->journal_error) {
      failed = true;
      CHECK_FALSE(r->durable);
      CHECK(r->journal_error->code() == errc::no_space);
      const auto s = a->current();
      CHECK_FALSE(s->journal_up);
      // Not acknowledged: the published totals are still the durable ones.
      CHECK(totals_of(s->instances, web)->totals.cpu_time_ns <= cpu - 1000 - 10);
    }
  }
  REQUIRE(failed);
  // Failing rounds again while the disk stays full: nothing acknowledged.
  const auto before = totals_of(a->current()->instances, web)->totals.cpu_time_ns;
  for (int i = 0; i < 3; ++i) {
    cpu += 1000;
    cg.set_cpu("web", cpu);
    std::this_thread::sleep_for(2ms);
    auto r = a->tick();
    REQUIRE(r);
    CHECK(r->journal_error);
    CHECK(totals_of(a->current()->instances, web)->totals.cpu_time_ns == before);
  }
  CHECK(a->current()->stats.journal_failures >= 1);
  const auto text = agent::render_metrics(*a->current(), metrics::format::prometheus);
  CHECK(text.find("bulkhead_agent_journal_up 0\n") != std::string::npos);

  disk.unfill();
  cpu += 5;
  cg.set_cpu("web", cpu);
  std::this_thread::sleep_for(2ms);
  auto r = a->tick();
  REQUIRE(r);
  CHECK(r->durable);
  CHECK_FALSE(r->journal_error);
  CHECK(a->current()->journal_up);
  // Everything since the last durable sample, exactly once.
  CHECK(totals_of(a->current()->instances, web)->totals.cpu_time_ns == cpu - 10);
  CHECK(durable(jdir, web).cpu_time_ns == cpu - 10);
  CHECK(a->current()->stats.journal_reopens >= 1);
}

TEST_CASE("checkpoints follow the policy and keep the journal's files bounded") {
  test::cgroup_copy cg;
  test::temp_dir j("bulkhead-agent-journal");
  auto o = cgroup_options_for(cg, j.str());
  o.checkpoint.records = 20;
  o.checkpoint.interval = 0s;
  o.journal.segment_bytes = 4096;
  auto a = open_or_fail(o);
  std::uint64_t cpu = 1;
  for (int i = 0; i < 40; ++i) {
    cpu += 7;
    cg.set_cpu("web", cpu);
    cg.set_cpu("batch", cpu * 2);
    std::this_thread::sleep_for(1ms);
    auto r = a->tick();
    REQUIRE(r);
    CHECK_FALSE(r->checkpoint_error);
    std::size_t checkpoints = 0, segments = 0;
    for (const auto& e : std::filesystem::directory_iterator(j.path())) {
      const auto n = e.path().filename().string();
      checkpoints += n.starts_with("checkpoint-") ? 1 : 0;
      segments += n.starts_with("segment-") ? 1 : 0;
    }
    CHECK(checkpoints <= 1);
    // The bound of agent.hpp: (records + one round) x 8,208 bytes + one segment.
    CHECK(segments <= (20 + 40) * 8208 / 4096 + 2);
  }
  const auto s = a->current();
  CHECK(s->stats.checkpoints >= 5);
  CHECK(s->last_checkpoint.has_value());
  const auto web = *uuid_of(*s, "web");
  CHECK(durable(j.str(), web).cpu_time_ns == cpu - 8);
}

TEST_CASE("run() rounds at its interval on its own thread; current() never waits; stop() flushes and checkpoints") {
  test::cgroup_copy cg;
  test::temp_dir j("bulkhead-agent-journal");
  auto o = cgroup_options_for(cg, j.str());
  o.interval = 100ms;
  std::atomic<int> rounds{0};
  o.on_round = [&](const agent::round_report&) { ++rounds; };
  auto a = open_or_fail(o);
  REQUIRE(a->run());
  CHECK(a->running());
  auto again = a->run();
  REQUIRE_FALSE(again);
  CHECK(again.error().code() == errc::conflict);
  auto t = a->tick();
  REQUIRE_FALSE(t);
  CHECK(t.error().code() == errc::conflict);
  // Readers on other threads while the counters move.
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> reads{0}, out_of_order{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      std::uint64_t last = 0;
      while (!done) {
        auto s = a->current();
        if (!s || s->round < last) {  // published in order, never null
          ++out_of_order;
          break;
        }
        last = s->round;
        (void)agent::render_metrics(*s, metrics::format::openmetrics);
        ++reads;
      }
    });
  std::uint64_t cpu = 100;
  for (int i = 0; i < 20 && rounds < 5; ++i) {
    cpu += 1000;
    cg.set_cpu("web", cpu);
    std::this_thread::sleep_for(100ms);
  }
  test::wait_for([&] { return rounds >= 5; }, 30s);
  CHECK(rounds >= 5);
  auto stopped = a->stop();
  CHECK(stopped);
  CHECK_FALSE(a->running());
  done = true;
  for (auto& r : readers) r.join();
  CHECK(reads > 0);
  CHECK(out_of_order == 0);
  const auto s = a->current();
  CHECK(s->stats.rounds >= 5);
  CHECK(s->stats.checkpoints >= 1);  // stop() checkpointed
  const auto web = *uuid_of(*s, "web");
  CHECK(durable(j.str(), web).cpu_time_ns == totals_of(s->instances, web)->totals.cpu_time_ns);
  // After stop(), tick() works again (a caller-driven loop).
  CHECK(a->tick());
}
