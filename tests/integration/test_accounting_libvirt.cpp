// Meters fed from libvirt's test driver while domains are destroyed, started
// again (new incarnations), paused and resumed: no negative delta, no double
// counting, and the journal's totals equal the per-incarnation sums of the
// counters read, computed here independently from the raw readings.
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;

namespace {
struct expected_series {
  std::uint64_t last = 0;
  bool seen = false;
  u128 total = 0;
  std::uint64_t deltas = 0, resets = 0;
};
using series_id = std::tuple<uuid, std::uint64_t, std::string>;  // uuid, incarnation, counter
}  // namespace

TEST_CASE("meters over the libvirt test driver across destroy, start, suspend and resume") {
  const std::string uri = "test://" + test::fixture("libvirt/varied-node.xml").string();
  auto b = libvirt::backend::connect({.uri = uri, .read_only = false});
  REQUIRE_MESSAGE(b.has_value(), (b ? std::string() : b.error().describe()));
  auto& be = **b;
  test::temp_dir t;
  result<std::shared_ptr<journal>> j = journal::open(t.str(), {.batch_records = 256, .max_delay = std::chrono::milliseconds(1)});
  REQUIRE(j);
  auto acc = accountant::make(*j, {.width = {}, .allocation = true, .source_suffix = "@test"});
  REQUIRE(acc);

  std::map<series_id, expected_series> expect;
  std::map<uuid, std::set<std::uint64_t>> incarnations;
  std::mt19937 rng(20240601);
  int destroyed = 0, started = 0, suspended = 0, resumed = 0;
  ticket last{};
  for (int round = 0; round < 60; ++round) {
    auto r = be.read_all();
    REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().describe()));
    CHECK(r->failures.empty());
    // The independent expectation: per incarnation and counter, each later
    // reading adds its increase, or its value after a decrease (a reset).
    for (const auto& ir : r->instances) {
      if (!ir.info.id.incarnation) continue;
      incarnations[ir.info.id.uuid].insert(ir.info.id.incarnation->value);
      for (const auto& c : flatten(ir.usage)) {
        auto& e = expect[{ir.info.id.uuid, ir.info.id.incarnation->value, c.name}];
        if (e.seen) {
          ++e.deltas;
          if (c.value >= e.last) e.total += c.value - e.last;
          else {
            e.total += c.value;
            ++e.resets;
          }
        }
        e.seen = true;
        e.last = c.value;
      }
    }
    auto rep = acc->ingest(*r);
    REQUIRE_MESSAGE(rep.has_value(), (rep ? std::string() : rep.error().describe()));
    CHECK(rep->rejected == 0);
    CHECK(rep->duplicates == 0);
    if (rep->last) last = *rep->last;

    // Change the domains' lives through the backend's own connection.
    virConnectPtr conn = be.native_handle();
    REQUIRE(conn);
    virDomainPtr* doms = nullptr;
    const int n = virConnectListAllDomains(conn, &doms, 0);
    REQUIRE(n > 0);
    for (int i = 0; i < n; ++i) {
      if (rng() % 3 == 0) {
        int state = 0, reason = 0;
        if (virDomainGetState(doms[i], &state, &reason, 0) == 0) {
          const unsigned pick = rng() % 4;
          if (state == VIR_DOMAIN_SHUTOFF) {
            if (virDomainCreate(doms[i]) == 0) ++started;
          } else if (state == VIR_DOMAIN_PAUSED) {
            if (pick == 0 && virDomainDestroy(doms[i]) == 0) ++destroyed;
            else if (virDomainResume(doms[i]) == 0) ++resumed;
          } else if (state == VIR_DOMAIN_RUNNING) {
            if (pick < 2 && virDomainDestroy(doms[i]) == 0) ++destroyed;
            else if (virDomainSuspend(doms[i]) == 0) ++suspended;
          }
        }
      }
      virDomainFree(doms[i]);
    }
    std::free(doms);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  MESSAGE("destroyed ", destroyed, ", started ", started, ", suspended ", suspended, ", resumed ", resumed);
  CHECK(destroyed > 3);
  CHECK(started > 3);
  CHECK(suspended > 3);
  CHECK(resumed > 1);
  std::size_t multi = 0;
  for (const auto& [u, runs] : incarnations) multi += runs.size() > 1;
  CHECK(multi > 0);  // some domain came back as a new incarnation
  REQUIRE((*j)->wait(last));
  REQUIRE((*j)->flush());

  // Check both the live totals and what a read-only open recovers from disk.
  auto view = journal::open_read_only(t.str());
  REQUIRE(view);
  CHECK(view->totals == (*j)->snapshot());
  const auto& totals = view->totals;
  std::size_t checked = 0;
  std::map<std::pair<uuid, std::uint64_t>, u128> cpu_by_incarnation;
  for (const auto& [id, e] : expect) {
    const auto& [u, run, counter] = id;
    auto sid = totals.find(series_key{uri + "@test", u, incarnation{run}, counter, 64, series_kind::usage});
    if (e.deltas == 0) {  // seen once: a baseline, nothing accounted
      if (sid) CHECK(totals.series()[*sid].deltas == 0);
      continue;
    }
    REQUIRE(sid);
    const auto& s = totals.series()[*sid];
    INFO("series ", counter, " of ", u.to_string(), " incarnation ", run);
    CHECK(s.total == e.total);          // totals equal the sums of the counters read
    CHECK(s.deltas == e.deltas);        // each interval exactly once
    CHECK(s.resets == e.resets);        // a decrease is a reset, never a negative delta
    CHECK(s.last_end_value == e.last);
    if (counter == "cpu_time_ns") cpu_by_incarnation[{u, run}] += e.total;
    ++checked;
  }
  CHECK(checked > 50);
  // Per incarnation, the rollup's headline CPU field is the same sum.
  for (const auto& inc : totals.by_incarnation())
    if (auto it = cpu_by_incarnation.find({inc.uuid, inc.incarnation.value}); it != cpu_by_incarnation.end())
      CHECK(inc.totals.cpu_time_ns == it->second);
  // Allocation: every incarnation that lived across two readings held vCPUs.
  u128 vcpu_ns = 0;
  for (const auto& i : totals.by_instance()) vcpu_ns += i.totals.vcpu_reserved_ns;
  CHECK(vcpu_ns > 0);
}
