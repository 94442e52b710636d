// libFuzzer target: the Linux sysfs view of offload hardware
// (offload::sysfs_backend, bulkhead/backend/offload/backend.hpp) over the committed
// fixture trees (tests/fixtures/offload-sriov, offload-vdpa) patched by the
// input (fuzz_tree.hpp: file contents, new files, links anywhere, removals).
// discover(), read() of every instance, cards() and their JSON form must
// give values or errors, never a crash; no link may lead out of the root.
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/bindings.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include "bulkhead/export/json.hpp"
#include "fuzz_support.hpp"
#include "fuzz_tree.hpp"

using namespace bulkhead;

namespace {

std::vector<offload::sysfs_binding> bindings() {
  static const auto b = offload::parse_sysfs_bindings(R"({"instances": [
    {"uuid": "b0000000-0000-4000-8000-0000000000a1", "name": "acme-bm", "isolation": "bare_metal",
     "tenant": "acme", "qos_class": "LS", "functions": ["0000:3b:00.1", "0000:3c:00.0"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000b1", "name": "globex-vm", "isolation": "vm_offload",
     "functions": ["0000:3b:00.2", "0000:3b:00.0"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000d1", "name": "initech-vm", "isolation": "vm_offload",
     "functions": ["vdpa0", "0000:5e:00.0"]},
    {"uuid": "b0000000-0000-4000-8000-0000000000d2", "name": "host-self", "isolation": "bare_metal",
     "functions": ["vdpa1", "0000:5f:00.0", "0000:99:00.0"]}]})");
  if (!b) fuzz::broken("the target's own bindings do not parse: " + b.error().describe());
  return *b;
}

fuzz::patched_tree& tree() {
  const std::string fx = std::string(BULKHEAD_SOURCE_ROOT) + "/tests/fixtures/";
  static fuzz::patched_tree t({{"sriov", fx + "offload-sriov", "sys"},
                               {"vdpa", fx + "offload-vdpa", "sys"},
                               {"link", fx + "offload-broken-link", "sys"}});
  return t;
}

// offload-broken-link keeps a decoy beside the root (outside/: counters of
// 666666666, an interface leak0, a file SECRET): none of it may show up.
void expect_nothing_from_outside(const std::string& text, bool input_names_decoy) {
  if (input_names_decoy) return;
  fuzz::expect(text.find("666666666") == std::string::npos && text.find("leak0") == std::string::npos &&
                   text.find("never read me") == std::string::npos,
               "a value from outside the sysfs root was read: " + text.substr(0, 512));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& t = tree();
  const auto input = fuzz::as_text(data, size);
  const bool names_decoy = input.find("666666666") != std::string_view::npos || input.find("leak0") != std::string_view::npos;
  const auto& root = t.apply(input);
  {
    auto b = offload::sysfs_backend::open(offload::sysfs_options{root.string(), bindings()});
    if (!b) {
      fuzz::expect_clear(b.error(), "offload::sysfs_backend::open");
    } else {
      auto found = (*b)->discover();
      if (!found) {
        fuzz::expect_clear(found.error(), "discover");
      } else {
        for (const auto& i : *found) {
          auto r = (*b)->read(i);
          if (!r) {
            fuzz::expect_clear(r.error(), "read");
            continue;
          }
          for (const auto& e : r->partial) fuzz::expect_clear(e, "read: partial error");
          expect_nothing_from_outside(nlohmann::json(*r).dump(), names_decoy);
        }
      }
      auto cards = (*b)->cards();
      if (!cards) {
        fuzz::expect_clear(cards.error(), "cards");
      } else {
        for (const auto& c : *cards) expect_nothing_from_outside(nlohmann::json(c).dump(), names_decoy);
      }
    }
  }
  t.undo();
  return 0;
}
