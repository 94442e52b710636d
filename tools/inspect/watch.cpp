#include "watch.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>

#include "bulkhead/accounting/counters.hpp"
#include "bulkhead/accounting/meter.hpp"
#include "format.hpp"

namespace bulkhead::inspect {

namespace {

// --- terminal state, restored on every way out ---------------------------
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_resized = 0;
volatile sig_atomic_t g_raw = 0;
termios g_saved{};
constexpr char enter_screen[] = "\x1b[?1049h\x1b[?25l";
constexpr char leave_screen[] = "\x1b[?25h\x1b[?1049l";

void restore_terminal() noexcept {
  if (!g_raw) return;
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved);
  (void)::write(STDOUT_FILENO, leave_screen, sizeof leave_screen - 1);
  g_raw = 0;
}

bool enter_raw() {
  if (::tcgetattr(STDIN_FILENO, &g_saved) != 0) return false;
  termios raw = g_saved;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // keys one at a time, not echoed; ISIG kept for Ctrl-C
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) return false;
  (void)::write(STDOUT_FILENO, enter_screen, sizeof enter_screen - 1);
  g_raw = 1;
  return true;
}

extern "C" void on_stop_signal(int) { g_stop = 1; }
extern "C" void on_winch(int) { g_resized = 1; }
extern "C" void on_tstp(int) {
  // Ctrl-Z: give the terminal back before stopping; re-entered on SIGCONT.
  const bool was_raw = g_raw;
  restore_terminal();
  ::signal(SIGTSTP, SIG_DFL);
  ::raise(SIGTSTP);
  // Resumed.
  ::signal(SIGTSTP, on_tstp);
  if (was_raw) g_resized = 2;  // ask the loop to re-enter raw mode
}

// --- rates from the meter -------------------------------------------------
enum class sort_by { cpu, memory, disk, network, name };

struct row {
  std::string name;
  uuid id;
  std::string state;
  bool has_rates = false;
  std::uint64_t cpu_permille_core = 0;  // CPU use in thousandths of one core
  std::optional<std::uint64_t> cap_millicores;
  std::optional<std::uint64_t> mem_current, mem_limit;
  std::uint64_t disk_r = 0, disk_w = 0, net_rx = 0, net_tx = 0;  // bytes per second
  std::optional<std::uint64_t> throttled_permille;  // thousandths of the interval spent throttled
  bool reset = false;
};

struct category_sum {
  u128 amount = 0;
  std::int64_t interval_ns = 0;
  bool any = false;
  bool reset = false;
};

std::uint64_t per_second(const category_sum& c) {
  if (!c.any || c.interval_ns <= 0) return 0;
  const u128 r = c.amount * nanos_per_second / static_cast<u128>(c.interval_ns);
  return r > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(r);
}

class rate_book {
 public:
  // Meters one reading; returns the row with rates when a previous sample of
  // the same incarnation exists.
  row update(const std::string& source, const instance_reading& r) {
    row out;
    out.name = r.info.name;
    out.id = r.info.id.uuid;
    out.state = std::string(to_string(r.info.state));
    if (auto cap = vm_cpu_cap(r.enforced.cpu); cap && cap->is_bounded()) out.cap_millicores = cap->value().count();
    if (r.usage.memory_current) out.mem_current = r.usage.memory_current->count();
    if (r.enforced.memory.hard_limit && r.enforced.memory.hard_limit->is_bounded())
      out.mem_limit = r.enforced.memory.hard_limit->value().count();
    else if (r.enforced.memory.max)
      out.mem_limit = r.enforced.memory.max->count();
    if (!r.info.id.incarnation) return out;
    accounting::flatten(r.usage, scratch_);
    std::map<std::string, category_sum> cats;
    for (const auto& c : scratch_) {
      const char* cat = category(c.name);
      if (!cat) continue;
      accounting::series_key k{source, r.info.id.uuid, *r.info.id.incarnation, c.name, 64, accounting::series_kind::usage};
      auto h = meter_.series(k);
      if (!h) continue;
      auto res = meter_.observe(*h, r.usage.read_at, r.usage.wall, c.value);
      if (!res.accounted()) continue;
      auto& s = cats[cat];
      s.any = true;
      s.amount += res.d.amount;
      s.interval_ns = std::max<std::int64_t>(s.interval_ns, (res.d.end - res.d.start).count());
      s.reset = s.reset || (res.d.flags & (accounting::delta_flag::reset | accounting::delta_flag::wrap));
    }
    if (cats.empty()) return out;
    out.has_rates = true;
    for (const auto& [n, s] : cats) out.reset = out.reset || s.reset;
    out.cpu_permille_core = per_second(cats["cpu"]) / 1'000'000;  // ns/s -> thousandths of a core
    out.disk_r = per_second(cats["disk_r"]);
    out.disk_w = per_second(cats["disk_w"]);
    out.net_rx = per_second(cats["net_rx"]);
    out.net_tx = per_second(cats["net_tx"]);
    if (cats.count("throttled_ns")) out.throttled_permille = per_second(cats["throttled_ns"]) / 1'000'000;
    return out;
  }

 private:
  static const char* category(const std::string& n) {
    if (n == "cpu_time_ns") return "cpu";
    if (n == "cpu_throttled_ns") return "throttled_ns";
    const auto ends = [&](std::string_view s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    if (n.rfind("disk/", 0) == 0) {
      if (ends("/read_bytes")) return "disk_r";
      if (ends("/write_bytes")) return "disk_w";
    }
    if (n.rfind("net/", 0) == 0) {
      if (ends("/rx_bytes")) return "net_rx";
      if (ends("/tx_bytes")) return "net_tx";
    }
    return nullptr;
  }
  accounting::meter meter_;
  std::vector<accounting::counter_value> scratch_;
};

// --- drawing -------------------------------------------------------------
std::string pct(std::uint64_t permille) {
  char b[48];
  std::snprintf(b, sizeof b, "%llu.%llu", static_cast<unsigned long long>(permille / 10),
                static_cast<unsigned long long>(permille % 10));
  return b;
}

std::string rate(std::uint64_t bps) { return human_bytes(bps); }

std::string sort_name(sort_by s) {
  switch (s) {
    case sort_by::cpu: return "cpu";
    case sort_by::memory: return "memory";
    case sort_by::disk: return "disk";
    case sort_by::network: return "network";
    case sort_by::name: return "name";
  }
  return "?";
}

void sort_rows(std::vector<row>& rows, sort_by s) {
  std::stable_sort(rows.begin(), rows.end(), [s](const row& a, const row& b) {
    switch (s) {
      case sort_by::cpu: return a.cpu_permille_core > b.cpu_permille_core;
      case sort_by::memory: return a.mem_current.value_or(0) > b.mem_current.value_or(0);
      case sort_by::disk: return a.disk_r + a.disk_w > b.disk_r + b.disk_w;
      case sort_by::network: return a.net_rx + a.net_tx > b.net_rx + b.net_tx;
      case sort_by::name: return a.name < b.name;
    }
    return false;
  });
}

// The rows as lines of at most 79 columns.
std::vector<std::string> render_rows(const std::vector<row>& rows, bool color, std::size_t max_rows) {
  std::vector<std::string> lines;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s %s %s %s %s %s", fit("NAME", 16).c_str(), fit("%CPU", 6, true).c_str(),
                fit("%CAP", 6, true).c_str(), fit("MEM USED/LIM", 13, true).c_str(), fit("DISK R/W", 11, true).c_str(),
                fit("NET RX/TX", 11, true).c_str(), fit("THROT", 6, true).c_str());
  lines.push_back(color ? std::string("\x1b[7m") + buf + "\x1b[0m" : std::string(buf));
  for (std::size_t i = 0; i < rows.size() && i < max_rows; ++i) {
    const auto& r = rows[i];
    const bool live = r.has_rates;
    std::string cpu = live ? pct(r.cpu_permille_core) : "-";  // thousandths of a core = tenths of a percent
    if (r.reset) cpu += "*";
    std::string cap = "-";
    if (live && r.cap_millicores && *r.cap_millicores > 0) cap = pct(r.cpu_permille_core * 1000 / *r.cap_millicores);
    std::string mem = (r.mem_current ? human_bytes(*r.mem_current) : "-") + "/" +
                      (r.mem_limit ? human_bytes(*r.mem_limit) : "-");
    std::string disk = live ? rate(r.disk_r) + "/" + rate(r.disk_w) : "-";
    std::string net = live ? rate(r.net_rx) + "/" + rate(r.net_tx) : "-";
    std::string thr = r.throttled_permille ? pct(*r.throttled_permille) : "-";
    const bool hot = color && live && r.cap_millicores && r.cpu_permille_core * 10 >= *r.cap_millicores * 9;
    std::snprintf(buf, sizeof buf, "%s %s%s%s %s %s %s %s %s", fit_middle(r.name, 16).c_str(), hot ? "\x1b[31m" : "",
                  fit(cpu, 6, true).c_str(), hot ? "\x1b[0m" : "", fit(cap, 6, true).c_str(), fit(mem, 13, true).c_str(),
                  fit(disk, 11, true).c_str(), fit(net, 11, true).c_str(), fit(thr, 6, true).c_str());
    lines.push_back(buf);
  }
  return lines;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%H:%M:%S UTC", &tm);
  return b;
}

std::pair<int, int> terminal_size() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) return {ws.ws_row, ws.ws_col};
  return {24, 80};
}

}  // namespace

int run_watch(std::vector<std::unique_ptr<source>>& sources, const watch_options& o) {
  const bool tty = ::isatty(STDOUT_FILENO) && ::isatty(STDIN_FILENO);
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  if (tty) {
    sa.sa_handler = on_winch;
    ::sigaction(SIGWINCH, &sa, nullptr);
    ::signal(SIGTSTP, on_tstp);
    std::atexit(restore_terminal);
    if (!enter_raw()) return 1;
  }
  rate_book book;
  sort_by order = sort_by::cpu;
  int rc = 0;
  for (int n = 0; !g_stop && (o.iterations == 0 || n < o.iterations); ++n) {
    std::vector<row> rows;
    std::vector<std::string> problems;
    std::size_t total = 0, running = 0;
    for (auto& s : sources) {
      auto v = s->read();
      if (v.err) problems.push_back(v.kind + " " + v.uri + ": " + v.err->describe());
      for (const auto& f : v.failures) problems.push_back(f.name + ": " + f.why.describe());
      for (const auto& r : v.instances) {
        ++total;
        if (r.info.state != instance_state::running) continue;
        ++running;
        rows.push_back(book.update(v.uri, r));
      }
    }
    rc = problems.empty() ? 0 : 1;
    sort_rows(rows, order);
    const auto [height, width] = terminal_size();
    (void)width;
    char head[160];
    std::snprintf(head, sizeof head, "bulkhead-inspect  %s  every %lld.%llds  sort: %s  %zu/%zu running",
                  utc_now().c_str(), static_cast<long long>(o.interval.count() / 1000),
                  static_cast<long long>(o.interval.count() % 1000 / 100), sort_name(order).c_str(), running, total);
    std::string frame;
    if (tty) frame += "\x1b[H\x1b[2J";
    frame += fit(head, 79) + "\n";
    const std::size_t chrome = 4 + (problems.empty() ? 0 : 1);
    const std::size_t room = tty ? (static_cast<std::size_t>(height) > chrome ? height - chrome : 1) : rows.size();
    for (const auto& l : render_rows(rows, o.color && tty, room)) frame += l + "\n";
    if (!problems.empty()) frame += fit("! " + problems.front() + (problems.size() > 1 ? " (+" + std::to_string(problems.size() - 1) + " more)" : ""), 79) + "\n";
    if (tty)
      frame += fit("keys: c cpu  m memory  d disk  w network  n name  q quit   * counter reset", 79);
    else
      frame += "\n";
    (void)::write(STDOUT_FILENO, frame.data(), frame.size());
    if (o.iterations != 0 && n + 1 >= o.iterations) break;
    // Wait for the next refresh, reading keys meanwhile.
    const auto until = std::chrono::steady_clock::now() + o.interval;
    while (!g_stop) {
      if (g_resized == 2) {
        g_resized = 0;
        enter_raw();
        break;
      }
      if (g_resized) {
        g_resized = 0;
        break;  // redraw at the new size
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int ready = ::poll(tty ? &p : nullptr, tty ? 1 : 0, static_cast<int>(left.count()));
      if (ready > 0 && (p.revents & POLLIN)) {
        char k = 0;
        if (::read(STDIN_FILENO, &k, 1) != 1) continue;
        const auto before = order;
        switch (k) {
          case 'q': case 'Q': g_stop = 1; break;
          case 'c': order = sort_by::cpu; break;
          case 'm': order = sort_by::memory; break;
          case 'd': order = sort_by::disk; break;
          case 'w': order = sort_by::network; break;
          case 'n': order = sort_by::name; break;
          default: break;
        }
        if (order != before) break;  // redraw now (rates stay exact: the meter sets the interval)
      }
    }
  }
  restore_terminal();
  return rc;
}

}  // namespace bulkhead::inspect
