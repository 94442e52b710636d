// Live benchmark (issue 7): bulkhead's whole-host read of a real libvirtd
// beside the tools people use today, in one run, alternating:
//
//   bulkhead   libvirt::backend::read_all() on qemu:///system (read-only), in process
//   virsh      `virsh -c qemu:///system domstats --raw`, a child process
//   exporter   GET /metrics from prometheus-libvirt-exporter on loopback
//              (--web.listen-address=127.0.0.1:9177 --libvirt.uri=qemu:///system)
//
// and the cost of one sampling cycle of a hosting agent watching the guests at
// 1 Hz (read_all -> accountant::ingest -> journal, waiting until durable).
//
// Not part of CI and not a Google Benchmark program: it needs root, libvirtd
// and the live harness (docs/live-tests.md), and starts and stops its own
// guests (tests/live/live_guest.hpp) and its own exporter. Run as root:
//
//   bash tests/live/harness.sh setup BUILDDIR
//   BUILDDIR/bench/bench_live_peers [--rounds N] [--guests N] [--agent-seconds N]
//
// Measured per call, for each peer:
//   wall       steady_clock around the call (for virsh: fork to wait4)
//   client CPU bulkhead: this process's CPU (CLOCK_PROCESS_CPUTIME_ID);
//              virsh: the child's user+sys from wait4 (what getrusage
//              RUSAGE_CHILDREN adds) plus this process's fork/exec/pipe cost;
//              exporter: the exporter's utime+stime (/proc/PID/stat, clock
//              ticks) plus this process's HTTP client
//   libvirtd   the daemon's CPU over the call, summed over its threads
//              (/proc/PID/task/*/schedstat, ns), the server side every peer
//              causes
// Counted per call: the values each returns (see count_* below).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "live_guest.hpp"
#include "test_support.hpp"

using namespace bulkhead;
namespace live = bulkhead::test::live;
using namespace std::chrono_literals;

namespace {

constexpr const char* exporter_addr = "127.0.0.1";
constexpr int exporter_port = 9177;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench_live_peers: %s\n", why.c_str());
  std::exit(1);
}

std::int64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
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

// utime + stime of a process (/proc/PID/stat fields 14 and 15), in ns.
std::int64_t stat_cpu_ns(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto rp = line.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream f(line.substr(rp + 2));
  std::string field;
  std::int64_t ut = 0, st = 0;
  for (int i = 3; i <= 15 && f >> field; ++i) {
    if (i == 14) ut = std::stoll(field);
    if (i == 15) st = std::stoll(field);
  }
  return (ut + st) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
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

struct call {
  double wall_ms = 0;
  double client_cpu_ms = 0;
  double libvirtd_cpu_ms = 0;
  std::size_t counters = 0;   // values returned (see count_*)
  std::size_t numeric = 0;    // of which numbers
};

// --- bulkhead ------------------------------------------------------------------

// Values bulkhead returns per instance: its cumulative counters (flatten),
// gauges, and every knob of the spec as enforced. State and identity are
// not counted.
std::size_t count_spec(const quota_spec& q) {
  std::size_t n = 0;
  const auto k = [&](const auto& knob) { n += knob.has_value() ? 1 : 0; };
  const auto& c = q.cpu;
  k(c.vcpus), k(c.max_vcpus), k(c.request), k(c.shares), k(c.weight), k(c.period), k(c.quota);
  k(c.emulator_period), k(c.emulator_quota), k(c.burst), k(c.emulator_pin), k(c.cpus), k(c.mems);
  if (c.vcpu_pins) n += c.vcpu_pins->size();
  const auto& m = q.memory;
  k(m.max), k(m.current), k(m.request), k(m.hard_limit), k(m.soft_limit), k(m.swap_hard_limit);
  k(m.high), k(m.min), k(m.low), k(m.numa);
  k(q.blkio_weight);
  for (const auto& d : q.disks) {
    k(d.total_bytes_sec), k(d.read_bytes_sec), k(d.write_bytes_sec), k(d.total_iops_sec), k(d.read_iops_sec);
    k(d.write_iops_sec), k(d.total_bytes_sec_max), k(d.read_bytes_sec_max), k(d.write_bytes_sec_max);
    k(d.total_iops_sec_max), k(d.read_iops_sec_max), k(d.write_iops_sec_max), k(d.weight);
  }
  for (const auto& i : q.interfaces) k(i.inbound), k(i.outbound);
  k(q.llc), k(q.memory_bandwidth), k(q.cache_tunes);
  return n;
}

struct bulkhead_count {
  std::size_t usage = 0, spec = 0;
};

bulkhead_count count_bulkhead(const host_reading& r) {
  bulkhead_count c;
  std::vector<accounting::counter_value> scratch;
  for (const auto& i : r.instances) {
    accounting::flatten(i.usage, scratch);
    c.usage += scratch.size();
    c.usage += (i.usage.memory_current ? 1 : 0) + (i.usage.memory_rss ? 1 : 0) + (i.usage.memory_available ? 1 : 0);
    c.spec += count_spec(i.enforced);
  }
  return c;
}

call run_bulkhead(libvirt::backend& be, pid_t lvd, bulkhead_count& counted) {
  call c;
  const auto l0 = threads_cpu_ns(lvd);
  const auto c0 = process_cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = be.read_all();
  const auto t1 = std::chrono::steady_clock::now();
  const auto c1 = process_cpu_ns();
  const auto l1 = threads_cpu_ns(lvd);
  if (!r) die("read_all: " + r.error().describe());
  if (!r->failures.empty()) die("read_all failed for " + r->failures.front().name + ": " + r->failures.front().why.describe());
  counted = count_bulkhead(*r);
  c.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  c.client_cpu_ms = static_cast<double>(c1 - c0) / 1e6;
  c.libvirtd_cpu_ms = static_cast<double>(l1 - l0) / 1e6;
  c.counters = counted.usage + counted.spec;
  c.numeric = c.counters;
  return c;
}

// --- where bulkhead's time goes: its two kinds of libvirt calls, raw ---------------

// The bulk stats call read_all() makes (the same groups), alone.
call run_raw_stats(virConnectPtr c, pid_t lvd) {
  call r;
  const unsigned groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
                          VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
  const auto l0 = threads_cpu_ns(lvd);
  const auto c0 = process_cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  virDomainStatsRecordPtr* recs = nullptr;
  const int n = virConnectGetAllDomainStats(c, groups, &recs, 0);
  if (n < 0) die("virConnectGetAllDomainStats failed");
  for (int i = 0; i < n; ++i) r.counters += static_cast<std::size_t>(recs[i]->nparams);
  virDomainStatsRecordListFree(recs);
  const auto t1 = std::chrono::steady_clock::now();
  r.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  r.client_cpu_ms = static_cast<double>(process_cpu_ns() - c0) / 1e6;
  r.libvirtd_cpu_ms = static_cast<double>(threads_cpu_ns(lvd) - l0) / 1e6;
  r.numeric = r.counters;
  return r;
}

// The per-domain calls read_all() adds: the live XML and whether persistent.
call run_raw_xml(virConnectPtr c, pid_t lvd) {
  call r;
  const auto l0 = threads_cpu_ns(lvd);
  const auto c0 = process_cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) die("virConnectListAllDomains failed");
  for (int i = 0; i < n; ++i) {
    char* x = virDomainGetXMLDesc(doms[i], 0);
    if (!x) die("virDomainGetXMLDesc failed");
    std::free(x);
    (void)virDomainIsPersistent(doms[i]);
    virDomainFree(doms[i]);
  }
  std::free(doms);
  const auto t1 = std::chrono::steady_clock::now();
  r.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  r.client_cpu_ms = static_cast<double>(process_cpu_ns() - c0) / 1e6;
  r.libvirtd_cpu_ms = static_cast<double>(threads_cpu_ns(lvd) - l0) / 1e6;
  return r;
}

// --- virsh domstats --raw ----------------------------------------------------------

// Fields of `virsh domstats --raw`: lines "  key=value" under each
// "Domain: 'name'" header; numeric when the value is a number.
void count_domstats(const std::string& out, std::size_t& fields, std::size_t& numeric) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] != ' ' || eq == std::string::npos) continue;
    ++fields;
    const std::string v = line.substr(eq + 1);
    if (!v.empty() && v.find_first_not_of("0123456789.-") == std::string::npos) ++numeric;
  }
}

call run_virsh(pid_t lvd, std::string& out) {
  call c;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) die("pipe");
  const auto l0 = threads_cpu_ns(lvd);
  const auto c0 = process_cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t p = fork();
  if (p < 0) die("fork");
  if (p == 0) {
    dup2(fds[1], 1);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    execlp("virsh", "virsh", "-c", "qemu:///system", "domstats", "--raw", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  out.clear();
  char buf[65536];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  int st = 0;
  rusage ru{};
  while (wait4(p, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  const auto t1 = std::chrono::steady_clock::now();
  const auto c1 = process_cpu_ns();
  const auto l1 = threads_cpu_ns(lvd);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("virsh domstats failed");
  const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
  c.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  c.client_cpu_ms = tv(ru.ru_utime) + tv(ru.ru_stime) + static_cast<double>(c1 - c0) / 1e6;
  c.libvirtd_cpu_ms = static_cast<double>(l1 - l0) / 1e6;
  count_domstats(out, c.counters, c.numeric);
  return c;
}

// --- prometheus-libvirt-exporter ------------------------------------------------------

class exporter {
 public:
  exporter() {
    pid_ = fork();
    if (pid_ < 0) die("fork");
    if (pid_ == 0) {
      const int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
      }
      const std::string listen = "--web.listen-address=" + std::string(exporter_addr) + ":" + std::to_string(exporter_port);
      execlp("prometheus-libvirt-exporter", "prometheus-libvirt-exporter", listen.c_str(),
             "--libvirt.uri=qemu:///system", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      std::string body;
      if (get(body)) return;
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        die("prometheus-libvirt-exporter exited at once (apt-get install prometheus-libvirt-exporter; is port 9177 free?)");
      }
      std::this_thread::sleep_for(50ms);
    }
    die("prometheus-libvirt-exporter did not answer on 127.0.0.1:9177 within 10 s");
  }
  ~exporter() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  exporter(const exporter&) = delete;
  exporter& operator=(const exporter&) = delete;
  [[nodiscard]] pid_t pid() const { return pid_; }

  // GET /metrics over HTTP/1.0 (the server closes after the response).
  static bool get(std::string& body) {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(exporter_port);
    inet_pton(AF_INET, exporter_addr, &a.sin_addr);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(s);
      return false;
    }
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(s, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
      close(s);
      return false;
    }
    std::string resp;
    char buf[65536];
    for (ssize_t n; (n = read(s, buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      resp.append(buf, static_cast<std::size_t>(n));
    }
    close(s);
    if (resp.rfind("HTTP/1.", 0) != 0 || resp.find(" 200 ") == std::string::npos) return false;
    const auto hdr_end = resp.find("\r\n\r\n");
    if (hdr_end == std::string::npos) return false;
    body = resp.substr(hdr_end + 4);
    return true;
  }

 private:
  pid_t pid_ = -1;
};

// Samples in the exposition: every non-comment line; libvirt_* ones apart.
void count_metrics(const std::string& body, std::size_t& all, std::size_t& libvirt) {
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    ++all;
    if (line.rfind("libvirt_", 0) == 0) ++libvirt;
  }
}

call run_exporter(const exporter& ex, pid_t lvd, std::string& body, std::size_t& all) {
  call c;
  const auto l0 = threads_cpu_ns(lvd);
  const auto e0 = stat_cpu_ns(ex.pid());
  const auto c0 = process_cpu_ns();
  const auto t0 = std::chrono::steady_clock::now();
  if (!exporter::get(body)) die("GET /metrics failed");
  const auto t1 = std::chrono::steady_clock::now();
  const auto c1 = process_cpu_ns();
  const auto e1 = stat_cpu_ns(ex.pid());
  const auto l1 = threads_cpu_ns(lvd);
  c.wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  c.client_cpu_ms = static_cast<double>((e1 - e0) + (c1 - c0)) / 1e6;
  c.libvirtd_cpu_ms = static_cast<double>(l1 - l0) / 1e6;
  std::size_t libvirt = 0;
  count_metrics(body, all, libvirt);
  c.counters = libvirt;
  c.numeric = libvirt;
  return c;
}

// --- summaries ----------------------------------------------------------------------

struct summary {
  double wall_median = 0, wall_p90 = 0, client_cpu_mean = 0, libvirtd_cpu_mean = 0;
  std::size_t counters = 0, numeric = 0;
};

summary summarize(std::vector<call> v) {
  summary s;
  if (v.empty()) return s;
  std::vector<double> w;
  for (const auto& c : v) w.push_back(c.wall_ms);
  std::sort(w.begin(), w.end());
  s.wall_median = w[w.size() / 2];
  s.wall_p90 = w[std::min(w.size() - 1, w.size() * 9 / 10)];
  for (const auto& c : v) {
    s.client_cpu_mean += c.client_cpu_ms;
    s.libvirtd_cpu_mean += c.libvirtd_cpu_ms;
  }
  s.client_cpu_mean /= static_cast<double>(v.size());
  s.libvirtd_cpu_mean /= static_cast<double>(v.size());
  s.counters = v.back().counters;
  s.numeric = v.back().numeric;
  return s;
}

void print_row(const char* name, const summary& s) {
  std::printf("%-10s %9.2f %9.2f %11.2f %11.2f %11.2f %9zu %9zu\n", name, s.wall_median, s.wall_p90, s.client_cpu_mean,
              s.libvirtd_cpu_mean, s.client_cpu_mean + s.libvirtd_cpu_mean, s.counters, s.numeric);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 40, guests = 3, agent_seconds = 20;
  bool show = false, groups = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] {
      if (i + 1 >= argc) die("missing value after " + a);
      return std::atoi(argv[++i]);
    };
    if (a == "--rounds") rounds = next();
    else if (a == "--guests") guests = next();
    else if (a == "--agent-seconds") agent_seconds = next();
    else if (a == "--show-values") show = true;
    else if (a == "--groups") groups = true;
    else die("usage: bench_live_peers [--rounds N] [--guests N] [--agent-seconds N] [--show-values] [--groups]");
  }
  if (rounds < 1 || guests < 1 || guests > 3 || agent_seconds < 1)
    die("--rounds >= 1, --guests 1..3 (the live tests' limit), --agent-seconds >= 1");

  const auto& env = live::require_live();  // exits 77 naming what is missing
  std::printf("load average at start: %s\n", loadavg().c_str());
  live::connection conn(env);
  std::vector<std::unique_ptr<live::guest>> gs;
  for (int i = 0; i < guests; ++i)
    gs.push_back(std::make_unique<live::guest>(env, conn, live::guest_options{.tag = "peer" + std::to_string(i)}));
  for (auto& g : gs) g->wait_ready();
  std::printf("%d idle guests running (%s)\n", guests, std::string(live::to_string(env.accel)).c_str());

  exporter ex;
  auto be = libvirt::backend::connect({.uri = env.uri, .read_only = true});
  if (!be) die(be.error().describe());
  const pid_t lvd = libvirtd_pid();

  // Warm-up: one of each.
  bulkhead_count bc;
  std::string vout, mbody;
  std::size_t mall = 0;
  (void)run_bulkhead(**be, lvd, bc);
  (void)run_virsh(lvd, vout);
  (void)run_exporter(ex, lvd, mbody, mall);

  if (show) {  // what each returns for one guest
    std::printf("--- virsh domstats --raw (all guests):\n%s", vout.c_str());
    auto r = (*be)->read_all();
    if (r && !r->instances.empty()) {
      const auto& i = r->instances.front();
      std::printf("--- bulkhead, %s: counters", i.info.name.c_str());
      for (const auto& c : accounting::flatten(i.usage)) std::printf(" %s=%llu", c.name.c_str(), static_cast<unsigned long long>(c.value));
      std::printf("; gauges%s%s%s; spec knobs %zu\n", i.usage.memory_current ? " memory_current" : "",
                  i.usage.memory_rss ? " memory_rss" : "", i.usage.memory_available ? " memory_available" : "",
                  count_spec(i.enforced));
    }
    std::printf("--- exporter, libvirt_* samples:\n");
    std::istringstream in(mbody);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("libvirt_", 0) == 0) std::printf("%s\n", line.c_str());
  }

  virConnectPtr raw = virConnectOpenReadOnly(env.uri.c_str());
  if (!raw) die("virConnectOpenReadOnly failed");
  std::vector<call> bh, vs, px, rs, rx;
  for (int r = 0; r < rounds; ++r) {
    // Alternating, and rotating who goes first, so drift in the host's load
    // falls on every peer alike.
    for (int k = 0; k < 5; ++k) {
      switch ((r + k) % 5) {
        case 0: bh.push_back(run_bulkhead(**be, lvd, bc)); break;
        case 1: vs.push_back(run_virsh(lvd, vout)); break;
        case 2: mall = 0; px.push_back(run_exporter(ex, lvd, mbody, mall)); break;
        case 3: rs.push_back(run_raw_stats(raw, lvd)); break;
        case 4: rx.push_back(run_raw_xml(raw, lvd)); break;
      }
    }
  }
  if (groups) {  // each stats group of the bulk call alone, and an exporter-like per-domain read
    struct group {
      const char* name;
      unsigned bits;
    };
    const group gl[] = {{"state", VIR_DOMAIN_STATS_STATE}, {"cpu-total", VIR_DOMAIN_STATS_CPU_TOTAL},
                        {"balloon", VIR_DOMAIN_STATS_BALLOON}, {"vcpu", VIR_DOMAIN_STATS_VCPU},
                        {"interface", VIR_DOMAIN_STATS_INTERFACE}, {"block", VIR_DOMAIN_STATS_BLOCK}};
    std::printf("\nvirConnectGetAllDomainStats, one group at a time (median of %d, ms):", rounds);
    for (const auto& gr : gl) {
      std::vector<double> w;
      for (int r = 0; r < rounds; ++r) {
        virDomainStatsRecordPtr* recs = nullptr;
        const auto t0 = std::chrono::steady_clock::now();
        if (virConnectGetAllDomainStats(raw, gr.bits, &recs, 0) < 0) die("virConnectGetAllDomainStats failed");
        w.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        virDomainStatsRecordListFree(recs);
      }
      std::sort(w.begin(), w.end());
      std::printf(" %s %.2f", gr.name, w[w.size() / 2]);
    }
    std::vector<double> w;
    for (int r = 0; r < rounds; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      virDomainPtr* doms = nullptr;
      const int n = virConnectListAllDomains(raw, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
      for (int i = 0; i < n; ++i) {
        virDomainInfo info{};
        virDomainGetInfo(doms[i], &info);
        virDomainBlockStatsStruct bs{};
        virDomainBlockStats(doms[i], "vda", &bs, sizeof bs);
        std::free(virDomainGetXMLDesc(doms[i], 0));
        virDomainFree(doms[i]);
      }
      std::free(doms);
      w.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(w.begin(), w.end());
    std::printf("\nper domain virDomainGetInfo + virDomainBlockStats(vda) + virDomainGetXMLDesc (what the exporter calls): %.2f ms\n",
                w[w.size() / 2]);
  }
  virConnectClose(raw);
  const auto b = summarize(bh), v = summarize(vs), p = summarize(px);
  std::printf("\n%d rounds, alternating; times in ms (wall: median and p90; CPU: mean per call)\n", rounds);
  std::printf("%-10s %9s %9s %11s %11s %11s %9s %9s\n", "peer", "wall", "wall p90", "client CPU", "libvirtd CPU",
              "total CPU", "values", "numeric");
  print_row("bulkhead", b);
  print_row("virsh", v);
  print_row("exporter", p);
  std::printf("  bulkhead values: %zu usage counters and gauges + %zu spec knobs; exporter: %zu samples in all, %zu libvirt_*\n",
              bc.usage, bc.spec, mall, p.counters);
  const auto rs_s = summarize(rs), rx_s = summarize(rx);
  std::printf("where bulkhead's time goes (the same libvirt calls, raw C API, same rounds):\n");
  print_row("  stats", rs_s);
  print_row("  xml", rx_s);
  std::printf("  (stats: virConnectGetAllDomainStats with read_all's groups, %zu typed parameters; xml: virDomainGetXMLDesc\n"
              "   + virDomainIsPersistent of each running domain)\n", rs_s.counters);
  std::printf("\nratios (peer / bulkhead): wall virsh %.2fx, exporter %.2fx; total CPU virsh %.2fx, exporter %.2fx\n",
              v.wall_median / b.wall_median, p.wall_median / b.wall_median,
              (v.client_cpu_mean + v.libvirtd_cpu_mean) / (b.client_cpu_mean + b.libvirtd_cpu_mean),
              (p.client_cpu_mean + p.libvirtd_cpu_mean) / (b.client_cpu_mean + b.libvirtd_cpu_mean));
  std::printf("goals: bulkhead wall <= 0.5 x virsh: %s (%.2f); values >= virsh's %zu: %s (%zu); faster than the exporter: %s\n",
              b.wall_median <= 0.5 * v.wall_median ? "met" : "MISSED", b.wall_median / v.wall_median, v.counters,
              b.counters >= v.counters ? "met" : "MISSED", b.counters, b.wall_median < p.wall_median ? "met" : "MISSED");

  // --- an agent at 1 Hz: read_all -> ingest -> journal, durable ------------------
  test::temp_dir jdir("bulkhead-bench-journal");
  result<std::shared_ptr<accounting::journal>> j = accounting::journal::open(jdir.str());
  if (!j) die("journal: " + j.error().describe());
  std::string boot;
  std::getline(std::ifstream("/proc/sys/kernel/random/boot_id"), boot);
  auto acc = accounting::accountant::make(*j, {.width = {}, .allocation = true, .source_suffix = "@" + boot});
  if (!acc) die("accountant: " + acc.error().describe());
  std::vector<double> cyc_cpu, cyc_wall, cyc_lvd;
  std::uint64_t accounted = 0;
  auto next = std::chrono::steady_clock::now();
  for (int s = 0; s <= agent_seconds; ++s) {
    std::this_thread::sleep_until(next);
    next += 1s;
    const auto l0 = threads_cpu_ns(lvd);
    const auto c0 = process_cpu_ns();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = (*be)->read_all();
    if (!r) die("read_all: " + r.error().describe());
    auto rep = acc->ingest(*r);
    if (!rep) die("ingest: " + rep.error().describe());
    if (rep->last)
      if (auto w = (*j)->wait(*rep->last); !w) die("journal wait: " + w.error().describe());
    const auto t1 = std::chrono::steady_clock::now();
    const auto c1 = process_cpu_ns();
    const auto l1 = threads_cpu_ns(lvd);
    if (s == 0) continue;  // the first cycle only takes baselines
    accounted += rep->accounted;
    cyc_wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    cyc_cpu.push_back(static_cast<double>(c1 - c0) / 1e6);
    cyc_lvd.push_back(static_cast<double>(l1 - l0) / 1e6);
  }
  const auto mean = [](const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size()); };
  auto sorted = cyc_wall;
  std::sort(sorted.begin(), sorted.end());
  std::printf("\nagent at 1 Hz, %zu cycles (read_all + ingest + journal durable), %d guests, %.1f deltas per cycle:\n",
              cyc_cpu.size(), guests, static_cast<double>(accounted) / static_cast<double>(cyc_cpu.size()));
  std::printf("  agent CPU %.3f ms per cycle = %.3f%% of one core (goal < 0.5%%: %s); wall median %.2f ms; libvirtd CPU %.3f ms per cycle (%.3f%%)\n",
              mean(cyc_cpu), mean(cyc_cpu) / 10.0, mean(cyc_cpu) / 10.0 < 0.5 ? "met" : "MISSED", sorted[sorted.size() / 2],
              mean(cyc_lvd), mean(cyc_lvd) / 10.0);
  std::printf("load average at end: %s\n", loadavg().c_str());
  return 0;
}
