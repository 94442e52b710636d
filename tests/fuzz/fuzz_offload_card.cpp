// libFuzzer target: the offload card description ("bulkhead-offload-card/1",
// bulkhead/backend/offload/description.hpp) and the sysfs bindings JSON
// (parse_sysfs_bindings, bulkhead/backend/offload/backend.hpp). A description that
// parses is built into cards (admission cross-checks) with its workload
// capped to keep one run short, and read back through the backend and the
// JSON form, as bulkhead-inspect --demo does.
#include <cstddef>
#include <cstdint>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/offload/bindings.hpp"
#include "bulkhead/backend/offload/description.hpp"
#include "bulkhead/backend/offload/json.hpp"
#include "fuzz_support.hpp"

using namespace bulkhead;

namespace {
// Requests a description's workload may offer in one run of the target.
constexpr unsigned long long max_requests = 20'000;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  auto bind = offload::parse_sysfs_bindings(text);
  fuzz::expect_clear(bind, "parse_sysfs_bindings");

  auto cards = offload::parse_card_description(text);
  if (!cards) {
    fuzz::expect_clear(cards.error(), "parse_card_description");
    return 0;
  }
  const mono_time now{std::chrono::hours(1)};
  for (auto& d : *cards) {
    if (d.load) {
      u128 total = 0;
      for (const auto& s : d.load->streams)
        total += static_cast<u128>(s.rate.count()) * static_cast<std::uint64_t>(d.load->duration.count());
      if (total > max_requests) d.load.reset();
    }
    auto card = offload::emulated_card::make(d, now);
    if (!card) {
      fuzz::expect_clear(card.error(), "emulated_card::make");
      continue;
    }
    (void)nlohmann::json(card->snapshot(now)).dump();
  }
  return 0;
}
