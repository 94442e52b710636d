// The Linux view of offload hardware on committed fixture trees
// (tests/fixtures/offload-*, each README says where the format comes from):
// through discover(), read() and cards(), including broken trees.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/bindings.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::offload;
namespace fs = std::filesystem;

namespace {

const uuid acme = *uuid::parse("b0000000-0000-4000-8000-0000000000a1");
const uuid globex = *uuid::parse("b0000000-0000-4000-8000-0000000000b1");
const uuid ghost = *uuid::parse("b0000000-0000-4000-8000-0000000000c1");

std::vector<offload::sysfs_binding> sriov_bindings() {
  auto b = offload::parse_sysfs_bindings(R"({"instances": [
    {"uuid": "b0000000-0000-4000-8000-0000000000a1", "name": "acme-bm", "isolation": "bare_metal",
     "tenant": "acme", "qos_class": "LS", "functions": ["0000:3b:00.1", "0000:3c:00.0"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000b1", "name": "globex-vm", "isolation": "vm_offload",
     "tenant": "globex", "qos_class": "BE", "functions": ["0000:3b:00.2"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000c1", "name": "ghost", "functions": ["0000:99:00.0"]}]})");
  REQUIRE(b);
  return *b;
}

std::unique_ptr<offload::sysfs_backend> open_tree(const std::string& root, std::vector<offload::sysfs_binding> b) {
  auto r = offload::sysfs_backend::open(offload::sysfs_options{root, std::move(b)});
  REQUIRE(r);
  return std::move(*r);
}

std::string fixture(const char* name) { return (test::fixture(name) / "sys").string(); }

const instance_info& find(const std::vector<instance_info>& v, const uuid& id) {
  auto it = std::find_if(v.begin(), v.end(), [&](const instance_info& i) { return i.id.uuid == id; });
  REQUIRE(it != v.end());
  return *it;
}

const function_view& fn(const std::vector<card_view>& cards, const std::string& addr) {
  for (const auto& c : cards)
    for (const auto& f : c.functions)
      if (f.address == addr) return f;
  FAIL("no function " << addr);
  throw 0;
}

const card_view& card(const std::vector<card_view>& cards, const std::string& addr) {
  auto it = std::find_if(cards.begin(), cards.end(), [&](const card_view& c) { return c.identity.pci_address == addr; });
  REQUIRE(it != cards.end());
  return *it;
}

bool mentions(const std::vector<error>& es, errc code, const std::string& text) {
  for (const auto& e : es)
    if (e.code() == code && e.describe().find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("SR-IOV host: the PF, two virtio-net VFs and a virtio-blk function as cards") {
  auto b = open_tree(fixture("offload-sriov"), sriov_bindings());
  auto cards = b->cards();
  REQUIRE(cards);
  REQUIRE(cards->size() == 2);  // the virtio console and the Intel function are not cards
  const auto& c = card(*cards, "0000:3b:00.0");
  CHECK(c.identity.model == "pci 1af4:1041");
  CHECK(c.total_vfs == 4u);
  CHECK(c.enabled_vfs == 2u);
  CHECK(c.link_bandwidth == bytes_per_second{25000ull * 125000});  // 25000 Mbit/s
  CHECK(c.problems.empty());
  REQUIRE(c.functions.size() == 3);
  const auto& pf = fn(*cards, "0000:3b:00.0");
  CHECK(pf.form == function_form::physical);
  CHECK(pf.type == function_type::virtio_net);
  CHECK(pf.driver == "virtio-pci");
  CHECK(pf.target == "eth0");
  CHECK_FALSE(pf.instance);

  const auto& vf0 = fn(*cards, "0000:3b:00.1");
  CHECK(vf0.form == function_form::sriov_vf);
  CHECK(vf0.parent == "0000:3b:00.0");
  CHECK(vf0.vf_index == 0u);
  CHECK(vf0.driver == "virtio-pci");
  CHECK(vf0.instance == acme);
  CHECK(vf0.mac == "52:54:00:3b:00:01");
  CHECK(vf0.target == "eth1");
  CHECK(vf0.counters.rx.byte_count == bytes{123456789});
  CHECK(vf0.counters.tx.packet_count == packets{700000});
  CHECK(vf0.counters.tx.drops == packets{4});
  CHECK_FALSE(vf0.counters.tx.throttled);  // sysfs does not count throttling
  REQUIRE(vf0.qos.tx_bandwidth);
  CHECK(vf0.qos.tx_bandwidth->rate == limit<bytes_per_second>{bytes_per_second{10000ull * 125000}});
  CHECK(vf0.qos.tx_bandwidth->guaranteed == bytes_per_second{2500ull * 125000});
  CHECK(vf0.problems.empty());

  const auto& vf1 = fn(*cards, "0000:3b:00.2");
  CHECK(vf1.driver == "vfio-pci");
  CHECK(vf1.vf_index == 1u);
  CHECK(vf1.target.empty());
  CHECK(vf1.qos.tx_bandwidth->rate.is_unlimited());  // max_tx_rate 0
  CHECK(mentions(vf1.problems, errc::unsupported, "backs no host device (driver 'vfio-pci')"));

  const auto& blk = fn(*cards, "0000:3c:00.0");
  CHECK(blk.type == function_type::virtio_blk);
  CHECK(blk.target == "vda");
  CHECK(blk.counters.disk.read_requests == operations{5000});
  CHECK(blk.counters.disk.read_bytes == bytes{80000ull * 512});
  CHECK(blk.counters.disk.write_requests == operations{3000});
  CHECK(blk.counters.disk.write_bytes == bytes{48000ull * 512});

  const auto j = nlohmann::json(c);
  CHECK(j["functions"][1]["qos"]["tx"]["bandwidth"]["rate_bytes_sec"] == 1250000000ull);
  CHECK(j["functions"][1]["qos"]["tx"]["bandwidth"]["burst_bytes"].is_null());
  CHECK(j["capacity"].is_null());
  CHECK(j["total_vfs"] == 4);
}

TEST_CASE("SR-IOV host: instances from the bindings through discover() and read()") {
  auto b = open_tree(fixture("offload-sriov"), sriov_bindings());
  auto found = b->discover();
  REQUIRE(found);
  REQUIRE(found->size() == 3);
  const auto& a = find(*found, acme);
  CHECK(a.kind == instance_kind::bare_metal);
  CHECK(a.isolation == isolation_level::bare_metal);
  CHECK(a.state == instance_state::running);
  CHECK(a.tenant == "acme");
  CHECK(a.modes.get(resource_kind::net_bandwidth) == isolation_mode::hardware);
  CHECK(a.modes.get(resource_kind::disk_iops) == isolation_mode::hardware);
  CHECK(a.modes.get(resource_kind::cpu) == isolation_mode::dedicated);
  REQUIRE(a.id.incarnation);
  const auto& g = find(*found, globex);
  CHECK(g.kind == instance_kind::vm);
  CHECK(g.isolation == isolation_level::vm_offload);
  CHECK_FALSE(g.modes.get(resource_kind::cpu));
  const auto& gh = find(*found, ghost);
  CHECK(gh.state == instance_state::nostate);
  CHECK_FALSE(gh.id.incarnation);

  auto r = b->read(a);
  REQUIRE(r);
  CHECK(r->partial.empty());
  REQUIRE(r->enforced.interfaces.size() == 1);
  CHECK(r->enforced.interfaces[0].mac == "52:54:00:3b:00:01");
  REQUIRE(r->enforced.interfaces[0].outbound);
  CHECK(r->enforced.interfaces[0].outbound->average == limit<bytes_per_second>{bytes_per_second{1250000000}});
  CHECK_FALSE(r->enforced.interfaces[0].inbound);  // not shown in sysfs
  REQUIRE(r->usage.interfaces.size() == 1);
  CHECK(r->usage.interfaces[0].tx_bytes == bytes{987654321});
  CHECK(r->usage.interfaces[0].rx_errors == packets{1});
  REQUIRE(r->usage.disks.size() == 1);
  CHECK(r->usage.disks[0].target == "vda");
  CHECK(r->usage.disks[0].write_bytes == bytes{48000ull * 512});
  CHECK_FALSE(r->usage.disks[0].throttled_requests);

  auto rg = b->read(g);
  REQUIRE(rg);
  CHECK(mentions(rg->partial, errc::unsupported, "backs no host device"));
  REQUIRE(rg->usage.interfaces.size() == 1);
  CHECK(rg->usage.interfaces[0].target == "0000:3b:00.2");
  CHECK_FALSE(rg->usage.interfaces[0].tx_bytes);

  auto rgh = b->read(gh);
  REQUIRE(rgh);
  CHECK(mentions(rgh->partial, errc::not_found, "'0000:99:00.0' bound to instance"));

  CHECK(b->apply(a, quota_spec{}).error().code() == errc::unsupported);
  CHECK(b->capacity().error().code() == errc::unsupported);
}

TEST_CASE("incarnation: stable across reads, new when a backing device is re-created") {
  test::temp_dir t;
  fs::copy(test::fixture("offload-sriov"), t.path(), fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const std::string root = (t.path() / "sys").string();
  auto b = open_tree(root, sriov_bindings());
  const auto first = find(*b->discover(), acme).id.incarnation;
  CHECK(find(*b->discover(), acme).id.incarnation == first);
  std::ofstream(t.path() / "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1/virtio1/net/eth1/ifindex") << "17\n";
  const auto second = find(*b->discover(), acme).id.incarnation;
  CHECK(second != first);
  std::ofstream(t.path() / "sys/devices/pci0000:3a/0000:3a:01.0/0000:3c:00.0/virtio2/block/vda/diskseq") << "10\n";
  CHECK(find(*b->discover(), acme).id.incarnation != second);
}

TEST_CASE("vDPA host: devices on the vdpa bus, typed, with their parent and driver") {
  auto bind = offload::parse_sysfs_bindings(R"({"instances": [
    {"uuid": "b0000000-0000-4000-8000-0000000000d1", "name": "initech-vm", "isolation": "vm_offload",
     "functions": ["vdpa0"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000d2", "name": "host-self", "isolation": "bare_metal",
     "functions": ["vdpa1", "0000:5f:00.0"]}]})");
  REQUIRE(bind);
  auto b = open_tree(fixture("offload-vdpa"), *bind);
  auto cards = b->cards();
  REQUIRE(cards);
  REQUIRE(cards->size() == 2);
  const auto& c = card(*cards, "0000:5e:00.0");
  CHECK(c.identity.model == "pci 1af4:1000");
  REQUIRE(c.functions.size() == 4);
  const auto& parent = fn(*cards, "0000:5e:00.0");
  CHECK(parent.driver == "eni_vdpa");
  CHECK(parent.problems.empty());  // a vDPA parent: its traffic is on its vDPA device
  const auto& v0 = fn(*cards, "vdpa0");
  CHECK(v0.form == function_form::vdpa);
  CHECK(v0.type == function_type::virtio_net);  // from its parent's device id
  CHECK(v0.parent == "0000:5e:00.0");
  CHECK(v0.driver == "vhost_vdpa");
  CHECK(mentions(v0.problems, errc::unsupported, "backs no host device (driver 'vhost_vdpa')"));
  const auto& v1 = fn(*cards, "vdpa1");
  CHECK(v1.driver == "virtio_vdpa");
  CHECK(v1.target == "eth5");
  CHECK(v1.counters.rx.byte_count == bytes{5550000});
  const auto& ali = fn(*cards, "0000:5f:00.0");
  CHECK(ali.type == function_type::virtio_blk);  // vendor 0x1ded, typed by its virtio child
  CHECK(ali.counters.disk.write_bytes == bytes{1600ull * 512});  // an 11-field stat file
  CHECK(card(*cards, "0000:5f:00.0").identity.model == "pci 1ded:5007");

  auto found = b->discover();
  REQUIRE(found);
  auto r = b->read(find(*found, *uuid::parse("b0000000-0000-4000-8000-0000000000d2")));
  REQUIRE(r);
  CHECK(r->partial.empty());
  CHECK(r->usage.interfaces.size() == 1);
  CHECK(r->usage.disks.size() == 1);
  CHECK(r->usage.disks[0].target == "vdb");
}

TEST_CASE("broken tree: missing files are reported where they are; the rest is read") {
  auto b = open_tree(fixture("offload-broken-missing"), sriov_bindings());
  auto cards = b->cards();
  REQUIRE(cards);
  // A function whose device id cannot be read may or may not be ours: said on its card.
  const auto& console = card(*cards, "0000:00:05.0");
  CHECK(mentions(console.problems, errc::not_found, "0000:00:05.0/device"));
  CHECK(console.functions.empty());
  const auto& vf0 = fn(*cards, "0000:3b:00.1");
  CHECK(mentions(vf0.problems, errc::not_found, "statistics/rx_bytes"));
  CHECK_FALSE(vf0.counters.rx.byte_count);
  CHECK(vf0.counters.tx.byte_count == bytes{987654321});  // the rest is read
  const auto& blk = fn(*cards, "0000:3c:00.0");
  CHECK(mentions(blk.problems, errc::not_found, "vda/stat"));
  CHECK_FALSE(blk.counters.disk.read_requests);
  const auto& c = card(*cards, "0000:3b:00.0");
  CHECK(c.total_vfs == 4u);
  CHECK_FALSE(c.enabled_vfs);  // sriov_numvfs is missing: unknown, not 0
  auto found = b->discover();
  REQUIRE(found);
  auto r = b->read(find(*found, acme));
  REQUIRE(r);
  CHECK(mentions(r->partial, errc::not_found, "rx_bytes"));
  CHECK(r->usage.interfaces[0].tx_bytes == bytes{987654321});
}

TEST_CASE("broken tree: non-numeric values are parse errors that quote the value") {
  auto b = open_tree(fixture("offload-broken-values"), sriov_bindings());
  auto cards = b->cards();
  REQUIRE(cards);
  CHECK(mentions(card(*cards, "0000:00:05.0").problems, errc::parse_error, "vendor: 'zz1f' is not a hex number"));
  const auto& vf0 = fn(*cards, "0000:3b:00.1");
  CHECK(mentions(vf0.problems, errc::parse_error, "statistics/tx_bytes: '12x' is not a non-negative integer"));
  CHECK_FALSE(vf0.counters.tx.byte_count);
  CHECK(vf0.counters.rx.byte_count == bytes{123456789});
  CHECK(mentions(vf0.problems, errc::parse_error, "max_tx_rate: '-5'"));
  CHECK_FALSE(vf0.qos.tx_bandwidth);
  const auto& pf = fn(*cards, "0000:3b:00.0");
  CHECK(mentions(pf.problems, errc::parse_error, "sriov_totalvfs: 'four'"));
  CHECK_FALSE(card(*cards, "0000:3b:00.0").total_vfs);
  CHECK(card(*cards, "0000:3b:00.0").enabled_vfs == 2u);
  const auto& blk = fn(*cards, "0000:3c:00.0");
  CHECK(mentions(blk.problems, errc::parse_error, "5 fields where at least 11 were expected"));
}

TEST_CASE("broken tree: links that lead out of the root are refused and nothing outside is read") {
  auto b = open_tree(fixture("offload-broken-link"), sriov_bindings());
  auto cards = b->cards();
  REQUIRE(cards);
  const auto& pf = fn(*cards, "0000:3b:00.0");
  CHECK(mentions(pf.problems, errc::unsafe_path, "virtfn1"));
  const auto& vf1 = fn(*cards, "0000:3b:00.2");
  CHECK_FALSE(vf1.vf_index);  // its virtfn link was refused
  const auto& vf0 = fn(*cards, "0000:3b:00.1");
  CHECK(mentions(vf0.problems, errc::unsafe_path, "driver"));
  CHECK_FALSE(vf0.driver);
  const auto& blk = fn(*cards, "0000:3c:00.0");
  CHECK(mentions(blk.problems, errc::unsafe_path, "vda/stat"));
  CHECK_FALSE(blk.counters.disk.read_requests);
  CHECK(mentions(card(*cards, "0000:3d:00.0").problems, errc::unsafe_path, "0000:3d:00.0/vendor"));
  // Nothing from outside/: its counters are 666666666 and its device is leak0.
  const std::string all = [&] {
    std::string s;
    for (const auto& c : *cards) s += nlohmann::json(c).dump();
    return s;
  }();
  CHECK(all.find("666666666") == std::string::npos);
  CHECK(all.find("leak0") == std::string::npos);
  CHECK(all.find("never read me") == std::string::npos);
  auto found = b->discover();
  REQUIRE(found);
  for (const auto& i : *found) CHECK(b->read(i));
}

TEST_CASE("bindings and roots are checked") {
  CHECK(offload::sysfs_backend::open({"/nonexistent-sysfs-root", {}}).error().code() == errc::not_found);
  auto twice = sriov_bindings();
  twice[1].functions.push_back("0000:3b:00.1");
  CHECK(offload::sysfs_backend::open({fixture("offload-sriov"), twice}).error().code() == errc::invalid_argument);
  auto bad = sriov_bindings();
  bad[0].functions.push_back("../../etc");
  CHECK(offload::sysfs_backend::open({fixture("offload-sriov"), bad}).error().code() == errc::unsafe_path);
  CHECK(offload::parse_sysfs_bindings(R"({"instances": [{"uuid": "b0000000-0000-4000-8000-0000000000a1", "colour": "red"}]})")
            .error()
            .message()
            .find("unknown key 'colour'") != std::string::npos);
  CHECK(offload::parse_sysfs_bindings(R"({"instances": [{"name": "x"}]})").error().message().find("uuid: missing") !=
        std::string::npos);
  CHECK_FALSE(offload::parse_sysfs_bindings(R"({"instances": [{"uuid": "b0000000-0000-4000-8000-0000000000a1", "isolation": "vm"}]})"));
}
