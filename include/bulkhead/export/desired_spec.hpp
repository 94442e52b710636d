// bulkhead/export/desired_spec.hpp: the desired-spec file that maps instances
// to the specs they should have (docs/desired-spec.md), and the JSON form of
// a quota_spec in it.
//
// A quota_spec has two JSON forms: the canonical one found by ADL
// (nlohmann::json j = spec; the "quota" object of bulkhead-inspect --json,
// bulkhead/export/json.hpp), and this file's, which is written and read by
// the named functions desired_spec_json() and parse_desired_spec(): here a
// spec is input (only the knobs it manages appear, and parsing validates).
// Header code, except open_desired_specs() (reads a file; libbulkhead-core).
//
// The format is a contract: fields may be added, none renamed.
//   - integers only (JSON numbers with a fraction or exponent are refused),
//     non-negative, with the unit in the field name (_us, _bytes, _bytes_sec,
//     _iops_sec, _millicores ...);
//   - a limit with no bound is the string "unlimited", never -1 or 0;
//   - cpu and node lists are strings in the kernel's list format ("0-3,8");
//     cache masks are hex strings with a 0x prefix ("0x7f0");
//   - an absent field is a knob the spec does not manage;
//   - unknown fields and duplicate keys are errors (a typo must not turn a
//     limit off silently).
// Errors name the field path and the bad value:
//   "instances['web-1'].cpu.quota_us: \"20%\" is neither a non-negative integer nor \"unlimited\"".
// Every parsed spec also passes bulkhead::validate().
//
// File form:
//   {"version": 1,
//    "instances": {"<uuid or name>": {<spec>}, ...}}
// A key that parses as a UUID is a UUID (stored lower-case canonical);
// any other key is an instance name.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/api.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/model/instance.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead {

inline constexpr std::uint64_t desired_spec_format_version = 1;
// A desired-spec file larger than this is refused (open_desired_specs).
inline constexpr std::size_t desired_spec_max_file_bytes = 64u << 20;

// Instance key (canonical UUID text or name) -> desired spec.
using desired_specs = std::map<std::string, quota_spec>;

namespace detail::desired {

using json = nlohmann::json;

[[nodiscard]] inline std::string value_text(const json& v) {
  std::string s = v.dump();
  if (s.size() > 64) s = s.substr(0, 64) + "...";
  return s;
}

[[nodiscard]] inline result<std::uint64_t> get_u64(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return fail(errc::out_of_range, path + ": " + value_text(v) + " is negative");
  if (v.is_number_float())
    return fail(errc::parse_error, path + ": " + value_text(v) +
                                       " is not an integer (integers only; past 18446744073709551615 a number "
                                       "is read as a fraction too)");
  return fail(errc::parse_error, path + ": " + value_text(v) + " is not a non-negative integer");
}

[[nodiscard]] inline result<std::uint32_t> get_u32(const json& v, const std::string& path) {
  auto r = get_u64(v, path);
  if (!r) return fail(std::move(r.error()));
  if (*r > std::numeric_limits<std::uint32_t>::max())
    return fail(errc::out_of_range, path + ": " + value_text(v) + " is above 4294967295");
  return static_cast<std::uint32_t>(*r);
}

template <class Q>
[[nodiscard]] result<Q> get_q(const json& v, const std::string& path) {
  auto r = get_u64(v, path);
  if (!r) return fail(std::move(r.error()));
  return Q{*r};
}

[[nodiscard]] inline result<microseconds> get_us(const json& v, const std::string& path) {
  auto r = get_u64(v, path);
  if (!r) return fail(std::move(r.error()));
  if (*r > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return fail(errc::out_of_range, path + ": " + value_text(v) + " us does not fit a signed 64-bit duration");
  return microseconds{static_cast<std::int64_t>(*r)};
}

[[nodiscard]] inline bool is_unlimited(const json& v) { return v.is_string() && v.get_ref<const std::string&>() == "unlimited"; }

template <class Q>
[[nodiscard]] result<limit<Q>> get_limit(const json& v, const std::string& path) {
  if (is_unlimited(v)) return limit<Q>{unlimited};
  if (!v.is_number())
    return fail(errc::parse_error, path + ": " + value_text(v) + " is neither a non-negative integer nor \"unlimited\"");
  auto r = get_q<Q>(v, path);
  if (!r) return fail(std::move(r.error()));
  return limit<Q>{*r};
}

[[nodiscard]] inline result<limit<microseconds>> get_us_limit(const json& v, const std::string& path) {
  if (is_unlimited(v)) return limit<microseconds>{unlimited};
  if (!v.is_number())
    return fail(errc::parse_error, path + ": " + value_text(v) + " is neither a non-negative integer nor \"unlimited\"");
  auto r = get_us(v, path);
  if (!r) return fail(std::move(r.error()));
  return limit<microseconds>{*r};
}

[[nodiscard]] inline result<std::string> get_string(const json& v, const std::string& path) {
  if (!v.is_string()) return fail(errc::parse_error, path + ": " + value_text(v) + " is not a string");
  return v.get<std::string>();
}

[[nodiscard]] inline result<bool> get_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) return fail(errc::parse_error, path + ": " + value_text(v) + " is not true or false");
  return v.get<bool>();
}

[[nodiscard]] inline result<cpuset> get_cpuset(const json& v, const std::string& path) {
  auto s = get_string(v, path);
  if (!s) return fail(std::move(s.error()));
  auto c = cpuset::parse(*s);
  if (!c) return fail(c.error().code(), path + ": " + c.error().message());
  return *c;
}

[[nodiscard]] inline result<std::uint64_t> get_mask(const json& v, const std::string& path) {
  auto s = get_string(v, path);
  if (!s) return fail(std::move(s.error()));
  if (s->size() < 3 || (*s)[0] != '0' || ((*s)[1] != 'x' && (*s)[1] != 'X'))
    return fail(errc::parse_error, path + ": " + value_text(v) + " is not a hex mask with a 0x prefix (\"0x7f0\")");
  auto m = bulkhead::detail::parse_hex_u64(*s, path);
  if (!m) return fail(std::move(m.error()));
  return *m;
}

// Calls f(key, value) for each member of an object after checking that every
// key is one of `known`.
template <class F>
[[nodiscard]] result<void> each_field(const json& obj, const std::string& path, std::initializer_list<std::string_view> known,
                                      F&& f) {
  if (!obj.is_object()) return fail(errc::parse_error, path + ": " + value_text(obj) + " is not an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (auto k : known) ok = ok || k == it.key();
    if (!ok) {
      std::string list;
      for (auto k : known) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      return fail(errc::parse_error, path + ": unknown field " + bulkhead::detail::quote(it.key()) + " (known: " + list + ")");
    }
  }
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (auto r = f(it.key(), it.value()); !r) return r;
  return {};
}

template <class F>
[[nodiscard]] result<void> each_element(const json& arr, const std::string& path, F&& f) {
  if (!arr.is_array()) return fail(errc::parse_error, path + ": " + value_text(arr) + " is not an array");
  for (std::size_t i = 0; i < arr.size(); ++i)
    if (auto r = f(arr[i], path + "[" + std::to_string(i) + "]"); !r) return r;
  return {};
}

// Assigns the result of a getter to a knob, passing errors through.
#define BULKHEAD_SPEC_SET(target, expr)          \
  do {                                           \
    auto bulkhead_r_ = (expr);                   \
    if (!bulkhead_r_) return fail(std::move(bulkhead_r_.error())); \
    (target) = std::move(*bulkhead_r_);          \
  } while (0)

[[nodiscard]] inline result<void> read_cpu(const json& j, const std::string& path, cpu_spec& c) {
  return each_field(j, path,
                    {"vcpus", "max_vcpus", "request_millicores", "shares", "weight", "period_us", "quota_us",
                     "emulator_period_us", "emulator_quota_us", "burst_us", "vcpu_pins", "emulator_pin", "cpus", "mems"},
                    [&](const std::string& k, const json& v) -> result<void> {
                      const std::string p = path + "." + k;
                      if (k == "vcpus") BULKHEAD_SPEC_SET(c.vcpus, get_u32(v, p));
                      else if (k == "max_vcpus") BULKHEAD_SPEC_SET(c.max_vcpus, get_u32(v, p));
                      else if (k == "request_millicores") BULKHEAD_SPEC_SET(c.request, get_q<millicores>(v, p));
                      else if (k == "shares") BULKHEAD_SPEC_SET(c.shares, get_u64(v, p));
                      else if (k == "weight") BULKHEAD_SPEC_SET(c.weight, get_u64(v, p));
                      else if (k == "period_us") BULKHEAD_SPEC_SET(c.period, get_us(v, p));
                      else if (k == "quota_us") BULKHEAD_SPEC_SET(c.quota, get_us_limit(v, p));
                      else if (k == "emulator_period_us") BULKHEAD_SPEC_SET(c.emulator_period, get_us(v, p));
                      else if (k == "emulator_quota_us") BULKHEAD_SPEC_SET(c.emulator_quota, get_us_limit(v, p));
                      else if (k == "burst_us") BULKHEAD_SPEC_SET(c.burst, get_us(v, p));
                      else if (k == "emulator_pin") BULKHEAD_SPEC_SET(c.emulator_pin, get_cpuset(v, p));
                      else if (k == "cpus") BULKHEAD_SPEC_SET(c.cpus, get_cpuset(v, p));
                      else if (k == "mems") BULKHEAD_SPEC_SET(c.mems, get_cpuset(v, p));
                      else if (k == "vcpu_pins") {
                        std::vector<vcpu_pin> pins;
                        auto r = each_element(v, p, [&](const json& e, const std::string& ep) -> result<void> {
                          vcpu_pin pin;
                          bool has_vcpu = false, has_cpus = false;
                          auto fr = each_field(e, ep, {"vcpu", "cpus"}, [&](const std::string& fk, const json& fv) -> result<void> {
                            if (fk == "vcpu") {
                              BULKHEAD_SPEC_SET(pin.vcpu, get_u32(fv, ep + ".vcpu"));
                              has_vcpu = true;
                            } else {
                              BULKHEAD_SPEC_SET(pin.cpus, get_cpuset(fv, ep + ".cpus"));
                              has_cpus = true;
                            }
                            return {};
                          });
                          if (!fr) return fr;
                          if (!has_vcpu || !has_cpus) return fail(errc::parse_error, ep + ": needs both \"vcpu\" and \"cpus\"");
                          pins.push_back(std::move(pin));
                          return {};
                        });
                        if (!r) return r;
                        c.vcpu_pins = std::move(pins);
                      }
                      return {};
                    });
}

[[nodiscard]] inline result<void> read_memory(const json& j, const std::string& path, memory_spec& m) {
  return each_field(j, path,
                    {"max_bytes", "current_bytes", "request_bytes", "hard_limit_bytes", "soft_limit_bytes",
                     "swap_hard_limit_bytes", "high_bytes", "min_bytes", "low_bytes", "numa"},
                    [&](const std::string& k, const json& v) -> result<void> {
                      const std::string p = path + "." + k;
                      if (k == "max_bytes") BULKHEAD_SPEC_SET(m.max, get_q<bytes>(v, p));
                      else if (k == "current_bytes") BULKHEAD_SPEC_SET(m.current, get_q<bytes>(v, p));
                      else if (k == "request_bytes") BULKHEAD_SPEC_SET(m.request, get_q<bytes>(v, p));
                      else if (k == "hard_limit_bytes") BULKHEAD_SPEC_SET(m.hard_limit, get_limit<bytes>(v, p));
                      else if (k == "soft_limit_bytes") BULKHEAD_SPEC_SET(m.soft_limit, get_limit<bytes>(v, p));
                      else if (k == "swap_hard_limit_bytes") BULKHEAD_SPEC_SET(m.swap_hard_limit, get_limit<bytes>(v, p));
                      else if (k == "high_bytes") BULKHEAD_SPEC_SET(m.high, get_limit<bytes>(v, p));
                      else if (k == "min_bytes") BULKHEAD_SPEC_SET(m.min, get_q<bytes>(v, p));
                      else if (k == "low_bytes") BULKHEAD_SPEC_SET(m.low, get_q<bytes>(v, p));
                      else if (k == "numa") {
                        numa_tune n;
                        bool has_mode = false, has_nodes = false;
                        auto r = each_field(v, p, {"mode", "nodeset"}, [&](const std::string& nk, const json& nv) -> result<void> {
                          if (nk == "mode") {
                            BULKHEAD_SPEC_SET(n.mode, get_string(nv, p + ".mode"));
                            has_mode = true;
                          } else {
                            BULKHEAD_SPEC_SET(n.nodeset, get_cpuset(nv, p + ".nodeset"));
                            has_nodes = true;
                          }
                          return {};
                        });
                        if (!r) return r;
                        if (!has_mode || !has_nodes) return fail(errc::parse_error, p + ": needs both \"mode\" and \"nodeset\"");
                        m.numa = std::move(n);
                      }
                      return {};
                    });
}

[[nodiscard]] inline result<disk_spec> read_disk(const json& j, const std::string& path) {
  disk_spec d;
  bool has_target = false;
  auto r = each_field(
      j, path,
      {"target", "total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec", "read_iops_sec",
       "write_iops_sec", "total_bytes_sec_max", "read_bytes_sec_max", "write_bytes_sec_max", "total_iops_sec_max",
       "read_iops_sec_max", "write_iops_sec_max", "weight"},
      [&](const std::string& k, const json& v) -> result<void> {
        const std::string p = path + "." + k;
        using B = bytes_per_second;
        using O = ops_per_second;
        if (k == "target") {
          BULKHEAD_SPEC_SET(d.target, get_string(v, p));
          has_target = true;
        } else if (k == "total_bytes_sec") BULKHEAD_SPEC_SET(d.total_bytes_sec, get_limit<B>(v, p));
        else if (k == "read_bytes_sec") BULKHEAD_SPEC_SET(d.read_bytes_sec, get_limit<B>(v, p));
        else if (k == "write_bytes_sec") BULKHEAD_SPEC_SET(d.write_bytes_sec, get_limit<B>(v, p));
        else if (k == "total_iops_sec") BULKHEAD_SPEC_SET(d.total_iops_sec, get_limit<O>(v, p));
        else if (k == "read_iops_sec") BULKHEAD_SPEC_SET(d.read_iops_sec, get_limit<O>(v, p));
        else if (k == "write_iops_sec") BULKHEAD_SPEC_SET(d.write_iops_sec, get_limit<O>(v, p));
        else if (k == "total_bytes_sec_max") BULKHEAD_SPEC_SET(d.total_bytes_sec_max, get_limit<B>(v, p));
        else if (k == "read_bytes_sec_max") BULKHEAD_SPEC_SET(d.read_bytes_sec_max, get_limit<B>(v, p));
        else if (k == "write_bytes_sec_max") BULKHEAD_SPEC_SET(d.write_bytes_sec_max, get_limit<B>(v, p));
        else if (k == "total_iops_sec_max") BULKHEAD_SPEC_SET(d.total_iops_sec_max, get_limit<O>(v, p));
        else if (k == "read_iops_sec_max") BULKHEAD_SPEC_SET(d.read_iops_sec_max, get_limit<O>(v, p));
        else if (k == "write_iops_sec_max") BULKHEAD_SPEC_SET(d.write_iops_sec_max, get_limit<O>(v, p));
        else if (k == "weight") BULKHEAD_SPEC_SET(d.weight, get_u64(v, p));
        return {};
      });
  if (!r) return fail(std::move(r.error()));
  if (!has_target) return fail(errc::parse_error, path + ": needs \"target\" (a libvirt disk target such as \"vda\", or a cgroup device \"MAJ:MIN\")");
  return d;
}

[[nodiscard]] inline result<direction_bandwidth> read_direction(const json& j, const std::string& path) {
  direction_bandwidth b;
  bool has_average = false;
  auto r = each_field(j, path, {"average_bytes_sec", "peak_bytes_sec", "burst_bytes", "floor_bytes_sec", "packets_sec"},
                      [&](const std::string& k, const json& v) -> result<void> {
                        const std::string p = path + "." + k;
                        if (k == "average_bytes_sec") {
                          BULKHEAD_SPEC_SET(b.average, get_limit<bytes_per_second>(v, p));
                          has_average = true;
                        } else if (k == "peak_bytes_sec") BULKHEAD_SPEC_SET(b.peak, get_q<bytes_per_second>(v, p));
                        else if (k == "burst_bytes") BULKHEAD_SPEC_SET(b.burst, get_q<bytes>(v, p));
                        else if (k == "floor_bytes_sec") BULKHEAD_SPEC_SET(b.floor, get_q<bytes_per_second>(v, p));
                        else if (k == "packets_sec") BULKHEAD_SPEC_SET(b.packets, get_limit<packets_per_second>(v, p));
                        return {};
                      });
  if (!r) return fail(std::move(r.error()));
  if (!has_average) return fail(errc::parse_error, path + ": needs \"average_bytes_sec\" (a number or \"unlimited\")");
  return b;
}

[[nodiscard]] inline result<interface_spec> read_interface(const json& j, const std::string& path) {
  interface_spec i;
  bool has_mac = false;
  auto r = each_field(j, path, {"mac", "target", "inbound", "outbound"}, [&](const std::string& k, const json& v) -> result<void> {
    const std::string p = path + "." + k;
    if (k == "mac") {
      BULKHEAD_SPEC_SET(i.mac, get_string(v, p));
      has_mac = true;
    } else if (k == "target") BULKHEAD_SPEC_SET(i.target, get_string(v, p));
    else if (k == "inbound") BULKHEAD_SPEC_SET(i.inbound, read_direction(v, p));
    else if (k == "outbound") BULKHEAD_SPEC_SET(i.outbound, read_direction(v, p));
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  if (!has_mac) return fail(errc::parse_error, path + ": needs \"mac\"");
  return i;
}

[[nodiscard]] inline result<std::vector<cache_allocation>> read_masks(const json& j, const std::string& path) {
  std::vector<cache_allocation> out;
  auto r = each_element(j, path, [&](const json& e, const std::string& ep) -> result<void> {
    cache_allocation a;
    bool has_id = false, has_mask = false;
    auto fr = each_field(e, ep, {"cache_id", "mask"}, [&](const std::string& k, const json& v) -> result<void> {
      if (k == "cache_id") {
        BULKHEAD_SPEC_SET(a.cache_id, get_u32(v, ep + ".cache_id"));
        has_id = true;
      } else {
        BULKHEAD_SPEC_SET(a.mask, get_mask(v, ep + ".mask"));
        has_mask = true;
      }
      return {};
    });
    if (!fr) return fr;
    if (!has_id || !has_mask) return fail(errc::parse_error, ep + ": needs both \"cache_id\" and \"mask\"");
    for (const auto& x : out)
      if (x.cache_id == a.cache_id)
        return fail(errc::invalid_argument, ep + ": cache " + std::to_string(a.cache_id) + " listed twice");
    out.push_back(a);
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

[[nodiscard]] inline result<llc_spec> read_llc(const json& j, const std::string& path) {
  llc_spec l;
  auto r = each_field(j, path, {"ways", "exclusive", "allocations", "code_allocations"},
                      [&](const std::string& k, const json& v) -> result<void> {
                        const std::string p = path + "." + k;
                        if (k == "ways") BULKHEAD_SPEC_SET(l.ways, get_q<cache_ways>(v, p));
                        else if (k == "exclusive") BULKHEAD_SPEC_SET(l.exclusive, get_bool(v, p));
                        else if (k == "allocations") BULKHEAD_SPEC_SET(l.allocations, read_masks(v, p));
                        else if (k == "code_allocations") BULKHEAD_SPEC_SET(l.code_allocations, read_masks(v, p));
                        return {};
                      });
  if (!r) return fail(std::move(r.error()));
  return l;
}

[[nodiscard]] inline result<memory_bandwidth_spec> read_mb(const json& j, const std::string& path) {
  memory_bandwidth_spec m;
  std::optional<bool> mbps;
  auto r = each_field(j, path, {"allocations"}, [&](const std::string&, const json& v) -> result<void> {
    return each_element(v, path + ".allocations", [&](const json& e, const std::string& ep) -> result<void> {
      bandwidth_allocation a;
      bool has_id = false, has_value = false;
      auto fr = each_field(e, ep, {"domain_id", "percent", "mbytes_sec"}, [&](const std::string& k, const json& fv) -> result<void> {
        if (k == "domain_id") {
          BULKHEAD_SPEC_SET(a.domain_id, get_u32(fv, ep + ".domain_id"));
          has_id = true;
          return {};
        }
        const bool this_mbps = k == "mbytes_sec";
        if (has_value) return fail(errc::parse_error, ep + ": give one of \"percent\" and \"mbytes_sec\", not both");
        if (mbps && *mbps != this_mbps)
          return fail(errc::parse_error, ep + "." + k + ": every allocation must use the same unit (the first used " +
                                             (*mbps ? "mbytes_sec" : "percent") + ")");
        mbps = this_mbps;
        BULKHEAD_SPEC_SET(a.value, get_u64(fv, ep + "." + k));
        has_value = true;
        return {};
      });
      if (!fr) return fr;
      if (!has_id || !has_value) return fail(errc::parse_error, ep + ": needs \"domain_id\" and one of \"percent\", \"mbytes_sec\"");
      for (const auto& x : m.allocations)
        if (x.domain_id == a.domain_id)
          return fail(errc::invalid_argument, ep + ": domain " + std::to_string(a.domain_id) + " listed twice");
      m.allocations.push_back(a);
      return {};
    });
  });
  if (!r) return fail(std::move(r.error()));
  m.mbps = mbps.value_or(false);
  return m;
}

[[nodiscard]] inline result<std::vector<cache_tune>> read_cache_tunes(const json& j, const std::string& path) {
  std::vector<cache_tune> out;
  auto r = each_element(j, path, [&](const json& e, const std::string& ep) -> result<void> {
    cache_tune t;
    auto fr = each_field(e, ep, {"vcpus", "caches"}, [&](const std::string& k, const json& v) -> result<void> {
      if (k == "vcpus") {
        BULKHEAD_SPEC_SET(t.vcpus, get_cpuset(v, ep + ".vcpus"));
        return {};
      }
      return each_element(v, ep + ".caches", [&](const json& ce, const std::string& cp) -> result<void> {
        cache_tune_entry c;
        auto cr = each_field(ce, cp, {"cache_id", "level", "type", "size_bytes"},
                             [&](const std::string& ck, const json& cv) -> result<void> {
                               const std::string p = cp + "." + ck;
                               if (ck == "cache_id") BULKHEAD_SPEC_SET(c.cache_id, get_u32(cv, p));
                               else if (ck == "level") BULKHEAD_SPEC_SET(c.level, get_u32(cv, p));
                               else if (ck == "type") BULKHEAD_SPEC_SET(c.type, get_string(cv, p));
                               else if (ck == "size_bytes") BULKHEAD_SPEC_SET(c.size, get_q<bytes>(cv, p));
                               return {};
                             });
        if (!cr) return cr;
        t.caches.push_back(std::move(c));
        return {};
      });
    });
    if (!fr) return fr;
    out.push_back(std::move(t));
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

#undef BULKHEAD_SPEC_SET

// --- writing -------------------------------------------------------------------
template <class Q>
[[nodiscard]] json limit_json(const limit<Q>& l) {
  return l.is_unlimited() ? json("unlimited") : json(l.value().count());
}
[[nodiscard]] inline json us_limit_json(const limit<microseconds>& l) {
  return l.is_unlimited() ? json("unlimited") : json(static_cast<std::uint64_t>(l.value().count()));
}
[[nodiscard]] inline json us_json(microseconds v) { return json(static_cast<std::uint64_t>(v.count())); }
[[nodiscard]] inline json masks_json(const std::vector<cache_allocation>& v) {
  json a = json::array();
  for (const auto& x : v) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    std::uint64_t m = x.mask;
    do {
      s.insert(s.begin(), hex[m & 0xf]);
      m >>= 4;
    } while (m);
    a.push_back({{"cache_id", x.cache_id}, {"mask", "0x" + s}});
  }
  return a;
}
[[nodiscard]] inline json direction_json(const direction_bandwidth& b) {
  json o{{"average_bytes_sec", limit_json(b.average)}};
  if (b.peak) o["peak_bytes_sec"] = b.peak->count();
  if (b.burst) o["burst_bytes"] = b.burst->count();
  if (b.floor) o["floor_bytes_sec"] = b.floor->count();
  if (b.packets) o["packets_sec"] = limit_json(*b.packets);
  return o;
}

}  // namespace detail::desired

// The desired-spec form of one spec (not the ADL one). Only set knobs appear.
[[nodiscard]] inline nlohmann::json desired_spec_json(const quota_spec& s) {
  using detail::desired::json;
  json out = json::object();
  json cpu = json::object();
  const auto& c = s.cpu;
  if (c.vcpus) cpu["vcpus"] = *c.vcpus;
  if (c.max_vcpus) cpu["max_vcpus"] = *c.max_vcpus;
  if (c.request) cpu["request_millicores"] = c.request->count();
  if (c.shares) cpu["shares"] = *c.shares;
  if (c.weight) cpu["weight"] = *c.weight;
  if (c.period) cpu["period_us"] = detail::desired::us_json(*c.period);
  if (c.quota) cpu["quota_us"] = detail::desired::us_limit_json(*c.quota);
  if (c.emulator_period) cpu["emulator_period_us"] = detail::desired::us_json(*c.emulator_period);
  if (c.emulator_quota) cpu["emulator_quota_us"] = detail::desired::us_limit_json(*c.emulator_quota);
  if (c.burst) cpu["burst_us"] = detail::desired::us_json(*c.burst);
  if (c.vcpu_pins) {
    json pins = json::array();
    for (const auto& p : *c.vcpu_pins) pins.push_back({{"vcpu", p.vcpu}, {"cpus", p.cpus.to_string()}});
    cpu["vcpu_pins"] = std::move(pins);
  }
  if (c.emulator_pin) cpu["emulator_pin"] = c.emulator_pin->to_string();
  if (c.cpus) cpu["cpus"] = c.cpus->to_string();
  if (c.mems) cpu["mems"] = c.mems->to_string();
  if (!cpu.empty()) out["cpu"] = std::move(cpu);

  json mem = json::object();
  const auto& m = s.memory;
  if (m.max) mem["max_bytes"] = m.max->count();
  if (m.current) mem["current_bytes"] = m.current->count();
  if (m.request) mem["request_bytes"] = m.request->count();
  if (m.hard_limit) mem["hard_limit_bytes"] = detail::desired::limit_json(*m.hard_limit);
  if (m.soft_limit) mem["soft_limit_bytes"] = detail::desired::limit_json(*m.soft_limit);
  if (m.swap_hard_limit) mem["swap_hard_limit_bytes"] = detail::desired::limit_json(*m.swap_hard_limit);
  if (m.high) mem["high_bytes"] = detail::desired::limit_json(*m.high);
  if (m.min) mem["min_bytes"] = m.min->count();
  if (m.low) mem["low_bytes"] = m.low->count();
  if (m.numa) mem["numa"] = {{"mode", m.numa->mode}, {"nodeset", m.numa->nodeset.to_string()}};
  if (!mem.empty()) out["memory"] = std::move(mem);

  if (s.blkio_weight) out["blkio_weight"] = *s.blkio_weight;
  if (!s.disks.empty()) {
    json disks = json::array();
    for (const auto& d : s.disks) {
      json o{{"target", d.target}};
      const auto put = [&](const char* k, const auto& knob) {
        if (knob) o[k] = detail::desired::limit_json(*knob);
      };
      put("total_bytes_sec", d.total_bytes_sec);
      put("read_bytes_sec", d.read_bytes_sec);
      put("write_bytes_sec", d.write_bytes_sec);
      put("total_iops_sec", d.total_iops_sec);
      put("read_iops_sec", d.read_iops_sec);
      put("write_iops_sec", d.write_iops_sec);
      put("total_bytes_sec_max", d.total_bytes_sec_max);
      put("read_bytes_sec_max", d.read_bytes_sec_max);
      put("write_bytes_sec_max", d.write_bytes_sec_max);
      put("total_iops_sec_max", d.total_iops_sec_max);
      put("read_iops_sec_max", d.read_iops_sec_max);
      put("write_iops_sec_max", d.write_iops_sec_max);
      if (d.weight) o["weight"] = *d.weight;
      disks.push_back(std::move(o));
    }
    out["disks"] = std::move(disks);
  }
  if (!s.interfaces.empty()) {
    json ifs = json::array();
    for (const auto& i : s.interfaces) {
      json o{{"mac", i.mac}};
      if (!i.target.empty()) o["target"] = i.target;
      if (i.inbound) o["inbound"] = detail::desired::direction_json(*i.inbound);
      if (i.outbound) o["outbound"] = detail::desired::direction_json(*i.outbound);
      ifs.push_back(std::move(o));
    }
    out["interfaces"] = std::move(ifs);
  }
  if (s.llc) {
    json l{{"ways", s.llc->ways.count()}, {"exclusive", s.llc->exclusive}};
    if (!s.llc->allocations.empty()) l["allocations"] = detail::desired::masks_json(s.llc->allocations);
    if (!s.llc->code_allocations.empty()) l["code_allocations"] = detail::desired::masks_json(s.llc->code_allocations);
    out["llc"] = std::move(l);
  }
  if (s.memory_bandwidth) {
    json a = json::array();
    for (const auto& x : s.memory_bandwidth->allocations)
      a.push_back({{"domain_id", x.domain_id}, {s.memory_bandwidth->mbps ? "mbytes_sec" : "percent", x.value}});
    out["memory_bandwidth"] = {{"allocations", std::move(a)}};
  }
  if (s.cache_tunes) {
    json a = json::array();
    for (const auto& t : *s.cache_tunes) {
      json caches = json::array();
      for (const auto& c2 : t.caches)
        caches.push_back({{"cache_id", c2.cache_id}, {"level", c2.level}, {"type", c2.type}, {"size_bytes", c2.size.count()}});
      a.push_back({{"vcpus", t.vcpus.to_string()}, {"caches", std::move(caches)}});
    }
    out["cache_tunes"] = std::move(a);
  }
  return out;
}

// One spec from its JSON object; `path` prefixes error messages. The spec is
// validated (bulkhead::validate) before it is returned.
[[nodiscard]] inline result<quota_spec> parse_desired_spec(const nlohmann::json& j, const std::string& path = "spec") {
  using detail::desired::json;
  quota_spec s;
  auto r = detail::desired::each_field(
      j, path,
      {"cpu", "memory", "blkio_weight", "disks", "interfaces", "llc", "memory_bandwidth", "cache_tunes"},
      [&](const std::string& k, const json& v) -> result<void> {
        const std::string p = path + "." + k;
        if (k == "cpu") return detail::desired::read_cpu(v, p, s.cpu);
        if (k == "memory") return detail::desired::read_memory(v, p, s.memory);
        if (k == "blkio_weight") {
          auto w = detail::desired::get_u64(v, p);
          if (!w) return fail(std::move(w.error()));
          s.blkio_weight = *w;
          return {};
        }
        if (k == "disks")
          return detail::desired::each_element(v, p, [&](const json& e, const std::string& ep) -> result<void> {
            auto d = detail::desired::read_disk(e, ep);
            if (!d) return fail(std::move(d.error()));
            s.disks.push_back(std::move(*d));
            return {};
          });
        if (k == "interfaces")
          return detail::desired::each_element(v, p, [&](const json& e, const std::string& ep) -> result<void> {
            auto i = detail::desired::read_interface(e, ep);
            if (!i) return fail(std::move(i.error()));
            s.interfaces.push_back(std::move(*i));
            return {};
          });
        if (k == "llc") {
          auto l = detail::desired::read_llc(v, p);
          if (!l) return fail(std::move(l.error()));
          s.llc = std::move(*l);
          return {};
        }
        if (k == "memory_bandwidth") {
          auto m = detail::desired::read_mb(v, p);
          if (!m) return fail(std::move(m.error()));
          s.memory_bandwidth = std::move(*m);
          return {};
        }
        auto t = detail::desired::read_cache_tunes(v, p);
        if (!t) return fail(std::move(t.error()));
        s.cache_tunes = std::move(*t);
        return {};
      });
  if (!r) return fail(std::move(r.error()));
  if (auto v = validate(s); !v) return fail(v.error().code(), path + ": " + v.error().message());
  return s;
}

// The canonical key for an instance: lower-case UUID text when `key` is a
// UUID, else the name itself (which must be non-empty UTF-8 without control
// characters).
[[nodiscard]] inline result<std::string> desired_spec_key(std::string_view key, const std::string& path) {
  if (auto u = uuid::parse(key)) return u->to_string();
  if (key.empty()) return fail(errc::invalid_argument, path + ": empty instance key");
  if (!bulkhead::detail::is_utf8(key)) return fail(errc::invalid_argument, path + ": instance key is not UTF-8");
  for (unsigned char ch : key)
    if (ch < 0x20 || ch == 0x7f)
      return fail(errc::invalid_argument, path + ": instance key " + bulkhead::detail::quote(key) + " has a control character");
  return std::string(key);
}

// Parses a desired-spec file's text. `source` names it in errors (a path).
[[nodiscard]] inline result<desired_specs> parse_desired_specs(std::string_view text,
                                                             const std::string& source = "desired spec") {
  using detail::desired::json;
  // Duplicate keys: nlohmann::json keeps the last silently; refuse them.
  struct frame {
    bool object = false;
    std::set<std::string> keys;
    std::string key;
  };
  std::vector<frame> stack;
  std::optional<std::string> duplicate;
  const auto where = [&] {
    std::string p;
    for (const auto& f : stack) {
      if (!f.object) p += "[]";
      else if (!f.key.empty()) p += (p.empty() ? "" : ".") + f.key;
    }
    return p.empty() ? std::string("the top level") : p;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), [&](int, json::parse_event_t ev, json& parsed) {
      switch (ev) {
        case json::parse_event_t::object_start: stack.push_back(frame{true, {}, {}}); break;
        case json::parse_event_t::array_start: stack.push_back(frame{false, {}, {}}); break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
          if (!stack.empty()) stack.pop_back();
          break;
        case json::parse_event_t::key:
          if (!stack.empty()) {
            const auto k = parsed.get<std::string>();
            if (!stack.back().keys.insert(k).second && !duplicate) {
              stack.back().key.clear();
              duplicate = "duplicate key " + bulkhead::detail::quote(k) + " in " + where();
            }
            stack.back().key = k;
          }
          break;
        case json::parse_event_t::value: break;
      }
      return true;
    });
  } catch (const json::exception& e) {
    return fail(errc::parse_error, source + ": not valid JSON: " + e.what());
  }
  if (duplicate) return fail(errc::parse_error, source + ": " + *duplicate);
  desired_specs out;
  bool has_version = false, has_instances = false;
  auto r = detail::desired::each_field(j, source, {"version", "instances"}, [&](const std::string& k, const json& v) -> result<void> {
    if (k == "version") {
      auto ver = detail::desired::get_u64(v, source + ".version");
      if (!ver) return fail(std::move(ver.error()));
      if (*ver != desired_spec_format_version)
        return fail(errc::unsupported, source + ".version: " + std::to_string(*ver) + " is not a version this bulkhead reads (" +
                                           std::to_string(desired_spec_format_version) + ")");
      has_version = true;
      return {};
    }
    has_instances = true;
    if (!v.is_object()) return fail(errc::parse_error, source + ".instances: " + detail::desired::value_text(v) + " is not an object");
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string p = "instances[" + bulkhead::detail::quote(it.key()) + "]";
      auto key = desired_spec_key(it.key(), p);
      if (!key) return fail(std::move(key.error()));
      auto spec = parse_desired_spec(it.value(), p);
      if (!spec) return fail(std::move(spec.error()));
      if (!out.emplace(*key, std::move(*spec)).second)
        return fail(errc::invalid_argument, p + ": the same instance as another key (UUIDs compare case-insensitively)");
    }
    return {};
  });
  if (!r) return fail(std::move(r.error()).in(source));
  if (!has_version) return fail(errc::parse_error, source + ": missing \"version\" (this bulkhead reads version 1)");
  if (!has_instances) return fail(errc::parse_error, source + ": missing \"instances\"");
  return out;
}

// Reads and parses a desired-spec file (a path given by a person or a
// control plane; not confined to a root).
// Compiled in libbulkhead-core (src/export/desired_spec.cpp).
[[nodiscard]] BULKHEAD_API result<desired_specs> open_desired_specs(const std::string& path);

// The file form of a set of specs (pretty-printed, 2-space indent).
[[nodiscard]] inline std::string desired_specs_text(const desired_specs& specs) {
  nlohmann::json inst = nlohmann::json::object();
  for (const auto& [k, s] : specs) inst[k] = desired_spec_json(s);
  return nlohmann::json{{"version", desired_spec_format_version}, {"instances", std::move(inst)}}.dump(2) + "\n";
}

// The spec for an instance: by UUID first, then by name. Null when neither.
[[nodiscard]] inline const quota_spec* find_desired(const desired_specs& specs, const instance_info& i) {
  if (auto it = specs.find(i.id.uuid.to_string()); it != specs.end()) return &it->second;
  if (auto it = specs.find(i.name); it != specs.end()) return &it->second;
  return nullptr;
}

}  // namespace bulkhead
