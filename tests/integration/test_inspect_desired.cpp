// bulkhead-inspect --desired FILE (issue 5): drift between a desired-spec file
// (docs/desired-spec.md) and what the demo host enforces, in the table and in
// the JSON, with exit status 3 on drift; a bad file is a usage error that
// names the file and the field.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using nlohmann::json;

namespace {

std::string tool() {
  const char* p = std::getenv("BULKHEAD_INSPECT");
  if (!p || !*p) test::skip("BULKHEAD_INSPECT is not set (run through meson test)");
  return p;
}

std::string write(const test::temp_dir& d, const std::string& name, const std::string& text) {
  const auto p = d.path() / name;
  std::ofstream(p) << text;
  return p.string();
}

// The demo host's libvirt node alone (without its offload card). The table
// runs use it: under ASan+UBSan (gcc 12), LeakSanitizer's own tracer crashes
// at exit ("Tracer caught signal 11") in a --demo --desired table run, with
// no leak or error reported first; seen, not yet explained (docs/errors.md).
std::string demo_node() { return std::string("test://") + BULKHEAD_SOURCE_ROOT + "/tools/inspect/demo/node.xml"; }

const json* find_instance(const json& doc, const std::string& name) {
  for (const auto& i : doc["instances"])
    if (i["name"] == name) return &i;
  return nullptr;
}

// The demo host (tools/inspect/demo/node.xml) enforces on web-frontend-01:
// 4 vCPUs, shares 4096, period 100000 us, quota 50000 us, hard limit 9 GiB;
// on batch-etl-01: shares 256, quota 25000 us.
constexpr const char* as_enforced = R"({"version": 1, "instances": {
  "web-frontend-01": {"cpu": {"vcpus": 4, "shares": 4096, "period_us": 100000, "quota_us": 50000},
                      "memory": {"hard_limit_bytes": 9663676416}},
  "batch-etl-01": {"cpu": {"shares": 256, "quota_us": 25000}}
}})";

constexpr const char* drifted = R"({"version": 1, "instances": {
  "web-frontend-01": {"cpu": {"vcpus": 4, "shares": 4096, "quota_us": 50000}},
  "batch-etl-01": {"cpu": {"shares": 512, "quota_us": "unlimited"}},
  "no-such-vm": {"cpu": {"vcpus": 1}}
}})";

}  // namespace

TEST_CASE("--desired: nothing drifted, exit 0, every instance with a spec is clean") {
  test::temp_dir d;
  const auto f = write(d, "desired.json", as_enforced);
  auto r = test::run_process({tool(), "--demo", "--desired", f, "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = json::parse(r.out);
  CHECK(doc["desired"]["file"] == f);
  CHECK(doc["desired"]["specs"] == 2);
  CHECK(doc["desired"]["not_matched"].empty());
  for (const char* n : {"web-frontend-01", "batch-etl-01"}) {
    CAPTURE(n);
    const auto* i = find_instance(doc, n);
    REQUIRE(i != nullptr);
    CHECK((*i)["drift"]["clean"] == true);
    CHECK((*i)["drift"]["differs"].empty());
  }
  // Instances without a desired spec have drift null, not "clean".
  const auto* other = find_instance(doc, "payments-db");
  REQUIRE(other != nullptr);
  CHECK((*other)["drift"].is_null());

  auto t = test::run_process({tool(), "--uri", demo_node(), "--desired", f});
  INFO(t.err);
  REQUIRE(t.exit_code == 0);
  CHECK(t.out.find("2 as desired, 0 drifted, 0 desired spec(s) matched no instance") != std::string::npos);
}

TEST_CASE("--desired: drift knob by knob in JSON and table, exit 3, unmatched keys listed") {
  test::temp_dir d;
  const auto f = write(d, "desired.json", drifted);
  auto r = test::run_process({tool(), "--demo", "--desired", f, "--json"});
  INFO(r.err);
  CHECK(r.exit_code == 3);
  const auto doc = json::parse(r.out);
  REQUIRE(doc["desired"]["not_matched"].size() == 1);
  CHECK(doc["desired"]["not_matched"][0] == "no-such-vm");
  const auto* etl = find_instance(doc, "batch-etl-01");
  REQUIRE(etl != nullptr);
  const auto& dr = (*etl)["drift"];
  CHECK(dr["clean"] == false);
  REQUIRE(dr["differs"].size() == 2);
  std::map<std::string, std::pair<std::string, std::string>> by_knob;
  for (const auto& k : dr["differs"]) by_knob[k["knob"]] = {k["desired"], k["actual"]};
  REQUIRE(by_knob.count("cpu.shares") == 1);
  CHECK(by_knob["cpu.shares"].first == "512");
  CHECK(by_knob["cpu.shares"].second == "256");
  REQUIRE(by_knob.count("cpu.quota") == 1);
  CHECK(by_knob["cpu.quota"].first == "unlimited");
  CHECK(by_knob["cpu.quota"].second.find("25000") != std::string::npos);
  CHECK((*find_instance(doc, "web-frontend-01"))["drift"]["clean"] == true);

  auto t = test::run_process({tool(), "--uri", demo_node(), "--desired", f});
  INFO(t.err);
  CHECK(t.exit_code == 3);
  CHECK(t.out.find("drift from " + f) != std::string::npos);
  CHECK(t.out.find("  cpu.shares: desired 512, actual 256") != std::string::npos);
  CHECK(t.out.find("1 as desired, 1 drifted, 1 desired spec(s) matched no instance") != std::string::npos);
  // Nothing in the drift section is cut or padded.
  const auto from = t.out.find("drift from");
  for (std::size_t p = from, e; p < t.out.size(); p = e + 1) {
    e = t.out.find('\n', p);
    if (e == std::string::npos) break;
    CHECK((e == p || t.out[e - 1] != ' '));
  }
}

TEST_CASE("--desired: a bad file is a usage error naming the file and the field; no output") {
  test::temp_dir d;
  const auto typo = write(d, "typo.json", R"({"version": 1, "instances": {"web-frontend-01": {"cpu": {"qouta_us": 1}}}})");
  auto r = test::run_process({tool(), "--demo", "--desired", typo, "--json"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("typo.json") != std::string::npos);
  CHECK(r.err.find("qouta_us") != std::string::npos);

  const auto frac = write(d, "frac.json", R"({"version": 1, "instances": {"a": {"cpu": {"quota_us": 1.5}}}})");
  r = test::run_process({tool(), "--demo", "--desired", frac});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("quota_us") != std::string::npos);

  r = test::run_process({tool(), "--demo", "--desired", (d.path() / "missing.json").string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("missing.json") != std::string::npos);

  const auto ok = write(d, "ok.json", as_enforced);
  r = test::run_process({tool(), "--demo", "--desired", ok, "--format", "openmetrics"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--format openmetrics") != std::string::npos);
  r = test::run_process({tool(), "--demo", "--desired", ok, "--watch", "--count", "1"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--watch") != std::string::npos);
}
