// bulkhead-inspect --journal DIR: accounted totals in the table and the JSON,
// equal to the journal's own rollup, and the journal left unchanged.
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/rollup_json.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string tool() {
  const char* p = std::getenv("BULKHEAD_INSPECT");
  if (!p || !*p) test::skip("BULKHEAD_INSPECT is not set (run through meson test)");
  return p;
}

// Every file under dir with its size and content, to prove nothing changed.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) {
      m[e.path().string()] = "(dir)";
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    m[e.path().string()] = ss.str();
  }
  return m;
}

}  // namespace

TEST_CASE("--journal adds accounted totals, read-only") {
  const std::string node = "test://" + test::fixture("libvirt/varied-node.xml").string();
  test::temp_dir t;
  {
    // An agent's read path: read the host, meter, journal; a destroy and
    // start in the middle gives one instance a second incarnation.
    auto b = libvirt::backend::connect({node, false});
    REQUIRE(b);
    result<std::shared_ptr<accounting::journal>> j = accounting::journal::open(t.str());
    REQUIRE_MESSAGE(j.has_value(), (j ? std::string() : j.error().describe()));
    auto acc = accounting::accountant::make(*j);
    REQUIRE(acc);
    for (int i = 0; i < 4; ++i) {
      if (i == 2) {
        virDomainPtr d = virDomainLookupByName((*b)->native_handle(), "every knob");
        REQUIRE(d);
        REQUIRE(virDomainDestroy(d) == 0);
        REQUIRE(virDomainCreate(d) == 0);
        virDomainFree(d);
      }
      auto r = (*b)->read_all();
      REQUIRE(r);
      auto rep = acc->ingest(*r);
      REQUIRE_MESSAGE(rep.has_value(), (rep ? std::string() : rep.error().describe()));
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the test driver's CPU time moves in seconds
    }
    REQUIRE((*j)->flush());
  }
  const auto before = snapshot(t.path());
  auto expected = accounting::journal::open_read_only(t.str());
  REQUIRE(expected);
  const auto want = expected->totals.by_instance();
  REQUIRE_FALSE(want.empty());

  auto r = test::run_process({tool(), "--uri", node, "--journal", t.str(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = json::parse(r.out);
  CHECK(doc.at("journal").at("ok") == true);
  CHECK(doc.at("journal").at("dir") == t.str());
  std::size_t matched = 0;
  for (const auto& i : doc.at("instances")) {
    const auto u = i.at("uuid").get<std::string>();
    const accounting::instance_totals* w = nullptr;
    for (const auto& x : want)
      if (x.uuid.to_string() == u) w = &x;
    if (!w) {
      CHECK(i.at("accounted").is_null());
      continue;
    }
    ++matched;
    const auto& a = i.at("accounted");
    for (auto f : {"cpu_time_ns", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes",
                   "vcpu_reserved_ns", "memory_reserved_byte_ns", "resets", "gaps"})
      CHECK_MESSAGE(a.contains(f), f);
    CHECK(a == nlohmann::json(w->totals));
    CHECK(a.at("cpu_time_ns").is_string());  // 128-bit values as decimal strings
    CHECK(a.at("resets").is_number_integer());
  }
  CHECK(matched == want.size());
  // Inspecting never changes the journal.
  CHECK(snapshot(t.path()) == before);

  // The table has an accounted section.
  auto tab = test::run_process({tool(), "--uri", node, "--journal", t.str()});
  CHECK(tab.exit_code == 0);
  CHECK(tab.out.find("accounted in journal") != std::string::npos);
  CHECK(tab.out.find("VCPU-H") != std::string::npos);
  CHECK(snapshot(t.path()) == before);

  // A directory that is not a journal: exit 1, the rest still printed.
  auto bad = test::run_process({tool(), "--uri", node, "--journal", (t.path() / "no-such-dir").string(), "--json"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("no-such-dir") != std::string::npos);
  const auto bdoc = json::parse(bad.out);
  CHECK(bdoc.at("journal").at("ok") == false);
  CHECK(bdoc.at("instances").size() == 5);
}
