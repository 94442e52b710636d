// Writes real journal files as seeds for fuzz_journal_record and
// fuzz_journal_recovery (built in the fuzz build only; run by hand, see
// tests/fuzz/make_seeds.py):
//   journal_seeds OUT_RECORD_DIR OUT_RECOVERY_DIR
// Segments come from the journal itself (series, deltas of both kinds with
// implied and explicit starts and values, resets, wraps, gaps, a checkpoint).
#include <algorithm>
#include <cstdio>
#include <vector>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "bulkhead/accounting/journal.hpp"
#include "fuzz_support.hpp"
#include "journal_format.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {

mono_time at(std::int64_t ms) { return mono_from_ns(ms * 1'000'000); }
wall_time wall(std::int64_t ms) { return wall_from_ns(1'700'000'000'000'000'000 + ms * 1'000'000); }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void put(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: journal_seeds OUT_RECORD_DIR OUT_RECOVERY_DIR\n");
    return 2;
  }
  const fs::path rec_out = argv[1], recov_out = argv[2];
  fs::create_directories(rec_out);
  fs::create_directories(recov_out);
  const auto dir = fuzz::scratch::instance().path() / "seed-journal";
  fs::create_directories(dir);
  {
    auto j = journal::open(dir.string(), {.batch_records = 16, .max_delay = milliseconds(0), .segment_bytes = 4096});
    if (!j) return std::fprintf(stderr, "%s\n", j.error().describe().c_str()), 1;
    const auto vm = *uuid::parse("c0000000-0000-4000-8000-000000000001");
    auto cpu = (*j)->define({"test:///default@boot", vm, incarnation{1}, "cpu_time_ns", 64, series_kind::usage},
                            {"web", std::string("acme"), qos_class::LS});
    auto disk = (*j)->define({"test:///default@boot", vm, incarnation{1}, "disk/vda/write_bytes", 32, series_kind::usage},
                             {"web", std::string("acme"), qos_class::LS});
    auto mem = (*j)->define({"test:///default@boot", vm, incarnation{1}, "alloc/memory_bytes", 64, series_kind::allocation},
                            {"web", std::nullopt, std::nullopt});
    if (!cpu || !disk || !mem) return 1;
    std::uint64_t v = 1000;
    for (int i = 0; i < 6; ++i) {
      (void)(*j)->append(*cpu, {at(i * 1000), at((i + 1) * 1000), wall((i + 1) * 1000), 500, v += 500, 0});
      (void)(*j)->append(*mem, {at(i * 1000), at((i + 1) * 1000), wall((i + 1) * 1000), 1ull << 30, 1ull << 30, 0});
    }
    (void)(*j)->append(*disk, {at(0), at(1000), wall(1000), 4096, 4294967000ull, 0});
    (void)(*j)->append(*disk, {at(1000), at(2000), wall(2000), 800, 504, delta_flag::wrap});
    (void)(*j)->append(*cpu, {at(6000), at(7000), wall(7000), 42, 42, delta_flag::reset});
    (void)(*j)->append_gap({"test:///default@boot", vm, at(7000), at(9000), wall(9000), 3, "domain vanished"});
    (void)(*j)->append(*cpu, {at(9000), at(10000), wall(10000), 7, 49, delta_flag::after_gap});
    if (!(*j)->flush()) return 1;
    // Enough more for a second segment (segments close at 4096 bytes).
    std::uint64_t c = 49;
    for (int i = 10; i < 400; ++i) {
      (void)(*j)->append(*cpu, {at(i * 1000), at((i + 1) * 1000), wall((i + 1) * 1000), std::uint64_t(1000 + i % 7), c += std::uint64_t(1000 + i % 7), 0});
      if (i % 50 == 0) (void)(*j)->flush();
    }
    if (!(*j)->flush()) return 1;
  }
  int n = 0;
  std::vector<std::string> segs;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".bhj") continue;
    const auto seg = slurp(e.path());
    put(recov_out / ("real-" + e.path().filename().string() + "-crc"), std::string(1, '\0') + seg);
    put(recov_out / ("real-" + e.path().filename().string() + "-fix"), std::string(1, '\1') + seg);
    if (seg.size() > format::segment_header_size)
      put(rec_out / ("real-records-" + e.path().filename().string()), seg.substr(format::segment_header_size));
    ++n;
  }
  {
    std::vector<fs::path> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".bhj") names.push_back(e.path());
    std::sort(names.begin(), names.end());
    if (names.size() >= 2) {
      // Flags 3: CRCs fixed, split after the first segment (2 bytes, little-endian).
      const auto a = slurp(names[0]), b = slurp(names[1]);
      std::string two(1, '\3');
      two += static_cast<char>(a.size() & 0xff);
      two += static_cast<char>(a.size() >> 8);
      put(recov_out / "real-two-segments", two + a + b);
    }
  }
  {
    auto v = journal::open_read_only(dir.string());
    if (!v) return 1;
    std::string body;
    v->totals.serialize(body);
    put(rec_out / "real-checkpoint-body", body);
  }
  std::printf("%d segments\n", n);
  return 0;
}
