// bulkhead/backend/offload/detail/description_impl.hpp (internal): the card description parser;
// the contract is in bulkhead/backend/offload/description.hpp.
//
// The format is in docs/offload-card.md.
#pragma once

#include "bulkhead/backend/offload/description.hpp"

#include <initializer_list>
#include <nlohmann/json.hpp>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::offload {

namespace detail {

using json = nlohmann::json;

inline result<void> check_keys(const json& o, const std::string& path, std::initializer_list<std::string_view> allowed) {
  if (!o.is_object()) return fail(errc::parse_error, path + ": expected an object");
  for (const auto& [k, v] : o.items()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k;
    if (!ok) {
      std::string list;
      for (auto a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      return fail(errc::parse_error, path + ": unknown key " + bulkhead::detail::quote(k) + " (known: " + list + ")");
    }
  }
  return {};
}

// The error with the JSON path in front of its message.
inline error at(const std::string& path, const error& e) { return error(e.code(), path + ": " + e.message()); }

inline std::string sub(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

inline result<std::uint64_t> get_u64(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return fail(errc::out_of_range, path + ": " + v.dump() + " is negative");
  if (v.is_number()) return fail(errc::parse_error, path + ": " + v.dump() + " is not an integer");
  return fail(errc::parse_error, path + ": expected a non-negative integer, got " + std::string(v.type_name()));
}

inline result<std::optional<std::uint64_t>> opt_u64(const json& o, std::string_view key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::optional<std::uint64_t>{};
  auto v = get_u64(*it, sub(path, key));
  if (!v) return fail(std::move(v.error()));
  return std::optional<std::uint64_t>{*v};
}

inline result<std::string> get_string(const json& o, std::string_view key, const std::string& path, bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) return fail(errc::parse_error, sub(path, key) + ": missing");
    return std::string();
  }
  if (!it->is_string()) return fail(errc::parse_error, sub(path, key) + ": expected a string, got " + std::string(it->type_name()));
  auto s = it->get<std::string>();
  if (!bulkhead::detail::is_utf8(s)) return fail(errc::parse_error, sub(path, key) + ": not valid UTF-8");
  return s;
}

template <class E>
result<E> get_enum(const json& o, std::string_view key, const std::string& path, std::optional<E> dflt) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (dflt) return *dflt;
    return fail(errc::parse_error, sub(path, key) + ": missing");
  }
  if (!it->is_string()) return fail(errc::parse_error, sub(path, key) + ": expected a string");
  auto e = parse_enum<E>(it->get<std::string>());
  if (!e) return fail(at(sub(path, key), e.error()));
  return *e;
}

// {"rate_<u>": n|"unlimited", "burst_<a>": n, "one_time_burst_<a>": n, "guaranteed_<u>": n}
template <class Amount, class Rate>
result<rate_qos<Amount, Rate>> parse_rate_qos(const json& o, const std::string& path, std::string_view rate_key,
                                              std::string_view burst_key, std::string_view otb_key,
                                              std::string_view guar_key) {
  if (auto k = check_keys(o, path, {rate_key, burst_key, otb_key, guar_key}); !k) return fail(std::move(k.error()));
  rate_qos<Amount, Rate> q;
  auto it = o.find(rate_key);
  if (it != o.end() && !it->is_null()) {
    if (it->is_string()) {
      if (it->get<std::string>() != "unlimited")
        return fail(errc::parse_error, sub(path, rate_key) + ": " + bulkhead::detail::quote(it->get<std::string>()) +
                                           " is neither a number nor \"unlimited\"");
    } else {
      auto r = get_u64(*it, sub(path, rate_key));
      if (!r) return fail(std::move(r.error()));
      if (*r == 0)
        return fail(errc::out_of_range, sub(path, rate_key) + ": 0; use \"unlimited\" (or omit it) for no limit");
      q.bucket.rate = Rate{*r};
    }
  }
  auto burst = opt_u64(o, burst_key, path);
  if (!burst) return fail(std::move(burst.error()));
  auto otb = opt_u64(o, otb_key, path);
  if (!otb) return fail(std::move(otb.error()));
  auto g = opt_u64(o, guar_key, path);
  if (!g) return fail(std::move(g.error()));
  if (*burst) {
    q.bucket.burst = Amount{**burst};
  } else if (q.bucket.rate.is_bounded()) {
    // Default: 100 ms worth of the rate, at least 1 unit.
    const std::uint64_t r = q.bucket.rate.value().count();
    q.bucket.burst = Amount{r / 10 + (r % 10 != 0 ? 1 : 0)};
  }
  if (*otb) q.bucket.one_time_burst = Amount{**otb};
  if (*g) q.guaranteed = Rate{**g};
  return q;
}

inline result<bandwidth_qos> parse_bandwidth(const json& o, const std::string& path) {
  return parse_rate_qos<bytes, bytes_per_second>(o, path, "rate_bytes_sec", "burst_bytes", "one_time_burst_bytes",
                                                 "guaranteed_bytes_sec");
}

inline result<net_direction_qos> parse_direction(const json& o, const std::string& path) {
  if (auto k = check_keys(o, path, {"bandwidth", "packets"}); !k) return fail(std::move(k.error()));
  net_direction_qos d;
  if (auto it = o.find("bandwidth"); it != o.end()) {
    auto b = parse_bandwidth(*it, path + ".bandwidth");
    if (!b) return fail(std::move(b.error()));
    d.bandwidth = *b;
  }
  if (auto it = o.find("packets"); it != o.end()) {
    auto p = parse_rate_qos<packets, packets_per_second>(*it, path + ".packets", "rate_packets_sec", "burst_packets",
                                                         "one_time_burst_packets", "guaranteed_packets_sec");
    if (!p) return fail(std::move(p.error()));
    d.packets = *p;
  }
  return d;
}

inline result<function_qos> parse_qos(const json& o, const std::string& path, function_type type) {
  function_qos q;
  if (type == function_type::virtio_net) {
    if (auto k = check_keys(o, path, {"rx", "tx"}); !k) return fail(std::move(k.error()));
    for (auto [key, dst] : {std::pair{"rx", &q.rx}, std::pair{"tx", &q.tx}}) {
      auto it = o.find(key);
      if (it == o.end()) continue;
      auto d = parse_direction(*it, path + "." + key);
      if (!d) return fail(std::move(d.error()));
      *dst = *d;
    }
  } else {
    if (auto k = check_keys(o, path, {"bandwidth", "iops"}); !k) return fail(std::move(k.error()));
    if (auto it = o.find("bandwidth"); it != o.end()) {
      auto b = parse_bandwidth(*it, path + ".bandwidth");
      if (!b) return fail(std::move(b.error()));
      q.disk_bandwidth = *b;
    }
    if (auto it = o.find("iops"); it != o.end()) {
      auto p = parse_rate_qos<operations, ops_per_second>(*it, path + ".iops", "rate_ops_sec", "burst_ops",
                                                          "one_time_burst_ops", "guaranteed_ops_sec");
      if (!p) return fail(std::move(p.error()));
      q.disk_iops = *p;
    }
  }
  return q;
}

inline result<uuid> get_uuid(const json& o, std::string_view key, const std::string& path) {
  auto s = get_string(o, key, path, true);
  if (!s) return fail(std::move(s.error()));
  auto u = uuid::parse(*s);
  if (!u) return fail(at(sub(path, key), u.error()));
  return *u;
}

inline result<instance_config> parse_instance(const json& o, const std::string& path) {
  if (auto k = check_keys(o, path, {"uuid", "name", "isolation", "tenant", "qos_class", "incarnation", "state", "board"}); !k)
    return fail(std::move(k.error()));
  instance_config i;
  auto id = get_uuid(o, "uuid", path);
  if (!id) return fail(std::move(id.error()));
  i.uuid = *id;
  auto name = get_string(o, "name", path, true);
  if (!name) return fail(std::move(name.error()));
  i.name = *name;
  auto iso = get_enum<isolation_level>(o, "isolation", path, isolation_level::bare_metal);
  if (!iso) return fail(std::move(iso.error()));
  i.isolation = *iso;
  auto tenant = get_string(o, "tenant", path, false);
  if (!tenant) return fail(std::move(tenant.error()));
  if (!tenant->empty()) i.tenant = *tenant;
  if (o.contains("qos_class") && !o["qos_class"].is_null()) {
    auto q = get_enum<qos_class>(o, "qos_class", path, std::nullopt);
    if (!q) return fail(std::move(q.error()));
    i.qos = *q;
  }
  auto inc = opt_u64(o, "incarnation", path);
  if (!inc) return fail(std::move(inc.error()));
  if (*inc) i.incarnation = incarnation{**inc};
  auto st = get_enum<instance_state>(o, "state", path, instance_state::running);
  if (!st) return fail(std::move(st.error()));
  i.state = *st;
  if (auto it = o.find("board"); it != o.end() && !it->is_null()) {
    const std::string bp = path + ".board";
    if (auto k = check_keys(*it, bp, {"cpus", "memory_bytes"}); !k) return fail(std::move(k.error()));
    auto cpus = opt_u64(*it, "cpus", bp);
    if (!cpus) return fail(std::move(cpus.error()));
    if (*cpus) {
      if (**cpus > UINT32_MAX) return fail(errc::out_of_range, bp + ".cpus: " + std::to_string(**cpus) + " is too many");
      i.board_cpus = static_cast<std::uint32_t>(**cpus);
    }
    auto mem = opt_u64(*it, "memory_bytes", bp);
    if (!mem) return fail(std::move(mem.error()));
    if (*mem) i.board_memory = bytes{**mem};
  }
  return i;
}

inline result<function_config> parse_function(const json& o, const std::string& path) {
  if (auto k = check_keys(o, path, {"address", "type", "form", "parent", "vf_index", "instance", "mac", "target",
                                    "queue_depth", "qos"});
      !k)
    return fail(std::move(k.error()));
  function_config f;
  auto addr = get_string(o, "address", path, true);
  if (!addr) return fail(std::move(addr.error()));
  f.address = *addr;
  auto type = get_enum<function_type>(o, "type", path, std::nullopt);
  if (!type) return fail(std::move(type.error()));
  f.type = *type;
  auto form = get_enum<function_form>(o, "form", path, function_form::physical);
  if (!form) return fail(std::move(form.error()));
  f.form = *form;
  auto parent = get_string(o, "parent", path, false);
  if (!parent) return fail(std::move(parent.error()));
  if (!parent->empty()) f.parent = *parent;
  auto vfi = opt_u64(o, "vf_index", path);
  if (!vfi) return fail(std::move(vfi.error()));
  if (*vfi) {
    if (**vfi > UINT32_MAX) return fail(errc::out_of_range, path + ".vf_index: " + std::to_string(**vfi) + " is too large");
    f.vf_index = static_cast<std::uint32_t>(**vfi);
  }
  if (o.contains("instance") && !o["instance"].is_null()) {
    auto u = get_uuid(o, "instance", path);
    if (!u) return fail(std::move(u.error()));
    f.instance = *u;
  }
  auto mac = get_string(o, "mac", path, false);
  if (!mac) return fail(std::move(mac.error()));
  f.mac = *mac;
  auto target = get_string(o, "target", path, false);
  if (!target) return fail(std::move(target.error()));
  f.target = *target;
  auto qd = opt_u64(o, "queue_depth", path);
  if (!qd) return fail(std::move(qd.error()));
  if (*qd) {
    if (**qd > emulated_card::max_queue_depth)
      return fail(errc::out_of_range, path + ".queue_depth: " + std::to_string(**qd) + " is above " +
                                          std::to_string(emulated_card::max_queue_depth));
    f.queue_depth = static_cast<std::uint32_t>(**qd);
  }
  if (auto it = o.find("qos"); it != o.end() && !it->is_null()) {
    auto q = parse_qos(*it, path + ".qos", f.type);
    if (!q) return fail(std::move(q.error()));
    f.qos = *q;
  }
  return f;
}

inline result<workload> parse_workload(const json& o, const std::string& path) {
  if (auto k = check_keys(o, path, {"seconds", "streams"}); !k) return fail(std::move(k.error()));
  workload w;
  auto secs = opt_u64(o, "seconds", path);
  if (!secs) return fail(std::move(secs.error()));
  if (!*secs || **secs == 0) return fail(errc::out_of_range, path + ".seconds: missing or 0");
  if (**secs > 86400) return fail(errc::out_of_range, path + ".seconds: " + std::to_string(**secs) + " is above 86400");
  w.duration = seconds{static_cast<std::int64_t>(**secs)};
  auto it = o.find("streams");
  if (it == o.end() || !it->is_array()) return fail(errc::parse_error, path + ".streams: expected an array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string sp = path + ".streams[" + std::to_string(i) + "]";
    const auto& s = (*it)[i];
    if (auto k = check_keys(s, sp, {"function", "direction", "io", "requests_sec", "request_bytes"}); !k)
      return fail(std::move(k.error()));
    workload_stream st;
    auto fn = get_string(s, "function", sp, true);
    if (!fn) return fail(std::move(fn.error()));
    st.function = *fn;
    if (s.contains("direction")) {
      auto d = get_enum<direction>(s, "direction", sp, std::nullopt);
      if (!d) return fail(std::move(d.error()));
      st.dir = *d;
    }
    if (s.contains("io")) {
      auto d = get_enum<io_kind>(s, "io", sp, std::nullopt);
      if (!d) return fail(std::move(d.error()));
      st.io = *d;
    }
    if (st.dir.has_value() == st.io.has_value())
      return fail(errc::parse_error, sp + ": give \"direction\" (virtio_net) or \"io\" (virtio_blk), not both or neither");
    auto rate = opt_u64(s, "requests_sec", sp);
    if (!rate) return fail(std::move(rate.error()));
    if (!*rate || **rate == 0 || **rate > 1'000'000'000)
      return fail(errc::out_of_range, sp + ".requests_sec: missing or outside 1..1000000000");
    st.rate = ops_per_second{**rate};
    auto size = opt_u64(s, "request_bytes", sp);
    if (!size) return fail(std::move(size.error()));
    if (!*size || **size > max_request_cost)
      return fail(errc::out_of_range, sp + ".request_bytes: missing or above " + std::to_string(max_request_cost));
    st.request_size = bytes{**size};
    w.streams.push_back(std::move(st));
  }
  return w;
}

inline result<card_description> parse_card(const json& o, const std::string& path) {
  if (auto k = check_keys(o, path, {"pci_address", "model", "firmware", "capacity", "instances", "functions", "workload"}); !k)
    return fail(std::move(k.error()));
  card_description d;
  auto addr = get_string(o, "pci_address", path, true);
  if (!addr) return fail(std::move(addr.error()));
  d.identity.pci_address = *addr;
  auto model = get_string(o, "model", path, true);
  if (!model) return fail(std::move(model.error()));
  d.identity.model = *model;
  auto fw = get_string(o, "firmware", path, false);
  if (!fw) return fail(std::move(fw.error()));
  d.identity.firmware = *fw;

  auto cit = o.find("capacity");
  if (cit == o.end()) return fail(errc::parse_error, path + ".capacity: missing");
  const std::string cp = path + ".capacity";
  if (auto k = check_keys(*cit, cp, {"functions", "net_bandwidth_bytes_sec", "net_packets_sec", "disk_bandwidth_bytes_sec", "disk_iops"}); !k)
    return fail(std::move(k.error()));
  for (auto key : {"functions", "net_bandwidth_bytes_sec", "net_packets_sec", "disk_bandwidth_bytes_sec", "disk_iops"}) {
    auto v = opt_u64(*cit, key, cp);
    if (!v) return fail(std::move(v.error()));
    const std::uint64_t x = v->value_or(0);
    const std::string_view k(key);
    if (k == "functions") {
      if (x > UINT32_MAX) return fail(errc::out_of_range, cp + ".functions: " + std::to_string(x) + " is too many");
      d.capacity.functions = static_cast<std::uint32_t>(x);
    } else if (k == "net_bandwidth_bytes_sec") {
      d.capacity.net_bandwidth = bytes_per_second{x};
    } else if (k == "net_packets_sec") {
      d.capacity.net_packets = packets_per_second{x};
    } else if (k == "disk_bandwidth_bytes_sec") {
      d.capacity.disk_bandwidth = bytes_per_second{x};
    } else {
      d.capacity.disk_iops = ops_per_second{x};
    }
  }
  if (auto it = o.find("instances"); it != o.end()) {
    if (!it->is_array()) return fail(errc::parse_error, path + ".instances: expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto inst = parse_instance((*it)[i], path + ".instances[" + std::to_string(i) + "]");
      if (!inst) return fail(std::move(inst.error()));
      d.instances.push_back(std::move(*inst));
    }
  }
  if (auto it = o.find("functions"); it != o.end()) {
    if (!it->is_array()) return fail(errc::parse_error, path + ".functions: expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto f = parse_function((*it)[i], path + ".functions[" + std::to_string(i) + "]");
      if (!f) return fail(std::move(f.error()));
      d.functions.push_back(std::move(*f));
    }
  }
  if (auto it = o.find("workload"); it != o.end() && !it->is_null()) {
    auto w = parse_workload(*it, path + ".workload");
    if (!w) return fail(std::move(w.error()));
    d.load = std::move(*w);
  }
  return d;
}

}  // namespace detail

inline result<std::vector<card_description>> parse_card_description(std::string_view json_text) {
  using json = nlohmann::json;
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return fail(errc::parse_error, std::string("not valid JSON: ") + e.what());
  }
  if (auto k = detail::check_keys(doc, "(top level)", {"format", "cards"}); !k) return fail(std::move(k.error()));
  auto fmt = detail::get_string(doc, "format", "", true);
  if (!fmt) return fail(std::move(fmt.error()));
  if (*fmt != description_format)
    return fail(errc::parse_error, "format: " + bulkhead::detail::quote(*fmt) + " is not " + std::string(description_format));
  auto it = doc.find("cards");
  if (it == doc.end() || !it->is_array()) return fail(errc::parse_error, "cards: expected an array");
  std::vector<card_description> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    auto c = detail::parse_card((*it)[i], "cards[" + std::to_string(i) + "]");
    if (!c) return fail(std::move(c.error()));
    for (const auto& prev : out)
      if (prev.identity.pci_address == c->identity.pci_address)
        return fail(errc::invalid_argument, "cards[" + std::to_string(i) + "].pci_address: " +
                                                bulkhead::detail::quote(c->identity.pci_address) + " is listed twice");
    out.push_back(std::move(*c));
  }
  return out;
}

inline result<void> run_workload(emulated_card& card, const workload& w, mono_time from) {
  struct live {
    std::size_t function;
    const workload_stream* s;
    std::uint64_t k;      // next request number
    std::uint64_t count;  // requests in the run
    std::int64_t next;    // its time, ns
  };
  const std::int64_t start = to_ns(from);
  const auto dur_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<nanoseconds>(w.duration).count());
  std::vector<live> ls;
  u128 total = 0;
  for (std::size_t i = 0; i < w.streams.size(); ++i) {
    const auto& s = w.streams[i];
    const std::string sp = "workload.streams[" + std::to_string(i) + "]";
    auto fn = card.find_function(s.function);
    if (!fn) return fail(errc::not_found, sp + ".function: no function " + bulkhead::detail::quote(s.function) + " on the card");
    const auto type = card.function(*fn).type;
    if (type == function_type::virtio_net && !s.dir)
      return fail(errc::invalid_argument, sp + ": function " + bulkhead::detail::quote(s.function) + " is virtio_net; give a direction");
    if (type == function_type::virtio_blk && !s.io)
      return fail(errc::invalid_argument, sp + ": function " + bulkhead::detail::quote(s.function) + " is virtio_blk; give io");
    // Requests k with floor(k x 10^9 / rate) < duration: k < ceil(duration x rate / 10^9).
    const u128 num = static_cast<u128>(dur_ns) * s.rate.count();
    const u128 count = num / nanos_per_second + (num % nanos_per_second != 0 ? 1 : 0);
    total += count;
    ls.push_back(live{*fn, &s, 0, static_cast<std::uint64_t>(count), start});
  }
  if (total > max_workload_requests)
    return fail(errc::out_of_range, "workload: " + std::to_string(static_cast<std::uint64_t>(total > UINT64_MAX ? UINT64_MAX : total)) +
                                        " requests is above the limit of " + std::to_string(max_workload_requests));
  while (true) {
    live* best = nullptr;
    for (auto& l : ls)
      if (l.k < l.count && (!best || l.next < best->next)) best = &l;
    if (!best) break;
    const mono_time at = from_ns(best->next);
    auto r = best->s->dir ? card.offer_net(best->function, *best->s->dir, best->s->request_size, at)
                          : card.offer_disk(best->function, *best->s->io, best->s->request_size, at);
    if (!r) return fail(std::move(r.error()).in("workload"));
    ++best->k;
    best->next = start + static_cast<std::int64_t>(static_cast<u128>(best->k) * nanos_per_second / best->s->rate.count());
  }
  return {};
}

inline result<emulated_card> emulated_card::make(const card_description& d, mono_time now) {
  const std::string where = "card " + d.identity.pci_address;
  const mono_time start =
      d.load ? now - std::chrono::duration_cast<mono_clock::duration>(d.load->duration) : now;
  auto card = emulated_card::make(d.identity, d.capacity, start);
  if (!card) return fail(std::move(card.error()));
  for (const auto& i : d.instances)
    if (auto r = card->add_instance(i); !r) return fail(std::move(r.error()).in(where));
  for (const auto& f : d.functions)
    if (auto r = card->add_function(f); !r) return fail(std::move(r.error()));
  if (d.load)
    if (auto r = run_workload(*card, *d.load, start); !r) return fail(std::move(r.error()).in(where));
  return std::move(*card);
}

}  // namespace bulkhead::offload
