// The libvirt backend's connection handling and read path; contract in
// bulkhead/backend/libvirt/backend.hpp.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "bulkhead/detail/text.hpp"
#include "backend_impl.hpp"

namespace bulkhead::libvirt {

namespace detail {

void silence_libvirt_errors() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { virSetErrorFunc(nullptr, [](void*, virErrorPtr) {}); });
}

error last_error(virConnectPtr conn, errc fallback, const std::string& what) {
  virErrorPtr e = virGetLastError();
  std::string msg = e && e->message ? e->message : "libvirt gave no reason";
  const int code = e ? e->code : 0;
  errc c = fallback;
  switch (code) {
    case VIR_ERR_NO_DOMAIN: c = errc::vanished; break;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_ARGUMENT_UNSUPPORTED: c = errc::unsupported; break;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
    case VIR_ERR_AUTH_FAILED: c = errc::permission_denied; break;
    default: break;
  }
  if (conn && virConnectIsAlive(conn) == 0) c = errc::connection_lost;
  virResetLastError();
  return error(c, what + ": " + msg);
}

instance_state state_from_libvirt(int s) noexcept {
  switch (s) {
    case VIR_DOMAIN_RUNNING: return instance_state::running;
    case VIR_DOMAIN_BLOCKED: return instance_state::blocked;
    case VIR_DOMAIN_PAUSED: return instance_state::paused;
    case VIR_DOMAIN_SHUTDOWN: return instance_state::shutdown;
    case VIR_DOMAIN_SHUTOFF: return instance_state::shutoff;
    case VIR_DOMAIN_CRASHED: return instance_state::crashed;
    case VIR_DOMAIN_PMSUSPENDED: return instance_state::pmsuspended;
    default: return instance_state::nostate;
  }
}

result<parsed_domain> fetch_domain(virConnectPtr conn, virDomainPtr dom, unsigned flags) {
  char* xml = virDomainGetXMLDesc(dom, flags);
  if (!xml) {
    const char* n = virDomainGetName(dom);
    return fail(last_error(conn, errc::io_error,
                           std::string("reading the XML of domain ") + bulkhead::detail::quote(n ? n : "?")));
  }
  auto parsed = parse_domain_xml(xml);
  std::free(xml);
  return parsed;
}

}  // namespace detail

namespace {

using detail::domain_ptr;

bool is_active(instance_state s) {
  return s == instance_state::running || s == instance_state::blocked || s == instance_state::paused ||
         s == instance_state::shutdown || s == instance_state::pmsuspended;
}

instance_info info_from(const parsed_domain& p, int lv_state, bool persistent, std::optional<std::int64_t> id,
                        const std::string& source) {
  instance_info i;
  i.id.uuid = p.uuid;
  i.name = p.name;
  i.source = source;
  i.kind = instance_kind::vm;
  i.state = detail::state_from_libvirt(lv_state);
  const auto lid = id ? id : p.libvirt_id;
  if (lid && *lid >= 0 && is_active(i.state)) i.id.incarnation = incarnation{static_cast<std::uint64_t>(*lid)};
  i.isolation = p.isolation;
  i.modes = p.modes;
  i.qos = p.qos;
  i.tenant = p.tenant;
  i.persistent = persistent;
  return i;
}

// Typed-parameter lookups over one stats record.
struct params {
  virTypedParameterPtr p;
  int n;
  [[nodiscard]] std::optional<std::uint64_t> ull(const char* name) const {
    unsigned long long v = 0;
    if (virTypedParamsGetULLong(p, n, name, &v) == 1) return v;
    return std::nullopt;
  }
  [[nodiscard]] std::optional<std::uint64_t> uint(const char* name) const {
    unsigned int v = 0;
    if (virTypedParamsGetUInt(p, n, name, &v) == 1) return v;
    return std::nullopt;
  }
  [[nodiscard]] std::optional<int> integer(const char* name) const {
    int v = 0;
    if (virTypedParamsGetInt(p, n, name, &v) == 1) return v;
    return std::nullopt;
  }
  [[nodiscard]] const char* str(const char* name) const {
    const char* v = nullptr;
    if (virTypedParamsGetString(p, n, name, &v) == 1) return v;
    return nullptr;
  }
};

template <class Q>
knob<Q> qk(std::optional<std::uint64_t> v) {
  return v ? knob<Q>{Q{*v}} : std::nullopt;
}
knob<nanoseconds> nsk(std::optional<std::uint64_t> v) {
  if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return nanoseconds{static_cast<std::int64_t>(*v)};
}
knob<bytes> kib_to_bytes(std::optional<std::uint64_t> v) {
  if (!v) return std::nullopt;
  auto b = to_bytes(kibibytes{*v});
  return b ? knob<bytes>{*b} : std::nullopt;
}

// What a stats record gave; the per-domain fallback fills what is missing.
struct have {
  bool cpu = false, vcpu = false, balloon = false, block = false, net = false;
};

have from_record(const params& ps, const parsed_domain& p, usage_sample& u) {
  have h;
  char key[64];
  if (auto t = ps.ull("cpu.time")) {
    h.cpu = true;
    u.cpu_time = nsk(t);
    u.cpu_user = nsk(ps.ull("cpu.user"));
    u.cpu_system = nsk(ps.ull("cpu.system"));
  }
  if (auto cur = ps.ull("balloon.current")) {
    h.balloon = true;
    u.memory_current = kib_to_bytes(cur);
    u.memory_rss = kib_to_bytes(ps.ull("balloon.rss"));
    u.memory_available = kib_to_bytes(ps.ull("balloon.available"));
  }
  if (auto maxv = ps.uint("vcpu.maximum")) {
    h.vcpu = true;
    u.vcpu_time.assign(*maxv, nanoseconds{0});
    // Up to the highest vCPU libvirt gave a time for (offline vCPUs past it
    // have none). A time of 0 is a reading, not an absence: a vCPU that has
    // not run yet (the first sample after a start) must be the meter's
    // baseline at 0, or what it runs before the next sample is never
    // accounted.
    std::size_t reported = 0;
    for (unsigned i = 0; i < *maxv; ++i) {
      std::snprintf(key, sizeof key, "vcpu.%u.time", i);
      if (auto t = nsk(ps.ull(key))) {
        u.vcpu_time[i] = *t;
        reported = i + 1;
      }
    }
    u.vcpu_time.resize(reported);
    // vcpu.<n>.wait and vcpu.<n>.delay the same way (libvirt gives them
    // where the host's kernel has them).
    const auto per_vcpu = [&](const char* field, std::vector<nanoseconds>& out) {
      out.assign(*maxv, nanoseconds{0});
      std::size_t got = 0;
      for (unsigned i = 0; i < *maxv; ++i) {
        std::snprintf(key, sizeof key, "vcpu.%u.%s", i, field);
        if (auto t = nsk(ps.ull(key))) {
          out[i] = *t;
          got = i + 1;
        }
      }
      out.resize(got);
    };
    per_vcpu("wait", u.vcpu_wait);
    per_vcpu("delay", u.vcpu_delay);
  }
  if (auto count = ps.uint("block.count")) {
    h.block = true;
    for (unsigned i = 0; i < *count; ++i) {
      std::snprintf(key, sizeof key, "block.%u.name", i);
      const char* name = ps.str(key);
      if (!name) continue;
      disk_counters d;
      d.target = name;
      std::snprintf(key, sizeof key, "block.%u.rd.reqs", i);
      d.read_requests = qk<operations>(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.rd.bytes", i);
      d.read_bytes = qk<bytes>(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.wr.reqs", i);
      d.write_requests = qk<operations>(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.wr.bytes", i);
      d.write_bytes = qk<bytes>(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.fl.reqs", i);
      d.flush_requests = qk<operations>(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.rd.times", i);
      d.read_time = nsk(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.wr.times", i);
      d.write_time = nsk(ps.ull(key));
      std::snprintf(key, sizeof key, "block.%u.fl.times", i);
      d.flush_time = nsk(ps.ull(key));
      u.disks.push_back(std::move(d));
    }
  }
  if (auto count = ps.uint("net.count")) {
    h.net = true;
    for (unsigned i = 0; i < *count; ++i) {
      std::snprintf(key, sizeof key, "net.%u.name", i);
      const char* name = ps.str(key);
      if (!name) continue;
      interface_counters c;
      c.target = name;
      for (const auto& ref : p.interfaces)
        if (ref.target == c.target) c.mac = ref.mac;
      const auto get = [&](const char* field) {
        std::snprintf(key, sizeof key, "net.%u.%s", i, field);
        return ps.ull(key);
      };
      c.rx_bytes = qk<bytes>(get("rx.bytes"));
      c.rx_packets = qk<packets>(get("rx.pkts"));
      c.rx_errors = qk<packets>(get("rx.errs"));
      c.rx_drops = qk<packets>(get("rx.drop"));
      c.tx_bytes = qk<bytes>(get("tx.bytes"));
      c.tx_packets = qk<packets>(get("tx.pkts"));
      c.tx_errors = qk<packets>(get("tx.errs"));
      c.tx_drops = qk<packets>(get("tx.drop"));
      u.interfaces.push_back(std::move(c));
    }
  }
  return h;
}

// Per-domain calls for what the bulk stats did not give. Failures of one part
// are recorded in `partial`; the rest is still read.
void per_domain(virConnectPtr conn, virDomainPtr dom, const parsed_domain& p, const have& h, usage_sample& u,
                std::vector<error>& partial) {
  // virDomainGetInfo at most once, for whichever fallback needs it.
  std::optional<virDomainInfo> info_cache;
  const auto info = [&]() -> const virDomainInfo* {
    if (!info_cache) {
      virDomainInfo i{};
      if (virDomainGetInfo(dom, &i) != 0) {
        virResetLastError();
        return nullptr;
      }
      info_cache = i;
    }
    return &*info_cache;
  };
  if (!h.cpu) {
    virTypedParameter tp[8];
    std::memset(tp, 0, sizeof tp);
    const int n = virDomainGetCPUStats(dom, tp, 8, -1, 1, 0);
    if (n >= 0) {
      params ps{tp, n};
      u.cpu_time = nsk(ps.ull(VIR_DOMAIN_CPU_STATS_CPUTIME));
      u.cpu_user = nsk(ps.ull(VIR_DOMAIN_CPU_STATS_USERTIME));
      u.cpu_system = nsk(ps.ull(VIR_DOMAIN_CPU_STATS_SYSTEMTIME));
      virTypedParamsClear(tp, n);
    } else {
      partial.push_back(detail::last_error(conn, errc::io_error, "cpu stats"));
    }
    if (!u.cpu_time)
      if (const auto* i = info()) u.cpu_time = nsk(i->cpuTime);
  }
  if (!h.vcpu && p.spec.cpu.vcpus) {
    std::vector<virVcpuInfo> infos(*p.spec.cpu.vcpus);
    const int n = virDomainGetVcpus(dom, infos.data(), static_cast<int>(infos.size()), nullptr, 0);
    if (n >= 0) {
      u.vcpu_time.assign(static_cast<std::size_t>(n), nanoseconds{0});
      for (int i = 0; i < n; ++i)
        if (infos[i].number < static_cast<unsigned>(n)) u.vcpu_time[infos[i].number] = *nsk(infos[i].cpuTime);
    } else {
      partial.push_back(detail::last_error(conn, errc::io_error, "vCPU info"));
    }
  }
  if (!h.balloon) {
    virDomainMemoryStatStruct st[VIR_DOMAIN_MEMORY_STAT_NR];
    const int n = virDomainMemoryStats(dom, st, VIR_DOMAIN_MEMORY_STAT_NR, 0);
    for (int i = 0; i < n; ++i) {
      if (st[i].tag == VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON) u.memory_current = kib_to_bytes(st[i].val);
      if (st[i].tag == VIR_DOMAIN_MEMORY_STAT_RSS) u.memory_rss = kib_to_bytes(st[i].val);
      if (st[i].tag == VIR_DOMAIN_MEMORY_STAT_AVAILABLE) u.memory_available = kib_to_bytes(st[i].val);
    }
    if (n < 0) virResetLastError();
    if (!u.memory_current)
      if (const auto* i = info()) u.memory_current = kib_to_bytes(i->memory);
  }
  if (!h.block) {
    for (const auto& d : p.disks) {
      virDomainBlockStatsStruct bs{};
      if (virDomainBlockStats(dom, d.target.c_str(), &bs, sizeof bs) == 0) {
        disk_counters c;
        c.target = d.target;
        const auto v = [](long long x) { return x >= 0 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(x)) : std::nullopt; };
        c.read_requests = qk<operations>(v(bs.rd_req));
        c.read_bytes = qk<bytes>(v(bs.rd_bytes));
        c.write_requests = qk<operations>(v(bs.wr_req));
        c.write_bytes = qk<bytes>(v(bs.wr_bytes));
        c.errors = qk<operations>(v(bs.errs));
        u.disks.push_back(std::move(c));
      } else {
        partial.push_back(detail::last_error(conn, errc::io_error, "block stats of " + bulkhead::detail::quote(d.target)));
      }
    }
  }
  if (!h.net) {
    for (const auto& i : p.interfaces) {
      if (i.target.empty()) continue;
      virDomainInterfaceStatsStruct is{};
      if (virDomainInterfaceStats(dom, i.target.c_str(), &is, sizeof is) == 0) {
        interface_counters c;
        c.mac = i.mac;
        c.target = i.target;
        const auto v = [](long long x) { return x >= 0 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(x)) : std::nullopt; };
        c.rx_bytes = qk<bytes>(v(is.rx_bytes));
        c.rx_packets = qk<packets>(v(is.rx_packets));
        c.rx_errors = qk<packets>(v(is.rx_errs));
        c.rx_drops = qk<packets>(v(is.rx_drop));
        c.tx_bytes = qk<bytes>(v(is.tx_bytes));
        c.tx_packets = qk<packets>(v(is.tx_packets));
        c.tx_errors = qk<packets>(v(is.tx_errs));
        c.tx_drops = qk<packets>(v(is.tx_drop));
        u.interfaces.push_back(std::move(c));
      } else {
        partial.push_back(detail::last_error(conn, errc::io_error, "interface stats of " + bulkhead::detail::quote(i.mac)));
      }
    }
  }
}

std::vector<std::string> libvirt_unsupported() {
  // Knobs of the uniform spec that a libvirt domain does not have.
  return {"cpu.weight", "cpu.burst", "cpu.cpus", "cpu.mems", "memory.high", "memory.low", "llc", "memory_bandwidth"};
}

}  // namespace

// --- connection ------------------------------------------------------------

result<void> backend::impl::open() {
  detail::silence_libvirt_errors();
  if (conn) {
    virConnectClose(conn);
    conn = nullptr;
  }
  const char* u = options.uri.empty() ? nullptr : options.uri.c_str();
  conn = options.read_only ? virConnectOpenReadOnly(u) : virConnectOpen(u);
  if (!conn) {
    virErrorPtr e = virGetLastError();
    std::string msg = e && e->message ? e->message : "libvirt gave no reason";
    virResetLastError();
    return fail(errc::connection_failed,
                "cannot connect to libvirt at " + bulkhead::detail::quote(options.uri.empty() ? "(default URI)" : options.uri) +
                    ": " + msg);
  }
  if (char* real = virConnectGetURI(conn)) {
    uri = real;
    std::free(real);
  } else {
    virResetLastError();
    uri = options.uri;
  }
  return {};
}

result<virConnectPtr> backend::impl::live() {
  if (conn && virConnectIsAlive(conn) == 1) return conn;
  if (auto r = open(); !r) return fail(std::move(r.error()));
  return conn;
}

void backend::impl::note(const error& e) {
  if (e.code() == errc::connection_lost && conn) {
    virConnectClose(conn);
    conn = nullptr;
  }
}

backend::backend(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}
backend::~backend() {
  detail::sigpipe_guard g;
  p_.reset();
}

result<std::unique_ptr<backend>> backend::connect(libvirt::options options) {
  detail::sigpipe_guard g;
  auto p = std::make_unique<impl>();
  p->options = std::move(options);
  p->uri = p->options.uri;
  if (auto r = p->open(); !r) return fail(std::move(r.error()));
  return std::unique_ptr<backend>(new backend(std::move(p)));
}

const std::string& backend::source() const noexcept { return p_->uri; }
_virConnect* backend::native_handle() noexcept { return p_->conn; }
result<void> backend::reconnect() {
  detail::sigpipe_guard g;
  return p_->open();
}

// --- capacity ----------------------------------------------------------------

result<host_capacity> backend::capacity() {
  detail::sigpipe_guard g;
  auto c = p_->live();
  if (!c) return fail(std::move(c.error()));
  virNodeInfo ni{};
  if (virNodeGetInfo(*c, &ni) != 0) {
    auto e = detail::last_error(*c, errc::io_error, "reading node info from " + bulkhead::detail::quote(p_->uri));
    p_->note(e);
    return fail(std::move(e));
  }
  host_capacity h;
  h.cpus = ni.cpus;
  h.mhz = ni.mhz;
  h.cpu_model = ni.model;
  // virNodeInfo.sockets counts sockets per NUMA node (libvirt-host.h).
  h.sockets = ni.sockets * std::max(1u, ni.nodes);
  h.cores_per_socket = ni.cores;
  h.threads_per_core = ni.threads;
  h.memory = to_bytes(kibibytes{ni.memory}).value_or(bytes{0});
  char* caps = virConnectGetCapabilities(*c);
  if (!caps) {
    auto e = detail::last_error(*c, errc::io_error, "reading capabilities from " + bulkhead::detail::quote(p_->uri));
    p_->note(e);
    return fail(std::move(e));
  }
  auto cells = parse_capabilities_cells(caps);
  std::free(caps);
  if (!cells) return fail(std::move(cells.error()).in(p_->uri));
  h.numa = std::move(*cells);
  if (h.numa.empty() && ni.nodes > 0) {
    // No topology in the capabilities (libvirt's test driver with a node
    // file): cells derived from virNodeInfo, CPUs and memory split evenly.
    h.numa_derived = true;
    const std::uint32_t per = ni.cpus / ni.nodes;
    for (std::uint32_t n = 0; n < ni.nodes; ++n) {
      numa_cell cell;
      cell.id = n;
      if (per > 0) cell.cpus = cpuset::range(n * per, n * per + per - 1);
      cell.memory = bytes{h.memory.count() / ni.nodes};
      h.numa.push_back(std::move(cell));
    }
  }
  return h;
}

// --- discover / read -----------------------------------------------------------

result<std::vector<instance_info>> backend::discover() {
  detail::sigpipe_guard g;
  auto c = p_->live();
  if (!c) return fail(std::move(c.error()));
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(*c, &doms, 0);
  if (n < 0) {
    auto e = detail::last_error(*c, errc::io_error, "listing domains on " + bulkhead::detail::quote(p_->uri));
    p_->note(e);
    return fail(std::move(e));
  }
  std::vector<domain_ptr> owned(doms, doms + n);
  std::free(doms);
  std::vector<instance_info> out;
  out.reserve(owned.size());
  for (auto& d : owned) {
    int st = 0, reason = 0;
    if (virDomainGetState(d.get(), &st, &reason, 0) != 0) {
      auto e = detail::last_error(*c, errc::io_error, "state");
      if (e.code() == errc::vanished) continue;  // gone since the list: not an instance any more
      p_->note(e);
      if (e.code() == errc::connection_lost) return fail(std::move(e));
    }
    const int persistent = virDomainIsPersistent(d.get());
    const unsigned id = virDomainGetID(d.get());
    const std::optional<std::int64_t> lid =
        id == static_cast<unsigned>(-1) ? std::nullopt : std::optional<std::int64_t>(id);
    auto parsed = detail::fetch_domain(*c, d.get(), 0);
    if (!parsed) {
      if (parsed.error().code() == errc::vanished) continue;
      p_->note(parsed.error());
      if (parsed.error().code() == errc::connection_lost) return fail(std::move(parsed.error()));
      // Unparsable: still listed (identity from the API), read() says why.
      instance_info i;
      char u[VIR_UUID_STRING_BUFLEN];
      if (virDomainGetUUIDString(d.get(), u) == 0)
        if (auto x = uuid::parse(u)) i.id.uuid = *x;
      if (const char* nm = virDomainGetName(d.get())) i.name = nm;
      i.source = p_->uri;
      i.state = detail::state_from_libvirt(st);
      if (lid && is_active(i.state)) i.id.incarnation = incarnation{static_cast<std::uint64_t>(*lid)};
      out.push_back(std::move(i));
      continue;
    }
    out.push_back(info_from(*parsed, st, persistent == 1, lid, p_->uri));
  }
  return out;
}

namespace {
result<instance_reading> read_one(virConnectPtr conn, virDomainPtr dom, const std::string& uri,
                                  const params* record) {
  int st = VIR_DOMAIN_NOSTATE;
  if (record) {
    if (auto s = record->integer("state.state")) st = *s;
  } else {
    int reason = 0;
    if (virDomainGetState(dom, &st, &reason, 0) != 0) return fail(detail::last_error(conn, errc::io_error, "state"));
  }
  auto parsed = detail::fetch_domain(conn, dom, 0);
  if (!parsed) return fail(std::move(parsed.error()));
  const int persistent = virDomainIsPersistent(dom);
  const unsigned id = virDomainGetID(dom);
  instance_reading r;
  r.info = info_from(*parsed, st, persistent == 1,
                     id == static_cast<unsigned>(-1) ? std::nullopt : std::optional<std::int64_t>(id), uri);
  r.unsupported = libvirt_unsupported();
  for (auto& w : parsed->warnings) r.partial.emplace_back(errc::parse_error, std::move(w));
  if (is_active(r.info.state)) {
    have h;
    if (record) h = from_record(*record, *parsed, r.usage);
    per_domain(conn, dom, *parsed, h, r.usage, r.partial);
  }
  r.usage.read_at = mono_clock::now();
  r.usage.wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  r.enforced = std::move(parsed->spec);
  return r;
}

std::string describe_domain(virDomainPtr d) {
  const char* n = virDomainGetName(d);
  return std::string("domain ") + bulkhead::detail::quote(n ? n : "?");
}
}  // namespace

result<instance_reading> backend::read(const instance_info& instance) {
  detail::sigpipe_guard g;
  auto c = p_->live();
  if (!c) return fail(std::move(c.error()));
  const auto u = instance.id.uuid.to_string();
  domain_ptr d(virDomainLookupByUUIDString(*c, u.c_str()));
  if (!d) {
    auto e = detail::last_error(*c, errc::not_found, "domain " + bulkhead::detail::quote(instance.name) + " (" + u + ")");
    p_->note(e);
    return fail(std::move(e));
  }
  auto r = read_one(*c, d.get(), p_->uri, nullptr);
  if (!r) {
    p_->note(r.error());
    return fail(std::move(r.error()).in(describe_domain(d.get())));
  }
  return r;
}

result<host_reading> backend::read_all() {
  detail::sigpipe_guard g;
  auto c = p_->live();
  if (!c) return fail(std::move(c.error()));
  const unsigned groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
                          VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
  virDomainStatsRecordPtr* records = nullptr;
  const int n = virConnectGetAllDomainStats(*c, groups, &records, 0);
  host_reading out;
  out.source = p_->uri;
  if (n < 0) {
    auto e = detail::last_error(*c, errc::io_error, "reading domain stats from " + bulkhead::detail::quote(p_->uri));
    p_->note(e);
    if (e.code() != errc::unsupported) return fail(std::move(e));
    // A driver without bulk stats: one domain at a time.
    return bulkhead::backend::read_all();
  }
  out.instances.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    params ps{records[i]->params, records[i]->nparams};
    auto r = read_one(*c, records[i]->dom, p_->uri, &ps);
    if (r) {
      out.instances.push_back(std::move(*r));
      continue;
    }
    auto e = std::move(r.error());
    p_->note(e);
    std::optional<uuid> id;
    char u[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(records[i]->dom, u) == 0)
      if (auto x = uuid::parse(u)) id = *x;
    const char* nm = virDomainGetName(records[i]->dom);
    out.failures.push_back(instance_failure{id, nm ? nm : "", std::move(e).in(describe_domain(records[i]->dom))});
    if (!p_->conn) break;  // the connection died: the rest would fail the same way
  }
  virDomainStatsRecordListFree(records);
  if (!p_->conn && !out.failures.empty()) out.source_error = out.failures.back().why;
  return out;
}

}  // namespace bulkhead::libvirt
