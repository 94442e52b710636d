// bulkhead/backend/mount_table.hpp: a mount table, as the kernel prints it.
//
// Two forms are accepted (proc(5)):
//   /proc/self/mountinfo:
//     36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//     (id, parent, maj:min, root, mount point, mount options, optional
//     fields, "-", fs type, source, super options)
//   /proc/mounts (fstab(5) fields):
//     /dev/root /mnt2 ext3 rw,noatime 0 0
// The form is recognised per table from its first line. Paths in both are
// octal-escaped by the kernel (space as \040, tab \011, newline \012,
// backslash \134); the escapes are decoded. A line that does not follow the
// form is an error naming the line number: the table comes from the kernel
// (or a fixture of it), so a malformed one is the wrong input.
//
// The table is always given by the caller (a path such as
// /proc/self/mountinfo, or its text): nothing here reads /proc by itself.
// parse_mount_table() is header code; read_text_file() is compiled in
// libbulkhead-core (src/backend/mount_table.cpp).
//
// Thread-safety: pure functions; read_text_file() reads the file system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"

namespace bulkhead {

struct mount_entry {
  std::string source;
  std::string mount_point;  // absolute, escapes decoded
  std::string root;         // mountinfo's root of the mount within its file system; "/" in the /proc/mounts form
  std::string fstype;
  std::vector<std::string> options;  // mount options then super options, split on ','

  [[nodiscard]] bool has_option(std::string_view o) const noexcept {
    for (const auto& x : options)
      if (x == o) return true;
    return false;
  }
  // "name=systemd" -> "systemd" for key "name".
  [[nodiscard]] std::optional<std::string> option_value(std::string_view key) const {
    for (const auto& x : options)
      if (x.size() > key.size() && x.compare(0, key.size(), key) == 0 && x[key.size()] == '=')
        return x.substr(key.size() + 1);
    return std::nullopt;
  }
};

namespace detail {

[[nodiscard]] inline result<std::string> unescape_mount_field(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (s.size() - i < 4)
      return fail(errc::parse_error, std::string(what) + ": truncated escape in " + quote(s));
    int v = 0;
    for (std::size_t k = 1; k <= 3; ++k) {
      const char c = s[i + k];
      if (c < '0' || c > '7') return fail(errc::parse_error, std::string(what) + ": bad escape in " + quote(s));
      v = v * 8 + (c - '0');
    }
    if (v > 255) return fail(errc::parse_error, std::string(what) + ": bad escape in " + quote(s));
    out += static_cast<char>(v);
    i += 3;
  }
  return out;
}

inline std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> f;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) f.push_back(line.substr(start, i - start));
  }
  return f;
}

inline void append_options(std::vector<std::string>& out, std::string_view opts) {
  split(opts, ',', [&](std::string_view o) {
    if (!o.empty()) out.emplace_back(o);
  });
}

}  // namespace detail

// Parses a mount table's text. `what` names it in errors (its path).
[[nodiscard]] inline result<std::vector<mount_entry>> parse_mount_table(std::string_view text,
                                                                        std::string_view what = "mount table") {
  std::vector<mount_entry> out;
  std::optional<bool> mountinfo;
  std::size_t lineno = 0;
  std::optional<error> err;
  bulkhead::detail::split(text, '\n', [&](std::string_view line) {
    ++lineno;
    if (err) return;
    if (bulkhead::detail::trim(line).empty()) return;
    const auto f = bulkhead::detail::fields_of(line);
    const std::string where = std::string(what) + " line " + std::to_string(lineno);
    if (!mountinfo) {
      bool sep = false;
      for (std::size_t i = 6; i < f.size(); ++i) sep = sep || f[i] == "-";
      mountinfo = sep;
    }
    mount_entry e;
    std::string_view mp, root = "/";
    if (*mountinfo) {
      std::size_t sep = 0;
      for (std::size_t i = 6; i < f.size(); ++i)
        if (f[i] == "-") {
          sep = i;
          break;
        }
      if (f.size() < 10 || sep == 0 || sep + 3 > f.size()) {
        err = error(errc::parse_error, where + ": " + bulkhead::detail::quote(line) +
                                           " is not a mountinfo line (id parent maj:min root mount-point options ... - type source super-options)");
        return;
      }
      if (!bulkhead::detail::parse_u64(f[0], "mount id") || !bulkhead::detail::parse_u64(f[1], "parent id")) {
        err = error(errc::parse_error, where + ": mount id " + bulkhead::detail::quote(f[0]) + " or parent id " +
                                           bulkhead::detail::quote(f[1]) + " is not a number");
        return;
      }
      root = f[3];
      mp = f[4];
      bulkhead::detail::append_options(e.options, f[5]);
      e.fstype = std::string(f[sep + 1]);
      e.source = std::string(f[sep + 2]);
      if (sep + 3 < f.size()) bulkhead::detail::append_options(e.options, f[sep + 3]);
    } else {
      if (f.size() != 6) {
        err = error(errc::parse_error, where + ": " + bulkhead::detail::quote(line) +
                                           " is not a mounts line (source mount-point type options dump pass)");
        return;
      }
      e.source = std::string(f[0]);
      mp = f[1];
      e.fstype = std::string(f[2]);
      bulkhead::detail::append_options(e.options, f[3]);
    }
    auto m = bulkhead::detail::unescape_mount_field(mp, where);
    if (!m) {
      err = std::move(m.error());
      return;
    }
    auto r = bulkhead::detail::unescape_mount_field(root, where);
    if (!r) {
      err = std::move(r.error());
      return;
    }
    if (m->empty() || m->front() != '/') {
      err = error(errc::parse_error, where + ": mount point " + bulkhead::detail::quote(*m) + " is not absolute");
      return;
    }
    e.mount_point = std::move(*m);
    e.root = std::move(*r);
    out.push_back(std::move(e));
  });
  if (err) return fail(std::move(*err));
  return out;
}

// Reads a whole text file by path (a mount table such as
// /proc/self/mountinfo, whose size stat() reports as 0). At most max_bytes.
[[nodiscard]] BULKHEAD_API result<std::string> read_text_file(const std::string& path, std::size_t max_bytes = 4u << 20);

}  // namespace bulkhead
