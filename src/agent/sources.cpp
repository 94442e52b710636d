// The agent's sources without libvirt; contract in bulkhead/agent/sources.hpp.
#include "bulkhead/agent/sources.hpp"

#include <filesystem>

#include "bulkhead/backend/mount_table.hpp"
#include "bulkhead/backend/offload/bindings.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::agent {

source_spec cgroup_source(cgroup::options options) {
  std::string name = options.parent.empty() ? "/" : options.parent;
  std::string key = "cgroup:" + name;
  return source_spec{"cgroup", std::move(name), [o = std::move(options)]() -> result<std::unique_ptr<backend>> {
                       auto b = cgroup::backend::open(o);
                       if (!b) return fail(std::move(b.error()));
                       return std::unique_ptr<backend>(std::move(*b));
                     },
                     std::move(key)};
}

source_spec cgroup_host_source(std::string parent, std::string fs_root, std::string mount_table) {
  std::string name = parent.empty() ? "/" : parent;
  std::string key = "cgroup:" + name;
  return source_spec{
      "cgroup", std::move(name),
      [parent = std::move(parent), fs_root = std::move(fs_root),
       table = std::move(mount_table)]() -> result<std::unique_ptr<backend>> {
        auto text = read_text_file(table);
        if (!text) return fail(std::move(text.error()).in("cgroup mount table"));
        auto mounts = cgroup::mounts::parse(*text, table);
        if (!mounts) return fail(std::move(mounts.error()));
        cgroup::options o;
        o.fs_root = fs_root;
        o.mounts = std::move(*mounts);
        o.parent = parent;
        auto b = cgroup::backend::open(std::move(o));
        if (!b) return fail(std::move(b.error()));
        return std::unique_ptr<backend>(std::move(*b));
      },
      std::move(key)};
}

source_spec card_source(std::string description_file) {
  std::string name = description_file;
  std::string key = "offload:" + name;
  return source_spec{"offload", std::move(name), [path = std::move(description_file)]() -> result<std::unique_ptr<backend>> {
                       auto b = offload::backend::open(path);
                       if (!b) return fail(std::move(b.error()));
                       return std::unique_ptr<backend>(std::move(*b));
                     },
                     std::move(key)};
}

source_spec card_sysfs_source(std::string sysfs_root, std::string bindings_file) {
  std::string name = bindings_file;
  std::string key = "offload:" + name;
  return source_spec{"offload", std::move(name),
                     [root = std::move(sysfs_root), file = std::move(bindings_file)]() -> result<std::unique_ptr<backend>> {
                       auto text = read_text_file(file, 1u << 20);
                       if (!text) return fail(std::move(text.error()).in("offload bindings file"));
                       auto bindings = offload::parse_sysfs_bindings(*text);
                       if (!bindings) return fail(std::move(bindings.error()).in("offload bindings file " + detail::quote_path(file)));
                       offload::sysfs_options o;
                       o.sysfs_root = root;
                       o.bindings = std::move(*bindings);
                       auto b = offload::sysfs_backend::open(std::move(o));
                       if (!b) return fail(std::move(b.error()));
                       return std::unique_ptr<backend>(std::move(*b));
                     },
                     std::move(key)};
}

}  // namespace bulkhead::agent
