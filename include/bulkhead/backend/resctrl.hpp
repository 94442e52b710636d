// bulkhead/backend/resctrl.hpp: the resctrl backend (cache and memory
// bandwidth allocation, Documentation/arch/x86/resctrl.rst; since 6.14
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

#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/backend.hpp"

namespace bulkhead {

// --- info/ -----------------------------------------------------------------------
struct resctrl_cache_info {
  std::string resource;           // "L3", "L3CODE", "L3DATA", "L2"
  std::uint64_t cbm_mask = 0;     // all ways: "100%"
  std::uint32_t min_cbm_bits = 1;
  std::uint32_t num_closids = 0;
  std::uint64_t shareable_bits = 0;  // ways hardware (I/O) may also use
  bool sparse_masks = false;         // non-contiguous masks allowed
  [[nodiscard]] std::uint32_t ways() const noexcept { return static_cast<std::uint32_t>(std::popcount(cbm_mask)); }
  friend bool operator==(const resctrl_cache_info&, const resctrl_cache_info&) = default;
};
struct resctrl_mb_info {
  std::uint32_t min_bandwidth = 0;   // percent
  std::uint32_t bandwidth_gran = 1;  // percent
  std::uint32_t num_closids = 0;
  bool delay_linear = true;
  friend bool operator==(const resctrl_mb_info&, const resctrl_mb_info&) = default;
};
struct resctrl_mon_info {
  std::uint32_t num_rmids = 0;
  std::vector<std::string> features;  // llc_occupancy, mbm_total_bytes, mbm_local_bytes ...
  friend bool operator==(const resctrl_mon_info&, const resctrl_mon_info&) = default;
};
struct resctrl_info {
  std::vector<resctrl_cache_info> caches;
  std::optional<resctrl_mb_info> mb;
  std::optional<resctrl_mon_info> mon;
  bool cdp = false;       // L3CODE and L3DATA instead of L3
  bool mba_mbps = false;  // MB values are MBps (mount option mba_MBps)
  // The smallest num_closids of the control resources (the kernel's limit).
  [[nodiscard]] std::uint32_t num_closids() const noexcept;
  [[nodiscard]] const resctrl_cache_info* cache(std::string_view resource) const noexcept;
};

// --- schemata ----------------------------------------------------------------------
struct schemata_line {
  std::string resource;  // "L3", "L3DATA", "MB" ...
  std::vector<std::pair<std::uint32_t, std::uint64_t>> values;  // (domain id, value), file order
  [[nodiscard]] const std::uint64_t* find(std::uint32_t domain) const noexcept {
    for (const auto& v : values)
      if (v.first == domain) return &v.second;
    return nullptr;
  }
  friend bool operator==(const schemata_line&, const schemata_line&) = default;
};
using resctrl_schemata = std::vector<schemata_line>;

// True for resources whose values are capacity bitmasks (hex): L2*, L3*.
[[nodiscard]] bool resctrl_is_cache(std::string_view resource) noexcept;
// Parses a schemata file (padding tolerated). `what` names it in errors.
[[nodiscard]] result<resctrl_schemata> parse_schemata(std::string_view text, std::string_view what = "schemata");
// "L3:0=7f0;2=7f0" (masks in hex, no padding), "MB:0=50".
[[nodiscard]] std::string format_schemata_line(const schemata_line& line);
[[nodiscard]] const schemata_line* find_line(const resctrl_schemata& s, std::string_view resource) noexcept;

// --- capacity bitmasks -----------------------------------------------------------------
[[nodiscard]] constexpr bool cbm_contiguous(std::uint64_t m) noexcept {
  if (m == 0) return false;
  const auto low = m >> std::countr_zero(m);
  return (low & (low + 1)) == 0;
}
// Within cbm_mask, at least min_cbm_bits set, contiguous unless sparse
// masks are allowed. `what` names the mask in errors.
[[nodiscard]] result<void> check_cbm(std::uint64_t mask, const resctrl_cache_info& info, std::string_view what);

// How the ways of one cache domain are used by everybody but the group being
// placed.
struct cbm_usage {
  std::uint64_t exclusive = 0;  // held by exclusive or pseudo-locked groups
  std::uint64_t shared = 0;     // held by other shareable groups (not the default group)
  // Shareable groups and the default group, each with its mask: an exclusive
  // placement must shrink those it overlaps.
  struct holder {
    std::string group;  // "" = the default group
    std::uint64_t mask = 0;
  };
  std::vector<holder> shrinkable;
};
struct cbm_choice {
  std::uint64_t mask = 0;
  std::vector<cbm_usage::holder> shrunk;  // holders with their new masks
};
// Chooses the mask of a group that wants `ways` ways of one domain, keeping
// `current` when it still fits (the policy in the header comment). Errors:
// out_of_range for a way count the cache cannot give, insufficient_capacity
// when nothing fits.
[[nodiscard]] result<cbm_choice> choose_cbm(const resctrl_cache_info& info, std::uint32_t ways, bool exclusive,
                                            std::uint64_t current, const cbm_usage& usage, std::string_view what);

// --- file access seam ------------------------------------------------------------------
// The file operations the backend performs beneath its root. open_resctrl_fs
// gives the real one (rooted_dir: nothing outside the root is reached);
// tests substitute a model of the kernel's schemata rules (a machine without
// resctrl has nothing else to test writes against).
class BULKHEAD_API resctrl_fs {
 public:
  virtual ~resctrl_fs() = default;
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
[[nodiscard]] BULKHEAD_API result<std::unique_ptr<resctrl_fs>> open_resctrl_fs(const std::string& root, std::size_t max_open_files = 256);

struct resctrl_options {
  std::string root = "/sys/fs/resctrl";
  bool mba_mbps = false;  // the mount's mba_MBps option
  // Files kept open between calls and re-read with pread(2)
  // (src/util/file_cache.hpp); 0 opens every file every time.
  std::size_t max_open_files = 256;
};
// The resctrl mount in a mount table's text (mount_table.hpp): its mount
// point beneath `fs_root` and whether it has mba_MBps. not_found when
// resctrl is not mounted.
[[nodiscard]] result<resctrl_options> resctrl_options_from_mounts(std::string_view mount_table_text,
                                                                  const std::string& fs_root = "");

class BULKHEAD_API resctrl_backend final : public backend {
 public:
  // Reads info/ once. Errors: not_found when the root has no info/ (not a
  // resctrl mount), parse_error for malformed info files.
  [[nodiscard]] static result<std::unique_ptr<resctrl_backend>> open(resctrl_options options);
  [[nodiscard]] static result<std::unique_ptr<resctrl_backend>> open(resctrl_options options,
                                                                     std::unique_ptr<resctrl_fs> files);
  ~resctrl_backend() override;

  [[nodiscard]] std::string_view kind() const noexcept override { return "resctrl"; }
  [[nodiscard]] const std::string& source() const noexcept override;
  [[nodiscard]] const resctrl_info& info() const noexcept;

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
  BULKHEAD_HIDDEN explicit resctrl_backend(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead

#include "bulkhead/backend/resctrl/detail/schemata_impl.hpp"  // IWYU pragma: export
