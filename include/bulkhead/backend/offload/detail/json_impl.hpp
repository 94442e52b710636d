// bulkhead/backend/offload/detail/json_impl.hpp (internal): the JSON form of cards;
// the contract is in bulkhead/backend/offload/json.hpp.
#pragma once

#include "bulkhead/backend/offload/json.hpp"

namespace bulkhead::offload {

namespace detail {

using json = nlohmann::json;

template <class Q>
json q(const knob<Q>& k) {
  return k ? json(k->count()) : json(nullptr);
}
template <class Q>
json q(const limit<Q>& l) {
  return l.is_bounded() ? json(l.value().count()) : json(nullptr);
}
inline json ns(const knob<nanoseconds>& k) { return k ? json(k->count()) : json(nullptr); }

template <class Amount, class Rate>
json bucket(const knob<rate_qos_view<Amount, Rate>>& v, const char* rate_key, const char* burst_key,
            const char* otb_key, const char* guar_key) {
  if (!v) return nullptr;
  return json{{rate_key, q(v->rate)}, {burst_key, q(v->burst)}, {otb_key, q(v->one_time_burst)}, {guar_key, q(v->guaranteed)}};
}

inline json errors(const std::vector<error>& es) {
  json a = json::array();
  for (const auto& e : es) a.push_back(json{{"code", std::string(to_string(e.code()))}, {"message", e.describe()}});
  return a;
}

inline json direction_counters(const net_direction_counters& c) {
  return json{{"bytes", q(c.byte_count)},   {"packets", q(c.packet_count)},        {"errors", q(c.errors)},
              {"drops", q(c.drops)},        {"throttled_packets", q(c.throttled)}, {"throttled_ns", ns(c.throttled_time)}};
}

}  // namespace detail

inline void to_json(nlohmann::json& j, const function_view& f) {
  using json = nlohmann::json;
  json o;
  o["address"] = f.address;
  o["type"] = std::string(to_string(f.type));
  o["form"] = std::string(to_string(f.form));
  o["parent"] = f.parent ? json(*f.parent) : json(nullptr);
  o["vf_index"] = f.vf_index ? json(*f.vf_index) : json(nullptr);
  o["driver"] = f.driver ? json(*f.driver) : json(nullptr);
  o["instance"] = f.instance ? json(f.instance->to_string()) : json(nullptr);
  o["mac"] = f.mac.empty() ? json(nullptr) : json(f.mac);
  o["target"] = f.target.empty() ? json(nullptr) : json(f.target);
  o["queue_depth"] = f.queue_depth ? json(*f.queue_depth) : json(nullptr);
  const auto& c = f.counters;
  if (f.type == function_type::virtio_net) {
    o["qos"] = json{
        {"rx", json{{"bandwidth", detail::bucket(f.qos.rx_bandwidth, "rate_bytes_sec", "burst_bytes", "one_time_burst_bytes", "guaranteed_bytes_sec")},
                    {"packets", detail::bucket(f.qos.rx_packets, "rate_packets_sec", "burst_packets", "one_time_burst_packets", "guaranteed_packets_sec")}}},
        {"tx", json{{"bandwidth", detail::bucket(f.qos.tx_bandwidth, "rate_bytes_sec", "burst_bytes", "one_time_burst_bytes", "guaranteed_bytes_sec")},
                    {"packets", detail::bucket(f.qos.tx_packets, "rate_packets_sec", "burst_packets", "one_time_burst_packets", "guaranteed_packets_sec")}}}};
    o["counters"] = json{{"rx", detail::direction_counters(c.rx)}, {"tx", detail::direction_counters(c.tx)}, {"throttled_ns", detail::ns(c.throttled_time)}};
  } else {
    o["qos"] = json{
        {"bandwidth", detail::bucket(f.qos.disk_bandwidth, "rate_bytes_sec", "burst_bytes", "one_time_burst_bytes", "guaranteed_bytes_sec")},
        {"iops", detail::bucket(f.qos.disk_iops, "rate_ops_sec", "burst_ops", "one_time_burst_ops", "guaranteed_ops_sec")}};
    const auto& d = c.disk;
    o["counters"] = json{{"read_requests", detail::q(d.read_requests)},
                         {"write_requests", detail::q(d.write_requests)},
                         {"read_bytes", detail::q(d.read_bytes)},
                         {"write_bytes", detail::q(d.write_bytes)},
                         {"errors", detail::q(d.errors)},
                         {"drops", detail::q(d.drops)},
                         {"throttled_requests", detail::q(d.throttled)},
                         {"throttled_ns", detail::ns(d.throttled_time)}};
  }
  o["problems"] = detail::errors(f.problems);
  j = std::move(o);
}

inline void to_json(nlohmann::json& j, const card_view& c) {
  using json = nlohmann::json;
  json o;
  o["pci_address"] = c.identity.pci_address;
  o["model"] = c.identity.model;
  o["firmware"] = c.identity.firmware.empty() ? json(nullptr) : json(c.identity.firmware);
  if (c.capacity) {
    const auto& k = *c.capacity;
    o["capacity"] = json{{"functions", k.functions},
                         {"net_bandwidth_bytes_sec", k.net_bandwidth.count()},
                         {"net_packets_sec", k.net_packets.count()},
                         {"disk_bandwidth_bytes_sec", k.disk_bandwidth.count()},
                         {"disk_iops", k.disk_iops.count()}};
  } else {
    o["capacity"] = nullptr;
  }
  if (c.guaranteed) {
    const auto& g = *c.guaranteed;
    o["guaranteed"] = json{{"functions", g.functions},
                           {"bound_functions", g.bound_functions},
                           {"net_bandwidth_rx_bytes_sec", g.net_bandwidth_rx.count()},
                           {"net_bandwidth_tx_bytes_sec", g.net_bandwidth_tx.count()},
                           {"net_packets_rx_sec", g.net_packets_rx.count()},
                           {"net_packets_tx_sec", g.net_packets_tx.count()},
                           {"disk_bandwidth_bytes_sec", g.disk_bandwidth.count()},
                           {"disk_iops", g.disk_iops.count()}};
  } else {
    o["guaranteed"] = nullptr;
  }
  o["total_vfs"] = c.total_vfs ? json(*c.total_vfs) : json(nullptr);
  o["enabled_vfs"] = c.enabled_vfs ? json(*c.enabled_vfs) : json(nullptr);
  o["link_bandwidth_bytes_sec"] = detail::q(c.link_bandwidth);
  json fs = json::array();
  for (const auto& f : c.functions) fs.push_back(json(f));
  o["functions"] = std::move(fs);
  o["problems"] = detail::errors(c.problems);
  j = std::move(o);
}

}  // namespace bulkhead::offload
