// bulkhead-agent's HTTP endpoint; contract in http_server.hpp.
#include "http_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>
#include <thread>

namespace bulkhead::agent_tool {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct http_server::impl {
  // Declared before the io_context: sessions still queued in it when it is
  // destroyed use them.
  http_limits limits;
  render_fn render;
  http_stats stats;
  std::size_t active = 0;  // connections open (touched on the io thread only)
  std::uint16_t port = 0;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  void accept();
};

namespace {

constexpr const char* om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
constexpr const char* text_type = "text/plain; version=0.0.4; charset=utf-8";

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket s, http_server::impl& srv) : stream_(std::move(s)), srv_(srv) { ++srv_.active; }
  ~session() { --srv_.active; }

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.limits.header_bytes));
    parser_->body_limit(0);
    // One deadline per request: waiting for it, reading it, writing the answer.
    stream_.expires_after(srv_.limits.request_time);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) return close();
    if (ec == beast::error::timeout) {
      ++srv_.stats.timeouts;
      return;  // the stream is closed already
    }
    if (ec == http::error::header_limit) return fail(http::status::request_header_fields_too_large, "Request headers too large.\n");
    if (ec == http::error::body_limit || ec == http::error::unexpected_body)
      return fail(http::status::payload_too_large, "This endpoint takes no request body.\n");
    if (ec) return fail(http::status::bad_request, "Bad request.\n");
    const auto& req = parser_->get();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      auto res = error_response(http::status::method_not_allowed, "Only GET and HEAD.\n", req.version());
      res->set(http::field::allow, "GET, HEAD");
      return send_close(std::move(res));
    }
    std::string_view target(req.target().data(), req.target().size());
    if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (target != "/metrics")
      return send_close(error_response(http::status::not_found, "Not found: the only path is /metrics.\n", req.version()));
    const auto accept = req[http::field::accept];
    const auto f = wants_openmetrics(std::string_view(accept.data(), accept.size())) ? metrics::format::openmetrics
                                                                                     : metrics::format::prometheus;
    body_ = srv_.render(f);
    if (!body_) return fail(http::status::service_unavailable, "No metrics yet.\n");
    const bool keep = req.keep_alive();
    ++srv_.stats.metrics;
    if (req.method() == http::verb::head) {
      auto res = std::make_shared<http::response<http::empty_body>>(http::status::ok, req.version());
      res->set(http::field::content_type, f == metrics::format::openmetrics ? om_type : text_type);
      res->content_length(body_->size());
      res->keep_alive(keep);
      return send(std::move(res), keep);
    }
    auto res = std::make_shared<http::response<http::span_body<const char>>>(http::status::ok, req.version());
    res->body() = beast::span<const char>(body_->data(), body_->size());
    res->set(http::field::content_type, f == metrics::format::openmetrics ? om_type : text_type);
    res->content_length(body_->size());
    res->keep_alive(keep);
    send(std::move(res), keep);
  }

  std::shared_ptr<http::response<http::string_body>> error_response(http::status s, std::string text, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(s, version);
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->keep_alive(false);
    res->body() = std::move(text);
    res->prepare_payload();
    return res;
  }

  void fail(http::status s, std::string text) {
    ++srv_.stats.bad_requests;
    send_close(error_response(s, std::move(text), 11));
  }

  template <class Res>
  void send_close(std::shared_ptr<Res> res) {
    send(std::move(res), false);
  }

  template <class Res>
  void send(std::shared_ptr<Res> res, bool keep) {
    ++srv_.stats.requests;
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
      if (ec == beast::error::timeout) {
        ++self->srv_.stats.timeouts;
        return;
      }
      if (ec || !keep) return self->close();
      self->body_.reset();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  http_server::impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::shared_ptr<const std::string> body_;  // kept alive while it is written
};

}  // namespace

void http_server::impl::accept() {
  acceptor.async_accept(io, [this](beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (active >= limits.connections) {
        ++stats.refused;
        beast::error_code ignored;
        s.close(ignored);
      } else {
        std::make_shared<session>(std::move(s), *this)->start();
      }
    }
    accept();
  });
}

http_server::http_server(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}

http_server::~http_server() { stop(); }

result<std::unique_ptr<http_server>> http_server::start(const listen_address& at, http_limits limits, render_fn render) {
  auto p = std::make_unique<impl>();
  p->limits = limits;
  p->render = std::move(render);
  const std::string where = (at.v6 ? "[" + at.host + "]" : at.host) + ":" + std::to_string(at.port);
  beast::error_code ec;
  const auto addr = asio::ip::make_address(at.host, ec);
  if (ec) return bulkhead::fail(errc::invalid_argument, "--listen " + where + ": " + ec.message());
  const tcp::endpoint ep(addr, at.port);
  p->acceptor.open(ep.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && at.v6) p->acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) p->acceptor.bind(ep, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    const auto code = ec == asio::error::address_in_use ? errc::conflict
                      : ec == asio::error::access_denied ? errc::permission_denied
                                                         : errc::io_error;
    return bulkhead::fail(code, "cannot listen on " + where + ": " + ec.message());
  }
  p->port = p->acceptor.local_endpoint().port();
  p->accept();
  auto* raw = p.get();
  p->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

void http_server::stop() {
  if (!p_ || !p_->thread.joinable()) return;
  asio::post(p_->io, [raw = p_.get()] {
    beast::error_code ignored;
    raw->acceptor.close(ignored);
  });
  p_->io.stop();
  p_->thread.join();
}

const http_stats& http_server::stats() const noexcept { return p_->stats; }
std::uint16_t http_server::port() const noexcept { return p_->port; }

}  // namespace bulkhead::agent_tool
