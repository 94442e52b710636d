// bulkhead-inspect as a whole process: the demo host, committed node files,
// unreachable and malformed sources, usage errors, the JSON contract.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <poll.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "run_process.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using nlohmann::json;

namespace {

std::string tool() {
  const char* p = std::getenv("BULKHEAD_INSPECT");
  if (!p || !*p) test::skip("BULKHEAD_INSPECT is not set (run through meson test)");
  return p;
}

test::process_result run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), tool());
  return test::run_process(args, env);
}

std::string varied() { return "test://" + test::fixture("libvirt/varied-node.xml").string(); }

std::size_t display_columns(const std::string& line) {
  // East Asian wide characters take two columns (the varied node has some).
  std::size_t n = 0;
  for (std::size_t i = 0; i < line.size();) {
    const auto c = static_cast<unsigned char>(line[i]);
    std::size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    std::uint32_t cp = c < 0x80 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (std::size_t k = 1; k < len && i + k < line.size(); ++k) cp = (cp << 6) | (line[i + k] & 0x3f);
    n += (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ? 2 : 1;
    i += len;
  }
  return n;
}

const json& find_instance(const json& doc, const std::string& name) {
  for (const auto& i : doc.at("instances"))
    if (i.at("name") == name) return i;
  FAIL("no instance named " << name);
  static json none;
  return none;
}

}  // namespace

TEST_CASE("--demo prints a table that fits 80 columns") {
  auto r = run({"--demo"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  std::istringstream in(r.out);
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    INFO(line);
    CHECK(display_columns(line) <= 80);
    ++rows;
  }
  CHECK(rows >= 12);
  for (auto name : {"payments-db", "batch-etl-01", "nfv-router", "ci-runner", "legacy-app"})
    CHECK(r.out.find(name) != std::string::npos);
  CHECK(r.out.find("bare_metal") != std::string::npos);
  CHECK(r.out.find("card 0000:3b:00.0") != std::string::npos);
  CHECK(r.out.find("NAME") != std::string::npos);
  CHECK(r.out.find("vm_offload") != std::string::npos);
  CHECK(r.out.find("shutoff") != std::string::npos);
  CHECK(r.out.find("paused") != std::string::npos);
}

TEST_CASE("--demo --json follows the documented contract") {
  auto r = run({"--demo", "--json"});
  REQUIRE(r.exit_code == 0);
  const auto doc = json::parse(r.out);
  const auto& host = doc.at("host");
  CHECK(host.at("cpus") == 16);
  CHECK(host.at("memory_bytes") == 68719476736ull);
  REQUIRE(host.at("numa_nodes").size() == 2);
  CHECK(host.at("numa_nodes")[0].at("cpus").size() == 8);
  CHECK(host.at("numa_nodes")[0].at("memory_bytes").is_number_integer());
  REQUIRE(doc.at("sources").size() >= 1);
  CHECK(doc.at("sources")[0].at("kind") == "libvirt");
  CHECK(doc.at("sources")[0].at("ok") == true);
  CHECK(doc.at("sources")[0].at("error").is_null());
  CHECK(doc.at("sources")[0].at("uri").get<std::string>().rfind("test:///", 0) == 0);
  CHECK(doc.at("instances").size() >= 8);
  for (const auto& i : doc.at("instances")) {
    for (auto f : {"uuid", "name", "kind", "state", "incarnation", "isolation", "qos_class", "tenant", "quota", "usage"})
      CHECK_MESSAGE(i.contains(f), f);
    const auto& q = i.at("quota");
    for (auto f : {"vcpus", "cpu_shares", "cpu_period_us", "cpu_quota_us", "memory_max_bytes", "memory_hard_limit_bytes",
                   "memory_soft_limit_bytes", "vcpu_pins", "disks", "interfaces"})
      CHECK_MESSAGE(q.contains(f), f);
    for (const auto& d : q.at("disks"))
      for (auto f : {"target", "total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec", "read_iops_sec",
                     "write_iops_sec"})
        CHECK_MESSAGE(d.contains(f), f);
    for (const auto& n : q.at("interfaces"))
      for (auto f : {"mac", "inbound_average_kbytes_sec", "inbound_peak_kbytes_sec", "inbound_burst_kbytes",
                     "outbound_average_kbytes_sec", "outbound_peak_kbytes_sec", "outbound_burst_kbytes"})
        CHECK_MESSAGE(n.contains(f), f);
    const auto& u = i.at("usage");
    for (auto f : {"cpu_time_ns", "memory_current_bytes", "disks", "interfaces"}) CHECK_MESSAGE(u.contains(f), f);
    for (const auto& d : u.at("disks"))
      for (auto f : {"target", "read_requests", "read_bytes", "write_requests", "write_bytes"})
        CHECK_MESSAGE(d.contains(f), f);
    for (const auto& n : u.at("interfaces"))
      for (auto f : {"mac", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets"}) CHECK_MESSAGE(n.contains(f), f);
  }
  const auto& web = find_instance(doc, "web-frontend-01");
  CHECK(web.at("uuid") == "a1000000-0000-4000-8000-000000000001");
  CHECK(web.at("kind") == "vm");
  CHECK(web.at("state") == "running");
  CHECK(web.at("incarnation").is_number_integer());
  CHECK(web.at("tenant") == "acme");
  CHECK(web.at("qos_class") == "LS");
  CHECK(web.at("quota").at("cpu_quota_us") == 50000);
  CHECK(web.at("quota").at("cpu_period_us") == 100000);
  CHECK(web.at("quota").at("cpu_shares") == 4096);
  CHECK(web.at("quota").at("memory_hard_limit_bytes") == 9ull << 30);
  CHECK(web.at("quota").at("disks")[0].at("read_bytes_sec") == 104857600);
  CHECK(web.at("quota").at("disks")[0].at("total_bytes_sec").is_null());  // unlimited is null
  CHECK(web.at("quota").at("interfaces")[0].at("inbound_average_kbytes_sec") == 125000);
  CHECK(web.at("quota").at("interfaces")[0].at("inbound_burst_kbytes") == 10240);
  CHECK(web.at("usage").at("cpu_time_ns").is_number_integer());
  const auto& db = find_instance(doc, "payments-db");
  CHECK(db.at("qos_class") == "LSE");
  CHECK(db.at("quota").at("vcpu_pins").size() == 4);
  CHECK(db.at("quota").at("vcpu_pins")[0].at("cpus") == json::array({8}));
  CHECK(db.at("quota").at("cpu_quota_us").is_null());
  CHECK(find_instance(doc, "nfv-router").at("isolation") == "vm_offload");
  const auto& off = find_instance(doc, "batch-ml-train");
  CHECK(off.at("state") == "shutoff");
  CHECK(off.at("incarnation").is_null());
  CHECK(off.at("usage").at("cpu_time_ns").is_null());
  CHECK(find_instance(doc, "legacy-app").at("tenant").is_null());
  CHECK(find_instance(doc, "ci-runner").at("tenant") == "7e5b2c4a-9f31-4d2e-8c6b-1a2b3c4d5e6f");
  // The demo's emulated offload card: bare-metal instances beside the VMs,
  // and the card with its functions.
  std::size_t metal = 0;
  for (const auto& i : doc.at("instances")) metal += i.at("kind") == "bare_metal";
  CHECK(metal >= 3);
  REQUIRE(doc.at("sources").size() == 2);
  CHECK(doc.at("sources")[1].at("kind") == "offload");
  CHECK(doc.at("sources")[1].at("ok") == true);
  REQUIRE(doc.at("cards").size() == 1);
  CHECK(doc.at("cards")[0].at("functions").size() >= 8);
  for (const auto& i : doc.at("instances"))
    if (i.at("kind") == "bare_metal") {
      CHECK(i.at("isolation") == "bare_metal");
      CHECK(i.at("isolation_modes").at("net_bandwidth") == "hardware");
      CHECK(i.at("isolation_modes").at("cpu") == "dedicated");
      CHECK(i.at("quota").at("interfaces").size() >= 1);
      CHECK(i.at("usage").at("interfaces").size() >= 1);
    }
}

TEST_CASE("a source that cannot be reached: exit 1, others still printed") {
  auto r = run({"--uri", varied(), "--uri", "qemu+tcp://127.0.0.1:1/system", "--json"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("qemu+tcp://127.0.0.1:1/system") != std::string::npos);
  const auto doc = json::parse(r.out);
  REQUIRE(doc.at("sources").size() == 2);
  CHECK(doc.at("sources")[0].at("ok") == true);
  CHECK(doc.at("sources")[1].at("ok") == false);
  CHECK(doc.at("sources")[1].at("error").get<std::string>().find("cannot connect") != std::string::npos);
  CHECK(doc.at("instances").size() == 5);
  const auto& horse = find_instance(doc, "Žluťoučký kůň 東京");
  CHECK(horse.at("tenant") == "99999999-8888-4777-8666-555555555555");
  auto t = run({"--uri", "qemu+tcp://127.0.0.1:1/system"});
  CHECK(t.exit_code == 1);
}

TEST_CASE("a malformed node file: exit 1 with libvirt's reason") {
  auto r = run({"--uri", "test://" + test::fixture("libvirt/malformed-node.xml").string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("malformed-node.xml") != std::string::npos);
  CHECK(r.err.find("mismatch") != std::string::npos);
  auto m = run({"--uri", "test:///no/such/node.xml"});
  CHECK(m.exit_code == 1);
  CHECK(m.err.find("does not exist") != std::string::npos);
}

TEST_CASE("the default URI follows LIBVIRT_DEFAULT_URI, and says where to point it") {
  auto ok = run({"--json"}, {"LIBVIRT_DEFAULT_URI=test:///default"});
  CHECK(ok.exit_code == 0);
  CHECK(json::parse(ok.out).at("instances").size() == 1);
  auto bad = run({}, {"LIBVIRT_DEFAULT_URI=qemu+tcp://127.0.0.1:1/system"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("--demo") != std::string::npos);
  CHECK(bad.err.find("--uri") != std::string::npos);
}

TEST_CASE("usage: --help, --version, bad options") {
  auto h = run({"--help"});
  CHECK(h.exit_code == 0);
  for (auto o : {"--uri", "--demo", "--json", "--version", "Exit status"}) CHECK(h.out.find(o) != std::string::npos);
  auto v = run({"--version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("bulkhead-inspect ", 0) == 0);
  auto b = run({"--no-such-option"});
  CHECK(b.exit_code == 2);
  CHECK(b.out.empty());
  CHECK(b.err.find("--help") != std::string::npos);
  auto m = run({"--uri"});
  CHECK(m.exit_code == 2);
}

// --- --watch ---------------------------------------------------------------
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>

namespace {

struct pty_run {
  pid_t pid = -1;
  int master = -1;
  std::string out;

  explicit pty_run(std::vector<std::string> args, std::vector<std::string> env = {}) {
    winsize ws{};
    ws.ws_row = 24;
    ws.ws_col = 80;
    pid = ::forkpty(&master, nullptr, nullptr, &ws);
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      args.insert(args.begin(), tool());
      std::vector<char*> a;
      for (auto& s : args) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
  }
  // Reads what the child printed for up to `ms`, or until `until` appears.
  bool read_until(const std::string& until, int ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      if (!until.empty() && out.find(until) != std::string::npos) return true;
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[4096];
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
      }
    }
    return !until.empty() && out.find(until) != std::string::npos;
  }
  int wait_exit() {
    read_until("", 300);
    int st = 0;
    for (int i = 0; i < 300; ++i) {
      if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      read_until("", 50);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    return -2;
  }
  bool terminal_restored() const {
    termios t{};
    if (::tcgetattr(master, &t) != 0) return false;
    return (t.c_lflag & ICANON) && (t.c_lflag & ECHO);
  }
  ~pty_run() {
    if (master >= 0) ::close(master);
  }
};

std::string strip_escapes(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~')) ++i;
      if (i < s.size() && s[i] == 'H') out += '\n';  // cursor home: a new frame starts at the top
      continue;
    }
    out += s[i];
  }
  return out;
}

}  // namespace

TEST_CASE("--watch without a terminal prints plain periodic tables with rates") {
  auto r = run({"--demo", "--watch", "--interval", "0.2", "--count", "3"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  std::size_t frames = 0;
  for (std::size_t p = 0; (p = r.out.find("NAME ", p)) != std::string::npos; ++p) ++frames;
  CHECK(frames == 3);
  // From the second refresh on, running instances have rates from the meter.
  const auto second = r.out.find("NAME ", r.out.find("NAME ") + 1);
  CHECK(r.out.find("payments-db", second) != std::string::npos);
  CHECK(r.out.find("/s", second) == std::string::npos);  // rates are plain sizes per second
  auto bad = run({"--demo", "--watch", "--interval", "0.05"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("0.2") != std::string::npos);
  CHECK(run({"--demo", "--watch", "--interval", "abc"}).exit_code == 2);
  CHECK(run({"--demo", "--watch", "--json"}).exit_code == 2);
}

TEST_CASE("--watch on a terminal: refreshes in place, keys sort, q leaves the terminal as it was") {
  pty_run p({"--demo", "--watch", "--interval", "0.2"});
  REQUIRE(p.read_until("payments-db", 15000));
  CHECK(p.out.find("\x1b[?1049h") != std::string::npos);  // alternate screen
  CHECK(p.out.find("\x1b[7m") != std::string::npos);      // inverse header (colour allowed)
  REQUIRE(::write(p.master, "n", 1) == 1);
  CHECK(p.read_until("sort: name", 5000));
  REQUIRE(::write(p.master, "q", 1) == 1);
  CHECK(p.wait_exit() == 0);
  CHECK(p.out.rfind("\x1b[?1049l") != std::string::npos);  // back to the normal screen
  CHECK(p.terminal_restored());
  // Every line of every frame fits 80 columns.
  const auto plain = strip_escapes(p.out);
  std::istringstream in(plain);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    CHECK(display_columns(line) <= 80);
  }
}

TEST_CASE("--watch: Ctrl-C restores the terminal; NO_COLOR turns colour off") {
  pty_run p({"--demo", "--watch", "--interval", "0.2"}, {"NO_COLOR=1"});
  REQUIRE(p.read_until("payments-db", 15000));
  CHECK(p.out.find("\x1b[7m") == std::string::npos);
  ::kill(p.pid, SIGINT);
  CHECK(p.wait_exit() == 0);
  CHECK(p.out.rfind("\x1b[?1049l") != std::string::npos);
  CHECK(p.terminal_restored());
}
