// bulkhead-inspect's executable: answers --version itself and loads the rest
// of the tool (bulkhead-inspect-impl.so: libbulkhead, libvirt and its
// dependency closure of some 56 shared libraries) only when it is needed.
// Mapping and relocating libvirt's closure costs about 28 ms of CPU on the
// development machine (docs/BENCHMARKS.md), which would otherwise be paid by
// every start, --version included.
//
// The module is looked up next to this executable (the build tree), then at
// BULKHEAD_INSPECT_MODULE_DIR relative to the executable's folder (an
// installed tree, wherever it was moved or DESTDIR put it), then at the
// absolute install path.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#ifndef BULKHEAD_VERSION
#define BULKHEAD_VERSION "unknown"
#endif
#ifndef BULKHEAD_INSPECT_MODULE_DIR
#define BULKHEAD_INSPECT_MODULE_DIR "../lib/bulkhead"
#endif
#ifndef BULKHEAD_INSPECT_MODULE_ABS_DIR
#define BULKHEAD_INSPECT_MODULE_ABS_DIR "/usr/local/lib/bulkhead"
#endif

namespace {

constexpr const char* module_name = "bulkhead-inspect-impl.so";

std::string exe_dir() {
  std::vector<char> buf(4096);
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string p(buf.data(), static_cast<std::size_t>(n));
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash == 0 ? 1 : slash);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("bulkhead-inspect %s\n", BULKHEAD_VERSION);
    return 0;
  }
  const std::string dir = exe_dir();
  const std::string rel = BULKHEAD_INSPECT_MODULE_DIR;
  std::vector<std::string> candidates{dir + "/" + module_name};
  candidates.push_back(rel.starts_with("/") ? rel + "/" + module_name : dir + "/" + rel + "/" + module_name);
  candidates.push_back(std::string(BULKHEAD_INSPECT_MODULE_ABS_DIR) + "/" + module_name);
  std::string errors;
  for (const auto& c : candidates) {
    if (::access(c.c_str(), F_OK) != 0) continue;
    void* h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      errors += std::string("\n  ") + ::dlerror();
      continue;
    }
    using entry = int (*)(int, char**);
    auto* f = reinterpret_cast<entry>(::dlsym(h, "bulkhead_inspect_main"));
    if (!f) {
      errors += "\n  " + c + ": no bulkhead_inspect_main";
      continue;
    }
    return f(argc, argv);
  }
  std::fprintf(stderr, "bulkhead-inspect: cannot load the tool's module %s (looked in %s, %s/%s and %s)%s\n",
               module_name, dir.c_str(), dir.c_str(), rel.c_str(), BULKHEAD_INSPECT_MODULE_ABS_DIR, errors.c_str());
  return 1;
}
