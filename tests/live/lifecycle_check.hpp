// Shared by the live accounting tests (test_lifecycle_accounting.cpp,
// test_libvirtd_restart.cpp): bookkeeping of one guest's incarnations as the
// test sees them with libvirt's C API, independently of bulkhead, and the
// comparison with what bulkhead's journal accounted ("rule 2" of issue 7).
//
// For each incarnation the test reads libvirt's counters (virDomainGetCPUStats,
// virDomainGetVcpus: live::read_cpu) just BEFORE bulkhead's first sample of it
// and just AFTER bulkhead's last. The counters only grow within an
// incarnation, so the independent growth (last - first) is at least what
// bulkhead accounted (bulkhead's last - bulkhead's first), and exceeds it by
// what the domain used in the two brackets between those reads: at most
// (host CPUs) x (bracket wall time). How long a bracket is depends on how
// fast libvirtd answers (slow on a loaded host), so it is reported, never
// asserted; the bound grows with it. vCPU times come in clock ticks, so their
// bound adds one tick per end.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "live_bulkhead.hpp"
#include "test_support.hpp"

namespace bulkhead::test::live {

struct incarnation_record {
  std::uint64_t run = 0;        // libvirt domain id
  cpu_reading first, last;      // independent reads
  mono_time first_started{};    // before the first independent read
  mono_time bh_first_started{}, bh_first_at{};  // bulkhead's first sample of it
  mono_time bh_last_started{}, bh_last_at{};    // bulkhead's last sample of it
  mono_time last_started{};     // before the last independent read
  std::uint64_t bh_samples = 0;
  std::optional<std::uint64_t> bh_prev_cpu;  // raw cpu_time_ns of bulkhead's previous sample
  std::uint64_t bh_decreases = 0;            // samples whose raw cpu_time went down
};

// Tracks the guest's incarnations as the agent samples them.
class lifecycle_log {
 public:
  explicit lifecycle_log(guest& g, nanoseconds interval) : g_(g), interval_(interval) {}

  // Right after a start (before bulkhead samples the new incarnation).
  void begin() {
    incarnation_record r;
    r.run = g_.id();
    r.first_started = mono_clock::now();
    r.first = read_cpu(g_.domain());
    recs_.push_back(r);
  }
  // After bulkhead's last sample of the current incarnation (before destroy).
  void end() {
    REQUIRE_FALSE(recs_.empty());
    auto& r = recs_.back();
    r.last_started = mono_clock::now();
    r.last = read_cpu(g_.domain());
  }
  // Every good agent sample goes through here.
  void note(const agent::sample_result& s) {
    if (!s.ok || !s.run || !s.cpu_ns || recs_.empty()) return;
    auto& r = recs_.back();
    if (s.run->value != r.run) return;  // not the incarnation being tracked
    if (r.bh_samples == 0) {
      r.bh_first_started = s.started;
      r.bh_first_at = s.read_at;
    }
    r.bh_last_started = s.started;
    r.bh_last_at = s.read_at;
    if (r.bh_prev_cpu && *s.cpu_ns < *r.bh_prev_cpu) ++r.bh_decreases;
    r.bh_prev_cpu = s.cpu_ns;
    ++r.bh_samples;
  }

  [[nodiscard]] const std::vector<incarnation_record>& records() const { return recs_; }

  // Compares the journal's totals (read back with journal::open_read_only)
  // with the independent reads. `source` is the series source (URI + suffix).
  void check_against(const accounting::rollup& totals, const std::string& uuid_text) const {
    const auto id = uuid::parse(uuid_text);
    REQUIRE(id.has_value());
    std::map<std::uint64_t, const accounting::incarnation_totals*> by_run;
    const auto incs = totals.by_incarnation();
    for (const auto& i : incs)
      if (i.uuid == *id) by_run[i.incarnation.value] = &i;
    CHECK(by_run.size() == recs_.size());
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    REQUIRE(cpus > 0);

    u128 indep_sum = 0, acc_sum = 0, bound_sum = 0;
    nanoseconds vcpu_indep{};
    for (const auto& r : recs_) {
      CAPTURE(r.run);
      REQUIRE(r.bh_samples >= 2);
      CHECK(r.bh_decreases == 0);  // libvirt's counter never went back within an incarnation
      CHECK(r.last.cpu_time >= r.first.cpu_time);
      const auto it = by_run.find(r.run);
      REQUIRE_MESSAGE(it != by_run.end(), "the journal has no incarnation " << r.run);
      const auto& t = it->second->totals;
      CHECK(t.resets == 0);  // a counter that went down would show as a reset
      CHECK(t.wraps == 0);
      const auto indep = static_cast<u128>((r.last.cpu_time - r.first.cpu_time).count());
      // The brackets: from the start of the earlier read to the end of the later.
      const nanoseconds head = r.bh_first_at - r.first_started;
      const nanoseconds tail = r.last.at - r.bh_last_started;
      const auto bound = static_cast<u128>(cpus) * static_cast<u128>((head + tail).count());
      MESSAGE("incarnation " << r.run << ": libvirt's cpu_time grew " << to_decimal(indep)
                             << " ns between the test's reads; bulkhead accounted " << to_decimal(t.cpu_time_ns)
                             << " ns (" << t.deltas << " deltas over all its counters); difference "
                             << to_decimal(indep >= t.cpu_time_ns ? indep - t.cpu_time_ns : 0)
                             << " ns, bound " << to_decimal(bound) << " ns (brackets " << head.count() / 1000
                             << " + " << tail.count() / 1000 << " us, sampling every "
                             << interval_.count() / 1'000'000 << " ms, " << cpus << " host CPUs)");
      CHECK(t.cpu_time_ns <= indep);          // never more than libvirt counted
      CHECK(indep - t.cpu_time_ns <= bound);  // nothing lost beyond the brackets
      indep_sum += indep;
      acc_sum += t.cpu_time_ns;
      bound_sum += bound;
      if (r.first.vcpu_time && r.last.vcpu_time) vcpu_indep += *r.last.vcpu_time - *r.first.vcpu_time;
    }
    MESSAGE("all incarnations: libvirt " << to_decimal(indep_sum) << " ns, bulkhead "
                                         << to_decimal(acc_sum) << " ns, bound on the difference "
                                         << to_decimal(bound_sum) << " ns");
    // The per-vCPU counter the same way, summed over incarnations (by_counter
    // sums a counter over an instance's incarnations).
    const auto counters = totals.by_counter(*id);
    const auto v = counters.find("vcpu/0/time_ns");
    REQUIRE(v != counters.end());
    const auto vi = static_cast<u128>(vcpu_indep.count());
    // vCPU time comes in clock ticks (utime + stime of the vCPU thread), so a
    // bracket may hold one more tick than its length: one per end.
    const auto tick = static_cast<u128>(nanos_per_second / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
    const u128 vbound = bound_sum + 2 * tick * recs_.size();
    MESSAGE("vCPU 0: libvirt " << to_decimal(vi) << " ns, bulkhead " << to_decimal(v->second)
                               << " ns, bound on the difference " << to_decimal(vbound) << " ns");
    CHECK(v->second <= vi);
    CHECK(vi - v->second <= vbound);
  }

 private:
  guest& g_;
  nanoseconds interval_;
  std::vector<incarnation_record> recs_;
};

// Samples every `interval` until `done()` (checked right after each sample,
// so the caller's next step follows the last sample at once) or the timeout;
// every read must succeed and nothing may be rejected. Returns the samples.
inline int sample_until(agent& a, lifecycle_log& log, const guest& g, const std::string& watch,
                        nanoseconds interval, const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = mono_clock::now() + timeout;
  int n = 0;
  for (;;) {
    const auto t0 = mono_clock::now();
    const auto s = a.sample(watch);
    REQUIRE_MESSAGE(s.ok, "read_all failed: " << s.error);
    CHECK(s.report.rejected == 0);
    log.note(s);
    ++n;
    if (done()) return n;
    if (mono_clock::now() > deadline) FAIL("timed out; console:\n" << g.console_tail());
    std::this_thread::sleep_until(t0 + interval);
  }
}

// A done() for sample_until: true once `d` has passed from now.
[[nodiscard]] inline std::function<bool()> for_time(nanoseconds d) {
  const auto until = mono_clock::now() + d;
  return [until] { return mono_clock::now() >= until; };
}

}  // namespace bulkhead::test::live
