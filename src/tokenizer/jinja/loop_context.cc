#include "tokenizer/jinja/loop_context.h"

namespace msi::jinja {

Value make_loop_context(const ValueList& items, int64_t i,
                        const std::shared_ptr<LoopState>& state) {
  auto n = static_cast<int64_t>(items.size());
  Value loop = Value::new_namespace();
  Dict& d = loop.dict();
  d.set("index0", Value::integer(i));
  d.set("index", Value::integer(i + 1));
  d.set("revindex0", Value::integer(n - i - 1));
  d.set("revindex", Value::integer(n - i));
  d.set("first", Value::boolean(i == 0));
  d.set("last", Value::boolean(i == n - 1));
  d.set("length", Value::integer(n));
  d.set("depth", Value::integer(1));
  d.set("depth0", Value::integer(0));
  d.set("previtem",
        i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
  d.set("nextitem",
        i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
  d.set("cycle", Value::callable("loop.cycle", [i](const CallArgs& a) -> Result<Value> {
          if (a.args.empty())
            return error(StatusCode::kInvalidArgument, "no items for cycling given");
          return a.args[static_cast<size_t>(i) % a.args.size()];
        }));
  // True on the first call and whenever the arguments differ from the previous call's.
  d.set("changed", Value::callable("loop.changed", [state](const CallArgs& a) -> Result<Value> {
          bool same = state->has_last && state->last_changed.size() == a.args.size();
          for (size_t k = 0; same && k < a.args.size(); ++k) {
            same = py_equal(state->last_changed[k], a.args[k]);
          }
          if (same) return Value::boolean(false);
          state->has_last = true;
          state->last_changed = a.args;
          return Value::boolean(true);
        }));
  return loop;
}

}  // namespace msi::jinja
