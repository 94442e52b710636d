// Power loss (suite `crash`): what is left of a journal when the machine
// loses power, as opposed to kill -9 (crash_journal_kill.cpp), where the page
// cache keeps every byte written.
//
// Writer processes run under the LD_PRELOAD shim sync_shim.so
// (BULKHEAD_SYNC_SHIM names it), which records what every fsync/fdatasync
// made durable: a file's bytes as they were when the sync started, a
// directory's names likewise. After the writers are dead (killed with SIGKILL
// at a random moment, by the shim between a write and its fdatasync, or
// exited) the harness rebuilds the directory as a power cut could leave it:
//  - names: each directory as of its last fsync, or as it is now (metadata
//    already committed by the file system's own journal);
//  - each file: its synced bytes, then for the bytes written after its last
//    sync one of the shapes ext4 and xfs leave: nothing (the size of the last
//    sync), zeros up to the size written (size updated, data not written),
//    the first pages written and then zeros or nothing (writeback in order,
//    cut at a 4 KiB page), or everything (writeback finished).
// Then it opens the rebuilt journal once, writable, as a restarting agent
// would, and checks for every series: every acknowledged delta is there,
// nothing was counted twice (the total is the sum of exactly the first N
// deltas), nothing unsubmitted; then that resubmitting every delta counts
// each exactly once.
//
//   crash_power_loss repro            the failures of issue 12 (deterministic)
//   crash_power_loss rounds N [SEED]  N random rounds on one journal
// (internal: `writer ...` and `syncall DIR` are the child processes)
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {

// --- the delta sequence (as in crash_journal_kill) -------------------------------
// Delta n of the global sequence belongs to series n % S and is that series'
// k-th delta, k = n / S; it covers second k+1 .. k+2 of the monotonic clock.
struct sequence {
  int series = 8;
  [[nodiscard]] series_key key(int s) const {
    static const char* names[] = {"cpu_time_ns", "disk/vda/read_bytes", "disk/vda/write_bytes",
                                  "net/52:54:00:00:00:01/tx_bytes"};
    std::array<std::uint8_t, 16> b{};
    b[0] = 0xee;
    b[15] = static_cast<std::uint8_t>(s / 4);
    return series_key{"power-loss@boot", uuid{b}, incarnation{1}, names[s % 4], 64, series_kind::usage};
  }
  static std::uint64_t amount(int s, std::uint64_t k) { return static_cast<std::uint64_t>(s + 1) * 1000 + k % 97; }
  [[nodiscard]] int series_of(std::uint64_t n) const { return static_cast<int>(n % static_cast<std::uint64_t>(series)); }
  [[nodiscard]] std::uint64_t k_of(std::uint64_t n) const { return n / static_cast<std::uint64_t>(series); }
  // How many deltas of series s are among global indices [0, n).
  [[nodiscard]] std::uint64_t count_below(int s, std::uint64_t n) const {
    const auto S = static_cast<std::uint64_t>(series);
    return n / S + (static_cast<std::uint64_t>(s) < n % S ? 1 : 0);
  }
  std::vector<std::vector<std::uint64_t>> pre = std::vector<std::vector<std::uint64_t>>(64, {0});
  // Sum of the first k amounts of series s.
  std::uint64_t prefix(int s, std::uint64_t k) {
    auto& v = pre[static_cast<std::size_t>(s)];
    while (v.size() <= k) v.push_back(v.back() + amount(s, v.size() - 1));
    return v[k];
  }
  delta nth(std::uint64_t n) {
    const int s = series_of(n);
    const auto k = k_of(n);
    const auto a = amount(s, k);
    const auto start = mono_time{} + std::chrono::seconds(1 + static_cast<std::int64_t>(k));
    const auto wall = wall_time{} + std::chrono::seconds(1'700'000'000 + static_cast<std::int64_t>(k + 1));
    return delta{start, start + std::chrono::seconds(1), wall, a, prefix(s, k) + a, 0};
  }
};

// The smallest segments the journal allows, so that rotation is frequent.
journal_options options() { return {.batch_records = 64, .max_delay = std::chrono::milliseconds(1), .segment_bytes = 4096}; }

// --- the writer (a child process under the shim) ------------------------------------

void send(int fd, char tag, std::uint64_t n) {
  char m[9];
  m[0] = tag;
  std::memcpy(m + 1, &n, 8);
  if (::write(fd, m, sizeof m) != static_cast<ssize_t>(sizeof m)) std::_Exit(3);
}

[[noreturn]] void fail_child(const std::string& what) {
  std::fprintf(stderr, "writer %ld: %s\n", static_cast<long>(::getpid()), what.c_str());
  std::_Exit(2);
}

// writer DIR SERIES FROM UPTO SEED STYLE: appends deltas FROM..UPTO-1 (those
// already in the journal are duplicates), reporting on fd 3: 'R' once open,
// 'S' n before submitting through n, 'A' n once everything through n is
// acknowledged. STYLE one: each delta its own batch (append, wait); batches:
// random batches of 1..300, a checkpoint now and then. Exits 0 at UPTO.
int writer_main(int argc, char** argv) {
  if (argc != 8) fail_child("usage: writer DIR SERIES FROM UPTO SEED STYLE");
  const std::string dir = argv[2];
  sequence seq;
  seq.series = std::atoi(argv[3]);
  const std::uint64_t from = std::strtoull(argv[4], nullptr, 10), upto = std::strtoull(argv[5], nullptr, 10);
  std::mt19937_64 rng(std::strtoull(argv[6], nullptr, 10));
  const bool one = std::strcmp(argv[7], "one") == 0;
  const int out = 3;
  {
    auto j = journal::open(dir, options());
    if (!j) fail_child("open: " + j.error().describe());
    std::vector<std::uint32_t> ids;
    for (int s = 0; s < seq.series; ++s) {
      auto id = (*j)->define(seq.key(s));
      if (!id) fail_child("define: " + id.error().describe());
      ids.push_back(*id);
    }
    send(out, 'R', from);
    std::uint64_t n = from;
    while (n < upto) {
      const std::uint64_t batch = std::min<std::uint64_t>(one ? 1 : 1 + rng() % 300, upto - n);
      send(out, 'S', n + batch - 1);
      ticket last{};
      for (std::uint64_t i = 0; i < batch; ++i, ++n) {
        auto r = (*j)->append(ids[static_cast<std::size_t>(seq.series_of(n))], seq.nth(n));
        if (!r) fail_child("append " + std::to_string(n) + ": " + r.error().describe());
        last = r->t;
      }
      if (auto w = (*j)->wait(last); !w) fail_child("wait: " + w.error().describe());
      send(out, 'A', n - 1);
      if (!one && rng() % 16 == 0)
        if (auto c = (*j)->checkpoint(); !c) fail_child("checkpoint: " + c.error().describe());
    }
  }
  return 0;
}

// syncall DIR: fsyncs every file and directory under DIR (run under the shim:
// the durable starting point of a round).
int syncall_main(const std::string& dir) {
  std::vector<fs::path> all{dir};
  for (const auto& e : fs::recursive_directory_iterator(dir)) all.push_back(e.path());
  for (const auto& p : all) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) fail_child("syncall " + p.string() + ": " + std::strerror(errno));
    ::close(fd);
  }
  return 0;
}

// --- running children under the shim -------------------------------------------------

std::string g_self, g_shim;

// LD_PRELOAD for a child: the shim, after the sanitizer runtime this program
// was linked with (ASan must come first in the list).
std::string preload() {
  std::string first;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const auto p = line.find('/');
    if (p == std::string::npos) continue;
    const auto path = line.substr(p);
    if (path.find("/libasan.so") != std::string::npos) {
      first = path;
      break;
    }
  }
  return first.empty() ? g_shim : first + ":" + g_shim;
}

struct child {
  pid_t pid = -1;
  int fd = -1;
};

struct child_env {
  std::string log;                  // BH_SYNC_LOG
  unsigned long kill_at = 0;        // BH_SYNC_KILL_AT
  unsigned long long kill_size = 0;  // BH_SYNC_KILL_SIZE
};

child spawn(const std::vector<std::string>& args, const child_env& e) {
  int fds[2];
  if (::pipe(fds) != 0) std::abort();
  const std::string pre = preload();
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(fds[0]);
    if (fds[1] != 3) {
      ::dup2(fds[1], 3);
      ::close(fds[1]);
    }
    ::setenv("LD_PRELOAD", pre.c_str(), 1);
    ::setenv("BH_SYNC_LOG", e.log.c_str(), 1);
    if (e.kill_at) ::setenv("BH_SYNC_KILL_AT", std::to_string(e.kill_at).c_str(), 1);
    else ::unsetenv("BH_SYNC_KILL_AT");
    if (e.kill_size) ::setenv("BH_SYNC_KILL_SIZE", std::to_string(e.kill_size).c_str(), 1);
    else ::unsetenv("BH_SYNC_KILL_SIZE");
    if (!pre.starts_with(g_shim)) {
      // The shim comes second; ASan's own link-order check would refuse that
      // even though its runtime is first.
      std::string a = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
      ::setenv("ASAN_OPTIONS", (a + (a.empty() ? "" : ":") + "verify_asan_link_order=0").c_str(), 1);
    }
    std::vector<char*> argv;
    argv.push_back(g_self.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(g_self.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

struct outcome {
  bool ready = false;
  std::optional<std::uint64_t> submitted, acked;  // highest n reported
  int status = 0;
  [[nodiscard]] bool killed() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  [[nodiscard]] bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  [[nodiscard]] std::string how() const {
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
};

// Waits for the child; kills it `after` once it is ready (or at once when
// `early`), unless it ends first. nullopt: never kill (it must end itself).
outcome finish(child c, std::optional<std::chrono::microseconds> after, bool early = false) {
  outcome o;
  const auto read_one = [&](char& tag, std::uint64_t& n) {
    char m[9];
    const auto r = ::read(c.fd, m, sizeof m);
    if (r != static_cast<ssize_t>(sizeof m)) return false;
    tag = m[0];
    std::memcpy(&n, m + 1, 8);
    return true;
  };
  const auto note = [&](char tag, std::uint64_t n) {
    if (tag == 'R') o.ready = true;
    if (tag == 'S') o.submitted = std::max(o.submitted.value_or(0), n);
    if (tag == 'A') o.acked = std::max(o.acked.value_or(0), n);
  };
  if (after) {
    if (!early) {
      char tag;
      std::uint64_t n;
      if (read_one(tag, n)) note(tag, n);
    }
    std::this_thread::sleep_for(*after);
    ::kill(c.pid, SIGKILL);
  }
  char tag;
  std::uint64_t n;
  while (read_one(tag, n)) note(tag, n);
  ::close(c.fd);
  while (::waitpid(c.pid, &o.status, 0) < 0 && errno == EINTR) {
  }
  return o;
}

// --- the durable image and the rebuild ---------------------------------------------------

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", p.c_str());
    std::abort();
  }
}

// A file's identity as the shim records it: inode and birth time.
std::string identity_of(const fs::path& p) {
  struct statx sx {};
  if (::statx(AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &sx) != 0) return {};
  long long bs = 0;
  unsigned bn = 0;
  if (sx.stx_mask & STATX_BTIME) {
    bs = sx.stx_btime.tv_sec;
    bn = sx.stx_btime.tv_nsec;
  }
  return std::to_string(sx.stx_ino) + ":" + std::to_string(bs) + ":" + std::to_string(bn);
}

struct entry {
  char type;  // 'f', 'd', 'o'
  std::string id, name;
};

struct durable_log {
  fs::path dir;
  std::map<std::string, std::string> data;  // identity -> snapshot file (the last sync)
  std::map<std::string, std::string> list;  // identity -> listing file (the last sync)
  static durable_log load(const fs::path& dir) {
    durable_log l{dir, {}, {}};
    std::ifstream in(dir / "events");
    for (std::string line; std::getline(in, line);) {
      std::istringstream s(line);
      char kind;
      std::string ino, bs, bn, name;
      s >> kind >> ino >> bs >> bn >> name;
      (kind == 'F' ? l.data : l.list)[ino + ":" + bs + ":" + bn] = name;
    }
    return l;
  }
  [[nodiscard]] std::optional<std::vector<entry>> listing(const std::string& id) const {
    auto it = list.find(id);
    if (it == list.end()) return std::nullopt;
    std::vector<entry> v;
    std::ifstream in(dir / it->second);
    for (std::string line; std::getline(in, line);) {
      std::istringstream s(line);
      entry e;
      std::string ino, bs, bn;
      s >> e.type >> ino >> bs >> bn >> e.name;
      e.id = ino + ":" + bs + ":" + bn;
      v.push_back(e);
    }
    return v;
  }
  [[nodiscard]] std::string synced(const std::string& id) const {
    auto it = data.find(id);
    return it == data.end() ? std::string() : read_file(dir / it->second);
  }
};

// How unsynced bytes look after the power cut.
enum class shape { synced_only, zeros, pages, everything, torn_zeros, random };
constexpr std::size_t page = 4096;

struct rebuild_stats {
  std::uint64_t files = 0, unsynced_bytes = 0, kept_unsynced = 0, current_listings = 0, strict_listings = 0;
};

struct rebuilder {
  const durable_log& log;
  std::map<std::string, fs::path> now;  // identity -> path in the directory as the writers left it
  shape how;
  std::mt19937_64& rng;
  rebuild_stats st;

  std::string content(const std::string& id) {
    const std::string s = log.synced(id);
    auto it = now.find(id);
    const std::string c = it == now.end() ? s : read_file(it->second);
    ++st.files;
    if (c.size() <= s.size()) return c.size() < s.size() && how == shape::everything ? c : s;
    st.unsynced_bytes += c.size() - s.size();
    shape h = how;
    if (h == shape::random) h = static_cast<shape>(rng() % 4);
    switch (h) {
      case shape::synced_only: return s;
      case shape::zeros: return s + std::string(c.size() - s.size(), '\0');
      case shape::everything: st.kept_unsynced += c.size() - s.size(); return c;
      case shape::torn_zeros: {
        // Half of what was written after the sync, then zeros to the end of
        // its last page: part of a record followed only by zeros.
        const auto keep = (c.size() - s.size()) / 2;
        const auto end = (c.size() + page - 1) / page * page;
        st.kept_unsynced += keep;
        return s + c.substr(s.size(), keep) + std::string(end - s.size() - keep, '\0');
      }
      case shape::pages:
      default: {
        // Pages from the one holding the synced end were written in order up
        // to a cut; after it zeros (size already updated) or nothing.
        const std::size_t first = s.size() / page * page;
        const std::size_t npages = (c.size() - first + page - 1) / page;
        const std::size_t cut = std::min(c.size(), first + page * static_cast<std::size_t>(rng() % (npages + 1)));
        std::string r = s;
        if (cut > s.size()) {
          r += c.substr(s.size(), cut - s.size());
          st.kept_unsynced += cut - s.size();
        }
        if (rng() % 2 && c.size() > r.size()) r += std::string(c.size() - r.size(), '\0');
        return r;
      }
    }
  }

  std::vector<entry> current(const fs::path& p) {
    std::vector<entry> v;
    for (const auto& e : fs::directory_iterator(p))
      v.push_back({e.is_directory() ? 'd' : e.is_regular_file() ? 'f' : 'o', identity_of(e.path()),
                   e.path().filename().string()});
    return v;
  }

  void build(const std::string& id, const fs::path& dst) {
    fs::create_directory(dst);
    const auto strict = log.listing(id);
    auto it = now.find(id);
    const bool use_current = it != now.end() && (!strict || (how == shape::random && rng() % 2) || how == shape::everything);
    std::vector<entry> names;
    if (use_current) {
      names = current(it->second);
      ++st.current_listings;
    } else if (strict) {
      names = *strict;
      ++st.strict_listings;
    }
    for (const auto& e : names) {
      if (e.type == 'd') build(e.id, dst / e.name);
      else if (e.type == 'f') write_file(dst / e.name, content(e.id));
    }
  }
};

// Rebuilds `dst` from what `log` recorded as durable for the directory `src`.
rebuild_stats power_loss(const fs::path& src, const fs::path& logdir, const fs::path& dst, shape how,
                         std::mt19937_64& rng) {
  const auto log = durable_log::load(logdir);
  rebuilder b{log, {}, how, rng, {}};
  b.now[identity_of(src)] = src;
  for (const auto& e : fs::recursive_directory_iterator(src)) b.now[identity_of(e.path())] = e.path();
  b.build(identity_of(src), dst);
  return b.st;
}

// --- the checks -------------------------------------------------------------------------

struct verdict {
  bool ok = true;
  std::string what;
  void fail(std::string w) {
    if (ok) what = std::move(w);
    ok = false;
  }
};

// Per series: "series s ends at N deltas against A acknowledged".
std::string series_ends(const rollup& r, sequence& seq, std::uint64_t acked_end) {
  std::string s;
  for (int i = 0; i < seq.series; ++i) {
    auto id = r.find(seq.key(i));
    const auto have = id ? r.series()[*id].deltas : 0;
    const auto want = seq.count_below(i, acked_end);
    if (have != want || seq.series == 1) {
      s += (s.empty() ? "" : "; ") + std::string("series ") + std::to_string(i) + " ends at " + std::to_string(have) +
           " deltas against " + std::to_string(want) + " acknowledged";
    }
  }
  return s;
}

// Opens the journal after the power cut (once, writable) and checks it.
// [from, acked_end) must all be there; nothing at or past submitted_end.
// Then resubmits [from, submitted_end) and checks the totals are exact.
verdict check(const std::string& dir, sequence& seq, std::uint64_t acked_end, std::uint64_t submitted_end,
              recovery_report* report = nullptr, std::unique_ptr<journal>* keep = nullptr, std::uint64_t from = 0) {
  verdict v;
  auto j = journal::open(dir, options());
  if (!j) {
    std::string ends;
    if (auto ro = journal::open_read_only(dir)) ends = series_ends(ro->totals, seq, acked_end);
    v.fail("open after the power loss failed: " + j.error().describe() + (ends.empty() ? "" : "; read-only: " + ends));
    return v;
  }
  if (report) *report = (*j)->recovery();
  const auto snap = (*j)->snapshot();
  std::vector<std::uint32_t> ids(static_cast<std::size_t>(seq.series));
  for (int s = 0; s < seq.series; ++s) {
    auto id = snap.find(seq.key(s));
    const auto want_acked = seq.count_below(s, acked_end), want_max = seq.count_below(s, submitted_end);
    if (!id) {
      if (want_acked) v.fail("series " + std::to_string(s) + " lost; " + series_ends(snap, seq, acked_end));
      auto d = (*j)->define(seq.key(s));
      if (!d) {
        v.fail("define: " + d.error().describe());
        return v;
      }
      ids[static_cast<std::size_t>(s)] = *d;
      continue;
    }
    ids[static_cast<std::size_t>(s)] = *id;
    const auto& info = snap.series()[*id];
    if (info.deltas < want_acked)
      v.fail("acknowledged deltas lost: " + series_ends(snap, seq, acked_end));
    if (info.deltas > want_max)
      v.fail("series " + std::to_string(s) + ": " + std::to_string(info.deltas) + " deltas but only " +
             std::to_string(want_max) + " were submitted");
    if (info.total != seq.prefix(s, info.deltas))
      v.fail("series " + std::to_string(s) + ": the total is not the sum of its first " + std::to_string(info.deltas) +
             " deltas (counted twice or wrong)");
  }
  if (!v.ok) return v;
  std::uint64_t dups = 0;
  for (std::uint64_t n = from; n < submitted_end; ++n) {
    auto r = (*j)->append(ids[static_cast<std::size_t>(seq.series_of(n))], seq.nth(n));
    if (!r) {
      v.fail("resubmitting " + std::to_string(n) + ": " + r.error().describe());
      return v;
    }
    dups += r->duplicate;
  }
  if (auto f = (*j)->flush(); !f) {
    v.fail("flush: " + f.error().describe());
    return v;
  }
  const auto after = (*j)->snapshot();
  for (int s = 0; s < seq.series; ++s) {
    const auto& info = after.series()[ids[static_cast<std::size_t>(s)]];
    const auto want = seq.count_below(s, submitted_end);
    if (info.deltas != want || info.total != seq.prefix(s, want))
      v.fail("series " + std::to_string(s) + " after resubmission: " + std::to_string(info.deltas) +
             " deltas, want exactly " + std::to_string(want));
  }
  if ((*j)->stats().duplicates != dups) v.fail("duplicates miscounted");
  if (keep) *keep = std::move(*j);
  return v;
}

fs::path fresh(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p);
  return p;
}

// Records `dir` as durable in a fresh log (the start of a round).
bool baseline(const fs::path& dir, const fs::path& log) {
  fresh(log);
  auto o = finish(spawn({"syncall", dir.string()}, {log.string()}), std::nullopt);
  if (!o.exited_ok()) std::fprintf(stderr, "syncall %s\n", o.how().c_str());
  return o.exited_ok();
}

// --- repro: the failures of issue 12 -----------------------------------------------------

// One series, one delta per batch. The first writer is killed by the shim
// between the write of the batch that fills a segment and its fdatasync.
// Then, per scenario, a second writer resubmits from the start, or nothing
// runs; then the power is cut.
int repro() {
  struct scenario {
    const char* name;
    std::uint64_t more;  // the second writer goes this far past the first's last ack (0: no second writer)
    shape how;
  };
  const scenario all[] = {
      {"second writer resubmits the killed batch (a duplicate) and stops; unsynced bytes dropped", 1, shape::synced_only},
      {"second writer resubmits the killed batch (a duplicate) and stops; unsynced bytes read as zeros", 1, shape::zeros},
      {"second writer resubmits, then appends 73 fresh deltas in a new segment; unsynced bytes dropped", 74,
       shape::synced_only},
      {"second writer resubmits, then appends 73 fresh deltas in a new segment; unsynced bytes read as zeros", 74,
       shape::zeros},
      {"no second writer; the killed batch left half written, then zeros to the page's end", 0, shape::torn_zeros},
  };
  test::temp_dir t("bulkhead-power-loss");
  std::mt19937_64 rng(1);
  int failures = 0;
  int i = 0;
  for (const auto& sc : all) {
    ++i;
    sequence seq;
    seq.series = 1;
    const fs::path base = t.path() / ("scenario-" + std::to_string(i));
    const auto dir = fresh(base / "journal"), log = base / "log", after = base / "after";
    if (!baseline(dir, log)) return 1;
    auto w1 = finish(spawn({"writer", dir.string(), "1", "0", "100000", "1", "one"}, {log.string(), 0, 4096}),
                     std::nullopt);
    if (!w1.killed() || !w1.acked) {
      std::fprintf(stderr, "scenario %d: the first writer %s before the shim killed it\n", i, w1.how().c_str());
      return 1;
    }
    std::uint64_t acked_end = *w1.acked + 1, submitted_end = *w1.submitted + 1;
    if (sc.more) {
      const auto upto = *w1.acked + sc.more + 1;
      auto w2 = finish(spawn({"writer", dir.string(), "1", "0", std::to_string(upto), "2", "one"}, {log.string()}),
                       std::nullopt);
      if (!w2.exited_ok() || !w2.acked || *w2.acked + 1 != upto) {
        std::fprintf(stderr, "scenario %d: the second writer %s\n", i, w2.how().c_str());
        return 1;
      }
      acked_end = std::max(acked_end, *w2.acked + 1);
      submitted_end = std::max(submitted_end, *w2.submitted + 1);
    }
    power_loss(dir, log, after, sc.how, rng);
    recovery_report rep;
    const auto v = check(after.string(), seq, acked_end, submitted_end, &rep);
    std::string figures = "first writer acknowledged " + std::to_string(*w1.acked + 1) + " deltas, " +
                          std::to_string(acked_end) + " acknowledged in all";
    if (v.ok) {
      figures += "; reopened with " + std::to_string(rep.last_seq) + " records";
      if (rep.torn_segment) figures += ", torn tail of " + std::to_string(rep.torn_bytes) + " bytes cut";
    }
    std::printf("%s: scenario %d (%s): %s%s\n", v.ok ? "ok" : "FAIL", i, sc.name, figures.c_str(),
                v.ok ? "" : ("\n    " + v.what).c_str());
    failures += v.ok ? 0 : 1;
  }
  std::fflush(stdout);
  return failures ? 1 : 0;
}

// --- rounds -------------------------------------------------------------------------------

int rounds(long n, std::uint64_t seed) {
  std::printf("crash_power_loss: %ld rounds, seed %llu\n", n, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  test::temp_dir t("bulkhead-power-loss");
  sequence seq;
  fs::path dir = fresh(t.path() / "j0");
  std::uint64_t next = 0;  // every delta below this is in the journal, exactly once, durable
  struct {
    std::uint64_t acked = 0, second_writers = 0, shim_kills = 0, timer_kills = 0, exits = 0, torn = 0, files = 0,
                  unsynced = 0, kept = 0, strict = 0, current = 0;
  } fig;
  const auto failed = [&](long round, const std::string& what) {
    std::fprintf(stderr, "FAIL round %ld (seed %llu): %s\n", round, static_cast<unsigned long long>(seed), what.c_str());
    // The round's directories outlive the test for inspection.
    const auto keep = fs::temp_directory_path() / ("bulkhead-power-loss-failed-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::copy(t.path(), keep, fs::copy_options::recursive, ec);
    std::fprintf(stderr, "the journal before the power cut (j%ld), the shim's log (log) and the rebuilt journal "
                 "(j%ld) are in %s\n", round, round + 1, keep.c_str());
    return 1;
  };
  for (long round = 0; round < n; ++round) {
    const fs::path log = t.path() / "log";
    if (!baseline(dir, log)) return failed(round, "baseline");
    const std::uint64_t from = next;
    std::uint64_t acked_end = from, submitted_end = from;
    const int writers = rng() % 2 ? 2 : 1;
    fig.second_writers += writers - 1;
    for (int w = 0; w < writers; ++w) {
      // How this writer ends: the shim kills it at a random sync, a timer
      // kills it at a random moment (sometimes while it opens), or (the
      // second only) it reaches its end and exits.
      const auto how = rng() % (w ? 3 : 2);
      child_env e{log.string()};
      std::optional<std::chrono::microseconds> after;
      bool early = false;
      if (how == 0) e.kill_at = 1 + rng() % 60;
      if (how == 1) {
        early = rng() % 10 == 0;
        after = std::chrono::microseconds(rng() % (early ? 3000 : 25000));
      }
      // A writer that is not meant to be killed stops after a few thousand
      // deltas (a few hundred one per batch).
      const bool one = rng() % 4 == 0;
      const auto upto = from + (how == 2 ? rng() % (one ? 300 : 3000) : 1'000'000);
      auto o = finish(spawn({"writer", dir.string(), std::to_string(seq.series), std::to_string(from),
                             std::to_string(upto), std::to_string(rng()), one ? "one" : "batches"},
                            e),
                      after, early);
      if (o.killed()) ++(how == 0 ? fig.shim_kills : fig.timer_kills);
      else if (o.exited_ok()) ++fig.exits;
      else return failed(round, "writer " + std::to_string(w + 1) + " " + o.how());
      if (o.acked) acked_end = std::max(acked_end, *o.acked + 1);
      if (o.submitted) submitted_end = std::max(submitted_end, *o.submitted + 1);
    }
    fig.acked += acked_end - from;
    const fs::path after = t.path() / ("j" + std::to_string(round + 1));
    fs::remove_all(after);
    const auto st = power_loss(dir, log, after, shape::random, rng);
    fig.files += st.files;
    fig.unsynced += st.unsynced_bytes;
    fig.kept += st.kept_unsynced;
    fig.strict += st.strict_listings;
    fig.current += st.current_listings;
    recovery_report rep;
    std::unique_ptr<journal> j;
    const auto v = check(after.string(), seq, acked_end, submitted_end, &rep, &j, from);
    if (!v.ok) return failed(round, v.what);
    if (rep.torn_segment) ++fig.torn;
    if (round % 10 == 9)
      if (auto c = j->checkpoint(); !c) return failed(round, "checkpoint: " + c.error().describe());
    j.reset();
    fs::remove_all(dir);
    dir = after;
    next = submitted_end;
    if (n >= 1000 && (round + 1) % 1000 == 0) {
      std::printf("  %ld rounds done, %llu deltas accounted\n", round + 1, static_cast<unsigned long long>(next));
      std::fflush(stdout);
    }
  }
  std::printf("ok: %ld rounds (%llu with a second writer; writers killed by the shim before a sync %llu, by a timer "
              "%llu, exited %llu), %llu deltas accounted, %llu acknowledged before power cuts, none lost or doubled; "
              "%llu torn tails cut; files rebuilt %llu, unsynced bytes %llu of which kept %llu; directories as of "
              "their last fsync %llu, as left %llu\n",
              n, static_cast<unsigned long long>(fig.second_writers), static_cast<unsigned long long>(fig.shim_kills),
              static_cast<unsigned long long>(fig.timer_kills), static_cast<unsigned long long>(fig.exits),
              static_cast<unsigned long long>(next), static_cast<unsigned long long>(fig.acked),
              static_cast<unsigned long long>(fig.torn), static_cast<unsigned long long>(fig.files),
              static_cast<unsigned long long>(fig.unsynced), static_cast<unsigned long long>(fig.kept),
              static_cast<unsigned long long>(fig.strict), static_cast<unsigned long long>(fig.current));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "writer") return writer_main(argc, argv);
  if (mode == "syncall" && argc == 3) return syncall_main(argv[2]);
  char self[4096];
  const auto n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  g_self.assign(self, static_cast<std::size_t>(n));
  const char* shim = std::getenv("BULKHEAD_SYNC_SHIM");
  if (!shim || !*shim || !fs::exists(shim)) {
    std::printf("BULKHEAD_SYNC_SHIM does not name the sync shim (tests/crash/sync_shim.so, built by meson)\n");
    return 77;
  }
  g_shim = fs::absolute(shim).string();
  if (mode == "repro") return repro();
  if (mode == "rounds" && argc >= 3) {
    const long r = std::strtol(argv[2], nullptr, 10);
    const std::uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10)
                                        : static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return rounds(r, seed);
  }
  std::fprintf(stderr, "usage: crash_power_loss repro | rounds N [SEED]\n");
  return 2;
}
