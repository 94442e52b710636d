// bulkhead/accounting/detail/meter_impl.hpp (internal): the meter's definitions;
// the contract is in bulkhead/accounting/meter.hpp.
#pragma once

#include "bulkhead/accounting/meter.hpp"

#include <algorithm>
#include <limits>

namespace bulkhead::accounting {

namespace detail {
inline constexpr std::int64_t no_time = std::numeric_limits<std::int64_t>::min();

// The interning key: every field of series_key, unambiguously joined.
inline std::string key_string(const series_key& k) {
  std::string s;
  s.reserve(k.source.size() + k.counter.size() + 40);
  s += k.source;
  s += '\0';
  s.append(reinterpret_cast<const char*>(k.uuid.bytes().data()), 16);
  s.append(reinterpret_cast<const char*>(&k.incarnation.value), sizeof k.incarnation.value);
  s += static_cast<char>(k.width_bits);
  s += static_cast<char>(k.kind);
  s += k.counter;
  return s;
}
inline std::string inst_string(const std::string& source, const uuid& u) {
  std::string s = source;
  s += '\0';
  s.append(reinterpret_cast<const char*>(u.bytes().data()), 16);
  return s;
}

struct series_state {
  std::int64_t last_t = no_time;  // ns; no_time before the first sample
  std::int64_t last_wall = 0;
  std::uint64_t last_value = 0;
  std::uint64_t mask = ~std::uint64_t{0};
  std::uint32_t inst = 0;
  series_kind kind = series_kind::usage;
  bool closed = false;
  series_totals totals;
};

struct instance_state {
  std::string source;
  uuid id;
  std::int64_t last_good = no_time;
  std::int64_t last_failure = no_time;
  bool gap_open = false;
  gap_record gap;  // while gap_open
  std::vector<std::uint32_t> series;
};

}  // namespace detail

struct meter::impl {
  std::vector<detail::series_state> series;
  std::vector<series_key> keys;
  std::vector<instance_labels> labels;
  std::unordered_map<std::string, std::uint32_t> index;
  std::vector<detail::instance_state> instances;
  std::unordered_map<std::string, std::uint32_t> inst_index;
  std::vector<gap_record> closed_gaps;

  std::uint32_t instance_slot(const std::string& source, const uuid& u) {
    auto k = detail::inst_string(source, u);
    auto it = inst_index.find(k);
    if (it != inst_index.end()) return it->second;
    const auto i = static_cast<std::uint32_t>(instances.size());
    instances.push_back(detail::instance_state{});
    instances.back().source = source;
    instances.back().id = u;
    inst_index.emplace(std::move(k), i);
    return i;
  }
};

inline meter::meter() : p_(std::make_unique<impl>()) {}
inline meter::~meter() = default;
inline meter::meter(meter&&) noexcept = default;
inline meter& meter::operator=(meter&&) noexcept = default;

inline result<series_handle> meter::series(const series_key& key, const instance_labels& labels) {
  auto k = detail::key_string(key);
  if (auto it = p_->index.find(k); it != p_->index.end()) return series_handle{it->second};
  if (auto v = validate(key); !v) return fail(std::move(v.error()));
  if (auto v = validate(labels); !v) return fail(std::move(v.error()));
  if (p_->series.size() >= std::numeric_limits<std::uint32_t>::max())
    return fail(errc::out_of_range, "meter: too many series");
  const auto h = static_cast<std::uint32_t>(p_->series.size());
  detail::series_state s;
  s.mask = width_mask(key.width_bits);
  s.kind = key.kind;
  s.inst = p_->instance_slot(key.source, key.uuid);
  p_->instances[s.inst].series.push_back(h);
  p_->series.push_back(s);
  p_->keys.push_back(key);
  p_->labels.push_back(labels);
  p_->index.emplace(std::move(k), h);
  return series_handle{h};
}

inline std::optional<series_handle> meter::find(const series_key& key) const {
  auto it = p_->index.find(detail::key_string(key));
  if (it == p_->index.end()) return std::nullopt;
  return series_handle{it->second};
}

inline sample_result meter::observe(series_handle h, mono_time t, wall_time wall, std::uint64_t raw) {
  ++stats_.samples;
  auto& s = p_->series[h.index];
  sample_result r;
  if (s.closed) [[unlikely]] {
    ++stats_.closed;
    ++s.totals.rejected;
    r.outcome = sample_outcome::closed;
    return r;
  }
  if (s.kind == series_kind::usage && raw > s.mask) [[unlikely]] {
    ++stats_.out_of_range;
    ++s.totals.rejected;
    r.outcome = sample_outcome::out_of_range;
    return r;
  }
  const std::int64_t tn = ns_of(t);
  auto& inst = p_->instances[s.inst];
  if (s.last_t == detail::no_time) [[unlikely]] {
    s.last_t = tn;
    s.last_wall = ns_of(wall);
    s.last_value = raw;
    ++stats_.baselines;
    r.outcome = sample_outcome::baseline;
  } else if (tn <= s.last_t) [[unlikely]] {
    ++stats_.out_of_order;
    ++s.totals.rejected;
    r.outcome = sample_outcome::out_of_order;
    return r;
  } else {
    std::uint64_t amount;
    std::uint8_t flags = 0;
    if (s.kind == series_kind::usage) {
      if (raw >= s.last_value) [[likely]] {
        amount = raw - s.last_value;
      } else if (s.last_value - raw > (s.mask >> 1)) {
        amount = (raw - s.last_value) & s.mask;
        flags |= delta_flag::wrap;
        ++s.totals.wraps;
        ++stats_.wraps;
      } else {
        amount = raw;
        flags |= delta_flag::reset;
        ++s.totals.resets;
        ++stats_.resets;
      }
      s.totals.amount += amount;
    } else {
      amount = s.last_value;  // the level held since the previous sample
      s.totals.amount += static_cast<u128>(amount) * static_cast<std::uint64_t>(tn - s.last_t);
    }
    if (inst.last_failure > s.last_t) [[unlikely]] {
      flags |= delta_flag::after_gap;
      ++s.totals.gaps_covered;
    }
    r.outcome = sample_outcome::accounted;
    r.d.start = mono_from_ns(s.last_t);
    r.d.end = t;
    r.d.wall_end = wall;
    r.d.amount = amount;
    r.d.end_value = raw;
    r.d.flags = flags;
    ++s.totals.deltas;
    ++stats_.accounted;
    s.last_t = tn;
    s.last_wall = ns_of(wall);
    s.last_value = raw;
  }
  if (tn > inst.last_good) inst.last_good = tn;
  if (inst.gap_open && tn >= ns_of(inst.gap.start) && tn >= inst.last_failure) [[unlikely]]
    close_gap(s.inst, tn, wall);
  return r;
}

inline void meter::close_gap(std::uint32_t i, std::int64_t t, wall_time wall) {
  auto& inst = p_->instances[i];
  inst.gap.end = mono_from_ns(t);
  inst.gap.wall_end = wall;
  p_->closed_gaps.push_back(std::move(inst.gap));
  inst.gap = gap_record{};
  inst.gap_open = false;
  ++stats_.gaps;
}

inline result<void> meter::read_failed(const std::string& source, const uuid& instance, mono_time at,
                                std::string_view reason) {
  if (auto v = validate_label(source, "gap source"); !v) return v;
  std::string why = reason.empty() ? std::string("unspecified") : std::string(reason.substr(0, max_reason_bytes));
  for (auto& c : why)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (!bulkhead::detail::is_utf8(why)) why = "reason not valid UTF-8";
  ++stats_.failed_reads;
  const auto i = p_->instance_slot(source, instance);
  auto& inst = p_->instances[i];
  const std::int64_t an = ns_of(at);
  if (an > inst.last_failure) inst.last_failure = an;
  if (!inst.gap_open) {
    inst.gap_open = true;
    inst.gap.source = source;
    inst.gap.uuid = instance;
    inst.gap.start = mono_from_ns(inst.last_good == detail::no_time || inst.last_good > an ? an : inst.last_good);
    inst.gap.failures = 0;
    inst.gap.reason = std::move(why);
  }
  ++inst.gap.failures;
  return {};
}

inline std::size_t meter::close_incarnation(const std::string& source, const uuid& instance, incarnation run) {
  auto it = p_->inst_index.find(detail::inst_string(source, instance));
  if (it == p_->inst_index.end()) return 0;
  std::size_t n = 0;
  for (auto h : p_->instances[it->second].series) {
    auto& s = p_->series[h];
    if (!s.closed && p_->keys[h].incarnation == run) {
      s.closed = true;
      s.totals.closed = true;
      ++n;
    }
  }
  return n;
}

inline void meter::resume(series_handle h, mono_time last, wall_time last_wall, std::uint64_t last_value) {
  auto& s = p_->series[h.index];
  const auto tn = ns_of(last);
  if (s.last_t != detail::no_time && s.last_t >= tn) return;
  s.last_t = tn;
  s.last_wall = ns_of(last_wall);
  s.last_value = s.kind == series_kind::usage ? (last_value & s.mask) : last_value;
  auto& inst = p_->instances[s.inst];
  if (tn > inst.last_good) inst.last_good = tn;
}

inline std::vector<gap_record> meter::take_gaps() {
  std::vector<gap_record> out;
  out.swap(p_->closed_gaps);
  return out;
}

inline bool meter::gap_open(const std::string& source, const uuid& instance) const {
  auto it = p_->inst_index.find(detail::inst_string(source, instance));
  return it != p_->inst_index.end() && p_->instances[it->second].gap_open;
}

inline const series_key& meter::key(series_handle h) const { return p_->keys[h.index]; }
inline const instance_labels& meter::labels(series_handle h) const { return p_->labels[h.index]; }
inline series_totals meter::totals(series_handle h) const { return p_->series[h.index].totals; }
inline std::size_t meter::size() const noexcept { return p_->series.size(); }

}  // namespace bulkhead::accounting
