// bulkhead/agent/agent.hpp: the hosting agent's loop as a composition a
// program embeds: read every source -> accountant -> journal -> a published
// snapshot for export (docs/agent.md).
//
// An agent owns its sources (each a backend it opens through a source_spec:
// libvirt URIs through read-only connections, bulkhead/agent/libvirt.hpp;
// cgroup roots and offload cards, bulkhead/agent/sources.hpp), the journal in
// options.journal_dir and the accountant made from it.
//
// One round (tick(), or each period of run()):
//  1. every source is read (backend::read_all()); a source that is not
//     connected is connected first when its back-off allows (below);
//  2. each reading is ingested (accounting::accountant::ingest);
//  3. the round waits until everything it appended is durable
//     (journal::flush: written and fdatasync'ed);
//  4. a checkpoint is written when the policy says so;
//  5. a new snapshot is published: the readings of this round and the
//     journal's accounted totals after it.
//
// Durable when: once tick() returns, or a snapshot of the round is
// published, every delta and gap the round appended is durable, unless the
// round reports a journal error (round_report::journal_error). Totals in a
// snapshot are durable totals: after a journal failure they come from the
// reopened journal. Nothing the agent publishes was never made durable.
//
// Sources: a source whose connection or whole read fails is "down": its
// backend is dropped, every instance it had running in its last good reading
// gets a failed read (accountant::read_failed, a gap journaled when the
// instance is next read), and it is connected again at a later round. A
// reading with host_reading::source_error (read part-way) is ingested, the
// running instances it lacks get failed reads, and the source is reconnected
// at the next round. Reconnection back-off: the first retry is due
// reconnect_min after the failed attempt, each later one twice as long after
// the previous, never more than options.interval; a retry is made at the
// first round at or after it is due (run() measures on its fixed schedule).
// So with run() every round retries a down source, and a source that answers
// again is read at the first round after it answers; the back-off spaces out
// the retries of a caller whose tick() comes faster than options.interval.
// Reconnects and failed reads are counted in source_status.
//
// Journal failure (a failed write or fdatasync: ENOSPC, EIO): the round's
// records not yet durable are not acknowledged; the agent drops the
// accountant and the journal, reopens the journal (recovering what is
// durable) and makes a new accountant from it, whose meter resumes from the
// durable records: the next good reading covers everything since, so nothing
// is lost. A reopen that fails is retried at every round; meanwhile sources
// are still read and published, nothing is ingested, and the snapshot's
// totals stay those of the last good round (journal_up false).
//
// Checkpoints (checkpoint_policy): after a round that brought the records
// appended since the last checkpoint to `records`, or `interval` after the
// last checkpoint, and at stop(). A checkpoint retires every segment it
// covers, so the directory holds one checkpoint plus the segments written
// since it: at most (policy.records + one round's records) x 8,208 bytes of
// records (the largest record) plus one segment_bytes (the segment being
// filled) and, with the time policy, what `interval` of rounds appends.
//
// Thread-safety: current() may be called from any thread at any time and
// never waits for a round (the snapshot is swapped under a short mutex); a
// scrape that renders it never calls a source. tick(), run() and stop() may
// be called from any thread, but tick() fails with errc::conflict while
// run()'s thread is running. options.on_round runs on the thread doing the
// round. None of them may be called from on_round or from a signal handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/rollup.hpp"
#include "bulkhead/api.hpp"
#include "bulkhead/backend/backend.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::agent {

// How the agent opens one source, at open() and again after it failed.
struct source_spec {
  std::string kind;  // "libvirt", "cgroup", "offload"
  std::string name;  // what the operator named: the URI, the cgroup parent, the file
  std::function<result<std::unique_ptr<backend>>()> connect;
  // The source of every series the agent journals for it (series_key::source,
  // before accountant_options::source_suffix): stable across reconnects and
  // restarts, unique among the agent's sources, a valid label of at most 255
  // bytes with the suffix. The helpers set it (a libvirt URI as given;
  // "cgroup:<parent>", "offload:<file>"). Empty: the backend's source(),
  // which for cgroups names every hierarchy and may be too long.
  std::string key;
};

struct checkpoint_policy {
  std::uint64_t records = 1'000'000;  // records appended since the last checkpoint (0: no count limit)
  seconds interval{600};              // time since the last checkpoint (0: no time limit)
};

struct options {
  std::string journal_dir;  // must exist; not writable by others (see open())
  accounting::journal_options journal{};
  accounting::accountant_options accounting{};
  std::vector<source_spec> sources;
  milliseconds interval{1000};      // run()'s period; also the back-off's ceiling
  milliseconds reconnect_min{100};  // the first reconnection back-off
  checkpoint_policy checkpoint{};
  // Called after every round, on the thread that ran it (for logging; it
  // must not call the agent, and it delays the next round while it runs).
  std::function<void(const struct round_report&)> on_round{};
};

// One source as the last round left it.
struct source_status {
  std::string kind, name;
  std::string source;  // the backend's source() once connected ("" before)
  bool connected = false;
  bool up = false;  // the last round read it, whole or in part
  std::optional<error> last_error;  // why the last round could not read it (or read only part); unset when up and whole
  std::optional<host_capacity> capacity;  // read once per connection; unset when the backend cannot say
  // The last round's reading (empty when it failed); each instance_info::source
  // is the spec's key when it has one: the source of its journaled series.
  std::vector<instance_reading> instances;
  std::vector<instance_failure> failures;
  std::uint64_t connects = 0;      // successful connections, the first included
  std::uint64_t failed_rounds = 0;  // rounds in which it was down or read in part
};

struct round_stats {
  std::uint64_t rounds = 0;         // rounds completed
  std::uint64_t missed = 0;         // run(): periods skipped because a round overran its period
  nanoseconds last_duration{0};     // of the last round
  nanoseconds max_duration{0};      // of any round since open()
  std::uint64_t accounted = 0;      // deltas journaled since open() (accountant ingest_report sums)
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;
  std::uint64_t failed_reads = 0;   // instances whose read failed (reported or inferred)
  std::uint64_t gaps = 0;
  std::uint64_t ingest_errors = 0;  // readings whose ingest stopped on an error
  std::uint64_t journal_failures = 0;
  std::uint64_t journal_reopens = 0;  // successful reopens after a failure
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoint_failures = 0;
};

// What one round did.
struct round_report {
  std::uint64_t round = 0;  // 1 for the first
  mono_time started{};
  nanoseconds duration{0};
  std::uint64_t sources_up = 0, sources_down = 0;
  std::vector<std::string> connected;     // sources (re)connected this round, by name
  std::vector<std::pair<std::string, error>> lost;  // sources that went down this round, and why
  std::vector<std::pair<std::string, error>> ingest_errors;
  accounting::ingest_report ingested;  // summed over sources (`last` unset)
  bool durable = false;  // everything appended this round is durable
  std::optional<error> journal_error;  // the journal failed, or could not be reopened, this round
  bool journal_reopened = false;
  bool checkpointed = false;
  std::optional<error> checkpoint_error;
};

// Everything a scrape or a status page needs, as of the end of one round.
// Immutable once published.
struct snapshot {
  std::uint64_t round = 0;  // 0: published by open(), before any round
  wall_time at{};           // when the round ended
  std::vector<source_status> sources;  // in options.sources order
  // The journal's accounted totals (durable), sorted by uuid / tenant.
  std::vector<accounting::instance_totals> instances;
  std::vector<accounting::tenant_totals> tenants;
  bool journal_up = false;
  std::optional<error> journal_error;
  std::uint64_t durable_seq = 0;
  accounting::journal_stats journal;  // of the journal open now
  round_stats stats;
  std::optional<wall_time> last_checkpoint;
};

class BULKHEAD_API agent {
 public:
  // Opens the journal (recovering it) and the accountant, and connects every
  // source once. Errors:
  //  - invalid_argument: no journal_dir, an interval or reconnect_min that is
  //    not positive, a source_spec without connect, two sources with the same
  //    key, a key that is not a valid label with the suffix, journal options
  //    refused;
  //  - not_found / permission_denied: journal_dir is missing, not a
  //    directory, or writable by users other than its owner and group
  //    (world-writable: anyone could replace the journal's files);
  //  - conflict: another writer holds the journal (the message names the
  //    directory and the holder's pid);
  //  - corrupt, io_error, no_space: the journal's, from journal::open;
  //  - a source's error when its first connect fails for a reason retrying
  //    cannot mend (invalid_argument, parse_error, unsafe_path, unsupported,
  //    not_found, permission_denied). connection_failed, connection_lost,
  //    timeout, io_error and vanished are not errors here: that source starts
  //    down and is retried.
  [[nodiscard]] static result<std::unique_ptr<agent>> open(options o);

  // Stops run()'s thread if it runs, then flushes; the journal is closed.
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  // One round now, on the calling thread. Errors: conflict while run() runs.
  // Everything else that went wrong is in the report.
  [[nodiscard]] result<round_report> tick();

  // Starts a thread that runs a round every options.interval (the first at
  // once), on a fixed schedule: a round that overruns its period skips the
  // periods it overran (round_stats::missed), never bunching rounds up.
  // Errors: conflict when it runs already.
  [[nodiscard]] result<void> run();

  // Ends run()'s thread after the round in progress (a round is never cut
  // short), then makes everything durable and writes a checkpoint. Without
  // run() it only flushes and checkpoints. Errors: the journal's (the agent
  // is stopped anyway; what was acknowledged stays durable).
  [[nodiscard]] result<void> stop();

  // Retry every down source at the next round, whatever its back-off.
  void reconnect_now() noexcept;

  // The last published snapshot; never null.
  [[nodiscard]] std::shared_ptr<const snapshot> current() const;

  [[nodiscard]] bool running() const noexcept;
  [[nodiscard]] const std::string& journal_dir() const noexcept;

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit agent(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

// The reconnection back-off of one source (pure; exposed for tests): the
// delay before retry `n` (1 for the first retry after a failure).
[[nodiscard]] constexpr milliseconds reconnect_delay(std::uint64_t n, milliseconds min, milliseconds max) noexcept {
  if (min >= max) return max;
  milliseconds d = min;
  for (std::uint64_t i = 1; i < n && d < max; ++i) d *= 2;
  return d < max ? d : max;
}

}  // namespace bulkhead::agent
