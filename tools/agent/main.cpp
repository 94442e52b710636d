// bulkhead-agent: meters a host into the accounting journal and serves its
// metrics (docs/agent.md, man bulkhead-agent). It composes the library's
// agent (bulkhead/agent/agent.hpp), an HTTP endpoint (http_server.hpp) and
// the node_exporter textfile (textfile.hpp); it prints and logs, the library
// does not.
//
// Exit status: 0 stopped by SIGTERM or SIGINT after a flush and a checkpoint
// (or --help, --version); 1 it could not start (the journal directory, its
// lock held by another writer, the listen address, the textfile directory, a
// source it cannot use) or the final flush or checkpoint failed; 2 bad usage.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/agent/metrics.hpp"
#include "bulkhead/agent/sources.hpp"
#include "cli.hpp"
#include "http_server.hpp"
#include "libvirt_loader.hpp"
#include "textfile.hpp"

#ifndef BULKHEAD_VERSION
#define BULKHEAD_VERSION "unknown"
#endif

namespace po = boost::program_options;
using namespace bulkhead;
using namespace bulkhead::agent_tool;

namespace {

constexpr const char* default_listen = "127.0.0.1:9479";

// Log lines go to stderr; under systemd (JOURNAL_STREAM set) each carries
// its syslog priority as sd-daemon(3) describes ("<3>" error, "<4>" warning,
// "<6>" info).
enum class level { error = 3, warning = 4, notice = 5, info = 6 };

void log(level l, const std::string& msg) {
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  static std::mutex mu;
  std::lock_guard lk(mu);
  if (journal) std::fprintf(stderr, "<%d>%s\n", static_cast<int>(l), msg.c_str());
  else std::fprintf(stderr, "bulkhead-agent: %s\n", msg.c_str());
  std::fflush(stderr);
}

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::size_t n = std::strlen(path);
  if (n >= sizeof a.sun_path) return;
  std::memcpy(a.sun_path, path, n);
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0';  // an abstract socket
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
  ::close(fd);
}

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "bulkhead-agent: %s\nTry 'bulkhead-agent --help'.\n", why.c_str());
  std::exit(2);
}

[[noreturn]] void start_error(const std::string& why) {
  log(level::error, why);
  std::exit(1);
}

std::string read_boot_id(const std::string& fs_root) {
  std::ifstream in((fs_root == "/" ? std::string() : fs_root) + "/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// One rendering per snapshot and format, shared by every scrape of that
// snapshot and by the textfile.
class render_cache {
 public:
  explicit render_cache(const agent::agent& a) : a_(a) {}
  std::shared_ptr<const std::string> get(metrics::format f) {
    auto s = a_.current();
    std::lock_guard lk(mu_);
    if (s != snap_) {
      snap_ = s;
      text_[0].reset();
      text_[1].reset();
    }
    auto& t = text_[f == metrics::format::openmetrics ? 0 : 1];
    if (!t) t = std::make_shared<const std::string>(agent::render_metrics(*s, f));
    return t;
  }

 private:
  const agent::agent& a_;
  std::mutex mu_;
  std::shared_ptr<const agent::snapshot> snap_;
  std::shared_ptr<const std::string> text_[2];
};

// Writes the textfile after every round, on a thread of its own so a slow
// disk never delays a round.
class textfile_writer {
 public:
  textfile_writer(std::string path, render_cache& cache) : path_(std::move(path)), cache_(cache) {
    thread_ = std::thread([this] { loop(); });
  }
  ~textfile_writer() { finish(); }
  void poke() {
    {
      std::lock_guard lk(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  // Writes once more (the final snapshot) and stops.
  void finish() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      pending_ = true;
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void loop() {
    for (;;) {
      bool last;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return pending_ || stop_; });
        pending_ = false;
        last = stop_;
      }
      write();
      if (last) return;
    }
  }
  void write() {
    auto text = cache_.get(metrics::format::prometheus);
    auto w = write_textfile(path_, *text);
    if (!w && !failing_) log(level::error, w.error().describe() + " (retried after every round)");
    if (w && failing_) log(level::notice, "textfile " + path_ + " written again");
    failing_ = !w;
  }

  std::string path_;
  render_cache& cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false, failing_ = false;
  std::thread thread_;
};

// Logs what changed in a round: sources connected or lost, the journal
// failing or coming back, ingest and checkpoint errors. Rounds in which
// nothing changed log nothing.
class round_logger {
 public:
  void operator()(const agent::round_report& r) {
    for (const auto& name : r.connected)
      log(level::info, "source " + (name.empty() ? std::string("(libvirt default)") : name) + " connected" +
                           (r.round > 1 ? " again" : ""));
    for (const auto& [name, why] : r.lost) log(level::warning, "source lost: " + why.describe() + " (retrying)");
    for (const auto& [name, why] : r.ingest_errors) log(level::error, "accounting a reading failed: " + why.describe());
    if (r.journal_error) {
      ++journal_failed_rounds_;
      if (journal_failed_rounds_ == 1)
        log(level::error, "journal failed: " + r.journal_error->describe() +
                              (r.journal_reopened ? " (reopened; what was not durable was not acknowledged)"
                                                  : " (reopening at every round)"));
    } else if (journal_failed_rounds_ > 0) {
      log(level::notice, "journal durable again after " + std::to_string(journal_failed_rounds_) + " failed round(s)");
      journal_failed_rounds_ = 0;
    }
    if (r.checkpoint_error) log(level::error, "checkpoint failed: " + r.checkpoint_error->describe());
  }

 private:
  std::uint64_t journal_failed_rounds_ = 0;
};

std::string status_line(const agent::snapshot& s) {
  std::size_t up = 0;
  for (const auto& src : s.sources) up += src.up ? 1 : 0;
  std::string out = "status: round " + std::to_string(s.round) + ", sources up " + std::to_string(up) + " of " +
                    std::to_string(s.sources.size()) + ", journal " + (s.journal_up ? "up" : "DOWN") +
                    ", durable sequence " + std::to_string(s.durable_seq) + ", missed rounds " +
                    std::to_string(s.stats.missed);
  for (const auto& src : s.sources)
    if (!src.up && src.last_error) out += "; " + src.last_error->describe();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string journal_dir, listen = default_listen, textfile, interval_text = "1s", cp_interval_text = "10m";
  std::string fs_root = "/", mount_table;
  std::vector<std::string> uris, cgroups, cards, bindings;
  std::uint64_t cp_records = 1'000'000;
  po::options_description desc(
      "Usage: bulkhead-agent --journal DIR [SOURCE]... [OPTION]...\n"
      "Meters the host's instances into the accounting journal at DIR and serves\n"
      "their metrics on /metrics (docs/agent.md). Sources are read through\n"
      "read-only connections; nothing is ever written to them.\n\n"
      "Options");
  desc.add_options()
      ("journal", po::value(&journal_dir)->value_name("DIR"), "the journal directory (must exist; not writable by others)")
      ("uri", po::value(&uris)->value_name("URI"), "a libvirt URI to read (read-only); repeatable")
      ("cgroup-parent", po::value(&cgroups)->value_name("PATH"),
       "a cgroup whose child groups are tasks to meter, relative to each hierarchy's mount point; repeatable")
      ("card", po::value(&cards)->value_name("FILE"), "an emulated offload card description (docs/offload-card.md); repeatable")
      ("card-bindings", po::value(&bindings)->value_name("FILE"),
       "offload hardware in sysfs, with the instances of this bindings file (docs/offload.md); repeatable")
      ("interval", po::value(&interval_text)->value_name("DURATION"), "time between rounds (default 1s; 100ms to 1h)")
      ("listen", po::value(&listen)->value_name("ADDR:PORT"),
       "serve /metrics here (default 127.0.0.1:9479; [::1]:PORT for IPv6; none: do not serve)")
      ("textfile", po::value(&textfile)->value_name("PATH"),
       "write the metrics to PATH after every round, atomically, for node_exporter's textfile collector")
      ("checkpoint-records", po::value(&cp_records)->value_name("N"),
       "checkpoint after N journal records (default 1000000; 0: never by count)")
      ("checkpoint-interval", po::value(&cp_interval_text)->value_name("DURATION"),
       "checkpoint at least this often (default 10m; 0s: never by time)")
      ("fs-root", po::value(&fs_root)->value_name("DIR"),
       "where the host's /sys and /proc are (default /; a container that mounts the host's elsewhere)")
      ("mount-table", po::value(&mount_table)->value_name("FILE"),
       "the mount table that says where cgroups are mounted (default: /proc/self/mountinfo beneath --fs-root)")
      ("version", "print the version and exit")
      ("help", "print this help and exit");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\nExit status: 0 stopped by SIGTERM or SIGINT after a flush and a checkpoint; 1 could not\n"
                         "start, or the final flush or checkpoint failed; 2 bad usage. SIGHUP logs the status and\n"
                         "retries every lost source at the next round (options are not re-read).\n"
                         "See man bulkhead-agent.\n";
    return 0;
  }
  if (vm.count("version")) {
    std::printf("bulkhead-agent %s\n", BULKHEAD_VERSION);
    return 0;
  }
  if (journal_dir.empty()) usage_error("--journal DIR is required");
  if (uris.empty() && cgroups.empty() && cards.empty() && bindings.empty())
    usage_error("name at least one source: --uri, --cgroup-parent, --card or --card-bindings");
  auto interval = parse_duration(interval_text, "--interval");
  if (!interval) usage_error(interval.error().describe());
  if (*interval < milliseconds{100} || *interval > std::chrono::hours{1})
    usage_error("--interval " + interval_text + ": outside 100ms..1h");
  auto cp_interval = parse_duration(cp_interval_text, "--checkpoint-interval");
  if (!cp_interval) usage_error(cp_interval.error().describe());
  auto where = parse_listen(listen);
  if (!where) usage_error(where.error().describe());
  if (fs_root.empty() || fs_root.front() != '/') usage_error("--fs-root " + fs_root + ": must be an absolute path");
  if (mount_table.empty()) mount_table = (fs_root == "/" ? std::string() : fs_root) + "/proc/self/mountinfo";
  if (!textfile.empty() && !textfile.ends_with(".prom"))
    usage_error("--textfile " + textfile + ": node_exporter's textfile collector reads only files ending in .prom");

  // Before any thread starts: the signals are taken by sigwait below, and
  // SIGPIPE (a peer that closed) never kills the process.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::umask(027);

  if (!textfile.empty()) {
    const auto dir = parent_dir(textfile);
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      start_error("--textfile " + textfile + ": its directory " + dir + " is not writable: " + std::strerror(errno));
    remove_stale_temporaries(textfile);
  }

  agent::options o;
  o.journal_dir = journal_dir;
  o.interval = *interval;
  o.checkpoint = {cp_records, std::chrono::duration_cast<seconds>(*cp_interval)};
  // A series' source must be unique per boot (docs/accounting.md, "Identity").
  const auto boot = read_boot_id(fs_root);
  if (boot.empty()) start_error("cannot read the boot id (" + fs_root + "/proc/sys/kernel/random/boot_id)");
  o.accounting.source_suffix = "@" + boot;
  if (!uris.empty()) {
    // libvirt is loaded only for libvirt sources (libvirt_loader.hpp).
    auto make = load_libvirt_module();
    if (!make) start_error(make.error().describe());
    for (const auto& u : uris) {
      agent::source_spec spec;
      (*make)(u.c_str(), &spec);
      o.sources.push_back(std::move(spec));
    }
  }
  for (const auto& c : cgroups) o.sources.push_back(agent::cgroup_host_source(c, fs_root, mount_table));
  for (const auto& c : cards) o.sources.push_back(agent::card_source(c));
  for (const auto& b : bindings)
    o.sources.push_back(agent::card_sysfs_source((fs_root == "/" ? std::string() : fs_root) + "/sys", b));
  round_logger logger;
  textfile_writer* tw = nullptr;
  o.on_round = [&](const agent::round_report& r) {
    logger(r);
    if (tw) tw->poke();
  };

  auto a = agent::agent::open(std::move(o));
  if (!a) start_error(a.error().describe());
  render_cache cache(**a);
  std::unique_ptr<http_server> http;
  if (*where) {
    auto h = http_server::start(**where, http_limits{}, [&](metrics::format f) { return cache.get(f); });
    if (!h) start_error(h.error().describe());
    http = std::move(*h);
  }
  std::optional<textfile_writer> textfile_thread;
  if (!textfile.empty()) {
    textfile_thread.emplace(textfile, cache);
    tw = &*textfile_thread;
  }
  if (auto r = (*a)->run(); !r) start_error(r.error().describe());
  {
    std::string msg = "started: journal " + journal_dir + ", " + std::to_string(uris.size() + cgroups.size() + cards.size() +
                                                                                bindings.size()) +
                      " source(s), a round every " + interval_text;
    if (http) msg += ", /metrics on " + listen;
    if (!textfile.empty()) msg += ", textfile " + textfile;
    log(level::info, msg);
  }
  notify("READY=1");

  int sig = 0;
  for (;;) {
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGPIPE) continue;
    if (sig == SIGHUP) {
      (*a)->reconnect_now();
      log(level::info, "SIGHUP: " + status_line(*(*a)->current()) +
                           "; every lost source is retried at the next round (options are not re-read: restart to change them)");
      continue;
    }
    break;
  }
  notify("STOPPING=1");
  log(level::info, std::string("stopping (") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + "): flush and checkpoint");
  auto stopped = (*a)->stop();
  if (textfile_thread) textfile_thread->finish();
  tw = nullptr;
  if (http) http->stop();
  const auto last = (*a)->current();
  if (!stopped) {
    log(level::error, "stopped, but " + stopped.error().describe());
    return 1;
  }
  log(level::info, "stopped after " + std::to_string(last->stats.rounds) + " rounds; journal durable to sequence " +
                       std::to_string(last->durable_seq));
  return 0;
}
