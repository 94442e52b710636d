// bulkhead/colocation/be_capacity.hpp: how much CPU and memory offline
// (BE) work may be given on a host, and why.
//
// Koordinator's batch-resource formulas (its slo-controller "batchresource"
// plugin; facts in ANCHORS.md), per resource:
//   safety_margin = ceil(capacity x (100 - reclaim_threshold) / 100)
//   usage:           batch = capacity - safety_margin - max(system_used, system_reserved) - sum(HP counted)
//                    HP counted = used (request when no sample yet); LSE cpu: max(request, used)
//   request:         batch = capacity - safety_margin - system_reserved - sum(HP request)
//   maxUsageRequest: batch = capacity - safety_margin - max(system_used, system_reserved)
//                            - sum(max(HP request, HP used))
//   batch = max(0, ...), then min(batch, floor(capacity x fraction)) inside a peak window.
// HP ("high priority") is every class but BE. LSE counts at least its request
// because its CPUs are exclusive: what it leaves idle cannot be lent.
// The margin rounds up so the result never exceeds the exact formula.
// Per NUMA cell (node_load::cells): an instance bound to a cell counts there;
// an unbound one and the system terms are split evenly over the cells,
// rounded up (conservative). The explanation lists the top_contributors
// largest HP instances (ties in input order).
//
// Every figure of the formula is in the explanation, so "why did batch
// capacity drop" is answered by explain_change(before, after).
// All arithmetic is integer: 128-bit signed intermediates, no floating point.
//
// Thread-safety: pure functions over values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/colocation/peak_window.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/ledger/rational.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::colocation {

enum class be_policy : std::uint8_t { usage, request, max_usage_request };

}  // namespace bulkhead::colocation

namespace bulkhead {
template <>
struct enum_names<colocation::be_policy> {
  static constexpr std::array values{
      std::pair{colocation::be_policy::usage, std::string_view{"usage"}},
      std::pair{colocation::be_policy::request, std::string_view{"request"}},
      std::pair{colocation::be_policy::max_usage_request, std::string_view{"maxUsageRequest"}},
  };
  static constexpr std::string_view what = "batch policy";
};
}  // namespace bulkhead

namespace bulkhead::colocation {

// One co-located instance: what it asked for and what it used last interval.
struct instance_load {
  bulkhead::uuid uuid;
  qos_class qos = qos_class::LS;
  std::optional<std::uint32_t> cell;  // bound NUMA cell; none: spread over all
  millicores cpu_request{0};
  std::optional<millicores> cpu_used;  // none: no sample yet
  bytes memory_request{0};
  std::optional<bytes> memory_used;
};

struct cell_capacity {
  std::uint32_t id = 0;
  millicores cpu{0};
  bytes memory{0};
};

struct node_load {
  millicores cpu_capacity{0};
  bytes memory_capacity{0};
  millicores system_cpu_used{0};      // host processes outside any instance
  millicores system_cpu_reserved{0};  // what the operator keeps for them
  bytes system_memory_used{0};
  bytes system_memory_reserved{0};
  std::vector<instance_load> instances;
  std::vector<cell_capacity> cells;  // empty: no per-cell figures
};

struct be_config {
  be_policy cpu_policy = be_policy::usage;
  be_policy memory_policy = be_policy::usage;
  percent cpu_reclaim_threshold{60};     // Koordinator's default
  percent memory_reclaim_threshold{65};  // Koordinator's default
  std::size_t top_contributors = 10;     // HP instances listed in an explanation
};

template <class Q>
struct be_contributor {
  bulkhead::uuid uuid;
  qos_class qos = qos_class::LS;
  Q counted{0};  // what the policy counted for it
  Q request{0};
  std::optional<Q> used;
  friend bool operator==(const be_contributor&, const be_contributor&) = default;
};

// Each term of the formula for one resource (on the host or one cell).
template <class Q>
struct be_explanation {
  resource_kind resource = resource_kind::cpu;
  be_policy policy = be_policy::usage;
  std::optional<std::uint32_t> cell;
  Q capacity{0};
  percent reclaim_threshold{0};
  Q safety_margin{0};
  Q system_used{0};
  Q system_reserved{0};
  Q system_term{0};  // what the policy subtracted for the system
  Q hp_term{0};      // sum of what the policy counted for HP instances
  Q hp_used{0};      // sum of HP usage samples (informational)
  Q hp_request{0};   // sum of HP requests (informational)
  std::uint32_t hp_instances = 0;
  std::uint32_t hp_without_sample = 0;  // counted at request
  std::uint32_t lse_raised_to_request = 0;
  Q formula{0};   // max(0, capacity - safety_margin - system_term - hp_term)
  Q deficit{0};   // how far below 0 the formula went
  std::optional<window_occurrence> window;
  std::optional<Q> window_cap;  // floor(capacity x window fraction)
  Q be{0};                      // the answer, BE (batch) capacity: min(formula, window_cap)
  std::vector<be_contributor<Q>> top;  // largest counted first
};

struct be_report {
  be_explanation<millicores> cpu;
  be_explanation<bytes> memory;
  std::vector<be_explanation<millicores>> cpu_cells;
  std::vector<be_explanation<bytes>> memory_cells;
};

// What moved between two explanations of the same resource.
template <class Q>
struct be_change {
  resource_kind resource = resource_kind::cpu;
  Q before{0};
  Q after{0};
  // Each term before and after; for capacity a rise raises batch, for the
  // others a rise lowers it.
  struct term {
    std::string name;  // capacity, safety_margin, system_term, hp_term, window_cap
    Q before{0};
    Q after{0};
    bool raises_be = false;
  };
  std::vector<term> terms;
  std::string main_cause;  // the term whose move lowered batch most ("" when batch did not drop)
  // HP instances whose counted amount rose (from the explanations' top
  // lists; an instance absent from `before`'s list counts as 0 there).
  struct growth {
    bulkhead::uuid uuid;
    qos_class qos = qos_class::LS;
    Q before{0};
    Q after{0};
  };
  std::vector<growth> grew;
};

namespace detail {

__extension__ using i128 = __int128;  // signed 128-bit intermediates (GCC and Clang)

// What the policy counts for one HP instance.
template <class Q>
inline Q counted_for(be_policy p, resource_kind r, qos_class qos, Q request, const std::optional<Q>& used,
                     bool& lse_raised) {
  lse_raised = false;
  const Q u = used.value_or(request);
  switch (p) {
    case be_policy::usage:
      if (r == resource_kind::cpu && qos == qos_class::LSE && used && *used < request) {
        lse_raised = true;
        return request;
      }
      return u;
    case be_policy::request: return request;
    case be_policy::max_usage_request: return std::max(request, u);
  }
  return u;
}

inline std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
inline std::uint64_t share(std::uint64_t v, std::uint64_t div) { return div == 1 ? v : ceil_div(v, div); }

template <class Q>
inline Q clamp_u64(u128 v) {
  return Q{v > static_cast<u128>(UINT64_MAX) ? UINT64_MAX : static_cast<std::uint64_t>(v)};
}

// The sums of one resource in one scope (the host or one cell), and its
// largest contributors (counted, instance index), largest first; ties keep
// input order.
struct scope_sums {
  u128 counted = 0, used = 0, request = 0;
  std::uint32_t n = 0, no_sample = 0, raised = 0;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> top;

  void add(std::uint64_t c, std::uint64_t rq, const std::optional<std::uint64_t>& us, bool lse_raised,
           std::uint32_t index, std::size_t top_n) {
    counted += c;
    request += rq;
    if (us) used += *us;
    ++n;
    no_sample += us ? 0 : 1;
    raised += lse_raised ? 1 : 0;
    if (top_n == 0) return;
    if (top.size() == top_n && c <= top.back().first) return;
    auto it = top.end();
    while (it != top.begin() && (it - 1)->first < c) --it;
    top.insert(it, {c, index});
    if (top.size() > top_n) top.pop_back();
  }
};

// Adds one instance's share to a scope.
template <class Q, class Req, class Used>
inline void add_instance(scope_sums& s, const instance_load& in, std::uint32_t index, std::uint64_t div, resource_kind r,
                         be_policy policy, Req req_of, Used used_of, std::size_t top_n) {
  const Q rq{share(req_of(in).count(), div)};
  std::optional<Q> us;
  if (const auto u = used_of(in)) us = Q{share(u->count(), div)};
  bool raised = false;
  const Q c = counted_for<Q>(policy, r, in.qos, rq, us, raised);
  s.add(c.count(), rq.count(), us ? std::optional<std::uint64_t>{us->count()} : std::nullopt, raised, index, top_n);
}

// Every term of the formula for one resource in one scope.
template <class Q, class Req, class Used>
inline be_explanation<Q> finish(const scope_sums& s, resource_kind r, be_policy policy, percent threshold,
                                   Q capacity, Q sys_used, Q sys_reserved, std::optional<std::uint32_t> cell,
                                   std::uint64_t ncells, const std::vector<instance_load>& instances, Req req_of,
                                   Used used_of, const std::optional<window_occurrence>& window) {
  be_explanation<Q> e;
  e.resource = r;
  e.policy = policy;
  e.cell = cell;
  e.capacity = capacity;
  e.reclaim_threshold = threshold;
  const std::uint64_t keep = threshold.count() >= 100 ? 0 : 100 - threshold.count();
  e.safety_margin = Q{bulkhead::detail::muldiv_ceil(capacity.count(), keep, 100).value_or(capacity.count())};
  e.system_used = sys_used;
  e.system_reserved = sys_reserved;
  e.system_term = policy == be_policy::request ? sys_reserved : std::max(sys_used, sys_reserved);
  e.hp_term = clamp_u64<Q>(s.counted);
  e.hp_used = clamp_u64<Q>(s.used);
  e.hp_request = clamp_u64<Q>(s.request);
  e.hp_instances = s.n;
  e.hp_without_sample = s.no_sample;
  e.lse_raised_to_request = s.raised;
  const i128 f = static_cast<i128>(capacity.count()) - static_cast<i128>(e.safety_margin.count()) -
                 static_cast<i128>(e.system_term.count()) - static_cast<i128>(s.counted);
  e.formula = f > 0 ? Q{static_cast<std::uint64_t>(f)} : Q{0};
  e.deficit = f < 0 ? clamp_u64<Q>(static_cast<u128>(-f)) : Q{0};
  e.be = e.formula;
  if (window) {
    e.window = window;
    e.window_cap = Q{window->be_fraction.apply_floor(capacity.count()).value_or(capacity.count())};
    e.be = std::min(e.be, *e.window_cap);
  }
  e.top.reserve(s.top.size());
  for (const auto& [c, i] : s.top) {
    const auto& in = instances[i];
    const std::uint64_t div = cell && !in.cell ? ncells : 1;
    std::optional<Q> us;
    if (const auto u = used_of(in)) us = Q{share(u->count(), div)};
    e.top.push_back({in.uuid, in.qos, Q{c}, Q{share(req_of(in).count(), div)}, us});
  }
  return e;
}

}  // namespace detail

// Checks the configuration: thresholds at most 100 percent.
[[nodiscard]] inline result<void> validate(const be_config& c) {
  if (c.cpu_reclaim_threshold.count() > 100)
    return fail(errc::out_of_range, "cpu_reclaim_threshold: " + std::to_string(c.cpu_reclaim_threshold.count()) +
                                        " percent is above 100");
  if (c.memory_reclaim_threshold.count() > 100)
    return fail(errc::out_of_range, "memory_reclaim_threshold: " +
                                        std::to_string(c.memory_reclaim_threshold.count()) + " percent is above 100");
  return {};
}

// Batch capacity of a host (and of each cell when load.cells is given),
// under the peak window in force (none outside windows). Precondition:
// validate(config) passed; an instance naming a cell absent from load.cells
// counts on the host only.
[[nodiscard]] inline be_report compute_be_capacity(const node_load& load, const be_config& config,
                                                         const std::optional<window_occurrence>& window = std::nullopt) {
  using namespace detail;
  const auto cpu_req = [](const instance_load& i) { return i.cpu_request; };
  const auto cpu_used = [](const instance_load& i) { return i.cpu_used; };
  const auto mem_req = [](const instance_load& i) { return i.memory_request; };
  const auto mem_used = [](const instance_load& i) { return i.memory_used; };
  const std::size_t ncells = load.cells.size();
  const std::size_t top_n = config.top_contributors;
  // One pass over the instances: index 0 is the host, 1 + c is cell c.
  std::vector<scope_sums> cpu(1 + ncells), mem(1 + ncells);
  for (std::uint32_t i = 0; i < load.instances.size(); ++i) {
    const auto& in = load.instances[i];
    if (in.qos == qos_class::BE) continue;
    const auto add = [&](std::size_t scope, std::uint64_t div) {
      add_instance<millicores>(cpu[scope], in, i, div, resource_kind::cpu, config.cpu_policy, cpu_req, cpu_used, top_n);
      add_instance<bytes>(mem[scope], in, i, div, resource_kind::memory, config.memory_policy, mem_req, mem_used, top_n);
    };
    add(0, 1);
    if (!ncells) continue;
    if (in.cell) {
      for (std::size_t c = 0; c < ncells; ++c)
        if (load.cells[c].id == *in.cell) add(1 + c, 1);
    } else {
      for (std::size_t c = 0; c < ncells; ++c) add(1 + c, ncells);
    }
  }
  be_report rep;
  rep.cpu = finish<millicores>(cpu[0], resource_kind::cpu, config.cpu_policy, config.cpu_reclaim_threshold,
                               load.cpu_capacity, load.system_cpu_used, load.system_cpu_reserved, std::nullopt, 1,
                               load.instances, cpu_req, cpu_used, window);
  rep.memory = finish<bytes>(mem[0], resource_kind::memory, config.memory_policy, config.memory_reclaim_threshold,
                             load.memory_capacity, load.system_memory_used, load.system_memory_reserved, std::nullopt,
                             1, load.instances, mem_req, mem_used, window);
  for (std::size_t c = 0; c < ncells; ++c) {
    const auto& cc = load.cells[c];
    rep.cpu_cells.push_back(finish<millicores>(
        cpu[1 + c], resource_kind::cpu, config.cpu_policy, config.cpu_reclaim_threshold, cc.cpu,
        millicores{ceil_div(load.system_cpu_used.count(), ncells)}, millicores{ceil_div(load.system_cpu_reserved.count(), ncells)},
        cc.id, ncells, load.instances, cpu_req, cpu_used, window));
    rep.memory_cells.push_back(finish<bytes>(
        mem[1 + c], resource_kind::memory, config.memory_policy, config.memory_reclaim_threshold, cc.memory,
        bytes{ceil_div(load.system_memory_used.count(), ncells)}, bytes{ceil_div(load.system_memory_reserved.count(), ncells)},
        cc.id, ncells, load.instances, mem_req, mem_used, window));
  }
  return rep;
}

// "Why did batch capacity drop": every term before and after, the term that
// lowered it most, and the listed HP instances whose counted amount rose.
template <class Q>
[[nodiscard]] be_change<Q> explain_change(const be_explanation<Q>& before, const be_explanation<Q>& after) {
  be_change<Q> c;
  c.resource = after.resource;
  c.before = before.be;
  c.after = after.be;
  using term = typename be_change<Q>::term;
  const Q no_cap_before = before.window_cap.value_or(before.capacity);
  const Q no_cap_after = after.window_cap.value_or(after.capacity);
  c.terms = {
      term{"capacity", before.capacity, after.capacity, true},
      term{"safety_margin", before.safety_margin, after.safety_margin, false},
      term{"system_term", before.system_term, after.system_term, false},
      term{"hp_term", before.hp_term, after.hp_term, false},
      term{"window_cap", no_cap_before, no_cap_after, true},
  };
  if (after.be < before.be) {
    std::uint64_t worst = 0;
    for (const auto& t : c.terms) {
      // How much this term's move alone lowered the result.
      std::uint64_t drop = 0;
      if (t.raises_be && t.after < t.before) drop = t.before.count() - t.after.count();
      if (!t.raises_be && t.after > t.before) drop = t.after.count() - t.before.count();
      if (t.name == "window_cap") {
        // A cap lowers the answer only as far as it binds.
        drop = after.window_cap && *after.window_cap < before.be ? before.be.count() - after.window_cap->count() : 0;
      }
      if (drop > worst) {
        worst = drop;
        c.main_cause = t.name;
      }
    }
  }
  for (const auto& a : after.top) {
    Q was{0};
    for (const auto& b : before.top)
      if (b.uuid == a.uuid) was = b.counted;
    if (a.counted > was) c.grew.push_back({a.uuid, a.qos, was, a.counted});
  }
  return c;
}

}  // namespace bulkhead::colocation
