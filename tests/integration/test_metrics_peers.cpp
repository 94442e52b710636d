// bulkhead-inspect's metrics checked by the real tools of the Prometheus
// ecosystem (Debian packages prometheus and prometheus-node-exporter):
//   - `promtool check metrics` lints the Prometheus text format of the demo
//     host and of a node whose names and metadata try to break the format;
//   - node_exporter's textfile collector serves a file the tool wrote, and
//     bulkhead's series come back from its /metrics;
//   - a real Prometheus server scrapes the OpenMetrics output with the
//     OpenMetrics content type (its strict OpenMetrics parser) and answers
//     queries for bulkhead's series.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "net.hpp"
#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;

namespace {

std::string tool() {
  const char* p = std::getenv("BULKHEAD_INSPECT");
  if (!p || !*p) test::skip("BULKHEAD_INSPECT is not set (run through meson test)");
  return p;
}
std::string need(const char* path, const char* package) {
  if (!fs::exists(path)) test::skip(std::string(path) + " is missing (Debian package " + package + ")");
  return path;
}
std::string hostile() { return "test://" + test::fixture("libvirt/hostile-names-node.xml").string(); }

std::string inspect(std::vector<std::string> args) {
  args.insert(args.begin(), tool());
  auto r = test::run_process(args);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return r.out;
}

}  // namespace

TEST_CASE("promtool check metrics accepts the demo host and hostile names") {
  const auto promtool = need("/usr/bin/promtool", "prometheus");
  test::temp_dir t;
  for (const auto& args : {std::vector<std::string>{"--demo", "--format", "prometheus"},
                           std::vector<std::string>{"--uri", hostile(), "--format", "prometheus"}}) {
    const auto text = inspect(args);
    const auto file = t.path() / "m.prom";
    std::ofstream(file) << text;
    auto r = test::run_process({"/bin/sh", "-c", promtool + " check metrics < '" + file.string() + "'"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.empty());
    CHECK(text.find("bulkhead_instance_cpu_seconds_total{") != std::string::npos);
  }
  // The hostile node's names are escaped, never raw.
  const auto text = inspect({"--uri", hostile(), "--format", "prometheus"});
  CHECK(text.find(R"(name="evil \"quoted\" name")") != std::string::npos);
  CHECK(text.find(R"(tenant="line one\nline two\\n")") != std::string::npos);
  CHECK(text.find(R"(name="back\\slash\\\\ and {braces},=commas #hash")") != std::string::npos);
  CHECK(text.find("\n# EOF injected") == std::string::npos);
}

TEST_CASE("node_exporter's textfile collector serves bulkhead's series") {
  const auto exporter = need("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter");
  test::temp_dir t;
  {
    std::ofstream(t.path() / "bulkhead.prom.tmp") << inspect({"--uri", hostile(), "--format", "prometheus"});
    fs::rename(t.path() / "bulkhead.prom.tmp", t.path() / "bulkhead.prom");
  }
  const int port = test::free_port();
  test::background_process ne({exporter, "--web.listen-address=127.0.0.1:" + std::to_string(port),
                               "--collector.disable-defaults", "--collector.textfile",
                               "--collector.textfile.directory=" + t.str()},
                              (t.path() / "node_exporter.log").string());
  std::optional<std::string> body;
  REQUIRE(test::wait_for([&] { return (body = test::http_get(port, "/metrics")).has_value(); }, std::chrono::seconds(20)));
  INFO(*body);
  CHECK(body->find("node_textfile_scrape_error 0") != std::string::npos);
  CHECK(body->find("bulkhead_source_up{") != std::string::npos);
  CHECK(body->find("bulkhead_instance_cpu_seconds_total{") != std::string::npos);
  CHECK(body->find(R"(name="evil \"quoted\" name")") != std::string::npos);
  CHECK(body->find("ünïcödé 名前 🙂") != std::string::npos);
}

TEST_CASE("Prometheus scrapes the OpenMetrics output with its OpenMetrics parser") {
  const auto prometheus = need("/usr/bin/prometheus", "prometheus");
  const auto text = inspect({"--uri", hostile(), "--format", "openmetrics"});
  CHECK(text.size() > 6);
  CHECK(text.substr(text.size() - 6) == "# EOF\n");
  test::http_server target(text, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  test::temp_dir t;
  const int port = test::free_port();
  std::ofstream(t.path() / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: bulkhead\n    static_configs:\n      - targets: ['127.0.0.1:"
      << target.port() << "']\n";
  test::background_process prom({prometheus, "--config.file=" + (t.path() / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (t.path() / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                                (t.path() / "prometheus.log").string());
  // Wait for a scrape, then ask the target's health: a parse error would be
  // its lastError.
  nlohmann::json targets;
  const bool scraped = test::wait_for(
      [&] {
        auto b = test::http_get(port, "/api/v1/targets");
        if (!b) return false;
        targets = nlohmann::json::parse(*b, nullptr, false);
        if (targets.is_discarded()) return false;
        const auto& active = targets["data"]["activeTargets"];
        return !active.empty() && active[0]["health"] != "unknown";
      },
      std::chrono::seconds(60));
  REQUIRE_MESSAGE(scraped, targets.dump());
  const auto& tg = targets["data"]["activeTargets"][0];
  INFO(tg.dump());
  CHECK(tg["health"] == "up");
  CHECK(tg["lastError"] == "");
  std::optional<std::string> q;
  nlohmann::json res;
  REQUIRE(test::wait_for(
      [&] {
        q = test::http_get(port, "/api/v1/query?query=bulkhead_instance_cpu_seconds_total");
        if (!q) return false;
        res = nlohmann::json::parse(*q, nullptr, false);
        return !res.is_discarded() && res["data"]["result"].size() == 3;
      },
      std::chrono::seconds(30)));
  bool found = false;
  for (const auto& s : res["data"]["result"])
    found = found || s["metric"]["name"] == "evil \"quoted\" name";
  CHECK(found);
  auto info = test::http_get(port, "/api/v1/query?query=bulkhead_instance_info");
  REQUIRE(info);
  CHECK(nlohmann::json::parse(*info)["data"]["result"].size() == 3);
}
