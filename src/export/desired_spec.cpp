// Reading a desired-spec file by path; contract in
// bulkhead/export/desired_spec.hpp.
#include "bulkhead/export/desired_spec.hpp"

#include <fstream>

namespace bulkhead {

result<desired_specs> open_desired_specs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(errc::not_found, "desired spec file " + bulkhead::detail::quote(path) + ": cannot be opened");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > desired_spec_max_file_bytes)
      return fail(errc::out_of_range, "desired spec file " + bulkhead::detail::quote(path) + ": larger than " +
                                          std::to_string(desired_spec_max_file_bytes) + " bytes");
  }
  if (in.bad()) return fail(errc::io_error, "desired spec file " + bulkhead::detail::quote(path) + ": read failed");
  return parse_desired_specs(text, path);
}

}  // namespace bulkhead
