// bulkhead-agent's /metrics endpoint over HTTP/1.1 (Boost.Beast, an Asio
// io_context on a thread of its own).
//
// What it answers:
//   GET or HEAD /metrics (a query string is ignored): 200 with the exposition
//     the render function gives: OpenMetrics when the Accept header asks for
//     application/openmetrics-text (cli.hpp, wants_openmetrics), the classic
//     text format otherwise;
//   another path: 404; another method: 405 with Allow: GET, HEAD;
//   a request with a body (Content-Length above 0, or chunked): 413;
//   headers larger than limits.header_bytes: 431; anything Beast cannot
//   parse (an HTTP version other than 1.0 and 1.1 included): 400. Every
//   error response closes the connection.
// Limits: at most limits.connections connections at once (one more is closed
// at accept); limits.request_time for a whole request, from the moment the
// server waits for its first byte to the last byte of its response (a client
// that sends a byte a second, or reads its response that slowly, is cut off;
// an idle keep-alive connection is closed after it too).
//
// Thread-safety: start() and stop() from one thread; render is called on the
// server's thread; stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "bulkhead/error.hpp"
#include "bulkhead/export/metrics_writer.hpp"
#include "cli.hpp"

namespace bulkhead::agent_tool {

struct http_limits {
  std::size_t header_bytes = 8192;
  std::size_t connections = 64;
  std::chrono::milliseconds request_time{5000};
};

struct http_stats {
  std::atomic<std::uint64_t> requests{0};       // responses sent, any status
  std::atomic<std::uint64_t> metrics{0};        // 200 responses to /metrics
  std::atomic<std::uint64_t> refused{0};        // connections closed at accept (over the limit)
  std::atomic<std::uint64_t> bad_requests{0};   // 400, 413, 431
  std::atomic<std::uint64_t> timeouts{0};       // connections cut off by request_time
};

class http_server {
 public:
  using render_fn = std::function<std::shared_ptr<const std::string>(metrics::format)>;

  // Binds and listens (errors: the address in use, not available, refused),
  // then serves on a thread of its own.
  [[nodiscard]] static result<std::unique_ptr<http_server>> start(const listen_address& at, http_limits limits,
                                                                  render_fn render);
  ~http_server();  // stop()
  void stop();
  [[nodiscard]] const http_stats& stats() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept;  // the port bound (for port 0)

  struct impl;

 private:
  explicit http_server(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead::agent_tool
