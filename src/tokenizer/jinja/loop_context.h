// The `loop` variable of a for loop: index, index0, revindex, revindex0, first, last, length,
// depth, depth0, previtem, nextitem, cycle(...) and changed(...), as Jinja's LoopContext.
//
// Values only; thread-compatible.
#pragma once

#include <cstdint>
#include <memory>

#include "tokenizer/jinja/value.h"

namespace msi::jinja {

// State shared by the iterations of one loop (what loop.changed() last saw).
struct LoopState {
  bool has_last = false;
  ValueList last_changed;
};

// The `loop` object for iteration `i` (0-based) over `items`.
Value make_loop_context(const ValueList& items, int64_t i, const std::shared_ptr<LoopState>& state);

}  // namespace msi::jinja
