// The test's guard against the host's other work (tests/live, cpu_cap and
// smoke_burn): see vcpu_priority below.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "bulkhead/model/quota.hpp"
#include "live_guest.hpp"

namespace bulkhead::test::live {

// The host's other work must not be what holds the vCPU below a target. On
// cgroup v1 the groups on the guest's path (machine/, the domain, vcpu0) each
// compete at their level with the root's tasks or their siblings by
// cpu.shares (1024 by default, the same as one nice-0 task), so two builds of
// 2 jobs held the burning vCPU at about 480 millicores with no cap at all.
// For the test the groups on the vCPU's path get the most shares the kernel
// allows (the weight of about 256 nice-0 tasks): the vCPU then gets a core
// whenever it can run, while the CFS quota under test (cpu.cfs_quota_us, which
// shares do not touch) still bounds it. The previous values come back at the
// end, also when the test fails. The starvation check below stays: a window
// in which the host still held the vCPU is not judged.
class vcpu_priority {
 public:
  explicit vcpu_priority(pid_t qemu) {
    const auto dom = live::domain_cgroup(qemu, "cpu");
    if (!dom) return;
    std::vector<std::filesystem::path> path{*dom / "vcpu0"};
    // Up to the hierarchy's root (the only group with release_agent), which
    // has no weight of its own.
    for (auto d = *dom; !d.empty() && !std::filesystem::exists(d / "release_agent"); d = d.parent_path()) {
      path.push_back(d);
      if (d == d.parent_path()) break;
    }
    for (const auto& d : path) {
      std::uint64_t old = 0;
      if (std::ifstream in(d / "cpu.shares"); !(in >> old)) continue;
      std::ofstream out(d / "cpu.shares");
      if (out << cpu_shares_max << std::flush) {
        saved_.emplace_back(d, old);
        raised_ += (raised_.empty() ? "" : ", ") + d.string();
      }
    }
  }
  vcpu_priority(const vcpu_priority&) = delete;
  vcpu_priority& operator=(const vcpu_priority&) = delete;
  ~vcpu_priority() {
    for (const auto& [d, old] : saved_) std::ofstream(d / "cpu.shares") << old << std::flush;
  }
  [[nodiscard]] const std::string& raised() const { return raised_; }

 private:
  std::vector<std::pair<std::filesystem::path, std::uint64_t>> saved_;
  std::string raised_;
};


}  // namespace bulkhead::test::live
