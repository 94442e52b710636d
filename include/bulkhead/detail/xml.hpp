// bulkhead/detail/xml.hpp: a small, strict, non-validating XML reader for
// the documents libvirt produces (domain XML, capabilities, node files).
//
// Builds a flat tree over the input text (which must outlive the document);
// names and raw values are views into it, decoded on demand. Supported: the
// XML declaration, processing instructions, comments, a DOCTYPE without an
// internal subset, CDATA, the five predefined entities and numeric character
// references. Not supported (an error): custom entities, an internal DTD
// subset. Namespaces are resolved on request by walking xmlns declarations.
//
// Errors are errc::parse_error naming the byte offset and what was expected.
// The input must be UTF-8 (what libvirt writes; XML 1.0 section 4.3.3): any
// other byte sequence is an error at its offset, so no name, attribute or
// text handed on can carry bytes a JSON or OpenMetrics export cannot print.
// Limits (depth, node count) keep hostile input bounded.
//
// Thread-safety: a document is immutable after parse().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/error.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::detail::xml {

inline constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

struct limits {
  std::uint32_t max_depth = 128;
  std::uint32_t max_nodes = 1u << 20;
};

class document;

// A handle to one element; cheap to copy. Invalid handles (from a failed
// lookup) answer every query with "nothing".
class element {
 public:
  element() = default;
  [[nodiscard]] explicit operator bool() const noexcept { return doc_ != nullptr && i_ != npos; }

  // Qualified name as written ("bulkhead:instance").
  [[nodiscard]] std::string_view qname() const noexcept;
  // Local part ("instance").
  [[nodiscard]] std::string_view local_name() const noexcept;
  // Namespace URI of this element (resolved through xmlns declarations).
  [[nodiscard]] std::string_view namespace_uri() const noexcept;

  [[nodiscard]] element first_child() const noexcept;
  [[nodiscard]] element next_sibling() const noexcept;
  [[nodiscard]] element parent() const noexcept;
  // First child element with this qualified name.
  [[nodiscard]] element child(std::string_view qname) const noexcept;
  // Follows a path of qualified names: e.g. child_path({"host","topology"}).
  [[nodiscard]] element child_path(std::initializer_list<std::string_view> path) const noexcept;

  [[nodiscard]] bool has_attr(std::string_view name) const noexcept;
  // The raw attribute value (undecoded), or empty view when absent.
  [[nodiscard]] std::string_view raw_attr(std::string_view name) const noexcept;
  // Decoded attribute value; nullopt when absent; error on a bad reference.
  [[nodiscard]] result<std::optional<std::string>> attr(std::string_view name) const;
  // Decoded text content of a leaf element (comments dropped, CDATA kept).
  [[nodiscard]] result<std::string> text() const;
  // Raw inner text of a leaf element.
  [[nodiscard]] std::string_view raw_text() const noexcept;
  // Byte offset of the element's '<' in the input (for messages).
  [[nodiscard]] std::size_t offset() const noexcept;

  template <class F>
  void for_each_child(F&& f) const {
    for (auto c = first_child(); c; c = c.next_sibling()) f(c);
  }
  template <class F>
  void for_each_child(std::string_view qname, F&& f) const {
    for (auto c = first_child(); c; c = c.next_sibling())
      if (c.qname() == qname) f(c);
  }

 private:
  friend class document;
  element(const document* d, std::uint32_t i) noexcept : doc_(d), i_(i) {}
  const document* doc_ = nullptr;
  std::uint32_t i_ = npos;
};

class document {
 public:
  [[nodiscard]] static result<document> parse(std::string_view text, limits lim = {});
  [[nodiscard]] element root() const noexcept { return nodes_.empty() ? element{} : element{this, 0}; }
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_.size(); }

 private:
  friend class element;
  struct node {
    std::string_view qname;
    std::uint32_t parent = npos, first_child = npos, last_child = npos, next_sibling = npos;
    std::uint32_t attr_begin = 0, attr_count = 0;
    std::string_view inner;  // raw text between the tags (leaf elements)
    std::uint32_t offset = 0;
  };
  struct attribute {
    std::string_view name, raw;
  };
  std::vector<node> nodes_;
  std::vector<attribute> attrs_;
};

// Decodes entity and character references in raw text; error on a malformed
// or unknown reference.
[[nodiscard]] inline result<std::string> decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (c != '&') {
      out += c;
      ++i;
      continue;
    }
    const auto semi = raw.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12)
      return fail(errc::parse_error, "unterminated reference " + quote(raw.substr(i, 12)));
    const auto ent = raw.substr(i + 1, semi - i - 1);
    if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "amp") out += '&';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      result<std::uint64_t> cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X')
                                     ? parse_hex_u64(ent.substr(2), "character reference")
                                     : parse_u64(ent.substr(1), "character reference");
      if (!cp || *cp == 0 || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return fail(errc::parse_error, "bad character reference " + quote(raw.substr(i, semi - i + 1)));
      const auto v = static_cast<std::uint32_t>(*cp);
      if (v < 0x80) {
        out += static_cast<char>(v);
      } else if (v < 0x800) {
        out += static_cast<char>(0xc0 | (v >> 6));
        out += static_cast<char>(0x80 | (v & 0x3f));
      } else if (v < 0x10000) {
        out += static_cast<char>(0xe0 | (v >> 12));
        out += static_cast<char>(0x80 | ((v >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (v & 0x3f));
      } else {
        out += static_cast<char>(0xf0 | (v >> 18));
        out += static_cast<char>(0x80 | ((v >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((v >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (v & 0x3f));
      }
    } else {
      return fail(errc::parse_error, "unknown entity " + quote(raw.substr(i, semi - i + 1)));
    }
    i = semi + 1;
  }
  return out;
}

namespace impl {
constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
constexpr bool is_name_char(char c) noexcept {
  return !is_space(c) && c != '>' && c != '/' && c != '=' && c != '<' && c != '"' && c != '\'' && c != '\0';
}
}  // namespace impl

inline result<document> document::parse(std::string_view s, limits lim) {
  document d;
  std::vector<std::uint32_t> stack;
  std::size_t i = 0;
  const auto err = [&](std::size_t at, const std::string& what) {
    return fail(errc::parse_error, "XML at byte " + std::to_string(at) + ": " + what);
  };
  const auto skip_until = [&](std::string_view end) -> bool {
    auto p = s.find(end, i);
    if (p == std::string_view::npos) return false;
    i = p + end.size();
    return true;
  };
  if (const auto good = utf8_valid_prefix(s); good != s.size())
    return err(good, "bytes that are not UTF-8 (" + quote(s.substr(good, 8)) + ")");
  bool seen_root = false;
  while (i < s.size()) {
    if (s[i] != '<') {
      const auto next = s.find('<', i);
      const auto chunk = s.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i);
      if (stack.empty()) {
        for (char c : chunk)
          if (!impl::is_space(c)) return err(i, "text outside the root element");
      }
      if (next == std::string_view::npos) break;
      i = next;
      continue;
    }
    const std::size_t start = i;
    if (s.compare(i, 4, "<!--") == 0) {
      i += 4;
      if (!skip_until("-->")) return err(start, "unterminated comment");
      continue;
    }
    if (s.compare(i, 9, "<![CDATA[") == 0) {
      if (stack.empty()) return err(start, "CDATA outside the root element");
      i += 9;
      if (!skip_until("]]>")) return err(start, "unterminated CDATA section");
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      i += 2;
      if (!skip_until("?>")) return err(start, "unterminated processing instruction");
      continue;
    }
    if (s.compare(i, 2, "<!") == 0) {
      if (s.compare(i, 9, "<!DOCTYPE") != 0) return err(start, "unknown markup declaration");
      const auto gt = s.find('>', i);
      const auto br = s.find('[', i);
      if (br != std::string_view::npos && (gt == std::string_view::npos || br < gt))
        return err(start, "a DOCTYPE internal subset is not accepted");
      if (gt == std::string_view::npos) return err(start, "unterminated DOCTYPE");
      i = gt + 1;
      continue;
    }
    if (s.compare(i, 2, "</") == 0) {
      i += 2;
      const auto n0 = i;
      while (i < s.size() && impl::is_name_char(s[i])) ++i;
      const auto name = s.substr(n0, i - n0);
      while (i < s.size() && impl::is_space(s[i])) ++i;
      if (i >= s.size() || s[i] != '>') return err(start, "expected '>' to close end tag");
      ++i;
      if (stack.empty()) return err(start, "end tag " + quote(name) + " without a start tag");
      auto& open = d.nodes_[stack.back()];
      if (open.qname != name) return err(start, "end tag " + quote(name) + " does not match " + quote(open.qname));
      if (open.first_child == npos) {
        const std::size_t inner_begin = open.inner.data() - s.data();
        open.inner = s.substr(inner_begin, start - inner_begin);
      } else {
        open.inner = {};
      }
      stack.pop_back();
      continue;
    }
    // Start tag.
    ++i;
    const auto n0 = i;
    while (i < s.size() && impl::is_name_char(s[i])) ++i;
    if (i == n0) return err(start, "expected an element name after '<'");
    if (stack.empty() && seen_root) return err(start, "a second root element");
    if (stack.size() >= lim.max_depth) return err(start, "nesting deeper than " + std::to_string(lim.max_depth));
    if (d.nodes_.size() >= lim.max_nodes) return err(start, "more than " + std::to_string(lim.max_nodes) + " elements");
    seen_root = true;
    const auto idx = static_cast<std::uint32_t>(d.nodes_.size());
    node nd;
    nd.qname = s.substr(n0, i - n0);
    nd.offset = static_cast<std::uint32_t>(start);
    nd.attr_begin = static_cast<std::uint32_t>(d.attrs_.size());
    if (!stack.empty()) {
      nd.parent = stack.back();
      auto& p = d.nodes_[stack.back()];
      if (p.last_child == npos) p.first_child = idx;
      else d.nodes_[p.last_child].next_sibling = idx;
      p.last_child = idx;
    }
    bool self_closing = false;
    while (true) {
      while (i < s.size() && impl::is_space(s[i])) ++i;
      if (i >= s.size()) return err(start, "unterminated start tag " + quote(nd.qname));
      if (s[i] == '>') {
        ++i;
        break;
      }
      if (s[i] == '/') {
        if (i + 1 >= s.size() || s[i + 1] != '>') return err(i, "expected '/>'");
        i += 2;
        self_closing = true;
        break;
      }
      const auto a0 = i;
      while (i < s.size() && impl::is_name_char(s[i])) ++i;
      if (i == a0) return err(i, "expected an attribute name in " + quote(nd.qname));
      const auto aname = s.substr(a0, i - a0);
      while (i < s.size() && impl::is_space(s[i])) ++i;
      if (i >= s.size() || s[i] != '=') return err(i, "expected '=' after attribute " + quote(aname));
      ++i;
      while (i < s.size() && impl::is_space(s[i])) ++i;
      if (i >= s.size() || (s[i] != '"' && s[i] != '\'')) return err(i, "expected a quoted value for " + quote(aname));
      const char q = s[i++];
      const auto v0 = i;
      const auto close = s.find(q, i);
      if (close == std::string_view::npos) return err(v0, "unterminated value of " + quote(aname));
      const auto raw = s.substr(v0, close - v0);
      if (raw.find('<') != std::string_view::npos) return err(v0, "'<' in the value of " + quote(aname));
      for (std::uint32_t k = nd.attr_begin; k < d.attrs_.size(); ++k)
        if (d.attrs_[k].name == aname) return err(a0, "attribute " + quote(aname) + " given twice");
      d.attrs_.push_back({aname, raw});
      i = close + 1;
    }
    nd.attr_count = static_cast<std::uint32_t>(d.attrs_.size()) - nd.attr_begin;
    nd.inner = s.substr(i, 0);
    d.nodes_.push_back(nd);
    if (!self_closing) stack.push_back(idx);
  }
  if (!stack.empty()) return err(s.size(), "end of input inside " + quote(d.nodes_[stack.back()].qname));
  if (d.nodes_.empty()) return err(0, "no root element");
  return d;
}

inline std::string_view element::qname() const noexcept { return *this ? doc_->nodes_[i_].qname : std::string_view{}; }
inline std::string_view element::local_name() const noexcept {
  auto q = qname();
  auto c = q.find(':');
  return c == std::string_view::npos ? q : q.substr(c + 1);
}
inline element element::first_child() const noexcept {
  return *this ? element{doc_, doc_->nodes_[i_].first_child} : element{};
}
inline element element::next_sibling() const noexcept {
  return *this ? element{doc_, doc_->nodes_[i_].next_sibling} : element{};
}
inline element element::parent() const noexcept { return *this ? element{doc_, doc_->nodes_[i_].parent} : element{}; }
inline element element::child(std::string_view q) const noexcept {
  for (auto c = first_child(); c; c = c.next_sibling())
    if (c.qname() == q) return c;
  return {};
}
inline element element::child_path(std::initializer_list<std::string_view> path) const noexcept {
  element e = *this;
  for (auto p : path) e = e.child(p);
  return e;
}
inline bool element::has_attr(std::string_view name) const noexcept {
  if (!*this) return false;
  const auto& n = doc_->nodes_[i_];
  for (auto k = n.attr_begin; k < n.attr_begin + n.attr_count; ++k)
    if (doc_->attrs_[k].name == name) return true;
  return false;
}
inline std::string_view element::raw_attr(std::string_view name) const noexcept {
  if (!*this) return {};
  const auto& n = doc_->nodes_[i_];
  for (auto k = n.attr_begin; k < n.attr_begin + n.attr_count; ++k)
    if (doc_->attrs_[k].name == name) return doc_->attrs_[k].raw;
  return {};
}
inline result<std::optional<std::string>> element::attr(std::string_view name) const {
  if (!has_attr(name)) return std::optional<std::string>{};
  auto v = decode(raw_attr(name));
  if (!v) return fail(std::move(v.error()).in("attribute " + quote(name) + " of <" + std::string(qname()) + ">"));
  return std::optional<std::string>{std::move(*v)};
}
inline std::string_view element::raw_text() const noexcept { return *this ? doc_->nodes_[i_].inner : std::string_view{}; }
inline std::size_t element::offset() const noexcept { return *this ? doc_->nodes_[i_].offset : 0; }
inline result<std::string> element::text() const {
  std::string_view raw = raw_text();
  if (raw.find('<') == std::string_view::npos && raw.find('&') == std::string_view::npos) return std::string(raw);
  std::string out;
  while (!raw.empty()) {
    const auto lt = raw.find('<');
    auto plain = decode(raw.substr(0, lt));
    if (!plain) return fail(std::move(plain.error()).in("text of <" + std::string(qname()) + ">"));
    out += *plain;
    if (lt == std::string_view::npos) break;
    raw.remove_prefix(lt);
    if (raw.starts_with("<!--")) {
      const auto e = raw.find("-->");
      raw.remove_prefix(e == std::string_view::npos ? raw.size() : e + 3);
    } else if (raw.starts_with("<![CDATA[")) {
      const auto e = raw.find("]]>");
      out += raw.substr(9, e == std::string_view::npos ? std::string_view::npos : e - 9);
      raw.remove_prefix(e == std::string_view::npos ? raw.size() : e + 3);
    } else if (raw.starts_with("<?")) {
      const auto e = raw.find("?>");
      raw.remove_prefix(e == std::string_view::npos ? raw.size() : e + 2);
    } else {
      raw.remove_prefix(1);
    }
  }
  return out;
}
inline std::string_view element::namespace_uri() const noexcept {
  const auto q = qname();
  const auto c = q.find(':');
  std::string attr_name = c == std::string_view::npos ? std::string("xmlns") : "xmlns:" + std::string(q.substr(0, c));
  for (element e = *this; e; e = e.parent())
    if (e.has_attr(attr_name)) return e.raw_attr(attr_name);
  return {};
}

}  // namespace bulkhead::detail::xml
