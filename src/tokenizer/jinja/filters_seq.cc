// Sequence and mapping filters (length, first, last, join, list, reverse, sort, dictsort,
// unique, min, max, sum, map, select/reject(attr), items, batch, slice, default, attr) and the
// filter registry.
#include <algorithm>

#include <fmt/format.h>

#include "tokenizer/jinja/args.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/methods.h"
#include "tokenizer/jinja/ops.h"
#include "tokenizer/jinja/py_format.h"
#include "tokenizer/jinja/py_string.h"

namespace msi::jinja {

namespace {

Status filter_error(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }

Value lower_if_string(const Value& v) {
  return v.is_string() ? Value::string(py_lower(v.as_string())) : v;
}

// Key for sorting/uniqueness: the attribute path (if any), lower-cased unless case-sensitive.
Result<Value> sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
  Value key = item;
  if (!attribute.is_none()) {
    MSI_ASSIGN_OR_RETURN(key, get_attribute_path(item, attribute));
  }
  return case_sensitive ? key : lower_if_string(key);
}

// Stable sort by precomputed keys with Python ordering; the first comparison error wins.
Result<ValueList> sorted_by(ValueList items, const ValueList& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Status st;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (!st.is_ok()) return false;
    Result<bool> less = reverse ? py_less(keys[b], keys[a]) : py_less(keys[a], keys[b]);
    if (!less.is_ok()) {
      st = less.status();
      return false;
    }
    return *less;
  });
  MSI_RETURN_IF_ERROR(st);
  ValueList out;
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

Result<Value> f_length(const Value& v, const CallArgs&) {
  MSI_ASSIGN_OR_RETURN(int64_t n, py_len(v));
  return Value::integer(n);
}

Result<Value> f_first(const Value& v, const CallArgs&) {
  if (v.kind() == Value::Kind::kIterator) {
    IteratorState& it = v.iterator_state();
    if (it.pos < it.items.size()) return it.items[it.pos++];
    return Value::undefined("No first item, sequence was empty.");
  }
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Result<Value> f_last(const Value& v, const CallArgs&) {
  if (v.kind() == Value::Kind::kIterator) {
    return filter_error(fmt::format("'{}' object is not reversible", type_name(v)));
  }
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Result<Value> f_join(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("join", a, {"d", "attribute"}));
  std::string sep = py_str(b.get_or(0, Value::string("")));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (b.has(1) && !b.get(1).is_none()) {
      MSI_ASSIGN_OR_RETURN(item, get_attribute_path(item, b.get(1)));
    }
    if (i > 0) out += sep;
    out += py_str(item);
  }
  return Value::string(std::move(out));
}

Result<Value> f_list(const Value& v, const CallArgs&) {
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  return Value::list(std::move(items));
}

Result<Value> f_reverse(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::iterator({}, "reversed");
  if (v.is_string()) {
    std::u32string s = decode_utf8(v.as_string());
    std::reverse(s.begin(), s.end());
    return Value::string(encode_utf8(s));
  }
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  std::reverse(items.begin(), items.end());
  if (v.kind() == Value::Kind::kIterator) return Value::list(std::move(items));
  return Value::iterator(std::move(items), fmt::format("{}_reverseiterator", type_name(v)));
}

Result<Value> f_sort(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b,
                       BoundArgs::bind("sort", a, {"reverse", "case_sensitive", "attribute"}));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  bool case_sensitive = b.get_or(1, Value::boolean(false)).truthy();
  Value attribute = b.get_or_none(2);
  std::vector<Value> attrs;
  if (attribute.is_string()) {
    for (const std::string& part : py_split(attribute.as_string(), std::string(","), -1)) {
      attrs.push_back(Value::string(part));
    }
  } else {
    attrs.push_back(attribute);
  }
  ValueList keys;
  for (const Value& item : items) {
    ValueList parts;
    for (const Value& attr : attrs) {
      MSI_ASSIGN_OR_RETURN(Value k, sort_key(item, attr, case_sensitive));
      parts.push_back(std::move(k));
    }
    keys.push_back(attribute.is_none() ? parts[0] : Value::list(std::move(parts)));
  }
  MSI_ASSIGN_OR_RETURN(ValueList out, sorted_by(std::move(items), keys,
                                                b.get_or(0, Value::boolean(false)).truthy()));
  return Value::list(std::move(out));
}

Result<Value> f_dictsort(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b,
                       BoundArgs::bind("dictsort", a, {"case_sensitive", "by", "reverse"}));
  MSI_ASSIGN_OR_RETURN(std::string by, arg_string("dictsort", b.get_or(1, Value::string("key"))));
  if (by != "key" && by != "value")
    return filter_error("You can only sort by either \"key\" or \"value\"");
  if (!v.is_mapping()) {
    if (v.is_undefined()) return undefined_error(v);
    return filter_error(fmt::format("'{}' object has no attribute 'items'", type_name(v)));
  }
  bool case_sensitive = b.get_or(0, Value::boolean(false)).truthy();
  ValueList items;
  ValueList keys;
  for (const auto& [k, x] : v.dict().entries()) {
    items.push_back(Value::tuple({k, x}));
    const Value& key = by == "key" ? k : x;
    keys.push_back(case_sensitive ? key : lower_if_string(key));
  }
  MSI_ASSIGN_OR_RETURN(ValueList out, sorted_by(std::move(items), keys,
                                                b.get_or(2, Value::boolean(false)).truthy()));
  return Value::list(std::move(out));
}

Result<Value> f_unique(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("unique", a, {"case_sensitive", "attribute"}));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  bool case_sensitive = b.get_or(0, Value::boolean(false)).truthy();
  ValueList seen;
  ValueList out;
  for (const Value& item : items) {
    MSI_ASSIGN_OR_RETURN(Value key, sort_key(item, b.get_or_none(1), case_sensitive));
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::iterator(std::move(out), "generator");
}

Result<Value> min_or_max(const Value& v, const CallArgs& a, bool want_max) {
  MSI_ASSIGN_OR_RETURN(
      BoundArgs b, BoundArgs::bind(want_max ? "max" : "min", a, {"case_sensitive", "attribute"}));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  bool case_sensitive = b.get_or(0, Value::boolean(false)).truthy();
  size_t best = 0;
  MSI_ASSIGN_OR_RETURN(Value best_key, sort_key(items[0], b.get_or_none(1), case_sensitive));
  for (size_t i = 1; i < items.size(); ++i) {
    MSI_ASSIGN_OR_RETURN(Value key, sort_key(items[i], b.get_or_none(1), case_sensitive));
    MSI_ASSIGN_OR_RETURN(bool better, want_max ? py_less(best_key, key) : py_less(key, best_key));
    if (better) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Result<Value> f_min(const Value& v, const CallArgs& a) { return min_or_max(v, a, false); }
Result<Value> f_max(const Value& v, const CallArgs& a) { return min_or_max(v, a, true); }

Result<Value> f_sum(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("sum", a, {"attribute", "start"}));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  Value total = b.get_or(1, Value::integer(0));
  for (const Value& item : items) {
    Value x = item;
    if (b.has(0) && !b.get(0).is_none()) {
      MSI_ASSIGN_OR_RETURN(x, get_attribute_path(item, b.get(0)));
    }
    MSI_ASSIGN_OR_RETURN(total, binary_op(BinaryOp::kAdd, total, x));
  }
  return total;
}

Result<Value> f_map(const Value& v, const CallArgs& a) {
  ValueList out;
  if (!v.truthy()) return Value::iterator({}, "generator");
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  if (a.args.empty()) {
    const Value* attribute = nullptr;
    Value dflt = Value::none();
    for (const auto& [k, x] : a.kwargs) {
      if (k == "attribute")
        attribute = &x;
      else if (k == "default")
        dflt = x;
      else
        return filter_error(fmt::format("Unexpected keyword argument '{}'", k));
    }
    if (attribute == nullptr) return filter_error("map requires a filter argument");
    for (const Value& item : items) {
      MSI_ASSIGN_OR_RETURN(Value x, get_attribute_path(item, *attribute));
      out.push_back(x.is_undefined() && !dflt.is_none() ? dflt : x);
    }
  } else {
    MSI_ASSIGN_OR_RETURN(std::string name, arg_string("map", a.args[0]));
    CallArgs rest{ValueList(a.args.begin() + 1, a.args.end()), a.kwargs};
    for (const Value& item : items) {
      MSI_ASSIGN_OR_RETURN(Value x, apply_filter(name, item, rest));
      out.push_back(std::move(x));
    }
  }
  return Value::iterator(std::move(out), "generator");
}

// select / reject / selectattr / rejectattr.
Result<Value> select_or_reject(const Value& v, const CallArgs& a, bool keep, bool by_attr) {
  if (!v.truthy()) return Value::iterator({}, "generator");
  size_t off = 0;
  Value attribute;
  if (by_attr) {
    if (a.args.empty()) return filter_error("Missing parameter for attribute name");
    attribute = a.args[0];
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args{{}, a.kwargs};
  if (a.args.size() > off) {
    MSI_ASSIGN_OR_RETURN(test, arg_string("select", a.args[off]));
    test_args.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(off + 1), a.args.end());
  }
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  ValueList out;
  for (const Value& item : items) {
    Value x = item;
    if (by_attr) {
      MSI_ASSIGN_OR_RETURN(x, get_attribute_path(item, attribute));
    }
    bool pass = x.truthy();
    if (test) {
      MSI_ASSIGN_OR_RETURN(pass, apply_test(*test, x, test_args));
    }
    if (pass == keep) out.push_back(item);
  }
  return Value::iterator(std::move(out), "generator");
}

Result<Value> f_select(const Value& v, const CallArgs& a) {
  return select_or_reject(v, a, true, false);
}
Result<Value> f_reject(const Value& v, const CallArgs& a) {
  return select_or_reject(v, a, false, false);
}
Result<Value> f_selectattr(const Value& v, const CallArgs& a) {
  return select_or_reject(v, a, true, true);
}
Result<Value> f_rejectattr(const Value& v, const CallArgs& a) {
  return select_or_reject(v, a, false, true);
}

Result<Value> f_items(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::iterator({}, "generator");
  if (!v.is_mapping()) return filter_error("Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [k, x] : v.dict().entries()) out.push_back(Value::tuple({k, x}));
  return Value::iterator(std::move(out), "generator");
}

Result<Value> f_batch(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("batch", a, {"linecount", "fill_with"}, 1));
  MSI_ASSIGN_OR_RETURN(int64_t n, arg_int("batch", b.get(0)));
  MSI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  ValueList out;
  ValueList tmp;
  for (const Value& item : items) {
    if (static_cast<int64_t>(tmp.size()) == n) {
      out.push_back(Value::list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(item);
  }
  if (!tmp.empty()) {
    Value fill = b.get_or_none(1);
    while (!fill.is_none() && static_cast<int64_t>(tmp.size()) < n) tmp.push_back(fill);
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out), "generator");
}

Result<Value> f_slice(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("slice", a, {"slices", "fill_with"}, 1));
  MSI_ASSIGN_OR_RETURN(int64_t slices, arg_int("slice", b.get(0)));
  if (slices <= 0) return filter_error("integer division or modulo by zero");
  MSI_ASSIGN_OR_RETURN(ValueList seq, iterate(v));
  int64_t length = static_cast<int64_t>(seq.size());
  int64_t per = length / slices;
  int64_t extra = length % slices;
  int64_t offset = 0;
  ValueList out;
  for (int64_t k = 0; k < slices; ++k) {
    int64_t start = offset + k * per;
    if (k < extra) ++offset;
    int64_t end = offset + (k + 1) * per;
    ValueList tmp(seq.begin() + start, seq.begin() + end);
    if (b.has(1) && !b.get(1).is_none() && k >= extra) tmp.push_back(b.get(1));
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out), "generator");
}

Result<Value> f_default(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("default", a, {"default_value", "boolean"}));
  bool boolean = b.get_or(1, Value::boolean(false)).truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return b.get_or(0, Value::string(""));
  return v;
}

// getattr only: unlike `.name`, a dict's keys are not attributes.
Result<Value> f_attr(const Value& v, const CallArgs& a) {
  MSI_ASSIGN_OR_RETURN(BoundArgs b, BoundArgs::bind("attr", a, {"name"}, 1));
  std::string name = py_str(b.get(0));
  if (v.is_undefined()) return undefined_error(v);
  if (v.kind() == Value::Kind::kNamespace) return get_attr(v, name);
  if (auto m = find_method(v, name)) return *m;
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(v), name));
}

struct Entry {
  std::string_view name;
  FilterFn fn;
};

constexpr Entry kFilters[] = {
    {"attr", f_attr},
    {"batch", f_batch},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"reverse", f_reverse},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"slice", f_slice},
    {"sort", f_sort},
    {"sum", f_sum},
    {"unique", f_unique},
};

}  // namespace

FilterFn find_sequence_filter(std::string_view name) {
  for (const Entry& e : kFilters) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

FilterFn find_filter(std::string_view name) {
  FilterFn fn = find_sequence_filter(name);
  return fn != nullptr ? fn : find_text_filter(name);
}

Result<Value> apply_filter(std::string_view name, const Value& input, const CallArgs& args) {
  FilterFn fn = find_filter(name);
  if (fn == nullptr) return filter_error(fmt::format("No filter named '{}'.", name));
  return fn(input, args);
}

Result<Value> get_attribute_path(const Value& obj, const Value& path) {
  if (!path.is_string()) return get_item(obj, path);
  Value cur = obj;
  for (const std::string& part : py_split(path.as_string(), std::string("."), -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    Value key = digits ? Value::integer(std::stoll(part)) : Value::string(part);
    MSI_ASSIGN_OR_RETURN(cur, get_item(cur, key));
  }
  return cur;
}

}  // namespace msi::jinja
