// Smoke test of the live machinery: a guest whose /init writes to its virtio
// disk (dd conv=fsync in a loop) moves libvirt's block counters
// (virDomainBlockStats wr_bytes, wr_req) and fills the raw file on the host.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "live_guest.hpp"

using namespace bulkhead;
using namespace bulkhead::test;
using namespace std::chrono_literals;

namespace {
std::uint64_t allocated_bytes(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}
}  // namespace

TEST_CASE("a guest writing to its disk moves wr_bytes and fills the disk file") {
  const auto& env = live::require_live();
  live::connection conn(env);
  live::guest g(env, conn, {.tag = "write", .mode = live::guest_mode::write, .disk_size = bytes{64ull << 20}});
  const auto boot = g.wait_ready();
  MESSAGE("boot to /init (" << live::to_string(env.accel) << "): " << boot.count() << " ms");

  const auto a = live::read_block(g.domain(), "vda");
  const auto a_at = mono_clock::now();
  const std::uint64_t want = 8ull << 20;
  auto b = a;
  const auto deadline = a_at + 60s;
  while (static_cast<std::uint64_t>(b.wr_bytes - a.wr_bytes) < want && mono_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    b = live::read_block(g.domain(), "vda");
  }
  const nanoseconds wall = mono_clock::now() - a_at;
  const auto grew = static_cast<std::uint64_t>(b.wr_bytes - a.wr_bytes);
  MESSAGE("wr_bytes +" << grew << " in " << wall.count() / 1000000 << " ms (" << grew * 1000000000ull / static_cast<std::uint64_t>(wall.count())
                       << " B/s), wr_req +" << (b.wr_req - a.wr_req));
  CHECK(grew >= want);
  CHECK(b.wr_req > a.wr_req);
  // The writes reached the raw file (the guest writes from 1 MiB on).
  CHECK(allocated_bytes(g.disk_path()) >= want);
}
