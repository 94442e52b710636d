// Counter flattening, rollups (dedup rule, calendar hours, groupings), the
// checkpoint body and JSON export.
#include <doctest/doctest.h>

#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/accounting/rollup.hpp"
#include "bulkhead/accounting/rollup_json.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
using namespace std::chrono_literals;

namespace {
const uuid vm1 = *uuid::parse("11111111-1111-1111-1111-111111111111");
const uuid vm2 = *uuid::parse("22222222-2222-2222-2222-222222222222");
constexpr std::int64_t hour0 = 1'700'000'000 / 3600 * 3600;  // a UTC hour start, seconds

mono_time at(std::int64_t s) { return mono_time{} + std::chrono::seconds(1000 + s); }
// wall time of mono second s: the hour starts at mono second 0.
wall_time wall(std::int64_t s) { return wall_time{} + std::chrono::seconds(hour0 + s); }
delta dl(std::int64_t s, std::int64_t e, std::uint64_t amount, std::uint64_t end_value, std::uint8_t flags = 0) {
  return delta{at(s), at(e), wall(e), amount, end_value, flags};
}
series_key key(std::string counter, const uuid& u = vm1, std::uint64_t run = 1, series_kind kind = series_kind::usage) {
  return series_key{"test:///default", u, incarnation{run}, std::move(counter), 64, kind};
}
}  // namespace

TEST_CASE("flatten names every counter the sample has, and none it lacks") {
  usage_sample s;
  s.cpu_time = 5s;
  s.vcpu_time = {1s, 2s};
  s.vcpu_wait = {3ms};
  s.vcpu_delay = {4ms, 5ms};
  disk_counters d;
  d.target = "vda";
  d.read_bytes = bytes{100};
  d.write_requests = operations{3};
  d.flush_requests = operations{4};
  d.write_time = 6ms;
  s.disks.push_back(d);
  interface_counters n;
  n.mac = "52:54:00:aa:bb:cc";
  n.target = "vnet0";
  n.rx_bytes = bytes{7};
  n.tx_packets = packets{2};
  s.interfaces.push_back(n);
  interface_counters n2;
  n2.target = "testnet0";
  n2.tx_bytes = bytes{9};
  s.interfaces.push_back(n2);
  s.memory_current = bytes{1 << 20};  // a gauge: not a counter
  const auto f = flatten(s);
  const std::vector<counter_value> want{
      {"cpu_time_ns", 5'000'000'000},      {"vcpu/0/time_ns", 1'000'000'000},
      {"vcpu/1/time_ns", 2'000'000'000},   {"vcpu/0/wait_ns", 3'000'000},
      {"vcpu/0/delay_ns", 4'000'000},      {"vcpu/1/delay_ns", 5'000'000},
      {"disk/vda/write_requests", 3},      {"disk/vda/read_bytes", 100},
      {"disk/vda/flush_requests", 4},      {"disk/vda/write_time_ns", 6'000'000},
      {"net/52:54:00:aa:bb:cc/rx_bytes", 7},
      {"net/52:54:00:aa:bb:cc/tx_packets", 2}, {"net/testnet0/tx_bytes", 9},
  };
  CHECK(f == want);
  // Reusing the output vector gives the same result.
  std::vector<counter_value> out(20);
  flatten(s, out);
  CHECK(out == want);
  CHECK(classify("cpu_time_ns", series_kind::usage) == counter_class::cpu_time);
  CHECK(classify("disk/vda/read_bytes", series_kind::usage) == counter_class::disk_read_bytes);
  CHECK(classify("disk/vda/write_bytes", series_kind::usage) == counter_class::disk_write_bytes);
  CHECK(classify("net/52:54:00:aa:bb:cc/rx_bytes", series_kind::usage) == counter_class::net_rx_bytes);
  CHECK(classify("net/testnet0/tx_bytes", series_kind::usage) == counter_class::net_tx_bytes);
  CHECK(classify("vcpu/0/time_ns", series_kind::usage) == counter_class::other);
  CHECK(classify("vcpu/0/delay_ns", series_kind::usage) == counter_class::other);
  CHECK(classify("disk/vda/write_time_ns", series_kind::usage) == counter_class::other);
  CHECK(classify("disk/vda/flush_requests", series_kind::usage) == counter_class::other);
  CHECK(classify("alloc/vcpus", series_kind::allocation) == counter_class::vcpus);
  CHECK(classify("alloc/memory_bytes", series_kind::allocation) == counter_class::memory_bytes);
}

TEST_CASE("allocation_of takes vCPUs and memory from the spec") {
  quota_spec q;
  CHECK(allocation_of(q) == allocation_levels{});
  q.cpu.max_vcpus = 4;
  q.memory.hard_limit = limit<bytes>{bytes{1 << 30}};
  CHECK(allocation_of(q) == allocation_levels{4, bytes{1 << 30}});
  q.cpu.vcpus = 2;
  q.memory.max = bytes{2ull << 30};
  CHECK(allocation_of(q) == allocation_levels{2, bytes{2ull << 30}});
}

TEST_CASE("a resubmitted delta is a duplicate; an overlapping one is a conflict") {
  rollup r;
  auto id = r.define(key("cpu_time_ns"), {}).value();
  CHECK(r.define(key("cpu_time_ns"), {}).value() == id);
  CHECK(r.check(id, dl(0, 1, 10, 10)).value() == delta_check::fresh);
  r.apply(id, dl(0, 1, 10, 10));
  r.apply(id, dl(1, 2, 10, 20));
  CHECK(r.check(id, dl(0, 1, 10, 10)).value() == delta_check::duplicate);
  CHECK(r.check(id, dl(1, 2, 10, 20)).value() == delta_check::duplicate);
  auto overlap = r.check(id, dl(1, 3, 20, 30));
  REQUIRE_FALSE(overlap);
  CHECK(overlap.error().code() == errc::conflict);
  auto before = r.check(id, dl(-5, -4, 1, 1));
  REQUIRE_FALSE(before);
  CHECK(before.error().message().find("monotonic clock restart") != std::string::npos);
  auto empty = r.check(id, dl(3, 3, 0, 20));
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code() == errc::invalid_argument);
  CHECK(r.check(99, dl(3, 4, 0, 20)).error().code() == errc::not_found);
  CHECK(r.check(id, dl(2, 3, 5, 25)).value() == delta_check::fresh);
  CHECK(r.total().cpu_time_ns == 20);
}

TEST_CASE("a delta across an hour boundary is split in proportion; the hours sum exactly") {
  rollup r;
  auto id = r.define(key("cpu_time_ns"), {}).value();
  // 1000 ns of CPU over (3599 s, 3602 s]: 1 s in hour 0, 2 s in hour 1.
  r.apply(id, delta{at(3599), at(3602), wall(3602), 1000, 1000, 0});
  auto h = r.by_hour();
  REQUIRE(h.size() == 2);
  CHECK(h[0].hour == hour0);
  CHECK(h[1].hour == hour0 + 3600);
  CHECK(h[0].totals.cpu_time_ns == 333);  // floor(1000 * 1/3)
  CHECK(h[1].totals.cpu_time_ns == 667);  // the remainder
  CHECK(h[1].totals.deltas == 1);
  // Allocation splits exactly.
  auto mem = r.define(key("alloc/memory_bytes", vm1, 1, series_kind::allocation), {}).value();
  r.apply(mem, delta{at(3599), at(3602), wall(3602), 7, 7, 0});
  h = r.by_hour();
  CHECK(h[0].totals.memory_reserved_byte_ns == 7ull * 1'000'000'000);
  CHECK(h[1].totals.memory_reserved_byte_ns == 7ull * 2'000'000'000);
  CHECK(r.total().memory_reserved_byte_ns == 21ull * 1'000'000'000);
  // A delta ending exactly on the boundary stays in the earlier hour.
  auto disk = r.define(key("disk/vda/read_bytes"), {}).value();
  r.apply(disk, delta{at(3590), at(3600), wall(3600), 5, 5, 0});
  h = r.by_hour();
  CHECK(h[0].totals.disk_read_bytes == 5);
  CHECK(h[1].totals.disk_read_bytes == 0);
}

TEST_CASE("rollups group by incarnation, instance, tenant and class") {
  rollup r;
  instance_labels a{"web", std::string("acme"), qos_class::LS};
  instance_labels b{"batch", std::string("zeta"), qos_class::BE};
  auto c1 = r.define(key("cpu_time_ns", vm1, 1), a).value();
  auto c2 = r.define(key("cpu_time_ns", vm1, 2), a).value();
  auto n1 = r.define(key("net/52:54:00:aa:bb:cc/tx_bytes", vm1, 2), a).value();
  auto c3 = r.define(key("cpu_time_ns", vm2, 1), b).value();
  r.apply(c1, dl(0, 1, 100, 100));
  r.apply(c1, dl(1, 2, 50, 50, delta_flag::reset));
  r.apply(c2, dl(5, 6, 7, 7));
  r.apply(n1, dl(5, 6, 9, 9));
  r.apply(c3, dl(0, 1, 1000, 1000));
  r.apply_gap(gap_record{"test:///default", vm1, at(2), at(5), wall(5), 1, "read failed"});
  CHECK_FALSE(r.apply_gap(gap_record{"test:///default", vm1, at(2), at(5), wall(5), 1, "read failed"}));
  auto inc = r.by_incarnation();
  REQUIRE(inc.size() == 3);
  CHECK(inc[0].incarnation.value == 1);
  CHECK(inc[0].totals.cpu_time_ns == 150);
  CHECK(inc[0].totals.resets == 1);
  CHECK(inc[1].totals.cpu_time_ns == 7);
  CHECK(inc[1].totals.net_tx_bytes == 9);
  auto inst = r.by_instance();
  REQUIRE(inst.size() == 2);
  CHECK(inst[0].uuid == vm1);
  CHECK(inst[0].incarnations == 2);
  CHECK(inst[0].totals.cpu_time_ns == 157);
  CHECK(inst[0].totals.gaps == 1);
  CHECK(inst[0].labels == a);
  CHECK(inst[1].totals.cpu_time_ns == 1000);
  auto ten = r.by_tenant();
  REQUIRE(ten.size() == 2);
  CHECK(*ten[0].tenant == "acme");
  CHECK(ten[0].totals.cpu_time_ns == 157);
  CHECK(ten[0].totals.gaps == 1);
  auto q = r.by_qos();
  REQUIRE(q.size() == 2);
  CHECK(*q[0].qos == qos_class::LS);
  CHECK(*q[1].qos == qos_class::BE);
  CHECK(q[1].totals.cpu_time_ns == 1000);
  auto ctr = r.by_counter(vm1);
  CHECK(ctr.at("cpu_time_ns") == 157);
  CHECK(r.total().cpu_time_ns == 1157);
  CHECK(r.total().gaps == 1);
}

TEST_CASE("the checkpoint body round-trips and rejects damage") {
  rollup r;
  auto c = r.define(key("cpu_time_ns"), {"web", std::string("acme"), qos_class::LSR}).value();
  auto m = r.define(key("alloc/memory_bytes", vm2, 3, series_kind::allocation), {}).value();
  r.apply_gap(gap_record{"test:///default", vm2, at(0), at(1), wall(1), 2, "x"});
  r.apply(c, dl(0, 1, 100, 100));
  r.apply(c, delta{at(1), at(3700), wall(3700), 1 << 20, (1 << 20) + 100, 0});
  r.apply(m, dl(0, 1, ~std::uint64_t{0}, 5));
  std::string body;
  r.serialize(body);
  auto back = rollup::parse(body);
  REQUIRE(back);
  CHECK(*back == r);
  CHECK(back->by_hour().size() == r.by_hour().size());
  CHECK(back->total() == r.total());
  // Continues exactly as the original would.
  CHECK(back->check(c, dl(1, 2, 1, 1)).value() == delta_check::duplicate);
  for (std::size_t cut : {std::size_t{0}, body.size() / 2, body.size() - 1}) {
    auto bad = rollup::parse(std::string_view(body).substr(0, cut));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == errc::corrupt);
  }
}

TEST_CASE("JSON export: integers only, 128-bit values as decimal strings") {
  rollup r;
  auto m = r.define(key("alloc/memory_bytes", vm1, 1, series_kind::allocation), {"web", std::nullopt, qos_class::LS}).value();
  r.apply(m, dl(0, 10, 1ull << 40, 1ull << 40));
  nlohmann::json j = r;
  REQUIRE(j["instances"].size() == 1);
  const auto& a = j["instances"][0]["accounted"];
  CHECK(a["memory_reserved_byte_ns"] == "10995116277760000000000");
  CHECK(a["cpu_time_ns"] == "0");
  CHECK(a["resets"] == 0);
  CHECK(a["gaps"] == 0);
  for (auto f : {"cpu_time_ns", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes",
                 "vcpu_reserved_ns", "memory_reserved_byte_ns", "resets", "gaps"})
    CHECK(a.contains(f));
  CHECK(j["instances"][0]["qos_class"] == "LS");
  CHECK(j["instances"][0]["tenant"].is_null());
  CHECK(j["hours"][0]["utc"] == utc_hour_text(hour0));
  CHECK(utc_hour_text(0) == "1970-01-01T00:00:00Z");
  CHECK(to_decimal(~u128{0}) == "340282366920938463463374607431768211455");
  CHECK(parse_u128("340282366920938463463374607431768211455", "x").value() == ~u128{0});
  CHECK(parse_u128("340282366920938463463374607431768211456", "x").error().code() == errc::overflow);
  CHECK(parse_u128("12a", "x").error().code() == errc::parse_error);
}
