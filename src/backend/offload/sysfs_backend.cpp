// The Linux view of offload hardware; contract in bulkhead/backend/offload/backend.hpp,
// the files read and where their formats come from in docs/offload.md.
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "bulkhead/backend/offload/backend.hpp"
#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"
#include "bulkhead/backend/offload/detail/mapping.hpp"

namespace bulkhead::offload {

namespace {

// PCI ids (ANCHORS.md "X-Dragon / BM-Hive"; the virtio spec's PCI device ids:
// transitional 0x1000 net, 0x1001 blk; modern 0x1040 + virtio id).
constexpr std::uint64_t vendor_virtio = 0x1af4;
constexpr std::uint64_t vendor_alibaba = 0x1ded;
constexpr std::uint64_t virtio_id_net = 1;
constexpr std::uint64_t virtio_id_blk = 2;
// Block layer "sectors" are 512 bytes whatever the device (Documentation/block/stat.rst).
constexpr std::uint64_t sector_bytes = 512;
// ip-link(8) VF rates and DPU smart_nic rate files are in Mbit/s: 125000 bytes/s each.
constexpr std::uint64_t mbit_bytes = 125000;

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// DDDD:BB:DD.F, lower-case hex; the domain may have more than 4 digits.
bool is_pci_address(std::string_view s) {
  const auto colon2 = s.rfind(':');
  if (colon2 == std::string_view::npos || colon2 < 3) return false;
  const auto colon1 = s.rfind(':', colon2 - 1);
  if (colon1 == std::string_view::npos || colon1 < 4) return false;
  const auto dom = s.substr(0, colon1), bus = s.substr(colon1 + 1, colon2 - colon1 - 1), rest = s.substr(colon2 + 1);
  if (bus.size() != 2 || rest.size() != 4 || rest[2] != '.' || rest[3] < '0' || rest[3] > '7') return false;
  for (char c : dom) if (!is_hex(c)) return false;
  for (char c : bus) if (!is_hex(c)) return false;
  return is_hex(rest[0]) && is_hex(rest[1]);
}

// "0000:3b:00.1" -> "0000:3b:00"
std::string slot_of(const std::string& addr) { return addr.substr(0, addr.size() - 2); }

std::string basename(std::string_view link) {
  while (!link.empty() && link.back() == '/') link.remove_suffix(1);
  const auto s = link.rfind('/');
  return std::string(s == std::string_view::npos ? link : link.substr(s + 1));
}

struct scanned_function {
  function_view view;
  std::vector<std::uint64_t> identity;  // ifindex and diskseq values, for the incarnation
  std::string card_slot;
  std::string dir;  // its directory beneath the root
  std::optional<std::string> pf_netdir;  // a PF's first network device dir (for smart_nic)
  bool has_host_device = false;
};

struct scanned_card {
  card_view view;
  std::vector<scanned_function> functions;
};

class scanner {
 public:
  explicit scanner(const rooted_dir& root) : root_(root) {}

  // Fails only when the PCI device list itself cannot be read.
  result<std::vector<scanned_card>> scan() {
    auto devices = root_.list("bus/pci/devices");
    if (!devices) return fail(std::move(devices.error()).in("listing PCI functions"));
    for (const auto& name : *devices) scan_pci(name);
    scan_vdpa();
    fill_rates();
    return group();
  }

 private:
  // Errors carry the path beneath the root as context: rooted_dir quotes
  // the full path, which long roots truncate.
  result<std::string> read_text(const std::string& rel) {
    auto t = root_.read_file(rel, 64u << 10);
    if (!t) return fail(std::move(t.error()).in(rel));
    return std::string(bulkhead::detail::trim(*t));
  }
  result<std::uint64_t> read_hex(const std::string& rel) {
    auto t = read_text(rel);
    if (!t) return fail(std::move(t.error()));
    return bulkhead::detail::parse_hex_u64(*t, rel);
  }
  result<std::uint64_t> read_dec(const std::string& rel) {
    auto t = read_text(rel);
    if (!t) return fail(std::move(t.error()));
    return bulkhead::detail::parse_u64(*t, rel);
  }
  // The basename of a link's target, after checking that the link resolves
  // beneath the root (errc::unsafe_path otherwise).
  result<std::string> link_target(const std::string& rel) {
    auto inside = root_.exists(rel);
    if (!inside) return fail(std::move(inside.error()).in(rel));
    if (!*inside) return fail(errc::not_found, rel + ": no such link");
    auto t = root_.read_link(rel);
    if (!t) return fail(std::move(t.error()).in(rel));
    return basename(*t);
  }
  result<std::optional<std::string>> driver_of(const std::string& dir) {
    // exists() follows the link: unsafe_path when it leads out of the root,
    // false when there is no driver link (or it dangles).
    auto present = root_.exists(dir + "/driver");
    if (!present) return fail(std::move(present.error()).in(dir + "/driver"));
    if (!*present) return std::optional<std::string>{};
    auto t = link_target(dir + "/driver");
    if (!t) return fail(std::move(t.error()));
    return std::optional<std::string>{*t};
  }
  void problem(scanned_function& f, error e) { f.view.problems.push_back(std::move(e)); }
  void card_problem(const std::string& slot, error e) { card_problems_[slot].push_back(std::move(e)); }

  // virtioN children of a device directory, sorted.
  std::vector<std::string> virtio_children(const std::string& dir) {
    std::vector<std::string> out;
    auto l = root_.list(dir);
    if (!l) return out;
    for (const auto& n : *l) {
      if (n.size() <= 6 || n.compare(0, 6, "virtio") != 0) continue;
      bool digits = true;
      for (std::size_t i = 6; i < n.size(); ++i) digits = digits && n[i] >= '0' && n[i] <= '9';
      if (digits) out.push_back(n);
    }
    return out;
  }

  // The virtio device id of the first virtio child (virtio bus `device`
  // attribute, drivers/virtio/virtio.c), if any.
  std::optional<std::uint64_t> virtio_id(const std::string& dir, scanned_function* f) {
    for (const auto& v : virtio_children(dir)) {
      auto id = read_hex(dir + "/" + v + "/device");
      if (id) return *id;
      if (f) problem(*f, std::move(id.error()));
    }
    return std::nullopt;
  }

  // Network and block devices a function backs, their counters and ids.
  void read_backing(scanned_function& f) {
    std::vector<std::string> bases;
    for (const auto& v : virtio_children(f.dir)) bases.push_back(f.dir + "/" + v);
    bases.push_back(f.dir);  // non-virtio drivers put net/ directly under the function
    for (const auto& b : bases) {
      const std::string sub = f.view.type == function_type::virtio_net ? "net" : "block";
      auto isdir = root_.is_directory(b + "/" + sub);
      if (!isdir) {
        problem(f, std::move(isdir.error()).in(b + "/" + sub));
        continue;
      }
      if (!*isdir) continue;
      auto names = root_.list(b + "/" + sub);
      if (!names) {
        problem(f, std::move(names.error()).in(b + "/" + sub));
        continue;
      }
      for (const auto& n : *names) {
        if (!validate_name(n, "device name")) continue;
        if (f.has_host_device) {
          problem(f, error(errc::unsupported, "function " + f.view.address + " backs more than one device; " +
                                                   "only " + bulkhead::detail::quote(f.view.target) + " is read"));
          return;
        }
        f.has_host_device = true;
        f.view.target = n;
        const std::string d = b + "/" + sub + "/" + n;
        if (f.view.type == function_type::virtio_net) read_netdev(f, d);
        else read_blockdev(f, d);
      }
    }
  }

  void read_netdev(scanned_function& f, const std::string& d) {
    if (auto mac = read_text(d + "/address"); mac) {
      std::string m = *mac;
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (bulkhead::detail::valid_mac(m)) f.view.mac = m;
      else problem(f, error(errc::parse_error, d + "/address: " + bulkhead::detail::quote(*mac) + " is not a MAC address"));
    } else {
      problem(f, std::move(mac.error()));
    }
    if (auto idx = read_dec(d + "/ifindex"); idx) f.identity.push_back(*idx);
    else problem(f, std::move(idx.error()));
    // Documentation/ABI/testing/sysfs-class-net-statistics.
    const auto stat = [&](const char* name) -> std::optional<std::uint64_t> {
      auto v = read_dec(d + "/statistics/" + name);
      if (v) return *v;
      problem(f, std::move(v.error()));
      return std::nullopt;
    };
    auto& c = f.view.counters;
    const auto pk = [](std::optional<std::uint64_t> v) { return v ? knob<packets>{packets{*v}} : knob<packets>{}; };
    const auto by = [](std::optional<std::uint64_t> v) { return v ? knob<bytes>{bytes{*v}} : knob<bytes>{}; };
    c.rx.byte_count = by(stat("rx_bytes"));
    c.tx.byte_count = by(stat("tx_bytes"));
    c.rx.packet_count = pk(stat("rx_packets"));
    c.tx.packet_count = pk(stat("tx_packets"));
    c.rx.errors = pk(stat("rx_errors"));
    c.tx.errors = pk(stat("tx_errors"));
    c.rx.drops = pk(stat("rx_dropped"));
    c.tx.drops = pk(stat("tx_dropped"));
  }

  void read_blockdev(scanned_function& f, const std::string& d) {
    // Documentation/block/stat.rst: 11, 15 or 17 decimal fields; sectors of 512 bytes.
    auto s = read_text(d + "/stat");
    if (!s) {
      problem(f, std::move(s.error()));
    } else {
      std::vector<std::string_view> fields;
      std::string_view rest = *s;
      while (!rest.empty()) {
        const auto b = rest.find_first_not_of(" \t\n");
        if (b == std::string_view::npos) break;
        rest.remove_prefix(b);
        const auto e = rest.find_first_of(" \t\n");
        fields.push_back(rest.substr(0, e));
        rest.remove_prefix(e == std::string_view::npos ? rest.size() : e);
      }
      if (fields.size() < 11) {
        problem(f, error(errc::parse_error, d + "/stat: " + std::to_string(fields.size()) +
                                                " fields where at least 11 were expected"));
      } else {
        std::uint64_t v[7];
        bool ok = true;
        for (int i : {0, 2, 4, 6}) {
          auto x = bulkhead::detail::parse_u64(fields[static_cast<std::size_t>(i)], d + "/stat field " + std::to_string(i + 1));
          if (!x) {
            problem(f, std::move(x.error()));
            ok = false;
            break;
          }
          v[i] = *x;
        }
        if (ok) {
          auto rb = bulkhead::detail::mul_u64(v[2], sector_bytes), wb = bulkhead::detail::mul_u64(v[6], sector_bytes);
          if (!rb || !wb) {
            problem(f, error(errc::overflow, d + "/stat: sectors x 512 does not fit 64 bits"));
          } else {
            auto& c = f.view.counters.disk;
            c.read_requests = operations{v[0]};
            c.write_requests = operations{v[4]};
            c.read_bytes = bytes{*rb};
            c.write_bytes = bytes{*wb};
          }
        }
      }
    }
    // diskseq (Documentation/ABI/stable/sysfs-block): new for every new disk.
    if (auto present = root_.exists(d + "/diskseq"); present && *present) {
      if (auto seq = read_dec(d + "/diskseq"); seq) f.identity.push_back(*seq);
      else problem(f, std::move(seq.error()));
    }
  }

  void scan_pci(const std::string& name) {
    if (!validate_name(name, "PCI address") || !is_pci_address(name)) return;
    const std::string dir = "bus/pci/devices/" + name;
    scanned_function f;
    f.view.address = name;
    f.dir = dir;
    f.card_slot = slot_of(name);
    // Cannot tell whether a function with unreadable ids is ours: say so on its card.
    auto vendor = read_hex(dir + "/vendor");
    if (!vendor) {
      card_problem(f.card_slot, std::move(vendor.error()));
      return;
    }
    auto device = read_hex(dir + "/device");
    if (!device) {
      card_problem(f.card_slot, std::move(device.error()));
      return;
    }
    std::optional<function_type> type;
    if (*vendor == vendor_virtio) {
      if (*device == 0x1000 || *device == 0x1040 + virtio_id_net) type = function_type::virtio_net;
      else if (*device == 0x1001 || *device == 0x1040 + virtio_id_blk) type = function_type::virtio_blk;
      else return;  // another virtio device (console, balloon, ...)
    } else if (*vendor == vendor_alibaba) {
      if (auto vid = virtio_id(dir, &f)) {
        if (*vid == virtio_id_net) type = function_type::virtio_net;
        else if (*vid == virtio_id_blk) type = function_type::virtio_blk;
      }
      if (!type) {
        // PCI base class: 0x02 network, 0x01 mass storage.
        if (auto cls = read_hex(dir + "/class"); cls) {
          if ((*cls >> 16) == 0x02) type = function_type::virtio_net;
          else if ((*cls >> 16) == 0x01) type = function_type::virtio_blk;
        }
      }
      if (!type) {
        card_problem(f.card_slot, error(errc::unsupported, "function " + name + " (vendor 0x1ded, device " +
                                                               std::to_string(*device) +
                                                               "): neither a virtio net/blk child nor a network or storage class"));
        return;
      }
    } else {
      others_[name] = {*vendor, *device};
      return;
    }
    f.view.type = *type;
    model_[name] = {*vendor, *device};
    // SR-IOV (Documentation/ABI/testing/sysfs-bus-pci): a VF has `physfn`.
    auto physfn = root_.read_link(dir + "/physfn");
    if (physfn) {
      f.view.form = function_form::sriov_vf;
      auto pf = link_target(dir + "/physfn");
      if (!pf) {
        problem(f, std::move(pf.error()));
      } else if (!is_pci_address(*pf)) {
        problem(f, error(errc::parse_error, dir + "/physfn: points to " + bulkhead::detail::quote(*pf) + ", not a PCI address"));
      } else {
        f.view.parent = *pf;
        f.card_slot = slot_of(*pf);
      }
    }
    if (auto drv = driver_of(dir); drv) f.view.driver = *drv;
    else problem(f, std::move(drv.error()));
    if (f.view.form == function_form::physical) read_sriov(f);
    read_backing(f);
    note_guest(f);
    functions_.push_back(std::move(f));
  }

  void read_sriov(scanned_function& f) {
    auto has = root_.exists(f.dir + "/sriov_totalvfs");
    if (!has || !*has) return;
    // A count that cannot be read makes the card's sum unknown.
    auto& totals = totals_[f.card_slot];
    auto& total = totals.first;
    auto& enabled = totals.second;
    for (auto [file, sum] : {std::pair{"/sriov_totalvfs", &total}, std::pair{"/sriov_numvfs", &enabled}}) {
      auto v = read_dec(f.dir + file);
      if (!v) {
        sum->reset();
        problem(f, std::move(v.error()));
      } else if (*sum) {
        **sum += *v;
      }
    }
    auto entries = root_.list(f.dir);
    if (!entries) return;
    for (const auto& e : *entries) {
      if (e.size() <= 6 || e.compare(0, 6, "virtfn") != 0) continue;
      auto idx = bulkhead::detail::parse_u64(std::string_view(e).substr(6), f.dir + "/" + e);
      if (!idx || *idx > UINT32_MAX) continue;
      auto vf = link_target(f.dir + "/" + e);
      if (!vf) {
        problem(f, std::move(vf.error()));
        continue;
      }
      vf_index_[*vf] = {f.view.address, static_cast<std::uint32_t>(*idx)};
    }
    // The PF's own network device dir, for smart_nic rate files.
    for (const auto& v : virtio_children(f.dir)) pf_netdirs(f, f.dir + "/" + v + "/net");
    pf_netdirs(f, f.dir + "/net");
  }
  void pf_netdirs(scanned_function& f, const std::string& netdir) {
    if (f.pf_netdir) return;
    auto isdir = root_.is_directory(netdir);
    if (!isdir || !*isdir) return;
    auto names = root_.list(netdir);
    if (!names || names->empty()) return;
    f.pf_netdir = netdir + "/" + names->front();
  }

  void note_guest(scanned_function& f) {
    if (f.has_host_device) return;
    // A vDPA parent's traffic is on its vDPA devices, reported on their own.
    if (auto l = root_.list(f.dir); l)
      for (const auto& n : *l)
        if (n.size() > 4 && n.compare(0, 4, "vdpa") == 0) return;
    const std::string drv = f.view.driver ? *f.view.driver : "none";
    problem(f, error(errc::unsupported, "function " + f.view.address + " backs no host device (driver " +
                                            bulkhead::detail::quote(drv) + "); its counters are not visible in sysfs"));
  }

  // vDPA devices (Documentation/ABI/testing/sysfs-bus-vdpa): bus/vdpa/devices/<name>
  // links into the device tree beneath the parent PCI function.
  void scan_vdpa() {
    auto isdir = root_.is_directory("bus/vdpa/devices");
    if (!isdir || !*isdir) return;
    auto names = root_.list("bus/vdpa/devices");
    if (!names) return;
    for (const auto& name : *names) {
      if (!validate_name(name, "vDPA device name")) continue;
      const std::string dir = "bus/vdpa/devices/" + name;
      scanned_function f;
      f.view.address = name;
      f.view.form = function_form::vdpa;
      f.dir = dir;
      auto text = root_.read_link(dir);
      std::string parent;
      if (text) {
        std::string_view t = *text;
        const auto last = t.rfind('/');
        if (last != std::string_view::npos) {
          const auto prev = t.rfind('/', last == 0 ? 0 : last - 1);
          parent = std::string(t.substr(prev == std::string_view::npos ? 0 : prev + 1,
                                        last - (prev == std::string_view::npos ? 0 : prev + 1)));
        }
      }
      if (!is_pci_address(parent)) {
        card_problem("vdpa", error(errc::parse_error, dir + ": its parent is not a PCI function"));
        continue;
      }
      f.view.parent = parent;
      f.card_slot = slot_of(parent);
      auto inside = root_.is_directory(dir);
      if (!inside) {
        problem(f, std::move(inside.error()).in(dir));
        vdpa_.push_back(std::move(f));
        continue;
      }
      if (auto drv = driver_of(dir); drv) f.view.driver = *drv;
      else problem(f, std::move(drv.error()));
      std::optional<function_type> type;
      if (auto vid = virtio_id(dir, &f)) {
        if (*vid == virtio_id_net) type = function_type::virtio_net;
        else if (*vid == virtio_id_blk) type = function_type::virtio_blk;
      }
      if (!type)
        for (const auto& pf : functions_)
          if (pf.view.address == parent) type = pf.view.type;
      if (!type) {
        // A net-class parent (a DPU VF, 0x02 class) gives vDPA net devices.
        if (auto cls = read_hex("bus/pci/devices/" + parent + "/class"); cls && (*cls >> 16) == 0x02)
          type = function_type::virtio_net;
      }
      if (!type) {
        card_problem(f.card_slot, error(errc::unsupported, "vDPA device " + name + ": its type (net or blk) is not shown in sysfs"));
        continue;
      }
      f.view.type = *type;
      read_backing(f);
      note_guest(f);
      vdpa_.push_back(std::move(f));
    }
    for (auto& f : vdpa_) {
      // A vDPA device on a VF belongs to the VF's card.
      for (const auto& pf : functions_)
        if (pf.view.address == *f.view.parent && pf.view.form == function_form::sriov_vf && pf.view.parent)
          f.card_slot = slot_of(*pf.view.parent);
      if (!model_.count(*f.view.parent) && others_.count(*f.view.parent)) model_[*f.view.parent] = others_[*f.view.parent];
      functions_.push_back(std::move(f));
    }
  }

  // smart_nic/vfN/{max_tx_rate,min_tx_rate} under the PF's network device.
  void fill_rates() {
    std::map<std::string, const scanned_function*> by_addr;
    for (const auto& f : functions_) by_addr[f.view.address] = &f;
    for (auto& f : functions_) {
      auto it = vf_index_.find(f.view.address);
      if (it == vf_index_.end()) continue;
      f.view.vf_index = it->second.second;
      if (!f.view.parent) f.view.parent = it->second.first;
      auto pf = by_addr.find(it->second.first);
      if (pf == by_addr.end() || !pf->second->pf_netdir) continue;
      const std::string d = *pf->second->pf_netdir + "/smart_nic/vf" + std::to_string(it->second.second);
      auto present = root_.is_directory(d);
      if (!present) {
        problem(f, std::move(present.error()).in(d));
        continue;
      }
      if (!*present) continue;
      rate_qos_view<bytes, bytes_per_second> q;
      auto mx = read_dec(d + "/max_tx_rate");
      if (!mx) {
        problem(f, std::move(mx.error()));
        continue;
      }
      auto bps = bulkhead::detail::mul_u64(*mx, mbit_bytes);
      if (!bps) {
        problem(f, error(errc::overflow, d + "/max_tx_rate: " + std::to_string(*mx) + " Mbit/s does not fit 64 bits in bytes/s"));
        continue;
      }
      q.rate = *mx == 0 ? limit<bytes_per_second>{unlimited} : limit<bytes_per_second>{bytes_per_second{*bps}};
      if (auto has_min = root_.exists(d + "/min_tx_rate"); has_min && *has_min) {
        auto mn = read_dec(d + "/min_tx_rate");
        auto g = mn ? bulkhead::detail::mul_u64(*mn, mbit_bytes) : std::nullopt;
        if (!mn) problem(f, std::move(mn.error()));
        else if (!g) problem(f, error(errc::overflow, d + "/min_tx_rate: does not fit 64 bits in bytes/s"));
        else q.guaranteed = bytes_per_second{*g};
      }
      f.view.qos.tx_bandwidth = q;
    }
  }

  std::vector<scanned_card> group() {
    std::map<std::string, scanned_card> cards;
    for (auto& f : functions_) {
      auto& c = cards[f.card_slot];
      c.functions.push_back(std::move(f));
    }
    for (auto& [slot, errs] : card_problems_) {
      auto& c = cards[slot];
      for (auto& e : errs) c.view.problems.push_back(std::move(e));
    }
    std::vector<scanned_card> out;
    for (auto& [slot, c] : cards) {
      std::sort(c.functions.begin(), c.functions.end(),
                [](const scanned_function& a, const scanned_function& b) { return a.view.address < b.view.address; });
      std::string first;
      for (const auto& f : c.functions)
        if (f.view.form == function_form::physical && (first.empty() || f.view.address < first)) first = f.view.address;
      if (first.empty())
        for (const auto& f : c.functions)
          if (f.view.parent && slot_of(*f.view.parent) == slot && (first.empty() || *f.view.parent < first))
            first = *f.view.parent;
      if (first.empty()) first = slot == "vdpa" ? "vdpa" : slot + ".0";
      c.view.identity.pci_address = first;
      if (auto m = model_.find(first); m != model_.end()) {
        static constexpr char hex[] = "0123456789abcdef";
        std::string id = "pci ";
        for (auto v : {m->second.first, m->second.second}) {
          for (int sh = 12; sh >= 0; sh -= 4) id += hex[(v >> sh) & 0xf];
          if (v == m->second.first) id += ':';
        }
        c.view.identity.model = id;
      } else {
        c.view.identity.model = "unknown";
      }
      if (auto t = totals_.find(slot); t != totals_.end()) {
        if (t->second.first)
          c.view.total_vfs = static_cast<std::uint32_t>(std::min<std::uint64_t>(*t->second.first, UINT32_MAX));
        if (t->second.second)
          c.view.enabled_vfs = static_cast<std::uint32_t>(std::min<std::uint64_t>(*t->second.second, UINT32_MAX));
      }
      for (const auto& f : c.functions) {
        if (f.view.form != function_form::physical || !f.pf_netdir) continue;
        // sysfs-class-net: speed in Mbit/s; -1 (unknown) and errors leave it absent.
        if (auto s = read_text(*f.pf_netdir + "/speed"); s) {
          if (auto v = bulkhead::detail::parse_u64(*s, "speed"); v && *v > 0)
            if (auto b = bulkhead::detail::mul_u64(*v, mbit_bytes)) c.view.link_bandwidth = bytes_per_second{*b};
        }
        break;
      }
      for (const auto& f : c.functions) c.view.functions.push_back(f.view);
      out.push_back(std::move(c));
    }
    return out;
  }

  const rooted_dir& root_;
  std::vector<scanned_function> functions_;
  std::vector<scanned_function> vdpa_;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> model_, others_;  // vendor, device
  // slot -> total, enabled VFs (none when a count could not be read)
  struct vf_totals {
    std::optional<std::uint64_t> first = 0, second = 0;
  };
  std::map<std::string, vf_totals> totals_;
  std::map<std::string, std::pair<std::string, std::uint32_t>> vf_index_;         // VF -> PF, N
  std::map<std::string, std::vector<error>> card_problems_;
};

std::uint64_t fnv1a(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

struct sysfs_backend::impl {
  sysfs_options options;
  rooted_dir root;
  std::string source;

  // Binding index -> the scanned functions it names (nullptr when missing).
  std::vector<std::vector<const scanned_function*>> bound(const std::vector<scanned_card>& cards) const {
    std::map<std::string, const scanned_function*> by;
    for (const auto& c : cards)
      for (const auto& f : c.functions) by[f.view.address] = &f;
    std::vector<std::vector<const scanned_function*>> out;
    for (const auto& b : options.bindings) {
      auto& v = out.emplace_back();
      for (const auto& a : b.functions) {
        auto it = by.find(a);
        v.push_back(it == by.end() ? nullptr : it->second);
      }
    }
    return out;
  }

  instance_info info_of(std::size_t bi, const std::vector<const scanned_function*>& fns) const {
    const auto& b = options.bindings[bi];
    instance_info info;
    info.name = b.name;
    info.source = source;
    info.kind = b.isolation == isolation_level::bare_metal ? instance_kind::bare_metal : instance_kind::vm;
    info.isolation = b.isolation;
    info.qos = b.qos;
    info.tenant = b.tenant;
    info.persistent = false;
    std::uint64_t h = 1469598103934665603ull;
    bool any = false;
    std::vector<const function_view*> views;
    for (std::size_t i = 0; i < fns.size(); ++i) {
      if (!fns[i]) continue;
      any = true;
      views.push_back(&fns[i]->view);
      for (auto c : b.functions[i]) h = fnv1a(h, static_cast<unsigned char>(c));
      for (auto v : fns[i]->identity) h = fnv1a(h, v);
    }
    info.state = any ? instance_state::running : instance_state::nostate;
    info.id = instance_id{b.uuid, any ? std::optional<incarnation>{incarnation{h}} : std::nullopt};
    // A bare-metal instance has its own board: dedicated CPU and memory.
    detail::set_modes(info, views, b.isolation == isolation_level::bare_metal);
    return info;
  }
};

result<std::unique_ptr<sysfs_backend>> sysfs_backend::open(sysfs_options options) {
  std::set<std::string> seen;
  std::set<uuid> ids;
  for (const auto& b : options.bindings) {
    if (!ids.insert(b.uuid).second)
      return fail(errc::invalid_argument, "offload bindings: instance " + b.uuid.to_string() + " is listed twice");
    for (const auto& f : b.functions) {
      if (auto v = validate_name(f, "bound function"); !v) return fail(std::move(v.error()).in("instance " + b.uuid.to_string()));
      if (!seen.insert(f).second)
        return fail(errc::invalid_argument, "offload bindings: function " + bulkhead::detail::quote(f) + " is bound twice");
    }
  }
  auto root = rooted_dir::open(options.sysfs_root);
  if (!root) return fail(std::move(root.error()).in("offload sysfs root"));
  auto p = std::make_unique<impl>(impl{std::move(options), std::move(*root), {}});
  p->source = "sysfs:" + p->options.sysfs_root;
  return std::unique_ptr<sysfs_backend>(new sysfs_backend(std::move(p)));
}

sysfs_backend::sysfs_backend(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}
sysfs_backend::~sysfs_backend() = default;

const std::string& sysfs_backend::source() const noexcept { return p_->source; }

result<host_capacity> sysfs_backend::capacity() {
  return fail(errc::unsupported, "offload " + p_->source +
                                     ": sysfs does not show the compute boards' CPUs and memory; the card view is in cards()");
}

result<std::vector<instance_info>> sysfs_backend::discover() {
  auto cards = scanner(p_->root).scan();
  if (!cards) return fail(std::move(cards.error()).in("offload " + p_->source));
  const auto b = p_->bound(*cards);
  std::vector<instance_info> out;
  for (std::size_t i = 0; i < b.size(); ++i) out.push_back(p_->info_of(i, b[i]));
  return out;
}

result<instance_reading> sysfs_backend::read(const instance_info& instance) {
  std::size_t bi = p_->options.bindings.size();
  for (std::size_t i = 0; i < p_->options.bindings.size(); ++i)
    if (p_->options.bindings[i].uuid == instance.id.uuid) bi = i;
  if (bi == p_->options.bindings.size())
    return fail(errc::not_found, "offload " + p_->source + ": no binding for instance " + instance.id.uuid.to_string());
  const mono_time now = mono_clock::now();
  auto cards = scanner(p_->root).scan();
  if (!cards) return fail(std::move(cards.error()).in("offload " + p_->source));
  const auto fns = p_->bound(*cards)[bi];
  instance_reading r;
  r.info = p_->info_of(bi, fns);
  r.usage.read_at = now;
  r.usage.wall = std::chrono::time_point_cast<nanoseconds>(wall_clock::now());
  std::vector<const function_view*> views;
  const auto& b = p_->options.bindings[bi];
  for (std::size_t i = 0; i < fns.size(); ++i) {
    if (!fns[i]) {
      r.partial.push_back(error(errc::not_found, "function " + bulkhead::detail::quote(b.functions[i]) + " bound to instance " +
                                                     b.uuid.to_string() + " is not on this host"));
      continue;
    }
    const auto& f = fns[i]->view;
    views.push_back(&f);
    for (const auto& e : f.problems) r.partial.push_back(error(e).in("function " + f.address));
    if (f.type == function_type::virtio_net) {
      // A guest-assigned VF has no host netdev: its MAC is "" (unknown).
      r.enforced.interfaces.push_back(detail::interface_of(f));
      auto c = detail::interface_counters_of(f);
      if (c.target.empty()) c.target = f.address;
      r.usage.interfaces.push_back(std::move(c));
    } else {
      r.enforced.disks.push_back(detail::disk_of(f));
      r.usage.disks.push_back(detail::disk_counters_of(f));
    }
  }
  detail::add_unsupported(r.unsupported, views);
  for (const char* k : {"interfaces[].inbound", "interfaces[].outbound.burst", "interfaces[].outbound.packets",
                        "disks[].total_bytes_sec", "disks[].total_iops_sec", "interfaces[].throttled_packets",
                        "interfaces[].throttled_time", "disks[].throttled_requests", "disks[].throttled_time"})
    r.unsupported.emplace_back(k);
  return r;
}

result<apply_report> sysfs_backend::apply(const instance_info& instance, const quota_spec&) {
  return fail(errc::unsupported, "offload " + p_->source + ": the Linux view is read-only (instance " +
                                     instance.id.uuid.to_string() + ")");
}

result<std::vector<card_view>> sysfs_backend::cards() {
  auto cards = scanner(p_->root).scan();
  if (!cards) return fail(std::move(cards.error()).in("offload " + p_->source));
  std::map<std::string, uuid> owner;
  for (const auto& b : p_->options.bindings)
    for (const auto& f : b.functions) owner[f] = b.uuid;
  std::vector<card_view> out;
  for (auto& c : *cards) {
    for (auto& f : c.view.functions)
      if (auto it = owner.find(f.address); it != owner.end()) f.instance = it->second;
    out.push_back(std::move(c.view));
  }
  return out;
}

}  // namespace bulkhead::offload
