// The libvirt write path against libvirt's test driver: every knob the driver
// supports is applied and read back; the knobs it refuses (scheduler
// parameters) are reported by name with the driver's message while the rest
// still apply; unit conversions at the boundary.
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>

#include <algorithm>
#include <set>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<libvirt::backend> open_rw(const std::string& uri) {
  auto b = libvirt::backend::connect({uri, false});
  REQUIRE_MESSAGE(b.has_value(), (b ? std::string() : b.error().describe()));
  return std::move(*b);
}

instance_info find(libvirt::backend& b, const std::string& name) {
  auto all = b.discover();
  REQUIRE(all);
  for (auto& i : *all)
    if (i.name == name) return i;
  FAIL("no domain " << name);
  return {};
}

bool has_change(const apply_report& r, const std::string& knob) {
  return std::any_of(r.changed.begin(), r.changed.end(), [&](const auto& c) { return c.knob == knob; });
}
const knob_failure* failure(const apply_report& r, const std::string& knob) {
  for (const auto& f : r.failed)
    if (f.knob == knob) return &f;
  return nullptr;
}

quota_spec desired() {
  quota_spec s;
  s.cpu.vcpus = 1;
  s.cpu.shares = 2048;
  s.cpu.period = 100000us;
  s.cpu.quota = limit<microseconds>{25000us};
  s.cpu.weight = 200;  // a cgroup v2 knob: libvirt has none
  s.cpu.vcpu_pins = std::vector<vcpu_pin>{{0, cpuset::range(3, 3)}};
  s.cpu.emulator_pin = cpuset::range(5, 6);
  s.memory.current = bytes{1ull << 30};
  s.memory.hard_limit = limit<bytes>{bytes{4ull << 30}};
  s.memory.soft_limit = limit<bytes>{bytes{2ull << 30}};
  s.memory.numa = numa_tune{"strict", cpuset::range(0, 0)};
  s.blkio_weight = 600;
  disk_spec d;
  d.target = "vda";
  // libvirt's test driver refuses a base rate above its _max unless the
  // _max is given too (it does not treat an unset _max as "none").
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1'048'576}};
  d.read_bytes_sec_max = limit<bytes_per_second>{bytes_per_second{2'097'152}};
  s.disks.push_back(d);
  interface_spec i;
  i.mac = "aa:bb:cc:dd:ee:ff";
  i.inbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{1'000'000}}, bytes_per_second{2'000'000},
                                  bytes{512 * 1024}, std::nullopt, std::nullopt};
  i.outbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{500'000}}, std::nullopt, std::nullopt,
                                   std::nullopt, std::nullopt};
  s.interfaces.push_back(i);
  return s;
}

}  // namespace

TEST_CASE("apply every knob the test driver supports; refused knobs named; read back equal") {
  auto b = open_rw("test:///default");
  const auto t = find(*b, "test");
  const auto want = desired();
  auto r = b->apply(t, want);
  REQUIRE(r);
  for (const auto& c : r->changed) MESSAGE(c.knob << ": " << c.before << " -> " << c.after);
  for (const auto& f : r->failed) MESSAGE("failed " << f.knob << ": " << f.why.describe());

  for (auto k : {"cpu.vcpus", "cpu.vcpu_pins[0]", "cpu.emulator_pin", "memory.current", "memory.hard_limit",
                 "memory.soft_limit", "memory.numa", "blkio_weight", "disks['vda'].read_bytes_sec",
                 "disks['vda'].read_bytes_sec_max", "interfaces['aa:bb:cc:dd:ee:ff'].inbound",
                 "interfaces['aa:bb:cc:dd:ee:ff'].outbound"})
    CHECK_MESSAGE(has_change(*r, k), k);
  // The test driver refuses scheduler parameters: each knob is named with the
  // driver's message, and the others above were still applied.
  for (auto k : {"cpu.shares", "cpu.period", "cpu.quota"}) {
    const auto* f = failure(*r, k);
    REQUIRE_MESSAGE(f != nullptr, k);
    CHECK(f->why.describe().find(std::string("setting ") + k) != std::string::npos);
    CHECK(f->why.describe().find("not supported") != std::string::npos);
  }
  // The test driver pins vCPUs of a running domain live only: the saved
  // config's refusal is reported, the live pin is a change.
  REQUIRE(failure(*r, "cpu.vcpu_pins[0]"));
  CHECK(failure(*r, "cpu.vcpu_pins[0]")->why.describe().find("saved config") != std::string::npos);
  CHECK(r->unsupported == std::vector<std::string>{"cpu.weight"});
  CHECK_FALSE(r->ok());

  // Old -> new is reported in the knob's unit.
  for (const auto& c : r->changed)
    if (c.knob == "memory.hard_limit") {
      CHECK(c.before == "unlimited");
      CHECK(c.after == "4294967296 bytes");
    }

  // Read back through the read path: equal to the spec, field by field.
  auto got = b->read(t);
  REQUIRE(got);
  const auto& e = got->enforced;
  CHECK(e.cpu.vcpus == 1u);
  REQUIRE(e.cpu.vcpu_pins.has_value());
  CHECK(e.cpu.vcpu_pins->at(0).cpus.to_string() == "3");
  CHECK(e.cpu.emulator_pin->to_string() == "5-6");
  CHECK(e.memory.current == bytes{1ull << 30});
  CHECK(e.memory.hard_limit->value() == bytes{4ull << 30});
  CHECK(e.memory.soft_limit->value() == bytes{2ull << 30});
  CHECK(e.memory.numa->mode == "strict");
  CHECK(e.blkio_weight == 600u);
  CHECK(e.disk("vda")->read_bytes_sec->value() == bytes_per_second{1'048'576});
  CHECK(e.disk("vda")->read_bytes_sec_max->value() == bytes_per_second{2'097'152});
  const auto* nic = e.interface("aa:bb:cc:dd:ee:ff");
  REQUIRE(nic);
  CHECK(nic->inbound->average.value() == bytes_per_second{1'000'000});  // 1000 kilobytes/s in the XML
  CHECK(nic->inbound->peak == bytes_per_second{2'000'000});
  CHECK(nic->inbound->burst == bytes{512 * 1024});  // 512 kilobytes in the XML
  CHECK(nic->outbound->average.value() == bytes_per_second{500'000});

  // Idempotent: nothing changes the second time; the refused knobs still fail.
  auto again = b->apply(t, want);
  REQUIRE(again);
  CHECK(again->changed.empty());
  std::set<std::string> failed_knobs;
  for (const auto& f : again->failed) failed_knobs.insert(f.knob);
  CHECK(failed_knobs == std::set<std::string>{"cpu.shares", "cpu.period", "cpu.quota", "cpu.vcpu_pins[0]"});

  // Only what differs is changed.
  auto one = want;
  one.blkio_weight = 700;
  auto r3 = b->apply(t, one);
  REQUIRE(r3);
  REQUIRE(r3->changed.size() == 1);
  CHECK(r3->changed[0].knob == "blkio_weight");
  CHECK(r3->changed[0].before == "600");
  CHECK(r3->changed[0].after == "700");

  // Unlimited removes a limit.
  quota_spec lift;
  lift.memory.hard_limit = limit<bytes>{unlimited};
  lift.interfaces.push_back(interface_spec{"aa:bb:cc:dd:ee:ff", "", direction_bandwidth{}, std::nullopt});
  auto r4 = b->apply(t, lift);
  REQUIRE(r4);
  CHECK(r4->failed.empty());
  auto after = b->read(t);
  REQUIRE(after);
  CHECK(after->enforced.memory.hard_limit->is_unlimited());
  CHECK(after->enforced.interface("aa:bb:cc:dd:ee:ff")->inbound->average.is_unlimited());
  CHECK(after->enforced.interface("aa:bb:cc:dd:ee:ff")->outbound->average.value() == bytes_per_second{500'000});
}

TEST_CASE("conversions that libvirt cannot represent are refused per knob, nothing else lost") {
  auto b = open_rw("test:///default");
  const auto t = find(*b, "test");
  quota_spec s;
  s.memory.hard_limit = limit<bytes>{bytes{1000}};  // not whole KiB
  s.blkio_weight = 321;
  interface_spec i;
  i.mac = "aa:bb:cc:dd:ee:ff";
  i.inbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{1500}}, std::nullopt, std::nullopt,
                                  std::nullopt, std::nullopt};  // not whole kilobytes/s
  i.outbound = direction_bandwidth{limit<bytes_per_second>{bytes_per_second{3000}}, std::nullopt, bytes{1000},
                                   std::nullopt, std::nullopt};  // burst not whole kilobytes
  s.interfaces.push_back(i);
  auto r = b->apply(t, s);
  REQUIRE(r);
  REQUIRE(failure(*r, "memory.hard_limit"));
  CHECK(failure(*r, "memory.hard_limit")->why.message().find("not a whole number of KiB") != std::string::npos);
  REQUIRE(failure(*r, "interfaces['aa:bb:cc:dd:ee:ff'].inbound"));
  CHECK(failure(*r, "interfaces['aa:bb:cc:dd:ee:ff'].inbound")->why.message().find("kilobytes/s") != std::string::npos);
  REQUIRE(failure(*r, "interfaces['aa:bb:cc:dd:ee:ff'].outbound"));
  CHECK(failure(*r, "interfaces['aa:bb:cc:dd:ee:ff'].outbound")->why.message().find("burst") != std::string::npos);
  CHECK(has_change(*r, "blkio_weight"));
}

TEST_CASE("an invalid spec is refused before anything is applied") {
  auto b = open_rw("test:///default");
  const auto t = find(*b, "test");
  const auto before = b->read(t);
  REQUIRE(before);
  quota_spec s;
  s.blkio_weight = 400;
  s.cpu.period = 0us;
  auto r = b->apply(t, s);
  REQUIRE_FALSE(r);
  CHECK(r.error().describe().find("cpu.period: 0 us") != std::string::npos);
  CHECK(b->read(t)->enforced.blkio_weight == before->enforced.blkio_weight);
}

TEST_CASE("a shut-off persistent domain: the saved config is changed") {
  auto b = open_rw("test://" + test::fixture("libvirt/varied-node.xml").string());
  const auto off = find(*b, "stopped with both metadata");
  REQUIRE(off.state == instance_state::shutoff);
  quota_spec s;
  s.memory.hard_limit = limit<bytes>{bytes{512ull << 20}};
  s.blkio_weight = 900;
  auto r = b->apply(off, s);
  REQUIRE(r);
  CHECK(r->failed.empty());
  CHECK(has_change(*r, "memory.hard_limit"));
  CHECK(has_change(*r, "blkio_weight"));
  auto got = b->read(off);
  REQUIRE(got);
  CHECK(got->enforced.memory.hard_limit->value() == bytes{512ull << 20});
  CHECK(got->enforced.blkio_weight == 900u);
}

TEST_CASE("apply to a domain that is gone") {
  auto b = open_rw("test://" + test::fixture("libvirt/varied-node.xml").string());
  auto gone = find(*b, "many devices");
  virDomainPtr d = virDomainLookupByName(b->native_handle(), "many devices");
  REQUIRE(d);
  virDomainDestroy(d);
  virDomainUndefine(d);
  virDomainFree(d);
  quota_spec s;
  s.blkio_weight = 100;
  auto r = b->apply(gone, s);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::vanished);
  CHECK(r.error().message().find("many devices") != std::string::npos);
}
