// Co-location: batch capacity under each policy against hand-computed values,
// per-cell figures, peak-window caps, "why did it drop", and the suppression
// controller's steps (growth cap, dead band, floor, window).
#include <doctest/doctest.h>

#include "bulkhead/colocation/be_capacity.hpp"
#include "bulkhead/colocation/clock.hpp"
#include "bulkhead/colocation/json.hpp"
#include "bulkhead/colocation/suppression.hpp"

using namespace bulkhead;
using namespace bulkhead::colocation;
using namespace std::chrono;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

uuid id(std::uint8_t n) {
  std::array<std::uint8_t, 16> b{};
  b[15] = n;
  return uuid{b};
}

wall_time at(const char* s) { return *parse_rfc3339(s); }

bool integers_only(const nlohmann::json& j) {
  if (j.is_number_float()) return false;
  if (j.is_structured())
    for (const auto& x : j)
      if (!integers_only(x)) return false;
  return true;
}

// 40 cores, 100 GiB, two cells of 20 cores / 50 GiB.
//   A  LS   req 8000 used 3000   cell 0   mem req 20 GiB used 10 GiB
//   B  LSR  req 4000 used 5000   cell 1   mem req 10 GiB used 12 GiB
//   C  LSE  req 4000 used 1000   any      mem req 8 GiB used 8 GiB
//   D  LS   req 2000 no sample   any      mem req 4 GiB no sample
//   E  BE   req 10000 used 9000  (never counted)
node_load sample() {
  node_load n;
  n.cpu_capacity = millicores{40000};
  n.memory_capacity = bytes{100 * GiB};
  n.system_cpu_used = millicores{1500};
  n.system_cpu_reserved = millicores{2000};
  n.system_memory_used = bytes{3 * GiB};
  n.system_memory_reserved = bytes{2 * GiB};
  n.instances = {
      {id(1), qos_class::LS, 0, millicores{8000}, millicores{3000}, bytes{20 * GiB}, bytes{10 * GiB}},
      {id(2), qos_class::LSR, 1, millicores{4000}, millicores{5000}, bytes{10 * GiB}, bytes{12 * GiB}},
      {id(3), qos_class::LSE, std::nullopt, millicores{4000}, millicores{1000}, bytes{8 * GiB}, bytes{8 * GiB}},
      {id(4), qos_class::LS, std::nullopt, millicores{2000}, std::nullopt, bytes{4 * GiB}, std::nullopt},
      {id(5), qos_class::BE, std::nullopt, millicores{10000}, millicores{9000}, bytes{30 * GiB}, bytes{29 * GiB}},
  };
  n.cells = {{0, millicores{20000}, bytes{50 * GiB}}, {1, millicores{20000}, bytes{50 * GiB}}};
  return n;
}

}  // namespace

TEST_CASE("batch capacity, usage policy, hand-computed") {
  const auto r = compute_be_capacity(sample(), be_config{});
  const auto& c = r.cpu;
  CHECK(c.policy == be_policy::usage);
  CHECK(c.safety_margin == millicores{16000});  // 40000 x 40%
  CHECK(c.system_term == millicores{2000});     // max(used 1500, reserved 2000)
  // A 3000 + B 5000 + C max(4000, 1000) (LSE) + D 2000 (no sample: its request)
  CHECK(c.hp_term == millicores{14000});
  CHECK(c.hp_instances == 4);
  CHECK(c.hp_without_sample == 1);
  CHECK(c.lse_raised_to_request == 1);
  CHECK(c.be == millicores{8000});  // 40000 - 16000 - 2000 - 14000
  CHECK(c.deficit == millicores{0});
  REQUIRE(c.top.size() == 4);
  CHECK(c.top[0].uuid == id(2));  // 5000 counted
  CHECK(c.top[0].counted == millicores{5000});

  const auto& m = r.memory;
  CHECK(m.safety_margin == bytes{35 * GiB});
  CHECK(m.system_term == bytes{3 * GiB});
  CHECK(m.hp_term == bytes{34 * GiB});  // 10 + 12 + 8 + 4 (no LSE rule for memory)
  CHECK(m.be == bytes{28 * GiB});    // 100 - 35 - 3 - 34
}

TEST_CASE("batch capacity, request and maxUsageRequest policies") {
  be_config cfg;
  cfg.cpu_policy = be_policy::request;
  cfg.memory_policy = be_policy::max_usage_request;
  const auto r = compute_be_capacity(sample(), cfg);
  // request: capacity - margin - reserved - sum(request) = 40000 - 16000 - 2000 - 18000
  CHECK(r.cpu.system_term == millicores{2000});
  CHECK(r.cpu.hp_term == millicores{18000});
  CHECK(r.cpu.be == millicores{4000});
  // maxUsageRequest memory: 20 + 12 + 8 + 4 = 44 GiB; 100 - 35 - 3 - 44
  CHECK(r.memory.hp_term == bytes{44 * GiB});
  CHECK(r.memory.be == bytes{18 * GiB});

  cfg.cpu_policy = be_policy::max_usage_request;
  const auto m = compute_be_capacity(sample(), cfg);
  // max(8000,3000) + max(4000,5000) + max(4000,1000) + 2000 = 19000
  CHECK(m.cpu.hp_term == millicores{19000});
  CHECK(m.cpu.be == millicores{3000});

  // request policy subtracts the reservation even when the system uses more.
  auto n = sample();
  n.system_cpu_used = millicores{5000};
  cfg.cpu_policy = be_policy::request;
  CHECK(compute_be_capacity(n, cfg).cpu.system_term == millicores{2000});
  cfg.cpu_policy = be_policy::usage;
  CHECK(compute_be_capacity(n, cfg).cpu.system_term == millicores{5000});
}

TEST_CASE("batch capacity never goes below zero and says by how much it would") {
  auto n = sample();
  n.instances[0].cpu_used = millicores{30000};
  const auto r = compute_be_capacity(n, be_config{});
  CHECK(r.cpu.be == millicores{0});
  // 40000 - 16000 - 2000 - (30000 + 5000 + 4000 + 2000) = -19000
  CHECK(r.cpu.deficit == millicores{19000});
  be_config strict;
  strict.cpu_reclaim_threshold = percent{0};
  CHECK(compute_be_capacity(sample(), strict).cpu.be == millicores{0});
  strict.cpu_reclaim_threshold = percent{101};
  CHECK(validate(strict).error().code() == errc::out_of_range);
}

TEST_CASE("batch capacity per NUMA cell") {
  const auto r = compute_be_capacity(sample(), be_config{});
  REQUIRE(r.cpu_cells.size() == 2);
  const auto& c0 = r.cpu_cells[0];
  CHECK(c0.cell == 0u);
  CHECK(c0.safety_margin == millicores{8000});
  CHECK(c0.system_term == millicores{1000});  // max(ceil(1500/2), 2000/2)
  // A 3000 + C max(2000, 500) + D 1000
  CHECK(c0.hp_term == millicores{6000});
  CHECK(c0.be == millicores{5000});
  // B 5000 + C 2000 + D 1000
  CHECK(r.cpu_cells[1].hp_term == millicores{8000});
  CHECK(r.cpu_cells[1].be == millicores{3000});
  REQUIRE(r.memory_cells.size() == 2);
  // cell 0 memory: 50 - 17.5 - 1.5 - (10 + 4 + 2) GiB
  CHECK(r.memory_cells[0].be == bytes{15 * GiB});
}

TEST_CASE("a peak window caps batch capacity at a fraction of the host") {
  window_occurrence w{"festival", at("2026-11-11T00:00:00+08:00"), at("2026-11-11T01:00:00+08:00"), *ledger::rational::make(1, 10)};
  auto r = compute_be_capacity(sample(), be_config{}, w);
  CHECK(r.cpu.formula == millicores{8000});
  CHECK(r.cpu.window_cap == millicores{4000});
  CHECK(r.cpu.be == millicores{4000});
  w.be_fraction = *ledger::rational::make(1, 4);
  CHECK(compute_be_capacity(sample(), be_config{}, w).cpu.be == millicores{8000});  // cap 10000 does not bind
  w.be_fraction = ledger::rational::whole(0);
  r = compute_be_capacity(sample(), be_config{}, w);
  CHECK(r.cpu.be == millicores{0});
  CHECK(r.memory.be == bytes{0});
  CHECK(r.cpu_cells[0].be == millicores{0});
}

TEST_CASE("why did batch capacity drop: answered term by term") {
  const auto before = compute_be_capacity(sample(), be_config{});
  auto n = sample();
  n.instances[1].cpu_used = millicores{9000};  // B got busier
  const auto after = compute_be_capacity(n, be_config{});
  CHECK(after.cpu.be == millicores{4000});
  const auto ch = explain_change(before.cpu, after.cpu);
  CHECK(ch.before == millicores{8000});
  CHECK(ch.after == millicores{4000});
  CHECK(ch.main_cause == "hp_term");
  REQUIRE(ch.grew.size() == 1);
  CHECK(ch.grew[0].uuid == id(2));
  CHECK(ch.grew[0].before == millicores{5000});
  CHECK(ch.grew[0].after == millicores{9000});

  auto smaller = sample();
  smaller.cpu_capacity = millicores{30000};
  const auto cap = explain_change(before.cpu, compute_be_capacity(smaller, be_config{}).cpu);
  CHECK(cap.after == millicores{2000});  // 30000 - 12000 - 2000 - 14000
  CHECK(cap.main_cause == "capacity");

  auto sys = sample();
  sys.system_cpu_used = millicores{7000};
  CHECK(explain_change(before.cpu, compute_be_capacity(sys, be_config{}).cpu).main_cause == "system_term");

  window_occurrence w{"festival", at("2026-11-11T00:00:00+08:00"), at("2026-11-11T01:00:00+08:00"), ledger::rational::whole(0)};
  const auto win = explain_change(before.cpu, compute_be_capacity(sample(), be_config{}, w).cpu);
  CHECK(win.main_cause == "window_cap");
  CHECK(explain_change(before.cpu, before.cpu).main_cause.empty());

  nlohmann::json j = ch;
  CHECK(integers_only(j));
  CHECK(j["main_cause"] == "hp_term");
  CHECK(j["unit"] == "millicores");
  nlohmann::json e = after;
  CHECK(integers_only(e));
  CHECK(e["cpu"]["batch"] == 4000);
  CHECK(e["cpu"]["hp_term"] == 18000);
  CHECK(e["memory"]["unit"] == "bytes");
}

namespace {
suppression_input input(std::uint64_t non_be) {
  suppression_input in;
  in.capacity = millicores{64000};
  in.non_be_used = millicores{non_be};
  in.system_used = millicores{1000};
  in.system_reserved = millicores{2000};
  return in;
}
}  // namespace

TEST_CASE("suppression: first step, growth cap, dead band, immediate shrink, floor") {
  manual_clock clock(at("2026-11-10T12:00:00Z"));
  auto c = suppression_controller::make(suppression_config{}, clock);
  REQUIRE(c);
  // threshold capacity 41600; growth cap 6400; dead band 640.
  auto d = c->step(input(20000));
  REQUIRE(d);
  CHECK(d->reason == suppression_reason::first_step);
  CHECK(d->limit == millicores{19600});  // 41600 - 20000 - max(1000, 2000)
  CHECK(d->changed);
  CHECK(d->why.threshold_capacity == millicores{41600});
  CHECK(d->spec.cpu.period == microseconds{100000});
  CHECK(d->spec.cpu.quota == limit<microseconds>{microseconds{1960000}});
  CHECK_FALSE(d->spec.freeze);

  clock.advance(seconds{1});
  d = c->step(input(10000));  // target 29600: rise of 10000 capped at 6400
  CHECK(d->reason == suppression_reason::grow_capped);
  CHECK(d->limit == millicores{26000});
  CHECK(d->why.target == millicores{29600});
  CHECK(d->why.growth_cap == millicores{6400});

  d = c->step(input(10000));  // rise of 3600: within the cap
  CHECK(d->reason == suppression_reason::grow);
  CHECK(d->limit == millicores{29600});

  d = c->step(input(10300));  // target 29300: a change of 300 < 640 is skipped
  CHECK(d->reason == suppression_reason::dead_band);
  CHECK(d->limit == millicores{29600});
  CHECK_FALSE(d->changed);
  CHECK(d->why.target == millicores{29300});

  d = c->step(input(40000));  // online rose: shrink at once, to the floor
  CHECK(d->reason == suppression_reason::shrink);
  CHECK(d->limit == millicores{2000});
  CHECK(d->why.formula == millicores{0});
  CHECK(d->why.deficit == millicores{400});
  CHECK(d->why.previous == millicores{29600});

  d = c->step(input(40000));
  CHECK(d->reason == suppression_reason::unchanged);
  CHECK_FALSE(d->changed);
  CHECK(d->at == at("2026-11-10T12:00:01Z"));

  nlohmann::json j = *d;
  CHECK(integers_only(j));
  CHECK(j["why"]["floor"] == 2000);
  CHECK(j["reason"] == "unchanged");
  CHECK(j["spec"]["cfs_quota_us"] == 200000);
}

TEST_CASE("suppression: a peak window takes BE to its cap at once and BE returns after it") {
  peak_calendar cal;
  REQUIRE(cal.add_absolute("festival", "2026-11-11T00:00:00+08:00", "2026-11-11T01:00:00+08:00", ledger::rational::whole(0)));
  manual_clock clock(at("2026-11-10T23:59:58+08:00"));
  auto c = *suppression_controller::make(suppression_config{}, clock, &cal, millicores{20000});
  auto d = c.step(input(10000));
  CHECK(d->limit == millicores{26400});  // grew by 6400 from the initial 20000
  clock.set(at("2026-11-11T00:00:00+08:00"));
  d = c.step(input(10000));
  CHECK(d->reason == suppression_reason::window_cap);
  CHECK(d->limit == millicores{0});  // below the floor: the window says all to online
  CHECK(d->spec.freeze);
  CHECK(d->spec.cpu.quota == limit<microseconds>{cfs_quota_min});
  REQUIRE(d->why.window);
  CHECK(d->why.window->name == "festival");
  CHECK(d->why.window_cap == millicores{0});
  clock.set(at("2026-11-11T00:59:59+08:00"));
  CHECK(c.step(input(0))->limit == millicores{0});
  clock.set(at("2026-11-11T01:00:00+08:00"));
  d = c.step(input(10000));
  CHECK(d->reason == suppression_reason::grow_capped);
  CHECK(d->limit == millicores{6400});

  // A fraction caps without freezing; small moves down to the cap are never skipped.
  peak_calendar quarter;
  REQUIRE(quarter.add_absolute("q", "2026-11-11T00:00:00+08:00", "2026-11-11T01:00:00+08:00", *ledger::rational::make(1, 4)));
  clock.set(at("2026-11-10T23:00:00+08:00"));
  auto q = *suppression_controller::make(suppression_config{}, clock, &quarter, millicores{16100});
  clock.set(at("2026-11-11T00:10:00+08:00"));
  d = q.step(input(10000));
  CHECK(d->limit == millicores{16000});  // 64000 / 4, although 100 < the 640 dead band
  CHECK(d->reason == suppression_reason::window_cap);
  CHECK_FALSE(d->spec.freeze);
}

TEST_CASE("suppression in cpuset mode gives whole CPUs from the BE-allowed set") {
  manual_clock clock;
  suppression_config cfg;
  cfg.mode = suppress_mode::cpuset;
  auto c = *suppression_controller::make(cfg, clock);
  suppression_input in;
  in.capacity = millicores{8000};
  in.be_cpus = cpuset::range(3, 7);
  in.non_be_used = millicores{1000};
  auto d = c.step(in);  // 5200 - 1000 = 4200: 4 whole CPUs
  CHECK(d->limit == millicores{4000});
  CHECK(d->spec.cpu.cpus->to_string() == "4-7");
  in.non_be_used = millicores{4000};  // 1200: raised to the 2-CPU floor
  d = c.step(in);
  CHECK(d->limit == millicores{2000});
  CHECK(d->spec.cpu.cpus->to_string() == "6-7");
  in.be_cpus = cpuset{};
  CHECK(c.step(in).error().code() == errc::invalid_argument);
}

TEST_CASE("suppression configuration is validated") {
  manual_clock clock;
  suppression_config cfg;
  cfg.threshold = percent{120};
  CHECK(suppression_controller::make(cfg, clock).error().code() == errc::out_of_range);
  cfg = {};
  cfg.max_growth = percent{0};
  CHECK(suppression_controller::make(cfg, clock).error().code() == errc::out_of_range);
  cfg = {};
  cfg.period = microseconds{10};
  CHECK(suppression_controller::make(cfg, clock).error().code() == errc::out_of_range);
  auto c = *suppression_controller::make(suppression_config{}, clock);
  CHECK(c.step(suppression_input{}).error().code() == errc::invalid_argument);
}

TEST_CASE("suppression: a saturated host drops BE to the floor at once") {
  manual_clock clock;
  auto c = *suppression_controller::make(suppression_config{}, clock, nullptr, millicores{34000});
  // Online got only what BE left it: 64000 - 34000 - 1500 = 28500. The plain
  // formula would keep BE at 41600 - 28500 - 2000 = 11100; the host was full,
  // so online wanted more than it got.
  auto in = input(28500);
  in.system_used = millicores{1500};
  in.be_used = millicores{34000};
  auto d = c.step(in);
  CHECK(d->why.saturated);
  CHECK(d->why.target == millicores{11100});
  CHECK(d->reason == suppression_reason::saturated);
  CHECK(d->limit == millicores{2000});
  // Not saturated (room left beyond the dead band): the formula governs, and
  // growth resumes at the normal pace.
  in.non_be_used = millicores{20000};
  in.be_used = millicores{2000};
  d = c.step(in);
  CHECK_FALSE(d->why.saturated);
  CHECK(d->reason == suppression_reason::grow_capped);
  CHECK(d->limit == millicores{8400});
  nlohmann::json j = *d;
  CHECK(j["why"]["saturated"] == false);
  CHECK(j["why"]["be_used"] == 2000);
}
