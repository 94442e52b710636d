// bulkhead/accounting/rollup_json.hpp: rollups as JSON (nlohmann/json).
//
// Every number is an integer. 128-bit totals (every *_ns, *_bytes and
// *_byte_ns field) are decimal strings, since JSON readers commonly hold
// numbers in doubles; counts (resets, wraps, gaps, deltas) are JSON integers.
// Times: mono times as integer nanoseconds, hours as Unix seconds of the UTC
// hour's start plus its ISO-8601 text. Layout in docs/accounting.md.
//
// Thread-safety: functions of their arguments.
#pragma once

#include <nlohmann/json.hpp>

#include <ctime>
#include <string>

#include "bulkhead/accounting/rollup.hpp"
#include "bulkhead/model/enums.hpp"

namespace bulkhead::accounting {

// The per-instance `accounted` object: cpu_time_ns, disk_read_bytes,
// disk_write_bytes, net_rx_bytes, net_tx_bytes, vcpu_reserved_ns,
// memory_reserved_byte_ns (strings), resets, wraps, gaps, deltas (integers).
inline void to_json(nlohmann::json& j, const accounted_totals& t) {
  j = nlohmann::json{
      {"cpu_time_ns", to_decimal(t.cpu_time_ns)},
      {"disk_read_bytes", to_decimal(t.disk_read_bytes)},
      {"disk_write_bytes", to_decimal(t.disk_write_bytes)},
      {"net_rx_bytes", to_decimal(t.net_rx_bytes)},
      {"net_tx_bytes", to_decimal(t.net_tx_bytes)},
      {"vcpu_reserved_ns", to_decimal(t.vcpu_reserved_ns)},
      {"memory_reserved_byte_ns", to_decimal(t.memory_reserved_byte_ns)},
      {"resets", t.resets},
      {"wraps", t.wraps},
      {"gaps", t.gaps},
      {"deltas", t.deltas},
  };
}

[[nodiscard]] inline std::string utc_hour_text(std::int64_t hour) {
  const std::time_t t = static_cast<std::time_t>(hour);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:00:00Z", &tm);
  return b;
}

namespace detail {
inline void put_labels(nlohmann::json& j, const instance_labels& l) {
  j["name"] = l.name;
  j["tenant"] = l.tenant ? nlohmann::json(*l.tenant) : nlohmann::json(nullptr);
  j["qos_class"] = l.qos ? nlohmann::json(std::string(to_string(*l.qos))) : nlohmann::json(nullptr);
}
}  // namespace detail

// nlohmann::json j = rollup;  (found by ADL)
// {"instances": [...], "incarnations": [...], "tenants": [...],
//  "qos_classes": [...], "hours": [...], "gaps": [...], "total": {...}}
inline void to_json(nlohmann::json& doc, const rollup& r) {
  nlohmann::json out = nlohmann::json::object();
  auto& inst = out["instances"] = nlohmann::json::array();
  for (const auto& i : r.by_instance()) {
    nlohmann::json j{{"uuid", i.uuid.to_string()}, {"incarnations", i.incarnations}};
    detail::put_labels(j, i.labels);
    j["accounted"] = nlohmann::json(i.totals);
    inst.push_back(std::move(j));
  }
  auto& inc = out["incarnations"] = nlohmann::json::array();
  for (const auto& i : r.by_incarnation()) {
    nlohmann::json j{{"uuid", i.uuid.to_string()}, {"source", i.source}, {"incarnation", i.incarnation.value},
                     {"first_start_ns", i.first_start}, {"last_end_ns", i.last_end}};
    detail::put_labels(j, i.labels);
    j["accounted"] = nlohmann::json(i.totals);
    inc.push_back(std::move(j));
  }
  auto& ten = out["tenants"] = nlohmann::json::array();
  for (const auto& t : r.by_tenant())
    ten.push_back({{"tenant", t.tenant ? nlohmann::json(*t.tenant) : nlohmann::json(nullptr)},
                   {"accounted", nlohmann::json(t.totals)}});
  auto& qos = out["qos_classes"] = nlohmann::json::array();
  for (const auto& q : r.by_qos())
    qos.push_back({{"qos_class", q.qos ? nlohmann::json(std::string(to_string(*q.qos))) : nlohmann::json(nullptr)},
                   {"accounted", nlohmann::json(q.totals)}});
  auto& hours = out["hours"] = nlohmann::json::array();
  for (const auto& h : r.by_hour())
    hours.push_back({{"hour", h.hour}, {"utc", utc_hour_text(h.hour)}, {"accounted", nlohmann::json(h.totals)}});
  auto& gaps = out["gaps"] = nlohmann::json::array();
  for (const auto& g : r.gaps())
    gaps.push_back({{"uuid", g.uuid.to_string()}, {"source", g.source}, {"start_ns", ns_of(g.start)},
                    {"end_ns", ns_of(g.end)}, {"failures", g.failures}, {"reason", g.reason}});
  out["total"] = nlohmann::json(r.total());
  doc = std::move(out);
}

}  // namespace bulkhead::accounting
