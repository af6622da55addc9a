#include "comm/m2n.h"

#include <cstring>

#include "comm/mailbox.h"

namespace msi::comm {

size_t m2n_region_bytes(const M2NOptions& options) {
  // NOTE: 0 for options that describe no group; the transport factories say why.
  Result<detail::RegionLayout> layout = detail::region_layout(options);
  return layout.is_ok() ? layout->total_bytes : 0;
}

Status M2NSender::send(int dst, const MessageHeader& header, std::span<const std::byte> payload) {
  MSI_ASSIGN_OR_RETURN(std::span<std::byte> buffer, acquire(dst));
  MessageHeader h = header;
  h.payload_bytes = payload.size();
  // Too large: commit() refuses it with the group's wording; the mailbox stays acquired.
  if (payload.size() <= buffer.size() && !payload.empty()) {
    std::memcpy(buffer.data(), payload.data(), payload.size());
  }
  return commit(dst, h);
}

}  // namespace msi::comm
