// libFuzzer target: the cgroup backend reading a whole cgroupfs tree
// (bulkhead/backend/cgroup/backend.hpp) over the committed fixtures (cgroup-v2,
// cgroup-v1, cgroup-hybrid, cgroup-v2-links) patched by the input
// (fuzz_tree.hpp: file contents, new files, links anywhere, removals). The
// mount table is part of the tree, so the input may change it too.
// cgroup::mounts::parse, open, capacity, discover and read of every group
// give values or errors with a message, never a crash; errors inside a
// reading (partial) say something too.
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/mount_table.hpp"
#include "fuzz_support.hpp"
#include "fuzz_tree.hpp"

using namespace bulkhead;

namespace {

fuzz::patched_tree& tree() {
  const std::string fx = std::string(BULKHEAD_SOURCE_ROOT) + "/tests/fixtures/";
  static fuzz::patched_tree t({{"v2", fx + "cgroup-v2", ""},
                               {"v1", fx + "cgroup-v1", ""},
                               {"hybrid", fx + "cgroup-hybrid", ""},
                               {"links", fx + "cgroup-v2-links", ""}});
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& t = tree();
  const auto& root = t.apply(fuzz::as_text(data, size));
  {
    auto text = read_text_file((root / "mountinfo").string());
    if (!text) {
      fuzz::expect_clear(text.error(), "mountinfo");
    } else if (auto mounts = cgroup::mounts::parse(*text, "mountinfo"); !mounts) {
      fuzz::expect_clear(mounts.error(), "cgroup::mounts::parse");
    } else {
      cgroup::options o;
      o.fs_root = root.string();
      o.mounts = *mounts;
      o.parent = root.filename() == "links" ? "tasks" : "bulkhead";
      o.page_size = 4096;
      o.max_open_files = 0;
      auto b = cgroup::backend::open(o);
      if (!b) {
        fuzz::expect_clear(b.error(), "cgroup::backend::open");
      } else {
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
  }
  t.undo();
  return 0;
}
