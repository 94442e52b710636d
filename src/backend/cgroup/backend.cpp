// The cgroup backend; contract in bulkhead/backend/cgroup/backend.hpp.
#include "bulkhead/backend/cgroup/backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <set>

#include "bulkhead/backend/cgroup/files.hpp"
#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "backend/file_cache.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::cgroup {

namespace {


using C = cgroup::controller;

constexpr std::size_t ctl_count = all_controllers.size();
constexpr std::size_t idx(C c) { return static_cast<std::size_t>(c); }
std::string_view v1_name(C c) { return c == C::io ? std::string_view("blkio") : to_string(c); }

struct open_hierarchy {  // one hierarchy, opened
  bool v2 = false;
  std::string path;  // the parent group's directory, for messages
  rooted_dir dir;    // the parent group's directory: the root every group file is opened beneath
  std::vector<C> serves;
};

// Knobs that depend on a controller, for the unsupported lists when it is not served.
const std::vector<std::string>& knobs_of(C c) {
  static const std::vector<std::string> cpu{"cpu.quota", "cpu.period", "cpu.shares", "cpu.weight", "cpu.burst"};
  static const std::vector<std::string> cpuset{"cpu.cpus", "cpu.mems"};
  static const std::vector<std::string> memory{"memory.hard_limit", "memory.soft_limit", "memory.swap_hard_limit",
                                               "memory.high", "memory.min", "memory.low"};
  static const std::vector<std::string> io{"blkio_weight", "disks[].read_bytes_sec", "disks[].write_bytes_sec",
                                           "disks[].read_iops_sec", "disks[].write_iops_sec", "disks[].weight"};
  static const std::vector<std::string> none;
  switch (c) {
    case C::cpu: return cpu;
    case C::cpuset: return cpuset;
    case C::memory: return memory;
    case C::io: return io;
    case C::cpuacct: return none;
  }
  return none;
}

// Per-disk knobs no cgroup version has (io.max has no totals and no bursts).
constexpr std::string_view disk_knobs_never[] = {
    "total_bytes_sec",     "total_iops_sec",     "total_bytes_sec_max", "read_bytes_sec_max",
    "write_bytes_sec_max", "total_iops_sec_max", "read_iops_sec_max",   "write_iops_sec_max"};

result<std::uint64_t> inode_of(const rooted_dir& d, const std::string& rel) {
  auto fd = d.open_fd(rel, O_PATH | O_DIRECTORY);
  if (!fd) return fail(std::move(fd.error()));
  struct stat st{};
  const int rc = ::fstat(*fd, &st);
  ::close(*fd);
  if (rc != 0) return fail(errc::io_error, "fstat of " + bulkhead::detail::quote(rel) + " failed");
  return static_cast<std::uint64_t>(st.st_ino);
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

}  // namespace

struct backend::impl {
  impl(rooted_dir r, std::size_t max_open) : fsroot(std::move(r)), cache(max_open) { by_ctl.fill(-1); }

  cgroup::options opts;
  cgroup::layout layout = cgroup::layout::unified;
  std::string source;
  std::vector<open_hierarchy> hiers;
  std::array<int, ctl_count> by_ctl{};
  std::vector<cgroup::binding> bindings;
  std::size_t primary = 0;
  std::uint64_t page_size = 4096;
  rooted_dir fsroot;
  mutable bulkhead::detail::open_file_cache cache;

  [[nodiscard]] std::string key(const open_hierarchy& h, const std::string& rel) const {
    return std::to_string(&h - hiers.data()) + ":" + rel;
  }

  [[nodiscard]] const open_hierarchy* of(C c) const { return by_ctl[idx(c)] < 0 ? nullptr : &hiers[static_cast<std::size_t>(by_ctl[idx(c)])]; }
  [[nodiscard]] std::uint64_t page_max_bytes() const {
    return static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / page_size * page_size;
  }
};

namespace {

using impl_t = backend::impl;

// One group's files. A missing file is "nullopt" (the knob is unsupported
// there); a missing group is errc::not_found.
class group_files {
 public:
  group_files(const impl_t& im, std::string name) : im_(im), name_(std::move(name)) {}

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string rel(std::string_view file) const { return name_ + "/" + std::string(file); }
  // The file's full path, for messages. Built in a buffer reused by the next
  // call: use it at once (the common case builds it for nothing but a
  // parser's error text, so it must not cost an allocation).
  [[nodiscard]] std::string_view path(const open_hierarchy& h, std::string_view file) const {
    path_.assign(h.path).append("/").append(name_).append("/").append(file);
    return path_;
  }

  [[nodiscard]] result<std::optional<std::string>> read(const open_hierarchy& h, std::string_view file) const {
    // The cache key "<hierarchy>:<group>/<file>", built without allocating.
    key_.assign(std::to_string(&h - im_.hiers.data())).append(":").append(name_).append("/").append(file);
    const std::string_view rel_ = std::string_view(key_).substr(key_.find(':') + 1);
    auto r = im_.cache.read(h.dir, key_, rel_);
    if (r) return std::optional<std::string>(std::move(*r));
    if (r.error().code() != errc::not_found) return fail(std::move(r.error()));
    auto dir = h.dir.is_directory(name_);
    if (!dir) return fail(std::move(dir.error()));
    if (!*dir) return fail(errc::not_found, "cgroup " + bulkhead::detail::quote(name_) + " does not exist in " + h.path);
    return std::optional<std::string>{};
  }
  // Writes then reads the file back.
  [[nodiscard]] result<std::string> write_read(const open_hierarchy& h, std::string_view file, std::string_view content) const {
    if (auto w = h.dir.write_file(rel(file), content); !w) return fail(std::move(w.error()));
    auto back = read(h, file);
    if (!back) return fail(std::move(back.error()).in("reading back " + std::string(path(h, file))));
    if (!*back) return fail(errc::not_found, std::string(path(h, file)) + ": gone after writing it");
    return std::move(**back);
  }

 private:
  const impl_t& im_;
  std::string name_;
  mutable std::string path_, key_;
};

// What one apply() run records.
struct recorder {
  apply_report& rep;
  void changed(std::string knob, std::string before, std::string after) {
    rep.changed.push_back(knob_change{std::move(knob), std::move(before), std::move(after)});
  }
  void failed(std::string knob, error e) { rep.failed.push_back(knob_failure{std::move(knob), std::move(e)}); }
  void unsupported(std::string knob) {
    if (std::find(rep.unsupported.begin(), rep.unsupported.end(), knob) == rep.unsupported.end())
      rep.unsupported.push_back(std::move(knob));
  }
};

error readback_mismatch(std::string_view file, std::string_view wrote, std::string_view got) {
  return error(errc::io_error, std::string(file) + ": wrote " + bulkhead::detail::quote(wrote) + " but the kernel holds " +
                                   bulkhead::detail::quote(bulkhead::detail::trim(got)));
}

// A memory size the kernel keeps exactly: a whole number of pages, at most
// the page-counter maximum (mm/page_counter.c page_counter_memparse rounds
// down to pages and clamps at PAGE_COUNTER_MAX).
result<void> check_memory_bytes(const impl_t& im, const std::string& knob, bytes b) {
  if (b.count() % im.page_size != 0)
    return fail(errc::out_of_range, knob + ": " + std::to_string(b.count()) + " bytes is not a whole number of " +
                                        std::to_string(im.page_size) + "-byte pages; the kernel would round it down to " +
                                        std::to_string(b.count() / im.page_size * im.page_size));
  if (b.count() > im.page_max_bytes())
    return fail(errc::out_of_range, knob + ": " + std::to_string(b.count()) + " bytes is above the kernel's maximum " +
                                        std::to_string(im.page_max_bytes()) + "; use unlimited");
  return {};
}

// ---- cpu ----------------------------------------------------------------------

// Target scheduler weight in the controller's own scale, from weight and/or
// shares. Error when both are given and disagree.
result<std::uint64_t> target_weight(const cpu_spec& c, bool v2) {
  if (v2) {
    if (c.weight && c.shares && cpu_weight_from_shares(*c.shares) != *c.weight)
      return fail(errc::invalid_argument, "cpu.shares " + std::to_string(*c.shares) + " is cpu.weight " +
                                              std::to_string(cpu_weight_from_shares(*c.shares)) +
                                              " on cgroup v2, which conflicts with cpu.weight " + std::to_string(*c.weight));
    return c.weight ? *c.weight : cpu_weight_from_shares(*c.shares);
  }
  if (c.weight && c.shares && cpu_shares_from_weight(*c.weight) != *c.shares)
    return fail(errc::invalid_argument, "cpu.weight " + std::to_string(*c.weight) + " is cpu.shares " +
                                            std::to_string(cpu_shares_from_weight(*c.weight)) +
                                            " on cgroup v1, which conflicts with cpu.shares " + std::to_string(*c.shares));
  return c.shares ? *c.shares : cpu_shares_from_weight(*c.weight);
}

result<void> apply_cpu_v2(const impl_t&, const group_files& g, const open_hierarchy& h, const cpu_spec& c, recorder& rec) {
  // cpu.max holds quota and period in one file.
  std::optional<cpu_max> cur, want;
  if (c.quota || c.period || c.burst) {
    auto t = g.read(h, "cpu.max");
    if (!t) return fail(std::move(t.error()));
    if (!*t) {
      if (c.quota) rec.unsupported("cpu.quota");
      if (c.period) rec.unsupported("cpu.period");
    } else if (auto p = cgroup::parse_cpu_max(**t, g.path(h, "cpu.max")); !p) {
      if (c.quota) rec.failed("cpu.quota", p.error());
      if (c.period) rec.failed("cpu.period", p.error());
    } else {
      cur = *p;
      want = *p;
      if (c.quota) want->quota = *c.quota;
      if (c.period) want->period = *c.period;
    }
  }
  // cgroup-v2.rst: the burst is in the range [0, $MAX]; the kernel refuses a
  // quota below the burst, so a burst that comes down goes first.
  std::optional<std::uint64_t> burst_cur;
  bool burst_write = false, burst_first = false;
  if (c.burst) {
    auto t = g.read(h, "cpu.max.burst");
    if (!t) return fail(std::move(t.error()));
    if (!*t) {
      rec.unsupported("cpu.burst");
    } else if (auto p = cgroup::parse_u64(**t, g.path(h, "cpu.max.burst")); !p) {
      rec.failed("cpu.burst", p.error());
    } else if (want && want->quota.is_bounded() && *c.burst > want->quota.value()) {
      rec.failed("cpu.burst", error(errc::out_of_range, "cpu.burst: " + knob_text(*c.burst) + " is above the quota " +
                                                            knob_text(want->quota.value())));
    } else if (*p != static_cast<std::uint64_t>(c.burst->count())) {
      burst_cur = *p;
      burst_write = true;
      burst_first = static_cast<std::uint64_t>(c.burst->count()) < *p;
    }
  }
  const auto write_burst = [&] {
    const auto text = std::to_string(c.burst->count());
    auto back = g.write_read(h, "cpu.max.burst", text);
    if (!back) rec.failed("cpu.burst", back.error());
    else if (auto b = cgroup::parse_u64(*back, "cpu.max.burst"); !b || *b != static_cast<std::uint64_t>(c.burst->count()))
      rec.failed("cpu.burst", readback_mismatch(g.path(h, "cpu.max.burst"), text, *back));
    else rec.changed("cpu.burst", knob_text(microseconds{static_cast<std::int64_t>(*burst_cur)}), knob_text(*c.burst));
  };
  if (burst_write && burst_first) write_burst();
  if (want && !(*want == *cur)) {
    const auto text = cgroup::format_cpu_max(*want);
    auto back = g.write_read(h, "cpu.max", text);
    std::optional<error> err;
    if (!back) err = back.error();
    else if (auto b = cgroup::parse_cpu_max(*back, g.path(h, "cpu.max")); !b || !(*b == *want))
      err = readback_mismatch(g.path(h, "cpu.max"), text, *back);
    const bool q = !(want->quota == cur->quota), p = want->period != cur->period;
    if (err) {
      if (q) rec.failed("cpu.quota", *err);
      if (p) rec.failed("cpu.period", *err);
    } else {
      if (q) rec.changed("cpu.quota", knob_text(cur->quota), knob_text(want->quota));
      if (p) rec.changed("cpu.period", knob_text(cur->period), knob_text(want->period));
    }
  }
  if (burst_write && !burst_first) write_burst();
  if (c.weight || c.shares) {
    const std::string knob = "cpu.weight";
    auto target = target_weight(c, true);
    if (!target) {
      rec.failed("cpu.weight", target.error());
    } else {
      auto t = g.read(h, "cpu.weight");
      if (!t) return fail(std::move(t.error()));
      if (!*t) {
        if (c.weight) rec.unsupported("cpu.weight");
        if (c.shares) rec.unsupported("cpu.shares");
      } else if (auto now = cgroup::parse_u64(**t, g.path(h, "cpu.weight")); !now) {
        rec.failed(knob, now.error());
      } else if (*now != *target) {
        const auto text = std::to_string(*target);
        auto back = g.write_read(h, "cpu.weight", text);
        if (!back) rec.failed(knob, back.error());
        else if (auto b = cgroup::parse_u64(*back, "cpu.weight"); !b || *b != *target)
          rec.failed(knob, readback_mismatch(g.path(h, "cpu.weight"), text, *back));
        else rec.changed("cpu.weight", knob_text(*now), knob_text(*target));
      }
    }
  }
  return {};
}

// One v1 number file: read, compare, write, verify. `parse` turns text into
// the value; `format` turns the value into what is written.
template <class T, class Parse, class Format>
result<void> v1_value(const group_files& g, const open_hierarchy& h, std::string_view file, const std::string& knob,
                      const T& want, Parse parse, Format format, recorder& rec, std::optional<T>* now = nullptr) {
  auto t = g.read(h, file);
  if (!t) return fail(std::move(t.error()));
  if (!*t) {
    rec.unsupported(knob);
    return {};
  }
  auto cur = parse(**t);
  if (!cur) {
    rec.failed(knob, cur.error());
    return {};
  }
  if (now) *now = *cur;
  if (*cur == want) return {};
  const std::string text = format(want);
  auto back = g.write_read(h, file, text);
  if (!back) {
    rec.failed(knob, back.error());
    return {};
  }
  auto b = parse(*back);
  if (!b || !(*b == want)) {
    rec.failed(knob, readback_mismatch(g.path(h, file), text, *back));
    return {};
  }
  if (now) *now = want;
  rec.changed(knob, knob_text(*cur), knob_text(want));
  return {};
}

result<limit<microseconds>> parse_cfs_quota(std::string_view text, std::string_view what) {
  auto v = bulkhead::detail::parse_i64(bulkhead::detail::trim(text), what);
  if (!v) return fail(std::move(v.error()));
  if (*v < 0) return limit<microseconds>{unlimited};  // sched-bwc.rst: -1 = no restriction
  return limit<microseconds>{microseconds{*v}};
}
result<microseconds> parse_us(std::string_view text, std::string_view what) {
  auto v = cgroup::parse_u64(text, what);
  if (!v) return fail(std::move(v.error()));
  if (*v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return fail(errc::overflow, std::string(what) + ": too large");
  return microseconds{static_cast<std::int64_t>(*v)};
}

result<void> apply_cpu_v1(const impl_t&, const group_files& g, const open_hierarchy& h, const cpu_spec& c, recorder& rec) {
  const auto us_text = [](microseconds v) { return std::to_string(v.count()); };
  const auto parse_period = [&](std::string_view t) { return parse_us(t, g.path(h, "cpu.cfs_period_us")); };
  const auto parse_quota = [&](std::string_view t) { return parse_cfs_quota(t, g.path(h, "cpu.cfs_quota_us")); };
  const auto parse_burst = [&](std::string_view t) { return parse_us(t, g.path(h, "cpu.cfs_burst_us")); };
  if (c.period)
    if (auto r = v1_value<microseconds>(g, h, "cpu.cfs_period_us", "cpu.period", *c.period, parse_period, us_text, rec); !r)
      return r;
  // sched-bwc.rst: the kernel refuses a quota below the burst, so a burst
  // that comes down goes first; a burst above the (new) quota is refused here.
  bool burst_write = false, burst_first = false;
  if (c.burst) {
    auto t = g.read(h, "cpu.cfs_burst_us");
    if (!t) return fail(std::move(t.error()));
    std::optional<limit<microseconds>> quota_target;
    if (c.quota) {
      quota_target = *c.quota;
    } else if (auto q = g.read(h, "cpu.cfs_quota_us"); !q) {
      return fail(std::move(q.error()));
    } else if (*q) {
      if (auto v = parse_quota(**q)) quota_target = *v;
    }
    if (!*t) {
      rec.unsupported("cpu.burst");
    } else if (auto cur = parse_burst(**t); !cur) {
      rec.failed("cpu.burst", cur.error());
    } else if (quota_target && quota_target->is_bounded() && *c.burst > quota_target->value()) {
      rec.failed("cpu.burst", error(errc::out_of_range, "cpu.burst: " + knob_text(*c.burst) + " is above the quota " +
                                                            knob_text(quota_target->value())));
    } else if (*cur != *c.burst) {
      burst_write = true;
      burst_first = *c.burst < *cur;
    }
  }
  const auto burst = [&] {
    return v1_value<microseconds>(g, h, "cpu.cfs_burst_us", "cpu.burst", *c.burst, parse_burst, us_text, rec);
  };
  if (burst_write && burst_first)
    if (auto r = burst(); !r) return r;
  if (c.quota)
    if (auto r = v1_value<limit<microseconds>>(
            g, h, "cpu.cfs_quota_us", "cpu.quota", *c.quota, parse_quota,
            [](const limit<microseconds>& q) { return q.is_unlimited() ? std::string("-1") : std::to_string(q.value().count()); },
            rec);
        !r)
      return r;
  if (burst_write && !burst_first)
    if (auto r = burst(); !r) return r;
  if (c.weight || c.shares) {
    auto want = target_weight(c, false);
    if (!want) {
      rec.failed("cpu.shares", want.error());
    } else {
      auto r = v1_value<std::uint64_t>(
          g, h, "cpu.shares", "cpu.shares", *want,
          [&](std::string_view t) { return cgroup::parse_u64(t, g.path(h, "cpu.shares")); },
          [](std::uint64_t v) { return std::to_string(v); }, rec);
      if (!r) return r;
    }
  }
  return {};
}

// ---- cpuset -------------------------------------------------------------------
result<void> apply_cpuset(const impl_t&, const group_files& g, const open_hierarchy& h, const cpu_spec& c, recorder& rec) {
  for (const bool cpus : {true, false}) {
    const auto& want = cpus ? c.cpus : c.mems;
    if (!want) continue;
    const std::string knob = cpus ? "cpu.cpus" : "cpu.mems";
    const std::string file = cpus ? "cpuset.cpus" : "cpuset.mems";
    if (!h.v2) {
      // cgroup-v1/cpusets.rst: a cpuset's CPUs and nodes must be a subset of its parent's.
      auto parent = h.dir.read_file(file);
      if (!parent) {
        if (parent.error().code() == errc::not_found) {
          rec.unsupported(knob);
          continue;
        }
        return fail(std::move(parent.error()));
      }
      auto ps = cpuset::parse(*parent);
      if (ps && !want->subset_of(*ps)) {
        rec.failed(knob, error(errc::out_of_range, knob + ": " + want->to_string() + " is not within the parent's " +
                                                       (ps->empty() ? std::string("(empty)") : ps->to_string()) + " (" +
                                                       h.path + "/" + file + ")"));
        continue;
      }
    }
    auto r = v1_value<cpuset>(
        g, h, file, knob, *want,
        [&](std::string_view t) -> result<cpuset> {
          auto s = cpuset::parse(t);
          if (!s) return fail(s.error().code(), std::string(g.path(h, file)) + ": " + s.error().message());
          return s;
        },
        [](const cpuset& s) { return s.to_string(); }, rec);
    if (!r) return r;
  }
  return {};
}

// ---- memory -------------------------------------------------------------------
result<void> apply_memory_v2(const impl_t& im, const group_files& g, const open_hierarchy& h, const memory_spec& m,
                             recorder& rec) {
  const auto one = [&](const char* knob, const char* file, limit<bytes> want) -> result<void> {
    if (want.is_bounded() && !(want.value() == bytes::max()))
      if (auto ok = check_memory_bytes(im, knob, want.value()); !ok) {
        rec.failed(knob, ok.error());
        return {};
      }
    return v1_value<limit<bytes>>(
        g, h, file, knob, want, [&](std::string_view t) { return cgroup::parse_v2_bytes(t, g.path(h, file)); },
        [](const limit<bytes>& l) { return l.is_unlimited() ? std::string("max") : std::to_string(l.value().count()); },
        rec);
  };
  if (m.hard_limit)
    if (auto r = one("memory.hard_limit", "memory.max", *m.hard_limit); !r) return r;
  if (m.high)
    if (auto r = one("memory.high", "memory.high", *m.high); !r) return r;
  // memory.min / memory.low are byte counts in the model; the file's "max"
  // (protect everything) is bytes::max().
  const auto prot = [](const knob<bytes>& k) {
    return *k == bytes::max() ? limit<bytes>{unlimited} : limit<bytes>{*k};
  };
  if (m.min)
    if (auto r = one("memory.min", "memory.min", prot(m.min)); !r) return r;
  if (m.low)
    if (auto r = one("memory.low", "memory.low", prot(m.low)); !r) return r;
  if (m.soft_limit) rec.unsupported("memory.soft_limit");
  if (m.swap_hard_limit) rec.unsupported("memory.swap_hard_limit");
  return {};
}

result<void> apply_memory_v1(const impl_t& im, const group_files& g, const open_hierarchy& h, const memory_spec& m,
                             recorder& rec) {
  const auto parse = [&](const char* file) {
    return [&im, &g, &h, file](std::string_view t) { return cgroup::parse_v1_bytes(t, im.page_size, g.path(h, file)); };
  };
  const auto format = [](const limit<bytes>& l) {
    return l.is_unlimited() ? std::string("-1") : std::to_string(l.value().count());
  };
  const auto checked = [&](const char* name, const knob<limit<bytes>>& k) {
    if (!k || k->is_unlimited()) return true;
    if (auto ok = check_memory_bytes(im, name, k->value()); !ok) {
      rec.failed(name, ok.error());
      return false;
    }
    return true;
  };
  const bool hard_ok = checked("memory.hard_limit", m.hard_limit);
  const bool swap_ok = checked("memory.swap_hard_limit", m.swap_hard_limit);
  // cgroup-v1/memory.rst: memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes,
  // so a raised memory limit goes after a raised memsw limit.
  bool swap_first = false;
  if (m.hard_limit && hard_ok && m.swap_hard_limit && swap_ok) {
    auto t = g.read(h, "memory.memsw.limit_in_bytes");
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto cur = cgroup::parse_v1_bytes(**t, im.page_size, "memory.memsw.limit_in_bytes"))
        swap_first = cur->is_bounded() && (m.hard_limit->is_unlimited() || m.hard_limit->value() > cur->value());
  }
  const auto hard = [&]() -> result<void> {
    if (!m.hard_limit || !hard_ok) return {};
    return v1_value<limit<bytes>>(g, h, "memory.limit_in_bytes", "memory.hard_limit", *m.hard_limit,
                                  parse("memory.limit_in_bytes"), format, rec);
  };
  const auto swap = [&]() -> result<void> {
    if (!m.swap_hard_limit || !swap_ok) return {};
    return v1_value<limit<bytes>>(g, h, "memory.memsw.limit_in_bytes", "memory.swap_hard_limit", *m.swap_hard_limit,
                                  parse("memory.memsw.limit_in_bytes"), format, rec);
  };
  if (swap_first) {
    if (auto r = swap(); !r) return r;
    if (auto r = hard(); !r) return r;
  } else {
    if (auto r = hard(); !r) return r;
    if (auto r = swap(); !r) return r;
  }
  if (m.soft_limit && checked("memory.soft_limit", m.soft_limit))
    if (auto r = v1_value<limit<bytes>>(g, h, "memory.soft_limit_in_bytes", "memory.soft_limit", *m.soft_limit,
                                        parse("memory.soft_limit_in_bytes"), format, rec);
        !r)
      return r;
  if (m.high) rec.unsupported("memory.high");
  if (m.min) rec.unsupported("memory.min");
  if (m.low) rec.unsupported("memory.low");
  return {};
}

// ---- io -----------------------------------------------------------------------

struct io_key {
  const char* v2;     // io.max key
  const char* v1;     // v1 file
  const char* field;  // quota_spec field
  bool bytes;         // bytes/s (else ops/s)
};
constexpr io_key io_keys[] = {
    {"rbps", "blkio.throttle.read_bps_device", "read_bytes_sec", true},
    {"wbps", "blkio.throttle.write_bps_device", "write_bytes_sec", true},
    {"riops", "blkio.throttle.read_iops_device", "read_iops_sec", false},
    {"wiops", "blkio.throttle.write_iops_device", "write_iops_sec", false},
};

// The desired limit of one key as a raw number (nullopt: unlimited), or no
// value when the spec does not manage it.
std::optional<limit<std::uint64_t>> io_want(const disk_spec& d, const io_key& k) {
  const auto raw = [](const auto& knob) -> std::optional<limit<std::uint64_t>> {
    if (!knob) return std::nullopt;
    if (knob->is_unlimited()) return limit<std::uint64_t>{unlimited};
    return limit<std::uint64_t>{knob->value().count()};
  };
  if (k.bytes) return raw(std::string_view(k.field) == "read_bytes_sec" ? d.read_bytes_sec : d.write_bytes_sec);
  return raw(std::string_view(k.field) == "read_iops_sec" ? d.read_iops_sec : d.write_iops_sec);
}

std::string io_text(const io_key& k, const limit<std::uint64_t>& v) {
  if (v.is_unlimited()) return "unlimited";
  return std::to_string(v.value()) + (k.bytes ? " bytes/s" : " ops/s");
}

// blk-throttle keeps iops as unsigned int; 0 means "no limit" in v1 and is
// refused in v2.
std::optional<error> io_check(const std::string& knob, const io_key& k, const limit<std::uint64_t>& v) {
  if (v.is_unlimited()) return std::nullopt;
  if (v.value() == 0)
    return error(errc::out_of_range, knob + ": 0 would stop all I/O (and cgroup v1 reads 0 as no limit); use a positive limit or unlimited");
  if (!k.bytes && v.value() > std::numeric_limits<std::uint32_t>::max())
    return error(errc::out_of_range, knob + ": " + std::to_string(v.value()) + " ops/s is above the kernel's 4294967295");
  return std::nullopt;
}

result<void> apply_io_v2(const group_files& g, const open_hierarchy& h, const quota_spec& s, recorder& rec) {
  bool want_max = false, want_weight = s.blkio_weight.has_value();
  for (const auto& d : s.disks) {
    for (const auto& k : io_keys) want_max = want_max || io_want(d, k).has_value();
    want_weight = want_weight || d.weight.has_value();
  }
  if (want_max) {
    auto t = g.read(h, "io.max");
    if (!t) return fail(std::move(t.error()));
    cgroup::nested_keyed cur;
    std::optional<error> parse_err;
    if (*t) {
      if (auto p = cgroup::parse_nested_keyed(**t, g.path(h, "io.max"))) cur = std::move(*p);
      else parse_err = p.error();
    }
    const auto current = [&](const std::string& dev, const io_key& k) -> limit<std::uint64_t> {
      auto it = cur.find(dev);
      if (it == cur.end()) return unlimited;
      auto v = it->second.find(k.v2);
      if (v == it->second.end() || v->second == "max") return unlimited;
      auto n = bulkhead::detail::parse_u64(v->second, "io.max");
      return n ? limit<std::uint64_t>{*n} : limit<std::uint64_t>{unlimited};
    };
    struct pending {
      std::string dev;
      std::vector<std::pair<const io_key*, limit<std::uint64_t>>> keys;
      std::vector<std::string> before;
    };
    std::vector<pending> writes;
    for (const auto& d : s.disks) {
      const std::string p = "disks['" + d.target + "'].";
      bool any = false;
      for (const auto& k : io_keys) any = any || io_want(d, k).has_value();
      if (!any) continue;
      if (!*t) {
        for (const auto& k : io_keys)
          if (io_want(d, k)) rec.unsupported(p + k.field);
        continue;
      }
      auto dev = cgroup::parse_device(d.target, "disks[" + bulkhead::detail::quote(d.target) + "]");
      if (!dev || parse_err) {
        for (const auto& k : io_keys)
          if (io_want(d, k)) rec.failed(p + k.field, dev ? *parse_err : dev.error());
        continue;
      }
      pending w{*dev, {}, {}};
      for (const auto& k : io_keys) {
        auto want = io_want(d, k);
        if (!want) continue;
        if (auto bad = io_check(p + k.field, k, *want)) {
          rec.failed(p + k.field, *bad);
          continue;
        }
        const auto now = current(*dev, k);
        if (now == *want) continue;
        w.keys.emplace_back(&k, *want);
        w.before.push_back(io_text(k, now));
      }
      if (!w.keys.empty()) writes.push_back(std::move(w));
    }
    for (const auto& w : writes) {
      std::string line = w.dev;
      for (const auto& [k, v] : w.keys)
        line += std::string(" ") + k->v2 + "=" + (v.is_unlimited() ? std::string("max") : std::to_string(v.value()));
      auto back = g.write_read(h, "io.max", line);
      std::optional<cgroup::nested_keyed> now;
      if (back)
        if (auto p = cgroup::parse_nested_keyed(*back, "io.max")) now = std::move(*p);
      for (std::size_t i = 0; i < w.keys.size(); ++i) {
        const auto& [k, v] = w.keys[i];
        const std::string knob = "disks['" + w.dev + "']." + k->field;
        if (!back) {
          rec.failed(knob, back.error());
          continue;
        }
        cur = now ? *now : cgroup::nested_keyed{};
        if (!now || !(current(w.dev, *k) == v)) rec.failed(knob, readback_mismatch(g.path(h, "io.max"), line, *back));
        else rec.changed(knob, w.before[i], io_text(*k, v));
      }
    }
  }
  if (want_weight) {
    auto t = g.read(h, "io.weight");
    if (!t) return fail(std::move(t.error()));
    std::vector<std::pair<std::string, std::uint64_t>> wanted;  // ("default" | dev, weight) with knob names
    std::vector<std::string> knobs;
    if (s.blkio_weight) {
      wanted.emplace_back("default", *s.blkio_weight);
      knobs.emplace_back("blkio_weight");
    }
    for (const auto& d : s.disks)
      if (d.weight) {
        auto dev = cgroup::parse_device(d.target, "disks[" + bulkhead::detail::quote(d.target) + "]");
        if (!dev) {
          rec.failed("disks['" + d.target + "'].weight", dev.error());
          continue;
        }
        wanted.emplace_back(*dev, *d.weight);
        knobs.push_back("disks['" + d.target + "'].weight");
      }
    if (!*t) {
      for (const auto& k : knobs) rec.unsupported(k);
    } else if (auto cur = cgroup::parse_io_weight(**t, g.path(h, "io.weight")); !cur) {
      for (const auto& k : knobs) rec.failed(k, cur.error());
    } else {
      for (std::size_t i = 0; i < wanted.size(); ++i) {
        const auto& [key, want] = wanted[i];
        const bool def = key == "default";
        const auto it = cur->devices.find(key);
        const std::uint64_t now = def ? cur->default_weight : (it == cur->devices.end() ? cur->default_weight : it->second);
        const bool has_entry = def || it != cur->devices.end();
        if (has_entry && now == want) continue;
        const std::string line = key + " " + std::to_string(want);
        auto back = g.write_read(h, "io.weight", line);
        if (!back) {
          rec.failed(knobs[i], back.error());
          continue;
        }
        auto b = cgroup::parse_io_weight(*back, "io.weight");
        const std::uint64_t got = !b ? 0 : def ? b->default_weight : (b->devices.count(key) ? b->devices.at(key) : 0);
        if (!b || got != want) rec.failed(knobs[i], readback_mismatch(g.path(h, "io.weight"), line, *back));
        else rec.changed(knobs[i], has_entry ? knob_text(now) : "(default " + knob_text(now) + ")", knob_text(want));
      }
    }
  }
  return {};
}

result<void> apply_io_v1(const group_files& g, const open_hierarchy& h, const quota_spec& s, recorder& rec) {
  for (const auto& k : io_keys) {
    bool any = false;
    for (const auto& d : s.disks) any = any || io_want(d, k).has_value();
    if (!any) continue;
    auto t = g.read(h, k.v1);
    if (!t) return fail(std::move(t.error()));
    std::map<std::string, std::uint64_t> cur;
    std::optional<error> parse_err;
    if (*t) {
      if (auto p = cgroup::parse_device_values(**t, g.path(h, k.v1))) cur = std::move(*p);
      else parse_err = p.error();
    }
    for (const auto& d : s.disks) {
      auto want = io_want(d, k);
      if (!want) continue;
      const std::string knob = "disks['" + d.target + "']." + k.field;
      if (!*t) {
        rec.unsupported(knob);
        continue;
      }
      auto dev = cgroup::parse_device(d.target, "disks[" + bulkhead::detail::quote(d.target) + "]");
      if (!dev) {
        rec.failed(knob, dev.error());
        continue;
      }
      if (parse_err) {
        rec.failed(knob, *parse_err);
        continue;
      }
      if (auto bad = io_check(knob, k, *want)) {
        rec.failed(knob, *bad);
        continue;
      }
      const auto it = cur.find(*dev);
      const limit<std::uint64_t> now = it == cur.end() ? limit<std::uint64_t>{unlimited} : limit<std::uint64_t>{it->second};
      if (now == *want) continue;
      // cgroup-v1/blkio-controller.rst: writing 0 removes a device's limit.
      const std::string line = *dev + " " + (want->is_unlimited() ? std::string("0") : std::to_string(want->value()));
      auto back = g.write_read(h, k.v1, line);
      if (!back) {
        rec.failed(knob, back.error());
        continue;
      }
      auto b = cgroup::parse_device_values(*back, k.v1);
      const bool ok = b && (want->is_unlimited() ? (b->count(*dev) == 0 || b->at(*dev) == 0)
                                                 : (b->count(*dev) && b->at(*dev) == want->value()));
      if (!ok) rec.failed(knob, readback_mismatch(g.path(h, k.v1), line, *back));
      else {
        cur = std::move(*b);
        rec.changed(knob, io_text(k, now), io_text(k, *want));
      }
    }
  }
  // blkio.weight (CFQ/BFQ) and blkio.weight_device: 10..1000.
  if (s.blkio_weight) {
    auto r = v1_value<std::uint64_t>(
        g, h, "blkio.weight", "blkio_weight", *s.blkio_weight,
        [&](std::string_view t) { return cgroup::parse_u64(t, g.path(h, "blkio.weight")); },
        [](std::uint64_t v) { return std::to_string(v); }, rec);
    if (!r) return r;
  }
  for (const auto& d : s.disks) {
    if (!d.weight) continue;
    const std::string knob = "disks['" + d.target + "'].weight";
    if (*d.weight < blkio_weight_min || *d.weight > blkio_weight_max) {
      rec.failed(knob, error(errc::out_of_range, bulkhead::detail::range_msg(knob, *d.weight, blkio_weight_min, blkio_weight_max) +
                                                     " (cgroup v1 blkio.weight_device)"));
      continue;
    }
    auto dev = cgroup::parse_device(d.target, "disks[" + bulkhead::detail::quote(d.target) + "]");
    if (!dev) {
      rec.failed(knob, dev.error());
      continue;
    }
    auto t = g.read(h, "blkio.weight_device");
    if (!t) return fail(std::move(t.error()));
    if (!*t) {
      rec.unsupported(knob);
      continue;
    }
    auto cur = cgroup::parse_device_values(**t, g.path(h, "blkio.weight_device"));
    if (!cur) {
      rec.failed(knob, cur.error());
      continue;
    }
    if (cur->count(*dev) && cur->at(*dev) == *d.weight) continue;
    const std::string line = *dev + " " + std::to_string(*d.weight);
    auto back = g.write_read(h, "blkio.weight_device", line);
    if (!back) {
      rec.failed(knob, back.error());
      continue;
    }
    auto b = cgroup::parse_device_values(*back, "blkio.weight_device");
    if (!b || !b->count(*dev) || b->at(*dev) != *d.weight)
      rec.failed(knob, readback_mismatch(g.path(h, "blkio.weight_device"), line, *back));
    else rec.changed(knob, cur->count(*dev) ? knob_text(cur->at(*dev)) : std::string("(none)"), knob_text(*d.weight));
  }
  return {};
}

// Knobs of a spec that no cgroup has (VM-only, libvirt-only, resctrl).
void static_unsupported(const quota_spec& s, recorder& rec) {
  const auto& c = s.cpu;
  if (c.vcpus) rec.unsupported("cpu.vcpus");
  if (c.max_vcpus) rec.unsupported("cpu.max_vcpus");
  if (c.emulator_period) rec.unsupported("cpu.emulator_period");
  if (c.emulator_quota) rec.unsupported("cpu.emulator_quota");
  if (c.vcpu_pins) rec.unsupported("cpu.vcpu_pins");
  if (c.emulator_pin) rec.unsupported("cpu.emulator_pin");
  if (s.memory.max) rec.unsupported("memory.max");
  if (s.memory.current) rec.unsupported("memory.current");
  if (s.memory.numa) rec.unsupported("memory.numa");
  for (const auto& d : s.disks) {
    const auto un = [&](std::string_view f, bool set) {
      if (set) rec.unsupported("disks['" + d.target + "']." + std::string(f));
    };
    un("total_bytes_sec", d.total_bytes_sec.has_value());
    un("total_iops_sec", d.total_iops_sec.has_value());
    un("total_bytes_sec_max", d.total_bytes_sec_max.has_value());
    un("read_bytes_sec_max", d.read_bytes_sec_max.has_value());
    un("write_bytes_sec_max", d.write_bytes_sec_max.has_value());
    un("total_iops_sec_max", d.total_iops_sec_max.has_value());
    un("read_iops_sec_max", d.read_iops_sec_max.has_value());
    un("write_iops_sec_max", d.write_iops_sec_max.has_value());
  }
  for (const auto& i : s.interfaces)
    if (i.inbound || i.outbound) rec.unsupported("interfaces['" + i.mac + "']");
  if (s.llc) rec.unsupported("llc");
  if (s.memory_bandwidth) rec.unsupported("memory_bandwidth");
  if (s.cache_tunes) rec.unsupported("cache_tunes");
}

// Knobs of controllers nobody serves.
void unserved_unsupported(const impl_t& im, const quota_spec& s, recorder& rec) {
  const auto& c = s.cpu;
  if (!im.of(C::cpu)) {
    if (c.quota) rec.unsupported("cpu.quota");
    if (c.period) rec.unsupported("cpu.period");
    if (c.shares) rec.unsupported("cpu.shares");
    if (c.weight) rec.unsupported("cpu.weight");
    if (c.burst) rec.unsupported("cpu.burst");
  }
  if (!im.of(C::cpuset)) {
    if (c.cpus) rec.unsupported("cpu.cpus");
    if (c.mems) rec.unsupported("cpu.mems");
  }
  if (!im.of(C::memory)) {
    const auto& m = s.memory;
    if (m.hard_limit) rec.unsupported("memory.hard_limit");
    if (m.soft_limit) rec.unsupported("memory.soft_limit");
    if (m.swap_hard_limit) rec.unsupported("memory.swap_hard_limit");
    if (m.high) rec.unsupported("memory.high");
    if (m.min) rec.unsupported("memory.min");
    if (m.low) rec.unsupported("memory.low");
  }
  if (!im.of(C::io)) {
    if (s.blkio_weight) rec.unsupported("blkio_weight");
    for (const auto& d : s.disks) {
      const std::string p = "disks['" + d.target + "'].";
      if (d.read_bytes_sec) rec.unsupported(p + "read_bytes_sec");
      if (d.write_bytes_sec) rec.unsupported(p + "write_bytes_sec");
      if (d.read_iops_sec) rec.unsupported(p + "read_iops_sec");
      if (d.write_iops_sec) rec.unsupported(p + "write_iops_sec");
      if (d.weight) rec.unsupported(p + "weight");
    }
  }
}

// ---- read ---------------------------------------------------------------------

struct reading_builder {
  const impl_t& im;
  const group_files& g;
  instance_reading& out;

  // Reads a file; missing: the knob names go to unsupported; a parse or read
  // error goes to partial. Returns the text when there is one.
  result<std::optional<std::string>> file(const open_hierarchy& h, std::string_view name,
                                          std::initializer_list<std::string_view> knobs) {
    auto t = g.read(h, name);
    if (!t) {
      if (t.error().code() == errc::not_found) return fail(std::move(t.error()));
      out.partial.push_back(t.error());
      return std::optional<std::string>{};
    }
    if (!*t)
      for (auto k : knobs) out.unsupported.emplace_back(k);
    return t;
  }
  template <class T>
  std::optional<T> ok(result<T> r) {
    if (r) return std::move(*r);
    out.partial.push_back(std::move(r.error()));
    return std::nullopt;
  }
};

result<void> read_cpu(reading_builder& b, const open_hierarchy& h) {
  auto& e = b.out.enforced.cpu;
  auto& u = b.out.usage;
  const auto& g = b.g;
  if (h.v2) {
    auto t = b.file(h, "cpu.max", {"cpu.quota", "cpu.period"});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto v = b.ok(cgroup::parse_cpu_max(**t, g.path(h, "cpu.max")))) {
        e.quota = v->quota;
        e.period = v->period;
      }
    t = b.file(h, "cpu.weight", {"cpu.weight"});
    if (!t) return fail(std::move(t.error()));
    if (*t) e.weight = b.ok(cgroup::parse_u64(**t, g.path(h, "cpu.weight")));
    t = b.file(h, "cpu.max.burst", {"cpu.burst"});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto v = b.ok(parse_us(**t, g.path(h, "cpu.max.burst")))) e.burst = *v;
    return {};
  }
  auto t = b.file(h, "cpu.cfs_quota_us", {"cpu.quota"});
  if (!t) return fail(std::move(t.error()));
  if (*t) e.quota = b.ok(parse_cfs_quota(**t, g.path(h, "cpu.cfs_quota_us")));
  t = b.file(h, "cpu.cfs_period_us", {"cpu.period"});
  if (!t) return fail(std::move(t.error()));
  if (*t) e.period = b.ok(parse_us(**t, g.path(h, "cpu.cfs_period_us")));
  t = b.file(h, "cpu.shares", {"cpu.shares"});
  if (!t) return fail(std::move(t.error()));
  if (*t) e.shares = b.ok(cgroup::parse_u64(**t, g.path(h, "cpu.shares")));
  t = b.file(h, "cpu.cfs_burst_us", {"cpu.burst"});
  if (!t) return fail(std::move(t.error()));
  if (*t) e.burst = b.ok(parse_us(**t, g.path(h, "cpu.cfs_burst_us")));
  // Throttling (sched-bwc.rst): nr_periods, nr_throttled, throttled_time (ns).
  t = b.file(h, "cpu.stat", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto s = b.ok(cgroup::parse_flat_keyed(**t, g.path(h, "cpu.stat")))) {
      if (s->count("nr_periods")) u.cpu_nr_periods = s->at("nr_periods");
      if (s->count("nr_throttled")) u.cpu_nr_throttled = s->at("nr_throttled");
      if (s->count("throttled_time")) u.cpu_throttled_time = nanoseconds{static_cast<std::int64_t>(s->at("throttled_time"))};
    }
  return {};
}

result<void> read_cpu_usage(reading_builder& b, const open_hierarchy& h) {
  auto& u = b.out.usage;
  const auto& g = b.g;
  const auto ns = [](std::uint64_t v) { return nanoseconds{static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()))}; };
  if (h.v2) {
    auto t = b.file(h, "cpu.stat", {});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto s = b.ok(cgroup::parse_flat_keyed(**t, g.path(h, "cpu.stat")))) {
        const auto us = [&](const char* k) -> knob<nanoseconds> {
          if (!s->count(k)) return std::nullopt;
          return ns(s->at(k) > std::numeric_limits<std::uint64_t>::max() / 1000 ? std::numeric_limits<std::uint64_t>::max()
                                                                                 : s->at(k) * 1000);
        };
        u.cpu_time = us("usage_usec");
        u.cpu_user = us("user_usec");
        u.cpu_system = us("system_usec");
        if (s->count("nr_periods")) u.cpu_nr_periods = s->at("nr_periods");
        if (s->count("nr_throttled")) u.cpu_nr_throttled = s->at("nr_throttled");
        u.cpu_throttled_time = us("throttled_usec");
      }
    return {};
  }
  // cgroup-v1/cpuacct.rst: cpuacct.usage in nanoseconds.
  auto t = b.file(h, "cpuacct.usage", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto v = b.ok(cgroup::parse_u64(**t, g.path(h, "cpuacct.usage")))) u.cpu_time = ns(*v);
  t = b.file(h, "cpuacct.usage_user", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto v = b.ok(cgroup::parse_u64(**t, g.path(h, "cpuacct.usage_user")))) u.cpu_user = ns(*v);
  t = b.file(h, "cpuacct.usage_sys", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto v = b.ok(cgroup::parse_u64(**t, g.path(h, "cpuacct.usage_sys")))) u.cpu_system = ns(*v);
  return {};
}

result<void> read_cpuset(reading_builder& b, const open_hierarchy& h) {
  auto& e = b.out.enforced.cpu;
  for (const bool cpus : {true, false}) {
    const std::string eff = h.v2 ? (cpus ? "cpuset.cpus.effective" : "cpuset.mems.effective")
                                 : (cpus ? "cpuset.effective_cpus" : "cpuset.effective_mems");
    const std::string conf = cpus ? "cpuset.cpus" : "cpuset.mems";
    auto t = b.file(h, eff, {});
    if (!t) return fail(std::move(t.error()));
    std::string used = eff;
    if (!*t) {
      t = b.file(h, conf, {cpus ? "cpu.cpus" : "cpu.mems"});
      if (!t) return fail(std::move(t.error()));
      used = conf;
    }
    if (*t) {
      auto s = cpuset::parse(**t);
      if (!s) b.out.partial.push_back(error(s.error().code(), std::string(b.g.path(h, used)) + ": " + s.error().message()));
      else (cpus ? e.cpus : e.mems) = std::move(*s);
    }
  }
  return {};
}

result<void> read_memory(reading_builder& b, const open_hierarchy& h) {
  auto& e = b.out.enforced.memory;
  auto& u = b.out.usage;
  const auto& g = b.g;
  const auto& im = b.im;
  if (h.v2) {
    const auto lim = [&](const char* file, const char* name, knob<limit<bytes>>& dst) -> result<void> {
      auto t = b.file(h, file, {name});
      if (!t) return fail(std::move(t.error()));
      if (*t) dst = b.ok(cgroup::parse_v2_bytes(**t, g.path(h, file)));
      return {};
    };
    if (auto r = lim("memory.max", "memory.hard_limit", e.hard_limit); !r) return r;
    if (auto r = lim("memory.high", "memory.high", e.high); !r) return r;
    knob<limit<bytes>> mn, lo;
    if (auto r = lim("memory.min", "memory.min", mn); !r) return r;
    if (auto r = lim("memory.low", "memory.low", lo); !r) return r;
    if (mn) e.min = mn->is_unlimited() ? bytes::max() : mn->value();
    if (lo) e.low = lo->is_unlimited() ? bytes::max() : lo->value();
    b.out.unsupported.emplace_back("memory.soft_limit");
    b.out.unsupported.emplace_back("memory.swap_hard_limit");
    auto t = b.file(h, "memory.current", {});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto v = b.ok(cgroup::parse_u64(**t, g.path(h, "memory.current")))) u.memory_current = bytes{*v};
    t = b.file(h, "memory.events", {});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto s = b.ok(cgroup::parse_flat_keyed(**t, g.path(h, "memory.events"))); s && s->count("oom_kill"))
        u.memory_oom_events = s->at("oom_kill");
    return {};
  }
  const auto lim = [&](const char* file, const char* name, knob<limit<bytes>>& dst) -> result<void> {
    auto t = b.file(h, file, {name});
    if (!t) return fail(std::move(t.error()));
    if (*t) dst = b.ok(cgroup::parse_v1_bytes(**t, im.page_size, g.path(h, file)));
    return {};
  };
  if (auto r = lim("memory.limit_in_bytes", "memory.hard_limit", e.hard_limit); !r) return r;
  if (auto r = lim("memory.soft_limit_in_bytes", "memory.soft_limit", e.soft_limit); !r) return r;
  if (auto r = lim("memory.memsw.limit_in_bytes", "memory.swap_hard_limit", e.swap_hard_limit); !r) return r;
  b.out.unsupported.emplace_back("memory.high");
  b.out.unsupported.emplace_back("memory.min");
  b.out.unsupported.emplace_back("memory.low");
  auto t = b.file(h, "memory.usage_in_bytes", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto v = b.ok(cgroup::parse_u64(**t, g.path(h, "memory.usage_in_bytes")))) u.memory_current = bytes{*v};
  t = b.file(h, "memory.oom_control", {});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto s = b.ok(cgroup::parse_flat_keyed(**t, g.path(h, "memory.oom_control"))); s && s->count("oom_kill"))
      u.memory_oom_events = s->at("oom_kill");
  return {};
}

disk_spec& disk_entry(quota_spec& s, const std::string& dev) {
  for (auto& d : s.disks)
    if (d.target == dev) return d;
  disk_spec d;
  d.target = dev;
  s.disks.push_back(std::move(d));
  return s.disks.back();
}
disk_counters& counter_entry(usage_sample& u, const std::string& dev) {
  for (auto& d : u.disks)
    if (d.target == dev) return d;
  disk_counters d;
  d.target = dev;
  u.disks.push_back(std::move(d));
  return u.disks.back();
}

void set_io_limit(disk_spec& d, const io_key& k, limit<std::uint64_t> v) {
  const std::string_view f = k.field;
  if (k.bytes) {
    const limit<bytes_per_second> b = v.is_unlimited() ? limit<bytes_per_second>{unlimited}
                                                       : limit<bytes_per_second>{bytes_per_second{v.value()}};
    (f == "read_bytes_sec" ? d.read_bytes_sec : d.write_bytes_sec) = b;
  } else {
    const limit<ops_per_second> o = v.is_unlimited() ? limit<ops_per_second>{unlimited}
                                                     : limit<ops_per_second>{ops_per_second{v.value()}};
    (f == "read_iops_sec" ? d.read_iops_sec : d.write_iops_sec) = o;
  }
}

result<void> read_io(reading_builder& b, const open_hierarchy& h) {
  auto& s = b.out.enforced;
  auto& u = b.out.usage;
  const auto& g = b.g;
  for (auto f : disk_knobs_never) b.out.unsupported.push_back("disks[]." + std::string(f));
  // Every device that has an entry gets all four limits (absent = unlimited).
  const auto fill_unlimited = [](disk_spec& d) {
    for (const auto& k : io_keys) {
      const std::string_view f = k.field;
      const bool has = k.bytes ? (f == "read_bytes_sec" ? d.read_bytes_sec : d.write_bytes_sec).has_value()
                               : (f == "read_iops_sec" ? d.read_iops_sec : d.write_iops_sec).has_value();
      if (!has) set_io_limit(d, k, unlimited);
    }
  };
  if (h.v2) {
    auto t = b.file(h, "io.max", {"disks[].read_bytes_sec", "disks[].write_bytes_sec", "disks[].read_iops_sec",
                                  "disks[].write_iops_sec"});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto m = b.ok(cgroup::parse_nested_keyed(**t, g.path(h, "io.max"))))
        for (const auto& [dev, kv] : *m) {
          auto& d = disk_entry(s, dev);
          for (const auto& k : io_keys) {
            auto it = kv.find(k.v2);
            if (it == kv.end() || it->second == "max") {
              set_io_limit(d, k, unlimited);
            } else if (auto n = bulkhead::detail::parse_u64(it->second, std::string(g.path(h, "io.max")) + " " + dev + " " + k.v2)) {
              set_io_limit(d, k, *n);
            } else {
              b.out.partial.push_back(n.error());
            }
          }
        }
    t = b.file(h, "io.weight", {"blkio_weight", "disks[].weight"});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto w = b.ok(cgroup::parse_io_weight(**t, g.path(h, "io.weight")))) {
        s.blkio_weight = w->default_weight;
        for (const auto& [dev, wt] : w->devices) disk_entry(s, dev).weight = wt;
        for (auto& d : s.disks)
          if (!d.weight) d.weight = w->default_weight;
      }
    for (auto& d : s.disks) fill_unlimited(d);
    t = b.file(h, "io.stat", {});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto m = b.ok(cgroup::parse_nested_keyed(**t, g.path(h, "io.stat"))))
        for (const auto& [dev, kv] : *m) {
          auto& c = counter_entry(u, dev);
          const auto num = [&](const char* k) -> std::optional<std::uint64_t> {
            auto it = kv.find(k);
            if (it == kv.end()) return std::nullopt;
            return b.ok(bulkhead::detail::parse_u64(it->second, std::string(g.path(h, "io.stat")) + " " + dev + " " + k));
          };
          if (auto v = num("rbytes")) c.read_bytes = bytes{*v};
          if (auto v = num("wbytes")) c.write_bytes = bytes{*v};
          if (auto v = num("rios")) c.read_requests = operations{*v};
          if (auto v = num("wios")) c.write_requests = operations{*v};
        }
    return {};
  }
  for (const auto& k : io_keys) {
    const std::string knob = std::string("disks[].") + k.field;
    auto t = b.file(h, k.v1, {knob});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto m = b.ok(cgroup::parse_device_values(**t, g.path(h, k.v1))))
        for (const auto& [dev, v] : *m) set_io_limit(disk_entry(s, dev), k, v == 0 ? limit<std::uint64_t>{unlimited} : limit<std::uint64_t>{v});
  }
  auto t = b.file(h, "blkio.weight", {"blkio_weight"});
  if (!t) return fail(std::move(t.error()));
  if (*t) s.blkio_weight = b.ok(cgroup::parse_u64(**t, g.path(h, "blkio.weight")));
  t = b.file(h, "blkio.weight_device", {"disks[].weight"});
  if (!t) return fail(std::move(t.error()));
  if (*t)
    if (auto m = b.ok(cgroup::parse_device_values(**t, g.path(h, "blkio.weight_device"))))
      for (const auto& [dev, v] : *m) disk_entry(s, dev).weight = v;
  for (auto& d : s.disks) {
    fill_unlimited(d);
    if (!d.weight && s.blkio_weight) d.weight = s.blkio_weight;
  }
  for (const auto& [file, bytes_file] : {std::pair{"blkio.throttle.io_service_bytes", true}, std::pair{"blkio.throttle.io_serviced", false}}) {
    t = b.file(h, file, {});
    if (!t) return fail(std::move(t.error()));
    if (*t)
      if (auto m = b.ok(cgroup::parse_blkio_stat(**t, g.path(h, file))))
        for (const auto& [dev, rw] : *m) {
          auto& c = counter_entry(u, dev);
          if (bytes_file) {
            c.read_bytes = bytes{rw.read};
            c.write_bytes = bytes{rw.write};
          } else {
            c.read_requests = operations{rw.read};
            c.write_requests = operations{rw.write};
          }
        }
  }
  return {};
}

result<std::vector<pid_t>> parse_procs(std::string_view text, const std::string& what) {
  std::vector<pid_t> out;
  std::optional<error> err;
  bulkhead::detail::split(text, '\n', [&](std::string_view l) {
    l = bulkhead::detail::trim(l);
    if (l.empty() || err) return;
    auto v = bulkhead::detail::parse_u64(l, what);
    if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<pid_t>::max())) {
      err = v ? error(errc::parse_error, what + ": pid " + bulkhead::detail::quote(l) + " out of range") : v.error();
      return;
    }
    out.push_back(static_cast<pid_t>(*v));
  });
  if (err) return fail(std::move(*err));
  return out;
}

}  // namespace

// ---- the backend ----------------------------------------------------------------

backend::backend(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}
backend::~backend() = default;

const std::string& backend::source() const noexcept { return p_->source; }
cgroup::layout backend::layout() const noexcept { return p_->layout; }
const std::vector<cgroup::binding>& backend::bindings() const noexcept { return p_->bindings; }

result<std::unique_ptr<backend>> backend::open(cgroup::options options) {
  // The parent: components validated one by one.
  std::string parent;
  {
    std::optional<error> err;
    if (!options.parent.empty())
      bulkhead::detail::split(options.parent, '/', [&](std::string_view c) {
        if (err) return;
        if (auto v = validate_name(c, "cgroup parent component"); !v) err = std::move(v.error());
        else parent += (parent.empty() ? "" : "/") + std::string(c);
      });
    if (err) return fail(std::move(err->in("cgroup parent " + bulkhead::detail::quote(options.parent))));
  }
  auto root = rooted_dir::open(options.fs_root);
  if (!root) return fail(std::move(root.error()));
  auto im = std::make_unique<impl>(std::move(*root), options.max_open_files);
  im->layout = options.mounts.layout;
  im->page_size = options.page_size ? options.page_size : static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (im->page_size == 0 || (im->page_size & (im->page_size - 1)) != 0)
    return fail(errc::invalid_argument, "page size " + std::to_string(im->page_size) + " is not a power of two");

  const auto rel_of = [&](const std::string& mount_point) {
    std::string r = mount_point;
    while (!r.empty() && r.front() == '/') r.erase(r.begin());
    if (!parent.empty()) r += (r.empty() ? "" : "/") + parent;
    return r;
  };
  const auto display = [&](const std::string& mount_point) {
    std::string base = options.fs_root == "/" ? std::string() : options.fs_root;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + mount_point + (parent.empty() ? "" : "/" + parent);
  };
  const auto hierarchy_for = [&](const cgroup::hierarchy& hm) -> result<std::size_t> {
    for (std::size_t i = 0; i < im->hiers.size(); ++i)
      if (im->hiers[i].path == display(hm.mount_point)) return i;
    auto dir = im->fsroot.subdir(rel_of(hm.mount_point));
    if (!dir) {
      if (dir.error().code() == errc::not_found)
        return fail(errc::not_found, "cgroup parent " + bulkhead::detail::quote(parent) + " does not exist in " +
                                         display(hm.mount_point) + " (create it first)");
      return fail(std::move(dir.error()));
    }
    im->hiers.push_back(open_hierarchy{hm.v2, display(hm.mount_point), std::move(*dir), {}});
    return im->hiers.size() - 1;
  };

  const cgroup::hierarchy* unified = options.mounts.unified();
  std::optional<std::set<std::string>> v2_available;
  for (const auto c : options.controllers) {
    if (im->by_ctl[idx(c)] >= 0) continue;
    const cgroup::hierarchy* hm = options.mounts.v1(v1_name(c));
    if (!hm && unified) {
      if (c != C::cpuacct) {
        // cgroup-v2.rst: the controllers a group's children may use are in
        // its cgroup.controllers.
        if (!v2_available) {
          v2_available.emplace();
          auto text = im->fsroot.read_file(rel_of(unified->mount_point) + "/cgroup.controllers");
          if (text) bulkhead::detail::split(bulkhead::detail::trim(*text), ' ', [&](std::string_view n) {
              if (!n.empty()) v2_available->emplace(n);
            });
          else if (text.error().code() != errc::not_found) return fail(std::move(text.error()));
        }
        if (v2_available->count(std::string(to_string(c)))) hm = unified;
      } else {
        hm = unified;  // cpu.stat usage is a core file of every v2 group
      }
    }
    if (!hm) continue;
    auto i = hierarchy_for(*hm);
    if (!i) return fail(std::move(i.error()));
    im->by_ctl[idx(c)] = static_cast<int>(*i);
    im->hiers[*i].serves.push_back(c);
    im->bindings.push_back(cgroup::binding{c, hm->v2, im->hiers[*i].path});
  }
  if (im->hiers.empty())
    return fail(errc::unsupported, "no managed cgroup controller is mounted (layout " + std::string(to_string(im->layout)) + ")");
  im->primary = im->by_ctl[idx(C::cpu)] >= 0 ? static_cast<std::size_t>(im->by_ctl[idx(C::cpu)]) : 0;
  std::vector<std::string> parts;
  for (const auto& b : im->bindings)
    parts.push_back(std::string(to_string(b.controller)) + (b.v2 ? " v2 " : " v1 ") + b.path);
  im->source = "cgroup " + std::string(to_string(im->layout)) + ": " + join(parts);
  options.parent = parent;
  im->opts = std::move(options);
  return std::unique_ptr<backend>(new backend(std::move(im)));
}

result<host_capacity> backend::capacity() {
  host_capacity cap;
  const auto& fs = p_->fsroot;
  auto online = fs.read_file("sys/devices/system/cpu/online");
  if (!online) return fail(std::move(online.error()).in("host capacity"));
  auto cpus = cpuset::parse(*online);
  if (!cpus) return fail(std::move(cpus.error()).in("sys/devices/system/cpu/online"));
  cap.cpus = static_cast<std::uint32_t>(cpus->size());
  // proc(5) /proc/meminfo and Documentation/ABI/stable/sysfs-devices-node: "MemTotal: N kB".
  const auto mem_total = [](std::string_view text) -> std::optional<std::uint64_t> {
    std::optional<std::uint64_t> out;
    bulkhead::detail::split(text, '\n', [&](std::string_view l) {
      const auto k = l.find("MemTotal:");
      if (k == std::string_view::npos || out) return;
      auto rest = bulkhead::detail::trim(l.substr(k + 9));
      if (rest.size() > 3 && rest.substr(rest.size() - 3) == " kB") rest = bulkhead::detail::trim(rest.substr(0, rest.size() - 3));
      if (auto v = bulkhead::detail::parse_u64(rest, "MemTotal"); v && *v <= std::numeric_limits<std::uint64_t>::max() / 1024)
        out = *v * 1024;
    });
    return out;
  };
  if (auto mi = fs.read_file("proc/meminfo"))
    if (auto v = mem_total(*mi)) cap.memory = bytes{*v};
  if (auto nodes = fs.list("sys/devices/system/node")) {
    for (const auto& n : *nodes) {
      if (n.size() <= 4 || n.compare(0, 4, "node") != 0) continue;
      auto id = bulkhead::detail::parse_u64(std::string_view(n).substr(4), "node id");
      if (!id || *id > std::numeric_limits<std::uint32_t>::max()) continue;
      numa_cell cell;
      cell.id = static_cast<std::uint32_t>(*id);
      if (auto cl = fs.read_file("sys/devices/system/node/" + n + "/cpulist"))
        if (auto s = cpuset::parse(*cl)) cell.cpus = std::move(*s);
      if (auto mi = fs.read_file("sys/devices/system/node/" + n + "/meminfo"))
        if (auto v = mem_total(*mi)) cell.memory = bytes{*v};
      cap.numa.push_back(std::move(cell));
    }
    std::sort(cap.numa.begin(), cap.numa.end(), [](const numa_cell& a, const numa_cell& b) { return a.id < b.id; });
  }
  if (cap.memory.count() == 0)
    for (const auto& c : cap.numa) cap.memory += c.memory;
  return cap;
}

namespace {
instance_info make_info(const impl_t& im, const std::string& name) {
  instance_info i;
  i.id.uuid = task_uuid(name);
  i.name = name;
  i.source = im.source;
  i.kind = instance_kind::task;
  i.isolation = isolation_level::process;
  i.state = instance_state::nostate;
  return i;
}

// Fills the incarnation and state; not_found when the group is in no hierarchy.
result<void> identify(const impl_t& im, instance_info& i) {
  std::vector<std::size_t> order{im.primary};
  for (std::size_t k = 0; k < im.hiers.size(); ++k)
    if (k != im.primary) order.push_back(k);
  for (auto k : order) {
    const auto& h = im.hiers[k];
    auto ino = inode_of(h.dir, i.name);
    if (!ino) {
      if (ino.error().code() == errc::not_found) continue;
      return fail(std::move(ino.error()));
    }
    i.id.incarnation = incarnation{*ino};
    auto procs = h.dir.read_file(i.name + "/cgroup.procs");
    if (procs && !bulkhead::detail::trim(*procs).empty()) i.state = instance_state::running;
    return {};
  }
  return fail(errc::not_found, "cgroup " + bulkhead::detail::quote(i.name) + " does not exist beneath " + im.source);
}

// The group name of an instance, checked. The uuid is the name's (computing
// it is a SHA-1: the last answer is remembered).
result<std::string> group_name(const instance_info& i) {
  if (auto v = validate_name(i.name, "cgroup name"); !v) return fail(std::move(v.error()));
  thread_local std::string last_name;
  thread_local uuid last_uuid;
  if (!i.id.uuid.is_nil() && !(last_name == i.name && last_uuid == i.id.uuid) && !(i.id.uuid == task_uuid(i.name)))
    return fail(errc::invalid_argument, "instance " + i.id.uuid.to_string() + " is not cgroup " + bulkhead::detail::quote(i.name) +
                                            " (whose uuid is " + task_uuid(i.name).to_string() + ")");
  if (!i.id.uuid.is_nil()) {
    last_name = i.name;
    last_uuid = i.id.uuid;
  }
  return i.name;
}
}  // namespace

result<std::vector<instance_info>> backend::discover() {
  std::set<std::string> names;
  for (const auto& h : p_->hiers) {
    auto l = h.dir.list();
    if (!l) return fail(std::move(l.error()).in("listing " + h.path));
    for (const auto& n : *l) {
      if (!validate_name(n, "cgroup name")) continue;
      auto d = h.dir.is_directory(n);
      if (d && *d) names.insert(n);
    }
  }
  std::vector<instance_info> out;
  for (const auto& n : names) {
    auto i = make_info(*p_, n);
    auto r = identify(*p_, i);
    if (!r) {
      if (r.error().code() == errc::not_found) continue;  // removed while listing
      return fail(std::move(r.error()));
    }
    out.push_back(std::move(i));
  }
  return out;
}

result<instance_reading> backend::read(const instance_info& instance) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  instance_reading out;
  out.info = make_info(*p_, *name);
  out.info.qos = instance.qos;
  out.info.tenant = instance.tenant;
  if (auto r = identify(*p_, out.info); !r) {
    if (r.error().code() == errc::not_found && instance.id.incarnation)
      return fail(errc::vanished, r.error().message() + " (it was read before: removed since)");
    return fail(std::move(r.error()));
  }
  const group_files g(*p_, *name);
  reading_builder b{*p_, g, out};
  out.usage.read_at = mono_clock::now();
  out.usage.wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  const auto run = [&](C c, auto fn) -> result<void> {
    const auto* h = p_->of(c);
    if (!h) {
      for (const auto& k : knobs_of(c)) out.unsupported.push_back(k);
      return {};
    }
    return fn(b, *h);
  };
  // cpu usage first, next to the time stamp.
  result<void> r = run(C::cpuacct, read_cpu_usage);
  if (r) r = run(C::cpu, read_cpu);
  if (r) r = run(C::cpuset, read_cpuset);
  if (r) r = run(C::memory, read_memory);
  if (r) r = run(C::io, read_io);
  if (!r) {
    if (r.error().code() == errc::not_found)
      return fail(errc::vanished, r.error().message() + " (removed while being read)");
    return fail(std::move(r.error()));
  }
  // Isolation per resource.
  const auto& e = out.enforced;
  if (e.cpu.quota || e.cpu.shares || e.cpu.weight)
    out.info.modes.set(resource_kind::cpu, e.cpu.quota && e.cpu.quota->is_bounded() ? isolation_mode::capped
                                                                                     : isolation_mode::weighted);
  if (e.memory.hard_limit)
    out.info.modes.set(resource_kind::memory,
                       e.memory.hard_limit->is_bounded() ? isolation_mode::capped : isolation_mode::shared);
  bool bw = false, iops = false;
  for (const auto& d : e.disks) {
    bw = bw || (d.read_bytes_sec && d.read_bytes_sec->is_bounded()) || (d.write_bytes_sec && d.write_bytes_sec->is_bounded());
    iops = iops || (d.read_iops_sec && d.read_iops_sec->is_bounded()) || (d.write_iops_sec && d.write_iops_sec->is_bounded());
  }
  if (p_->of(C::io)) {
    const auto unbounded = e.blkio_weight ? isolation_mode::weighted : isolation_mode::shared;
    out.info.modes.set(resource_kind::disk_bandwidth, bw ? isolation_mode::capped : unbounded);
    out.info.modes.set(resource_kind::disk_iops, iops ? isolation_mode::capped : unbounded);
  }
  return out;
}

result<apply_report> backend::apply(const instance_info& instance, const quota_spec& spec) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  if (auto v = validate(spec); !v) return fail(std::move(v.error()).in("applying to cgroup " + bulkhead::detail::quote(*name)));
  apply_report rep;
  recorder rec{rep};
  static_unsupported(spec, rec);
  unserved_unsupported(*p_, spec, rec);
  const group_files g(*p_, *name);
  const auto& c = spec.cpu;
  const auto& m = spec.memory;
  // An area whose files cannot be reached (a link out of the root, a
  // permission) fails its knobs; the other areas are still applied. A group
  // that is gone fails the whole call.
  std::optional<error> gone;
  const auto area = [&](result<void> r, std::initializer_list<std::pair<const char*, bool>> knobs) {
    if (r) return;
    if (r.error().code() == errc::not_found) {
      if (!gone) gone = std::move(r.error());
      return;
    }
    for (const auto& [k, set] : knobs)
      if (set) rec.failed(k, r.error());
  };
  if (const auto* h = p_->of(C::cpu); h && (c.quota || c.period || c.burst || c.weight || c.shares))
    area(h->v2 ? apply_cpu_v2(*p_, g, *h, c, rec) : apply_cpu_v1(*p_, g, *h, c, rec),
         {{"cpu.quota", c.quota.has_value()}, {"cpu.period", c.period.has_value()}, {"cpu.burst", c.burst.has_value()},
          {"cpu.weight", c.weight.has_value()}, {"cpu.shares", c.shares.has_value()}});
  if (const auto* h = p_->of(C::cpuset); !gone && h && (c.cpus || c.mems))
    area(apply_cpuset(*p_, g, *h, c, rec), {{"cpu.cpus", c.cpus.has_value()}, {"cpu.mems", c.mems.has_value()}});
  if (const auto* h = p_->of(C::memory);
      !gone && h && (m.hard_limit || m.soft_limit || m.swap_hard_limit || m.high || m.min || m.low))
    area(h->v2 ? apply_memory_v2(*p_, g, *h, m, rec) : apply_memory_v1(*p_, g, *h, m, rec),
         {{"memory.hard_limit", m.hard_limit.has_value()}, {"memory.soft_limit", m.soft_limit.has_value()},
          {"memory.swap_hard_limit", m.swap_hard_limit.has_value()}, {"memory.high", m.high.has_value()},
          {"memory.min", m.min.has_value()}, {"memory.low", m.low.has_value()}});
  if (const auto* h = p_->of(C::io); !gone && h && (spec.blkio_weight || !spec.disks.empty()))
    area(h->v2 ? apply_io_v2(g, *h, spec, rec) : apply_io_v1(g, *h, spec, rec),
         {{"blkio_weight", spec.blkio_weight.has_value()}, {"disks", !spec.disks.empty()}});
  if (gone) {
    if (instance.id.incarnation)
      return fail(errc::vanished, gone->message() + " (it existed before: removed since)");
    return fail(std::move(gone->in("applying to cgroup " + bulkhead::detail::quote(*name))));
  }
  return rep;
}

result<instance_info> backend::create(std::string_view name, std::optional<qos_class> qos,
                                             std::optional<std::string> tenant) {
  if (auto v = validate_name(name, "cgroup name"); !v) return fail(std::move(v.error()));
  const std::string n(name);
  bool created = false;
  for (auto& h : p_->hiers) {
    if (h.v2) {
      // cgroup-v2.rst "Enabling and Disabling": the parent's
      // cgroup.subtree_control must list a controller for children to use it.
      std::string want;
      auto cur = h.dir.read_file("cgroup.subtree_control");
      if (!cur) return fail(std::move(cur.error()).in("creating cgroup " + bulkhead::detail::quote(n)));
      std::set<std::string> on;
      bulkhead::detail::split(bulkhead::detail::trim(*cur), ' ', [&](std::string_view x) {
        if (!x.empty()) on.emplace(x);
      });
      for (const auto c : h.serves)
        if (c != C::cpuacct && !on.count(std::string(to_string(c)))) want += (want.empty() ? "+" : " +") + std::string(to_string(c));
      if (!want.empty())
        if (auto w = h.dir.write_file("cgroup.subtree_control", want); !w)
          return fail(std::move(w.error()).in("enabling controllers in " + h.path + " for cgroup " + bulkhead::detail::quote(n)));
    }
    auto mk = h.dir.make_dir(n);
    if (!mk) {
      if (mk.error().code() != errc::already_exists)
        return fail(std::move(mk.error()).in("creating cgroup " + bulkhead::detail::quote(n)));
    } else {
      created = true;
    }
    if (!h.v2 && std::find(h.serves.begin(), h.serves.end(), C::cpuset) != h.serves.end()) {
      // cgroup-v1/cpusets.rst: a new cpuset has no CPUs or nodes, and tasks
      // cannot join it until both are set. Start from the parent's.
      for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
        auto mine = h.dir.read_file(n + "/" + f);
        if (!mine || !bulkhead::detail::trim(*mine).empty()) continue;
        auto parent = h.dir.read_file(f);
        if (!parent) continue;
        if (auto w = h.dir.write_file(n + "/" + f, bulkhead::detail::trim(*parent)); !w)
          return fail(std::move(w.error()).in("creating cgroup " + bulkhead::detail::quote(n)));
      }
    }
  }
  if (!created) return fail(errc::already_exists, "cgroup " + bulkhead::detail::quote(n) + " already exists beneath " + p_->source);
  auto i = make_info(*p_, n);
  i.qos = qos;
  i.tenant = std::move(tenant);
  if (auto r = identify(*p_, i); !r) return fail(std::move(r.error()));
  return i;
}

result<void> backend::attach(const instance_info& instance, pid_t pid) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  if (pid <= 0) return fail(errc::invalid_argument, "pid " + std::to_string(pid) + " is not a process id");
  for (const auto& h : p_->hiers)
    if (auto w = h.dir.write_file(*name + "/cgroup.procs", std::to_string(pid)); !w)
      return fail(std::move(w.error()).in("attaching pid " + std::to_string(pid) + " to cgroup " + bulkhead::detail::quote(*name)));
  return {};
}

result<std::vector<pid_t>> backend::processes(const instance_info& instance) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  const auto& h = p_->hiers[p_->primary];
  auto t = h.dir.read_file(*name + "/cgroup.procs");
  if (!t) return fail(std::move(t.error()));
  return parse_procs(*t, h.path + "/" + *name + "/cgroup.procs");
}

result<void> backend::remove(const instance_info& instance) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  std::optional<error> first;
  bool any = false;
  for (const auto& h : p_->hiers) {
    p_->cache.forget_prefix(p_->key(h, *name + "/"));
    auto d = h.dir.is_directory(*name);
    if (d && !*d) continue;
    any = true;
    auto r = d ? h.dir.remove_dir(*name) : result<void>(fail(std::move(d.error())));
    if (!r && !first) {
      auto e = std::move(r.error());
      if (e.code() == errc::conflict)
        e = error(errc::conflict, e.message() + " (the group still holds processes or child groups)");
      first = std::move(e);
    }
  }
  if (first) return fail(std::move(first->in("removing cgroup " + bulkhead::detail::quote(*name))));
  if (!any) return fail(errc::not_found, "cgroup " + bulkhead::detail::quote(*name) + " does not exist beneath " + p_->source);
  return {};
}

}  // namespace bulkhead::cgroup
