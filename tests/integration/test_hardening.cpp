// Bad inputs (issue 9, docs/errors.md): each case feeds bulkhead one kind of
// bad input and checks that the error names the input (the file, field or
// key), that nothing crashes, and that everything read or accepted before
// the bad input is kept (the other knobs of the same group read as they did
// from the clean fixture).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "bulkhead/backend/cgroup/backend.hpp"
#include "bulkhead/backend/cgroup/files.hpp"
#include "bulkhead/backend/resctrl/backend.hpp"
#include "bulkhead/backend/task_id.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/export/desired_spec.hpp"
#include "cgroup_fixture_support.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;

namespace {

struct v2_fixture {
  test::temp_dir tmp{"bulkhead-hardening"};
  fs::path root;
  std::unique_ptr<cgroup::backend> b;
  fs::path web() const { return root / "sys/fs/cgroup/bulkhead/web"; }
};

// The cgroup-v2 fixture; `patch` runs on the copy before the backend opens.
template <class Patch>
std::unique_ptr<v2_fixture> open_v2(Patch&& patch) {
  auto f = std::make_unique<v2_fixture>();
  f->root = test::copy_fixture(f->tmp.path(), "cgroup-v2");
  patch(*f);
  auto text = read_text_file((f->root / "mountinfo").string());
  REQUIRE(text);
  auto mounts = cgroup::mounts::parse(*text, "mountinfo");
  REQUIRE(mounts);
  cgroup::options o;
  o.fs_root = f->root.string();
  o.mounts = *mounts;
  o.parent = "bulkhead";
  o.page_size = 4096;
  auto b = cgroup::backend::open(o);
  if (!b) FAIL(b.error().describe());
  f->b = std::move(*b);
  return f;
}

instance_info web_task() {
  instance_info i;
  i.name = "web";
  i.id.uuid = task_uuid(i.name);
  return i;
}

instance_reading clean_reading() {
  auto f = open_v2([](v2_fixture&) {});
  auto r = f->b->read(web_task());
  REQUIRE(r);
  REQUIRE(r->partial.empty());
  return *r;
}

// Reads "web" with one file spoiled: exactly one partial error, naming
// `file`; the memory knobs (or, when the file is a memory file, the cpu
// knobs) and the usage counters of other files read as from the clean tree.
template <class Patch>
error read_spoiled(const std::string& file, Patch&& patch) {
  const auto clean = clean_reading();
  auto f = open_v2(patch);
  auto r = f->b->read(web_task());
  REQUIRE(r);
  INFO(file);
  REQUIRE(r->partial.size() == 1);
  const auto& e = r->partial.front();
  MESSAGE(e.describe());  // the text docs/errors.md quotes
  CHECK(e.describe().find("web/" + file) != std::string::npos);
  if (file.starts_with("memory.")) {
    CHECK(r->enforced.cpu == clean.enforced.cpu);
    CHECK(r->usage.cpu_time == clean.usage.cpu_time);
  } else {
    CHECK(r->enforced.memory == clean.enforced.memory);
    CHECK(r->usage.memory_current == clean.usage.memory_current);
  }
  CHECK(r->enforced.disks == clean.enforced.disks);
  return e;
}

}  // namespace

TEST_CASE("a vanished control file: its knobs are reported unsupported, never unlimited; the group's other files are read") {
  // A control file that is not there is an interface the kernel does not
  // offer this group (controller not enabled in the parent's
  // cgroup.subtree_control, or an older kernel: Documentation/admin-guide/
  // cgroup-v2.rst, "Enabling and Disabling"), so its knobs are unsupported.
  const auto clean = clean_reading();
  auto f = open_v2([](v2_fixture& fx) { fs::remove(fx.web() / "cpu.max"); });
  auto r = f->b->read(web_task());
  REQUIRE(r);
  CHECK(r->partial.empty());
  const auto has = [&](const std::string& k) {
    return std::find(r->unsupported.begin(), r->unsupported.end(), k) != r->unsupported.end();
  };
  CHECK(has("cpu.quota"));
  CHECK(has("cpu.period"));
  CHECK_FALSE(r->enforced.cpu.quota.has_value());
  CHECK(r->enforced.cpu.weight == clean.enforced.cpu.weight);
  CHECK(r->enforced.memory == clean.enforced.memory);
  CHECK(r->usage.cpu_time == clean.usage.cpu_time);
  CHECK(r->enforced.disks == clean.enforced.disks);
}

TEST_CASE("an unreadable control file (a directory where a file should be) is an error naming it") {
  read_spoiled("memory.max", [](v2_fixture& f) {
    fs::remove(f.web() / "memory.max");
    fs::create_directory(f.web() / "memory.max");
  });
}

TEST_CASE("\"max\" where a number is expected is an error naming the file") {
  auto e = read_spoiled("cpu.weight", [](v2_fixture& f) { test::spit(f.web() / "cpu.weight", "max\n"); });
  CHECK(e.describe().find("'max'") != std::string::npos);
}

TEST_CASE("a quota of 2^64 bytes overflows: an error naming the file; 2^64-1 is the largest accepted") {
  auto e = read_spoiled("memory.max", [](v2_fixture& f) { test::spit(f.web() / "memory.max", "18446744073709551616\n"); });
  CHECK(e.code() == errc::overflow);
  auto top = cgroup::parse_v2_bytes("18446744073709551615\n", "memory.max");
  REQUIRE(top);
  CHECK(*top == limit<bytes>{bytes::max()});
  // In a desired spec: 2^64-1 is a value; one more is refused, naming the field.
  auto ok = parse_desired_specs(
      R"({"version": 1, "instances": {"web": {"memory": {"hard_limit_bytes": 18446744073709551615}}}})", "d.json");
  CHECK(ok);
  auto over = parse_desired_specs(
      R"({"version": 1, "instances": {"web": {"memory": {"hard_limit_bytes": 18446744073709551616}}}})", "d.json");
  REQUIRE_FALSE(over);
  INFO(over.error().describe());
  CHECK(over.error().describe().find("d.json") != std::string::npos);
  CHECK(over.error().describe().find("hard_limit_bytes") != std::string::npos);
}

TEST_CASE("zero and negative periods and quotas in cpu.max are errors naming the file") {
  for (std::string bad : {"50000 0\n", "50000 -100000\n", "-1 100000\n"}) {
    INFO(bad);
    auto e = read_spoiled("cpu.max", [&](v2_fixture& f) { test::spit(f.web() / "cpu.max", bad); });
    CHECK(e.describe().find("cpu.max") != std::string::npos);
  }
  // In a desired spec: a negative or zero period is refused, naming the field.
  for (std::string bad : {"0", "-100000"}) {
    auto r = parse_desired_specs(R"({"version": 1, "instances": {"web": {"cpu": {"period_us": )" + bad + "}}}}",
                                      "d.json");
    REQUIRE_FALSE(r);
    INFO(r.error().describe());
    CHECK(r.error().describe().find("d.json") != std::string::npos);
    // Refused by the parser (negative: "period_us") or by validate()
    // (zero: "cpu.period ... outside 1000..1000000 us"), naming the field.
    CHECK(r.error().describe().find("period") != std::string::npos);
  }
}

TEST_CASE("a value out of range in a control file is an error naming it") {
  auto e = read_spoiled("memory.events", [](v2_fixture& f) {
    test::spit(f.web() / "memory.events", "low 0\nhigh 99999999999999999999\nmax 0\noom 0\noom_kill 0\n");
  });
  CHECK(e.code() == errc::overflow);
}

TEST_CASE("non-UTF-8 and path-like names in a desired spec are refused naming the file and key; good keys are kept") {
  for (std::string bad : {"\xff\xfe", "a/b", ".."}) {
    INFO(bad);
    const std::string text = "{\"version\": 1, \"instances\": {\"ok\": {\"blkio_weight\": 500}, \"" + bad + "\": {}}}";
    auto r = parse_desired_specs(text, "d.json");
    if (bad == "\xff\xfe") {
      // nlohmann::json refuses invalid UTF-8 in strings itself.
      REQUIRE_FALSE(r);
      CHECK(r.error().describe().find("d.json") != std::string::npos);
      continue;
    }
    // '/' and '..' are plain names here (a desired spec names instances, not
    // paths); they become paths only through validate_name, which refuses them.
    REQUIRE(r);
    CHECK(r->contains("ok"));
    auto n = validate_name(bad, "cgroup name");
    REQUIRE_FALSE(n);
    CHECK(n.error().message().rfind("cgroup name", 0) == 0);
  }
}

TEST_CASE("a group name with / or .. is refused by create, naming it; existing groups stay") {
  auto f = open_v2([](v2_fixture&) {});
  for (std::string bad : {"../escape", "a/b", "..", "\xff"}) {
    INFO(bad);
    auto r = f->b->create(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().describe().find("name") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(f->root / "sys/fs/cgroup/escape"));
  auto found = f->b->discover();
  REQUIRE(found);
  CHECK(found->size() == 3);
}

TEST_CASE("a spec that exceeds the host: memory above the kernel maximum fails that knob; the knobs that fit apply") {
  auto f = open_v2([](v2_fixture&) {});
  quota_spec s;
  s.memory.high = limit<bytes>{bytes{1ull << 63}};     // above the page-counter maximum
  s.cpu.weight = 200;                                  // fits: applied
  auto a = f->b->apply(web_task(), s);
  REQUIRE(a);
  std::string all;
  for (const auto& c : a->failed) all += c.knob + ": " + c.why.describe() + "\n";
  INFO(all);
  CHECK(all.find("memory.high") != std::string::npos);
  CHECK(all.find("maximum") != std::string::npos);
  CHECK(test::slurp(f->web() / "cpu.weight") == "200\n");
}

TEST_CASE("resctrl info out of range (min_cbm_bits wider than cbm_mask) is refused at open, naming the file") {
  test::temp_dir tmp{"bulkhead-hardening"};
  const auto top = test::copy_fixture(tmp.path(), "resctrl");
  const auto root = top / "sys/fs/resctrl";
  {
    auto good = resctrl::backend::open(resctrl::options{root.string(), false});
    REQUIRE(good);
  }
  test::spit(root / "info/L3/min_cbm_bits", "99\n");
  auto b = resctrl::backend::open(resctrl::options{root.string(), false});
  REQUIRE_FALSE(b);
  MESSAGE(b.error().describe());
  CHECK(b.error().code() == errc::parse_error);
  CHECK(b.error().describe().find("info/L3/min_cbm_bits") != std::string::npos);
  CHECK(test::slurp(root / "web/schemata") == test::slurp(test::fixture("resctrl") / "sys/fs/resctrl/web/schemata"));
}
