// bulkhead/backend/offload/bindings.hpp: which functions make up which
// instance, for the sysfs reader (sysfs_binding in
// bulkhead/backend/offload/backend.hpp), from JSON text the caller hands in:
//   {"instances": [{"uuid", "name", "isolation", "tenant", "qos_class",
//                   "functions": [...]}]}
// Strict as the card description (docs/offload.md): unknown keys, wrong
// types and bad values are errc::parse_error naming the JSON path.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/model/enums.hpp"

namespace bulkhead::offload {

[[nodiscard]] inline result<std::vector<sysfs_binding>> parse_sysfs_bindings(std::string_view json_text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text.begin(), json_text.end());
  } catch (const nlohmann::json::exception& e) {
    return fail(errc::parse_error, std::string("offload bindings: not valid JSON: ") + e.what());
  }
  const auto bad = [](std::string m) { return fail(errc::parse_error, "offload bindings: " + std::move(m)); };
  if (!doc.is_object()) return bad("expected an object");
  for (const auto& [k, v] : doc.items())
    if (k != "instances") return bad("unknown key " + bulkhead::detail::quote(k) + " (known: instances)");
  auto it = doc.find("instances");
  if (it == doc.end() || !it->is_array()) return bad("instances: expected an array");
  std::vector<sysfs_binding> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string p = "instances[" + std::to_string(i) + "]";
    const auto& o = (*it)[i];
    if (!o.is_object()) return bad(p + ": expected an object");
    sysfs_binding b;
    for (const auto& [k, v] : o.items()) {
      if (k == "uuid" || k == "name" || k == "isolation" || k == "tenant" || k == "qos_class") {
        if (!v.is_string()) return bad(p + "." + k + ": expected a string");
        const auto s = v.get<std::string>();
        if (!bulkhead::detail::is_utf8(s)) return bad(p + "." + k + ": not valid UTF-8");
        if (k == "uuid") {
          auto u = uuid::parse(s);
          if (!u) return fail(std::move(u.error()).in("offload bindings: " + p + ".uuid"));
          b.uuid = *u;
        } else if (k == "name") {
          b.name = s;
        } else if (k == "isolation") {
          auto l = parse_enum<isolation_level>(s);
          if (!l) return fail(std::move(l.error()).in("offload bindings: " + p + ".isolation"));
          if (*l != isolation_level::bare_metal && *l != isolation_level::vm_offload)
            return bad(p + ".isolation: " + bulkhead::detail::quote(s) + "; a card's instances are bare_metal or vm_offload");
          b.isolation = *l;
        } else if (k == "tenant") {
          b.tenant = s;
        } else {
          auto q = parse_enum<qos_class>(s);
          if (!q) return fail(std::move(q.error()).in("offload bindings: " + p + ".qos_class"));
          b.qos = *q;
        }
      } else if (k == "functions") {
        if (!v.is_array()) return bad(p + ".functions: expected an array of strings");
        for (const auto& f : v) {
          if (!f.is_string()) return bad(p + ".functions: expected an array of strings");
          b.functions.push_back(f.get<std::string>());
        }
      } else {
        return bad(p + ": unknown key " + bulkhead::detail::quote(k) + " (known: uuid, name, isolation, tenant, qos_class, functions)");
      }
    }
    if (b.uuid.is_nil()) return bad(p + ".uuid: missing");
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace bulkhead::offload
