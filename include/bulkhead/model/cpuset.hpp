// bulkhead/model/cpuset.hpp: a set of CPU (or NUMA node) ids.
//
// Text form is the kernel's list format (Documentation/admin-guide/cgroup-v2.rst,
// "cpuset.cpus"): comma-separated ids and inclusive ranges, "0-3,8,10-11";
// libvirt's cpuset attributes use the same form plus "^N" exclusions
// (formatdomain, "cpuset"), which parse() also accepts. Ids are bounded by
// max_id so hostile input cannot make a huge set.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead {

class cpuset {
 public:
  static constexpr std::uint32_t max_id = 65535;

  cpuset() = default;

  [[nodiscard]] static result<cpuset> parse(std::string_view text) {
    cpuset out;
    cpuset excluded;
    const auto t = bulkhead::detail::trim(text);
    if (t.empty()) return out;
    std::optional<error> err;
    bulkhead::detail::split(t, ',', [&](std::string_view part) {
      if (err) return;
      part = bulkhead::detail::trim(part);
      bool exclude = false;
      if (!part.empty() && part.front() == '^') {
        exclude = true;
        part.remove_prefix(1);
      }
      auto dash = part.find('-');
      auto lo_r = bulkhead::detail::parse_u64(part.substr(0, dash), "cpu id");
      if (!lo_r) {
        err = error(errc::parse_error, "cpu list " + bulkhead::detail::quote(text) + ": " + lo_r.error().message());
        return;
      }
      std::uint64_t hi = *lo_r;
      if (dash != std::string_view::npos) {
        auto hi_r = bulkhead::detail::parse_u64(part.substr(dash + 1), "cpu id");
        if (!hi_r) {
          err = error(errc::parse_error, "cpu list " + bulkhead::detail::quote(text) + ": " + hi_r.error().message());
          return;
        }
        hi = *hi_r;
      }
      if (hi < *lo_r || hi > max_id) {
        err = error(errc::out_of_range, "cpu list " + bulkhead::detail::quote(text) + ": range " + bulkhead::detail::quote(part) +
                                            " is reversed or above " + std::to_string(max_id));
        return;
      }
      for (auto i = *lo_r; i <= hi; ++i) (exclude ? excluded : out).insert(static_cast<std::uint32_t>(i));
    });
    if (err) return fail(std::move(*err));
    for (auto id : excluded.ids()) out.erase(id);
    return out;
  }

  static cpuset range(std::uint32_t first, std::uint32_t last_inclusive) {
    cpuset s;
    for (auto i = first; i <= last_inclusive; ++i) s.insert(i);
    return s;
  }

  void insert(std::uint32_t id) {
    if (id / 64 >= words_.size()) words_.resize(id / 64 + 1, 0);
    words_[id / 64] |= (std::uint64_t{1} << (id % 64));
  }
  void erase(std::uint32_t id) {
    if (id / 64 < words_.size()) words_[id / 64] &= ~(std::uint64_t{1} << (id % 64));
    normalise();
  }
  [[nodiscard]] bool contains(std::uint32_t id) const noexcept {
    return id / 64 < words_.size() && (words_[id / 64] >> (id % 64) & 1u);
  }
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto w : words_) n += static_cast<std::size_t>(std::popcount(w));
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  [[nodiscard]] std::vector<std::uint32_t> ids() const {
    std::vector<std::uint32_t> v;
    for (std::size_t w = 0; w < words_.size(); ++w)
      for (std::uint64_t x = words_[w]; x; x &= x - 1)
        v.push_back(static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(std::countr_zero(x))));
    return v;
  }

  [[nodiscard]] cpuset operator|(const cpuset& o) const {
    cpuset r = *this;
    if (r.words_.size() < o.words_.size()) r.words_.resize(o.words_.size(), 0);
    for (std::size_t i = 0; i < o.words_.size(); ++i) r.words_[i] |= o.words_[i];
    return r;
  }
  [[nodiscard]] cpuset operator&(const cpuset& o) const {
    cpuset r;
    r.words_.resize(std::min(words_.size(), o.words_.size()), 0);
    for (std::size_t i = 0; i < r.words_.size(); ++i) r.words_[i] = words_[i] & o.words_[i];
    r.normalise();
    return r;
  }
  // Set difference: ids in *this and not in o.
  [[nodiscard]] cpuset operator-(const cpuset& o) const {
    cpuset r = *this;
    for (std::size_t i = 0; i < std::min(r.words_.size(), o.words_.size()); ++i) r.words_[i] &= ~o.words_[i];
    r.normalise();
    return r;
  }
  [[nodiscard]] bool intersects(const cpuset& o) const noexcept {
    for (std::size_t i = 0; i < std::min(words_.size(), o.words_.size()); ++i)
      if (words_[i] & o.words_[i]) return true;
    return false;
  }
  [[nodiscard]] bool subset_of(const cpuset& o) const noexcept { return (*this - o).empty(); }

  // Kernel list format with ranges: "0-3,8".
  [[nodiscard]] std::string to_string() const {
    std::string s;
    const auto v = ids();
    for (std::size_t i = 0; i < v.size();) {
      std::size_t j = i;
      while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
      if (!s.empty()) s += ',';
      s += std::to_string(v[i]);
      if (j > i) {
        s += '-';
        s += std::to_string(v[j]);
      }
      i = j + 1;
    }
    return s;
  }

  friend bool operator==(const cpuset& a, const cpuset& b) noexcept {
    const auto n = std::max(a.words_.size(), b.words_.size());
    for (std::size_t i = 0; i < n; ++i) {
      const auto x = i < a.words_.size() ? a.words_[i] : 0;
      const auto y = i < b.words_.size() ? b.words_[i] : 0;
      if (x != y) return false;
    }
    return true;
  }

 private:
  void normalise() {
    while (!words_.empty() && words_.back() == 0) words_.pop_back();
  }
  std::vector<std::uint64_t> words_;
};

}  // namespace bulkhead
