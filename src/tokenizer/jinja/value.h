// jinja::Value: the dynamically typed value a template computes with, modelled on the Python
// objects Jinja2 sees (None, bool, int, float, str, list, tuple, dict, jinja's Undefined and
// Namespace, generators, callables), so that operators, truthiness and printing follow Python.
//
// Owns its payload; lists, dicts, iterators and callables are shared by reference like Python
// objects (copying a Value copies the reference). Not thread-safe: a Value lives inside one
// render; a parsed Template holds only immutable literals.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::jinja {

class Value;
class Dict;
using ValueList = std::vector<Value>;

// Arguments of a call: positional then keyword, as Python passes them.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// A callable: a global (range, namespace, raise_exception ...), a bound method, or a macro.
using Function = std::function<Result<Value>(const CallArgs& args)>;

// Single-pass iterator: what Jinja's map/select/reverse/items filters return (Python
// generators). Always truthy, has no len(), and iterating consumes it.
struct IteratorState {
  ValueList items;
  size_t pos = 0;
  std::string type_name;  // "generator", "list_reverseiterator" ...
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,  // jinja2.Undefined: prints "", iterates empty, errors on most other uses
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,  // UTF-8
    kList,
    kTuple,
    kDict,       // insertion-ordered
    kNamespace,  // jinja's namespace(): attribute bag, the only mutable mapping
    kIterator,
    kCallable,
  };

  Value() = default;  // an Undefined without a hint
  // An Undefined; `hint` is the error raised when it is used, e.g. "'x' is undefined".
  static Value undefined(std::string hint);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(ValueList items);
  static Value tuple(ValueList items);
  static Value from_dict(std::shared_ptr<Dict> d);
  static Value new_dict();
  static Value new_namespace();
  static Value iterator(ValueList items, std::string type_name);
  static Value callable(std::string name, Function fn);

  // JSON → Value: objects keep their key order; integers stay ints, other numbers floats.
  static Value from_json(const nlohmann::ordered_json& j);
  static Value from_json(const nlohmann::json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // Python numbers.Number: bool, int or float.
  bool is_number() const {
    return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat;
  }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_mapping() const { return kind_ == Kind::kDict; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  // Accessors; each requires the matching kind (MSI_CHECK).
  bool as_bool() const;
  int64_t as_int() const;    // kInt or kBool (Python bool is an int)
  double as_double() const;  // any number
  const std::string& as_string() const;
  const std::string& undefined_hint() const;
  const ValueList& items() const;    // kList or kTuple
  ValueList& mutable_items() const;  // kList (list.pop/clear mutate in place, as in Python)
  Dict& dict() const;                // kDict or kNamespace
  IteratorState& iterator_state() const;
  const std::string& callable_name() const;
  const Function& function() const;

  // Python truthiness (Undefined is false; generators, namespaces and callables are true).
  bool truthy() const;
  // Identity of the shared payload (Python `is` for containers).
  const void* identity() const;

 private:
  Kind kind_ = Kind::kUndefined;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::string s_;              // kString, or kUndefined's hint, or kCallable's name
  std::shared_ptr<void> ref_;  // ValueList, Dict, IteratorState or Function
};

// An insertion-ordered mapping with Python key equality (1 == 1.0 == True). Small dicts are the
// rule in chat templates, so lookup is a linear scan.
class Dict {
 public:
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Inserts, or overwrites in place (keeping the first insertion position, like Python).
  void set(Value key, Value value);
  void set(std::string_view key, Value value) {
    set(Value::string(std::string(key)), std::move(value));
  }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<Value, Value>> entries_;
};

// Python type name, for error messages: "str", "int", "NoneType", "dict" ...
std::string_view type_name(const Value& v);

// Python `==`: numbers compare by value across bool/int/float, containers element-wise (a
// list never equals a tuple), Undefined equals only Undefined, others by identity.
bool py_equal(const Value& a, const Value& b);

}  // namespace msi::jinja
