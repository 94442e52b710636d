// bulkhead-agent as a whole process against bad input: usage errors, journal
// directories it cannot use (missing, not a directory, read-only, writable by
// everyone, locked by another agent, full), and HTTP it must refuse
// (malformed requests, oversized headers, bodies, other methods and paths, a
// client sending a byte a second, more connections than it takes). Each gets
// a clear error or a refused request, never a crash or a lost record.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agent_support.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "net.hpp"
#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> cgroup_args(const test::cgroup_copy& cg) {
  return {"--cgroup-parent", "bulkhead", "--fs-root", cg.root(), "--mount-table", cg.mount_table()};
}

// Starts an agent with the cgroup copy as its source and waits until it
// serves metrics.
struct running_agent {
  running_agent(const test::cgroup_copy& cg, const std::string& journal, std::vector<std::string> extra = {})
      : port(test::free_port()), proc([&] {
          auto a = cgroup_args(cg);
          a.insert(a.end(), {"--journal", journal, "--interval", "100ms", "--listen", "127.0.0.1:" + std::to_string(port)});
          a.insert(a.end(), extra.begin(), extra.end());
          return a;
        }()) {
    const bool up = test::wait_for([&] { return !proc.running() || test::http_get_metrics(port).status == 200; }, 60s);
    INFO(proc.log());
    REQUIRE(up);
    REQUIRE(proc.running());
  }
  [[nodiscard]] std::string metrics() const { return test::http_get_metrics(port).body; }
  int port;
  test::agent_process proc;
};

std::string web_cpu_prefix() { return "bulkhead_accounted_cpu_nanoseconds_total{uuid="; }

// The accounted CPU of the group named web, from a scrape ("" when absent).
std::string web_cpu(const std::string& text) {
  std::size_t pos = 0;
  while ((pos = text.find(web_cpu_prefix(), pos)) != std::string::npos) {
    const auto nl = text.find('\n', pos);
    const auto line = text.substr(pos, nl - pos);
    if (line.find("name=\"web\"") != std::string::npos) return line.substr(line.rfind(' ') + 1);
    pos = nl;
  }
  return "";
}

int run_to_exit(std::vector<std::string> args, std::string& log) {
  test::agent_process p(std::move(args));
  auto c = p.wait();
  log = p.log();
  REQUIRE(c);
  return *c;
}

}  // namespace

TEST_CASE("usage errors exit 2 and say what is wrong") {
  test::cgroup_copy cg;
  test::temp_dir j;
  std::string log;
  CHECK(run_to_exit({"--uri", "test:///default"}, log) == 2);
  CHECK(log.find("--journal DIR is required") != std::string::npos);
  CHECK(run_to_exit({"--journal", j.str()}, log) == 2);
  CHECK(log.find("name at least one source") != std::string::npos);
  auto a = cgroup_args(cg);
  a.insert(a.end(), {"--journal", j.str(), "--interval", "1"});
  CHECK(run_to_exit(a, log) == 2);
  CHECK(log.find("--interval '1'") != std::string::npos);
  a = cgroup_args(cg);
  a.insert(a.end(), {"--journal", j.str(), "--listen", "localhost:9479"});
  CHECK(run_to_exit(a, log) == 2);
  CHECK(log.find("names are not resolved") != std::string::npos);
  a = cgroup_args(cg);
  a.insert(a.end(), {"--journal", j.str(), "--textfile", j.str() + "/metrics.txt"});
  CHECK(run_to_exit(a, log) == 2);
  CHECK(log.find("ending in .prom") != std::string::npos);
  CHECK(run_to_exit({"--bogus"}, log) == 2);
  CHECK(std::filesystem::is_empty(j.path()));  // nothing written on a usage error
}

TEST_CASE("a journal directory it cannot use: exit 1 naming the directory and why") {
  test::cgroup_copy cg;
  std::string log;
  const auto with = [&](const std::string& dir) {
    auto a = cgroup_args(cg);
    a.insert(a.end(), {"--journal", dir, "--listen", "none"});
    return a;
  };
  SUBCASE("missing") {
    CHECK(run_to_exit(with("/nonexistent/bulkhead"), log) == 1);
    CHECK(log.find("'/nonexistent/bulkhead' does not exist") != std::string::npos);
  }
  SUBCASE("read-only") {
    test::tmpfs_mount m("256k");
    m.remount_read_only();
    CHECK(run_to_exit(with(m.str()), log) == 1);
    CHECK(log.find(m.str()) != std::string::npos);
    CHECK(log.find("read-only file system") != std::string::npos);
  }
  SUBCASE("writable by everyone") {
    test::temp_dir t;
    ::chmod(t.str().c_str(), 0777);
    CHECK(run_to_exit(with(t.str()), log) == 1);
    CHECK(log.find("writable by every user") != std::string::npos);
  }
  SUBCASE("locked by another agent") {
    test::temp_dir t;
    running_agent first(cg, t.str());
    CHECK(run_to_exit(with(t.str()), log) == 1);
    CHECK(log.find("journal '" + t.str() + "' is open for writing by process " + std::to_string(first.proc.pid()) +
                   " (bulkhead-agent)") != std::string::npos);
    CHECK(first.proc.running());  // the first one is untouched
    first.proc.signal(SIGTERM);
    CHECK(first.proc.wait() == 0);
  }
}

TEST_CASE("HTTP: only GET and HEAD of /metrics; malformed, oversized, bodies and slow clients refused") {
  test::cgroup_copy cg;
  test::temp_dir j;
  running_agent a(cg, j.str());
  const int port = a.port;

  auto ok = test::http_get_metrics(port);
  CHECK(ok.status == 200);
  CHECK(ok.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(ok.body.find("bulkhead_source_up{source=\"bulkhead\",kind=\"cgroup\"} 1") != std::string::npos);
  auto om = test::http_get_metrics(port, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
  CHECK(om.status == 200);
  CHECK(om.header("Content-Type") == "application/openmetrics-text; version=1.0.0; charset=utf-8");
  CHECK(om.body.ends_with("# EOF\n"));
  auto head = test::http_raw(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.header("Content-Length")) > 1000);
  CHECK(test::http_raw(port, "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 200);

  auto post = test::http_raw(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
  CHECK(test::http_raw(port, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n").status == 405);
  CHECK(test::http_raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
  CHECK(test::http_raw(port, "GET /metrics/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
  CHECK(test::http_raw(port, "GARBAGE\r\n\r\n").status == 400);
  CHECK(test::http_raw(port, "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n").status == 400);
  CHECK(test::http_raw(port, "GET /metrics HTTP/1\r\nHost: x\r\n\r\n").status == 400);
  CHECK(test::http_raw(port, std::string("GET /metrics HTTP/1.1\r\nHost: \x01\x02\r\n\r\n")).status == 400);
  CHECK(test::http_raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n").status ==
        431);
  CHECK(test::http_raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").status == 413);
  CHECK(test::http_raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .status == 413);

  SUBCASE("a client sending a byte a second is cut off before it finishes") {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n";  // 56 bytes: 56 s
    const int s = test::connect_loopback(port);
    REQUIRE(s >= 0);
    std::size_t sent = 0;
    bool cut = false;
    for (; sent < req.size(); ++sent) {
      if (::send(s, &req[sent], 1, MSG_NOSIGNAL) != 1) {
        cut = true;
        break;
      }
      pollfd p{s, POLLIN, 0};
      if (::poll(&p, 1, 1000) > 0) {  // the server closed (or answered): read what it sent
        char b[256];
        if (::recv(s, b, sizeof b, 0) <= 0) {
          cut = true;
          break;
        }
      }
    }
    ::close(s);
    CHECK(cut);
    CHECK(sent < req.size());
    CHECK(test::http_get_metrics(port).status == 200);  // everyone else is still served
  }
  SUBCASE("connections beyond 64 are closed at once; the others are served") {
    std::vector<int> held;
    for (int i = 0; i < 64; ++i) {
      const int s = test::connect_loopback(port);
      REQUIRE(s >= 0);
      held.push_back(s);
    }
    std::this_thread::sleep_for(200ms);  // the server has accepted them
    const int extra = test::connect_loopback(port);
    REQUIRE(extra >= 0);
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)::send(extra, req.data(), req.size(), MSG_NOSIGNAL);
    const auto got = test::read_all(extra, 10s);
    CHECK(got.empty());  // closed without an answer
    ::close(extra);
    // One of the held connections still gets its answer.
    (void)::send(held[0], req.data(), req.size(), MSG_NOSIGNAL);
    CHECK(test::read_all(held[0], 10s).rfind("HTTP/1.1 200", 0) == 0);
    for (int s : held) ::close(s);
    CHECK(test::wait_for([&] { return test::http_get_metrics(port).status == 200; }, 30s));
  }
  // After all of it: still up, still metering, and a clean stop.
  CHECK(a.proc.running());
  a.proc.signal(SIGTERM);
  CHECK(a.proc.wait() == 0);
  const auto log = a.proc.log();
  CHECK(log.find("stopping (SIGTERM): flush and checkpoint") != std::string::npos);
  CHECK(log.find("stopped after") != std::string::npos);
}

TEST_CASE("a full journal disk: the agent keeps running, acknowledges nothing, and accounts everything once there is room") {
  test::cgroup_copy cg;
  test::tmpfs_mount disk("1m");
  const auto jdir = disk.str() + "/journal";
  std::filesystem::create_directory(jdir);
  ::chmod(jdir.c_str(), 0750);
  const std::uint64_t v0 = 1'000'000;
  cg.set_cpu("web", v0);
  running_agent a(cg, jdir);
  // The first rounds took the baseline and were journaled.
  REQUIRE(test::wait_for([&] { return web_cpu(a.metrics()) == "0"; }, 30s));
  disk.fill();
  std::uint64_t cpu = v0;
  bool down = false;
  for (int i = 0; i < 400 && !down; ++i) {
    cpu += 1000;
    cg.set_cpu("web", cpu);
    std::this_thread::sleep_for(50ms);
    down = test::sample_value(a.metrics(), "bulkhead_agent_journal_up") == "0";
  }
  REQUIRE(down);
  CHECK(a.proc.running());
  const auto acked = web_cpu(a.metrics());
  cpu += 777;
  cg.set_cpu("web", cpu);
  std::this_thread::sleep_for(500ms);
  CHECK(web_cpu(a.metrics()) == acked);  // nothing acknowledged while full
  CHECK(a.proc.log().find("journal failed") != std::string::npos);

  disk.unfill();
  CHECK(test::wait_for([&] { return test::sample_value(a.metrics(), "bulkhead_agent_journal_up") == "1"; }, 30s));
  CHECK(test::wait_for([&] { return web_cpu(a.metrics()) == std::to_string(cpu - v0); }, 30s));
  CHECK(a.proc.log().find("journal durable again") != std::string::npos);
  a.proc.signal(SIGTERM);
  CHECK(a.proc.wait() == 0);
  // The journal holds exactly what the counter grew, once.
  auto v = accounting::journal::open_read_only(jdir);
  REQUIRE(v);
  const auto t = v->totals.by_instance();
  bool found = false;
  for (const auto& i : t)
    if (i.labels.name == "web") {
      found = true;
      CHECK(i.totals.cpu_time_ns == cpu - v0);
    }
  CHECK(found);
}

TEST_CASE("SIGHUP logs the status and keeps running; SIGINT stops like SIGTERM") {
  test::cgroup_copy cg;
  test::temp_dir j;
  running_agent a(cg, j.str());
  a.proc.signal(SIGHUP);
  CHECK(test::wait_for([&] { return a.proc.log().find("SIGHUP: status: round") != std::string::npos; }, 30s));
  CHECK(a.proc.log().find("options are not re-read") != std::string::npos);
  CHECK(a.proc.running());
  CHECK(test::http_get_metrics(a.port).status == 200);
  a.proc.signal(SIGINT);
  CHECK(a.proc.wait() == 0);
  // A checkpoint was written at the stop.
  bool checkpoint = false;
  for (const auto& e : std::filesystem::directory_iterator(j.path()))
    checkpoint = checkpoint || e.path().filename().string().starts_with("checkpoint-");
  CHECK(checkpoint);
}

TEST_CASE("the textfile is written whole, mode 0644, and no temporary file is left behind") {
  test::cgroup_copy cg;
  test::temp_dir j;
  test::temp_dir out;
  const auto file = out.str() + "/bulkhead.prom";
  running_agent a(cg, j.str(), {"--textfile", file});
  CHECK(test::wait_for([&] { return std::filesystem::exists(file); }, 30s));
  for (int i = 0; i < 20; ++i) {
    std::ifstream in(file);
    const std::string text(std::istreambuf_iterator<char>(in), {});
    CHECK(text.find("# HELP bulkhead_source_up") == 0);
    CHECK(text.find("bulkhead_agent_checkpoint_failures_total 0\n") != std::string::npos);  // the end is there
    std::this_thread::sleep_for(30ms);
  }
  struct stat st{};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  a.proc.signal(SIGTERM);
  CHECK(a.proc.wait() == 0);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(out.path())) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("an agent of cgroups only never loads libvirt; a libvirt URI loads it") {
  const auto maps = [](pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Not linked with it at all.
  auto ldd = test::run_process({"/usr/bin/ldd", test::agent_process::program()});
  CHECK(ldd.exit_code == 0);
  CHECK(ldd.out.find("libvirt") == std::string::npos);
  test::cgroup_copy cg;
  {
    test::temp_dir j;
    running_agent a(cg, j.str());
    const auto m = maps(a.proc.pid());
    CHECK(m.find("libbulkhead-core") != std::string::npos);
    CHECK(m.find("libvirt") == std::string::npos);
    a.proc.signal(SIGTERM);
    CHECK(a.proc.wait() == 0);
  }
  {
    test::temp_dir j;
    running_agent a(cg, j.str(), {"--uri", "test:///default"});
    const auto m = maps(a.proc.pid());
    CHECK(m.find("bulkhead-agent-libvirt.so") != std::string::npos);
    CHECK(m.find("libvirt.so") != std::string::npos);
    CHECK(a.metrics().find("bulkhead_source_up{source=\"test:///default\",kind=\"libvirt\"} 1") != std::string::npos);
    a.proc.signal(SIGTERM);
    CHECK(a.proc.wait() == 0);
  }
}
