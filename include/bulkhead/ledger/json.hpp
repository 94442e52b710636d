// bulkhead/ledger/json.hpp: JSON forms of the ledger's views (nlohmann/json).
//
// Numbers are integers only, in the unit named beside them ("unit":
// "millicores"); ratios are {"num": n, "den": d}; optional values are null
// when absent; UUIDs are canonical lower-case strings.
//
// Thread-safety: pure functions over values.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/ledger/ledger.hpp"
#include "bulkhead/ledger/rational_json.hpp"

namespace bulkhead::ledger {

inline void to_json(nlohmann::json& j, const resource_amounts& a) {
  j = nlohmann::json::object();
  a.for_each([&](resource_kind k, std::uint64_t n) {
    j[std::string(to_string(k))] = nlohmann::json{{"count", n}, {"unit", std::string(unit_symbol(k))}};
  });
}

inline void to_json(nlohmann::json& j, const any_inventory& i) {
  j = nlohmann::json{{"kind", std::string(to_string(i.kind))},
                     {"unit", std::string(unit_symbol(i.kind))},
                     {"total", i.total},
                     {"reserved", i.reserved},
                     {"min_unit", i.min_unit},
                     {"max_unit", i.max_unit ? nlohmann::json(*i.max_unit) : nlohmann::json(nullptr)},
                     {"step_size", i.step_size},
                     {"allocation_ratio", i.allocation_ratio}};
}

inline void to_json(nlohmann::json& j, const inventory_view& v) {
  j = nlohmann::json{{"slot", v.slot},
                     {"provider", std::string(to_string(v.provider))},
                     {"where", v.where},
                     {"inventory", v.inventory},
                     {"from_cpu_pool", v.from_cpu_pool},
                     {"pinned", v.pinned},
                     {"capacity", v.capacity},
                     {"used", v.used},
                     {"free", v.free},
                     {"over_capacity", v.over_capacity},
                     {"generation", v.generation}};
  if (v.provider == provider_kind::cell) j["cell"] = v.cell;
  if (v.provider == provider_kind::card) j["card"] = v.card;
}

inline void to_json(nlohmann::json& j, const cpu_pools_view& p) {
  j = nlohmann::json{{"all", p.all.to_string()},       {"reserved", p.reserved.to_string()},
                     {"lse", p.lse.to_string()},       {"lsr", p.lsr.to_string()},
                     {"shared", p.shared.to_string()}, {"be_allowed", p.be_allowed().to_string()}};
}

inline void to_json(nlohmann::json& j, const host_view& v) {
  j = nlohmann::json{{"host", v.name},
                     {"inventories", v.inventories},
                     {"generations", v.generations},
                     {"pools", v.pools ? nlohmann::json(*v.pools) : nlohmann::json(nullptr)},
                     {"reservations", v.reservations}};
}

inline void to_json(nlohmann::json& j, const reservation_view& r) {
  j = nlohmann::json{{"consumer", r.uuid.to_string()},
                     {"tenant", r.tenant},
                     {"qos", std::string(to_string(r.qos))},
                     {"policy", std::string(to_string(r.policy))},
                     {"exclusive", std::string(to_string(r.exclusive))},
                     {"cell", r.cell ? nlohmann::json(*r.cell) : nlohmann::json(nullptr)},
                     {"card", r.card ? nlohmann::json(*r.card) : nlohmann::json(nullptr)},
                     {"cpus", r.cpus.to_string()},
                     {"amounts", r.amounts}};
}

inline void to_json(nlohmann::json& j, const reservation_receipt& r) {
  j = nlohmann::json{{"consumer", r.uuid.to_string()},
                     {"cell", r.cell ? nlohmann::json(*r.cell) : nlohmann::json(nullptr)},
                     {"card", r.card ? nlohmann::json(*r.card) : nlohmann::json(nullptr)},
                     {"cpus", r.cpus.to_string()},
                     {"amounts", r.amounts}};
}

inline void to_json(nlohmann::json& j, const tenancy_entry& e) {
  j = nlohmann::json{{"provider", std::string(to_string(e.provider))},
                     {"where", e.where},
                     {"tenants", e.tenants},
                     {"exclusive_holder", e.exclusive_holder ? nlohmann::json(*e.exclusive_holder) : nlohmann::json(nullptr)},
                     {"reservations", e.reservations}};
  if (e.provider == provider_kind::cell) j["cell"] = e.cell;
  if (e.provider == provider_kind::card) j["card"] = e.card;
}

inline void to_json(nlohmann::json& j, const tenancy_report& r) {
  j = nlohmann::json{{"host", r.host}, {"entries", r.entries}};
}

}  // namespace bulkhead::ledger
