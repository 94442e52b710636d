// kill -9 at random moments (suite `crash`).
//
// A child process opens the journal, appends deltas from a deterministic
// sequence in batches of random size, waits for each batch to be durable and
// reports on a pipe what it is about to submit ('S' n) and what was
// acknowledged ('A' n), checkpointing now and then. The parent kills it with
// SIGKILL after a random delay (sometimes before it finished opening),
// reopens the journal and checks, for every series:
//   - every acknowledged delta is accounted exactly once (count and total are
//     the prefix of the sequence up to some point at or past the last ack);
//   - nothing is accounted that was never submitted (that point is at or
//     before the last submission);
//   - resubmitting every unacknowledged delta counts each exactly once
//     (duplicates for those already durable, fresh for the rest), after which
//     the totals are exactly the submitted prefix.
// The journal directory lives on across rounds, so recovery also meets
// rotations, checkpoints and crashes in the middle of them.
//
// Usage: crash_journal_kill ROUNDS [SEED]
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;

namespace {

constexpr int series_count = 8;  // 2 instances x 4 counters

series_key key_of(int s) {
  static const char* names[] = {"cpu_time_ns", "disk/vda/read_bytes", "disk/vda/write_bytes", "net/52:54:00:00:00:01/tx_bytes"};
  std::array<std::uint8_t, 16> b{};
  b[0] = 0xcc;
  b[15] = static_cast<std::uint8_t>(s / 4);
  return series_key{"crash-test@boot", uuid{b}, incarnation{1}, names[s % 4], 64, series_kind::usage};
}

// Delta number n of the global sequence: series n % 8, its k-th delta.
std::uint64_t amount_of(int s, std::uint64_t k) { return static_cast<std::uint64_t>(s + 1) * 1000 + k % 97; }

delta delta_of(std::uint64_t n, std::uint64_t value_before) {
  const std::uint64_t k = n / series_count;
  const int s = static_cast<int>(n % series_count);
  const auto a = amount_of(s, k);
  const auto start = mono_time{} + std::chrono::milliseconds(1000 + 1000 * static_cast<std::int64_t>(k));
  const auto end = start + std::chrono::milliseconds(1000);
  const auto wall = wall_time{} + std::chrono::milliseconds(1'700'000'000'000 + 1000 * static_cast<std::int64_t>(k + 1));
  return delta{start, end, wall, a, value_before + a, 0};
}

// prefix[s][k] = sum of the first k amounts of series s.
struct prefixes {
  std::vector<std::vector<std::uint64_t>> p = std::vector<std::vector<std::uint64_t>>(series_count, {0});
  std::uint64_t at(int s, std::uint64_t k) {
    auto& v = p[static_cast<std::size_t>(s)];
    while (v.size() <= k) v.push_back(v.back() + amount_of(s, v.size() - 1));
    return v[k];
  }
};

// How many deltas of series s are among global indices [0, n).
std::uint64_t count_below(int s, std::uint64_t n) {
  return n / series_count + (static_cast<std::uint64_t>(s) < n % series_count ? 1 : 0);
}

journal_options options() { return {.batch_records = 64, .max_delay = std::chrono::milliseconds(1), .segment_bytes = 16 << 10}; }

void send(int fd, char tag, std::uint64_t n) {
  char m[9];
  m[0] = tag;
  std::memcpy(m + 1, &n, 8);
  if (::write(fd, m, sizeof m) != static_cast<ssize_t>(sizeof m)) std::_Exit(3);
}

[[noreturn]] void child(const std::string& dir, std::uint64_t from, std::uint64_t seed, int out) {
  auto j = journal::open(dir, options());
  if (!j) {
    std::fprintf(stderr, "child: open: %s\n", j.error().describe().c_str());
    std::_Exit(2);
  }
  std::vector<std::uint32_t> ids;
  for (int s = 0; s < series_count; ++s) ids.push_back((*j)->define(key_of(s)).value());
  send(out, 'R', from);
  std::mt19937_64 rng(seed);
  prefixes pre;
  std::uint64_t n = from;
  while (true) {
    const std::uint64_t batch = 1 + rng() % 300;
    send(out, 'S', n + batch - 1);
    ticket last{};
    for (std::uint64_t i = 0; i < batch; ++i, ++n) {
      const int s = static_cast<int>(n % series_count);
      const auto k = n / series_count;
      auto r = (*j)->append(ids[static_cast<std::size_t>(s)], delta_of(n, pre.at(s, k)));
      if (!r) {
        std::fprintf(stderr, "child: append %llu: %s\n", static_cast<unsigned long long>(n), r.error().describe().c_str());
        std::_Exit(2);
      }
      last = r->t;
    }
    if (auto w = (*j)->wait(last); !w) {
      std::fprintf(stderr, "child: wait: %s\n", w.error().describe().c_str());
      std::_Exit(2);
    }
    send(out, 'A', n - 1);
    if (rng() % 16 == 0) {
      if (auto c = (*j)->checkpoint(); !c) {
        std::fprintf(stderr, "child: checkpoint: %s\n", c.error().describe().c_str());
        std::_Exit(2);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long rounds = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10)
                                      : static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("crash_journal_kill: %ld rounds, seed %llu\n", rounds, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  test::temp_dir t("bulkhead-crash");
  const std::string dir = t.str();
  prefixes pre;
  std::uint64_t next = 0;  // every delta below this is accounted exactly once
  std::uint64_t total_acked = 0, total_resubmitted = 0, total_dups = 0, kills_before_ready = 0;
  const auto failed = [&](long round, const std::string& what) {
    std::fprintf(stderr, "FAIL round %ld (seed %llu): %s\n", round, static_cast<unsigned long long>(seed), what.c_str());
    return 1;
  };

  for (long round = 0; round < rounds; ++round) {
    int fds[2];
    if (::pipe(fds) != 0) return failed(round, "pipe");
    const pid_t pid = ::fork();
    if (pid < 0) return failed(round, "fork");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test (a timeout kills the parent)
      ::close(fds[0]);
      child(dir, next, rng(), fds[1]);
    }
    ::close(fds[1]);
    // Usually let it run a little after it is ready; sometimes kill it while
    // it is still opening (recovering) the journal.
    const bool early = rng() % 10 == 0;
    if (!early) {
      char m[9];
      if (::read(fds[0], m, sizeof m) != static_cast<ssize_t>(sizeof m) || m[0] != 'R') {
        int st = 0;
        ::waitpid(pid, &st, 0);
        return failed(round, "child did not start (status " + std::to_string(st) + ")");
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (early ? 3000 : 25000)));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFSIGNALED(st)) return failed(round, "child exited by itself with status " + std::to_string(WEXITSTATUS(st)));
    std::uint64_t submitted = next, acked = next;  // exclusive bounds
    bool ready = !early;
    {
      char m[9];
      while (::read(fds[0], m, sizeof m) == static_cast<ssize_t>(sizeof m)) {
        std::uint64_t n;
        std::memcpy(&n, m + 1, 8);
        if (m[0] == 'R') ready = true;
        if (m[0] == 'S') submitted = std::max(submitted, n + 1);
        if (m[0] == 'A') acked = std::max(acked, n + 1);
      }
    }
    ::close(fds[0]);
    if (!ready) ++kills_before_ready;
    total_acked += acked - next;

    auto j = journal::open(dir, options());
    if (!j) return failed(round, "reopen: " + j.error().describe());
    const auto snap = (*j)->snapshot();
    std::vector<std::uint32_t> ids(series_count);
    for (int s = 0; s < series_count; ++s) {
      auto id = snap.find(key_of(s));
      const auto want_acked = count_below(s, acked), want_max = count_below(s, submitted);
      if (!id) {
        if (want_acked != 0) return failed(round, "series " + std::to_string(s) + " lost");
        ids[static_cast<std::size_t>(s)] = (*j)->define(key_of(s)).value();
        continue;
      }
      ids[static_cast<std::size_t>(s)] = *id;
      const auto& info = snap.series()[*id];
      if (info.deltas < want_acked)
        return failed(round, "series " + std::to_string(s) + ": " + std::to_string(info.deltas) + " deltas but " +
                                 std::to_string(want_acked) + " were acknowledged");
      if (info.deltas > want_max)
        return failed(round, "series " + std::to_string(s) + ": " + std::to_string(info.deltas) + " deltas but only " +
                                 std::to_string(want_max) + " were submitted");
      if (info.total != pre.at(s, info.deltas))
        return failed(round, "series " + std::to_string(s) + ": total is not the sum of its " +
                                 std::to_string(info.deltas) + " deltas (counted twice or wrong)");
    }
    // Resubmit everything not acknowledged.
    std::uint64_t dups = 0;
    ticket last{};
    for (std::uint64_t n = acked; n < submitted; ++n) {
      const int s = static_cast<int>(n % series_count);
      auto r = (*j)->append(ids[static_cast<std::size_t>(s)], delta_of(n, pre.at(s, n / series_count)));
      if (!r) return failed(round, "resubmit " + std::to_string(n) + ": " + r.error().describe());
      dups += r->duplicate ? 1 : 0;
      last = r->t;
    }
    if (auto f = (*j)->flush(); !f) return failed(round, "flush: " + f.error().describe());
    total_resubmitted += submitted - acked;
    total_dups += dups;
    const auto after = (*j)->snapshot();
    for (int s = 0; s < series_count; ++s) {
      const auto& info = after.series()[ids[static_cast<std::size_t>(s)]];
      const auto want = count_below(s, submitted);
      if (info.deltas != want || info.total != pre.at(s, want))
        return failed(round, "series " + std::to_string(s) + " after resubmission: " + std::to_string(info.deltas) +
                                 " deltas, want exactly " + std::to_string(want));
    }
    if ((*j)->stats().duplicates != dups) return failed(round, "duplicates not counted");
    // The child checkpoints only when it lives long enough; checkpoint here
    // too, so replay stays short however many rounds run.
    if (round % 25 == 24)
      if (auto c = (*j)->checkpoint(); !c) return failed(round, "checkpoint: " + c.error().describe());
    next = submitted;
    if (rounds >= 1000 && (round + 1) % 1000 == 0) {
      std::printf("  %ld rounds done, %llu deltas accounted\n", round + 1, static_cast<unsigned long long>(next));
      std::fflush(stdout);
    }
  }
  // A read-only open agrees with the last writer.
  auto v = journal::open_read_only(dir);
  if (!v || v->report.corruption) return failed(rounds, "read-only open at the end");
  for (int s = 0; s < series_count; ++s) {
    auto id = v->totals.find(key_of(s));
    if (!id || v->totals.series()[*id].deltas != count_below(s, next)) return failed(rounds, "read-only totals");
  }
  std::printf("ok: %ld rounds, %llu deltas accounted, %llu acknowledged before kills, %llu resubmitted (%llu were "
              "already durable), %llu kills during open\n",
              rounds, static_cast<unsigned long long>(next), static_cast<unsigned long long>(total_acked),
              static_cast<unsigned long long>(total_resubmitted), static_cast<unsigned long long>(total_dups),
              static_cast<unsigned long long>(kills_before_ready));
  return 0;
}
