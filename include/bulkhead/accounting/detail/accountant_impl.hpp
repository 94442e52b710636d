// bulkhead/accounting/detail/accountant_impl.hpp (internal): the accountant's definitions;
// the contract is in bulkhead/accounting/accountant.hpp.
#pragma once

#include "bulkhead/accounting/accountant.hpp"

#include <algorithm>

namespace bulkhead::accounting {

inline result<accountant> accountant::make(std::shared_ptr<journal> j, accountant_options options) {
  if (!j) return fail(errc::invalid_argument, "accountant: no journal (a null std::shared_ptr<journal>)");
  const auto series = j->series();
  accountant a(std::move(j), std::move(options));
  std::map<std::pair<std::string, uuid>, std::pair<std::int64_t, incarnation>> latest;
  for (const auto& s : series) {
    auto h = a.meter_.series(s.key, s.labels);
    if (!h) return fail(std::move(h.error()).in("resuming series " + std::to_string(s.id) + " from the journal"));
    if (a.jid_.size() <= h->index) a.jid_.resize(h->index + 1, -1);
    a.jid_[h->index] = s.id;
    if (s.has_delta) {
      a.meter_.resume(*h, mono_from_ns(s.last_end), wall_from_ns(s.last_wall_end), s.last_end_value);
      auto& l = latest[{s.key.source, s.key.uuid}];
      if (s.last_end >= l.first) l = {s.last_end, s.key.incarnation};
    }
  }
  for (const auto& [k, v] : latest) a.current_[k] = v.second;
  return a;
}

inline result<std::uint32_t> accountant::journal_id(series_handle h) {
  if (jid_.size() <= h.index) jid_.resize(h.index + 1, -1);
  if (jid_[h.index] >= 0) return static_cast<std::uint32_t>(jid_[h.index]);
  auto id = j_->define(meter_.key(h), meter_.labels(h));
  if (!id) return fail(std::move(id.error()));
  jid_[h.index] = *id;
  return *id;
}

inline result<void> accountant::sample(const series_key& key, const instance_labels& labels, mono_time t, wall_time wall,
                                std::uint64_t value, ingest_report& rep) {
  auto h = meter_.series(key, labels);
  if (!h) return fail(std::move(h.error()));
  ++rep.samples;
  const auto r = meter_.observe(*h, t, wall, value);
  switch (r.outcome) {
    case sample_outcome::baseline: ++rep.baselines; return {};
    case sample_outcome::accounted: break;
    default: ++rep.rejected; return {};
  }
  auto id = journal_id(*h);
  if (!id) return fail(std::move(id.error()));
  auto a = j_->append(*id, r.d);
  if (!a) return fail(std::move(a.error()));
  if (a->duplicate) ++rep.duplicates;
  else ++rep.accounted;
  rep.last = a->t;
  return {};
}

inline result<void> accountant::drain_gaps(ingest_report& rep) {
  for (const auto& g : meter_.take_gaps()) {
    auto a = j_->append_gap(g);
    if (!a) return fail(std::move(a.error()));
    ++rep.gaps;
    rep.last = a->t;
  }
  return {};
}

inline result<void> accountant::read_failed(const std::string& source, const uuid& instance, mono_time at,
                                     std::string_view reason) {
  return meter_.read_failed(source + opt_.source_suffix, instance, at, reason);
}

inline result<ingest_report> accountant::ingest(const host_reading& reading) {
  ingest_report rep;
  mono_time newest{};
  for (const auto& ir : reading.instances) {
    const auto& info = ir.info;
    const std::string source = (info.source.empty() ? reading.source : info.source) + opt_.source_suffix;
    const auto key = std::make_pair(source, info.id.uuid);
    auto cur = current_.find(key);
    if (!info.id.incarnation) {  // shut off: no counters; its last incarnation is over
      if (cur != current_.end()) {
        rep.closed += meter_.close_incarnation(source, info.id.uuid, cur->second) ? 1 : 0;
        current_.erase(cur);
      }
      continue;
    }
    if (cur != current_.end() && cur->second != *info.id.incarnation) {
      rep.closed += meter_.close_incarnation(source, info.id.uuid, cur->second) ? 1 : 0;
    }
    current_[key] = *info.id.incarnation;
    ++rep.instances;
    instance_labels labels{info.name, info.tenant, info.qos};
    if (!labels.name.empty() && !validate_label(labels.name, "name")) labels.name.clear();  // labels only
    if (labels.tenant && !validate_label(*labels.tenant, "tenant")) labels.tenant.reset();
    const auto& u = ir.usage;
    newest = std::max(newest, u.read_at);
    series_key k{source, info.id.uuid, *info.id.incarnation, {}, 64, series_kind::usage};
    flatten(u, scratch_);
    for (const auto& c : scratch_) {
      k.counter = c.name;
      k.width_bits = opt_.width ? opt_.width(c.name) : 64;
      if (auto s = sample(k, labels, u.read_at, u.wall, c.value, rep); !s)
        return fail(std::move(s.error()).in("instance " + info.id.uuid.to_string() + " counter " + bulkhead::detail::quote(c.name)));
    }
    if (opt_.allocation) {
      const auto levels = allocation_of(ir.enforced);
      k.kind = series_kind::allocation;
      k.width_bits = 64;
      if (levels.vcpus) {
        k.counter = alloc_vcpus_counter;
        if (auto s = sample(k, labels, u.read_at, u.wall, *levels.vcpus, rep); !s) return fail(std::move(s.error()));
      }
      if (levels.memory) {
        k.counter = alloc_memory_counter;
        if (auto s = sample(k, labels, u.read_at, u.wall, levels.memory->count(), rep); !s) return fail(std::move(s.error()));
      }
    }
  }
  if (!reading.failures.empty()) {
    const mono_time at = newest == mono_time{} ? mono_clock::now() : newest;
    for (const auto& f : reading.failures) {
      if (!f.uuid) continue;
      const std::string source = reading.source + opt_.source_suffix;
      if (auto r = meter_.read_failed(source, *f.uuid, at, f.why.describe()); !r) return fail(std::move(r.error()));
      ++rep.failures;
    }
  }
  if (auto g = drain_gaps(rep); !g) return fail(std::move(g.error()));
  return rep;
}

}  // namespace bulkhead::accounting
