// SafetensorsFile (mmap reader with full header validation) and write_safetensors.
#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace msi {

using nlohmann::json;

namespace {

constexpr size_t kHeaderLenBytes = 8;

// The DType of a safetensors dtype string; others (F64, F8_E4M3, BOOL, ...) are unsupported.
bool parse_st_dtype(std::string_view name, DType* out) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kU8}) {
    if (dtype_name(d) == name) {
      *out = d;
      return true;
    }
  }
  return false;
}

// Reads a JSON array of non-negative integers; false on any other shape.
bool read_u64_array(const json& value, std::vector<uint64_t>* out) {
  if (!value.is_array()) return false;
  for (const json& item : value) {
    if (!item.is_number_unsigned()) return false;  // nlohmann parses non-negative ints as unsigned
    out->push_back(item.get<uint64_t>());
  }
  return true;
}

struct Entry {
  std::string name;
  HostTensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Validates one header entry against the data region [0, data_size).
Status parse_entry(const std::string& file, const std::string& name, const json& value,
                   uint64_t data_size, Entry* out) {
  auto bad = [&](std::string_view what) {
    return error(StatusCode::kInvalidArgument, "{}: tensor '{}' {}", file, name, what);
  };
  if (!value.is_object()) return bad("is not a JSON object");
  auto dtype_it = value.find("dtype");
  auto shape_it = value.find("shape");
  auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) return bad("has no string 'dtype'");
  if (shape_it == value.end()) return bad("has no 'shape'");
  if (offsets_it == value.end()) return bad("has no 'data_offsets'");
  const std::string dtype = dtype_it->get<std::string>();
  if (!parse_st_dtype(dtype, &out->view.dtype)) {
    return error(StatusCode::kUnimplemented, "{}: tensor '{}' has dtype {}, which is not supported",
                 file, name, dtype);
  }
  std::vector<uint64_t> shape, offsets;
  if (!read_u64_array(*shape_it, &shape) || std::any_of(shape.begin(), shape.end(), [](uint64_t d) {
        return d > uint64_t{std::numeric_limits<int64_t>::max()};
      })) {
    return bad("has a 'shape' that is not a list of sizes");
  }
  if (!read_u64_array(*offsets_it, &offsets) || offsets.size() != 2) {
    return bad("has 'data_offsets' that are not [begin, end]");
  }
  // numel * dtype_size, saturating at kOverflow (no real tensor is that large).
  constexpr uint64_t kOverflow = std::numeric_limits<uint64_t>::max();
  uint64_t bytes = dtype_size(out->view.dtype);
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) bytes = 0;
  for (uint64_t d : shape) {
    if (d != 0 && bytes > kOverflow / d) {
      bytes = kOverflow;
      break;
    }
    bytes *= d;
  }
  const uint64_t begin = offsets[0], end = offsets[1];
  if (end < begin)
    return bad(fmt::format("has data_offsets [{}, {}] with end < begin", begin, end));
  if (end > data_size) {
    return bad(fmt::format("has data_offsets [{}, {}] beyond the data region ({} bytes)", begin,
                           end, data_size));
  }
  if (end - begin != bytes) {
    return bad(fmt::format("spans {} bytes but its dtype and shape need {}", end - begin,
                           bytes == kOverflow ? "more" : std::to_string(bytes)));
  }
  out->name = name;
  out->begin = begin;
  out->end = end;
  for (uint64_t d : shape) out->view.shape.push_back(static_cast<int64_t>(d));
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string file = path.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return error(err == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError, "cannot open {}: {}",
                 file, std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return error(StatusCode::kIoError, "cannot stat {}: {}", file, std::strerror(err));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderLenBytes) {
    ::close(fd);
    return error(StatusCode::kInvalidArgument,
                 "{}: file is {} bytes, too short for the 8-byte header length", file, size);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) {
    return error(StatusCode::kIoError, "cannot mmap {}: {}", file, std::strerror(map_err));
  }
  std::unique_ptr<SafetensorsFile> st_file(new SafetensorsFile());
  st_file->path_ = path;
  st_file->map_ = map;
  st_file->map_size_ = size;

  const auto* base = static_cast<const uint8_t*>(map);
  uint64_t header_len = 0;
  for (size_t i = 0; i < kHeaderLenBytes; ++i) header_len |= uint64_t{base[i]} << (8 * i);
  if (header_len > size - kHeaderLenBytes) {
    return error(StatusCode::kInvalidArgument,
                 "{}: header length {} is larger than the file ({} bytes)", file, header_len, size);
  }
  json header;
  try {
    header = json::parse(
        std::string_view(reinterpret_cast<const char*>(base) + kHeaderLenBytes, header_len));
  } catch (const json::exception& e) {
    return error(StatusCode::kInvalidArgument, "{}: header is not valid JSON: {}", file, e.what());
  }
  if (!header.is_object()) {
    return error(StatusCode::kInvalidArgument, "{}: header is not a JSON object", file);
  }

  const uint64_t data_start = kHeaderLenBytes + header_len;
  const uint64_t data_size = size - data_start;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    Entry entry;
    MSI_RETURN_IF_ERROR(parse_entry(file, name, value, data_size, &entry));
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end) {
      return error(StatusCode::kInvalidArgument, "{}: tensors '{}' and '{}' overlap", file,
                   entries[i - 1].name, entries[i].name);
    }
  }
  for (Entry& entry : entries) {
    entry.view.data = base + data_start + entry.begin;
    st_file->tensors_.emplace(std::move(entry.name), std::move(entry.view));
  }
  return st_file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

Result<HostTensorView> SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return error(StatusCode::kNotFound, "tensor '{}' not found in {}", name, path_.string());
  }
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<TensorToWrite>& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name)) {
      return error(StatusCode::kInvalidArgument, "cannot write {}: duplicate or reserved name '{}'",
                   path.string(), t.name);
    }
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) {
        return error(StatusCode::kInvalidArgument,
                     "cannot write {}: tensor '{}' has a negative dim", path.string(), t.name);
      }
      numel *= static_cast<uint64_t>(d);
    }
    if (t.bytes.size() != numel * dtype_size(t.dtype)) {
      return error(StatusCode::kInvalidArgument,
                   "cannot write {}: tensor '{}' has {} bytes, its dtype and shape need {}",
                   path.string(), t.name, t.bytes.size(), numel * dtype_size(t.dtype));
    }
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  // NOTE: padding the header to a multiple of 8 aligns the data region; tensors stay contiguous
  // (the format forbids gaps), so each one is aligned only as far as the sizes before it allow.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len_bytes[kHeaderLenBytes];
  for (size_t i = 0; i < kHeaderLenBytes; ++i)
    len_bytes[i] = static_cast<uint8_t>(text.size() >> (8 * i));

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return error(StatusCode::kIoError, "cannot create {}", path.string());
  out.write(reinterpret_cast<const char*>(len_bytes), sizeof(len_bytes));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const TensorToWrite& t : tensors) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
  }
  out.close();
  if (!out) return error(StatusCode::kIoError, "writing {} failed", path.string());
  return Status::ok();
}

}  // namespace msi
