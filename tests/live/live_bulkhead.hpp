// bulkhead's side of the live tests (docs/live-tests.md): a read-write
// libvirt::backend on the harness's URI, the instance bulkhead discovers for a
// test guest, a meter of one counter of one guest, and an agent (backend ->
// accountant -> journal) that samples the whole host the way a hosting agent
// does. Everything that talks to libvirt throws live::error on failure.
// Thread-safety: one thread per object (the backend is not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/meter.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "live_guest.hpp"

namespace bulkhead::test::live {

// A libvirt::backend on env.uri; read-write by default (apply() needs it).
[[nodiscard]] inline std::unique_ptr<libvirt::backend> bulkhead_backend(const environment& env, bool read_only = false) {
  auto b = libvirt::backend::connect({.uri = env.uri, .read_only = read_only});
  if (!b) throw error("bulkhead cannot connect: " + b.error().describe());
  return std::move(*b);
}

// The instance bulkhead discovers for `g` (matched by UUID).
[[nodiscard]] inline instance_info find_instance(libvirt::backend& be, const guest& g) {
  auto found = be.discover();
  if (!found) throw error("discover(): " + found.error().describe());
  const std::string want = g.uuid();
  for (auto& i : *found)
    if (i.id.uuid.to_string() == want) return std::move(i);
  throw error("discover() does not list guest " + g.name() + " (" + want + ")");
}

// bulkhead's reading of one instance; throws with bulkhead's error.
[[nodiscard]] inline instance_reading read_instance(libvirt::backend& be, const instance_info& i) {
  auto r = be.read(i);
  if (!r) throw error("read(" + i.name + "): " + r.error().describe());
  return std::move(*r);
}

// /proc/sys/kernel/random/boot_id: makes a series' source unique per boot of
// the monotonic clock (docs/accounting.md, "Identity").
[[nodiscard]] inline std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string s;
  std::getline(in, s);
  if (s.empty()) throw error("cannot read /proc/sys/kernel/random/boot_id");
  return s;
}

// What a meter accounted over a run of samples: the sum of its deltas and the
// (monotonic) time they cover.
struct metered {
  u128 amount = 0;
  nanoseconds covered{};
  std::uint64_t deltas = 0;
  std::uint8_t flags = 0;  // OR of the deltas' flags (delta_flag::*)
  std::vector<accounting::delta> each;  // the deltas, oldest first
};

// "amount/ms, ..." of each delta, for messages.
[[nodiscard]] inline std::string describe_deltas(const metered& m) {
  std::string s;
  for (const auto& d : m.each) {
    if (!s.empty()) s += ", ";
    s += std::to_string(d.amount) + "/" + std::to_string((d.end - d.start) / std::chrono::milliseconds{1}) + "ms";
  }
  return s;
}

// bulkhead's meter (accounting::meter) of one counter of one guest
// incarnation, fed by libvirt::backend::read(). The first sample is the
// meter's baseline (rule 1); every later one accounts the growth since the
// previous one.
class counter_meter {
 public:
  counter_meter(libvirt::backend& be, instance_info inst, std::string counter)
      : be_(be), inst_(std::move(inst)), counter_(std::move(counter)) {
    if (!inst_.id.incarnation) throw error("counter_meter: " + inst_.name + " is not running");
    auto h = meter_.series({be_.source(), inst_.id.uuid, *inst_.id.incarnation, counter_, 64, accounting::series_kind::usage});
    if (!h) throw error("meter series: " + h.error().describe());
    h_ = *h;
  }

  // Reads the instance once and feeds the counter to the meter. Returns the
  // delta when one was accounted; throws when the counter is missing or the
  // meter rejects the sample.
  std::optional<accounting::delta> sample() {
    const auto r = read_instance(be_, inst_);
    last_ = r;
    for (const auto& c : accounting::flatten(r.usage)) {
      if (c.name != counter_) continue;
      const auto res = meter_.observe(h_, r.usage.read_at, r.usage.wall, c.value);
      if (res.accounted()) return res.d;
      if (res.outcome == accounting::sample_outcome::baseline) return std::nullopt;
      throw error("meter rejected a sample of " + counter_ + ": " + std::string(accounting::to_string(res.outcome)));
    }
    throw error("bulkhead's reading of " + inst_.name + " has no counter " + counter_);
  }

  // A window: one sample opens it (the meter's baseline, or a delta that
  // belongs to the time before the window and is left out), then a sample
  // every `step` until the deltas since cover `length`. Returns what the
  // meter accounted in the window.
  metered measure(nanoseconds length, nanoseconds step) {
    (void)sample();
    metered m;
    while (m.covered < length) {
      std::this_thread::sleep_for(step);
      if (auto d = sample()) {
        m.amount += d->amount;
        m.covered += d->end - d->start;
        ++m.deltas;
        m.flags |= d->flags;
        m.each.push_back(*d);
      }
    }
    return m;
  }

  [[nodiscard]] const instance_reading& last() const { return last_; }
  [[nodiscard]] const accounting::meter& meter() const { return meter_; }

 private:
  libvirt::backend& be_;
  instance_info inst_;
  std::string counter_;
  accounting::meter meter_;
  accounting::series_handle h_{};
  instance_reading last_{};
};

// A rate in units per second from what a meter accounted, rounded down.
[[nodiscard]] inline std::uint64_t per_second(const metered& m) {
  if (m.covered.count() <= 0) throw error("per_second: nothing covered");
  return static_cast<std::uint64_t>(m.amount * nanos_per_second / static_cast<u128>(m.covered.count()));
}

// A hosting agent's sampling loop, in pieces: libvirt::backend::read_all() ->
// accountant::ingest() -> journal. When read_all() fails as a whole (libvirtd
// is gone), every instance seen in the last good reading gets a failed read
// (accountant::read_failed), so the gap is recorded and the next good sample
// covers it (docs/accounting.md, rule 6).
class agent {
 public:
  struct sample_result {
    bool ok = false;
    mono_time started{};  // before read_all()
    mono_time read_at{};  // the watched instance's usage.read_at (ok and present)
    std::optional<incarnation> run;       // the watched instance's incarnation, when running
    std::optional<std::uint64_t> cpu_ns;  // its raw cpu_time_ns
    std::string error;                    // why read_all() failed (not ok)
    accounting::ingest_report report;
  };

  agent(const environment& env, const std::string& journal_dir, accounting::journal_options jo = {})
      : env_(env) {
    auto j = accounting::journal::open(journal_dir, jo);
    if (!j) throw error("journal::open(" + journal_dir + "): " + j.error().describe());
    journal_ = std::move(*j);
    auto a = accounting::accountant::make(journal_, {.width = {}, .allocation = true, .source_suffix = "@" + boot_id()});
    if (!a) throw error("accountant::make: " + a.error().describe());
    acc_.emplace(std::move(*a));
    be_ = bulkhead_backend(env_, true);
  }

  // One sampling cycle. `watch`: the UUID whose figures the result carries.
  sample_result sample(const std::string& watch) {
    sample_result s;
    s.started = mono_clock::now();
    auto r = be_->read_all();
    if (!r) {
      s.error = r.error().describe();
      const mono_time at = mono_clock::now();
      for (const auto& id : known_) {
        if (auto f = acc_->read_failed(be_->source(), id, at, s.error); !f)
          throw error("accountant::read_failed: " + f.error().describe());
      }
      ++failed_;
      return s;
    }
    s.ok = true;
    known_.clear();
    for (const auto& i : r->instances) {
      known_.insert(i.info.id.uuid);
      if (i.info.id.uuid.to_string() != watch) continue;
      s.read_at = i.usage.read_at;
      s.run = i.info.id.incarnation;
      if (i.usage.cpu_time) s.cpu_ns = static_cast<std::uint64_t>(i.usage.cpu_time->count());
    }
    for (const auto& f : r->failures)
      if (f.uuid) known_.insert(*f.uuid);
    auto rep = acc_->ingest(*r);
    if (!rep) throw error("accountant::ingest: " + rep.error().describe());
    s.report = *rep;
    if (rep->last) last_ = *rep->last;
    rejected_ += rep->rejected;
    duplicates_ += rep->duplicates;
    ++good_;
    return s;
  }

  // Waits until everything ingested so far is durable.
  void flush() {
    if (auto f = journal_->flush(); !f) throw error("journal flush: " + f.error().describe());
  }

  [[nodiscard]] libvirt::backend& backend() { return *be_; }
  [[nodiscard]] accounting::journal& journal() { return *journal_; }
  [[nodiscard]] std::uint64_t rejected() const { return rejected_; }
  [[nodiscard]] std::uint64_t duplicates() const { return duplicates_; }
  [[nodiscard]] std::uint64_t good() const { return good_; }
  [[nodiscard]] std::uint64_t failed() const { return failed_; }

 private:
  const environment& env_;
  std::shared_ptr<accounting::journal> journal_;
  std::optional<accounting::accountant> acc_;
  std::unique_ptr<libvirt::backend> be_;
  std::set<uuid> known_;
  accounting::ticket last_{};
  std::uint64_t rejected_ = 0, duplicates_ = 0, good_ = 0, failed_ = 0;
};

}  // namespace bulkhead::test::live
