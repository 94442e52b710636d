// The resctrl backend; contract in bulkhead/backend/resctrl/backend.hpp.
#include "bulkhead/backend/resctrl/backend.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/mount_table.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "backend/file_cache.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::resctrl {

// ---- the real file access: a rooted_dir ---------------------------------------------
namespace {

class rooted_resctrl_fs final : public fs {
 public:
  rooted_resctrl_fs(rooted_dir d, std::size_t max_open) : d_(std::move(d)), cache_(max_open) {}
  const std::string& path() const noexcept override { return d_.path(); }
  result<std::string> read(std::string_view rel) const override { return cache_.read(d_, std::string(rel), rel); }
  result<void> write(std::string_view rel, std::string_view content) override { return d_.write_file(rel, content); }
  result<std::vector<std::string>> list(std::string_view rel) const override { return d_.list(rel); }
  result<bool> is_directory(std::string_view rel) const override { return d_.is_directory(rel); }
  result<std::uint64_t> inode(std::string_view rel) const override {
    auto fd = d_.open_fd(rel, O_PATH);
    if (!fd) return fail(std::move(fd.error()));
    struct stat st{};
    const int rc = ::fstat(*fd, &st);
    ::close(*fd);
    if (rc != 0) return fail(errc::io_error, bulkhead::detail::quote(rel) + ": fstat failed");
    return static_cast<std::uint64_t>(st.st_ino);
  }
  result<void> make_dir(std::string_view rel) override { return d_.make_dir(rel); }
  result<void> remove_dir(std::string_view rel) override {
    cache_.forget_prefix(std::string(rel) + "/");
    return d_.remove_dir(rel);
  }
  result<std::shared_ptr<void>> lock() override {
    auto fd = d_.open_fd("", O_RDONLY | O_DIRECTORY);
    if (!fd) return fail(std::move(fd.error()));
    int rc;
    do {
      rc = ::flock(*fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int e = errno;
      ::close(*fd);
      return fail(errc_from_errno(e), d_.path() + ": flock: " + std::to_string(e));
    }
    const int held = *fd;
    // Closing the descriptor releases the lock.
    return std::shared_ptr<void>(nullptr, [held](void*) { ::close(held); });
  }

 private:
  rooted_dir d_;
  mutable bulkhead::detail::open_file_cache cache_;
};

}  // namespace

result<std::unique_ptr<fs>> fs::open(const std::string& root, std::size_t max_open_files) {
  auto d = rooted_dir::open(root);
  if (!d) return fail(std::move(d.error()));
  return std::unique_ptr<fs>(new rooted_resctrl_fs(std::move(*d), max_open_files));
}

// ---- the backend ------------------------------------------------------------------

struct backend::impl {
  resctrl::options opts;
  std::unique_ptr<resctrl::fs> fs;
  resctrl::info info;
  std::string source;
};

namespace {

using impl_t = backend::impl;

bool reserved(std::string_view n) { return n == "info" || n == "mon_data" || n == "mon_groups"; }

result<std::uint64_t> read_num(const fs& fs, const std::string& rel, bool hex) {
  auto t = fs.read(rel);
  if (!t) return fail(std::move(t.error()));
  const auto v = bulkhead::detail::trim(*t);
  return hex ? bulkhead::detail::parse_hex_u64(v, fs.path() + "/" + rel) : bulkhead::detail::parse_u64(v, fs.path() + "/" + rel);
}
result<std::optional<std::uint64_t>> read_opt_num(const fs& fs, const std::string& rel, bool hex) {
  auto v = read_num(fs, rel, hex);
  if (v) return std::optional<std::uint64_t>(*v);
  if (v.error().code() == errc::not_found) return std::optional<std::uint64_t>{};
  return fail(std::move(v.error()));
}
result<std::uint32_t> u32(result<std::uint64_t> v, const std::string& what) {
  if (!v) return fail(std::move(v.error()));
  if (*v > std::numeric_limits<std::uint32_t>::max()) return fail(errc::out_of_range, what + ": too large");
  return static_cast<std::uint32_t>(*v);
}

result<resctrl::info> read_info(const fs& fs, bool mbps) {
  auto dirs = fs.list("info");
  if (!dirs) {
    if (dirs.error().code() == errc::not_found)
      return fail(errc::not_found, fs.path() + " has no info/ directory: not a resctrl mount");
    return fail(std::move(dirs.error()));
  }
  resctrl::info info;
  info.mba_mbps = mbps;
  for (const auto& d : *dirs) {
    const std::string p = "info/" + d + "/";
    if (is_cache(d) && d.find("_MON") == std::string::npos) {
      cache_info c;
      c.resource = d;
      auto m = read_num(fs, p + "cbm_mask", true);
      if (!m) return fail(std::move(m.error()));
      if (*m == 0 || !cbm_contiguous(*m))
        return fail(errc::parse_error, fs.path() + "/" + p + "cbm_mask: " + mask_text(*m) + " is not a run of ways");
      c.cbm_mask = *m;
      auto mb = u32(read_num(fs, p + "min_cbm_bits", false), fs.path() + "/" + p + "min_cbm_bits");
      if (!mb) return fail(std::move(mb.error()));
      c.min_cbm_bits = std::max<std::uint32_t>(*mb, 1);
      // Wider than the cache: no mask could ever be valid (found by fuzzing).
      if (c.min_cbm_bits > c.ways())
        return fail(errc::parse_error, fs.path() + "/" + p + "min_cbm_bits: " + std::to_string(*mb) + " is more than the " +
                                           std::to_string(c.ways()) + " ways of cbm_mask " + mask_text(c.cbm_mask));
      auto nc = u32(read_num(fs, p + "num_closids", false), p + "num_closids");
      if (!nc) return fail(std::move(nc.error()));
      c.num_closids = *nc;
      auto sb = read_opt_num(fs, p + "shareable_bits", true);
      if (!sb) return fail(std::move(sb.error()));
      c.shareable_bits = sb->value_or(0);
      auto sp = read_opt_num(fs, p + "sparse_masks", false);
      if (!sp) return fail(std::move(sp.error()));
      c.sparse_masks = sp->value_or(0) == 1;
      info.cdp = info.cdp || d == "L3CODE" || d == "L3DATA";
      info.caches.push_back(std::move(c));
    } else if (d == "MB") {
      mb_info m;
      auto a = u32(read_num(fs, p + "min_bandwidth", false), p + "min_bandwidth");
      auto g = u32(read_num(fs, p + "bandwidth_gran", false), p + "bandwidth_gran");
      auto n = u32(read_num(fs, p + "num_closids", false), p + "num_closids");
      if (!a) return fail(std::move(a.error()));
      if (!g) return fail(std::move(g.error()));
      if (!n) return fail(std::move(n.error()));
      m.min_bandwidth = *a;
      m.bandwidth_gran = std::max<std::uint32_t>(*g, 1);
      m.num_closids = *n;
      auto dl = read_opt_num(fs, p + "delay_linear", false);
      if (!dl) return fail(std::move(dl.error()));
      m.delay_linear = dl->value_or(1) == 1;
      info.mb = m;
    } else if (d == "L3_MON") {
      mon_info m;
      auto n = u32(read_num(fs, p + "num_rmids", false), p + "num_rmids");
      if (!n) return fail(std::move(n.error()));
      m.num_rmids = *n;
      if (auto f = fs.read(p + "mon_features"))
        bulkhead::detail::split(*f, '\n', [&](std::string_view x) {
          x = bulkhead::detail::trim(x);
          if (!x.empty()) m.features.emplace_back(x);
        });
      info.mon = std::move(m);
    }
  }
  return info;
}

// The cache resources bulkhead allocates: L3, or L3DATA and L3CODE with CDP.
std::vector<const cache_info*> l3_resources(const resctrl::info& info) {
  std::vector<const cache_info*> out;
  if (info.cdp) {
    if (const auto* d = info.cache("L3DATA")) out.push_back(d);
    if (const auto* c = info.cache("L3CODE")) out.push_back(c);
  } else if (const auto* l = info.cache("L3")) {
    out.push_back(l);
  }
  return out;
}

std::string knob_for(const std::string& resource, std::uint32_t domain) {
  return std::string(resource == "L3CODE" ? "llc.code_allocations" : "llc.allocations") + "[cache " +
         std::to_string(domain) + "]";
}

// The group name of an instance, checked. The uuid is the name's (a SHA-1:
// the last answer is remembered).
result<std::string> group_name(const instance_info& i) {
  if (auto v = validate_name(i.name, "resctrl group name"); !v) return fail(std::move(v.error()));
  if (reserved(i.name)) return fail(errc::invalid_argument, "resctrl group name " + bulkhead::detail::quote(i.name) + " is reserved");
  thread_local std::string last_name;
  thread_local uuid last_uuid;
  if (!i.id.uuid.is_nil() && !(last_name == i.name && last_uuid == i.id.uuid) && !(i.id.uuid == task_uuid(i.name)))
    return fail(errc::invalid_argument, "instance " + i.id.uuid.to_string() + " is not resctrl group " +
                                            bulkhead::detail::quote(i.name) + " (whose uuid is " + task_uuid(i.name).to_string() + ")");
  if (!i.id.uuid.is_nil()) {
    last_name = i.name;
    last_uuid = i.id.uuid;
  }
  return i.name;
}

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

// Incarnation and state; not_found when the group is gone.
result<void> identify(const impl_t& im, instance_info& i) {
  auto ino = im.fs->inode(i.name);
  if (!ino) return fail(std::move(ino.error()));
  auto dir = im.fs->is_directory(i.name);
  if (!dir) return fail(std::move(dir.error()));
  if (!*dir) return fail(errc::not_found, "resctrl group " + bulkhead::detail::quote(i.name) + " is not a directory");
  i.id.incarnation = incarnation{*ino};
  if (auto t = im.fs->read(i.name + "/tasks"); t && !bulkhead::detail::trim(*t).empty()) i.state = instance_state::running;
  return {};
}

result<std::vector<std::string>> group_names(const impl_t& im) {
  auto l = im.fs->list("");
  if (!l) return fail(std::move(l.error()));
  std::vector<std::string> out;
  for (const auto& n : *l) {
    if (reserved(n) || !validate_name(n, "resctrl group name")) continue;
    auto d = im.fs->is_directory(n);
    if (d && *d) out.push_back(n);
  }
  return out;
}

struct group_state {
  std::string name;  // "" = the default group
  resctrl::schemata schemata;
  std::string mode = "shareable";
};

// A group's schemata and mode. `rel` is "" for the default group.
result<group_state> read_group(const impl_t& im, const std::string& name) {
  group_state g;
  g.name = name;
  const std::string prefix = name.empty() ? "" : name + "/";
  auto t = im.fs->read(prefix + "schemata");
  if (!t) return fail(std::move(t.error()));
  auto s = parse_schemata(*t, "schemata");
  if (!s) return fail(std::move(s.error()).in(im.fs->path() + (name.empty() ? std::string() : "/" + name)));
  g.schemata = std::move(*s);
  if (!name.empty()) {
    auto m = im.fs->read(prefix + "mode");
    if (m) g.mode = std::string(bulkhead::detail::trim(*m));
    else if (m.error().code() != errc::not_found) return fail(std::move(m.error()));
  }
  return g;
}

bool holds_exclusively(const std::string& mode) {
  return mode == "exclusive" || mode == "pseudo-locked" || mode == "pseudo-locksetup";
}

struct recorder {
  apply_report& rep;
  void changed(std::string k, std::string b, std::string a) {
    rep.changed.push_back(knob_change{std::move(k), std::move(b), std::move(a)});
  }
  void failed(std::string k, error e) { rep.failed.push_back(knob_failure{std::move(k), std::move(e)}); }
  void unsupported(std::string k) {
    if (std::find(rep.unsupported.begin(), rep.unsupported.end(), k) == rep.unsupported.end())
      rep.unsupported.push_back(std::move(k));
  }
};

std::string mb_text(bool mbps, std::uint64_t v) { return std::to_string(v) + (mbps ? " MBps" : " percent"); }

// One pending value of a schemata write.
struct pending_value {
  std::string resource;
  std::uint32_t domain;
  std::uint64_t before;
  std::uint64_t after;
  std::string knob;
};

// Writes the changed values of one group in one write (only the resources
// and domains that change), reads the file back and checks each value.
void write_values(impl_t& im, const std::string& group, const std::vector<pending_value>& values, bool mbps,
                  recorder& rec, const std::string& knob_prefix) {
  if (values.empty()) return;
  std::vector<schemata_line> lines;
  for (const auto& v : values) {
    auto it = std::find_if(lines.begin(), lines.end(), [&](const schemata_line& l) { return l.resource == v.resource; });
    if (it == lines.end()) {
      lines.push_back(schemata_line{v.resource, {}});
      it = lines.end() - 1;
    }
    it->values.emplace_back(v.domain, v.after);
  }
  std::string text;
  for (const auto& l : lines) text += format_schemata_line(l) + "\n";
  const std::string prefix = group.empty() ? "" : group + "/";
  const auto text_of = [&](const pending_value& v, std::uint64_t x) {
    return is_cache(v.resource) ? mask_text(x) : mb_text(mbps, x);
  };
  auto w = im.fs->write(prefix + "schemata", text);
  if (!w) {
    auto e = std::move(w.error());
    // resctrl.rst: info/last_cmd_status says why the last command failed.
    if (auto st = im.fs->read("info/last_cmd_status"))
      e = error(e.code(), e.message() + " (info/last_cmd_status: " + std::string(bulkhead::detail::trim(*st)) + ")");
    for (const auto& v : values) rec.failed(knob_prefix + v.knob, e);
    return;
  }
  auto back = im.fs->read(prefix + "schemata");
  std::optional<schemata> s;
  if (back)
    if (auto p = parse_schemata(*back, im.fs->path() + "/" + prefix + "schemata")) s = std::move(*p);
  for (const auto& v : values) {
    const schemata_line* l = s ? find_line(*s, v.resource) : nullptr;
    const std::uint64_t* got = l ? l->find(v.domain) : nullptr;
    if (!got || *got != v.after) {
      rec.failed(knob_prefix + v.knob,
                 error(errc::io_error, im.fs->path() + "/" + prefix + "schemata: wrote " + bulkhead::detail::quote(text) +
                                           " but the kernel holds " + (back ? bulkhead::detail::quote(bulkhead::detail::trim(*back)) : back.error().describe())));
      continue;
    }
    rec.changed(knob_prefix + v.knob, text_of(v, v.before), text_of(v, v.after));
  }
}

result<void> write_mode(impl_t& im, const std::string& group, const std::string& mode, const std::string& before,
                        recorder& rec) {
  auto w = im.fs->write(group + "/mode", mode);
  if (!w) {
    auto e = std::move(w.error());
    if (auto st = im.fs->read("info/last_cmd_status"))
      e = error(e.code(), e.message() + " (info/last_cmd_status: " + std::string(bulkhead::detail::trim(*st)) + ")");
    rec.failed("llc.exclusive", e);
    return fail(std::move(e));
  }
  auto back = im.fs->read(group + "/mode");
  if (!back || bulkhead::detail::trim(*back) != mode) {
    error e(errc::io_error, im.fs->path() + "/" + group + "/mode: wrote " + bulkhead::detail::quote(mode) + " but it reads " +
                                (back ? bulkhead::detail::quote(bulkhead::detail::trim(*back)) : back.error().describe()));
    rec.failed("llc.exclusive", e);
    return fail(std::move(e));
  }
  rec.changed("llc.exclusive", knob_text(before == "exclusive"), knob_text(mode == "exclusive"));
  return {};
}

// True when the group's own schemata and mode already give what the spec
// asks (so nothing else needs reading and nothing is written).
bool satisfied(const resctrl::info& info, const group_state& self, const quota_spec& spec) {
  const auto value = [&](const std::string& res, std::uint32_t d) -> std::optional<std::uint64_t> {
    const auto* l = find_line(self.schemata, res);
    const auto* v = l ? l->find(d) : nullptr;
    return v ? std::optional<std::uint64_t>(*v) : std::nullopt;
  };
  if (spec.llc) {
    const auto res = l3_resources(info);
    if (res.empty()) return false;  // reported as unsupported by the full path
    const auto& want = *spec.llc;
    if (want.exclusive != (self.mode == "exclusive")) return false;
    if (!info.cdp && !want.code_allocations.empty()) return false;
    const auto* domains = find_line(self.schemata, res.front()->resource);
    if (!domains) return false;
    for (const auto& a : want.allocations)
      if (!domains->find(a.cache_id)) return false;
    for (const auto& [d, unused] : domains->values) {
      (void)unused;
      const auto explicit_mask = [&](const std::vector<cache_allocation>& v) -> std::optional<std::uint64_t> {
        for (const auto& a : v)
          if (a.cache_id == d) return a.mask;
        return std::nullopt;
      };
      const auto data = explicit_mask(want.allocations);
      const auto code = explicit_mask(want.code_allocations);
      for (const auto* r : res) {
        const auto now = value(r->resource, d);
        if (!now) return false;
        if (data || code) {
          const std::uint64_t m = r->resource == "L3CODE" ? (code ? *code : *data) : (data ? *data : *code);
          if (*now != m) return false;
        } else if (want.ways.count() != 0) {
          if (static_cast<std::uint64_t>(std::popcount(*now)) != want.ways.count() || !check_cbm(*now, *r, "")) return false;
          if (info.cdp && value(res.front()->resource, d) != now) return false;  // code and data masks apart
        }
      }
    }
  }
  if (spec.memory_bandwidth) {
    if (!info.mb || spec.memory_bandwidth->mbps != info.mba_mbps) return false;
    for (const auto& a : spec.memory_bandwidth->allocations)
      if (value("MB", a.domain_id) != a.value) return false;
  }
  return true;
}

}  // namespace

backend::backend(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}
backend::~backend() = default;

result<std::unique_ptr<backend>> backend::open(resctrl::options options) {
  auto fs = resctrl::fs::open(options.root, options.max_open_files);
  if (!fs) return fail(std::move(fs.error()));
  return open(std::move(options), std::move(*fs));
}

result<std::unique_ptr<backend>> backend::open(resctrl::options options, std::unique_ptr<fs> files) {
  auto im = std::make_unique<impl>();
  im->fs = std::move(files);
  auto info = read_info(*im->fs, options.mba_mbps);
  if (!info) return fail(std::move(info.error()));
  im->info = std::move(*info);
  im->source = "resctrl:" + im->fs->path();
  im->opts = std::move(options);
  return std::unique_ptr<backend>(new backend(std::move(im)));
}

const std::string& backend::source() const noexcept { return p_->source; }
const resctrl::info& backend::info() const noexcept { return p_->info; }

result<host_capacity> backend::capacity() {
  host_capacity cap;
  auto t = p_->fs->read("cpus_list");
  if (!t) return fail(std::move(t.error()).in("resctrl capacity"));
  auto s = cpuset::parse(*t);
  if (!s) return fail(std::move(s.error()).in(p_->fs->path() + "/cpus_list"));
  cap.cpus = static_cast<std::uint32_t>(s->size());
  return cap;
}

result<std::vector<instance_info>> backend::discover() {
  auto names = group_names(*p_);
  if (!names) return fail(std::move(names.error()));
  std::vector<instance_info> out;
  for (const auto& n : *names) {
    auto i = make_info(*p_, n);
    if (auto r = identify(*p_, i); !r) {
      if (r.error().code() == errc::not_found) continue;
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
  out.usage.read_at = mono_clock::now();
  out.usage.wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  const auto& info = p_->info;
  const auto res = l3_resources(info);
  if (res.empty()) out.unsupported.emplace_back("llc");
  if (!info.mb) out.unsupported.emplace_back("memory_bandwidth");
  auto g = read_group(*p_, *name);
  if (!g) {
    if (g.error().code() == errc::not_found) return fail(errc::vanished, g.error().message());
    out.partial.push_back(g.error());
  } else {
    if (!res.empty()) {
      llc_spec l;
      l.exclusive = g->mode == "exclusive";
      std::optional<std::uint32_t> ways;
      for (const auto* r : res) {
        const auto* line = find_line(g->schemata, r->resource);
        if (!line) continue;
        auto& dst = r->resource == "L3CODE" ? l.code_allocations : l.allocations;
        for (const auto& [d, m] : line->values) {
          dst.push_back(cache_allocation{d, m});
          const auto n = static_cast<std::uint32_t>(std::popcount(m));
          ways = ways ? std::min(*ways, n) : n;
        }
      }
      l.ways = cache_ways{ways.value_or(0)};
      out.enforced.llc = std::move(l);
    }
    if (info.mb)
      if (const auto* line = find_line(g->schemata, "MB")) {
        memory_bandwidth_spec m;
        m.mbps = info.mba_mbps;
        for (const auto& [d, v] : line->values) m.allocations.push_back(bandwidth_allocation{d, v});
        out.enforced.memory_bandwidth = std::move(m);
      }
  }
  // Monitoring: mon_data/mon_L3_XX/<event>, XX the L3 domain id.
  if (auto doms = p_->fs->list(*name + "/mon_data")) {
    for (const auto& dname : *doms) {
      if (dname.rfind("mon_L3_", 0) != 0) continue;
      auto id = bulkhead::detail::parse_u64(std::string_view(dname).substr(7), dname);
      if (!id || *id > std::numeric_limits<std::uint32_t>::max()) {
        out.partial.push_back(error(errc::parse_error, p_->fs->path() + "/" + *name + "/mon_data/" + dname +
                                                           ": not mon_L3_<domain id>"));
        continue;
      }
      cache_monitor_sample s;
      s.domain_id = static_cast<std::uint32_t>(*id);
      const auto event = [&](const char* file, knob<bytes>& dst) {
        const std::string rel = *name + "/mon_data/" + dname + "/" + file;
        auto t = p_->fs->read(rel);
        if (!t) {
          if (t.error().code() != errc::not_found) out.partial.push_back(t.error());
          return;
        }
        const auto v = bulkhead::detail::trim(*t);
        // resctrl.rst: a counter that cannot be read yet reads "Unavailable".
        if (v == "Unavailable") return;
        auto n = bulkhead::detail::parse_u64(v, p_->fs->path() + "/" + rel);
        if (n) dst = bytes{*n};
        else out.partial.push_back(n.error());
      };
      event("llc_occupancy", s.llc_occupancy);
      event("mbm_total_bytes", s.mbm_total);
      event("mbm_local_bytes", s.mbm_local);
      out.usage.cache_monitors.push_back(s);
    }
    std::sort(out.usage.cache_monitors.begin(), out.usage.cache_monitors.end(),
              [](const auto& a, const auto& b) { return a.domain_id < b.domain_id; });
  } else if (doms.error().code() != errc::not_found) {
    out.partial.push_back(doms.error());
  }
  if (out.enforced.llc)
    out.info.modes.set(resource_kind::llc, out.enforced.llc->exclusive ? isolation_mode::dedicated : isolation_mode::capped);
  if (out.enforced.memory_bandwidth) {
    bool capped = info.mba_mbps;
    for (const auto& a : out.enforced.memory_bandwidth->allocations) capped = capped || a.value < 100;
    out.info.modes.set(resource_kind::memory_bandwidth, capped ? isolation_mode::capped : isolation_mode::shared);
  }
  return out;
}

result<apply_report> backend::apply(const instance_info& instance, const quota_spec& spec) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  if (auto v = validate(spec); !v) return fail(std::move(v.error()).in("applying to resctrl group " + bulkhead::detail::quote(*name)));
  apply_report rep;
  recorder rec{rep};
  {
    quota_spec rest = spec;
    rest.llc.reset();
    rest.memory_bandwidth.reset();
    for (auto& k : compare(rest, quota_spec{}).unsupported) rec.unsupported(std::move(k));
  }
  if (!spec.llc && !spec.memory_bandwidth) return rep;
  auto& im = *p_;
  const auto& info = im.info;
  const auto read_self = [&]() -> result<group_state> {
    auto g = read_group(im, *name);
    if (g) return g;
    auto e = std::move(g.error());
    if (e.code() == errc::not_found) {
      auto d = im.fs->is_directory(*name);
      if (d && !*d)
        return fail(instance.id.incarnation ? errc::vanished : errc::not_found,
                    "resctrl group " + bulkhead::detail::quote(*name) + " does not exist in " + im.fs->path());
    }
    return fail(std::move(e).in("applying to resctrl group " + bulkhead::detail::quote(*name)));
  };
  // The common case first: the group already holds what the spec asks, which
  // its own files show (the kernel keeps every shareable mask off exclusive
  // ways and every exclusive mask off everybody's). Reads only, no lock.
  auto self = read_self();
  if (!self) return fail(std::move(self.error()));
  if (satisfied(info, *self, spec)) return rep;
  auto held = im.fs->lock();
  if (!held) return fail(std::move(held.error()).in("locking " + im.fs->path()));
  self = read_self();  // again, under the lock
  if (!self) return fail(std::move(self.error()));
  std::vector<pending_value> own;
  // Other groups' values to change, by group ("" = default group).
  std::map<std::string, std::vector<pending_value>> others;
  const auto current_value = [](const group_state& g, const std::string& res, std::uint32_t d) -> std::optional<std::uint64_t> {
    const auto* l = find_line(g.schemata, res);
    const auto* v = l ? l->find(d) : nullptr;
    return v ? std::optional<std::uint64_t>(*v) : std::nullopt;
  };
  std::optional<std::string> mode_to;  // the mode to write, if it changes
  bool mode_first = false;

  if (spec.llc) {
    const auto res = l3_resources(info);
    if (res.empty()) {
      rec.unsupported("llc");
    } else {
      const auto& want = *spec.llc;
      // Everybody else's allocations: the default group and the other groups.
      std::vector<group_state> groups;
      bool ok = true;
      if (auto root = read_group(im, "")) groups.push_back(std::move(*root));
      else {
        rec.failed("llc", root.error());
        ok = false;
      }
      if (ok) {
        auto names = group_names(im);
        if (!names) {
          rec.failed("llc", names.error());
          ok = false;
        } else {
          for (const auto& n : *names) {
            if (n == *name) continue;
            auto g = read_group(im, n);
            if (!g) {
              if (g.error().code() == errc::not_found) continue;  // removed meanwhile
              rec.failed("llc", g.error());
              ok = false;
              break;
            }
            groups.push_back(std::move(*g));
          }
        }
      }
      const auto* first = res.front();
      const auto* domains = find_line(groups.empty() ? self->schemata : groups.front().schemata, first->resource);
      if (ok && !domains) {
        rec.failed("llc", error(errc::parse_error, im.fs->path() + "/schemata has no " + first->resource + " line"));
        ok = false;
      }
      if (ok && !info.cdp && !want.code_allocations.empty()) {
        rec.failed("llc.code_allocations",
                   error(errc::unsupported, "llc.code_allocations: code/data prioritisation is off (mount option cdp)"));
      }
      for (const auto& a : want.allocations)
        if (ok && !domains->find(a.cache_id))
          rec.failed(knob_for(first->resource, a.cache_id),
                     error(errc::not_found, "llc.allocations: there is no L3 cache " + std::to_string(a.cache_id)));
      if (ok) {
        for (const auto& [d, unused] : domains->values) {
          (void)unused;
          // Union of each group's masks over the resources (CDP: code | data).
          const auto mask_of = [&](const group_state& g) {
            std::uint64_t m = 0;
            for (const auto* r : res)
              if (auto v = current_value(g, r->resource, d)) m |= *v;
            return m;
          };
          cbm_usage usage;
          for (const auto& g : groups) {
            const auto m = mask_of(g);
            if (!g.name.empty() && holds_exclusively(g.mode)) usage.exclusive |= m;
            else {
              if (!g.name.empty()) usage.shared |= m;
              usage.shrinkable.push_back(cbm_usage::holder{g.name, m});
            }
          }
          const std::uint64_t current = mask_of(*self);
          // The data (or only) mask and, with CDP, the code mask.
          std::vector<std::pair<std::string, std::uint64_t>> target;  // in schemata order
          std::vector<cbm_usage::holder> shrunk;
          const auto explicit_mask = [&](const std::vector<cache_allocation>& v) -> std::optional<std::uint64_t> {
            for (const auto& a : v)
              if (a.cache_id == d) return a.mask;
            return std::nullopt;
          };
          const auto data_opt = explicit_mask(want.allocations);
          const auto code_opt = info.cdp ? explicit_mask(want.code_allocations) : std::nullopt;
          const bool has_explicit = data_opt.has_value() || code_opt.has_value();
          // Code masks default to the data masks and the other way round.
          const std::uint64_t data_mask = data_opt ? *data_opt : (code_opt ? *code_opt : 0);
          const std::uint64_t code_mask = code_opt ? *code_opt : data_mask;
          const std::string what = knob_for(first->resource, d);
          if (has_explicit) {
            bool good = true;
            for (const auto* r : res) {
              const auto m = r->resource == "L3CODE" ? code_mask : data_mask;
              if (auto c = check_cbm(m, *r, knob_for(r->resource, d)); !c) {
                rec.failed(knob_for(r->resource, d), c.error());
                good = false;
                continue;
              }
              target.emplace_back(r->resource, m);
            }
            if (!good) continue;
            std::uint64_t all = 0;
            for (const auto& [r, m] : target) all |= m;
            if ((all & usage.exclusive) != 0) {
              rec.failed(what, error(errc::conflict, what + ": mask " + mask_text(all) +
                                                         " overlaps ways held exclusively by another group (" +
                                                         mask_text(all & usage.exclusive) + ")"));
              continue;
            }
            if (want.exclusive) {
              if ((all & first->shareable_bits) != 0) {
                rec.failed(what, error(errc::conflict, what + ": an exclusive mask cannot use shareable_bits " +
                                                           mask_text(first->shareable_bits)));
                continue;
              }
              bool fits = true;
              for (const auto& h : usage.shrinkable) {
                if ((h.mask & all) == 0) continue;
                const auto nm = h.mask & ~all;
                if (auto c = check_cbm(nm, *first, "the mask left to " + (h.group.empty() ? std::string("the default group") : "group " + bulkhead::detail::quote(h.group))); !c) {
                  rec.failed(what, c.error());
                  fits = false;
                  break;
                }
                shrunk.push_back(cbm_usage::holder{h.group, nm});
              }
              if (!fits) continue;
            }
          } else if (want.ways.count() != 0) {
            if (want.ways.count() > std::numeric_limits<std::uint32_t>::max()) {
              rec.failed(what, error(errc::out_of_range, "llc.ways: too many"));
              continue;
            }
            auto c = choose_cbm(*first, static_cast<std::uint32_t>(want.ways.count()), want.exclusive, current, usage, what);
            if (!c) {
              rec.failed(what, c.error());
              continue;
            }
            for (const auto* r : res) {
              if (auto chk = check_cbm(c->mask, *r, knob_for(r->resource, d)); !chk) {
                rec.failed(knob_for(r->resource, d), chk.error());
                continue;
              }
              target.emplace_back(r->resource, c->mask);
            }
            shrunk = std::move(c->shrunk);
          } else {
            continue;  // only the mode is managed
          }
          for (const auto& [r, m] : target) {
            const auto now = current_value(*self, r, d);
            if (!now || *now != m) own.push_back(pending_value{r, d, now.value_or(0), m, knob_for(r, d)});
          }
          for (const auto& h : shrunk) {
            const auto it = std::find_if(groups.begin(), groups.end(), [&](const group_state& g) { return g.name == h.group; });
            if (it == groups.end()) continue;
            std::uint64_t ours = 0;
            for (const auto& [r, m] : target) ours |= m;
            for (const auto* r : res) {
              const auto now = current_value(*it, r->resource, d);
              if (!now || (*now & ours) == 0) continue;
              others[h.group].push_back(pending_value{r->resource, d, *now, *now & ~ours, knob_for(r->resource, d)});
            }
          }
        }
        // The mode moves only when every mask of the group could be placed.
        const bool is_excl = self->mode == "exclusive";
        const bool masks_ok = std::none_of(rep.failed.begin(), rep.failed.end(), [](const knob_failure& x) {
          return x.knob.rfind("llc", 0) == 0;
        });
        if (want.exclusive != is_excl && masks_ok) {
          mode_to = want.exclusive ? "exclusive" : "shareable";
          mode_first = !want.exclusive;
        }
      }
    }
  }

  if (spec.memory_bandwidth) {
    const auto& want = *spec.memory_bandwidth;
    if (!info.mb) {
      rec.unsupported("memory_bandwidth");
    } else if (want.mbps != info.mba_mbps) {
      rec.failed("memory_bandwidth",
                 error(errc::invalid_argument, std::string("memory_bandwidth: the spec is in ") +
                                                   (want.mbps ? "MBps" : "percent") + " but resctrl is mounted " +
                                                   (info.mba_mbps ? "with" : "without") + " mba_MBps"));
    } else {
      const auto& mb = *info.mb;
      auto root = read_group(im, "");
      const schemata_line* domains = root ? find_line(root->schemata, "MB") : nullptr;
      for (const auto& a : want.allocations) {
        const std::string knob = "memory_bandwidth[domain " + std::to_string(a.domain_id) + "]";
        if (!domains || !domains->find(a.domain_id)) {
          rec.failed(knob, root ? error(errc::not_found, knob + ": there is no memory bandwidth domain " +
                                                             std::to_string(a.domain_id))
                                : root.error());
          continue;
        }
        if (!want.mbps) {
          // resctrl.rst: the steps are min_bandwidth + N * bandwidth_gran;
          // other values are rounded to the next step.
          if (a.value < mb.min_bandwidth || a.value > 100 || (a.value - mb.min_bandwidth) % mb.bandwidth_gran != 0) {
            rec.failed(knob, error(errc::out_of_range,
                                   knob + ": " + std::to_string(a.value) + " percent is not a step of this machine (" +
                                       std::to_string(mb.min_bandwidth) + " + N x " + std::to_string(mb.bandwidth_gran) +
                                       ", at most 100); the kernel would round it up"));
            continue;
          }
        } else if (a.value == 0 || a.value > std::numeric_limits<std::uint32_t>::max()) {
          rec.failed(knob, error(errc::out_of_range, knob + ": " + std::to_string(a.value) + " MBps is outside 1..4294967295"));
          continue;
        }
        const auto now = current_value(*self, "MB", a.domain_id);
        if (!now || *now != a.value) own.push_back(pending_value{"MB", a.domain_id, now.value_or(0), a.value, knob});
      }
    }
  }

  if (mode_to && mode_first)
    if (!write_mode(im, *name, *mode_to, self->mode, rec)) mode_to.reset();
  for (const auto& [g, values] : others)
    write_values(im, g, values, info.mba_mbps, rec,
                 g.empty() ? std::string("resctrl default group: ") : "resctrl group " + bulkhead::detail::quote(g) + ": ");
  write_values(im, *name, own, info.mba_mbps, rec, "");
  const bool llc_failed = std::any_of(rep.failed.begin(), rep.failed.end(), [](const knob_failure& x) {
    return x.knob.find("llc") != std::string::npos;
  });
  if (mode_to && !mode_first && !llc_failed) (void)write_mode(im, *name, *mode_to, self->mode, rec);
  return rep;
}

result<instance_info> backend::create(std::string_view name, std::optional<qos_class> qos,
                                              std::optional<std::string> tenant) {
  if (auto v = validate_name(name, "resctrl group name"); !v) return fail(std::move(v.error()));
  const std::string n(name);
  if (reserved(n)) return fail(errc::invalid_argument, "resctrl group name " + bulkhead::detail::quote(n) + " is reserved");
  auto held = p_->fs->lock();
  if (!held) return fail(std::move(held.error()).in("locking " + p_->fs->path()));
  auto names = group_names(*p_);
  if (!names) return fail(std::move(names.error()));
  if (std::find(names->begin(), names->end(), n) != names->end())
    return fail(errc::already_exists, "resctrl group " + bulkhead::detail::quote(n) + " already exists in " + p_->fs->path());
  const auto closids = p_->info.num_closids();
  const auto exhausted = [&] {
    return error(errc::insufficient_capacity,
                 "resctrl group " + bulkhead::detail::quote(n) + ": every CLOSID is in use (" + std::to_string(closids) +
                     " on this machine, the smallest info/*/num_closids; the default group holds one and " +
                     std::to_string(names->size()) + " groups hold the rest): remove a group first");
  };
  if (closids != 0 && names->size() + 1 >= closids) return fail(exhausted());
  if (auto mk = p_->fs->make_dir(n); !mk) {
    if (mk.error().code() == errc::no_space) return fail(exhausted());
    return fail(std::move(mk.error()).in("creating resctrl group " + bulkhead::detail::quote(n)));
  }
  auto i = make_info(*p_, n);
  i.qos = qos;
  i.tenant = std::move(tenant);
  if (auto r = identify(*p_, i); !r) return fail(std::move(r.error()));
  return i;
}

result<void> backend::attach(const instance_info& instance, pid_t tid) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  if (tid <= 0) return fail(errc::invalid_argument, "task id " + std::to_string(tid) + " is not a task");
  if (auto w = p_->fs->write(*name + "/tasks", std::to_string(tid)); !w)
    return fail(std::move(w.error()).in("attaching task " + std::to_string(tid) + " to resctrl group " + bulkhead::detail::quote(*name)));
  return {};
}

result<void> backend::remove(const instance_info& instance) {
  auto name = group_name(instance);
  if (!name) return fail(std::move(name.error()));
  auto held = p_->fs->lock();
  if (!held) return fail(std::move(held.error()).in("locking " + p_->fs->path()));
  if (auto r = p_->fs->remove_dir(*name); !r)
    return fail(std::move(r.error()).in("removing resctrl group " + bulkhead::detail::quote(*name)));
  return {};
}

}  // namespace bulkhead::resctrl
