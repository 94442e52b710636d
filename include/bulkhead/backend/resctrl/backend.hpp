// bulkhead/backend/resctrl/backend.hpp: the resctrl backend, compiled in
// libbulkhead-core (cache and memory bandwidth allocation,
// Documentation/arch/x86/resctrl.rst; since 6.14
// Documentation/filesystems/resctrl.rst).
//
// The root is the resctrl mount (/sys/fs/resctrl on a host), given by the
// caller. Its top-level directories other than info/, mon_data/ and
// mon_groups/ are CTRL_MON groups; each is one instance (a task: identity as
// in bulkhead/backend/task_id.hpp, so a task's cgroup and resctrl group of
// the same name share a UUID). The root itself is the default group, which
// owns whatever no group claims; it is not an instance.
//
// Read:
//   - info/<res>/{cbm_mask,min_cbm_bits,num_closids,shareable_bits,
//     sparse_masks}, info/MB/{min_bandwidth,bandwidth_gran,num_closids,
//     delay_linear}, info/L3_MON/{num_rmids,mon_features};
//   - schemata: "L3:<id>=<cbm>;..." (CDP: L3DATA and L3CODE lines), and
//     "MB:<id>=<percent or MBps>"; cache ids may have gaps; reads may pad
//     names and values with spaces ("    MB:0=2048;1=  16") and masks with
//     zeros; a read-back group spec has llc.allocations (L3 or L3DATA),
//     llc.code_allocations (L3CODE), llc.ways (the fewest ways any cache
//     gives the group), llc.exclusive (its mode file) and memory_bandwidth;
//   - mon_data/mon_L3_XX/{llc_occupancy,mbm_total_bytes,mbm_local_bytes}
//     into usage.cache_monitors; "Unavailable" leaves a value unset.
//
// apply(): llc and memory_bandwidth; every other knob is unsupported.
//   - llc.ways without masks: per cache domain, a contiguous run of that
//     many ways (any run when info/<res>/sparse_masks is 1). A group keeps
//     its current mask when it still fits. Shared groups avoid ways held
//     exclusively by others, and prefer ways no other group uses. An
//     exclusive group (LSE) takes ways no exclusive group holds and that
//     are not in shareable_bits (hardware's), from the top down; the default
//     group and any shared group that overlaps are shrunk to make room
//     (each change is reported), and a group that would be left with too
//     few ways or a broken mask makes that choice impossible. No room:
//     errc::insufficient_capacity naming the cache and what is free.
//   - explicit masks (llc.allocations / code_allocations) are used as given.
//   - every mask is checked before writing: within cbm_mask, at least
//     min_cbm_bits set, contiguous unless sparse_masks is 1;
//   - memory bandwidth: percent values must be min_bandwidth + N x
//     bandwidth_gran and at most 100 (the kernel would round others up);
//     MBps (mount option mba_MBps) values 1..4294967295; the spec's unit
//     must be the mount's.
//   - only the schemata lines (and, in them, only the domains) that change
//     are written, in one write; then the file is read back and each value
//     checked. A refused write carries info/last_cmd_status. The mode file
//     is written after the masks when becoming exclusive, before them when
//     leaving it.
//   - the whole apply holds flock(LOCK_EX) on the root, as resctrl.rst
//     ("Locking between applications") asks of every writer.
// create(): errc::insufficient_capacity when every CLOSID is in use
// (the smallest num_closids of the resources; the default group holds one),
// checked before mkdir and also mapped from mkdir's ENOSPC.
//
// Thread-safety: one backend per thread (see backend.hpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/backend.hpp"
#include "bulkhead/backend/mount_table.hpp"
#include "bulkhead/backend/resctrl/schemata.hpp"

namespace bulkhead::resctrl {

// --- file access seam ------------------------------------------------------------------
// The file operations the backend performs beneath its root. fs::open()
// gives the real one (rooted_dir: nothing outside the root is reached);
// tests substitute a model of the kernel's schemata rules (a machine without
// resctrl has nothing else to test writes against).
class BULKHEAD_API fs {
 public:
  // The real one: files beneath `root` through rooted_dir, control files
  // kept open (max_open_files, src/backend/file_cache.hpp).
  [[nodiscard]] static result<std::unique_ptr<fs>> open(const std::string& root, std::size_t max_open_files = 256);
  virtual ~fs() = default;
  [[nodiscard]] virtual const std::string& path() const noexcept = 0;
  [[nodiscard]] virtual result<std::string> read(std::string_view rel) const = 0;
  [[nodiscard]] virtual result<void> write(std::string_view rel, std::string_view content) = 0;
  [[nodiscard]] virtual result<std::vector<std::string>> list(std::string_view rel) const = 0;
  [[nodiscard]] virtual result<bool> is_directory(std::string_view rel) const = 0;
  [[nodiscard]] virtual result<std::uint64_t> inode(std::string_view rel) const = 0;
  [[nodiscard]] virtual result<void> make_dir(std::string_view rel) = 0;
  [[nodiscard]] virtual result<void> remove_dir(std::string_view rel) = 0;
  // flock(LOCK_EX) on the root, held until the returned handle is dropped.
  [[nodiscard]] virtual result<std::shared_ptr<void>> lock() = 0;
};

struct options {
  std::string root = "/sys/fs/resctrl";
  bool mba_mbps = false;  // the mount's mba_MBps option
  // Files kept open between calls and re-read with pread(2)
  // (src/backend/file_cache.hpp); 0 opens every file every time.
  std::size_t max_open_files = 256;

  // The resctrl mount in a mount table's text (mount_table.hpp): its mount
  // point beneath `fs_root` and whether it has mba_MBps. not_found when
  // resctrl is not mounted.
  [[nodiscard]] static result<options> parse(std::string_view mount_table_text, const std::string& fs_root = "");
};

class BULKHEAD_API backend final : public bulkhead::backend {
 public:
  // Reads info/ once. Errors: not_found when the root has no info/ (not a
  // resctrl mount), parse_error for malformed info files.
  [[nodiscard]] static result<std::unique_ptr<backend>> open(resctrl::options opts);
  [[nodiscard]] static result<std::unique_ptr<backend>> open(resctrl::options opts, std::unique_ptr<fs> files);
  ~backend() override;

  [[nodiscard]] std::string_view kind() const noexcept override { return "resctrl"; }
  [[nodiscard]] const std::string& source() const noexcept override;
  [[nodiscard]] const resctrl::info& info() const noexcept;

  // CPUs of the default group (cpus_list); memory and topology are not
  // known to resctrl and are left 0.
  [[nodiscard]] result<host_capacity> capacity() override;
  [[nodiscard]] result<std::vector<instance_info>> discover() override;
  [[nodiscard]] result<instance_reading> read(const instance_info& instance) override;
  [[nodiscard]] result<apply_report> apply(const instance_info& instance, const quota_spec& spec) override;

  [[nodiscard]] result<instance_info> create(std::string_view name, std::optional<qos_class> qos = std::nullopt,
                                             std::optional<std::string> tenant = std::nullopt);
  // Moves a task (thread id) into the group.
  [[nodiscard]] result<void> attach(const instance_info& instance, pid_t tid);
  // Removing a group moves its tasks back to the default group (resctrl.rst).
  [[nodiscard]] result<void> remove(const instance_info& instance);

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit backend(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

// --- definitions ------------------------------------------------------------------

inline result<options> options::parse(std::string_view mount_table_text, const std::string& fs_root) {
  auto t = parse_mount_table(mount_table_text);
  if (!t) return fail(std::move(t.error()));
  for (const auto& e : *t) {
    if (e.fstype != "resctrl") continue;
    options o;
    std::string base = fs_root;
    while (!base.empty() && base.back() == '/') base.pop_back();
    o.root = base + e.mount_point;
    o.mba_mbps = e.has_option("mba_MBps");
    return o;
  }
  return fail(errc::not_found, "the mount table has no resctrl mount (mount -t resctrl resctrl /sys/fs/resctrl)");
}

}  // namespace bulkhead::resctrl
