// The co-location simulation (see colocation_sim.hpp and
// docs/colocation-simulation.md). Prints the three variants of one run and
// whether each goal was met.
//   bench_colocation_sim [--json] [--zoneinfo DIR] [--seed N] [--no-saturation-rule]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "colocation_sim.hpp"

using namespace bulkhead;
using namespace bulkhead::colocation;

namespace {
nlohmann::json to_json(const sim::variant_result& r) {
  return {{"name", r.name},
          {"utilisation_bp", r.utilisation_bp()},
          {"online_demand_mcms", r.online_demand_mcms},
          {"online_used_mcms", r.online_used_mcms},
          {"batch_used_mcms", r.batch_used_mcms},
          {"system_used_mcms", r.system_used_mcms},
          {"shortfall_batch_mcms", r.shortfall_batch_mcms},
          {"shortfall_capacity_mcms", r.shortfall_capacity_mcms},
          {"batch_in_window_mcms", r.batch_in_window_mcms},
          {"shortfall_episodes", r.shortfall_episodes},
          {"longest_episode_ms", r.longest_episode_ms},
          {"controller_steps", r.controller_steps},
          {"limit_changes", r.limit_changes}};
}
}  // namespace

int main(int argc, char** argv) {
  sim::config cfg;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--zoneinfo") && i + 1 < argc) cfg.zoneinfo_root = argv[++i];
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) cfg.seed = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--no-saturation-rule")) cfg.feed_be_usage = false;
    else {
      std::fprintf(stderr, "usage: %s [--json] [--zoneinfo DIR] [--seed N] [--no-saturation-rule]\n", argv[0]);
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto rep = sim::run(cfg);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!rep) {
    std::fprintf(stderr, "simulation failed: %s\n", rep.error().describe().c_str());
    return 1;
  }
  const auto& a = rep->a;
  const auto& b = rep->b;
  const auto& c = rep->c;
  const bool goal_util = static_cast<u128>(b.utilisation_bp()) * 2 >= static_cast<u128>(a.utilisation_bp()) * 3;
  const auto interval_ms = static_cast<std::uint64_t>(cfg.control_interval.count());
  const bool goal_short = b.longest_episode_ms <= interval_ms && c.longest_episode_ms <= interval_ms;
  const bool goal_window = c.batch_in_window_mcms == 0;
  if (json) {
    nlohmann::json j = {{"ticks", rep->ticks},
                        {"tick_ms", cfg.tick.count()},
                        {"control_interval_ms", cfg.control_interval.count()},
                        {"window", {{"start", rep->window_start_utc}, {"end", rep->window_end_utc}}},
                        {"variants", {to_json(a), to_json(b), to_json(c)}},
                        {"goals", {{"b_utilisation_at_least_1_5x_a", goal_util},
                                   {"shortfall_within_one_interval", goal_short},
                                   {"c_zero_batch_in_window", goal_window}}},
                        {"wall_ms", ms}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("host: %llu millicores, online request %llu, system ~%llu (reserved %llu); tick %lld ms, control interval %lld ms\n",
              static_cast<unsigned long long>(cfg.capacity.count()), static_cast<unsigned long long>(cfg.online_request.count()),
              static_cast<unsigned long long>(cfg.system_used.count()), static_cast<unsigned long long>(cfg.system_reserved.count()),
              static_cast<long long>(cfg.tick.count()), static_cast<long long>(cfg.control_interval.count()));
  std::printf("simulated %s + 24 h (%llu ticks) in %lld ms of wall time; peak window %s .. %s (BE fraction 0)\n\n",
              cfg.start.c_str(), static_cast<unsigned long long>(rep->ticks), static_cast<long long>(ms),
              rep->window_start_utc.c_str(), rep->window_end_utc.c_str());
  std::printf("%-22s %12s %16s %16s %16s %9s %12s %16s\n", "variant", "utilisation", "online core-s", "batch core-s",
              "shortfall core-s", "episodes", "longest ms", "batch in window");
  for (const auto* r : {&a, &b, &c})
    std::printf("%-22s %12s %16s %16s %16s %9llu %12llu %16s\n", r->name.c_str(), sim::percent_bp(r->utilisation_bp()).c_str(),
                sim::core_seconds(r->online_used_mcms).c_str(), sim::core_seconds(r->batch_used_mcms).c_str(),
                sim::core_seconds(r->shortfall_batch_mcms).c_str(), static_cast<unsigned long long>(r->shortfall_episodes),
                static_cast<unsigned long long>(r->longest_episode_ms), sim::core_seconds(r->batch_in_window_mcms).c_str());
  std::printf("\nbatch jobs of %llu core-seconds completed: a %llu, b %llu, c %llu\n",
              static_cast<unsigned long long>(cfg.job_core_seconds),
              static_cast<unsigned long long>(a.batch_used_mcms / 1000000 / cfg.job_core_seconds),
              static_cast<unsigned long long>(b.batch_used_mcms / 1000000 / cfg.job_core_seconds),
              static_cast<unsigned long long>(c.batch_used_mcms / 1000000 / cfg.job_core_seconds));
  std::printf("utilisation b / a = %llu.%02llu\n",
              static_cast<unsigned long long>(b.utilisation_bp() * 100 / a.utilisation_bp() / 100),
              static_cast<unsigned long long>(b.utilisation_bp() * 100 / a.utilisation_bp() % 100));
  std::printf("goal (b) >= 1.5 x (a) utilisation: %s\n", goal_util ? "met" : "MISSED");
  std::printf("goal online shortfall within one control interval after each rise: %s (longest %llu ms, b; %llu ms, c)\n",
              goal_short ? "met" : "MISSED", static_cast<unsigned long long>(b.longest_episode_ms),
              static_cast<unsigned long long>(c.longest_episode_ms));
  std::printf("goal (c) zero batch CPU inside the window: %s\n", goal_window ? "met" : "MISSED");
  return 0;
}
