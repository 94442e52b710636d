// The libvirt backend's write path; contract in bulkhead/backend/libvirt.hpp.
#include "libvirt_impl.hpp"

namespace bulkhead {

result<apply_report> libvirt_backend::apply(const instance_info&, const quota_spec&) {
  return fail(errc::unsupported, "libvirt apply: not yet built");
}

}  // namespace bulkhead
