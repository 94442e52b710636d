// Live benchmark (issue 14): bulkhead-agent on real guests, in one run:
//
//  1. a scrape of bulkhead-agent's /metrics against a scrape of
//     prometheus-libvirt-exporter's, on the same guests, alternating: wall
//     time, CPU per scrape (the serving process's and libvirtd's, from
//     /proc/PID/task/*/schedstat), values returned; and whether the agent
//     returns every counter bulkhead reads (flatten() of a direct read_all);
//  2. the agent's own CPU at 1 Hz over the guests with nobody scraping
//     (and libvirtd's CPU beside it, against a window before the agent ran);
//  3. 50 concurrent scrapers hammering /metrics while it meters, against a
//     quiet window of the same length: rounds, missed rounds, round
//     durations (sampled from its own metrics) and scrape latencies.
//
// Not part of CI: it needs root, libvirtd and the live harness (as
// bench_live_peers). Run as root:
//
//   bash tests/live/harness.sh setup BUILDDIR
//   BUILDDIR/bench/bench_live_agent [--rounds N] [--guests N] [--idle-seconds N] [--load-seconds N]
//
// The agent is BUILDDIR/tools/agent/bulkhead-agent (BULKHEAD_AGENT overrides).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "live_guest.hpp"
#include "test_support.hpp"

using namespace bulkhead;
namespace live = bulkhead::test::live;
using namespace std::chrono_literals;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench_live_agent: %s\n", why.c_str());
  std::exit(1);
}

// A process's on-CPU time summed over its threads (schedstat field 1, ns).
std::int64_t threads_cpu_ns(pid_t pid) {
  std::int64_t sum = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/schedstat");
    std::int64_t run = 0;
    if (in >> run) sum += run;
  }
  closedir(d);
  return sum;
}

pid_t libvirtd_pid() {
  std::ifstream in("/var/run/libvirtd.pid");
  long p = 0;
  if (!(in >> p) || p <= 0) die("no /var/run/libvirtd.pid: is libvirtd running? (tests/live/harness.sh setup)");
  return static_cast<pid_t>(p);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// GET /metrics over HTTP/1.0 on loopback; the body, or "" on failure.
std::string get(int port, const std::string& accept = "") {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    return "";
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!accept.empty()) req += "Accept: " + accept + "\r\n";
  req += "\r\n";
  if (write(s, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(s);
    return "";
  }
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = read(s, buf, sizeof buf)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  close(s);
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.find(" 200 ") == std::string::npos) return "";
  const auto h = resp.find("\r\n\r\n");
  return h == std::string::npos ? "" : resp.substr(h + 4);
}

// A daemon started here, stopped (SIGTERM) at the end.
class daemon_proc {
 public:
  daemon_proc(std::vector<std::string> argv, const std::string& log) {
    pid_ = fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> a;
      for (auto& x : argv) a.push_back(x.data());
      a.push_back(nullptr);
      execvp(a[0], a.data());
      _exit(127);
    }
  }
  ~daemon_proc() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  daemon_proc(const daemon_proc&) = delete;
  daemon_proc& operator=(const daemon_proc&) = delete;
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool alive() const {
    int st = 0;
    return waitpid(pid_, &st, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

struct call {
  double wall_ms = 0, server_cpu_ms = 0, libvirtd_cpu_ms = 0;
  std::size_t samples = 0;
};

call scrape(int port, pid_t server, pid_t lvd, std::string& body, const std::string& accept = "") {
  call c;
  const auto l0 = threads_cpu_ns(lvd);
  const auto s0 = threads_cpu_ns(server);
  const auto t0 = std::chrono::steady_clock::now();
  body = get(port, accept);
  const auto t1 = std::chrono::steady_clock::now();
  const auto s1 = threads_cpu_ns(server);
  const auto l1 = threads_cpu_ns(lvd);
  if (body.empty()) die("GET /metrics on port " + std::to_string(port) + " failed");
  c.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  c.server_cpu_ms = static_cast<double>(s1 - s0) / 1e6;
  c.libvirtd_cpu_ms = static_cast<double>(l1 - l0) / 1e6;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') ++c.samples;
  return c;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string sample_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  return "";
}

// Counter samples of the agent per instance uuid (bulkhead_instance_*_total).
std::map<std::string, std::size_t> agent_counters(const std::string& body) {
  std::map<std::string, std::size_t> m;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("bulkhead_instance_", 0) != 0) continue;
    const auto brace = line.find('{');
    if (brace == std::string::npos || line.compare(brace - 6, 6, "_total") != 0) continue;
    const auto u = line.find("uuid=\"");
    if (u == std::string::npos) continue;
    ++m[line.substr(u + 6, 36)];
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 40, guests = 3, idle_seconds = 60, load_seconds = 20, scrapers = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] {
      if (i + 1 >= argc) die("missing value after " + a);
      return std::atoi(argv[++i]);
    };
    if (a == "--rounds") rounds = next();
    else if (a == "--guests") guests = next();
    else if (a == "--idle-seconds") idle_seconds = next();
    else if (a == "--load-seconds") load_seconds = next();
    else if (a == "--scrapers") scrapers = next();
    else die("usage: bench_live_agent [--rounds N] [--guests N] [--idle-seconds N] [--load-seconds N] [--scrapers N]");
  }
  if (rounds < 1 || guests < 1 || guests > 3 || idle_seconds < 5 || load_seconds < 5 || scrapers < 1)
    die("--rounds >= 1, --guests 1..3 (the live tests' limit), --idle-seconds >= 5, --load-seconds >= 5");
  const char* env_agent = std::getenv("BULKHEAD_AGENT");
  const std::string agent_bin = env_agent && *env_agent ? env_agent : std::string(BULKHEAD_BUILD_ROOT) + "/tools/agent/bulkhead-agent";

  const auto& env = live::require_live();
  std::printf("load average at start: %s\n", loadavg().c_str());
  live::connection conn(env);
  std::vector<std::unique_ptr<live::guest>> gs;
  for (int i = 0; i < guests; ++i)
    gs.push_back(std::make_unique<live::guest>(env, conn, live::guest_options{.tag = "agentb" + std::to_string(i)}));
  for (auto& g : gs) g->wait_ready();
  std::printf("%d idle guests running (%s)\n", guests, std::string(live::to_string(env.accel)).c_str());
  const pid_t lvd = libvirtd_pid();

  // libvirtd's CPU with nothing reading it, for the agent's share below.
  const auto quiet0 = threads_cpu_ns(lvd);
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds / 3));
  const double lvd_quiet_pct = static_cast<double>(threads_cpu_ns(lvd) - quiet0) / 1e9 / (idle_seconds / 3) * 100.0;

  test::temp_dir work("bulkhead-bench-agent");
  const std::string journal = work.str() + "/journal";
  std::filesystem::create_directories(journal);
  std::filesystem::permissions(journal, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                            std::filesystem::perms::group_exec);
  const int agent_port = 19479, exporter_port = 9177;
  daemon_proc agent({agent_bin, "--journal", journal, "--uri", env.uri, "--interval", "1s", "--listen",
                     "127.0.0.1:" + std::to_string(agent_port)},
                    work.str() + "/agent.log");
  daemon_proc exporter({"prometheus-libvirt-exporter", "--web.listen-address=127.0.0.1:" + std::to_string(exporter_port),
                        "--libvirt.uri=" + env.uri},
                       work.str() + "/exporter.log");
  for (int i = 0; i < 400 && (get(agent_port).empty() || get(exporter_port).empty()); ++i) {
    if (!agent.alive()) die("bulkhead-agent exited: see " + work.str() + "/agent.log");
    if (!exporter.alive()) die("prometheus-libvirt-exporter exited (apt-get install prometheus-libvirt-exporter; port 9177 free?)");
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(2s);  // the agent has its baselines

  // --- 1. a scrape against a scrape -------------------------------------------
  std::string abody, ebody;
  (void)scrape(agent_port, agent.pid(), lvd, abody);
  (void)scrape(exporter_port, exporter.pid(), lvd, ebody);
  std::vector<call> ac, ec;
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      ac.push_back(scrape(agent_port, agent.pid(), lvd, abody));
      ec.push_back(scrape(exporter_port, exporter.pid(), lvd, ebody));
    } else {
      ec.push_back(scrape(exporter_port, exporter.pid(), lvd, ebody));
      ac.push_back(scrape(agent_port, agent.pid(), lvd, abody));
    }
    std::this_thread::sleep_for(100ms);
  }
  const auto col = [](const std::vector<call>& v, double call::*f) {
    std::vector<double> x;
    for (const auto& c : v) x.push_back(c.*f);
    return x;
  };
  std::size_t exporter_libvirt = 0;
  {
    std::istringstream in(ebody);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("libvirt_", 0) == 0) ++exporter_libvirt;
  }
  // Every counter bulkhead reads, per instance: flatten() of a direct read.
  auto be = libvirt::backend::connect({.uri = env.uri, .read_only = true});
  if (!be) die(be.error().describe());
  auto direct = (*be)->read_all();
  if (!direct) die(direct.error().describe());
  const auto published = agent_counters(get(agent_port));
  std::size_t read_counters = 0, covered = 0;
  for (const auto& i : direct->instances) {
    if (!i.info.id.incarnation) continue;
    const auto n = accounting::flatten(i.usage).size();
    read_counters += n;
    const auto it = published.find(i.info.id.uuid.to_string());
    covered += it == published.end() ? 0 : std::min(n, it->second);
  }
  std::printf("\n1. one scrape, %d rounds alternating; ms (wall: median, p90; CPU: median per scrape)\n", rounds);
  std::printf("%-10s %9s %9s %12s %12s %9s\n", "peer", "wall", "wall p90", "server CPU", "libvirtd CPU", "samples");
  std::printf("%-10s %9.3f %9.3f %12.3f %12.3f %9zu\n", "agent", median(col(ac, &call::wall_ms)), pct(col(ac, &call::wall_ms), 0.9),
              median(col(ac, &call::server_cpu_ms)), median(col(ac, &call::libvirtd_cpu_ms)), ac.back().samples);
  std::printf("%-10s %9.3f %9.3f %12.3f %12.3f %9zu (libvirt_*: %zu)\n", "exporter", median(col(ec, &call::wall_ms)),
              pct(col(ec, &call::wall_ms), 0.9), median(col(ec, &call::server_cpu_ms)), median(col(ec, &call::libvirtd_cpu_ms)),
              ec.back().samples, exporter_libvirt);
  const double ratio = median(col(ac, &call::wall_ms)) / median(col(ec, &call::wall_ms));
  std::printf("wall agent / exporter: %.3f (goal <= 0.5: %s); counters bulkhead reads: %zu, published by the agent: %zu (%s)\n",
              ratio, ratio <= 0.5 ? "met" : "MISSED", read_counters, covered, covered == read_counters ? "all" : "MISSING SOME");

  // --- 2. the agent's own CPU at 1 Hz --------------------------------------------
  const auto a0 = threads_cpu_ns(agent.pid());
  const auto l0 = threads_cpu_ns(lvd);
  const auto r0 = std::stoull(sample_value(get(agent_port), "bulkhead_agent_rounds_total"));
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  const auto a1 = threads_cpu_ns(agent.pid());
  const auto l1 = threads_cpu_ns(lvd);
  const auto r1 = std::stoull(sample_value(get(agent_port), "bulkhead_agent_rounds_total"));
  const double agent_pct = static_cast<double>(a1 - a0) / 1e9 / idle_seconds * 100.0;
  const double lvd_pct = static_cast<double>(l1 - l0) / 1e9 / idle_seconds * 100.0;
  std::printf("\n2. the agent at 1 Hz over %d guests, %d s, nobody scraping: %llu rounds, agent CPU %.3f%% of one core "
              "(%.3f ms per round; goal < 0.2%%: %s); libvirtd %.3f%% (%.3f%% before the agent ran)\n",
              guests, idle_seconds, static_cast<unsigned long long>(r1 - r0), agent_pct,
              static_cast<double>(a1 - a0) / 1e6 / static_cast<double>(std::max<std::uint64_t>(1, r1 - r0)),
              agent_pct < 0.2 ? "met" : "MISSED", lvd_pct, lvd_quiet_pct);

  // --- 3. 50 concurrent scrapers while metering ------------------------------------
  // mode 0: nobody scrapes; 1: bursts of `scrapers` scrapes at once every
  // 200 ms (each scraper waits for the same instant); 2: every scraper
  // scrapes back to back (saturation: the scrapers' own CPU competes with
  // the agent's round for the machine's cores).
  const auto window = [&](int mode) {
    const bool load = mode != 0;
    struct result {
      std::uint64_t rounds = 0, missed = 0, scrapes = 0;
      std::vector<double> durations, latencies;
      double cpu_pct = 0;
    } res;
    const auto before = get(agent_port);
    const auto rounds0 = std::stoull(sample_value(before, "bulkhead_agent_rounds_total"));
    const auto missed0 = std::stoull(sample_value(before, "bulkhead_agent_missed_rounds_total"));
    const auto c0 = threads_cpu_ns(agent.pid());
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::thread> th;
    const auto burst0 = std::chrono::steady_clock::now() + 100ms;
    if (load)
      for (int i = 0; i < scrapers; ++i)
        th.emplace_back([&, i] {
          std::vector<double> mine;
          auto next = burst0;
          while (!stop) {
            if (mode == 1) {
              std::this_thread::sleep_until(next);
              next += 200ms;
            }
            const auto t0 = std::chrono::steady_clock::now();
            const auto b = get(agent_port, i % 2 ? "application/openmetrics-text;version=1.0.0" : "");
            if (b.empty()) continue;
            mine.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          }
          std::lock_guard lk(mu);
          res.latencies.insert(res.latencies.end(), mine.begin(), mine.end());
        });
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(load_seconds);
    std::string last;
    while (std::chrono::steady_clock::now() < end) {
      const auto b = get(agent_port);
      const auto r = sample_value(b, "bulkhead_agent_rounds_total");
      if (r != last && !r.empty()) {
        last = r;
        res.durations.push_back(std::stod(sample_value(b, "bulkhead_agent_round_duration_seconds")) * 1e3);
      }
      std::this_thread::sleep_for(200ms);
    }
    stop = true;
    for (auto& t : th) t.join();
    const auto after = get(agent_port);
    res.rounds = std::stoull(sample_value(after, "bulkhead_agent_rounds_total")) - rounds0;
    res.missed = std::stoull(sample_value(after, "bulkhead_agent_missed_rounds_total")) - missed0;
    res.cpu_pct = static_cast<double>(threads_cpu_ns(agent.pid()) - c0) / 1e9 / load_seconds * 100.0;
    res.scrapes = res.latencies.size();
    return res;
  };
  const auto quiet = window(0);
  const auto burst = window(1);
  const auto quiet2 = window(0);
  const auto saturated = window(2);
  std::printf("\n3. %d s windows: quiet, %d scrapes at once every 200 ms, quiet again, %d scrapers back to back:\n",
              load_seconds, scrapers, scrapers);
  const auto row = [&](const char* what, const auto& w) {
    std::printf("   %-10s %3llu rounds, %llu missed, round median %8.3f ms max %8.3f ms, agent CPU %6.2f%%", what,
                static_cast<unsigned long long>(w.rounds), static_cast<unsigned long long>(w.missed), median(w.durations),
                pct(w.durations, 1.0), w.cpu_pct);
    if (w.scrapes)
      std::printf("; %llu scrapes (%.0f/s), latency median %.3f ms p99 %.3f ms", static_cast<unsigned long long>(w.scrapes),
                  static_cast<double>(w.scrapes) / load_seconds, median(w.latencies), pct(w.latencies, 0.99));
    std::printf("\n");
  };
  row("quiet", quiet);
  row("bursts", burst);
  row("quiet", quiet2);
  row("saturated", saturated);
  std::printf("load average at end: %s\n", loadavg().c_str());
  return 0;
}
