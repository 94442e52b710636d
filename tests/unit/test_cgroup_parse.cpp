// Mount tables, hierarchy detection and cgroup control file formats.
#include <doctest/doctest.h>

#include "bulkhead/backend/cgroup/files.hpp"
#include "bulkhead/backend/cgroup/mounts.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

namespace {
constexpr std::string_view hybrid_mountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
}  // namespace

TEST_CASE("mountinfo and /proc/mounts forms parse, escapes decoded") {
  auto t = parse_mount_table(
      "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n"
      "37 35 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  REQUIRE(t);
  REQUIRE(t->size() == 2);
  CHECK((*t)[0].mount_point == "/mnt two");
  CHECK((*t)[0].root == "/mnt1");
  CHECK((*t)[0].fstype == "ext3");
  CHECK((*t)[0].source == "/dev/root");
  CHECK((*t)[0].has_option("noatime"));
  CHECK((*t)[0].option_value("errors") == "continue");
  CHECK((*t)[1].has_option("cpuacct"));

  auto m = parse_mount_table("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nsdelegate 0 0\n"
                             "tmpfs /run/a\\134b tmpfs rw 0 0\n");
  REQUIRE(m);
  CHECK((*m)[0].fstype == "cgroup2");
  CHECK((*m)[0].root == "/");
  CHECK((*m)[1].mount_point == "/run/a\\b");
}

TEST_CASE("malformed mount tables are refused with the line number") {
  for (auto bad : {std::string_view("36 35 98:0 / /mnt rw - ext3\n"),                 // too few fields
                   std::string_view("x 35 98:0 / /mnt rw - ext3 /dev/root rw\n"),    // id not a number
                   std::string_view("36 35 98:0 / /mnt\\04 rw - ext3 /dev/root rw\n"),  // truncated escape
                   std::string_view("36 35 98:0 / relative rw - ext3 /dev/root rw\n")}) {
    auto r = parse_mount_table(bad, "mountinfo");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::parse_error);
    CHECK(r.error().message().rfind("mountinfo line 1", 0) == 0);
  }
  auto r = parse_mount_table("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\nbroken line\n", "mounts");
  REQUIRE_FALSE(r);
  CHECK(r.error().message().rfind("mounts line 2", 0) == 0);
}

TEST_CASE("layout detection: unified, legacy, hybrid") {
  auto h = cgroup::mounts::parse(hybrid_mountinfo);
  REQUIRE(h);
  CHECK(h->layout == cgroup::layout::hybrid);
  REQUIRE(h->unified());
  CHECK(h->unified()->mount_point == "/sys/fs/cgroup/unified");
  REQUIRE(h->v1("cpu"));
  CHECK(h->v1("cpu")->mount_point == "/sys/fs/cgroup/cpu");
  CHECK(h->v1("cpuacct")->mount_point == "/sys/fs/cgroup/cpuacct");
  CHECK(h->v1("blkio") == nullptr);
  // The named hierarchy is listed but serves no controller.
  bool named = false;
  for (const auto& x : h->hierarchies) named = named || x.name == "systemd";
  CHECK(named);

  auto u = cgroup::mounts::parse("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n");
  REQUIRE(u);
  CHECK(u->layout == cgroup::layout::unified);
  // Named v1 hierarchy only, plus cgroup2: still unified (no v1 controller).
  auto u2 = cgroup::mounts::parse("cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n"
                                 "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n");
  REQUIRE(u2);
  CHECK(u2->layout == cgroup::layout::unified);

  auto l = cgroup::mounts::parse("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
                                "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpuacct,cpu 0 0\n"  // a bind of the same
                                "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n");
  REQUIRE(l);
  CHECK(l->layout == cgroup::layout::legacy);
  CHECK(l->hierarchies.size() == 2);
  CHECK(l->v1("cpu") == l->v1("cpuacct"));

  auto none = cgroup::mounts::parse("proc /proc proc rw 0 0\n");
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == errc::not_found);
  auto named_only = cgroup::mounts::parse("cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n");
  REQUIRE_FALSE(named_only);
  CHECK(named_only.error().code() == errc::unsupported);
}

TEST_CASE("cpu.max") {
  auto a = cgroup::parse_cpu_max("max 100000\n");
  REQUIRE(a);
  CHECK(a->quota.is_unlimited());
  CHECK(a->period == 100000us);
  auto b = cgroup::parse_cpu_max("20000 50000");
  REQUIRE(b);
  CHECK(b->quota == limit<microseconds>{20000us});
  CHECK(cgroup::format_cpu_max(*a) == "max 100000");
  CHECK(cgroup::format_cpu_max(*b) == "20000 50000");
  for (auto bad : {"", "max", "12x 100000", "10 0", "-1 100000", "1 2 3"}) {
    auto r = cgroup::parse_cpu_max(bad, "web/cpu.max");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("web/cpu.max") != std::string::npos);
  }
}

TEST_CASE("memory values: v2 'max', v1 page-counter maximum") {
  CHECK(cgroup::parse_v2_bytes("max\n", "memory.max").value().is_unlimited());
  CHECK(cgroup::parse_v2_bytes("4096\n", "memory.max").value() == limit<bytes>{bytes{4096}});
  CHECK_FALSE(cgroup::parse_v2_bytes("lots", "memory.max"));
  CHECK(cgroup::parse_v1_bytes("9223372036854771712\n", 4096, "x").value().is_unlimited());
  CHECK(cgroup::parse_v1_bytes("9223372036854710272\n", 65536, "x").value().is_unlimited());  // 64 KiB pages
  CHECK(cgroup::parse_v1_bytes("9223372036854767616\n", 4096, "x").value().is_bounded());
  CHECK(cgroup::parse_v1_bytes("1073741824", 4096, "x").value() == limit<bytes>{bytes{1 << 30}});
  CHECK_FALSE(cgroup::parse_v1_bytes("-1", 4096, "x"));
}

TEST_CASE("keyed files") {
  auto s = cgroup::parse_flat_keyed("usage_usec 10\nnr_throttled 3\n\n", "cpu.stat");
  REQUIRE(s);
  CHECK(s->at("usage_usec") == 10);
  CHECK(s->at("nr_throttled") == 3);
  CHECK_FALSE(cgroup::parse_flat_keyed("oom_kill\n", "memory.events"));
  CHECK_FALSE(cgroup::parse_flat_keyed("oom_kill x\n", "memory.events"));

  auto io = cgroup::parse_nested_keyed("8:16 rbps=2097152 wbps=max riops=max wiops=120\n", "io.max");
  REQUIRE(io);
  CHECK(io->at("8:16").at("rbps") == "2097152");
  CHECK(io->at("8:16").at("wbps") == "max");
  auto bad = cgroup::parse_nested_keyed("8:16 rbps\n", "io.max");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message().find("io.max line 1") != std::string::npos);
  CHECK_FALSE(cgroup::parse_nested_keyed("garbage line\n", "io.stat"));
  CHECK(cgroup::parse_nested_keyed("", "io.max").value().empty());

  auto w = cgroup::parse_io_weight("default 100\n8:16 200\n");
  REQUIRE(w);
  CHECK(w->default_weight == 100);
  CHECK(w->devices.at("8:16") == 200);
  CHECK_FALSE(cgroup::parse_io_weight("8:16 200\n"));  // no default line

  auto d = cgroup::parse_device_values("8:16 2097152\n254:0 5\n", "blkio.throttle.read_bps_device");
  REQUIRE(d);
  CHECK(d->at("254:0") == 5);
  CHECK_FALSE(cgroup::parse_device_values("8:16\n", "x"));
  CHECK_FALSE(cgroup::parse_device_values("sda 5\n", "x"));

  auto st = cgroup::parse_blkio_stat("8:16 Read 1459200\n8:16 Write 314773504\n8:16 Total 3\nTotal 3\n", "x");
  REQUIRE(st);
  CHECK(st->at("8:16").read == 1459200);
  CHECK(st->at("8:16").write == 314773504);

  CHECK(cgroup::parse_device("8:16", "x").value() == "8:16");
  CHECK_FALSE(cgroup::parse_device("vda", "x"));
  CHECK_FALSE(cgroup::parse_device("8:", "x"));
}
