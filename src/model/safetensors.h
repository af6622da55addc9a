// safetensors files: a memory-mapped reader (single file or a sharded set) and a writer.
//
// Format: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data region; offsets are relative to the start of the data region.
//
// Thread-safety: a loaded SafetensorsFile / TensorSource is immutable and may be read from many
// threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace msi {

// A read-only view of one tensor's bytes in host memory (mmapped file or generated buffer).
struct HostTensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // dtype_size(dtype) * numel() bytes
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// One mmapped .safetensors file. Validates the header fully at open: a truncated file, a
// header that is not JSON, offsets outside the file, overlapping or size-mismatched tensors, or
// an unknown dtype all fail with an error naming the file.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  Result<HostTensorView> get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, HostTensorView> tensors_;
};

// A tensor a source generates rather than stores (dummy weights): element i is
// bf16(center + half_width * (2u − 1)) with u from splitmix64(stream + i · golden) (model/dummy.h),
// so a backend can generate it on its device (Backend::fill_dummy) without host memory.
struct GeneratedTensor {
  uint64_t stream = 0;
  float center = 0.0f;
  float half_width = 0.0f;
};

// Where a role's weights come from: a checkpoint directory, or generated dummy weights.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // Returns the named tensor; NotFound names the tensor (and the checkpoint) if absent.
  // The view stays valid as long as the source lives.
  virtual Result<HostTensorView> get(const std::string& name) const = 0;
  // Tells the source that the caller has copied the named tensor and will not read the view
  // again, so a generating source may free it (a 200 GB model then never sits in host memory
  // twice). Optional; a later get() of the same name still works.
  virtual void release(const std::string& name) const {}
  // For a generating source: how to generate the named tensor on a device instead of get().
  virtual std::optional<GeneratedTensor> generated(const std::string& name) const { return std::nullopt; }
};

// All *.safetensors of a model directory: model.safetensors.index.json when present (every
// shard it names must exist), else the single model.safetensors (else every *.safetensors).
Result<std::unique_ptr<TensorSource>> open_checkpoint(const std::filesystem::path& model_dir);

// A tensor to write: name, dtype, shape and its bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes one .safetensors file (header padded to 8 bytes, tensors in the given order).
Status write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors);

}  // namespace msi
