// Prometheus metrics: Counter, Gauge and Histogram, and the Registry that owns them and renders
// them in the Prometheus text exposition format 0.0.4 (what GET /metrics answers).
//
// The Registry owns every metric it hands out; references stay valid for its lifetime.
// Thread-safety: registering and rendering take the registry's mutex (registration is rare, at
// start-up); updating a metric (inc, set, observe) is lock-free (relaxed atomics), so it is cheap
// enough to call per token from any thread. A render that races with updates sees each sample
// as of some moment during the render; a histogram's _count always equals its +Inf bucket.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace msi::metrics {

// Constant labels of one series, in the order they are rendered: {{"model_name", "tiny"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// The Content-Type of a rendered registry.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// A monotonic total.
class Counter {
 public:
  // Requires v >= 0 (checked: a decreasing counter is a bug).
  void inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets. Bucket i counts observations v with
// bounds[i-1] < v <= bounds[i] (Prometheus' inclusive `le`); one more bucket holds v >
// bounds.back() (the +Inf bucket). Rendering makes them cumulative.
class Histogram {
 public:
  // Requires `bounds` finite and strictly increasing (checked).
  explicit Histogram(std::vector<double> bounds);

  // Requires v not NaN (checked). Never allocates or blocks.
  void observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative counts, [bounds.size() + 1]; the last one is the +Inf bucket.
  std::vector<uint64_t> bucket_counts() const;
  // The sum of bucket_counts() read once; equals the rendered _count.
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // [bounds_.size() + 1]
  std::atomic<double> sum_{0.0};
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns the series `name{labels}`, creating the family (with `help`) and the series on
  // first use; a later call with the same name and labels returns the same object. Requires a
  // valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), valid label names ([a-zA-Z_][a-zA-Z0-9_]*, not
  // `le` nor starting with "__"), and the same type (and for histograms the same bounds) as
  // earlier calls with that name; all checked, since violating them is a bug. Allocates; blocks
  // on the registry mutex.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds, const Labels& labels = {});

  // Every family in registration order, each series in registration order: "# HELP", "# TYPE",
  // then the samples. Allocates; blocks on the registry mutex.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<double> bounds;  // histograms only
    std::vector<std::unique_ptr<Series>> series;
  };

  // Finds or creates the series; requires mu_ held.
  Series& series_locked(const std::string& name, const std::string& help, Type type,
                        const std::vector<double>& bounds, const Labels& labels);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// Text-format helpers, exposed for tests and for servers that append their own lines.
// A sample value: shortest round-trip decimal ("1", "0.25", "1e-05"), "+Inf", "-Inf" or "NaN".
std::string format_value(double v);
// A label value with \ " and newline escaped as \\ \" \n.
std::string escape_label_value(const std::string& v);
// A HELP text with \ and newline escaped as \\ \n.
std::string escape_help(const std::string& v);

}  // namespace msi::metrics
