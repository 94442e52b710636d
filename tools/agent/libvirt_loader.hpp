// Loads bulkhead-agent's libvirt module (libvirt_module.cpp) when the agent
// has a libvirt source. The module is looked up next to the executable (the
// build tree), then at BULKHEAD_AGENT_MODULE_DIR relative to the
// executable's folder (an installed tree, wherever DESTDIR put it), then at
// the absolute install path. It is never unloaded: the sources it made keep
// code of it.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/error.hpp"

#ifndef BULKHEAD_AGENT_MODULE_DIR
#define BULKHEAD_AGENT_MODULE_DIR "../lib/bulkhead"
#endif
#ifndef BULKHEAD_AGENT_MODULE_ABS_DIR
#define BULKHEAD_AGENT_MODULE_ABS_DIR "/usr/local/lib/bulkhead"
#endif

namespace bulkhead::agent_tool {

using libvirt_source_fn = void (*)(const char*, agent::source_spec*);

inline std::string exe_dir() {
  std::vector<char> buf(4096);
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string p(buf.data(), static_cast<std::size_t>(n));
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash == 0 ? 1 : slash);
}

// Errors: not_found naming where it looked and what dlopen said.
[[nodiscard]] inline result<libvirt_source_fn> load_libvirt_module() {
  constexpr const char* name = "bulkhead-agent-libvirt.so";
  const std::string dir = exe_dir();
  const std::string rel = BULKHEAD_AGENT_MODULE_DIR;
  const std::vector<std::string> candidates{
      dir + "/" + name, rel.starts_with("/") ? rel + "/" + name : dir + "/" + rel + "/" + name,
      std::string(BULKHEAD_AGENT_MODULE_ABS_DIR) + "/" + name};
  std::string errors;
  for (const auto& c : candidates) {
    if (::access(c.c_str(), F_OK) != 0) continue;
    void* h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      errors += std::string("; ") + ::dlerror();
      continue;
    }
    if (auto* f = reinterpret_cast<libvirt_source_fn>(::dlsym(h, "bulkhead_agent_libvirt_source"))) return f;
    errors += "; " + c + " has no bulkhead_agent_libvirt_source";
  }
  return fail(errc::not_found, std::string("cannot load the libvirt module ") + name + " (looked in " + dir + ", " + dir +
                                   "/" + rel + " and " + BULKHEAD_AGENT_MODULE_ABS_DIR + ")" + errors);
}

}  // namespace bulkhead::agent_tool
