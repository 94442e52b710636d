// bulkhead/accounting/accountant.hpp: the read path put together:
//   backend.read_all() -> flatten -> meter -> journal.
//
// ingest(host_reading):
//  - every running instance's usage is flattened (counters.hpp) and metered
//    per (source, uuid, incarnation, counter); each delta is appended to the
//    journal; allocation levels (allocation_of(enforced)) are metered as
//    "alloc/vcpus" and "alloc/memory_bytes";
//  - an instance seen with a new incarnation, or shut off, has its previous
//    incarnation closed (it keeps what it accounted);
//  - each host_reading::failures entry with a uuid is a failed read of that
//    instance (meter::read_failed); closed gaps are appended to the journal;
//  - a partial reading (instance_reading::partial) is not a gap: the counters
//    it lacks are simply not sampled, and their next sample covers the time;
//  - the source of a series is instance_info::source, else host_reading::source,
//    with `source_suffix` appended (use it to make the source unique per boot,
//    e.g. "@" + boot id; docs/accounting.md, "Identity").
// Nothing is acknowledged until the journal says so: wait on the returned
// ticket (journal::wait) before telling anyone the reading is accounted.
// After an error from ingest() (a failed journal), reopen the journal and
// make() a new accountant from it: its meter then resumes from what is
// durable, so the next reading covers everything since.
// Labels (name, tenant) that are not valid labels (validate_label) are
// dropped; they never stop accounting.
//
// make() seeds the meter from the journal, so an agent that restarts (same
// boot) continues every series from its last journaled value: nothing between
// the last record and the first new sample is lost.
//
// Ownership: the accountant keeps its journal through the std::shared_ptr it
// is given, so the journal lives at least as long as the accountant; the
// caller may keep its own copy (to wait on tickets, checkpoint, read totals).
//
// Thread-safety: not thread-safe (it owns a meter); the journal may be shared.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/meter.hpp"
#include "bulkhead/model/instance.hpp"

namespace bulkhead::accounting {

struct accountant_options {
  // Declared width in bits of a counter by name; unset: every counter is 64.
  std::function<std::uint8_t(std::string_view counter)> width{};
  bool allocation = true;     // meter allocation levels beside usage
  std::string source_suffix;  // appended to every source
};

struct ingest_report {
  std::uint64_t instances = 0;  // running instances metered
  std::uint64_t samples = 0;
  std::uint64_t accounted = 0;  // deltas appended (fresh)
  std::uint64_t baselines = 0;
  std::uint64_t rejected = 0;    // out of order, closed, out of range
  std::uint64_t duplicates = 0;  // deltas the journal already had
  std::uint64_t failures = 0;    // failed reads reported
  std::uint64_t gaps = 0;        // gaps closed and appended
  std::uint64_t closed = 0;      // incarnations closed
  std::optional<ticket> last;    // wait on it: everything above is durable then
};

class accountant {
 public:
  // errc::invalid_argument for a null journal; the journal's series that
  // fail to resume (see meter::series) are errors naming the series.
  [[nodiscard]] static result<accountant> make(std::shared_ptr<journal> j, accountant_options options = {});

  [[nodiscard]] result<ingest_report> ingest(const host_reading& reading);
  // A read of one instance failed outside a host_reading.
  [[nodiscard]] result<void> read_failed(const std::string& source, const bulkhead::uuid& uuid, mono_time at,
                                         std::string_view reason);

  [[nodiscard]] const class meter& meter() const noexcept { return meter_; }

 private:
  accountant(std::shared_ptr<journal> j, accountant_options o) : j_(std::move(j)), opt_(std::move(o)) {}
  result<std::uint32_t> journal_id(series_handle h);
  result<void> sample(const series_key& key, const instance_labels& labels, mono_time t, wall_time wall,
                      std::uint64_t value, ingest_report& rep);
  result<void> drain_gaps(ingest_report& rep);

  std::shared_ptr<journal> j_;
  accountant_options opt_;
  class meter meter_;
  std::vector<std::int64_t> jid_;  // meter handle -> journal series id (-1: not yet defined)
  std::map<std::pair<std::string, uuid>, incarnation> current_;  // live incarnation per instance
  std::vector<counter_value> scratch_;
};

}  // namespace bulkhead::accounting

#include "bulkhead/accounting/detail/accountant_impl.hpp"
