// Real parts for the agent's tests:
//  - cgroup_copy: a writable copy of a cgroup fixture tree whose counters the
//    test sets (each write replaces the file whole, so a reader never sees
//    half a value; the backend's file cache notices the replacement);
//  - private_libvirtd: a libvirtd of the test's own, run as nobody in session
//    mode in a temporary directory, serving libvirt's test driver over a real
//    RPC socket, which the test can kill and start again (a lost connection
//    without touching the host's libvirtd);
//  - tmpfs_mount: a small tmpfs the test mounts (a full or read-only disk).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace bulkhead::test {

class cgroup_copy {
 public:
  explicit cgroup_copy(std::string_view fixture_name = "cgroup-v1") : dir_("bulkhead-cgcopy") {
    std::filesystem::copy(fixture(fixture_name), dir_.path(),
                          std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
    // The host's boot id, as a root that stands for a host has it.
    const auto boot = dir_.path() / "proc/sys/kernel/random/boot_id";
    if (!std::filesystem::exists(boot)) {
      std::filesystem::create_directories(boot.parent_path());
      std::ofstream(boot) << "0b5e1c5e-7e57-4b00-8000-000000000001\n";
    }
  }
  [[nodiscard]] std::string root() const { return dir_.str(); }
  [[nodiscard]] std::string mount_table() const { return dir_.str() + "/mountinfo"; }
  // A file of a v1 group: hierarchy "cpu,cpuacct", group "web", file "cpuacct.usage".
  [[nodiscard]] std::filesystem::path file(std::string_view hierarchy, std::string_view group, std::string_view name) const {
    return dir_.path() / "sys/fs/cgroup" / hierarchy / "bulkhead" / group / name;
  }
  void write(const std::filesystem::path& p, const std::string& text) const {
    const auto tmp = p.string() + ".new";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      if (!out) std::abort();
    }
    std::filesystem::rename(tmp, p);
  }
  // cpuacct.usage (ns) of a v1 group.
  void set_cpu(std::string_view group, std::uint64_t ns) const {
    write(file("cpu,cpuacct", group, "cpuacct.usage"), std::to_string(ns) + "\n");
  }
  // blkio.throttle.io_service_bytes of a v1 group, device 8:16.
  void set_disk(std::string_view group, std::uint64_t read, std::uint64_t written) const {
    write(file("blkio", group, "blkio.throttle.io_service_bytes"),
          "8:16 Read " + std::to_string(read) + "\n8:16 Write " + std::to_string(written) + "\n8:16 Sync 0\n8:16 Async 0\n"
          "8:16 Discard 0\n8:16 Total " + std::to_string(read + written) + "\nTotal " + std::to_string(read + written) + "\n");
  }

 private:
  temp_dir dir_;
};

// A tmpfs of `size` (mount(8)'s size=, e.g. "512k") at a fresh directory.
class tmpfs_mount {
 public:
  explicit tmpfs_mount(const std::string& size) : dir_("bulkhead-tmpfs") {
    if (!is_root()) skip("mounting a tmpfs needs root");
    const std::string opts = "size=" + size + ",mode=0750";
    if (::mount("tmpfs", dir_.str().c_str(), "tmpfs", 0, opts.c_str()) != 0) skip("cannot mount a tmpfs here");
    mounted_ = true;
  }
  ~tmpfs_mount() {
    if (mounted_) ::umount2(dir_.str().c_str(), MNT_DETACH);
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;
  [[nodiscard]] std::string str() const { return dir_.str(); }
  [[nodiscard]] const std::filesystem::path& path() const { return dir_.path(); }
  void remount_read_only() const {
    if (::mount(nullptr, dir_.str().c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) std::abort();
  }
  // Fills it: a file that takes every free block.
  void fill(const std::string& name = "filler") const {
    std::ofstream out(dir_.path() / name, std::ios::binary);
    std::string block(4096, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) out.flush();
  }
  void unfill(const std::string& name = "filler") const { std::filesystem::remove(dir_.path() / name); }

 private:
  temp_dir dir_;
  bool mounted_ = false;
};

class private_libvirtd {
 public:
  private_libvirtd() : dir_("bulkhead-libvirtd") {
    if (!is_root()) skip("a private libvirtd runs as nobody: the test needs root to start it");
    if (::access("/usr/sbin/libvirtd", X_OK) != 0) skip("libvirtd is missing (apt-get install libvirt-daemon)");
    if (::access("/usr/bin/setpriv", X_OK) != 0) skip("setpriv is missing (util-linux)");
    for (const char* d : {"run", "config", "cache"}) std::filesystem::create_directories(dir_.path() / d);
    ::chmod(dir_.str().c_str(), 0755);
    std::filesystem::path p = dir_.path();
    for (auto& e : std::filesystem::recursive_directory_iterator(p)) (void)::chown(e.path().c_str(), 65534, 65534);
    (void)::chown(p.c_str(), 65534, 65534);
    start();
  }
  ~private_libvirtd() { stop(); }
  private_libvirtd(const private_libvirtd&) = delete;
  private_libvirtd& operator=(const private_libvirtd&) = delete;

  [[nodiscard]] std::string socket() const { return dir_.str() + "/run/libvirt/libvirt-sock"; }
  [[nodiscard]] std::string uri() const { return "test+unix:///default?socket=" + socket(); }

  void start() {
    std::filesystem::remove(socket());
    std::fflush(nullptr);  // the child must not write this process's buffered output again
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = dir_.str() + "/libvirtd.log";
      if (FILE* f = std::freopen(log.c_str(), "a", stderr)) (void)f;
      if (FILE* f = std::freopen("/dev/null", "w", stdout)) (void)f;
      const std::string home = "HOME=" + dir_.str(), run = "XDG_RUNTIME_DIR=" + dir_.str() + "/run",
                        cfg = "XDG_CONFIG_HOME=" + dir_.str() + "/config", cache = "XDG_CACHE_HOME=" + dir_.str() + "/cache";
      ::execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "-i",
              "PATH=/usr/sbin:/usr/bin:/sbin:/bin", home.c_str(), run.c_str(), cfg.c_str(), cache.c_str(),
              "/usr/sbin/libvirtd", "--timeout=0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Answering once its socket exists (a loaded machine may take seconds).
    for (int i = 0; i < 600; ++i) {
      if (std::filesystem::exists(socket())) return;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        skip("the private libvirtd exited at once (see its log in " + dir_.str() + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    skip("the private libvirtd made no socket within 30 s");
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove(socket(), ec);
  }

 private:
  temp_dir dir_;
  pid_t pid_ = -1;
};

// bulkhead-agent as a process: its stderr in a log file, signals, its exit.
class agent_process {
 public:
  static std::string program() {
    const char* p = std::getenv("BULKHEAD_AGENT");
    if (!p || !*p) skip("BULKHEAD_AGENT is not set (run through meson test)");
    return p;
  }
  explicit agent_process(std::vector<std::string> args) : log_("bulkhead-agent-log") {
    args.insert(args.begin(), program());
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 2);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      std::vector<char*> a;
      for (auto& x : args) a.push_back(x.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
  }
  ~agent_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  agent_process(const agent_process&) = delete;
  agent_process& operator=(const agent_process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string log_path() const { return log_.str() + "/stderr.log"; }
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_path());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // The exit code (-signal when killed), or nullopt while it still runs.
  std::optional<int> poll() {
    if (exited_) return code_;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
    exited_ = true;
    code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return code_;
  }
  // Waits for it to exit (a generous bound: a loaded machine is slow).
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (auto c = poll()) return c;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return poll();
  }
  [[nodiscard]] bool running() { return !poll().has_value(); }

 private:
  temp_dir log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

inline int connect_loopback(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// Reads until the peer closes or `timeout` passes without a byte.
inline std::string read_all(int s, std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) break;
    const ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

struct http_reply {
  int status = 0;  // 0: no answer
  std::string head, body;
  [[nodiscard]] std::string header(std::string_view name) const {
    std::string lower_head = head;
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string n(name);
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto p = lower_head.find("\r\n" + n + ":");
    if (p == std::string::npos) return "";
    auto v = head.substr(p + 3 + n.size());
    v = v.substr(0, v.find("\r\n"));
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  }
};

// Sends `request` as given on a new connection and reads the answer.
inline http_reply http_raw(int port, const std::string& request) {
  http_reply r;
  const int s = connect_loopback(port);
  if (s < 0) return r;
  (void)::send(s, request.data(), request.size(), MSG_NOSIGNAL);
  const auto text = read_all(s);
  ::close(s);
  const auto end = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(text.c_str() + 9);
  r.head = text.substr(0, end + 2);
  r.body = text.substr(end + 4);
  return r;
}

inline http_reply http_get_metrics(int port, const std::string& accept = "") {
  std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!accept.empty()) req += "Accept: " + accept + "\r\n";
  return http_raw(port, req + "\r\n");
}

// The value of the sample whose line starts with `prefix` ("" when none).
inline std::string sample_value(const std::string& text, const std::string& prefix) {
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const auto sp = text.find(' ', pos + prefix.size());
      const auto nl = text.find('\n', pos);
      if (sp != std::string::npos && sp < nl) return text.substr(sp + 1, nl - sp - 1);
    }
    pos += prefix.size();
  }
  return "";
}

}  // namespace bulkhead::test
