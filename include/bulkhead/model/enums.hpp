// bulkhead/model/enums.hpp: the closed vocabularies, with their text forms.
//
// Every enum has to_string() and parse_enum<E>(text); text forms are the
// lower-case names used in JSON, metrics labels and metadata, except qos_class
// whose text forms are Koordinator's upper-case class names. Parsing is exact
// (case-sensitive) and fails with errc::parse_error listing what is accepted.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "bulkhead/error.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead {

enum class resource_kind : std::uint8_t {
  cpu,
  memory,
  disk_bandwidth,
  disk_iops,
  net_bandwidth,
  net_pps,
  llc,
  memory_bandwidth,
  offload_function,
};

// Weakest to strongest. Ordered: a >= b means a isolates at least as well.
enum class isolation_level : std::uint8_t {
  process,     // a cgroup on a shared kernel
  vm,          // KVM, host-side I/O
  vm_offload,  // KVM, I/O on an offload card
  bare_metal,  // own compute board, I/O on an offload card
};

// How one resource of one instance is isolated.
enum class isolation_mode : std::uint8_t {
  shared,     // no control: competes freely
  weighted,   // proportional share (cpu.weight, shares, blkio weight)
  capped,     // a hard ceiling (quota, memory limit, iotune, bandwidth)
  dedicated,  // pinned / exclusive (cpuset, exclusive cache ways, own board)
  hardware,   // enforced by an offload card
};

// Koordinator's co-location classes, most to least protected.
enum class qos_class : std::uint8_t { SYSTEM, LSE, LSR, LS, BE };

enum class instance_kind : std::uint8_t {
  vm,          // a libvirt domain
  bare_metal,  // a compute board behind an offload card
  task,        // a co-located task in a cgroup
};

// libvirt's virDomainState, plus what the other backends need.
enum class instance_state : std::uint8_t {
  nostate,
  running,
  blocked,
  paused,
  shutdown,  // being shut down
  shutoff,
  crashed,
  pmsuspended,
};

template <class E>
struct enum_names;  // specialised below: static constexpr std::array<std::pair<E, std::string_view>, N> values

template <>
struct enum_names<resource_kind> {
  static constexpr std::array values{
      std::pair{resource_kind::cpu, std::string_view{"cpu"}},
      std::pair{resource_kind::memory, std::string_view{"memory"}},
      std::pair{resource_kind::disk_bandwidth, std::string_view{"disk_bandwidth"}},
      std::pair{resource_kind::disk_iops, std::string_view{"disk_iops"}},
      std::pair{resource_kind::net_bandwidth, std::string_view{"net_bandwidth"}},
      std::pair{resource_kind::net_pps, std::string_view{"net_pps"}},
      std::pair{resource_kind::llc, std::string_view{"llc"}},
      std::pair{resource_kind::memory_bandwidth, std::string_view{"memory_bandwidth"}},
      std::pair{resource_kind::offload_function, std::string_view{"offload_function"}},
  };
  static constexpr std::string_view what = "resource kind";
};
template <>
struct enum_names<isolation_level> {
  static constexpr std::array values{
      std::pair{isolation_level::process, std::string_view{"process"}},
      std::pair{isolation_level::vm, std::string_view{"vm"}},
      std::pair{isolation_level::vm_offload, std::string_view{"vm_offload"}},
      std::pair{isolation_level::bare_metal, std::string_view{"bare_metal"}},
  };
  static constexpr std::string_view what = "isolation level";
};
template <>
struct enum_names<isolation_mode> {
  static constexpr std::array values{
      std::pair{isolation_mode::shared, std::string_view{"shared"}},
      std::pair{isolation_mode::weighted, std::string_view{"weighted"}},
      std::pair{isolation_mode::capped, std::string_view{"capped"}},
      std::pair{isolation_mode::dedicated, std::string_view{"dedicated"}},
      std::pair{isolation_mode::hardware, std::string_view{"hardware"}},
  };
  static constexpr std::string_view what = "isolation mode";
};
template <>
struct enum_names<qos_class> {
  static constexpr std::array values{
      std::pair{qos_class::SYSTEM, std::string_view{"SYSTEM"}},
      std::pair{qos_class::LSE, std::string_view{"LSE"}},
      std::pair{qos_class::LSR, std::string_view{"LSR"}},
      std::pair{qos_class::LS, std::string_view{"LS"}},
      std::pair{qos_class::BE, std::string_view{"BE"}},
  };
  static constexpr std::string_view what = "qos class";
};
template <>
struct enum_names<instance_kind> {
  static constexpr std::array values{
      std::pair{instance_kind::vm, std::string_view{"vm"}},
      std::pair{instance_kind::bare_metal, std::string_view{"bare_metal"}},
      std::pair{instance_kind::task, std::string_view{"task"}},
  };
  static constexpr std::string_view what = "instance kind";
};
template <>
struct enum_names<instance_state> {
  static constexpr std::array values{
      std::pair{instance_state::nostate, std::string_view{"nostate"}},
      std::pair{instance_state::running, std::string_view{"running"}},
      std::pair{instance_state::blocked, std::string_view{"blocked"}},
      std::pair{instance_state::paused, std::string_view{"paused"}},
      std::pair{instance_state::shutdown, std::string_view{"shutdown"}},
      std::pair{instance_state::shutoff, std::string_view{"shutoff"}},
      std::pair{instance_state::crashed, std::string_view{"crashed"}},
      std::pair{instance_state::pmsuspended, std::string_view{"pmsuspended"}},
  };
  static constexpr std::string_view what = "instance state";
};

template <class E>
concept named_enum = requires { enum_names<E>::values; };

template <named_enum E>
[[nodiscard]] constexpr std::string_view to_string(E e) noexcept {
  for (const auto& [v, n] : enum_names<E>::values)
    if (v == e) return n;
  return "?";
}

template <named_enum E>
[[nodiscard]] result<E> parse_enum(std::string_view text) {
  for (const auto& [v, n] : enum_names<E>::values)
    if (n == text) return v;
  std::string accepted;
  for (const auto& [v, n] : enum_names<E>::values) {
    if (!accepted.empty()) accepted += ", ";
    accepted += n;
  }
  return fail(errc::parse_error, std::string(enum_names<E>::what) + " " + bulkhead::detail::quote(text) +
                                     " is not one of: " + accepted);
}

}  // namespace bulkhead
