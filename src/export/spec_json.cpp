// Reading a desired-spec file by path; contract in
// bulkhead/export/spec_json.hpp.
#include "bulkhead/export/spec_json.hpp"

#include <fstream>

namespace bulkhead::spec_json {

result<desired_specs> read_desired_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(errc::not_found, "desired spec file " + bulkhead::detail::quote(path) + ": cannot be opened");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_file_bytes)
      return fail(errc::out_of_range, "desired spec file " + bulkhead::detail::quote(path) + ": larger than " +
                                          std::to_string(max_file_bytes) + " bytes");
  }
  if (in.bad()) return fail(errc::io_error, "desired spec file " + bulkhead::detail::quote(path) + ": read failed");
  return parse_desired(text, path);
}

}  // namespace bulkhead::spec_json
