// libFuzzer target: the desired-spec JSON (bulkhead/export/desired_spec.hpp,
// docs/desired-spec.md). Invariants: an error names the source; an accepted
// file has canonical non-empty keys, every spec passes validate(), and the
// printed file (desired_specs_text) parses back to the same specs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bulkhead/export/desired_spec.hpp"
#include "fuzz_support.hpp"

using namespace bulkhead;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  auto r = parse_desired_specs(text, "fuzzed.json");
  if (!r) {
    fuzz::expect_clear(r.error(), "parse_desired_specs");
    fuzz::expect(r.error().message().find("fuzzed.json") != std::string::npos ||
                     r.error().describe().find("fuzzed.json") != std::string::npos,
                 "parse_desired_specs: the error does not name the file: " + r.error().describe());
    return 0;
  }
  for (const auto& [k, s] : *r) {
    fuzz::expect(!k.empty(), "an empty instance key was accepted");
    fuzz::expect(validate(s).has_value(), "a spec that fails validate() was accepted");
  }
  const auto printed = desired_specs_text(*r);
  auto again = parse_desired_specs(printed, "printed");
  if (!again) fuzz::broken("a printed desired-spec file does not parse: " + again.error().describe() + "\n" + printed);
  fuzz::expect(*again == *r, "print and parse again gives other specs");
  return 0;
}
