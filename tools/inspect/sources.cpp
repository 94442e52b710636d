#include "sources.hpp"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::inspect {

namespace {

class libvirt_src final : public source {
 public:
  explicit libvirt_src(std::string uri) : uri_(std::move(uri)) {}

  source_view read() override {
    source_view v;
    v.kind = "libvirt";
    v.uri = uri_;
    // libvirt's test driver reads a node file; say plainly when it is
    // missing rather than let libvirt's XML loader complain.
    if (uri_.rfind("test:///", 0) == 0 && uri_ != "test:///default") {
      const std::string path = uri_.substr(7);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) {
        v.err = error(errc::not_found, "test driver node file " + detail::quote(path) + " does not exist or is not a file");
        return v;
      }
    }
    if (!b_) {
      auto b = libvirt::backend::connect({uri_, true});
      if (!b) {
        v.err = std::move(b.error());
        return v;
      }
      b_ = std::move(*b);
    }
    v.uri = b_->source();
    auto cap = b_->capacity();
    if (!cap) {
      v.err = std::move(cap.error());
      return v;
    }
    v.host = std::move(*cap);
    auto all = b_->read_all();
    if (!all) {
      v.err = std::move(all.error());
      return v;
    }
    v.instances = std::move(all->instances);
    v.failures = std::move(all->failures);
    if (all->source_error) v.err = std::move(all->source_error);
    std::sort(v.instances.begin(), v.instances.end(), [](const instance_reading& a, const instance_reading& b) {
      return std::tie(a.info.name, a.info.id.uuid) < std::tie(b.info.name, b.info.id.uuid);
    });
    return v;
  }

 private:
  std::string uri_;
  std::unique_ptr<libvirt::backend> b_;
};

class offload_src final : public source {
 public:
  explicit offload_src(std::string path) : path_(std::move(path)) {}

  source_view read() override {
    source_view v;
    v.kind = "offload";
    v.uri = path_;
    if (!b_) {
      auto b = offload::backend::open(path_);
      if (!b) {
        v.err = std::move(b.error());
        return v;
      }
      b_ = std::move(*b);
    }
    v.uri = b_->source();
    auto all = b_->read_all();
    if (!all) {
      v.err = std::move(all.error());
      return v;
    }
    v.instances = std::move(all->instances);
    v.failures = std::move(all->failures);
    std::sort(v.instances.begin(), v.instances.end(), [](const instance_reading& a, const instance_reading& b) {
      return std::tie(a.info.name, a.info.id.uuid) < std::tie(b.info.name, b.info.id.uuid);
    });
    auto cards = b_->cards();
    if (!cards) {
      v.err = std::move(cards.error());
      return v;
    }
    for (const auto& c : *cards) v.cards.push_back(nlohmann::json(c));
    return v;
  }

 private:
  std::string path_;
  std::unique_ptr<offload::backend> b_;
};

}  // namespace

std::unique_ptr<source> offload_card_source(std::string path) { return std::make_unique<offload_src>(std::move(path)); }

std::unique_ptr<source> libvirt_source(std::string uri) { return std::make_unique<libvirt_src>(std::move(uri)); }

}  // namespace bulkhead::inspect
