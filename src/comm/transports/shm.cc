// The shm transport: endpoints are processes of one host sharing a POSIX shared-memory segment
// (MAP_SHARED), so futexes are non-private. Endpoints record their pid at open so that a peer
// can tell a process that died (even one killed without running destructors) from a slow one.
//
// NOTE: pids are compared within one pid namespace; processes in different containers must not
// share a segment.
#include <cerrno>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/m2n.h"
#include "comm/mailbox.h"
#include "comm/mailbox_transport.h"

namespace msi::comm {
namespace {

class ShmMemory final : public detail::RegionMemory {
 public:
  ShmMemory(void* addr, const detail::RegionLayout& layout, size_t mapped_bytes)
      : mapped_bytes_(mapped_bytes) {
    region_ = detail::Region(static_cast<std::byte*>(addr), layout, /*process_shared=*/true);
  }
  ~ShmMemory() override { munmap(region_.base(), mapped_bytes_); }

 private:
  size_t mapped_bytes_;
};

// The creator's transport removes the segment's name when destroyed (mappings stay valid until
// their endpoints go). A fork()ed child that inherits the object does not unlink.
class ShmTransport final : public detail::MailboxTransport {
 public:
  ShmTransport(const M2NOptions& options, std::shared_ptr<detail::RegionMemory> memory,
               std::string shm_name, bool creator)
      : MailboxTransport(options, std::move(memory), /*record_pid=*/true),
        shm_name_(std::move(shm_name)),
        creator_pid_(creator ? getpid() : 0) {}
  ~ShmTransport() override {
    if (creator_pid_ != 0 && creator_pid_ == getpid()) shm_unlink(shm_name_.c_str());
  }

 private:
  std::string shm_name_;
  pid_t creator_pid_;
};

Status errno_status(const M2NOptions& options, const char* what, const std::string& shm_name,
                    int err) {
  const bool no_room = err == ENOMEM || err == ENOSPC || err == EFBIG || err == EMFILE ||
                       err == ENFILE || (err == EINVAL && std::strcmp(what, "ftruncate") == 0);
  return error(no_room ? StatusCode::kResourceExhausted : StatusCode::kInternal, "{}: {} '{}': {}",
               detail::group_prefix(options), what, shm_name, std::strerror(err));
}

// Compares one field of the segment's control block with the caller's options.
template <typename T, typename U>
Status check_field(const M2NOptions& options, const std::string& shm_name, const char* field,
                   T in_segment, U in_options) {
  if (static_cast<uint64_t>(in_segment) == static_cast<uint64_t>(in_options)) return Status::ok();
  return error(StatusCode::kInvalidArgument,
               "{}: shared-memory segment '{}' has {} = {}, but the options say {}",
               detail::group_prefix(options), shm_name, field, in_segment, in_options);
}

}  // namespace

Result<std::unique_ptr<M2NTransport>> create_shm_transport(const std::string& shm_name,
                                                           const M2NOptions& options) {
  MSI_ASSIGN_OR_RETURN(detail::RegionLayout layout, detail::region_layout(options));
  const int fd = shm_open(shm_name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return error(StatusCode::kInvalidArgument,
                   "{}: shared-memory segment '{}' already exists (left by a crashed run? it is "
                   "under /dev/shm)",
                   detail::group_prefix(options), shm_name);
    }
    if (err == EINVAL || err == ENAMETOOLONG) {
      return error(StatusCode::kInvalidArgument, "{}: bad shared-memory name '{}': {}",
                   detail::group_prefix(options), shm_name, std::strerror(err));
    }
    return errno_status(options, "shm_open", shm_name, err);
  }
  if (ftruncate(fd, static_cast<off_t>(layout.total_bytes)) != 0) {
    const int err = errno;
    close(fd);
    shm_unlink(shm_name.c_str());
    return errno_status(options, "ftruncate", shm_name, err);
  }
  void* addr = mmap(nullptr, layout.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mmap_err = errno;
  close(fd);
  if (addr == MAP_FAILED) {
    shm_unlink(shm_name.c_str());
    return errno_status(options, "mmap", shm_name, mmap_err);
  }
  auto memory = std::make_shared<ShmMemory>(addr, layout, layout.total_bytes);
  memory->region().initialize(options);
  return std::unique_ptr<M2NTransport>(
      new ShmTransport(options, std::move(memory), shm_name, /*creator=*/true));
}

Result<std::unique_ptr<M2NTransport>> open_shm_transport(const std::string& shm_name,
                                                         const M2NOptions& options) {
  MSI_ASSIGN_OR_RETURN(detail::RegionLayout layout, detail::region_layout(options));
  const int fd = shm_open(shm_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return error(StatusCode::kNotFound, "{}: no shared-memory segment '{}'",
                   detail::group_prefix(options), shm_name);
    }
    return errno_status(options, "shm_open", shm_name, err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return errno_status(options, "fstat", shm_name, err);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < sizeof(detail::ControlBlock)) {
    close(fd);
    return error(StatusCode::kUnavailable,
                 "{}: shared-memory segment '{}' is not initialized yet ({} bytes)",
                 detail::group_prefix(options), shm_name, size);
  }
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mmap_err = errno;
  close(fd);
  if (addr == MAP_FAILED) return errno_status(options, "mmap", shm_name, mmap_err);
  // From here the mapping is owned, so every early return unmaps it.
  auto memory = std::make_shared<ShmMemory>(addr, layout, size);
  detail::ControlBlock& c = memory->region().control();
  const uint64_t magic = std::atomic_ref<uint64_t>(c.magic).load(std::memory_order_acquire);
  if (magic == 0) {
    return error(StatusCode::kUnavailable, "{}: shared-memory segment '{}' is not initialized yet",
                 detail::group_prefix(options), shm_name);
  }
  if (magic != detail::kRegionMagic) {
    return error(StatusCode::kInvalidArgument,
                 "{}: shared-memory segment '{}' is not an M2N region (magic {:#x})",
                 detail::group_prefix(options), shm_name, magic);
  }
  MSI_RETURN_IF_ERROR(check_field(options, shm_name, "version", c.version, detail::kRegionVersion));
  MSI_RETURN_IF_ERROR(check_field(options, shm_name, "n_senders", c.n_senders, options.n_senders));
  MSI_RETURN_IF_ERROR(
      check_field(options, shm_name, "n_receivers", c.n_receivers, options.n_receivers));
  MSI_RETURN_IF_ERROR(check_field(options, shm_name, "n_slots", c.n_slots, options.n_slots));
  MSI_RETURN_IF_ERROR(check_field(options, shm_name, "max_payload_bytes", c.max_payload_bytes,
                                  options.max_payload_bytes));
  MSI_RETURN_IF_ERROR(
      check_field(options, shm_name, "region_bytes", c.region_bytes, layout.total_bytes));
  MSI_RETURN_IF_ERROR(check_field(options, shm_name, "size", size, layout.total_bytes));
  return std::unique_ptr<M2NTransport>(
      new ShmTransport(options, std::move(memory), shm_name, /*creator=*/false));
}

}  // namespace msi::comm
