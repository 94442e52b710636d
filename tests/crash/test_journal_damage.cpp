// Damaged journals (suite `crash`): a torn tail, a flipped bit in the middle,
// a truncated header, a full disk. Each gives its documented outcome
// (docs/journal-format.md, "Recovery") and loses nothing acknowledged.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bulkhead/accounting/journal.hpp"
#include "test_support.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {
series_key key(int i) {
  std::array<std::uint8_t, 16> b{};
  b[0] = 0xdd;
  b[15] = static_cast<std::uint8_t>(i);
  return series_key{"damage@boot", uuid{b}, incarnation{1}, "cpu_time_ns", 64, series_kind::usage};
}
delta nth(std::uint64_t k) {
  const auto s = mono_time{} + std::chrono::seconds(10 + k);
  return delta{s, s + std::chrono::seconds(1), wall_time{} + std::chrono::seconds(1'700'000'000 + k), 100 + k % 7,
               0, 0};
}

// Writes `n` deltas to `series` series (round robin), durable; returns the
// totals. Values are consistent so implied end values are used.
struct writer {
  std::unique_ptr<journal> j;
  std::vector<std::uint32_t> ids;
  std::vector<std::uint64_t> value;
  std::vector<std::uint64_t> next;
  std::uint64_t appended = 0;
  explicit writer(const std::string& dir, journal_options o = {}) : j(journal::open(dir, o).value()) {}
  result<ticket> add(int series) {
    while (ids.size() <= static_cast<std::size_t>(series)) {
      ids.push_back(j->define(key(static_cast<int>(ids.size()))).value());
      value.push_back(0);
      next.push_back(0);
    }
    const auto s = static_cast<std::size_t>(series);
    auto d = nth(next[s]);
    d.end_value = value[s] + d.amount;
    auto r = j->append(ids[s], d);
    if (!r) return fail(std::move(r.error()));
    value[s] += d.amount;
    ++next[s];
    ++appended;
    return r->t;
  }
  void fill(int n, int series = 4) {
    for (int i = 0; i < n; ++i) REQUIRE(add(i % series));
    REQUIRE(j->flush());
  }
};

std::vector<fs::path> segments(const fs::path& dir) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".bhj") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}
std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary | std::ios::trunc) << s; }
std::map<std::string, std::string> dir_state(const fs::path& p) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(p)) m[fs::relative(e.path(), p).string()] = e.is_regular_file() ? read(e.path()) : "dir";
  return m;
}
// Offsets of the record boundaries of a segment file (header 32, then
// 16-byte record headers with the payload length in the low 24 bits).
std::vector<std::size_t> record_offsets(const std::string& seg) {
  std::vector<std::size_t> v;
  std::size_t off = 32;
  while (off + 16 <= seg.size()) {
    v.push_back(off);
    std::uint32_t lt = 0;
    for (int i = 3; i >= 0; --i) lt = lt << 8 | static_cast<unsigned char>(seg[off + 4 + static_cast<std::size_t>(i)]);
    off += 16 + (lt & 0xFFFFFF);
  }
  return v;
}
}  // namespace

TEST_CASE("a torn tail is cut at the last whole record; everything acknowledged stays") {
  test::temp_dir t;
  rollup before;
  std::string tail_record;
  {
    writer w(t.str());
    w.fill(100);
    before = w.j->snapshot();
    // What a batch in flight looks like when the process dies mid-write: one
    // more record, written only in part.
    REQUIRE(w.add(0));
    REQUIRE(w.j->flush());
  }
  auto seg = segments(t.path()).back();
  auto bytes = read(seg);
  const auto offs = record_offsets(bytes);
  const auto last = offs.back();
  for (std::size_t keep : {std::size_t{5}, std::size_t{16}, bytes.size() - last - 1}) {
    write(seg, bytes.substr(0, last + keep));
    auto v = journal::open_read_only(t.str());
    REQUIRE(v);
    CHECK(v->totals == before);
    CHECK(v->report.torn_bytes == keep);
    CHECK_FALSE(v->report.corruption);
    auto j = journal::open(t.str());
    REQUIRE(j);
    CHECK((*j)->recovery().torn_segment == seg.filename().string());
    CHECK((*j)->recovery().torn_bytes == keep);
    CHECK((*j)->snapshot() == before);
    j->reset();
    CHECK(fs::file_size(seg) == last);  // cut
  }
  // What a power cut leaves (issue 12): the first part of the record, then
  // zeros to the end of the block. Cut on the first writable open.
  for (std::size_t keep : {std::size_t{6}, std::size_t{20}, bytes.size() - last - 4}) {
    CAPTURE(keep);
    write(seg, bytes.substr(0, last + keep) + std::string(4096 - (last + keep) % 4096, '\0'));
    const auto size = fs::file_size(seg);
    auto v = journal::open_read_only(t.str());
    REQUIRE(v);
    CHECK_FALSE(v->report.corruption);
    CHECK(v->totals == before);
    auto j = journal::open(t.str());
    REQUIRE_MESSAGE(j, (j ? std::string() : j.error().describe()));
    CHECK((*j)->recovery().torn_bytes == size - last);
    CHECK((*j)->recovery().quarantined.empty());
    CHECK((*j)->snapshot() == before);
    j->reset();
    CHECK(fs::file_size(seg) == last);
  }
  // Zeros where a crash left allocated but unwritten blocks: also a torn tail.
  write(seg, bytes.substr(0, last) + std::string(300, '\0'));
  auto j = journal::open(t.str());
  REQUIRE(j);
  CHECK((*j)->recovery().torn_bytes == 300);
  CHECK((*j)->snapshot() == before);
  // The journal goes on after the cut.
  auto r = (*j)->append(0, nth(25));
  REQUIRE(r);
  CHECK_FALSE(r->duplicate);
  REQUIRE((*j)->wait(r->t));
}

TEST_CASE("a flipped bit in the middle stops recovery with the segment and offset named; the rest is quarantined") {
  test::temp_dir t;
  journal_options o{.batch_records = 16, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 4096};
  { writer(t.str(), o).fill(600); }
  auto segs = segments(t.path());
  REQUIRE(segs.size() >= 3);
  const auto victim = segs[1];
  auto bytes = read(victim);
  const auto offs = record_offsets(bytes);
  REQUIRE(offs.size() > 10);
  const auto bad_off = offs[offs.size() / 2];
  bytes[bad_off + 20] ^= 0x04;  // one bit of a payload
  write(victim, bytes);
  // What the records before it hold: replay a copy cut there.
  rollup want;
  {
    test::temp_dir c;
    fs::copy_file(segs[0], c.path() / segs[0].filename());
    write(c.path() / victim.filename(), bytes.substr(0, bad_off));
    want = journal::open_read_only(c.str())->totals;
  }
  // Read-only: reports it, changes nothing.
  const auto state = dir_state(t.path());
  auto v = journal::open_read_only(t.str());
  REQUIRE(v);
  REQUIRE(v->report.corruption);
  CHECK(v->report.corruption->code() == errc::corrupt);
  const auto msg = v->report.corruption->message();
  CHECK(msg.find(victim.filename().string()) != std::string::npos);
  CHECK(msg.find("offset " + std::to_string(bad_off)) != std::string::npos);
  CHECK(msg.find("CRC mismatch") != std::string::npos);
  CHECK(v->totals == want);
  CHECK(dir_state(t.path()) == state);
  // Writer: fails naming segment and offset, after quarantining the rest.
  auto j = journal::open(t.str(), o);
  REQUIRE_FALSE(j);
  CHECK(j.error().code() == errc::corrupt);
  const auto e = j.error().describe();
  MESSAGE(e);
  CHECK(e.find(victim.filename().string()) != std::string::npos);
  CHECK(e.find("offset " + std::to_string(bad_off)) != std::string::npos);
  CHECK(e.find("quarantine") != std::string::npos);
  const auto q = t.path() / "quarantine" / (victim.filename().string() + ".from-" + std::to_string(bad_off));
  REQUIRE(fs::exists(q));
  CHECK(read(q) == bytes.substr(bad_off));  // never silently dropped
  for (std::size_t i = 2; i < segs.size(); ++i) {
    CHECK_FALSE(fs::exists(segs[i]));
    CHECK(fs::exists(t.path() / "quarantine" / segs[i].filename()));
  }
  CHECK(fs::file_size(victim) == bad_off);
  // Opening again continues from the records before it, and says what is in quarantine.
  auto j2 = journal::open(t.str(), o);
  REQUIRE(j2);
  CHECK((*j2)->snapshot() == want);
  CHECK((*j2)->recovery().quarantined.size() == segs.size() - 1);
}

TEST_CASE("a flipped bit in the very last record is corruption, not a torn tail") {
  test::temp_dir t;
  { writer(t.str()).fill(50); }
  auto seg = segments(t.path()).back();
  auto bytes = read(seg);
  // The record ends in a zero byte of its own (a wall-clock adjustment of 0):
  // a whole record ends in at most 3 zeros, so this is not a torn tail.
  CHECK(bytes.back() == '\0');
  bytes[bytes.size() - 2] ^= 0x01;
  write(seg, bytes);
  auto j = journal::open(t.str());
  REQUIRE_FALSE(j);
  CHECK(j.error().code() == errc::corrupt);
  CHECK(j.error().describe().find("CRC mismatch") != std::string::npos);
}

TEST_CASE("a truncated segment header: harmless at the end, corruption in the middle") {
  test::temp_dir t;
  journal_options o{.batch_records = 8, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 4096};
  rollup before;
  {
    writer w(t.str(), o);
    w.fill(600);
    before = w.j->snapshot();
  }
  auto segs = segments(t.path());
  REQUIRE(segs.size() >= 3);
  // A last segment shorter than its header holds no record: it is moved to
  // quarantine and the journal opens with every total intact.
  const auto extra = t.path() / "segment-00000000000099999999.bhj";
  write(extra, std::string("BULKJRNL\x01", 9));
  {
    auto j = journal::open(t.str(), o);
    REQUIRE(j);
    CHECK((*j)->snapshot() == before);
    CHECK((*j)->recovery().torn_segment == extra.filename().string());
    CHECK_FALSE(fs::exists(extra));
    CHECK(fs::exists(t.path() / "quarantine" / extra.filename()));
  }
  // A middle segment with a cut header: recovery stops before it.
  write(segs[1], read(segs[1]).substr(0, 20));
  auto v = journal::open_read_only(t.str());
  REQUIRE(v);
  REQUIRE(v->report.corruption);
  CHECK(v->report.corruption->message().find(segs[1].filename().string() + "' offset 0") != std::string::npos);
  CHECK(v->report.corruption->message().find("header cut short") != std::string::npos);
  auto j = journal::open(t.str(), o);
  REQUIRE_FALSE(j);
  CHECK(j.error().code() == errc::corrupt);
  CHECK(fs::exists(t.path() / "quarantine" / segs[1].filename()));
}

TEST_CASE("a corrupt checkpoint is an error, never silently skipped") {
  test::temp_dir t;
  {
    writer w(t.str());
    w.fill(40);
    REQUIRE(w.j->checkpoint());
    w.fill(4);
  }
  fs::path ck;
  for (const auto& e : fs::directory_iterator(t.path()))
    if (e.path().extension() == ".bhc") ck = e.path();
  auto b = read(ck);
  b[40] ^= 0x10;
  write(ck, b);
  auto j = journal::open(t.str());
  REQUIRE_FALSE(j);
  CHECK(j.error().code() == errc::corrupt);
  CHECK(j.error().describe().find(ck.filename().string()) != std::string::npos);
  CHECK_FALSE(journal::open_read_only(t.str()));
}

TEST_CASE("a full disk fails the journal clearly and loses nothing acknowledged") {
  if (!test::is_root()) test::skip("mounting a small tmpfs needs root");
  test::temp_dir t;
  const auto mnt = t.path() / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    test::skip(std::string("cannot mount a tmpfs: ") + std::strerror(errno));
  struct unmount {
    fs::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } guard{mnt};
  const auto dir = mnt / "journal";
  fs::create_directories(dir);
  std::vector<std::pair<int, std::uint64_t>> acked;  // (series, deltas acknowledged)
  error err(errc::io_error, "none");
  std::uint64_t acked_deltas = 0;
  {
    writer w(dir.string(), {.batch_records = 32, .max_delay = std::chrono::milliseconds(0), .segment_bytes = 1 << 20});
    for (int round = 0; round < 100000; ++round) {
      std::optional<ticket> last;
      bool stop = false;
      for (int i = 0; i < 50; ++i) {
        auto r = w.add(i % 4);
        if (!r) {
          err = r.error();
          stop = true;
          break;
        }
        last = *r;
      }
      if (stop) break;
      auto ok = w.j->wait(*last);
      if (!ok) {
        err = ok.error();
        break;
      }
      acked_deltas = w.appended;
    }
    REQUIRE(w.j->failure());
  }
  MESSAGE(err.describe());
  CHECK(err.code() == errc::no_space);
  CHECK(err.describe().find("No space left on device") != std::string::npos);
  CHECK(err.describe().find("not durable") != std::string::npos);
  CHECK(acked_deltas > 100);
  // Reopen on the same full file system: everything acknowledged is there.
  auto j = journal::open(dir.string());
  REQUIRE(j);
  std::uint64_t deltas = 0;
  const auto snap = (*j)->snapshot();
  for (const auto& s : snap.series()) deltas += s.deltas;
  CHECK(deltas >= acked_deltas);
  // Space freed (a bigger file system): the journal goes on.
  REQUIRE(::mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT, "size=256k") == 0);
  auto s0 = snap.series()[0];
  auto d = nth(s0.deltas);
  d.end_value = s0.last_end_value + d.amount;
  auto r = (*j)->append(0, d);
  REQUIRE(r);
  REQUIRE((*j)->wait(r->t));
}
