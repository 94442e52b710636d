// The emulated-card backend through the common interface: discover(), read()
// and apply() in the same vocabulary as a VM's, and the cards list.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include <nlohmann/json.hpp>

using namespace bulkhead;
using namespace bulkhead::offload;

namespace {

constexpr std::int64_t sec = 1'000'000'000;

const char* description = R"J({
  "format": "bulkhead-offload-card/1",
  "cards": [{
    "pci_address": "0000:3b:00.0", "model": "X-Dragon-style MOC (emulated)", "firmware": "3.1.4",
    "capacity": {"functions": 16, "net_bandwidth_bytes_sec": 3125000000, "net_packets_sec": 12000000,
                 "disk_bandwidth_bytes_sec": 2000000000, "disk_iops": 400000},
    "instances": [
      {"uuid": "b0000000-0000-4000-8000-000000000001", "name": "bm-1", "isolation": "bare_metal",
       "tenant": "acme", "qos_class": "LSR", "incarnation": 7, "board": {"cpus": 32, "memory_bytes": 137438953472}},
      {"uuid": "b0000000-0000-4000-8000-000000000002", "name": "vm-1", "isolation": "vm_offload",
       "tenant": "globex", "qos_class": "BE", "incarnation": 2}
    ],
    "functions": [
      {"address": "0000:3b:00.1", "type": "virtio_net", "form": "sriov_vf", "parent": "0000:3b:00.0", "vf_index": 0,
       "instance": "b0000000-0000-4000-8000-000000000001", "mac": "52:54:00:b0:00:01", "target": "eth0",
       "qos": {"rx": {"bandwidth": {"rate_bytes_sec": 1250000000, "burst_bytes": 12500000},
                      "packets": {"rate_packets_sec": 1000000, "burst_packets": 100000}},
               "tx": {"bandwidth": {"rate_bytes_sec": 1250000000, "burst_bytes": 12500000, "guaranteed_bytes_sec": 625000000},
                      "packets": {"rate_packets_sec": 1000000, "burst_packets": 100000}}}},
      {"address": "0000:3b:00.2", "type": "virtio_blk", "form": "sriov_vf", "parent": "0000:3b:00.0", "vf_index": 1,
       "instance": "b0000000-0000-4000-8000-000000000001", "target": "vda",
       "qos": {"bandwidth": {"rate_bytes_sec": 200000000}, "iops": {"rate_ops_sec": 20000, "guaranteed_ops_sec": 10000}}},
      {"address": "vdpa0", "type": "virtio_net", "form": "vdpa", "parent": "0000:3b:00.0",
       "instance": "b0000000-0000-4000-8000-000000000002", "mac": "52:54:00:b0:00:02", "target": "eth0",
       "qos": {"tx": {"bandwidth": {"rate_bytes_sec": 12500000, "burst_bytes": 125000}}}},
      {"address": "0000:3b:00.3", "type": "virtio_net", "form": "sriov_vf", "parent": "0000:3b:00.0", "vf_index": 2}
    ],
    "workload": {"seconds": 5, "streams": [
      {"function": "vdpa0", "direction": "tx", "requests_sec": 20000, "request_bytes": 1500},
      {"function": "0000:3b:00.2", "io": "read", "requests_sec": 1000, "request_bytes": 8192}]}
  }]})J";

std::unique_ptr<offload::backend> make(std::shared_ptr<manual_clock> clock) {
  auto b = offload::backend::make(description, clock, "test.json");
  REQUIRE(b);
  return std::move(*b);
}

const instance_info& by_name(const std::vector<instance_info>& v, const std::string& n) {
  auto it = std::find_if(v.begin(), v.end(), [&](const instance_info& i) { return i.name == n; });
  REQUIRE(it != v.end());
  return *it;
}

}  // namespace

TEST_CASE("discover: bare-metal and vm_offload instances with hardware and dedicated isolation") {
  auto clock = std::make_shared<manual_clock>(from_ns(1000 * sec));
  auto b = make(clock);
  CHECK(b->kind() == "offload");
  auto found = b->discover();
  REQUIRE(found);
  REQUIRE(found->size() == 2);
  const auto& bm = by_name(*found, "bm-1");
  CHECK(bm.kind == instance_kind::bare_metal);
  CHECK(bm.isolation == isolation_level::bare_metal);
  CHECK(bm.id.uuid.to_string() == "b0000000-0000-4000-8000-000000000001");
  CHECK(bm.id.incarnation == incarnation{7});
  CHECK(bm.tenant == "acme");
  CHECK(bm.qos == qos_class::LSR);
  CHECK(bm.state == instance_state::running);
  CHECK(bm.modes.get(resource_kind::cpu) == isolation_mode::dedicated);
  CHECK(bm.modes.get(resource_kind::memory) == isolation_mode::dedicated);
  for (auto r : {resource_kind::net_bandwidth, resource_kind::net_pps, resource_kind::disk_bandwidth,
                 resource_kind::disk_iops, resource_kind::offload_function})
    CHECK(bm.modes.get(r) == isolation_mode::hardware);
  const auto& vm = by_name(*found, "vm-1");
  CHECK(vm.kind == instance_kind::vm);
  CHECK(vm.isolation == isolation_level::vm_offload);
  CHECK_FALSE(vm.modes.get(resource_kind::cpu));  // the hypervisor's backend reports those
  CHECK(vm.modes.get(resource_kind::net_bandwidth) == isolation_mode::hardware);
  CHECK_FALSE(vm.modes.get(resource_kind::disk_iops));  // it has no disk on the card

  auto cap = b->capacity();
  REQUIRE(cap);
  CHECK(cap->cpus == 32);
  CHECK(cap->memory == bytes{137438953472});
}

TEST_CASE("read: quotas and counters in the vocabulary of a VM's") {
  auto clock = std::make_shared<manual_clock>(from_ns(1000 * sec));
  auto b = make(clock);
  auto found = b->discover();
  REQUIRE(found);
  auto r = b->read(by_name(*found, "bm-1"));
  REQUIRE(r);
  CHECK(r->usage.read_at == from_ns(1000 * sec));
  REQUIRE(r->enforced.interfaces.size() == 1);
  const auto& i = r->enforced.interfaces[0];
  CHECK(i.mac == "52:54:00:b0:00:01");
  REQUIRE(i.outbound);
  CHECK(i.outbound->average == limit<bytes_per_second>{bytes_per_second{1250000000}});
  CHECK(i.outbound->burst == bytes{12500000});
  CHECK(i.outbound->packets == limit<packets_per_second>{packets_per_second{1000000}});
  CHECK_FALSE(i.outbound->peak);
  REQUIRE(i.inbound);
  CHECK(validate(r->enforced));  // a spec read back is a valid spec
  REQUIRE(r->enforced.disks.size() == 1);
  CHECK(r->enforced.disks[0].target == "vda");
  CHECK(r->enforced.disks[0].total_iops_sec == limit<ops_per_second>{ops_per_second{20000}});
  CHECK(r->enforced.disks[0].total_bytes_sec == limit<bytes_per_second>{bytes_per_second{200000000}});
  CHECK_FALSE(r->enforced.disks[0].read_iops_sec);
  CHECK(r->enforced.cpu.vcpus == 32u);
  CHECK(r->enforced.memory.max == bytes{137438953472});
  CHECK(std::find(r->unsupported.begin(), r->unsupported.end(), "disks[].read_iops_sec") != r->unsupported.end());
  // The disk was offered 1000 reads/s of 8 KiB for 5 s against 20000 IOPS and 200 MB/s: all passed.
  REQUIRE(r->usage.disks.size() == 1);
  CHECK(r->usage.disks[0].read_requests == operations{5000});
  CHECK(r->usage.disks[0].read_bytes == bytes{5000 * 8192});
  CHECK(r->usage.disks[0].throttled_requests == operations{0});
  CHECK(r->usage.disks[0].throttled_time == nanoseconds{0});

  // The VM's tx: 20000 x 1500 B/s offered against 12.5 MB/s: throttled, counted.
  auto v = b->read(by_name(*found, "vm-1"));
  REQUIRE(v);
  REQUIRE(v->usage.interfaces.size() == 1);
  const auto& c = v->usage.interfaces[0];
  CHECK(c.mac == "52:54:00:b0:00:02");
  CHECK(c.throttled_packets->count() > 0);
  CHECK(c.throttled_time->count() > 0);
  CHECK(c.throttled_time->count() <= 5 * sec);
  CHECK(c.tx_drops->count() > 0);
  // Exact: what passed in 5 s is the burst plus the rate, to within one packet.
  const std::uint64_t sent = c.tx_bytes->count();
  CHECK(sent + 1500 >= 125000 + 5 * 12500000ull);
  CHECK(sent <= 125000 + 5 * 12500000ull);
  CHECK(c.tx_packets->count() * 1500 == sent);
  // Later reads see the queue drain (counters only grow).
  clock->advance(std::chrono::seconds(10));
  auto later = b->read(by_name(*found, "vm-1"));
  REQUIRE(later);
  CHECK(later->usage.interfaces[0].tx_packets->count() > c.tx_packets->count());
  CHECK(later->usage.interfaces[0].throttled_time >= c.throttled_time);
}

TEST_CASE("apply: limits change through the card's admission; unsupported knobs are listed") {
  auto clock = std::make_shared<manual_clock>(from_ns(1000 * sec));
  auto b = make(clock);
  auto found = b->discover();
  REQUIRE(found);
  const auto bm = by_name(*found, "bm-1");

  quota_spec s;
  interface_spec i;
  i.mac = "52:54:00:b0:00:01";
  direction_bandwidth out;
  out.average = bytes_per_second{2500000000};
  out.burst = bytes{25000000};
  out.packets = limit<packets_per_second>{unlimited};
  i.outbound = out;
  s.interfaces.push_back(i);
  disk_spec d;
  d.target = "vda";
  d.total_iops_sec = ops_per_second{30000};
  d.read_bytes_sec = bytes_per_second{1000};  // the card has no read/write split
  s.disks.push_back(d);
  s.cpu.shares = 1024;
  s.cpu.vcpus = 32;  // what the board has: fine
  auto rep = b->apply(bm, s);
  REQUIRE(rep);
  const auto has_change = [&](const std::string& knob, const std::string& before, const std::string& after) {
    for (const auto& c : rep->changed)
      if (c.knob == knob) return c.before == before && c.after == after;
    return false;
  };
  CHECK(has_change("interfaces['52:54:00:b0:00:01'].outbound.average", "1250000000 bytes_sec", "2500000000 bytes_sec"));
  CHECK(has_change("interfaces['52:54:00:b0:00:01'].outbound.burst", "12500000 bytes", "25000000 bytes"));
  CHECK(has_change("interfaces['52:54:00:b0:00:01'].outbound.packets", "1000000 packets_sec", "unlimited"));
  CHECK(has_change("disks['vda'].total_iops_sec", "20000 ops_sec", "30000 ops_sec"));
  CHECK(std::find(rep->unsupported.begin(), rep->unsupported.end(), "disks['vda'].read_bytes_sec") != rep->unsupported.end());
  CHECK(std::find(rep->unsupported.begin(), rep->unsupported.end(), "cpu.shares") != rep->unsupported.end());
  CHECK(rep->failed.empty());
  // Read back: enforced.
  auto r = b->read(bm);
  REQUIRE(r);
  CHECK(r->enforced.interfaces[0].outbound->average == limit<bytes_per_second>{bytes_per_second{2500000000}});
  CHECK(r->enforced.disks[0].total_iops_sec == limit<ops_per_second>{ops_per_second{30000}});
  // Idempotent: the same spec again changes nothing.
  auto again = b->apply(bm, s);
  REQUIRE(again);
  CHECK(again->changed.empty());

  // A limit below the guarantee fails and changes nothing of that function.
  quota_spec low;
  interface_spec li;
  li.mac = "52:54:00:b0:00:01";
  direction_bandwidth lo;
  lo.average = bytes_per_second{1000};
  li.outbound = lo;
  low.interfaces.push_back(li);
  auto bad = b->apply(bm, low);
  REQUIRE(bad);
  REQUIRE_FALSE(bad->failed.empty());
  CHECK(bad->failed[0].why.message().find("guaranteed") != std::string::npos);
  CHECK(b->read(bm)->enforced.interfaces[0].outbound->average == limit<bytes_per_second>{bytes_per_second{2500000000}});
  // Resizing a board is refused; an unknown MAC is not found.
  quota_spec board;
  board.cpu.vcpus = 64;
  interface_spec ghost;
  ghost.mac = "52:54:00:ff:ff:ff";
  board.interfaces.push_back(ghost);
  auto br = b->apply(bm, board);
  REQUIRE(br);
  REQUIRE(br->failed.size() == 2);
  // An invalid spec is refused before anything.
  quota_spec invalid;
  invalid.cpu.vcpus = 0;
  CHECK_FALSE(b->apply(bm, invalid));
}

TEST_CASE("cards(): identity, capacity, guarantees, functions with QoS and counters; JSON form") {
  auto clock = std::make_shared<manual_clock>(from_ns(1000 * sec));
  auto b = make(clock);
  auto cards = b->cards();
  REQUIRE(cards);
  REQUIRE(cards->size() == 1);
  const auto& c = (*cards)[0];
  CHECK(c.identity.pci_address == "0000:3b:00.0");
  CHECK(c.identity.firmware == "3.1.4");
  CHECK(c.capacity->functions == 16);
  CHECK(c.guaranteed->net_bandwidth_tx == bytes_per_second{625000000});
  CHECK(c.guaranteed->disk_iops == ops_per_second{10000});
  CHECK(c.guaranteed->bound_functions == 3);
  REQUIRE(c.functions.size() == 4);
  CHECK_FALSE(c.functions[3].instance);  // a free VF
  const auto j = nlohmann::json(c);
  CHECK(j["pci_address"] == "0000:3b:00.0");
  CHECK(j["capacity"]["net_bandwidth_bytes_sec"] == 3125000000ull);
  CHECK(j["functions"][0]["type"] == "virtio_net");
  CHECK(j["functions"][0]["form"] == "sriov_vf");
  CHECK(j["functions"][0]["qos"]["tx"]["bandwidth"]["guaranteed_bytes_sec"] == 625000000ull);
  CHECK(j["functions"][1]["qos"]["iops"]["rate_ops_sec"] == 20000);
  CHECK(j["functions"][2]["instance"] == "b0000000-0000-4000-8000-000000000002");
  CHECK(j["functions"][2]["counters"]["tx"]["throttled_packets"].get<std::uint64_t>() > 0);
  CHECK(j["functions"][2]["qos"]["rx"]["bandwidth"]["rate_bytes_sec"].is_null());  // unlimited
  CHECK(j["functions"][3]["instance"].is_null());
}

TEST_CASE("offload::backend::make: errors name the source; UUIDs are unique across cards") {
  auto clock = std::make_shared<manual_clock>();
  auto r = offload::backend::make("{}", clock, "demo/card.json");
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().rfind("offload description demo/card.json: ", 0) == 0);
  // The same card twice under another address: its instance UUIDs collide.
  auto doc = nlohmann::json::parse(description);
  auto card = doc["cards"][0];
  card["pci_address"] = "0000:5e:00.0";
  doc["cards"].push_back(card);
  const std::string two = doc.dump();
  auto dup = offload::backend::make(two, clock, "two.json");
  REQUIRE_FALSE(dup);
  INFO(dup.error().describe());
  CHECK(dup.error().code() == errc::already_exists);
  CHECK(dup.error().message().find("is on two cards") != std::string::npos);
}
