#!/usr/bin/env python3
"""Writes the fixture-derived seeds of tests/fuzz/corpus/<target>/.

Seeds named fixture-* are (re)generated here from tests/fixtures and the
formats' documentation; seeds named real-* were captured on a host (virsh,
/proc, /sys, a journal written by bulkhead) and regression-* are inputs a
fuzzer once crashed on; those two kinds are committed as they are and never
touched by this script. Run from anywhere: python3 tests/fuzz/make_seeds.py
"""
import pathlib
import re
import sys

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
fixtures = root / "tests" / "fixtures"
corpus = here / "corpus"

targets = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("fixture-" + name)).write_bytes(data)
    targets[target] = targets.get(target, 0) + 1


def clean(target):
    d = corpus / target
    if d.is_dir():
        for f in d.glob("fixture-*"):
            f.unlink()


# --- XML: libvirt node files, domains, capabilities -------------------------
def xml_seeds():
    for t in ("xml", "domain_xml", "capabilities"):
        clean(t)
    for f in sorted((fixtures / "libvirt").glob("*.xml")):
        text = f.read_text(errors="replace")
        seed("xml", f.name, text)
        for i, m in enumerate(re.finditer(r"<domain[ >].*?</domain>", text, re.S)):
            seed("domain_xml", f"{f.stem}-{i}.xml", m.group(0))
    # Metadata forms (docs/libvirt-metadata.md) and the edges of the format.
    seed("domain_xml", "nova.xml", """<domain type='kvm'>
  <name>instance-0000002a</name>
  <uuid>8f2d1c9e-3b7a-4e55-9a61-0c2b7d9e4f10</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:owner><nova:user uuid="u1">admin</nova:user><nova:project uuid="c1a8f5e2a0b44f5e8b7c6d5e4f3a2b1c">demo</nova:project></nova:owner>
    </nova:instance>
  </metadata>
  <memory unit='MiB'>2048</memory>
  <vcpu>2</vcpu>
  <cputune><period>100000</period><quota>17592186044415</quota></cputune>
</domain>
""")
    seed("domain_xml", "units.xml", """<domain type='qemu'><name>u</name><uuid>00000000-0000-4000-8000-000000000002</uuid>
<memory unit='b'>1073741824</memory><currentMemory unit='G'>1</currentMemory>
<memtune><hard_limit unit='TB'>1</hard_limit><soft_limit>9007199254740991</soft_limit></memtune>
<cputune><quota>-1</quota><period>1000</period><vcpupin vcpu='0' cpuset='0-3,^2'/></cputune>
<devices><interface type='vdpa'><mac address='52:54:00:00:00:01'/><source dev='/dev/vhost-vdpa-0'/></interface>
<hostdev mode='subsystem' type='pci'/></devices></domain>
""")
    for f in sorted((corpus / "capabilities").glob("real-*")):
        seed("xml", "from-" + f.name, f.read_bytes())
    for f in sorted((corpus / "domain_xml").glob("real-*")):
        seed("xml", "from-" + f.name, f.read_bytes())
    seed("xml", "features.xml", "<?xml version='1.0'?>\n<!DOCTYPE a>\n<!-- c -->"
         "<a xmlns:q='urn:x' x='1' y=\"&lt;&amp;&#65;&#x42;\"><q:b>t&gt;<!-- skip -->u<![CDATA[<raw>&amp;]]></q:b>"
         "<c/><?pi x?><b>second</b></a>\n")
    seed("capabilities", "minimal.xml", "<capabilities><host><topology><cells num='1'><cell id='0'>"
         "<memory unit='KiB'>1024</memory><cpus num='2'><cpu id='0'/><cpu id='1'/></cpus></cell>"
         "</cells></topology></host></capabilities>\n")
    seed("capabilities", "scaled.txt", "4 GiB\n")


# --- offload: card description, sysfs bindings, sysfs trees -------------------
def offload_seeds():
    for t in ("offload_card", "offload_sysfs"):
        clean(t)
    demo = root / "tools" / "inspect" / "demo" / "card.json"
    seed("offload_card", "demo-card.json", demo.read_bytes())
    seed("offload_card", "small-card.json", """{"format": "bulkhead-offload-card/1", "cards": [{
  "pci_address": "0000:3b:00.0", "model": "test", "firmware": "1.2",
  "capacity": {"functions": 8, "net_bandwidth_bytes_sec": 1000000, "net_packets_sec": 10000,
               "disk_bandwidth_bytes_sec": 1000000, "disk_iops": 1000},
  "instances": [{"uuid": "b0000000-0000-4000-8000-000000000001", "name": "bm", "isolation": "bare_metal",
                 "tenant": "acme", "qos_class": "LSR", "incarnation": 2, "state": "running",
                 "board": {"cpus": 16, "memory_bytes": 68719476736}}],
  "functions": [
    {"address": "0000:3b:00.1", "type": "virtio_net", "form": "sriov_vf", "parent": "0000:3b:00.0", "vf_index": 0,
     "instance": "b0000000-0000-4000-8000-000000000001", "mac": "52:54:00:00:00:01", "target": "eth0", "queue_depth": 0,
     "qos": {"rx": {"bandwidth": {"rate_bytes_sec": 500000, "burst_bytes": 50000, "guaranteed_bytes_sec": 100000}},
             "tx": {"packets": {"rate_packets_sec": 1000, "one_time_burst_packets": 10}}}},
    {"address": "vdpa0", "type": "virtio_blk", "form": "vdpa", "parent": "0000:3b:00.0",
     "instance": "b0000000-0000-4000-8000-000000000001", "target": "vda",
     "qos": {"bandwidth": {"rate_bytes_sec": "unlimited"}, "iops": {"rate_ops_sec": 100, "guaranteed_ops_sec": 50}}}],
  "workload": {"seconds": 2, "streams": [
    {"function": "0000:3b:00.1", "direction": "tx", "requests_sec": 2000, "request_bytes": 1500},
    {"function": "vdpa0", "io": "write", "requests_sec": 150, "request_bytes": 4096}]}}]}
""")
    seed("offload_card", "bindings.json", """{"instances": [
  {"uuid": "b0000000-0000-4000-8000-0000000000a1", "name": "acme-bm", "isolation": "bare_metal",
   "tenant": "acme", "qos_class": "LS", "functions": ["0000:3b:00.1", "0000:3c:00.0"]},
  {"uuid": "b0000000-0000-4000-8000-0000000000b1", "name": "globex-vm", "isolation": "vm_offload",
   "tenant": "globex", "qos_class": "BE", "functions": ["0000:3b:00.2"]},
  {"uuid": "b0000000-0000-4000-8000-0000000000c1", "name": "ghost", "functions": ["vdpa0"]}]}
""")
    seed("offload_card", "bad-values.json", '{"format": "bulkhead-offload-card/1", "cards": [{"pci_address": "0000:3b:00.0", '
         '"model": "m", "capacity": {"functions": -1, "disk_iops": 1.5}, "instances": [{"uuid": "nope"}]}]}\n')
    # Sysfs trees: each base tree as it is, and the broken fixtures as patches
    # of the tree they were made from.
    seed("offload_sysfs", "sriov.patch", "tree sriov\n")
    seed("offload_sysfs", "vdpa.patch", "tree vdpa\n")
    seed("offload_sysfs", "link.patch", "tree link\n")
    for broken in ("offload-broken-values", "offload-broken-missing"):
        patch = ["tree sriov"]
        base = fixtures / "offload-sriov" / "sys"
        top = fixtures / broken / "sys"
        for f in sorted(base.rglob("*")):
            rel = f.relative_to(base)
            if any(p.is_symlink() for p in [base / pathlib.Path(*rel.parts[:k]) for k in range(1, len(rel.parts))]):
                continue
            if f.is_symlink() or not f.is_file():
                continue
            other = top / rel
            if not other.exists() and not other.is_symlink():
                patch.append(f"=== rm {rel}")
            elif other.is_file() and not other.is_symlink() and other.read_bytes() != f.read_bytes():
                patch.append(f"=== {rel}\n" + other.read_text(errors="replace").rstrip("\n"))
        seed("offload_sysfs", broken + ".patch", "\n".join(patch) + "\n")
    seed("offload_sysfs", "escape.patch", "tree sriov\n"
         "=== link devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/virtfn2 ../../../../../../../../etc\n"
         "=== link bus/pci/devices/0000:3e:00.0 /proc/self\n"
         "=== devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/sriov_numvfs\n3\n")


# --- dictionaries (libFuzzer -dict): the parsers' own literals and syntax ----
def literals(paths):
    out = set()
    for p in paths:
        for m in re.finditer(r'"([A-Za-z_:./0-9-]{2,40})"', (root / p).read_text()):
            out.add(m.group(1))
    return sorted(out)


def write_dict(name, words):
    lines = [f"# libFuzzer dictionary for fuzz_{name} (written by make_seeds.py): literals and syntax of its parser."]
    for w in words:
        esc = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else f"\\x{ord(c):02X}" for c in w)
        lines.append(f'"{esc}"')
    d = here / "dict"
    d.mkdir(exist_ok=True)
    (d / f"{name}.dict").write_text("\n".join(lines) + "\n")


XML_SYNTAX = ["<?xml version='1.0'?>", "<!--", "-->", "<![CDATA[", "]]>", "<!DOCTYPE", "&amp;", "&lt;", "&gt;",
              "&quot;", "&apos;", "&#x", "&#", "xmlns:", "xmlns=", "/>", "</", "='", '="']
JSON_SYNTAX = ['{"', '": ', "[", "]", "{", "}", ",", '"unlimited"', "null", "true", "false", "-1", "1.5", "1e3",
               "18446744073709551615", "18446744073709551616", "4294967296"]


def dicts():
    tags = []
    for w in literals(["include/bulkhead/backend/libvirt/detail/domain_xml_impl.hpp", "include/bulkhead/backend/libvirt/domain_xml.hpp"]):
        if re.fullmatch(r"[a-z_:]+", w):
            tags += [f"<{w}>", f"</{w}>", f" {w}='"]
        else:
            tags.append(w)
    write_dict("domain_xml", XML_SYNTAX + tags)
    write_dict("capabilities", XML_SYNTAX + ["<capabilities>", "<host>", "<topology>", "<cells num='", "<cell id='",
                                             "<memory unit='", "<cpus num='", "<cpu id='", "KiB", "MiB", "GiB",
                                             "TiB", "bytes", "KB", "MB", "GB", "TB"])
    write_dict("xml", XML_SYNTAX + ["<a>", "</a>", "<b/>", "x='1'", "&#x10FFFF;", "&#0;", "&#xD800;"])
    card = literals(["include/bulkhead/backend/offload/detail/description_impl.hpp", "src/backend/offload/backend.cpp"])
    write_dict("offload_card", JSON_SYNTAX + [w for w in card if not w.startswith(".")])
    write_dict("offload_sysfs", ["=== ", "=== link ", "=== rm ", "tree sriov\n", "tree vdpa\n", "tree link\n",
                                 "devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/", "virtfn", "physfn", "driver",
                                 "vendor", "device", "class", "sriov_totalvfs", "sriov_numvfs", "virtio", "/net/",
                                 "/block/", "statistics/", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
                                 "address", "ifindex", "speed", "stat", "diskseq", "smart_nic/vf0/", "max_tx_rate",
                                 "min_tx_rate", "0x1af4", "0x1041", "0x1042", "0x1000", "0x1001", "0x1ded",
                                 "0x020000", "../", "/proc/self", "18446744073709551615"])


def main():
    xml_seeds()
    offload_seeds()
    dicts()
    for t, n in sorted(targets.items()):
        print(f"{t}: {n} fixture seeds")


if __name__ == "__main__":
    sys.exit(main())
