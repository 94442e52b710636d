// bulkhead/colocation/json.hpp: JSON forms of the co-location explanations
// (nlohmann/json), so "why did batch capacity drop" and "why was BE
// suppressed" can be answered by a program or an operator.
//
// Numbers are integers only; each explanation names its unit ("unit":
// "millicores" or "bytes"); ratios are {"num": n, "den": d}; times are
// {"rfc3339": "...Z", "unix_ns": n}; optional values are null when absent.
//
// Thread-safety: pure functions over values.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/colocation/be_capacity.hpp"
#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/colocation/suppression.hpp"
#include "bulkhead/ledger/rational_json.hpp"

namespace bulkhead::colocation {

namespace detail {
inline nlohmann::json time_json(wall_time t) {
  return nlohmann::json{{"rfc3339", format_rfc3339(t)}, {"unix_ns", t.time_since_epoch().count()}};
}
template <class T, class F>
nlohmann::json opt(const std::optional<T>& v, F&& f) {
  return v ? nlohmann::json(f(*v)) : nlohmann::json(nullptr);
}
}  // namespace detail

inline void to_json(nlohmann::json& j, const window_occurrence& w) {
  j = nlohmann::json{{"name", w.name},
                     {"start", detail::time_json(w.start)},
                     {"end", detail::time_json(w.end)},
                     {"be_fraction", w.be_fraction}};
}

template <class Q>
void to_json(nlohmann::json& j, const be_contributor<Q>& c) {
  j = nlohmann::json{{"id", c.uuid.to_string()},
                     {"qos", std::string(to_string(c.qos))},
                     {"counted", c.counted.count()},
                     {"request", c.request.count()},
                     {"used", detail::opt(c.used, [](Q q) { return q.count(); })}};
}

template <class Q>
void to_json(nlohmann::json& j, const be_explanation<Q>& e) {
  using detail::opt;
  const auto n = [](Q q) { return q.count(); };
  j = nlohmann::json{
      {"resource", std::string(to_string(e.resource))},
      {"unit", std::string(Q::symbol())},
      {"policy", std::string(to_string(e.policy))},
      {"cell", opt(e.cell, [](std::uint32_t c) { return c; })},
      {"formula", "batch = min(max(0, capacity - safety_margin - system_term - hp_term), window_cap)"},
      {"capacity", e.capacity.count()},
      {"reclaim_threshold_percent", e.reclaim_threshold.count()},
      {"safety_margin", e.safety_margin.count()},
      {"system_used", e.system_used.count()},
      {"system_reserved", e.system_reserved.count()},
      {"system_term", e.system_term.count()},
      {"hp_term", e.hp_term.count()},
      {"hp_used", e.hp_used.count()},
      {"hp_request", e.hp_request.count()},
      {"hp_instances", e.hp_instances},
      {"hp_without_sample", e.hp_without_sample},
      {"lse_raised_to_request", e.lse_raised_to_request},
      {"deficit", e.deficit.count()},
      {"before_window", e.formula.count()},
      {"window", opt(e.window, [](const window_occurrence& w) { return nlohmann::json(w); })},
      {"window_cap", opt(e.window_cap, n)},
      {"batch", e.be.count()},
      {"top", e.top},
  };
}

inline void to_json(nlohmann::json& j, const be_report& r) {
  j = nlohmann::json{{"cpu", r.cpu}, {"memory", r.memory}, {"cpu_cells", r.cpu_cells}, {"memory_cells", r.memory_cells}};
}

template <class Q>
void to_json(nlohmann::json& j, const be_change<Q>& c) {
  nlohmann::json terms = nlohmann::json::array();
  for (const auto& t : c.terms)
    terms.push_back({{"name", t.name}, {"before", t.before.count()}, {"after", t.after.count()}, {"raises_batch", t.raises_be}});
  nlohmann::json grew = nlohmann::json::array();
  for (const auto& g : c.grew)
    grew.push_back({{"id", g.uuid.to_string()}, {"qos", std::string(to_string(g.qos))}, {"before", g.before.count()}, {"after", g.after.count()}});
  j = nlohmann::json{{"resource", std::string(to_string(c.resource))},
                     {"unit", std::string(Q::symbol())},
                     {"before", c.before.count()},
                     {"after", c.after.count()},
                     {"terms", terms},
                     {"main_cause", c.main_cause.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.main_cause)},
                     {"grew", grew}};
}

inline void to_json(nlohmann::json& j, const suppression_explanation& e) {
  using detail::opt;
  const auto n = [](millicores q) { return q.count(); };
  j = nlohmann::json{
      {"unit", "millicores"},
      {"formula", "limit = move(previous -> max(floor, threshold_capacity - non_be_used - system_term)), capped by window_cap"},
      {"capacity", e.capacity.count()},
      {"threshold_percent", e.threshold.count()},
      {"threshold_capacity", e.threshold_capacity.count()},
      {"non_be_used", e.non_be_used.count()},
      {"system_used", e.system_used.count()},
      {"system_reserved", e.system_reserved.count()},
      {"system_term", e.system_term.count()},
      {"deficit", e.deficit.count()},
      {"before_floor", e.formula.count()},
      {"floor", e.floor.count()},
      {"target", e.target.count()},
      {"previous", opt(e.previous, n)},
      {"growth_cap", e.growth_cap.count()},
      {"dead_band", e.dead_band.count()},
      {"be_used", opt(e.be_used, n)},
      {"saturated", e.saturated},
      {"window", opt(e.window, [](const window_occurrence& w) { return nlohmann::json(w); })},
      {"window_cap", opt(e.window_cap, n)},
      {"limit", e.limit.count()},
  };
}

inline void to_json(nlohmann::json& j, const be_cpu_spec& s) {
  j = nlohmann::json{{"limit_millicores", s.limit.count()}, {"freeze", s.freeze}};
  if (s.cpu.period) j["cfs_period_us"] = s.cpu.period->count();
  if (s.cpu.quota) j["cfs_quota_us"] = s.cpu.quota->is_bounded() ? nlohmann::json(s.cpu.quota->value().count()) : nlohmann::json("max");
  if (s.cpu.cpus) j["cpus"] = s.cpu.cpus->to_string();
}

inline void to_json(nlohmann::json& j, const suppression_decision& d) {
  j = nlohmann::json{{"at", detail::time_json(d.at)},
                     {"limit", d.limit.count()},
                     {"unit", "millicores"},
                     {"changed", d.changed},
                     {"reason", std::string(to_string(d.reason))},
                     {"spec", d.spec},
                     {"why", d.why}};
}

}  // namespace bulkhead::colocation
