// Internal: the journal's on-disk format (docs/journal-format.md is the
// reference; keep the two in step).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/accounting/rollup.hpp"
#include "codec.hpp"

namespace bulkhead::accounting::format {

inline constexpr char segment_magic[8] = {'B', 'U', 'L', 'K', 'J', 'R', 'N', 'L'};
inline constexpr char checkpoint_magic[8] = {'B', 'U', 'L', 'K', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t version = 1;
inline constexpr std::size_t segment_header_size = 32;
inline constexpr std::size_t checkpoint_header_size = 32;
inline constexpr std::size_t record_header_size = 16;
inline constexpr std::uint32_t max_payload = 8192;

enum record_type : std::uint8_t { rec_series = 1, rec_delta = 2, rec_gap = 3 };

// Delta flag bits beyond delta_flag::all.
inline constexpr std::uint8_t f_explicit_start = 0x10;
inline constexpr std::uint8_t f_explicit_value = 0x20;

inline std::string segment_name(std::uint64_t first_seq) {
  char b[64];
  std::snprintf(b, sizeof b, "segment-%020llu.bhj", static_cast<unsigned long long>(first_seq));
  return b;
}
inline std::string checkpoint_name(std::uint64_t seq) {
  char b[64];
  std::snprintf(b, sizeof b, "checkpoint-%020llu.bhc", static_cast<unsigned long long>(seq));
  return b;
}
// The number in "<prefix><20 digits><suffix>", or nullopt.
inline std::optional<std::uint64_t> parse_name(std::string_view name, std::string_view prefix, std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name.substr(prefix.size(), 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (~std::uint64_t{0} - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

inline std::string segment_header(std::uint64_t first_seq) {
  std::string h(segment_header_size, '\0');
  std::memcpy(h.data(), segment_magic, 8);
  codec::put_u32(h.data() + 8, version);
  codec::put_u32(h.data() + 12, segment_header_size);
  codec::put_u64(h.data() + 16, first_seq);
  codec::put_u32(h.data() + 24, 0);
  codec::put_u32(h.data() + 28, codec::crc32c(h.data(), 28));
  return h;
}

// Starts a record at the end of `out`; finish() fills its header.
inline std::size_t begin_record(std::string& out) {
  const auto at = out.size();
  out.resize(at + record_header_size);
  return at;
}
inline void finish_record(std::string& out, std::size_t at, record_type type, std::uint64_t seq) {
  const auto len = static_cast<std::uint32_t>(out.size() - at - record_header_size);
  char* p = out.data() + at;
  codec::put_u32(p + 4, len | static_cast<std::uint32_t>(type) << 24);
  codec::put_u64(p + 8, seq);
  codec::put_u32(p, codec::crc32c(p + 4, 12 + len));
}

inline void put_uuid(codec::writer& w, const uuid& u) { w.raw(u.bytes().data(), 16); }
inline uuid get_uuid(codec::reader& r) {
  std::array<std::uint8_t, 16> b{};
  r.raw(b.data(), 16);
  return uuid{b};
}

inline void encode_series(std::string& out, std::uint64_t seq, std::uint32_t id, const series_key& k,
                          const instance_labels& l) {
  const auto at = begin_record(out);
  codec::writer w{out};
  w.var(id);
  w.u8(static_cast<std::uint8_t>(k.kind));
  w.u8(k.width_bits);
  put_uuid(w, k.uuid);
  w.var(k.incarnation.value);
  w.str(k.source);
  w.str(k.counter);
  w.str(l.name);
  w.u8(l.tenant ? 1 : 0);
  if (l.tenant) w.str(*l.tenant);
  w.u8(l.qos ? static_cast<std::uint8_t>(1 + static_cast<int>(*l.qos)) : 0);
  finish_record(out, at, rec_series, seq);
}

// Encoded relative to the series' state before the delta (`s`).
inline void encode_delta(std::string& out, std::uint64_t seq, const series_info& s, const delta& d) {
  const auto at = begin_record(out);
  codec::writer w{out};
  const std::int64_t start = ns_of(d.start), end = ns_of(d.end), wall = ns_of(d.wall_end);
  const auto dur = static_cast<std::uint64_t>(end - start);
  std::uint8_t flags = d.flags;
  const bool explicit_start = !s.has_delta || start != s.last_end;
  std::uint64_t implied = 0;
  if (s.key.kind == series_kind::usage) implied = (s.last_end_value + d.amount) & width_mask(s.key.width_bits);
  else implied = d.amount;
  const bool explicit_value = !s.has_delta || implied != d.end_value;
  if (explicit_start) flags |= f_explicit_start;
  if (explicit_value) flags |= f_explicit_value;
  w.var(s.id);
  w.u8(flags);
  if (explicit_start) w.svar(start);
  w.var(dur);
  w.var(d.amount);
  if (s.has_delta) {
    // wall - (last_wall + dur), computed without signed overflow.
    w.svar(static_cast<std::int64_t>(static_cast<std::uint64_t>(wall) - static_cast<std::uint64_t>(s.last_wall_end) - dur));
  } else {
    w.svar(wall);
  }
  if (explicit_value) w.var(d.end_value);
  finish_record(out, at, rec_delta, seq);
}

inline void encode_gap(std::string& out, std::uint64_t seq, const gap_record& g) {
  const auto at = begin_record(out);
  codec::writer w{out};
  w.str(g.source);
  put_uuid(w, g.uuid);
  w.svar(ns_of(g.start));
  w.svar(ns_of(g.end));
  w.svar(ns_of(g.wall_end));
  w.var(g.failures);
  w.str(g.reason);
  finish_record(out, at, rec_gap, seq);
}

[[nodiscard]] inline result<void> validate(const gap_record& g) {
  if (auto v = validate_label(g.source, "gap source"); !v) return v;
  if (auto v = validate_label(g.reason, "gap reason", max_reason_bytes); !v) return v;
  if (ns_of(g.start) < 0) return fail(errc::invalid_argument, "gap of " + g.uuid.to_string() + ": negative start");
  if (ns_of(g.end) <= ns_of(g.start))
    return fail(errc::invalid_argument, "gap of " + g.uuid.to_string() + ": end " + std::to_string(ns_of(g.end)) +
                                            " ns is not after start " + std::to_string(ns_of(g.start)) + " ns");
  return {};
}

// Decodes one record's payload and applies it to `st`. Returns an empty
// string on success, else what was wrong (the caller adds where).
inline std::string apply_record(rollup& st, record_type type, const char* p, std::size_t len) {
  codec::reader r{p, p + len};
  switch (type) {
    case rec_series: {
      const auto id = r.var();
      series_key k;
      instance_labels l;
      k.kind = static_cast<series_kind>(r.u8());
      k.width_bits = r.u8();
      k.uuid = get_uuid(r);
      k.incarnation.value = r.var();
      k.source = r.str(max_label_bytes);
      k.counter = r.str(max_label_bytes);
      l.name = r.str(max_label_bytes);
      if (r.u8()) l.tenant = std::string(r.str(max_label_bytes));
      const auto q = r.u8();
      if (!r.ok || r.left() != 0) return "series record does not decode";
      if (q > enum_names<qos_class>::values.size()) return "series record has an unknown qos class " + std::to_string(q);
      if (q) l.qos = static_cast<qos_class>(q - 1);
      if (id != st.series().size())
        return "series record numbers series " + std::to_string(id) + " where " + std::to_string(st.series().size()) +
               " was expected";
      if (st.find(k)) return "series record defines series " + std::to_string(id) + " a second time";
      auto d = st.define(k, l);
      if (!d) return "series record: " + d.error().describe();
      return {};
    }
    case rec_delta: {
      const auto id = r.var();
      if (!r.ok || id >= st.series().size()) return "delta record names undefined series " + std::to_string(id);
      const auto& s = st.series()[static_cast<std::size_t>(id)];
      const auto flags = r.u8();
      std::int64_t start = s.last_end;
      if (flags & f_explicit_start) start = r.svar();
      else if (!s.has_delta) return "delta record omits the start of a series' first delta";
      const auto dur = r.var();
      const auto amount = r.var();
      const auto wall_adj = r.svar();
      delta d;
      d.amount = amount;
      d.flags = flags & delta_flag::all;
      std::uint64_t value;
      if (flags & f_explicit_value) value = r.var();
      else if (!s.has_delta) return "delta record omits the end value of a series' first delta";
      else if (s.key.kind == series_kind::usage) value = (s.last_end_value + amount) & width_mask(s.key.width_bits);
      else value = amount;
      if (!r.ok || r.left() != 0) return "delta record does not decode";
      if (flags & ~(delta_flag::all | f_explicit_start | f_explicit_value)) return "delta record has unknown flags";
      // start < 0 first: max() - start overflows for a negative start (found by fuzzing).
      if (start < 0 || dur == 0 || dur > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() - start))
        return "delta record has an invalid interval";
      d.start = mono_from_ns(start);
      d.end = mono_from_ns(start + static_cast<std::int64_t>(dur));
      d.end_value = value;
      const std::int64_t wall =
          s.has_delta ? static_cast<std::int64_t>(static_cast<std::uint64_t>(s.last_wall_end) + dur +
                                                  static_cast<std::uint64_t>(wall_adj))
                      : wall_adj;
      d.wall_end = wall_from_ns(wall);
      auto c = st.check(static_cast<std::uint32_t>(id), d);
      if (!c) return "delta record: " + c.error().describe();
      if (*c != delta_check::fresh) return "delta record repeats an interval already accounted";
      st.apply(static_cast<std::uint32_t>(id), d);
      return {};
    }
    case rec_gap: {
      gap_record g;
      g.source = r.str(max_label_bytes);
      g.uuid = get_uuid(r);
      g.start = mono_from_ns(r.svar());
      g.end = mono_from_ns(r.svar());
      g.wall_end = wall_from_ns(r.svar());
      g.failures = r.var();
      g.reason = r.str(max_reason_bytes);
      if (!r.ok || r.left() != 0) return "gap record does not decode";
      if (auto v = validate(g); !v) return "gap record: " + v.error().describe();
      if (!st.apply_gap(g)) return "gap record repeats a gap already recorded";
      return {};
    }
  }
  return "unknown record type " + std::to_string(static_cast<int>(type));
}

}  // namespace bulkhead::accounting::format
