#include "comm/mailbox_transport.h"

#include <vector>

#include <unistd.h>

#include "core/check.h"

namespace msi::comm::detail {
namespace {

// Closing an endpoint: mark it closed, then wake whoever sleeps on one of its pairs' mailboxes so
// they see the flag now rather than after their current wait slice.
void close_endpoint(const Region& region, EndpointState& state, bool is_sender, int index) {
  std::atomic_ref<uint32_t>(state.closed).store(1, std::memory_order_seq_cst);
  const RegionLayout& l = region.layout();
  const int n_peers = is_sender ? l.n_receivers : l.n_senders;
  for (int peer = 0; peer < n_peers; ++peer) {
    for (int k = 0; k < l.n_slots; ++k) {
      const int s = is_sender ? index : peer;
      const int r = is_sender ? peer : index;
      wake_waiters(region, region.mailbox(s, r, static_cast<uint64_t>(k)));
    }
  }
}

class MailboxSender final : public M2NSender {
 public:
  MailboxSender(const M2NOptions& options, std::shared_ptr<RegionMemory> memory, int index)
      : options_(options),
        memory_(std::move(memory)),
        region_(memory_->region()),
        index_(index),
        next_(static_cast<size_t>(options.n_receivers), 0),
        acquired_(static_cast<size_t>(options.n_receivers), 0) {}

  ~MailboxSender() override {
    close_endpoint(region_, region_.sender_state(index_), /*is_sender=*/true, index_);
  }

  int index() const override { return index_; }

  Result<std::span<std::byte>> acquire(int dst) override {
    MSI_RETURN_IF_ERROR(check_dst(dst));
    const size_t d = static_cast<size_t>(dst);
    const std::span<std::byte> buffer(region_.payload(index_, dst, next_[d]),
                                      options_.max_payload_bytes);
    if (acquired_[d]) return buffer;  // still the next mailbox until commit()
    WaitContext context{&options_, /*self_is_sender=*/true, index_, dst, next_[d], nullptr};
    MSI_RETURN_IF_ERROR(wait_for_state(region_, region_.mailbox(index_, dst, next_[d]),
                                       kMailboxEmpty, region_.receiver_state(dst), context));
    acquired_[d] = 1;
    return buffer;
  }

  Status commit(int dst, const MessageHeader& header) override {
    MSI_RETURN_IF_ERROR(check_dst(dst));
    const size_t d = static_cast<size_t>(dst);
    if (!acquired_[d]) {
      return error(StatusCode::kInvalidArgument,
                   "{}: commit to {} {} without acquire (message {} from {} {})",
                   group_prefix(options_), options_.receiver_label, dst, next_[d],
                   options_.sender_label, index_);
    }
    if (header.payload_bytes > options_.max_payload_bytes) {
      return error(StatusCode::kInvalidArgument,
                   "{}: payload of {} bytes exceeds the mailbox capacity of {} bytes "
                   "(message {} from {} {} to {} {})",
                   group_prefix(options_), header.payload_bytes, options_.max_payload_bytes,
                   next_[d], options_.sender_label, index_, options_.receiver_label, dst);
    }
    MailboxHeader& mailbox = region_.mailbox(index_, dst, next_[d]);
    mailbox.header = header;
    publish_state(region_, mailbox, kMailboxFull);
    ++next_[d];
    acquired_[d] = 0;
    return Status::ok();
  }

 private:
  Status check_dst(int dst) const {
    if (dst >= 0 && dst < options_.n_receivers) return Status::ok();
    return error(StatusCode::kInvalidArgument, "{}: no {} {} (the group has {})",
                 group_prefix(options_), options_.receiver_label, dst, options_.n_receivers);
  }

  const M2NOptions options_;
  const std::shared_ptr<RegionMemory> memory_;  // keeps the region mapped
  const Region region_;
  const int index_;
  std::vector<uint64_t> next_;     // [n_receivers] messages committed to each receiver
  std::vector<uint8_t> acquired_;  // [n_receivers] mailbox next_[dst] is acquired, not committed
};

class MailboxReceiver final : public M2NReceiver {
 public:
  MailboxReceiver(const M2NOptions& options, std::shared_ptr<RegionMemory> memory, int index)
      : options_(options),
        memory_(std::move(memory)),
        region_(memory_->region()),
        index_(index),
        next_(static_cast<size_t>(options.n_senders), 0),
        held_(static_cast<size_t>(options.n_senders), 0) {}

  ~MailboxReceiver() override {
    close_endpoint(region_, region_.receiver_state(index_), /*is_sender=*/false, index_);
  }

  int index() const override { return index_; }

  Result<Message> receive(int src, const UnitAddr* expected) override {
    if (src < 0 || src >= options_.n_senders) {
      return error(StatusCode::kInvalidArgument, "{}: no {} {} (the group has {})",
                   group_prefix(options_), options_.sender_label, src, options_.n_senders);
    }
    const size_t s = static_cast<size_t>(src);
    if (held_[s]) {
      return error(StatusCode::kInvalidArgument,
                   "{}: {} {} received again from {} {} before releasing message {}",
                   group_prefix(options_), options_.receiver_label, index_, options_.sender_label,
                   src, next_[s]);
    }
    WaitContext context{&options_, /*self_is_sender=*/false, index_, src, next_[s], expected};
    MailboxHeader& mailbox = region_.mailbox(src, index_, next_[s]);
    MSI_RETURN_IF_ERROR(
        wait_for_state(region_, mailbox, kMailboxFull, region_.sender_state(src), context));
    Message message;
    message.header = mailbox.header;
    if (message.header.payload_bytes > options_.max_payload_bytes) {  // a corrupt region
      return error(StatusCode::kInternal,
                   "{}: message {} from {} {} to {} {} claims {} payload bytes (capacity {})",
                   group_prefix(options_), next_[s], options_.sender_label, src,
                   options_.receiver_label, index_, message.header.payload_bytes,
                   options_.max_payload_bytes);
    }
    if (expected != nullptr && !(message.header.unit == *expected)) {
      // Left in its mailbox, unreleased: the pair's FIFO is out of step, which is a bug upstream.
      return error(
          StatusCode::kInternal, "{}: {} {} expected {} from {} {} but got {} (message {})",
          group_prefix(options_), options_.receiver_label, index_, unit_to_string(*expected),
          options_.sender_label, src, unit_to_string(message.header.unit), next_[s]);
    }
    message.payload = std::span<const std::byte>(region_.payload(src, index_, next_[s]),
                                                 message.header.payload_bytes);
    held_[s] = 1;
    return message;
  }

  void release(int src) override {
    MSI_CHECK(src >= 0 && src < options_.n_senders, "{}: release of {} {} out of range",
              group_prefix(options_), options_.sender_label, src);
    const size_t s = static_cast<size_t>(src);
    MSI_CHECK(held_[s], "{}: {} {} released {} {} without a received message",
              group_prefix(options_), options_.receiver_label, index_, options_.sender_label, src);
    publish_state(region_, region_.mailbox(src, index_, next_[s]), kMailboxEmpty);
    ++next_[s];
    held_[s] = 0;
  }

 private:
  const M2NOptions options_;
  const std::shared_ptr<RegionMemory> memory_;  // keeps the region mapped
  const Region region_;
  const int index_;
  std::vector<uint64_t> next_;  // [n_senders] messages released from each sender
  std::vector<uint8_t> held_;   // [n_senders] message next_[src] received, not yet released
};

}  // namespace

Status MailboxTransport::claim(const Region& region, bool is_sender, int index) {
  const std::string& label = is_sender ? options_.sender_label : options_.receiver_label;
  const int count = is_sender ? options_.n_senders : options_.n_receivers;
  if (index < 0 || index >= count) {
    return error(StatusCode::kInvalidArgument, "{}: no {} {} (the group has {})",
                 group_prefix(options_), label, index, count);
  }
  EndpointState& state = is_sender ? region.sender_state(index) : region.receiver_state(index);
  uint32_t expected = 0;
  if (!std::atomic_ref<uint32_t>(state.opened).compare_exchange_strong(expected, 1)) {
    return error(StatusCode::kInvalidArgument, "{}: {} {} is already opened",
                 group_prefix(options_), label, index);
  }
  std::atomic_ref<int32_t>(state.pid).store(record_pid_ ? static_cast<int32_t>(getpid()) : 0,
                                            std::memory_order_release);
  return Status::ok();
}

Result<std::unique_ptr<M2NSender>> MailboxTransport::open_sender(int index) {
  MSI_RETURN_IF_ERROR(claim(memory_->region(), /*is_sender=*/true, index));
  return std::unique_ptr<M2NSender>(new MailboxSender(options_, memory_, index));
}

Result<std::unique_ptr<M2NReceiver>> MailboxTransport::open_receiver(int index) {
  MSI_RETURN_IF_ERROR(claim(memory_->region(), /*is_sender=*/false, index));
  return std::unique_ptr<M2NReceiver>(new MailboxReceiver(options_, memory_, index));
}

}  // namespace msi::comm::detail
