// Reading a mount table (or any text file) by path; contract in
// bulkhead/backend/mount_table.hpp.
#include "bulkhead/backend/mount_table.hpp"

#include <fstream>

namespace bulkhead {

result<std::string> read_text_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(errc::not_found, bulkhead::detail::quote(path) + ": cannot be opened");
  std::string text;
  char buf[16384];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes)
      return fail(errc::out_of_range, bulkhead::detail::quote(path) + ": larger than " + std::to_string(max_bytes) + " bytes");
  }
  if (in.bad()) return fail(errc::io_error, bulkhead::detail::quote(path) + ": read failed");
  return text;
}

}  // namespace bulkhead
