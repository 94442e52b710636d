// Concurrent reserve / release / resize from several threads, with a checker
// thread that watches every inventory while they run. Built for
// ThreadSanitizer too (meson setup -Db_sanitize=thread): it must show no race.
//
// Checks:
//   - while running: every snapshot has used <= capacity everywhere, LSE and
//     LSR CPU ids never overlap, and audit() (books == reservations) passes;
//   - a race to fill an inventory admits exactly its capacity, no more, no less;
//   - afterwards: what the threads believe they hold equals the books, and
//     releasing everything brings every inventory back to 0.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bulkhead/ledger/ledger.hpp"

using namespace bulkhead;
using namespace bulkhead::ledger;
using rk = resource_kind;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

uuid id(std::uint32_t thread, std::uint32_t n) {
  std::array<std::uint8_t, 16> b{};
  b[0] = 0x7e;
  for (int i = 0; i < 4; ++i) b[4 + i] = static_cast<std::uint8_t>(thread >> (8 * i));
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return uuid{b};
}

host_spec numa_host(const std::string& name) {
  host_spec h;
  h.name = name;
  cpu_pool_spec pool;
  pool.reserved_cpus = cpuset::range(0, 1);
  pool.allocation_ratio = *rational::parse("1.5");
  pool.step_size = millicores{250};
  h.cpu_pool = pool;
  for (std::uint32_t c = 0; c < 2; ++c) {
    cell_spec cs;
    cs.id = c;
    cs.cpus = cpuset::range(c * 16, c * 16 + 15);
    cs.inventories = {any_inventory::of(inventory<rk::memory>{.total = bytes{32 * GiB}, .step_size = bytes{GiB}})};
    h.cells.push_back(cs);
  }
  h.inventories = {
      any_inventory::of(inventory<rk::memory>{.total = bytes{64 * GiB}, .step_size = bytes{GiB}}),
      any_inventory::of(inventory<rk::disk_iops>{.total = ops_per_second{20000}, .step_size = ops_per_second{100}}),
      any_inventory::of(inventory<rk::net_bandwidth>{.total = bytes_per_second{1000000000}}),
  };
  h.be_inventories = {any_inventory::of(inventory<rk::cpu>{.total = millicores{16000}})};
  return h;
}

struct held {
  host_ref host;
  resource_amounts amounts;
  qos_class qos;
};

struct counters {
  std::atomic<std::uint64_t> reserved{0}, refused{0}, conflicts{0}, released{0}, resized{0}, checks{0};
};

void check_snapshot(bulkhead::ledger::ledger& l, host_ref h, std::atomic<bool>& bad, std::string& why, std::mutex& why_mu) {
  const auto report = [&](std::string s) {
    std::lock_guard g(why_mu);
    if (!bad.exchange(true)) why = std::move(s);
  };
  auto v = l.view(h);
  if (!v) return report(v.error().describe());
  for (const auto& i : v->inventories)
    if (i.used > i.capacity)
      return report(i.where + " " + std::string(to_string(i.inventory.kind)) + ": used " + std::to_string(i.used) +
                    " > capacity " + std::to_string(i.capacity));
  if (v->pools && v->pools->lse.intersects(v->pools->lsr)) return report("LSE and LSR share CPU ids");
  if (v->pools && v->pools->lse.intersects(v->pools->reserved)) return report("LSE took a reserved CPU");
  if (auto a = l.audit(h); !a) return report(a.error().describe());
}

}  // namespace

TEST_CASE("concurrent reserve, release and resize never exceed capacity") {
  bulkhead::ledger::ledger l;
  std::vector<host_ref> hosts = {*l.add_host(numa_host("c1")), *l.add_host(numa_host("c2"))};
  constexpr std::uint32_t workers = 4;
  constexpr int ops = 20000;
  counters cnt;
  std::atomic<bool> done{false}, bad{false};
  std::string why;
  std::mutex why_mu;
  std::vector<std::map<uuid, held>> mine(workers);

  std::thread checker([&] {
    while (!done.load()) {
      for (auto h : hosts) check_snapshot(l, h, bad, why, why_mu);
      cnt.checks.fetch_add(1);
      std::this_thread::yield();
    }
  });

  std::vector<std::thread> pool;
  for (std::uint32_t t = 0; t < workers; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      std::uint32_t next = 0;
      auto& own = mine[t];
      const auto pick = [&](std::uint64_t n) { return rng() % n; };
      // Assertions that throw must not leave a worker thread: record and stop.
      const auto unexpected = [&](const error& e) {
        std::lock_guard g(why_mu);
        if (!bad.exchange(true)) why = "worker " + std::to_string(t) + ": " + e.describe();
      };
      for (int i = 0; i < ops; ++i) {
        const auto op = pick(10);
        if (op < 5 || own.empty()) {
          reservation_request r;
          r.uuid = id(t, next++);
          r.tenant = "tenant-" + std::to_string(pick(3));
          const auto host = hosts[pick(hosts.size())];
          const auto q = pick(10);
          r.qos = q == 0 ? qos_class::LSE : q == 1 ? qos_class::LSR : q == 2 ? qos_class::BE : qos_class::LS;
          if (r.qos == qos_class::LSE || r.qos == qos_class::LSR)
            r.amounts.set<rk::cpu>(millicores{1000 * (1 + pick(3))});
          else
            r.amounts.set<rk::cpu>(millicores{250 * (1 + pick(16))});
          if (r.qos != qos_class::BE) {
            r.amounts.set<rk::memory>(bytes{GiB * (1 + pick(4))});
            r.amounts.set<rk::disk_iops>(ops_per_second{100 * (1 + pick(10))});
            r.amounts.set<rk::net_bandwidth>(bytes_per_second{1000000 * (1 + pick(50))});
            if (pick(3) == 0) r.policy = numa_policy::single_numa_node;
          }
          host_view snap;
          const bool optimistic = pick(2) == 0;
          if (optimistic) {
            snap = *l.view(host);
            r.seen = snap.generations;
          }
          auto res = l.reserve(host, r);
          if (res) {
            cnt.reserved.fetch_add(1);
            own.emplace(r.uuid, held{host, r.amounts, r.qos});
          } else if (res.error().code() == errc::conflict) {
            cnt.conflicts.fetch_add(1);
          } else if (res.error().code() == errc::insufficient_capacity) {
            cnt.refused.fetch_add(1);
          } else {
            return unexpected(res.error());
          }
        } else if (op < 8) {
          auto it = own.begin();
          std::advance(it, static_cast<long>(pick(own.size())));
          auto rel = l.release(it->second.host, it->first);
          if (!rel) return unexpected(rel.error());
          own.erase(it);
          cnt.released.fetch_add(1);
        } else {
          auto it = own.begin();
          std::advance(it, static_cast<long>(pick(own.size())));
          auto a = it->second.amounts;
          if (it->second.qos == qos_class::LSE || it->second.qos == qos_class::LSR)
            a.set<rk::cpu>(millicores{1000 * (1 + pick(3))});
          else
            a.set<rk::cpu>(millicores{250 * (1 + pick(16))});
          auto rs = l.resize(it->second.host, it->first, a);
          if (rs) {
            it->second.amounts = a;
            cnt.resized.fetch_add(1);
          } else if (rs.error().code() != errc::insufficient_capacity) {
            return unexpected(rs.error());
          }
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  done = true;
  checker.join();
  INFO(why);
  CHECK_FALSE(bad.load());
  MESSAGE("reserved " << cnt.reserved.load() << ", refused " << cnt.refused.load() << ", conflicts "
                      << cnt.conflicts.load() << ", released " << cnt.released.load() << ", resized "
                      << cnt.resized.load() << ", checker rounds " << cnt.checks.load());
  CHECK(cnt.reserved > 0);
  CHECK(cnt.released > 0);

  // What the threads hold equals the books.
  for (auto h : hosts) {
    std::map<rk, std::uint64_t> online, batch;
    for (const auto& own : mine)
      for (const auto& [u, hd] : own) {
        if (l.find(h, u)) {
          hd.amounts.for_each([&](rk k, std::uint64_t n) {
            if (hd.qos == qos_class::BE) batch[k] += n;
            else if (!(k == rk::cpu && (hd.qos == qos_class::LSE || hd.qos == qos_class::LSR))) online[k] += n;
          });
        }
      }
    auto v = *l.view(h);
    for (const auto& i : v.inventories) {
      if (i.provider == provider_kind::host) CHECK(i.used == online[i.inventory.kind]);
      if (i.provider == provider_kind::be) CHECK(i.used == batch[i.inventory.kind]);
    }
    CHECK(l.audit(h));
  }
  for (auto& own : mine)
    for (const auto& [u, hd] : own) REQUIRE(l.release(hd.host, u));
  for (auto h : hosts) {
    auto v = *l.view(h);
    for (const auto& i : v.inventories) CHECK(i.used == 0);
    CHECK(v.pools->lse.empty());
    CHECK(v.pools->lsr.empty());
    CHECK(v.reservations == 0);
  }
}

TEST_CASE("a race to fill an inventory admits exactly its capacity") {
  bulkhead::ledger::ledger l;
  host_spec h;
  h.name = "fill";
  h.inventories = {any_inventory::of(inventory<rk::memory>{.total = bytes{1500}, .reserved = bytes{100},
                                                           .allocation_ratio = *rational::make(5, 7)})};
  auto host = *l.add_host(h);
  // capacity floor(1400 x 5/7) = 1000 units of 1 byte.
  constexpr std::uint32_t workers = 4;
  std::atomic<std::uint64_t> admitted{0}, odd{0};
  std::vector<std::thread> pool;
  for (std::uint32_t t = 0; t < workers; ++t)
    pool.emplace_back([&, t] {
      for (std::uint32_t n = 0;; ++n) {
        reservation_request r;
        r.uuid = id(t, n);
        r.tenant = "t";
        r.amounts.set<rk::memory>(bytes{1});
        std::optional<host_view> snap;  // `seen` points into it: it must outlive the call
        if (n % 2) {
          snap = *l.view(host);
          r.seen = snap->generations;
        }
        auto res = l.reserve(host, r);
        if (res) {
          admitted.fetch_add(1);
          continue;
        }
        if (res.error().code() == errc::conflict) continue;
        if (res.error().code() != errc::insufficient_capacity) odd.fetch_add(1);
        break;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(odd.load() == 0);
  CHECK(admitted.load() == 1000);
  auto v = *l.view(host);
  CHECK(v.inventories[0].used == 1000);
  CHECK(v.inventories[0].capacity == 1000);
  CHECK(v.reservations == 1000);
  CHECK(l.audit(host));
}
