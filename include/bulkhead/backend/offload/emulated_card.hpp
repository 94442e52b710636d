// bulkhead/backend/offload/emulated_card.hpp: an exact software model of an
// X-Dragon-style offload card.
//
// The card holds functions (virtio-net, virtio-blk) bound to instances and
// enforces each function's QoS with token buckets (token_bucket.hpp) on the
// time it is given. Requests are offered with their time; each is
//   - admitted at once when its buckets allow,
//   - delayed: queued (FIFO per direction, at most queue_depth waiting) and
//     admitted at the exact time its buckets allow, computed when offered,
//   - dropped when queue_depth requests are already waiting.
// Counters count a request when it is admitted (a delayed request counts from
// its admission time on). `throttled` counts delayed and dropped requests;
// `drops` the dropped ones; `throttled_time` is the measure of the union, over
// throttled requests, of [offered, admitted] (for a dropped one: the time its
// buckets would have admitted it) - the time demand was over the limit, like
// EBS's "time spent over the IOPS limit" (ANCHORS.md).
//
// Admission: the sum of `guaranteed` rates over bound functions never exceeds
// the card's capacity, per resource (network per direction); the number of
// functions never exceeds capacity.functions. A change that would break this
// fails with errc::insufficient_capacity and changes nothing; its message
// (and shortfall()) says by how much.
//
// Time: offers must come in time order across the card (errc::out_of_range
// otherwise); snapshot() at a time before the latest offer reads as of the
// latest offer.
//
// Thread-safety: not thread-safe; serialise calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/backend/offload/card.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::offload {

struct card_description;  // description.hpp

// An instance behind the card: a bare-metal compute board, or a VM on a thin
// hypervisor whose I/O is on the card (isolation vm_offload).
struct instance_config {
  bulkhead::uuid uuid;
  std::string name;
  isolation_level isolation = isolation_level::bare_metal;  // bare_metal or vm_offload
  std::optional<std::string> tenant;
  std::optional<qos_class> qos;
  bulkhead::incarnation incarnation{1};
  instance_state state = instance_state::running;
  // The compute board of a bare-metal instance: its own CPUs and memory.
  std::optional<std::uint32_t> board_cpus;
  std::optional<bytes> board_memory;
};

struct function_config {
  std::string address;  // PCI address ("0000:3b:00.1") or vDPA device name ("vdpa0")
  function_type type = function_type::virtio_net;
  function_form form = function_form::physical;
  std::optional<std::string> parent;
  std::optional<std::uint32_t> vf_index;
  std::string mac;     // virtio-net: lower-case aa:bb:cc:dd:ee:ff
  std::string target;  // name the instance sees ("eth0", "vda")
  std::uint32_t queue_depth = 256;
  function_qos qos;
  std::optional<uuid> instance;
};

struct offer_outcome {
  enum class kind : std::uint8_t { admitted, delayed, dropped };
  kind what = kind::admitted;
  // Admission time (admitted: the offer time; delayed: later); for a dropped
  // request, when its buckets would have admitted it.
  mono_time at{};
};

class emulated_card {
 public:
  inline static constexpr std::uint32_t max_queue_depth = 65536;

  // errc::invalid_argument for an empty PCI address or model.
  [[nodiscard]] static result<emulated_card> make(card_identity identity, card_capacity capacity, mono_time start);
  // The card a description gives (bulkhead/backend/offload/description.hpp,
  // which defines it): instances, functions, admission checked, and its
  // workload run. With a workload, the card starts (buckets full) at
  // now - duration and is driven until now; without, it starts at now.
  [[nodiscard]] static result<emulated_card> make(const card_description& description, mono_time now);

  [[nodiscard]] const card_identity& identity() const noexcept { return identity_; }
  [[nodiscard]] const card_capacity& capacity() const noexcept { return capacity_; }

  // errc::already_exists for a UUID already on the card.
  [[nodiscard]] result<void> add_instance(instance_config instance);
  [[nodiscard]] const std::vector<instance_config>& instances() const noexcept { return instances_; }
  [[nodiscard]] const instance_config* find_instance(const bulkhead::uuid& id) const noexcept;

  // Validates the function (address unique, QoS within the bucket limits,
  // guarantees not above limits, MAC form, instance known) and admits it.
  // Returns its index.
  [[nodiscard]] result<std::size_t> add_function(function_config function);
  [[nodiscard]] std::size_t function_count() const noexcept { return functions_.size(); }
  [[nodiscard]] const function_config& function(std::size_t index) const { return functions_.at(index).config; }
  [[nodiscard]] std::optional<std::size_t> find_function(std::string_view address) const noexcept;

  // New QoS for a function from `now` on (tokens in a bucket are kept, up to
  // the new burst; queued requests keep their times). Admission as above.
  [[nodiscard]] result<void> set_qos(std::size_t index, const function_qos& qos, mono_time now);
  // Binds a function to an instance (or frees it with nullopt). Admission as above.
  [[nodiscard]] result<void> bind(std::size_t index, std::optional<uuid> instance);

  // What would be over capacity if function `index` had `qos` and were bound
  // to `instance`; empty when it fits.
  [[nodiscard]] std::vector<capacity_shortfall> shortfall(std::size_t index, const function_qos& qos,
                                                          const std::optional<uuid>& instance) const;
  // Sums of guarantees of bound functions.
  [[nodiscard]] card_guarantees guaranteed() const noexcept;

  // Offers one packet of `size` bytes to a virtio-net function in direction
  // `d`, or one request to a virtio-blk function. errc::invalid_argument for
  // a wrong function type or index, errc::out_of_range for a time before the
  // card's latest event.
  [[nodiscard]] result<offer_outcome> offer_net(std::size_t index, direction d, bytes size, mono_time at);
  [[nodiscard]] result<offer_outcome> offer_disk(std::size_t index, io_kind k, bytes size, mono_time at);

  // The card as of `now`: identity, capacity, guarantees, every function with
  // its QoS and counters.
  [[nodiscard]] card_view snapshot(mono_time now);
  [[nodiscard]] function_counters counters(std::size_t index, mono_time now);

  // The latest time the card has seen (offers, snapshots, QoS changes).
  [[nodiscard]] mono_time latest() const noexcept { return from_ns(latest_ns_); }

 private:
  struct pending_req {
    std::int64_t due = 0;
    std::uint64_t size = 0;
    std::uint8_t sub = 0;  // io_kind for disks
  };
  // A fixed-capacity FIFO of delayed requests.
  class ring {
   public:
    void reset(std::uint32_t capacity) {
      buf_.assign(capacity, pending_req{});
      head_ = size_ = 0;
    }
    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
    [[nodiscard]] std::uint32_t capacity() const noexcept { return static_cast<std::uint32_t>(buf_.size()); }
    [[nodiscard]] const pending_req& front() const noexcept { return buf_[head_]; }
    void pop() noexcept {
      head_ = head_ + 1 == buf_.size() ? 0 : head_ + 1;
      --size_;
    }
    void push(const pending_req& r) noexcept {
      std::size_t i = head_ + size_;
      if (i >= buf_.size()) i -= buf_.size();
      buf_[i] = r;
      ++size_;
    }

   private:
    std::vector<pending_req> buf_;
    std::size_t head_ = 0;
    std::uint32_t size_ = 0;
  };
  // Measure of a union of intervals whose starts come in order.
  struct interval_union {
    std::uint64_t total = 0;
    std::int64_t busy_until = INT64_MIN;
    void add(std::int64_t start, std::int64_t end) noexcept {
      if (end <= start) return;
      if (start >= busy_until) {
        total += static_cast<std::uint64_t>(end - start);
        busy_until = end;
      } else if (end > busy_until) {
        total += static_cast<std::uint64_t>(end - busy_until);
        busy_until = end;
      }
    }
    // The part of the union up to `now`.
    [[nodiscard]] std::uint64_t until(std::int64_t now) const noexcept {
      return busy_until > now ? total - static_cast<std::uint64_t>(busy_until - now) : total;
    }
  };
  // One queue with its limiter: a network direction, or a disk (reads and
  // writes share it). sub 0/1 = read/write for disks; 0 for network.
  struct lane {
    std::optional<bucket_core> byte_bucket;
    std::optional<bucket_core> count_bucket;
    ring queue;
    std::uint64_t admitted_count[2] = {0, 0};  // including pending
    std::uint64_t admitted_bytes[2] = {0, 0};
    std::uint64_t pending_count[2] = {0, 0};
    std::uint64_t pending_bytes[2] = {0, 0};
    std::uint64_t drops = 0;
    std::uint64_t throttled = 0;
    interval_union throttled_time;
  };
  struct function_state {
    function_config config;
    lane rx, tx, disk;
    interval_union throttled_time;
  };

  emulated_card(card_identity identity, card_capacity capacity, mono_time start)
      : identity_(std::move(identity)), capacity_(capacity), latest_ns_(to_ns(start)) {}

  [[nodiscard]] result<void> build_lanes(function_state& f, mono_time now) const;
  [[nodiscard]] result<void> retune_lanes(function_state& f, const function_qos& q, mono_time now) const;
  [[nodiscard]] result<void> check_function(const function_config& c) const;
  [[nodiscard]] offer_outcome offer(function_state& f, lane& l, std::int64_t t, std::uint64_t size, std::uint8_t sub);
  static void settle(lane& l, std::int64_t now) noexcept;
  [[nodiscard]] function_counters counters_of(function_state& f, std::int64_t now);
  [[nodiscard]] std::int64_t read_time(mono_time now) noexcept;

  card_identity identity_;
  card_capacity capacity_;
  std::vector<instance_config> instances_;
  std::vector<function_state> functions_;
  std::int64_t latest_ns_ = 0;
};

}  // namespace bulkhead::offload

#include "bulkhead/backend/offload/detail/emulated_card_impl.hpp"
