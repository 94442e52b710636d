// Confined file access on a real directory tree, with planted links.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bulkhead/backend/rooted_fs.hpp"
#include "test_support.hpp"

using namespace bulkhead;
namespace fs = std::filesystem;

namespace {
void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}
}  // namespace

TEST_CASE("rooted_dir reads, lists and writes beneath its root") {
  test::temp_dir t;
  write(t.path() / "root/a/cpu.max", "max 100000\n");
  write(t.path() / "root/b", "x");
  auto r = rooted_dir::open((t.path() / "root").string());
  REQUIRE(r);
  CHECK(r->read_file("a/cpu.max").value() == "max 100000\n");
  CHECK(r->list().value() == std::vector<std::string>{"a", "b"});
  CHECK(r->exists("a").value());
  CHECK_FALSE(r->exists("nope").value());
  CHECK(r->is_directory("a").value());
  CHECK_FALSE(r->is_directory("b").value());
  REQUIRE(r->write_file("a/cpu.max", "50000 100000"));
  CHECK(r->read_file("a/cpu.max").value() == "50000 100000");
  REQUIRE(r->make_dir("c"));
  CHECK(r->make_dir("c").error().code() == errc::already_exists);
  REQUIRE(r->remove_dir("c"));
  auto sub = r->subdir("a");
  REQUIRE(sub);
  CHECK(sub->read_file("cpu.max").value() == "50000 100000");
  auto missing = r->read_file("a/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == errc::not_found);
  CHECK(missing.error().message().find("a/none") != std::string::npos);
  auto big = r->read_file("a/cpu.max", 4);
  CHECK(big.error().code() == errc::out_of_range);
  // write_file never creates: cgroup files must exist.
  CHECK(r->write_file("a/new", "1").error().code() == errc::not_found);
}

TEST_CASE("links inside the root are followed, links out of it are refused") {
  test::temp_dir t;
  write(t.path() / "outside/secret", "top secret");
  write(t.path() / "root/dev/real/stat", "1 2 3");
  fs::create_directory_symlink("real", t.path() / "root/dev/alias");
  fs::create_symlink("../../outside/secret", t.path() / "root/leak");
  fs::create_symlink("/etc/passwd", t.path() / "root/abs");
  fs::create_directory_symlink(t.path() / "outside", t.path() / "root/outdir");
  auto r = rooted_dir::open((t.path() / "root").string());
  REQUIRE(r);
  CHECK(r->read_file("dev/alias/stat").value() == "1 2 3");
  for (auto p : {"leak", "abs", "outdir/secret"}) {
    auto x = r->read_file(p);
    REQUIRE_FALSE(x);
    INFO(x.error().describe());
    CHECK(x.error().code() == errc::unsafe_path);
  }
  CHECK(r->write_file("leak", "pwned").error().code() == errc::unsafe_path);
  CHECK(r->read_link("leak").value() == "../../outside/secret");
  auto dd = r->read_file("dev/../../outside/secret");
  REQUIRE_FALSE(dd);
  CHECK(dd.error().code() == errc::unsafe_path);
  CHECK(r->read_file("/etc/passwd").error().code() == errc::unsafe_path);
  std::ifstream in(t.path() / "outside/secret");
  std::string s;
  std::getline(in, s);
  CHECK(s == "top secret");
}

TEST_CASE("names that become paths are validated") {
  CHECK(validate_name("batch-01", "cgroup name"));
  CHECK(validate_name("Žluťoučký kůň", "name"));
  const std::string nul("a\0b", 3);
  for (std::string_view bad : {std::string_view(""), std::string_view("."), std::string_view(".."),
                               std::string_view("a/b"), std::string_view(nul), std::string_view("a\nb"),
                               std::string_view("\xff")}) {
    auto r = validate_name(bad, "cgroup name");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().rfind("cgroup name", 0) == 0);
  }
  CHECK_FALSE(validate_name(std::string(256, 'a'), "name"));
  CHECK(validate_name(std::string(255, 'a'), "name"));
  CHECK_FALSE(validate_name("abc", "name", 2));
}
