// Live test 3 (issue 7): libvirtd dies and comes back while bulkhead samples.
//
// A hosting agent's loop (libvirt::backend::read_all -> accountant::ingest ->
// journal) samples the host every 200 ms while a guest runs. libvirtd is
// killed (SIGKILL: no goodbye to its clients) and started again the way
// tests/live/harness.sh starts it (`libvirtd -d`). The guest's QEMU process
// runs on meanwhile (libvirtd reconnects to it; same domain id, counters go
// on). bulkhead must:
//  - never crash: every read while the daemon is away is an error value
//    (the first one writes to the dead socket: SIGPIPE, left at its default
//    action here as in an agent, must not end the process);
//  - reconnect by itself (libvirt::backend drops a dead connection and the
//    next call opens a new one) within 2 s of the daemon answering again, as
//    seen by an independent probe that opens a connection every 20 ms;
//  - record the gap explicitly: the agent reports each failed read
//    (accountant::read_failed), the journal holds one gap record for the
//    guest from before the kill to after the daemon is back, and the first
//    delta after it covers the whole gap (flag after_gap);
//  - keep the totals exact (the same check as test 2: accounted CPU time equals
//    the growth of libvirt's own counters read independently, within the
//    brackets between the reads).
// If the harness had started libvirtd (BUILDDIR/live/started), the new pid is
// recorded there so that `harness.sh teardown` still stops it. Should the test
// fail while libvirtd is down, a guard starts it again.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "lifecycle_check.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {

constexpr auto interval = 200ms;
constexpr auto reconnect_bound = 2s;

// The running libvirtd: /var/run/libvirtd.pid naming a live (not zombie)
// process called libvirtd, as harness.sh decides.
std::optional<pid_t> libvirtd_pid() {
  std::ifstream pf("/var/run/libvirtd.pid");
  long pid = 0;
  if (!(pf >> pid) || pid <= 0) return std::nullopt;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(comm, c);
  if (c != "libvirtd") return std::nullopt;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto rp = line.rfind(')');
  if (rp == std::string::npos || rp + 2 >= line.size() || line[rp + 2] == 'Z') return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto rp = line.rfind(')');
  return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z';
}

// `libvirtd -d`, output appended to the harness's log; true on exit status 0.
bool start_libvirtd(const live::environment& env) {
  const std::string log = (env.dir / "harness.log").string();
  const pid_t p = ::fork();
  if (p < 0) return false;
  if (p == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::close_range(3, ~0U, 0);  // the daemon keeps none of the test's files
    ::execlp("libvirtd", "libvirtd", "-d", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// BUILDDIR/live/started lists "<daemon> <pid>" for what harness.sh started;
// replaces libvirtd's old pid with the new one.
void record_new_pid(const live::environment& env, pid_t old_pid, pid_t new_pid) {
  const auto path = env.dir / "started";
  std::ifstream in(path);
  if (!in) return;
  std::ostringstream out;
  bool changed = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "libvirtd " + std::to_string(old_pid)) {
      line = "libvirtd " + std::to_string(new_pid);
      changed = true;
    }
    out << line << "\n";
  }
  in.close();
  if (changed) std::ofstream(path, std::ios::trunc) << out.str();
}

// Starts libvirtd again if the test leaves it down (a failed REQUIRE).
struct daemon_guard {
  const live::environment& env;
  pid_t old_pid;
  ~daemon_guard() {
    if (libvirtd_pid()) return;
    if (!start_libvirtd(env)) return;
    for (int i = 0; i < 50; ++i) {
      if (const auto p = libvirtd_pid()) {
        record_new_pid(env, old_pid, *p);
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
  }
};

}  // namespace

TEST_CASE("bulkhead reconnects after libvirtd is killed and restarted, records the gap, and stays exact") {
  const auto& env = live::require_live();
  std::optional<live::connection> conn;
  conn.emplace(env);
  test::temp_dir jdir("bulkhead-live-journal");
  live::agent agent(env, jdir.str(), {.batch_records = 8192, .max_delay = milliseconds{2}});
  live::guest g(env, *conn, {.tag = "restart", .mode = live::guest_mode::idle});
  g.wait_ready();
  const std::string id = g.uuid();
  const unsigned run = g.id();
  live::lifecycle_log log(g, interval);

  const auto step = [&](mono_time t0) { std::this_thread::sleep_until(t0 + interval); };
  log.begin();
  live::sample_until(agent, log, g, id, interval, live::for_time(2s), 30s);

  // --- kill -----------------------------------------------------------------
  const auto old_pid = libvirtd_pid();
  REQUIRE_MESSAGE(old_pid.has_value(), "no running libvirtd found through /var/run/libvirtd.pid");
  daemon_guard guard{env, *old_pid};
  // SIGPIPE as a hosting agent has it by default: not ignored, not blocked.
  // A read on the dead connection writes to a closed socket; only bulkhead's
  // own handling keeps that from ending this process (libvirt.hpp).
  struct sigaction pipe_action {};
  REQUIRE(::sigaction(SIGPIPE, nullptr, &pipe_action) == 0);
  REQUIRE((pipe_action.sa_handler == SIG_DFL));
  sigset_t mask;
  REQUIRE(::pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0);
  REQUIRE(sigismember(&mask, SIGPIPE) == 0);
  const auto killed_at = mono_clock::now();
  REQUIRE(::kill(*old_pid, SIGKILL) == 0);
  for (int i = 0; i < 500 && !gone(*old_pid); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(gone(*old_pid));
  MESSAGE("libvirtd " << *old_pid << " killed (SIGKILL)");

  // --- samples while it is away, then `libvirtd -d` and a probe ---------------
  std::atomic<bool> started_ok{false};
  std::atomic<std::int64_t> back_ns{0};
  std::jthread restarter;  // joins when the test throws, too
  std::vector<std::string> errors;
  std::optional<mono_time> first_good;
  int failed = 0;
  const auto deadline = mono_clock::now() + 90s;
  while (mono_clock::now() < deadline) {
    const auto t0 = mono_clock::now();
    const auto s = agent.sample(id);
    if (!s.ok) {
      ++failed;
      if (errors.empty() || errors.back() != s.error) errors.push_back(s.error);
    } else {
      log.note(s);
      // The first good read after the kill that saw the guest.
      if (s.run) {
        first_good = mono_clock::now();
        break;
      }
    }
    if (!restarter.joinable() && t0 - killed_at >= 1500ms) {
      restarter = std::jthread([&] {
        started_ok = start_libvirtd(env);
        for (int i = 0; i < 3000; ++i) {  // up to 60 s
          if (virConnectPtr c = virConnectOpen(env.uri.c_str())) {
            unsigned long v = 0;
            const bool ok = virConnectGetLibVersion(c, &v) == 0;
            virConnectClose(c);
            if (ok) {
              back_ns = (mono_clock::now() - mono_time{}).count();
              break;
            }
          }
          std::this_thread::sleep_for(20ms);
        }
      });
    }
    step(t0);
  }
  if (restarter.joinable()) restarter.join();
  REQUIRE(started_ok.load());
  REQUIRE_MESSAGE(back_ns.load() != 0, "libvirtd did not answer within 60 s of `libvirtd -d`");
  const mono_time back{nanoseconds{back_ns.load()}};
  std::optional<pid_t> new_pid;
  for (int i = 0; i < 50 && !new_pid; ++i) {
    new_pid = libvirtd_pid();
    if (!new_pid) std::this_thread::sleep_for(100ms);
  }
  REQUIRE_MESSAGE(new_pid.has_value(), "libvirtd answers but /var/run/libvirtd.pid names no running libvirtd");
  record_new_pid(env, *old_pid, *new_pid);
  for (const auto& e : errors) MESSAGE("a read while libvirtd was away: " << e);
  MESSAGE(failed << " failed reads; libvirtd " << *new_pid << " answered "
                 << std::chrono::duration_cast<milliseconds>(back - killed_at).count() << " ms after the kill");
  CHECK(failed >= 5);  // the daemon was away at least 1.5 s
  REQUIRE_MESSAGE(first_good.has_value(), "bulkhead never read the guest again after libvirtd came back");
  const auto took = std::chrono::duration_cast<milliseconds>(*first_good - back);
  MESSAGE("bulkhead's first good read came " << took.count() << " ms after the daemon answered the probe");
  CHECK(took <= reconnect_bound);

  // --- after: the same QEMU process, the same domain id ------------------------
  conn.emplace(env);  // the test's own connection died with the daemon too
  g.rebind(*conn);
  CHECK(g.id() == run);
  live::sample_until(agent, log, g, id, interval, live::for_time(2s), 30s);
  log.end();
  agent.flush();
  CHECK(agent.rejected() == 0);
  CHECK(agent.duplicates() == 0);

  auto view = accounting::journal::open_read_only(jdir.str());
  REQUIRE_MESSAGE(view.has_value(), (view ? std::string() : view.error().describe()));
  const auto uid = *uuid::parse(id);
  std::vector<accounting::gap_record> gaps;
  for (const auto& gr : view->totals.gaps())
    if (gr.uuid == uid) gaps.push_back(gr);
  REQUIRE(gaps.size() == 1);
  const auto& gap = gaps.front();
  MESSAGE("gap: " << std::chrono::duration_cast<milliseconds>(gap.end - gap.start).count() << " ms, " << gap.failures
                  << " failed reads, reason: " << gap.reason);
  CHECK(gap.start <= killed_at);
  CHECK(gap.end >= back);
  CHECK(gap.failures == static_cast<std::uint64_t>(failed));
  CHECK_FALSE(gap.reason.empty());
  // The first delta after the gap covered it, in every series of the guest.
  std::size_t series = 0;
  for (const auto& si : view->totals.series()) {
    if (si.key.uuid != uid) continue;
    CAPTURE(si.key.counter);
    CHECK(si.gaps_covered == 1);
    ++series;
  }
  CHECK(series >= 8);
  REQUIRE(log.records().size() == 1);
  log.check_against(view->totals, id);
}
