// bulkhead-agent's libvirt sources, in a module of their own
// (bulkhead-agent-libvirt.so): the daemon loads it (libvirt_loader.hpp) only
// when a --uri is given, so an agent that reads only cgroups and cards never
// loads libvirt and its dependency closure.
#include "bulkhead/agent/libvirt.hpp"

// The one entry point: fills *out with the source for `uri`.
extern "C" __attribute__((visibility("default"))) void bulkhead_agent_libvirt_source(
    const char* uri, bulkhead::agent::source_spec* out) {
  *out = bulkhead::agent::libvirt_source(uri);
}
