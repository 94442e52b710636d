// Live test (issue 14): bulkhead-agent against real QEMU guests, scraped by a
// real Prometheus and read by the real node_exporter textfile collector.
//
// Two guests (one burning its vCPU, one idle) under the harness's libvirtd;
// bulkhead-agent meters them at 1 Hz (read-only connection), serves /metrics
// to Prometheus and writes its textfile for node_exporter. The burning guest
// is destroyed and started again half-way (a new QEMU process: a new
// incarnation). Checked:
//   - exact per incarnation: in every scrape of the agent, the raw libvirt
//     counter it publishes (bulkhead_instance_cpu_seconds_total, exact
//     decimal) minus the accounted CPU (bulkhead_accounted_cpu_nanoseconds_total)
//     is the same for every scrape of one incarnation: each accounted
//     nanosecond is one libvirt counted, none lost or twice; that constant
//     (the counter at the agent's first sample of the incarnation) is at
//     least libvirt's own reading taken before the agent started (first
//     incarnation) or 0 (the second);
//   - the tail: what libvirt counted after the incarnation's last sample is
//     at most what the domain can use in the time since that sample (the
//     documented unobservable tail, one interval plus the stop);
//   - the journal, read after the agent stopped (SIGTERM, exit 0), holds per
//     incarnation exactly what the last scrape of it showed or more, and
//     never more than libvirt counted;
//   - Prometheus scraped it (OpenMetrics) with no error and holds the same
//     per-incarnation relation; node_exporter serves the textfile's values;
//   - the agent's connection is read-only (virt-admin client-info).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "agent_support.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "live_guest.hpp"
#include "net.hpp"
#include "run_process.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// "48.772617035" -> 48772617035 (the agent writes exact decimal seconds).
std::int64_t ns_of_seconds(const std::string& s) {
  const auto dot = s.find('.');
  std::int64_t whole = std::stoll(s.substr(0, dot));
  std::int64_t frac = 0;
  if (dot != std::string::npos) {
    std::string f = s.substr(dot + 1);
    f.resize(9, '0');
    frac = std::stoll(f);
  }
  return whole * 1'000'000'000 + frac;
}

// The line of a sample of `family` for the instance named `name`.
std::optional<std::string> value_of(const std::string& text, const std::string& family, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(family + "{", 0) == 0 && line.find("name=\"" + name + "\"") != std::string::npos)
      return line.substr(line.rfind(' ') + 1);
  return std::nullopt;
}
std::optional<std::string> label_of(const std::string& text, const std::string& family, const std::string& name,
                                    const std::string& label) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(family + "{", 0) == 0 && line.find("name=\"" + name + "\"") != std::string::npos) {
      const auto p = line.find(label + "=\"");
      if (p == std::string::npos) return std::nullopt;
      const auto b = p + label.size() + 2;
      return line.substr(b, line.find('"', b) - b);
    }
  return std::nullopt;
}

struct scrape {
  std::string incarnation;
  std::int64_t raw = 0;        // libvirt's counter at the agent's sample, ns
  std::int64_t accounted = 0;  // the journal's total for the instance, ns
  double round_end = 0;        // bulkhead_agent_last_round_timestamp_seconds
};

std::optional<scrape> scrape_guest(int port, const std::string& name) {
  const auto r = test::http_get_metrics(port);
  if (r.status != 200) return std::nullopt;
  const auto raw = value_of(r.body, "bulkhead_instance_cpu_seconds_total", name);
  const auto acc = value_of(r.body, "bulkhead_accounted_cpu_nanoseconds_total", name);
  const auto inc = label_of(r.body, "bulkhead_instance_info", name, "incarnation");
  const auto end = test::sample_value(r.body, "bulkhead_agent_last_round_timestamp_seconds");
  if (!raw || !acc || !inc || end.empty()) return std::nullopt;
  return scrape{*inc, ns_of_seconds(*raw), std::stoll(*acc), std::stod(end)};
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("bulkhead-agent on real guests: accounted CPU equals libvirt's counters per incarnation") {
  const auto& env = live::require_live();
  const auto agent_bin = test::agent_process::program();
  const auto prometheus = std::string("/usr/bin/prometheus"), node_exporter = std::string("/usr/bin/prometheus-node-exporter");
  if (!fs::exists(prometheus)) test::skip("/usr/bin/prometheus is missing (Debian package prometheus)");
  if (!fs::exists(node_exporter)) test::skip("/usr/bin/prometheus-node-exporter is missing (Debian package prometheus-node-exporter)");
  live::connection conn(env);
  live::guest burn(env, conn, {.tag = "agent-burn", .mode = live::guest_mode::burn});
  live::guest idle(env, conn, {.tag = "agent-idle", .mode = live::guest_mode::idle});
  burn.wait_ready();
  idle.wait_ready();
  const auto before = live::read_cpu(burn.domain());  // before the agent's first sample

  test::temp_dir work("bulkhead-live-agent");
  const auto journal = work.str() + "/journal";
  const auto texts = work.str() + "/textfile";
  fs::create_directories(journal);
  fs::create_directories(texts);
  fs::permissions(journal, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  const int port = test::free_port();
  test::agent_process agent({"--journal", journal, "--uri", env.uri, "--interval", "1s", "--listen",
                             "127.0.0.1:" + std::to_string(port), "--textfile", texts + "/bulkhead.prom"});
  const double started_wall = wall_now();
  REQUIRE_MESSAGE(test::wait_for([&] { return scrape_guest(port, burn.name()).has_value(); }, 120s), agent.log());

  // Prometheus scraping the agent; node_exporter reading its textfile.
  const int prom_port = test::free_port(), ne_port = test::free_port();
  std::ofstream(work.path() / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: bulkhead\n    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
  test::background_process prom({prometheus, "--config.file=" + (work.path() / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (work.path() / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                                (work.path() / "prometheus.log").string());
  test::background_process ne({node_exporter, "--web.listen-address=127.0.0.1:" + std::to_string(ne_port),
                               "--collector.disable-defaults", "--collector.textfile",
                               "--collector.textfile.directory=" + texts},
                              (work.path() / "node_exporter.log").string());

  // The agent's libvirt connection is read-only (libvirtd says so of each
  // client: virt-admin client-info ... "readonly : yes").
  {
    auto list = test::run_process({"/usr/bin/virt-admin", "-c", "libvirtd:///system", "srv-clients-list", "libvirtd"});
    REQUIRE(list.exit_code == 0);
    std::istringstream in(list.out);
    std::size_t mine = 0, readonly = 0;
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string id;
      if (!(f >> id) || id.find_first_not_of("0123456789") != std::string::npos) continue;
      auto info = test::run_process({"/usr/bin/virt-admin", "-c", "libvirtd:///system", "client-info", "libvirtd", id});
      if (info.out.find("unix_process_id: " + std::to_string(agent.pid()) + "\n") == std::string::npos) continue;
      ++mine;
      INFO(info.out);
      readonly += info.out.find("readonly       : yes\n") != std::string::npos ? 1 : 0;
    }
    CHECK(mine >= 1);
    CHECK(readonly == mine);
  }

  std::map<std::string, std::vector<scrape>> by_inc;
  const auto sample_for = [&](std::chrono::seconds how_long) {
    const auto end = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < end) {
      if (auto s = scrape_guest(port, burn.name())) by_inc[s->incarnation].push_back(*s);
      std::this_thread::sleep_for(700ms);
    }
  };
  sample_for(12s);
  const std::string inc1 = by_inc.empty() ? "" : by_inc.rbegin()->first;
  REQUIRE_FALSE(inc1.empty());

  // Destroy and start: a new QEMU process, a new incarnation.
  const auto last1 = scrape_guest(port, burn.name());
  const auto at_destroy = live::read_cpu(burn.domain());
  const double destroy_wall = wall_now();
  burn.destroy();
  burn.start();
  burn.wait_ready();
  sample_for(12s);
  agent.signal(SIGTERM);
  const auto code = agent.wait();
  INFO(agent.log());
  CHECK(code == 0);
  const auto at_end = live::read_cpu(burn.domain());
  const double end_wall = wall_now();

  REQUIRE(by_inc.size() >= 2);
  // Exact per incarnation: raw - accounted is one constant.
  std::map<std::string, std::int64_t> baseline;
  for (const auto& [inc, v] : by_inc) {
    REQUIRE(v.size() >= 3);
    const auto c = v.front().raw - v.front().accounted;
    baseline[inc] = c;
    for (const auto& s : v) {
      INFO("incarnation " << inc << " raw " << s.raw << " accounted " << s.accounted);
      CHECK(s.raw - s.accounted == c);
    }
  }
  // The first incarnation's baseline is libvirt's counter at the agent's
  // first sample: after the test's own reading from before the agent ran.
  CHECK(baseline[inc1] >= before.cpu_time.count());
  const std::string inc2 = [&] {
    for (const auto& [inc, v] : by_inc)
      if (inc != inc1) return inc;
    return std::string();
  }();
  // The second starts from the first's total: the instance's accounted CPU
  // is the sum of its incarnations.
  const auto& v2 = by_inc[inc2];
  const auto& v1 = by_inc[inc1];
  CHECK(v2.front().accounted >= v1.back().accounted);
  const auto cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));

  // The tail of incarnation 1: what libvirt counted after the agent's last
  // sample, at most what the domain can use in the time since (2 host CPUs).
  REQUIRE(last1);
  const auto tail1 = at_destroy.cpu_time.count() - last1->raw;
  CHECK(tail1 >= 0);
  CHECK(static_cast<double>(tail1) <= cores * (destroy_wall - last1->round_end + 0.05) * 1e9);

  // The journal after the stop. The instance's accounted total is the sum
  // of its incarnations, so raw = c1 + J1 through incarnation 1 and
  // raw = c2 + J1 + J2 through incarnation 2 (J: journaled per incarnation).
  auto view = accounting::journal::open_read_only(journal);
  REQUIRE(view);
  std::map<std::string, std::int64_t> journaled;
  for (const auto& i : view->totals.by_incarnation())
    if (i.labels.name == burn.name()) journaled[std::to_string(i.incarnation.value)] = static_cast<std::int64_t>(i.totals.cpu_time_ns);
  REQUIRE(journaled.count(inc1));
  REQUIRE(journaled.count(inc2));
  const auto j1 = journaled[inc1], j2 = journaled[inc2];
  // At least what the last scrape acknowledged (a round may have come after it) ...
  CHECK(j1 >= v1.back().accounted);
  CHECK(j1 + j2 >= v2.back().accounted);
  // ... and never more than libvirt counted by the end of the incarnation.
  CHECK(baseline[inc1] + j1 <= at_destroy.cpu_time.count());
  CHECK(baseline[inc2] + j1 >= 0);  // incarnation 2's counter at the agent's first sample of it
  const auto tail2 = at_end.cpu_time.count() - (baseline[inc2] + j1 + j2);
  CHECK(tail2 >= 0);
  CHECK(static_cast<double>(tail2) <= cores * (end_wall - v2.back().round_end + 0.05) * 1e9);

  // Prometheus: scraped with no error, and its samples keep the relation
  // (float64 of the exact decimal: within a microsecond).
  nlohmann::json targets;
  REQUIRE(test::wait_for(
      [&] {
        auto b = test::http_get(prom_port, "/api/v1/targets");
        if (!b) return false;
        targets = nlohmann::json::parse(*b, nullptr, false);
        return !targets.is_discarded() && !targets["data"]["activeTargets"].empty();
      },
      30s));
  CHECK(targets["data"]["activeTargets"][0]["lastError"] == "");
  const auto q = [&](const std::string& expr) {
    auto b = test::http_get(prom_port, "/api/v1/query_range?query=" + expr + "&start=" + std::to_string(started_wall) +
                                           "&end=" + std::to_string(end_wall) + "&step=1");
    REQUIRE(b);
    return nlohmann::json::parse(*b);
  };
  const auto name_sel = "%7Bname%3D%22" + burn.name() + "%22%7D";
  const auto raw_q = q("bulkhead_instance_cpu_seconds_total" + name_sel);
  const auto acc_q = q("bulkhead_accounted_cpu_nanoseconds_total" + name_sel);
  REQUIRE(raw_q["data"]["result"].size() >= 1);
  REQUIRE(acc_q["data"]["result"].size() == 1);
  std::size_t compared = 0, matched = 0;
  std::map<double, double> acc;
  for (const auto& p : acc_q["data"]["result"][0]["values"]) acc[p[0].get<double>()] = std::stod(p[1].get<std::string>());
  for (const auto& series : raw_q["data"]["result"])
    for (const auto& p : series["values"]) {
      // Both samples of one evaluation come from one scrape of the agent (one
      // snapshot): raw x 1e9 - accounted is the constant of the incarnation
      // that snapshot read (the float64 of the exact decimal: within 1 us).
      const auto t = p[0].get<double>();
      if (!acc.count(t)) continue;
      ++compared;
      const double d = std::stod(p[1].get<std::string>()) * 1e9 - acc[t];
      bool matches = false;
      for (const auto& [inc, c] : baseline) matches = matches || std::fabs(d - static_cast<double>(c)) < 1e3;
      matched += matches ? 1 : 0;
    }
  CHECK(compared >= 10);
  CHECK(matched == compared);
  std::fprintf(stderr,
               "agent_live: incarnation %s: %zu scrapes, libvirt minus accounted %lld ns throughout, tail %lld ns; "
               "incarnation %s: %zu scrapes, tail %lld ns; journal %lld + %lld ns; Prometheus pairs %zu of %zu\n",
               inc1.c_str(), v1.size(), static_cast<long long>(baseline[inc1]), static_cast<long long>(tail1), inc2.c_str(),
               v2.size(), static_cast<long long>(tail2), static_cast<long long>(j1), static_cast<long long>(j2), matched,
               compared);

  // node_exporter serves the textfile (its values as float64).
  auto body = test::http_get(ne_port, "/metrics");
  REQUIRE(body);
  CHECK(body->find("node_textfile_scrape_error 0") != std::string::npos);
  const auto ne_acc = value_of(*body, "bulkhead_accounted_cpu_nanoseconds_total", burn.name());
  REQUIRE(ne_acc);
  std::ifstream tf(texts + "/bulkhead.prom");
  const std::string text(std::istreambuf_iterator<char>(tf), {});
  const auto file_acc = value_of(text, "bulkhead_accounted_cpu_nanoseconds_total", burn.name());
  REQUIRE(file_acc);
  CHECK(std::stod(*ne_acc) == static_cast<double>(std::stoll(*file_acc)));  // the agent's last textfile
}
