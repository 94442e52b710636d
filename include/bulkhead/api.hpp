// bulkhead/api.hpp: BULKHEAD_API marks what the shared libraries export.
//
// libbulkhead-core and libbulkhead-libvirt are built with hidden visibility
// (-fvisibility=hidden -fvisibility-inlines-hidden): only declarations marked
// BULKHEAD_API are exported, which are the compiled public API (the backends,
// the journal, rooted file access, the file loaders) and the interfaces a
// program implements or catches across the library boundary. Header code
// (inline functions, templates, everything in a `detail` namespace) is never
// exported: a program compiles its own copy. docs/architecture.md, "Build
// shape", says why a macro rather than a linker version script.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define BULKHEAD_API __attribute__((visibility("default")))
// The private parts of an exported class (its impl, private constructors
// and helpers): never exported, even though the class is.
#define BULKHEAD_HIDDEN __attribute__((visibility("hidden")))
#else
#define BULKHEAD_API
#define BULKHEAD_HIDDEN
#endif
