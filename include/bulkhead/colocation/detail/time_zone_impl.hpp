// bulkhead/colocation/detail/time_zone_impl.hpp (internal): TZif and POSIX TZ parsing and the zone's rules;
// the contract is in bulkhead/colocation/time_zone.hpp.
//
// Format facts used (RFC 8536, "The Time Zone Information Format (TZif)"):
//   header: "TZif", version byte (0, '2', '3', '4'), 15 unused bytes, six
//   big-endian 32-bit counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt,
//   charcnt. Data block: timecnt transition times (4 bytes in v1, 8 in v2+),
//   timecnt type indices (1 byte), typecnt local time types (int32 utoff,
//   uint8 isdst, uint8 desigidx), charcnt designation bytes, leapcnt leap
//   records (4+4 or 8+4 bytes), isstdcnt and isutcnt indicator bytes.
//   Version 2+ repeat the header and block with 64-bit times after the v1
//   block, then a footer "\n<POSIX TZ string>\n". Times before the first
//   transition use type 0; times after the last use the footer rule.
#pragma once

#include "bulkhead/colocation/time_zone.hpp"

#include <algorithm>
#include <array>
#include <limits>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::colocation {

namespace detail {

using namespace std::chrono;

inline constexpr std::int64_t day_s = 86400;

inline std::uint32_t be32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}
inline std::uint64_t be64(const unsigned char* p) {
  return static_cast<std::uint64_t>(be32(p)) << 32 | be32(p + 4);
}

struct counts {
  std::uint32_t isut, isstd, leap, time, type, chars;
};

// Year of a UTC instant (proleptic Gregorian).
inline int year_of(std::int64_t t) {
  const auto d = floor<days>(sys_seconds{seconds{t}});
  return static_cast<int>(year_month_day{d}.year());
}

inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

class tz_parser {
 public:
  explicit tz_parser(std::string_view s) : s_(s) {}

  result<time_zone::posix_rule> run() {
    time_zone::posix_rule r;
    auto sn = name();
    if (!sn) return fail(sn.error());
    r.std_type.abbr = *sn;
    auto so = offset(24);
    if (!so) return fail(so.error());
    r.std_type.utoff = static_cast<std::int32_t>(-*so);
    r.std_type.dst = false;
    if (at_end()) return r;
    auto dn = name();
    if (!dn) return fail(dn.error());
    time_zone::type d;
    d.abbr = *dn;
    d.dst = true;
    d.utoff = r.std_type.utoff + 3600;
    if (!at_end() && peek() != ',') {
      auto o = offset(24);
      if (!o) return fail(o.error());
      d.utoff = static_cast<std::int32_t>(-*o);
    }
    if (at_end())
      return bad("daylight time " + bulkhead::detail::quote(d.abbr) + " without a rule (',start,end') is not supported");
    if (peek() != ',') return bad("expected ',' before the start rule");
    ++pos_;
    auto st = date();
    if (!st) return fail(st.error());
    if (at_end() || peek() != ',') return bad("expected ',' before the end rule");
    ++pos_;
    auto en = date();
    if (!en) return fail(en.error());
    if (!at_end()) return bad("unexpected text after the end rule");
    r.dst_type = d;
    r.start = *st;
    r.end = *en;
    return r;
  }

 private:
  [[nodiscard]] bool at_end() const { return pos_ >= s_.size(); }
  [[nodiscard]] char peek() const { return s_[pos_]; }
  std::unexpected<error> bad(std::string why) const {
    return fail(errc::parse_error, "TZ string " + bulkhead::detail::quote(s_) + ": " + std::move(why) + " (at offset " +
                                       std::to_string(pos_) + ")");
  }

  result<std::string> name() {
    std::string out;
    if (!at_end() && peek() == '<') {
      ++pos_;
      while (!at_end() && peek() != '>') {
        const char c = peek();
        if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '-')) return bad("bad character in a quoted zone abbreviation");
        out += c;
        ++pos_;
      }
      if (at_end()) return bad("unterminated '<'");
      ++pos_;
    } else {
      while (!at_end() && is_alpha(peek())) out += s_[pos_++];
    }
    if (out.size() < 3) return bad("a zone abbreviation needs at least 3 characters");
    return out;
  }

  // [+-]hh[:mm[:ss]] in seconds; hours up to max_hours.
  result<std::int64_t> offset(int max_hours) {
    std::int64_t sign = 1;
    if (!at_end() && (peek() == '+' || peek() == '-')) {
      if (peek() == '-') sign = -1;
      ++pos_;
    }
    auto h = number(3);
    if (!h) return bad("expected hours");
    if (*h > max_hours) return bad("hours " + std::to_string(*h) + " above " + std::to_string(max_hours));
    std::int64_t v = *h * 3600;
    for (int part = 0; part < 2 && !at_end() && peek() == ':'; ++part) {
      ++pos_;
      auto m = number(2);
      if (!m || *m > 59) return bad("expected minutes or seconds 00..59");
      v += *m * (part == 0 ? 60 : 1);
    }
    return sign * v;
  }

  std::optional<int> number(int max_digits) {
    int n = 0, digits = 0;
    while (!at_end() && is_digit(peek()) && digits < max_digits) {
      n = n * 10 + (peek() - '0');
      ++pos_;
      ++digits;
    }
    if (!digits) return std::nullopt;
    return n;
  }

  result<time_zone::rule_date> date() {
    time_zone::rule_date d;
    if (at_end()) return bad("expected a rule date");
    if (peek() == 'J') {
      ++pos_;
      auto n = number(3);
      if (!n || *n < 1 || *n > 365) return bad("Jn needs 1..365");
      d.kind = time_zone::rule_date_kind::julian_no_leap;
      d.day = *n;
    } else if (peek() == 'M') {
      ++pos_;
      auto m = number(2);
      if (!m || *m < 1 || *m > 12) return bad("Mm.w.d needs a month 1..12");
      if (at_end() || peek() != '.') return bad("expected '.' after the month");
      ++pos_;
      auto w = number(1);
      if (!w || *w < 1 || *w > 5) return bad("Mm.w.d needs a week 1..5");
      if (at_end() || peek() != '.') return bad("expected '.' after the week");
      ++pos_;
      auto wd = number(1);
      if (!wd || *wd > 6) return bad("Mm.w.d needs a weekday 0..6");
      d.kind = time_zone::rule_date_kind::month_week_day;
      d.month = *m;
      d.week = *w;
      d.day = *wd;
    } else {
      auto n = number(3);
      if (!n || *n > 365) return bad("n needs 0..365");
      d.kind = time_zone::rule_date_kind::zero_based;
      d.day = *n;
    }
    if (!at_end() && peek() == '/') {
      ++pos_;
      auto t = offset(167);  // RFC 8536 section 3.3.1: -167..167 hours
      if (!t) return fail(t.error());
      d.time = static_cast<std::int32_t>(*t);
    }
    return d;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// Local midnight of the rule date in `y`, as days since the epoch.
inline std::int64_t rule_day(const time_zone::rule_date& r, int y) {
  const year yr{y};
  const auto jan1 = sys_days{yr / January / 1};
  switch (r.kind) {
    case time_zone::rule_date_kind::julian_no_leap:
      return (jan1 + days{r.day - 1 + (yr.is_leap() && r.day >= 60 ? 1 : 0)}).time_since_epoch().count();
    case time_zone::rule_date_kind::zero_based:
      return (jan1 + days{r.day}).time_since_epoch().count();
    case time_zone::rule_date_kind::month_week_day: {
      const auto first = sys_days{yr / month{static_cast<unsigned>(r.month)} / 1};
      const int wd1 = static_cast<int>(weekday{first}.c_encoding());
      int day = 1 + (r.day - wd1 + 7) % 7 + 7 * (r.week - 1);
      const int dim = static_cast<int>(
          static_cast<unsigned>(year_month_day_last{yr / month{static_cast<unsigned>(r.month)} / last}.day()));
      while (day > dim) day -= 7;
      return (first + days{day - 1}).time_since_epoch().count();
    }
  }
  return jan1.time_since_epoch().count();
}

}  // namespace detail

inline result<void> validate_zone_name(std::string_view name) {
  const auto bad = [&](std::string why) {
    return fail(errc::invalid_argument, "time zone name " + bulkhead::detail::quote(name) + ": " + std::move(why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 255) return bad("longer than 255 bytes");
  if (name.front() == '/') return bad("absolute; give a name such as 'Europe/Berlin'");
  std::optional<std::string> why;
  bulkhead::detail::split(name, '/', [&](std::string_view c) {
    if (why) return;
    if (c.empty()) why = "empty component";
    else if (c == "." || c == "..") why = "component " + bulkhead::detail::quote(c) + " is not allowed";
    else
      for (char ch : c)
        if (!(detail::is_alpha(ch) || detail::is_digit(ch) || ch == '_' || ch == '-' || ch == '+' || ch == '.')) {
          why = "character " + bulkhead::detail::quote(std::string_view(&ch, 1)) + " is not allowed";
          break;
        }
  });
  if (why) return bad(*why);
  return {};
}

inline result<time_zone::posix_rule> parse_posix_tz(std::string_view text) { return detail::tz_parser(text).run(); }

inline result<time_zone> time_zone::parse(std::string name, std::string_view bytes) {
  const auto bad = [&](std::string why) {
    return fail(errc::parse_error, "TZif " + bulkhead::detail::quote(name) + ": " + std::move(why));
  };
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  const auto header = [&](std::size_t at, detail::counts& c, char& version) -> std::optional<std::string> {
    if (n < at + 44) return "truncated header (need 44 bytes at offset " + std::to_string(at) + ")";
    if (bytes.substr(at, 4) != "TZif") return "no 'TZif' magic at offset " + std::to_string(at);
    version = bytes[at + 4];
    if (version != 0 && (version < '2' || version > '9')) return "unknown version byte";
    c = {detail::be32(b + at + 20), detail::be32(b + at + 24), detail::be32(b + at + 28), detail::be32(b + at + 32), detail::be32(b + at + 36), detail::be32(b + at + 40)};
    if (c.type == 0) return "typecnt is 0";
    if (c.chars == 0) return "charcnt is 0";
    if (c.isut != 0 && c.isut != c.type) return "isutcnt is neither 0 nor typecnt";
    if (c.isstd != 0 && c.isstd != c.type) return "isstdcnt is neither 0 nor typecnt";
    if (c.type > 256) return "typecnt above 256";
    return std::nullopt;
  };
  const auto block_size = [](const detail::counts& c, std::uint64_t tsize) -> std::uint64_t {
    return std::uint64_t{c.time} * tsize + c.time + std::uint64_t{c.type} * 6 + c.chars + std::uint64_t{c.leap} * (tsize + 4) +
           c.isstd + c.isut;
  };

  detail::counts c1{};
  char v1 = 0;
  if (auto e = header(0, c1, v1)) return bad(*e);
  std::size_t at = 44;
  detail::counts c = c1;
  std::uint64_t tsize = 4;
  const std::uint64_t s1 = block_size(c1, 4);
  if (s1 > n - 44) return bad("truncated version 1 data block");
  if (v1 != 0) {
    char v2 = 0;
    at = 44 + static_cast<std::size_t>(s1);
    if (auto e = header(at, c, v2)) return bad(*e);
    at += 44;
    tsize = 8;
    if (block_size(c, 8) > n - at) return bad("truncated version 2+ data block");
  }
  if (c.leap) return bad("leap-second records present (a 'right/' zone); POSIX time has no leap seconds");

  time_zone z;
  z.name_ = std::move(name);
  const unsigned char* p = b + at;
  z.times_.reserve(c.time);
  for (std::uint32_t i = 0; i < c.time; ++i) {
    const std::int64_t t = tsize == 8 ? static_cast<std::int64_t>(detail::be64(p + i * 8))
                                      : static_cast<std::int64_t>(static_cast<std::int32_t>(detail::be32(p + i * 4)));
    if (!z.times_.empty() && t <= z.times_.back()) return bad("transition times are not strictly ascending");
    z.times_.push_back(t);
  }
  p += c.time * tsize;
  z.idx_.assign(p, p + c.time);
  for (auto i : z.idx_)
    if (i >= c.type) return bad("transition type index " + std::to_string(i) + " out of range");
  p += c.time;
  const unsigned char* tp = p;
  p += std::size_t{c.type} * 6;
  const std::string_view chars(reinterpret_cast<const char*>(p), c.chars);
  for (std::uint32_t i = 0; i < c.type; ++i) {
    type t;
    const auto raw = static_cast<std::int32_t>(detail::be32(tp + i * 6));
    if (raw == std::numeric_limits<std::int32_t>::min()) return bad("utoff -2^31 is not allowed");
    t.utoff = raw;
    if (tp[i * 6 + 4] > 1) return bad("isdst is neither 0 nor 1");
    t.dst = tp[i * 6 + 4] == 1;
    const std::size_t di = tp[i * 6 + 5];
    if (di >= chars.size()) return bad("designation index out of range");
    const auto end = chars.find('\0', di);
    if (end == std::string_view::npos) return bad("designation not NUL-terminated");
    t.abbr = std::string(chars.substr(di, end - di));
    z.types_.push_back(std::move(t));
  }
  p += c.chars + std::size_t{c.isstd} + c.isut;  // leap == 0
  if (tsize == 8) {
    const std::size_t foot = static_cast<std::size_t>(p - b);
    if (foot >= n || bytes[foot] != '\n') return bad("missing footer newline");
    const auto close = bytes.find('\n', foot + 1);
    if (close == std::string_view::npos) return bad("unterminated footer");
    z.footer_ = std::string(bytes.substr(foot + 1, close - foot - 1));
    if (!z.footer_.empty()) {
      auto r = parse_posix_tz(z.footer_);
      if (!r) return fail(std::move(r.error()).in("TZif " + bulkhead::detail::quote(z.name_) + " footer"));
      z.rule_ = std::move(*r);
    }
  }
  return z;
}

inline void time_zone::rule_transitions(int y, std::vector<std::pair<std::int64_t, bool>>& out) const {
  if (!rule_ || !rule_->dst_type) return;
  const auto& r = *rule_;
  const std::int64_t start = detail::rule_day(r.start, y) * detail::day_s + r.start.time - r.std_type.utoff;
  const std::int64_t end = detail::rule_day(r.end, y) * detail::day_s + r.end.time - r.dst_type->utoff;
  out.emplace_back(start, true);
  out.emplace_back(end, false);
}

inline time_zone::type time_zone::type_at(std::int64_t t) const {
  const bool use_rule = rule_ && (times_.empty() || t >= times_.back());
  if (!use_rule) {
    if (times_.empty() || t < times_.front()) return types_[0];
    const auto it = std::upper_bound(times_.begin(), times_.end(), t);
    return types_[idx_[static_cast<std::size_t>(it - times_.begin() - 1)]];
  }
  const auto& r = *rule_;
  if (!r.dst_type) return r.std_type;
  std::vector<std::pair<std::int64_t, bool>> tr;
  tr.reserve(6);
  const int y = detail::year_of(t);
  for (int yy = y - 1; yy <= y + 1; ++yy) rule_transitions(yy, tr);
  std::sort(tr.begin(), tr.end());
  bool dst = false;
  bool any = false;
  for (const auto& [at, d] : tr) {
    if (at > t) break;
    dst = d;
    any = true;
  }
  if (!any) dst = !tr.front().second;
  return dst ? *r.dst_type : r.std_type;
}

inline time_zone::local_info time_zone::at(sys_seconds t) const {
  const auto ty = type_at(t.time_since_epoch().count());
  return {seconds{ty.utoff}, ty.dst, ty.abbr};
}

inline seconds time_zone::offset_at(sys_seconds t) const { return seconds{type_at(t.time_since_epoch().count()).utoff}; }

inline local_seconds time_zone::to_local(sys_seconds t) const {
  return local_seconds{t.time_since_epoch() + offset_at(t)};
}

inline std::vector<sys_seconds> time_zone::transitions(sys_seconds from, sys_seconds to) const {
  const std::int64_t lo = from.time_since_epoch().count(), hi = to.time_since_epoch().count();
  std::vector<std::int64_t> cand;
  if (hi <= lo) return {};
  for (auto it = std::lower_bound(times_.begin(), times_.end(), lo); it != times_.end() && *it < hi; ++it) cand.push_back(*it);
  if (rule_ && rule_->dst_type && (times_.empty() || hi > times_.back())) {
    std::vector<std::pair<std::int64_t, bool>> tr;
    const std::int64_t base = times_.empty() ? lo : std::max(lo, times_.back());
    for (int y = detail::year_of(base) - 1; y <= detail::year_of(hi) + 1; ++y) rule_transitions(y, tr);
    for (const auto& [at, d] : tr)
      if (at >= lo && at < hi) cand.push_back(at);
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  std::vector<sys_seconds> out;
  for (auto c : cand) {
    const auto a = type_at(c - 1), b2 = type_at(c);
    if (a.utoff != b2.utoff || a.dst != b2.dst) out.push_back(sys_seconds{seconds{c}});
  }
  return out;
}

inline sys_seconds time_zone::first_instant_at_or_after(local_seconds local) const {
  const std::int64_t L = local.time_since_epoch().count();
  const std::int64_t lo = L - 2 * detail::day_s, hi = L + 2 * detail::day_s;
  const auto tr = transitions(sys_seconds{seconds{lo}}, sys_seconds{seconds{hi}});
  std::int64_t a = lo;
  for (std::size_t i = 0; i <= tr.size(); ++i) {
    const std::int64_t b2 = i < tr.size() ? tr[i].time_since_epoch().count() : hi;
    const std::int64_t off = type_at(a).utoff;
    const std::int64_t t = std::max(a, L - off);
    if (t < b2) return sys_seconds{seconds{t}};
    a = b2;
  }
  return sys_seconds{seconds{L - type_at(L).utoff}};
}

}  // namespace bulkhead::colocation
