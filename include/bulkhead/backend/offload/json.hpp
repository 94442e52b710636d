// bulkhead/backend/offload/json.hpp: the JSON form of offload cards, for the
// `cards` list of bulkhead-inspect --json (docs/offload.md, "JSON").
//
// Conventions as bulkhead/export/json.hpp (to_json found by ADL): integers with the unit in the
// field name (_bytes, _bytes_sec, _packets_sec, _ops_sec, _ns); a knob that is
// absent or unlimited is null; enums in their text forms. Fields may be
// added, none renamed.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/backend/offload/card.hpp"

namespace bulkhead::offload {

// nlohmann::json j = card;  (found by ADL)
// {"pci_address", "model", "firmware", "capacity", "guaranteed", "total_vfs",
//  "enabled_vfs", "link_bandwidth_bytes_sec", "functions": [...], "problems": [...]}
void to_json(nlohmann::json& j, const card_view& card);

// {"address", "type", "form", "parent", "vf_index", "driver", "instance",
//  "mac", "target", "queue_depth", "qos", "counters", "problems"}
void to_json(nlohmann::json& j, const function_view& function);

}  // namespace bulkhead::offload

#include "bulkhead/backend/offload/detail/json_impl.hpp"
