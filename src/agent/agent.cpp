// The hosting agent's loop; contract in bulkhead/agent/agent.hpp.
#include "bulkhead/agent/agent.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::agent {

namespace {

// A first connect that fails for one of these is a source that is down, not
// a configuration to refuse: the agent starts and retries it.
bool retryable(errc c) noexcept {
  switch (c) {
    case errc::connection_failed:
    case errc::connection_lost:
    case errc::timeout:
    case errc::io_error:
    case errc::vanished: return true;
    default: return false;
  }
}

result<void> check_journal_dir(const std::string& dir) {
  if (dir.empty()) return fail(errc::invalid_argument, "agent options: journal_dir is empty");
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT)
      return fail(errc::not_found, "journal directory " + detail::quote_path(dir) +
                                       " does not exist (create it for the user the agent runs as, mode 0750)");
    if (e == EACCES)
      return fail(errc::permission_denied, "journal directory " + detail::quote_path(dir) +
                                               ": a folder on its path cannot be searched by this user");
    return fail(errc::io_error, "journal directory " + detail::quote_path(dir) + ": " + std::strerror(e));
  }
  if (!S_ISDIR(st.st_mode))
    return fail(errc::not_found, "journal directory " + detail::quote_path(dir) + " is not a directory");
  if (st.st_mode & S_IWOTH) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(errc::permission_denied, "journal directory " + detail::quote_path(dir) + " is writable by every user (mode " +
                                             mode + "): anyone could replace its files; chmod o-w it (0750 is usual)");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int e = errno;
    if (e == EROFS)
      return fail(errc::permission_denied, "journal directory " + detail::quote_path(dir) + " is on a read-only file system");
    return fail(errc::permission_denied, "journal directory " + detail::quote_path(dir) +
                                             " is not writable by this user (uid " + std::to_string(::geteuid()) +
                                             "): " + std::strerror(e));
  }
  return {};
}

// An error's text as a gap reason: what validate_label accepts (no control
// characters, valid UTF-8, at most max_reason_bytes).
std::string reason_text(std::string_view why) {
  std::string r;
  r.reserve(std::min(why.size(), accounting::max_reason_bytes));
  for (unsigned char c : why) r += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  if (r.size() > accounting::max_reason_bytes) {
    std::size_t n = accounting::max_reason_bytes;
    while (n > 0 && (static_cast<unsigned char>(r[n]) & 0xC0) == 0x80) --n;
    r.resize(n);
  }
  if (!detail::is_utf8(r)) r = "read failed (the error's text is not valid UTF-8)";
  if (r.empty()) r = "read failed";
  return r;
}

struct src_state {
  source_spec spec;
  std::unique_ptr<backend> be;
  source_status status;
  std::uint64_t retries = 0;   // consecutive failed connection attempts
  mono_time last_attempt{};    // of the last failed attempt
  bool attempt_due = true;
  // Running instances of the last reading: (the accountant's source, uuid).
  std::vector<std::pair<std::string, uuid>> known;
};

}  // namespace

struct agent::impl {
  options opt;
  std::shared_ptr<accounting::journal> j;  // shared with the accountant
  std::optional<accounting::accountant> acc;
  std::vector<src_state> sources;
  round_stats stats;
  std::optional<error> journal_error;
  mono_time last_cp_at = mono_clock::now();
  std::optional<wall_time> last_cp_wall;
  std::uint64_t appended_since_cp = 0;
  std::uint64_t appended_seen = 0;  // journal stats().appended at the last look (of the journal open now)
  std::vector<accounting::instance_totals> totals;
  std::vector<accounting::tenant_totals> tenant_totals;
  std::atomic<bool> reconnect_all{false};

  std::mutex round_mu;  // one round (or stop's flush) at a time

  mutable std::mutex snap_mu;  // guards `snap` only: held for a pointer copy
  std::shared_ptr<const snapshot> snap;

  std::mutex run_mu;
  std::condition_variable run_cv;
  bool stop_requested = false;
  std::thread thread;
  std::atomic<bool> running{false};

  void publish(std::shared_ptr<const snapshot> s) {
    std::lock_guard lk(snap_mu);
    snap = std::move(s);
  }

  // Totals from the journal open now (durable after a flush).
  void refresh_totals() {
    if (!j) return;
    j->with_totals([&](const accounting::rollup& r) {
      totals = r.by_instance();
      tenant_totals = r.by_tenant();
    });
  }

  void count_appended() {
    if (!j) return;
    const auto a = j->stats().appended;
    appended_since_cp += a - std::min(a, appended_seen);
    appended_seen = a;
  }

  // Drops a failed journal and opens it again; the accountant resumes from
  // what it holds (durable).
  result<void> reopen_journal() {
    acc.reset();
    j.reset();
    appended_seen = 0;
    auto nj = accounting::journal::open(opt.journal_dir, opt.journal);
    if (!nj) return fail(std::move(nj.error()).in("reopening the journal"));
    std::shared_ptr<accounting::journal> shared = std::move(*nj);
    auto na = accounting::accountant::make(shared, opt.accounting);
    if (!na) return fail(std::move(na.error()).in("resuming the accountant from the reopened journal"));
    j = std::move(shared);
    acc.emplace(std::move(*na));
    return {};
  }

  void connect(src_state& s, mono_time now, round_report& rep) {
    auto b = s.spec.connect();
    if (!b) {
      ++s.retries;
      s.last_attempt = now;
      s.status.last_error = std::move(b.error()).in("connecting " + s.spec.kind + " source " + detail::quote_path(s.spec.name));
      return;
    }
    s.be = std::move(*b);
    s.retries = 0;
    ++s.status.connects;
    s.status.connected = true;
    s.status.source = std::string(s.be->source());
    auto cap = s.be->capacity();
    if (cap) s.status.capacity = std::move(*cap);
    else s.status.capacity.reset();
    rep.connected.push_back(s.spec.name);
  }

  bool due(const src_state& s, mono_time now) const {
    if (s.attempt_due || s.retries == 0) return true;
    const auto d = reconnect_delay(s.retries, opt.reconnect_min, opt.interval);
    return now - s.last_attempt >= d;
  }

  // The source is down this round: every instance it had running gets a
  // failed read (a gap, journaled when the instance is read again).
  void failed_reads(const std::vector<std::pair<std::string, uuid>>& which, std::string_view why,
                    round_report& rep) {
    if (!acc || j->failure()) return;
    const auto now = mono_clock::now();
    const auto reason = reason_text(why);
    for (const auto& [source, id] : which) {
      if (auto r = acc->read_failed(source, id, now, reason); r) {
        ++rep.ingested.failures;
        ++stats.failed_reads;
      }
    }
  }

  void ingest(src_state& s, const host_reading& r, round_report& rep) {
    if (!acc || j->failure()) return;  // a failed journal is handled once, after the reads
    auto ing = acc->ingest(r);
    if (!ing) {
      if (j->failure()) return;
      rep.ingest_errors.emplace_back(s.spec.name, std::move(ing.error()));
      ++stats.ingest_errors;
      return;
    }
    auto& t = rep.ingested;
    t.instances += ing->instances;
    t.samples += ing->samples;
    t.accounted += ing->accounted;
    t.baselines += ing->baselines;
    t.rejected += ing->rejected;
    t.duplicates += ing->duplicates;
    t.failures += ing->failures;
    t.gaps += ing->gaps;
    t.closed += ing->closed;
    stats.failed_reads += ing->failures;
  }

  void lose(src_state& s, error why, mono_time now, round_report& rep) {
    rep.lost.emplace_back(s.spec.name, why);
    s.status.last_error = std::move(why);
    s.be.reset();
    s.status.connected = false;
    s.retries = 1;
    s.last_attempt = now;
    s.attempt_due = false;
  }

  void read_source(src_state& s, mono_time now, round_report& rep) {
    s.status.instances.clear();
    s.status.failures.clear();
    s.status.up = false;
    if (!s.be && due(s, now)) {
      s.attempt_due = false;
      connect(s, now, rep);
    }
    if (!s.be) {
      ++s.status.failed_rounds;
      ++rep.sources_down;
      failed_reads(s.known, s.status.last_error ? s.status.last_error->describe() : "source not connected", rep);
      return;
    }
    auto r = s.be->read_all();
    if (!r) {
      auto e = std::move(r.error()).in("reading " + s.spec.kind + " source " + detail::quote_path(s.spec.name));
      failed_reads(s.known, e.describe(), rep);
      lose(s, std::move(e), now, rep);
      ++s.status.failed_rounds;
      ++rep.sources_down;
      return;
    }
    if (!s.spec.key.empty()) {
      // The series' source is the spec's key, stable whatever the backend
      // calls itself.
      r->source = s.spec.key;
      for (auto& i : r->instances) i.info.source = s.spec.key;
    }
    ingest(s, *r, rep);
    std::vector<std::pair<std::string, uuid>> seen;
    for (const auto& i : r->instances)
      if (i.info.id.incarnation) seen.emplace_back(i.info.source.empty() ? r->source : i.info.source, i.info.id.uuid);
    std::sort(seen.begin(), seen.end());
    if (r->source_error) {
      // Read part-way: the running instances it did not reach failed.
      std::vector<std::pair<std::string, uuid>> missing;
      for (const auto& k : s.known)
        if (!std::binary_search(seen.begin(), seen.end(), k)) missing.push_back(k);
      auto e = error(*r->source_error).in("reading " + s.spec.kind + " source " + detail::quote_path(s.spec.name));
      failed_reads(missing, e.describe(), rep);
      for (auto& m : missing) seen.push_back(std::move(m));
      std::sort(seen.begin(), seen.end());
      lose(s, std::move(e), now, rep);
      ++s.status.failed_rounds;
    } else {
      s.status.last_error.reset();
    }
    s.known = std::move(seen);
    s.status.up = true;
    ++rep.sources_up;
    s.status.instances = std::move(r->instances);
    s.status.failures = std::move(r->failures);
  }

  round_report round(mono_time scheduled) {
    round_report rep;
    rep.started = mono_clock::now();
    rep.round = stats.rounds + 1;
    if (reconnect_all.exchange(false))
      for (auto& s : sources) s.attempt_due = true;
    if (!j) {
      if (auto r = reopen_journal(); r) {
        rep.journal_reopened = true;
        ++stats.journal_reopens;
        journal_error.reset();
      } else {
        rep.journal_error = r.error();
        journal_error = std::move(r.error());
      }
    }
    for (auto& s : sources) read_source(s, scheduled, rep);
    // Durable before anything is published.
    if (j) {
      auto f = j->flush();
      if (f && !j->failure()) {
        rep.durable = true;
        journal_error.reset();
        count_appended();
      } else {
        ++stats.journal_failures;
        error e = f ? *j->failure() : std::move(f.error());
        // What was not durable is not acknowledged; the reopened journal
        // says what is, and the accountant resumes from it.
        if (auto r = reopen_journal(); r) {
          rep.journal_reopened = true;
          ++stats.journal_reopens;
          journal_error = e;
        } else {
          journal_error = std::move(r.error());
        }
        rep.journal_error = std::move(e);
      }
    } else if (!rep.journal_error) {
      rep.journal_error = journal_error;
    }
    if (rep.durable) {
      const auto now = mono_clock::now();
      const bool by_count = opt.checkpoint.records && appended_since_cp >= opt.checkpoint.records;
      const bool by_time = opt.checkpoint.interval.count() > 0 && now - last_cp_at >= opt.checkpoint.interval;
      if (by_count || by_time) checkpoint(rep);
    }
    refresh_totals();
    stats.accounted += rep.ingested.accounted;
    stats.duplicates += rep.ingested.duplicates;
    stats.rejected += rep.ingested.rejected;
    stats.gaps += rep.ingested.gaps;
    ++stats.rounds;
    rep.duration = mono_clock::now() - rep.started;
    stats.last_duration = rep.duration;
    stats.max_duration = std::max(stats.max_duration, rep.duration);
    publish(make_snapshot(true));
    return rep;
  }

  void checkpoint(round_report& rep) {
    auto c = j->checkpoint();
    last_cp_at = mono_clock::now();
    if (c) {
      rep.checkpointed = true;
      ++stats.checkpoints;
      appended_since_cp = 0;
      count_appended();
      appended_since_cp = 0;
      last_cp_wall = wall_clock_now();
    } else {
      ++stats.checkpoint_failures;
      rep.checkpoint_error = std::move(c.error());
    }
  }

  // The last snapshot with the journal's fields and the totals brought up
  // to date (stop(): no new readings).
  void republish() {
    std::shared_ptr<const snapshot> old;
    {
      std::lock_guard lk(snap_mu);
      old = snap;
    }
    auto s = std::make_shared<snapshot>(*old);
    s->instances = totals;
    s->tenants = tenant_totals;
    s->journal_up = j != nullptr && !journal_error;
    s->journal_error = journal_error;
    if (j) {
      s->durable_seq = j->durable_seq();
      s->journal = j->stats();
    }
    s->stats = stats;
    s->last_checkpoint = last_cp_wall;
    publish(std::move(s));
  }

  static wall_time wall_clock_now() {
    return std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  }

  std::shared_ptr<const snapshot> make_snapshot(bool move_readings) {
    auto s = std::make_shared<snapshot>();
    s->round = stats.rounds;
    s->at = wall_clock_now();
    s->sources.reserve(sources.size());
    for (auto& src : sources) {
      if (move_readings) {
        s->sources.push_back(source_status{});
        auto& d = s->sources.back();
        d.kind = src.status.kind;
        d.name = src.status.name;
        d.source = src.status.source;
        d.connected = src.status.connected;
        d.up = src.status.up;
        d.last_error = src.status.last_error;
        d.capacity = src.status.capacity;
        d.instances = std::move(src.status.instances);
        d.failures = std::move(src.status.failures);
        d.connects = src.status.connects;
        d.failed_rounds = src.status.failed_rounds;
        src.status.instances.clear();
        src.status.failures.clear();
      } else {
        s->sources.push_back(src.status);
      }
    }
    s->instances = totals;
    s->tenants = tenant_totals;
    s->journal_up = j != nullptr && !journal_error;
    s->journal_error = journal_error;
    if (j) {
      s->durable_seq = j->durable_seq();
      s->journal = j->stats();
    }
    s->stats = stats;
    s->last_checkpoint = last_cp_wall;
    return s;
  }

  void loop() {
    auto next = mono_clock::now();
    for (;;) {
      {
        std::unique_lock lk(run_mu);
        run_cv.wait_until(lk, next, [&] { return stop_requested; });
        if (stop_requested) return;
      }
      round_report rep;
      {
        std::lock_guard rl(round_mu);
        rep = round(next);
        if (opt.on_round) opt.on_round(rep);
      }
      next += opt.interval;
      const auto now = mono_clock::now();
      if (now >= next) {
        const auto k = (now - next) / opt.interval + 1;
        std::lock_guard rl(round_mu);
        stats.missed += static_cast<std::uint64_t>(k);
        next += k * opt.interval;
      }
    }
  }
};

agent::agent(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}

agent::~agent() {
  if (running()) {
    {
      std::lock_guard lk(p_->run_mu);
      p_->stop_requested = true;
    }
    p_->run_cv.notify_all();
    if (p_->thread.joinable()) p_->thread.join();
  }
  std::lock_guard rl(p_->round_mu);
  if (p_->j) (void)p_->j->flush();
  p_->acc.reset();
  p_->j.reset();
}

result<std::unique_ptr<agent>> agent::open(options o) {
  if (o.interval.count() <= 0) return fail(errc::invalid_argument, "agent options: interval must be positive");
  if (o.reconnect_min.count() <= 0) return fail(errc::invalid_argument, "agent options: reconnect_min must be positive");
  for (std::size_t i = 0; i < o.sources.size(); ++i)
    if (!o.sources[i].connect)
      return fail(errc::invalid_argument, "agent options: source " + std::to_string(i) + " (" +
                                              detail::quote_path(o.sources[i].name) + ") has no connect function");
  {
    std::set<std::string> keys;
    for (const auto& spec : o.sources) {
      if (spec.key.empty()) continue;
      if (!keys.insert(spec.key).second)
        return fail(errc::invalid_argument, "agent options: two sources have the key " + detail::quote_path(spec.key));
      if (auto v = accounting::validate_label(spec.key + o.accounting.source_suffix,
                                              "agent source " + detail::quote_path(spec.name) + ": series source");
          !v)
        return fail(std::move(v.error()));
    }
  }
  if (auto c = check_journal_dir(o.journal_dir); !c) return fail(std::move(c.error()));
  auto p = std::make_unique<impl>();
  p->opt = std::move(o);
  auto j = accounting::journal::open(p->opt.journal_dir, p->opt.journal);
  if (!j) return fail(std::move(j.error()));
  std::shared_ptr<accounting::journal> shared = std::move(*j);
  auto a = accounting::accountant::make(shared, p->opt.accounting);
  if (!a) return fail(std::move(a.error()).in("resuming the accountant from the journal"));
  p->j = std::move(shared);
  p->acc.emplace(std::move(*a));
  p->appended_seen = p->j->stats().appended;
  const auto now = mono_clock::now();
  round_report ignored;
  for (auto& spec : p->opt.sources) {
    src_state s;
    s.spec = spec;
    s.status.kind = spec.kind;
    s.status.name = spec.name;
    p->connect(s, now, ignored);
    if (!s.be && s.status.last_error && !retryable(s.status.last_error->code()))
      return fail(std::move(*s.status.last_error));
    s.attempt_due = true;  // the first round tries again at once
    p->sources.push_back(std::move(s));
  }
  p->refresh_totals();
  p->publish(p->make_snapshot(false));
  return std::unique_ptr<agent>(new agent(std::move(p)));
}

result<round_report> agent::tick() {
  if (running()) return fail(errc::conflict, "agent: tick() while run() is running");
  std::lock_guard rl(p_->round_mu);
  if (running()) return fail(errc::conflict, "agent: tick() while run() is running");
  auto rep = p_->round(mono_clock::now());
  if (p_->opt.on_round) p_->opt.on_round(rep);
  return rep;
}

result<void> agent::run() {
  std::lock_guard lk(p_->run_mu);
  if (p_->running.load()) return fail(errc::conflict, "agent: run() is running already");
  if (p_->thread.joinable()) p_->thread.join();
  p_->stop_requested = false;
  p_->running = true;
  auto* raw = p_.get();
  p_->thread = std::thread([raw] { raw->loop(); });
  return {};
}

result<void> agent::stop() {
  {
    std::lock_guard lk(p_->run_mu);
    p_->stop_requested = true;
  }
  p_->run_cv.notify_all();
  if (p_->thread.joinable() && p_->thread.get_id() != std::this_thread::get_id()) p_->thread.join();
  p_->running = false;
  std::lock_guard rl(p_->round_mu);
  if (!p_->j) {
    return fail(p_->journal_error ? error(*p_->journal_error).in("stopping the agent")
                                  : error(errc::io_error, "stopping the agent: the journal is not open"));
  }
  if (auto f = p_->j->flush(); !f) return fail(std::move(f.error()).in("stopping the agent: flush"));
  round_report rep;
  p_->checkpoint(rep);
  p_->refresh_totals();
  p_->republish();
  if (rep.checkpoint_error) return fail(std::move(*rep.checkpoint_error).in("stopping the agent: checkpoint"));
  return {};
}

void agent::reconnect_now() noexcept { p_->reconnect_all = true; }

std::shared_ptr<const snapshot> agent::current() const {
  std::lock_guard lk(p_->snap_mu);
  return p_->snap;
}

bool agent::running() const noexcept { return p_->running.load(); }

const std::string& agent::journal_dir() const noexcept { return p_->opt.journal_dir; }

}  // namespace bulkhead::agent
