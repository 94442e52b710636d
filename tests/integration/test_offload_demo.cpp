// The demo host's emulated card (tools/inspect/demo/card.json), as
// bulkhead-inspect --demo loads it: three bare-metal tenants and one
// vm_offload VM, each with virtio-net and virtio-blk functions, QoS and
// counters from a deterministic pre-run; identities distinct from the demo's
// libvirt domains (tools/inspect/demo/node.xml).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::offload;

namespace {

std::string demo_path(const char* leaf) { return (test::source_root() / "tools/inspect/demo" / leaf).string(); }

std::unique_ptr<offload::backend> load(mono_time start) {
  auto clock = std::make_shared<manual_clock>(start);
  auto b = offload::backend::open(demo_path("card.json"), clock);
  if (!b) FAIL(b.error().describe());
  return std::move(*b);
}

}  // namespace

TEST_CASE("the demo card: three bare-metal tenants and a vm_offload VM with net and blk functions") {
  auto b = load(from_ns(3'600'000'000'000));
  auto found = b->discover();
  REQUIRE(found);
  std::set<std::string> bm_tenants;
  std::set<qos_class> classes;
  int vm_offload = 0;
  for (const auto& i : *found) {
    CHECK(i.id.uuid.to_string().rfind("b0000000-", 0) == 0);
    REQUIRE(i.tenant);
    REQUIRE(i.qos);
    classes.insert(*i.qos);
    if (i.isolation == isolation_level::bare_metal) {
      CHECK(i.kind == instance_kind::bare_metal);
      CHECK(i.modes.get(resource_kind::cpu) == isolation_mode::dedicated);
      bm_tenants.insert(*i.tenant);
    } else {
      CHECK(i.isolation == isolation_level::vm_offload);
      CHECK(i.kind == instance_kind::vm);
      ++vm_offload;
    }
    CHECK(i.modes.get(resource_kind::net_bandwidth) == isolation_mode::hardware);
    CHECK(i.modes.get(resource_kind::disk_iops) == isolation_mode::hardware);
    auto r = b->read(i);
    REQUIRE(r);
    CHECK(r->partial.empty());
    REQUIRE(r->enforced.interfaces.size() == 1);
    REQUIRE(r->enforced.disks.size() == 1);
    CHECK(validate(r->enforced));
    REQUIRE(r->usage.interfaces.size() == 1);
    REQUIRE(r->usage.disks.size() == 1);
    // Every instance has traffic.
    CHECK(r->usage.interfaces[0].tx_bytes->count() > 0);
    CHECK(r->usage.disks[0].read_requests->count() + r->usage.disks[0].write_requests->count() > 0);
  }
  CHECK(bm_tenants == std::set<std::string>{"acme", "globex", "initech"});
  CHECK(vm_offload == 1);
  CHECK(classes.count(qos_class::LS));
  CHECK(classes.count(qos_class::LSR));
  CHECK(classes.count(qos_class::BE));

  auto cards = b->cards();
  REQUIRE(cards);
  REQUIRE(cards->size() == 1);
  const auto& c = (*cards)[0];
  CHECK_FALSE(c.identity.pci_address.empty());
  CHECK_FALSE(c.identity.firmware.empty());
  REQUIRE(c.capacity);
  // Throttling shows somewhere (the BE tenant and the VM offer more than their limits).
  std::uint64_t throttled = 0;
  for (const auto& f : c.functions) {
    throttled += f.counters.tx.throttled.value_or(packets{0}).count() + f.counters.disk.throttled.value_or(operations{0}).count();
    if (f.counters.throttled_time) CHECK(f.counters.throttled_time->count() >= 0);
  }
  CHECK(throttled > 0);
  CHECK(c.guaranteed->net_bandwidth_tx <= c.capacity->net_bandwidth);
  CHECK(c.guaranteed->disk_iops <= c.capacity->disk_iops);
  const auto j = nlohmann::json(c);
  CHECK(j["functions"].size() == c.functions.size());
}

TEST_CASE("the demo card is deterministic: the same counters whatever the clock's start") {
  auto a = load(from_ns(1'000'000'000));
  auto b = load(from_ns(987'654'321'000'000));
  const auto later = std::chrono::seconds(30);
  static_cast<manual_clock&>(a->clock()).advance(later);
  static_cast<manual_clock&>(b->clock()).advance(later);
  auto ca = a->cards(), cb = b->cards();
  REQUIRE(ca);
  REQUIRE(cb);
  CHECK(nlohmann::json((*ca)[0]).dump() == nlohmann::json((*cb)[0]).dump());
}

TEST_CASE("the demo card's identities do not collide with the demo's libvirt domains") {
  const auto node = demo_path("node.xml");
  std::ifstream in(node);
  if (!in) test::skip("tools/inspect/demo/node.xml is not there yet");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  std::set<std::string> uuids, macs;
  const std::regex uuid_re("<uuid>([0-9a-fA-F-]{36})</uuid>"), mac_re("address='([0-9a-f:]{17})'");
  for (std::sregex_iterator it(xml.begin(), xml.end(), uuid_re), end; it != end; ++it) uuids.insert((*it)[1]);
  for (std::sregex_iterator it(xml.begin(), xml.end(), mac_re), end; it != end; ++it) macs.insert((*it)[1]);
  CHECK_FALSE(uuids.empty());
  auto b = load(mono_time{});
  auto found = b->discover();
  REQUIRE(found);
  for (const auto& i : *found) CHECK_FALSE(uuids.count(i.id.uuid.to_string()));
  auto cards = b->cards();
  REQUIRE(cards);
  for (const auto& f : (*cards)[0].functions)
    if (!f.mac.empty()) CHECK_FALSE(macs.count(f.mac));
}
