// The resctrl backend on fixture trees: reads on the real file access, writes
// against a model of the kernel's rules (this machine has no resctrl).
#include <doctest/doctest.h>

#include <algorithm>

#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/resctrl/backend.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "cgroup_fixture_support.hpp"
#include "resctrl_kernel_model.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;

namespace {

struct fixture {
  test::temp_dir tmp{"bulkhead-resctrl"};
  fs::path top;   // the copied fixture
  fs::path root;  // its sys/fs/resctrl
  test::resctrl_kernel_model* model = nullptr;
  std::unique_ptr<resctrl::backend> b;
};

// With `model`, writes go through the kernel model; else straight to files.
std::unique_ptr<fixture> open_fixture(std::string_view name, bool model) {
  auto f = std::make_unique<fixture>();
  f->top = test::copy_fixture(f->tmp.path(), name);
  test::age_files(f->top);
  auto opts = resctrl::options::parse(test::slurp(f->top / "mounts"), f->top.string());
  REQUIRE(opts);
  f->root = opts->root;
  auto files = resctrl::fs::open(opts->root);
  REQUIRE(files);
  std::unique_ptr<resctrl::fs> used = std::move(*files);
  if (model) {
    auto m = std::make_unique<test::resctrl_kernel_model>(f->root, std::move(used), opts->mba_mbps);
    f->model = m.get();
    used = std::move(m);
  }
  auto b = resctrl::backend::open(*opts, std::move(used));
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
std::string report(const apply_report& r) {
  std::string s;
  for (const auto& c : r.changed) s += "changed " + c.knob + ": " + c.before + " -> " + c.after + "\n";
  for (const auto& c : r.failed) s += "failed " + c.knob + ": " + c.why.describe() + "\n";
  for (const auto& c : r.unsupported) s += "unsupported " + c + "\n";
  return s;
}

quota_spec ways(std::uint64_t n, bool exclusive) {
  quota_spec s;
  s.llc = llc_spec{cache_ways{n}, exclusive, {}, {}};
  return s;
}

}  // namespace

TEST_CASE("info/, groups, schemata and monitoring are read") {
  auto f = open_fixture("resctrl", false);
  auto& b = *f->b;
  const auto& info = b.info();
  REQUIRE(info.caches.size() == 1);
  CHECK(info.caches[0].resource == "L3");
  CHECK(info.caches[0].cbm_mask == 0x7ff);
  CHECK(info.caches[0].ways() == 11);
  CHECK(info.caches[0].min_cbm_bits == 2);
  CHECK(info.caches[0].shareable_bits == 0x400);
  CHECK_FALSE(info.caches[0].sparse_masks);
  REQUIRE(info.mb);
  CHECK(info.mb->bandwidth_gran == 10);
  CHECK(info.mb->min_bandwidth == 10);
  REQUIRE(info.mon);
  CHECK(info.mon->num_rmids == 32);
  CHECK(info.mon->features.size() == 3);
  CHECK(info.num_closids() == 4);
  CHECK_FALSE(info.cdp);
  CHECK_FALSE(info.mba_mbps);
  CHECK(b.capacity().value().cpus == 4);

  auto found = b.discover();
  REQUIRE(found);
  std::vector<std::string> names;
  for (const auto& i : *found) names.push_back(i.name);
  CHECK(names == std::vector<std::string>{"batch", "lse-db", "web"});  // not info/ nor mon_data/
  CHECK((*found)[2].id.uuid == task_uuid("web"));
  CHECK((*found)[2].state == instance_state::running);
  CHECK((*found)[0].state == instance_state::nostate);

  auto web = b.read((*found)[2]);
  REQUIRE(web);
  CHECK(web->partial.empty());
  REQUIRE(web->enforced.llc);
  CHECK(web->enforced.llc->allocations == std::vector<cache_allocation>{{0, 0x0f0}, {2, 0x0f0}});
  CHECK(web->enforced.llc->ways == cache_ways{4});
  CHECK_FALSE(web->enforced.llc->exclusive);
  REQUIRE(web->enforced.memory_bandwidth);
  CHECK_FALSE(web->enforced.memory_bandwidth->mbps);
  CHECK(web->enforced.memory_bandwidth->allocations == std::vector<bandwidth_allocation>{{0, 100}, {2, 50}});  // " 50"
  CHECK(web->info.modes.get(resource_kind::llc) == isolation_mode::capped);
  CHECK(web->info.modes.get(resource_kind::memory_bandwidth) == isolation_mode::capped);
  REQUIRE(web->usage.cache_monitors.size() == 2);
  CHECK(web->usage.cache_monitors[1].domain_id == 2);
  CHECK(web->usage.cache_monitors[1].llc_occupancy == bytes{34555});

  auto db = b.read(task("lse-db"));
  REQUIRE(db);
  CHECK(db->partial.empty());
  CHECK(db->enforced.llc->exclusive);
  CHECK(db->info.modes.get(resource_kind::llc) == isolation_mode::dedicated);
  const auto& m = db->usage.cache_monitors;
  REQUIRE(m.size() == 2);
  CHECK(m[0].mbm_total == bytes{1895825408});
  CHECK(m[1].llc_occupancy == bytes{0});
  CHECK_FALSE(m[1].mbm_total);  // "Unavailable"
  CHECK_FALSE(m[1].mbm_local);

  auto batch = b.read(task("batch"));
  REQUIRE(batch);
  CHECK(batch->enforced.memory_bandwidth->allocations == std::vector<bandwidth_allocation>{{0, 30}, {2, 30}});  // " 30"

  CHECK(b.read(task("nope")).error().code() == errc::not_found);
  CHECK(b.read(task("info")).error().code() == errc::invalid_argument);
}

TEST_CASE("apply of the enforced spec reads only") {
  auto f = open_fixture("resctrl", false);
  const auto before = test::snapshot(f->top);
  quota_spec s = ways(4, false);
  s.memory_bandwidth = memory_bandwidth_spec{false, {{0, 100}, {2, 50}}};
  auto a = f->b->apply(task("web"), s);
  REQUIRE(a);
  INFO(report(*a));
  CHECK(a->changed.empty());
  CHECK(a->failed.empty());
  CHECK(test::snapshot(f->top) == before);
  auto x = f->b->apply(task("lse-db"), ways(2, true));
  REQUIRE(x);
  CHECK(x->changed.empty());
  CHECK(test::snapshot(f->top) == before);
  CHECK(compare(s, f->b->read(task("web")).value()).clean());
}

TEST_CASE("only the lines and domains that change are written") {
  auto f = open_fixture("resctrl", true);
  auto& b = *f->b;
  quota_spec s;
  s.memory_bandwidth = memory_bandwidth_spec{false, {{0, 100}, {2, 70}}};
  auto a = b.apply(task("web"), s);
  REQUIRE(a);
  INFO(report(*a));
  REQUIRE(a->changed.size() == 1);
  CHECK(a->changed[0].knob == "memory_bandwidth[domain 2]");
  CHECK(a->changed[0].before == "50 percent");
  CHECK(a->changed[0].after == "70 percent");
  REQUIRE(f->model->writes.size() == 1);
  CHECK(f->model->writes[0].file == "web/schemata");
  CHECK(f->model->writes[0].content == "MB:2=70\n");
  // The model prints the whole file back, as the kernel does.
  CHECK(test::slurp(f->root / "web/schemata") == "L3:0=0f0;2=0f0\nMB:0=100;2= 70\n");
}

TEST_CASE("shared allocation: fewer ways, away from exclusive ways; drift after") {
  auto f = open_fixture("resctrl", true);
  auto& b = *f->b;
  auto a = b.apply(task("batch"), ways(3, false));
  REQUIRE(a);
  INFO(report(*a));
  CHECK(a->failed.empty());
  REQUIRE(changed(*a, "llc.allocations[cache 0]"));
  CHECK(changed(*a, "llc.allocations[cache 0]")->before == "0xf");
  CHECK(changed(*a, "llc.allocations[cache 0]")->after == "0x7");
  CHECK(changed(*a, "llc.allocations[cache 2]"));
  REQUIRE(f->model->writes.size() == 1);
  CHECK(f->model->writes[0].content == "L3:0=7;2=7\n");
  auto r = b.read(task("batch"));
  REQUIRE(r);
  CHECK(compare(ways(3, false), *r).clean());
  CHECK_FALSE(compare(ways(4, false), *r).clean());
  // Asking for more ways than are outside exclusive groups.
  auto big = b.apply(task("batch"), ways(10, false));
  REQUIRE(big);
  REQUIRE(failed(*big, "llc.allocations[cache 0]"));
  CHECK(failed(*big, "llc.allocations[cache 0]")->why.code() == errc::insufficient_capacity);
  CHECK(f->model->writes.size() == 1);
}

TEST_CASE("CLOSIDs run out with a clear error; an exclusive (LSE) group carves its ways") {
  auto f = open_fixture("resctrl", true);
  auto& b = *f->b;
  auto full = b.create("lse-cache", qos_class::LSE);
  REQUIRE_FALSE(full);
  CHECK(full.error().code() == errc::insufficient_capacity);
  INFO(full.error().describe());
  CHECK(full.error().message().find("every CLOSID is in use (4") != std::string::npos);
  // The kernel's own ENOSPC says the same (checked by going past the pre-check).
  REQUIRE(b.remove(task("web")));
  auto g = b.create("lse-cache", qos_class::LSE);
  REQUIRE(g);
  CHECK(g->qos == qos_class::LSE);
  CHECK(test::slurp(f->root / "lse-cache/schemata") == "L3:0=4ff;2=4ff\nMB:0=100;2=100\n");  // all but exclusive ways

  auto a = b.apply(*g, ways(2, true));
  REQUIRE(a);
  INFO(report(*a));
  CHECK(a->failed.empty());
  // The default group gave up the two ways below the exclusive ones.
  REQUIRE(changed(*a, "resctrl default group: llc.allocations[cache 0]"));
  CHECK(changed(*a, "resctrl default group: llc.allocations[cache 0]")->after == "0x3f");
  CHECK(changed(*a, "llc.allocations[cache 0]")->after == "0xc0");
  CHECK(changed(*a, "llc.exclusive")->after == "true");
  REQUIRE(f->model->writes.size() == 3);
  CHECK(f->model->writes[0].file == "schemata");
  CHECK(f->model->writes[0].content == "L3:0=3f;2=3f\n");
  CHECK(f->model->writes[1].content == "L3:0=c0;2=c0\n");
  CHECK(f->model->writes[2].file == "lse-cache/mode");
  auto r = b.read(*g);
  REQUIRE(r);
  CHECK(compare(ways(2, true), *r).clean());
  CHECK(r->info.modes.get(resource_kind::llc) == isolation_mode::dedicated);

  // No room for 7 exclusive ways: refused, nothing written (not the mode either).
  auto no = b.apply(task("batch"), ways(7, true));
  REQUIRE(no);
  REQUIRE(failed(*no, "llc.allocations[cache 0]"));
  CHECK(failed(*no, "llc.allocations[cache 0]")->why.code() == errc::insufficient_capacity);
  CHECK(f->model->writes.size() == 3);

  // Leaving exclusive: the mode goes first, the masks stay.
  auto back = b.apply(*g, ways(2, false));
  REQUIRE(back);
  CHECK(back->changed.size() == 1);
  CHECK(changed(*back, "llc.exclusive")->after == "false");
  CHECK(f->model->writes.back().content == "shareable");
}

TEST_CASE("masks, bandwidth steps and units are checked before writing") {
  auto f = open_fixture("resctrl", true);
  auto& b = *f->b;
  for (const auto& [mask, why] : {std::pair{std::uint64_t{0x5}, "not contiguous"}, std::pair{std::uint64_t{0x1}, "min_cbm_bits"},
                                  std::pair{std::uint64_t{0x800}, "outside L3 cbm_mask"},
                                  std::pair{std::uint64_t{0x300}, "held exclusively"}}) {
    quota_spec s;
    s.llc = llc_spec{cache_ways{0}, false, {{0, mask}}, {}};
    auto a = b.apply(task("batch"), s);
    REQUIRE(a);
    REQUIRE(failed(*a, "llc.allocations[cache 0]"));
    INFO(failed(*a, "llc.allocations[cache 0]")->why.describe());
    CHECK(failed(*a, "llc.allocations[cache 0]")->why.message().find(why) != std::string::npos);
  }
  quota_spec missing;
  missing.llc = llc_spec{cache_ways{0}, false, {{1, 0x3}}, {}};  // there is no cache 1 (ids 0 and 2)
  auto ma = b.apply(task("batch"), missing);
  REQUIRE(ma);
  CHECK(failed(*ma, "llc.allocations[cache 1]"));
  quota_spec code;
  code.llc = llc_spec{cache_ways{0}, false, {{0, 0xf}}, {{0, 0x3}}};  // data mask as it is
  auto ca = b.apply(task("batch"), code);
  REQUIRE(ca);
  CHECK(failed(*ca, "llc.code_allocations"));

  for (std::uint64_t v : {55ull, 5ull, 110ull}) {
    quota_spec s;
    s.memory_bandwidth = memory_bandwidth_spec{false, {{0, v}}};
    if (v == 110) {  // beyond 100 percent: validate() refuses the whole spec
      CHECK_FALSE(b.apply(task("batch"), s));
      continue;
    }
    auto a = b.apply(task("batch"), s);
    REQUIRE(a);
    REQUIRE(failed(*a, "memory_bandwidth[domain 0]"));
    CHECK(failed(*a, "memory_bandwidth[domain 0]")->why.message().find("10 + N x 10") != std::string::npos);
  }
  quota_spec mbps;
  mbps.memory_bandwidth = memory_bandwidth_spec{true, {{0, 2048}}};
  auto u = b.apply(task("batch"), mbps);
  REQUIRE(u);
  CHECK(failed(*u, "memory_bandwidth")->why.message().find("mounted without mba_MBps") != std::string::npos);
  CHECK(f->model->writes.empty());

  // Knobs resctrl does not have.
  quota_spec other = ways(4, false);
  other.cpu.quota = limit<microseconds>{std::chrono::microseconds{20000}};
  other.memory.hard_limit = limit<bytes>{bytes{4096}};
  auto o = b.apply(task("batch"), other);
  REQUIRE(o);
  CHECK(o->unsupported == std::vector<std::string>{"cpu.quota", "memory.hard_limit"});
}

TEST_CASE("a write the kernel refuses carries info/last_cmd_status") {
  auto f = open_fixture("resctrl", true);
  f->model->refuse_next = "mask f7 has non-consecutive 1-bits";
  auto a = f->b->apply(task("batch"), ways(3, false));
  REQUIRE(a);
  REQUIRE(failed(*a, "llc.allocations[cache 0]"));
  const auto msg = failed(*a, "llc.allocations[cache 0]")->why.describe();
  INFO(msg);
  CHECK(msg.find("(info/last_cmd_status: mask f7 has non-consecutive 1-bits)") != std::string::npos);
  CHECK(a->changed.empty());
}

TEST_CASE("CDP: code and data masks are read apart and written together") {
  auto f = open_fixture("resctrl-cdp", true);
  auto& b = *f->b;
  CHECK(b.info().cdp);
  CHECK(b.info().num_closids() == 8);
  auto r = b.read(task("app"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  CHECK(r->enforced.llc->allocations == std::vector<cache_allocation>{{0, 0x000ff}, {1, 0x000ff}});
  CHECK(r->enforced.llc->code_allocations == std::vector<cache_allocation>{{0, 0x0ff00}, {1, 0x0ff00}});
  CHECK(r->enforced.llc->ways == cache_ways{8});
  auto a = b.apply(task("app"), ways(4, false));
  REQUIRE(a);
  INFO(report(*a));
  CHECK(a->failed.empty());
  CHECK(changed(*a, "llc.allocations[cache 0]"));
  CHECK(changed(*a, "llc.code_allocations[cache 1]"));
  REQUIRE(f->model->writes.size() == 1);
  CHECK(f->model->writes[0].content == "L3DATA:0=f;1=f\nL3CODE:0=f;1=f\n");
  auto after = b.read(task("app"));
  REQUIRE(after);
  CHECK(compare(ways(4, false), *after).clean());
  // Explicit code masks differ from the data masks.
  quota_spec e;
  e.llc = llc_spec{cache_ways{0}, false, {{0, 0x0000f}}, {{0, 0xf0000}}};
  auto ea = b.apply(task("app"), e);
  REQUIRE(ea);
  CHECK(ea->failed.empty());
  CHECK(f->model->writes.back().content == "L3CODE:0=f0000\n");
  CHECK(compare(e, b.read(task("app")).value()).clean());
}

TEST_CASE("MBps mode: padded reads, MBps writes, sparse masks") {
  auto f = open_fixture("resctrl-mbps", true);
  auto& b = *f->b;
  CHECK(b.info().mba_mbps);
  CHECK(b.info().caches[0].sparse_masks);
  auto r = b.read(task("g1"));
  REQUIRE(r);
  CHECK(r->partial.empty());
  CHECK(r->enforced.memory_bandwidth->mbps);
  CHECK(r->enforced.memory_bandwidth->allocations ==
        std::vector<bandwidth_allocation>{{0, 2048}, {1, 16}, {2, 2048}, {3, 2048}});
  quota_spec s;
  s.memory_bandwidth = memory_bandwidth_spec{true, {{1, 4096}}};
  s.llc = llc_spec{cache_ways{0}, false, {{0, 0x0f0f}}, {}};  // not contiguous: allowed here
  auto a = b.apply(task("g1"), s);
  REQUIRE(a);
  INFO(report(*a));
  CHECK(a->failed.empty());
  CHECK(changed(*a, "memory_bandwidth[domain 1]")->after == "4096 MBps");
  REQUIRE(f->model->writes.size() == 1);
  CHECK(f->model->writes[0].content == "L3:0=f0f\nMB:1=4096\n");
  CHECK(compare(s, b.read(task("g1")).value()).clean());
  quota_spec pct;
  pct.memory_bandwidth = memory_bandwidth_spec{false, {{1, 50}}};
  auto p = b.apply(task("g1"), pct);
  REQUIRE(p);
  CHECK(failed(*p, "memory_bandwidth"));
}

TEST_CASE("planted links out of the root are refused through the backend") {
  test::temp_dir tmp;
  const auto top = test::copy_fixture(tmp.path(), "resctrl-links");
  const auto outside = test::snapshot(top / "outside");
  auto b = resctrl::backend::open(resctrl::options{(top / "sys/fs/resctrl").string(), false});
  REQUIRE(b);
  auto found = (*b)->discover();
  REQUIRE(found);
  std::vector<std::string> names;
  for (const auto& i : *found) names.push_back(i.name);
  CHECK(names == std::vector<std::string>{"evil", "fine"});
  auto r = (*b)->read(task("evil"));
  REQUIRE(r);
  REQUIRE(r->partial.size() == 2);  // schemata and mon_data
  for (const auto& e : r->partial) CHECK(e.code() == errc::unsafe_path);
  CHECK_FALSE(r->enforced.llc);
  auto a = (*b)->apply(task("evil"), ways(2, false));
  REQUIRE_FALSE(a);
  CHECK(a.error().code() == errc::unsafe_path);
  CHECK((*b)->read(task("escape")).error().code() == errc::unsafe_path);
  CHECK((*b)->apply(task("escape"), ways(2, false)).error().code() == errc::unsafe_path);
  CHECK_FALSE((*b)->attach(task("escape"), 1));
  CHECK((*b)->read(task("fine")));
  CHECK(test::snapshot(top / "outside") == outside);
}

TEST_CASE("options from the mount table; a root that is not resctrl") {
  auto o = resctrl::options::parse("resctrl /sys/fs/resctrl resctrl rw,relatime,cdp,mba_MBps 0 0\n", "/x/");
  REQUIRE(o);
  CHECK(o->root == "/x/sys/fs/resctrl");
  CHECK(o->mba_mbps);
  auto none = resctrl::options::parse("proc /proc proc rw 0 0\n");
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == errc::not_found);
  test::temp_dir t;
  auto b = resctrl::backend::open(resctrl::options{t.str(), false});
  REQUIRE_FALSE(b);
  CHECK(b.error().code() == errc::not_found);
  CHECK(b.error().message().find("not a resctrl mount") != std::string::npos);
}
