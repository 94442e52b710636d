// bulkhead/model/names.hpp: names that become path components.
//
// A group, host, card or device name that bulkhead turns into one path
// component (a cgroup or resctrl group, a card's file, a sysfs entry) or
// keeps as a key must pass validate_name(): non-empty, at most max_len bytes,
// no '/', no NUL, not "." or "..", valid UTF-8, no control characters.
// `what` names the input in the error ("cgroup name"). errc::unsafe_path for
// a name that would leave its directory, errc::invalid_argument otherwise.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"

namespace bulkhead {

[[nodiscard]] inline result<void> validate_name(std::string_view name, std::string_view what, std::size_t max_len = 255) {
  const std::string w(what);
  if (name.empty()) return fail(errc::invalid_argument, w + ": empty name");
  if (name.size() > max_len)
    return fail(errc::invalid_argument, w + " " + bulkhead::detail::quote(name) + ": longer than " + std::to_string(max_len) + " bytes");
  if (name == "." || name == "..") return fail(errc::unsafe_path, w + " " + bulkhead::detail::quote(name) + ": not a name");
  if (name.find('/') != std::string_view::npos)
    return fail(errc::unsafe_path, w + " " + bulkhead::detail::quote(name) + ": contains '/'");
  if (name.find('\0') != std::string_view::npos)
    return fail(errc::unsafe_path, w + " " + bulkhead::detail::quote(name) + ": contains a NUL byte");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return fail(errc::invalid_argument, w + " " + bulkhead::detail::quote(name) + ": contains a control character");
  if (!bulkhead::detail::is_utf8(name)) return fail(errc::invalid_argument, w + " " + bulkhead::detail::quote(name) + ": not valid UTF-8");
  return {};
}

}  // namespace bulkhead
