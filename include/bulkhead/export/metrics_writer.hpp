// bulkhead/export/metrics_writer.hpp: metric families collected in order and
// written in either text format:
//   - openmetrics: OpenMetrics 1.0 (a counter family named without _total and
//     its samples with it, # UNIT lines, a final # EOF);
//   - prometheus: the classic text exposition format 0.0.4 (node_exporter's
//     textfile collector and `promtool check metrics` read it; there a
//     counter's # TYPE names the _total sample).
// A family is declared by its first add(); later adds of the same name append
// samples to it, so the families of several writers of one exposition never
// repeat. Label text is built with label() (escaped, valid UTF-8).
//
// Thread-safety: a value; not for concurrent mutation.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulkhead/detail/text.hpp"

namespace bulkhead::metrics {

enum class format { openmetrics, prometheus };

// info: OpenMetrics info (a gauge with value 1 in the classic format); the
// sample is named <family>_info.
enum class kind { gauge, counter, info };

// A label value escaped for the text formats: \ -> \\, " -> \", newline ->
// \n; bytes that are not valid UTF-8 become U+FFFD.
[[nodiscard]] inline std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else if (c < 0x80) out += static_cast<char>(c);
    else {
      const std::size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (len && i + len <= v.size() && bulkhead::detail::is_utf8(v.substr(i, len))) {
        out.append(v.substr(i, len));
        i += len - 1;
      } else {
        out += "\xef\xbf\xbd";
      }
    }
  }
  return out;
}

// name="escaped value"
[[nodiscard]] inline std::string label(std::string_view name, std::string_view value) {
  std::string s(name);
  s += "=\"";
  s += escape_label(value);
  s += '"';
  return s;
}

class writer {
 public:
  // `name` without the _total / _info suffix; `unit` the OpenMetrics unit
  // ("" for none), which must end the name; `labels` comma-separated
  // label() texts ("" for none); `value` the sample's text.
  void add(std::string_view name, kind type, std::string_view unit, std::string_view help, std::string labels,
           std::string value) {
    auto it = index_.find(name);
    std::size_t i;
    if (it != index_.end()) {
      i = it->second;
    } else {
      i = families_.size();
      index_.emplace(std::string(name), i);
      families_.push_back(family{std::string(name), type, std::string(unit), std::string(help), {}});
    }
    families_[i].samples.emplace_back(std::move(labels), std::move(value));
  }

  // The exposition; `eof` ends an OpenMetrics text with "# EOF" (leave it
  // off only to append more text written the same way).
  [[nodiscard]] std::string text(format f, bool eof = true) const {
    std::string out;
    const bool om = f == format::openmetrics;
    for (const auto& fam : families_) {
      const char* type = fam.type == kind::counter ? "counter" : fam.type == kind::info && om ? "info" : "gauge";
      const char* suffix = fam.type == kind::counter ? "_total" : fam.type == kind::info ? "_info" : "";
      const std::string family_name = om ? fam.name : fam.name + suffix;
      if (om) {
        out += "# TYPE " + family_name + " " + type + "\n";
        if (!fam.unit.empty()) out += "# UNIT " + family_name + " " + fam.unit + "\n";
        out += "# HELP " + family_name + " " + fam.help + "\n";
      } else {
        out += "# HELP " + family_name + " " + fam.help + "\n";
        out += "# TYPE " + family_name + " " + type + "\n";
      }
      for (const auto& [labels, value] : fam.samples) {
        out += fam.name;
        out += suffix;
        if (!labels.empty()) {
          out += '{';
          out += labels;
          out += '}';
        }
        out += ' ';
        out += value;
        out += '\n';
      }
    }
    if (om && eof) out += "# EOF\n";
    return out;
  }

  [[nodiscard]] bool empty() const noexcept { return families_.empty(); }

 private:
  struct family {
    std::string name;
    kind type;
    std::string unit;
    std::string help;
    std::vector<std::pair<std::string, std::string>> samples;  // label set, value
  };
  std::vector<family> families_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace bulkhead::metrics
