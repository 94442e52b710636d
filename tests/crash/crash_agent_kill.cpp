// bulkhead-agent under kill -9 at random moments (suite `crash`).
//
// The agent meters a writable cgroup copy (--interval 100ms, a checkpoint
// every few rounds, a textfile) while a thread of this test grows the web
// group's CPU and disk counters by random amounts. Each round the test
// starts the agent on the same journal, lets it run for a random time
// (sometimes killing it before it finished starting, during a round, a
// flush, a checkpoint or a textfile write), scrapes what it acknowledged,
// kills it with SIGKILL, and checks with a read-only open of the journal:
//   - nothing acknowledged is lost: the journal's totals are at least what
//     the last scrape before the kill published;
//   - nothing is counted twice and nothing lost at the end: once the counters
//     stop, a last agent accounts them, stops on SIGTERM (exit 0), and the
//     journal's totals are exactly the counters' growth since the baseline.
//
// Usage: crash_agent_kill ROUNDS [SEED]   (BULKHEAD_AGENT: the agent binary)
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "agent_support.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "net.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "crash_agent_kill: FAIL: %s\n", why.c_str());
  std::exit(1);
}

// The web group's totals in the exposition (nullopt when absent).
struct web_totals {
  std::uint64_t cpu = 0, read = 0, written = 0;
};
std::optional<web_totals> scraped(const std::string& text) {
  std::istringstream in(text);
  std::optional<web_totals> t;
  for (std::string line; std::getline(in, line);) {
    if (line.find("name=\"web\"") == std::string::npos || !line.starts_with("bulkhead_accounted_")) continue;
    const auto v = [&] { return std::stoull(line.substr(line.rfind(' ') + 1)); };
    if (line.starts_with("bulkhead_accounted_cpu_nanoseconds_total{")) {
      if (!t) t.emplace();
      t->cpu = v();
    } else if (line.starts_with("bulkhead_accounted_disk_read_bytes_total{")) {
      if (!t) t.emplace();
      t->read = v();
    } else if (line.starts_with("bulkhead_accounted_disk_write_bytes_total{")) {
      if (!t) t.emplace();
      t->written = v();
    }
  }
  return t;
}

web_totals journaled(const std::string& dir) {
  auto v = accounting::journal::open_read_only(dir);
  if (!v) die("read-only open: " + v.error().describe());
  if (v->report.corruption) die("the journal is corrupt: " + v->report.corruption->describe());
  web_totals t;
  for (const auto& i : v->totals.by_instance())
    if (i.labels.name == "web") {
      t.cpu = static_cast<std::uint64_t>(i.totals.cpu_time_ns);
      t.read = static_cast<std::uint64_t>(i.totals.disk_read_bytes);
      t.written = static_cast<std::uint64_t>(i.totals.disk_write_bytes);
    }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  const unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : std::random_device{}();
  std::printf("crash_agent_kill: %d rounds, seed %u\n", rounds, seed);
  std::mt19937 rng(seed);
  (void)test::agent_process::program();  // skips when BULKHEAD_AGENT is not set

  test::cgroup_copy cg;
  test::temp_dir journal("bulkhead-crash-agent");
  test::temp_dir out("bulkhead-crash-textfile");
  const std::string textfile = out.str() + "/bulkhead.prom";
  const std::uint64_t cpu0 = 5'000'000'000, read0 = 1'000, write0 = 2'000;
  std::atomic<std::uint64_t> cpu{cpu0}, rd{read0}, wr{write0};
  cg.set_cpu("web", cpu0);
  cg.set_disk("web", read0, write0);

  const auto args = [&](int port) {
    return std::vector<std::string>{"--journal", journal.str(), "--cgroup-parent", "bulkhead", "--fs-root", cg.root(),
                                    "--mount-table", cg.mount_table(), "--interval", "100ms", "--listen",
                                    "127.0.0.1:" + std::to_string(port), "--textfile", textfile,
                                    "--checkpoint-records", "200"};
  };

  // The baseline: a first agent journals a zero delta at the start values.
  {
    const int port = test::free_port();
    test::agent_process a(args(port));
    if (!test::wait_for([&] {
          auto t = scraped(test::http_get_metrics(port).body);
          return t.has_value();
        }, 60s))
      die("the first agent never published the web group: " + a.log());
    a.signal(SIGTERM);
    if (a.wait() != 0) die("the first agent did not stop cleanly: " + a.log());
  }

  // Counters grow while agents come and go.
  std::atomic<bool> grow{true};
  std::thread grower([&] {
    std::mt19937 r(seed + 1);
    while (grow) {
      cpu += 1 + r() % 50'000'000;
      rd += r() % 4096;
      wr += r() % 65536;
      cg.set_cpu("web", cpu);
      cg.set_disk("web", rd, wr);
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + r() % 20));
    }
  });

  std::uint64_t acked_rounds = 0;
  for (int round = 0; round < rounds; ++round) {
    const int port = test::free_port();
    test::agent_process a(args(port));
    const auto life = std::chrono::milliseconds(rng() % 700);
    const auto until = std::chrono::steady_clock::now() + life;
    std::optional<web_totals> acked;
    while (std::chrono::steady_clock::now() < until) {
      if (rng() % 3 == 0) {
        auto r = test::http_get_metrics(port);
        if (r.status == 200)
          if (auto t = scraped(r.body)) acked = t;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    }
    a.signal(SIGKILL);
    (void)a.wait();
    if (a.log().find("is open for writing by") != std::string::npos)
      die("round " + std::to_string(round) + ": the journal was still locked by a killed agent: " + a.log());
    const auto j = journaled(journal.str());
    if (acked) {
      ++acked_rounds;
      if (j.cpu < acked->cpu || j.read < acked->read || j.written < acked->written)
        die("round " + std::to_string(round) + ": acknowledged cpu " + std::to_string(acked->cpu) + " but the journal holds " +
            std::to_string(j.cpu));
    }
    if (j.cpu > cpu - cpu0 || j.read > rd - read0 || j.written > wr - write0)
      die("round " + std::to_string(round) + ": the journal holds more than the counters grew (cpu " +
          std::to_string(j.cpu) + " > " + std::to_string(cpu - cpu0) + ")");
  }
  grow = false;
  grower.join();

  // A last agent accounts everything up to the final values, exactly once.
  const std::uint64_t want_cpu = cpu - cpu0, want_read = rd - read0, want_write = wr - write0;
  {
    const int port = test::free_port();
    test::agent_process a(args(port));
    if (!test::wait_for([&] {
          auto t = scraped(test::http_get_metrics(port).body);
          return t && t->cpu == want_cpu && t->read == want_read && t->written == want_write;
        }, 60s)) {
      const auto t = scraped(test::http_get_metrics(port).body);
      die("the totals never reached the counters' growth: cpu " + std::to_string(t ? t->cpu : 0) + " of " +
          std::to_string(want_cpu) + "; " + a.log());
    }
    a.signal(SIGTERM);
    if (a.wait() != 0) die("the last agent did not stop cleanly: " + a.log());
  }
  const auto j = journaled(journal.str());
  if (j.cpu != want_cpu || j.read != want_read || j.written != want_write)
    die("final journal cpu " + std::to_string(j.cpu) + " read " + std::to_string(j.read) + " written " +
        std::to_string(j.written) + "; counters grew " + std::to_string(want_cpu) + ", " + std::to_string(want_read) +
        ", " + std::to_string(want_write));
  std::size_t temporaries = 0;
  for (const auto& e : std::filesystem::directory_iterator(out.path()))
    temporaries += e.path().filename().string() != "bulkhead.prom" ? 1 : 0;
  if (temporaries != 0) die(std::to_string(temporaries) + " temporary textfiles left behind");
  std::printf("crash_agent_kill: %d kills (%llu with an acknowledged scrape before it); totals exact: cpu %llu ns, "
              "read %llu B, written %llu B\n",
              rounds, static_cast<unsigned long long>(acked_rounds), static_cast<unsigned long long>(want_cpu),
              static_cast<unsigned long long>(want_read), static_cast<unsigned long long>(want_write));
  return 0;
}
