// bulkhead/backend/offload/detail/emulated_card_impl.hpp (internal): the emulated card's definitions;
// the contract is in bulkhead/backend/offload/emulated_card.hpp.
#pragma once

#include "bulkhead/backend/offload/emulated_card.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

#include "bulkhead/model/names.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead::offload {

namespace detail {

inline std::string fn_what(const std::string& address) { return "functions[" + bulkhead::detail::quote(address) + "]"; }

template <class Amount, class Rate>
result<void> check_rate_qos(const rate_qos<Amount, Rate>& q, const std::string& what) {
  const auto& b = q.bucket;
  if (b.rate.is_unlimited()) {
    if (b.burst.count() != 0 || b.one_time_burst.count() != 0)
      return fail(errc::invalid_argument, what + ": burst or one_time_burst given without a rate");
    if (q.guaranteed.count() != 0)
      return fail(errc::invalid_argument,
                  what + ".guaranteed: " + std::to_string(q.guaranteed.count()) + " " +
                      std::string(Rate::symbol()) + " needs a rate limit to be enforced against");
    return {};
  }
  auto core = bucket_core::make(b.rate.value().count(), b.burst.count(), b.one_time_burst.count(), mono_time{}, what);
  if (!core) return fail(std::move(core.error()));
  if (q.guaranteed > b.rate.value())
    return fail(errc::invalid_argument, what + ".guaranteed: " + std::to_string(q.guaranteed.count()) + " " +
                                            std::string(Rate::symbol()) + " is above the limit of " +
                                            std::to_string(b.rate.value().count()));
  return {};
}

template <class Amount, class Rate>
bool is_unlimited(const rate_qos<Amount, Rate>& q) {
  return q.bucket.rate.is_unlimited() && q.guaranteed.count() == 0 && q.bucket.burst.count() == 0 &&
         q.bucket.one_time_burst.count() == 0;
}

template <class Amount, class Rate>
result<std::optional<bucket_core>> make_bucket(const rate_qos<Amount, Rate>& q, mono_time now, const std::string& what) {
  if (q.bucket.rate.is_unlimited()) return std::optional<bucket_core>{};
  auto core = bucket_core::make(q.bucket.rate.value().count(), q.bucket.burst.count(),
                                q.bucket.one_time_burst.count(), now, what);
  if (!core) return fail(std::move(core.error()));
  return std::optional<bucket_core>{*core};
}

template <class Amount, class Rate>
result<void> retune_bucket(std::optional<bucket_core>& b, const rate_qos<Amount, Rate>& q, mono_time now,
                           const std::string& what) {
  if (q.bucket.rate.is_unlimited()) {
    b.reset();
    return {};
  }
  if (!b) {
    auto fresh = make_bucket(q, now, what);
    if (!fresh) return fail(std::move(fresh.error()));
    b = *fresh;
    return {};
  }
  return b->reconfigure(q.bucket.rate.value().count(), q.bucket.burst.count(), now, what);
}

}  // namespace detail

inline result<emulated_card> emulated_card::make(card_identity identity, card_capacity capacity, mono_time start) {
  if (identity.pci_address.empty()) return fail(errc::invalid_argument, "card: empty pci_address");
  if (identity.model.empty())
    return fail(errc::invalid_argument, "card " + identity.pci_address + ": empty model");
  return emulated_card(std::move(identity), capacity, start);
}

inline result<void> emulated_card::add_instance(instance_config instance) {
  const std::string w = "instances[" + instance.uuid.to_string() + "]";
  if (instance.uuid.is_nil()) return fail(errc::invalid_argument, "instance " + bulkhead::detail::quote(instance.name) + ": nil uuid");
  if (find_instance(instance.uuid))
    return fail(errc::already_exists, w + ": uuid already on card " + identity_.pci_address);
  if (instance.isolation != isolation_level::bare_metal && instance.isolation != isolation_level::vm_offload)
    return fail(errc::invalid_argument, w + ".isolation: " + std::string(to_string(instance.isolation)) +
                                            "; a card's instances are bare_metal or vm_offload");
  if (instance.isolation == isolation_level::vm_offload && (instance.board_cpus || instance.board_memory))
    return fail(errc::invalid_argument, w + ".board: only a bare_metal instance has a compute board");
  if (instance.board_cpus && *instance.board_cpus == 0)
    return fail(errc::out_of_range, w + ".board.cpus: 0; a board has at least 1 CPU");
  if (instance.board_memory && instance.board_memory->count() == 0)
    return fail(errc::out_of_range, w + ".board.memory: 0 bytes");
  instances_.push_back(std::move(instance));
  return {};
}

inline const instance_config* emulated_card::find_instance(const uuid& id) const noexcept {
  for (const auto& i : instances_)
    if (i.uuid == id) return &i;
  return nullptr;
}

inline std::optional<std::size_t> emulated_card::find_function(std::string_view address) const noexcept {
  for (std::size_t i = 0; i < functions_.size(); ++i)
    if (functions_[i].config.address == address) return i;
  return std::nullopt;
}

inline result<void> emulated_card::check_function(const function_config& c) const {
  if (auto v = validate_name(c.address, "function address"); !v) return fail(std::move(v.error()));
  const std::string w = detail::fn_what(c.address);
  if (!c.target.empty())
    if (auto v = validate_name(c.target, w + ".target"); !v) return fail(std::move(v.error()));
  if (c.queue_depth > max_queue_depth)
    return fail(errc::out_of_range, w + ".queue_depth: " + std::to_string(c.queue_depth) + " is above " +
                                        std::to_string(max_queue_depth));
  if (c.instance && !find_instance(*c.instance))
    return fail(errc::not_found, w + ".instance: no instance " + c.instance->to_string() + " on card " +
                                     identity_.pci_address);
  if (c.form == function_form::sriov_vf && !c.parent)
    return fail(errc::invalid_argument, w + ": an SR-IOV VF needs its parent (the PF's address)");
  const auto& q = c.qos;
  if (c.type == function_type::virtio_net) {
    if (!c.mac.empty() && !bulkhead::detail::valid_mac(c.mac))
      return fail(errc::invalid_argument, w + ".mac: " + bulkhead::detail::quote(c.mac) +
                                              " is not a lower-case MAC address (aa:bb:cc:dd:ee:ff)");
    if (!detail::is_unlimited(q.disk_bandwidth) || !detail::is_unlimited(q.disk_iops))
      return fail(errc::invalid_argument, w + ": disk QoS on a virtio_net function (it has rx and tx)");
    for (auto [d, name] : {std::pair{&q.rx, ".qos.rx"}, std::pair{&q.tx, ".qos.tx"}}) {
      if (auto r = detail::check_rate_qos(d->bandwidth, w + name + ".bandwidth"); !r) return r;
      if (auto r = detail::check_rate_qos(d->packets, w + name + ".packets"); !r) return r;
    }
  } else {
    if (!c.mac.empty()) return fail(errc::invalid_argument, w + ".mac: a virtio_blk function has no MAC address");
    if (!detail::is_unlimited(q.rx.bandwidth) || !detail::is_unlimited(q.rx.packets) || !detail::is_unlimited(q.tx.bandwidth) ||
        !detail::is_unlimited(q.tx.packets))
      return fail(errc::invalid_argument, w + ": rx/tx QoS on a virtio_blk function (it has bandwidth and iops)");
    if (auto r = detail::check_rate_qos(q.disk_bandwidth, w + ".qos.bandwidth"); !r) return r;
    if (auto r = detail::check_rate_qos(q.disk_iops, w + ".qos.iops"); !r) return r;
  }
  return {};
}

inline std::vector<capacity_shortfall> emulated_card::shortfall(std::size_t index, const function_qos& qos,
                                                         const std::optional<uuid>& instance) const {
  // Sums in 128 bits: no overflow whatever the inputs.
  u128 sums[6] = {0, 0, 0, 0, 0, 0};
  const auto add = [&](const function_qos& q) {
    sums[0] += q.rx.bandwidth.guaranteed.count();
    sums[1] += q.tx.bandwidth.guaranteed.count();
    sums[2] += q.rx.packets.guaranteed.count();
    sums[3] += q.tx.packets.guaranteed.count();
    sums[4] += q.disk_bandwidth.guaranteed.count();
    sums[5] += q.disk_iops.guaranteed.count();
  };
  for (std::size_t i = 0; i < functions_.size(); ++i)
    if (i != index && functions_[i].config.instance) add(functions_[i].config.qos);
  if (instance) add(qos);
  const std::uint64_t caps[6] = {capacity_.net_bandwidth.count(), capacity_.net_bandwidth.count(),
                                 capacity_.net_packets.count(),   capacity_.net_packets.count(),
                                 capacity_.disk_bandwidth.count(), capacity_.disk_iops.count()};
  static constexpr const char* names[6] = {"net_bandwidth.rx", "net_bandwidth.tx", "net_packets.rx",
                                           "net_packets.tx",   "disk_bandwidth",   "disk_iops"};
  static constexpr const char* units[6] = {"bytes_sec", "bytes_sec", "packets_sec", "packets_sec", "bytes_sec", "ops_sec"};
  std::vector<capacity_shortfall> out;
  const auto sat = [](u128 v) {
    return v > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(v);
  };
  for (int k = 0; k < 6; ++k)
    if (sums[k] > caps[k])
      out.push_back(capacity_shortfall{names[k], units[k], sat(sums[k]), caps[k], sat(sums[k] - caps[k])});
  const std::uint64_t count = functions_.size() + (index >= functions_.size() ? 1 : 0);
  if (count > capacity_.functions)
    out.push_back(capacity_shortfall{"functions", "functions", count, capacity_.functions, count - capacity_.functions});
  return out;
}

inline card_guarantees emulated_card::guaranteed() const noexcept {
  card_guarantees g;
  g.functions = static_cast<std::uint32_t>(functions_.size());
  for (const auto& f : functions_) {
    if (!f.config.instance) continue;
    ++g.bound_functions;
    const auto& q = f.config.qos;
    g.net_bandwidth_rx += q.rx.bandwidth.guaranteed;
    g.net_bandwidth_tx += q.tx.bandwidth.guaranteed;
    g.net_packets_rx += q.rx.packets.guaranteed;
    g.net_packets_tx += q.tx.packets.guaranteed;
    g.disk_bandwidth += q.disk_bandwidth.guaranteed;
    g.disk_iops += q.disk_iops.guaranteed;
  }
  return g;
}

inline result<void> emulated_card::build_lanes(function_state& f, mono_time now) const {
  const auto& q = f.config.qos;
  const std::string w = detail::fn_what(f.config.address);
  const auto set = [&](lane& l, auto& bytes_q, auto& count_q, const std::string& name) -> result<void> {
    auto b = detail::make_bucket(bytes_q, now, w + name + ".bandwidth");
    if (!b) return fail(std::move(b.error()));
    auto c = detail::make_bucket(count_q, now, w + name + (f.config.type == function_type::virtio_net ? ".packets" : ".iops"));
    if (!c) return fail(std::move(c.error()));
    l.byte_bucket = *b;
    l.count_bucket = *c;
    l.queue.reset(f.config.queue_depth);
    return {};
  };
  if (f.config.type == function_type::virtio_net) {
    if (auto r = set(f.rx, q.rx.bandwidth, q.rx.packets, ".qos.rx"); !r) return r;
    if (auto r = set(f.tx, q.tx.bandwidth, q.tx.packets, ".qos.tx"); !r) return r;
  } else {
    if (auto r = set(f.disk, q.disk_bandwidth, q.disk_iops, ".qos"); !r) return r;
  }
  return {};
}

inline result<void> emulated_card::retune_lanes(function_state& f, const function_qos& q, mono_time now) const {
  const std::string w = detail::fn_what(f.config.address);
  if (f.config.type == function_type::virtio_net) {
    for (auto [l, d, name] : {std::tuple{&f.rx, &q.rx, ".qos.rx"}, std::tuple{&f.tx, &q.tx, ".qos.tx"}}) {
      if (auto r = detail::retune_bucket(l->byte_bucket, d->bandwidth, now, w + name + ".bandwidth"); !r) return r;
      if (auto r = detail::retune_bucket(l->count_bucket, d->packets, now, w + name + ".packets"); !r) return r;
    }
  } else {
    if (auto r = detail::retune_bucket(f.disk.byte_bucket, q.disk_bandwidth, now, w + ".qos.bandwidth"); !r) return r;
    if (auto r = detail::retune_bucket(f.disk.count_bucket, q.disk_iops, now, w + ".qos.iops"); !r) return r;
  }
  return {};
}

inline result<std::size_t> emulated_card::add_function(function_config function) {
  if (auto r = check_function(function); !r) return fail(std::move(r.error()).in("card " + identity_.pci_address));
  if (find_function(function.address))
    return fail(errc::already_exists, "card " + identity_.pci_address + ": function " +
                                          bulkhead::detail::quote(function.address) + " is already on the card");
  auto short_ = shortfall(functions_.size(), function.qos, function.instance);
  if (!short_.empty())
    return fail(errc::insufficient_capacity,
                describe(identity_.pci_address, short_) + " (adding function " + bulkhead::detail::quote(function.address) + ")");
  function_state f;
  f.config = std::move(function);
  if (auto r = build_lanes(f, from_ns(latest_ns_)); !r) return fail(std::move(r.error()));
  functions_.push_back(std::move(f));
  return functions_.size() - 1;
}

inline result<void> emulated_card::set_qos(std::size_t index, const function_qos& qos, mono_time now) {
  if (index >= functions_.size())
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": no function #" + std::to_string(index));
  auto& f = functions_[index];
  function_config probe = f.config;
  probe.qos = qos;
  if (auto r = check_function(probe); !r) return fail(std::move(r.error()).in("card " + identity_.pci_address));
  auto short_ = shortfall(index, qos, f.config.instance);
  if (!short_.empty())
    return fail(errc::insufficient_capacity,
                describe(identity_.pci_address, short_) + " (new QoS of function " + bulkhead::detail::quote(f.config.address) + ")");
  // Validate every bucket before changing any: apply to a copy, then commit.
  function_state copy = f;
  const std::int64_t t = read_time(now);
  if (auto r = retune_lanes(copy, qos, from_ns(t)); !r) return r;
  copy.config.qos = qos;
  f = std::move(copy);
  return {};
}

inline result<void> emulated_card::bind(std::size_t index, std::optional<uuid> instance) {
  if (index >= functions_.size())
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": no function #" + std::to_string(index));
  auto& f = functions_[index];
  if (instance && !find_instance(*instance))
    return fail(errc::not_found, "card " + identity_.pci_address + ": no instance " + instance->to_string());
  auto short_ = shortfall(index, f.config.qos, instance);
  if (!short_.empty())
    return fail(errc::insufficient_capacity,
                describe(identity_.pci_address, short_) + " (binding function " + bulkhead::detail::quote(f.config.address) + ")");
  f.config.instance = instance;
  return {};
}

inline void emulated_card::settle(lane& l, std::int64_t now) noexcept {
  while (l.queue.size() != 0 && l.queue.front().due <= now) {
    const auto& r = l.queue.front();
    --l.pending_count[r.sub];
    l.pending_bytes[r.sub] -= r.size;
    l.queue.pop();
  }
}

inline offer_outcome emulated_card::offer(function_state& f, lane& l, std::int64_t t, std::uint64_t size, std::uint8_t sub) {
  settle(l, t);
  std::int64_t e = t;
  if (l.byte_bucket) e = std::max(e, l.byte_bucket->earliest_ns(t, size));
  if (l.count_bucket) e = std::max(e, l.count_bucket->earliest_ns(t, 1));
  if (e == t) {
    if (l.byte_bucket) l.byte_bucket->commit_ns(t, size);
    if (l.count_bucket) l.count_bucket->commit_ns(t, 1);
    ++l.admitted_count[sub];
    l.admitted_bytes[sub] += size;
    return {offer_outcome::kind::admitted, from_ns(t)};
  }
  ++l.throttled;
  l.throttled_time.add(t, e);
  f.throttled_time.add(t, e);
  if (l.queue.size() >= l.queue.capacity()) {
    ++l.drops;
    return {offer_outcome::kind::dropped, from_ns(e)};
  }
  if (l.byte_bucket) l.byte_bucket->commit_ns(e, size);
  if (l.count_bucket) l.count_bucket->commit_ns(e, 1);
  ++l.admitted_count[sub];
  l.admitted_bytes[sub] += size;
  ++l.pending_count[sub];
  l.pending_bytes[sub] += size;
  l.queue.push(pending_req{e, size, sub});
  return {offer_outcome::kind::delayed, from_ns(e)};
}

inline result<offer_outcome> emulated_card::offer_net(std::size_t index, direction d, bytes size, mono_time at) {
  if (index >= functions_.size())
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": no function #" + std::to_string(index));
  auto& f = functions_[index];
  if (f.config.type != function_type::virtio_net)
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": function " +
                                            bulkhead::detail::quote(f.config.address) + " is virtio_blk, not virtio_net");
  if (size.count() > max_request_cost)
    return fail(errc::out_of_range, "packet of " + std::to_string(size.count()) + " bytes is above " +
                                        std::to_string(max_request_cost));
  const std::int64_t t = to_ns(at);
  if (t < latest_ns_)
    return fail(errc::out_of_range, "card " + identity_.pci_address + ": offer at " + std::to_string(t) +
                                        " ns is before the card's latest event at " + std::to_string(latest_ns_) + " ns");
  latest_ns_ = t;
  return offer(f, d == direction::rx ? f.rx : f.tx, t, size.count(), 0);
}

inline result<offer_outcome> emulated_card::offer_disk(std::size_t index, io_kind k, bytes size, mono_time at) {
  if (index >= functions_.size())
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": no function #" + std::to_string(index));
  auto& f = functions_[index];
  if (f.config.type != function_type::virtio_blk)
    return fail(errc::invalid_argument, "card " + identity_.pci_address + ": function " +
                                            bulkhead::detail::quote(f.config.address) + " is virtio_net, not virtio_blk");
  if (size.count() > max_request_cost)
    return fail(errc::out_of_range, "request of " + std::to_string(size.count()) + " bytes is above " +
                                        std::to_string(max_request_cost));
  const std::int64_t t = to_ns(at);
  if (t < latest_ns_)
    return fail(errc::out_of_range, "card " + identity_.pci_address + ": offer at " + std::to_string(t) +
                                        " ns is before the card's latest event at " + std::to_string(latest_ns_) + " ns");
  latest_ns_ = t;
  return offer(f, f.disk, t, size.count(), k == io_kind::read ? 0 : 1);
}

inline std::int64_t emulated_card::read_time(mono_time now) noexcept {
  const std::int64_t t = to_ns(now);
  if (t > latest_ns_) latest_ns_ = t;
  return latest_ns_;
}

inline function_counters emulated_card::counters_of(function_state& f, std::int64_t now) {
  function_counters c;
  c.throttled_time = nanoseconds{static_cast<std::int64_t>(f.throttled_time.until(now))};
  if (f.config.type == function_type::virtio_net) {
    for (auto [l, out] : {std::pair{&f.rx, &c.rx}, std::pair{&f.tx, &c.tx}}) {
      settle(*l, now);
      out->byte_count = bytes{l->admitted_bytes[0] - l->pending_bytes[0]};
      out->packet_count = packets{l->admitted_count[0] - l->pending_count[0]};
      out->errors = packets{0};
      out->drops = packets{l->drops};
      out->throttled = packets{l->throttled};
      out->throttled_time = nanoseconds{static_cast<std::int64_t>(l->throttled_time.until(now))};
    }
  } else {
    auto& l = f.disk;
    settle(l, now);
    c.disk.read_requests = operations{l.admitted_count[0] - l.pending_count[0]};
    c.disk.write_requests = operations{l.admitted_count[1] - l.pending_count[1]};
    c.disk.read_bytes = bytes{l.admitted_bytes[0] - l.pending_bytes[0]};
    c.disk.write_bytes = bytes{l.admitted_bytes[1] - l.pending_bytes[1]};
    c.disk.errors = operations{0};
    c.disk.drops = operations{l.drops};
    c.disk.throttled = operations{l.throttled};
    c.disk.throttled_time = nanoseconds{static_cast<std::int64_t>(l.throttled_time.until(now))};
  }
  return c;
}

inline function_counters emulated_card::counters(std::size_t index, mono_time now) {
  const std::int64_t t = read_time(now);
  return counters_of(functions_.at(index), t);
}

inline card_view emulated_card::snapshot(mono_time now) {
  const std::int64_t t = read_time(now);
  card_view v;
  v.identity = identity_;
  v.capacity = capacity_;
  v.guaranteed = guaranteed();
  for (auto& f : functions_) {
    function_view fv;
    const auto& c = f.config;
    fv.address = c.address;
    fv.type = c.type;
    fv.form = c.form;
    fv.parent = c.parent;
    fv.vf_index = c.vf_index;
    fv.instance = c.instance;
    fv.mac = c.mac;
    fv.target = c.target;
    fv.queue_depth = c.queue_depth;
    if (c.type == function_type::virtio_net) {
      fv.qos.rx_bandwidth = view_of(c.qos.rx.bandwidth);
      fv.qos.tx_bandwidth = view_of(c.qos.tx.bandwidth);
      fv.qos.rx_packets = view_of(c.qos.rx.packets);
      fv.qos.tx_packets = view_of(c.qos.tx.packets);
    } else {
      fv.qos.disk_bandwidth = view_of(c.qos.disk_bandwidth);
      fv.qos.disk_iops = view_of(c.qos.disk_iops);
    }
    fv.counters = counters_of(f, t);
    v.functions.push_back(std::move(fv));
  }
  return v;
}

}  // namespace bulkhead::offload
