// bulkhead/backend/libvirt/detail/domain_xml_impl.hpp (internal): domain XML and capabilities parsing;
// the contract is in bulkhead/backend/libvirt/domain_xml.hpp.
#pragma once

#include "bulkhead/backend/libvirt/domain_xml.hpp"

#include <algorithm>
#include <charconv>
#include <type_traits>

#include "bulkhead/detail/text.hpp"
#include "bulkhead/detail/xml.hpp"

namespace bulkhead::libvirt {

namespace detail {

using bulkhead::detail::quote;
using bulkhead::detail::xml::element;

// libvirt's "unlimited" memtune value: VIR_DOMAIN_MEMORY_PARAM_UNLIMITED,
// 9007199254740991 KiB (include/libvirt/libvirt-domain.h).
inline constexpr std::uint64_t memtune_unlimited_kib = 9007199254740991ull;
// libvirt's largest CFS quota, also written for "infinite"
// (virCgroupSetCpuCfsQuota).
inline constexpr std::int64_t quota_infinite_us = 17592186044415;

struct ctx {
  std::string where;  // "domain 'name'"
  error err(const element& e, const std::string& what) const {
    return error(errc::parse_error, where + ": <" + std::string(e.qname()) + "> " + what);
  }
};

// The decoded text of a leaf element: a view into the document when there is
// nothing to decode (the common case), an owned string otherwise. view() is
// computed on each call: a stored view of `owned` would dangle once the
// object is moved (a short string lives inside the object; found by
// fuzz_domain_xml under ASan, stack-use-after-return).
struct leaf_text {
  std::string owned;
  std::string_view raw;
  bool decoded = false;
  [[nodiscard]] std::string_view view() const noexcept { return decoded ? std::string_view(owned) : raw; }
};
inline result<leaf_text> text_of(const ctx& c, const element& e) {
  leaf_text t;
  t.raw = e.raw_text();
  if (t.raw.find_first_of("&<") == std::string_view::npos) return t;
  auto d = e.text();
  if (!d) return fail(std::move(d.error()).in(c.where));
  t.owned = std::move(*d);
  t.decoded = true;
  return t;
}

// Integers: a fast path with no allocation; the descriptive error is built
// only when the text is bad.
template <class I>
result<I> integer_of(const ctx& c, const element& e, std::string_view text, std::string_view attr) {
  const auto t = bulkhead::detail::trim(text);
  I v{};
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
  if (!t.empty() && ec == std::errc{} && p == t.data() + t.size()) return v;
  const std::string what = "<" + std::string(e.qname()) + (attr.empty() ? "" : " " + std::string(attr)) + ">";
  auto r = std::is_signed_v<I> ? result<I>(bulkhead::detail::parse_i64(t, what)) : result<I>(bulkhead::detail::parse_u64(t, what));
  if (r) return fail(errc::parse_error, what + ": " + bulkhead::detail::quote(t) + " is not an integer");  // unreachable in practice
  return fail(std::move(r.error()).in(c.where));
}

inline result<std::uint64_t> u64_text(const ctx& c, const element& e) {
  auto t = text_of(c, e);
  if (!t) return fail(std::move(t.error()));
  return integer_of<std::uint64_t>(c, e, t->view(), {});
}
inline result<std::int64_t> i64_text(const ctx& c, const element& e) {
  auto t = text_of(c, e);
  if (!t) return fail(std::move(t.error()));
  return integer_of<std::int64_t>(c, e, t->view(), {});
}
inline result<std::uint64_t> u64_attr(const ctx& c, const element& e, std::string_view name) {
  return integer_of<std::uint64_t>(c, e, e.raw_attr(name), name);
}

inline result<bytes> scaled(const ctx& c, const element& e) {
  auto t = text_of(c, e);
  if (!t) return fail(std::move(t.error()));
  const auto unit = e.raw_attr("unit");
  // Fast path: a plain number in a known unit.
  std::uint64_t v = 0;
  const auto n = bulkhead::detail::trim(t->view());
  const auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), v, 10);
  if (!n.empty() && ec == std::errc{} && p == n.data() + n.size()) {
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "KiB" || unit == "k" || unit == "K") factor = kib_factor;
    else if (unit == "b" || unit == "bytes") factor = 1;
    if (factor != 0)
      if (auto r = bulkhead::detail::mul_u64(v, factor)) return bytes{*r};
  }
  auto b = parse_scaled_bytes(n, unit, "<" + std::string(e.qname()) + ">");
  if (!b) return fail(std::move(b.error()).in(c.where));
  return *b;
}

inline result<limit<bytes>> memtune_value(const ctx& c, const element& e) {
  auto t = text_of(c, e);
  if (!t) return fail(std::move(t.error()));
  const auto unit = e.raw_attr("unit");
  static const std::string unlimited_text = std::to_string(memtune_unlimited_kib);
  if ((unit.empty() || unit == "KiB" || unit == "k") && bulkhead::detail::trim(t->view()) == unlimited_text)
    return limit<bytes>{unlimited};
  auto b = scaled(c, e);
  if (!b) return fail(std::move(b.error()));
  return limit<bytes>{*b};
}

inline result<cpuset> cpuset_attr(const ctx& c, const element& e, std::string_view name) {
  auto v = e.attr(name);
  if (!v) return fail(std::move(v.error()).in(c.where));
  if (!*v) return fail(c.err(e, "has no " + std::string(name) + " attribute"));
  auto s = cpuset::parse(**v);
  if (!s) return fail(std::move(s.error()).in("<" + std::string(e.qname()) + " " + std::string(name) + ">").in(c.where));
  return *s;
}

inline result<void> parse_cputune(const ctx& c, const element& ct, quota_spec& spec) {
  for (auto e = ct.first_child(); e; e = e.next_sibling()) {
    const auto n = e.qname();
    if (n == "shares") {
      auto v = u64_text(c, e);
      if (!v) return fail(std::move(v.error()));
      spec.cpu.shares = *v;
    } else if (n == "period" || n == "emulator_period") {
      auto v = u64_text(c, e);
      if (!v) return fail(std::move(v.error()));
      if (*v > static_cast<std::uint64_t>(cfs_quota_max.count())) return fail(c.err(e, std::to_string(*v) + " us is too large"));
      (n == "period" ? spec.cpu.period : spec.cpu.emulator_period) = microseconds{static_cast<std::int64_t>(*v)};
    } else if (n == "quota" || n == "emulator_quota") {
      auto v = i64_text(c, e);
      if (!v) return fail(std::move(v.error()));
      limit<microseconds> q = (*v <= 0 || *v >= quota_infinite_us) ? limit<microseconds>{unlimited}
                                                                      : limit<microseconds>{microseconds{*v}};
      (n == "quota" ? spec.cpu.quota : spec.cpu.emulator_quota) = q;
    } else if (n == "vcpupin") {
      auto id = u64_attr(c, e, "vcpu");
      if (!id) return fail(std::move(id.error()));
      if (*id > cpuset::max_id) return fail(c.err(e, "vcpu " + std::to_string(*id) + " is out of range"));
      auto set = cpuset_attr(c, e, "cpuset");
      if (!set) return fail(std::move(set.error()));
      if (!spec.cpu.vcpu_pins) spec.cpu.vcpu_pins.emplace();
      spec.cpu.vcpu_pins->push_back(vcpu_pin{static_cast<std::uint32_t>(*id), std::move(*set)});
    } else if (n == "emulatorpin") {
      auto set = cpuset_attr(c, e, "cpuset");
      if (!set) return fail(std::move(set.error()));
      spec.cpu.emulator_pin = std::move(*set);
    } else if (n == "cachetune") {
      cache_tune t;
      auto set = cpuset_attr(c, e, "vcpus");
      if (!set) return fail(std::move(set.error()));
      t.vcpus = std::move(*set);
      for (auto k = e.first_child(); k; k = k.next_sibling()) {
        if (k.qname() != "cache") continue;
        cache_tune_entry entry;
        auto id = u64_attr(c, k, "id");
        if (!id) return fail(std::move(id.error()));
        auto lvl = u64_attr(c, k, "level");
        if (!lvl) return fail(std::move(lvl.error()));
        if (*id > 0xffffffffu || *lvl > 0xffffffffu) return fail(c.err(k, "id or level out of range"));
        entry.cache_id = static_cast<std::uint32_t>(*id);
        entry.level = static_cast<std::uint32_t>(*lvl);
        entry.type = std::string(k.raw_attr("type"));
        auto sz = parse_scaled_bytes(k.raw_attr("size"), k.raw_attr("unit").empty() ? "b" : k.raw_attr("unit"),
                                     "<cache size>");
        if (!sz) return fail(std::move(sz.error()).in(c.where));
        entry.size = *sz;
        t.caches.push_back(std::move(entry));
      }
      if (!spec.cache_tunes) spec.cache_tunes.emplace();
      spec.cache_tunes->push_back(std::move(t));
    }
  }
  return {};
}

// <iotune> child names and where they go.
template <class Q>
struct iotune_field {
  std::string_view name;
  knob<limit<Q>> disk_spec::*member;
};
inline constexpr iotune_field<bytes_per_second> iotune_bytes[] = {
    {"total_bytes_sec", &disk_spec::total_bytes_sec},         {"read_bytes_sec", &disk_spec::read_bytes_sec},
    {"write_bytes_sec", &disk_spec::write_bytes_sec},         {"total_bytes_sec_max", &disk_spec::total_bytes_sec_max},
    {"read_bytes_sec_max", &disk_spec::read_bytes_sec_max},   {"write_bytes_sec_max", &disk_spec::write_bytes_sec_max},
};
inline constexpr iotune_field<ops_per_second> iotune_iops[] = {
    {"total_iops_sec", &disk_spec::total_iops_sec},         {"read_iops_sec", &disk_spec::read_iops_sec},
    {"write_iops_sec", &disk_spec::write_iops_sec},         {"total_iops_sec_max", &disk_spec::total_iops_sec_max},
    {"read_iops_sec_max", &disk_spec::read_iops_sec_max},   {"write_iops_sec_max", &disk_spec::write_iops_sec_max},
};

inline result<void> parse_iotune(const ctx& c, const element& io, disk_spec& d) {
  for (auto e = io.first_child(); e; e = e.next_sibling()) {
    const auto n = e.qname();
    for (const auto& f : iotune_bytes)
      if (f.name == n) {
        auto v = u64_text(c, e);
        if (!v) return fail(std::move(v.error()).in("disk " + quote(d.target)));
        // libvirt: 0 means "no limit" for every iotune field.
        d.*f.member = *v == 0 ? limit<bytes_per_second>{unlimited} : limit<bytes_per_second>{bytes_per_second{*v}};
      }
    for (const auto& f : iotune_iops)
      if (f.name == n) {
        auto v = u64_text(c, e);
        if (!v) return fail(std::move(v.error()).in("disk " + quote(d.target)));
        d.*f.member = *v == 0 ? limit<ops_per_second>{unlimited} : limit<ops_per_second>{ops_per_second{*v}};
      }
  }
  return {};
}

inline void default_unlimited(disk_spec& d) {
  for (const auto& f : iotune_bytes)
    if (!(d.*f.member)) d.*f.member = limit<bytes_per_second>{unlimited};
  for (const auto& f : iotune_iops)
    if (!(d.*f.member)) d.*f.member = limit<ops_per_second>{unlimited};
}

inline result<direction_bandwidth> parse_direction(const ctx& c, const element& e) {
  direction_bandwidth b;
  const auto rate = [&](std::string_view a) -> result<std::optional<bytes_per_second>> {
    if (!e.has_attr(a)) return std::optional<bytes_per_second>{};
    auto v = u64_attr(c, e, a);
    if (!v) return fail(std::move(v.error()));
    auto bps = to_bytes_per_second(kilobytes_per_second{*v});
    if (!bps) return fail(c.err(e, std::string(a) + "=" + std::to_string(*v) + " kilobytes/s overflows bytes/s"));
    return std::optional<bytes_per_second>{*bps};
  };
  auto avg = rate("average");
  if (!avg) return fail(std::move(avg.error()));
  if (*avg && (*avg)->count() > 0) b.average = **avg;
  auto peak = rate("peak");
  if (!peak) return fail(std::move(peak.error()));
  if (*peak && (*peak)->count() > 0) b.peak = **peak;
  auto floor = rate("floor");
  if (!floor) return fail(std::move(floor.error()));
  if (*floor && (*floor)->count() > 0) b.floor = **floor;
  if (e.has_attr("burst")) {
    auto v = u64_attr(c, e, "burst");
    if (!v) return fail(std::move(v.error()));
    auto by = to_bytes(kilobytes{*v});
    if (!by) return fail(c.err(e, "burst=" + std::to_string(*v) + " kilobytes overflows bytes"));
    if (by->count() > 0) b.burst = *by;
  }
  return b;
}

inline std::string lower(std::string s) {
  for (auto& ch : s)
    if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
  return s;
}

inline void parse_metadata(const ctx& c, const element& md, parsed_domain& out) {
  std::optional<std::string> nova_tenant;
  for (auto e = md.first_child(); e; e = e.next_sibling()) {
    const auto ns = e.namespace_uri();
    if (ns == bulkhead_metadata_ns && e.local_name() == "instance") {
      for (auto k = e.first_child(); k; k = k.next_sibling()) {
        if (k.namespace_uri() != bulkhead_metadata_ns) continue;
        auto t = k.text();
        if (!t) {
          out.warnings.push_back(c.where + ": bulkhead metadata <" + std::string(k.qname()) + ">: " + t.error().message());
          continue;
        }
        const auto v = std::string(bulkhead::detail::trim(*t));
        if (k.local_name() == "tenant") {
          if (!v.empty() && bulkhead::detail::is_utf8(v)) {
            out.tenant = v;
            out.tenant_source = "bulkhead";
          } else {
            out.warnings.push_back(c.where + ": bulkhead metadata tenant " + quote(v) + " is empty or not UTF-8; ignored");
          }
        } else if (k.local_name() == "qos_class") {
          auto q = parse_enum<qos_class>(v);
          if (q) out.qos = *q;
          else out.warnings.push_back(c.where + ": bulkhead metadata: " + q.error().message() + "; class left unset");
        }
      }
    } else if (ns == nova_metadata_ns && e.local_name() == "instance") {
      for (auto k = e.first_child(); k; k = k.next_sibling()) {
        if (k.namespace_uri() != nova_metadata_ns || k.local_name() != "owner") continue;
        for (auto p = k.first_child(); p; p = p.next_sibling()) {
          if (p.namespace_uri() != nova_metadata_ns || p.local_name() != "project") continue;
          auto u = p.attr("uuid");
          if (u && *u && !(*u)->empty()) nova_tenant = **u;
        }
      }
    }
  }
  if (!out.tenant && nova_tenant) {
    out.tenant = *nova_tenant;
    out.tenant_source = "nova";
  }
}

}  // namespace detail

inline result<bytes> parse_scaled_bytes(std::string_view value, std::string_view unit, std::string_view what) {
  auto v = bulkhead::detail::parse_u64(value, what);
  if (!v) return fail(std::move(v.error()));
  std::uint64_t factor = 0;
  if (unit.empty() || unit == "KiB" || unit == "k" || unit == "K") factor = 1024;
  else if (unit == "b" || unit == "bytes") factor = 1;
  else if (unit == "KB") factor = 1000;
  else if (unit == "M" || unit == "MiB") factor = 1024ull * 1024;
  else if (unit == "MB") factor = 1000ull * 1000;
  else if (unit == "G" || unit == "GiB") factor = 1024ull * 1024 * 1024;
  else if (unit == "GB") factor = 1000ull * 1000 * 1000;
  else if (unit == "T" || unit == "TiB") factor = 1024ull * 1024 * 1024 * 1024;
  else if (unit == "TB") factor = 1000ull * 1000 * 1000 * 1000;
  else return fail(errc::parse_error, std::string(what) + ": unknown unit " + bulkhead::detail::quote(unit));
  auto r = bulkhead::detail::mul_u64(*v, factor);
  if (!r) return fail(errc::overflow, std::string(what) + ": " + std::string(value) + " " + std::string(unit) + " overflows 64-bit bytes");
  return bytes{*r};
}

inline result<parsed_domain> parse_domain_xml(std::string_view xml) {
  auto doc = bulkhead::detail::xml::document::parse(xml);
  if (!doc) return fail(std::move(doc.error()).in("domain XML"));
  const auto root = doc->root();
  if (root.qname() != "domain")
    return fail(errc::parse_error, "domain XML: root bulkhead::detail::xml::element is <" + std::string(root.qname()) + ">, expected <domain>");
  parsed_domain out;
  out.domain_type = std::string(root.raw_attr("type"));
  auto name = root.child("name").text();
  if (!name) return fail(std::move(name.error()).in("domain XML"));
  out.name = std::string(bulkhead::detail::trim(*name));
  if (out.name.empty()) return fail(errc::parse_error, "domain XML: <name> is missing or empty");
  detail::ctx c{"domain " + bulkhead::detail::quote(out.name)};
  auto id = uuid::parse(bulkhead::detail::trim(root.child("uuid").raw_text()));
  if (!id) return fail(std::move(id.error()).in(c.where));
  out.uuid = *id;
  if (root.has_attr("id")) {
    auto v = bulkhead::detail::parse_i64(root.raw_attr("id"), "<domain id>");
    if (!v) return fail(std::move(v.error()).in(c.where));
    if (*v >= 0) out.libvirt_id = *v;
  }

  auto& spec = out.spec;
  if (auto m = root.child("memory")) {
    auto b = detail::scaled(c, m);
    if (!b) return fail(std::move(b.error()));
    spec.memory.max = *b;
  }
  if (auto m = root.child("currentMemory")) {
    auto b = detail::scaled(c, m);
    if (!b) return fail(std::move(b.error()));
    spec.memory.current = *b;
  } else {
    spec.memory.current = spec.memory.max;
  }
  if (auto v = root.child("vcpu")) {
    auto n = detail::u64_text(c, v);
    if (!n) return fail(std::move(n.error()));
    if (*n == 0 || *n > 0xffffffffu) return fail(c.err(v, std::to_string(*n) + " vCPUs is out of range"));
    spec.cpu.max_vcpus = static_cast<std::uint32_t>(*n);
    spec.cpu.vcpus = spec.cpu.max_vcpus;
    if (v.has_attr("current")) {
      auto cur = detail::u64_attr(c, v, "current");
      if (!cur) return fail(std::move(cur.error()));
      if (*cur == 0 || *cur > *n) return fail(c.err(v, "current=" + std::to_string(*cur) + " is out of range"));
      spec.cpu.vcpus = static_cast<std::uint32_t>(*cur);
    }
  }
  // Absent limits are unlimited: this is the spec as enforced.
  spec.cpu.quota = limit<microseconds>{unlimited};
  spec.cpu.emulator_quota = limit<microseconds>{unlimited};
  spec.memory.hard_limit = limit<bytes>{unlimited};
  spec.memory.soft_limit = limit<bytes>{unlimited};
  spec.memory.swap_hard_limit = limit<bytes>{unlimited};
  if (auto ct = root.child("cputune")) {
    if (auto r = detail::parse_cputune(c, ct, spec); !r) return fail(std::move(r.error()));
  }
  if (auto mt = root.child("memtune")) {
    for (auto e = mt.first_child(); e; e = e.next_sibling()) {
      knob<limit<bytes>>* dst = nullptr;
      if (e.qname() == "hard_limit") dst = &spec.memory.hard_limit;
      else if (e.qname() == "soft_limit") dst = &spec.memory.soft_limit;
      else if (e.qname() == "swap_hard_limit") dst = &spec.memory.swap_hard_limit;
      else if (e.qname() == "min_guarantee") {
        auto b = detail::scaled(c, e);
        if (!b) return fail(std::move(b.error()));
        spec.memory.min = *b;
        continue;
      }
      if (!dst) continue;
      auto v = detail::memtune_value(c, e);
      if (!v) return fail(std::move(v.error()));
      *dst = *v;
    }
  }
  if (auto nt = root.child_path({"numatune", "memory"})) {
    if (nt.has_attr("nodeset")) {
      auto set = detail::cpuset_attr(c, nt, "nodeset");
      if (!set) return fail(std::move(set.error()));
      spec.memory.numa = numa_tune{nt.has_attr("mode") ? std::string(nt.raw_attr("mode")) : "strict", std::move(*set)};
    }
  }
  if (auto w = root.child_path({"blkiotune", "weight"})) {
    auto v = detail::u64_text(c, w);
    if (!v) return fail(std::move(v.error()));
    spec.blkio_weight = *v;
  }

  bool offload_net = false, offload_disk = false, any_iotune = false, any_bandwidth = false;
  if (auto devs = root.child("devices")) {
    for (auto e = devs.first_child(); e; e = e.next_sibling()) {
      const auto n = e.qname();
      if (n == "disk") {
        const auto device = e.raw_attr("device");
        if (device == "cdrom" || device == "floppy") continue;
        domain_disk_ref ref;
        auto dev = e.child("target").attr("dev");
        if (!dev) return fail(std::move(dev.error()).in(c.where));
        if (!*dev || (*dev)->empty()) return fail(c.err(e, "has no <target dev>"));
        ref.target = **dev;
        ref.type = std::string(e.raw_attr("type"));
        ref.offloaded = ref.type == "vhostvdpa";
        offload_disk = offload_disk || ref.offloaded;
        disk_spec d;
        d.target = ref.target;
        if (auto io = e.child("iotune")) {
          any_iotune = true;
          if (auto r = detail::parse_iotune(c, io, d); !r) return fail(std::move(r.error()));
        }
        detail::default_unlimited(d);
        spec.disks.push_back(std::move(d));
        out.disks.push_back(std::move(ref));
      } else if (n == "interface") {
        domain_interface_ref ref;
        ref.type = std::string(e.raw_attr("type"));
        ref.mac = detail::lower(std::string(e.child("mac").raw_attr("address")));
        ref.target = std::string(e.child("target").raw_attr("dev"));
        ref.offloaded = ref.type == "vdpa" || ref.type == "hostdev";
        offload_net = offload_net || ref.offloaded;
        interface_spec i;
        i.mac = ref.mac;
        i.target = ref.target;
        i.inbound = direction_bandwidth{};
        i.outbound = direction_bandwidth{};
        if (auto bw = e.child("bandwidth")) {
          if (auto in = bw.child("inbound")) {
            auto b = detail::parse_direction(c, in);
            if (!b) return fail(std::move(b.error()).in("interface " + bulkhead::detail::quote(ref.mac)));
            i.inbound = *b;
            any_bandwidth = any_bandwidth || b->average.is_bounded();
          }
          if (auto ob = bw.child("outbound")) {
            auto b = detail::parse_direction(c, ob);
            if (!b) return fail(std::move(b.error()).in("interface " + bulkhead::detail::quote(ref.mac)));
            i.outbound = *b;
            any_bandwidth = any_bandwidth || b->average.is_bounded();
          }
        }
        spec.interfaces.push_back(std::move(i));
        out.interfaces.push_back(std::move(ref));
      } else if (n == "hostdev") {
        // A PCI host device (an SR-IOV VF or a card function) passed through.
        if (e.raw_attr("type") == "pci") offload_net = true;
      }
    }
  }
  if (auto md = root.child("metadata")) detail::parse_metadata(c, md, out);

  // Isolation: the level, then how each resource is isolated.
  out.isolation = (offload_net || offload_disk) ? isolation_level::vm_offload : isolation_level::vm;
  const auto& cpu = spec.cpu;
  const bool all_pinned = cpu.vcpu_pins && cpu.max_vcpus && cpu.vcpu_pins->size() >= *cpu.max_vcpus;
  if (all_pinned) out.modes.set(resource_kind::cpu, isolation_mode::dedicated);
  else if (cpu.quota && cpu.quota->is_bounded()) out.modes.set(resource_kind::cpu, isolation_mode::capped);
  else if (cpu.shares) out.modes.set(resource_kind::cpu, isolation_mode::weighted);
  else out.modes.set(resource_kind::cpu, isolation_mode::shared);
  // A guest never sees more than its <memory>: memory is always capped.
  out.modes.set(resource_kind::memory,
                spec.memory.numa && spec.memory.numa->mode == "strict" && all_pinned ? isolation_mode::dedicated
                                                                                    : isolation_mode::capped);
  const auto disk_mode = offload_disk ? isolation_mode::hardware
                         : any_iotune ? isolation_mode::capped
                         : spec.blkio_weight ? isolation_mode::weighted
                                             : isolation_mode::shared;
  if (!out.disks.empty()) {
    out.modes.set(resource_kind::disk_bandwidth, disk_mode);
    out.modes.set(resource_kind::disk_iops, disk_mode);
  }
  if (!out.interfaces.empty() || offload_net) {
    const auto net_mode = offload_net ? isolation_mode::hardware
                          : any_bandwidth ? isolation_mode::capped
                                          : isolation_mode::shared;
    out.modes.set(resource_kind::net_bandwidth, net_mode);
  }
  if (spec.cache_tunes) out.modes.set(resource_kind::llc, isolation_mode::dedicated);
  return out;
}

inline result<std::vector<numa_cell>> parse_capabilities_cells(std::string_view xml) {
  auto doc = bulkhead::detail::xml::document::parse(xml);
  if (!doc) return fail(std::move(doc.error()).in("capabilities XML"));
  std::vector<numa_cell> cells;
  const auto root = doc->root();
  if (root.qname() != "capabilities")
    return fail(errc::parse_error, "capabilities XML: root bulkhead::detail::xml::element is <" + std::string(root.qname()) + ">");
  detail::ctx c{"capabilities"};
  for (auto cell = root.child_path({"host", "topology", "cells"}).first_child(); cell; cell = cell.next_sibling()) {
    if (cell.qname() != "cell") continue;
    numa_cell nc;
    auto id = detail::u64_attr(c, cell, "id");
    if (!id) return fail(std::move(id.error()));
    if (*id > 0xffffffffu) return fail(c.err(cell, "id out of range"));
    nc.id = static_cast<std::uint32_t>(*id);
    if (auto m = cell.child("memory")) {
      auto b = detail::scaled(c, m);
      if (!b) return fail(std::move(b.error()));
      nc.memory = *b;
    }
    for (auto cpu = cell.child("cpus").first_child(); cpu; cpu = cpu.next_sibling()) {
      if (cpu.qname() != "cpu") continue;
      auto cid = u64_attr(c, cpu, "id");
      if (!cid) return fail(std::move(cid.error()));
      if (*cid > cpuset::max_id) return fail(c.err(cpu, "id " + std::to_string(*cid) + " out of range"));
      nc.cpus.insert(static_cast<std::uint32_t>(*cid));
    }
    cells.push_back(std::move(nc));
  }
  std::sort(cells.begin(), cells.end(), [](const numa_cell& a, const numa_cell& b) { return a.id < b.id; });
  return cells;
}

}  // namespace bulkhead::libvirt
