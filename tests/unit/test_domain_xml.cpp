// The XML reader and libvirt domain/capabilities parsing, without libvirt.
#include <doctest/doctest.h>

#include "bulkhead/backend/libvirt/domain_xml.hpp"
#include "bulkhead/detail/xml.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;
namespace xml = bulkhead::detail::xml;

TEST_CASE("xml: elements, attributes, text, entities, CDATA, comments") {
  const std::string_view s =
      "<?xml version='1.0'?>\n<!-- c --><!DOCTYPE x><a x='1' y=\"&lt;&amp;&#65;&#x42;\">"
      "<b>t&gt;<!-- skip -->u<![CDATA[<raw>&amp;]]></b><c/><b>second</b></a>";
  auto d = xml::document::parse(s);
  REQUIRE(d);
  auto a = d->root();
  CHECK(a.qname() == "a");
  CHECK(a.raw_attr("x") == "1");
  CHECK(a.attr("y").value().value() == "<&AB");
  CHECK_FALSE(a.attr("nope").value().has_value());
  CHECK(a.child("b").text().value() == "t>u<raw>&amp;");
  CHECK(a.child("c"));
  CHECK_FALSE(a.child("d"));
  int bs = 0;
  a.for_each_child("b", [&](xml::element) { ++bs; });
  CHECK(bs == 2);
  CHECK(a.child("c").next_sibling().text().value() == "second");
  CHECK(a.child("b").parent().qname() == "a");
  CHECK(xml::decode("&#x10FFFF;").value() == "\xf4\x8f\xbf\xbf");
  CHECK(xml::decode("&#233;").value() == "\xc3\xa9");
}

TEST_CASE("xml: namespaces resolve through xmlns declarations in scope") {
  auto d = xml::document::parse(
      "<m xmlns:q='urn:x'><q:i><q:t>v</q:t></q:i><p:i xmlns:p='urn:x'/><i xmlns='urn:y'><j/></i></m>");
  REQUIRE(d);
  auto m = d->root();
  CHECK(m.child("q:i").namespace_uri() == "urn:x");
  CHECK(m.child("q:i").child("q:t").namespace_uri() == "urn:x");
  CHECK(m.child("q:i").local_name() == "i");
  CHECK(m.child("p:i").namespace_uri() == "urn:x");
  CHECK(m.child("i").child("j").namespace_uri() == "urn:y");
  CHECK(m.namespace_uri().empty());
}

TEST_CASE("xml: malformed input is an error naming the byte offset") {
  for (auto bad : {"", "<a>", "<a></b>", "<a x=1/>", "<a x='1' x='2'/>", "<a/><b/>", "text", "<a>&bogus;</a>",
                   "<a><!-- x</a>", "<!DOCTYPE a [<!ENTITY e 'x'>]><a/>", "<a x='<'/>", "</a>", "<a><![CDATA[x</a>",
                   "<>", "<a &/>"}) {
    auto d = xml::document::parse(bad);
    if (d) {
      // Well-formed but with a bad reference: the error comes on decode.
      CHECK_FALSE(d->root().text());
      continue;
    }
    INFO(bad);
    CHECK(d.error().code() == errc::parse_error);
    CHECK(d.error().message().rfind("XML at byte", 0) == 0);
  }
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "<a>";
  auto d = xml::document::parse(deep);
  REQUIRE_FALSE(d);
  CHECK(d.error().message().find("deeper") != std::string::npos);
}

namespace {
const char* full_domain = R"(<domain type='kvm' id='7'>
  <name>web &amp; db</name>
  <uuid>c0000000-0000-4000-8000-000000000001</uuid>
  <metadata>
    <bh:instance xmlns:bh="urn:bulkhead:instance:1">
      <bh:tenant>acme</bh:tenant><bh:qos_class>LSE</bh:qos_class>
    </bh:instance>
  </metadata>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='MiB'>3072</currentMemory>
  <memtune>
    <hard_limit unit='KiB'>3670016</hard_limit>
    <soft_limit unit='KiB'>9007199254740991</soft_limit>
    <swap_hard_limit unit='bytes'>4294967296</swap_hard_limit>
    <min_guarantee unit='KiB'>1024</min_guarantee>
  </memtune>
  <vcpu placement='static' current='2'>4</vcpu>
  <cputune>
    <shares>1536</shares><period>250000</period><quota>125000</quota>
    <emulator_period>100000</emulator_period><emulator_quota>-1</emulator_quota>
    <vcpupin vcpu='0' cpuset='0-1'/><vcpupin vcpu='1' cpuset='2,4'/>
    <vcpupin vcpu='2' cpuset='5'/><vcpupin vcpu='3' cpuset='6'/>
    <emulatorpin cpuset='6-7'/>
    <cachetune vcpus='0-1'><cache id='0' level='3' type='both' size='3' unit='MiB'/></cachetune>
  </cputune>
  <numatune><memory mode='strict' nodeset='1'/></numatune>
  <blkiotune><weight>750</weight></blkiotune>
  <devices>
    <disk type='file' device='cdrom'><target dev='hdc'/></disk>
    <disk type='file' device='disk'><target dev='vda'/>
      <iotune><read_bytes_sec>1048576</read_bytes_sec><write_iops_sec>0</write_iops_sec>
        <read_bytes_sec_max>2097152</read_bytes_sec_max></iotune></disk>
    <disk type='vhostvdpa' device='disk'><target dev='vdb'/></disk>
    <interface type='network'><mac address='52:54:00:AA:00:01'/><target dev='vnet3'/>
      <bandwidth><inbound average='2048' peak='4096' burst='1024' floor='512'/><outbound average='1024'/></bandwidth>
    </interface>
    <interface type='bridge'><mac address='52:54:00:aa:00:02'/></interface>
  </devices>
</domain>)";
}  // namespace

TEST_CASE("domain XML: every quota element, in base units") {
  auto r = libvirt::parse_domain_xml(full_domain);
  REQUIRE(r);
  const auto& d = *r;
  CHECK(d.name == "web & db");
  CHECK(d.uuid.to_string() == "c0000000-0000-4000-8000-000000000001");
  CHECK(d.libvirt_id == 7);
  CHECK(d.domain_type == "kvm");
  CHECK(d.tenant == "acme");
  CHECK(d.tenant_source == "bulkhead");
  CHECK(d.qos == qos_class::LSE);
  const auto& s = d.spec;
  CHECK(s.memory.max == bytes{4ull << 30});
  CHECK(s.memory.current == bytes{3ull << 30});
  CHECK(s.memory.hard_limit->value() == bytes{3670016ull * 1024});
  CHECK(s.memory.soft_limit->is_unlimited());
  CHECK(s.memory.swap_hard_limit->value() == bytes{4294967296ull});
  CHECK(s.memory.min == bytes{1024ull * 1024});
  CHECK(s.cpu.vcpus == 2u);
  CHECK(s.cpu.max_vcpus == 4u);
  CHECK(s.cpu.shares == 1536u);
  CHECK(s.cpu.period == 250000us);
  CHECK(s.cpu.quota->value() == 125000us);
  CHECK(s.cpu.emulator_period == 100000us);
  CHECK(s.cpu.emulator_quota->is_unlimited());
  REQUIRE(s.cpu.vcpu_pins->size() == 4);
  CHECK((*s.cpu.vcpu_pins)[1].cpus.to_string() == "2,4");
  CHECK(s.cpu.emulator_pin->to_string() == "6-7");
  REQUIRE(s.cache_tunes->size() == 1);
  CHECK((*s.cache_tunes)[0].caches[0].size == bytes{3ull << 20});
  CHECK(s.memory.numa->mode == "strict");
  CHECK(s.memory.numa->nodeset.to_string() == "1");
  CHECK(s.blkio_weight == 750u);
  REQUIRE(s.disks.size() == 2);  // the cdrom is not a disk
  const auto* vda = s.disk("vda");
  REQUIRE(vda);
  CHECK(vda->read_bytes_sec->value() == bytes_per_second{1048576});
  CHECK(vda->write_iops_sec->is_unlimited());  // 0 means no limit in libvirt
  CHECK(vda->total_bytes_sec->is_unlimited());  // absent: no limit
  CHECK(vda->read_bytes_sec_max->value() == bytes_per_second{2097152});
  REQUIRE(s.interfaces.size() == 2);
  const auto* nic = s.interface("52:54:00:aa:00:01");  // MACs are lower-cased
  REQUIRE(nic);
  CHECK(nic->target == "vnet3");
  CHECK(nic->inbound->average.value() == bytes_per_second{2048 * 1000});
  CHECK(nic->inbound->peak == bytes_per_second{4096 * 1000});
  CHECK(nic->inbound->burst == bytes{1024 * 1024});
  CHECK(nic->inbound->floor == bytes_per_second{512 * 1000});
  CHECK(nic->outbound->average.value() == bytes_per_second{1024 * 1000});
  CHECK_FALSE(nic->outbound->peak.has_value());
  CHECK(s.interface("52:54:00:aa:00:02")->inbound->average.is_unlimited());
  // Isolation: the vhostvdpa disk makes it vm_offload; all vCPUs pinned.
  CHECK(d.isolation == isolation_level::vm_offload);
  CHECK(d.modes.get(resource_kind::cpu) == isolation_mode::dedicated);
  CHECK(d.modes.get(resource_kind::memory) == isolation_mode::dedicated);
  CHECK(d.modes.get(resource_kind::disk_bandwidth) == isolation_mode::hardware);
  CHECK(d.modes.get(resource_kind::net_bandwidth) == isolation_mode::capped);
  CHECK(d.modes.get(resource_kind::llc) == isolation_mode::dedicated);
  CHECK(validate(s).has_value());
}

TEST_CASE("domain XML: minimal domain; absent limits are unlimited") {
  auto r = libvirt::parse_domain_xml(
      "<domain type='test'><name>m</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
      "<memory>1048576</memory><vcpu>1</vcpu></domain>");
  REQUIRE(r);
  CHECK_FALSE(r->libvirt_id.has_value());
  CHECK(r->spec.memory.max == bytes{1ull << 30});
  CHECK(r->spec.memory.current == bytes{1ull << 30});
  CHECK(r->spec.cpu.quota->is_unlimited());
  CHECK(r->spec.memory.hard_limit->is_unlimited());
  CHECK_FALSE(r->spec.cpu.shares.has_value());
  CHECK_FALSE(r->tenant.has_value());
  CHECK_FALSE(r->qos.has_value());
  CHECK(r->isolation == isolation_level::vm);
  CHECK(r->modes.get(resource_kind::cpu) == isolation_mode::shared);
  CHECK_FALSE(r->modes.get(resource_kind::disk_bandwidth).has_value());
}

TEST_CASE("domain XML: metadata from Nova, precedence, bad class") {
  const std::string head = "<domain><name>n</name><uuid>00000000-0000-0000-0000-000000000001</uuid><metadata>";
  const std::string nova =
      "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:owner>"
      "<nova:project uuid='p-uuid'>demo</nova:project></nova:owner></nova:instance>";
  const std::string ours =
      "<x:instance xmlns:x='urn:bulkhead:instance:1'><x:tenant>t1</x:tenant><x:qos_class>bogus</x:qos_class>"
      "</x:instance>";
  const std::string foreign = "<x:instance xmlns:x='urn:somebody-else'><x:tenant>no</x:tenant></x:instance>";
  auto a = libvirt::parse_domain_xml(head + nova + "</metadata></domain>");
  REQUIRE(a);
  CHECK(a->tenant == "p-uuid");
  CHECK(a->tenant_source == "nova");
  auto b = libvirt::parse_domain_xml(head + nova + ours + "</metadata></domain>");
  REQUIRE(b);
  CHECK(b->tenant == "t1");
  CHECK_FALSE(b->qos.has_value());
  REQUIRE(b->warnings.size() == 1);
  CHECK(b->warnings[0].find("'bogus'") != std::string::npos);
  auto c = libvirt::parse_domain_xml(head + foreign + "</metadata></domain>");
  REQUIRE(c);
  CHECK_FALSE(c->tenant.has_value());
}

TEST_CASE("domain XML: bad values are errors naming the domain and element") {
  const auto with = [](const std::string& body) {
    return "<domain><name>bad one</name><uuid>00000000-0000-0000-0000-000000000001</uuid>" + body + "</domain>";
  };
  struct {
    std::string body, expect;
  } cases[] = {
      {"<memory unit='KiB'>lots</memory>", "<memory>"},
      {"<memory unit='parsecs'>1</memory>", "unknown unit 'parsecs'"},
      {"<memory unit='TiB'>99999999</memory>", "overflows"},
      {"<vcpu>0</vcpu>", "<vcpu>"},
      {"<vcpu current='5'>4</vcpu>", "current=5"},
      {"<cputune><shares>-3</shares></cputune>", "<shares>"},
      {"<cputune><vcpupin vcpu='0' cpuset='9-2'/></cputune>", "cpuset"},
      {"<cputune><period>x</period></cputune>", "<period>"},
      {"<devices><disk type='file' device='disk'><target dev='vda'/><iotune><read_iops_sec>1e3</read_iops_sec></iotune></disk></devices>",
       "read_iops_sec"},
      {"<devices><disk type='file' device='disk'></disk></devices>", "target dev"},
      {"<devices><interface type='network'><bandwidth><inbound average='18446744073709551615'/></bandwidth></interface></devices>",
       "overflows"},
  };
  for (const auto& c : cases) {
    auto r = libvirt::parse_domain_xml(with(c.body));
    INFO(c.body);
    REQUIRE_FALSE(r);
    INFO(r.error().describe());
    CHECK(r.error().describe().find("domain 'bad one'") != std::string::npos);
    CHECK(r.error().describe().find(c.expect) != std::string::npos);
  }
  CHECK_FALSE(libvirt::parse_domain_xml("<network/>"));
  CHECK_FALSE(libvirt::parse_domain_xml("<domain><name>x</name><uuid>nope</uuid></domain>"));
  CHECK_FALSE(libvirt::parse_domain_xml("<domain><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>"));
}

TEST_CASE("capabilities: NUMA cells with CPU ids and memory") {
  auto cells = libvirt::parse_capabilities_cells(
      "<capabilities><host><topology><cells num='2'>"
      "<cell id='1'><memory unit='KiB'>4194304</memory><cpus num='2'><cpu id='2'/><cpu id='3'/></cpus></cell>"
      "<cell id='0'><memory unit='KiB'>2097152</memory><cpus num='2'><cpu id='0'/><cpu id='1'/></cpus></cell>"
      "</cells></topology></host></capabilities>");
  REQUIRE(cells);
  REQUIRE(cells->size() == 2);
  CHECK((*cells)[0].id == 0);
  CHECK((*cells)[0].cpus.to_string() == "0-1");
  CHECK((*cells)[1].memory == bytes{4ull << 30});
  CHECK(libvirt::parse_capabilities_cells("<capabilities><host/></capabilities>")->empty());
  CHECK_FALSE(libvirt::parse_capabilities_cells("<capabilities><host><topology><cells><cell id='x'/></cells></topology></host></capabilities>"));
  CHECK_FALSE(libvirt::parse_capabilities_cells("<domain/>"));
}

// Regression (fuzz_capabilities, ASan stack-use-after-return): a number that
// needs decoding (an entity) is short enough to live inside the decoded
// string object; its value must survive the move out of the text reader.
TEST_CASE("domain XML: numbers written with character references parse to their value") {
  auto r = libvirt::parse_domain_xml(
      "<domain type='test'><name>m</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
      "<memory unit='KiB'>&#49;048576</memory><vcpu>&#50;</vcpu>"
      "<cputune><shares> &#50;048 </shares></cputune></domain>");
  REQUIRE(r);
  CHECK(r->spec.memory.max == bytes{1ull << 30});
  CHECK(r->spec.cpu.vcpus == 2u);
  CHECK(r->spec.cpu.shares == 2048u);
}
