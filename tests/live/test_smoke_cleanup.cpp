// The guest machinery cleans up after a test that dies: a process that aborts
// or is terminated (meson's timeout sends SIGTERM) while it owns a running
// guest leaves no domain behind.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "live_guest.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {

// Forks a child that starts a guest, reports its name on a pipe and then dies
// of `sig` (raised by itself for SIGABRT, sent by the parent otherwise).
void die_owning_a_guest(int sig) {
  const auto& env = live::require_live();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    for (int s : {SIGABRT, SIGTERM, SIGINT}) std::signal(s, SIG_DFL);  // not doctest's report
    try {
      live::connection conn(env);
      live::guest g(env, conn, {.tag = "orphan", .mode = live::guest_mode::idle});
      const std::string n = g.name() + "\n";
      if (::write(fds[1], n.data(), n.size()) != static_cast<ssize_t>(n.size())) ::_exit(4);
      if (sig == SIGABRT) std::abort();
      for (;;) ::pause();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      ::_exit(3);
    }
  }
  ::close(fds[1]);
  std::string name;
  char c = 0;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') name += c;
  ::close(fds[0]);

  live::connection conn(env);
  if (sig != SIGABRT) {
    REQUIRE_FALSE(name.empty());
    virDomainPtr d = virDomainLookupByName(conn.get(), name.c_str());
    REQUIRE(d != nullptr);
    int st = 0, reason = 0;
    CHECK(virDomainGetState(d, &st, &reason, 0) == 0);
    CHECK(st == VIR_DOMAIN_RUNNING);
    virDomainFree(d);
    ::kill(child, sig);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child status " << status);
  REQUIRE_FALSE(name.empty());
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == sig);
  virDomainPtr d = virDomainLookupByName(conn.get(), name.c_str());
  CHECK(d == nullptr);
  CHECK_FALSE(std::filesystem::exists(env.guests / name));
  if (d) {  // leave nothing behind even when the check fails
    virDomainDestroy(d);
    virDomainUndefine(d);
    virDomainFree(d);
  }
}

}  // namespace

TEST_CASE("a guest does not outlive a process that aborts") { die_owning_a_guest(SIGABRT); }

TEST_CASE("a guest does not outlive a process that is terminated") { die_owning_a_guest(SIGTERM); }

TEST_CASE("a guest does not outlive a process that is interrupted") { die_owning_a_guest(SIGINT); }
