#include "live_guest.hpp"

#include <fcntl.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace bulkhead::test::live {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view name_prefix = "bulkhead-live-";

// libvirt prints every error to stderr unless told otherwise; the errors are
// read with virGetLastErrorMessage where they matter.
void quiet_libvirt(void*, virErrorPtr) {}

std::string last_libvirt_error() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string env_or(const char* var, std::string fallback) {
  const char* v = std::getenv(var);
  return v && *v ? std::string(v) : fallback;
}

std::optional<fs::path> find_in_path(std::string_view prog) {
  std::string path = env_or("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
  std::istringstream in(path);
  for (std::string d; std::getline(in, d, ':');) {
    if (d.empty()) continue;
    fs::path p = fs::path(d) / prog;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

// Runs a program and waits; true on exit status 0. Output goes to `log`.
bool run(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t p = ::fork();
  if (p < 0) return false;
  if (p == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::string xml_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '\'': r += "&apos;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

// A call on a connection whose libvirtd died raises SIGPIPE in the calling
// thread (libvirt leaves SIGPIPE to the application). The test's own
// connections hold it blocked while they close or clean up, and take off one
// they raised, as bulkhead's backend does for its calls (libvirt::detail::sigpipe_guard).
class quiet_sigpipe {
 public:
  quiet_sigpipe() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t p;
    sigemptyset(&p);
    was_ = sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1;
  }
  ~quiet_sigpipe() {
    sigset_t p;
    sigemptyset(&p);
    if (!was_ && sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  quiet_sigpipe(const quiet_sigpipe&) = delete;
  quiet_sigpipe& operator=(const quiet_sigpipe&) = delete;

 private:
  sigset_t pipe_{}, old_{};
  bool was_ = false;
};

// --- cleanup on fatal signals -------------------------------------------------
// The handler may only use async-signal-safe calls, so everything it needs is
// prepared when a guest registers: fixed buffers, the path to virsh, the URI.
// It runs `virsh destroy`, `virsh undefine` and `rm -rf <folder>` for each
// registered guest (fork/execv/waitpid), then restores the previous action
// and re-raises.
constexpr int max_guests = 16;
constexpr std::size_t max_text = 160;
struct slot {
  std::atomic<bool> used{false};
  char name[max_text] = {};
  char dir[1024] = {};  // the guest's folder, removed with rm -rf
};
slot g_slots[max_guests];
char g_virsh[256] = {};
char g_uri[max_text] = {};
constexpr int g_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_prev[NSIG];

void exec_in_handler(const char* prog, char* const argv[]) {
  pid_t p = ::fork();
  if (p == 0) {
    int fd = ::open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(prog, argv);
    ::_exit(127);
  }
  if (p > 0) {
    int st = 0;
    while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

void virsh_in_handler(const char* verb, const char* name) {
  char a0[] = "virsh", a1[] = "-q", a2[] = "-c";
  char* argv[] = {a0, a1, a2, g_uri, const_cast<char*>(verb), const_cast<char*>(name), nullptr};
  exec_in_handler(g_virsh, argv);
}

void on_fatal_signal(int sig) {
  if (g_virsh[0] != '\0') {
    for (auto& s : g_slots) {
      if (!s.used.load()) continue;
      virsh_in_handler("destroy", s.name);
      virsh_in_handler("undefine", s.name);
      if (s.dir[0] != '\0') {
        char a0[] = "rm", a1[] = "-rf", a2[] = "--";
        char* argv[] = {a0, a1, a2, s.dir, nullptr};
        exec_in_handler("/bin/rm", argv);
      }
      s.used.store(false);
    }
  }
  ::sigaction(sig, &g_prev[sig], nullptr);
  ::raise(sig);
}

// (Re)installs the handler where it is not the current one: doctest installs
// its own around each test case and restores what it found afterwards, so the
// handler is checked again at every guest registration; the previous action
// (doctest's report, or the default) still runs after the cleanup.
void ensure_handlers() {
  for (int sig : g_signals) {
    struct sigaction cur{};
    ::sigaction(sig, nullptr, &cur);
    if (cur.sa_handler == on_fatal_signal) continue;
    if (cur.sa_handler == SIG_IGN) continue;  // someone chose to ignore it: keep that
    struct sigaction act{};
    act.sa_handler = on_fatal_signal;
    ::sigemptyset(&act.sa_mask);
    act.sa_flags = SA_ONSTACK;
    g_prev[sig] = cur;
    ::sigaction(sig, &act, nullptr);
  }
}

void register_guest(const std::string& name, const fs::path& dir, const std::string& uri) {
  if (g_virsh[0] == '\0') {
    if (auto v = find_in_path("virsh"); v && v->string().size() < sizeof g_virsh)
      std::strcpy(g_virsh, v->c_str());
  }
  if (uri.size() < sizeof g_uri) std::strcpy(g_uri, uri.c_str());
  if (name.size() >= max_text) return;
  ensure_handlers();
  for (auto& s : g_slots) {
    if (s.used.load()) continue;
    std::strcpy(s.name, name.c_str());
    const std::string d = dir.string();
    if (d.size() < sizeof s.dir) std::strcpy(s.dir, d.c_str());
    else s.dir[0] = '\0';
    s.used.store(true);
    return;
  }
}

void unregister_guest(const std::string& name) {
  for (auto& s : g_slots)
    if (s.used.load() && name == s.name) s.used.store(false);
}

}  // namespace

std::string_view to_string(accelerator a) noexcept { return a == accelerator::kvm ? "kvm" : "tcg"; }

std::string_view to_string(guest_mode m) noexcept {
  switch (m) {
    case guest_mode::idle: return "idle";
    case guest_mode::burn: return "burn";
    case guest_mode::write: return "write";
    case guest_mode::write_direct: return "write-direct";
  }
  return "idle";
}

// --- environment ----------------------------------------------------------------

const environment& require_live() {
  static const environment env = [] {
    virSetErrorFunc(nullptr, quiet_libvirt);
    const std::string setup = "run `bash tests/live/harness.sh setup " + build_root().string() + "` as root";
    if (!is_root()) skip("live tests need root (qemu:///system, guest cgroups)");
    environment e;
    e.dir = env_or("BULKHEAD_LIVE_DIR", (build_root() / "live").string());
    e.kernel = e.dir / "kernel" / "vmlinuz";
    e.modules = e.dir / "kernel" / "modules";
    e.uri = env_or("BULKHEAD_LIVE_URI", "qemu:///system");
    if (!fs::exists(e.kernel) || !fs::exists(e.modules / "virtio_blk.ko"))
      skip("no guest kernel at " + e.kernel.string() + ": " + setup);
    e.kernel_package = first_line(read_text(e.dir / "kernel" / "version"));
    e.guests = first_line(read_text(e.dir / "guests"));
    if (e.guests.empty() || !fs::is_directory(e.guests))
      skip("no guests' folder named by " + (e.dir / "guests").string() + ": " + setup);
    if (!find_in_path("qemu-system-x86_64")) skip("qemu-system-x86_64 not installed: " + setup);
    if (!find_in_path("cpio")) skip("cpio not installed: " + setup);
    if (!fs::exists("/bin/busybox")) skip("busybox-static not installed: " + setup);
    if (!find_in_path("virsh")) skip("virsh not installed (libvirt-clients): " + setup);

    virConnectPtr c = virConnectOpen(e.uri.c_str());
    if (!c) skip("libvirtd not reachable at " + e.uri + " (" + last_libvirt_error() + "): " + setup);
    virConnectClose(c);

    const std::string forced = env_or("BULKHEAD_LIVE_ACCEL", "");
    if (forced == "kvm" || forced == "tcg") {
      e.accel = forced == "kvm" ? accelerator::kvm : accelerator::tcg;
      e.accel_reason = "set by BULKHEAD_LIVE_ACCEL";
    } else if (std::ifstream in(e.dir / "accel"); in) {
      std::string a;
      std::getline(in, a);
      std::getline(in, e.accel_reason);
      e.accel = a == "kvm" ? accelerator::kvm : accelerator::tcg;
    } else {
      e.accel = accelerator::tcg;
      e.accel_reason = "no probe result at " + (e.dir / "accel").string() + " (harness not run?)";
    }
    std::fprintf(stderr, "live: %s, %s, accelerator %s (%s)\n", e.uri.c_str(), e.kernel_package.c_str(),
                 std::string(to_string(e.accel)).c_str(), e.accel_reason.c_str());
    return e;
  }();
  return env;
}

connection::connection(const environment& env) {
  virSetErrorFunc(nullptr, quiet_libvirt);
  conn_ = virConnectOpen(env.uri.c_str());
  if (!conn_) throw error("cannot connect to " + env.uri + ": " + last_libvirt_error());
}

connection::~connection() {
  quiet_sigpipe q;
  if (conn_) virConnectClose(conn_);
}

// --- guest ------------------------------------------------------------------------

guest::guest(const environment& env, const connection& conn, guest_options opts)
    : env_(env), opts_(std::move(opts)) {
  static std::atomic<unsigned> seq{0};
  const auto& t = opts_.tag;
  if (t.empty() || t.size() > 24 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }))
    throw error("guest tag '" + t + "' must be 1 to 24 characters of [a-z0-9-]");
  if (opts_.disk_size.count() < 2 * 1024 * 1024 || opts_.disk_size.count() % 512 != 0)
    throw error("guest " + t + ": disk_size must be a multiple of 512 bytes and at least 2 MiB");
  if (opts_.memory.count() < 64 * 1024 * 1024 || opts_.memory.count() % 1024 != 0)
    throw error("guest " + t + ": memory must be a whole number of KiB and at least 64 MiB");

  name_ = std::string(name_prefix) + std::to_string(::getpid()) + "-" + std::to_string(++seq) + "-" + t;
  dir_ = env_.guests / name_;
  kernel_ = dir_ / "vmlinuz";
  initrd_ = dir_ / "initrd.img";
  disk_ = dir_ / "disk.raw";
  console_ = dir_ / "console.log";

  try {
    prepare_files();
    // Registered before the domain exists, so that a signal between define and
    // the end of this constructor still removes it.
    register_guest(name_, dir_, env_.uri);
    dom_ = virDomainDefineXML(conn.get(), xml().c_str());
    if (!dom_) throw error("defining guest " + name_ + " failed: " + last_libvirt_error());
    if (opts_.start) start();
  } catch (...) {
    remove();  // the destructor does not run for a throwing constructor
    throw;
  }
}

void guest::prepare_files() {
  // QEMU runs as libvirt-qemu: the folder must be searchable by others. Each
  // guest gets its own copies, since libvirt relabels (chowns) what a domain
  // uses while it runs and restores it when it stops.
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  fs::copy_file(env_.kernel, kernel_);
  const fs::path script = source_root() / "tests" / "live" / "guest-image.sh";
  if (!run({"bash", script.string(), initrd_.string(), env_.modules.string()}, dir_ / "image.log"))
    throw error("building the initramfs of " + name_ + " failed: " + read_text(dir_ / "image.log"));
  int fd = ::open(disk_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(opts_.disk_size.count())) != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    throw error("cannot create disk " + disk_.string() + ": " + std::strerror(e));
  }
  ::close(fd);
}

guest::~guest() { remove(); }

void guest::remove() noexcept {
  quiet_sigpipe q;
  if (dom_) {
    virDomainPtr d = dom_;
    dom_ = nullptr;
    // The handle's connection may have died with libvirtd (a test that
    // restarts it and failed before rebind()): then a fresh connection.
    int st = 0, reason = 0;
    bool known = virDomainGetState(d, &st, &reason, 0) == 0;
    virConnectPtr fresh = nullptr;
    if (!known && virConnectIsAlive(virDomainGetConnect(d)) != 1) {
      virDomainFree(d);
      d = nullptr;
      fresh = virConnectOpen(env_.uri.c_str());
      if (fresh) d = virDomainLookupByName(fresh, name_.c_str());
      known = d && virDomainGetState(d, &st, &reason, 0) == 0;
    }
    if (d) {
      if (!known || st != VIR_DOMAIN_SHUTOFF) virDomainDestroy(d);
      virDomainUndefine(d);
      virDomainFree(d);
    }
    if (fresh) virConnectClose(fresh);
  }
  unregister_guest(name_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string guest::xml() const {
  const char* type = env_.accel == accelerator::kvm ? "kvm" : "qemu";
  std::string cmdline = "console=ttyS0 bulkhead.mode=" + std::string(to_string(opts_.mode));
  if (opts_.reboot_after) cmdline += " bulkhead.reboot_after=" + std::to_string(opts_.reboot_after->count());
  if (!opts_.extra_cmdline.empty()) cmdline += " " + opts_.extra_cmdline;
  std::ostringstream x;
  x << "<domain type='" << type << "'>\n"
    << "  <name>" << name_ << "</name>\n"
    << "  <memory unit='KiB'>" << opts_.memory.count() / 1024 << "</memory>\n"
    << "  <vcpu>1</vcpu>\n"
    << "  <os>\n"
    << "    <type arch='x86_64' machine='pc'>hvm</type>\n"
    << "    <kernel>" << xml_escape(kernel_.string()) << "</kernel>\n"
    << "    <initrd>" << xml_escape(initrd_.string()) << "</initrd>\n"
    << "    <cmdline>" << xml_escape(cmdline) << "</cmdline>\n"
    << "  </os>\n"
    << "  <on_poweroff>destroy</on_poweroff>\n"
    << "  <on_reboot>restart</on_reboot>\n"
    << "  <on_crash>destroy</on_crash>\n"
    << opts_.extra_domain_xml << "\n"
    << "  <devices>\n"
    << "    <disk type='file' device='disk'>\n"
    << "      <driver name='qemu' type='raw'/>\n"
    << "      <source file='" << xml_escape(disk_.string()) << "'/>\n"
    << "      <target dev='vda' bus='virtio'/>\n"
    << opts_.extra_disk_xml << "\n"
    << "    </disk>\n"
    << "    <serial type='file'>\n"
    << "      <source path='" << xml_escape(console_.string()) << "' append='on'/>\n"
    << "      <target port='0'/>\n"
    << "    </serial>\n"
    << "    <memballoon model='none'/>\n"
    << "  </devices>\n"
    << "</domain>\n";
  return x.str();
}

void guest::fail(std::string_view what) const {
  throw error("guest " + name_ + ": " + std::string(what) + ": " + last_libvirt_error());
}

void guest::start() {
  started_ = std::chrono::steady_clock::now();
  if (virDomainCreate(dom_) != 0) fail("virDomainCreate");
}
void guest::destroy() {
  if (virDomainDestroy(dom_) != 0) fail("virDomainDestroy");
}
void guest::suspend() {
  if (virDomainSuspend(dom_) != 0) fail("virDomainSuspend");
}
void guest::resume() {
  if (virDomainResume(dom_) != 0) fail("virDomainResume");
}

std::string guest::console() const { return read_text(console_); }

bool guest::console_contains(std::string_view text) const { return console().find(text) != std::string::npos; }

std::string guest::console_tail(std::size_t lines) const {
  std::string c = console();
  std::erase(c, '\r');
  std::size_t pos = c.size();
  for (std::size_t n = 0; pos > 0 && n <= lines; --pos)
    if (c[pos - 1] == '\n') ++n;
  return c.substr(pos);
}

std::chrono::milliseconds guest::wait_ready(int boot, std::chrono::seconds timeout) {
  const std::string marker = "BULKHEAD-READY boot=" + std::to_string(boot) + " ";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string c = console();
    if (c.find(marker) != std::string::npos)
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    if (auto e = c.find("BULKHEAD-ERROR"); e != std::string::npos)
      throw error("guest " + name_ + ": /init reported " + c.substr(e, c.find('\n', e) - e) + "\n--- console:\n" +
                  console_tail());
    const int st = state();
    if (st != VIR_DOMAIN_RUNNING && st != VIR_DOMAIN_PAUSED && st != VIR_DOMAIN_BLOCKED)
      throw error("guest " + name_ + " stopped (state " + std::to_string(st) + ") before " + marker +
                  "\n--- console:\n" + console_tail());
    if (std::chrono::steady_clock::now() > deadline)
      throw error("guest " + name_ + ": no '" + marker + "' on the console within " +
                  std::to_string(timeout.count()) + " s (accelerator " + std::string(to_string(env_.accel)) +
                  ")\n--- console:\n" + console_tail());
    std::this_thread::sleep_for(100ms);
  }
}

std::string guest::uuid() const {
  char buf[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom_, buf) != 0) fail("virDomainGetUUIDString");
  return buf;
}

unsigned int guest::id() const {
  const unsigned int id = virDomainGetID(dom_);
  if (id == static_cast<unsigned int>(-1)) fail("virDomainGetID (not running?)");
  return id;
}

int guest::state() const {
  int st = 0, reason = 0;
  if (virDomainGetState(dom_, &st, &reason, 0) != 0) fail("virDomainGetState");
  return st;
}

void guest::rebind(const connection& conn) {
  quiet_sigpipe q;
  virDomainPtr d = virDomainLookupByName(conn.get(), name_.c_str());
  if (!d) fail("virDomainLookupByName on the new connection");
  if (dom_) virDomainFree(dom_);
  dom_ = d;
}

pid_t guest::qemu_pid() const {
  // QEMU's command line carries "-name guest=<name>,debug-threads=on".
  const std::string needle = "guest=" + name_ + ",";
  for (const auto& d : fs::directory_iterator("/proc")) {
    const std::string pid = d.path().filename().string();
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    std::string cmd = read_text(d.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("qemu-system") != std::string::npos && cmd.find(needle) != std::string::npos)
      return static_cast<pid_t>(std::stol(pid));
  }
  throw error("guest " + name_ + ": no QEMU process found");
}

// --- raw readings -----------------------------------------------------------------

cpu_reading read_cpu(virDomainPtr dom) {
  const int n = virDomainGetCPUStats(dom, nullptr, 0, -1, 1, 0);
  if (n <= 0) throw error("virDomainGetCPUStats: " + last_libvirt_error());
  std::vector<virTypedParameter> params(static_cast<std::size_t>(n));
  const int got = virDomainGetCPUStats(dom, params.data(), static_cast<unsigned>(n), -1, 1, 0);
  cpu_reading r;
  r.at = mono_clock::now();
  if (got <= 0) throw error("virDomainGetCPUStats: " + last_libvirt_error());
  bool have_total = false;
  for (int i = 0; i < got; ++i) {
    const auto& p = params[static_cast<std::size_t>(i)];
    if (p.type == VIR_TYPED_PARAM_ULLONG && std::strcmp(p.field, VIR_DOMAIN_CPU_STATS_CPUTIME) == 0) {
      r.cpu_time = nanoseconds{static_cast<std::int64_t>(p.value.ul)};
      have_total = true;
    }
  }
  virTypedParamsClear(params.data(), got);
  if (!have_total) throw error("virDomainGetCPUStats returned no " VIR_DOMAIN_CPU_STATS_CPUTIME);

  // Per-vCPU times: virDomainGetVcpus (libvirt reads each vCPU thread's
  // utime + stime from /proc, so clock-tick resolution). The per-host-CPU
  // "vcpu_time" of virDomainGetCPUStats needs cgroup v1 cpuacct, which
  // libvirt does not use when it runs the domain's accounting on cgroup v2.
  virDomainInfo info{};
  if (virDomainGetInfo(dom, &info) != 0) throw error("virDomainGetInfo: " + last_libvirt_error());
  if (info.state == VIR_DOMAIN_RUNNING || info.state == VIR_DOMAIN_PAUSED || info.state == VIR_DOMAIN_BLOCKED) {
    std::vector<virVcpuInfo> vcpus(info.nrVirtCpu);
    const int nv = virDomainGetVcpus(dom, vcpus.data(), static_cast<int>(vcpus.size()), nullptr, 0);
    if (nv < 0) throw error("virDomainGetVcpus: " + last_libvirt_error());
    nanoseconds sum{};
    for (int i = 0; i < nv; ++i) sum += nanoseconds{static_cast<std::int64_t>(vcpus[static_cast<std::size_t>(i)].cpuTime)};
    r.vcpu_time = sum;
  }
  return r;
}

vcpu_stats read_vcpu_stats(virDomainPtr dom) {
  virDomainPtr doms[] = {dom, nullptr};
  virDomainStatsRecordPtr* recs = nullptr;
  const int n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_VCPU, &recs, 0);
  vcpu_stats r;
  r.at = mono_clock::now();
  if (n < 0) throw error("virDomainListGetStats(vcpu): " + last_libvirt_error());
  if (n != 1) {
    virDomainStatsRecordListFree(recs);
    throw error("virDomainListGetStats(vcpu) returned " + std::to_string(n) + " records for one domain");
  }
  const auto* rec = recs[0];
  unsigned current = 0;
  if (virTypedParamsGetUInt(rec->params, rec->nparams, "vcpu.current", &current) != 1) {
    virDomainStatsRecordListFree(recs);
    throw error("no vcpu.current in the vcpu stats (is the domain running?)");
  }
  nanoseconds delay{};
  bool have_delay = true;
  for (unsigned i = 0; i < current; ++i) {
    char key[64];
    unsigned long long v = 0;
    std::snprintf(key, sizeof key, "vcpu.%u.time", i);
    if (virTypedParamsGetULLong(rec->params, rec->nparams, key, &v) == 1) r.time += nanoseconds{static_cast<std::int64_t>(v)};
    std::snprintf(key, sizeof key, "vcpu.%u.delay", i);
    if (virTypedParamsGetULLong(rec->params, rec->nparams, key, &v) == 1) delay += nanoseconds{static_cast<std::int64_t>(v)};
    else have_delay = false;
  }
  if (have_delay) r.delay = delay;
  virDomainStatsRecordListFree(recs);
  return r;
}

virDomainBlockStatsStruct read_block(virDomainPtr dom, const char* target) {
  virDomainBlockStatsStruct s{};
  if (virDomainBlockStats(dom, target, &s, sizeof s) != 0)
    throw error(std::string("virDomainBlockStats(") + target + "): " + last_libvirt_error());
  return s;
}

millicores share_of_core(nanoseconds used, nanoseconds wall) {
  if (wall.count() <= 0 || used.count() < 0) throw error("share_of_core: wall must be positive, used not negative");
  auto m = detail::muldiv_floor(static_cast<std::uint64_t>(used.count()), millicores_per_core,
                                static_cast<std::uint64_t>(wall.count()));
  if (!m) throw error("share_of_core: overflow");
  return millicores{*m};
}

sched_reading read_vcpu_sched(pid_t qemu_pid) {
  sched_reading r;
  bool found = false;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(qemu_pid) + "/task")) {
    if (first_line(read_text(t.path() / "comm")).rfind("CPU ", 0) != 0) continue;
    std::istringstream in(read_text(t.path() / "schedstat"));
    std::int64_t run = 0, wait = 0;
    if (!(in >> run >> wait)) throw error("unreadable " + (t.path() / "schedstat").string());
    r.on_cpu += nanoseconds{run};
    r.waiting += nanoseconds{wait};
    found = true;
  }
  r.at = mono_clock::now();
  if (!found) throw error("no vCPU threads (comm 'CPU <n>/...') in QEMU process " + std::to_string(qemu_pid));
  return r;
}

bytes process_rss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream f(line.substr(6));
      std::uint64_t kib = 0;
      f >> kib;
      return bytes{kib * 1024};
    }
  }
  throw error("no VmRSS for pid " + std::to_string(pid));
}

std::optional<fs::path> domain_cgroup(pid_t qemu_pid, std::string_view v1_controller) {
  // The group: /proc/<pid>/cgroup, "N:controllers:/path" (v1) or "0::/path" (v2).
  // A hierarchy whose group is the root does not hold the domain: libvirt may
  // account on cgroup v2 (cpu.stat needs no controller there) and leave v1
  // cpuacct alone, as on this project's test host.
  const bool want_v2 = v1_controller.empty();
  const std::string want = "," + std::string(v1_controller) + ",";
  std::string path;
  {
    std::ifstream in("/proc/" + std::to_string(qemu_pid) + "/cgroup");
    for (std::string line; std::getline(in, line);) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      const std::string ctrls = "," + line.substr(a + 1, b - a - 1) + ",";
      const std::string p = line.substr(b + 1);
      if (p == "/") continue;
      if (want_v2 ? (ctrls == ",," && line.substr(0, a) == "0") : ctrls.find(want) != std::string::npos) path = p;
    }
  }
  if (path.empty()) return std::nullopt;
  // libvirt puts the threads in emulator/ and vcpuN/ below the domain's group.
  const auto slash = path.rfind('/');
  const std::string last = slash == std::string::npos ? path : path.substr(slash + 1);
  if (last == "emulator" || last.rfind("vcpu", 0) == 0) path = path.substr(0, slash);
  // The mount: /proc/self/mountinfo "... root mountpoint ... - fstype source options".
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, devno, root, mnt;
    f >> id >> parent >> devno >> root >> mnt;
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream g(line.substr(dash + 3));
    std::string fstype, source, options;
    g >> fstype >> source >> options;
    const bool match = want_v2 ? fstype == "cgroup2"
                               : fstype == "cgroup" && ("," + options + ",").find(want) != std::string::npos;
    if (!match) continue;
    std::string rel = path;
    if (root != "/" && rel.rfind(root, 0) == 0) rel = rel.substr(root.size());
    return fs::path(mnt + rel);
  }
  return std::nullopt;
}

std::optional<nanoseconds> vcpu_throttled(pid_t qemu_pid, unsigned vcpu) {
  const std::string sub = "vcpu" + std::to_string(vcpu);
  if (auto d = domain_cgroup(qemu_pid, "cpu")) {
    std::ifstream in(*d / sub / "cpu.stat");
    for (std::string key; in >> key;) {
      std::uint64_t v = 0;
      in >> v;
      if (key == "throttled_time") return nanoseconds{static_cast<std::int64_t>(v)};
    }
  }
  if (auto d = domain_cgroup(qemu_pid, "")) {
    std::ifstream in(*d / sub / "cpu.stat");
    for (std::string key; in >> key;) {
      std::uint64_t v = 0;
      in >> v;
      if (key == "throttled_usec") return nanoseconds{static_cast<std::int64_t>(v) * 1000};
    }
  }
  return std::nullopt;
}

std::optional<nanoseconds> cgroup_cpu_usage(pid_t qemu_pid) {
  if (auto d = domain_cgroup(qemu_pid, "cpuacct")) {
    std::ifstream in(*d / "cpuacct.usage");
    std::uint64_t ns = 0;
    if (in >> ns) return nanoseconds{static_cast<std::int64_t>(ns)};
  }
  if (auto d = domain_cgroup(qemu_pid, "")) {
    std::ifstream in(*d / "cpu.stat");
    for (std::string key; in >> key;) {
      std::uint64_t v = 0;
      in >> v;
      if (key == "usage_usec") return nanoseconds{static_cast<std::int64_t>(v) * 1000};
    }
  }
  return std::nullopt;
}

}  // namespace bulkhead::test::live
