// The libvirt backend's write path; contract in bulkhead/backend/libvirt/backend.hpp.
//
// apply() compares the desired spec with the domain's live definition (when
// running) and its saved config (when persistent), knob by knob, and calls
// the libvirt API that sets each knob that differs, with
// VIR_DOMAIN_AFFECT_LIVE and/or VIR_DOMAIN_AFFECT_CONFIG as needed. Every
// change is read back. Unit conversions at this boundary:
//   cputune periods/quotas: microseconds (libvirt's unit);
//   memtune: KiB, so a limit must be a whole number of KiB;
//   iotune: bytes/s and ops/s, 0 = no limit;
//   bandwidth: kilobytes/s (1000 bytes) and burst kilobytes (1024 bytes),
//   so rates must be whole kilobytes/s and bursts whole kilobytes; 0 average
//   removes the direction's limit.
#include <cstring>
#include <functional>

#include "bulkhead/detail/text.hpp"
#include "backend_impl.hpp"

namespace bulkhead::libvirt {

namespace {

using bulkhead::detail::quote;

// Canonical text of each knob: compared for equality and shown in reports.
std::string txt(const limit<microseconds>& l) {
  return l.is_unlimited() ? "unlimited" : std::to_string(l.value().count()) + " us";
}
template <class Q>
std::string txt(const limit<Q>& l, const char* unit) {
  return l.is_unlimited() ? "unlimited" : std::to_string(l.value().count()) + " " + unit;
}

struct knob_op {
  std::string name;
  // The knob's text in a spec; nullopt when the spec does not set it.
  std::function<std::optional<std::string>(const quota_spec&)> get;
  // Sets the knob to the desired value with these AFFECT flags.
  std::function<result<void>(virDomainPtr, unsigned)> set;
  // For knobs libvirt sets together (a disk's iotune): the members reported
  // one by one as changed or failed.
  std::vector<std::pair<std::string, std::function<std::optional<std::string>(const quota_spec&)>>> parts{};
};

struct typed_params {
  virTypedParameterPtr p = nullptr;
  int n = 0, cap = 0;
  ~typed_params() { virTypedParamsFree(p, n); }
  void ull(const char* name, unsigned long long v) { virTypedParamsAddULLong(&p, &n, &cap, name, v); }
  void ll(const char* name, long long v) { virTypedParamsAddLLong(&p, &n, &cap, name, v); }
  void ui(const char* name, unsigned v) { virTypedParamsAddUInt(&p, &n, &cap, name, v); }
  void i(const char* name, int v) { virTypedParamsAddInt(&p, &n, &cap, name, v); }
  void s(const char* name, const char* v) { virTypedParamsAddString(&p, &n, &cap, name, v); }
};

result<void> check(virConnectPtr conn, int rc, const std::string& knob) {
  if (rc == 0) return {};
  return fail(detail::last_error(conn, errc::io_error, "setting " + knob));
}

std::vector<unsigned char> cpumap(const cpuset& s, unsigned host_cpus) {
  unsigned n = host_cpus;
  for (auto id : s.ids()) n = std::max(n, id + 1);
  std::vector<unsigned char> map(VIR_CPU_MAPLEN(n), 0);
  for (auto id : s.ids()) VIR_USE_CPU(map.data(), id);
  return map;
}

// Memory limits in KiB for memtune; unlimited is libvirt's own constant.
result<unsigned long long> memtune_kib(const limit<bytes>& l, const std::string& knob) {
  if (l.is_unlimited()) return static_cast<unsigned long long>(VIR_DOMAIN_MEMORY_PARAM_UNLIMITED);
  auto k = to_kibibytes_exact(l.value());
  if (!k)
    return fail(errc::invalid_argument, knob + ": " + std::to_string(l.value().count()) +
                                            " bytes is not a whole number of KiB, which libvirt's memtune requires");
  return k->count();
}

// The iotune fields of one group, as libvirt sets them together
// (qemuDomainSetBlockIoTune resets the unset members of a group it is given).
struct iotune_member {
  const char* param;
  bool bytes;
  knob<limit<bytes_per_second>> disk_spec::*b = nullptr;
  knob<limit<ops_per_second>> disk_spec::*o = nullptr;
};
constexpr int iotune_groups = 4;
const iotune_member iotune_table[iotune_groups][3] = {
    {{VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC, true, &disk_spec::total_bytes_sec},
     {VIR_DOMAIN_BLOCK_IOTUNE_READ_BYTES_SEC, true, &disk_spec::read_bytes_sec},
     {VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC, true, &disk_spec::write_bytes_sec}},
    {{VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_IOPS_SEC, false, nullptr, &disk_spec::total_iops_sec},
     {VIR_DOMAIN_BLOCK_IOTUNE_READ_IOPS_SEC, false, nullptr, &disk_spec::read_iops_sec},
     {VIR_DOMAIN_BLOCK_IOTUNE_WRITE_IOPS_SEC, false, nullptr, &disk_spec::write_iops_sec}},
    {{VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC_MAX, true, &disk_spec::total_bytes_sec_max},
     {VIR_DOMAIN_BLOCK_IOTUNE_READ_BYTES_SEC_MAX, true, &disk_spec::read_bytes_sec_max},
     {VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC_MAX, true, &disk_spec::write_bytes_sec_max}},
    {{VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_IOPS_SEC_MAX, false, nullptr, &disk_spec::total_iops_sec_max},
     {VIR_DOMAIN_BLOCK_IOTUNE_READ_IOPS_SEC_MAX, false, nullptr, &disk_spec::read_iops_sec_max},
     {VIR_DOMAIN_BLOCK_IOTUNE_WRITE_IOPS_SEC_MAX, false, nullptr, &disk_spec::write_iops_sec_max}},
};

std::optional<std::string> member_text(const disk_spec* d, const iotune_member& m) {
  if (!d) return std::nullopt;
  if (m.bytes) {
    const auto& k = d->*m.b;
    return k ? std::optional<std::string>(txt(*k, "bytes/s")) : std::nullopt;
  }
  const auto& k = d->*m.o;
  return k ? std::optional<std::string>(txt(*k, "ops/s")) : std::nullopt;
}
std::uint64_t member_value(const disk_spec* d, const iotune_member& m) {
  if (!d) return 0;
  if (m.bytes) {
    const auto& k = d->*m.b;
    return k && k->is_bounded() ? k->value().count() : 0;
  }
  const auto& k = d->*m.o;
  return k && k->is_bounded() ? k->value().count() : 0;
}

std::string bw_text(const knob<direction_bandwidth>& d) {
  if (!d || d->average.is_unlimited()) return "unlimited";
  std::string s = "average " + std::to_string(d->average.value().count()) + " bytes/s";
  if (d->peak) s += ", peak " + std::to_string(d->peak->count()) + " bytes/s";
  if (d->burst) s += ", burst " + std::to_string(d->burst->count()) + " bytes";
  if (d->floor) s += ", floor " + std::to_string(d->floor->count()) + " bytes/s";
  return s;
}

result<unsigned> kbytes_sec(bytes_per_second b, const std::string& knob) {
  auto k = to_kilobytes_per_second_exact(b);
  if (!k || k->count() > 0xffffffffu)
    return fail(errc::invalid_argument, knob + ": " + std::to_string(b.count()) +
                                            " bytes/s is not a whole number of kilobytes/s below 2^32, "
                                            "which libvirt's <bandwidth> requires");
  return static_cast<unsigned>(k->count());
}
result<unsigned> kbytes(bytes b, const std::string& knob) {
  if (b.count() % kib_factor != 0 || b.count() / kib_factor > 0xffffffffu)
    return fail(errc::invalid_argument, knob + ": " + std::to_string(b.count()) +
                                            " bytes is not a whole number of kilobytes (1024 bytes) below 2^32, "
                                            "which libvirt's <bandwidth> burst requires");
  return static_cast<unsigned>(b.count() / kib_factor);
}

// Builds the knob operations for what `want` sets. `current` is the live
// spec (or the config one for a stopped domain), used to keep the unmanaged
// members of a group libvirt sets together.
std::vector<knob_op> build_ops(virConnectPtr conn, const quota_spec& want, const quota_spec& current,
                               unsigned host_cpus) {
  std::vector<knob_op> ops;
  const auto& c = want.cpu;
  const auto sched_ull = [&](std::string name, const char* param, auto getter, auto value) {
    ops.push_back({name, getter, [conn, name, param, value](virDomainPtr d, unsigned f) -> result<void> {
                     typed_params tp;
                     tp.ull(param, value);
                     return check(conn, virDomainSetSchedulerParametersFlags(d, tp.p, tp.n, f), name);
                   }});
  };
  const auto sched_quota = [&](std::string name, const char* param, auto getter, limit<microseconds> q) {
    ops.push_back({name, getter, [conn, name, param, q](virDomainPtr d, unsigned f) -> result<void> {
                     typed_params tp;
                     // libvirt: a negative quota means no limit.
                     tp.ll(param, q.is_unlimited() ? -1 : q.value().count());
                     return check(conn, virDomainSetSchedulerParametersFlags(d, tp.p, tp.n, f), name);
                   }});
  };
  if (c.vcpus) {
    const unsigned n = *c.vcpus;
    ops.push_back({"cpu.vcpus",
                   [](const quota_spec& s) { return s.cpu.vcpus ? std::optional(std::to_string(*s.cpu.vcpus)) : std::nullopt; },
                   [conn, n](virDomainPtr d, unsigned f) { return check(conn, virDomainSetVcpusFlags(d, n, f), "cpu.vcpus"); }});
  }
  if (c.shares)
    sched_ull("cpu.shares", VIR_DOMAIN_SCHEDULER_CPU_SHARES,
              [](const quota_spec& s) { return s.cpu.shares ? std::optional(std::to_string(*s.cpu.shares)) : std::nullopt; },
              static_cast<unsigned long long>(*c.shares));
  if (c.period)
    sched_ull("cpu.period", VIR_DOMAIN_SCHEDULER_VCPU_PERIOD,
              [](const quota_spec& s) { return s.cpu.period ? std::optional(std::to_string(s.cpu.period->count()) + " us") : std::nullopt; },
              static_cast<unsigned long long>(c.period->count()));
  if (c.quota)
    sched_quota("cpu.quota", VIR_DOMAIN_SCHEDULER_VCPU_QUOTA,
                [](const quota_spec& s) { return s.cpu.quota ? std::optional(txt(*s.cpu.quota)) : std::nullopt; }, *c.quota);
  if (c.emulator_period)
    sched_ull("cpu.emulator_period", VIR_DOMAIN_SCHEDULER_EMULATOR_PERIOD,
              [](const quota_spec& s) {
                return s.cpu.emulator_period ? std::optional(std::to_string(s.cpu.emulator_period->count()) + " us") : std::nullopt;
              },
              static_cast<unsigned long long>(c.emulator_period->count()));
  if (c.emulator_quota)
    sched_quota("cpu.emulator_quota", VIR_DOMAIN_SCHEDULER_EMULATOR_QUOTA,
                [](const quota_spec& s) { return s.cpu.emulator_quota ? std::optional(txt(*s.cpu.emulator_quota)) : std::nullopt; },
                *c.emulator_quota);
  if (c.vcpu_pins)
    for (const auto& pin : *c.vcpu_pins) {
      const std::string name = "cpu.vcpu_pins[" + std::to_string(pin.vcpu) + "]";
      const auto vcpu = pin.vcpu;
      auto map = cpumap(pin.cpus, host_cpus);
      ops.push_back({name,
                     [vcpu](const quota_spec& s) -> std::optional<std::string> {
                       if (!s.cpu.vcpu_pins) return std::nullopt;
                       for (const auto& p : *s.cpu.vcpu_pins)
                         if (p.vcpu == vcpu) return p.cpus.to_string();
                       return std::string("(not pinned)");
                     },
                     [conn, name, vcpu, map](virDomainPtr d, unsigned f) {
                       auto m = map;
                       return check(conn, virDomainPinVcpuFlags(d, vcpu, m.data(), static_cast<int>(m.size()), f), name);
                     }});
    }
  if (c.emulator_pin) {
    auto map = cpumap(*c.emulator_pin, host_cpus);
    ops.push_back({"cpu.emulator_pin",
                   [](const quota_spec& s) { return std::optional(s.cpu.emulator_pin ? s.cpu.emulator_pin->to_string() : std::string("(not pinned)")); },
                   [conn, map](virDomainPtr d, unsigned f) {
                     auto m = map;
                     return check(conn, virDomainPinEmulator(d, m.data(), static_cast<int>(m.size()), f), "cpu.emulator_pin");
                   }});
  }
  const auto& m = want.memory;
  if (m.current) {
    const auto kib = to_kibibytes_ceil(*m.current).count();
    ops.push_back({"memory.current",
                   [](const quota_spec& s) {
                     return s.memory.current ? std::optional(std::to_string(to_kibibytes_ceil(*s.memory.current).count()) + " KiB") : std::nullopt;
                   },
                   [conn, kib](virDomainPtr d, unsigned f) {
                     return check(conn, virDomainSetMemoryFlags(d, kib, f), "memory.current");
                   }});
  }
  const auto memtune = [&](std::string name, const char* param, const knob<limit<bytes>>& k,
                           knob<limit<bytes>> memory_spec::*member) {
    if (!k) return;
    const auto l = *k;
    ops.push_back({name,
                   [member](const quota_spec& s) { return (s.memory.*member) ? std::optional(txt(*(s.memory.*member), "bytes")) : std::nullopt; },
                   [conn, name, param, l](virDomainPtr d, unsigned f) -> result<void> {
                     auto kib = memtune_kib(l, name);
                     if (!kib) return fail(std::move(kib.error()));
                     typed_params tp;
                     tp.ull(param, *kib);
                     return check(conn, virDomainSetMemoryParameters(d, tp.p, tp.n, f), name);
                   }});
  };
  memtune("memory.hard_limit", VIR_DOMAIN_MEMORY_HARD_LIMIT, m.hard_limit, &memory_spec::hard_limit);
  memtune("memory.soft_limit", VIR_DOMAIN_MEMORY_SOFT_LIMIT, m.soft_limit, &memory_spec::soft_limit);
  memtune("memory.swap_hard_limit", VIR_DOMAIN_MEMORY_SWAP_HARD_LIMIT, m.swap_hard_limit, &memory_spec::swap_hard_limit);
  if (m.numa) {
    const auto nt = *m.numa;
    ops.push_back({"memory.numa",
                   [](const quota_spec& s) { return s.memory.numa ? std::optional(s.memory.numa->mode + " " + s.memory.numa->nodeset.to_string()) : std::nullopt; },
                   [conn, nt](virDomainPtr d, unsigned f) -> result<void> {
                     typed_params tp;
                     const int mode = nt.mode == "strict" ? VIR_DOMAIN_NUMATUNE_MEM_STRICT
                                      : nt.mode == "preferred" ? VIR_DOMAIN_NUMATUNE_MEM_PREFERRED
                                      : nt.mode == "interleave" ? VIR_DOMAIN_NUMATUNE_MEM_INTERLEAVE
                                                                : VIR_DOMAIN_NUMATUNE_MEM_RESTRICTIVE;
                     tp.i(VIR_DOMAIN_NUMA_MODE, mode);
                     const auto set = nt.nodeset.to_string();
                     tp.s(VIR_DOMAIN_NUMA_NODESET, set.c_str());
                     return check(conn, virDomainSetNumaParameters(d, tp.p, tp.n, f), "memory.numa");
                   }});
  }
  if (want.blkio_weight) {
    const unsigned w = static_cast<unsigned>(*want.blkio_weight);
    ops.push_back({"blkio_weight",
                   [](const quota_spec& s) { return s.blkio_weight ? std::optional(std::to_string(*s.blkio_weight)) : std::nullopt; },
                   [conn, w](virDomainPtr d, unsigned f) -> result<void> {
                     typed_params tp;
                     tp.ui(VIR_DOMAIN_BLKIO_WEIGHT, w);
                     return check(conn, virDomainSetBlkioParameters(d, tp.p, tp.n, f), "blkio_weight");
                   }});
  }
  for (const auto& d : want.disks) {
    // One call per disk with every group it touches, fully specified
    // (desired members where set, current ones otherwise): libvirt resets the
    // unset members of a group it is given (qemuDomainSetBlockIoTune), and
    // checks each rate against its _max in the same call.
    const std::string disk = d.target;
    const disk_spec* cur = current.disk(disk);
    knob_op op;
    op.name = "disks[" + quote(disk) + "].iotune";
    std::vector<std::pair<const char*, std::uint64_t>> params;
    for (int g = 0; g < iotune_groups; ++g) {
      bool touched = false;
      for (const auto& mem : iotune_table[g]) touched = touched || member_text(&d, mem).has_value();
      if (!touched) continue;
      for (const auto& mem : iotune_table[g]) {
        params.emplace_back(mem.param, member_text(&d, mem) ? member_value(&d, mem) : member_value(cur, mem));
        if (!member_text(&d, mem)) continue;
        op.parts.emplace_back("disks[" + quote(disk) + "]." + mem.param,
                              [disk, mem](const quota_spec& s) -> std::optional<std::string> {
                                const auto* x = s.disk(disk);
                                if (!x) return std::string("(no such disk)");
                                return member_text(x, mem);
                              });
      }
    }
    if (params.empty()) continue;
    const auto parts = op.parts;
    op.get = [parts](const quota_spec& s) -> std::optional<std::string> {
      std::string all;
      for (const auto& [n, g] : parts) all += n + "=" + g(s).value_or("(unset)") + ";";
      return all;
    };
    const std::string name = op.name;
    op.set = [conn, name, disk, params](virDomainPtr dom, unsigned f) -> result<void> {
      typed_params tp;
      for (const auto& [p, v] : params) tp.ull(p, v);
      return check(conn, virDomainSetBlockIoTune(dom, disk.c_str(), tp.p, tp.n, f), name);
    };
    ops.push_back(std::move(op));
  }
  for (const auto& i : want.interfaces) {
    const std::string mac = i.mac;
    for (int dir = 0; dir < 2; ++dir) {
      const auto& k = dir == 0 ? i.inbound : i.outbound;
      if (!k) continue;
      const std::string name = "interfaces[" + quote(mac) + "]." + (dir == 0 ? "inbound" : "outbound");
      const auto b = *k;
      const bool in = dir == 0;
      ops.push_back({name,
                     [mac, in](const quota_spec& s) -> std::optional<std::string> {
                       const auto* x = s.interface(mac);
                       if (!x) return std::string("(no such interface)");
                       return bw_text(in ? x->inbound : x->outbound);
                     },
                     [conn, name, mac, in, b](virDomainPtr dom, unsigned f) -> result<void> {
                       typed_params tp;
                       unsigned avg = 0, peak = 0, burst = 0;
                       if (b.average.is_bounded()) {
                         auto a = kbytes_sec(b.average.value(), name + ".average");
                         if (!a) return fail(std::move(a.error()));
                         avg = *a;
                         if (b.peak) {
                           auto p = kbytes_sec(*b.peak, name + ".peak");
                           if (!p) return fail(std::move(p.error()));
                           peak = *p;
                         }
                         if (b.burst) {
                           auto x = kbytes(*b.burst, name + ".burst");
                           if (!x) return fail(std::move(x.error()));
                           burst = *x;
                         }
                       }
                       tp.ui(in ? VIR_DOMAIN_BANDWIDTH_IN_AVERAGE : VIR_DOMAIN_BANDWIDTH_OUT_AVERAGE, avg);
                       tp.ui(in ? VIR_DOMAIN_BANDWIDTH_IN_PEAK : VIR_DOMAIN_BANDWIDTH_OUT_PEAK, peak);
                       tp.ui(in ? VIR_DOMAIN_BANDWIDTH_IN_BURST : VIR_DOMAIN_BANDWIDTH_OUT_BURST, burst);
                       if (in && b.floor) {
                         auto fl = kbytes_sec(*b.floor, name + ".floor");
                         if (!fl) return fail(std::move(fl.error()));
                         tp.ui(VIR_DOMAIN_BANDWIDTH_IN_FLOOR, *fl);
                       }
                       return check(conn, virDomainSetInterfaceParameters(dom, mac.c_str(), tp.p, tp.n, f), name);
                     }});
    }
  }
  return ops;
}

// Knobs of the uniform spec that libvirt has no API for; reported, never faked.
std::vector<std::string> unsupported_in(const quota_spec& s) {
  std::vector<std::string> u;
  if (s.cpu.weight) u.push_back("cpu.weight");
  if (s.cpu.burst) u.push_back("cpu.burst");
  if (s.cpu.cpus) u.push_back("cpu.cpus");
  if (s.cpu.mems) u.push_back("cpu.mems");
  if (s.cpu.max_vcpus) u.push_back("cpu.max_vcpus");
  if (s.memory.max) u.push_back("memory.max");
  if (s.memory.high) u.push_back("memory.high");
  if (s.memory.low) u.push_back("memory.low");
  if (s.memory.min) u.push_back("memory.min");
  if (s.llc) u.push_back("llc");
  if (s.memory_bandwidth) u.push_back("memory_bandwidth");
  if (s.cache_tunes) u.push_back("cache_tunes");
  for (const auto& d : s.disks)
    if (d.weight) u.push_back("disks[" + quote(d.target) + "].weight");
  for (const auto& i : s.interfaces)
    for (const auto* dir : {&i.inbound, &i.outbound})
      if (*dir && (*dir)->packets) u.push_back("interfaces[" + quote(i.mac) + "].packets");
  return u;
}

}  // namespace

result<apply_report> backend::apply(const instance_info& instance, const quota_spec& spec) {
  detail::sigpipe_guard g;
  if (auto v = validate(spec); !v) return fail(std::move(v.error()).in("spec for " + quote(instance.name)));
  if (p_->options.read_only)
    return fail(errc::permission_denied,
                "cannot apply to " + quote(instance.name) + ": the connection to " + quote(p_->uri) + " is read-only");
  auto c = p_->live();
  if (!c) return fail(std::move(c.error()));
  const auto u = instance.id.uuid.to_string();
  detail::domain_ptr dom(virDomainLookupByUUIDString(*c, u.c_str()));
  if (!dom) {
    auto e = detail::last_error(*c, errc::not_found, "domain " + quote(instance.name) + " (" + u + ")");
    p_->note(e);
    return fail(std::move(e));
  }
  const bool running = virDomainIsActive(dom.get()) == 1;
  const bool persistent = virDomainIsPersistent(dom.get()) == 1;
  virNodeInfo ni{};
  const unsigned host_cpus = virNodeGetInfo(*c, &ni) == 0 ? ni.cpus : 0;

  const auto fetch = [&](bool live) -> result<quota_spec> {
    auto p = detail::fetch_domain(*c, dom.get(), live ? 0u : static_cast<unsigned>(VIR_DOMAIN_XML_INACTIVE));
    if (!p) return fail(std::move(p.error()));
    return std::move(p->spec);
  };
  std::optional<quota_spec> live_spec, cfg_spec;
  if (running) {
    auto s = fetch(true);
    if (!s) return fail(std::move(s.error()).in("apply to " + quote(instance.name)));
    live_spec = std::move(*s);
  }
  if (persistent || !running) {
    auto s = fetch(false);
    if (!s) return fail(std::move(s.error()).in("apply to " + quote(instance.name)));
    cfg_spec = std::move(*s);
  }

  apply_report report;
  report.unsupported = unsupported_in(spec);
  const auto ops = build_ops(*c, spec, live_spec ? *live_spec : *cfg_spec, host_cpus);
  struct done {
    const knob_op* op;
    unsigned flags;
    std::string after;
  };
  std::vector<done> applied;
  // Live and saved config are set by separate calls: some drivers refuse
  // VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG together.
  const auto set_scope = [&](const knob_op& op, unsigned scope) -> result<void> {
    auto r = op.set(dom.get(), scope);
    // Some drivers accept only VIR_DOMAIN_AFFECT_CURRENT (flags 0) for some
    // calls; virCheckFlags reports "unsupported flags (0x..) in function ..."
    // (libvirt src/internal.h). For the scope that is current (live when
    // running, config when not) that is the same request.
    const unsigned current_scope = running ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
    if (!r && scope == current_scope && r.error().message().find("unsupported flags") != std::string::npos)
      r = op.set(dom.get(), VIR_DOMAIN_AFFECT_CURRENT);
    return r;
  };
  // One entry per knob, or per member for knobs set together.
  const auto record_change = [&](const knob_op& op, const std::optional<quota_spec>& before_spec) {
    if (op.parts.empty()) {
      report.changed.push_back({op.name, before_spec ? op.get(*before_spec).value_or("(unset)") : "(unset)", *op.get(spec)});
      return;
    }
    for (const auto& [n, g] : op.parts) {
      const auto b = before_spec ? g(*before_spec) : std::nullopt;
      const auto a = g(spec);
      if (b != a) report.changed.push_back({n, b.value_or("(unset)"), a.value_or("(unset)")});
    }
  };
  const auto record_failure = [&](const knob_op& op, const error& e) {
    if (op.parts.empty()) {
      report.failed.push_back({op.name, e});
      return;
    }
    for (const auto& [n, g] : op.parts) report.failed.push_back({n, e});
  };
  for (const auto& op : ops) {
    const auto want = op.get(spec);
    if (!want) continue;
    const bool need_live = live_spec && op.get(*live_spec) != want;
    const bool need_cfg = cfg_spec && persistent && op.get(*cfg_spec) != want;
    if (!need_live && !need_cfg) continue;  // already as wanted
    unsigned done_flags = 0;
    if (need_live) {
      if (auto r = set_scope(op, VIR_DOMAIN_AFFECT_LIVE)) {
        done_flags |= VIR_DOMAIN_AFFECT_LIVE;
        record_change(op, live_spec);
      } else {
        p_->note(r.error());
        record_failure(op, std::move(r.error()).in("live"));
      }
    }
    if (need_cfg && p_->conn) {
      if (auto r = set_scope(op, VIR_DOMAIN_AFFECT_CONFIG)) {
        done_flags |= VIR_DOMAIN_AFFECT_CONFIG;
        if (!need_live) record_change(op, cfg_spec);
      } else {
        p_->note(r.error());
        record_failure(op, std::move(r.error()).in("saved config"));
      }
    }
    if (done_flags) applied.push_back({&op, done_flags, *want});
    if (!p_->conn) break;
  }

  // Read back: a change that did not take is a failure, not a success.
  if (!applied.empty() && p_->conn) {
    std::optional<quota_spec> live_after, cfg_after;
    if (running) {
      if (auto s = fetch(true)) live_after = std::move(*s);
    }
    if (persistent) {
      if (auto s = fetch(false)) cfg_after = std::move(*s);
    }
    for (const auto& a : applied) {
      std::optional<std::string> got;
      std::string where;
      if ((a.flags & VIR_DOMAIN_AFFECT_LIVE) && live_after && a.op->get(*live_after) != a.after) {
        got = a.op->get(*live_after);
        where = "live";
      } else if ((a.flags & VIR_DOMAIN_AFFECT_CONFIG) && cfg_after && a.op->get(*cfg_after) != a.after) {
        got = a.op->get(*cfg_after);
        where = "saved config";
      }
      if (where.empty()) continue;
      const error e(errc::io_error, a.op->name + ": set to " + a.after + " but the " + where +
                                        " definition reads back " + got.value_or("(unset)"));
      std::erase_if(report.changed, [&](const knob_change& ch) {
        if (ch.knob == a.op->name) return true;
        for (const auto& p : a.op->parts)
          if (p.first == ch.knob) return true;
        return false;
      });
      record_failure(*a.op, e);
    }
  }
  return report;
}

}  // namespace bulkhead::libvirt
