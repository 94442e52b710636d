// The capacity ledger: Placement's rules, CPU pools, NUMA fit, isolation,
// generations, resize, audit and JSON.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "bulkhead/ledger/json.hpp"
#include "bulkhead/ledger/ledger.hpp"
#include "bulkhead/ledger/rational.hpp"

using namespace bulkhead;
using namespace bulkhead::ledger;
using rk = resource_kind;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

uuid id(std::uint64_t n) {
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  b[0] = 0x42;
  return uuid{b};
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const inventory_view& inv_of(const host_view& v, provider_kind p, rk k, std::uint32_t cell = 0) {
  for (const auto& i : v.inventories)
    if (i.provider == p && i.inventory.kind == k && (p != provider_kind::cell || i.cell == cell)) return i;
  FAIL("no such inventory");
  return v.inventories.front();
}

// A host with a plain cpu inventory and memory, disk, net: no cells.
host_spec plain_host(std::string name = "h1") {
  host_spec h;
  h.name = std::move(name);
  h.inventories = {
      any_inventory::of(inventory<rk::cpu>{.total = millicores{16000}, .reserved = millicores{2000},
                                           .allocation_ratio = *rational::parse("4")}),
      any_inventory::of(inventory<rk::memory>{.total = bytes{64 * GiB}, .reserved = bytes{4 * GiB},
                                              .min_unit = bytes{256ull << 20}, .max_unit = bytes{32 * GiB},
                                              .step_size = bytes{256ull << 20}}),
      any_inventory::of(inventory<rk::disk_iops>{.total = ops_per_second{100000}}),
      any_inventory::of(inventory<rk::net_bandwidth>{.total = bytes_per_second{1250000000}}),
  };
  return h;
}

resource_amounts four(std::uint64_t cpu_mc, std::uint64_t mem, std::uint64_t iops, std::uint64_t net) {
  resource_amounts a;
  a.set<rk::cpu>(millicores{cpu_mc})
      .set<rk::memory>(bytes{mem})
      .set<rk::disk_iops>(ops_per_second{iops})
      .set<rk::net_bandwidth>(bytes_per_second{net});
  return a;
}

reservation_request req(std::uint64_t n, resource_amounts a, std::string tenant = "t1", qos_class q = qos_class::LS) {
  reservation_request r;
  r.uuid = id(n);
  r.tenant = std::move(tenant);
  r.qos = q;
  r.amounts = a;
  return r;
}

// 2 cells x 4 CPUs (0-3, 4-7), CPU 0 reserved, shared pool ratio 2; memory
// 8 GiB per cell and 16 GiB on the host.
host_spec numa_host(std::string name = "n1") {
  host_spec h;
  h.name = std::move(name);
  cpu_pool_spec pool;
  pool.reserved_cpus = cpuset::range(0, 0);
  pool.allocation_ratio = rational::whole(2);
  h.cpu_pool = pool;
  for (std::uint32_t c = 0; c < 2; ++c) {
    cell_spec cs;
    cs.id = c;
    cs.cpus = cpuset::range(c * 4, c * 4 + 3);
    cs.inventories = {any_inventory::of(inventory<rk::memory>{.total = bytes{8 * GiB}})};
    h.cells.push_back(cs);
  }
  h.inventories = {any_inventory::of(inventory<rk::memory>{.total = bytes{16 * GiB}})};
  return h;
}

// Every number in a JSON document is an integer.
bool integers_only(const nlohmann::json& j) {
  if (j.is_number_float()) return false;
  if (j.is_structured())
    for (const auto& x : j)
      if (!integers_only(x)) return false;
  return true;
}

}  // namespace

TEST_CASE("rational: exact parse, compare and apply") {
  CHECK(*rational::parse("1.5") == *rational::make(3, 2));
  CHECK(*rational::parse("16/10") == *rational::make(8, 5));
  CHECK(rational::parse("0.1")->apply_floor(30) == 3u);  // exactly 3, never 2.9999
  CHECK(rational::parse("4")->apply_floor(7) == 28u);
  CHECK(rational::parse("1/3")->apply_floor(8) == 2u);
  CHECK(rational::parse("1/3")->apply_ceil(8) == 3u);
  CHECK(*rational::parse("0.75") < *rational::parse("4/5"));
  CHECK(rational::parse("3/2")->to_string() == "3/2");
  CHECK_FALSE(rational::whole(2).apply_floor(UINT64_MAX).has_value());
  for (auto bad : {"", "1/0", "-1", "1.", ".5", "1.2.3", "abc", "1.0000000000000000001"}) {
    auto r = rational::parse(bad);
    REQUIRE_FALSE(r);
    CHECK(has(r.error().message(), "ratio"));
  }
}

TEST_CASE("inventory capacity is (total - reserved) x ratio, exactly, above and below 1") {
  bulkhead::ledger::ledger l;
  host_spec h;
  h.name = "r";
  h.inventories = {
      any_inventory::of(inventory<rk::cpu>{.total = millicores{10}, .reserved = millicores{2},
                                           .allocation_ratio = *rational::parse("1.5")}),
      any_inventory::of(inventory<rk::memory>{.total = bytes{10}, .reserved = bytes{2},
                                              .allocation_ratio = *rational::parse("1/3")}),
      any_inventory::of(inventory<rk::llc>{.total = cache_ways{11}, .reserved = cache_ways{0}}),
  };
  auto hr = l.add_host(h);
  REQUIRE(hr);
  auto v = l.view(*hr);
  REQUIRE(v);
  CHECK(inv_of(*v, provider_kind::host, rk::cpu).capacity == 12);   // 8 x 3/2
  CHECK(inv_of(*v, provider_kind::host, rk::memory).capacity == 2);  // floor(8 / 3)
  CHECK(inv_of(*v, provider_kind::host, rk::llc).capacity == 11);

  // Exactly capacity fits; one more does not.
  resource_amounts a;
  a.set<rk::memory>(bytes{2});
  CHECK(l.reserve(*hr, req(1, a)));
  a.set<rk::memory>(bytes{1});
  auto r = l.reserve(*hr, req(2, a));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::insufficient_capacity);
  CHECK(has(r.error().message(), "memory: asked 1 bytes, free 0 bytes"));
  CHECK(has(r.error().message(), "x 1/3"));
}

TEST_CASE("inventory validation names the inventory and the problem") {
  bulkhead::ledger::ledger l;
  const auto try_inv = [&](any_inventory inv) {
    host_spec h;
    h.name = "v";
    h.inventories = {inv};
    return l.add_host(h);
  };
  struct bad_case {
    any_inventory inv;
    std::string msg;
  };
  const std::vector<bad_case> bad = {
      {any_inventory::of(inventory<rk::memory>{.total = bytes{0}}), "total is 0"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{4}, .reserved = bytes{5}}), "reserved 5 bytes exceeds total 4 bytes"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{4}, .min_unit = bytes{0}}), "min_unit is 0"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{4}, .step_size = bytes{0}}), "step_size is 0"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{4}, .min_unit = bytes{3}, .max_unit = bytes{2}}),
       "max_unit 2 bytes is below min_unit 3 bytes"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{4}, .allocation_ratio = rational::whole(0)}),
       "allocation_ratio is 0"},
      {any_inventory::of(inventory<rk::memory>{.total = bytes{UINT64_MAX}, .allocation_ratio = rational::whole(2)}),
       "does not fit 64 bits"},
  };
  for (const auto& b : bad) {
    auto r = try_inv(b.inv);
    REQUIRE_FALSE(r);
    INFO(r.error().describe());
    CHECK(has(r.error().message(), "host 'v' memory inventory"));
    CHECK(has(r.error().message(), b.msg));
  }
  host_spec dup = plain_host("dup");
  dup.inventories.push_back(dup.inventories[0]);
  auto r = l.add_host(dup);
  REQUIRE_FALSE(r);
  CHECK(has(r.error().message(), "listed twice"));
  auto bad_name = l.add_host(plain_host("../etc"));
  REQUIRE_FALSE(bad_name);
  CHECK(has(bad_name.error().message(), "host name"));
  REQUIRE(l.add_host(plain_host("same")));
  CHECK(l.add_host(plain_host("same")).error().code() == errc::already_exists);
}

TEST_CASE("min_unit, max_unit and step_size are checked before capacity") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  const auto mem = [&](std::uint64_t n) {
    resource_amounts a;
    a.set<rk::memory>(bytes{n});
    return l.reserve(h, req(n, a));
  };
  auto below = mem(128ull << 20);
  REQUIRE_FALSE(below);
  CHECK(below.error().code() == errc::out_of_range);
  CHECK(has(below.error().message(), "memory: asked 134217728 bytes, below min_unit 268435456 bytes"));
  auto above = mem(33 * GiB);
  REQUIRE_FALSE(above);
  CHECK(has(above.error().message(), "above max_unit 34359738368 bytes"));
  auto step = mem(GiB + (128ull << 20));
  REQUIRE_FALSE(step);
  CHECK(has(step.error().message(), "not a multiple of step_size 268435456 bytes"));
  CHECK(mem(GiB));
  CHECK(mem(32 * GiB));
}

TEST_CASE("a multi-resource reservation is all or nothing and release gives everything back") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  const auto before = *l.view(h);
  // cpu capacity (16000-2000)*4 = 56000; ask for too much net so the last kind fails.
  auto r = l.reserve(h, req(1, four(4000, 4 * GiB, 1000, 2000000000)));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::insufficient_capacity);
  CHECK(has(r.error().message(), "net_bandwidth: asked 2000000000 bytes_sec, free 1250000000 bytes_sec"));
  CHECK(has(r.error().describe(), "reserve for " + id(1).to_string() + " on host 'h1'"));
  const auto after = *l.view(h);
  for (std::size_t i = 0; i < before.inventories.size(); ++i) {
    CHECK(after.inventories[i].used == 0);
    CHECK(after.generations[i] == before.generations[i]);
  }

  auto ok = l.reserve(h, req(1, four(4000, 4 * GiB, 1000, 100000000)));
  REQUIRE(ok);
  CHECK(ok->amounts == four(4000, 4 * GiB, 1000, 100000000));
  auto v = *l.view(h);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).used == 4000);
  CHECK(inv_of(v, provider_kind::host, rk::memory).used == 4 * GiB);
  CHECK(inv_of(v, provider_kind::host, rk::memory).free == 56 * GiB);
  CHECK(v.reservations == 1);

  auto dup = l.reserve(h, req(1, four(1000, GiB, 1, 1)));
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code() == errc::already_exists);

  REQUIRE(l.release(h, id(1)));
  v = *l.view(h);
  for (const auto& i : v.inventories) CHECK(i.used == 0);
  CHECK(l.release(h, id(1)).error().code() == errc::not_found);
  CHECK(l.audit(h));
}

TEST_CASE("resize grows, shrinks, adds and drops kinds, all or nothing") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  REQUIRE(l.reserve(h, req(1, four(4000, 4 * GiB, 1000, 1000))));
  REQUIRE(l.reserve(h, req(2, four(40000, 4 * GiB, 1000, 1000))));
  // cpu capacity 56000, used 44000: growing consumer 1 by 12000 fits, by 12001 not.
  auto too_big = l.resize(h, id(1), four(16001, 4 * GiB, 1000, 1000));
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().code() == errc::insufficient_capacity);
  CHECK(has(too_big.error().message(), "cpu: asked 12001 millicores, free 12000 millicores"));
  CHECK(l.view(h)->inventories[0].used == 44000);

  auto grown = l.resize(h, id(1), four(16000, 8 * GiB, 500, 1000));
  REQUIRE(grown);
  auto v = *l.view(h);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).used == 56000);
  CHECK(inv_of(v, provider_kind::host, rk::memory).used == 12 * GiB);
  CHECK(inv_of(v, provider_kind::host, rk::disk_iops).used == 1500);

  // Drop net and disk, keep cpu and memory.
  resource_amounts small;
  small.set<rk::cpu>(millicores{1000}).set<rk::memory>(bytes{GiB});
  REQUIRE(l.resize(h, id(1), small));
  v = *l.view(h);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).used == 41000);
  CHECK(inv_of(v, provider_kind::host, rk::disk_iops).used == 1000);
  CHECK(inv_of(v, provider_kind::host, rk::net_bandwidth).used == 1000);
  // Step rules apply to the new amount.
  small.set<rk::memory>(bytes{GiB + 1});
  CHECK(l.resize(h, id(1), small).error().code() == errc::out_of_range);
  CHECK(l.resize(h, id(1), resource_amounts{}).error().code() == errc::invalid_argument);
  CHECK(l.resize(h, id(9), small).error().code() == errc::not_found);
  CHECK(l.audit(h));
}

TEST_CASE("generations: a reservation made against stale generations fails cleanly and can be retried") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  auto snap = *l.view(h);
  auto r1 = req(1, four(1000, GiB, 10, 10));
  r1.seen = snap.generations;
  REQUIRE(l.reserve(h, r1));
  // Another client decided on the same snapshot: conflict, nothing applied.
  auto r2 = req(2, four(1000, GiB, 10, 10));
  r2.seen = snap.generations;
  auto lost = l.reserve(h, r2);
  REQUIRE_FALSE(lost);
  CHECK(lost.error().code() == errc::conflict);
  CHECK(has(lost.error().message(), "generation 0 seen, now 1; re-read and retry"));
  CHECK(l.view(h)->reservations == 1);
  // Re-read and retry.
  snap = *l.view(h);
  r2.seen = snap.generations;
  REQUIRE(l.reserve(h, r2));
  // Release with a stale snapshot is refused too; with a fresh one it works.
  CHECK(l.release(h, id(1), snap.generations).error().code() == errc::conflict);
  REQUIRE(l.release(h, id(1), l.view(h)->generations));
  // Generations only move for the inventories a change touched.
  auto before = *l.view(h);
  resource_amounts a;
  a.set<rk::memory>(bytes{GiB});
  REQUIRE(l.reserve(h, req(3, a)));
  auto after = *l.view(h);
  CHECK(after.generations[0] == before.generations[0]);      // cpu
  CHECK(after.generations[1] == before.generations[1] + 1);  // memory
}

TEST_CASE("set_inventory: compare-and-swap, lowering capacity below use") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  resource_amounts a;
  a.set<rk::memory>(bytes{20 * GiB});
  REQUIRE(l.reserve(h, req(1, a)));
  REQUIRE(l.reserve(h, req(10, a)));
  auto v = *l.view(h);
  const auto& mem = inv_of(v, provider_kind::host, rk::memory);
  auto inv = mem.inventory;
  inv.total = 32 * GiB;
  CHECK(l.set_inventory(h, provider_ref::host(), inv, mem.generation + 5).error().code() == errc::conflict);
  REQUIRE(l.set_inventory(h, provider_ref::host(), inv, mem.generation));
  v = *l.view(h);
  const auto& m2 = inv_of(v, provider_kind::host, rk::memory);
  CHECK(m2.capacity == 28 * GiB);
  CHECK(m2.used == 40 * GiB);
  CHECK(m2.over_capacity);
  CHECK(m2.free == 0);
  a.set<rk::memory>(bytes{GiB});
  CHECK(l.reserve(h, req(2, a)).error().code() == errc::insufficient_capacity);
  REQUIRE(l.release(h, id(1)));
  REQUIRE(l.release(h, id(10)));
  CHECK(l.reserve(h, req(2, a)));
  // A new kind can be added to a provider; a bad one is refused.
  REQUIRE(l.set_inventory(h, provider_ref::host(), any_inventory::of(inventory<rk::llc>{.total = cache_ways{12}})));
  CHECK(l.set_inventory(h, provider_ref::numa_cell(3), any_inventory::of(inventory<rk::llc>{.total = cache_ways{12}}))
            .error()
            .code() == errc::not_found);
  CHECK(l.audit(h));
}

TEST_CASE("CPU pools: LSE exclusive ids, LSR reserved ids BE may share, LS shared pool") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(numa_host());
  auto v = *l.view(h);
  // 8 CPUs, CPU 0 reserved, ratio 2: (8000 - 1000) x 2.
  CHECK(inv_of(v, provider_kind::host, rk::cpu).capacity == 14000);
  CHECK(inv_of(v, provider_kind::cell, rk::cpu, 0).capacity == 6000);
  CHECK(inv_of(v, provider_kind::cell, rk::cpu, 1).capacity == 8000);
  REQUIRE(v.pools);
  CHECK(v.pools->shared.to_string() == "1-7");

  resource_amounts two;
  two.set<rk::cpu>(millicores{2000});
  auto lse = l.reserve(h, req(1, two, "t1", qos_class::LSE));
  REQUIRE(lse);
  CHECK(lse->cpus.to_string() == "1-2");
  resource_amounts one;
  one.set<rk::cpu>(millicores{1000});
  auto lsr = l.reserve(h, req(2, one, "t1", qos_class::LSR));
  REQUIRE(lsr);
  CHECK(lsr->cpus.to_string() == "3");
  v = *l.view(h);
  CHECK(v.pools->lse.to_string() == "1-2");
  CHECK(v.pools->lsr.to_string() == "3");
  CHECK(v.pools->shared.to_string() == "4-7");
  CHECK(v.pools->be_allowed().to_string() == "3-7");  // BE may share LSR's CPU, never LSE's
  // Pinned CPUs leave the shared pool before the ratio: (8000 - 1000 - 3000) x 2.
  CHECK(inv_of(v, provider_kind::host, rk::cpu).capacity == 8000);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).pinned == 3000);
  CHECK(inv_of(v, provider_kind::cell, rk::cpu, 0).capacity == 0);

  // LSE gets whole CPUs only.
  resource_amounts part;
  part.set<rk::cpu>(millicores{1500});
  auto frac = l.reserve(h, req(3, part, "t1", qos_class::LSE));
  REQUIRE_FALSE(frac);
  CHECK(frac.error().code() == errc::out_of_range);
  CHECK(has(frac.error().message(), "whole CPUs"));

  // LS fills the shared pool; pinning more would shrink it below use.
  resource_amounts ls;
  ls.set<rk::cpu>(millicores{7000});
  REQUIRE(l.reserve(h, req(4, ls)));
  auto squeeze = l.reserve(h, req(5, one, "t1", qos_class::LSE));
  REQUIRE_FALSE(squeeze);
  CHECK(squeeze.error().code() == errc::insufficient_capacity);
  CHECK(has(squeeze.error().message(), "leave the shared pool 6000 millicores, below the 7000 millicores"));
  // Not enough free ids: the refusal lists them.
  REQUIRE(l.release(h, id(4)));
  resource_amounts five;
  five.set<rk::cpu>(millicores{5000});
  auto many = l.reserve(h, req(6, five, "t1", qos_class::LSE));
  REQUIRE_FALSE(many);
  CHECK(has(many.error().message(), "asked 5 whole CPUs for LSE, free 4 (4-7)"));
  // Release gives the ids back.
  REQUIRE(l.release(h, id(1)));
  v = *l.view(h);
  CHECK(v.pools->lse.empty());
  CHECK(v.pools->shared.to_string() == "1-2,4-7");
  // LSE/LSR need a host with CPU ids.
  auto p = *l.add_host(plain_host("plain"));
  CHECK(l.reserve(p, req(7, two, "t1", qos_class::LSE)).error().code() == errc::invalid_argument);
  CHECK(l.audit(h));
}

TEST_CASE("CPU pool resize grows and shrinks pinned ids") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(numa_host());
  resource_amounts a;
  a.set<rk::cpu>(millicores{1000});
  auto r = l.reserve(h, req(1, a, "t1", qos_class::LSE));
  REQUIRE(r);
  CHECK(r->cpus.to_string() == "1");
  a.set<rk::cpu>(millicores{3000});
  auto g = l.resize(h, id(1), a);
  REQUIRE(g);
  CHECK(g->cpus.to_string() == "1-3");
  a.set<rk::cpu>(millicores{2000});
  auto s = l.resize(h, id(1), a);
  REQUIRE(s);
  CHECK(s->cpus.to_string() == "1-2");
  CHECK(l.view(h)->pools->shared.to_string() == "3-7");
  CHECK(l.audit(h));
}

TEST_CASE("single-numa-node: everything from one cell, or a refusal naming each cell") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(numa_host());
  const auto numa_req = [](std::uint64_t n, std::uint64_t cpu_mc, std::uint64_t mem) {
    auto r = req(n, resource_amounts{}.set<rk::cpu>(millicores{cpu_mc}).set<rk::memory>(bytes{mem}));
    r.policy = numa_policy::single_numa_node;
    return r;
  };
  auto big = l.reserve(h, numa_req(1, 1000, 10 * GiB));
  REQUIRE_FALSE(big);
  CHECK(big.error().code() == errc::insufficient_capacity);
  CHECK(has(big.error().message(), "no cell fits: cell 0: host 'n1' cell 0 memory: asked 10737418240 bytes, free 8589934592"));
  CHECK(has(big.error().message(), "cell 1: host 'n1' cell 1 memory"));

  auto a = l.reserve(h, numa_req(2, 4000, 6 * GiB));
  REQUIRE(a);
  CHECK(a->cell == 0u);
  auto b = l.reserve(h, numa_req(3, 2000, 6 * GiB));
  REQUIRE(b);
  CHECK(b->cell == 1u);  // cell 0 has 2 GiB left
  // Cell 0: cpu 6000 capacity, 4000 used; cell 1: 8000, 2000 used.
  auto c = l.reserve(h, numa_req(4, 3000, GiB));
  REQUIRE(c);
  CHECK(c->cell == 1u);
  auto v = *l.view(h);
  CHECK(inv_of(v, provider_kind::cell, rk::cpu, 0).used == 4000);
  CHECK(inv_of(v, provider_kind::cell, rk::cpu, 1).used == 5000);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).used == 9000);  // the host aggregates
  CHECK(inv_of(v, provider_kind::host, rk::memory).used == 13 * GiB);

  // policy none with the host's 16 GiB aggregate: 3 GiB left on the host.
  auto none = req(5, resource_amounts{}.set<rk::memory>(bytes{3 * GiB}));
  auto nr = l.reserve(h, none);
  REQUIRE(nr);
  CHECK_FALSE(nr->cell.has_value());
  // A named cell.
  auto named = numa_req(6, 1000, GiB);
  named.cell = 0;
  CHECK(l.reserve(h, named).error().code() == errc::insufficient_capacity);  // host memory is full now
  named.cell = 7;
  CHECK(l.reserve(h, named).error().code() == errc::not_found);
  // LSE single-numa takes ids from one cell, and only where pinning leaves
  // the shared pool enough for what LS already uses there.
  REQUIRE(l.release(h, id(5)));
  auto lse = numa_req(7, 2000, GiB);
  lse.qos = qos_class::LSE;
  auto squeezed = l.reserve(h, lse);
  REQUIRE_FALSE(squeezed);
  CHECK(has(squeezed.error().message(), "cell 0 cpu: pinning 2000 millicores"));
  CHECK(has(squeezed.error().message(), "cell 1 cpu: pinning 2000 millicores"));
  REQUIRE(l.release(h, id(4)));
  auto lr = l.reserve(h, lse);
  REQUIRE(lr);
  CHECK(lr->cell == 1u);
  CHECK(lr->cpus.to_string() == "4-5");
  CHECK(l.audit(h));
}

TEST_CASE("physical isolation: exclusive host, cell and card; tenancy report") {
  bulkhead::ledger::ledger l;
  auto spec = numa_host("iso");
  card_spec c0, c1;
  c0.name = "card0";
  c0.inventories = {any_inventory::of(inventory<rk::offload_function>{.total = offload_functions{8}})};
  c1.name = "card1";
  c1.inventories = {any_inventory::of(inventory<rk::offload_function>{.total = offload_functions{8}})};
  spec.cards = {c0, c1};
  auto h = *l.add_host(spec);
  const auto mem = [](std::uint64_t n, std::string t) {
    return req(n, resource_amounts{}.set<rk::memory>(bytes{GiB}), std::move(t));
  };

  SUBCASE("host") {
    auto bank = mem(1, "bank");
    bank.exclusive = isolation_scope::host;
    REQUIRE(l.reserve(h, bank));
    auto other = l.reserve(h, mem(2, "shop"));
    REQUIRE_FALSE(other);
    CHECK(other.error().code() == errc::insufficient_capacity);
    CHECK(has(other.error().message(), "isolation: host 'iso' is held exclusively by tenant 'bank'"));
    CHECK(l.reserve(h, mem(3, "bank")));  // the same tenant may add more
    auto t = *l.tenancy(h);
    CHECK(t.entries[0].exclusive_holder == std::optional<std::string>("bank"));
    CHECK(t.entries[0].tenants == std::vector<std::string>{"bank"});
    REQUIRE(l.release(h, id(1)));
    CHECK(l.tenancy(h)->entries[0].exclusive_holder == std::nullopt);
    CHECK(l.reserve(h, mem(2, "shop")));
    // Asking for the whole host while others are there is refused.
    auto late = mem(4, "gov");
    late.exclusive = isolation_scope::host;
    auto lr = l.reserve(h, late);
    REQUIRE_FALSE(lr);
    CHECK(has(lr.error().message(), "holds other tenants' instances: 'bank', 'shop'"));
  }
  SUBCASE("cell") {
    auto bank = mem(1, "bank");
    bank.exclusive = isolation_scope::cell;
    auto br = l.reserve(h, bank);
    REQUIRE(br);
    REQUIRE(br->cell == 0u);
    auto other = mem(2, "shop");
    other.policy = numa_policy::single_numa_node;
    auto orr = l.reserve(h, other);
    REQUIRE(orr);
    CHECK(orr->cell == 1u);  // steered off the exclusive cell
    other.cell = 0;
    other.uuid = id(3);
    auto on0 = l.reserve(h, other);
    REQUIRE_FALSE(on0);
    CHECK(has(on0.error().message(), "cell 0 is held exclusively by tenant 'bank'"));
    auto floating = l.reserve(h, mem(4, "shop"));
    REQUIRE_FALSE(floating);
    CHECK(has(floating.error().message(), "not bound to a cell could run there"));
    auto t = *l.tenancy(h);
    REQUIRE(t.entries.size() == 5);  // host, 2 cells, 2 cards
    CHECK(t.entries[1].where == "host 'iso' cell 0");
    CHECK(t.entries[1].exclusive_holder == std::optional<std::string>("bank"));
    CHECK(t.entries[2].tenants == std::vector<std::string>{"shop"});
    CHECK(t.entries[0].tenants == std::vector<std::string>{"bank", "shop"});
  }
  SUBCASE("cell refused while another tenant floats") {
    REQUIRE(l.reserve(h, mem(1, "shop")));
    auto bank = mem(2, "bank");
    bank.exclusive = isolation_scope::cell;
    auto r = l.reserve(h, bank);
    REQUIRE_FALSE(r);
    CHECK(has(r.error().message(), "not bound to a cell, which may run on any cell"));
  }
  SUBCASE("card") {
    auto vf = [](std::uint64_t n, std::string t) {
      return req(n, resource_amounts{}.set<rk::offload_function>(offload_functions{2}), std::move(t));
    };
    auto bank = vf(1, "bank");
    bank.exclusive = isolation_scope::card;
    auto br = l.reserve(h, bank);
    REQUIRE(br);
    CHECK(br->card == std::optional<std::string>("card0"));
    auto shop = l.reserve(h, vf(2, "shop"));
    REQUIRE(shop);
    CHECK(shop->card == std::optional<std::string>("card1"));
    auto shop2 = vf(3, "shop");
    shop2.card = "card0";
    auto r = l.reserve(h, shop2);
    REQUIRE_FALSE(r);
    CHECK(has(r.error().message(), "card 'card0' is held exclusively by tenant 'bank'"));
    auto t = *l.tenancy(h);
    CHECK(t.entries[3].where == "host 'iso' card 'card0'");
    CHECK(t.entries[3].exclusive_holder == std::optional<std::string>("bank"));
    CHECK(t.entries[4].tenants == std::vector<std::string>{"shop"});
  }
  CHECK(l.audit(h));
}

TEST_CASE("offload cards: a request is bound to a card that holds all its card kinds") {
  bulkhead::ledger::ledger l;
  auto spec = plain_host("cards");
  card_spec c0, c1;
  c0.name = "c0";
  c0.inventories = {any_inventory::of(inventory<rk::net_pps>{.total = packets_per_second{1000}})};
  c1.name = "c1";
  c1.inventories = {any_inventory::of(inventory<rk::net_pps>{.total = packets_per_second{5000}}),
                    any_inventory::of(inventory<rk::offload_function>{.total = offload_functions{4}})};
  spec.cards = {c0, c1};
  auto h = *l.add_host(spec);
  auto a = req(1, resource_amounts{}.set<rk::net_pps>(packets_per_second{800}));
  CHECK(l.reserve(h, a)->card == std::optional<std::string>("c0"));
  a.uuid = id(2);
  CHECK(l.reserve(h, a)->card == std::optional<std::string>("c1"));  // c0 has 200 left
  auto both = req(3, resource_amounts{}.set<rk::net_pps>(packets_per_second{100}).set<rk::offload_function>(offload_functions{1}));
  CHECK(l.reserve(h, both)->card == std::optional<std::string>("c1"));  // c0 lacks functions
  auto none = req(4, resource_amounts{}.set<rk::net_pps>(packets_per_second{9000}));
  auto r = l.reserve(h, none);
  REQUIRE_FALSE(r);
  CHECK(has(r.error().message(), "nothing fits: card 'c0': host 'cards' card 'c0' net_pps: asked 9000 packets_sec"));
  CHECK(has(r.error().message(), "card 'c1': "));
  CHECK(l.audit(h));
}

TEST_CASE("BE reservations draw on batch inventories the co-location engine publishes") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  auto be = req(1, resource_amounts{}.set<rk::cpu>(millicores{4000}), "batch", qos_class::BE);
  auto r = l.reserve(h, be);
  REQUIRE_FALSE(r);
  CHECK(has(r.error().message(), "no batch cpu inventory"));
  REQUIRE(l.set_be_capacity<rk::cpu>(h, millicores{6000}));
  REQUIRE(l.reserve(h, be));
  auto v = *l.view(h);
  CHECK(inv_of(v, provider_kind::be, rk::cpu).used == 4000);
  CHECK(inv_of(v, provider_kind::host, rk::cpu).used == 0);  // not the online inventory
  be.uuid = id(2);
  CHECK(l.reserve(h, be).error().code() == errc::insufficient_capacity);
  // Batch capacity may fall to 0 (a peak window): nothing is taken away.
  REQUIRE(l.set_be_capacity<rk::cpu>(h, millicores{0}));
  v = *l.view(h);
  CHECK(inv_of(v, provider_kind::be, rk::cpu).over_capacity);
  auto bad = be;
  bad.policy = numa_policy::single_numa_node;
  CHECK(l.reserve(h, bad).error().code() == errc::invalid_argument);
  CHECK(l.audit(h));
}

TEST_CASE("request validation and host lifecycle") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  CHECK(l.reserve(h, req(1, resource_amounts{})).error().code() == errc::invalid_argument);
  CHECK(l.reserve(h, req(1, four(1000, GiB, 1, 1), "")).error().code() == errc::invalid_argument);
  auto no_llc = l.reserve(h, req(1, resource_amounts{}.set<rk::llc>(cache_ways{2})));
  REQUIRE_FALSE(no_llc);
  CHECK(has(no_llc.error().message(), "host 'h1' has no llc inventory"));
  auto single = req(1, four(1000, GiB, 1, 1));
  single.policy = numa_policy::single_numa_node;
  CHECK(has(l.reserve(h, single).error().message(), "has no NUMA cells"));
  REQUIRE(l.reserve("h1", req(2, four(1000, GiB, 1, 1))));
  CHECK(l.reserve("nope", req(3, four(1000, GiB, 1, 1))).error().code() == errc::not_found);
  CHECK(l.remove_host(h).error().code() == errc::conflict);
  REQUIRE(l.release(h, id(2)));
  REQUIRE(l.remove_host(h));
  CHECK(l.view(h).error().code() == errc::not_found);
  CHECK(l.find_host("h1").error().code() == errc::not_found);
  CHECK(l.hosts().empty());
  CHECK(l.view(host_ref{}).error().code() == errc::not_found);
}

TEST_CASE("views serialise to JSON with integers only") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(numa_host());
  REQUIRE(l.reserve(h, req(1, resource_amounts{}.set<rk::cpu>(millicores{2000}), "t1", qos_class::LSE)));
  nlohmann::json j = *l.view(h);
  CHECK(integers_only(j));
  CHECK(j["pools"]["lse"] == "1-2");
  CHECK(j["inventories"][0]["inventory"]["allocation_ratio"]["num"] == 2);
  nlohmann::json t = *l.tenancy(h);
  CHECK(t["entries"][0]["tenants"][0] == "t1");
  nlohmann::json rs = *l.reservations(h);
  CHECK(rs[0]["amounts"]["cpu"]["count"] == 2000);
  CHECK(rs[0]["qos"] == "LSE");
}

TEST_CASE("many tenants come and go: names are recycled and the books stay right") {
  bulkhead::ledger::ledger l;
  auto h = *l.add_host(plain_host());
  resource_amounts a;
  a.set<rk::memory>(bytes{GiB});
  REQUIRE(l.reserve(h, req(100000, a, "stays")));
  for (std::uint64_t i = 0; i < 600; ++i) {
    REQUIRE(l.reserve(h, req(i, a, "tenant-" + std::to_string(i))));
    REQUIRE(l.release(h, id(i)));
  }
  REQUIRE(l.reserve(h, req(1, a, "tenant-1")));
  CHECK(l.audit(h));
  auto t = *l.tenancy(h);
  CHECK(t.entries[0].tenants == std::vector<std::string>{"stays", "tenant-1"});
  CHECK(t.entries[0].reservations == 2);
}
