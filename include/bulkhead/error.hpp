// bulkhead/error.hpp: the error type and result<T>.
//
// Expected failures are values: result<T> is std::expected<T, error>. An error
// carries a closed code, a message that names the input and what was wrong,
// and a context chain (outermost last) saying what was being done and where:
//   error{errc::parse_error, "cpu.max: '12x 100000': quota is not a number"}
//     .in("reading cgroup 'batch'").in("cgroup root /sys/fs/cgroup")
// describe() joins them: "cgroup root /sys/fs/cgroup: reading cgroup 'batch':
// cpu.max: ...".
//
// Thread-safety: values; no shared state.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulkhead {

enum class errc : std::uint8_t {
  invalid_argument,       // a caller-supplied value is not acceptable
  out_of_range,           // a value outside the range its consumer accepts
  parse_error,            // text or bytes that do not follow their format
  not_found,              // a named thing does not exist
  io_error,               // the operating system refused a read or write
  permission_denied,      // EACCES / EPERM, or a read-only connection
  unsupported,            // the backend or driver cannot do this
  connection_failed,      // could not connect to a source
  connection_lost,        // a connection broke mid-operation
  vanished,               // the thing existed and disappeared mid-operation
  overflow,               // an integer would not fit its type
  conflict,               // optimistic concurrency: a stale generation
  insufficient_capacity,  // a request does not fit what is free
  corrupt,                // stored data failed its integrity check
  unsafe_path,            // a name or path that would leave its root
  already_exists,         // create of something that is there
  no_space,               // ENOSPC / EDQUOT
  timeout,                // waited too long
};

[[nodiscard]] constexpr std::string_view to_string(errc c) noexcept {
  switch (c) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::out_of_range: return "out_of_range";
    case errc::parse_error: return "parse_error";
    case errc::not_found: return "not_found";
    case errc::io_error: return "io_error";
    case errc::permission_denied: return "permission_denied";
    case errc::unsupported: return "unsupported";
    case errc::connection_failed: return "connection_failed";
    case errc::connection_lost: return "connection_lost";
    case errc::vanished: return "vanished";
    case errc::overflow: return "overflow";
    case errc::conflict: return "conflict";
    case errc::insufficient_capacity: return "insufficient_capacity";
    case errc::corrupt: return "corrupt";
    case errc::unsafe_path: return "unsafe_path";
    case errc::already_exists: return "already_exists";
    case errc::no_space: return "no_space";
    case errc::timeout: return "timeout";
  }
  return "unknown";
}

class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // Innermost first: context()[0] is the closest to where the error arose.
  [[nodiscard]] const std::vector<std::string>& context() const noexcept { return context_; }

  // Adds what was being done when the error passed through.
  error& in(std::string what) & {
    context_.push_back(std::move(what));
    return *this;
  }
  error&& in(std::string what) && {
    context_.push_back(std::move(what));
    return std::move(*this);
  }

  // "outermost: ...: innermost: message"
  [[nodiscard]] std::string describe() const {
    std::string s;
    for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
      s += *it;
      s += ": ";
    }
    s += message_;
    return s;
  }

  friend bool operator==(const error&, const error&) = default;

 private:
  errc code_;
  std::string message_;
  std::vector<std::string> context_;
};

template <class T>
using result = std::expected<T, error>;

// `return fail(errc::parse_error, "...");` from any function returning result<T>.
[[nodiscard]] inline std::unexpected<error> fail(errc code, std::string message) {
  return std::unexpected<error>(error(code, std::move(message)));
}
[[nodiscard]] inline std::unexpected<error> fail(error e) { return std::unexpected<error>(std::move(e)); }

// Passes a result through, adding context to its error if it has one.
template <class T>
[[nodiscard]] result<T> in_context(result<T>&& r, std::string what) {
  if (!r) r.error().in(std::move(what));
  return std::move(r);
}

}  // namespace bulkhead
