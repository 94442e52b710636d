// bulkhead/backend/cgroup/detail/files_impl.hpp (internal): the control file
// parsers; the contract is in bulkhead/backend/cgroup/files.hpp.
//
// Formats: Documentation/admin-guide/cgroup-v2.rst ("Interface Files",
// "Format"), cgroup-v1/memory.rst, cgroup-v1/blkio-controller.rst,
// cgroup-v1/cpuacct.rst, Documentation/scheduler/sched-bwc.rst.
#pragma once

#include "bulkhead/backend/cgroup/files.hpp"

#include <limits>
#include <optional>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::cgroup {

namespace detail {
inline std::string w(std::string_view what) { return std::string(what); }

// Fields separated by runs of spaces or tabs.
inline std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> f;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const auto s = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > s) f.push_back(line.substr(s, i - s));
  }
  return f;
}

// Calls f(line_number, line) for every non-empty line; stops at the first error.
template <class F>
result<void> each_line(std::string_view text, F&& f) {
  std::size_t n = 0;
  std::optional<error> err;
  bulkhead::detail::split(text, '\n', [&](std::string_view line) {
    ++n;
    if (err) return;
    line = bulkhead::detail::trim(line);
    if (line.empty()) return;
    if (auto r = f(n, line); !r) err = std::move(r.error());
  });
  if (err) return fail(std::move(*err));
  return {};
}
}  // namespace detail

inline result<std::uint64_t> parse_u64(std::string_view text, std::string_view what) {
  return bulkhead::detail::parse_u64(bulkhead::detail::trim(text), what);
}

inline result<cpu_max> parse_cpu_max(std::string_view text, std::string_view what) {
  const auto f = detail::fields(bulkhead::detail::trim(text));
  if (f.size() != 2)
    return fail(errc::parse_error, detail::w(what) + ": " + bulkhead::detail::quote(bulkhead::detail::trim(text)) + " is not \"$MAX $PERIOD\"");
  cpu_max v;
  if (f[0] != "max") {
    auto q = bulkhead::detail::parse_u64(f[0], detail::w(what) + " quota");
    if (!q) return fail(std::move(q.error()));
    if (*q > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return fail(errc::overflow, detail::w(what) + ": quota " + bulkhead::detail::quote(f[0]) + " is too large");
    v.quota = microseconds{static_cast<std::int64_t>(*q)};
  }
  auto p = bulkhead::detail::parse_u64(f[1], detail::w(what) + " period");
  if (!p) return fail(std::move(p.error()));
  if (*p == 0 || *p > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return fail(errc::parse_error, detail::w(what) + ": period " + bulkhead::detail::quote(f[1]) + " is not a positive duration");
  v.period = microseconds{static_cast<std::int64_t>(*p)};
  return v;
}

inline std::string format_cpu_max(const cpu_max& v) {
  return (v.quota.is_unlimited() ? std::string("max") : std::to_string(v.quota.value().count())) + " " +
         std::to_string(v.period.count());
}

inline result<limit<bytes>> parse_v2_bytes(std::string_view text, std::string_view what) {
  const auto t = bulkhead::detail::trim(text);
  if (t == "max") return limit<bytes>{unlimited};
  auto v = bulkhead::detail::parse_u64(t, what);
  if (!v) return fail(std::move(v.error()));
  return limit<bytes>{bytes{*v}};
}

inline result<limit<bytes>> parse_v1_bytes(std::string_view text, std::uint64_t page_size, std::string_view what) {
  const auto t = bulkhead::detail::trim(text);
  auto v = bulkhead::detail::parse_u64(t, what);
  if (!v) return fail(std::move(v.error()));
  // mm/page_counter.c: PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE pages; the
  // v1 files print it in bytes.
  const std::uint64_t page_max =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / page_size * page_size;
  if (*v >= page_max) return limit<bytes>{unlimited};
  return limit<bytes>{bytes{*v}};
}

inline result<std::map<std::string, std::uint64_t>> parse_flat_keyed(std::string_view text, std::string_view what) {
  std::map<std::string, std::uint64_t> out;
  auto r = detail::each_line(text, [&](std::size_t n, std::string_view line) -> result<void> {
    const auto f = detail::fields(line);
    const std::string where = detail::w(what) + " line " + std::to_string(n);
    if (f.size() != 2) return fail(errc::parse_error, where + ": " + bulkhead::detail::quote(line) + " is not \"key value\"");
    auto v = bulkhead::detail::parse_u64(f[1], where + " " + std::string(f[0]));
    if (!v) return fail(std::move(v.error()));
    out[std::string(f[0])] = *v;
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

inline result<std::string> parse_device(std::string_view text, std::string_view what) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || !bulkhead::detail::parse_u64(text.substr(0, colon), "major") ||
      !bulkhead::detail::parse_u64(text.substr(colon + 1), "minor"))
    return fail(errc::invalid_argument, detail::w(what) + ": " + bulkhead::detail::quote(text) + " is not a device number MAJ:MIN");
  return std::string(text);
}

inline result<nested_keyed> parse_nested_keyed(std::string_view text, std::string_view what) {
  nested_keyed out;
  auto r = detail::each_line(text, [&](std::size_t n, std::string_view line) -> result<void> {
    const auto f = detail::fields(line);
    const std::string where = detail::w(what) + " line " + std::to_string(n);
    auto dev = parse_device(f.empty() ? std::string_view{} : f[0], where);
    if (!dev) return fail(errc::parse_error, dev.error().message());
    auto& m = out[*dev];
    for (std::size_t i = 1; i < f.size(); ++i) {
      const auto eq = f[i].find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == f[i].size())
        return fail(errc::parse_error, where + ": " + bulkhead::detail::quote(f[i]) + " is not key=value");
      m[std::string(f[i].substr(0, eq))] = std::string(f[i].substr(eq + 1));
    }
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

inline result<io_weight> parse_io_weight(std::string_view text, std::string_view what) {
  io_weight out;
  bool has_default = false;
  auto r = detail::each_line(text, [&](std::size_t n, std::string_view line) -> result<void> {
    const auto f = detail::fields(line);
    const std::string where = detail::w(what) + " line " + std::to_string(n);
    if (f.size() != 2) return fail(errc::parse_error, where + ": " + bulkhead::detail::quote(line) + " is not \"default N\" or \"MAJ:MIN N\"");
    auto v = bulkhead::detail::parse_u64(f[1], where);
    if (!v) return fail(std::move(v.error()));
    if (f[0] == "default") {
      out.default_weight = *v;
      has_default = true;
      return {};
    }
    auto dev = parse_device(f[0], where);
    if (!dev) return fail(errc::parse_error, dev.error().message());
    out.devices[*dev] = *v;
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  if (!has_default) return fail(errc::parse_error, detail::w(what) + ": no \"default\" line");
  return out;
}

inline result<std::map<std::string, std::uint64_t>> parse_device_values(std::string_view text, std::string_view what) {
  std::map<std::string, std::uint64_t> out;
  auto r = detail::each_line(text, [&](std::size_t n, std::string_view line) -> result<void> {
    const auto f = detail::fields(line);
    const std::string where = detail::w(what) + " line " + std::to_string(n);
    if (f.size() != 2) return fail(errc::parse_error, where + ": " + bulkhead::detail::quote(line) + " is not \"MAJ:MIN value\"");
    auto dev = parse_device(f[0], where);
    if (!dev) return fail(errc::parse_error, dev.error().message());
    auto v = bulkhead::detail::parse_u64(f[1], where);
    if (!v) return fail(std::move(v.error()));
    out[*dev] = *v;
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

inline result<std::map<std::string, blkio_rw>> parse_blkio_stat(std::string_view text, std::string_view what) {
  std::map<std::string, blkio_rw> out;
  auto r = detail::each_line(text, [&](std::size_t n, std::string_view line) -> result<void> {
    const auto f = detail::fields(line);
    const std::string where = detail::w(what) + " line " + std::to_string(n);
    if (f.size() == 2 && f[0] == "Total") return {};
    if (f.size() != 3) return fail(errc::parse_error, where + ": " + bulkhead::detail::quote(line) + " is not \"MAJ:MIN Op N\"");
    auto dev = parse_device(f[0], where);
    if (!dev) return fail(errc::parse_error, dev.error().message());
    auto v = bulkhead::detail::parse_u64(f[2], where);
    if (!v) return fail(std::move(v.error()));
    auto& e = out[*dev];
    if (f[1] == "Read") e.read = *v;
    else if (f[1] == "Write") e.write = *v;
    // Sync, Async, Discard, Total: not kept.
    return {};
  });
  if (!r) return fail(std::move(r.error()));
  return out;
}

}  // namespace bulkhead::cgroup
