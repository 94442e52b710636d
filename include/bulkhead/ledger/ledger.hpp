// bulkhead/ledger/ledger.hpp: the capacity ledger a control plane admits
// instances against.
//
// Providers and inventories (OpenStack Placement's model, nested):
//   - a host, its NUMA cells, its offload cards, and a BE (batch) pseudo-provider
//     each hold inventories (inventory.hpp), at most one per resource kind;
//   - an LS/LSR/LSE/SYSTEM reservation is charged, for each kind it asks for,
//     to its bound cell's inventory (when it is bound to a cell that has one),
//     to its bound card's inventory (likewise) and to the host's inventory
//     (when the host has one). The host inventory is the aggregate; a cell
//     inventory only sees reservations bound to that cell. A kind nobody
//     charged is a refusal.
//   - a BE reservation is charged to the BE inventories only; the
//     co-location engine publishes their totals (set_be_capacity), as
//     Koordinator publishes batch-cpu and batch-memory.
//   - a reservation is bound to a cell when it uses single-numa-node, names a
//     cell, demands an exclusive cell, or asks for a kind that only cells
//     inventory; then ALL its cell-inventoried resources come from that one
//     cell, or it is refused with each cell's reason. It is bound to an
//     offload card when it names one, demands an exclusive card, or asks for a
//     kind that cards inventory; the card must hold all such kinds.
//
// CPU pools (host_spec::cpu_pool): each cell lists its CPU ids; the host's
// and each cell's cpu inventories are derived from them (1000 millicores per
// CPU; the pool's reserved_cpus are the inventory's `reserved`).
//   - LSE: whole CPUs (millicores a multiple of 1000) given exclusively;
//   - LSR: whole CPUs reserved for the instance; BE work may share them
//     (cpu_pools_view::be_allowed), LS may not;
//   - LS and SYSTEM: millicores from the shared pool, over-committed by the
//     pool's allocation_ratio. Pinned CPUs leave the shared pool before the
//     ratio applies: capacity = ((total - reserved - pinned) x ratio).
//
// Physical isolation: a reservation may demand that its host, cell or card
// hold no other tenant's instances (isolation_scope). While it lives, other
// tenants are refused there, and a reservation of another tenant that is not
// bound to a cell is refused on a host where any cell is exclusive (it could
// run on that cell). tenancy() reports who is where.
//
// Concurrency (Placement's generations): every inventory has a generation,
// bumped by every change to it (reserve, release, resize, set_inventory).
// view() returns them; a request that passes the generations it saw (`seen`)
// is refused with errc::conflict when any inventory it would touch changed
// since; re-read and retry. Without `seen` a request is checked and applied
// atomically against the current state. Any number of threads may call any
// member at once: each host has its own short lock (spin briefly, then
// yield), so capacity is never exceeded and requests on different hosts do
// not wait for each other.
//
// Errors: not_found (host, cell, card, instance), already_exists (the instance
// already holds a reservation on the host; use resize), out_of_range
// (min_unit / max_unit / step_size, whole CPUs for LSE/LSR), invalid_argument
// (malformed request), insufficient_capacity (does not fit, or isolation
// refuses it: the message says which, naming the resource, the amount asked
// and what was free), conflict (stale generation).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/ledger/amounts.hpp"
#include "bulkhead/ledger/inventory.hpp"
#include "bulkhead/ledger/rational.hpp"
#include "bulkhead/model/cpuset.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::ledger {

enum class numa_policy : std::uint8_t {
  none,              // CPUs and memory from anywhere on the host
  single_numa_node,  // all of the request's cell resources from one cell, or a refusal
};
enum class isolation_scope : std::uint8_t {
  none,  // shares hardware with other tenants
  host,  // no other tenant on the host
  cell,  // no other tenant on its NUMA cell
  card,  // no other tenant on its offload card
};
// `be` is the host's pool for BE (batch) work; its text form is "batch".
enum class provider_kind : std::uint8_t { host, cell, card, be };

}  // namespace bulkhead::ledger

namespace bulkhead {
template <>
struct enum_names<ledger::numa_policy> {
  static constexpr std::array values{
      std::pair{ledger::numa_policy::none, std::string_view{"none"}},
      std::pair{ledger::numa_policy::single_numa_node, std::string_view{"single-numa-node"}},
  };
  static constexpr std::string_view what = "numa policy";
};
template <>
struct enum_names<ledger::isolation_scope> {
  static constexpr std::array values{
      std::pair{ledger::isolation_scope::none, std::string_view{"none"}},
      std::pair{ledger::isolation_scope::host, std::string_view{"host"}},
      std::pair{ledger::isolation_scope::cell, std::string_view{"cell"}},
      std::pair{ledger::isolation_scope::card, std::string_view{"card"}},
  };
  static constexpr std::string_view what = "isolation scope";
};
template <>
struct enum_names<ledger::provider_kind> {
  static constexpr std::array values{
      std::pair{ledger::provider_kind::host, std::string_view{"host"}},
      std::pair{ledger::provider_kind::cell, std::string_view{"cell"}},
      std::pair{ledger::provider_kind::card, std::string_view{"card"}},
      std::pair{ledger::provider_kind::be, std::string_view{"batch"}},
  };
  static constexpr std::string_view what = "provider kind";
};
}  // namespace bulkhead

namespace bulkhead::ledger {

// --- describing a host -------------------------------------------------------

struct cpu_pool_spec {
  cpuset reserved_cpus;          // for the host itself (SYSTEM daemons); never allocated
  rational allocation_ratio{};   // over-commit of the shared pool (Nova's default is 4)
  millicores min_unit{1};
  limit<millicores> max_unit = unlimited;
  millicores step_size{1};
};

struct cell_spec {
  std::uint32_t id = 0;
  cpuset cpus;                             // this cell's CPU ids (with a cpu_pool)
  std::vector<any_inventory> inventories;  // memory, llc, ...; not cpu when the host has a cpu_pool
};

struct card_spec {
  std::string name;                        // "card0"; validate_name rules
  std::vector<any_inventory> inventories;  // net_bandwidth, net_pps, disk_iops, offload_function, ...
};

struct host_spec {
  std::string name;  // validate_name rules
  std::optional<cpu_pool_spec> cpu_pool;
  std::vector<cell_spec> cells;
  std::vector<card_spec> cards;
  std::vector<any_inventory> inventories;        // host level (aggregates and host-only kinds)
  std::vector<any_inventory> be_inventories;  // what BE may reserve; usually set later
};

// Names one provider of a host.
struct provider_ref {
  provider_kind kind = provider_kind::host;
  std::uint32_t cell = 0;  // kind == cell
  std::string card;        // kind == card
  [[nodiscard]] static provider_ref host() { return {}; }
  [[nodiscard]] static provider_ref be() { return {provider_kind::be, 0, {}}; }
  [[nodiscard]] static provider_ref numa_cell(std::uint32_t id) { return {provider_kind::cell, id, {}}; }
  [[nodiscard]] static provider_ref offload_card(std::string name) { return {provider_kind::card, 0, std::move(name)}; }
};

// --- requests and receipts ---------------------------------------------------

struct reservation_request {
  bulkhead::uuid uuid;  // the instance; one reservation per instance per host
  std::string tenant;  // who owns it (non-empty); isolation is per tenant
  qos_class qos = qos_class::LS;
  numa_policy policy = numa_policy::none;
  isolation_scope exclusive = isolation_scope::none;
  std::optional<std::uint32_t> cell;  // only this cell
  std::optional<std::string> card;    // only this card
  resource_amounts amounts;           // at least one kind
  // Generations from view().generations; empty: no check. A view of the
  // caller's vector: keep that host_view alive until reserve() returns.
  std::span<const std::uint64_t> seen;
};

struct reservation_receipt {
  bulkhead::uuid uuid;
  std::optional<std::uint32_t> cell;  // the cell it is bound to
  std::optional<std::string> card;    // the card it is bound to
  cpuset cpus;                        // LSE/LSR: its CPU ids
  resource_amounts amounts;
};

// --- views -------------------------------------------------------------------

struct inventory_view {
  std::size_t slot = 0;  // index into host_view::generations
  provider_kind provider = provider_kind::host;
  std::uint32_t cell = 0;
  std::string card;
  std::string where;  // "host 'h1'", "host 'h1' cell 0", "host 'h1' card 'c0'", "host 'h1' batch"
  any_inventory inventory;
  bool from_cpu_pool = false;  // derived from CPU ids
  std::uint64_t pinned = 0;    // millicores of CPUs given to LSE/LSR (cpu pools)
  std::uint64_t capacity = 0;
  std::uint64_t used = 0;
  std::uint64_t free = 0;       // capacity - used, 0 when over capacity
  bool over_capacity = false;   // used > capacity (capacity was lowered below use)
  std::uint64_t generation = 0;
};

struct cpu_pools_view {
  cpuset all;       // every CPU id of the host's cells
  cpuset reserved;  // for the host (SYSTEM)
  cpuset lse;       // exclusive to LSE instances
  cpuset lsr;       // reserved for LSR instances (BE may share)
  cpuset shared;    // all - reserved - lse - lsr: LS, SYSTEM, BE
  [[nodiscard]] cpuset be_allowed() const { return shared | lsr; }
};

struct host_view {
  std::string name;
  std::vector<inventory_view> inventories;
  std::vector<std::uint64_t> generations;  // by inventory slot; pass as reservation_request::seen
  std::optional<cpu_pools_view> pools;     // when the host has a cpu_pool
  std::size_t reservations = 0;
};

struct reservation_view {
  bulkhead::uuid uuid;
  std::string tenant;
  qos_class qos = qos_class::LS;
  numa_policy policy = numa_policy::none;
  isolation_scope exclusive = isolation_scope::none;
  std::optional<std::uint32_t> cell;
  std::optional<std::string> card;
  cpuset cpus;
  resource_amounts amounts;
};

struct tenancy_entry {
  provider_kind provider = provider_kind::host;
  std::uint32_t cell = 0;
  std::string card;
  std::string where;
  std::vector<std::string> tenants;             // sorted; every tenant with a reservation here
  std::optional<std::string> exclusive_holder;  // the tenant that holds it exclusively
  std::uint64_t reservations = 0;
};
struct tenancy_report {
  std::string host;
  std::vector<tenancy_entry> entries;  // the host, then its cells, then its cards
};

// --- the ledger --------------------------------------------------------------

namespace detail {
struct host_state;
}

// A stable handle to a host (cheap to copy). Valid as long as the ledger that
// returned it lives; calls on a removed host return errc::not_found.
class host_ref {
 public:
  host_ref() = default;
  [[nodiscard]] bool valid() const noexcept { return p_ != nullptr; }

 private:
  friend class ledger;
  explicit host_ref(detail::host_state* p) noexcept : p_(p) {}
  detail::host_state* p_ = nullptr;
};

class ledger {
 public:
  ledger();
  ~ledger();
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  // Validated whole (names, cell ids unique, CPU ids disjoint, one inventory
  // per kind per provider, each inventory valid) before anything is added.
  [[nodiscard]] result<host_ref> add_host(const host_spec& spec);
  [[nodiscard]] result<host_ref> find_host(std::string_view name) const;
  // Refused (conflict) while it holds reservations.
  [[nodiscard]] result<void> remove_host(host_ref h);
  [[nodiscard]] std::vector<std::string> hosts() const;

  [[nodiscard]] result<reservation_receipt> reserve(host_ref h, const reservation_request& r);
  [[nodiscard]] result<reservation_receipt> reserve(std::string_view host, const reservation_request& r);
  // Releases everything the instance holds on the host.
  [[nodiscard]] result<void> release(host_ref h, const bulkhead::uuid& uuid, std::span<const std::uint64_t> seen = {});
  // Replaces the instance's amounts (grow, shrink, add or drop kinds) keeping
  // its cell and card; all or nothing. An empty `amounts` is invalid (release).
  [[nodiscard]] result<reservation_receipt> resize(host_ref h, const bulkhead::uuid& uuid, const resource_amounts& amounts,
                                                   std::span<const std::uint64_t> seen = {});

  // Adds or replaces one inventory. Capacity may drop below what is used
  // (Placement allows it too): nothing already reserved is taken away, the
  // view says over_capacity, and new reservations there are refused.
  // `expected_generation`: the inventory's generation the caller saw
  // (conflict when it moved on); none for an unconditional update.
  // The cpu inventories of a cpu_pool are derived and cannot be set.
  [[nodiscard]] result<void> set_inventory(host_ref h, const provider_ref& where, const any_inventory& inv,
                                           std::optional<std::uint64_t> expected_generation = std::nullopt);
  // Sets the total of the host's BE inventory of kind k (creating it with
  // default rules), as the co-location engine computes it.
  [[nodiscard]] result<void> set_be_capacity(host_ref h, resource_kind k, std::uint64_t total);
  template <resource_kind K>
  [[nodiscard]] result<void> set_be_capacity(host_ref h, unit_of<K> total) {
    return set_be_capacity(h, K, total.count());
  }

  [[nodiscard]] result<host_view> view(host_ref h) const;
  [[nodiscard]] result<tenancy_report> tenancy(host_ref h) const;
  [[nodiscard]] result<reservation_view> find(host_ref h, const bulkhead::uuid& uuid) const;
  [[nodiscard]] result<std::vector<reservation_view>> reservations(host_ref h) const;
  // Recomputes every inventory's used and pinned amounts and every tenancy
  // count from the reservations and compares them with the books; an error
  // (errc::corrupt) names the first difference.
  [[nodiscard]] result<void> audit(host_ref h) const;

 private:
  [[nodiscard]] static detail::host_state* live(host_ref h) noexcept;
  mutable std::shared_mutex dir_mu_;
  std::vector<std::unique_ptr<detail::host_state>> all_;  // never shrinks: handles stay valid
  std::unordered_map<std::string, detail::host_state*> by_name_;
};

}  // namespace bulkhead::ledger

#include "bulkhead/ledger/detail/ledger_impl.hpp"
