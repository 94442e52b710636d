// bulkhead/backend/offload/description.hpp: the JSON description of emulated
// offload cards (format "bulkhead-offload-card/1", docs/offload-card.md).
//
// Parsing is strict: unknown keys, wrong types, negative or fractional
// numbers are errors (errc::parse_error, errc::out_of_range) whose message
// names the JSON path ("cards[0].functions[2].qos.tx.bandwidth.rate_bytes_sec").
// Cross-checks (unique addresses, known instances, admission against the
// card's capacity) happen when a card is built: emulated_card::make() returns the
// first problem.
//
// A description may carry a workload: request streams the card is driven
// with over the `seconds` before it is built, so that a fresh card has
// counters (deterministic: the same description gives the same counters).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/backend/offload/card.hpp"
#include "bulkhead/backend/offload/emulated_card.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::offload {

inline constexpr std::string_view description_format = "bulkhead-offload-card/1";
// The most requests a workload may offer in all (keeps building a card fast).
inline constexpr std::uint64_t max_workload_requests = 20'000'000;

// Requests offered at evenly spaced times: request k at
// start + floor(k x 10^9 / rate) ns.
struct workload_stream {
  std::string function;            // address of a function on the card
  std::optional<direction> dir;    // virtio-net
  std::optional<io_kind> io;       // virtio-blk
  ops_per_second rate{0};          // requests (packets or I/Os) per second
  bytes request_size{0};
};

struct workload {
  seconds duration{0};
  std::vector<workload_stream> streams;
};

struct card_description {
  card_identity identity;
  card_capacity capacity;
  std::vector<instance_config> instances;
  std::vector<function_config> functions;
  std::optional<workload> load;
};

[[nodiscard]] result<std::vector<card_description>> parse_card_description(std::string_view json_text);

// emulated_card::make(description, now) builds the card (emulated_card.hpp).

// Drives `card` with the streams from `from` for `w.duration`, in time order
// (ties: the earlier stream first). errc::out_of_range when the workload
// would offer more than max_workload_requests.
[[nodiscard]] result<void> run_workload(emulated_card& card, const workload& w, mono_time from);

}  // namespace bulkhead::offload

#include "bulkhead/backend/offload/detail/description_impl.hpp"
