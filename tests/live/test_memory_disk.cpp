// Live test 4 (issue 7): a memtune hard limit and a per-disk write cap set by
// bulkhead on a running guest.
//
// - bulkhead (libvirt::backend::apply, read-write qemu:///system) sets
//   memory.hard_limit (libvirt <memtune><hard_limit>) and the vda disk's
//   write_bytes_sec (libvirt <iotune>, QEMU's block throttling). Both are read
//   back from the running domain through libvirt's own calls
//   (virDomainGetMemoryParameters and virDomainGetBlockIoTune with
//   VIR_DOMAIN_AFFECT_LIVE: for a running domain the iotune comes from QEMU's
//   query-block, the hard limit from the domain's memory cgroup) and through
//   bulkhead's read(), and must equal the spec.
// - The guest writes to vda without pause: dd oflag=direct conv=fsync bs=64k
//   in a loop (guest_mode::write_direct), one 64 KiB request at a time, so
//   the byte counter moves in 64 KiB steps. (Buffered writes reach QEMU in
//   batches that virtio-blk merges into 2 MiB requests: the counter then
//   moves 2 MiB at a time, one step per second at 2 MiB/s, and a 10 s window
//   holds 10 or 11 of them, +/- 10%.) The disk, a sparse 256 MiB file, is
//   large enough that no pass of dd ends inside a measured window. Under a
//   2 MiB/s cap bulkhead's meter of disk/vda/write_bytes
//   must read 2 MiB/s +/- 5%, and 4 MiB/s +/- 5% after bulkhead raises the cap
//   live.
//
// Why the first seconds after each change are not measured: QEMU's throttling
// is a leaky bucket (docs/throttle.txt in QEMU's tree) that starts with room
// for a burst, and the requests the guest queued before the change complete
// under the old rate. So the meter takes its baseline `settle` after the
// change and measures a steady `window` from there.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "live_bulkhead.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t mib = 1024 * 1024;
constexpr auto settle = 4s;
constexpr auto window = 10s;
constexpr auto step = 500ms;

std::uint64_t live_hard_limit_kib(virDomainPtr dom) {
  int n = 0;
  if (virDomainGetMemoryParameters(dom, nullptr, &n, VIR_DOMAIN_AFFECT_LIVE) != 0 || n <= 0)
    throw live::error("virDomainGetMemoryParameters (count) failed");
  std::vector<virTypedParameter> p(static_cast<std::size_t>(n));
  if (virDomainGetMemoryParameters(dom, p.data(), &n, VIR_DOMAIN_AFFECT_LIVE) != 0)
    throw live::error("virDomainGetMemoryParameters failed");
  unsigned long long v = 0;
  const bool found = virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_MEMORY_HARD_LIMIT, &v) == 1;
  virTypedParamsClear(p.data(), n);
  if (!found) throw live::error("no " VIR_DOMAIN_MEMORY_HARD_LIMIT " in the live memory parameters");
  return v;
}

struct iotune_reading {
  unsigned long long total = 0, read = 0, write = 0, write_max = 0;
};

iotune_reading live_iotune(virDomainPtr dom, const char* disk) {
  int n = 0;
  if (virDomainGetBlockIoTune(dom, disk, nullptr, &n, VIR_DOMAIN_AFFECT_LIVE) != 0 || n <= 0)
    throw live::error("virDomainGetBlockIoTune (count) failed");
  std::vector<virTypedParameter> p(static_cast<std::size_t>(n));
  if (virDomainGetBlockIoTune(dom, disk, p.data(), &n, VIR_DOMAIN_AFFECT_LIVE) != 0)
    throw live::error("virDomainGetBlockIoTune failed");
  iotune_reading r;
  virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC, &r.total);
  virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_BLOCK_IOTUNE_READ_BYTES_SEC, &r.read);
  virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC, &r.write);
  virTypedParamsGetULLong(p.data(), n, VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC_MAX, &r.write_max);
  virTypedParamsClear(p.data(), n);
  return r;
}

// The kernel's limit for the domain's memory cgroup: v1 memory.limit_in_bytes
// or v2 memory.max; nullopt when neither hierarchy holds the domain.
std::optional<std::uint64_t> kernel_memory_limit(pid_t qemu) {
  std::uint64_t v = 0;
  if (auto d = live::domain_cgroup(qemu, "memory"))
    if (std::ifstream f(*d / "memory.limit_in_bytes"); f >> v) return v;
  if (auto d = live::domain_cgroup(qemu, ""))
    if (std::ifstream f(*d / "memory.max"); f >> v) return v;
  return std::nullopt;
}

quota_spec disk_cap(std::uint64_t bytes_per_sec) {
  quota_spec s;
  disk_spec d;
  d.target = "vda";
  d.write_bytes_sec = limit<bytes_per_second>{bytes_per_second{bytes_per_sec}};
  s.disks.push_back(d);
  return s;
}

void check_apply(const result<apply_report>& rep) {
  REQUIRE_MESSAGE(rep.has_value(), (rep ? std::string() : rep.error().describe()));
  for (const auto& f : rep->failed) FAIL_CHECK(f.knob << ": " << f.why.describe());
  CHECK(rep->unsupported.empty());
  CHECK_FALSE(rep->changed.empty());
}

}  // namespace

TEST_CASE("bulkhead's memtune hard limit and disk write cap reach QEMU; the guest writes at the cap") {
  const auto& env = live::require_live();
  live::connection conn(env);
  live::guest g(env, conn,
                {.tag = "memdisk", .mode = live::guest_mode::write_direct, .disk_size = bytes{256 * mib}});
  const auto boot = g.wait_ready();
  MESSAGE("boot to /init (" << live::to_string(env.accel) << "): " << boot.count() << " ms");

  auto be = live::bulkhead_backend(env);
  const auto inst = live::find_instance(*be, g);

  // --- the memory hard limit and the first write cap, in one apply ------------
  const bytes hard{1024 * mib};  // far above what QEMU holds (about 260 MiB): the guest runs on
  quota_spec spec = disk_cap(2 * mib);
  spec.memory.hard_limit = limit<bytes>{hard};
  check_apply(be->apply(inst, spec));

  CHECK(live_hard_limit_kib(g.domain()) == hard.count() / 1024);
  const auto kernel = kernel_memory_limit(g.qemu_pid());
  REQUIRE_MESSAGE(kernel.has_value(), "no memory cgroup found for the guest's QEMU process");
  CHECK(*kernel == hard.count());
  const auto io1 = live_iotune(g.domain(), "vda");
  CHECK(io1.write == 2 * mib);
  CHECK(io1.total == 0);
  CHECK(io1.read == 0);
  const auto back1 = live::read_instance(*be, inst);
  CHECK(back1.enforced.memory.hard_limit == spec.memory.hard_limit);
  REQUIRE(back1.enforced.disk("vda") != nullptr);
  CHECK(back1.enforced.disk("vda")->write_bytes_sec == spec.disks[0].write_bytes_sec);

  live::counter_meter wr(*be, inst, "disk/vda/write_bytes");
  const auto measure = [&](std::uint64_t cap) {
    std::this_thread::sleep_for(settle);  // the steady window starts after it
    const auto a = live::read_vcpu_stats(g.domain());
    const auto m = wr.measure(window, step);
    const auto b = live::read_vcpu_stats(g.domain());
    const auto rate = live::per_second(m);
    const auto waited = live::share_of_core(*b.delay - *a.delay, b.at - a.at).count();
    const auto reqs = live::read_block(g.domain(), "vda");
    MESSAGE("cap " << cap << " B/s: bulkhead's meter read " << static_cast<std::uint64_t>(m.amount) << " bytes in "
                   << m.covered.count() / 1000000 << " ms = " << rate << " B/s (" << m.deltas
                   << " deltas); vCPU waited for a host CPU " << waited << " millicores; mean request "
                   << (reqs.wr_req > 0 ? reqs.wr_bytes / reqs.wr_req : 0) << " bytes; deltas (bytes/ms): "
                   << live::describe_deltas(m));
    const std::uint64_t tol = cap / 20;  // 5%
    CHECK_MESSAGE(rate >= cap - tol, "below the cap by more than 5%: the guest wrote " << rate << " B/s (its vCPU waited for a host CPU "
                                                                                       << waited << " millicores of the window)");
    CHECK(rate <= cap + tol);
  };
  measure(2 * mib);

  // --- raised live to 4 MiB/s --------------------------------------------------
  check_apply(be->apply(inst, disk_cap(4 * mib)));
  const auto io2 = live_iotune(g.domain(), "vda");
  CHECK(io2.write == 4 * mib);
  CHECK(io2.total == 0);
  const auto back2 = live::read_instance(*be, inst);
  REQUIRE(back2.enforced.disk("vda") != nullptr);
  CHECK(back2.enforced.disk("vda")->write_bytes_sec == limit<bytes_per_second>{bytes_per_second{4 * mib}});
  CHECK(back2.enforced.memory.hard_limit == spec.memory.hard_limit);  // untouched by the second apply
  measure(4 * mib);
}
