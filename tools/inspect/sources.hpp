// bulkhead-inspect's sources: what it reads (libvirt URIs, the demo host's
// emulated offload card) and what one read of each gave.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/backend/backend.hpp"
#include "bulkhead/error.hpp"
#include <nlohmann/json.hpp>

namespace bulkhead::inspect {

// One read of one source.
struct source_view {
  std::string kind;  // "libvirt", "offload"
  std::string uri;
  std::optional<error> err;
  std::optional<host_capacity> host;
  std::vector<instance_reading> instances;
  std::vector<instance_failure> failures;
  nlohmann::json cards = nlohmann::json::array();  // offload cards with their functions
};

// A source kept open across reads (--watch reads the same sources again and
// again; the backend reconnects by itself after a lost connection).
class source {
 public:
  virtual ~source() = default;
  [[nodiscard]] virtual source_view read() = 0;
};

// libvirt at `uri` ("" for libvirt's default), read-only.
[[nodiscard]] std::unique_ptr<source> libvirt_source(std::string uri);

// An emulated offload card from its JSON description (docs/offload-card.md),
// as the demo host has.
[[nodiscard]] std::unique_ptr<source> offload_card_source(std::string description_path);

}  // namespace bulkhead::inspect
