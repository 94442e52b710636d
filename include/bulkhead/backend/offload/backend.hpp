// bulkhead/backend/offload/backend.hpp: the offload backends (compiled in
// libbulkhead-core), X-Dragon-style cards behind the same backend interface
// as VMs and cgroups.
//
// Two implementations:
//   - offload::backend: emulated cards (offload/emulated_card.hpp) built from a
//     JSON description (docs/offload-card.md) on an injected clock;
//   - offload::sysfs_backend: the Linux view of offload hardware read from an
//     injected sysfs root (PCI virtio functions, SR-IOV VFs, vDPA devices, the
//     net and block devices they back), docs/offload.md.
//
// Both report a card's instances through discover()/read() in the common
// vocabulary:
//   - kind bare_metal (isolation bare_metal) or vm (isolation vm_offload);
//   - per-resource isolation: hardware for what the card enforces
//     (offload_function, net_bandwidth, net_pps, disk_bandwidth, disk_iops),
//     dedicated for a bare-metal board's cpu and memory;
//   - quota_spec.interfaces[] (one per virtio-net function, keyed by MAC):
//     inbound = the card's rx limiter, outbound = tx; average = bucket rate,
//     burst = bucket size, packets = packet rate; peak and floor are not card
//     knobs (unset). quota_spec.disks[] (one per virtio-blk function, keyed by
//     target): total_bytes_sec, total_iops_sec. A bare-metal board gives
//     cpu.vcpus and memory.max.
//   - usage_sample.interfaces[] / disks[] with the card's counters, including
//     throttled_packets / throttled_requests and throttled_time.
// Guarantees and the full bucket settings are in cards() (card_source).
//
// Thread-safety: one backend object per thread, as every backend.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/backend/backend.hpp"
#include "bulkhead/backend/offload/card.hpp"
#include "bulkhead/backend/offload/emulated_card.hpp"
#include "bulkhead/model/enums.hpp"
#include "bulkhead/model/ids.hpp"

namespace bulkhead::offload {

// Emulated cards.
//
// capacity(): the compute boards behind the cards (sum of bare-metal boards'
// CPUs and memory; numa empty). apply(): sets a function's limits from
// interfaces[] (average, burst, packets) and disks[] (total_bytes_sec,
// total_iops_sec), each function all-or-nothing through the card's admission;
// knobs the card lacks are listed as unsupported. Reads settle the card at
// the clock's now.
class BULKHEAD_API backend final : public bulkhead::backend, public card_source {
 public:
  // From a card description's JSON text (docs/offload-card.md); `source`
  // names it in errors and source().
  [[nodiscard]] static result<std::unique_ptr<backend>> make(std::string_view json_text,
                                                             std::shared_ptr<card_clock> clock, std::string source);
  // Reads a card description file (confined to its directory: a link out of
  // it is refused).
  [[nodiscard]] static result<std::unique_ptr<backend>> open(
      const std::string& path, std::shared_ptr<card_clock> clock = std::make_shared<steady_card_clock>());
  // From cards built in code (nothing to fail).
  backend(std::vector<emulated_card> cards, std::shared_ptr<card_clock> clock, std::string source)
      : cards_(std::move(cards)), clock_(std::move(clock)), source_(std::move(source)) {}

  [[nodiscard]] std::string_view kind() const noexcept override { return "offload"; }
  [[nodiscard]] const std::string& source() const noexcept override { return source_; }

  [[nodiscard]] result<host_capacity> capacity() override;
  [[nodiscard]] result<std::vector<instance_info>> discover() override;
  [[nodiscard]] result<instance_reading> read(const instance_info& instance) override;
  [[nodiscard]] result<apply_report> apply(const instance_info& instance, const quota_spec& spec) override;

  // Every card as of the clock's now.
  [[nodiscard]] result<std::vector<card_view>> cards() override;

  [[nodiscard]] std::vector<emulated_card>& emulated_cards() noexcept { return cards_; }
  [[nodiscard]] card_clock& clock() noexcept { return *clock_; }

 private:
  struct located {
    emulated_card* card;
    const instance_config* instance;
  };
  [[nodiscard]] BULKHEAD_HIDDEN result<located> locate(const instance_info& instance);

  std::vector<emulated_card> cards_;
  std::shared_ptr<card_clock> clock_;
  std::string source_;
};

// Which functions make up which instance on a host. The Linux view has no
// notion of tenants: the caller (the control plane that assigned the
// functions) says which function belongs to whom.
struct sysfs_binding {
  bulkhead::uuid uuid;
  std::string name;
  isolation_level isolation = isolation_level::bare_metal;  // bare_metal or vm_offload
  std::optional<std::string> tenant;
  std::optional<qos_class> qos;
  // PCI addresses ("0000:3b:00.1") and vDPA device names ("vdpa0").
  std::vector<std::string> functions;
};

// parse_sysfs_bindings() reads them from JSON text: bulkhead/backend/offload/bindings.hpp.

struct sysfs_options {
  std::string sysfs_root;  // "/sys" on a host; a fixture tree in tests
  std::vector<sysfs_binding> bindings;
};

// The Linux view.
//
// Reads, beneath the root (links followed only while they stay beneath it):
//   bus/pci/devices/<addr>/{vendor,device,class,sriov_totalvfs,sriov_numvfs,
//     virtfnN,physfn,driver} - virtio functions: vendor 0x1af4 with device
//     0x1000/0x1041 (net) or 0x1001/0x1042 (blk), and vendor 0x1ded (typed by
//     their virtio child's device id or their PCI class);
//   bus/vdpa/devices/<name> (a link into its parent PCI function) and driver;
//   <function>/virtioN/{net/<if>,block/<dev>}, or <function>/net/<if>: the
//     devices a function backs; net/<if>/{statistics/*,address,ifindex,speed};
//     block/<dev>/{stat,diskseq};
//   net/<pf>/smart_nic/vfN/{max_tx_rate,min_tx_rate} (Mbit/s, 0 = none).
// A card is a PCI device (domain:bus:device) with its VFs and vDPA devices.
// Instances come from the bindings; incarnation = a hash of the ifindex and
// diskseq of the devices behind the instance's functions (both change when a
// device is re-created, which restarts its counters). A function that cannot
// be read is reported in card_view::problems and in the reading's partial
// errors; the rest is still read. capacity() is errc::unsupported (sysfs does
// not say what the boards have); apply() is errc::unsupported (the Linux view
// is read-only).
class BULKHEAD_API sysfs_backend final : public bulkhead::backend, public card_source {
 public:
  // errc::not_found / permission_denied when the root cannot be opened;
  // errc::invalid_argument for a binding that names a function twice.
  [[nodiscard]] static result<std::unique_ptr<sysfs_backend>> open(sysfs_options opts);
  ~sysfs_backend() override;

  [[nodiscard]] std::string_view kind() const noexcept override { return "offload"; }
  [[nodiscard]] const std::string& source() const noexcept override;

  [[nodiscard]] result<host_capacity> capacity() override;
  [[nodiscard]] result<std::vector<instance_info>> discover() override;
  [[nodiscard]] result<instance_reading> read(const instance_info& instance) override;
  [[nodiscard]] result<apply_report> apply(const instance_info& instance, const quota_spec& spec) override;
  [[nodiscard]] result<std::vector<card_view>> cards() override;

  struct BULKHEAD_HIDDEN impl;

 private:
  BULKHEAD_HIDDEN explicit sysfs_backend(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

}  // namespace bulkhead::offload
