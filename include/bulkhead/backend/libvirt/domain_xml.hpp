// bulkhead/backend/libvirt/domain_xml.hpp: libvirt XML documents to bulkhead's
// vocabulary, without a connection: text parsing only, no libvirt call, so
// usable from the headers alone (the libvirt backend, the fuzz targets and
// tests use it).
//
// parse_domain_xml(): a domain definition (virDomainGetXMLDesc output, or a
// <domain> inside a test-driver node file) to identity, isolation, metadata
// and the quota as configured. Element meanings follow libvirt's
// formatdomain documentation:
//   <memory>, <currentMemory>, <memtune>/*: "unit" attribute, default KiB;
//   <cputune> period/quota in microseconds (quota <= 0 or absent: no limit;
//   libvirt writes -1 or 17592186044415 for "infinite");
//   <iotune> values in bytes/s and ops/s (0 or absent: no limit);
//   <bandwidth> average/peak/floor in kilobytes/s, burst in kilobytes.
// Metadata: <bulkhead:instance xmlns:bulkhead="urn:bulkhead:instance:1">
// with <bulkhead:tenant> and <bulkhead:qos_class> children
// (docs/libvirt-metadata.md); Nova's <nova:instance> (namespace
// http://openstack.org/xmlns/libvirt/nova/1.1) <nova:owner><nova:project
// uuid=...> gives the tenant when bulkhead's is absent.
//
// Errors: errc::parse_error naming the element and the bad value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead::libvirt {

inline constexpr std::string_view bulkhead_metadata_ns = "urn:bulkhead:instance:1";
inline constexpr std::string_view nova_metadata_ns = "http://openstack.org/xmlns/libvirt/nova/1.1";

struct domain_disk_ref {
  std::string target;  // "vda"
  std::string type;    // disk type attribute: file, block, network, vhostvdpa ...
  bool offloaded = false;
};
struct domain_interface_ref {
  std::string mac;
  std::string target;  // host-side device ("vnet0"); empty when not running
  std::string type;    // interface type attribute: network, bridge, vdpa, hostdev ...
  bool offloaded = false;
};

struct parsed_domain {
  bulkhead::uuid uuid;
  std::string name;
  std::optional<std::int64_t> libvirt_id;  // the id attribute of a running domain
  std::string domain_type;                 // kvm, qemu, test ...
  isolation_level isolation = isolation_level::vm;
  isolation_profile modes;
  std::optional<qos_class> qos;
  std::optional<std::string> tenant;
  std::string tenant_source;  // "bulkhead", "nova" or empty
  quota_spec spec;            // as configured
  std::vector<domain_disk_ref> disks;
  std::vector<domain_interface_ref> interfaces;
  std::vector<std::string> warnings;  // recoverable oddities (an unknown qos class in metadata)
};

[[nodiscard]] result<parsed_domain> parse_domain_xml(std::string_view xml);

// <capabilities> to host NUMA cells (<host><topology><cells>); cells have
// CPU ids and memory. Empty when the document has no topology (libvirt's
// test driver with a node file gives none).
[[nodiscard]] result<std::vector<numa_cell>> parse_capabilities_cells(std::string_view xml);

// A memory element's value with its unit attribute (libvirt units: b/bytes,
// KB, k/KiB, MB, M/MiB, GB, G/GiB, TB, T/TiB; default KiB) in bytes.
[[nodiscard]] result<bytes> parse_scaled_bytes(std::string_view value, std::string_view unit, std::string_view what);

}  // namespace bulkhead::libvirt

#include "bulkhead/backend/libvirt/detail/domain_xml_impl.hpp"
