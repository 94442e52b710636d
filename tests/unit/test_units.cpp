// Units: conversions, overflow, limit<T>.
#include <doctest/doctest.h>

#include "bulkhead/units.hpp"

using namespace bulkhead;
using namespace std::chrono_literals;

TEST_CASE("quantity arithmetic is checked") {
  const bytes a{5}, b{7};
  CHECK((a + b).count() == 12);
  CHECK((b - a).count() == 2);
  CHECK((a * 3).count() == 15);
  CHECK_FALSE(a.checked_sub(b).has_value());
  CHECK_THROWS_AS(a - b, bulkhead::overflow_error);
  CHECK_FALSE(bytes::max().checked_add(bytes{1}).has_value());
  CHECK_THROWS_AS(bytes::max() + bytes{1}, bulkhead::overflow_error);
  CHECK_FALSE(bytes{1ull << 63}.checked_mul(2).has_value());
  CHECK_THROWS_AS(bytes{1ull << 63} * 2, bulkhead::overflow_error);
  bytes c{1};
  c += bytes{2};
  CHECK(c == bytes{3});
  CHECK(bytes{1} < bytes{2});
}

TEST_CASE("KiB <-> bytes") {
  CHECK(to_bytes(kibibytes{4})->count() == 4096);
  CHECK_FALSE(to_bytes(kibibytes{~0ull}).has_value());
  CHECK(to_kibibytes_exact(bytes{8192})->count() == 8);
  CHECK_FALSE(to_kibibytes_exact(bytes{8193}).has_value());
  CHECK(to_kibibytes_ceil(bytes{8193}).count() == 9);
  CHECK(to_kibibytes_ceil(bytes{0}).count() == 0);
}

TEST_CASE("libvirt bandwidth kilobytes") {
  CHECK(to_bytes_per_second(kilobytes_per_second{1000})->count() == 1'000'000);
  CHECK_FALSE(to_bytes_per_second(kilobytes_per_second{~0ull}).has_value());
  CHECK(to_kilobytes_per_second_exact(bytes_per_second{5000})->count() == 5);
  CHECK_FALSE(to_kilobytes_per_second_exact(bytes_per_second{5001}).has_value());
  CHECK(to_bytes(kilobytes{2})->count() == 2048);
  CHECK(to_bits_per_second(bytes_per_second{125})->count() == 1000);
  CHECK_FALSE(to_bits_per_second(bytes_per_second{~0ull}).has_value());
  CHECK(to_bytes_per_second_floor(bits_per_second{1001}).count() == 125);
}

TEST_CASE("CFS quota <-> millicores") {
  CHECK(to_millicores(25000us, 100000us)->count() == 250);
  CHECK(to_millicores(150000us, 100000us)->count() == 1500);
  CHECK(to_millicores(1us, 3us)->count() == 333);  // rounds down
  CHECK_FALSE(to_millicores(1000us, 0us).has_value());
  CHECK_FALSE(to_millicores(-1us, 1000us).has_value());
  CHECK(to_cfs_quota(millicores{250}, 100000us)->count() == 25000);
  CHECK(to_cfs_quota(millicores{333}, 1000us)->count() == 333);
  CHECK(to_cfs_quota(millicores{1}, 1001us)->count() == 2);  // rounds up
  CHECK_FALSE(to_cfs_quota(millicores{1}, 0us).has_value());
  CHECK_FALSE(to_cfs_quota(millicores{~0ull}, 1000000us).has_value());
  CHECK(detail::muldiv_floor(~0ull, ~0ull, ~0ull).value() == ~0ull);  // 128-bit intermediate
  CHECK_FALSE(detail::muldiv_floor(~0ull, 2, 1).has_value());
  CHECK(to_unsigned_ns(5ns).value() == 5);
  CHECK_FALSE(to_unsigned_ns(-5ns).has_value());
}

TEST_CASE("limit<T> is a value or unlimited, never a sentinel") {
  limit<bytes> u = unlimited;
  limit<bytes> z = bytes{0};
  CHECK(u.is_unlimited());
  CHECK(z.is_bounded());
  CHECK(z.value() == bytes{0});
  CHECK_FALSE(u == z);
  CHECK(u == limit<bytes>{unlimited});
  CHECK(u.admits(bytes::max()));
  CHECK(z.admits(bytes{0}));
  CHECK_FALSE(z.admits(bytes{1}));
  CHECK_FALSE(u.bound().has_value());
  CHECK(z.bound() == bytes{0});
}
