// libFuzzer target: journal recovery (journal::open_read_only and
// journal::open, bulkhead/accounting/journal.hpp) over segment files made
// from the input.
//
// Input: one flags byte, then segment bytes. Flags bit 0: recompute the
// segment header's and every record's CRC-32C before writing (so mutations
// reach sequence checks and payload decoding, not only the CRC check);
// bit 1: split the bytes into two segment files at the offset in the next
// two bytes (little-endian), each named from its header's first sequence.
//
// What must hold for any segments (the recovery contract):
//  1. open_read_only() succeeds (no checkpoint here) and gives totals T;
//  2. open() either succeeds with T, or fails with errc::corrupt naming the
//     segment, after which a second open() succeeds with exactly T:
//     nothing before the bad record is lost and nothing after it counted;
//  3. after that, open_read_only() finds no corruption and gives T again.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "bulkhead/accounting/journal.hpp"
#include "fuzz_support.hpp"
#include "journal_format.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;
namespace fs = std::filesystem;

namespace {

// Recomputes the CRCs of a segment's header and of every whole record.
void fix_crcs(std::string& seg) {
  if (seg.size() < format::segment_header_size) return;
  codec::put_u32(seg.data() + 28, codec::crc32c(seg.data(), 28));
  std::size_t off = format::segment_header_size;
  while (seg.size() - off >= format::record_header_size) {
    char* p = seg.data() + off;
    const std::uint32_t len = codec::get_u32(p + 4) & 0xFFFFFFu;
    if (len > format::max_payload || seg.size() - off - format::record_header_size < len) break;
    codec::put_u32(p, codec::crc32c(p + 4, 12 + len));
    off += format::record_header_size + len;
  }
}

std::uint64_t first_seq(const std::string& seg, std::uint64_t fallback) {
  if (seg.size() < format::segment_header_size) return fallback;
  return codec::get_u64(seg.data() + 16);
}

void put_file(const fs::path& p, const std::string& content) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fuzz::broken("cannot write a segment into the scratch directory");
  std::size_t off = 0;
  while (off < content.size()) {
    const auto w = ::write(fd, content.data() + off, content.size() - off);
    if (w <= 0) fuzz::broken("cannot write a segment into the scratch directory");
    off += static_cast<std::size_t>(w);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string second;
  bool two = false;
  if ((flags & 2) && bytes.size() >= 2) {
    const std::size_t at = static_cast<std::uint8_t>(bytes[0]) | static_cast<std::size_t>(static_cast<std::uint8_t>(bytes[1])) << 8;
    bytes.erase(0, 2);
    if (at < bytes.size()) {
      second = bytes.substr(at);
      bytes.resize(at);
      two = true;
    }
  }
  if (flags & 1) {
    fix_crcs(bytes);
    if (two) fix_crcs(second);
  }

  const auto dir = fuzz::scratch::instance().path() / "journal";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  const auto first = first_seq(bytes, 1);
  put_file(dir / format::segment_name(first), bytes);
  if (two) {
    auto s2 = first_seq(second, first + 1);
    if (s2 == first) s2 = first + 1;
    put_file(dir / format::segment_name(s2), second);
  }

  auto view = journal::open_read_only(dir.string());
  if (!view) fuzz::broken("open_read_only failed without a checkpoint: " + view.error().describe());
  if (view->report.corruption) fuzz::expect_clear(*view->report.corruption, "read-only corruption");
  const rollup& totals = view->totals;

  const journal_options opt{.batch_records = 64, .max_delay = milliseconds(0), .segment_bytes = 4096};
  {
    auto w = journal::open(dir.string(), opt);
    if (!w) {
      fuzz::expect_clear(w.error(), "journal::open");
      fuzz::expect(w.error().code() == errc::corrupt, "journal::open failed other than corrupt: " + w.error().describe());
      fuzz::expect(view->report.corruption.has_value(), "open() found corruption that open_read_only() did not");
      const auto first_error = w.error().describe();
      w = journal::open(dir.string(), opt);
      if (!w)
        fuzz::broken("a second open() after quarantine failed: " + w.error().describe() + "\nthe first open() said: " +
                     first_error);
    } else {
      fuzz::expect(!view->report.corruption, "open_read_only() reported corruption that open() accepted");
    }
    fuzz::expect((*w)->snapshot() == totals, "the writer recovered other totals than the reader");
  }
  auto again = journal::open_read_only(dir.string());
  if (!again) fuzz::broken("open_read_only after recovery failed: " + again.error().describe());
  fuzz::expect(!again->report.corruption, "corruption left after a writer's recovery: " +
                                              (again->report.corruption ? again->report.corruption->describe() : ""));
  fuzz::expect(again->totals == totals, "totals changed by recovery");
  return 0;
}
