// The cgroup backend on this machine's real cgroup hierarchy: a busy-looping
// child capped at 20% then 50% of a core, measured with bulkhead's own
// counters; a memory limit, I/O throttles and a cpuset read back from the
// kernel. Every group is removed at the end, also when a check fails.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "cgroup_fixture_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

cgroup::mounts machine_mounts() {
  auto text = read_text_file("/proc/self/mountinfo");
  if (!text) test::skip("cannot read /proc/self/mountinfo");
  auto m = cgroup::mounts::parse(*text, "/proc/self/mountinfo");
  if (!m) test::skip("no cgroup hierarchy mounted: " + m.error().describe());
  return *m;
}

std::unique_ptr<cgroup::backend> open_real(std::vector<cgroup::controller> ctl) {
  if (!test::is_root()) test::skip("creating cgroups needs root");
  cgroup::options o;
  o.mounts = machine_mounts();
  o.controllers = std::move(ctl);
  auto b = cgroup::backend::open(o);
  if (!b) test::skip("cgroup controllers not available: " + b.error().describe());
  return std::move(*b);
}

std::string group_name(std::string_view what) {
  return "bulkhead-it-" + std::to_string(::getpid()) + "-" + std::string(what);
}

// Removes leftovers of earlier runs whose process is gone.
void sweep(cgroup::backend& b) {
  auto found = b.discover();
  if (!found) return;
  for (const auto& i : *found) {
    if (i.name.rfind("bulkhead-it-", 0) != 0) continue;
    const auto pid = std::atoi(i.name.c_str() + 12);
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0) (void)b.remove(i);
  }
}

// A group that is removed when it goes out of scope, after its child (if
// any) is killed and reaped.
class scoped_group {
 public:
  scoped_group(cgroup::backend& b, std::string name) : b_(b) {
    auto i = b.create(name, qos_class::BE);
    if (!i) FAIL("create " << name << ": " << i.error().describe());
    info_ = *i;
  }
  ~scoped_group() {
    stop_child();
    for (int k = 0; k < 50; ++k) {
      auto r = b_.remove(info_);
      if (r || r.error().code() == errc::not_found) return;
      std::this_thread::sleep_for(20ms);
    }
  }
  scoped_group(const scoped_group&) = delete;
  scoped_group& operator=(const scoped_group&) = delete;

  [[nodiscard]] const instance_info& info() const { return info_; }

  // Forks a child that spins once it is in the group.
  void start_busy_child() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    child_ = ::fork();
    REQUIRE(child_ >= 0);
    if (child_ == 0) {
      ::close(fds[1]);
      char c;
      if (::read(fds[0], &c, 1) != 1) ::_exit(1);
      volatile std::uint64_t x = 0;
      for (;;) x = x + 1;
    }
    ::close(fds[0]);
    auto a = b_.attach(info_, child_);
    if (!a) {
      ::close(fds[1]);
      FAIL("attach: " << a.error().describe());
    }
    REQUIRE(::write(fds[1], "g", 1) == 1);
    ::close(fds[1]);
  }
  void stop_child() {
    if (child_ <= 0) return;
    ::kill(child_, SIGKILL);
    ::waitpid(child_, nullptr, 0);
    child_ = -1;
  }
  [[nodiscard]] pid_t child() const { return child_; }

 private:
  cgroup::backend& b_;
  instance_info info_;
  pid_t child_ = -1;
};

// CPU share of the group over a window, in tenths of a percent of one core,
// from bulkhead's own counters (cpu time / monotonic time between reads).
std::uint64_t cpu_share_permille(cgroup::backend& b, const instance_info& i, std::chrono::milliseconds window) {
  auto r0 = b.read(i);
  REQUIRE(r0);
  REQUIRE(r0->usage.cpu_time);
  std::this_thread::sleep_for(window);
  auto r1 = b.read(i);
  REQUIRE(r1);
  REQUIRE(r1->usage.cpu_time);
  const auto used = *r1->usage.cpu_time - *r0->usage.cpu_time;
  const auto wall = std::chrono::duration_cast<nanoseconds>(r1->usage.read_at - r0->usage.read_at);
  REQUIRE(wall.count() > 0);
  return static_cast<std::uint64_t>(used.count()) * 1000 / static_cast<std::uint64_t>(wall.count());
}

// Measures over 4 s; a reading outside the band (another tenant starving the
// child for a moment) is measured once more over 8 s, and that one counts.
std::uint64_t measured_share(cgroup::backend& b, const instance_info& i, std::uint64_t target_permille) {
  std::this_thread::sleep_for(500ms);  // let the new quota take hold
  auto s = cpu_share_permille(b, i, 4000ms);
  MESSAGE("cpu share over 4 s: " << s / 10 << "." << s % 10 << "% (target " << target_permille / 10 << "%)");
  if (s + 30 < target_permille || s > target_permille + 30) {
    s = cpu_share_permille(b, i, 8000ms);
    MESSAGE("measured again over 8 s: " << s / 10 << "." << s % 10 << "%");
  }
  return s;
}

const knob_change* changed(const apply_report& r, std::string_view knob) {
  for (const auto& c : r.changed)
    if (c.knob == knob) return &c;
  return nullptr;
}

std::string kernel_file(const cgroup::backend& b, cgroup::controller c, const std::string& group, const std::string& file) {
  for (const auto& x : b.bindings())
    if (x.controller == c) return test::slurp(fs::path(x.path) / group / file);
  FAIL("controller not bound");
  return {};
}

}  // namespace

TEST_CASE("the machine's layout is detected from its mount table") {
  const auto m = machine_mounts();
  MESSAGE("cgroup layout of this machine: " << to_string(m.layout));
  CHECK(!m.hierarchies.empty());
  if (m.layout != cgroup::layout::unified) CHECK(m.v1("cpu") != nullptr);
}

TEST_CASE("a busy child capped at 20% then 50% of a core") {
  auto b = open_real({cgroup::controller::cpu, cgroup::controller::cpuacct});
  sweep(*b);
  scoped_group g(*b, group_name("cpu"));
  MESSAGE(b->source());
  // A high weight keeps other tenants of this shared machine from starving
  // the child: the cap, not the competition, must decide its share.
  quota_spec s;
  s.cpu.period = 100000us;
  s.cpu.quota = limit<microseconds>{20000us};
  s.cpu.weight = 800;  // shares 8192 on v1
  auto a = b->apply(g.info(), s);
  REQUIRE(a);
  for (const auto& f : a->failed) FAIL(f.knob << ": " << f.why.describe());
  REQUIRE(changed(*a, "cpu.quota"));
  CHECK(changed(*a, "cpu.quota")->before == "unlimited");
  CHECK(changed(*a, "cpu.quota")->after == "20000 us");
  g.start_busy_child();
  auto procs = b->processes(g.info());
  REQUIRE(procs);
  CHECK(*procs == std::vector<pid_t>{g.child()});

  const auto s20 = measured_share(*b, g.info(), 200);
  CHECK(s20 >= 170);
  CHECK(s20 <= 230);
  auto r = b->read(g.info());
  REQUIRE(r);
  CHECK(r->info.state == instance_state::running);
  REQUIRE(r->usage.cpu_nr_throttled);
  CHECK(*r->usage.cpu_nr_throttled > 0);  // the cap is what held it back
  CHECK(compare(s, *r).clean());

  s.cpu.quota = limit<microseconds>{50000us};
  auto up = b->apply(g.info(), s);
  REQUIRE(up);
  REQUIRE(up->failed.empty());
  REQUIRE(up->changed.size() == 1);
  CHECK(up->changed[0].knob == "cpu.quota");
  CHECK(up->changed[0].before == "20000 us");
  CHECK(up->changed[0].after == "50000 us");
  const auto s50 = measured_share(*b, g.info(), 500);
  CHECK(s50 >= 470);
  CHECK(s50 <= 530);

  // Unchanged: nothing to write.
  auto same = b->apply(g.info(), s);
  REQUIRE(same);
  CHECK(same->changed.empty());
  CHECK(same->failed.empty());
}

TEST_CASE("a memory limit set through bulkhead is what the kernel holds") {
  auto b = open_real({cgroup::controller::memory});
  sweep(*b);
  scoped_group g(*b, group_name("mem"));
  const auto& name = g.info().name;
  quota_spec s;
  s.memory.hard_limit = limit<bytes>{bytes{64ull << 20}};
  auto a = b->apply(g.info(), s);
  REQUIRE(a);
  REQUIRE(a->failed.empty());
  CHECK(changed(*a, "memory.hard_limit"));
  const bool v2 = b->bindings()[0].v2;
  CHECK(kernel_file(*b, cgroup::controller::memory, name, v2 ? "memory.max" : "memory.limit_in_bytes") == "67108864\n");
  auto r = b->read(g.info());
  REQUIRE(r);
  CHECK(r->enforced.memory.hard_limit == limit<bytes>{bytes{64ull << 20}});
  CHECK(r->usage.memory_current);

  // Not a whole number of pages: refused, the kernel's value unchanged.
  quota_spec odd;
  odd.memory.hard_limit = limit<bytes>{bytes{100000000}};
  auto o = b->apply(g.info(), odd);
  REQUIRE(o);
  REQUIRE(o->failed.size() == 1);
  CHECK(o->failed[0].why.code() == errc::out_of_range);
  CHECK(kernel_file(*b, cgroup::controller::memory, name, v2 ? "memory.max" : "memory.limit_in_bytes") == "67108864\n");

  // Unlimited, and the knob v1 lacks.
  quota_spec u;
  u.memory.hard_limit = limit<bytes>{unlimited};
  u.memory.high = limit<bytes>{bytes{32ull << 20}};
  auto ua = b->apply(g.info(), u);
  REQUIRE(ua);
  CHECK(ua->failed.empty());
  CHECK(changed(*ua, "memory.hard_limit")->after == "unlimited");
  auto ur = b->read(g.info());
  REQUIRE(ur);
  CHECK(ur->enforced.memory.hard_limit == limit<bytes>{unlimited});
  if (!v2) {
    CHECK(std::find(ua->unsupported.begin(), ua->unsupported.end(), "memory.high") != ua->unsupported.end());
    auto d = compare(u, *ur);
    CHECK(d.clean());
    CHECK(d.unsupported == std::vector<std::string>{"memory.high"});
    quota_spec soft;
    soft.memory.soft_limit = limit<bytes>{bytes{32ull << 20}};
    auto sa = b->apply(g.info(), soft);
    REQUIRE(sa);
    CHECK(sa->failed.empty());
    CHECK(kernel_file(*b, cgroup::controller::memory, name, "memory.soft_limit_in_bytes") == "33554432\n");
  } else {
    CHECK(changed(*ua, "memory.high"));
  }
}

TEST_CASE("I/O throttles and a cpuset on the real hierarchy") {
  auto b = open_real({cgroup::controller::io, cgroup::controller::cpuset});
  sweep(*b);
  // A whole disk (throttles apply to disks, not partitions).
  std::string dev;
  for (const auto& e : fs::directory_iterator("/sys/block")) {
    const auto n = e.path().filename().string();
    if (n.rfind("loop", 0) == 0 || n.rfind("ram", 0) == 0 || n.rfind("zram", 0) == 0) continue;
    dev = std::string(bulkhead::detail::trim(test::slurp(e.path() / "dev")));
    break;
  }
  if (dev.empty()) test::skip("no block device in /sys/block");
  scoped_group g(*b, group_name("io"));
  const auto& name = g.info().name;
  bool v2 = false;
  for (const auto& x : b->bindings()) v2 = v2 || (x.controller == cgroup::controller::io && x.v2);
  quota_spec s;
  disk_spec d;
  d.target = dev;
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1048576}};
  d.write_iops_sec = limit<ops_per_second>{ops_per_second{300}};
  s.disks.push_back(d);
  s.cpu.cpus = cpuset::range(0, 0);
  auto a = b->apply(g.info(), s);
  REQUIRE(a);
  for (const auto& f : a->failed) FAIL(f.knob << ": " << f.why.describe());
  CHECK(a->changed.size() == 3);
  if (!v2) {
    CHECK(kernel_file(*b, cgroup::controller::io, name, "blkio.throttle.read_bps_device") == dev + " 1048576\n");
    CHECK(kernel_file(*b, cgroup::controller::io, name, "blkio.throttle.write_iops_device") == dev + " 300\n");
  }
  auto r = b->read(g.info());
  REQUIRE(r);
  auto drift = compare(s, *r);
  for (const auto& x : drift.differs) INFO(x.knob << " " << x.desired << " " << x.actual);
  CHECK(drift.clean());

  // iops above 2^32-1 would be truncated by the kernel (5000000000 reads back
  // as 705032704 here): refused.
  quota_spec big;
  disk_spec bd;
  bd.target = dev;
  bd.write_iops_sec = limit<ops_per_second>{ops_per_second{5000000000}};
  big.disks.push_back(bd);
  big.cpu.cpus = cpuset::range(0, 4095);  // not within the parent's CPUs
  auto ba = b->apply(g.info(), big);
  REQUIRE(ba);
  CHECK(ba->failed.size() == 2);
  CHECK(ba->changed.empty());

  // Back to unlimited: the kernel drops the device's line.
  d.read_bytes_sec = limit<bytes_per_second>{unlimited};
  d.write_iops_sec = limit<ops_per_second>{unlimited};
  s.disks = {d};
  auto un = b->apply(g.info(), s);
  REQUIRE(un);
  CHECK(un->failed.empty());
  CHECK(un->changed.size() == 2);
  if (!v2) CHECK(kernel_file(*b, cgroup::controller::io, name, "blkio.throttle.read_bps_device").empty());
  auto after = b->read(g.info());
  REQUIRE(after);
  CHECK(after->enforced.disk(dev) == nullptr);
  CHECK(compare(s, *after).clean());
}

TEST_CASE("a re-created group is the same task with a new incarnation") {
  auto b = open_real({cgroup::controller::cpu, cgroup::controller::cpuacct});
  const auto name = group_name("again");
  std::optional<incarnation> first;
  quota_spec s;
  s.cpu.quota = limit<microseconds>{20000us};
  {
    scoped_group g(*b, name);
    first = g.info().id.incarnation;
    auto a = b->apply(g.info(), s);  // its files are now held open by the backend
    REQUIRE(a);
    CHECK(a->changed.size() == 1);
    auto found = b->discover();
    REQUIRE(found);
    bool seen = false;
    for (const auto& i : *found) seen = seen || (i.name == name && i.id.incarnation == first);
    CHECK(seen);
  }
  scoped_group g2(*b, name);
  CHECK(g2.info().id.uuid == task_uuid(name));
  REQUIRE(first);
  REQUIRE(g2.info().id.incarnation);
  CHECK_FALSE(*g2.info().id.incarnation == *first);
  // The new group starts unlimited: the backend reads it, not the old one's
  // files it had kept open.
  auto a = b->apply(g2.info(), s);
  REQUIRE(a);
  REQUIRE(a->changed.size() == 1);
  CHECK(a->changed[0].before == "unlimited");
}
