// Live test 3 (issue 7, assertions revised in issue 12): libvirtd dies and
// comes back while bulkhead samples.
//
// A hosting agent's loop (libvirt::backend::read_all -> accountant::ingest ->
// journal) samples the host every 200 ms while a guest runs. libvirtd is
// killed (SIGKILL: no goodbye to its clients) and started again the way
// tests/live/harness.sh starts it (`libvirtd -d`). The guest's QEMU process
// runs on meanwhile (libvirtd reconnects to it; same domain id, counters go
// on). An independent probe (its own read-only connections, every 20 ms)
// notes when the daemon answers again and when it first answers a read like
// bulkhead's (virConnectGetAllDomainStats with the same stats groups, the
// guest in it, running). What bulkhead controls, and so what is asserted:
//  - it never crashes: every read while the daemon is away is an error value
//    (the first one writes to the dead socket: SIGPIPE, left at its default
//    action here as in an agent, must not end the process);
//  - it reconnects by itself at its next sample: once the probe has had its
//    first good read, every read bulkhead starts succeeds and sees the guest
//    (no back-off, no stale connection), so its first good read is the one
//    in flight then or the next one the loop starts;
//  - the gap it records covers exactly the time it could not read: one gap
//    record for the guest, from its last good sample before the kill to its
//    first good sample after (the same monotonic read times), with every
//    failed read counted and the first failure's reason; the first delta
//    after it covers it (flag after_gap) in every series;
//  - the totals stay exact (accounted CPU time equals the growth of
//    libvirt's own counters read independently, within the brackets between
//    the reads; lifecycle_check.hpp).
// How long libvirtd takes to come back and to answer its first read is
// libvirtd's business (on this host each start re-probes QEMU's capabilities,
// docs/live-tests.md): it is reported as figures, never asserted.
// If the harness had started libvirtd (BUILDDIR/live/started), the new pid is
// recorded there so that `harness.sh teardown` still stops it. Should the test
// fail while libvirtd is down, a guard starts it again.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// The stats groups bulkhead's read_all() asks for (libvirt_backend.cpp).
constexpr unsigned bulkhead_groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
                                     VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;

std::int64_t ms_between(mono_time a, mono_time b) { return std::chrono::duration_cast<milliseconds>(b - a).count(); }

// One read of the probe: opens a read-only connection and asks for the
// stats bulkhead asks for. Sets `answered` (ns of the monotonic clock) the
// first time the daemon tells its version on a new connection; returns true
// when the guest `uuid` is in the stats, running.
bool probe_read(const std::string& uri, const std::string& uuid, std::atomic<std::int64_t>& answered) {
  virConnectPtr c = virConnectOpenReadOnly(uri.c_str());
  if (!c) return false;
  unsigned long v = 0;
  const bool up = virConnectGetLibVersion(c, &v) == 0;
  if (up && answered == 0) answered = (mono_clock::now() - mono_time{}).count();
  bool seen = false;
  virDomainStatsRecordPtr* recs = nullptr;
  const int n = up ? virConnectGetAllDomainStats(c, bulkhead_groups, &recs, 0) : -1;
  for (int i = 0; i < n; ++i) {
    char u[VIR_UUID_STRING_BUFLEN] = {};
    int state = 0;
    if (virDomainGetUUIDString(recs[i]->dom, u) == 0 && uuid == u &&
        virTypedParamsGetInt(recs[i]->params, recs[i]->nparams, "state.state", &state) == 1 &&
        state == VIR_DOMAIN_RUNNING)
      seen = true;
  }
  if (n >= 0) virDomainStatsRecordListFree(recs);
  virConnectClose(c);
  return seen;
}

// One sample of the agent's loop after the kill.
struct sample_rec {
  mono_time started{}, finished{};
  bool ok = false;    // read_all() succeeded
  bool seen = false;  // ... and the guest was in it, running
  mono_time read_at{};
  std::string error;
};

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

  log.begin();
  live::sample_until(agent, log, g, id, interval, live::for_time(2s), 30s);
  // The last good sample before the kill: where the gap must begin.
  const auto before = agent.sample(id);
  REQUIRE_MESSAGE((before.ok && before.run), "the last sample before the kill failed: " << before.error);
  log.note(before);

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

  // --- samples while it is away, then `libvirtd -d` and the probe -------------
  std::atomic<bool> started_ok{false};
  std::atomic<std::int64_t> restarted_ns{0}, answered_ns{0}, read_ns{0}, read_began_ns{0};
  std::jthread restarter;  // joins when the test throws, too
  std::vector<sample_rec> recs;
  const auto deadline = mono_clock::now() + 120s;
  const auto probe_done = [&] { return read_ns.load() != 0; };
  const auto at = [](std::int64_t ns) { return mono_time{nanoseconds{ns}}; };
  while (mono_clock::now() < deadline) {
    sample_rec r;
    r.started = mono_clock::now();
    const auto s = agent.sample(id);
    r.finished = mono_clock::now();
    r.ok = s.ok;
    r.seen = s.ok && s.run.has_value();
    r.read_at = s.read_at;
    r.error = s.error;
    if (s.ok) log.note(s);
    recs.push_back(r);
    // Done once a read that started after the probe's first good read has
    // ended, and bulkhead has read the guest again.
    if (probe_done() && r.started >= at(read_ns.load()) &&
        std::any_of(recs.begin(), recs.end(), [](const sample_rec& x) { return x.seen; }))
      break;
    if (!restarter.joinable() && r.started - killed_at >= 1500ms) {
      restarter = std::jthread([&] {
        // This thread's own connections must not die of SIGPIPE either.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        started_ok = start_libvirtd(env);
        restarted_ns = (mono_clock::now() - mono_time{}).count();
        for (int i = 0; i < 6000; ++i) {  // up to 120 s
          const auto t = mono_clock::now();
          const bool seen = probe_read(env.uri, id, answered_ns);
          if (seen) {
            read_began_ns = (t - mono_time{}).count();
            read_ns = (mono_clock::now() - mono_time{}).count();
            break;
          }
          std::this_thread::sleep_for(20ms);
        }
      });
    }
    std::this_thread::sleep_until(r.started + interval);
  }
  if (restarter.joinable()) restarter.join();
  REQUIRE(started_ok.load());
  REQUIRE_MESSAGE(probe_done(), "libvirtd did not answer a read within 120 s of `libvirtd -d`");
  const mono_time answered = at(answered_ns.load()), first_read = at(read_ns.load());
  std::optional<pid_t> new_pid;
  for (int i = 0; i < 50 && !new_pid; ++i) {
    new_pid = libvirtd_pid();
    if (!new_pid) std::this_thread::sleep_for(100ms);
  }
  REQUIRE_MESSAGE(new_pid.has_value(), "libvirtd answers but /var/run/libvirtd.pid names no running libvirtd");
  record_new_pid(env, *old_pid, *new_pid);

  // --- what bulkhead did --------------------------------------------------------
  int failed = 0;
  std::vector<std::string> errors;
  const sample_rec* first_good = nullptr;
  for (const auto& r : recs) {
    if (!r.ok) {
      ++failed;
      if (errors.empty() || errors.back() != r.error) errors.push_back(r.error);
    }
    if (r.seen && !first_good) first_good = &r;
  }
  for (const auto& e : errors) MESSAGE("a read while libvirtd was away: " << e);
  MESSAGE("figures: libvirtd " << *new_pid << " started " << ms_between(killed_at, at(restarted_ns.load()))
                               << " ms after the kill, answered a connection " << ms_between(killed_at, answered)
                               << " ms after it, and first answered a read like bulkhead's "
                               << ms_between(killed_at, first_read) << " ms after it (that read took "
                               << ms_between(at(read_began_ns.load()), first_read) << " ms)");
  REQUIRE_MESSAGE(first_good != nullptr, "bulkhead never read the guest again after libvirtd came back");
  MESSAGE("figures: bulkhead's first good read started " << ms_between(first_read, first_good->started)
                                                         << " ms after the probe's first good read ended (negative: "
                                                            "it was in flight then) and took "
                                                         << ms_between(first_good->started, first_good->finished)
                                                         << " ms; " << failed << " failed reads, " << recs.size()
                                                         << " reads after the kill, sampling every "
                                                         << interval.count() << " ms");
  CHECK(failed >= 1);  // bulkhead saw the daemon go
  // Reconnected at the next sample: every read that started once libvirt had
  // answered a read succeeded and saw the guest.
  for (const auto& r : recs) {
    if (r.started < first_read) continue;
    CAPTURE(ms_between(first_read, r.started));
    CHECK_MESSAGE(r.seen, "a read bulkhead started after libvirtd answered reads again "
                              << (r.ok ? "did not see the guest" : "failed: " + r.error));
  }
  // Nothing good before the outage ended, nothing failed after bulkhead's
  // first good read: the failures are one run.
  for (const auto& r : recs)
    if (r.started > first_good->started) CHECK(r.ok);

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
  MESSAGE("figures: gap " << ms_between(gap.start, gap.end) << " ms, " << gap.failures
                          << " failed reads, reason: " << gap.reason);
  // Exactly the time bulkhead could not read: from its last good sample of
  // the guest to its first good one after.
  CHECK(gap.start == before.read_at);
  CHECK(gap.end == first_good->read_at);
  CHECK(gap.failures == static_cast<std::uint64_t>(failed));
  CHECK(gap.reason == errors.front());
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
