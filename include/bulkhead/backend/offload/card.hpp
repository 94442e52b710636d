// bulkhead/backend/offload/card.hpp: the vocabulary of an X-Dragon-style
// offload card, shared by the emulated card and the Linux sysfs reader.
//
// A card has an identity (PCI address, model, firmware), a capacity, and
// functions: virtio-net or virtio-blk, each a physical PCI function, an SR-IOV
// virtual function or a vDPA device, bound to an instance or free. Each
// function has a QoS spec (token buckets, token_bucket.hpp) and counters,
// including what the card held back: throttled requests and the nanoseconds
// spent throttled, as AWS Nitro exposes its allowance counters (ANCHORS.md).
//
// Directions are the instance's: rx is what the instance receives (libvirt's
// <inbound>), tx what it sends (<outbound>).
//
// card_view is a snapshot. Knobs are optional because the Linux view does not
// show everything (a VF assigned to a guest has no host counters); the
// emulated card fills every knob.
//
// Thread-safety: values; no shared state (card_clock implementations say
// their own).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/offload/token_bucket.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/model/quota.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::offload {

enum class function_type : std::uint8_t { virtio_net, virtio_blk };
enum class function_form : std::uint8_t {
  physical,  // a PCI physical function
  sriov_vf,  // an SR-IOV virtual function (sysfs `physfn` link)
  vdpa,      // a vDPA device on the vdpa bus
};
enum class direction : std::uint8_t { rx, tx };
enum class io_kind : std::uint8_t { read, write };

// The card's clock: monotonic time in nanoseconds. The emulated card reads
// nothing else; tests and the benchmark drive a manual_clock.
class BULKHEAD_API card_clock {
 public:
  virtual ~card_clock() = default;
  [[nodiscard]] virtual mono_time now() = 0;
};

// std::chrono::steady_clock. Thread-safe.
class steady_card_clock final : public card_clock {
 public:
  [[nodiscard]] mono_time now() override { return mono_clock::now(); }
};

// Time set by hand; starts at `start`. Not thread-safe.
class manual_clock final : public card_clock {
 public:
  explicit manual_clock(mono_time start = mono_time{}) : t_(start) {}
  [[nodiscard]] mono_time now() override { return t_; }
  void set(mono_time t) noexcept { t_ = t; }
  void advance(nanoseconds d) noexcept { t_ += std::chrono::duration_cast<mono_clock::duration>(d); }

 private:
  mono_time t_;
};

// One token bucket's QoS with a guarantee: `guaranteed` is what admission
// reserves on the card (the sum over a card's bound functions never exceeds
// its capacity); `bucket` is the limit the card enforces.
template <class Amount, class Rate>
struct rate_qos {
  bucket_spec<Amount, Rate> bucket;
  Rate guaranteed{0};
  friend bool operator==(const rate_qos&, const rate_qos&) = default;
};
using bandwidth_qos = rate_qos<bytes, bytes_per_second>;
using packet_qos = rate_qos<packets, packets_per_second>;
using iops_qos = rate_qos<operations, ops_per_second>;

struct net_direction_qos {
  bandwidth_qos bandwidth;
  packet_qos packets;
  friend bool operator==(const net_direction_qos&, const net_direction_qos&) = default;
};

// A function's QoS. virtio-net uses rx/tx; virtio-blk uses disk_bandwidth and
// disk_iops (reads and writes share them; a request takes 1 op then its bytes).
struct function_qos {
  net_direction_qos rx, tx;
  bandwidth_qos disk_bandwidth;
  iops_qos disk_iops;
  friend bool operator==(const function_qos&, const function_qos&) = default;
};

// What the card has. Network figures are per direction (full duplex).
struct card_capacity {
  std::uint32_t functions = 0;
  bytes_per_second net_bandwidth{0};
  packets_per_second net_packets{0};
  bytes_per_second disk_bandwidth{0};
  ops_per_second disk_iops{0};
  friend bool operator==(const card_capacity&, const card_capacity&) = default;
};

// Sums of the guarantees of a card's bound functions, per resource.
struct card_guarantees {
  std::uint32_t functions = 0;  // functions on the card (bound or free)
  std::uint32_t bound_functions = 0;
  bytes_per_second net_bandwidth_rx{0}, net_bandwidth_tx{0};
  packets_per_second net_packets_rx{0}, net_packets_tx{0};
  bytes_per_second disk_bandwidth{0};
  ops_per_second disk_iops{0};
  friend bool operator==(const card_guarantees&, const card_guarantees&) = default;
};

struct card_identity {
  std::string pci_address;  // "0000:3b:00.0"
  std::string model;
  std::string firmware;     // empty when unknown
  friend bool operator==(const card_identity&, const card_identity&) = default;
};

// One resource over capacity, as an admission refusal reports it.
struct capacity_shortfall {
  std::string resource;  // "net_bandwidth.tx", "net_packets.rx", "disk_iops", "disk_bandwidth", "functions"
  std::string unit;      // "bytes_sec", "packets_sec", "ops_sec", "functions"
  std::uint64_t requested = 0;  // the sum of guarantees it would take
  std::uint64_t capacity = 0;
  std::uint64_t excess = 0;  // requested - capacity
  friend bool operator==(const capacity_shortfall&, const capacity_shortfall&) = default;
};
// "card 0000:3b:00.0: guaranteed net_bandwidth.tx would be 3200000000 bytes_sec,
// 75000000 bytes_sec over the capacity of 3125000000 bytes_sec; ..."
[[nodiscard]] inline std::string describe(const std::string& card, const std::vector<capacity_shortfall>& s) {
  std::string out = "card " + card + ":";
  bool first = true;
  for (const auto& x : s) {
    out += first ? " " : "; ";
    first = false;
    if (x.resource == "functions") {
      out += "would hold " + std::to_string(x.requested) + " functions, " + std::to_string(x.excess) +
             " over its capacity of " + std::to_string(x.capacity);
    } else {
      out += "guaranteed " + x.resource + " would be " + std::to_string(x.requested) + " " + x.unit + ", " +
             std::to_string(x.excess) + " " + x.unit + " over the capacity of " + std::to_string(x.capacity) +
             " " + x.unit;
    }
  }
  return out;
}

// Counters of one network direction. `throttled` counts packets the limiter
// delayed or dropped; `drops` those it dropped (its queue was full);
// `throttled_time` is the time requests were held back (definition in
// docs/offload.md).
struct net_direction_counters {
  knob<bytes> byte_count;
  knob<packets> packet_count;
  knob<packets> errors;
  knob<packets> drops;
  knob<packets> throttled;
  knob<nanoseconds> throttled_time;
};

struct disk_function_counters {
  knob<operations> read_requests, write_requests;
  knob<bytes> read_bytes, write_bytes;
  knob<operations> errors;
  knob<operations> drops;
  knob<operations> throttled;
  knob<nanoseconds> throttled_time;
};

struct function_counters {
  net_direction_counters rx, tx;  // virtio-net
  disk_function_counters disk;    // virtio-blk
  // Time during which any of the function's requests was held back (the
  // union over its directions).
  knob<nanoseconds> throttled_time;
};

// One bucket's QoS as read back; a knob is absent when the source does not
// say (the Linux view knows a VF's rate but not its bucket size).
template <class Amount, class Rate>
struct rate_qos_view {
  limit<Rate> rate = unlimited;
  knob<Amount> burst;
  knob<Amount> one_time_burst;
  knob<Rate> guaranteed;
  friend bool operator==(const rate_qos_view&, const rate_qos_view&) = default;
};
template <class Amount, class Rate>
[[nodiscard]] rate_qos_view<Amount, Rate> view_of(const rate_qos<Amount, Rate>& q) {
  rate_qos_view<Amount, Rate> v;
  v.rate = q.bucket.rate;
  if (q.bucket.rate.is_bounded()) {
    v.burst = q.bucket.burst;
    v.one_time_burst = q.bucket.one_time_burst;
  }
  v.guaranteed = q.guaranteed;
  return v;
}

// The QoS as read back: each part is absent when the source cannot tell.
struct function_qos_view {
  knob<rate_qos_view<bytes, bytes_per_second>> rx_bandwidth, tx_bandwidth;
  knob<rate_qos_view<packets, packets_per_second>> rx_packets, tx_packets;
  knob<rate_qos_view<bytes, bytes_per_second>> disk_bandwidth;
  knob<rate_qos_view<operations, ops_per_second>> disk_iops;
};

struct function_view {
  std::string address;  // PCI address, or the vDPA device name
  function_type type = function_type::virtio_net;
  function_form form = function_form::physical;
  std::optional<std::string> parent;  // the PF of a VF, the PCI parent of a vDPA device
  std::optional<std::uint32_t> vf_index;
  std::optional<std::string> driver;  // host driver bound (sysfs `driver` link), when known
  std::optional<uuid> instance;       // bound instance, none when free
  std::string mac;                    // virtio-net: lower-case, "" when unknown
  std::string target;                 // the device name the instance sees ("eth0", "vda"), "" when unknown
  knob<std::uint32_t> queue_depth;    // requests the card queues per direction (emulated cards)
  function_qos_view qos;
  function_counters counters;
  std::vector<error> problems;  // what could not be read; the rest is valid
};

struct card_view {
  card_identity identity;
  knob<card_capacity> capacity;  // emulated cards; absent in the Linux view
  // The Linux view: SR-IOV totals of the card's physical functions
  // (sriov_totalvfs, sriov_numvfs) and the link speed of its first physical
  // network function (net/<if>/speed), when sysfs shows them.
  knob<std::uint32_t> total_vfs, enabled_vfs;
  knob<bytes_per_second> link_bandwidth;
  // Sums of guarantees of bound functions (emulated cards).
  knob<card_guarantees> guaranteed;
  std::vector<function_view> functions;
  std::vector<error> problems;
};

// Anything that can list cards: both offload backends.
class BULKHEAD_API card_source {
 public:
  virtual ~card_source() = default;
  [[nodiscard]] virtual result<std::vector<card_view>> cards() = 0;
};

}  // namespace bulkhead::offload

namespace bulkhead {
template <>
struct enum_names<offload::function_type> {
  static constexpr std::array values{
      std::pair{offload::function_type::virtio_net, std::string_view{"virtio_net"}},
      std::pair{offload::function_type::virtio_blk, std::string_view{"virtio_blk"}},
  };
  static constexpr std::string_view what = "function type";
};
template <>
struct enum_names<offload::function_form> {
  static constexpr std::array values{
      std::pair{offload::function_form::physical, std::string_view{"physical"}},
      std::pair{offload::function_form::sriov_vf, std::string_view{"sriov_vf"}},
      std::pair{offload::function_form::vdpa, std::string_view{"vdpa"}},
  };
  static constexpr std::string_view what = "function form";
};
template <>
struct enum_names<offload::direction> {
  static constexpr std::array values{
      std::pair{offload::direction::rx, std::string_view{"rx"}},
      std::pair{offload::direction::tx, std::string_view{"tx"}},
  };
  static constexpr std::string_view what = "direction";
};
template <>
struct enum_names<offload::io_kind> {
  static constexpr std::array values{
      std::pair{offload::io_kind::read, std::string_view{"read"}},
      std::pair{offload::io_kind::write, std::string_view{"write"}},
  };
  static constexpr std::string_view what = "io kind";
};
}  // namespace bulkhead
