// libFuzzer target: libvirt domain XML to identity, isolation, metadata and
// quota (libvirt::parse_domain_xml, bulkhead/backend/libvirt/domain_xml.hpp). A parsed
// domain is also put through validate() and the JSON export, as
// bulkhead-inspect would.
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/libvirt/domain_xml.hpp"
#include "bulkhead/export/json.hpp"
#include "bulkhead/model/quota.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto d = bulkhead::libvirt::parse_domain_xml(bulkhead::fuzz::as_text(data, size));
  if (!d) {
    bulkhead::fuzz::expect_clear(d.error(), "libvirt::parse_domain_xml");
    return 0;
  }
  bulkhead::fuzz::expect(!d->name.empty(), "a domain without a name was accepted");
  auto v = bulkhead::validate(d->spec);
  bulkhead::fuzz::expect_clear(v, "validate(domain spec)");
  (void)nlohmann::json(d->spec).dump();
  return 0;
}
