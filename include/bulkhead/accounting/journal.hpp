// bulkhead/accounting/journal.hpp: every accepted delta made durable before
// it is acknowledged.
//
// On disk (docs/journal-format.md): append-only segment files in a directory
// the caller gives (it must exist), each record with its length, sequence
// number and CRC-32C; checkpoints of the totals let old segments be retired.
//
// Writing:
//  - define() a series once (its identity and labels become a record), then
//    append() deltas to it and append_gap() gaps. Each returns a ticket;
//    wait(ticket) returns once the record's batch is durable (written and
//    fdatasync'ed). Nothing is acknowledged before that.
//  - Group commit: a background thread writes a batch when it holds
//    `batch_records` records or its oldest record has waited `max_delay`, with
//    one fdatasync per batch. flush() commits everything appended so far.
//  - Idempotent: a delta whose interval ends at or before what its series
//    already holds is a resubmission (a retry after a crash): counted in
//    stats().duplicates, not accounted, not written. The index behind this is
//    each series' accounted end, rebuilt on every open.
//  - A failed write or fdatasync (ENOSPC, EIO) fails the journal: every
//    record not yet durable fails its wait() with the error, later calls
//    return it, and the caller reopens (which recovers what is durable).
//    Records already acknowledged are never affected.
//
// Opening (recovery): the newest checkpoint is loaded, then every later
// record is verified and replayed.
//  - a torn tail (the last segment ends inside a record, or in zero bytes, or
//    in the first part of a record followed only by zeros: what a power cut
//    leaves) is cut at the last whole record;
//  - a writing open then makes everything it kept durable (fdatasync of the
//    checkpoint and of every segment kept, fsync of the directory) before it
//    returns: bytes a crashed writer wrote but never synced are durable
//    before durable_seq() counts them and before a wait() on them (or on a
//    resubmitted duplicate of one) succeeds;
//  - any other bad record (CRC mismatch, bad header, bad content, a sequence
//    break) stops recovery: open() fails with errc::corrupt naming the segment
//    and offset, after moving the bytes from that offset on (and any later
//    segments) into quarantine/ and truncating there. A second open() then
//    starts from the records before it; quarantine/ is listed in the report.
//  - open_read_only() never modifies the directory (no lock, no truncation,
//    no quarantine): it returns the totals up to the first bad record and
//    says where it stopped in report.corruption.
//
// Files: every file the journal creates is mode 0640 and quarantine/ 0750
// (owner and group may read them; the process umask may narrow it further).
//
// Thread-safety: a journal may be used from several threads at once. At most
// one writer per directory (a lock file, LOCK, enforces it: errc::conflict,
// naming the holder's pid, which the writer keeps in LOCK); any number of
// read-only opens, also beside a writer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/accounting/rollup.hpp"
#include "bulkhead/accounting/types.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::accounting {

struct journal_options {
  std::size_t batch_records = 8192;  // a batch is committed once it holds this many records ...
  milliseconds max_delay{2};         // ... or its oldest record has waited this long (0: at once)
  // A segment is closed once it reaches this size; the batch that crosses it
  // is written whole, so a segment may exceed it by one batch (at most
  // batch_records records of at most 8,208 bytes each). At least
  // min_segment_bytes (open() fails with invalid_argument below it).
  std::uint64_t segment_bytes = 64ull << 20;
  static constexpr std::uint64_t min_segment_bytes = 4096;
};

// A record's place in the journal: durable once durable_seq() >= seq.
struct ticket {
  std::uint64_t seq = 0;
  friend constexpr auto operator<=>(const ticket&, const ticket&) = default;
};

struct append_result {
  bool duplicate = false;  // a resubmission: nothing was written
  // For a fresh record, its own sequence number; for a duplicate, the last
  // record appended, so waiting on it covers the original as well.
  ticket t;
};

struct recovery_report {
  std::uint64_t checkpoint_seq = 0;  // 0: started without a checkpoint
  std::uint64_t records = 0;         // records verified and replayed after the checkpoint
  std::uint64_t bytes = 0;           // segment bytes read
  std::uint64_t last_seq = 0;        // the last record kept
  std::vector<std::string> segments;  // segment files read, in order
  std::optional<std::string> torn_segment;  // where a torn tail was found
  std::uint64_t torn_bytes = 0;             // bytes cut (read-only: bytes ignored)
  std::vector<std::string> quarantined;     // files under quarantine/, including earlier ones
  // Read-only opens only: where recovery stopped at a bad record (the totals
  // are those before it). A writing open fails with this error instead.
  std::optional<error> corruption;
};

struct journal_stats {
  std::uint64_t appended = 0;    // records appended since open (series, deltas, gaps)
  std::uint64_t duplicates = 0;  // resubmitted deltas and gaps ignored since open
  std::uint64_t batches = 0;     // batches committed (one fdatasync each)
  std::uint64_t bytes = 0;       // record bytes written since open
  std::uint64_t segments_retired = 0;
  std::uint64_t checkpoints = 0;
};

// What open_read_only() gives: the totals and how they were recovered.
struct journal_view {
  rollup totals;
  recovery_report report;
};

class BULKHEAD_API journal {
 public:
  // Opens (recovering) or starts a journal in `dir`, which must exist.
  // Errors: not_found / permission_denied for the directory, conflict when
  // another writer holds it, corrupt (see above), io_error, no_space.
  [[nodiscard]] static result<std::unique_ptr<journal>> open(const std::string& dir, journal_options options = {});
  // Reads `dir` without changing it. Errors: the directory cannot be read,
  // or a checkpoint is corrupt; a bad record is reported in the view instead.
  [[nodiscard]] static result<journal_view> open_read_only(const std::string& dir);

  // Commits what is pending, then stops the commit thread.
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  // The series number for a key, defining (and journaling) it when new.
  // Labels are kept from the first definition.
  [[nodiscard]] result<std::uint32_t> define(const series_key& key, const instance_labels& labels = {});
  // Errors: rollup::check()'s, or the journal's failure.
  [[nodiscard]] result<append_result> append(std::uint32_t series, const delta& d);
  // Errors: an invalid gap (end not after start, bad labels), or the failure.
  [[nodiscard]] result<append_result> append_gap(const gap_record& g);

  // Blocks until the ticket's record is durable. Errors: the journal failed
  // before it was; invalid_argument for a ticket never issued.
  [[nodiscard]] result<void> wait(ticket t);
  // Commits everything appended so far and waits for it.
  [[nodiscard]] result<void> flush();
  [[nodiscard]] std::uint64_t durable_seq() const;
  [[nodiscard]] std::uint64_t last_seq() const;

  // Makes everything durable, starts a new segment, writes a checkpoint of
  // the totals, and retires the segments it covers. Totals do not change.
  [[nodiscard]] result<void> checkpoint();

  // A copy of the totals: every record appended (durable or not), or after a
  // failure, possibly records that were never made durable (reopen for the
  // durable truth).
  [[nodiscard]] rollup snapshot() const;
  // Calls f with the same totals under the journal's lock, without copying
  // them (an agent publishing totals every second). f must be quick and must
  // not call the journal; appends wait while it runs.
  void with_totals(const std::function<void(const rollup&)>& f) const;
  // The series as journaled (for resuming a meter after a restart).
  [[nodiscard]] std::vector<series_info> series() const;
  [[nodiscard]] const recovery_report& recovery() const noexcept;
  [[nodiscard]] journal_stats stats() const;
  [[nodiscard]] std::optional<error> failure() const;
  [[nodiscard]] const std::string& dir() const noexcept;

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit journal(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead::accounting
