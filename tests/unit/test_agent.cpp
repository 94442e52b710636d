// The agent's pure parts: its reconnection back-off, the metrics of a
// snapshot (raw readings, accounted totals, the agent's own state) in both
// text formats, and bulkhead-agent's command-line helpers (durations, listen
// addresses, the Accept header).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/agent/metrics.hpp"
#include "bulkhead/export/accounted_metrics.hpp"
#include "bulkhead/export/metrics_writer.hpp"
#include "cli.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {
const uuid vm1 = *uuid::parse("11111111-1111-1111-1111-111111111111");
const uuid vm2 = *uuid::parse("22222222-2222-2222-2222-222222222222");

// The value of the one sample whose line starts with `prefix`, or "" (none)
// or "MANY" (more than one).
std::string sample(const std::string& text, const std::string& prefix) {
  std::string found;
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const auto sp = text.find(' ', pos + prefix.size());
      const auto nl = text.find('\n', pos);
      if (!found.empty()) return "MANY";
      found = text.substr(sp + 1, nl - sp - 1);
    }
    pos += prefix.size();
  }
  return found;
}
}  // namespace

TEST_CASE("reconnect_delay doubles from the minimum and never passes the interval") {
  using agent::reconnect_delay;
  CHECK(reconnect_delay(1, 100ms, 1000ms) == 100ms);
  CHECK(reconnect_delay(2, 100ms, 1000ms) == 200ms);
  CHECK(reconnect_delay(3, 100ms, 1000ms) == 400ms);
  CHECK(reconnect_delay(4, 100ms, 1000ms) == 800ms);
  CHECK(reconnect_delay(5, 100ms, 1000ms) == 1000ms);
  CHECK(reconnect_delay(1'000'000, 100ms, 1000ms) == 1000ms);
  CHECK(reconnect_delay(1, 5000ms, 1000ms) == 1000ms);  // a minimum above the interval is the interval
  CHECK(reconnect_delay(0, 100ms, 1000ms) == 100ms);
}

TEST_CASE("the writer names counter families per format and keeps one family per name") {
  metrics::writer w;
  w.add("x_bytes", metrics::kind::counter, "bytes", "Bytes.", metrics::label("a", "1"), "5");
  w.add("x_up", metrics::kind::gauge, "", "Up.", "", "1");
  w.add("x_bytes", metrics::kind::counter, "bytes", "Bytes.", metrics::label("a", "2"), "7");
  const auto om = w.text(metrics::format::openmetrics);
  CHECK(om ==
        "# TYPE x_bytes counter\n# UNIT x_bytes bytes\n# HELP x_bytes Bytes.\nx_bytes_total{a=\"1\"} 5\n"
        "x_bytes_total{a=\"2\"} 7\n# TYPE x_up gauge\n# HELP x_up Up.\nx_up 1\n# EOF\n");
  const auto prom = w.text(metrics::format::prometheus);
  CHECK(prom ==
        "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\nx_bytes_total{a=\"1\"} 5\n"
        "x_bytes_total{a=\"2\"} 7\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n");
  CHECK(w.text(metrics::format::openmetrics, false).find("# EOF") == std::string::npos);
  CHECK(metrics::label("n", "a\"b\\c\nd\xff") == "n=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\"");
}

TEST_CASE("accounted totals are integers in full, per instance and per tenant") {
  accounting::instance_totals a;
  a.uuid = vm1;
  a.labels = {"web \"1\"", std::string("acme"), qos_class::LS};
  a.incarnations = 2;
  a.totals.cpu_time_ns = 9'007'199'254'740'993ull;  // 2^53 + 1: a float64 would round it
  a.totals.disk_read_bytes = 1;
  a.totals.disk_write_bytes = 2;
  a.totals.net_rx_bytes = 3;
  a.totals.net_tx_bytes = 4;
  a.totals.vcpu_reserved_ns = 5;
  a.totals.memory_reserved_byte_ns = static_cast<u128>(1) << 100;  // beyond 64 bits
  a.totals.gaps = 6;
  a.totals.resets = 7;
  a.totals.wraps = 8;
  accounting::instance_totals b;
  b.uuid = vm2;
  accounting::tenant_totals t1{std::string("acme"), a.totals};
  accounting::tenant_totals t2{std::nullopt, b.totals};
  const accounting::instance_totals is[] = {a, b};
  const accounting::tenant_totals ts[] = {t1, t2};
  metrics::writer w;
  metrics::render(metrics::accounted{is, ts}, w);
  const auto text = w.text(metrics::format::prometheus);
  const std::string l = "{uuid=\"11111111-1111-1111-1111-111111111111\",name=\"web \\\"1\\\"\",tenant=\"acme\",qos_class=\"LS\"}";
  CHECK(sample(text, "bulkhead_accounted_cpu_nanoseconds_total" + l) == "9007199254740993");
  CHECK(sample(text, "bulkhead_accounted_disk_read_bytes_total" + l) == "1");
  CHECK(sample(text, "bulkhead_accounted_disk_write_bytes_total" + l) == "2");
  CHECK(sample(text, "bulkhead_accounted_network_receive_bytes_total" + l) == "3");
  CHECK(sample(text, "bulkhead_accounted_network_transmit_bytes_total" + l) == "4");
  CHECK(sample(text, "bulkhead_accounted_vcpu_nanoseconds_total" + l) == "5");
  CHECK(sample(text, "bulkhead_accounted_memory_byte_nanoseconds_total" + l) == "1267650600228229401496703205376");
  CHECK(sample(text, "bulkhead_accounted_gaps_total" + l) == "6");
  CHECK(sample(text, "bulkhead_accounted_resets_total" + l) == "7");
  CHECK(sample(text, "bulkhead_accounted_wraps_total" + l) == "8");
  CHECK(sample(text, "bulkhead_accounted_incarnations" + l) == "2");
  const std::string l2 = "{uuid=\"22222222-2222-2222-2222-222222222222\",name=\"\",tenant=\"\",qos_class=\"\"}";
  CHECK(sample(text, "bulkhead_accounted_cpu_nanoseconds_total" + l2) == "0");
  CHECK(sample(text, "bulkhead_tenant_accounted_cpu_nanoseconds_total{tenant=\"acme\"}") == "9007199254740993");
  CHECK(sample(text, "bulkhead_tenant_accounted_cpu_nanoseconds_total{tenant=\"\"}") == "0");
  CHECK(sample(text, "bulkhead_tenant_accounted_memory_byte_nanoseconds_total{tenant=\"acme\"}") ==
        "1267650600228229401496703205376");
  // OpenMetrics: the unit is declared and ends the family name.
  const auto om = w.text(metrics::format::openmetrics);
  CHECK(om.find("# TYPE bulkhead_accounted_cpu_nanoseconds counter\n# UNIT bulkhead_accounted_cpu_nanoseconds nanoseconds\n") !=
        std::string::npos);
  CHECK(om.find("# UNIT bulkhead_accounted_vcpu_nanoseconds vcpu_nanoseconds\n") != std::string::npos);
  CHECK(om.find("# UNIT bulkhead_accounted_memory_byte_nanoseconds byte_nanoseconds\n") != std::string::npos);
  CHECK(om.ends_with("# EOF\n"));
}

TEST_CASE("a snapshot renders its readings, its totals and the agent's state in one exposition") {
  agent::snapshot s;
  s.round = 42;
  s.at = wall_time{} + 1'700'000'000s + 250ms;
  agent::source_status up;
  up.kind = "libvirt";
  up.name = "";  // libvirt's default URI: the backend's name is used
  up.source = "qemu:///system";
  up.up = true;
  up.connects = 1;
  instance_reading r;
  r.info.id = {vm1, incarnation{7}};
  r.info.name = "web";
  r.info.state = instance_state::running;
  r.usage.cpu_time = nanoseconds{1'500'000'001};
  r.usage.cpu_nr_periods = 10;
  r.usage.memory_oom_events = 1;
  r.usage.memory_rss = bytes{4096};
  r.usage.memory_available = bytes{8192};
  disk_counters d;
  d.target = "vda";
  d.errors = operations{3};
  r.usage.disks.push_back(d);
  up.instances.push_back(r);
  agent::source_status down;
  down.kind = "cgroup";
  down.name = "machine";
  down.failed_rounds = 5;
  down.connects = 2;
  down.last_error = error(errc::not_found, "gone");
  s.sources = {up, down};
  accounting::instance_totals t;
  t.uuid = vm1;
  t.labels.name = "web";
  t.totals.cpu_time_ns = 123;
  s.instances = {t};
  s.tenants = {accounting::tenant_totals{std::nullopt, t.totals}};
  s.journal_up = true;
  s.durable_seq = 99;
  s.stats.rounds = 42;
  s.stats.missed = 1;
  s.stats.last_duration = 1500us;
  s.stats.max_duration = 20ms;
  s.stats.journal_failures = 2;
  s.stats.journal_reopens = 2;
  s.stats.checkpoints = 3;
  s.last_checkpoint = wall_time{} + 1'699'999'000s;
  const auto text = agent::render_metrics(s, metrics::format::prometheus);
  CHECK(sample(text, "bulkhead_source_up{source=\"qemu:///system\",kind=\"libvirt\"}") == "1");
  CHECK(sample(text, "bulkhead_source_up{source=\"machine\",kind=\"cgroup\"}") == "0");
  const std::string il = "{uuid=\"11111111-1111-1111-1111-111111111111\",name=\"web\",tenant=\"\",qos_class=\"\",isolation=\"vm\",source=\"qemu:///system\"}";
  CHECK(sample(text, "bulkhead_instance_cpu_seconds_total" + il) == "1.500000001");
  // Counters and gauges bulkhead reads that the metrics once lacked.
  CHECK(sample(text, "bulkhead_instance_cpu_periods_total" + il) == "10");
  CHECK(sample(text, "bulkhead_instance_memory_oom_events_total" + il) == "1");
  CHECK(sample(text, "bulkhead_instance_memory_rss_bytes" + il) == "4096");
  CHECK(sample(text, "bulkhead_instance_memory_available_bytes" + il) == "8192");
  CHECK(sample(text, "bulkhead_instance_disk_errors_total{uuid=\"11111111-1111-1111-1111-111111111111\",name=\"web\",tenant=\"\",qos_class=\"\",isolation=\"vm\",source=\"qemu:///system\",target=\"vda\"}") == "3");
  CHECK(sample(text, "bulkhead_accounted_cpu_nanoseconds_total{uuid=\"11111111-1111-1111-1111-111111111111\",name=\"web\",tenant=\"\",qos_class=\"\"}") == "123");
  CHECK(sample(text, "bulkhead_agent_source_failed_rounds_total{source=\"machine\",kind=\"cgroup\"}") == "5");
  CHECK(sample(text, "bulkhead_agent_source_connects_total{source=\"machine\",kind=\"cgroup\"}") == "2");
  CHECK(sample(text, "bulkhead_agent_rounds_total") == "42");
  CHECK(sample(text, "bulkhead_agent_missed_rounds_total") == "1");
  CHECK(sample(text, "bulkhead_agent_round_duration_seconds") == "0.0015");
  CHECK(sample(text, "bulkhead_agent_round_duration_max_seconds") == "0.02");
  CHECK(sample(text, "bulkhead_agent_last_round_timestamp_seconds") == "1700000000.25");
  CHECK(sample(text, "bulkhead_agent_journal_up") == "1");
  CHECK(sample(text, "bulkhead_agent_journal_durable_sequence") == "99");
  CHECK(sample(text, "bulkhead_agent_journal_failures_total") == "2");
  CHECK(sample(text, "bulkhead_agent_journal_reopens_total") == "2");
  CHECK(sample(text, "bulkhead_agent_checkpoints_total") == "3");
  CHECK(sample(text, "bulkhead_agent_last_checkpoint_timestamp_seconds") == "1699999000");
  // Every family once: the readings' and the agent's never repeat a name.
  std::size_t types = 0, pos = 0;
  std::set<std::string> names;
  while ((pos = text.find("# TYPE ", pos)) != std::string::npos) {
    const auto end = text.find(' ', pos + 7);
    CHECK(names.insert(text.substr(pos + 7, end - pos - 7)).second);
    ++types;
    pos = end;
  }
  CHECK(types > 20);
  const auto om = agent::render_metrics(s, metrics::format::openmetrics);
  CHECK(om.ends_with("# EOF\n"));
  CHECK(om.find("# EOF") == om.size() - 6);
}

TEST_CASE("durations take a whole number and a unit") {
  using agent_tool::parse_duration;
  CHECK(parse_duration("250ms", "--interval").value() == 250ms);
  CHECK(parse_duration("1s", "--interval").value() == 1000ms);
  CHECK(parse_duration("10m", "--interval").value() == 600'000ms);
  CHECK(parse_duration("2h", "--interval").value() == 7'200'000ms);
  CHECK(parse_duration("0s", "--checkpoint-interval").value() == 0ms);
  for (const char* bad : {"", "1", "s", "1.5s", "-1s", "1 s", "1sec", "1S", "99999999999h"}) {
    auto r = parse_duration(bad, "--interval");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find("--interval") == 0);
  }
}

TEST_CASE("listen addresses are numeric; none turns the endpoint off") {
  using agent_tool::parse_listen;
  auto a = parse_listen("127.0.0.1:9479").value();
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9479);
  CHECK_FALSE(a->v6);
  auto b = parse_listen("[::1]:80").value();
  REQUIRE(b);
  CHECK(b->host == "::1");
  CHECK(b->v6);
  CHECK(b->port == 80);
  CHECK(parse_listen("0.0.0.0:9479").value()->host == "0.0.0.0");
  CHECK_FALSE(parse_listen("none").value().has_value());
  for (const char* bad : {"", "9479", ":9479", "localhost:9479", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                          "127.0.0.1:65536", "127.0.0.1:80x", "256.0.0.1:80", "1.2.3:80", "::1:80", "[::1]80",
                          "[localhost]:80", "1.2.3.4.5:80"}) {
    INFO(bad);
    CHECK_FALSE(parse_listen(bad).has_value());
  }
}

TEST_CASE("the Accept header picks OpenMetrics only when it prefers it") {
  using agent_tool::wants_openmetrics;
  // Prometheus 2.42's scrape header.
  CHECK(wants_openmetrics("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
  CHECK(wants_openmetrics("application/openmetrics-text"));
  CHECK(wants_openmetrics("Application/OpenMetrics-Text; version=1.0.0"));
  CHECK_FALSE(wants_openmetrics(""));
  CHECK_FALSE(wants_openmetrics("*/*"));
  CHECK_FALSE(wants_openmetrics("text/plain"));
  CHECK_FALSE(wants_openmetrics("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"));
  CHECK_FALSE(wants_openmetrics("application/openmetrics-text;q=0"));
  CHECK_FALSE(wants_openmetrics("application/openmetrics-text;q=0.000"));
  CHECK(wants_openmetrics("application/openmetrics-text;q=0.001"));
  CHECK_FALSE(wants_openmetrics("application/openmetrics-text;q=x"));
  CHECK(wants_openmetrics("text/plain;q=0.5, application/openmetrics-text;q=0.5"));
}
