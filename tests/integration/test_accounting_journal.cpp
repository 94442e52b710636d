// The journal on a real directory: durability, group commit, idempotence
// across reopen, rotation and checkpoints, read-only opens, one writer, and
// the accountant's restart. Damage and kill -9 are in tests/crash.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bulkhead/accounting/accountant.hpp"
#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/rollup_json.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {
uuid vm(int i) {
  std::array<std::uint8_t, 16> b{};
  b[0] = 0xab;
  b[15] = static_cast<std::uint8_t>(i);
  b[14] = static_cast<std::uint8_t>(i >> 8);
  return uuid{b};
}
mono_time at(std::int64_t ms) { return mono_time{} + std::chrono::milliseconds(10'000 + ms); }
wall_time wall(std::int64_t ms) { return wall_time{} + std::chrono::milliseconds(1'700'000'000'000 + ms); }

const char* counters[] = {"cpu_time_ns", "disk/vda/read_bytes", "disk/vda/write_bytes", "net/52:54:00:00:00:01/rx_bytes"};

// Appends `rounds` deltas to each of `n` instances x 4 counters, 1 s apart,
// starting after round `from`. Amount of (instance i, counter c, round r) is
// i * 1000 + c * 10 + r.
std::uint64_t amount(int i, int c, int r) { return static_cast<std::uint64_t>(i * 1000 + c * 10 + r); }

struct feeder {
  journal& j;
  std::map<std::pair<int, int>, std::uint32_t> ids{};
  std::map<std::pair<int, int>, std::uint64_t> value{};
  ticket last{};
  std::uint64_t dups = 0;
  void run(int n, int from, int rounds) {
    for (int r = from; r < from + rounds; ++r)
      for (int i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) {
          auto& id = ids[{i, c}];
          if (r == from && !ids.count({i, -c - 1})) {
            id = j.define(series_key{"test:///default@boot", vm(i), incarnation{1}, counters[c], 64, series_kind::usage},
                          instance_labels{"vm" + std::to_string(i), std::string(i % 2 ? "odd" : "even"), qos_class::LS})
                     .value();
            ids[{i, -c - 1}] = 1;
          }
          auto& v = value[{i, c}];
          // Recompute from scratch so a rerun of the same rounds resubmits
          // the very same deltas.
          v = 0;
          for (int k = 0; k < r; ++k) v += amount(i, c, k);
          const auto a = amount(i, c, r);
          auto res = j.append(id, delta{at(r * 1000), at((r + 1) * 1000), wall((r + 1) * 1000), a, v + a, 0});
          REQUIRE(res);
          if (res->duplicate) ++dups;
          last = res->t;
        }
  }
};

u128 expected_cpu(int n, int rounds) {
  u128 s = 0;
  for (int i = 0; i < n; ++i)
    for (int r = 0; r < rounds; ++r) s += amount(i, 0, r);
  return s;
}

std::map<std::string, std::string> dir_state(const fs::path& p) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(p)) {
    std::ostringstream s;
    struct stat st{};
    ::stat(e.path().c_str(), &st);
    s << st.st_size << ':' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << ':';
    if (e.is_regular_file()) s << (std::ostringstream() << std::ifstream(e.path(), std::ios::binary).rdbuf()).str();
    m[fs::relative(e.path(), p).string()] = s.str();
  }
  return m;
}
}  // namespace

TEST_CASE("appended deltas are durable once acknowledged and survive reopen exactly") {
  test::temp_dir t;
  rollup before;
  {
    auto j = journal::open(t.str(), {.batch_records = 64, .max_delay = std::chrono::milliseconds(1)});
    REQUIRE(j);
    CHECK((*j)->recovery().records == 0);
    feeder f{**j};
    f.run(10, 0, 20);
    REQUIRE((*j)->wait(f.last));
    CHECK((*j)->durable_seq() >= f.last.seq);
    CHECK((*j)->last_seq() == 10 * 4 + 10 * 4 * 20);  // definitions + deltas
    const auto st = (*j)->stats();
    CHECK(st.appended == 840);
    CHECK(st.batches >= 840 / 64);
    CHECK(st.batches < 840);  // grouped: far fewer fdatasyncs than records
    before = (*j)->snapshot();
    CHECK(before.total().cpu_time_ns == expected_cpu(10, 20));
    CHECK(before.total().deltas == 800);
  }
  auto j = journal::open(t.str());
  REQUIRE(j);
  CHECK((*j)->recovery().records == 840);
  CHECK((*j)->recovery().last_seq == 840);
  CHECK_FALSE((*j)->recovery().torn_segment);
  CHECK((*j)->snapshot() == before);
  // Bytes per delta record on disk.
  std::uint64_t size = 0;
  for (const auto& e : fs::directory_iterator(t.path()))
    if (e.path().extension() == ".bhj") size += e.file_size();
  MESSAGE("journal bytes for 840 records: ", size);
  CHECK(size < 840 * 48);
}

TEST_CASE("a resubmitted delta is counted, not accounted, also after reopen") {
  test::temp_dir t;
  rollup before;
  {
    auto j = journal::open(t.str());
    REQUIRE(j);
    feeder f{**j};
    f.run(3, 0, 5);
    REQUIRE((*j)->flush());
    f.run(3, 0, 5);  // the same deltas again, same session
    CHECK(f.dups == 60);
    CHECK((*j)->stats().duplicates == 60);
    before = (*j)->snapshot();
  }
  auto j = journal::open(t.str());
  REQUIRE(j);
  feeder f{**j};
  f.run(3, 0, 5);  // after reopen: the index was rebuilt from disk
  CHECK(f.dups == 60);
  REQUIRE((*j)->flush());
  CHECK((*j)->snapshot() == before);
  CHECK((*j)->snapshot().total().cpu_time_ns == expected_cpu(3, 5));
  // An overlapping delta is refused, not half-counted.
  auto bad = (*j)->append(f.ids[{0, 0}], delta{at(4500), at(6000), wall(6000), 1, 1, 0});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == errc::conflict);
  // Gaps are idempotent too.
  gap_record g{"test:///default@boot", vm(0), at(0), at(1000), wall(1000), 1, "timeout"};
  CHECK_FALSE((*j)->append_gap(g)->duplicate);
  CHECK((*j)->append_gap(g)->duplicate);
}

TEST_CASE("segments rotate; a checkpoint retires them without changing any total") {
  test::temp_dir t;
  journal_options o{.batch_records = 32, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 4096};
  rollup before;
  {
    auto j = journal::open(t.str(), o);
    REQUIRE(j);
    feeder f{**j};
    f.run(5, 0, 30);
    REQUIRE((*j)->flush());
    std::size_t segs = 0;
    for (const auto& e : fs::directory_iterator(t.path())) segs += e.path().extension() == ".bhj";
    CHECK(segs > 3);
    before = (*j)->snapshot();
    REQUIRE((*j)->checkpoint());
    CHECK((*j)->snapshot() == before);
    CHECK((*j)->stats().segments_retired == segs);
    std::size_t after = 0, ckpts = 0;
    for (const auto& e : fs::directory_iterator(t.path())) {
      after += e.path().extension() == ".bhj";
      ckpts += e.path().extension() == ".bhc";
    }
    CHECK(after == 1);  // the fresh segment after the checkpoint
    CHECK(ckpts == 1);
    f.run(5, 30, 10);  // continue after the checkpoint
    REQUIRE((*j)->wait(f.last));
    REQUIRE((*j)->checkpoint());  // a second checkpoint replaces the first
    f.run(5, 40, 2);
    REQUIRE((*j)->flush());
    before = (*j)->snapshot();
  }
  auto j = journal::open(t.str(), o);
  REQUIRE(j);
  CHECK((*j)->recovery().checkpoint_seq > 0);
  CHECK((*j)->recovery().records == 5 * 4 * 2);
  CHECK((*j)->snapshot() == before);
  CHECK(before.total().cpu_time_ns == expected_cpu(5, 42));
  // The dedup index survived compaction: rounds before the checkpoint are duplicates.
  feeder f{**j};
  f.run(5, 0, 42);
  CHECK(f.dups == 5 * 4 * 42);
}

TEST_CASE("open_read_only never changes the directory and sees what the writer made durable") {
  test::temp_dir t;
  auto j = journal::open(t.str(), {.batch_records = 16, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 4096});
  REQUIRE(j);
  feeder f{**j};
  f.run(4, 0, 10);
  REQUIRE((*j)->flush());
  const auto state = dir_state(t.path());
  auto v = journal::open_read_only(t.str());
  REQUIRE(v);
  CHECK(dir_state(t.path()) == state);
  CHECK(v->totals == (*j)->snapshot());
  CHECK_FALSE(v->report.corruption);
  // The call the inspect tool makes: per instance, the fixed fields.
  auto per = v->totals.by_instance();
  REQUIRE(per.size() == 4);
  CHECK(per[0].totals.cpu_time_ns > 0);
  CHECK(per[0].totals.disk_read_bytes > 0);
  CHECK(per[0].totals.net_rx_bytes > 0);
  CHECK(per[0].labels.name == "vm0");
  auto js = nlohmann::json(v->totals);
  CHECK(js["instances"].size() == 4);
  // A second writer is refused while the first holds the directory.
  auto j2 = journal::open(t.str());
  REQUIRE_FALSE(j2);
  CHECK(j2.error().code() == errc::conflict);
  // A read-only open of a directory that does not exist says so.
  auto none = journal::open_read_only((t.path() / "nope").string());
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == errc::not_found);
  CHECK(none.error().describe().find("nope") != std::string::npos);
}

TEST_CASE("bad options and unknown series are refused with the input named") {
  test::temp_dir t;
  auto o = journal::open(t.str(), {.batch_records = 0});
  REQUIRE_FALSE(o);
  CHECK(o.error().message().find("batch_records") != std::string::npos);
  auto small = journal::open(t.str(), {.segment_bytes = journal_options::min_segment_bytes - 1});
  REQUIRE_FALSE(small);
  CHECK(small.error().code() == errc::invalid_argument);
  CHECK(small.error().message().find("segment_bytes 4095 is below the smallest, 4096") != std::string::npos);
  REQUIRE(journal::open(t.str(), {.segment_bytes = journal_options::min_segment_bytes}));
  auto j = journal::open(t.str());
  REQUIRE(j);
  auto r = (*j)->append(7, delta{at(0), at(1), wall(1), 1, 1, 0});
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == errc::not_found);
  auto w = (*j)->wait(ticket{100});
  REQUIRE_FALSE(w);
  CHECK(w.error().code() == errc::invalid_argument);
}

TEST_CASE("the accountant meters a host reading into the journal and resumes after a restart") {
  test::temp_dir t;
  const auto u = vm(1);
  const auto reading = [&](std::int64_t s, std::uint64_t run, std::int64_t cpu_s, bool failed = false) {
    host_reading h;
    h.source = "test:///default";
    if (failed) {
      h.failures.push_back(instance_failure{u, "vm1", error(errc::timeout, "virDomainGetInfo timed out")});
      instance_reading other;  // another instance read fine at that time
      other.info.id = instance_id{vm(2), incarnation{1}};
      other.usage.read_at = at(s * 1000);
      other.usage.wall = wall(s * 1000);
      other.usage.cpu_time = std::chrono::seconds(s);
      h.instances.push_back(other);
      return h;
    }
    instance_reading ir;
    ir.info.id = instance_id{u, incarnation{run}};
    ir.info.name = "vm1";
    ir.info.tenant = "acme";
    ir.info.qos = qos_class::LS;
    ir.enforced.cpu.vcpus = 2;
    ir.enforced.memory.max = bytes{1 << 30};
    ir.usage.read_at = at(s * 1000);
    ir.usage.wall = wall(s * 1000);
    ir.usage.cpu_time = std::chrono::seconds(cpu_s);
    h.instances.push_back(ir);
    return h;
  };
  {
    result<std::shared_ptr<journal>> j = journal::open(t.str());
    REQUIRE(j);
    auto a = accountant::make(*j, {.source_suffix = "@boot1"});
    REQUIRE(a);
    auto r0 = a->ingest(reading(0, 5, 100));
    REQUIRE(r0);
    CHECK(r0->baselines == 3);  // cpu, vcpus, memory
    CHECK(r0->accounted == 0);
    auto r1 = a->ingest(reading(1, 5, 101));
    REQUIRE(r1);
    CHECK(r1->accounted == 3);
    REQUIRE((*j)->wait(*r1->last));
    auto rf = a->ingest(reading(2, 5, 0, true));
    REQUIRE(rf);
    CHECK(rf->failures == 1);
  }
  // Restart of the agent: the meter resumes from the journal, so the second
  // between the last record and the next sample is not lost.
  result<std::shared_ptr<journal>> j = journal::open(t.str());
  REQUIRE(j);
  auto a = accountant::make(*j, {.source_suffix = "@boot1"});
  REQUIRE(a);
  auto r3 = a->ingest(reading(3, 5, 104));
  REQUIRE(r3);
  CHECK(r3->baselines == 0);
  CHECK(r3->accounted == 3);
  CHECK(r3->gaps == 0);  // the failure was reported to the old meter, which is gone
  // A new incarnation closes the old one and starts from a baseline.
  auto r4 = a->ingest(reading(4, 6, 1));
  REQUIRE(r4);
  CHECK(r4->closed == 1);
  CHECK(r4->baselines == 3);
  auto r5 = a->ingest(reading(5, 6, 3));
  REQUIRE(r5);
  REQUIRE((*j)->wait(*r5->last));
  auto inst = (*j)->snapshot().instance(u);
  REQUIRE(inst);
  CHECK(inst->totals.cpu_time_ns == static_cast<u128>(4 + 2) * 1'000'000'000);
  CHECK(inst->incarnations == 2);
  // vCPUs: 2 held over 3 s (incarnation 5) + 1 s (incarnation 6).
  CHECK(inst->totals.vcpu_reserved_ns == static_cast<u128>(2) * 4'000'000'000);
  CHECK(inst->totals.memory_reserved_byte_ns == static_cast<u128>(1 << 30) * 4'000'000'000);
  CHECK(*inst->labels.tenant == "acme");
}

TEST_CASE("a gap reported to the accountant is journaled when the next good reading closes it") {
  test::temp_dir t;
  result<std::shared_ptr<journal>> j = journal::open(t.str());
  REQUIRE(j);
  auto a = accountant::make(*j);
  REQUIRE(a);
  host_reading h;
  h.source = "test:///default";
  instance_reading ir;
  ir.info.id = instance_id{vm(3), incarnation{1}};
  ir.usage.read_at = at(0);
  ir.usage.wall = wall(0);
  ir.usage.cpu_time = std::chrono::seconds(1);
  h.instances.push_back(ir);
  REQUIRE(a->ingest(h));
  host_reading bad;
  bad.source = "test:///default";
  bad.failures.push_back(instance_failure{vm(3), "x", error(errc::vanished, "domain vanished mid-read")});
  instance_reading other;  // failures are stamped with the reading's newest sample time
  other.info.id = instance_id{vm(4), incarnation{1}};
  other.usage.read_at = at(2500);
  other.usage.wall = wall(2500);
  bad.instances.push_back(other);
  auto rb = a->ingest(bad);
  REQUIRE(rb);
  CHECK(rb->failures == 1);
  h.instances[0].usage.read_at = at(5000);
  h.instances[0].usage.wall = wall(5000);
  h.instances[0].usage.cpu_time = std::chrono::seconds(3);
  auto rg = a->ingest(h);
  REQUIRE(rg);
  CHECK(rg->gaps == 1);
  REQUIRE((*j)->flush());
  auto s = (*j)->snapshot();
  REQUIRE(s.gaps().size() == 1);
  CHECK(s.gaps()[0].reason.find("vanished") != std::string::npos);
  CHECK(s.gaps()[0].start == at(0));
  CHECK(s.gaps()[0].end == at(5000));
  CHECK(s.instance(vm(3))->totals.gaps == 1);
  CHECK(s.instance(vm(3))->totals.cpu_time_ns == 2'000'000'000);
}
