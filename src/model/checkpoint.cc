// open_checkpoint: the TensorSource of a Hugging Face model directory (one or many
// .safetensors files, with or without model.safetensors.index.json).
#include <algorithm>
#include <unordered_map>

#include "model/config.h"
#include "model/safetensors.h"

namespace msi {

namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

class CheckpointSource final : public TensorSource {
 public:
  explicit CheckpointSource(fs::path dir) : dir_(std::move(dir)) {}

  Result<HostTensorView> get(const std::string& name) const override {
    auto it = owner_.find(name);
    if (it == owner_.end()) {
      return error(StatusCode::kNotFound, "tensor '{}' not found in checkpoint {}", name,
                   dir_.string());
    }
    return it->second->get(name);
  }

  // Opens `path` (once) and returns it.
  Result<const SafetensorsFile*> add_file(const fs::path& path) {
    auto it = by_path_.find(path.string());
    if (it != by_path_.end()) return it->second;
    MSI_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::open(path));
    files_.push_back(std::move(file));
    by_path_.emplace(path.string(), files_.back().get());
    return files_.back().get();
  }

  // Serves `name` from `file`; a name already served by another file is an error.
  Status add_tensor(const std::string& name, const SafetensorsFile* file) {
    auto [it, inserted] = owner_.emplace(name, file);
    if (!inserted && it->second != file) {
      return error(StatusCode::kInvalidArgument, "tensor '{}' is in both {} and {}", name,
                   it->second->path().string(), file->path().string());
    }
    return Status::ok();
  }

 private:
  fs::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const SafetensorsFile*> by_path_;
  std::unordered_map<std::string, const SafetensorsFile*> owner_;
};

// Every shard the index names must exist and hold the tensors mapped to it.
Status open_indexed(const fs::path& dir, CheckpointSource* source) {
  const fs::path index_path = dir / kIndexFile;
  MSI_ASSIGN_OR_RETURN(nlohmann::json index, read_json_file(index_path));
  auto map_it = index.is_object() ? index.find("weight_map") : index.end();
  if (map_it == index.end() || !map_it->is_object()) {
    return error(StatusCode::kInvalidArgument, "{} has no 'weight_map' object",
                 index_path.string());
  }
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return error(StatusCode::kInvalidArgument, "{}: weight_map['{}'] is not a file name",
                   index_path.string(), name);
    }
    const fs::path shard_path = dir / shard.get<std::string>();
    std::error_code ec;
    if (!fs::is_regular_file(shard_path, ec)) {
      return error(StatusCode::kNotFound, "shard {} named in {} does not exist",
                   shard_path.string(), index_path.string());
    }
    MSI_ASSIGN_OR_RETURN(const SafetensorsFile* file, source->add_file(shard_path));
    if (!file->contains(name)) {
      return error(StatusCode::kInvalidArgument, "{} maps tensor '{}' to {}, which lacks it",
                   index_path.string(), name, shard_path.string());
    }
    MSI_RETURN_IF_ERROR(source->add_tensor(name, file));
  }
  return Status::ok();
}

Status open_files(const std::vector<fs::path>& paths, CheckpointSource* source) {
  for (const fs::path& path : paths) {
    MSI_ASSIGN_OR_RETURN(const SafetensorsFile* file, source->add_file(path));
    for (const std::string& name : file->names()) {
      MSI_RETURN_IF_ERROR(source->add_tensor(name, file));
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<TensorSource>> open_checkpoint(const fs::path& model_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return error(StatusCode::kNotFound, "model directory {} does not exist", model_dir.string());
  }
  auto source = std::make_unique<CheckpointSource>(model_dir);
  if (fs::exists(model_dir / kIndexFile, ec)) {
    MSI_RETURN_IF_ERROR(open_indexed(model_dir, source.get()));
  } else if (fs::exists(model_dir / kSingleFile, ec)) {
    MSI_RETURN_IF_ERROR(open_files({model_dir / kSingleFile}, source.get()));
  } else {
    std::vector<fs::path> paths;
    for (fs::directory_iterator it(model_dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && it->path().extension() == ".safetensors") {
        paths.push_back(it->path());
      }
    }
    if (ec) {
      return error(StatusCode::kIoError, "cannot list {}: {}", model_dir.string(), ec.message());
    }
    if (paths.empty()) {
      return error(StatusCode::kNotFound, "no .safetensors files in {}", model_dir.string());
    }
    std::sort(paths.begin(), paths.end());
    MSI_RETURN_IF_ERROR(open_files(paths, source.get()));
  }
  return std::unique_ptr<TensorSource>(std::move(source));
}

}  // namespace msi
