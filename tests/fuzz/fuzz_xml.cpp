// libFuzzer target: the XML reader (bulkhead/detail/xml.hpp) on any bytes.
// Walks every element of a parsed document through the whole element API:
// names, namespaces, attributes (raw and decoded), text; bounded by the
// reader's limits (checked here with small ones).
#include <cstddef>
#include <cstdint>

#include "bulkhead/detail/xml.hpp"
#include "fuzz_support.hpp"

namespace xml = bulkhead::detail::xml;

namespace {

void walk(xml::element e, std::uint32_t depth, const xml::limits& lim) {
  bulkhead::fuzz::expect(depth < lim.max_depth, "an element deeper than max_depth");
  bulkhead::fuzz::expect(!e.qname().empty(), "an element without a name");
  (void)e.local_name();
  (void)e.namespace_uri();
  (void)e.offset();
  for (auto name : {"id", "unit", "type", "xmlns", "name"}) {
    if (e.has_attr(name)) {
      auto v = e.attr(name);
      bulkhead::fuzz::expect_clear(v, "xml attr");
      bulkhead::fuzz::expect(!v || v->has_value(), "has_attr() but attr() says absent");
    }
  }
  auto t = e.text();
  bulkhead::fuzz::expect_clear(t, "xml text");
  for (auto c = e.first_child(); c; c = c.next_sibling()) {
    bulkhead::fuzz::expect(c.parent().offset() == e.offset(), "a child whose parent is another element");
    walk(c, depth + 1, lim);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = bulkhead::fuzz::as_text(data, size);
  const xml::limits lim{.max_depth = 16, .max_nodes = 2000};
  auto doc = xml::document::parse(text, lim);
  if (!doc) {
    bulkhead::fuzz::expect_clear(doc.error(), "xml parse");
    bulkhead::fuzz::expect(doc.error().code() == bulkhead::errc::parse_error, "xml: an error other than parse_error");
    return 0;
  }
  bulkhead::fuzz::expect(doc->node_count() <= lim.max_nodes, "more nodes than max_nodes");
  walk(doc->root(), 0, lim);
  (void)xml::decode(text.substr(0, 256));
  return 0;
}
