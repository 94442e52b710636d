// bulkhead-agent's pure helpers: durations and listen addresses as the
// command line gives them, and which metrics format an Accept header asks
// for. Unit-tested in tests/unit/test_agent_cli.cpp.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/units.hpp"

namespace bulkhead::agent_tool {

// "250ms", "1s", "10m", "2h": a whole number and a unit. Errors name `what`.
[[nodiscard]] inline result<milliseconds> parse_duration(std::string_view s, std::string_view what) {
  const std::string w(what);
  std::size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0)
    return fail(errc::parse_error, w + " " + detail::quote(s) + ": expected a whole number and a unit (250ms, 1s, 10m, 2h)");
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + n, v);
  (void)p;
  if (ec != std::errc{} || v > 1'000'000'000ull)
    return fail(errc::out_of_range, w + " " + detail::quote(s) + ": too large");
  const auto unit = s.substr(n);
  std::uint64_t ms = 0;
  if (unit == "ms") ms = v;
  else if (unit == "s") ms = v * 1000;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else
    return fail(errc::parse_error, w + " " + detail::quote(s) + ": unknown unit " + detail::quote(unit) +
                                       " (ms, s, m or h; a number alone has no unit)");
  return milliseconds{static_cast<std::int64_t>(ms)};
}

struct listen_address {
  std::string host;  // a numeric IPv4 or IPv6 address
  std::uint16_t port = 0;
  bool v6 = false;
  friend bool operator==(const listen_address&, const listen_address&) = default;
};

// "127.0.0.1:9479", "[::1]:9479", "0.0.0.0:9479"; "none": do not listen.
// Host names are refused (the address is bound as given, never resolved).
[[nodiscard]] inline result<std::optional<listen_address>> parse_listen(std::string_view s) {
  if (s == "none") return std::optional<listen_address>{};
  const auto bad = [&](const std::string& why) {
    return fail(errc::parse_error, "--listen " + detail::quote(s) + ": " + why);
  };
  listen_address a;
  std::string_view port;
  if (s.starts_with("[")) {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return bad("expected [IPv6]:PORT");
    a.host = std::string(s.substr(1, close - 1));
    a.v6 = true;
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad("expected ADDRESS:PORT (127.0.0.1:9479), or none");
    if (s.substr(0, colon).find(':') != std::string_view::npos) return bad("write an IPv6 address in brackets: [::1]:9479");
    a.host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  if (a.host.empty()) return bad("no address (0.0.0.0:PORT listens on every interface, if that is what you mean)");
  if (!a.v6) {
    int parts = 0;
    std::size_t i = 0;
    while (i <= a.host.size()) {
      std::size_t j = a.host.find('.', i);
      if (j == std::string::npos) j = a.host.size();
      const auto part = std::string_view(a.host).substr(i, j - i);
      unsigned v = 0;
      const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
      if (part.empty() || part.size() > 3 || ec != std::errc{} || p != part.data() + part.size() || v > 255)
        return bad("the address is not a numeric IPv4 address (names are not resolved)");
      ++parts;
      i = j + 1;
    }
    if (parts != 4) return bad("the address is not a numeric IPv4 address (names are not resolved)");
  } else {
    if (a.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos || a.host.find(':') == std::string::npos)
      return bad("the address is not a numeric IPv6 address");
  }
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
    return bad("the port must be a number from 1 to 65535");
  a.port = static_cast<std::uint16_t>(p);
  return std::optional<listen_address>{a};
}

// Whether an HTTP Accept header asks for OpenMetrics: the media range
// application/openmetrics-text is listed with a q-value above 0 that is at
// least the q-value of text/plain (RFC 9110, section 12.5.1). Prometheus
// sends "application/openmetrics-text;version=1.0.0,...;q=0.75,
// text/plain;version=0.0.4;q=0.5,*/*;q=0.1".
[[nodiscard]] inline bool wants_openmetrics(std::string_view accept) {
  double om = -1, text = -1;
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    auto range = detail::trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    const auto semi = range.find(';');
    std::string type(detail::trim(range.substr(0, semi)));
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    double q = 1;
    auto params = semi == std::string_view::npos ? std::string_view{} : range.substr(semi + 1);
    while (!params.empty()) {
      const auto s2 = params.find(';');
      const auto param = detail::trim(params.substr(0, s2));
      params = s2 == std::string_view::npos ? std::string_view{} : params.substr(s2 + 1);
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        const auto v = param.substr(2);
        // q = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
        if (v.empty() || (v[0] != '0' && v[0] != '1')) {
          q = 0;
          continue;
        }
        q = v[0] == '1' ? 1.0 : 0.0;
        double scale = 0.1;
        for (std::size_t k = 2; k < v.size() && k < 5 && v[1] == '.'; ++k) {
          if (v[k] < '0' || v[k] > '9') break;
          if (v[0] == '0') q += scale * (v[k] - '0');
          scale /= 10;
        }
      }
    }
    if (type == "application/openmetrics-text") om = std::max(om, q);
    else if (type == "text/plain") text = std::max(text, q);
  }
  return om > 0 && om >= text;
}

}  // namespace bulkhead::agent_tool
