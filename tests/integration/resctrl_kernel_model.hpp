// A model of the kernel's resctrl write rules over a fixture tree, for a
// machine without resctrl (Documentation/arch/x86/resctrl.rst):
//   - a schemata write names only what changes; the rest of the file stays;
//     a bad line refuses the whole write (EINVAL) and says why in
//     info/last_cmd_status;
//   - masks must lie within cbm_mask, have min_cbm_bits bits and be
//     contiguous unless sparse_masks is 1; cache ids must exist;
//   - an exclusive group may not overlap anybody, nor shareable_bits; no
//     group may overlap an exclusive one;
//   - MB percent values below min_bandwidth or above 100 are refused, others
//     rounded up to the next min_bandwidth + N * bandwidth_gran step;
//   - mkdir fails with ENOSPC when every CLOSID is taken; a new group's
//     masks are every way no exclusive group holds, MB 100% (or the MBps
//     maximum);
//   - reads are padded as the kernel pads them (right-aligned names,
//     zero-padded masks, space-padded MB values).
// Every schemata and mode write is logged for the tests.
#pragma once

#include <algorithm>
#include <bit>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/resctrl/backend.hpp"
#include "bulkhead/detail/text.hpp"
#include "cgroup_fixture_support.hpp"

namespace bulkhead::test {

class resctrl_kernel_model final : public resctrl::fs {
 public:
  struct logged_write {
    std::string file;
    std::string content;
  };

  resctrl_kernel_model(std::filesystem::path root, std::unique_ptr<resctrl::fs> base, bool mbps)
      : root_(std::move(root)), base_(std::move(base)), mbps_(mbps) {}

  std::vector<logged_write> writes;
  // When set, the next schemata write is refused with this status.
  std::string refuse_next;

  const std::string& path() const noexcept override { return base_->path(); }
  result<std::string> read(std::string_view rel) const override { return base_->read(rel); }
  result<std::vector<std::string>> list(std::string_view rel) const override { return base_->list(rel); }
  result<bool> is_directory(std::string_view rel) const override { return base_->is_directory(rel); }
  result<std::uint64_t> inode(std::string_view rel) const override { return base_->inode(rel); }
  result<std::shared_ptr<void>> lock() override { return base_->lock(); }
  result<void> remove_dir(std::string_view rel) override {
    std::error_code ec;
    std::filesystem::remove_all(root_ / std::string(rel), ec);
    return {};
  }

  result<void> write(std::string_view rel, std::string_view content) override {
    const std::filesystem::path p(std::string{rel});
    const std::string file = p.filename().string();
    const std::string group = p.parent_path().string();
    if (file == "schemata") {
      writes.push_back({std::string(rel), std::string(content)});
      return write_schemata(group, content);
    }
    if (file == "mode") {
      writes.push_back({std::string(rel), std::string(content)});
      const auto mode = std::string(detail::trim(content));
      if (mode == "exclusive") {
        for (const auto& [res, doms] : masks(group))
          for (const auto& [d, m] : doms) {
            if (m & cache(res).shareable_bits) return refuse("schemata overlaps");
            for (const auto& o : groups())
              if (o != group && (mask_of(o, res, d) & m)) return refuse("schemata overlaps");
          }
      } else if (mode != "shareable") {
        return refuse("unknown or unsupported mode");
      }
      spit(root_ / std::string(rel), mode + "\n");
      return ok();
    }
    if (file == "tasks") {
      std::string t = slurp(root_ / std::string(rel));
      spit(root_ / std::string(rel), t + std::string(content) + "\n");
      return {};
    }
    return base_->write(rel, content);
  }

  result<void> make_dir(std::string_view rel) override {
    const auto gs = groups();
    if (gs.size() >= closids()) {
      spit(root_ / "info/last_cmd_status", "out of CLOSIDs\n");
      return fail(errc::no_space, path() + "/" + std::string(rel) + ": mkdir: No space left on device");
    }
    if (auto r = base_->make_dir(rel); !r) return r;
    const std::string g(rel);
    // The new group's schemata: every way no exclusive group holds.
    auto root = resctrl::parse_schemata(slurp(root_ / "schemata")).value();
    for (auto& l : root) {
      for (auto& [d, v] : l.values) {
        if (resctrl::is_cache(l.resource)) {
          std::uint64_t excl = 0;
          for (const auto& o : gs)
            if (!o.empty() && mode(o) == "exclusive") excl |= mask_of(o, l.resource, d);
          v = cache(l.resource).cbm_mask & ~excl;
        } else {
          v = mbps_ ? 4294967295u : 100;
        }
      }
    }
    spit(root_ / g / "schemata", format(root));
    spit(root_ / g / "mode", "shareable\n");
    spit(root_ / g / "tasks", "");
    spit(root_ / g / "cpus_list", "\n");
    return ok();
  }

 private:
  result<void> ok() {
    spit(root_ / "info/last_cmd_status", "ok\n");
    return {};
  }
  result<void> refuse(const std::string& why) {
    spit(root_ / "info/last_cmd_status", why + "\n");
    return fail(errc::invalid_argument, path() + ": write: Invalid argument");
  }

  resctrl::cache_info cache(const std::string& res) const {
    resctrl::cache_info c;
    c.resource = res;
    const auto dir = root_ / "info" / res;
    c.cbm_mask = detail::parse_hex_u64(detail::trim(slurp(dir / "cbm_mask")), "cbm_mask").value();
    c.min_cbm_bits = static_cast<std::uint32_t>(detail::parse_u64(detail::trim(slurp(dir / "min_cbm_bits")), "x").value());
    if (std::filesystem::exists(dir / "shareable_bits"))
      c.shareable_bits = detail::parse_hex_u64(detail::trim(slurp(dir / "shareable_bits")), "x").value();
    c.sparse_masks = std::filesystem::exists(dir / "sparse_masks") && detail::trim(slurp(dir / "sparse_masks")) == "1";
    return c;
  }
  std::size_t closids() const {
    std::size_t n = 1u << 30;
    for (const auto& e : std::filesystem::directory_iterator(root_ / "info"))
      if (std::filesystem::exists(e.path() / "num_closids"))
        n = std::min<std::size_t>(n, detail::parse_u64(detail::trim(slurp(e.path() / "num_closids")), "x").value());
    return n;
  }
  // "" (the default group) and every group directory.
  std::vector<std::string> groups() const {
    std::vector<std::string> out{""};
    for (const auto& e : std::filesystem::directory_iterator(root_)) {
      const auto n = e.path().filename().string();
      if (e.is_directory() && !e.is_symlink() && n != "info" && n != "mon_data" && n != "mon_groups") out.push_back(n);
    }
    return out;
  }
  std::string mode(const std::string& g) const {
    if (g.empty()) return "shareable";
    return std::string(detail::trim(slurp(root_ / g / "mode")));
  }
  resctrl::schemata schemata_of(const std::string& g) const {
    return resctrl::parse_schemata(slurp(root_ / g / "schemata")).value();
  }
  std::map<std::string, std::map<std::uint32_t, std::uint64_t>> masks(const std::string& g) const {
    std::map<std::string, std::map<std::uint32_t, std::uint64_t>> out;
    for (const auto& l : schemata_of(g))
      if (resctrl::is_cache(l.resource))
        for (const auto& [d, v] : l.values) out[l.resource][d] = v;
    return out;
  }
  std::uint64_t mask_of(const std::string& g, const std::string& res, std::uint32_t d) const {
    const auto s = schemata_of(g);
    const auto* l = resctrl::find_line(s, res);
    const auto* v = l ? l->find(d) : nullptr;
    return v ? *v : 0;
  }

  std::string format(const resctrl::schemata& s) const {
    std::size_t width = 0;
    for (const auto& l : s) width = std::max(width, l.resource.size());
    std::string out;
    for (const auto& l : s) {
      out += std::string(width - l.resource.size(), ' ') + l.resource + ":";
      const bool hex = resctrl::is_cache(l.resource);
      const std::size_t digits = hex ? (64 - std::countl_zero(cache(l.resource).cbm_mask) + 3) / 4 : (mbps_ ? 4 : 3);
      bool first = true;
      for (const auto& [d, v] : l.values) {
        if (!first) out += ";";
        first = false;
        std::string t = hex ? mask_text(v).substr(2) : std::to_string(v);
        const char pad = hex ? '0' : ' ';
        if (t.size() < digits) t.insert(0, digits - t.size(), pad);
        out += std::to_string(d) + "=" + t;
      }
      out += "\n";
    }
    return out;
  }

  result<void> write_schemata(const std::string& g, std::string_view content) {
    if (!refuse_next.empty()) {
      const auto why = refuse_next;
      refuse_next.clear();
      return refuse(why);
    }
    auto in = resctrl::parse_schemata(content);
    if (!in) return refuse("bad schemata line");
    auto cur = schemata_of(g);
    const bool excl = mode(g) == "exclusive";
    for (const auto& l : *in) {
      auto it = std::find_if(cur.begin(), cur.end(), [&](const resctrl::schemata_line& x) { return x.resource == l.resource; });
      if (it == cur.end()) return refuse("Unknown or unsupported resource name '" + l.resource + "'");
      for (const auto& [d, v] : l.values) {
        auto slot = std::find_if(it->values.begin(), it->values.end(), [&](const auto& x) { return x.first == d; });
        if (slot == it->values.end()) return refuse("Unknown domain ID " + std::to_string(d));
        if (resctrl::is_cache(l.resource)) {
          const auto c = cache(l.resource);
          if (v & ~c.cbm_mask) return refuse("Mask out of range");
          if (!c.sparse_masks && !resctrl::cbm_contiguous(v)) return refuse("The mask " + mask_text(v).substr(2) + " has non-consecutive 1-bits");
          if (static_cast<std::uint32_t>(std::popcount(v)) < c.min_cbm_bits) return refuse("Need at least " + std::to_string(c.min_cbm_bits) + " bits in the mask");
          for (const auto& o : groups()) {
            if (o == g) continue;
            const auto om = mask_of(o, l.resource, d);
            if (!(om & v)) continue;
            if (excl) return refuse("overlaps with other group");
            if (!o.empty() && mode(o) == "exclusive") return refuse("overlaps with exclusive group");
          }
          slot->second = v;
        } else {
          std::uint64_t x = v;
          if (!mbps_) {
            const auto min = detail::parse_u64(detail::trim(slurp(root_ / "info/MB/min_bandwidth")), "x").value();
            const auto gran = detail::parse_u64(detail::trim(slurp(root_ / "info/MB/bandwidth_gran")), "x").value();
            if (x < min || x > 100) return refuse("MB value " + std::to_string(x) + " out of range [" + std::to_string(min) + ",100]");
            x = min + (x - min + gran - 1) / gran * gran;
          }
          slot->second = x;
        }
      }
    }
    spit(root_ / g / "schemata", format(cur));
    return ok();
  }

  std::filesystem::path root_;
  std::unique_ptr<resctrl::fs> base_;
  bool mbps_;
};

}  // namespace bulkhead::test
