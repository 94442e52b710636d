// bulkhead/accounting/detail/rollup_impl.hpp (internal): the rollup's definitions;
// the contract is in bulkhead/accounting/rollup.hpp.
#pragma once

#include "bulkhead/accounting/rollup.hpp"

#include <algorithm>
#include <limits>

#include "bulkhead/accounting/detail/codec.hpp"

namespace bulkhead::accounting {

namespace detail {
inline constexpr std::int64_t hour_ns = 3600LL * 1'000'000'000LL;

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

inline std::string series_name(const series_key& k) {
  return bulkhead::detail::quote(k.counter) + " of " + k.uuid.to_string() + " incarnation " + std::to_string(k.incarnation.value) +
         " from " + bulkhead::detail::quote(k.source);
}
}  // namespace detail

inline result<u128> parse_u128(std::string_view s, std::string_view what) {
  if (s.empty()) return fail(errc::parse_error, std::string(what) + ": empty where a number was expected");
  u128 v = 0;
  const u128 max = ~u128{0};
  for (char c : s) {
    if (c < '0' || c > '9')
      return fail(errc::parse_error, std::string(what) + ": " + bulkhead::detail::quote(s) + " is not a non-negative integer");
    const unsigned d = static_cast<unsigned>(c - '0');
    if (v > (max - d) / 10) return fail(errc::overflow, std::string(what) + ": " + bulkhead::detail::quote(s) + " does not fit 128 bits");
    v = v * 10 + d;
  }
  return v;
}

inline rollup::rollup(const rollup& o)
    : series_(o.series_),
      series_inst_(o.series_inst_),
      instances_(o.instances_),
      instance_ix_(o.instance_ix_),
      key_ix_(o.key_ix_),
      gaps_(o.gaps_),
      gap_ix_(o.gap_ix_),
      hours_(o.hours_),
      cache_(o.series_.size()) {}

inline rollup& rollup::operator=(const rollup& o) {
  if (this != &o) {
    rollup t(o);
    *this = std::move(t);
  }
  return *this;
}

inline std::string rollup::key_string(const series_key& k) {
  std::string s = k.source;
  s += '\0';
  s.append(reinterpret_cast<const char*>(k.uuid.bytes().data()), 16);
  s.append(reinterpret_cast<const char*>(&k.incarnation.value), sizeof k.incarnation.value);
  s += static_cast<char>(k.width_bits);
  s += static_cast<char>(k.kind);
  s += k.counter;
  return s;
}

inline std::uint32_t rollup::instance_index(const uuid& id) {
  auto it = instance_ix_.find(id);
  if (it != instance_ix_.end()) return it->second;
  const auto i = static_cast<std::uint32_t>(instances_.size());
  instances_.push_back(instance_entry{id, 0, 0});
  instance_ix_.emplace(id, i);
  return i;
}

inline std::optional<std::uint32_t> rollup::find(const series_key& key) const {
  auto it = key_ix_.find(key_string(key));
  if (it == key_ix_.end()) return std::nullopt;
  return it->second;
}

inline result<std::uint32_t> rollup::define(const series_key& key, const instance_labels& labels) {
  auto ks = key_string(key);
  if (auto it = key_ix_.find(ks); it != key_ix_.end()) return it->second;
  if (auto v = validate(key); !v) return fail(std::move(v.error()));
  if (auto v = validate(labels); !v) return fail(std::move(v.error()));
  const auto id = static_cast<std::uint32_t>(series_.size());
  series_info s;
  s.id = id;
  s.key = key;
  s.labels = labels;
  s.cls = classify(key.counter, key.kind);
  series_.push_back(std::move(s));
  const auto inst = instance_index(key.uuid);
  instances_[inst].latest_series = id;
  series_inst_.push_back(inst);
  cache_.emplace_back();
  key_ix_.emplace(std::move(ks), id);
  return id;
}

inline result<delta_check> rollup::check(std::uint32_t id, const delta& d) const {
  if (id >= series_.size()) return fail(errc::not_found, "series number " + std::to_string(id) + " is not defined");
  const auto& s = series_[id];
  const auto start = ns_of(d.start), end = ns_of(d.end);
  if (start < 0) return fail(errc::invalid_argument, "delta of series " + detail::series_name(s.key) + ": negative start time");
  if (end <= start)
    return fail(errc::invalid_argument, "delta of series " + detail::series_name(s.key) + ": end " + std::to_string(end) +
                                            " ns is not after start " + std::to_string(start) + " ns");
  if (d.flags & ~delta_flag::all)
    return fail(errc::invalid_argument, "delta of series " + detail::series_name(s.key) + ": unknown flags " + std::to_string(d.flags));
  if (s.key.kind == series_kind::usage && d.end_value > width_mask(s.key.width_bits))
    return fail(errc::invalid_argument, "delta of series " + detail::series_name(s.key) + ": end value " +
                                            std::to_string(d.end_value) + " is wider than " +
                                            std::to_string(s.key.width_bits) + " bits");
  if (s.key.kind == series_kind::usage && d.amount > width_mask(s.key.width_bits))
    return fail(errc::invalid_argument, "delta of series " + detail::series_name(s.key) + ": amount " +
                                            std::to_string(d.amount) + " is wider than " +
                                            std::to_string(s.key.width_bits) + " bits");
  if (!s.has_delta) return delta_check::fresh;
  if (end <= s.last_end) {
    if (start < s.first_start)
      return fail(errc::conflict, "delta of series " + detail::series_name(s.key) + ": interval (" + std::to_string(start) +
                                      ", " + std::to_string(end) + "] ns lies before the series began at " +
                                      std::to_string(s.first_start) +
                                      " ns; did the monotonic clock restart under the same source?");
    return delta_check::duplicate;
  }
  if (start < s.last_end)
    return fail(errc::conflict, "delta of series " + detail::series_name(s.key) + ": interval (" + std::to_string(start) + ", " +
                                    std::to_string(end) + "] ns overlaps what was accounted up to " +
                                    std::to_string(s.last_end) + " ns");
  return delta_check::fresh;
}

inline void rollup::add_hours(std::uint32_t inst, counter_class cls, series_kind kind, const delta& d) {
  const std::int64_t we = ns_of(d.wall_end);
  const std::uint64_t dur = static_cast<std::uint64_t>(ns_of(d.end) - ns_of(d.start));
  // Wall interval [ws, we); saturate rather than overflow for absurd times.
  std::int64_t ws = 0;
  if (__builtin_sub_overflow(we, static_cast<std::int64_t>(dur), &ws)) ws = std::numeric_limits<std::int64_t>::min();
  const std::int64_t hf = detail::floor_div(ws, detail::hour_ns), hl = detail::floor_div(we - 1, detail::hour_ns);
  const auto bucket = [&](std::int64_t h) -> accounted_totals& { return hours_[hour_key{inst, h * 3600}]; };
  if (hf >= hl) {
    auto& b = bucket(hl);
    b.add(cls, kind == series_kind::usage ? static_cast<u128>(d.amount) : static_cast<u128>(d.amount) * dur);
    return;
  }
  u128 given = 0;
  for (std::int64_t h = hf; h <= hl; ++h) {
    const std::int64_t lo = std::max(ws, h * detail::hour_ns);
    const std::int64_t hi = h == hl ? we : std::min(we, (h + 1) * detail::hour_ns);
    const auto piece = static_cast<std::uint64_t>(hi - lo);
    u128 part;
    if (kind == series_kind::allocation) part = static_cast<u128>(d.amount) * piece;
    else if (h == hl) part = static_cast<u128>(d.amount) - given;
    else part = static_cast<u128>(d.amount) * piece / dur;
    given += part;
    bucket(h).add(cls, part);
  }
}

inline void rollup::apply(std::uint32_t id, const delta& d) {
  auto& s = series_[id];
  const auto start = ns_of(d.start), end = ns_of(d.end);
  const auto dur = static_cast<std::uint64_t>(end - start);
  if (!s.has_delta) s.first_start = start;
  s.has_delta = true;
  s.last_end = end;
  s.last_wall_end = ns_of(d.wall_end);
  s.last_end_value = d.end_value;
  s.total += s.key.kind == series_kind::usage ? static_cast<u128>(d.amount) : static_cast<u128>(d.amount) * dur;
  ++s.deltas;
  const bool reset = d.flags & delta_flag::reset, wrap = d.flags & delta_flag::wrap;
  if (reset) ++s.resets;
  if (wrap) ++s.wraps;
  if (d.flags & delta_flag::after_gap) ++s.gaps_covered;

  const auto inst = series_inst_[id];
  const std::int64_t we = s.last_wall_end;
  std::int64_t ws = 0;
  const bool ws_ok = !__builtin_sub_overflow(we, static_cast<std::int64_t>(dur), &ws);
  auto& c = cache_[id];
  accounted_totals* b;
  const u128 value = s.key.kind == series_kind::usage ? static_cast<u128>(d.amount) : static_cast<u128>(d.amount) * dur;
  if (c.bucket && ws_ok && ws >= c.hour * detail::hour_ns && we <= (c.hour + 1) * detail::hour_ns) {
    // Within the hour of the series' previous delta: the common case.
    b = c.bucket;
    b->add(s.cls, value);
  } else {
    const std::int64_t hl = detail::floor_div(we - 1, detail::hour_ns);
    if (ws_ok && detail::floor_div(ws, detail::hour_ns) == hl) hours_[hour_key{inst, hl * 3600}].add(s.cls, value);
    else add_hours(inst, s.cls, s.key.kind, d);
    b = &hours_[hour_key{inst, hl * 3600}];
    c.hour = hl;
    c.bucket = b;
  }
  ++b->deltas;
  if (reset) ++b->resets;
  if (wrap) ++b->wraps;
}

inline bool operator==(const rollup& a, const rollup& b) {
  if (a.series_ != b.series_ || a.gaps_ != b.gaps_) return false;
  const auto norm = [](const rollup& r) {
    std::map<std::pair<uuid, std::int64_t>, accounted_totals> m;
    for (const auto& [k, t] : r.hours_) m[{r.instances_[k.inst].uuid, k.hour}] = t;
    return m;
  };
  return norm(a) == norm(b);
}

inline bool rollup::has_gap(const gap_record& g) const {
  return gap_ix_.count({g.source, g.uuid, ns_of(g.start), ns_of(g.end)}) != 0;
}

inline bool rollup::apply_gap(const gap_record& g) {
  if (!gap_ix_.emplace(g.source, g.uuid, ns_of(g.start), ns_of(g.end)).second) return false;
  gaps_.push_back(g);
  const auto inst = instance_index(g.uuid);
  ++instances_[inst].gaps;
  ++hours_[hour_key{inst, detail::floor_div(ns_of(g.wall_end) - 1, detail::hour_ns) * 3600}].gaps;
  return true;
}

// --- queries ----------------------------------------------------------------

namespace detail {
inline void add_series(accounted_totals& t, const series_info& s) {
  t.add(s.cls, s.total);
  t.resets += s.resets;
  t.wraps += s.wraps;
  t.deltas += s.deltas;
}
}  // namespace detail

inline std::vector<incarnation_totals> rollup::by_incarnation() const {
  std::map<std::tuple<uuid, std::string, std::uint64_t>, incarnation_totals> m;
  for (const auto& s : series_) {
    auto [it, fresh] = m.try_emplace({s.key.uuid, s.key.source, s.key.incarnation.value});
    auto& t = it->second;
    if (fresh) {
      t.source = s.key.source;
      t.uuid = s.key.uuid;
      t.incarnation = s.key.incarnation;
      t.labels = s.labels;
    }
    detail::add_series(t.totals, s);
    if (s.has_delta) {
      if (t.first_start == 0 || s.first_start < t.first_start) t.first_start = s.first_start;
      t.last_end = std::max(t.last_end, s.last_end);
    }
  }
  for (const auto& g : gaps_)
    for (auto& [k, t] : m)
      if (t.uuid == g.uuid && t.source == g.source && t.last_end != 0 && ns_of(g.end) > t.first_start &&
          ns_of(g.start) < t.last_end)
        ++t.totals.gaps;
  std::vector<incarnation_totals> out;
  out.reserve(m.size());
  for (auto& [k, t] : m) out.push_back(std::move(t));
  return out;
}

inline std::vector<instance_totals> rollup::by_instance() const {
  std::vector<instance_totals> out(instances_.size());
  std::vector<std::set<std::pair<std::string, std::uint64_t>>> runs(instances_.size());
  for (std::size_t i = 0; i < instances_.size(); ++i) {
    out[i].uuid = instances_[i].uuid;
    if (!series_.empty() && series_inst_[instances_[i].latest_series] == i)
      out[i].labels = series_[instances_[i].latest_series].labels;
    out[i].totals.gaps = instances_[i].gaps;
  }
  for (const auto& s : series_) {
    const auto i = series_inst_[s.id];
    detail::add_series(out[i].totals, s);
    runs[i].emplace(s.key.source, s.key.incarnation.value);
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].incarnations = runs[i].size();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.uuid < b.uuid; });
  return out;
}

inline std::optional<instance_totals> rollup::instance(const uuid& id) const {
  for (auto& t : by_instance())
    if (t.uuid == id) return t;
  return std::nullopt;
}

inline std::vector<tenant_totals> rollup::by_tenant() const {
  std::map<std::optional<std::string>, accounted_totals> m;
  for (const auto& s : series_) detail::add_series(m[s.labels.tenant], s);
  for (const auto& i : by_instance())
    if (i.totals.gaps) m[i.labels.tenant].gaps += i.totals.gaps;
  std::vector<tenant_totals> out;
  for (auto& [k, t] : m) out.push_back(tenant_totals{k, t});
  return out;
}

inline std::vector<qos_totals> rollup::by_qos() const {
  std::map<std::optional<qos_class>, accounted_totals> m;
  for (const auto& s : series_) detail::add_series(m[s.labels.qos], s);
  for (const auto& i : by_instance())
    if (i.totals.gaps) m[i.labels.qos].gaps += i.totals.gaps;
  std::vector<qos_totals> out;
  for (auto& [k, t] : m) out.push_back(qos_totals{k, t});
  return out;
}

inline std::vector<hour_totals> rollup::by_hour() const {
  std::map<std::int64_t, accounted_totals> m;
  for (const auto& [k, t] : hours_) m[k.hour] += t;
  std::vector<hour_totals> out;
  for (auto& [h, t] : m) out.push_back(hour_totals{h, t});
  return out;
}

inline std::vector<hour_totals> rollup::by_instance_hour(const uuid& id) const {
  std::vector<hour_totals> out;
  auto it = instance_ix_.find(id);
  if (it == instance_ix_.end()) return out;
  for (auto b = hours_.lower_bound(hour_key{it->second, std::numeric_limits<std::int64_t>::min()});
       b != hours_.end() && b->first.inst == it->second; ++b)
    out.push_back(hour_totals{b->first.hour, b->second});
  return out;
}

inline std::map<std::string, u128> rollup::by_counter(const uuid& id) const {
  std::map<std::string, u128> m;
  for (const auto& s : series_)
    if (s.key.uuid == id) m[s.key.counter] += s.total;
  return m;
}

inline accounted_totals rollup::total() const {
  accounted_totals t;
  for (const auto& s : series_) detail::add_series(t, s);
  t.gaps = gaps_.size();
  return t;
}

// --- checkpoint body --------------------------------------------------------

namespace detail {
inline void checkpoint_put_totals(detail::writer& w, const accounted_totals& t) {
  for (u128 v : {t.cpu_time_ns, t.disk_read_bytes, t.disk_write_bytes, t.net_rx_bytes, t.net_tx_bytes,
                 t.vcpu_reserved_ns, t.memory_reserved_byte_ns})
    w.u128v(v);
  for (std::uint64_t v : {t.resets, t.wraps, t.gaps, t.deltas}) w.var(v);
}
inline void checkpoint_get_totals(detail::reader& r, accounted_totals& t) {
  for (u128* v : {&t.cpu_time_ns, &t.disk_read_bytes, &t.disk_write_bytes, &t.net_rx_bytes, &t.net_tx_bytes,
                  &t.vcpu_reserved_ns, &t.memory_reserved_byte_ns})
    *v = r.u128v();
  for (std::uint64_t* v : {&t.resets, &t.wraps, &t.gaps, &t.deltas}) *v = r.var();
}
inline void checkpoint_put_uuid(detail::writer& w, const uuid& u) { w.raw(u.bytes().data(), 16); }
inline uuid checkpoint_get_uuid(detail::reader& r) {
  std::array<std::uint8_t, 16> b{};
  r.raw(b.data(), 16);
  return uuid{b};
}
}  // namespace detail

inline void rollup::serialize(std::string& out) const {
  detail::writer w{out};
  w.var(series_.size());
  for (const auto& s : series_) {
    w.str(s.key.source);
    checkpoint_put_uuid(w, s.key.uuid);
    w.var(s.key.incarnation.value);
    w.str(s.key.counter);
    w.u8(s.key.width_bits);
    w.u8(static_cast<std::uint8_t>(s.key.kind));
    w.str(s.labels.name);
    w.u8(s.labels.tenant ? 1 : 0);
    if (s.labels.tenant) w.str(*s.labels.tenant);
    w.u8(s.labels.qos ? static_cast<std::uint8_t>(1 + static_cast<int>(*s.labels.qos)) : 0);
    w.u8(s.has_delta ? 1 : 0);
    w.svar(s.first_start);
    w.svar(s.last_end);
    w.svar(s.last_wall_end);
    w.var(s.last_end_value);
    w.u128v(s.total);
    w.var(s.deltas);
    w.var(s.resets);
    w.var(s.wraps);
    w.var(s.gaps_covered);
  }
  w.var(gaps_.size());
  for (const auto& g : gaps_) {
    w.str(g.source);
    checkpoint_put_uuid(w, g.uuid);
    w.svar(ns_of(g.start));
    w.svar(ns_of(g.end));
    w.svar(ns_of(g.wall_end));
    w.var(g.failures);
    w.str(g.reason);
  }
  w.var(hours_.size());
  for (const auto& [k, t] : hours_) {
    checkpoint_put_uuid(w, instances_[k.inst].uuid);
    w.svar(k.hour);
    checkpoint_put_totals(w, t);
  }
}

inline result<rollup> rollup::parse(std::string_view in) {
  detail::reader r{in.data(), in.data() + in.size()};
  rollup out;
  const auto bad = [](std::string what) { return fail(errc::corrupt, "checkpoint body: " + what); };
  const auto n = r.var();
  if (!r.ok || n > in.size()) return bad("bad series count");
  for (std::uint64_t i = 0; i < n; ++i) {
    series_key k;
    instance_labels l;
    k.source = r.str(max_label_bytes);
    k.uuid = checkpoint_get_uuid(r);
    k.incarnation.value = r.var();
    k.counter = r.str(max_label_bytes);
    k.width_bits = r.u8();
    k.kind = static_cast<series_kind>(r.u8());
    l.name = r.str(max_label_bytes);
    if (r.u8()) l.tenant = std::string(r.str(max_label_bytes));
    if (auto q = r.u8(); q) {
      if (q > enum_names<qos_class>::values.size()) return bad("series " + std::to_string(i) + ": bad qos class");
      l.qos = static_cast<qos_class>(q - 1);
    }
    if (!r.ok) return bad("series " + std::to_string(i) + " is truncated");
    auto id = out.define(k, l);
    if (!id) return bad("series " + std::to_string(i) + ": " + id.error().describe());
    if (*id != i) return bad("series " + std::to_string(i) + " is defined twice");
    auto& s = out.series_[*id];
    s.has_delta = r.u8() != 0;
    s.first_start = r.svar();
    s.last_end = r.svar();
    s.last_wall_end = r.svar();
    s.last_end_value = r.var();
    s.total = r.u128v();
    s.deltas = r.var();
    s.resets = r.var();
    s.wraps = r.var();
    s.gaps_covered = r.var();
    if (!r.ok) return bad("series " + std::to_string(i) + " is truncated");
  }
  const auto ng = r.var();
  if (!r.ok || ng > in.size()) return bad("bad gap count");
  for (std::uint64_t i = 0; i < ng; ++i) {
    gap_record g;
    g.source = r.str(max_label_bytes);
    g.uuid = checkpoint_get_uuid(r);
    g.start = mono_from_ns(r.svar());
    g.end = mono_from_ns(r.svar());
    g.wall_end = wall_from_ns(r.svar());
    g.failures = r.var();
    g.reason = r.str(max_reason_bytes);
    if (!r.ok) return bad("gap " + std::to_string(i) + " is truncated");
    // apply_gap also counts the gap in its hour; the hours below replace them.
    out.apply_gap(g);
  }
  out.hours_.clear();
  const auto nh = r.var();
  if (!r.ok || nh > in.size()) return bad("bad hour count");
  for (std::uint64_t i = 0; i < nh; ++i) {
    const auto u = checkpoint_get_uuid(r);
    const auto h = r.svar();
    accounted_totals t;
    checkpoint_get_totals(r, t);
    if (!r.ok) return bad("hour bucket " + std::to_string(i) + " is truncated");
    out.hours_[hour_key{out.instance_index(u), h}] = t;
  }
  if (r.left() != 0) return bad(std::to_string(r.left()) + " unexpected bytes after the hour buckets");
  return out;
}

}  // namespace bulkhead::accounting
