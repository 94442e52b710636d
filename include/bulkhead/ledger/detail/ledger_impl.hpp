// bulkhead/ledger/detail/ledger_impl.hpp (internal): the ledger's definitions;
// the contract is in bulkhead/ledger/ledger.hpp.
//
// Layout of one host (all guarded by host_state::mu):
//   providers[0]                 the host
//   providers[1 .. ncells]       its NUMA cells, in spec order
//   providers[.. + ncards]       its offload cards
//   providers.back()             the BE (batch) pseudo-provider
//   slots                        every inventory; a slot index never changes
//   records + index              reservations, keyed by instance uuid
// A record remembers exactly which slots it charged, so a later
// set_inventory that adds an inventory never changes what a release gives back.
#pragma once

#include "bulkhead/ledger/ledger.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "bulkhead/model/names.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::ledger {
namespace detail {

inline constexpr std::size_t K = resource_kind_count;
inline constexpr std::int16_t no_slot = -1;
inline constexpr std::uint64_t mc_per_cpu = millicores_per_core;

// The per-host lock. Its critical sections are short (a few hundred
// nanoseconds, no I/O, no waiting), so it spins briefly and then yields the
// CPU instead of sleeping in the kernel: one atomic exchange to take, one
// store to give back. Measured against std::mutex (bench/bench_ledger.cpp,
// BM_lock; docs/BENCHMARKS.md, "The per-host lock"): 7.5 ns against 16 ns
// uncontended in a program with threads, and every ledger operation 5-18%
// cheaper with it; fair enough when the holder is preempted.
class spin_lock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      for (int spins = 0; locked_.load(std::memory_order_relaxed);) {
        if (++spins < 100) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
          spins = 0;
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

struct slot {
  std::uint16_t provider = 0;
  any_inventory inv;
  bool from_pool = false;
  std::uint64_t pinned = 0;
  std::uint64_t used = 0;
  std::uint64_t capacity = 0;
  std::uint64_t generation = 0;
  std::uint64_t touch_epoch = 0;  // the operation that last bumped the generation
  void recompute() {
    // validate() proved the unpinned capacity fits; pinning only lowers it.
    capacity = inventory_capacity(inv.total, inv.reserved, pinned, inv.allocation_ratio).value_or(0);
  }
};

struct tenant_count {
  std::uint32_t tenant;
  std::uint32_t n;
};

struct provider {
  provider_kind kind = provider_kind::host;
  std::uint32_t cell_id = 0;
  std::string card;
  std::string where;
  std::array<std::int16_t, K> slot_of{};
  cpuset cpus;  // cells of a host with a cpu pool
  std::vector<tenant_count> tenants;  // cells and cards; the host counts in tenant_entry::host_refs
  std::optional<std::uint32_t> excl_tenant;
  std::uint32_t excl_count = 0;
  std::uint64_t reservations = 0;

  [[nodiscard]] std::uint32_t count_of(std::uint32_t t) const noexcept {
    for (const auto& c : tenants)
      if (c.tenant == t) return c.n;
    return 0;
  }
  // Some tenant other than t (t may be absent) has a reservation here.
  [[nodiscard]] bool others_than(std::optional<std::uint32_t> t) const noexcept {
    for (const auto& c : tenants)
      if (!t || c.tenant != *t) return true;
    return false;
  }
  void add(std::uint32_t t) {
    ++reservations;
    for (auto& c : tenants)
      if (c.tenant == t) {
        ++c.n;
        return;
      }
    tenants.push_back({t, 1});
  }
  void remove(std::uint32_t t) {
    --reservations;
    for (std::size_t i = 0; i < tenants.size(); ++i)
      if (tenants[i].tenant == t) {
        if (--tenants[i].n == 0) {
          tenants[i] = tenants.back();
          tenants.pop_back();
        }
        return;
      }
  }
};

struct tenant_entry {
  std::string name;
  std::uint32_t host_refs = 0;      // reservations on the host
  std::uint32_t floating_refs = 0;  // of which not bound to a cell
  bool in_use = false;              // the name is interned
};

using charge_slots = std::array<std::int16_t, 3>;

struct record {
  bulkhead::uuid uuid;
  std::uint32_t tenant = 0;
  qos_class qos = qos_class::LS;
  numa_policy policy = numa_policy::none;
  isolation_scope exclusive = isolation_scope::none;
  std::int16_t cell = no_slot;  // provider index, or none
  std::int16_t card = no_slot;
  resource_amounts amounts;
  std::array<charge_slots, K> charged{};  // slots each kind was charged to
  cpuset pinned;                          // LSE/LSR CPU ids
  bool live = false;
};

// Open addressing, linear probing, backward-shift deletion; load <= 1/2.
class consumer_index {
 public:
  consumer_index() : t_(64) {}
  [[nodiscard]] std::optional<std::uint32_t> find(const uuid& k) const noexcept {
    const key w = words(k);
    for (std::size_t i = hash(w) & mask(); t_[i].used; i = (i + 1) & mask())
      if (t_[i].k == w) return t_[i].value;
    return std::nullopt;
  }
  void insert(const uuid& k, std::uint32_t v) {
    if ((n_ + 1) * 2 > t_.size()) grow();
    place(words(k), v);
    ++n_;
  }
  void erase(const uuid& k) noexcept {
    const key w = words(k);
    std::size_t i = hash(w) & mask();
    while (t_[i].used && !(t_[i].k == w)) i = (i + 1) & mask();
    if (!t_[i].used) return;
    --n_;
    std::size_t j = i;
    while (true) {
      j = (j + 1) & mask();
      if (!t_[j].used) break;
      const std::size_t h = hash(t_[j].k) & mask();
      // Move j back to the hole at i unless its home lies cyclically in (i, j].
      const bool stays = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        t_[i] = t_[j];
        i = j;
      }
    }
    t_[i].used = false;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  // The uuid as two words: compared without memcmp.
  struct key {
    std::uint64_t a = 0, b = 0;
    friend bool operator==(const key&, const key&) = default;
  };
  struct entry {
    key k;
    std::uint32_t value = 0;
    bool used = false;
  };
  static key words(const uuid& u) noexcept {
    key w;
    std::memcpy(&w.a, u.bytes().data(), 8);
    std::memcpy(&w.b, u.bytes().data() + 8, 8);
    return w;
  }
  [[nodiscard]] std::size_t mask() const noexcept { return t_.size() - 1; }
  static std::uint64_t hash(const key& w) noexcept {
    std::uint64_t h = (w.a ^ (w.b * 0x9e3779b97f4a7c15ull)) * 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
  }
  void place(const key& w, std::uint32_t v) noexcept {
    std::size_t i = hash(w) & mask();
    while (t_[i].used) i = (i + 1) & mask();
    t_[i] = entry{w, v, true};
  }
  void grow() {
    std::vector<entry> old(t_.size() * 2);
    old.swap(t_);
    for (const auto& e : old)
      if (e.used) place(e.k, e.value);
  }
  std::vector<entry> t_;
  std::size_t n_ = 0;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct host_state {
  mutable spin_lock mu;
  bool removed = false;
  std::string name;
  std::string where;  // "host 'h1'"
  std::vector<provider> providers;
  std::size_t ncells = 0;
  std::size_t ncards = 0;
  std::vector<slot> slots;
  bool has_pool = false;
  cpuset all_cpus, reserved_cpus, lse_cpus, lsr_cpus;
  std::uint16_t cell_only_kinds = 0;  // kinds some cell inventories and the host does not
  std::uint16_t card_kinds = 0;       // kinds some card inventories
  std::vector<tenant_entry> tenants;
  std::unordered_map<std::string, std::uint32_t, string_hash, std::equal_to<>> tenant_ids;
  std::vector<std::uint32_t> free_tenants;
  std::uint32_t idle_tenants = 0;  // interned names with no reservation
  std::string last_tenant;         // a one-entry cache in front of tenant_ids
  std::optional<std::uint32_t> last_tenant_id;
  std::uint32_t host_tenants_present = 0;
  std::uint32_t floating_tenants_present = 0;
  std::uint32_t exclusive_cells = 0;
  std::vector<record> records;
  std::vector<std::uint32_t> free_records;
  consumer_index index;
  std::uint64_t epoch = 0;  // one per mutating operation: a slot's generation moves once per operation

  [[nodiscard]] std::size_t be_provider() const noexcept { return providers.size() - 1; }
  [[nodiscard]] std::size_t first_cell() const noexcept { return 1; }
  [[nodiscard]] std::size_t first_card() const noexcept { return 1 + ncells; }
  [[nodiscard]] std::int16_t slot_at(std::size_t p, resource_kind k) const noexcept {
    return providers[p].slot_of[kind_index(k)];
  }
};


inline std::string where_of(const host_state& h, std::size_t p) { return h.providers[p].where; }

inline std::optional<std::uint32_t> find_tenant(host_state& h, std::string_view name) {
  if (h.last_tenant_id && h.last_tenant == name) return h.last_tenant_id;
  auto it = h.tenant_ids.find(name);
  if (it == h.tenant_ids.end()) return std::nullopt;
  h.last_tenant = name;
  h.last_tenant_id = it->second;
  return it->second;
}

inline std::uint32_t intern_tenant(host_state& h, std::string_view name, std::optional<std::uint32_t> known) {
  if (known) return *known;
  std::uint32_t id = 0;
  if (!h.free_tenants.empty()) {
    id = h.free_tenants.back();
    h.free_tenants.pop_back();
  } else {
    id = static_cast<std::uint32_t>(h.tenants.size());
    h.tenants.emplace_back();
  }
  h.tenants[id] = tenant_entry{std::string(name), 0, 0, true};
  h.tenant_ids.emplace(std::string(name), id);
  ++h.idle_tenants;
  h.last_tenant = name;
  h.last_tenant_id = id;
  return id;
}

// Interned names without reservations are kept for reuse (so a tenant that
// comes and goes does not allocate every time) and swept when they pile up.
inline void sweep_tenants(host_state& h) {
  if (h.idle_tenants <= 256) return;
  h.last_tenant_id.reset();
  for (std::uint32_t id = 0; id < h.tenants.size(); ++id) {
    auto& t = h.tenants[id];
    if (t.in_use && t.host_refs == 0) {
      h.tenant_ids.erase(t.name);
      t = tenant_entry{};
      h.free_tenants.push_back(id);
    }
  }
  h.idle_tenants = 0;
}

// The tenants with reservations on provider p (for the host: every tenant
// with host_refs), quoted and sorted, except one.
inline std::string tenant_list(const host_state& h, const provider& p, std::optional<std::uint32_t> except) {
  std::vector<std::string> names;
  if (p.kind == provider_kind::host) {
    for (std::uint32_t t = 0; t < h.tenants.size(); ++t)
      if (h.tenants[t].host_refs && (!except || t != *except)) names.push_back(bulkhead::detail::quote(h.tenants[t].name));
  }
  for (const auto& c : p.tenants)
    if (!except || c.tenant != *except) names.push_back(bulkhead::detail::quote(h.tenants[c.tenant].name));
  std::sort(names.begin(), names.end());
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

inline std::uint64_t free_of(const slot& s) noexcept { return s.used >= s.capacity ? 0 : s.capacity - s.used; }

inline std::string capacity_line(const slot& s) {
  const auto k = s.inv.kind;
  std::string line = "capacity " + detail::counted(s.capacity, k) + " = (" + std::to_string(s.inv.total) + " total - " +
                     std::to_string(s.inv.reserved) + " reserved";
  if (s.pinned) line += " - " + std::to_string(s.pinned) + " pinned";
  line += ") x " + s.inv.allocation_ratio.to_string() + ", used " + std::to_string(s.used);
  return line;
}

inline error no_fit(const host_state& h, const slot& s, std::uint64_t asked) {
  const auto k = s.inv.kind;
  return error(errc::insufficient_capacity, where_of(h, s.provider) + " " + std::string(to_string(k)) + ": asked " +
                                                detail::counted(asked, k) + ", free " +
                                                detail::counted(free_of(s), k) + " (" + capacity_line(s) + ")");
}

inline bool pinned_class(qos_class q) noexcept { return q == qos_class::LSE || q == qos_class::LSR; }

// What a reservation (or a resize) will do, computed before anything changes.
struct plan {
  std::int16_t cell = no_slot;
  std::int16_t card = no_slot;
  std::array<charge_slots, K> charged{};
  cpuset pin;      // ids to pin (reserve, or resize growth)
  cpuset unpin;    // ids to give back (resize shrink)
  plan() {
    for (auto& c : charged) c.fill(no_slot);
  }
};

// The outcome of one candidate: nullopt = fits; an error with
// insufficient_capacity = try the next candidate; any other code = stop.
using verdict = std::optional<error>;

class planner {
 public:
  planner(const host_state& h, std::span<const std::uint64_t> seen) : h_(h), seen_(seen) {}

  [[nodiscard]] verdict check_seen(std::int16_t s) const {
    if (seen_.empty()) return std::nullopt;
    const auto& sl = h_.slots[static_cast<std::size_t>(s)];
    const auto idx = static_cast<std::size_t>(s);
    if (idx < seen_.size() && seen_[idx] == sl.generation) return std::nullopt;
    const std::string what = where_of(h_, sl.provider) + " " + std::string(to_string(sl.inv.kind)) + " inventory";
    if (idx >= seen_.size())
      return error(errc::conflict, what + " was added after the generations the request saw; re-read and retry");
    return error(errc::conflict, what + ": generation " + std::to_string(seen_[idx]) + " seen, now " +
                                     std::to_string(sl.generation) + "; re-read and retry");
  }

  // Slots a kind is charged to, given the bindings. Empty: nobody offers it.
  [[nodiscard]] charge_slots slots_for(resource_kind k, qos_class q, std::int16_t cell, std::int16_t card) const {
    charge_slots out;
    out.fill(no_slot);
    std::size_t n = 0;
    if (q == qos_class::BE) {
      out[0] = h_.slot_at(h_.be_provider(), k);
      return out;
    }
    if (cell != no_slot) {
      if (auto s = h_.slot_at(static_cast<std::size_t>(cell), k); s != no_slot) out[n++] = s;
    }
    if (card != no_slot) {
      if (auto s = h_.slot_at(static_cast<std::size_t>(card), k); s != no_slot) out[n++] = s;
    }
    if (auto s = h_.slot_at(0, k); s != no_slot) out[n++] = s;
    return out;
  }

  [[nodiscard]] error nobody_offers(resource_kind k, qos_class q, std::int16_t cell, std::int16_t card) const {
    const std::string kn(to_string(k));
    if (q == qos_class::BE)
      return error(errc::insufficient_capacity,
                   h_.where + " has no batch " + kn +
                       " inventory: BE reservations draw on the batch capacity the co-location engine publishes");
    if ((h_.cell_only_kinds >> kind_index(k) & 1u) && cell == no_slot)
      return error(errc::insufficient_capacity, h_.where + ": " + kn + " is inventoried per NUMA cell only");
    if ((h_.card_kinds >> kind_index(k) & 1u) && card == no_slot)
      return error(errc::insufficient_capacity, h_.where + ": " + kn + " is inventoried per offload card only");
    return error(errc::insufficient_capacity, h_.where + " has no " + kn + " inventory");
  }

  // Checks one kind going from `old_n` to `new_n` on its slots.
  [[nodiscard]] verdict check_kind(const charge_slots& cs, std::uint64_t old_n, std::uint64_t new_n) const {
    for (auto s : cs) {
      if (s == no_slot) break;
      const auto& sl = h_.slots[static_cast<std::size_t>(s)];
      if (new_n && !obeys_unit_rules(sl.inv, new_n)) {
        if (auto r = check_unit_rules(sl.inv, new_n, where_of(h_, sl.provider)); !r) return r.error();
      }
      if (new_n == old_n) continue;
      if (auto v = check_seen(s)) return v;
      if (new_n > old_n) {
        const std::uint64_t grow = new_n - old_n;
        const auto after = bulkhead::detail::add_u64(sl.used, grow);
        if (!after || *after > sl.capacity) return no_fit(h_, sl, grow);
      }
    }
    return std::nullopt;
  }

  // Free CPU ids of a cell (or the whole host when cell is none).
  [[nodiscard]] cpuset free_cpus(std::int16_t cell, const cpuset& extra_free) const {
    const cpuset base = cell == no_slot ? h_.all_cpus : h_.providers[static_cast<std::size_t>(cell)].cpus;
    return ((base - h_.reserved_cpus - h_.lse_cpus - h_.lsr_cpus) | (extra_free & base));
  }

  // Picks n CPU ids: from the bound cell, else the first cell that has n
  // free, else the lowest free ids across cells. `prefer` is tried first
  // (the cell of ids a growing reservation already holds).
  [[nodiscard]] std::optional<cpuset> pick_cpus(std::size_t n, std::int16_t cell, std::int16_t prefer) const {
    const auto take = [&](const cpuset& from) {
      cpuset out;
      for (auto id : from.ids()) {
        if (out.size() == n) break;
        out.insert(id);
      }
      return out;
    };
    if (cell != no_slot) {
      auto f = free_cpus(cell, {});
      if (f.size() < n) return std::nullopt;
      return take(f);
    }
    if (prefer != no_slot) {
      auto f = free_cpus(prefer, {});
      if (f.size() >= n) return take(f);
    }
    for (std::size_t c = h_.first_cell(); c < h_.first_cell() + h_.ncells; ++c) {
      auto f = free_cpus(static_cast<std::int16_t>(c), {});
      if (f.size() >= n) return take(f);
    }
    auto f = free_cpus(no_slot, {});
    if (f.size() < n) return std::nullopt;
    return take(f);
  }

  // Pinned millicores each cpu slot would gain (+) or lose (-) from pinning
  // `pin` and unpinning `unpin`, checked against what is used there.
  [[nodiscard]] verdict check_pinning(const cpuset& pin, const cpuset& unpin) const {
    if (pin.empty()) return std::nullopt;
    const auto check_slot = [&](std::int16_t s, std::uint64_t add, std::uint64_t sub) -> verdict {
      if (s == no_slot || add == sub) return std::nullopt;
      if (auto v = check_seen(s)) return v;
      const auto& sl = h_.slots[static_cast<std::size_t>(s)];
      if (add > sub) {
        const std::uint64_t pinned = sl.pinned - sub + add;
        const auto cap = inventory_capacity(sl.inv.total, sl.inv.reserved, pinned, sl.inv.allocation_ratio).value_or(0);
        if (cap < sl.used)
          return error(errc::insufficient_capacity,
                       where_of(h_, sl.provider) + " cpu: pinning " + std::to_string(add - sub) +
                           " millicores of CPU ids would leave the shared pool " + std::to_string(cap) +
                           " millicores, below the " + std::to_string(sl.used) + " millicores LS/SYSTEM already use (" +
                           capacity_line(sl) + ")");
      }
      return std::nullopt;
    };
    if (auto v = check_slot(h_.slot_at(0, resource_kind::cpu), pin.size() * mc_per_cpu, unpin.size() * mc_per_cpu))
      return v;
    for (std::size_t c = h_.first_cell(); c < h_.first_cell() + h_.ncells; ++c) {
      const auto& cp = h_.providers[c].cpus;
      if (auto v = check_slot(h_.slot_at(c, resource_kind::cpu), (pin & cp).size() * mc_per_cpu,
                              (unpin & cp).size() * mc_per_cpu))
        return v;
    }
    return std::nullopt;
  }

 private:
  const host_state& h_;
  std::span<const std::uint64_t> seen_;
};

// Bumps a slot's generation once per operation.
inline void touch(host_state& h, std::int16_t s) {
  auto& sl = h.slots[static_cast<std::size_t>(s)];
  if (sl.touch_epoch != h.epoch) {
    sl.touch_epoch = h.epoch;
    ++sl.generation;
  }
}

inline void apply_pinning(host_state& h, const cpuset& pin, const cpuset& unpin, qos_class q) {
  if (pin.empty() && unpin.empty()) return;
  auto& pool = q == qos_class::LSE ? h.lse_cpus : h.lsr_cpus;
  pool = (pool - unpin) | pin;
  const auto adjust = [&](std::int16_t s, std::uint64_t add, std::uint64_t sub) {
    if (s == no_slot || add == sub) return;
    auto& sl = h.slots[static_cast<std::size_t>(s)];
    sl.pinned = sl.pinned - sub + add;
    sl.recompute();
    touch(h, s);
  };
  adjust(h.slot_at(0, resource_kind::cpu), pin.size() * mc_per_cpu, unpin.size() * mc_per_cpu);
  for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c) {
    const auto& cp = h.providers[c].cpus;
    adjust(h.slot_at(c, resource_kind::cpu), (pin & cp).size() * mc_per_cpu, (unpin & cp).size() * mc_per_cpu);
  }
}

// The cell a set of pinned ids lies in, when they all lie in one.
inline std::int16_t cell_of_ids(const host_state& h, const cpuset& ids) {
  for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c)
    if (!ids.empty() && ids.subset_of(h.providers[c].cpus)) return static_cast<std::int16_t>(c);
  return no_slot;
}

inline reservation_receipt receipt_of(const host_state& h, const record& r) {
  reservation_receipt out;
  out.uuid = r.uuid;
  if (r.cell != no_slot) out.cell = h.providers[static_cast<std::size_t>(r.cell)].cell_id;
  if (r.card != no_slot) out.card = h.providers[static_cast<std::size_t>(r.card)].card;
  out.cpus = r.pinned;
  out.amounts = r.amounts;
  return out;
}

inline reservation_view view_of(const host_state& h, const record& r) {
  reservation_view v;
  v.uuid = r.uuid;
  v.tenant = h.tenants[r.tenant].name;
  v.qos = r.qos;
  v.policy = r.policy;
  v.exclusive = r.exclusive;
  if (r.cell != no_slot) v.cell = h.providers[static_cast<std::size_t>(r.cell)].cell_id;
  if (r.card != no_slot) v.card = h.providers[static_cast<std::size_t>(r.card)].card;
  v.cpus = r.pinned;
  v.amounts = r.amounts;
  return v;
}

inline void rebuild_kind_masks(host_state& h) {
  h.cell_only_kinds = 0;
  h.card_kinds = 0;
  for (std::size_t k = 0; k < K; ++k) {
    const auto bit = static_cast<std::uint16_t>(1u << k);
    bool in_cell = false, in_card = false;
    for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c) in_cell |= h.providers[c].slot_of[k] != no_slot;
    for (std::size_t c = h.first_card(); c < h.first_card() + h.ncards; ++c) in_card |= h.providers[c].slot_of[k] != no_slot;
    if (in_cell && h.providers[0].slot_of[k] == no_slot) h.cell_only_kinds |= bit;
    if (in_card) h.card_kinds |= bit;
  }
}

inline std::int16_t add_slot(host_state& h, std::size_t p, const any_inventory& inv, bool from_pool) {
  slot s;
  s.provider = static_cast<std::uint16_t>(p);
  s.inv = inv;
  s.from_pool = from_pool;
  s.recompute();
  h.slots.push_back(s);
  const auto idx = static_cast<std::int16_t>(h.slots.size() - 1);
  h.providers[p].slot_of[kind_index(inv.kind)] = idx;
  return idx;
}

inline result<void> check_text_name(std::string_view name, std::string_view what) {
  if (auto r = validate_name(name, what); !r) return r;
  return {};
}

}  // namespace detail


inline ledger::ledger() = default;
inline ledger::~ledger() = default;

inline detail::host_state* ledger::live(host_ref h) noexcept { return h.p_; }

namespace detail {
inline std::unexpected<error> no_handle() { return fail(errc::not_found, "empty host handle (host_ref{})"); }
}  // namespace detail

inline result<host_ref> ledger::add_host(const host_spec& spec) {
  if (auto r = detail::check_text_name(spec.name, "host name"); !r) return fail(r.error());
  auto st = std::make_unique<detail::host_state>();
  auto& h = *st;
  h.name = spec.name;
  h.where = "host " + bulkhead::detail::quote(spec.name);
  h.ncells = spec.cells.size();
  h.ncards = spec.cards.size();
  if (h.ncells + h.ncards + 2 > 4096) return fail(errc::out_of_range, h.where + ": more than 4094 cells and cards");
  h.providers.resize(h.ncells + h.ncards + 2);
  for (auto& p : h.providers) p.slot_of.fill(detail::no_slot);
  h.providers[0].kind = provider_kind::host;
  h.providers[0].where = h.where;
  for (std::size_t i = 0; i < h.ncells; ++i) {
    auto& p = h.providers[1 + i];
    p.kind = provider_kind::cell;
    p.cell_id = spec.cells[i].id;
    p.where = h.where + " cell " + std::to_string(p.cell_id);
    for (std::size_t j = 0; j < i; ++j)
      if (spec.cells[j].id == p.cell_id) return fail(errc::invalid_argument, p.where + ": cell id listed twice");
  }
  for (std::size_t i = 0; i < h.ncards; ++i) {
    auto& p = h.providers[1 + h.ncells + i];
    p.kind = provider_kind::card;
    p.card = spec.cards[i].name;
    if (auto r = detail::check_text_name(p.card, "offload card name"); !r) return fail(std::move(r.error()).in(h.where));
    p.where = h.where + " card " + bulkhead::detail::quote(p.card);
    for (std::size_t j = 0; j < i; ++j)
      if (spec.cards[j].name == p.card) return fail(errc::invalid_argument, p.where + ": card listed twice");
  }
  h.providers.back().kind = provider_kind::be;
  h.providers.back().where = h.where + " batch";

  // CPU pool: derived cpu inventories.
  if (spec.cpu_pool) {
    const auto& pool = *spec.cpu_pool;
    h.has_pool = true;
    if (h.ncells == 0) return fail(errc::invalid_argument, h.where + ": a cpu_pool needs at least one cell with CPU ids");
    for (std::size_t i = 0; i < h.ncells; ++i) {
      const auto& c = spec.cells[i];
      if (c.cpus.empty()) return fail(errc::invalid_argument, h.providers[1 + i].where + ": no CPU ids");
      if (c.cpus.intersects(h.all_cpus))
        return fail(errc::invalid_argument, h.providers[1 + i].where + ": CPU ids " + (c.cpus & h.all_cpus).to_string() +
                                                " also belong to another cell");
      h.all_cpus = h.all_cpus | c.cpus;
      h.providers[1 + i].cpus = c.cpus;
    }
    if (!pool.reserved_cpus.subset_of(h.all_cpus))
      return fail(errc::invalid_argument, h.where + ": reserved_cpus " + (pool.reserved_cpus - h.all_cpus).to_string() +
                                              " are not in any cell");
    h.reserved_cpus = pool.reserved_cpus;
    const auto pool_inv = [&](const cpuset& cpus) {
      any_inventory inv;
      inv.kind = resource_kind::cpu;
      inv.total = cpus.size() * detail::mc_per_cpu;
      inv.reserved = (cpus & pool.reserved_cpus).size() * detail::mc_per_cpu;
      inv.min_unit = pool.min_unit.count();
      if (pool.max_unit.is_bounded()) inv.max_unit = pool.max_unit.value().count();
      inv.step_size = pool.step_size.count();
      inv.allocation_ratio = pool.allocation_ratio;
      return inv;
    };
    auto hinv = pool_inv(h.all_cpus);
    if (auto r = validate(hinv, h.where + " cpu_pool"); !r) return fail(r.error());
    detail::add_slot(h, 0, hinv, true);
    for (std::size_t i = 0; i < h.ncells; ++i) {
      auto cinv = pool_inv(spec.cells[i].cpus);
      cinv.max_unit = hinv.max_unit;
      if (auto r = validate(cinv, h.providers[1 + i].where + " cpu_pool"); !r) return fail(r.error());
      add_slot(h, 1 + i, cinv, true);
    }
  } else {
    for (const auto& c : spec.cells)
      if (!c.cpus.empty())
        return fail(errc::invalid_argument, h.where + " cell " + std::to_string(c.id) +
                                                ": CPU ids given but the host has no cpu_pool to manage them");
  }

  const auto add_list = [&](std::size_t p, const std::vector<any_inventory>& list, bool be_list) -> result<void> {
    for (const auto& inv : list) {
      const auto& where = h.providers[p].where;
      if (kind_index(inv.kind) >= detail::K) return fail(errc::invalid_argument, where + ": unknown resource kind");
      if (h.providers[p].slot_of[kind_index(inv.kind)] != detail::no_slot)
        return fail(errc::invalid_argument,
                    where + ": " + std::string(to_string(inv.kind)) +
                        (h.has_pool && inv.kind == resource_kind::cpu && !be_list
                             ? " inventory is derived from the cpu_pool; do not list it"
                             : " inventory listed twice"));
      if (auto r = validate(inv, where, be_list); !r) return r;
      detail::add_slot(h, p, inv, false);
    }
    return {};
  };
  if (auto r = add_list(0, spec.inventories, false); !r) return fail(r.error());
  for (std::size_t i = 0; i < h.ncells; ++i)
    if (auto r = add_list(1 + i, spec.cells[i].inventories, false); !r) return fail(r.error());
  for (std::size_t i = 0; i < h.ncards; ++i)
    if (auto r = add_list(1 + h.ncells + i, spec.cards[i].inventories, false); !r) return fail(r.error());
  if (auto r = add_list(h.be_provider(), spec.be_inventories, true); !r) return fail(r.error());
  if (h.slots.size() > 30000) return fail(errc::out_of_range, h.where + ": too many inventories");
  detail::rebuild_kind_masks(h);

  std::unique_lock lk(dir_mu_);
  if (by_name_.count(spec.name)) return fail(errc::already_exists, h.where + " is already in the ledger");
  auto* raw = st.get();
  all_.push_back(std::move(st));
  by_name_.emplace(spec.name, raw);
  return host_ref(raw);
}

inline result<host_ref> ledger::find_host(std::string_view name) const {
  std::shared_lock lk(dir_mu_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return fail(errc::not_found, "host " + bulkhead::detail::quote(name) + " is not in the ledger");
  return host_ref(it->second);
}

inline std::vector<std::string> ledger::hosts() const {
  std::shared_lock lk(dir_mu_);
  std::vector<std::string> out;
  for (const auto& [n, p] : by_name_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

inline result<void> ledger::remove_host(host_ref href) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  std::unique_lock dl(dir_mu_);
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  if (h.index.size())
    return fail(errc::conflict, h.where + " still holds " + std::to_string(h.index.size()) + " reservations");
  h.removed = true;
  by_name_.erase(h.name);
  return {};
}

inline result<reservation_receipt> ledger::reserve(std::string_view host, const reservation_request& r) {
  auto h = find_host(host);
  if (!h) return fail(h.error());
  return reserve(*h, r);
}

inline result<reservation_receipt> ledger::reserve(host_ref href, const reservation_request& r) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  const auto who = [&] { return "reserve for " + r.uuid.to_string() + " on " + h.where; };
  if (r.amounts.empty()) return fail(error(errc::invalid_argument, "no resources asked for").in(who()));
  const bool be = r.qos == qos_class::BE;
  const bool pinned = detail::pinned_class(r.qos) && r.amounts.has(resource_kind::cpu);
  if (be && (r.policy != numa_policy::none || r.cell || r.card || r.exclusive == isolation_scope::cell ||
             r.exclusive == isolation_scope::card))
    return fail(error(errc::invalid_argument,
                      "BE reservations draw on the host's batch inventories and cannot be bound to a cell or card")
                    .in(who()));

  std::lock_guard lk(h.mu);
  if (h.removed) return fail(error(errc::not_found, h.where + " was removed").in(who()));
  if (h.index.find(r.uuid))
    return fail(error(errc::already_exists, "the consumer already holds a reservation here; resize or release it")
                    .in(who()));
  if (pinned) {
    if (!h.has_pool)
      return fail(error(errc::invalid_argument, std::string(to_string(r.qos)) + " needs CPU ids but " + h.where +
                                                    " has no cpu_pool")
                      .in(who()));
    if (r.amounts.count(resource_kind::cpu) % detail::mc_per_cpu != 0)
      return fail(error(errc::out_of_range, "cpu: asked " + std::to_string(r.amounts.count(resource_kind::cpu)) +
                                                " millicores; " + std::string(to_string(r.qos)) +
                                                " gets whole CPUs (a multiple of 1000)")
                      .in(who()));
  }
  const auto tenant = find_tenant(h, r.tenant);
  if (!tenant && (r.tenant.empty() || r.tenant.size() > 255 || !bulkhead::detail::is_utf8(r.tenant)))  // a known name was checked
    return fail(error(errc::invalid_argument, "tenant " + bulkhead::detail::quote(r.tenant) + " must be 1..255 bytes of UTF-8")
                    .in(who()));
  const auto t_quoted = [&] { return "tenant " + bulkhead::detail::quote(r.tenant); };
  const auto refuse = [&](std::string why) { return fail(error(errc::insufficient_capacity, std::move(why)).in(who())); };

  // Host-wide isolation.
  const auto& hp0 = h.providers[0];
  if (hp0.excl_tenant && (!tenant || *hp0.excl_tenant != *tenant))
    return refuse("isolation: " + h.where + " is held exclusively by tenant " +
                  bulkhead::detail::quote(h.tenants[*hp0.excl_tenant].name) + "; " + t_quoted() + " may not share it");
  if (r.exclusive == isolation_scope::host) {
    const bool mine = tenant && h.tenants[*tenant].host_refs > 0;
    if (h.host_tenants_present > (mine ? 1u : 0u))
      return refuse("isolation: " + t_quoted() + " asked for the whole host but it holds other tenants' instances: " +
                    tenant_list(h, hp0, tenant));
  }

  const bool need_cell = !be && (r.policy == numa_policy::single_numa_node || r.cell ||
                                 r.exclusive == isolation_scope::cell || (r.amounts.mask() & h.cell_only_kinds));
  const bool need_card = !be && (r.card || r.exclusive == isolation_scope::card || (r.amounts.mask() & h.card_kinds));

  if (!need_cell && h.exclusive_cells) {
    for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c) {
      const auto& p = h.providers[c];
      if (p.excl_tenant && (!tenant || *p.excl_tenant != *tenant))
        return refuse("isolation: " + p.where + " is held exclusively by tenant " +
                      bulkhead::detail::quote(h.tenants[*p.excl_tenant].name) + "; a reservation of " + t_quoted() +
                      " not bound to a cell could run there (use single-numa-node)");
    }
  }
  if (r.exclusive == isolation_scope::cell) {
    const bool mine = tenant && h.tenants[*tenant].floating_refs > 0;
    if (h.floating_tenants_present > (mine ? 1u : 0u))
      return refuse("isolation: " + t_quoted() + " asked for an exclusive cell but other tenants hold reservations on " +
                    h.where + " not bound to a cell, which may run on any cell");
  }

  // Candidates: inclusive ranges of provider indices ({none, none}: unbound).
  std::int16_t cell_lo = detail::no_slot, cell_hi = detail::no_slot, card_lo = detail::no_slot, card_hi = detail::no_slot;
  if (need_cell) {
    if (r.cell) {
      for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c)
        if (h.providers[c].cell_id == *r.cell) cell_lo = cell_hi = static_cast<std::int16_t>(c);
      if (cell_lo == detail::no_slot)
        return fail(error(errc::not_found, h.where + " has no cell " + std::to_string(*r.cell)).in(who()));
    } else {
      if (h.ncells == 0) return refuse(h.where + " has no NUMA cells to bind to");
      cell_lo = static_cast<std::int16_t>(h.first_cell());
      cell_hi = static_cast<std::int16_t>(h.first_cell() + h.ncells - 1);
    }
  }
  if (need_card) {
    if (r.card) {
      for (std::size_t c = h.first_card(); c < h.first_card() + h.ncards; ++c)
        if (h.providers[c].card == *r.card) card_lo = card_hi = static_cast<std::int16_t>(c);
      if (card_lo == detail::no_slot)
        return fail(error(errc::not_found, h.where + " has no card " + bulkhead::detail::quote(*r.card)).in(who()));
    } else {
      if (h.ncards == 0) return refuse(h.where + " has no offload cards");
      card_lo = static_cast<std::int16_t>(h.first_card());
      card_hi = static_cast<std::int16_t>(h.first_card() + h.ncards - 1);
    }
  }

  detail::planner pl(h, r.seen);
  detail::plan chosen;
  bool found = false;
  std::vector<std::string> reasons;

  // The common case, without candidates: every kind from one provider (the
  // host, or the batch pseudo-provider for BE), no CPU ids.
  if (!need_cell && !need_card && !pinned) {
    const std::size_t prov = be ? h.be_provider() : 0;
    // Checked cheaply first; the error is built only for the kind that failed.
    enum class why : std::uint8_t { none, missing, unit, stale, full } bad = why::none;
    resource_kind bad_kind = resource_kind::cpu;
    std::uint64_t bad_n = 0;
    std::int16_t bad_slot = detail::no_slot;
    for (std::uint16_t m = r.amounts.mask(); m && bad == why::none; m &= static_cast<std::uint16_t>(m - 1)) {
      const auto kind = static_cast<resource_kind>(__builtin_ctz(m));
      const std::uint64_t n = r.amounts.count(kind);
      const auto s = h.slot_at(prov, kind);
      bad_kind = kind;
      bad_n = n;
      bad_slot = s;
      if (s == detail::no_slot) {
        bad = why::missing;
        break;
      }
      const auto& sl = h.slots[static_cast<std::size_t>(s)];
      if (!obeys_unit_rules(sl.inv, n)) bad = why::unit;
      else if (!r.seen.empty() && (static_cast<std::size_t>(s) >= r.seen.size() || r.seen[static_cast<std::size_t>(s)] != sl.generation))
        bad = why::stale;
      else if (n > sl.capacity || sl.used > sl.capacity - n)
        bad = why::full;
      else
        chosen.charged[kind_index(kind)][0] = s;
    }
    if (bad != why::none) {
      if (bad == why::missing) return fail(pl.nobody_offers(bad_kind, r.qos, detail::no_slot, detail::no_slot).in(who()));
      if (bad == why::stale) return fail(std::move(*pl.check_seen(bad_slot)).in(who()));
      const auto& sl = h.slots[static_cast<std::size_t>(bad_slot)];
      if (bad == why::unit) return fail(check_unit_rules(sl.inv, bad_n, where_of(h, sl.provider)).error().in(who()));
      return fail(no_fit(h, sl, bad_n).in(who()));
    }
    found = true;
  }
  const auto label = [&](std::int16_t c, std::int16_t k) {
    std::string s;
    if (c != detail::no_slot) s += "cell " + std::to_string(h.providers[static_cast<std::size_t>(c)].cell_id);
    if (k != detail::no_slot) s += (s.empty() ? "" : ", ") + std::string("card ") + bulkhead::detail::quote(h.providers[static_cast<std::size_t>(k)].card);
    return s;
  };

  for (std::int16_t c = cell_lo; !found && c <= cell_hi; ++c) {
    for (std::int16_t k = card_lo; k <= card_hi; ++k) {
      // Isolation of this cell and card.
      std::optional<std::string> why;
      for (auto p : {c, k}) {
        if (p == detail::no_slot || why) continue;
        const auto& pr = h.providers[static_cast<std::size_t>(p)];
        if (pr.excl_tenant && (!tenant || *pr.excl_tenant != *tenant))
          why = "isolation: " + pr.where + " is held exclusively by tenant " + bulkhead::detail::quote(h.tenants[*pr.excl_tenant].name);
        else if (((p == c && r.exclusive == isolation_scope::cell) || (p == k && r.exclusive == isolation_scope::card)) &&
                 pr.others_than(tenant))
          why = "isolation: " + pr.where + " holds other tenants' instances: " + tenant_list(h, pr, tenant);
      }
      if (!why && k != detail::no_slot) {
        const auto& pr = h.providers[static_cast<std::size_t>(k)];
        for (std::size_t i = 0; i < detail::K && !why; ++i)
          if ((r.amounts.mask() & h.card_kinds) >> i & 1u)
            if (pr.slot_of[i] == detail::no_slot)
              why = pr.where + " has no " + std::string(to_string(static_cast<resource_kind>(i))) + " inventory";
      }
      if (why) {
        reasons.push_back(label(c, k) + ": " + *why);
        continue;
      }
      detail::plan p;
      p.cell = c;
      p.card = k;
      detail::verdict v;
      r.amounts.for_each([&](resource_kind kind, std::uint64_t n) {
        if (v) return;
        if (pinned && kind == resource_kind::cpu) return;
        auto cs = pl.slots_for(kind, r.qos, c, k);
        if (cs[0] == detail::no_slot) {
          v = pl.nobody_offers(kind, r.qos, c, k);
          return;
        }
        v = pl.check_kind(cs, 0, n);
        p.charged[kind_index(kind)] = cs;
      });
      if (!v && pinned) {
        const auto n = r.amounts.count(resource_kind::cpu) / detail::mc_per_cpu;
        // The pool's unit rules apply to the millicores asked.
        for (auto s : pl.slots_for(resource_kind::cpu, qos_class::LS, c, detail::no_slot)) {
          if (s == detail::no_slot) break;
          const auto& sl = h.slots[static_cast<std::size_t>(s)];
          if (obeys_unit_rules(sl.inv, r.amounts.count(resource_kind::cpu))) continue;
          if (auto u = check_unit_rules(sl.inv, r.amounts.count(resource_kind::cpu), where_of(h, sl.provider)); !u) {
            v = u.error();
            break;
          }
        }
        if (!v) {
          auto ids = pl.pick_cpus(n, c, detail::no_slot);
          if (!ids) {
            const auto free = pl.free_cpus(c, {});
            v = error(errc::insufficient_capacity,
                      (c == detail::no_slot ? h.where : h.providers[static_cast<std::size_t>(c)].where) + " cpu: asked " +
                          std::to_string(n) + " whole CPUs for " + std::string(to_string(r.qos)) + ", free " +
                          std::to_string(free.size()) + " (" + (free.empty() ? "none" : free.to_string()) + ")");
          } else {
            p.pin = std::move(*ids);
            v = pl.check_pinning(p.pin, {});
          }
        }
      }
      if (!v) {
        chosen = std::move(p);
        found = true;
        break;
      }
      if (v->code() != errc::insufficient_capacity) return fail(std::move(*v).in(who()));
      const auto l = label(c, k);
      reasons.push_back(l.empty() ? v->message() : l + ": " + v->message());
    }
    if (found) break;
  }
  if (!found) {
    std::string msg;
    if (reasons.empty()) reasons.push_back("nothing fits");
    if (reasons.size() == 1) {
      msg = reasons[0];
    } else {
      msg = need_cell && !r.cell ? "no cell fits: " : "nothing fits: ";
      for (std::size_t i = 0; i < reasons.size(); ++i) msg += (i ? "; " : "") + reasons[i];
    }
    return refuse(std::move(msg));
  }

  // Commit.
  ++h.epoch;
  r.amounts.for_each([&](resource_kind kind, std::uint64_t n) {
    for (auto s : chosen.charged[kind_index(kind)]) {
      if (s == detail::no_slot) break;
      h.slots[static_cast<std::size_t>(s)].used += n;
      touch(h, s);
    }
  });
  if (!chosen.pin.empty()) apply_pinning(h, chosen.pin, {}, r.qos);

  const auto t = intern_tenant(h, r.tenant, tenant);
  auto& te = h.tenants[t];
  if (te.host_refs++ == 0) {
    ++h.host_tenants_present;
    --h.idle_tenants;
  }
  if (chosen.cell == detail::no_slot && te.floating_refs++ == 0) ++h.floating_tenants_present;
  ++h.providers[0].reservations;  // the host's tenants are counted in tenant_entry::host_refs
  if (chosen.cell != detail::no_slot) h.providers[static_cast<std::size_t>(chosen.cell)].add(t);
  if (chosen.card != detail::no_slot) h.providers[static_cast<std::size_t>(chosen.card)].add(t);
  const auto hold = [&](std::int16_t p, bool is_cell) {
    auto& pr = h.providers[static_cast<std::size_t>(p)];
    pr.excl_tenant = t;
    if (pr.excl_count++ == 0 && is_cell) ++h.exclusive_cells;
  };
  if (r.exclusive == isolation_scope::host) hold(0, false);
  if (r.exclusive == isolation_scope::cell) hold(chosen.cell, true);
  if (r.exclusive == isolation_scope::card) hold(chosen.card, false);

  std::uint32_t idx = 0;
  if (!h.free_records.empty()) {
    idx = h.free_records.back();
    h.free_records.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(h.records.size());
    h.records.emplace_back();
  }
  auto& rec = h.records[idx];
  rec.uuid = r.uuid;
  rec.tenant = t;
  rec.qos = r.qos;
  rec.policy = r.policy;
  rec.exclusive = r.exclusive;
  rec.cell = chosen.cell;
  rec.card = chosen.card;
  rec.amounts = r.amounts;
  rec.charged = chosen.charged;
  if (!chosen.pin.empty()) rec.pinned = std::move(chosen.pin);
  rec.live = true;
  h.index.insert(r.uuid, idx);
  return receipt_of(h, rec);
}

inline result<void> ledger::release(host_ref href, const uuid& consumer, std::span<const std::uint64_t> seen) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  std::lock_guard lk(h.mu);
  const auto who = [&] { return "release of " + consumer.to_string() + " on " + h.where; };
  if (h.removed) return fail(error(errc::not_found, h.where + " was removed").in(who()));
  const auto idx = h.index.find(consumer);
  if (!idx) return fail(error(errc::not_found, "the consumer holds no reservation here").in(who()));
  auto& rec = h.records[*idx];
  if (!seen.empty()) {
    detail::planner pl(h, seen);
    for (const auto& cs : rec.charged)
      for (auto s : cs) {
        if (s == detail::no_slot) break;
        if (auto v = pl.check_seen(s)) return fail(std::move(*v).in(who()));
      }
  }
  ++h.epoch;
  rec.amounts.for_each([&](resource_kind kind, std::uint64_t n) {
    for (auto s : rec.charged[kind_index(kind)]) {
      if (s == detail::no_slot) break;
      h.slots[static_cast<std::size_t>(s)].used -= n;
      touch(h, s);
    }
  });
  if (!rec.pinned.empty()) apply_pinning(h, {}, rec.pinned, rec.qos);

  auto& te = h.tenants[rec.tenant];
  if (--te.host_refs == 0) {
    --h.host_tenants_present;
    ++h.idle_tenants;
  }
  if (rec.cell == detail::no_slot && --te.floating_refs == 0) --h.floating_tenants_present;
  --h.providers[0].reservations;
  if (rec.cell != detail::no_slot) h.providers[static_cast<std::size_t>(rec.cell)].remove(rec.tenant);
  if (rec.card != detail::no_slot) h.providers[static_cast<std::size_t>(rec.card)].remove(rec.tenant);
  const auto unhold = [&](std::int16_t p, bool is_cell) {
    auto& pr = h.providers[static_cast<std::size_t>(p)];
    if (--pr.excl_count == 0) {
      pr.excl_tenant.reset();
      if (is_cell) --h.exclusive_cells;
    }
  };
  if (rec.exclusive == isolation_scope::host) unhold(0, false);
  if (rec.exclusive == isolation_scope::cell) unhold(rec.cell, true);
  if (rec.exclusive == isolation_scope::card) unhold(rec.card, false);

  h.index.erase(consumer);
  rec.live = false;
  if (!rec.pinned.empty()) rec.pinned = cpuset{};
  h.free_records.push_back(*idx);
  sweep_tenants(h);
  return {};
}

inline result<reservation_receipt> ledger::resize(host_ref href, const uuid& consumer, const resource_amounts& amounts,
                                           std::span<const std::uint64_t> seen) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  const auto who = [&] { return "resize of " + consumer.to_string() + " on " + h.where; };
  if (amounts.empty()) return fail(error(errc::invalid_argument, "no resources left; release instead").in(who()));
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(error(errc::not_found, h.where + " was removed").in(who()));
  const auto idx = h.index.find(consumer);
  if (!idx) return fail(error(errc::not_found, "the consumer holds no reservation here").in(who()));
  auto& rec = h.records[*idx];
  const bool pinned = detail::pinned_class(rec.qos) && h.has_pool;
  if (detail::pinned_class(rec.qos) && !h.has_pool && amounts.has(resource_kind::cpu))
    return fail(error(errc::invalid_argument, std::string(to_string(rec.qos)) + " needs CPU ids but " + h.where +
                                                  " has no cpu_pool")
                    .in(who()));
  if (pinned && amounts.count(resource_kind::cpu) % detail::mc_per_cpu != 0)
    return fail(error(errc::out_of_range, "cpu: asked " + std::to_string(amounts.count(resource_kind::cpu)) +
                                              " millicores; " + std::string(to_string(rec.qos)) +
                                              " gets whole CPUs (a multiple of 1000)")
                    .in(who()));

  detail::planner pl(h, seen);
  detail::plan p;
  p.cell = rec.cell;
  p.card = rec.card;
  detail::verdict v;
  const std::uint16_t kinds = rec.amounts.mask() | amounts.mask();
  for (std::size_t i = 0; i < detail::K && !v; ++i) {
    if (!(kinds >> i & 1u)) continue;
    const auto kind = static_cast<resource_kind>(i);
    const auto old_n = rec.amounts.count(kind), new_n = amounts.count(kind);
    if (pinned && kind == resource_kind::cpu) {
      if (new_n) {
        for (auto s : pl.slots_for(resource_kind::cpu, qos_class::LS, rec.cell, detail::no_slot)) {
          if (s == detail::no_slot) break;
          const auto& sl = h.slots[static_cast<std::size_t>(s)];
          if (auto u = check_unit_rules(sl.inv, new_n, where_of(h, sl.provider)); !u) {
            v = u.error();
            break;
          }
        }
      }
      if (v) break;
      const auto have = rec.pinned.size(), want = static_cast<std::size_t>(new_n / detail::mc_per_cpu);
      if (want > have) {
        auto extra = pl.pick_cpus(want - have, rec.cell, cell_of_ids(h, rec.pinned));
        if (!extra) {
          v = error(errc::insufficient_capacity, "cpu: growing by " + std::to_string(want - have) +
                                                     " whole CPUs, free " +
                                                     std::to_string(pl.free_cpus(rec.cell, {}).size()));
          break;
        }
        p.pin = std::move(*extra);
        v = pl.check_pinning(p.pin, {});
      } else if (want < have) {
        auto ids = rec.pinned.ids();
        for (std::size_t j = want; j < have; ++j) p.unpin.insert(ids[j]);
        if (!seen.empty()) {
          // Shrinking touches the cpu slots too.
          for (std::size_t c = 0; c < h.providers.size() && !v; ++c)
            if (auto s = h.slot_at(c, resource_kind::cpu); s != detail::no_slot && h.slots[static_cast<std::size_t>(s)].from_pool)
              v = pl.check_seen(s);
        }
      }
      continue;
    }
    detail::charge_slots cs;
    if (old_n) {
      cs = rec.charged[i];
    } else {
      cs = pl.slots_for(kind, rec.qos, rec.cell, rec.card);
      if (cs[0] == detail::no_slot) {
        v = pl.nobody_offers(kind, rec.qos, rec.cell, rec.card);
        break;
      }
    }
    v = pl.check_kind(cs, old_n, new_n);
    p.charged[i] = new_n ? cs : detail::charge_slots{detail::no_slot, detail::no_slot, detail::no_slot};
  }
  if (v) return fail(std::move(*v).in(who()));

  ++h.epoch;
  for (std::size_t i = 0; i < detail::K; ++i) {
    if (!(kinds >> i & 1u)) continue;
    const auto kind = static_cast<resource_kind>(i);
    if (pinned && kind == resource_kind::cpu) continue;
    const auto old_n = rec.amounts.count(kind), new_n = amounts.count(kind);
    if (old_n == new_n) continue;
    const auto& cs = old_n ? rec.charged[i] : p.charged[i];
    for (auto s : cs) {
      if (s == detail::no_slot) break;
      auto& sl = h.slots[static_cast<std::size_t>(s)];
      sl.used = sl.used - old_n + new_n;
      touch(h, s);
    }
    rec.charged[i] = p.charged[i];
  }
  apply_pinning(h, p.pin, p.unpin, rec.qos);
  rec.pinned = (rec.pinned - p.unpin) | p.pin;
  rec.amounts = amounts;
  return receipt_of(h, rec);
}

namespace detail {
inline result<std::size_t> provider_index(const host_state& h, const provider_ref& w) {
  switch (w.kind) {
    case provider_kind::host: return std::size_t{0};
    case provider_kind::be: return h.be_provider();
    case provider_kind::cell:
      for (std::size_t c = h.first_cell(); c < h.first_cell() + h.ncells; ++c)
        if (h.providers[c].cell_id == w.cell) return c;
      return fail(errc::not_found, h.where + " has no cell " + std::to_string(w.cell));
    case provider_kind::card:
      for (std::size_t c = h.first_card(); c < h.first_card() + h.ncards; ++c)
        if (h.providers[c].card == w.card) return c;
      return fail(errc::not_found, h.where + " has no card " + bulkhead::detail::quote(w.card));
  }
  return fail(errc::invalid_argument, "unknown provider kind");
}
}  // namespace detail

inline result<void> ledger::set_inventory(host_ref href, const provider_ref& w, const any_inventory& inv,
                                   std::optional<std::uint64_t> expected_generation) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  auto p = provider_index(h, w);
  if (!p) return fail(p.error());
  const auto& where = h.providers[*p].where;
  if (kind_index(inv.kind) >= detail::K) return fail(errc::invalid_argument, where + ": unknown resource kind");
  const bool be_slot = *p == h.be_provider();
  if (auto r = validate(inv, where, be_slot); !r) return r;
  const auto s = h.slot_at(*p, inv.kind);
  const std::uint64_t gen = s == detail::no_slot ? 0 : h.slots[static_cast<std::size_t>(s)].generation;
  if (expected_generation && *expected_generation != gen)
    return fail(errc::conflict, where + " " + std::string(to_string(inv.kind)) + " inventory: generation " +
                                    std::to_string(*expected_generation) + " expected, now " + std::to_string(gen) +
                                    "; re-read and retry");
  if (s == detail::no_slot) {
    if (h.slots.size() >= 30000) return fail(errc::out_of_range, h.where + ": too many inventories");
    add_slot(h, *p, inv, false);
    ++h.slots.back().generation;
    rebuild_kind_masks(h);
    return {};
  }
  auto& sl = h.slots[static_cast<std::size_t>(s)];
  if (sl.from_pool)
    return fail(errc::invalid_argument,
                where + " cpu inventory is derived from the host's CPU ids (cpu_pool) and cannot be set");
  sl.inv = inv;
  sl.recompute();
  ++sl.generation;
  return {};
}

inline result<void> ledger::set_be_capacity(host_ref href, resource_kind k, std::uint64_t total) {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  if (kind_index(k) >= detail::K) return fail(errc::invalid_argument, h.where + ": unknown resource kind");
  const auto s = h.slot_at(h.be_provider(), k);
  if (s == detail::no_slot) {
    any_inventory inv;
    inv.kind = k;
    inv.total = total;
    add_slot(h, h.be_provider(), inv, false);
    ++h.slots.back().generation;
    return {};
  }
  auto& sl = h.slots[static_cast<std::size_t>(s)];
  if (sl.inv.reserved > total) sl.inv.reserved = total;
  sl.inv.total = total;
  sl.recompute();
  ++sl.generation;
  return {};
}

inline result<host_view> ledger::view(host_ref href) const {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  const auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  host_view v;
  v.name = h.name;
  v.reservations = h.index.size();
  v.inventories.reserve(h.slots.size());
  v.generations.reserve(h.slots.size());
  for (std::size_t i = 0; i < h.slots.size(); ++i) {
    const auto& s = h.slots[i];
    const auto& p = h.providers[s.provider];
    inventory_view iv;
    iv.slot = i;
    iv.provider = p.kind;
    iv.cell = p.cell_id;
    iv.card = p.card;
    iv.where = p.where;
    iv.inventory = s.inv;
    iv.from_cpu_pool = s.from_pool;
    iv.pinned = s.pinned;
    iv.capacity = s.capacity;
    iv.used = s.used;
    iv.free = free_of(s);
    iv.over_capacity = s.used > s.capacity;
    iv.generation = s.generation;
    v.inventories.push_back(std::move(iv));
    v.generations.push_back(s.generation);
  }
  if (h.has_pool) {
    cpu_pools_view pv;
    pv.all = h.all_cpus;
    pv.reserved = h.reserved_cpus;
    pv.lse = h.lse_cpus;
    pv.lsr = h.lsr_cpus;
    pv.shared = h.all_cpus - h.reserved_cpus - h.lse_cpus - h.lsr_cpus;
    v.pools = std::move(pv);
  }
  return v;
}

inline result<tenancy_report> ledger::tenancy(host_ref href) const {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  const auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  tenancy_report rep;
  rep.host = h.name;
  for (std::size_t i = 0; i + 1 < h.providers.size(); ++i) {
    const auto& p = h.providers[i];
    tenancy_entry e;
    e.provider = p.kind;
    e.cell = p.cell_id;
    e.card = p.card;
    e.where = p.where;
    if (p.kind == provider_kind::host) {
      for (const auto& t : h.tenants)
        if (t.host_refs) e.tenants.push_back(t.name);
    }
    for (const auto& c : p.tenants) e.tenants.push_back(h.tenants[c.tenant].name);
    std::sort(e.tenants.begin(), e.tenants.end());
    if (p.excl_tenant) e.exclusive_holder = h.tenants[*p.excl_tenant].name;
    e.reservations = p.reservations;
    rep.entries.push_back(std::move(e));
  }
  return rep;
}

inline result<reservation_view> ledger::find(host_ref href, const uuid& consumer) const {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  const auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  const auto idx = h.index.find(consumer);
  if (!idx) return fail(errc::not_found, h.where + ": no reservation for consumer " + consumer.to_string());
  return view_of(h, h.records[*idx]);
}

inline result<std::vector<reservation_view>> ledger::reservations(host_ref href) const {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  const auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  std::vector<reservation_view> out;
  for (const auto& r : h.records)
    if (r.live) out.push_back(view_of(h, r));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.uuid < b.uuid; });
  return out;
}

inline result<void> ledger::audit(host_ref href) const {
  auto* hp = live(href);
  if (!hp) return detail::no_handle();
  const auto& h = *hp;
  std::lock_guard lk(h.mu);
  if (h.removed) return fail(errc::not_found, h.where + " was removed");
  std::vector<u128> used(h.slots.size(), 0);
  cpuset lse, lsr;
  std::vector<std::uint64_t> refs(h.providers.size(), 0);
  std::vector<std::uint32_t> host_refs(h.tenants.size(), 0), floating(h.tenants.size(), 0);
  std::size_t live_n = 0;
  for (const auto& r : h.records) {
    if (!r.live) continue;
    ++live_n;
    if (h.index.find(r.uuid) == std::nullopt)
      return fail(errc::corrupt, h.where + ": reservation " + r.uuid.to_string() + " is missing from the index");
    r.amounts.for_each([&](resource_kind kind, std::uint64_t n) {
      for (auto s : r.charged[kind_index(kind)]) {
        if (s == detail::no_slot) break;
        used[static_cast<std::size_t>(s)] += n;
      }
    });
    if (r.pinned.intersects(lse) || r.pinned.intersects(lsr))
      return fail(errc::corrupt, h.where + ": CPU ids " + r.pinned.to_string() + " are pinned twice");
    (r.qos == qos_class::LSE ? lse : lsr) = (r.qos == qos_class::LSE ? lse : lsr) | r.pinned;
    ++refs[0];
    if (r.cell != detail::no_slot) ++refs[static_cast<std::size_t>(r.cell)];
    if (r.card != detail::no_slot) ++refs[static_cast<std::size_t>(r.card)];
    ++host_refs[r.tenant];
    if (r.cell == detail::no_slot) ++floating[r.tenant];
  }
  if (live_n != h.index.size())
    return fail(errc::corrupt, h.where + ": " + std::to_string(live_n) + " live reservations but the index holds " +
                                   std::to_string(h.index.size()));
  if (!(lse == h.lse_cpus) || !(lsr == h.lsr_cpus))
    return fail(errc::corrupt, h.where + ": pinned CPU pools differ from the reservations (LSE " +
                                   h.lse_cpus.to_string() + " vs " + lse.to_string() + ")");
  for (std::size_t i = 0; i < h.slots.size(); ++i) {
    const auto& s = h.slots[i];
    if (used[i] != s.used)
      return fail(errc::corrupt, where_of(h, s.provider) + " " + std::string(to_string(s.inv.kind)) + ": books say used " +
                                     std::to_string(s.used) + ", reservations add up to " +
                                     std::to_string(static_cast<std::uint64_t>(used[i])));
    if (s.from_pool) {
      const cpuset& scope = s.provider == 0 ? h.all_cpus : h.providers[s.provider].cpus;
      const auto expect = ((h.lse_cpus | h.lsr_cpus) & scope).size() * detail::mc_per_cpu;
      if (expect != s.pinned)
        return fail(errc::corrupt, where_of(h, s.provider) + " cpu: books say pinned " + std::to_string(s.pinned) +
                                       ", CPU ids add up to " + std::to_string(expect));
    }
    const auto cap = inventory_capacity(s.inv.total, s.inv.reserved, s.pinned, s.inv.allocation_ratio).value_or(0);
    if (cap != s.capacity) return fail(errc::corrupt, where_of(h, s.provider) + ": cached capacity is stale");
  }
  for (std::size_t p = 0; p + 1 < h.providers.size(); ++p)
    if (refs[p] != h.providers[p].reservations)
      return fail(errc::corrupt, h.providers[p].where + ": tenancy counts " + std::to_string(h.providers[p].reservations) +
                                     " reservations, records say " + std::to_string(refs[p]));
  std::uint32_t present = 0, fl = 0;
  for (std::size_t t = 0; t < h.tenants.size(); ++t) {
    if (h.tenants[t].host_refs != host_refs[t] || h.tenants[t].floating_refs != floating[t])
      return fail(errc::corrupt, h.where + ": tenant " + bulkhead::detail::quote(h.tenants[t].name) + " counts differ");
    present += host_refs[t] ? 1 : 0;
    fl += floating[t] ? 1 : 0;
  }
  if (present != h.host_tenants_present || fl != h.floating_tenants_present)
    return fail(errc::corrupt, h.where + ": tenant presence counts differ");
  return {};
}

}  // namespace bulkhead::ledger
