// Drift: desired vs enforced, knob by knob; the cpu weight <-> shares formula.
#include <doctest/doctest.h>

#include <algorithm>

#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/task_id.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {
const knob_drift* find(const drift_report& r, std::string_view knob) {
  for (const auto& d : r.differs)
    if (d.knob == knob) return &d;
  return nullptr;
}
bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }
}  // namespace

TEST_CASE("cpu weight <-> shares follows the kernel's mapping") {
  CHECK(cpu_shares_from_weight(100) == 1024);
  CHECK(cpu_weight_from_shares(1024) == 100);
  CHECK(cpu_shares_from_weight(1) == 10);
  CHECK(cpu_shares_from_weight(10000) == 102400);
  CHECK(cpu_weight_from_shares(2) == 1);           // below the v2 range: clamped
  CHECK(cpu_weight_from_shares(262144) == 10000);  // above it: clamped
  CHECK(cpu_weight_from_shares(2048) == 200);
  CHECK(cpu_weight_from_shares(1000) == 98);  // 97.66 rounds to 98
  // weight -> shares -> weight is exact over the whole v2 range.
  for (std::uint64_t w = 1; w <= 10000; ++w) REQUIRE(cpu_weight_from_shares(cpu_shares_from_weight(w)) == w);
  // Out-of-range inputs are clamped, never wrap.
  CHECK(cpu_shares_from_weight(0) == 10);
  CHECK(cpu_shares_from_weight(1ull << 40) == 102400);
}

TEST_CASE("knob text carries the unit and spells unlimited") {
  CHECK(knob_text(microseconds{20000}) == "20000 us");
  CHECK(knob_text(limit<bytes>{unlimited}) == "unlimited");
  CHECK(knob_text(limit<bytes>{bytes{4096}}) == "4096 bytes");
  CHECK(knob_text(bytes_per_second{1}) == "1 bytes/s");
  CHECK(knob_text(cpuset::range(0, 3)) == "0-3");
  CHECK(knob_text(cpuset{}) == "(empty)");
  CHECK(mask_text(0x7f0) == "0x7f0");
  CHECK(mask_text(0) == "0x0");
}

TEST_CASE("unset desired knobs are ignored; differing knobs are reported with both values") {
  quota_spec desired, enforced;
  enforced.cpu.quota = limit<microseconds>{microseconds{50000}};
  enforced.cpu.period = microseconds{100000};
  enforced.memory.hard_limit = limit<bytes>{unlimited};
  CHECK(compare(desired, enforced).clean());
  CHECK(compare(desired, enforced).unsupported.empty());

  desired.cpu.quota = limit<microseconds>{microseconds{20000}};
  desired.cpu.period = microseconds{100000};
  desired.memory.hard_limit = limit<bytes>{bytes{1 << 30}};
  auto r = compare(desired, enforced);
  REQUIRE(r.differs.size() == 2);
  const auto* q = find(r, "cpu.quota");
  REQUIRE(q);
  CHECK(q->desired == "20000 us");
  CHECK(q->actual == "50000 us");
  const auto* m = find(r, "memory.hard_limit");
  REQUIRE(m);
  CHECK(m->desired == "1073741824 bytes");
  CHECK(m->actual == "unlimited");
  CHECK_FALSE(find(r, "cpu.period"));
}

TEST_CASE("knobs the backend lacks are unsupported, never 'unlimited'") {
  quota_spec desired, enforced;
  desired.memory.high = limit<bytes>{bytes{1 << 20}};
  desired.cpu.vcpus = 2;
  desired.cpu.request = millicores{500};  // admission only: never compared
  enforced.memory.hard_limit = limit<bytes>{unlimited};
  auto r = compare(desired, enforced);
  CHECK(r.clean());
  CHECK(has(r.unsupported, "memory.high"));
  CHECK(has(r.unsupported, "cpu.vcpus"));
  CHECK(r.unsupported.size() == 2);

  // Listed as unsupported by the reading even though a value is there.
  enforced.memory.high = limit<bytes>{unlimited};
  instance_reading reading;
  reading.enforced = enforced;
  reading.unsupported = {"memory.high", "disks[].total_bytes_sec", "llc"};
  reading.partial.push_back(error(errc::parse_error, "io.max: bad line"));
  desired.cpu.vcpus.reset();
  disk_spec d;
  d.target = "8:16";
  d.total_bytes_sec = limit<bytes_per_second>{bytes_per_second{1000}};
  desired.disks.push_back(d);
  desired.llc = llc_spec{cache_ways{2}, false, {}, {}};
  auto r2 = compare(desired, reading);
  CHECK(has(r2.unsupported, "memory.high"));
  CHECK(has(r2.unsupported, "disks['8:16'].total_bytes_sec"));
  CHECK(has(r2.unsupported, "llc"));
  REQUIRE(r2.read_errors.size() == 1);
  CHECK(r2.clean());
}

TEST_CASE("shares and weight compare on the enforced knob's scale") {
  quota_spec desired, v2, v1;
  v2.cpu.weight = 98;
  v1.cpu.shares = 1000;
  desired.cpu.shares = 1000;  // -> weight 98
  CHECK(compare(desired, v2).clean());
  CHECK(compare(desired, v1).clean());
  desired.cpu.shares = 2048;  // -> weight 200
  auto r = compare(desired, v2);
  REQUIRE(r.differs.size() == 1);
  CHECK(r.differs[0].knob == "cpu.shares");
  CHECK(r.differs[0].desired == "2048 (cpu.weight 200)");
  CHECK(r.differs[0].actual == "cpu.weight 98");

  quota_spec dw;
  dw.cpu.weight = 100;  // -> shares 1024
  v1.cpu.shares = 1024;
  CHECK(compare(dw, v1).clean());
  v1.cpu.shares = 1000;
  auto r1 = compare(dw, v1);
  REQUIRE(r1.differs.size() == 1);
  CHECK(r1.differs[0].actual == "cpu.shares 1000");
  CHECK(compare(dw, quota_spec{}).unsupported == std::vector<std::string>{"cpu.weight"});
}

TEST_CASE("a device without an entry has no limits") {
  quota_spec desired, enforced;
  disk_spec d;
  d.target = "8:16";
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1048576}};
  d.write_iops_sec = limit<ops_per_second>{unlimited};
  desired.disks.push_back(d);
  auto r = compare(desired, enforced);
  REQUIRE(r.differs.size() == 1);
  CHECK(r.differs[0].knob == "disks['8:16'].read_bytes_sec");
  CHECK(r.differs[0].actual == "unlimited (no entry)");
  disk_spec e = d;
  e.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1048576}};
  enforced.disks.push_back(e);
  CHECK(compare(desired, enforced).clean());
}

TEST_CASE("cache allocations and memory bandwidth drift per cache and domain") {
  quota_spec desired, enforced;
  desired.llc = llc_spec{cache_ways{4}, true, {{0, 0xf00}, {2, 0xf00}}, {}};
  enforced.llc = llc_spec{cache_ways{4}, true, {{0, 0xf00}, {2, 0x0f0}}, {}};
  desired.memory_bandwidth = memory_bandwidth_spec{false, {{0, 50}}};
  enforced.memory_bandwidth = memory_bandwidth_spec{false, {{0, 70}, {2, 100}}};
  auto r = compare(desired, enforced);
  REQUIRE(r.differs.size() == 2);
  const auto* m = find(r, "llc.allocations[cache 2]");
  REQUIRE(m);
  CHECK(m->desired == "0xf00");
  CHECK(m->actual == "0xf0");
  // CDP: code masks default to the data masks when not read separately.
  CHECK(find(r, "llc.code_allocations[cache 2]") == nullptr);
  const auto* b = find(r, "memory_bandwidth[domain 0]");
  REQUIRE(b);
  CHECK(b->desired == "50 percent");
  CHECK(b->actual == "70 percent");
  enforced.memory_bandwidth->mbps = true;
  auto r2 = compare(desired, enforced);
  CHECK(find(r2, "memory_bandwidth.unit"));
}

TEST_CASE("task uuid: a UUID name is itself, any other name is a stable v5 UUID") {
  const auto u = task_uuid("6695EB01-F6A4-8304-79AA-97F2502E193F");
  CHECK(u.to_string() == "6695eb01-f6a4-8304-79aa-97f2502e193f");
  const auto a = task_uuid("batch-7");
  CHECK(a == task_uuid("batch-7"));
  CHECK_FALSE(a == task_uuid("batch-8"));
  // Version 5, RFC 4122 variant.
  CHECK((a.bytes()[6] >> 4) == 5);
  CHECK((a.bytes()[8] & 0xc0) == 0x80);
  // A fixed value: changing the namespace would change every task's identity.
  CHECK(a.to_string() == task_uuid("batch-7").to_string());
}
