// The emulated card: admission against capacity, admit/delay/drop, counter
// semantics (throttled requests and time), QoS changes, the description format.
#include <doctest/doctest.h>

#include <string>

#include "bulkhead/backend/offload/description.hpp"
#include "bulkhead/backend/offload/emulated_card.hpp"

using namespace bulkhead;
using namespace bulkhead::offload;

namespace {

mono_time at_ns(std::int64_t ns) { return from_ns(ns); }
constexpr std::int64_t ms = 1'000'000;

const uuid inst_a = *uuid::parse("b0000000-0000-4000-8000-00000000000a");
const uuid inst_b = *uuid::parse("b0000000-0000-4000-8000-00000000000b");

card_capacity small_capacity() {
  card_capacity c;
  c.functions = 4;
  c.net_bandwidth = bytes_per_second{1000};
  c.net_packets = packets_per_second{100};
  c.disk_bandwidth = bytes_per_second{5000};
  c.disk_iops = ops_per_second{50};
  return c;
}

emulated_card make_card() {
  auto c = emulated_card::make(card_identity{"0000:3b:00.0", "test card", "1.0"}, small_capacity(), at_ns(0));
  REQUIRE(c);
  REQUIRE(c->add_instance(instance_config{inst_a, "a", isolation_level::bare_metal, "acme", qos_class::LS, incarnation{1},
                                          instance_state::running, 8, bytes{1 << 30}}));
  REQUIRE(c->add_instance(instance_config{inst_b, "b", isolation_level::vm_offload, "globex", qos_class::BE,
                                          incarnation{3}, instance_state::running, std::nullopt, std::nullopt}));
  return std::move(*c);
}

bandwidth_qos bw(std::uint64_t rate, std::uint64_t burst, std::uint64_t guaranteed = 0) {
  bandwidth_qos q;
  q.bucket.rate = bytes_per_second{rate};
  q.bucket.burst = bytes{burst};
  q.guaranteed = bytes_per_second{guaranteed};
  return q;
}
packet_qos pk(std::uint64_t rate, std::uint64_t burst, std::uint64_t guaranteed = 0) {
  packet_qos q;
  q.bucket.rate = packets_per_second{rate};
  q.bucket.burst = packets{burst};
  q.guaranteed = packets_per_second{guaranteed};
  return q;
}

function_config net_fn(std::string addr, std::optional<uuid> inst, std::uint64_t tx_guarantee, std::uint32_t depth = 4) {
  function_config f;
  f.address = std::move(addr);
  f.type = function_type::virtio_net;
  f.form = function_form::sriov_vf;
  f.parent = "0000:3b:00.0";
  f.mac = "52:54:00:00:00:01";
  f.target = "eth0";
  f.queue_depth = depth;
  f.instance = inst;
  f.qos.tx.bandwidth = bw(1000, 1000, tx_guarantee);
  f.qos.tx.packets = pk(10, 2);
  return f;
}

}  // namespace

TEST_CASE("admission: the sum of guarantees never exceeds capacity; a refusal says by how much") {
  auto card = make_card();
  REQUIRE(card.add_function(net_fn("0000:3b:00.1", inst_a, 600)));
  auto second = card.add_function(net_fn("0000:3b:00.2", inst_b, 500));
  REQUIRE_FALSE(second);
  CHECK(second.error().code() == errc::insufficient_capacity);
  const auto& m = second.error().message();
  INFO(m);
  CHECK(m.find("card 0000:3b:00.0") != std::string::npos);
  CHECK(m.find("net_bandwidth.tx would be 1100 bytes_sec, 100 bytes_sec over the capacity of 1000 bytes_sec") !=
        std::string::npos);
  CHECK(card.function_count() == 1);  // nothing changed

  // A free function reserves nothing; binding it is the admission.
  auto free_idx = card.add_function(net_fn("0000:3b:00.2", std::nullopt, 500));
  REQUIRE(free_idx);
  auto short_ = card.shortfall(*free_idx, card.function(*free_idx).qos, inst_b);
  REQUIRE(short_.size() == 1);
  CHECK(short_[0] == capacity_shortfall{"net_bandwidth.tx", "bytes_sec", 1100, 1000, 100});
  CHECK(card.bind(*free_idx, inst_b).error().code() == errc::insufficient_capacity);
  CHECK_FALSE(card.function(*free_idx).instance);
  // Lowering the guarantee makes it fit exactly.
  auto q = card.function(*free_idx).qos;
  q.tx.bandwidth.guaranteed = bytes_per_second{400};
  REQUIRE(card.set_qos(*free_idx, q, at_ns(0)));
  REQUIRE(card.bind(*free_idx, inst_b));
  CHECK(card.guaranteed().net_bandwidth_tx == bytes_per_second{1000});
  CHECK(card.guaranteed().bound_functions == 2);
  // Raising it by one byte/s is refused and reported to the byte.
  q.tx.bandwidth.guaranteed = bytes_per_second{401};
  auto r = card.set_qos(*free_idx, q, at_ns(0));
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("1 bytes_sec over") != std::string::npos);
  CHECK(card.function(*free_idx).qos.tx.bandwidth.guaranteed == bytes_per_second{400});

  // The function count is capacity too.
  REQUIRE(card.add_function(net_fn("0000:3b:00.3", std::nullopt, 0)));
  REQUIRE(card.add_function(net_fn("0000:3b:00.4", std::nullopt, 0)));
  auto fifth = card.add_function(net_fn("0000:3b:00.5", std::nullopt, 0));
  REQUIRE_FALSE(fifth);
  CHECK(fifth.error().message().find("would hold 5 functions, 1 over its capacity of 4") != std::string::npos);
}

TEST_CASE("functions are validated with messages naming the field") {
  auto card = make_card();
  auto f = net_fn("0000:3b:00.1", inst_a, 0);
  f.qos.tx.bandwidth.guaranteed = bytes_per_second{2000};
  auto r = card.add_function(f);
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("functions['0000:3b:00.1'].qos.tx.bandwidth.guaranteed: 2000 bytes_sec is above the limit of 1000") !=
        std::string::npos);
  f = net_fn("0000:3b:00.1", inst_a, 0);
  f.mac = "52:54:00:00:00:0G";
  CHECK(card.add_function(f).error().message().find(".mac") != std::string::npos);
  f = net_fn("0000:3b:00.1", uuid{}, 0);
  f.instance = *uuid::parse("b0000000-0000-4000-8000-0000000000ff");
  CHECK(card.add_function(f).error().code() == errc::not_found);
  f = net_fn("0000:3b:00.1", inst_a, 0);
  f.qos.disk_iops.bucket.rate = ops_per_second{10};
  f.qos.disk_iops.bucket.burst = operations{1};
  CHECK(card.add_function(f).error().message().find("disk QoS on a virtio_net function") != std::string::npos);
  f = net_fn("../etc", inst_a, 0);
  CHECK(card.add_function(f).error().code() == errc::unsafe_path);
  REQUIRE(card.add_function(net_fn("0000:3b:00.1", inst_a, 0)));
  CHECK(card.add_function(net_fn("0000:3b:00.1", inst_a, 0)).error().code() == errc::already_exists);
}

TEST_CASE("offered requests are admitted, delayed to their exact time, or dropped; counters say which") {
  auto card = make_card();
  auto idx = card.add_function(net_fn("0000:3b:00.1", inst_a, 0, /*depth*/ 2));
  REQUIRE(idx);
  // tx: 1000 B/s burst 1000; 10 packets/s burst 2.
  auto o1 = card.offer_net(*idx, direction::tx, bytes{100}, at_ns(0));
  auto o2 = card.offer_net(*idx, direction::tx, bytes{100}, at_ns(0));
  REQUIRE(o1);
  REQUIRE(o2);
  CHECK(o1->what == offer_outcome::kind::admitted);
  CHECK(o2->what == offer_outcome::kind::admitted);
  // The packet bucket is empty: next packet at 100 ms, the one after at 200 ms.
  auto o3 = card.offer_net(*idx, direction::tx, bytes{100}, at_ns(10 * ms));
  auto o4 = card.offer_net(*idx, direction::tx, bytes{100}, at_ns(20 * ms));
  CHECK(o3->what == offer_outcome::kind::delayed);
  CHECK(o3->at == at_ns(100 * ms));
  CHECK(o4->what == offer_outcome::kind::delayed);
  CHECK(o4->at == at_ns(200 * ms));
  // Two are waiting (queue_depth 2): the next is dropped.
  auto o5 = card.offer_net(*idx, direction::tx, bytes{100}, at_ns(30 * ms));
  CHECK(o5->what == offer_outcome::kind::dropped);
  CHECK(o5->at == at_ns(300 * ms));  // when it would have passed

  // At 50 ms: 2 packets out; 3 throttled, 1 dropped. Throttled time is the
  // union of [10,100], [20,200], [30,300] ms up to now: 40 ms.
  auto c = card.counters(*idx, at_ns(50 * ms));
  CHECK(c.tx.packet_count == packets{2});
  CHECK(c.tx.byte_count == bytes{200});
  CHECK(c.tx.throttled == packets{3});
  CHECK(c.tx.drops == packets{1});
  CHECK(c.tx.throttled_time == nanoseconds{40 * ms});
  CHECK(c.rx.packet_count == packets{0});
  CHECK(c.throttled_time == nanoseconds{40 * ms});
  CHECK_FALSE(c.disk.read_requests);  // not a disk
  // At 100 ms the first delayed packet is out.
  c = card.counters(*idx, at_ns(100 * ms));
  CHECK(c.tx.packet_count == packets{3});
  CHECK(c.tx.throttled_time == nanoseconds{90 * ms});
  // At 1 s everything is out; throttled time stops at 300 ms (the dropped one's horizon).
  c = card.counters(*idx, at_ns(1000 * ms));
  CHECK(c.tx.packet_count == packets{4});
  CHECK(c.tx.byte_count == bytes{400});
  CHECK(c.tx.throttled_time == nanoseconds{290 * ms});
  // Time does not go back.
  auto late = card.offer_net(*idx, direction::tx, bytes{1}, at_ns(999 * ms));
  REQUIRE_FALSE(late);
  CHECK(late.error().code() == errc::out_of_range);
  CHECK(card.offer_disk(*idx, io_kind::read, bytes{1}, at_ns(2000 * ms)).error().code() == errc::invalid_argument);
}

TEST_CASE("queue_depth 0 polices: what cannot pass at once is dropped") {
  auto card = make_card();
  auto idx = card.add_function(net_fn("0000:3b:00.1", inst_a, 0, /*depth*/ 0));
  REQUIRE(idx);
  int admitted = 0, dropped = 0;
  for (int i = 0; i < 50; ++i) {
    auto o = card.offer_net(*idx, direction::tx, bytes{10}, at_ns(i * 20 * ms));  // 50 packets/s offered over 1 s
    REQUIRE(o);
    if (o->what == offer_outcome::kind::admitted) ++admitted;
    else if (o->what == offer_outcome::kind::dropped) ++dropped;
  }
  // 2 (burst) + 10 packets/s: a packet passes every 100 ms.
  CHECK(admitted == 2 + 9);
  CHECK(dropped == 50 - admitted);
  auto c = card.counters(*idx, at_ns(2000 * ms));
  CHECK(c.tx.drops == packets{static_cast<std::uint64_t>(dropped)});
  CHECK(c.tx.throttled == packets{static_cast<std::uint64_t>(dropped)});
}

TEST_CASE("a disk: reads and writes share its buckets; a request takes 1 op then its bytes") {
  auto card = make_card();
  function_config f;
  f.address = "0000:3b:00.7";
  f.type = function_type::virtio_blk;
  f.target = "vda";
  f.instance = inst_a;
  f.queue_depth = 100;
  f.qos.disk_iops.bucket.rate = ops_per_second{10};
  f.qos.disk_iops.bucket.burst = operations{1};
  f.qos.disk_iops.guaranteed = ops_per_second{10};
  f.qos.disk_bandwidth.bucket.rate = bytes_per_second{4096};
  f.qos.disk_bandwidth.bucket.burst = bytes{4096};
  auto idx = card.add_function(f);
  REQUIRE(idx);
  CHECK(card.guaranteed().disk_iops == ops_per_second{10});
  for (int i = 0; i < 4; ++i) {
    auto o = card.offer_disk(*idx, i % 2 ? io_kind::write : io_kind::read, bytes{4096}, at_ns(0));
    REQUIRE(o);
    // Bytes: 4096 per second; the first passes on the full bucket.
    CHECK(o->at == at_ns(i * 1000 * ms));
  }
  auto c = card.counters(*idx, at_ns(2500 * ms));
  CHECK(c.disk.read_requests == operations{2});
  CHECK(c.disk.write_requests == operations{1});
  CHECK(c.disk.read_bytes == bytes{8192});
  CHECK(c.disk.write_bytes == bytes{4096});
  CHECK(c.disk.throttled == operations{3});
  CHECK(c.disk.throttled_time == nanoseconds{2500 * ms});
  CHECK_FALSE(c.tx.packet_count);
}

TEST_CASE("set_qos changes the rate from now on and keeps what is in the bucket") {
  auto card = make_card();
  auto idx = card.add_function(net_fn("0000:3b:00.1", inst_a, 0, 100));
  REQUIRE(idx);
  auto q = card.function(*idx).qos;
  q.tx.packets = pk(1000, 1);
  REQUIRE(card.set_qos(*idx, q, at_ns(0)));
  // The packet bucket held 2; the new burst is 1.
  CHECK(card.offer_net(*idx, direction::tx, bytes{1}, at_ns(0))->what == offer_outcome::kind::admitted);
  auto o = card.offer_net(*idx, direction::tx, bytes{1}, at_ns(0));
  CHECK(o->what == offer_outcome::kind::delayed);
  CHECK(o->at == at_ns(1 * ms));
  // Unlimited removes the bucket.
  q.tx.packets = packet_qos{};
  q.tx.bandwidth = bandwidth_qos{};
  REQUIRE(card.set_qos(*idx, q, at_ns(2 * ms)));
  for (int i = 0; i < 1000; ++i)
    CHECK(card.offer_net(*idx, direction::tx, bytes{1500}, at_ns(2 * ms))->what == offer_outcome::kind::admitted);
  // An invalid QoS changes nothing.
  q.tx.packets = pk(0, 1);
  CHECK_FALSE(card.set_qos(*idx, q, at_ns(2 * ms)));
  CHECK(card.function(*idx).qos.tx.packets.bucket.rate.is_unlimited());
}

TEST_CASE("description: strict parsing with the JSON path in every error") {
  const auto err = [](const std::string& text) {
    auto r = parse_card_description(text);
    REQUIRE_FALSE(r);
    return r.error().message();
  };
  const std::string head = R"({"format": "bulkhead-offload-card/1", "cards": [)";
  const std::string cap = R"("capacity": {"functions": 4, "net_bandwidth_bytes_sec": 1000})";
  CHECK(err("{").find("not valid JSON") != std::string::npos);
  CHECK(err(R"({"format": "x", "cards": []})").find("format") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", )" + cap + R"(, "colour": 1}]})")
            .find("cards[0]: unknown key 'colour'") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", "capacity": {"functions": -1}}]})")
            .find("cards[0].capacity.functions: -1 is negative") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", "capacity": {"functions": 1.5}}]})")
            .find("cards[0].capacity.functions: 1.5 is not an integer") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", )" + cap +
            R"(, "functions": [{"address": "a", "type": "virtio_net", "qos": {"tx": {"bandwidth": {"rate_bytes_sec": 0}}}}]}]})")
            .find("cards[0].functions[0].qos.tx.bandwidth.rate_bytes_sec: 0; use \"unlimited\"") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", )" + cap +
            R"(, "functions": [{"address": "a", "type": "virtio_scsi"}]}]})")
            .find("cards[0].functions[0].type") != std::string::npos);
  CHECK(err(head + R"({"pci_address": "0000:3b:00.0", "model": "m", )" + cap +
            R"(, "instances": [{"uuid": "nope", "name": "x"}]}]})")
            .find("cards[0].instances[0].uuid") != std::string::npos);
}

TEST_CASE("description: a card is built, admitted, and its workload gives the same counters every time") {
  const std::string text = R"({
    "format": "bulkhead-offload-card/1",
    "cards": [{
      "pci_address": "0000:3b:00.0", "model": "test", "firmware": "1.2",
      "capacity": {"functions": 8, "net_bandwidth_bytes_sec": 1000000, "net_packets_sec": 10000,
                   "disk_bandwidth_bytes_sec": 1000000, "disk_iops": 1000},
      "instances": [{"uuid": "b0000000-0000-4000-8000-000000000001", "name": "bm", "isolation": "bare_metal",
                     "tenant": "acme", "qos_class": "LSR", "board": {"cpus": 16, "memory_bytes": 68719476736}}],
      "functions": [
        {"address": "0000:3b:00.1", "type": "virtio_net", "form": "sriov_vf", "parent": "0000:3b:00.0", "vf_index": 0,
         "instance": "b0000000-0000-4000-8000-000000000001", "mac": "52:54:00:aa:00:01", "target": "eth0",
         "qos": {"tx": {"bandwidth": {"rate_bytes_sec": 100000, "guaranteed_bytes_sec": 50000},
                        "packets": {"rate_packets_sec": "unlimited"}}}},
        {"address": "0000:3b:00.2", "type": "virtio_blk", "instance": "b0000000-0000-4000-8000-000000000001",
         "target": "vda", "queue_depth": 8, "qos": {"iops": {"rate_ops_sec": 100, "burst_ops": 10}}}
      ],
      "workload": {"seconds": 10, "streams": [
        {"function": "0000:3b:00.1", "direction": "tx", "requests_sec": 200, "request_bytes": 1000},
        {"function": "0000:3b:00.2", "io": "write", "requests_sec": 150, "request_bytes": 4096}]}
    }]})";
  auto d = parse_card_description(text);
  REQUIRE(d);
  REQUIRE(d->size() == 1);
  const auto& desc = (*d)[0];
  CHECK(desc.functions[0].qos.tx.bandwidth.bucket.burst == bytes{10000});  // default: 100 ms of the rate
  CHECK(desc.functions[0].qos.tx.packets.bucket.rate.is_unlimited());
  const mono_time now = at_ns(1'000'000 * ms);
  auto c1 = offload::emulated_card::make(desc, now);
  auto c2 = offload::emulated_card::make(desc, now + std::chrono::seconds(5));
  REQUIRE(c1);
  REQUIRE(c2);
  const auto v1 = c1->snapshot(now + std::chrono::seconds(60));
  const auto v2 = c2->snapshot(now + std::chrono::seconds(65));
  REQUIRE(v1.functions.size() == 2);
  const auto& tx = v1.functions[0].counters.tx;
  // 200 packets/s x 1000 bytes offered against 100000 bytes/s: half passes, the rest queues then drops.
  CHECK(tx.packet_count == v2.functions[0].counters.tx.packet_count);
  CHECK(tx.throttled == v2.functions[0].counters.tx.throttled);
  CHECK(tx.throttled_time == v2.functions[0].counters.tx.throttled_time);
  // burst + rate x 10 s + the queue (depth 256) draining after, to within the last request.
  CHECK(tx.packet_count->count() + 1 >= 10 + 10 * 100 + 256);
  CHECK(tx.packet_count->count() <= 10 + 10 * 100 + 256 + 1);
  CHECK(tx.drops->count() == 2000 - tx.packet_count->count());
  const auto& disk = v1.functions[1].counters.disk;
  CHECK(disk.write_requests->count() + 1 >= 10 + 10 * 100 + 8);
  CHECK(disk.write_requests->count() <= 10 + 10 * 100 + 8 + 1);
  CHECK(disk.write_requests == v2.functions[1].counters.disk.write_requests);
  CHECK(v1.guaranteed->net_bandwidth_tx == bytes_per_second{50000});

  // Admission runs at build time.
  std::string over = text;
  over.replace(over.find("\"guaranteed_bytes_sec\": 50000"), 29, "\"guaranteed_bytes_sec\": 100000");
  over.replace(over.find("\"net_bandwidth_bytes_sec\": 1000000"), 34, "\"net_bandwidth_bytes_sec\": 99999");
  auto dd = parse_card_description(over);
  REQUIRE(dd);
  auto bad = offload::emulated_card::make((*dd)[0], now);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == errc::insufficient_capacity);
  CHECK(bad.error().message().find("1 bytes_sec over") != std::string::npos);
}
