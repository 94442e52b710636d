// bulkhead/backend/offload/token_bucket.hpp: the token bucket an offload card
// enforces its QoS with, in exact integer arithmetic.
//
// A bucket has a refill rate (units per second), a capacity (`burst`, units)
// and a one-time burst (units that are spent before the bucket and never come
// back, as Firecracker's `one_time_burst`). It starts full. Time is the
// injected monotonic time (mono_time, nanoseconds).
//
// Exactness: tokens are held in nano-units (1 unit = 10^9 nano-units) in a
// 128-bit balance; every elapsed nanosecond adds exactly `rate` nano-units, so
// nothing is rounded: over any interval the refill is exactly rate x interval.
// Time comes in whole nanoseconds, so a source that waits the (rounded-up)
// time it was told finds the bucket up to one nanosecond's refill past the
// point it became full; the cap keeps that part (less than one nanosecond's
// refill and less than one unit) instead of discarding it, so a bucket no
// bigger than one request loses nothing per wait. There is no floating point and no refill tick; the rate
// achieved by a backlogged source is the configured rate to within one request
// over any window, whatever the rate and bucket size (tests/integration
// test_offload_accuracy, docs/offload.md).
//
// Waits are exact too: a refused request is told the nanoseconds until it can
// pass, rounded up and never 0, so a sub-millisecond wait cannot be truncated
// into a stall (Firecracker issue #6212) and nothing sleeps a fixed back-off
// (Firecracker and Cloud Hypervisor re-check after a 100 ms timer, which caps
// a small bucket at size / 100 ms; ANCHORS.md "Rate limiters").
//
// A request larger than the capacity is admitted when the bucket is full and
// leaves it in debt (a negative balance) that later requests wait out, so such
// requests neither starve nor beat the rate.
//
// Reservations: earliest() and commit() let a card schedule a FIFO queue of
// requests at their exact future admission times (the card's delay queue);
// try_admit() is the one-shot form for a caller that retries on its own.
//
// Limits (checked by make()): 1 <= rate <= 2^40 units/s, 1 <= burst <= 2^50
// units, one_time_burst <= 2^50 units, request costs below 2^50 units; with
// these every intermediate fits 128 bits.
//
// Thread-safety: a bucket is a value; not thread-safe to share without a lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::offload {

__extension__ using i128 = __int128;

inline constexpr std::uint64_t max_bucket_rate = std::uint64_t{1} << 40;   // units per second
inline constexpr std::uint64_t max_bucket_burst = std::uint64_t{1} << 50;  // units
inline constexpr std::uint64_t max_request_cost = std::uint64_t{1} << 50;  // units

// Nanoseconds since the monotonic clock's epoch, as the buckets keep time.
[[nodiscard]] constexpr std::int64_t to_ns(mono_time t) noexcept {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}
[[nodiscard]] constexpr mono_time from_ns(std::int64_t ns) noexcept {
  return mono_time{std::chrono::duration_cast<mono_clock::duration>(nanoseconds{ns})};
}

// The untyped bucket. Units are whatever the caller counts (bytes, packets,
// operations); token_bucket<> below gives it a unit.
class bucket_core {
 public:
  static constexpr std::uint64_t nano = 1'000'000'000;

  // errc::out_of_range naming `what` when a parameter is outside the limits
  // above. The bucket starts full at `start`.
  [[nodiscard]] static result<bucket_core> make(std::uint64_t rate, std::uint64_t burst,
                                                std::uint64_t one_time_burst, mono_time start,
                                                std::string_view what) {
    const std::string w(what);
    if (rate == 0 || rate > max_bucket_rate)
      return fail(errc::out_of_range, w + ".rate: " + std::to_string(rate) + " is outside 1.." +
                                          std::to_string(max_bucket_rate) + " per second");
    if (burst == 0 || burst > max_bucket_burst)
      return fail(errc::out_of_range, w + ".burst: " + std::to_string(burst) + " is outside 1.." +
                                          std::to_string(max_bucket_burst));
    if (one_time_burst > max_bucket_burst)
      return fail(errc::out_of_range, w + ".one_time_burst: " + std::to_string(one_time_burst) +
                                          " is above " + std::to_string(max_bucket_burst));
    bucket_core b;
    b.rate_ = rate;
    b.burst_ = burst;
    b.capacity_ = static_cast<i128>(burst) * nano;
    b.cap_ = b.capacity_ + static_cast<i128>(rate < nano ? rate : nano) - 1;
    b.balance_ = b.capacity_;
    b.one_time_left_ = one_time_burst;
    b.last_ = to_ns(start);
    return b;
  }

  [[nodiscard]] std::uint64_t rate() const noexcept { return rate_; }
  [[nodiscard]] std::uint64_t burst() const noexcept { return burst_; }
  [[nodiscard]] std::uint64_t one_time_left() const noexcept { return one_time_left_; }

  // The earliest time, not before `now` nor before the last commit, at which a
  // request of `cost` units can be admitted. Pure.
  [[nodiscard]] std::int64_t earliest_ns(std::int64_t now, std::uint64_t cost) const noexcept {
    const std::int64_t t0 = now > last_ ? now : last_;
    const std::uint64_t rest = cost > one_time_left_ ? cost - one_time_left_ : 0;
    if (rest == 0) return t0;
    const i128 bal = refilled(t0);
    const i128 need = static_cast<i128>(rest) * nano;
    const i128 threshold = need < capacity_ ? need : capacity_;
    if (bal >= threshold) return t0;
    return t0 + wait_for(threshold - bal);
  }
  [[nodiscard]] mono_time earliest(mono_time now, std::uint64_t cost) const noexcept {
    return from_ns(earliest_ns(to_ns(now), cost));
  }

  // Admits `cost` units at time t. Precondition: t >= earliest_ns(x, cost)
  // for some x (the caller asked first); then the balance never goes below
  // what the debt rule allows.
  void commit_ns(std::int64_t t, std::uint64_t cost) noexcept {
    if (t > last_) {
      balance_ = refilled(t);
      last_ = t;
    }
    const std::uint64_t from_one_time = cost < one_time_left_ ? cost : one_time_left_;
    one_time_left_ -= from_one_time;
    balance_ -= static_cast<i128>(cost - from_one_time) * nano;
  }
  void commit(mono_time t, std::uint64_t cost) noexcept { commit_ns(to_ns(t), cost); }

  // Admits `cost` now if it can (returns 0) or says how long until it can
  // (>= 1 ns; nothing is taken). Same rule as earliest()/commit().
  [[nodiscard]] std::int64_t try_admit_ns(std::int64_t now, std::uint64_t cost) noexcept {
    if (now > last_) {
      // Refilling now is equivalent to refilling later: min(cap, min(cap, b+x)+y) = min(cap, b+x+y).
      balance_ = refilled(now);
      last_ = now;
    }
    std::uint64_t rest = cost;
    std::uint64_t from_one_time = 0;
    if (one_time_left_ != 0) {
      from_one_time = cost < one_time_left_ ? cost : one_time_left_;
      rest = cost - from_one_time;
    }
    const i128 need = static_cast<i128>(rest) * nano;
    const i128 threshold = need < capacity_ ? need : capacity_;
    // A request the one-time burst covers passes even while the bucket is in debt.
    const i128 deficit = rest == 0 ? 0 : threshold - balance_;
    if (now >= last_ && deficit <= 0) {
      one_time_left_ -= from_one_time;
      balance_ -= need;
      return 0;
    }
    return (last_ - now) + (deficit > 0 ? wait_for(deficit) : 0);
  }
  [[nodiscard]] nanoseconds try_admit(mono_time now, std::uint64_t cost) noexcept {
    return nanoseconds{try_admit_ns(to_ns(now), cost)};
  }

  // Changes rate and capacity from time `now` on, keeping the tokens already
  // in the bucket (at most the new capacity) and the one-time burst left.
  // Requests already committed keep their times. Same limits as make().
  [[nodiscard]] result<void> reconfigure(std::uint64_t rate, std::uint64_t burst, mono_time now, std::string_view what) {
    auto fresh = make(rate, burst, 0, now, what);
    if (!fresh) return fail(std::move(fresh.error()));
    const std::int64_t t = to_ns(now);
    if (t > last_) {
      balance_ = refilled(t);
      last_ = t;
    }
    rate_ = rate;
    burst_ = burst;
    capacity_ = fresh->capacity_;
    cap_ = fresh->cap_;
    if (balance_ > capacity_) balance_ = capacity_;
    return {};
  }

  // Whole units in the bucket at `now` (0 in debt), not counting the one-time
  // burst. Pure; for display.
  [[nodiscard]] std::uint64_t available(mono_time now) const noexcept {
    const std::int64_t t = to_ns(now);
    const i128 bal = t > last_ ? refilled(t) : balance_;
    if (bal <= 0) return 0;
    return static_cast<std::uint64_t>((bal > capacity_ ? capacity_ : bal) / nano);
  }

 private:
  bucket_core() = default;

  [[nodiscard]] i128 refilled(std::int64_t t) const noexcept {
    if (t <= last_) return balance_;
    const i128 add = static_cast<i128>(static_cast<std::uint64_t>(t - last_)) * rate_;
    // Compare before adding: add can be large after a long idle period.
    if (balance_ >= cap_) return balance_;
    return add >= cap_ - balance_ ? cap_ : balance_ + add;
  }
  // ceil(deficit / rate) nanoseconds; deficit > 0.
  [[nodiscard]] std::int64_t wait_for(i128 deficit) const noexcept {
    if (deficit <= static_cast<i128>(UINT64_MAX)) {
      const auto d = static_cast<std::uint64_t>(deficit);
      return static_cast<std::int64_t>(d / rate_ + (d % rate_ != 0 ? 1 : 0));
    }
    return static_cast<std::int64_t>(deficit / rate_ + (deficit % rate_ != 0 ? 1 : 0));
  }

  i128 balance_ = 0;   // nano-units; negative = debt
  i128 capacity_ = 0;  // burst x 10^9
  i128 cap_ = 0;       // capacity_ + less than one nanosecond's refill (see top)
  std::uint64_t rate_ = 1;
  std::uint64_t burst_ = 1;
  std::uint64_t one_time_left_ = 0;
  std::int64_t last_ = 0;  // ns; may be ahead of "now" after reservations
};

// A bucket's configuration in its units: Amount (bytes, packets, operations)
// and Rate (bytes_per_second, ...). An unlimited rate means no bucket.
template <class Amount, class Rate>
struct bucket_spec {
  limit<Rate> rate = unlimited;
  Amount burst{0};           // capacity; must be >= 1 when rate is bounded
  Amount one_time_burst{0};  // spent first, never refilled
  friend bool operator==(const bucket_spec&, const bucket_spec&) = default;
};

// A typed bucket. Absent (no limit) when its spec's rate is unlimited.
template <class Amount, class Rate>
class token_bucket {
 public:
  using spec_type = bucket_spec<Amount, Rate>;

  [[nodiscard]] static result<token_bucket> make(const spec_type& s, mono_time start, std::string_view what) {
    token_bucket b;
    if (s.rate.is_unlimited()) return b;
    auto core = bucket_core::make(s.rate.value().count(), s.burst.count(), s.one_time_burst.count(), start, what);
    if (!core) return fail(std::move(core.error()));
    b.core_ = *core;
    return b;
  }

  [[nodiscard]] bool limited() const noexcept { return core_.has_value(); }
  [[nodiscard]] std::int64_t earliest_ns(std::int64_t now, Amount cost) const noexcept {
    return core_ ? core_->earliest_ns(now, cost.count()) : now;
  }
  void commit_ns(std::int64_t t, Amount cost) noexcept {
    if (core_) core_->commit_ns(t, cost.count());
  }
  [[nodiscard]] nanoseconds try_admit(mono_time now, Amount cost) noexcept {
    return core_ ? core_->try_admit(now, cost.count()) : nanoseconds{0};
  }
  [[nodiscard]] const std::optional<bucket_core>& core() const noexcept { return core_; }

 private:
  std::optional<bucket_core> core_;
};

using byte_bucket = token_bucket<bytes, bytes_per_second>;
using packet_bucket = token_bucket<packets, packets_per_second>;
using op_bucket = token_bucket<operations, ops_per_second>;

// Two buckets that a request passes together, as a card's rate limiter: one
// counts requests (packets or operations, each request costs 1), one counts
// bytes. A request is admitted when both admit it and takes from both at the
// same instant, or from neither.
template <class Count, class CountRate>
class dual_limiter {
 public:
  dual_limiter() = default;
  dual_limiter(byte_bucket b, token_bucket<Count, CountRate> c) : bytes_(std::move(b)), count_(std::move(c)) {}

  [[nodiscard]] bool limited() const noexcept { return bytes_.limited() || count_.limited(); }

  [[nodiscard]] std::int64_t earliest_ns(std::int64_t now, bytes size) const noexcept {
    const std::int64_t a = bytes_.earliest_ns(now, size);
    const std::int64_t b = count_.earliest_ns(now, Count{1});
    return a > b ? a : b;
  }
  void commit_ns(std::int64_t t, bytes size) noexcept {
    bytes_.commit_ns(t, size);
    count_.commit_ns(t, Count{1});
  }
  // 0 when admitted now; else the nanoseconds to wait (nothing taken).
  [[nodiscard]] std::int64_t try_admit_ns(std::int64_t now, bytes size) noexcept {
    const std::int64_t e = earliest_ns(now, size);
    if (e != now) return e - now;
    commit_ns(now, size);
    return 0;
  }

  [[nodiscard]] const byte_bucket& byte_side() const noexcept { return bytes_; }
  [[nodiscard]] const token_bucket<Count, CountRate>& count_side() const noexcept { return count_; }

 private:
  byte_bucket bytes_;
  token_bucket<Count, CountRate> count_;
};

}  // namespace bulkhead::offload
