// A libvirt URI as an agent source; contract in bulkhead/agent/libvirt.hpp.
#include "bulkhead/agent/libvirt.hpp"

#include <filesystem>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::agent {

source_spec libvirt_source(std::string uri) {
  std::string name = uri;
  return source_spec{"libvirt", name, [uri = std::move(uri)]() -> result<std::unique_ptr<backend>> {
                       // libvirt's test driver reads a node file: say plainly
                       // when it is missing rather than let its loader complain.
                       if (uri.starts_with("test:///") && uri != "test:///default") {
                         const std::string path = uri.substr(7);
                         std::error_code ec;
                         if (!std::filesystem::is_regular_file(path, ec))
                           return fail(errc::not_found, "libvirt test driver node file " + detail::quote_path(path) +
                                                            " does not exist or is not a file");
                       }
                       auto b = libvirt::backend::connect({.uri = uri, .read_only = true});
                       if (!b) return fail(std::move(b.error()));
                       return std::unique_ptr<backend>(std::move(*b));
                     },
                     name};
}

}  // namespace bulkhead::agent
