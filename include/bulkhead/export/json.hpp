// bulkhead/export/json.hpp: the JSON form of what backends read.
//
// The field names are a contract (docs/inspect-json.md): other fields may be
// added, none renamed. Every quantity is an integer with its unit in the field
// name (_bytes, _ns, _us, _bytes_sec, _kbytes_sec, _kbytes ...); a knob that is
// absent or unlimited is null; 128-bit values are decimal strings.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/backend/backend.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead::json_export {

// {"cpus", "memory_bytes", "numa_nodes": [{"id", "cpus": [ids], "memory_bytes"}], ...}
[[nodiscard]] nlohmann::json host(const host_capacity& h);

// The quota object of an instance ("vcpus", "cpu_shares", ... "disks", "interfaces").
[[nodiscard]] nlohmann::json quota(const quota_spec& q);

// The usage object of an instance ("cpu_time_ns", ... "disks", "interfaces").
[[nodiscard]] nlohmann::json usage(const usage_sample& u);

// One instance: identity, class, isolation, "quota", "usage", "unsupported", "warnings".
[[nodiscard]] nlohmann::json instance(const instance_reading& r);

// A failure of one instance: {"uuid", "name", "error", "error_code"}.
[[nodiscard]] nlohmann::json failure(const instance_failure& f);

// An error: {"code", "message"} with the context chain folded into message.
[[nodiscard]] nlohmann::json error_object(const error& e);

// A value that may exceed 64 bits, as a decimal string.
[[nodiscard]] std::string u128_string(u128 v);

}  // namespace bulkhead::json_export

#include "bulkhead/export/detail/json_impl.hpp"  // IWYU pragma: export
