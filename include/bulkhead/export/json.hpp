// bulkhead/export/json.hpp: the JSON form of what backends read, as
// bulkhead-inspect --json prints it (docs/inspect-json.md).
//
// One convention: nlohmann's to_json, found by ADL, declared in the
// namespace of the type, so a reading converts by assignment:
//   nlohmann::json j = reading;            // one instance
//   nlohmann::json cap = host_capacity;    // a host's capacity
// The quota_spec form here is the canonical (ADL) one, the "quota" object of
// an instance; the desired-spec file writes specs in its own form through a
// named function (desired_spec_json(), bulkhead/export/desired_spec.hpp).
//
// The field names are a contract (docs/inspect-json.md): other fields may be
// added, none renamed. Every quantity is an integer with its unit in the field
// name (_bytes, _ns, _us, _bytes_sec, _kbytes_sec, _kbytes ...); a knob that is
// absent or unlimited is null; 128-bit values are decimal strings
// (bulkhead::to_decimal).
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/backend/backend.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead {

// {"cpus", "memory_bytes", "numa_nodes": [{"id", "cpus": [ids], "memory_bytes"}], ...}
void to_json(nlohmann::json& j, const host_capacity& h);

// The quota object of an instance ("vcpus", "cpu_shares", ... "disks", "interfaces").
void to_json(nlohmann::json& j, const quota_spec& q);

// The usage object of an instance ("cpu_time_ns", ... "disks", "interfaces").
void to_json(nlohmann::json& j, const usage_sample& u);

// One instance: identity, class, isolation, "quota", "usage", "unsupported", "warnings".
void to_json(nlohmann::json& j, const instance_reading& r);

// A failure of one instance: {"uuid", "name", "error", "error_code"}.
void to_json(nlohmann::json& j, const instance_failure& f);

// An error: {"code", "message"} with the context chain folded into message.
void to_json(nlohmann::json& j, const error& e);

}  // namespace bulkhead

#include "bulkhead/export/detail/json_impl.hpp"
