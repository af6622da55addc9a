#include "metrics/registry.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/check.h"

namespace msi::metrics {
namespace {

bool is_metric_name(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool is_label_name(const std::string& s) {
  if (s.empty() || s == "le" || s.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

// `{a="x",b="y"}`, with `extra` (already escaped) appended as the last label; "" when empty.
std::string render_labels(const Labels& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += escape_label_value(labels[i].second);
    out += '"';
  }
  if (!extra.empty()) {
    if (!labels.empty()) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

}  // namespace

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

void Counter::inc(double v) {
  MSI_CHECK(v >= 0.0, "counter increment must be >= 0, got {}", v);
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    MSI_CHECK(std::isfinite(bounds_[i]), "histogram bound {} is not finite", bounds_[i]);
    MSI_CHECK(i == 0 || bounds_[i - 1] < bounds_[i], "histogram bounds must increase: {} then {}",
              bounds_[i - 1], bounds_[i]);
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  MSI_CHECK(!std::isnan(v), "histogram observation is NaN");
  // The first bound >= v is v's bucket (le is inclusive); none means the +Inf bucket.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::bucket_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (uint64_t c : bucket_counts()) n += c;
  return n;
}

Registry::Series& Registry::series_locked(const std::string& name, const std::string& help,
                                          Type type, const std::vector<double>& bounds,
                                          const Labels& labels) {
  MSI_CHECK(is_metric_name(name), "invalid metric name '{}'", name);
  for (const auto& [key, value] : labels) {
    MSI_CHECK(is_label_name(key), "invalid label name '{}' on metric {}", key, name);
  }
  Family* family = nullptr;
  for (auto& f : families_) {
    if (f->name == name) family = f.get();
  }
  if (family == nullptr) {
    families_.push_back(std::make_unique<Family>(Family{name, help, type, bounds, {}}));
    family = families_.back().get();
  }
  MSI_CHECK(family->type == type, "metric {} registered again with another type", name);
  MSI_CHECK(family->bounds == bounds, "histogram {} registered again with other buckets", name);
  for (auto& s : family->series) {
    if (s->labels == labels) return *s;
  }
  auto series = std::make_unique<Series>();
  series->labels = labels;
  switch (type) {
    case Type::kCounter: series->counter = std::make_unique<Counter>(); break;
    case Type::kGauge: series->gauge = std::make_unique<Gauge>(); break;
    case Type::kHistogram: series->histogram = std::make_unique<Histogram>(bounds); break;
  }
  family->series.push_back(std::move(series));
  return *family->series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  return *series_locked(name, help, Type::kCounter, {}, labels).counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  return *series_locked(name, help, Type::kGauge, {}, labels).gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  return *series_locked(name, help, Type::kHistogram, bounds, labels).histogram;
}

std::string Registry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& f : families_) {
    const char* type = f->type == Type::kCounter ? "counter"
                       : f->type == Type::kGauge ? "gauge"
                                                 : "histogram";
    out +=
        fmt::format("# HELP {} {}\n# TYPE {} {}\n", f->name, escape_help(f->help), f->name, type);
    for (const auto& s : f->series) {
      switch (f->type) {
        case Type::kCounter:
          out += fmt::format("{}{} {}\n", f->name, render_labels(s->labels),
                             format_value(s->counter->value()));
          break;
        case Type::kGauge:
          out += fmt::format("{}{} {}\n", f->name, render_labels(s->labels),
                             format_value(s->gauge->value()));
          break;
        case Type::kHistogram: {
          // Read the buckets once so that _count is exactly the +Inf bucket.
          const std::vector<uint64_t> counts = s->histogram->bucket_counts();
          const double sum = s->histogram->sum();
          uint64_t cumulative = 0;
          for (size_t i = 0; i < counts.size(); ++i) {
            cumulative += counts[i];
            const std::string le =
                i < f->bounds.size() ? format_value(f->bounds[i]) : std::string("+Inf");
            out += fmt::format("{}_bucket{} {}\n", f->name,
                               render_labels(s->labels, "le=\"" + le + "\""), cumulative);
          }
          out += fmt::format("{}_sum{} {}\n", f->name, render_labels(s->labels), format_value(sum));
          out += fmt::format("{}_count{} {}\n", f->name, render_labels(s->labels), cumulative);
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace msi::metrics
