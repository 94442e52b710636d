// Internal: the journal's byte encoding (docs/journal-format.md): the
// fields and varints of bulkhead/accounting/detail/codec.hpp (shared with
// rollup checkpoints) and CRC-32C (Castagnoli) from Boost.CRC.
#pragma once

#include <boost/crc.hpp>

#include <cstdint>

#include "bulkhead/accounting/detail/codec.hpp"

namespace bulkhead::accounting::codec {

// CRC-32C: polynomial 0x1EDC6F41, init and final xor 0xFFFFFFFF, reflected.
using crc32c_type = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

inline std::uint32_t crc32c(const void* p, std::size_t n) {
  crc32c_type c;
  c.process_bytes(p, n);
  return c.checksum();
}

using detail::get_u32;
using detail::get_u64;
using detail::put_u32;
using detail::put_u64;
using detail::reader;
using detail::unzigzag;
using detail::writer;
using detail::zigzag;

}  // namespace bulkhead::accounting::codec
