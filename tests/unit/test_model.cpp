// The vocabulary: identities, enums and their text forms, cpu sets, specs.
#include <doctest/doctest.h>

#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/detail/text.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

TEST_CASE("uuid parse and format") {
  auto u = uuid::parse("6695EB01-F6A4-8304-79AA-97F2502E193F");
  REQUIRE(u);
  CHECK(u->to_string() == "6695eb01-f6a4-8304-79aa-97f2502e193f");
  auto v = uuid::parse("6695eb01f6a4830479aa97f2502e193f");
  REQUIRE(v);
  CHECK(*u == *v);
  CHECK_FALSE(u->is_nil());
  CHECK(uuid{}.is_nil());
  for (auto bad : {"", "6695eb01-f6a4-8304-79aa-97f2502e193", "6695eb01xf6a4-8304-79aa-97f2502e193f",
                   "6695eb01-f6a4-8304-79aa-97f2502e193g"}) {
    auto r = uuid::parse(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::parse_error);
    CHECK(r.error().message().find("uuid") != std::string::npos);
  }
}

TEST_CASE("instance_id orders by uuid then incarnation") {
  auto u = *uuid::parse("00000000-0000-0000-0000-000000000001");
  instance_id a{u, incarnation{1}}, b{u, incarnation{2}}, off{u, std::nullopt};
  CHECK(a < b);
  CHECK(a != off);
  CHECK(std::hash<uuid>{}(u) == std::hash<uuid>{}(u));
}

template <class E>
void round_trip() {
  for (const auto& [v, n] : enum_names<E>::values) {
    CHECK(to_string(v) == n);
    auto p = parse_enum<E>(n);
    REQUIRE(p);
    CHECK(*p == v);
  }
  auto bad = parse_enum<E>("no-such-value");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == errc::parse_error);
  CHECK(bad.error().message().find("'no-such-value'") != std::string::npos);
}

TEST_CASE("every enum round-trips through text and rejects unknown text") {
  round_trip<resource_kind>();
  round_trip<isolation_level>();
  round_trip<isolation_mode>();
  round_trip<qos_class>();
  round_trip<instance_kind>();
  round_trip<instance_state>();
  CHECK(parse_enum<qos_class>("LSE").value() == qos_class::LSE);
  CHECK_FALSE(parse_enum<qos_class>("lse"));  // exact case
  CHECK(isolation_level::bare_metal > isolation_level::vm_offload);
  CHECK(isolation_level::vm_offload > isolation_level::vm);
  CHECK(isolation_level::vm > isolation_level::process);
}

TEST_CASE("cpuset parse, format and set algebra") {
  auto s = cpuset::parse("0-3,8,10-11");
  REQUIRE(s);
  CHECK(s->size() == 7);
  CHECK(s->to_string() == "0-3,8,10-11");
  CHECK(s->contains(8));
  CHECK_FALSE(s->contains(9));
  auto x = cpuset::parse("0-7,^2,^5-6");  // libvirt exclusions
  REQUIRE(x);
  CHECK(x->to_string() == "0-1,3-4,7");
  CHECK(cpuset::parse("")->empty());
  CHECK(cpuset::parse(" 1 , 3 \n")->to_string() == "1,3");
  CHECK((cpuset::range(0, 3) - cpuset::range(2, 5)).to_string() == "0-1");
  CHECK((cpuset::range(0, 3) & cpuset::range(2, 5)).to_string() == "2-3");
  CHECK((cpuset::range(0, 1) | cpuset::range(100, 100)).to_string() == "0-1,100");
  CHECK(cpuset::range(0, 3).intersects(cpuset::range(3, 4)));
  CHECK(cpuset::range(1, 2).subset_of(cpuset::range(0, 3)));
  CHECK(cpuset::range(0, 200) - cpuset::range(0, 200) == cpuset{});
  for (auto bad : {"a", "3-1", "1-", "-1", "1,,2", "70000"}) {
    auto r = cpuset::parse(bad);
    CHECK_FALSE(r);
  }
}

TEST_CASE("strict integer parsing names the input") {
  CHECK(detail::parse_u64("18446744073709551615", "x").value() == ~0ull);
  auto o = detail::parse_u64("18446744073709551616", "memory.max");
  REQUIRE_FALSE(o);
  CHECK(o.error().code() == errc::overflow);
  CHECK(o.error().message().rfind("memory.max", 0) == 0);
  CHECK_FALSE(detail::parse_u64("-1", "x"));
  CHECK_FALSE(detail::parse_u64("12x", "x"));
  CHECK_FALSE(detail::parse_u64("", "x"));
  CHECK_FALSE(detail::parse_u64(" 1", "x"));
  CHECK(detail::parse_i64("-1", "x").value() == -1);
  CHECK(detail::parse_hex_u64("0x1af4", "vendor").value() == 0x1af4);
  CHECK(detail::parse_hex_u64("fff", "mask").value() == 0xfff);
  CHECK_FALSE(detail::parse_hex_u64("0x", "mask"));
  CHECK(detail::quote("a\nb") == "'a\\x0ab'");
  CHECK(detail::is_utf8("Žluťoučký kůň"));
  CHECK_FALSE(detail::is_utf8("\xff"));
  CHECK_FALSE(detail::is_utf8("\xc3"));          // truncated
  CHECK_FALSE(detail::is_utf8("\xc0\xaf"));      // overlong
  CHECK_FALSE(detail::is_utf8("\xed\xa0\x80"));  // surrogate
}

TEST_CASE("error context chain") {
  error e(errc::parse_error, "cpu.max: bad");
  e.in("reading cgroup 'batch'").in("cgroup root /sys/fs/cgroup");
  CHECK(e.describe() == "cgroup root /sys/fs/cgroup: reading cgroup 'batch': cpu.max: bad");
  CHECK(to_string(e.code()) == "parse_error");
  result<int> r = fail(errc::not_found, "x");
  r = in_context(std::move(r), "outer");
  CHECK(r.error().describe() == "outer: x");
}

namespace {
quota_spec good_spec() {
  quota_spec s;
  s.cpu.vcpus = 2;
  s.cpu.max_vcpus = 4;
  s.cpu.shares = 2048;
  s.cpu.period = 100000us;
  s.cpu.quota = limit<microseconds>{50000us};
  s.cpu.vcpu_pins = std::vector<vcpu_pin>{{0, cpuset::range(0, 1)}, {1, cpuset::range(2, 3)}};
  s.memory.max = bytes{4ull << 30};
  s.memory.current = bytes{2ull << 30};
  s.memory.hard_limit = limit<bytes>{bytes{3ull << 30}};
  s.memory.soft_limit = limit<bytes>{bytes{2ull << 30}};
  disk_spec d;
  d.target = "vda";
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{10'000'000}};
  d.read_bytes_sec_max = limit<bytes_per_second>{bytes_per_second{20'000'000}};
  s.disks.push_back(d);
  interface_spec i;
  i.mac = "52:54:00:aa:bb:cc";
  i.inbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{1'000'000}}, bytes_per_second{2'000'000},
                                  bytes{1 << 20}, std::nullopt, std::nullopt};
  s.interfaces.push_back(i);
  return s;
}

void expect_invalid(const quota_spec& s, std::string_view field) {
  auto r = validate(s);
  REQUIRE_FALSE(r);
  INFO(r.error().message());
  CHECK(r.error().message().find(field) != std::string::npos);
}
}  // namespace

TEST_CASE("quota_spec validation names the field and the bad value") {
  CHECK(validate(quota_spec{}).has_value());
  CHECK(validate(good_spec()).has_value());
  CHECK(vm_cpu_cap(good_spec().cpu)->value().count() == 1000);  // 50% of 2 vCPUs

  auto s = good_spec();
  s.cpu.shares = 1;
  expect_invalid(s, "cpu.shares: 1 is outside 2..262144");
  s = good_spec();
  s.cpu.weight = 10001;
  expect_invalid(s, "cpu.weight: 10001");
  s = good_spec();
  s.cpu.period = 0us;
  expect_invalid(s, "cpu.period: 0 us");
  s = good_spec();
  s.cpu.period = -5us;
  expect_invalid(s, "cpu.period: -5 us");
  s = good_spec();
  s.cpu.quota = limit<microseconds>{10us};
  expect_invalid(s, "cpu.quota: 10 us");
  s = good_spec();
  s.cpu.vcpus = 8;
  expect_invalid(s, "cpu.vcpus: 8 exceeds cpu.max_vcpus 4");
  s = good_spec();
  s.cpu.vcpus = 0;
  expect_invalid(s, "cpu.vcpus: 0");
  s = good_spec();
  s.cpu.vcpu_pins->push_back({9, cpuset::range(0, 0)});
  expect_invalid(s, "vcpu 9");
  s = good_spec();
  s.memory.soft_limit = limit<bytes>{bytes{8ull << 30}};
  expect_invalid(s, "memory.soft_limit");
  s = good_spec();
  s.memory.current = bytes{8ull << 30};
  expect_invalid(s, "memory.current");
  s = good_spec();
  s.disks[0].total_bytes_sec = limit<bytes_per_second>{bytes_per_second{1}};
  expect_invalid(s, "total_bytes_sec cannot be combined");
  s = good_spec();
  s.disks[0].read_bytes_sec_max = limit<bytes_per_second>{bytes_per_second{1}};
  expect_invalid(s, "read_bytes_sec_max");
  s = good_spec();
  s.disks.push_back(s.disks[0]);
  expect_invalid(s, "listed twice");
  s = good_spec();
  s.interfaces[0].mac = "52:54:00:AA:BB:CC";
  expect_invalid(s, "MAC");
  s = good_spec();
  s.interfaces[0].inbound->peak = bytes_per_second{1};
  expect_invalid(s, "peak");
  s = good_spec();
  s.interfaces[0].outbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{5}}, std::nullopt,
                                                 std::nullopt, bytes_per_second{1}, std::nullopt};
  expect_invalid(s, "outbound.floor");
  s = good_spec();
  s.memory.numa = numa_tune{"sometimes", cpuset::range(0, 0)};
  expect_invalid(s, "memory.numa.mode: 'sometimes'");
  s = good_spec();
  s.blkio_weight = 5;
  expect_invalid(s, "blkio_weight: 5 is outside 10..1000");
  s = good_spec();
  s.memory_bandwidth = memory_bandwidth_spec{false, {{0, 101}}};
  expect_invalid(s, "memory_bandwidth[domain 0]: 101");
}

TEST_CASE("isolation profile per resource") {
  isolation_profile p;
  CHECK_FALSE(p.get(resource_kind::cpu).has_value());
  p.set(resource_kind::cpu, isolation_mode::dedicated);
  p.set(resource_kind::net_bandwidth, isolation_mode::hardware);
  CHECK(p.get(resource_kind::cpu) == isolation_mode::dedicated);
  CHECK(p.get(resource_kind::net_bandwidth) == isolation_mode::hardware);
}
