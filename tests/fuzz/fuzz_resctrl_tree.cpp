// libFuzzer target: the resctrl backend over a whole resctrl tree, info
// files included (info/L3/cbm_mask, min_cbm_bits, num_closids,
// shareable_bits, sparse_masks, info/MB/*, info/L3_MON/*), from the
// committed fixtures (resctrl, resctrl-cdp, resctrl-mbps) patched by the
// input (fuzz_tree.hpp). open (reads info/), capacity, discover and read of
// every group give values or errors with a message, never a crash; an info
// accepted has sane values (a non-empty contiguous cbm_mask, min_cbm_bits
// within it).
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/resctrl/backend.hpp"
#include "fuzz_support.hpp"
#include "fuzz_tree.hpp"

using namespace bulkhead;

namespace {

fuzz::patched_tree& tree() {
  const std::string fx = std::string(BULKHEAD_SOURCE_ROOT) + "/tests/fixtures/";
  static fuzz::patched_tree t({{"plain", fx + "resctrl", "sys/fs/resctrl"},
                               {"cdp", fx + "resctrl-cdp", "sys/fs/resctrl"},
                               {"mbps", fx + "resctrl-mbps", "sys/fs/resctrl"}});
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& t = tree();
  const auto& root = t.apply(fuzz::as_text(data, size));
  {
    resctrl::options o;
    o.root = root.string();
    o.mba_mbps = root.parent_path().parent_path().parent_path().filename() == "mbps";
    o.max_open_files = 0;
    auto b = resctrl::backend::open(o);
    if (!b) {
      fuzz::expect_clear(b.error(), "resctrl::backend::open");
    } else {
      for (const auto& c : (*b)->info().caches) {
        fuzz::expect(c.cbm_mask != 0, "info: an empty cbm_mask was accepted");
        fuzz::expect(c.min_cbm_bits <= c.ways(), "info: min_cbm_bits wider than cbm_mask was accepted");
      }
      if (auto c = (*b)->capacity(); !c) fuzz::expect_clear(c.error(), "capacity");
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
        }
      }
    }
  }
  t.undo();
  return 0;
}
