// bulkhead/agent/libvirt.hpp: a libvirt URI as an agent source (in the
// libvirt library: a program that names no libvirt source does not load
// libvirt). The connection is read-only (virConnectOpenReadOnly): the agent
// can read every domain and can change none.
//
// Thread-safety: the spec is a value; connect() is called by the agent only.
#pragma once

#include <string>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/api.hpp"

namespace bulkhead::agent {

// `uri` as libvirt takes it ("" for libvirt's default, as virsh finds it).
// Errors of connect(): libvirt::backend::connect's (connection_failed naming
// the URI and libvirt's message), or not_found for a test:///PATH node file
// that does not exist.
[[nodiscard]] BULKHEAD_API source_spec libvirt_source(std::string uri);

}  // namespace bulkhead::agent
