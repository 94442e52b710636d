// The cgroup backend on fixture trees: cgroup v2, v1, hybrid, planted links.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>

#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "cgroup_fixture_support.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct fixture_backend {
  test::temp_dir tmp{"bulkhead-cgroup"};
  fs::path root;
  std::unique_ptr<cgroup::backend> b;
};

std::unique_ptr<fixture_backend> open_fixture(std::string_view fixture, std::string_view table, std::string parent,
                                              std::vector<cgroup::controller> ctl = {cgroup::all_controllers.begin(),
                                                                                    cgroup::all_controllers.end()}) {
  auto f = std::make_unique<fixture_backend>();
  f->root = test::copy_fixture(f->tmp.path(), fixture);
  test::age_files(f->root);
  auto text = read_text_file((f->root / table).string());
  REQUIRE(text);
  auto mounts = cgroup::mounts::parse(*text, table);
  REQUIRE(mounts);
  cgroup::options o;
  o.fs_root = f->root.string();
  o.mounts = *mounts;
  o.parent = std::move(parent);
  o.controllers = std::move(ctl);
  o.page_size = 4096;
  auto b = cgroup::backend::open(o);
  if (!b) FAIL(b.error().describe());
  f->b = std::move(*b);
  return f;
}

instance_info task(std::string name) {
  instance_info i;
  i.name = std::move(name);
  i.id.uuid = task_uuid(i.name);
  return i;
}

bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

const knob_change* changed(const apply_report& r, std::string_view knob) {
  for (const auto& c : r.changed)
    if (c.knob == knob) return &c;
  return nullptr;
}
const knob_failure* failed(const apply_report& r, std::string_view knob) {
  for (const auto& c : r.failed)
    if (c.knob == knob) return &c;
  return nullptr;
}

std::uint64_t inode(const fs::path& p) {
  struct stat st{};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("v2: discover and read every file of a group") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto& b = *f->b;
  CHECK(b.layout() == cgroup::layout::unified);
  CHECK(b.bindings().size() == 5);
  for (const auto& x : b.bindings()) CHECK(x.v2);
  auto found = b.discover();
  REQUIRE(found);
  REQUIRE(found->size() == 3);
  CHECK((*found)[0].name == "batch");
  CHECK((*found)[1].name == "broken");
  CHECK((*found)[2].name == "web");
  const auto& web = (*found)[2];
  CHECK(web.id.uuid == task_uuid("web"));
  REQUIRE(web.id.incarnation);
  CHECK(web.id.incarnation->value == inode(f->root / "sys/fs/cgroup/bulkhead/web"));
  CHECK(web.kind == instance_kind::task);
  CHECK(web.isolation == isolation_level::process);
  CHECK(web.state == instance_state::running);
  CHECK((*found)[0].state == instance_state::nostate);

  auto r = b.read(web);
  REQUIRE(r);
  INFO(r->partial.size());
  CHECK(r->partial.empty());
  const auto& e = r->enforced;
  CHECK(e.cpu.quota == limit<microseconds>{50000us});
  CHECK(e.cpu.period == 100000us);
  CHECK(e.cpu.weight == 200u);
  CHECK_FALSE(e.cpu.shares);  // v2 has weight only; drift converts
  CHECK(e.cpu.burst == 10000us);
  CHECK(e.cpu.cpus == cpuset::range(0, 1));
  CHECK(e.cpu.mems == cpuset::range(0, 0));
  CHECK(e.memory.hard_limit == limit<bytes>{bytes{1073741824}});
  CHECK(e.memory.high == limit<bytes>{bytes{805306368}});
  CHECK(e.memory.min == bytes{0});
  CHECK(e.memory.low == bytes{268435456});
  CHECK_FALSE(e.memory.soft_limit);
  CHECK(e.blkio_weight == 100u);
  const auto* d = e.disk("8:16");
  REQUIRE(d);
  CHECK(d->read_bytes_sec == limit<bytes_per_second>{bytes_per_second{2097152}});
  CHECK(d->write_bytes_sec == limit<bytes_per_second>{unlimited});
  CHECK(d->read_iops_sec == limit<ops_per_second>{unlimited});
  CHECK(d->write_iops_sec == limit<ops_per_second>{ops_per_second{120}});
  CHECK(d->weight == 200u);
  CHECK_FALSE(d->total_bytes_sec);
  for (auto k : {"memory.soft_limit", "memory.swap_hard_limit", "disks[].total_bytes_sec", "disks[].read_iops_sec_max"})
    CHECK(has(r->unsupported, k));
  CHECK_FALSE(has(r->unsupported, "cpu.quota"));

  const auto& u = r->usage;
  CHECK(u.cpu_time == nanoseconds{1842000123000});
  CHECK(u.cpu_user == nanoseconds{1500000100000});
  CHECK(u.cpu_system == nanoseconds{342000023000});
  CHECK(u.cpu_nr_periods == 36000u);
  CHECK(u.cpu_nr_throttled == 1200u);
  CHECK(u.cpu_throttled_time == nanoseconds{56000000000});
  CHECK(u.memory_current == bytes{536870912});
  CHECK(u.memory_oom_events == 1u);
  REQUIRE(u.disks.size() == 2);
  for (const auto& c : u.disks) {
    if (c.target == "8:0") {
      CHECK(c.read_bytes == bytes{90430464});
      CHECK(c.write_requests == operations{1252});
    } else {
      CHECK(c.target == "8:16");
      CHECK(c.read_bytes == bytes{1459200});
      CHECK(c.write_bytes == bytes{314773504});
      CHECK(c.read_requests == operations{192});
      CHECK(c.write_requests == operations{353});
    }
  }
  CHECK(r->info.modes.get(resource_kind::cpu) == isolation_mode::capped);
  CHECK(r->info.modes.get(resource_kind::memory) == isolation_mode::capped);
  CHECK(r->info.modes.get(resource_kind::disk_bandwidth) == isolation_mode::capped);
}

TEST_CASE("v2: 'max' values read as unlimited, never as numbers") {
  auto f = open_fixture("cgroup-v2", "mounts", "bulkhead");  // the /proc/mounts form
  auto r = f->b->read(task("batch"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  const auto& e = r->enforced;
  CHECK(e.cpu.quota == limit<microseconds>{unlimited});
  CHECK(e.memory.hard_limit == limit<bytes>{unlimited});
  CHECK(e.memory.high == limit<bytes>{unlimited});
  CHECK(e.memory.low == bytes::max());  // "max": protect everything
  CHECK(e.disks.empty());
  CHECK(e.cpu.cpus == cpuset::range(0, 3));  // empty cpuset.cpus: the effective set is the parent's
  CHECK(r->info.modes.get(resource_kind::cpu) == isolation_mode::weighted);
  CHECK(r->info.modes.get(resource_kind::memory) == isolation_mode::shared);
}

TEST_CASE("v2: malformed lines are reported per file; the rest is read") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto r = f->b->read(task("broken"));
  REQUIRE(r);
  std::string all;
  for (const auto& e : r->partial) all += e.describe() + "\n";
  INFO(all);
  for (auto file : {"broken/cpu.max", "broken/memory.max", "broken/memory.events", "broken/io.max", "broken/io.stat",
                    "broken/cpu.stat", "broken/cpuset.cpus.effective"})
    CHECK(all.find(file) != std::string::npos);
  CHECK(r->partial.size() == 7);
  CHECK_FALSE(r->enforced.cpu.quota);
  CHECK_FALSE(r->enforced.memory.hard_limit);
  CHECK(r->enforced.cpu.weight == 100u);
  CHECK(r->enforced.memory.high == limit<bytes>{unlimited});
  CHECK(r->usage.memory_current == bytes{4096});
  // An apply to a knob whose file cannot be parsed fails that knob only.
  quota_spec s;
  s.cpu.quota = limit<microseconds>{20000us};
  s.memory.high = limit<bytes>{bytes{1 << 30}};
  auto a = f->b->apply(task("broken"), s);
  REQUIRE(a);
  REQUIRE(failed(*a, "cpu.quota"));
  CHECK(failed(*a, "cpu.quota")->why.code() == errc::parse_error);
  CHECK(changed(*a, "memory.high"));
  CHECK(test::slurp(f->root / "sys/fs/cgroup/bulkhead/broken/cpu.max") == "12x 100000\n");
}

TEST_CASE("v2: a controller the parent does not offer makes its knobs unsupported") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "lean");
  auto& b = *f->b;
  std::vector<cgroup::controller> served;
  for (const auto& x : b.bindings()) served.push_back(x.controller);
  CHECK(served == std::vector<cgroup::controller>{cgroup::controller::cpuacct, cgroup::controller::memory});
  auto r = b.read(task("svc"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  for (auto k : {"cpu.quota", "cpu.weight", "cpu.cpus", "blkio_weight", "disks[].read_bytes_sec"})
    CHECK(has(r->unsupported, k));
  CHECK(r->usage.cpu_time == nanoseconds{5000000});  // core cpu.stat
  CHECK(r->enforced.memory.hard_limit == limit<bytes>{bytes{268435456}});

  quota_spec s;
  s.cpu.quota = limit<microseconds>{20000us};
  s.cpu.period = 100000us;
  s.memory.hard_limit = limit<bytes>{bytes{512ull << 20}};
  auto a = b.apply(task("svc"), s);
  REQUIRE(a);
  CHECK(has(a->unsupported, "cpu.quota"));
  CHECK(has(a->unsupported, "cpu.period"));
  REQUIRE(changed(*a, "memory.hard_limit"));
  CHECK(changed(*a, "memory.hard_limit")->before == "268435456 bytes");
  CHECK(changed(*a, "memory.hard_limit")->after == "536870912 bytes");
  CHECK(test::slurp(f->root / "sys/fs/cgroup/lean/svc/memory.max") == "536870912");
  auto d = compare(s, *b.read(task("svc")));
  CHECK(d.clean());
  CHECK(has(d.unsupported, "cpu.quota"));
}

TEST_CASE("v2: apply of the enforced spec reads only; changes are written, read back and reported") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto& b = *f->b;
  auto r = b.read(task("web"));
  REQUIRE(r);
  quota_spec same;
  same.cpu.quota = r->enforced.cpu.quota;
  same.cpu.period = r->enforced.cpu.period;
  same.cpu.weight = r->enforced.cpu.weight;
  same.cpu.shares = 2048;  // weight 200 in v1 terms: agrees
  same.cpu.burst = r->enforced.cpu.burst;
  same.cpu.cpus = r->enforced.cpu.cpus;
  same.memory.hard_limit = r->enforced.memory.hard_limit;
  same.memory.high = r->enforced.memory.high;
  same.memory.low = r->enforced.memory.low;
  same.blkio_weight = 100;
  disk_spec d;
  d.target = "8:16";
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{2097152}};
  d.write_iops_sec = limit<ops_per_second>{ops_per_second{120}};
  d.weight = 200;
  same.disks.push_back(d);
  const auto before = test::snapshot(f->root);
  auto a = b.apply(task("web"), same);
  REQUIRE(a);
  CHECK(a->changed.empty());
  CHECK(a->failed.empty());
  CHECK(a->unsupported.empty());
  CHECK(test::snapshot(f->root) == before);  // not one write

  quota_spec next = same;
  next.cpu.quota = limit<microseconds>{20000us};
  next.cpu.burst = 5000us;
  next.cpu.shares.reset();
  next.cpu.weight = 300;
  next.memory.high = limit<bytes>{unlimited};
  next.blkio_weight = 250;
  next.disks[0].weight.reset();
  next.disks[0].read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1048576}};
  auto c = b.apply(task("web"), next);
  REQUIRE(c);
  for (const auto& x : c->failed) INFO(x.knob << ": " << x.why.describe());
  CHECK(c->failed.empty());
  const auto* q = changed(*c, "cpu.quota");
  REQUIRE(q);
  CHECK(q->before == "50000 us");
  CHECK(q->after == "20000 us");
  CHECK_FALSE(changed(*c, "cpu.period"));
  REQUIRE(changed(*c, "cpu.burst"));
  CHECK(changed(*c, "cpu.weight")->after == "300");
  CHECK(changed(*c, "memory.high")->after == "unlimited");
  CHECK(changed(*c, "blkio_weight")->after == "250");
  REQUIRE(changed(*c, "disks['8:16'].read_bytes_sec"));
  CHECK(changed(*c, "disks['8:16'].read_bytes_sec")->before == "2097152 bytes/s");
  CHECK(c->changed.size() == 6);
  const auto dir = f->root / "sys/fs/cgroup/bulkhead/web/";
  CHECK(test::slurp(dir / "cpu.max") == "20000 100000");
  CHECK(test::slurp(dir / "cpu.max.burst") == "5000");
  CHECK(test::slurp(dir / "memory.high") == "max");
  CHECK(test::slurp(dir / "io.max") == "8:16 rbps=1048576");  // only the key that changed
  CHECK(test::slurp(dir / "io.weight") == "default 250");
  // A file written by a plain file system is what the kernel would hold too.
  next.disks[0].write_iops_sec.reset();
  auto drift = compare(next, *b.read(task("web")));
  for (const auto& x : drift.differs) INFO(x.knob << " " << x.desired << " " << x.actual);
  CHECK(drift.clean());
}

TEST_CASE("v2: values the kernel would refuse, round or clamp are refused before writing") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto& b = *f->b;
  const auto snap = test::snapshot(f->root);
  quota_spec s;
  s.memory.hard_limit = limit<bytes>{bytes{100000000}};  // not whole pages
  s.memory.high = limit<bytes>{bytes{1ull << 63}};       // above the page-counter maximum
  s.cpu.quota = limit<microseconds>{20000us};
  s.cpu.burst = 30000us;  // above the quota
  disk_spec d;
  d.target = "8:16";
  d.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{0}};
  d.write_iops_sec = limit<ops_per_second>{ops_per_second{5000000000}};
  s.disks.push_back(d);
  disk_spec bad_dev;
  bad_dev.target = "vda";
  bad_dev.read_bytes_sec = limit<bytes_per_second>{bytes_per_second{1000}};
  s.disks.push_back(bad_dev);
  auto a = b.apply(task("web"), s);
  REQUIRE(a);
  for (auto k : {"memory.hard_limit", "memory.high", "cpu.burst", "disks['8:16'].read_bytes_sec",
                 "disks['8:16'].write_iops_sec"}) {
    const auto* x = failed(*a, k);
    REQUIRE_MESSAGE(x, k);
    INFO(x->why.describe());
    CHECK(x->why.message().find(k) != std::string::npos);
  }
  REQUIRE(failed(*a, "disks['vda'].read_bytes_sec"));
  CHECK(failed(*a, "disks['vda'].read_bytes_sec")->why.message().find("not a device number MAJ:MIN") != std::string::npos);
  CHECK(failed(*a, "memory.hard_limit")->why.message().find("99999744") != std::string::npos);
  CHECK(failed(*a, "memory.hard_limit")->why.code() == errc::out_of_range);
  // The quota itself was fine and is applied.
  CHECK(changed(*a, "cpu.quota"));
  auto after = test::snapshot(f->root);
  after.erase("sys/fs/cgroup/bulkhead/web/cpu.max");
  auto expected = snap;
  expected.erase("sys/fs/cgroup/bulkhead/web/cpu.max");
  CHECK(after == expected);

  // Shares and weight that disagree: refused, nothing written.
  quota_spec w;
  w.cpu.weight = 100;
  w.cpu.shares = 4096;
  auto c = b.apply(task("web"), w);
  REQUIRE(c);
  REQUIRE(failed(*c, "cpu.weight"));
  CHECK(failed(*c, "cpu.weight")->why.message().find("conflicts") != std::string::npos);

  // Out of the model's range: the whole spec is refused by validate().
  quota_spec v;
  v.cpu.quota = limit<microseconds>{500us};
  auto bad = b.apply(task("web"), v);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == errc::out_of_range);
  CHECK(bad.error().describe().find("cpu.quota") != std::string::npos);

  // Knobs no cgroup has.
  quota_spec u;
  u.cpu.vcpus = 2;
  u.memory.soft_limit = limit<bytes>{bytes{4096}};
  u.llc = llc_spec{cache_ways{2}, false, {}, {}};
  disk_spec t;
  t.target = "8:16";
  t.total_bytes_sec = limit<bytes_per_second>{bytes_per_second{4096}};
  u.disks.push_back(t);
  auto un = b.apply(task("web"), u);
  REQUIRE(un);
  for (auto k : {"cpu.vcpus", "memory.soft_limit", "llc", "disks['8:16'].total_bytes_sec"}) CHECK(has(un->unsupported, k));
  CHECK_FALSE(un->ok());
}

TEST_CASE("v2: a missing group is not_found, or vanished when it was seen before") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto r = f->b->read(task("nope"));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::not_found);
  auto web = f->b->read(task("web"));
  REQUIRE(web);
  fs::remove_all(f->root / "sys/fs/cgroup/bulkhead/web");
  auto gone = f->b->read(web->info);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code() == errc::vanished);
  quota_spec s;
  s.cpu.weight = 100;
  auto a = f->b->apply(web->info, s);
  REQUIRE_FALSE(a);
  CHECK(a.error().code() == errc::vanished);
  // A uuid that is not the name's.
  auto wrong = task("batch");
  wrong.id.uuid = task_uuid("web");
  CHECK(f->b->read(wrong).error().code() == errc::invalid_argument);
}

TEST_CASE("v2: create, re-create, remove; capacity") {
  auto f = open_fixture("cgroup-v2", "mountinfo", "bulkhead");
  auto& b = *f->b;
  auto i = b.create("fresh", qos_class::BE, "tenant-a");
  REQUIRE(i);
  CHECK(i->qos == qos_class::BE);
  CHECK(i->tenant == "tenant-a");
  CHECK(i->id.uuid == task_uuid("fresh"));
  REQUIRE(i->id.incarnation);
  CHECK(fs::is_directory(f->root / "sys/fs/cgroup/bulkhead/fresh"));
  CHECK(b.create("fresh").error().code() == errc::already_exists);
  for (auto bad : {"..", "a/b", "", "x\ny"}) CHECK_FALSE(b.create(bad));
  REQUIRE(b.remove(*i));
  CHECK_FALSE(fs::exists(f->root / "sys/fs/cgroup/bulkhead/fresh"));
  CHECK(b.remove(*i).error().code() == errc::not_found);
  auto again = b.create("fresh");
  REQUIRE(again);
  CHECK(again->id.uuid == i->id.uuid);  // same name, same task (a new incarnation: tested on real cgroupfs)

  auto cap = b.capacity();
  REQUIRE(cap);
  CHECK(cap->cpus == 4);
  CHECK(cap->memory == bytes{16ull << 30});
  REQUIRE(cap->numa.size() == 2);
  CHECK(cap->numa[1].cpus == cpuset::range(2, 3));
  CHECK(cap->numa[1].memory == bytes{8ull << 30});
}

TEST_CASE("v1: read, apply with v1 files, units and orders") {
  auto f = open_fixture("cgroup-v1", "mountinfo", "bulkhead");
  auto& b = *f->b;
  CHECK(b.layout() == cgroup::layout::legacy);
  for (const auto& x : b.bindings()) CHECK_FALSE(x.v2);
  auto found = b.discover();
  REQUIRE(found);
  REQUIRE(found->size() == 2);
  auto r = b.read(task("web"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  const auto& e = r->enforced;
  CHECK(e.cpu.quota == limit<microseconds>{50000us});
  CHECK(e.cpu.period == 100000us);
  CHECK(e.cpu.shares == 2048u);
  CHECK_FALSE(e.cpu.weight);
  CHECK_FALSE(e.cpu.burst);  // no cpu.cfs_burst_us in this kernel
  CHECK(has(r->unsupported, "cpu.burst"));
  CHECK(e.memory.hard_limit == limit<bytes>{bytes{1073741824}});
  CHECK(e.memory.soft_limit == limit<bytes>{bytes{536870912}});
  CHECK(e.memory.swap_hard_limit == limit<bytes>{bytes{2147483648}});
  for (auto k : {"memory.high", "memory.min", "memory.low"}) CHECK(has(r->unsupported, k));
  CHECK(e.blkio_weight == 500u);
  const auto* d = e.disk("8:16");
  REQUIRE(d);
  CHECK(d->read_bytes_sec == limit<bytes_per_second>{bytes_per_second{2097152}});
  CHECK(d->write_bytes_sec == limit<bytes_per_second>{unlimited});
  CHECK(d->write_iops_sec == limit<ops_per_second>{ops_per_second{120}});
  CHECK(d->weight == 300u);
  CHECK(r->usage.cpu_time == nanoseconds{1842000123000});
  CHECK(r->usage.cpu_throttled_time == nanoseconds{56000000000});
  CHECK(r->usage.memory_current == bytes{536870912});
  CHECK(r->usage.memory_oom_events == 2u);
  REQUIRE(r->usage.disks.size() == 1);
  CHECK(r->usage.disks[0].write_bytes == bytes{314773504});
  CHECK(r->usage.disks[0].read_requests == operations{192});

  auto batch = b.read(task("batch"));
  REQUIRE(batch);
  CHECK(batch->enforced.cpu.quota == limit<microseconds>{unlimited});
  CHECK(batch->enforced.memory.hard_limit == limit<bytes>{unlimited});
  CHECK(batch->enforced.disks.empty());

  // Weight on v1 goes to cpu.shares by the kernel's formula.
  quota_spec s;
  s.cpu.weight = 200;  // = shares 2048: unchanged
  s.cpu.quota = limit<microseconds>{unlimited};
  s.memory.hard_limit = limit<bytes>{bytes{4ull << 30}};       // above the current memsw limit:
  s.memory.swap_hard_limit = limit<bytes>{bytes{8ull << 30}};  // memsw must go first
  s.memory.high = limit<bytes>{bytes{1 << 30}};
  disk_spec io;
  io.target = "8:16";
  io.read_bytes_sec = limit<bytes_per_second>{unlimited};
  io.write_bytes_sec = limit<bytes_per_second>{bytes_per_second{1048576}};
  s.disks.push_back(io);
  s.cpu.cpus = cpuset::range(4, 5);  // not within the parent's 0-3
  const auto before = test::snapshot(f->root);
  auto a = b.apply(task("web"), s);
  REQUIRE(a);
  for (const auto& x : a->failed) INFO(x.knob << ": " << x.why.describe());
  CHECK_FALSE(changed(*a, "cpu.shares"));
  CHECK(changed(*a, "cpu.quota")->after == "unlimited");
  CHECK(changed(*a, "memory.hard_limit")->after == "4294967296 bytes");
  CHECK(changed(*a, "memory.swap_hard_limit"));
  CHECK(changed(*a, "disks['8:16'].read_bytes_sec")->after == "unlimited");
  CHECK(changed(*a, "disks['8:16'].write_bytes_sec")->after == "1048576 bytes/s");
  CHECK(has(a->unsupported, "memory.high"));
  REQUIRE(failed(*a, "cpu.cpus"));
  CHECK(failed(*a, "cpu.cpus")->why.message().find("not within the parent's 0-3") != std::string::npos);
  CHECK(a->failed.size() == 1);
  const auto root = f->root / "sys/fs/cgroup/";
  CHECK(test::slurp(root / "cpu,cpuacct/bulkhead/web/cpu.cfs_quota_us") == "-1");
  CHECK(test::slurp(root / "memory/bulkhead/web/memory.limit_in_bytes") == "4294967296");
  CHECK(test::slurp(root / "memory/bulkhead/web/memory.memsw.limit_in_bytes") == "8589934592");
  CHECK(test::slurp(root / "blkio/bulkhead/web/blkio.throttle.read_bps_device") == "8:16 0");
  CHECK(test::slurp(root / "blkio/bulkhead/web/blkio.throttle.write_bps_device") == "8:16 1048576");
  CHECK(test::slurp(root / "cpuset/bulkhead/web/cpuset.cpus") == "0-1\n");
  CHECK(before.at("sys/fs/cgroup/cpu,cpuacct/bulkhead/web/cpu.shares") ==
        test::snapshot(f->root).at("sys/fs/cgroup/cpu,cpuacct/bulkhead/web/cpu.shares"));
  // A blkio weight_device outside v1's 10..1000 is refused.
  quota_spec w;
  disk_spec dw;
  dw.target = "8:16";
  dw.weight = 5000;
  w.disks.push_back(dw);
  auto wa = b.apply(task("web"), w);
  REQUIRE(wa);
  REQUIRE(failed(*wa, "disks['8:16'].weight"));
  CHECK(failed(*wa, "disks['8:16'].weight")->why.message().find("10..1000") != std::string::npos);
}

TEST_CASE("hybrid: v1 controllers, separate cpu and cpuacct; memory served by cgroup2") {
  auto f = open_fixture("cgroup-hybrid", "mountinfo", "bulkhead");
  auto& b = *f->b;
  CHECK(b.layout() == cgroup::layout::hybrid);
  for (const auto& x : b.bindings()) CHECK_FALSE(x.v2);  // cgroup2 offers only hugetlb
  auto r = b.read(task("web"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  CHECK(r->enforced.cpu.quota == limit<microseconds>{20000us});
  CHECK(r->enforced.cpu.burst == 0us);
  CHECK(r->usage.cpu_time == nanoseconds{1000000000});  // from the cpuacct hierarchy
  CHECK(r->usage.cpu_nr_throttled == 40u);               // from the cpu hierarchy
  CHECK(has(r->unsupported, "memory.swap_hard_limit"));
  CHECK(has(r->unsupported, "blkio_weight"));
  quota_spec s;
  s.blkio_weight = 500;
  s.memory.swap_hard_limit = limit<bytes>{unlimited};
  auto a = b.apply(task("web"), s);
  REQUIRE(a);
  CHECK(has(a->unsupported, "blkio_weight"));
  CHECK(has(a->unsupported, "memory.swap_hard_limit"));

  auto g = open_fixture("cgroup-hybrid", "mountinfo-memory-v2", "mixed",
                        {cgroup::controller::cpu, cgroup::controller::cpuacct, cgroup::controller::memory});
  auto& m = *g->b;
  CHECK(m.layout() == cgroup::layout::hybrid);
  for (const auto& x : m.bindings()) CHECK(x.v2 == (x.controller == cgroup::controller::memory));
  auto svc = m.read(task("svc"));
  REQUIRE(svc);
  CHECK(svc->partial.empty());
  CHECK(svc->enforced.memory.hard_limit == limit<bytes>{bytes{536870912}});
  CHECK(svc->enforced.cpu.shares == 1024u);
  CHECK(svc->usage.cpu_time == nanoseconds{7000});
  quota_spec h;
  h.memory.high = limit<bytes>{bytes{256ull << 20}};  // a v2 knob, served here
  auto ha = m.apply(task("svc"), h);
  REQUIRE(ha);
  CHECK(ha->unsupported.empty());
  CHECK(changed(*ha, "memory.high"));
  CHECK(test::slurp(g->root / "sys/fs/cgroup/unified/mixed/svc/memory.high") == "268435456");
}

TEST_CASE("planted links out of the root are refused through the backend") {
  auto f = open_fixture("cgroup-v2-links", "mountinfo", "tasks");
  auto& b = *f->b;
  const auto outside = test::snapshot(f->root / "outside");
  auto found = b.discover();
  REQUIRE(found);
  std::vector<std::string> names;
  for (const auto& i : *found) names.push_back(i.name);
  CHECK(names == std::vector<std::string>{"evil", "fine"});  // "escape" is a link out: not a group

  auto r = b.read(task("evil"));
  REQUIRE(r);
  std::size_t unsafe = 0;
  for (const auto& e : r->partial) unsafe += e.code() == errc::unsafe_path;
  CHECK(unsafe == 3);  // cpu.max, cpu.weight, memory.max
  CHECK_FALSE(r->enforced.cpu.quota);
  CHECK_FALSE(r->enforced.memory.hard_limit);

  quota_spec s;
  s.cpu.quota = limit<microseconds>{5000us};
  s.cpu.weight = 10000;
  s.memory.hard_limit = limit<bytes>{bytes{1 << 20}};
  s.memory.high = limit<bytes>{bytes{1 << 20}};
  auto a = b.apply(task("evil"), s);
  REQUIRE(a);
  for (auto k : {"cpu.quota", "cpu.weight", "memory.hard_limit"}) {
    REQUIRE(failed(*a, k));
    CHECK(failed(*a, k)->why.code() == errc::unsafe_path);
  }
  CHECK(test::snapshot(f->root / "outside") == outside);

  auto esc = b.read(task("escape"));
  REQUIRE_FALSE(esc);
  CHECK(esc.error().code() == errc::unsafe_path);
  auto ea = b.apply(task("escape"), s);
  CHECK((!ea || !ea->failed.empty()));
  CHECK(test::snapshot(f->root / "outside") == outside);
  CHECK_FALSE(b.attach(task("escape"), 1));
  CHECK(b.read(task("fine")));

  // The parent itself must not be a path out.
  auto text = read_text_file((f->root / "mountinfo").string());
  cgroup::options o;
  o.fs_root = f->root.string();
  o.mounts = *cgroup::mounts::parse(*text);
  for (auto bad : {"tasks/../..", "../outside", "tasks//x"}) {
    o.parent = bad;
    auto x = cgroup::backend::open(o);
    REQUIRE_FALSE(x);
    INFO(x.error().describe());
    CHECK((x.error().code() == errc::unsafe_path || x.error().code() == errc::invalid_argument));
  }
}
