// libFuzzer target: libvirt capabilities XML to host NUMA cells
// (libvirt::parse_capabilities_cells, bulkhead/backend/libvirt/domain_xml.hpp), and the
// memory-with-unit values both documents use (libvirt::parse_scaled_bytes).
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/libvirt/domain_xml.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = bulkhead::fuzz::as_text(data, size);
  auto cells = bulkhead::libvirt::parse_capabilities_cells(text);
  if (!cells) {
    bulkhead::fuzz::expect_clear(cells.error(), "libvirt::parse_capabilities_cells");
  } else {
    for (std::size_t i = 1; i < cells->size(); ++i)
      bulkhead::fuzz::expect((*cells)[i - 1].id <= (*cells)[i].id, "cells not sorted by id");
  }
  // "<value> <unit>" from the first line: the scaled-bytes reader alone.
  const auto nl = text.find('\n');
  const auto line = text.substr(0, nl);
  const auto sp = line.find(' ');
  auto b = bulkhead::libvirt::parse_scaled_bytes(line.substr(0, sp), sp == std::string_view::npos ? "" : line.substr(sp + 1),
                                        "fuzz value");
  bulkhead::fuzz::expect_clear(b, "libvirt::parse_scaled_bytes");
  return 0;
}
