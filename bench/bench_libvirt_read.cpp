// Whole-host read of a generated libvirt test-driver node with 1,000 domains.
//
//   BM_LibvirtOpen        libvirt itself opening and parsing the node (reported apart)
//   BM_PlainCApi          baseline: each domain's XML, info and one disk's stats with the C API
//   BM_BulkheadReadAll    libvirt::backend::read_all(): every domain, spec and every counter
//   BM_BulkheadParseOnly  bulkhead's own work: parsing the 1,000 domain XMLs
//   BM_InspectJsonProcess bulkhead-inspect --json as a whole process (includes libvirt's open)
//   BM_InspectOpenMetricsProcess  the same with --format openmetrics
//   BM_VirshOpenProcess           reference: virsh -r -c <node> uri (a fresh process's open only)
//   BM_VirshListProcess           peer: virsh -r -c <node> list --all (libvirt's open + list)
//   BM_InspectVersionProcess      start-up: bulkhead-inspect --version, beside
//   BM_VirshVersionProcess        virsh --version (the same libvirt.so) and
//   BM_TrueProcess                /bin/true
// Process benchmarks report the child's CPU time (wait4) as child_cpu_ms.
//
// Run: ./build-rel/bench/bench_libvirt_read   (BULKHEAD_INSPECT=path/to/bulkhead-inspect for the last)
#include <benchmark/benchmark.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bulkhead/backend/libvirt/backend.hpp"
#include "bulkhead/backend/libvirt/domain_xml.hpp"

namespace {

constexpr int domains = 1000;

// A node file with `domains` domains: mixed quotas, 1-2 disks with iotune,
// an interface with bandwidth, bulkhead metadata.
const std::string& node_path() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/bulkhead-bench-node-XXXXXX.xml";
    const int fd = mkstemps(tmpl, 4);
    if (fd < 0) std::abort();
    close(fd);
    std::ofstream f(tmpl);
    f << "<node><cpu><mhz>2600</mhz><model>x86_64</model><active>64</active><nodes>2</nodes>"
         "<sockets>1</sockets><cores>16</cores><threads>2</threads></cpu><memory>536870912</memory>\n";
    static const char* classes[] = {"LSE", "LSR", "LS", "BE"};
    for (int i = 0; i < domains; ++i) {
      char uuid[40];
      std::snprintf(uuid, sizeof uuid, "b1000000-0000-4000-8000-%012d", i);
      f << "<domain type='test'><name>vm-" << i << "</name><uuid>" << uuid << "</uuid>"
        << "<metadata><bulkhead:instance xmlns:bulkhead='urn:bulkhead:instance:1'><bulkhead:tenant>tenant-"
        << i % 37 << "</bulkhead:tenant><bulkhead:qos_class>" << classes[i % 4]
        << "</bulkhead:qos_class></bulkhead:instance></metadata>"
        << "<memory unit='MiB'>" << 1024 * (1 + i % 4) << "</memory><memtune><hard_limit unit='MiB'>"
        << 1024 * (1 + i % 4) + 256 << "</hard_limit></memtune><vcpu>" << 1 + i % 4 << "</vcpu>"
        << "<cputune><shares>" << 1024 * (1 + i % 4) << "</shares><period>100000</period><quota>"
        << 25000 * (1 + i % 4) << "</quota>";
      if (i % 4 == 0) f << "<vcpupin vcpu='0' cpuset='" << i % 64 << "'/>";
      f << "</cputune><os><type>hvm</type></os><devices>"
        << "<disk type='file' device='disk'><source file='/img/" << i << "-a.img'/><target dev='vda' bus='virtio'/>"
        << "<iotune><read_bytes_sec>104857600</read_bytes_sec><write_bytes_sec>52428800</write_bytes_sec>"
        << "<read_iops_sec>4000</read_iops_sec></iotune></disk>";
      if (i % 2) f << "<disk type='file' device='disk'><source file='/img/" << i << "-b.img'/><target dev='vdb' bus='virtio'/></disk>";
      f << "<interface type='network'><mac address='52:54:00:" << std::hex << ((i >> 8) & 0xff) / 16
        << ((i >> 8) & 0xff) % 16 << ":" << (i & 0xff) / 16 << (i & 0xff) % 16 << std::dec
        << ":01'/><source network='default'/><bandwidth><inbound average='125000' peak='250000' burst='10240'/>"
        << "<outbound average='125000'/></bandwidth></interface></devices></domain>\n";
    }
    f << "</node>\n";
    return std::string(tmpl);
  }();
  return path;
}

std::string uri() { return "test://" + node_path(); }

void BM_LibvirtOpen(benchmark::State& state) {
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  const auto u = uri();
  for (auto _ : state) {
    virConnectPtr c = virConnectOpenReadOnly(u.c_str());
    if (!c) state.SkipWithError("cannot open the node");
    virConnectClose(c);
  }
}
BENCHMARK(BM_LibvirtOpen)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_PlainCApi(benchmark::State& state) {
  virConnectPtr c = virConnectOpenReadOnly(uri().c_str());
  for (auto _ : state) {
    virDomainPtr* doms = nullptr;
    const int n = virConnectListAllDomains(c, &doms, 0);
    for (int i = 0; i < n; ++i) {
      char* xml = virDomainGetXMLDesc(doms[i], 0);
      benchmark::DoNotOptimize(xml);
      std::free(xml);
      virDomainInfo info;
      virDomainGetInfo(doms[i], &info);
      virDomainBlockStatsStruct bs;
      virDomainBlockStats(doms[i], "vda", &bs, sizeof bs);
      virDomainFree(doms[i]);
    }
    std::free(doms);
  }
  state.counters["per_domain_us"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * domains / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  virConnectClose(c);
}
BENCHMARK(BM_PlainCApi)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_BulkheadReadAll(benchmark::State& state) {
  auto b = bulkhead::libvirt::backend::connect({uri(), true});
  if (!b) {
    state.SkipWithError(b.error().describe().c_str());
    return;
  }
  std::size_t counters = 0;
  for (auto _ : state) {
    auto r = (*b)->read_all();
    if (!r || r->instances.size() != domains) state.SkipWithError("read_all failed");
    counters = 0;
    for (const auto& i : r->instances) {
      counters += 3 + i.usage.vcpu_time.size() + 4 * i.usage.disks.size() + 8 * i.usage.interfaces.size();
    }
    benchmark::DoNotOptimize(r);
  }
  state.counters["per_domain_us"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * domains / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["counters_read"] = static_cast<double>(counters);
}
BENCHMARK(BM_BulkheadReadAll)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_BulkheadParseOnly(benchmark::State& state) {
  virConnectPtr c = virConnectOpenReadOnly(uri().c_str());
  std::vector<std::string> xmls;
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(c, &doms, 0);
  for (int i = 0; i < n; ++i) {
    char* x = virDomainGetXMLDesc(doms[i], 0);
    xmls.emplace_back(x);
    std::free(x);
    virDomainFree(doms[i]);
  }
  std::free(doms);
  virConnectClose(c);
  for (auto _ : state)
    for (const auto& x : xmls) {
      auto p = bulkhead::libvirt::parse_domain_xml(x);
      benchmark::DoNotOptimize(p);
    }
  state.counters["per_domain_us"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * domains / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_BulkheadParseOnly)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Runs argv with stdout to /dev/null; adds the child's CPU time (user + sys,
// from wait4) to *child_cpu.
int run_quiet(const std::vector<std::string>& argv, double* child_cpu = nullptr) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  rusage ru{};
  wait4(pid, &st, 0, &ru);
  if (child_cpu)
    *child_cpu += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Runs a process per iteration; reports its CPU time as child_cpu_ms.
void process_bench(benchmark::State& state, const std::vector<std::string>& argv, const char* what) {
  double cpu = 0;
  for (auto _ : state)
    if (run_quiet(argv, &cpu) != 0) state.SkipWithError(what);
  state.counters["child_cpu_ms"] = benchmark::Counter(cpu * 1e3, benchmark::Counter::kAvgIterations);
}

const char* inspect_tool(benchmark::State& state) {
  const char* tool = std::getenv("BULKHEAD_INSPECT");
  if (!tool) state.SkipWithError("set BULKHEAD_INSPECT to the bulkhead-inspect binary");
  return tool;
}

void BM_InspectJsonProcess(benchmark::State& state) {
  if (const char* tool = inspect_tool(state))
    process_bench(state, {tool, "--uri", uri(), "--json"}, "bulkhead-inspect failed");
}
BENCHMARK(BM_InspectJsonProcess)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

void BM_InspectOpenMetricsProcess(benchmark::State& state) {
  if (const char* tool = inspect_tool(state))
    process_bench(state, {tool, "--uri", uri(), "--format", "openmetrics"}, "bulkhead-inspect failed");
}
BENCHMARK(BM_InspectOpenMetricsProcess)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

// Reference for the tool's overhead: a fresh libvirt client process that only
// opens the node read-only (virsh uri), paying libvirt's open as the tool does.
void BM_VirshOpenProcess(benchmark::State& state) {
  process_bench(state, {"virsh", "-r", "-c", uri(), "uri"}, "virsh uri failed");
}
BENCHMARK(BM_VirshOpenProcess)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

// Peer: virsh opening the same node and listing every domain.
void BM_VirshListProcess(benchmark::State& state) {
  process_bench(state, {"virsh", "-r", "-c", uri(), "list", "--all"}, "virsh list failed");
}
BENCHMARK(BM_VirshListProcess)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

// Start-up: the whole process for --version (dynamic loading of libbulkhead,
// libvirt and its dependency closure, Boost.Program_options included).
void BM_InspectVersionProcess(benchmark::State& state) {
  if (const char* tool = inspect_tool(state)) process_bench(state, {tool, "--version"}, "bulkhead-inspect failed");
}
BENCHMARK(BM_InspectVersionProcess)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

// Peer for start-up: another libvirt client, virsh --version (same libvirt.so).
void BM_VirshVersionProcess(benchmark::State& state) {
  process_bench(state, {"virsh", "--version"}, "virsh --version failed");
}
BENCHMARK(BM_VirshVersionProcess)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

// Baseline for start-up: a process that does nothing.
void BM_TrueProcess(benchmark::State& state) { process_bench(state, {"/bin/true"}, "/bin/true failed"); }
BENCHMARK(BM_TrueProcess)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::remove(node_path().c_str());
  return 0;
}
