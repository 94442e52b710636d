// bulkhead/backend/libvirt/backend.hpp: the libvirt backend, compiled in
// libbulkhead-libvirt (the only part of bulkhead that needs libvirt).
//
// Reads (and, on a read-write connection, enforces) domains through the
// libvirt C API against any URI: qemu:///system, test:///default,
// test:///ABS/PATH/node.xml (libvirt's test driver), remote URIs.
//
// - capacity(): virNodeGetInfo + the host NUMA topology from
//   virConnectGetCapabilities (<host><topology><cells>).
// - discover(): every domain in every state (virConnectListAllDomains).
//   Incarnation = the libvirt domain id of a running domain (a new one at each
//   start); none when shut off. Isolation is vm_offload when a disk or
//   interface is a vDPA or PCI host device, else vm. Tenant and qos_class come
//   from <metadata><bulkhead:instance xmlns:bulkhead="urn:bulkhead:instance:1">
//   (docs/libvirt-metadata.md), and tenant from Nova's
//   <nova:instance><nova:owner><nova:project uuid=...> when ours is absent.
// - read()/read_all(): the spec from the domain XML (live definition) plus
//   raw counters. read_all() uses virConnectGetAllDomainStats for every stats
//   group the driver supports and per-domain calls for what it does not
//   (the test driver gives only the state group in bulk).
// - A domain that vanishes mid-read (VIR_ERR_NO_DOMAIN) is reported as
//   errc::vanished in host_reading::failures; the others are still read. A
//   broken connection is errc::connection_lost; the next call reconnects.
// - A call made after libvirtd died does not end the process with SIGPIPE:
//   each call blocks SIGPIPE in the calling thread and takes off one it
//   raised. A thread running a libvirt event loop is not covered: block or
//   ignore SIGPIPE there.
//
// Thread-safety: one libvirt::backend per thread (libvirt connections are
// thread-safe, the backend's caches are not).
#pragma once

#include <memory>
#include <string>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/backend.hpp"

struct _virConnect;  // libvirt's connection type (libvirt/libvirt.h)

namespace bulkhead::libvirt {

struct options {
  // Empty: libvirt's default (LIBVIRT_DEFAULT_URI, then uri_default in
  // libvirt.conf, then the local daemon) as virsh finds it.
  std::string uri;
  // Read-only connections can read everything but cannot apply().
  bool read_only = true;
};

class BULKHEAD_API backend final : public bulkhead::backend {
 public:
  // Connects. errc::connection_failed names the URI and libvirt's message.
  [[nodiscard]] static result<std::unique_ptr<backend>> connect(libvirt::options opts);
  ~backend() override;

  [[nodiscard]] std::string_view kind() const noexcept override { return "libvirt"; }
  [[nodiscard]] const std::string& source() const noexcept override;

  [[nodiscard]] result<host_capacity> capacity() override;
  [[nodiscard]] result<std::vector<instance_info>> discover() override;
  [[nodiscard]] result<instance_reading> read(const instance_info& instance) override;
  [[nodiscard]] result<host_reading> read_all() override;
  [[nodiscard]] result<apply_report> apply(const instance_info& instance, const quota_spec& spec) override;

  // The connection, for callers that need libvirt calls bulkhead does not
  // wrap (tests drive domain lifecycle through it). Owned by the backend; may
  // change after a reconnect. Null while disconnected.
  [[nodiscard]] _virConnect* native_handle() noexcept;

  // Drops and re-opens the connection (also done automatically by the next
  // call after a connection_lost error).
  [[nodiscard]] result<void> reconnect();

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit backend(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead::libvirt
