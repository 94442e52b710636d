// Internal to the libvirt backend: the connection state and the helpers the
// read path (backend.cpp) and the write path (apply.cpp)
// share. Not installed.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <string>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "bulkhead/backend/libvirt/domain_xml.hpp"

namespace bulkhead::libvirt::detail {

struct domain_deleter {
  void operator()(virDomainPtr d) const noexcept {
    if (d) virDomainFree(d);
  }
};
using domain_ptr = std::unique_ptr<virDomain, domain_deleter>;

// The error libvirt recorded for this thread, as a bulkhead error:
// VIR_ERR_NO_DOMAIN -> vanished; NO_SUPPORT / OPERATION_UNSUPPORTED /
// ARGUMENT_UNSUPPORTED -> unsupported; OPERATION_DENIED / ACCESS_DENIED /
// AUTH_FAILED -> permission_denied; a dead connection -> connection_lost;
// anything else -> `fallback`. `what` says what was being done.
[[nodiscard]] error last_error(virConnectPtr conn, errc fallback, const std::string& what);

// Installs a silent libvirt error handler once per process, so libvirt never
// prints to stderr on bulkhead's behalf (errors are returned as values).
void silence_libvirt_errors() noexcept;

// The XML of a domain, parsed. flags: 0 (live) or VIR_DOMAIN_XML_INACTIVE.
[[nodiscard]] result<parsed_domain> fetch_domain(virConnectPtr conn, virDomainPtr dom, unsigned flags);

[[nodiscard]] instance_state state_from_libvirt(int s) noexcept;

// libvirt's client writes to the daemon's socket from the calling thread and
// leaves SIGPIPE to the application (virsh installs its own handler), so a
// call made after libvirtd died raises SIGPIPE, whose default action ends the
// process. Every public call of the backend holds one of these: SIGPIPE is
// blocked in the calling thread for the call, and one the call raised (not
// pending before it) is taken off before the old mask returns; the broken
// connection then surfaces as libvirt's error (errc::connection_lost). The
// technique of PostgreSQL's libpq (pq_block_sigpipe / pq_reset_sigpipe).
// Not covered: a thread running a libvirt event loop (virEventRunDefaultImpl)
// also writes; an application that runs one must block or ignore SIGPIPE there.
class sigpipe_guard {
 public:
  sigpipe_guard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  }
  ~sigpipe_guard() {
    const int saved = errno;
    sigset_t pending;
    sigemptyset(&pending);
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t pipe_{}, old_{};
  bool was_pending_ = false;
};

}  // namespace bulkhead::libvirt::detail

namespace bulkhead::libvirt {

struct backend::impl {
  libvirt::options options;
  std::string uri;  // as libvirt reports it once connected
  virConnectPtr conn = nullptr;

  ~impl() {
    if (conn) virConnectClose(conn);
  }
  // Opens (or re-opens) the connection.
  [[nodiscard]] result<void> open();
  // Reconnects when the connection is missing or dead.
  [[nodiscard]] result<virConnectPtr> live();
  // Marks the connection dead when `e` says it is.
  void note(const error& e);
};

}  // namespace bulkhead::libvirt
