// Loading a time zone from a zoneinfo directory (file I/O); parsing the
// TZif bytes is header code (bulkhead/colocation/detail/time_zone_impl.hpp).
// Contract in bulkhead/colocation/time_zone.hpp.
#include "bulkhead/colocation/time_zone.hpp"

#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::colocation {

result<time_zone> time_zone::open(const rooted_dir& zoneinfo, std::string_view name) {
  if (auto r = validate_zone_name(name); !r) return fail(r.error());
  auto bytes = zoneinfo.read_file(name, 1u << 20);
  if (!bytes) return fail(std::move(bytes.error()).in("loading time zone " + bulkhead::detail::quote(name)));
  return parse(std::string(name), *bytes);
}

result<time_zone> time_zone::open(std::string_view name, const std::string& zoneinfo_root) {
  if (auto r = validate_zone_name(name); !r) return fail(r.error());
  auto root = rooted_dir::open(zoneinfo_root);
  if (!root) return fail(std::move(root.error()).in("opening zoneinfo root (Debian: apt-get install tzdata)"));
  return open(*root, name);
}

}  // namespace bulkhead::colocation
