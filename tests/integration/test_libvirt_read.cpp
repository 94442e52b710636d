// The libvirt read path against libvirt's own test driver: the default node
// and committed node files. Values are compared field by field with what the
// XML says.
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>

#include <algorithm>
#include <map>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

std::string node_uri(const std::string& file) {
  return "test://" + test::fixture("libvirt/" + file).string();
}

std::unique_ptr<libvirt::backend> open(const std::string& uri, bool ro = true) {
  auto b = libvirt::backend::connect({uri, ro});
  REQUIRE_MESSAGE(b.has_value(), (b ? std::string() : b.error().describe()));
  return std::move(*b);
}

std::map<std::string, instance_reading> by_name(host_reading r) {
  std::map<std::string, instance_reading> m;
  for (auto& i : r.instances) m.emplace(i.info.name, std::move(i));
  return m;
}

template <class Q>
Q lim(const knob<limit<Q>>& k) {
  REQUIRE(k.has_value());
  REQUIRE(k->is_bounded());
  return k->value();
}

}  // namespace

TEST_CASE("default test node: one running domain with counters") {
  auto b = open("test:///default");
  CHECK(b->kind() == "libvirt");
  CHECK(b->source() == "test:///default");
  auto cap = b->capacity();
  REQUIRE(cap);
  CHECK(cap->cpus == 16);
  CHECK(cap->memory == bytes{3ull * 1024 * 1024 * 1024});
  REQUIRE(cap->numa.size() == 2);  // the default node has a real topology
  CHECK_FALSE(cap->numa_derived);
  CHECK(cap->numa[0].cpus.to_string() == "0-7");
  CHECK(cap->numa[1].cpus.to_string() == "8-15");
  CHECK(cap->numa[0].memory == bytes{2097152ull * 1024});
  auto all = b->read_all();
  REQUIRE(all);
  REQUIRE(all->instances.size() == 1);
  CHECK(all->failures.empty());
  const auto& t = all->instances[0];
  CHECK(t.info.name == "test");
  CHECK(t.info.id.uuid.to_string() == "6695eb01-f6a4-8304-79aa-97f2502e193f");
  REQUIRE(t.info.id.incarnation.has_value());
  CHECK(t.info.state == instance_state::running);
  CHECK(t.info.kind == instance_kind::vm);
  CHECK(t.info.isolation == isolation_level::vm);
  CHECK(t.enforced.memory.max == bytes{8388608ull * 1024});
  CHECK(t.enforced.memory.current == bytes{2097152ull * 1024});
  CHECK(t.enforced.cpu.vcpus == 2u);
  // Counters come from per-domain calls: the test driver gives only the
  // state group in bulk.
  REQUIRE(t.usage.cpu_time.has_value());
  CHECK(t.usage.cpu_time->count() > 0);
  CHECK(t.usage.vcpu_time.size() == 2);
  REQUIRE(t.usage.disks.size() == 1);
  CHECK(t.usage.disks[0].target == "vda");
  CHECK(t.usage.disks[0].read_bytes.has_value());
  REQUIRE(t.usage.interfaces.size() == 1);
  CHECK(t.usage.interfaces[0].mac == "aa:bb:cc:dd:ee:ff");
  CHECK(t.usage.interfaces[0].rx_bytes.has_value());
  CHECK(t.usage.memory_current == bytes{2097152ull * 1024});
  CHECK(t.usage.read_at.time_since_epoch().count() > 0);
  // discover() and read() agree with read_all().
  auto found = b->discover();
  REQUIRE(found);
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].id == t.info.id);
  auto one = b->read(t.info);
  REQUIRE(one);
  CHECK(one->enforced == t.enforced);
  CHECK(*one->usage.cpu_time >= *t.usage.cpu_time);  // the test driver's CPU time follows the wall clock
}

TEST_CASE("varied node: every quota element, field by field") {
  auto b = open(node_uri("varied-node.xml"));
  auto cap = b->capacity();
  REQUIRE(cap);
  CHECK(cap->cpus == 8);
  CHECK(cap->mhz == 3000u);
  CHECK(cap->memory == bytes{16777216ull * 1024});
  CHECK(cap->sockets == 2);  // 1 per node x 2 nodes (virNodeInfo counts per node)
  CHECK(cap->cores_per_socket == 2);
  CHECK(cap->threads_per_core == 2);
  // No topology in a node file: derived from <nodes>.
  CHECK(cap->numa_derived);
  REQUIRE(cap->numa.size() == 2);
  CHECK(cap->numa[1].cpus.to_string() == "4-7");

  auto all = b->read_all();
  REQUIRE(all);
  CHECK(all->failures.empty());
  auto m = by_name(*all);
  REQUIRE(m.size() == 5);

  const auto& e = m.at("every knob");
  CHECK(e.info.id.uuid.to_string() == "c0000000-0000-4000-8000-000000000001");
  CHECK(e.info.tenant == "tenant & co");
  CHECK(e.info.qos == qos_class::LSR);
  CHECK(e.info.state == instance_state::running);
  const auto& s = e.enforced;
  CHECK(s.memory.max == bytes{4194304ull * 1024});
  CHECK(s.memory.current == bytes{3145728ull * 1024});
  CHECK(lim(s.memory.hard_limit) == bytes{3670016ull * 1024});
  CHECK(lim(s.memory.soft_limit) == bytes{2097152ull * 1024});
  CHECK(lim(s.memory.swap_hard_limit) == bytes{4194304ull * 1024});
  CHECK(s.memory.min == bytes{1048576ull * 1024});
  CHECK(s.cpu.vcpus == 3u);
  CHECK(s.cpu.max_vcpus == 4u);
  CHECK(s.cpu.shares == 1536u);
  CHECK(s.cpu.period == 250000us);
  CHECK(lim(s.cpu.quota) == 125000us);
  CHECK(s.cpu.emulator_period == 100000us);
  CHECK(lim(s.cpu.emulator_quota) == 30000us);
  REQUIRE(s.cpu.vcpu_pins.has_value());
  REQUIRE(s.cpu.vcpu_pins->size() == 3);
  CHECK((*s.cpu.vcpu_pins)[0].cpus.to_string() == "0-1");
  CHECK((*s.cpu.vcpu_pins)[1].cpus.to_string() == "2,4");
  CHECK((*s.cpu.vcpu_pins)[2].cpus.to_string() == "5");
  CHECK(s.cpu.emulator_pin->to_string() == "6-7");
  REQUIRE(s.cache_tunes.has_value());
  REQUIRE((*s.cache_tunes)[0].caches.size() == 2);
  CHECK((*s.cache_tunes)[0].vcpus.to_string() == "0-1");
  CHECK((*s.cache_tunes)[0].caches[0].size == bytes{3ull << 20});
  CHECK((*s.cache_tunes)[0].caches[1].size == bytes{1536ull << 10});
  CHECK((*s.cache_tunes)[0].caches[1].cache_id == 1);
  CHECK(s.memory.numa->mode == "interleave");
  CHECK(s.memory.numa->nodeset.to_string() == "0-1");
  CHECK(s.blkio_weight == 750u);
  REQUIRE(s.disks.size() == 1);
  CHECK(lim(s.disks[0].read_bytes_sec) == bytes_per_second{1048576});
  CHECK(lim(s.disks[0].write_bytes_sec) == bytes_per_second{524288});
  CHECK(lim(s.disks[0].read_iops_sec) == ops_per_second{100});
  CHECK(lim(s.disks[0].write_iops_sec) == ops_per_second{50});
  REQUIRE(s.interfaces.size() == 1);
  const auto& nic = s.interfaces[0];
  CHECK(nic.mac == "52:54:00:aa:00:01");
  CHECK(nic.inbound->average.value() == bytes_per_second{2048 * 1000});
  CHECK(nic.inbound->peak == bytes_per_second{4096 * 1000});
  CHECK(nic.inbound->burst == bytes{1024 * 1024});
  CHECK(nic.inbound->floor == bytes_per_second{512 * 1000});
  CHECK(nic.outbound->average.value() == bytes_per_second{1024 * 1000});
  CHECK(e.info.modes.get(resource_kind::cpu) == isolation_mode::capped);  // vCPU 3 is not pinned
  CHECK(e.info.modes.get(resource_kind::disk_bandwidth) == isolation_mode::capped);
  CHECK(e.info.modes.get(resource_kind::net_bandwidth) == isolation_mode::capped);
  CHECK(std::find(e.unsupported.begin(), e.unsupported.end(), "memory.high") != e.unsupported.end());

  // Six disks with every iotune field, four interfaces.
  const auto& many = m.at("many devices");
  REQUIRE(many.enforced.disks.size() == 6);
  REQUIRE(many.usage.disks.size() == 6);
  REQUIRE(many.enforced.interfaces.size() == 4);
  REQUIRE(many.usage.interfaces.size() == 4);
  const auto* vda = many.enforced.disk("vda");
  REQUIRE(vda);
  CHECK(lim(vda->read_bytes_sec) == bytes_per_second{10485760});
  CHECK(lim(vda->write_bytes_sec) == bytes_per_second{5242880});
  CHECK(lim(vda->read_iops_sec) == ops_per_second{1000});
  CHECK(lim(vda->write_iops_sec) == ops_per_second{500});
  CHECK(lim(vda->read_bytes_sec_max) == bytes_per_second{20971520});
  CHECK(lim(vda->write_bytes_sec_max) == bytes_per_second{10485760});
  CHECK(lim(vda->read_iops_sec_max) == ops_per_second{2000});
  CHECK(lim(vda->write_iops_sec_max) == ops_per_second{1000});
  CHECK(vda->total_bytes_sec->is_unlimited());
  const auto* vdb = many.enforced.disk("vdb");
  CHECK(lim(vdb->total_bytes_sec) == bytes_per_second{52428800});
  CHECK(lim(vdb->total_iops_sec) == ops_per_second{3000});
  CHECK(lim(vdb->total_bytes_sec_max) == bytes_per_second{104857600});
  CHECK(lim(vdb->total_iops_sec_max) == ops_per_second{6000});
  CHECK(lim(many.enforced.disk("vdc")->read_bytes_sec) == bytes_per_second{1});
  CHECK(lim(many.enforced.disk("vdc")->write_iops_sec) == ops_per_second{1});
  CHECK(many.enforced.disk("vdd")->read_bytes_sec->is_unlimited());
  CHECK(lim(many.enforced.disk("vde")->total_bytes_sec) == bytes_per_second{18446744073709551615ull});
  CHECK(lim(many.enforced.disk("vdf")->write_bytes_sec) == bytes_per_second{2097152});
  const auto* n0 = many.enforced.interface("52:54:00:bb:00:00");
  REQUIRE(n0);
  CHECK(n0->inbound->average.value() == bytes_per_second{1000 * 1000});
  CHECK(n0->inbound->peak == bytes_per_second{2000 * 1000});
  CHECK(n0->inbound->burst == bytes{512 * 1024});
  CHECK(n0->inbound->floor == bytes_per_second{100 * 1000});
  CHECK(n0->outbound->average.value() == bytes_per_second{500 * 1000});
  CHECK(n0->outbound->peak == bytes_per_second{600 * 1000});
  CHECK(n0->outbound->burst == bytes{64 * 1024});
  CHECK(many.enforced.interface("52:54:00:bb:00:01")->inbound->average.value() == bytes_per_second{1000});
  CHECK(many.enforced.interface("52:54:00:bb:00:02")->outbound->average.value() ==
        bytes_per_second{4294967295ull * 1000});
  CHECK(many.enforced.interface("52:54:00:bb:00:03")->inbound->average.is_unlimited());
  CHECK_FALSE(many.info.tenant.has_value());  // no metadata at all
  CHECK_FALSE(many.info.qos.has_value());
  for (const auto& ic : many.usage.interfaces) CHECK_FALSE(ic.mac.empty());  // counters keyed by MAC

  // A non-ASCII name, tenant from Nova.
  const auto& horse = m.at("Žluťoučký kůň 東京");
  CHECK(horse.info.tenant == "99999999-8888-4777-8666-555555555555");
  CHECK(horse.enforced.memory.max == bytes{512ull << 20});

  // Shut off: no incarnation, no counters; bulkhead metadata wins over Nova.
  const auto& off = m.at("stopped with both metadata");
  CHECK(off.info.state == instance_state::shutoff);
  CHECK_FALSE(off.info.id.incarnation.has_value());
  CHECK_FALSE(off.usage.cpu_time.has_value());
  CHECK(off.info.tenant == "wins-over-nova");
  CHECK(off.info.qos == qos_class::BE);
  CHECK(off.enforced.cpu.quota->is_unlimited());  // <quota>-1</quota>
  CHECK(off.info.persistent);

  // Paused: an incarnation and counters; a PCI host device makes it
  // vm_offload; the bad class is a warning, not a failure.
  const auto& paused = m.at("paused offload");
  CHECK(paused.info.state == instance_state::paused);
  CHECK(paused.info.id.incarnation.has_value());
  CHECK(paused.usage.cpu_time.has_value());
  CHECK(paused.info.isolation == isolation_level::vm_offload);
  CHECK(paused.info.modes.get(resource_kind::net_bandwidth) == isolation_mode::hardware);
  CHECK_FALSE(paused.info.qos.has_value());
  REQUIRE(paused.partial.size() == 1);
  CHECK(paused.partial[0].message().find("not-a-class") != std::string::npos);
}

TEST_CASE("new incarnations: destroy and start give a new libvirt id") {
  auto b = open(node_uri("varied-node.xml"), false);
  auto before = by_name(*b->read_all());
  const auto first = before.at("every knob").info.id;
  virDomainPtr d = virDomainLookupByName(b->native_handle(), "every knob");
  REQUIRE(d);
  REQUIRE(virDomainDestroy(d) == 0);
  auto stopped = by_name(*b->read_all());
  CHECK_FALSE(stopped.at("every knob").info.id.incarnation.has_value());
  REQUIRE(virDomainCreate(d) == 0);
  virDomainFree(d);
  auto after = by_name(*b->read_all());
  const auto second = after.at("every knob").info.id;
  CHECK(second.uuid == first.uuid);
  REQUIRE(second.incarnation.has_value());
  CHECK(second.incarnation != first.incarnation);
}

TEST_CASE("a domain that vanishes is reported, the others still read") {
  auto b = open(node_uri("varied-node.xml"), false);
  auto found = b->discover();
  REQUIRE(found);
  auto victim = std::find_if(found->begin(), found->end(), [](const auto& i) { return i.name == "many devices"; });
  REQUIRE(victim != found->end());
  virDomainPtr d = virDomainLookupByName(b->native_handle(), "many devices");
  REQUIRE(d);
  REQUIRE(virDomainDestroy(d) == 0);
  REQUIRE(virDomainUndefine(d) == 0);
  virDomainFree(d);
  auto r = b->read(*victim);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::vanished);
  CHECK(r.error().describe().find("many devices") != std::string::npos);
  auto all = b->read_all();
  REQUIRE(all);
  CHECK(all->instances.size() == 4);
}

TEST_CASE("unreachable URI and malformed node file: clear errors") {
  auto a = libvirt::backend::connect({"qemu+tcp://127.0.0.1:1/system", true});
  REQUIRE_FALSE(a);
  CHECK(a.error().code() == errc::connection_failed);
  CHECK(a.error().message().find("qemu+tcp://127.0.0.1:1/system") != std::string::npos);
  auto m = libvirt::backend::connect({node_uri("malformed-node.xml"), true});
  REQUIRE_FALSE(m);
  CHECK(m.error().code() == errc::connection_failed);
  CHECK(m.error().message().find("malformed-node.xml") != std::string::npos);
}

TEST_CASE("read-only connections refuse apply") {
  auto b = open("test:///default");
  auto found = b->discover();
  REQUIRE(found);
  quota_spec s;
  s.blkio_weight = 500;
  auto r = b->apply(found->at(0), s);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::permission_denied);
}
