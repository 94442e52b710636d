// Real QEMU guests under libvirtd for the `live` suite (docs/live-tests.md).
//
// The harness (tests/live/harness.sh setup BUILDDIR) installs QEMU and libvirtd,
// unpacks a Debian cloud kernel into BUILDDIR/live/kernel and decides the
// accelerator; this header turns that into guests a test can drive:
//
//   const auto& env = live::require_live();        // or exit 77 saying what is missing
//   live::connection conn(env);
//   live::guest g(env, conn, {.tag = "burn", .mode = live::guest_mode::burn});
//   g.wait_ready();                                  // /init's READY line on the console
//   auto a = live::read_cpu(g.domain()); ...
//
// Guests are named bulkhead-live-<pid>-<seq>-<tag>, have one vCPU, a small
// memory, a raw virtio disk (vda) and a serial console written to a file. They
// are destroyed and undefined when the `guest` object goes away (also when the
// test fails or throws) and, as far as a signal handler can, when the process
// dies of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE or
// SIGILL. After SIGKILL, `harness.sh teardown` removes them.
//
// Errors: everything that talks to libvirt throws live::error naming the guest
// and libvirt's message. Thread-safety: one thread per guest object; the
// connection may be shared by the threads of one test.
#pragma once

#include <libvirt/libvirt.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "bulkhead/units.hpp"

namespace bulkhead::test::live {

class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class accelerator { kvm, tcg };
[[nodiscard]] std::string_view to_string(accelerator a) noexcept;

// What the harness prepared. Overrides for unusual setups: BULKHEAD_LIVE_DIR
// (instead of BUILDDIR/live), BULKHEAD_LIVE_URI (instead of qemu:///system),
// BULKHEAD_LIVE_ACCEL=kvm|tcg (instead of the harness's probe).
struct environment {
  std::filesystem::path dir;      // BUILDDIR/live
  // Where guests' folders go (BUILDDIR/live/guests names it): a folder the
  // harness made under /var/lib/libvirt/images, so that QEMU (user
  // libvirt-qemu) reaches the files wherever the build dir lives.
  std::filesystem::path guests;
  std::filesystem::path kernel;   // dir/kernel/vmlinuz
  std::filesystem::path modules;  // dir/kernel/modules/*.ko
  std::string kernel_package;     // e.g. linux-image-6.1.0-56-cloud-amd64
  accelerator accel = accelerator::tcg;
  std::string accel_reason;       // why this accelerator (the harness's probe)
  std::string uri;                // qemu:///system
};

// Checks, in this order: root, the harness's files (kernel, guests' folder), busybox-static and cpio,
// QEMU, and that libvirtd answers at the URI. Calls bulkhead::test::skip (exit
// 77) naming the first thing missing. On success prints one line to stderr
// naming the accelerator and why, and returns the same object every call.
[[nodiscard]] const environment& require_live();

// An owned read-write connection (virConnectOpen).
class connection {
 public:
  explicit connection(const environment& env);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  [[nodiscard]] virConnectPtr get() const noexcept { return conn_; }

 private:
  virConnectPtr conn_ = nullptr;
};

// What /init does after boot (kernel command line bulkhead.mode=...).
enum class guest_mode {
  idle,   // nothing
  burn,   // one busy loop: a whole vCPU
  write,  // dd to /dev/vda from 1 MiB to the end, conv=fsync, in a loop
  // The same with oflag=direct and bs=64k: one 64 KiB request in flight at a
  // time, so the disk's byte counter grows in 64 KiB steps (buffered
  // writeback sends batches QEMU's virtio-blk merges into 2 MiB requests).
  write_direct,
};
[[nodiscard]] std::string_view to_string(guest_mode m) noexcept;

struct guest_options {
  // Part of the domain name; [a-z0-9-], at most 24 characters.
  std::string tag = "guest";
  guest_mode mode = guest_mode::idle;
  // /init runs `reboot -f` this long after READY on the first boot of the disk
  // only (the boot counter lives on the disk), so the guest reboots exactly once.
  std::optional<std::chrono::seconds> reboot_after{};
  bytes memory{128 * 1024 * 1024};
  bytes disk_size{32 * 1024 * 1024};
  // Inserted verbatim as children of <domain> (e.g. "<cputune>...</cputune>").
  std::string extra_domain_xml{};
  // Inserted verbatim as children of the vda <disk> (e.g. "<iotune>...</iotune>").
  std::string extra_disk_xml{};
  // Appended to the kernel command line (e.g. "bulkhead.max_sectors_kb=64").
  std::string extra_cmdline{};
  // Start right away (virDomainCreate after define).
  bool start = true;
};

// A persistent domain (virDomainDefineXML) with its own folder
// env.guests/<name>/ holding a copy of the kernel, the initramfs built at
// construction (tests/live/guest-image.sh), the raw disk and console.log.
// `env` and `conn` must outlive the guest.
class guest {
 public:
  guest(const environment& env, const connection& conn, guest_options opts);
  // Destroys and undefines the domain and removes its folder; never throws.
  ~guest();
  guest(const guest&) = delete;
  guest& operator=(const guest&) = delete;

  // virDomainCreate: a new QEMU process (a new incarnation). The console keeps
  // what earlier boots wrote (append='on').
  void start();
  // virDomainDestroy (the domain stays defined).
  void destroy();
  void suspend();
  void resume();

  // Waits until the console shows "BULKHEAD-READY boot=<boot>"; returns the
  // time from the last start() (boot 1 after construction counts from it).
  // Throws when the timeout passes, the guest is no longer running, or /init
  // printed BULKHEAD-ERROR; the message carries the console's last lines.
  std::chrono::milliseconds wait_ready(int boot = 1, std::chrono::seconds timeout = std::chrono::seconds{120});

  [[nodiscard]] bool console_contains(std::string_view text) const;
  [[nodiscard]] std::string console() const;
  [[nodiscard]] std::string console_tail(std::size_t lines = 15) const;

  [[nodiscard]] virDomainPtr domain() const noexcept { return dom_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::filesystem::path& disk_path() const noexcept { return disk_; }
  [[nodiscard]] std::string uuid() const;
  // virDomainGetID: changes with every start; throws when not running.
  [[nodiscard]] unsigned int id() const;
  // virDomainGetState's state (VIR_DOMAIN_RUNNING, ...).
  [[nodiscard]] int state() const;
  // Looks the domain up again (by name) on `conn`: after libvirtd restarts,
  // the handle taken on the old connection is dead. `conn` must outlive the
  // guest.
  void rebind(const connection& conn);
  // The QEMU process (found by its -name guest=<name>); throws when not running.
  [[nodiscard]] pid_t qemu_pid() const;

 private:
  std::string xml() const;
  void prepare_files();   // folder, kernel copy, initramfs, disk
  void remove() noexcept;  // destroy, undefine, remove the folder
  [[noreturn]] void fail(std::string_view what) const;

  const environment& env_;
  guest_options opts_;
  std::string name_;
  std::filesystem::path dir_, kernel_, initrd_, disk_, console_;
  virDomainPtr dom_ = nullptr;
  std::chrono::steady_clock::time_point started_{};
};

// --- raw readings, independent of bulkhead (for cross-checks) ---------------

// The domain's CPU time as libvirt reports it.
struct cpu_reading {
  nanoseconds cpu_time{};                   // virDomainGetCPUStats(start_cpu = -1): the domain's cgroup
  std::optional<nanoseconds> vcpu_time{};   // sum of virDomainGetVcpus cpuTime; none when shut off
  mono_time at{};                           // when cpu_time was read
};
[[nodiscard]] cpu_reading read_cpu(virDomainPtr dom);

// virDomainBlockStats for one disk target (e.g. "vda").
[[nodiscard]] virDomainBlockStatsStruct read_block(virDomainPtr dom, const char* target = "vda");

// CPU used over wall time, as a share of one core (1000 = one whole core),
// rounded down. Throws when wall is not positive or used is negative.
[[nodiscard]] millicores share_of_core(nanoseconds used, nanoseconds wall);

// The vCPU threads of a QEMU process (named "CPU <n>/TCG" or "CPU <n>/KVM":
// libvirt starts QEMU with debug-threads=on): time on a host CPU and time
// runnable but waiting for one, summed (/proc/<pid>/task/<tid>/schedstat,
// kernel Documentation/scheduler/sched-stats.rst). A vCPU that burns is
// runnable all the time, however busy the host is.
struct sched_reading {
  nanoseconds on_cpu{};
  nanoseconds waiting{};
  mono_time at{};
};
[[nodiscard]] sched_reading read_vcpu_sched(pid_t qemu_pid);

// Per-vCPU figures from the bulk stats call (virDomainListGetStats with
// VIR_DOMAIN_STATS_VCPU), summed over the vCPUs: vcpu.<n>.time (the vCPU
// thread's utime + stime, clock-tick steps) and vcpu.<n>.delay (the time the
// thread was runnable but waited for a host CPU, from its schedstat; libvirt
// "vcpu.<num>.delay", docs/manpages/virsh.rst, domstats). `delay` is none when
// this libvirt does not report it.
struct vcpu_stats {
  nanoseconds time{};
  std::optional<nanoseconds> delay{};
  mono_time at{};
};
[[nodiscard]] vcpu_stats read_vcpu_stats(virDomainPtr dom);

// Resident memory of a process (VmRSS in /proc/<pid>/status).
[[nodiscard]] bytes process_rss(pid_t pid);

// The folder of the cgroup holding a QEMU process's domain: in the v1
// hierarchy of `v1_controller` ("memory", "cpuacct", ...), or in the v2
// hierarchy when it is empty. Found from /proc/<pid>/cgroup and
// /proc/self/mountinfo; the emulator/ or vcpuN/ sub-group libvirt puts
// threads in is replaced by its parent. nullopt when the process's group in
// that hierarchy is the root (libvirt did not use it) or it is not mounted.
[[nodiscard]] std::optional<std::filesystem::path> domain_cgroup(pid_t qemu_pid, std::string_view v1_controller);

// The time the cgroup libvirt puts vCPU `vcpu` in (vcpu<N> below the
// domain's group in the hierarchy holding the cpu controller) was throttled
// by its CFS quota: cgroup v1 cpu.stat throttled_time (ns) or v2 throttled_usec
// (Documentation/scheduler/sched-bwc.rst). A thread of a throttled group stays
// queued, so this time is also in the thread's run-queue wait (schedstat
// run_delay, libvirt's vcpu.<n>.delay). nullopt when there is no such group.
[[nodiscard]] std::optional<nanoseconds> vcpu_throttled(pid_t qemu_pid, unsigned vcpu);

// CPU usage of the cgroup holding a QEMU process's domain, read from the
// kernel: cgroup v1 cpuacct.usage when the process sits in a non-root cpuacct
// group, else cgroup v2 cpu.stat usage_usec; the emulator/vcpuN sub-group
// libvirt puts threads in is replaced by its parent (the domain's group).
// nullopt when no such cgroup is found.
[[nodiscard]] std::optional<nanoseconds> cgroup_cpu_usage(pid_t qemu_pid);

}  // namespace bulkhead::test::live
