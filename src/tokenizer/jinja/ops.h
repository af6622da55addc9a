// Python operator semantics for jinja::Value, as Jinja2 in an ImmutableSandboxedEnvironment
// evaluates them: arithmetic (int/float promotion, floor division and modulo signs), ordering
// with TypeErrors, `in`, len(), iteration, and the sandbox's attribute/item lookup (a.b falls
// back to a['b'] and a['b'] to a.b; a miss is an Undefined; mutating methods are unsafe).
//
// Errors are InvalidArgument carrying Python's message (e.g. "'<' not supported between
// instances of 'int' and 'str'"); using an Undefined raises its hint. Pure; thread-compatible.
#pragma once

#include <string_view>

#include "core/status.h"
#include "tokenizer/jinja/value.h"

namespace msi::jinja {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

// The error raised when an Undefined is used (its hint, e.g. "'x' is undefined").
Status undefined_error(const Value& v);

Result<Value> binary_op(BinaryOp op, const Value& a, const Value& b);
Result<Value> negate(const Value& v);
Result<Value> unary_plus(const Value& v);
Result<bool> compare(CompareOp op, const Value& a, const Value& b);
// a < b (numbers, strings, lists/tuples lexicographically).
Result<bool> py_less(const Value& a, const Value& b);
// `item in container`.
Result<bool> py_contains(const Value& container, const Value& item);
// len(v): code points for strings, 0 for Undefined.
Result<int64_t> py_len(const Value& v);
// list(v): items of a list/tuple, keys of a dict, characters of a string, nothing for Undefined.
// Consumes an iterator.
Result<ValueList> iterate(const Value& v);

// Sandboxed getattr(obj, name) with item fallback; errors only when obj is Undefined.
Result<Value> get_attr(const Value& obj, std::string_view name);
// Sandboxed obj[key] with attribute fallback for string keys.
Result<Value> get_item(const Value& obj, const Value& key);
// obj[start:stop:step]; None for an omitted bound.
Result<Value> get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

}  // namespace msi::jinja
