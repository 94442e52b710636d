// bulkhead/backend/cgroup/backend.hpp: the cgroup backend for co-located
// tasks, compiled in libbulkhead-core.
//
// One backend manages the task groups directly beneath one parent group
// (`cgroup::options::parent`) in every hierarchy that serves a managed
// controller. Which hierarchy serves what comes from the mount table the
// caller gives (cgroup::mounts, bulkhead/backend/cgroup/mounts.hpp):
//   - unified: only cgroup2 is mounted; every controller is v2;
//   - legacy:  only v1 hierarchies (one per controller, or co-mounted such
//              as cpu,cpuacct);
//   - hybrid:  v1 controller hierarchies plus a cgroup2 mount (systemd's
//              /sys/fs/cgroup/unified). A controller bound to a v1 hierarchy
//              is used there; one that is not is used in cgroup2 when the
//              cgroup2 parent lists it in cgroup.controllers.
// A controller served by neither makes its knobs unsupported.
//
// Knobs (quota_spec field -> file; Documentation/admin-guide/cgroup-v2.rst,
// cgroup-v1/{cpuacct,memory,blkio-controller,cpusets}.rst,
// Documentation/scheduler/sched-bwc.rst):
//   cpu.quota/period  v2 cpu.max "$MAX $PERIOD"       v1 cpu.cfs_quota_us (-1 = none), cpu.cfs_period_us
//   cpu.weight        v2 cpu.weight 1..10000           v1 cpu.shares, converted (drift.hpp)
//   cpu.shares        v2 cpu.weight, converted         v1 cpu.shares 2..262144
//   cpu.burst         v2 cpu.max.burst                 v1 cpu.cfs_burst_us (when the kernel has it)
//   cpu.cpus/mems     cpuset.cpus / cpuset.mems (read back: the effective sets)
//   memory.hard_limit v2 memory.max                    v1 memory.limit_in_bytes
//   memory.high       v2 memory.high                   v1: unsupported
//   memory.min/low    v2 memory.min / memory.low       v1: unsupported
//   memory.soft_limit v2: unsupported                  v1 memory.soft_limit_in_bytes
//   memory.swap_hard_limit v2: unsupported (memory.swap.max counts swap only)
//                                                      v1 memory.memsw.limit_in_bytes (memory + swap)
//   disks['MAJ:MIN'].read/write_bytes_sec, read/write_iops_sec
//                     v2 io.max rbps/wbps/riops/wiops  v1 blkio.throttle.{read,write}_{bps,iops}_device
//   disks['MAJ:MIN'].weight  v2 io.weight "MAJ:MIN W" v1 blkio.weight_device
//   blkio_weight      v2 io.weight "default W"         v1 blkio.weight
// Every other knob (vCPUs, emulator, total_* and *_max disk limits,
// interfaces, llc, ...) is reported unsupported by apply(). A knob whose file
// is missing for a group (a controller not enabled, an older kernel) is
// unsupported for that group; read() lists it in instance_reading::unsupported.
//
// apply() reads the files of the knobs the spec sets and writes only those
// whose value differs; an unchanged spec costs reads only. Before writing,
// values the kernel would refuse, round or clamp are refused with the
// knob's name: quota/period outside sched-bwc's range, a burst above the
// quota, memory limits that are not a whole number of pages or are above
// the kernel's page-counter maximum, I/O limits of 0 (v1 reads 0 as "no
// limit") or iops above 2^32-1, a v1 cpuset that is not within the parent's.
// Every write is read back; a value the kernel did not take is a failure.
//
// Counters (instance_reading::usage): v2 cpu.stat (usage_usec, user_usec,
// system_usec, nr_periods, nr_throttled, throttled_usec), memory.current,
// memory.events oom_kill, io.stat; v1 cpuacct.usage(_user,_sys) (ns),
// cpu.stat, memory.usage_in_bytes, memory.oom_control oom_kill,
// blkio.throttle.io_service_bytes / io_serviced.
//
// Identity: bulkhead/backend/task_id.hpp (uuid from the group name;
// incarnation = the inode of the group's directory in the hierarchy that
// serves cpu, or the first one). instance_info::state is running when the
// group holds processes, nostate when it is empty. qos class and tenant are
// not stored in cgroupfs; create() returns them as given.
//
// Safety: group names pass validate_name(); every file is opened beneath the
// hierarchy's parent directory through rooted_dir (no link out of it is
// followed).
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
#include "bulkhead/backend/cgroup/mounts.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::cgroup {

struct options {
  // Mount points are looked up beneath this directory: "/" on a host, a
  // fixture tree in tests.
  std::string fs_root = "/";
  cgroup::mounts mounts;
  // The group, relative to each hierarchy's mount point, whose children are
  // the tasks: "" (the hierarchy root), "bulkhead", "machine.slice/tasks".
  // It must exist in every hierarchy used. Each component is validated.
  std::string parent;
  std::vector<cgroup::controller> controllers{all_controllers.begin(), all_controllers.end()};
  // Bytes per page (memory limits are kept in pages); 0: this machine's.
  std::uint64_t page_size = 0;
  // Control files kept open between calls and re-read with pread(2)
  // (src/backend/file_cache.hpp); 0 opens every file every time.
  std::size_t max_open_files = 512;
};

// Where one managed controller is served.
struct binding {
  cgroup::controller controller;
  bool v2 = false;
  std::string path;  // the parent group's directory, e.g. /sys/fs/cgroup/cpu/bulkhead
};

class BULKHEAD_API backend final : public bulkhead::backend {
 public:
  // Opens every hierarchy serving a managed controller at `parent`.
  // Errors: invalid_argument / unsafe_path for a bad parent, not_found when
  // the parent does not exist in a hierarchy, unsupported when no managed
  // controller is served at all.
  [[nodiscard]] static result<std::unique_ptr<backend>> open(cgroup::options opts);
  ~backend() override;

  [[nodiscard]] std::string_view kind() const noexcept override { return "cgroup"; }
  // "cgroup hybrid: cpu v1 /sys/fs/cgroup/cpu/bulkhead, ..."
  [[nodiscard]] const std::string& source() const noexcept override;
  [[nodiscard]] cgroup::layout layout() const noexcept;
  [[nodiscard]] const std::vector<binding>& bindings() const noexcept;

  // CPUs, memory and NUMA nodes of the host from <fs_root>/sys/devices/system
  // (cpu/online, node/node*/{cpulist,meminfo}) and <fs_root>/proc/meminfo.
  // Topology counts (sockets, cores, threads) are left 0: not read here.
  [[nodiscard]] result<host_capacity> capacity() override;
  // The groups directly beneath the parent, in any managed hierarchy, by
  // name. Directory names that fail validate_name() are not task groups
  // bulkhead could manage and are skipped.
  [[nodiscard]] result<std::vector<instance_info>> discover() override;
  // Errors: not_found (vanished when `instance` carried an incarnation) when
  // the group is gone; invalid_argument when instance.id is not the one of
  // its name.
  [[nodiscard]] result<instance_reading> read(const instance_info& instance) override;
  [[nodiscard]] result<apply_report> apply(const instance_info& instance, const quota_spec& spec) override;

  // Creates the group in every managed hierarchy (v2: after enabling the
  // managed controllers in the parent's cgroup.subtree_control; v1 cpuset:
  // copying the parent's cpus and mems so tasks can join). A group present
  // in some hierarchies only (an interrupted create) is completed.
  // Errors: already_exists when it is complete already.
  [[nodiscard]] result<instance_info> create(std::string_view name, std::optional<qos_class> qos = std::nullopt,
                                             std::optional<std::string> tenant = std::nullopt);
  // Moves a process (all its threads) into the group in every hierarchy.
  [[nodiscard]] result<void> attach(const instance_info& instance, pid_t pid);
  // The processes in the group (cgroup.procs of its primary hierarchy).
  [[nodiscard]] result<std::vector<pid_t>> processes(const instance_info& instance);
  // Removes the group from every hierarchy. The group must hold no
  // processes (errc::conflict, the kernel's EBUSY, otherwise). Removal goes
  // on in the other hierarchies after one fails; the first error is returned
  // and calling remove() again finishes the job.
  [[nodiscard]] result<void> remove(const instance_info& instance);

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit backend(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead::cgroup
