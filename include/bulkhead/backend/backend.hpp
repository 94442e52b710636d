// bulkhead/backend/backend.hpp: the one small interface every backend
// implements (libvirt, cgroup, resctrl, offload).
//
// Reading is separate from writing:
//   capacity()  what the host (or card) has;
//   discover()  instances with identity, kind, isolation, class, tenant;
//   read(i)     the spec as enforced now plus raw cumulative counters;
//   read_all()  discover + read of every instance, failures listed per
//               instance (a backend may do it in bulk);
//   apply(i,s)  enforce a validated spec; idempotent; reports each knob
//               changed (old -> new), each knob that failed and why, and each
//               knob the backend does not have.
//
// Thread-safety: a backend object is not thread-safe; use one per thread, or
// serialise calls. Backends know nothing of ledgers or journals.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"

namespace bulkhead {

struct knob_change {
  std::string knob;    // "cpu.quota", "disks['vda'].write_bytes_sec"
  std::string before;  // text form in the knob's unit, "unlimited" for none
  std::string after;
  friend bool operator==(const knob_change&, const knob_change&) = default;
};

struct knob_failure {
  std::string knob;
  error why;
};

struct apply_report {
  std::vector<knob_change> changed;
  std::vector<knob_failure> failed;
  std::vector<std::string> unsupported;  // knobs set in the spec this backend lacks
  [[nodiscard]] bool ok() const noexcept { return failed.empty() && unsupported.empty(); }
};

class BULKHEAD_API backend {
 public:
  virtual ~backend() = default;
  backend() = default;
  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;

  // "libvirt", "cgroup", "resctrl", "offload".
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;
  // The URI or root this backend reads.
  [[nodiscard]] virtual const std::string& source() const noexcept = 0;

  [[nodiscard]] virtual result<host_capacity> capacity() = 0;
  [[nodiscard]] virtual result<std::vector<instance_info>> discover() = 0;
  [[nodiscard]] virtual result<instance_reading> read(const instance_info& instance) = 0;

  // Default: discover() then read() of each; an instance whose read fails is
  // listed in failures. Fails as a whole only when discover() fails.
  [[nodiscard]] virtual result<host_reading> read_all() {
    auto found = discover();
    if (!found) return fail(std::move(found.error()));
    host_reading out;
    out.source = source();
    for (const auto& i : *found) {
      auto r = read(i);
      if (r) out.instances.push_back(std::move(*r));
      else out.failures.push_back(instance_failure{i.id.uuid, i.name, std::move(r.error())});
    }
    return out;
  }

  [[nodiscard]] virtual result<apply_report> apply(const instance_info& instance, const quota_spec& spec) = 0;
};

}  // namespace bulkhead
