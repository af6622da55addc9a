#include "tokenizer/jinja/value.h"

#include "core/check.h"

namespace msi::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::move(s);
  return v;
}

Value Value::list(ValueList items) {
  Value v;
  v.kind_ = Kind::kList;
  v.ref_ = std::make_shared<ValueList>(std::move(items));
  return v;
}

Value Value::tuple(ValueList items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}

Value Value::from_dict(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.ref_ = std::move(d);
  return v;
}

Value Value::new_dict() { return from_dict(std::make_shared<Dict>()); }

Value Value::new_namespace() {
  Value v = new_dict();
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::iterator(ValueList items, std::string type_name) {
  Value v;
  v.kind_ = Kind::kIterator;
  auto state = std::make_shared<IteratorState>();
  state->items = std::move(items);
  state->type_name = std::move(type_name);
  v.ref_ = std::move(state);
  return v;
}

Value Value::callable(std::string name, Function fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.s_ = std::move(name);
  v.ref_ = std::make_shared<Function>(std::move(fn));
  return v;
}

namespace {

template <typename Json>
Value value_from_json(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      // NOTE: Python ints are unbounded; beyond int64 we can only approximate.
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string: return Value::string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(value_from_json(e));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(it.key(), value_from_json(it.value()));
      return Value::from_dict(std::move(d));
    }
    default:  // binary, discarded
      return Value::none();
  }
}

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j); }
Value Value::from_json(const nlohmann::json& j) { return value_from_json(j); }

bool Value::as_bool() const {
  MSI_CHECK(kind_ == Kind::kBool, "not a bool");
  return b_;
}

int64_t Value::as_int() const {
  MSI_CHECK(kind_ == Kind::kInt || kind_ == Kind::kBool, "not an int");
  return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_;
}

double Value::as_double() const {
  MSI_CHECK(is_number(), "not a number");
  return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int());
}

const std::string& Value::as_string() const {
  MSI_CHECK(kind_ == Kind::kString, "not a string");
  return s_;
}

const std::string& Value::undefined_hint() const {
  MSI_CHECK(kind_ == Kind::kUndefined, "not undefined");
  return s_;
}

const ValueList& Value::items() const { return mutable_items(); }

ValueList& Value::mutable_items() const {
  MSI_CHECK(kind_ == Kind::kList || kind_ == Kind::kTuple, "not a list");
  return *static_cast<ValueList*>(ref_.get());
}

Dict& Value::dict() const {
  MSI_CHECK(kind_ == Kind::kDict || kind_ == Kind::kNamespace, "not a dict");
  return *static_cast<Dict*>(ref_.get());
}

IteratorState& Value::iterator_state() const {
  MSI_CHECK(kind_ == Kind::kIterator, "not an iterator");
  return *static_cast<IteratorState*>(ref_.get());
}

const std::string& Value::callable_name() const {
  MSI_CHECK(kind_ == Kind::kCallable, "not callable");
  return s_;
}

const Function& Value::function() const {
  MSI_CHECK(kind_ == Kind::kCallable, "not callable");
  return *static_cast<Function*>(ref_.get());
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0;
    case Kind::kString: return !s_.empty();
    case Kind::kList:
    case Kind::kTuple: return !items().empty();
    case Kind::kDict: return dict().size() != 0;
    case Kind::kNamespace:
    case Kind::kIterator:
    case Kind::kCallable: return true;
  }
  return false;
}

const void* Value::identity() const { return ref_.get(); }

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : entries_) {
    if (py_equal(k, key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries_) {
    if (py_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

std::string_view type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kList: return "list";
    case Value::Kind::kTuple: return "tuple";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kIterator: return v.iterator_state().type_name;
    case Value::Kind::kCallable: return "function";
  }
  return "object";
}

bool py_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kUndefined:
    case K::kNone: return true;
    case K::kString: return a.as_string() == b.as_string();
    case K::kList:
    case K::kTuple: {
      const ValueList& x = a.items();
      const ValueList& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!py_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case K::kDict: {
      const Dict& x = a.dict();
      const Dict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (other == nullptr || !py_equal(v, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

}  // namespace msi::jinja
