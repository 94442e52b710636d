// bulkhead-agent's metrics read by the real tools of the Prometheus
// ecosystem (Debian packages prometheus and prometheus-node-exporter), with
// a cgroup copy whose counters the test sets and a libvirt node whose names
// try to break the format:
//   - `promtool check metrics` parses its textfile; the only lint it reports
//     is the documented one (integer nanoseconds instead of float seconds);
//   - node_exporter's textfile collector serves the agent's textfile with
//     the exact accounted integers;
//   - a real Prometheus scrapes /metrics (negotiating OpenMetrics) and its
//     query API returns the exact accounted integers.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent_support.hpp"
#include "net.hpp"
#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string need(const char* path, const char* package) {
  if (!fs::exists(path)) test::skip(std::string(path) + " is missing (Debian package " + package + ")");
  return path;
}
std::string hostile() { return "test://" + test::fixture("libvirt/hostile-names-node.xml").string(); }

// The accounted CPU of the group named web in an exposition ("" when absent).
std::string web_cpu(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("bulkhead_accounted_cpu_nanoseconds_total{", 0) == 0 && line.find("name=\"web\"") != std::string::npos)
      return line.substr(line.rfind(' ') + 1);
  return "";
}

struct agent_fixture {
  explicit agent_fixture(std::vector<std::string> extra = {}) : port(test::free_port()) {
    cg.set_cpu("web", v0);
    std::vector<std::string> args{"--journal", journal.str(), "--uri", hostile(), "--cgroup-parent", "bulkhead",
                                  "--fs-root", cg.root(), "--mount-table", cg.mount_table(), "--interval", "200ms",
                                  "--listen", "127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    proc.emplace(args);
    REQUIRE(test::wait_for([&] { return web_cpu(test::http_get_metrics(port).body) == "0"; }, 60s));
    // Past 2^32 and with every digit significant (below 2^53: a float64 keeps it).
    cg.set_cpu("web", v0 + grown);
    REQUIRE(test::wait_for([&] { return web_cpu(test::http_get_metrics(port).body) == std::to_string(grown); }, 60s));
  }
  ~agent_fixture() {
    if (proc && proc->running()) {
      proc->signal(SIGTERM);
      (void)proc->wait();
    }
  }
  static constexpr std::uint64_t v0 = 1'000'000;
  static constexpr std::uint64_t grown = 8'765'432'109'876;
  test::cgroup_copy cg;
  test::temp_dir journal{"bulkhead-agent-journal"};
  int port;
  std::optional<test::agent_process> proc;
};

}  // namespace

TEST_CASE("promtool parses the agent's textfile; its only lint is the documented integer units") {
  const auto promtool = need("/usr/bin/promtool", "prometheus");
  test::temp_dir out;
  const auto file = out.str() + "/bulkhead.prom";
  agent_fixture a({"--textfile", file});
  REQUIRE(test::wait_for([&] { return web_cpu([&] {
                                        std::ifstream in(file);
                                        return std::string(std::istreambuf_iterator<char>(in), {});
                                      }()) == std::to_string(agent_fixture::grown); },
                         30s));
  auto r = test::run_process({"/bin/sh", "-c", promtool + " check metrics < '" + file + "'"});
  INFO(r.out << r.err);
  // 0: clean; 3: lint problems only (1 would be a parse error).
  CHECK((r.exit_code == 0 || r.exit_code == 3));
  std::istringstream lint(r.out + r.err);
  std::size_t problems = 0;
  for (std::string line; std::getline(lint, line);) {
    if (line.empty()) continue;
    ++problems;
    INFO(line);
    CHECK((line.rfind("bulkhead_accounted_", 0) == 0 || line.rfind("bulkhead_tenant_accounted_", 0) == 0));
    CHECK(line.find("use base unit \"seconds\" instead of \"nanoseconds\"") != std::string::npos);
  }
  CHECK(problems == 6);  // cpu, vcpu and memory-byte nanoseconds, per instance and per tenant
}

TEST_CASE("node_exporter's textfile collector serves the agent's textfile with the exact integers") {
  const auto exporter = need("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter");
  test::temp_dir out;
  agent_fixture a({"--textfile", out.str() + "/bulkhead.prom"});
  const int port = test::free_port();
  test::background_process ne({exporter, "--web.listen-address=127.0.0.1:" + std::to_string(port),
                               "--collector.disable-defaults", "--collector.textfile",
                               "--collector.textfile.directory=" + out.str()},
                              (out.path() / "node_exporter.log").string());
  // node_exporter re-renders every value as a float64 ("8.765432109876e+12"):
  // below 2^53 it is still the exact integer.
  std::optional<std::string> body;
  REQUIRE(test::wait_for(
      [&] {
        body = test::http_get(port, "/metrics");
        if (!body || web_cpu(*body).empty()) return false;
        const double v = std::stod(web_cpu(*body));
        return v == static_cast<double>(agent_fixture::grown);
      },
      60s));
  CHECK(static_cast<std::uint64_t>(std::stod(web_cpu(*body))) == agent_fixture::grown);
  CHECK(body->find("node_textfile_scrape_error 0") != std::string::npos);
  CHECK(body->find("bulkhead_agent_journal_up 1") != std::string::npos);
  CHECK(body->find(R"(name="evil \"quoted\" name")") != std::string::npos);
}

TEST_CASE("Prometheus scrapes /metrics and returns the exact accounted integers") {
  const auto prometheus = need("/usr/bin/prometheus", "prometheus");
  agent_fixture a;
  test::temp_dir t;
  const int port = test::free_port();
  std::ofstream(t.path() / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: bulkhead\n    static_configs:\n      - targets: ['127.0.0.1:" << a.port << "']\n";
  test::background_process prom({prometheus, "--config.file=" + (t.path() / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (t.path() / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                                (t.path() / "prometheus.log").string());
  nlohmann::json targets;
  REQUIRE(test::wait_for(
      [&] {
        auto b = test::http_get(port, "/api/v1/targets");
        if (!b) return false;
        targets = nlohmann::json::parse(*b, nullptr, false);
        if (targets.is_discarded()) return false;
        const auto& active = targets["data"]["activeTargets"];
        return !active.empty() && active[0]["health"] != "unknown";
      },
      60s));
  const auto& tg = targets["data"]["activeTargets"][0];
  INFO(tg.dump());
  CHECK(tg["health"] == "up");
  CHECK(tg["lastError"] == "");
  nlohmann::json res;
  REQUIRE(test::wait_for(
      [&] {
        auto q = test::http_get(port, "/api/v1/query?query=bulkhead_accounted_cpu_nanoseconds_total%7Bname%3D%22web%22%7D");
        if (!q) return false;
        res = nlohmann::json::parse(*q, nullptr, false);
        return !res.is_discarded() && res["data"]["result"].size() == 1;
      },
      60s));
  CHECK(res["data"]["result"][0]["value"][1] == std::to_string(agent_fixture::grown));
  auto up = test::http_get(port, "/api/v1/query?query=bulkhead_agent_journal_up");
  REQUIRE(up);
  CHECK(nlohmann::json::parse(*up)["data"]["result"][0]["value"][1] == "1");
}
