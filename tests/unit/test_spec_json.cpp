// The desired-spec JSON format (docs/desired-spec.md).
#include <doctest/doctest.h>

#include <fstream>

#include "bulkhead/export/desired_spec.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {
quota_spec full_spec() {
  quota_spec s;
  s.cpu.vcpus = 2;
  s.cpu.max_vcpus = 4;
  s.cpu.request = millicores{1500};
  s.cpu.shares = 2048;
  s.cpu.weight = 200;
  s.cpu.period = microseconds{100000};
  s.cpu.quota = limit<microseconds>{microseconds{50000}};
  s.cpu.emulator_period = microseconds{100000};
  s.cpu.emulator_quota = limit<microseconds>{unlimited};
  s.cpu.burst = microseconds{10000};
  s.cpu.vcpu_pins = std::vector<vcpu_pin>{{0, cpuset::range(0, 1)}, {1, cpuset::range(2, 3)}};
  s.cpu.emulator_pin = cpuset::range(4, 4);
  s.cpu.cpus = cpuset::range(0, 3);
  s.cpu.mems = cpuset::range(0, 0);
  s.memory.max = bytes{4ull << 30};
  s.memory.current = bytes{2ull << 30};
  s.memory.request = bytes{1ull << 30};
  s.memory.hard_limit = limit<bytes>{bytes{3ull << 30}};
  s.memory.soft_limit = limit<bytes>{bytes{2ull << 30}};
  s.memory.swap_hard_limit = limit<bytes>{unlimited};
  s.memory.high = limit<bytes>{bytes{2ull << 30}};
  s.memory.min = bytes{0};
  s.memory.low = bytes{1ull << 20};
  s.memory.numa = numa_tune{"strict", cpuset::range(0, 0)};
  s.blkio_weight = 500;
  disk_spec d;
  d.target = "vda";
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{2097152}};
  d.write_bytes_sec = limit<bytes_per_second>{unlimited};
  d.read_bytes_sec_max = limit<bytes_per_second>{bytes_per_second{4194304}};
  d.total_iops_sec = limit<ops_per_second>{ops_per_second{500}};
  d.weight = 300;
  s.disks.push_back(d);
  interface_spec i;
  i.mac = "52:54:00:12:34:56";
  i.target = "vnet0";
  direction_bandwidth in;
  in.average = limit<bytes_per_second>{bytes_per_second{125000}};
  in.peak = bytes_per_second{250000};
  in.burst = bytes{65536};
  in.floor = bytes_per_second{1000};
  i.inbound = in;
  direction_bandwidth out;
  out.packets = limit<packets_per_second>{packets_per_second{10000}};
  i.outbound = out;
  s.interfaces.push_back(i);
  s.llc = llc_spec{cache_ways{4}, true, {{0, 0x7f0}, {2, 0x7f0}}, {{0, 0x00f}}};
  s.memory_bandwidth = memory_bandwidth_spec{true, {{0, 2048}, {2, 16}}};
  s.cache_tunes = std::vector<cache_tune>{{cpuset::range(0, 1), {{0, 3, "both", bytes{3ull << 20}}}}};
  return s;
}

std::string wrap(const std::string& spec) {
  return R"({"version": 1, "instances": {"web-1": )" + spec + "}}";
}

error parse_error_of(const std::string& text) {
  auto r = parse_desired_specs(text, "desired.json");
  REQUIRE_FALSE(r);
  return r.error();
}
}  // namespace

TEST_CASE("every knob round-trips through JSON") {
  const auto s = full_spec();
  REQUIRE(validate(s));
  const auto j = desired_spec_json(s);
  CHECK(j["cpu"]["quota_us"] == 50000);
  CHECK(j["cpu"]["emulator_quota_us"] == "unlimited");
  CHECK(j["cpu"]["cpus"] == "0-3");
  CHECK(j["memory"]["hard_limit_bytes"] == 3ull << 30);
  CHECK(j["llc"]["allocations"][0]["mask"] == "0x7f0");
  CHECK(j["memory_bandwidth"]["allocations"][1]["mbytes_sec"] == 16);
  auto back = parse_desired_spec(j);
  REQUIRE(back);
  CHECK(*back == s);

  desired_specs file{{"6695eb01-f6a4-8304-79aa-97f2502e193f", s}, {"batch-7", quota_spec{}}};
  const auto text = desired_specs_text(file);
  auto parsed = parse_desired_specs(text);
  REQUIRE(parsed);
  CHECK(*parsed == file);
}

TEST_CASE("keys: UUIDs are canonicalised, names kept; lookup by UUID then name") {
  auto r = parse_desired_specs(R"({"version": 1, "instances": {
      "6695EB01-F6A4-8304-79AA-97F2502E193F": {"cpu": {"weight": 100}},
      "batch-7": {"memory": {"hard_limit_bytes": "unlimited"}}}})");
  REQUIRE(r);
  REQUIRE(r->size() == 2);
  CHECK(r->count("6695eb01-f6a4-8304-79aa-97f2502e193f") == 1);
  instance_info i;
  i.id.uuid = *uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
  i.name = "batch-7";  // the UUID wins
  const auto* s = find_desired(*r, i);
  REQUIRE(s);
  CHECK(s->cpu.weight == 100u);
  i.id.uuid = uuid{};
  s = find_desired(*r, i);
  REQUIRE(s);
  CHECK(s->memory.hard_limit == limit<bytes>{unlimited});
  i.name = "other";
  CHECK(find_desired(*r, i) == nullptr);

  auto dup = parse_error_of(R"({"version": 1, "instances": {
      "6695EB01-F6A4-8304-79AA-97F2502E193F": {}, "6695eb01-f6a4-8304-79aa-97f2502e193f": {}}})");
  CHECK(dup.describe().find("same instance") != std::string::npos);
}

TEST_CASE("errors name the field path and the bad value") {
  struct bad_case {
    std::string spec;
    std::string expect;
  };
  const bad_case cases[] = {
      {R"({"cpu": {"quota_us": "20%"}})", R"(instances['web-1'].cpu.quota_us: "20%" is neither a non-negative integer nor "unlimited")"},
      {R"({"cpu": {"quota_us": 1.5}})", "instances['web-1'].cpu.quota_us: 1.5 is not an integer"},
      {R"({"cpu": {"period_us": -1}})", "instances['web-1'].cpu.period_us: -1 is negative"},
      {R"({"cpu": {"qouta_us": 1}})", "instances['web-1'].cpu: unknown field 'qouta_us'"},
      {R"({"memory": {"hard_limit_bytes": 1e9}})", "instances['web-1'].memory.hard_limit_bytes: 1000000000.0 is not an integer"},
      {R"({"memory": {"hard_limit_bytes": 18446744073709551616}})", "instances['web-1'].memory.hard_limit_bytes"},
      {R"({"memory": {"hard_limit_bytes": -1}})", "instances['web-1'].memory.hard_limit_bytes: -1 is negative"},
      {R"({"cpu": {"cpus": "3-1"}})", "instances['web-1'].cpu.cpus: cpu list '3-1'"},
      {R"({"cpu": {"shares": 1}})", "instances['web-1']: cpu.shares: 1 is outside 2..262144"},
      {R"({"disks": [{"read_bytes_sec": 1}]})", "instances['web-1'].disks[0]: needs \"target\""},
      {R"({"disks": [{"target": "vda", "read_bytes_sec": true}]})", "instances['web-1'].disks[0].read_bytes_sec: true"},
      {R"({"llc": {"ways": 2, "allocations": [{"cache_id": 0, "mask": "7f0"}]}})", "instances['web-1'].llc.allocations[0].mask: \"7f0\" is not a hex mask"},
      {R"({"memory_bandwidth": {"allocations": [{"domain_id": 0, "percent": 50}, {"domain_id": 1, "mbytes_sec": 9}]}})",
       "instances['web-1'].memory_bandwidth.allocations[1].mbytes_sec: every allocation must use the same unit"},
      {R"({"interfaces": [{"mac": "52:54:00:12:34:56", "inbound": {"peak_bytes_sec": 5}}]})",
       "instances['web-1'].interfaces[0].inbound: needs \"average_bytes_sec\""},
      {R"({"cpu": {"vcpus": 4294967296}})", "instances['web-1'].cpu.vcpus: 4294967296 is above 4294967295"},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    const auto e = parse_error_of(wrap(c.spec));
    INFO(e.describe());
    CHECK(e.describe().find(c.expect) != std::string::npos);
    CHECK(e.describe().rfind("desired.json", 0) == 0);
  }
}

TEST_CASE("the file form is strict: version, instances, duplicates, syntax") {
  CHECK(parse_error_of("{").describe().find("not valid JSON") != std::string::npos);
  CHECK(parse_error_of(R"({"instances": {}})").describe().find("missing \"version\"") != std::string::npos);
  CHECK(parse_error_of(R"({"version": 2, "instances": {}})").code() == errc::unsupported);
  CHECK(parse_error_of(R"({"version": 1})").describe().find("missing \"instances\"") != std::string::npos);
  CHECK(parse_error_of(R"({"version": 1, "instances": {}, "extra": 1})").describe().find("unknown field 'extra'") !=
        std::string::npos);
  const auto dup = parse_error_of(R"({"version": 1, "instances": {"a": {"cpu": {"weight": 1, "weight": 2}}}})");
  INFO(dup.describe());
  CHECK(dup.describe().find("duplicate key 'weight' in instances.a.cpu") != std::string::npos);
  CHECK(parse_error_of(R"({"version": 1, "instances": {"": {}}})").describe().find("empty instance key") != std::string::npos);
  auto empty = parse_desired_specs(R"({"version": 1, "instances": {}})");
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("open_desired_specs reads a file and names it in errors") {
  test::temp_dir t;
  const auto p = (t.path() / "desired.json").string();
  {
    std::ofstream(p) << R"({"version": 1, "instances": {"batch-7": {"cpu": {"quota_us": "unlimited", "period_us": 100000}}}})";
  }
  auto r = open_desired_specs(p);
  REQUIRE(r);
  CHECK(r->at("batch-7").cpu.quota == limit<microseconds>{unlimited});
  auto missing = open_desired_specs((t.path() / "nope.json").string());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == errc::not_found);
  CHECK(missing.error().message().find("nope.json") != std::string::npos);
}

TEST_CASE("the example in docs/desired-spec.md parses") {
  std::ifstream in(test::source_root() / "docs" / "desired-spec.md");
  REQUIRE(in);
  std::string line, json;
  bool in_example = false;
  while (std::getline(in, line)) {
    if (line == "## A complete example") in_example = true;
    else if (in_example && line.rfind("    ", 0) == 0) json += line.substr(4) + "\n";
  }
  REQUIRE_FALSE(json.empty());
  auto r = parse_desired_specs(json, "docs/desired-spec.md");
  if (!r) FAIL(r.error().describe());
  REQUIRE(r->size() == 2);
  CHECK(r->at("batch-7").llc->ways == cache_ways{2});
  CHECK(r->at("6695eb01-f6a4-8304-79aa-97f2502e193f").cpu.shares == 2048u);
}
