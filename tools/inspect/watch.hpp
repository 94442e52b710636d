// bulkhead-inspect --watch: a live view refreshed in place (top-like) on a
// terminal, plain periodic tables otherwise. Rates come from bulkhead's
// meters, so a counter reset is shown as a reset, never as a negative rate.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "sources.hpp"

namespace bulkhead::inspect {

struct watch_options {
  std::chrono::milliseconds interval{2000};
  bool color = true;            // false with NO_COLOR
  int iterations = 0;           // stop after this many refreshes; 0: until 'q' or a signal
};

// Returns the exit status: 0, or 1 when a source failed at the last refresh.
int run_watch(std::vector<std::unique_ptr<source>>& sources, const watch_options& options);

}  // namespace bulkhead::inspect
