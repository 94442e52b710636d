// bulkhead-inspect: a read-only view of a host's instances, their isolation,
// their quotas and their usage. Data to stdout, diagnostics to stderr.
// Exit codes: 0 every source read; 1 a source failed (the rest still
// printed); 2 bad usage; 3 drift found (--desired). Built as a module that
// launcher.cpp loads (see there why).
#include <unistd.h>

#include <algorithm>
#include <expected>
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "bulkhead/accounting/journal.hpp"
#include "bulkhead/accounting/rollup_json.hpp"
#include "bulkhead/backend/drift.hpp"
#include "bulkhead/backend/libvirt/backend.hpp"
#include "bulkhead/export/desired_spec.hpp"
#include "bulkhead/export/json.hpp"
#include "bulkhead/export/metrics.hpp"
#include "format.hpp"
#include "sources.hpp"
#include "watch.hpp"

#ifndef BULKHEAD_VERSION
#define BULKHEAD_VERSION "unknown"
#endif

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace bulkhead;
using nlohmann::json;
using inspect::source_view;

namespace {

// Exit status (bulkhead-inspect.1): 3 only with --desired, when every source
// was read and some instance is not as desired.
constexpr int exit_ok = 0, exit_source_failed = 1, exit_usage = 2, exit_drift = 3;

// The demo host's files: next to the source tree for a build-tree binary,
// under the installed data directory otherwise; BULKHEAD_DEMO_DIR overrides.
fs::path demo_dir() {
  if (const char* env = std::getenv("BULKHEAD_DEMO_DIR"); env && *env) return env;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path build_root = BULKHEAD_BUILD_ROOT;
  if (!ec) {
    const auto rel = exe.lexically_relative(build_root);
    if (!rel.empty() && *rel.begin() != "..") return fs::path(BULKHEAD_SOURCE_DEMO_DIR);
  }
  return fs::path(BULKHEAD_INSTALLED_DEMO_DIR);
}

// "2", "0.5", "1.25" seconds -> milliseconds; strict, at least 200 ms.
std::expected<std::chrono::milliseconds, std::string> parse_interval(const std::string& text) {
  const auto dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  if ((whole.empty() && frac.empty()) || frac.size() > 3 ||
      whole.find_first_not_of("0123456789") != std::string::npos || frac.find_first_not_of("0123456789") != std::string::npos ||
      whole.size() > 6)
    return std::unexpected("not a number of seconds (for example 2 or 0.5)");
  while (frac.size() < 3) frac += '0';
  const long long ms = (whole.empty() ? 0 : std::stoll(whole)) * 1000 + std::stoll(frac);
  if (ms < 200) return std::unexpected("below the minimum of 0.2 seconds");
  return std::chrono::milliseconds{ms};
}

json to_json(const std::vector<source_view>& sources) {
  json doc;
  doc["bulkhead_version"] = BULKHEAD_VERSION;
  doc["read_at_unix_ns"] = std::chrono::time_point_cast<nanoseconds>(wall_clock::now()).time_since_epoch().count();
  doc["host"] = nullptr;
  json hosts = json::array(), srcs = json::array(), insts = json::array(), fails = json::array();
  for (const auto& s : sources) {
    srcs.push_back({{"kind", s.kind},
                    {"uri", s.uri},
                    {"ok", !s.err.has_value()},
                    {"error", s.err ? json(s.err->describe()) : json(nullptr)},
                    {"error_code", s.err ? json(std::string(to_string(s.err->code()))) : json(nullptr)}});
    if (s.host) {
      auto h = nlohmann::json(*s.host);
      if (doc["host"].is_null()) doc["host"] = h;
      h["source"] = s.uri;
      hosts.push_back(std::move(h));
    }
    for (const auto& i : s.instances) insts.push_back(nlohmann::json(i));
    for (const auto& f : s.failures) {
      auto j = nlohmann::json(f);
      j["source"] = s.uri;
      fails.push_back(std::move(j));
    }
  }
  json cards = json::array();
  for (const auto& s : sources)
    for (const auto& c : s.cards) cards.push_back(c);
  doc["cards"] = std::move(cards);
  doc["hosts"] = std::move(hosts);
  doc["sources"] = std::move(srcs);
  doc["instances"] = std::move(insts);
  doc["failures"] = std::move(fails);
  return doc;
}

std::string state_text(instance_state s) {
  return s == instance_state::pmsuspended ? "suspend" : std::string(to_string(s));
}

void print_table(const std::vector<source_view>& sources) {
  using inspect::fit;
  // One summary line per source, then one table of every instance.
  std::vector<const instance_reading*> rows;
  for (const auto& s : sources) {
    std::size_t running = 0;
    for (const auto& i : s.instances) running += i.info.state == instance_state::running;
    const std::string label = s.kind + " ";
    std::string where = inspect::fit_middle(s.uri, 79 - label.size());
    while (!where.empty() && where.back() == ' ') where.pop_back();
    std::printf("%s%s\n", label.c_str(), where.c_str());
    if (s.host)
      std::printf("  %u CPUs, %zu NUMA node%s, %s memory; %zu instances, %zu running\n", s.host->cpus,
                  s.host->numa.size(), s.host->numa.size() == 1 ? "" : "s",
                  inspect::human_bytes(s.host->memory.count()).c_str(), s.instances.size(), running);
    for (const auto& c : s.cards) {
      std::size_t bound = 0, total = 0;
      for (const auto& f : c.value("functions", json::array())) {
        ++total;
        bound += !f.value("instance", json()).is_null();
      }
      std::printf("  card %s: %zu functions, %zu bound; %zu instances, %zu running\n",
                  inspect::printable(c.value("pci_address", std::string("?"))).c_str(), total, bound,
                  s.instances.size(), running);
    }
    if (s.err) std::printf("  ! %s\n", inspect::printable(s.err->describe()).c_str());
    for (const auto& r : s.instances) rows.push_back(&r);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const instance_reading* a, const instance_reading* b) {
    return std::tie(a->info.name, a->info.id.uuid) < std::tie(b->info.name, b->info.id.uuid);
  });
  std::printf("%s %s %s %s %s %s %s %s %s\n", fit("NAME", 14).c_str(), fit("TENANT", 8).c_str(),
              fit("CLASS", 6).c_str(), fit("ISOLATION", 10).c_str(), fit("STATE", 7).c_str(),
              fit("VCPU", 4, true).c_str(), fit("CPU CAP", 7, true).c_str(), fit("MEM LIM", 7, true).c_str(),
              fit("CPU TIME", 8, true).c_str());
  for (const auto* rp : rows) {
    const auto& r = *rp;
    const auto& i = r.info;
    const auto& q = r.enforced;
    std::string vcpu = "-";
    if (q.cpu.vcpus) {
      vcpu = std::to_string(*q.cpu.vcpus);
      if (q.cpu.max_vcpus && *q.cpu.max_vcpus != *q.cpu.vcpus) vcpu += "/" + std::to_string(*q.cpu.max_vcpus);
    }
    std::string cap = "-";
    if (i.modes.get(resource_kind::cpu) == isolation_mode::dedicated && i.kind == instance_kind::bare_metal)
      cap = "board";  // its own compute board: nothing shared to cap
    else if (auto c = vm_cpu_cap(q.cpu))
      cap = c->is_bounded() ? inspect::cores_percent(c->value().count()) : "none";
    std::string mem = "-";
    if (q.memory.hard_limit)
      mem = q.memory.hard_limit->is_bounded() ? inspect::human_bytes(q.memory.hard_limit->value().count()) : "none";
    const std::string cpu =
        r.usage.cpu_time ? inspect::cpu_time(static_cast<std::uint64_t>(r.usage.cpu_time->count())) : "-";
    std::printf("%s %s %s %s %s %s %s %s %s\n", inspect::fit_middle(i.name, 14).c_str(),
                inspect::fit_middle(i.tenant.value_or("-"), 8).c_str(),
                fit(i.qos ? std::string(to_string(*i.qos)) : "-", 6).c_str(),
                fit(std::string(to_string(i.isolation)), 10).c_str(), fit(state_text(i.state), 7).c_str(),
                fit(vcpu, 4, true).c_str(), fit(cap, 7, true).c_str(), fit(mem, 7, true).c_str(),
                fit(cpu, 8, true).c_str());
  }
  for (const auto& s : sources)
    for (const auto& f : s.failures)
      std::printf("! %s: %s\n", inspect::printable(f.name).c_str(), inspect::printable(f.why.describe()).c_str());
  // Knobs the backends cannot enforce, so "unlimited" is never mistaken for
  // "not supported".
  for (const auto& s : sources) {
    std::set<std::string> u;
    for (const auto& r : s.instances) u.insert(r.unsupported.begin(), r.unsupported.end());
    if (u.empty()) continue;
    for (const auto& line : inspect::wrap_words("unsupported on " + s.kind + ":", {u.begin(), u.end()}, 79))
      std::printf("%s\n", line.c_str());
  }
  std::printf("CPU CAP: CFS quota over all vCPUs, %% of one CPU. MEM LIM: memtune hard limit.\n");
}

// --- drift (--desired) ---------------------------------------------------------

std::set<std::string> matched_keys(const std::vector<source_view>& sources, const desired_specs& specs) {
  std::set<std::string> used;
  for (const auto& s : sources)
    for (const auto& r : s.instances)
      for (const auto& [k, spec] : specs)
        if (&spec == find_desired(specs, r.info)) used.insert(k);
  return used;
}

void add_drift_json(json& doc, const std::vector<source_view>& sources, const desired_specs& specs,
                    const std::string& file) {
  std::map<std::string, const instance_reading*> by_uuid;
  for (const auto& s : sources)
    for (const auto& r : s.instances) by_uuid[r.info.id.uuid.to_string()] = &r;
  for (auto& i : doc["instances"]) {
    const auto* r = by_uuid[i["uuid"].get<std::string>()];
    const quota_spec* want = r ? find_desired(specs, r->info) : nullptr;
    if (!want) {
      i["drift"] = nullptr;
      continue;
    }
    const auto d = compare(*want, *r);
    json differs = json::array();
    for (const auto& k : d.differs) differs.push_back({{"knob", k.knob}, {"desired", k.desired}, {"actual", k.actual}});
    json errors = json::array();
    for (const auto& e : d.read_errors) errors.push_back(e.describe());
    i["drift"] = {{"clean", d.differs.empty() && d.unsupported.empty() && d.read_errors.empty()}, {"differs", std::move(differs)}, {"unsupported", d.unsupported},
                  {"read_errors", std::move(errors)}};
  }
  const auto used = matched_keys(sources, specs);
  json unmatched = json::array();
  for (const auto& [k, spec] : specs)
    if (!used.count(k)) unmatched.push_back(k);
  doc["desired"] = {{"file", file}, {"specs", specs.size()}, {"not_matched", std::move(unmatched)}};
}

bool any_drift(const std::vector<source_view>& sources, const desired_specs& specs) {
  for (const auto& s : sources)
    for (const auto& r : s.instances)
      if (const quota_spec* want = find_desired(specs, r.info)) {
        const auto d = compare(*want, r);
        if (!d.differs.empty() || !d.unsupported.empty() || !d.read_errors.empty()) return true;
      }
  return false;
}

void print_drift(const std::vector<source_view>& sources, const desired_specs& specs, const std::string& file) {
  std::printf("\ndrift from %s\n", inspect::printable(file).c_str());
  std::size_t clean = 0, drifted = 0;
  for (const auto& s : sources)
    for (const auto& r : s.instances) {
      const quota_spec* want = find_desired(specs, r.info);
      if (!want) continue;
      const auto d = compare(*want, r);
      if (d.differs.empty() && d.unsupported.empty() && d.read_errors.empty()) {
        ++clean;
        continue;
      }
      ++drifted;
      std::printf("%s\n", inspect::printable(r.info.name).c_str());
      for (const auto& k : d.differs)
        std::printf("%s\n", inspect::printable("  " + k.knob + ": desired " + k.desired + ", actual " + k.actual).c_str());
      for (const auto& k : d.unsupported)
        std::printf("%s\n", inspect::printable("  " + k + ": desired, but not supported on " + r.info.source).c_str());
      for (const auto& e : d.read_errors)
        std::printf("%s\n", inspect::printable("  cannot compare: " + e.describe()).c_str());
    }
  const auto used = matched_keys(sources, specs);
  std::printf("%zu as desired, %zu drifted, %zu desired spec(s) matched no instance\n", clean, drifted,
              specs.size() - used.size());
}

// --- the journal's totals (--journal) ----------------------------------------

void add_journal_json(json& doc, const std::string& dir, const std::optional<accounting::journal_view>& jv,
                      const std::optional<error>& err) {
  json j{{"dir", dir}, {"ok", jv.has_value() && !jv->report.corruption}};
  j["error"] = err ? json(err->describe()) : jv && jv->report.corruption ? json(jv->report.corruption->describe()) : json(nullptr);
  std::map<std::string, const accounting::instance_totals*> by_uuid;
  std::vector<accounting::instance_totals> all;
  if (jv) {
    j["records"] = jv->report.records;
    j["last_seq"] = jv->report.last_seq;
    j["checkpoint_seq"] = jv->report.checkpoint_seq;
    j["torn_bytes"] = jv->report.torn_bytes;
    j["quarantined"] = jv->report.quarantined;
    all = jv->totals.by_instance();
    for (const auto& t : all) by_uuid[t.uuid.to_string()] = &t;
  }
  std::set<std::string> live;
  for (auto& i : doc["instances"]) {
    const auto u = i["uuid"].get<std::string>();
    live.insert(u);
    auto it = by_uuid.find(u);
    i["accounted"] = it == by_uuid.end() ? json(nullptr) : json(it->second->totals);
  }
  json gone = json::array();
  for (const auto& t : all) {
    if (live.count(t.uuid.to_string())) continue;
    gone.push_back({{"uuid", t.uuid.to_string()}, {"name", t.labels.name},
                    {"tenant", t.labels.tenant ? json(*t.labels.tenant) : json(nullptr)},
                    {"incarnations", t.incarnations}, {"accounted", json(t.totals)}});
  }
  j["instances_not_read_now"] = std::move(gone);
  doc["journal"] = std::move(j);
}

std::uint64_t clamp64(u128 v) { return v > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(v); }

// x / unit with one decimal, exact integer arithmetic.
std::string tenths(u128 x, u128 unit) {
  const u128 t = x * 10 / unit;
  return to_decimal(t / 10) + "." + to_decimal(t % 10);
}

void print_accounted(const std::vector<source_view>& sources, const accounting::journal_view& jv, const std::string& dir) {
  using inspect::fit;
  std::printf("accounted in journal %s (%llu records)\n",
              inspect::fit_middle(dir, 40).c_str(), static_cast<unsigned long long>(jv.report.records));
  std::printf("%s %s %s %s %s %s %s %s\n", fit("NAME", 14).c_str(), fit("CPU TIME", 9, true).c_str(),
              fit("DISK R/W", 13, true).c_str(), fit("NET RX/TX", 13, true).c_str(), fit("VCPU-H", 7, true).c_str(),
              fit("GIB-H", 7, true).c_str(), fit("RST", 4, true).c_str(), fit("GAP", 4, true).c_str());
  std::map<std::string, std::string> names;
  for (const auto& s : sources)
    for (const auto& r : s.instances) names[r.info.id.uuid.to_string()] = r.info.name;
  constexpr u128 ns_per_hour = u128{3600} * nanos_per_second;
  for (const auto& t : jv.totals.by_instance()) {
    const auto u = t.uuid.to_string();
    const auto it = names.find(u);
    const std::string name = it != names.end() ? it->second : (t.labels.name.empty() ? u : t.labels.name);
    const auto& a = t.totals;
    std::printf("%s %s %s %s %s %s %s %s\n", inspect::fit_middle(name, 14).c_str(),
                fit(inspect::cpu_time(clamp64(a.cpu_time_ns)), 9, true).c_str(),
                fit(inspect::human_bytes(clamp64(a.disk_read_bytes)) + "/" + inspect::human_bytes(clamp64(a.disk_write_bytes)), 13, true).c_str(),
                fit(inspect::human_bytes(clamp64(a.net_rx_bytes)) + "/" + inspect::human_bytes(clamp64(a.net_tx_bytes)), 13, true).c_str(),
                fit(tenths(a.vcpu_reserved_ns, ns_per_hour), 7, true).c_str(),
                fit(tenths(a.memory_reserved_byte_ns, ns_per_hour * (u128{1} << 30)), 7, true).c_str(),
                fit(std::to_string(a.resets), 4, true).c_str(), fit(std::to_string(a.gaps), 4, true).c_str());
  }
  std::printf("VCPU-H: vCPU-hours held; GIB-H: GiB-hours of memory held; RST: counter resets; GAP: failed reads covered.\n");
}

}  // namespace

// The tool's entry point, called by launcher.cpp once this module is loaded.
extern "C" __attribute__((visibility("default"))) int bulkhead_inspect_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()
      ("uri", po::value<std::vector<std::string>>()->composing(),
       "libvirt URI to read, e.g. qemu:///system; repeatable (default: libvirt's default URI, "
       "as virsh finds it: LIBVIRT_DEFAULT_URI, then the local daemon)")
      ("demo", "inspect the bundled demo host (libvirt's test driver with a node file)")
      ("json", "print one JSON document (fields: docs/inspect-json.md); same as --format json")
      ("format", po::value<std::string>()->value_name("FORMAT")->default_value("table"),
       "table (for people), json (docs/inspect-json.md), openmetrics (OpenMetrics 1.0 text), "
       "prometheus (text format 0.0.4, for node_exporter's textfile collector); metric names: docs/metrics.md")
      ("journal", po::value<std::string>()->value_name("DIR"),
       "add the totals accounted in bulkhead's journal at DIR (read-only: the journal is never changed)")
      ("desired", po::value<std::string>()->value_name("FILE"),
       "compare what is enforced with the desired specs in FILE (docs/desired-spec.md) and show drift knob by knob")
      ("watch", "live view refreshed in place (keys: c cpu, m memory, d disk, w network, n name, q quit); "
                "plain periodic tables when stdout is not a terminal; honours NO_COLOR")
      ("interval", po::value<std::string>()->value_name("SECONDS")->default_value("2"),
       "seconds between --watch refreshes (decimal, at least 0.2)")
      ("count", po::value<int>()->value_name("N")->default_value(0),
       "stop --watch after N refreshes (0: until q or Ctrl-C)")
      ("help,h", "print this help and exit")
      ("version", "print the version and exit");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "bulkhead-inspect: %s\nTry 'bulkhead-inspect --help'.\n", e.what());
    return exit_usage;
  }
  if (vm.count("help")) {
    std::cout << "Usage: bulkhead-inspect [--uri URI ...] [--demo] [--format table|json|openmetrics|prometheus]\n"
                 "                        [--journal DIR] [--desired FILE]\n"
                 "       bulkhead-inspect [--uri URI ...] [--demo] --watch [--interval SECONDS] [--count N]\n"
                 "Read-only view of a host's instances, their isolation, quotas and usage.\n\n"
              << opts
              << "\nExit status: 0 every source was read; 1 a source failed (the others are still\n"
                 "printed, the failure is on stderr and in the JSON 'sources'); 2 bad usage\n"
                 "(including an unreadable --desired file); 3 with --desired, some instance drifted.\n";
    return exit_ok;
  }
  if (vm.count("version")) {
    std::printf("bulkhead-inspect %s\n", BULKHEAD_VERSION);
    return exit_ok;
  }
  std::string format = vm["format"].as<std::string>();
  if (vm.count("json")) {
    if (!vm["format"].defaulted() && format != "json") {
      std::fprintf(stderr, "bulkhead-inspect: --json and --format %s contradict each other\n", format.c_str());
      return exit_usage;
    }
    format = "json";
  }
  if (format != "table" && format != "json" && format != "openmetrics" && format != "prometheus") {
    std::fprintf(stderr,
                 "bulkhead-inspect: --format %s: not one of table, json, openmetrics, prometheus\n"
                 "Try 'bulkhead-inspect --help'.\n",
                 format.c_str());
    return exit_usage;
  }
  std::vector<std::string> uris;
  if (vm.count("uri")) uris = vm["uri"].as<std::vector<std::string>>();
  const bool demo = vm.count("demo") > 0;
  if (demo) {
    const auto node = demo_dir() / "node.xml";
    uris.push_back("test://" + fs::absolute(node).string());
  }
  const bool default_uri = uris.empty();
  if (default_uri) uris.push_back("");

  std::vector<std::unique_ptr<inspect::source>> opened;
  for (const auto& u : uris) opened.push_back(inspect::libvirt_source(u));
  // The demo host's bare-metal instances sit behind an emulated offload card.
  if (demo) opened.push_back(inspect::offload_card_source(fs::absolute(demo_dir() / "card.json").string()));

  if (vm.count("desired") && (vm.count("watch") || (format != "table" && format != "json"))) {
    std::fprintf(stderr, "bulkhead-inspect: --desired shows drift in the table or in --format json; it does not "
                         "combine with %s\n",
                 vm.count("watch") ? "--watch" : ("--format " + format).c_str());
    return exit_usage;
  }
  if (vm.count("watch")) {
    if (format != "table") {
      std::fprintf(stderr, "bulkhead-inspect: --watch shows a table; it does not combine with --format %s\n", format.c_str());
      return exit_usage;
    }
    auto ms = parse_interval(vm["interval"].as<std::string>());
    if (!ms) {
      std::fprintf(stderr, "bulkhead-inspect: --interval %s: %s\nTry 'bulkhead-inspect --help'.\n",
                   vm["interval"].as<std::string>().c_str(), ms.error().c_str());
      return exit_usage;
    }
    if (vm["count"].as<int>() < 0) {
      std::fprintf(stderr, "bulkhead-inspect: --count must not be negative\n");
      return exit_usage;
    }
    inspect::watch_options wo;
    wo.interval = *ms;
    const char* no_color = std::getenv("NO_COLOR");
    wo.color = !(no_color && *no_color);
    wo.iterations = vm["count"].as<int>();
    return inspect::run_watch(opened, wo);
  }

  std::vector<source_view> sources;
  for (auto& o : opened) sources.push_back(o->read());

  std::optional<accounting::journal_view> journal;
  std::optional<error> journal_error;
  std::string journal_dir;
  if (vm.count("journal")) {
    journal_dir = vm["journal"].as<std::string>();
    auto jv = accounting::journal::open_read_only(journal_dir);
    if (jv) journal = std::move(*jv);
    else journal_error = std::move(jv.error());
  }

  std::optional<desired_specs> desired;
  std::string desired_file;
  if (vm.count("desired")) {
    desired_file = vm["desired"].as<std::string>();
    auto d = open_desired_specs(desired_file);
    if (!d) {
      std::fprintf(stderr, "bulkhead-inspect: --desired: %s\n", d.error().describe().c_str());
      return exit_usage;
    }
    desired = std::move(*d);
  }

  int rc = exit_ok;
  if (journal_error) {
    rc = exit_source_failed;
    std::fprintf(stderr, "bulkhead-inspect: journal %s: %s\n", detail::quote(journal_dir).c_str(),
                 journal_error->describe().c_str());
  } else if (journal && journal->report.corruption) {
    rc = exit_source_failed;
    std::fprintf(stderr, "bulkhead-inspect: journal %s: totals stop before a bad record: %s\n",
                 detail::quote(journal_dir).c_str(), journal->report.corruption->describe().c_str());
  }
  for (const auto& s : sources) {
    if (!s.err) continue;
    rc = exit_source_failed;
    if (default_uri && !s.host) {
      const char* env = std::getenv("LIBVIRT_DEFAULT_URI");
      std::fprintf(stderr,
                   "bulkhead-inspect: no libvirt answered at the default URI%s: %s\n"
                   "  Point it at a host with --uri URI (for example --uri qemu:///system),\n"
                   "  or run 'bulkhead-inspect --demo' to inspect the bundled demo host.\n",
                   env && *env ? (std::string(" (LIBVIRT_DEFAULT_URI=") + env + ")").c_str() : "",
                   s.err->describe().c_str());
    } else {
      std::fprintf(stderr, "bulkhead-inspect: %s source %s: %s\n", s.kind.c_str(),
                   detail::quote(s.uri.empty() ? "(default)" : s.uri).c_str(), s.err->describe().c_str());
    }
  }
  if (desired && rc == exit_ok && any_drift(sources, *desired)) rc = exit_drift;
  if (format == "json") {
    auto doc = to_json(sources);
    if (!journal_dir.empty()) add_journal_json(doc, journal_dir, journal, journal_error);
    if (desired) add_drift_json(doc, sources, *desired, desired_file);
    std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
  } else if (format == "openmetrics" || format == "prometheus") {
    std::vector<metrics::source> ms;
    for (const auto& s : sources)
      ms.push_back({s.kind, s.uri, !s.err.has_value(), s.host ? &*s.host : nullptr, s.instances});
    std::cout << metrics::render(ms, format == "openmetrics" ? metrics::format::openmetrics
                                                                    : metrics::format::prometheus);
  } else {
    print_table(sources);
    if (desired) print_drift(sources, *desired, desired_file);
    if (journal) print_accounted(sources, *journal, journal_dir);
  }
  std::cout.flush();
  return rc;
}
