// The inproc transport: endpoints are threads of one process; the region is a 64-byte aligned
// heap buffer shared by the transport and its endpoints. Liveness is the closed flag only (a
// thread cannot vanish without its process).
#include <cstdlib>
#include <memory>

#include "comm/m2n.h"
#include "comm/mailbox.h"
#include "comm/mailbox_transport.h"

namespace msi::comm {
namespace {

class HeapMemory final : public detail::RegionMemory {
 public:
  explicit HeapMemory(const detail::RegionLayout& layout) {
    // aligned_alloc wants a multiple of the alignment; every part of the layout already is one.
    void* p = std::aligned_alloc(detail::kRegionAlign, layout.total_bytes);
    region_ = detail::Region(static_cast<std::byte*>(p), layout, /*process_shared=*/false);
  }
  ~HeapMemory() override { std::free(region_.base()); }
};

}  // namespace

Result<std::unique_ptr<M2NTransport>> make_inproc_transport(const M2NOptions& options) {
  MSI_ASSIGN_OR_RETURN(detail::RegionLayout layout, detail::region_layout(options));
  auto memory = std::make_shared<HeapMemory>(layout);
  if (memory->region().base() == nullptr) {
    return error(StatusCode::kResourceExhausted, "{}: cannot allocate a region of {} bytes",
                 detail::group_prefix(options), layout.total_bytes);
  }
  memory->region().initialize(options);
  return std::unique_ptr<M2NTransport>(
      new detail::MailboxTransport(options, std::move(memory), /*record_pid=*/false));
}

}  // namespace msi::comm
