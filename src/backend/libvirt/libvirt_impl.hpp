// Internal to the libvirt backend: the connection state and the helpers the
// read path (libvirt_backend.cpp) and the write path (libvirt_apply.cpp)
// share. Not installed.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>

#include "bulkhead/backend/libvirt.hpp"
#include "bulkhead/backend/libvirt_xml.hpp"

namespace bulkhead::lv {

struct domain_deleter {
  void operator()(virDomainPtr d) const noexcept {
    if (d) virDomainFree(d);
  }
};
using domain_ptr = std::unique_ptr<virDomain, domain_deleter>;

// The error libvirt recorded for this thread, as a bulkhead error:
// VIR_ERR_NO_DOMAIN -> vanished; NO_SUPPORT / OPERATION_UNSUPPORTED /
// ARGUMENT_UNSUPPORTED -> unsupported; OPERATION_DENIED / ACCESS_DENIED /
// AUTH_FAILED -> permission_denied; a dead connection -> connection_lost;
// anything else -> `fallback`. `what` says what was being done.
[[nodiscard]] error last_error(virConnectPtr conn, errc fallback, const std::string& what);

// Installs a silent libvirt error handler once per process, so libvirt never
// prints to stderr on bulkhead's behalf (errors are returned as values).
void silence_libvirt_errors() noexcept;

// The XML of a domain, parsed. flags: 0 (live) or VIR_DOMAIN_XML_INACTIVE.
[[nodiscard]] result<parsed_domain> fetch_domain(virConnectPtr conn, virDomainPtr dom, unsigned flags);

[[nodiscard]] instance_state state_from_libvirt(int s) noexcept;

}  // namespace bulkhead::lv

namespace bulkhead {

struct libvirt_backend::impl {
  libvirt_options options;
  std::string uri;  // as libvirt reports it once connected
  virConnectPtr conn = nullptr;

  ~impl() {
    if (conn) virConnectClose(conn);
  }
  // Opens (or re-opens) the connection.
  [[nodiscard]] result<void> open();
  // Reconnects when the connection is missing or dead.
  [[nodiscard]] result<virConnectPtr> live();
  // Marks the connection dead when `e` says it is.
  void note(const error& e);
};

}  // namespace bulkhead
