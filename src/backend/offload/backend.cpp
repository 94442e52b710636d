// The emulated-card backend; contract in bulkhead/backend/offload/backend.hpp.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/description.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/backend/offload/detail/mapping.hpp"

namespace bulkhead::offload {

namespace {

template <class Q>
std::string text(const limit<Q>& l) {
  return l.is_unlimited() ? std::string("unlimited") : std::to_string(l.value().count()) + " " + std::string(Q::symbol());
}
template <class Q>
std::string text(const Q& q) {
  return std::to_string(q.count()) + " " + std::string(Q::symbol());
}

template <class Amount, class Rate>
void set_rate(rate_qos<Amount, Rate>& q, const limit<Rate>& rate, const knob<Amount>& burst) {
  q.bucket.rate = rate;
  if (rate.is_unlimited()) {
    q.bucket.burst = Amount{0};
    q.bucket.one_time_burst = Amount{0};
    return;
  }
  if (burst) {
    q.bucket.burst = *burst;
  } else if (q.bucket.burst.count() == 0) {
    const std::uint64_t r = rate.value().count();
    q.bucket.burst = Amount{r / 10 + (r % 10 != 0 ? 1 : 0)};  // 100 ms, as the description's default
  }
}

template <class Amount, class Rate>
void diff(std::vector<knob_change>& out, const std::string& name, const rate_qos<Amount, Rate>& a,
          const rate_qos<Amount, Rate>& b, const char* rate_suffix, const char* burst_suffix) {
  if (!(a.bucket.rate == b.bucket.rate)) out.push_back({name + rate_suffix, text(a.bucket.rate), text(b.bucket.rate)});
  if (a.bucket.burst != b.bucket.burst && b.bucket.rate.is_bounded() && burst_suffix)
    out.push_back({name + burst_suffix, text(a.bucket.burst), text(b.bucket.burst)});
}

}  // namespace

result<std::unique_ptr<backend>> backend::make(std::string_view json_text,
                                                                           std::shared_ptr<card_clock> clock,
                                                                           std::string source) {
  if (!clock) return fail(errc::invalid_argument, "offload description " + source + ": no clock given");
  auto desc = parse_card_description(json_text);
  if (!desc) return fail(std::move(desc.error()).in("offload description " + source));
  const mono_time now = clock->now();
  std::vector<emulated_card> cards;
  for (const auto& d : *desc) {
    auto c = emulated_card::make(d, now);
    if (!c) return fail(std::move(c.error()).in("offload description " + source));
    cards.push_back(std::move(*c));
  }
  // Instance UUIDs are keys across the whole backend.
  for (std::size_t i = 0; i < cards.size(); ++i)
    for (const auto& inst : cards[i].instances())
      for (std::size_t j = 0; j < i; ++j)
        if (cards[j].find_instance(inst.uuid))
          return fail(errc::already_exists, "offload description " + source + ": instance " + inst.uuid.to_string() +
                                                " is on two cards (" + cards[j].identity().pci_address + ", " +
                                                cards[i].identity().pci_address + ")");
  return std::unique_ptr<backend>(new backend(std::move(cards), std::move(clock), std::move(source)));
}

result<std::unique_ptr<backend>> backend::open(const std::string& path,
                                                                                std::shared_ptr<card_clock> clock) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string leaf = slash == std::string::npos ? path : path.substr(slash + 1);
  if (auto v = validate_name(leaf, "offload description file name"); !v) return fail(std::move(v.error()));
  auto root = rooted_dir::open(dir);
  if (!root) return fail(std::move(root.error()).in("offload description " + path));
  auto text_ = root->read_file(leaf, 16u << 20);
  if (!text_) return fail(std::move(text_.error()).in("offload description " + path));
  return make(*text_, std::move(clock), path);
}

result<host_capacity> backend::capacity() {
  host_capacity h;
  std::uint64_t cpus = 0;
  for (const auto& c : cards_)
    for (const auto& i : c.instances()) {
      if (i.board_cpus) cpus += *i.board_cpus;
      if (i.board_memory) {
        auto m = h.memory.checked_add(*i.board_memory);
        if (!m) return fail(errc::overflow, "offload: compute boards' memory does not fit 64 bits");
        h.memory = *m;
      }
    }
  if (cpus > UINT32_MAX) return fail(errc::overflow, "offload: compute boards' CPUs do not fit 32 bits");
  h.cpus = static_cast<std::uint32_t>(cpus);
  h.cpu_model = "compute boards behind offload cards";
  return h;
}

namespace {

instance_info info_of(const emulated_card& card, const instance_config& i, const card_view& view,
                      const std::string& source) {
  instance_info info;
  info.id = instance_id{i.uuid, i.state == instance_state::running || i.state == instance_state::paused
                                  ? std::optional<incarnation>{i.incarnation}
                                  : std::nullopt};
  info.name = i.name;
  info.source = source + "#" + card.identity().pci_address;
  info.kind = i.isolation == isolation_level::bare_metal ? instance_kind::bare_metal : instance_kind::vm;
  info.state = i.state;
  info.isolation = i.isolation;
  info.qos = i.qos;
  info.tenant = i.tenant;
  info.persistent = true;
  std::vector<const function_view*> fns;
  for (const auto& f : view.functions)
    if (f.instance == i.uuid) fns.push_back(&f);
  // A bare-metal instance has its own board: dedicated CPU and memory.
  detail::set_modes(info, fns, i.isolation == isolation_level::bare_metal);
  return info;
}

}  // namespace

result<std::vector<instance_info>> backend::discover() {
  const mono_time now = clock_->now();
  std::vector<instance_info> out;
  for (auto& c : cards_) {
    const card_view v = c.snapshot(now);
    for (const auto& i : c.instances()) out.push_back(info_of(c, i, v, source_));
  }
  return out;
}

result<backend::located> backend::locate(const instance_info& instance) {
  for (auto& c : cards_)
    if (const auto* i = c.find_instance(instance.id.uuid)) return located{&c, i};
  return fail(errc::not_found, "offload " + source_ + ": no instance " + instance.id.uuid.to_string() + " (" +
                                   bulkhead::detail::quote(instance.name) + ") on any card");
}

result<instance_reading> backend::read(const instance_info& instance) {
  auto loc = locate(instance);
  if (!loc) return fail(std::move(loc.error()));
  const mono_time now = clock_->now();
  const card_view v = loc.value().card->snapshot(now);
  const auto& i = *loc.value().instance;
  instance_reading r;
  r.info = info_of(*loc.value().card, i, v, source_);
  r.usage.read_at = now;
  r.usage.wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  std::vector<const function_view*> fns;
  for (const auto& f : v.functions)
    if (f.instance == i.uuid) fns.push_back(&f);
  for (const auto* f : fns) {
    if (f->type == function_type::virtio_net) {
      r.enforced.interfaces.push_back(detail::interface_of(*f));
      r.usage.interfaces.push_back(detail::interface_counters_of(*f));
    } else {
      r.enforced.disks.push_back(detail::disk_of(*f));
      r.usage.disks.push_back(detail::disk_counters_of(*f));
    }
  }
  if (i.board_cpus) {
    r.enforced.cpu.vcpus = *i.board_cpus;
    r.enforced.cpu.max_vcpus = *i.board_cpus;
  }
  if (i.board_memory) r.enforced.memory.max = *i.board_memory;
  detail::add_unsupported(r.unsupported, fns);
  return r;
}

result<apply_report> backend::apply(const instance_info& instance, const quota_spec& spec) {
  if (auto v = validate(spec); !v) return fail(std::move(v.error()).in("offload apply to " + instance.id.uuid.to_string()));
  auto loc = locate(instance);
  if (!loc) return fail(std::move(loc.error()));
  auto& card = *loc.value().card;
  const auto& inst = *loc.value().instance;
  const mono_time now = clock_->now();
  apply_report rep;

  // --- knobs outside interfaces[] and disks[] --------------------------------
  const auto& c = spec.cpu;
  const auto& m = spec.memory;
  const auto board_fixed = [&](const char* name, bool set, bool equal, const std::string& have) {
    if (!set) return;
    if (equal) return;
    rep.failed.push_back({name, error(errc::invalid_argument, std::string(name) + ": a bare-metal board has " + have +
                                                                  "; the card cannot resize it")});
  };
  if (inst.board_cpus) {
    const auto n = *inst.board_cpus;
    board_fixed("cpu.vcpus", c.vcpus.has_value(), c.vcpus == n, std::to_string(n) + " CPUs");
    board_fixed("cpu.max_vcpus", c.max_vcpus.has_value(), c.max_vcpus == n, std::to_string(n) + " CPUs");
    if (c.request && c.request->count() > static_cast<std::uint64_t>(n) * millicores_per_core)
      rep.failed.push_back({"cpu.request", error(errc::insufficient_capacity,
                                                 "cpu.request: " + text(*c.request) + " is above the board's " +
                                                     std::to_string(n) + " CPUs")});
  } else {
    if (c.vcpus) rep.unsupported.emplace_back("cpu.vcpus");
    if (c.max_vcpus) rep.unsupported.emplace_back("cpu.max_vcpus");
    if (c.request) rep.unsupported.emplace_back("cpu.request");
  }
  if (inst.board_memory) {
    const auto b = *inst.board_memory;
    board_fixed("memory.max", m.max.has_value(), m.max == b, text(b));
    board_fixed("memory.current", m.current.has_value(), m.current == b, text(b));
    if (m.request && *m.request > b)
      rep.failed.push_back({"memory.request", error(errc::insufficient_capacity, "memory.request: " + text(*m.request) +
                                                                                     " is above the board's " + text(b))});
  } else {
    if (m.max) rep.unsupported.emplace_back("memory.max");
    if (m.current) rep.unsupported.emplace_back("memory.current");
    if (m.request) rep.unsupported.emplace_back("memory.request");
  }
  const std::pair<const char*, bool> others[] = {
      {"cpu.shares", c.shares.has_value()},
      {"cpu.weight", c.weight.has_value()},
      {"cpu.period", c.period.has_value()},
      {"cpu.quota", c.quota.has_value()},
      {"cpu.emulator_period", c.emulator_period.has_value()},
      {"cpu.emulator_quota", c.emulator_quota.has_value()},
      {"cpu.burst", c.burst.has_value()},
      {"cpu.vcpu_pins", c.vcpu_pins.has_value()},
      {"cpu.emulator_pin", c.emulator_pin.has_value()},
      {"cpu.cpus", c.cpus.has_value()},
      {"cpu.mems", c.mems.has_value()},
      {"memory.hard_limit", m.hard_limit.has_value()},
      {"memory.soft_limit", m.soft_limit.has_value()},
      {"memory.swap_hard_limit", m.swap_hard_limit.has_value()},
      {"memory.high", m.high.has_value()},
      {"memory.min", m.min.has_value()},
      {"memory.low", m.low.has_value()},
      {"memory.numa", m.numa.has_value()},
      {"blkio_weight", spec.blkio_weight.has_value()},
      {"llc", spec.llc.has_value()},
      {"memory_bandwidth", spec.memory_bandwidth.has_value()},
  };
  for (const auto& [name, set] : others)
    if (set) rep.unsupported.emplace_back(name);

  // --- interfaces[] and disks[]: the new QoS of each function ----------------
  struct pending_change {
    std::size_t index;
    function_qos qos;
  };
  std::vector<pending_change> changes;
  const auto qos_for = [&](std::size_t idx) -> function_qos& {
    for (auto& p : changes)
      if (p.index == idx) return p.qos;
    changes.push_back({idx, card.function(idx).qos});
    return changes.back().qos;
  };
  const auto find_fn = [&](function_type t, const std::string& key) -> std::optional<std::size_t> {
    for (std::size_t k = 0; k < card.function_count(); ++k) {
      const auto& f = card.function(k);
      if (f.instance != inst.uuid || f.type != t) continue;
      if (t == function_type::virtio_net ? f.mac == key : (f.target == key || (f.target.empty() && f.address == key)))
        return k;
    }
    return std::nullopt;
  };
  for (const auto& iface : spec.interfaces) {
    const std::string name = "interfaces['" + iface.mac + "']";
    auto idx = find_fn(function_type::virtio_net, iface.mac);
    if (!idx) {
      rep.failed.push_back({name, error(errc::not_found, name + ": instance " + inst.uuid.to_string() +
                                                            " has no virtio_net function with this MAC")});
      continue;
    }
    auto& q = qos_for(*idx);
    for (auto [want, dir, dn] : {std::tuple{&iface.inbound, &q.rx, ".inbound"}, std::tuple{&iface.outbound, &q.tx, ".outbound"}}) {
      if (!*want) continue;
      const auto& w = **want;
      set_rate(dir->bandwidth, w.average, w.burst);
      if (w.packets) set_rate(dir->packets, *w.packets, std::optional<packets>{});
      if (w.peak) rep.unsupported.push_back(name + dn + ".peak");
      if (w.floor) rep.unsupported.push_back(name + dn + ".floor");
    }
  }
  for (const auto& d : spec.disks) {
    const std::string name = "disks['" + d.target + "']";
    auto idx = find_fn(function_type::virtio_blk, d.target);
    if (!idx) {
      rep.failed.push_back({name, error(errc::not_found, name + ": instance " + inst.uuid.to_string() +
                                                            " has no virtio_blk function with this target")});
      continue;
    }
    auto& q = qos_for(*idx);
    if (d.total_bytes_sec) set_rate(q.disk_bandwidth, *d.total_bytes_sec, std::optional<bytes>{});
    if (d.total_iops_sec) set_rate(q.disk_iops, *d.total_iops_sec, std::optional<operations>{});
    const std::pair<const char*, const knob<limit<bytes_per_second>>*> bps[] = {
        {".read_bytes_sec", &d.read_bytes_sec},         {".write_bytes_sec", &d.write_bytes_sec},
        {".total_bytes_sec_max", &d.total_bytes_sec_max}, {".read_bytes_sec_max", &d.read_bytes_sec_max},
        {".write_bytes_sec_max", &d.write_bytes_sec_max}};
    const std::pair<const char*, const knob<limit<ops_per_second>>*> ops[] = {
        {".read_iops_sec", &d.read_iops_sec},         {".write_iops_sec", &d.write_iops_sec},
        {".total_iops_sec_max", &d.total_iops_sec_max}, {".read_iops_sec_max", &d.read_iops_sec_max},
        {".write_iops_sec_max", &d.write_iops_sec_max}};
    // Unlimited is what the card has for these: only a bound is unsupported.
    for (const auto& [k, v] : bps)
      if (*v && (*v)->is_bounded()) rep.unsupported.push_back(name + k);
    for (const auto& [k, v] : ops)
      if (*v && (*v)->is_bounded()) rep.unsupported.push_back(name + k);
    if (d.weight) rep.unsupported.push_back(name + ".weight");
  }

  // --- commit each function all-or-nothing ------------------------------------
  for (const auto& ch : changes) {
    const auto& f = card.function(ch.index);
    const function_qos before = f.qos;
    if (before == ch.qos) continue;
    std::vector<knob_change> delta;
    if (f.type == function_type::virtio_net) {
      const std::string n = "interfaces['" + f.mac + "']";
      diff(delta, n + ".inbound", before.rx.bandwidth, ch.qos.rx.bandwidth, ".average", ".burst");
      diff(delta, n + ".inbound", before.rx.packets, ch.qos.rx.packets, ".packets", nullptr);
      diff(delta, n + ".outbound", before.tx.bandwidth, ch.qos.tx.bandwidth, ".average", ".burst");
      diff(delta, n + ".outbound", before.tx.packets, ch.qos.tx.packets, ".packets", nullptr);
    } else {
      const std::string n = "disks['" + (f.target.empty() ? f.address : f.target) + "']";
      diff(delta, n, before.disk_bandwidth, ch.qos.disk_bandwidth, ".total_bytes_sec", nullptr);
      diff(delta, n, before.disk_iops, ch.qos.disk_iops, ".total_iops_sec", nullptr);
    }
    if (auto r = card.set_qos(ch.index, ch.qos, now); !r) {
      for (const auto& k : delta) rep.failed.push_back({k.knob, r.error()});
      continue;
    }
    for (auto& k : delta) rep.changed.push_back(std::move(k));
  }
  return rep;
}

result<std::vector<card_view>> backend::cards() {
  const mono_time now = clock_->now();
  std::vector<card_view> out;
  out.reserve(cards_.size());
  for (auto& c : cards_) out.push_back(c.snapshot(now));
  return out;
}

}  // namespace bulkhead::offload
