// libFuzzer target: the resctrl schemata parser and printer
// (bulkhead/backend/resctrl/backend.hpp). Invariants: an error names the file; an
// accepted schemata has non-empty resource names, no resource or domain
// twice, and each line printed (format_schemata_line) parses back to the
// same line; cache masks checked against an info (check_cbm) are accepted
// only when contiguous, within cbm_mask and at least min_cbm_bits wide.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "bulkhead/backend/resctrl/backend.hpp"
#include "fuzz_support.hpp"

using namespace bulkhead;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  auto r = resctrl::parse_schemata(text, "fuzzed/schemata");
  if (!r) {
    fuzz::expect_clear(r.error(), "parse_schemata");
    fuzz::expect(r.error().message().find("fuzzed/schemata") != std::string::npos,
                 "parse_schemata: the error does not name the file: " + r.error().message());
    return 0;
  }
  std::set<std::string> resources;
  resctrl::cache_info info;
  info.resource = "L3";
  info.cbm_mask = 0x7ff;
  info.min_cbm_bits = 2;
  for (const auto& line : *r) {
    fuzz::expect(!line.resource.empty(), "schemata: an empty resource name was accepted");
    fuzz::expect(resources.insert(line.resource).second, "schemata: a resource listed twice was accepted");
    std::set<std::uint32_t> domains;
    for (const auto& [d, v] : line.values) {
      fuzz::expect(domains.insert(d).second, "schemata: a domain listed twice was accepted");
      if (resctrl::is_cache(line.resource)) {
        const bool ok = resctrl::check_cbm(v, info, "fuzzed mask").has_value();
        const bool valid = (v & ~info.cbm_mask) == 0 && std::popcount(v) >= 2 && resctrl::cbm_contiguous(v);
        fuzz::expect(ok == valid, "check_cbm disagrees with the mask rules");
      }
    }
    const auto printed = resctrl::format_schemata_line(line);
    auto again = resctrl::parse_schemata(printed, "printed");
    fuzz::expect(again && again->size() == 1 && again->front() == line,
                 "schemata: a printed line does not parse back to itself: " + printed);
  }
  return 0;
}
