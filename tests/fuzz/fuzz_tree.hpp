// A fixture tree patched by a fuzz input, for targets whose parsers read a
// directory tree (sysfs, cgroupfs, resctrl): the tree is copied once into the
// scratch directory; each input is a patch applied to it and undone after the
// run, so every run starts from the same tree.
//
// Patch text (readable, so seeds can be written by hand):
//   tree <name>              first line, optional: which base tree (default: the first)
//   === <path>               the following lines, up to the next "=== " line or
//   <content>                the end, become the file's content (created with its
//                            directories when missing)
//   === link <path> <target> a symbolic link (the target may point anywhere:
//                            the reader must not follow it out of its root)
//   === rm <path>            removes a file or link
// Paths are relative, without "." or ".." components; a patch never writes
// through a symbolic link (an operation whose parent path holds one is
// skipped), so nothing outside the scratch copy is ever touched.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace bulkhead::fuzz {

class patched_tree {
 public:
  struct base_tree {
    std::string name;
    std::filesystem::path source;  // copied whole (links kept as links)
    std::string root;              // the root handed to the reader, relative to the copy ("sys")
  };
  // Copies each base tree beneath the scratch directory.
  explicit patched_tree(const std::vector<base_tree>& trees) {
    namespace fs = std::filesystem;
    const auto base = scratch::instance().path() / "trees";
    for (const auto& t : trees) {
      const auto dst = base / t.name;
      fs::create_directories(dst);
      fs::copy(t.source, dst, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
      trees_.emplace_back(t.name, t.root.empty() ? dst : dst / t.root);
    }
  }

  // Applies the patch; returns the root of the chosen tree. Call undo() after.
  const std::filesystem::path& apply(std::string_view patch) {
    std::size_t pick = 0;
    if (patch.starts_with("tree ")) {
      const auto nl = patch.find('\n');
      const auto name = patch.substr(5, nl == std::string_view::npos ? std::string_view::npos : nl - 5);
      for (std::size_t i = 0; i < trees_.size(); ++i)
        if (trees_[i].first == name) pick = i;
      patch.remove_prefix(nl == std::string_view::npos ? patch.size() : nl + 1);
    }
    root_ = trees_[pick].second;
    // Split into "=== " blocks.
    std::size_t ops = 0;
    while (!patch.empty() && ops < max_ops) {
      if (!patch.starts_with("=== ")) {
        const auto next = patch.find("\n=== ");
        if (next == std::string_view::npos) break;
        patch.remove_prefix(next + 1);
        continue;
      }
      const auto nl = patch.find('\n');
      const auto head = patch.substr(4, nl == std::string_view::npos ? std::string_view::npos : nl - 4);
      patch.remove_prefix(nl == std::string_view::npos ? patch.size() : nl + 1);
      const auto next = patch.find("\n=== ");
      const auto body = next == std::string_view::npos ? patch : patch.substr(0, next + 1);
      patch.remove_prefix(body.size());
      ++ops;
      if (head.starts_with("link ")) {
        const auto rest = head.substr(5);
        const auto sp = rest.find(' ');
        if (sp == std::string_view::npos) continue;
        make_link(rest.substr(0, sp), rest.substr(sp + 1));
      } else if (head.starts_with("rm ")) {
        remove(head.substr(3));
      } else {
        write(head, body);
      }
    }
    return root_;
  }

  // Undoes the last patch, newest change first.
  void undo() {
    for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
      const auto p = it->path.c_str();
      switch (it->kind) {
        case change::created_file:
        case change::created_link: ::unlink(p); break;
        case change::created_dir: ::rmdir(p); break;
        case change::replaced_file:
        case change::removed_file: put(it->path, it->old, true); break;
        case change::removed_link:
          ::unlink(p);
          if (::symlink(it->old.c_str(), p) != 0) broken("restoring a link of the fixture tree");
          break;
      }
    }
    log_.clear();
  }

 private:
  static constexpr std::size_t max_ops = 64;
  struct change {
    enum kind_t { created_file, created_link, created_dir, replaced_file, removed_file, removed_link } kind;
    std::string path;
    std::string old;
  };

  // The absolute path of a safe relative one whose parents hold no link;
  // missing parents are created (and logged). nullopt: skip the operation.
  std::optional<std::string> resolve(std::string_view rel) {
    if (rel.empty() || rel.front() == '/' || rel.size() > 1024) return std::nullopt;
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i <= rel.size()) {
      auto j = rel.find('/', i);
      if (j == std::string_view::npos) j = rel.size();
      const auto c = rel.substr(i, j - i);
      if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos) return std::nullopt;
      parts.push_back(c);
      i = j + 1;
    }
    std::string p = root_.string();
    for (std::size_t k = 0; k + 1 < parts.size(); ++k) {
      p += "/";
      p += parts[k];
      struct stat st{};
      if (::lstat(p.c_str(), &st) != 0) {
        if (::mkdir(p.c_str(), 0755) != 0) return std::nullopt;
        log_.push_back({change::created_dir, p, {}});
      } else if (!S_ISDIR(st.st_mode)) {
        return std::nullopt;  // a link or a file on the way
      }
    }
    p += "/";
    p += parts.back();
    return p;
  }

  static std::string slurp(const std::string& p) {
    std::string out;
    const int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
  }

  static void put(const std::string& p, std::string_view content, bool create) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) broken("writing a file of the fixture tree copy");
    std::size_t off = 0;
    while (off < content.size()) {
      const auto w = ::write(fd, content.data() + off, content.size() - off);
      if (w <= 0) broken("writing a file of the fixture tree copy");
      off += static_cast<std::size_t>(w);
    }
    ::close(fd);
  }

  void write(std::string_view rel, std::string_view content) {
    auto p = resolve(rel);
    if (!p) return;
    struct stat st{};
    if (::lstat(p->c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode)) return;
      log_.push_back({change::replaced_file, *p, slurp(*p)});
      put(*p, content, false);
    } else {
      put(*p, content, true);
      log_.push_back({change::created_file, *p, {}});
    }
  }

  void make_link(std::string_view rel, std::string_view target) {
    auto p = resolve(rel);
    if (!p || target.empty() || target.find('\0') != std::string_view::npos) return;
    struct stat st{};
    if (::lstat(p->c_str(), &st) == 0) return;
    if (::symlink(std::string(target).c_str(), p->c_str()) != 0) return;
    log_.push_back({change::created_link, *p, {}});
  }

  void remove(std::string_view rel) {
    auto p = resolve(rel);
    if (!p) return;
    struct stat st{};
    if (::lstat(p->c_str(), &st) != 0) return;
    if (S_ISREG(st.st_mode)) {
      log_.push_back({change::removed_file, *p, slurp(*p)});
      ::unlink(p->c_str());
    } else if (S_ISLNK(st.st_mode)) {
      std::string t(4096, '\0');
      const auto n = ::readlink(p->c_str(), t.data(), t.size());
      if (n <= 0) return;
      t.resize(static_cast<std::size_t>(n));
      log_.push_back({change::removed_link, *p, t});
      ::unlink(p->c_str());
    }
  }

  std::vector<std::pair<std::string, std::filesystem::path>> trees_;
  std::filesystem::path root_;
  std::vector<change> log_;
};

}  // namespace bulkhead::fuzz
