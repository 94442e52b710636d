// libFuzzer target: the cgroup v1/v2 control-file parsers
// (bulkhead/backend/cgroup/files.hpp, namespace cgroup). The first byte of the
// input picks the parser (seeds: corpus/cgroup_files/, named after the file
// they hold); the rest is the file's text.
// Invariants besides "no crash": every error has a message naming the file;
// an accepted cpu.max prints and parses back to the same value, with a
// positive period; an accepted number prints and parses back to itself; a
// "max" reads as unlimited; parsed keys and devices are non-empty.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bulkhead/backend/cgroup/files.hpp"
#include "fuzz_support.hpp"

using namespace bulkhead;
namespace cg = bulkhead::cgroup;

namespace {

constexpr std::string_view name = "fuzzed.file";

template <class T>
bool check_error(const result<T>& r, std::string_view what) {
  if (r) return true;
  fuzz::expect_clear(r.error(), what);
  fuzz::expect(r.error().message().find(name) != std::string::npos,
               std::string(what) + ": the error does not name the file: " + r.error().message());
  return false;
}

void u64_round_trip(std::uint64_t v, std::string_view what) {
  auto again = cg::parse_u64(std::to_string(v), name);
  fuzz::expect(again && *again == v, std::string(what) + ": a parsed number does not parse back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned pick = data[0] % 10;
  const auto text = fuzz::as_text(data + 1, size - 1);
  switch (pick) {
    case 0: {  // v2 cpu.max
      auto r = cg::parse_cpu_max(text, name);
      if (!check_error(r, "cpu.max")) break;
      fuzz::expect(r->period.count() > 0, "cpu.max: a period that is not positive was accepted");
      fuzz::expect(r->quota.is_unlimited() || r->quota.value().count() >= 0, "cpu.max: a negative quota was accepted");
      auto again = cg::parse_cpu_max(cg::format_cpu_max(*r), name);
      fuzz::expect(again && *again == *r, "cpu.max: print and parse again gives another value");
      break;
    }
    case 1: {  // v2 memory.max and friends
      auto r = cg::parse_v2_bytes(text, name);
      if (!check_error(r, "memory.max")) break;
      if (r->is_unlimited()) break;
      u64_round_trip(r->value().count(), "memory.max");
      break;
    }
    case 2: {  // v1 memory.limit_in_bytes
      auto r = cg::parse_v1_bytes(text, 4096, name);
      if (!check_error(r, "memory.limit_in_bytes")) break;
      if (!r->is_unlimited()) u64_round_trip(r->value().count(), "memory.limit_in_bytes");
      break;
    }
    case 3: {  // cpu.weight, cpuacct.usage ...
      auto r = cg::parse_u64(text, name);
      if (check_error(r, "u64")) u64_round_trip(*r, "u64");
      break;
    }
    case 4: {  // cpu.stat, memory.events
      auto r = cg::parse_flat_keyed(text, name);
      if (!check_error(r, "flat keyed")) break;
      std::string printed;
      for (const auto& [k, v] : *r) {
        fuzz::expect(!k.empty() && k.find_first_of(" \t\n") == std::string::npos, "flat keyed: a bad key was accepted");
        printed += k + " " + std::to_string(v) + "\n";
      }
      auto again = cg::parse_flat_keyed(printed, name);
      fuzz::expect(again && *again == *r, "flat keyed: print and parse again gives another map");
      break;
    }
    case 5: {  // MAJ:MIN
      auto r = cg::parse_device(text, name);
      if (!check_error(r, "device")) break;
      fuzz::expect(r->find(':') != std::string::npos, "device: accepted without a colon");
      auto again = cg::parse_device(*r, name);
      fuzz::expect(again && *again == *r, "device: not stable");
      break;
    }
    case 6: {  // io.max, io.stat
      auto r = cg::parse_nested_keyed(text, name);
      if (!check_error(r, "nested keyed")) break;
      for (const auto& [dev, kv] : *r) {
        fuzz::expect(cg::parse_device(dev, name).has_value(), "nested keyed: a bad device was accepted");
        for (const auto& [k, v] : kv) fuzz::expect(!k.empty(), "nested keyed: an empty key was accepted");
      }
      break;
    }
    case 7: {  // io.weight
      auto r = cg::parse_io_weight(text, name);
      if (!check_error(r, "io.weight")) break;
      for (const auto& [dev, v] : r->devices)
        fuzz::expect(cg::parse_device(dev, name).has_value(), "io.weight: a bad device was accepted");
      break;
    }
    case 8: {  // blkio.throttle.*_device
      auto r = cg::parse_device_values(text, name);
      if (!check_error(r, "device values")) break;
      for (const auto& [dev, v] : *r)
        fuzz::expect(cg::parse_device(dev, name).has_value(), "device values: a bad device was accepted");
      break;
    }
    default: {  // blkio.throttle.io_service_bytes
      auto r = cg::parse_blkio_stat(text, name);
      if (!check_error(r, "blkio stat")) break;
      for (const auto& [dev, v] : *r) fuzz::expect(!dev.empty(), "blkio stat: an empty device was accepted");
      break;
    }
  }
  return 0;
}
