// libFuzzer target: the journal record decoder (format::apply_record,
// src/accounting/journal_format.hpp) and the checkpoint body decoder
// (rollup::parse). The input is a run of records as a segment holds
// them after its header (docs/journal-format.md: crc32c, length | type << 24,
// sequence, payload), with the CRC and sequence ignored so that mutations
// reach the payload decoding. Each decodes onto one rollup, as recovery
// replays them; an accepted state must survive a checkpoint round trip
// (serialize, parse) unchanged. The whole input is also decoded as a
// checkpoint body.
#include <cstddef>
#include <cstdint>

#include "bulkhead/accounting/rollup.hpp"
#include "fuzz_support.hpp"
#include "journal_format.hpp"

using namespace bulkhead;
using namespace bulkhead::accounting;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  rollup st;
  std::size_t off = 0, applied = 0;
  while (size - off >= format::record_header_size) {
    const char* p = text.data() + off;
    const std::uint32_t lt = codec::get_u32(p + 4);
    const std::uint32_t len = lt & 0xFFFFFFu;
    const auto type = static_cast<format::record_type>(lt >> 24);
    if (len > format::max_payload || size - off - format::record_header_size < len) break;
    const auto why = format::apply_record(st, type, p + format::record_header_size, len);
    if (!why.empty()) break;  // recovery stops at the first bad record
    ++applied;
    off += format::record_header_size + len;
  }
  (void)st.total();
  (void)st.by_instance();
  (void)st.by_tenant();
  (void)st.by_qos();
  (void)st.by_hour();
  std::string body;
  st.serialize(body);
  auto back = rollup::parse(body);
  if (!back) fuzz::broken("a checkpoint of an accepted state does not decode: " + back.error().describe());
  fuzz::expect(*back == st, "a checkpoint round trip changed the totals");

  auto cp = rollup::parse(text);
  if (!cp) {
    fuzz::expect_clear(cp.error(), "rollup::parse");
  } else {
    std::string again;
    cp->serialize(again);
    auto twice = rollup::parse(again);
    fuzz::expect(twice && *twice == *cp, "a decoded checkpoint does not survive a second round trip");
  }
  (void)applied;
  return 0;
}
