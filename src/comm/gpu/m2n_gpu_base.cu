#include "comm/gpu/m2n_gpu_base.cuh"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "comm/gpu/gate.cuh"
#include "comm/gpu/gpu_check.cuh"

namespace msi::comm::gpu {
namespace {

using Clock = std::chrono::steady_clock;

// Enables access from `from` to `to`'s memory; "already enabled" is fine (another group did it).
Status enable_peer(int from, int to) {
  DeviceScope scope(from);
  const cudaError_t err = cudaDeviceEnablePeerAccess(to, 0);
  if (err == cudaErrorPeerAccessAlreadyEnabled) {
    (void)cudaGetLastError();
    return Status::ok();
  }
  MSI_GPU_RETURN_IF_ERROR(err);
  return Status::ok();
}

template <typename T>
Status device_alloc(T** p, size_t count) {
  MSI_GPU_RETURN_IF_ERROR(cudaMalloc(reinterpret_cast<void**>(p), std::max<size_t>(count, 1) * sizeof(T)));
  MSI_GPU_RETURN_IF_ERROR(cudaMemset(*p, 0, std::max<size_t>(count, 1) * sizeof(T)));
  return Status::ok();
}

template <typename T>
Status host_alloc(T** p, size_t count) {
  const size_t n = std::max<size_t>(count, 1) * sizeof(T);
  MSI_GPU_RETURN_IF_ERROR(
      cudaHostAlloc(reinterpret_cast<void**>(p), n, cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(static_cast<void*>(*p), 0, n);
  return Status::ok();
}

// Polls `done` until it returns true, or until `limit` passes without `progress()` changing.
template <typename Done, typename Progress>
bool bounded_poll(Done done, Progress progress, std::chrono::nanoseconds limit) {
  int last = progress();
  auto deadline = Clock::now() + limit;
  while (!done()) {
    const int now = progress();
    if (now != last) {
      last = now;
      deadline = Clock::now() + limit;
    }
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

DeviceScope::DeviceScope(int device) {
  (void)cudaGetDevice(&previous_);
  (void)cudaSetDevice(device);
}

DeviceScope::~DeviceScope() { (void)cudaSetDevice(previous_); }

Status GpuM2NBase::init(const GpuM2NConfig& config) {
  config_ = config;
  MSI_ASSIGN_OR_RETURN(cu_, driver_api());
  slice_ = (config.max_bytes + 255) / 256 * 256;
  const size_t pair_bytes = slice_ * static_cast<size_t>(n_pairs());
  const int a = config.send_device;
  const int b = config.recv_device;
  if (a != b) {
    MSI_RETURN_IF_ERROR(enable_peer(a, b));
    MSI_RETURN_IF_ERROR(enable_peer(b, a));
  }
  {
    DeviceScope scope(a);
    MSI_GPU_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&send_stream_, cudaStreamNonBlocking));
    MSI_GPU_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&send_side_, cudaStreamNonBlocking));
    MSI_RETURN_IF_ERROR(device_alloc(&send_payload_, pair_bytes));
    MSI_RETURN_IF_ERROR(device_alloc(&combine_inbox_, pair_bytes));
    MSI_RETURN_IF_ERROR(device_alloc(&combine_flags_, n_pairs()));
    MSI_RETURN_IF_ERROR(device_alloc(&send_counters_, n_pairs()));
    for (int i = 0; i < kMaxRoundsPerCall; ++i) {
      MSI_GPU_RETURN_IF_ERROR(cudaEventCreate(&start_[i]));
      MSI_GPU_RETURN_IF_ERROR(cudaEventCreate(&end_[i]));
    }
  }
  {
    DeviceScope scope(b);
    MSI_GPU_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&recv_stream_, cudaStreamNonBlocking));
    MSI_GPU_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&recv_side_, cudaStreamNonBlocking));
    MSI_RETURN_IF_ERROR(device_alloc(&dispatch_inbox_, pair_bytes));
    MSI_RETURN_IF_ERROR(device_alloc(&dispatch_flags_, n_pairs()));
    MSI_RETURN_IF_ERROR(device_alloc(&recv_counters_, n_pairs()));
    MSI_GPU_RETURN_IF_ERROR(cudaEventCreateWithFlags(&recv_done_, cudaEventDisableTiming));
  }
  MSI_RETURN_IF_ERROR(host_alloc(&errors_, kNumWaitSites));
  MSI_RETURN_IF_ERROR(host_alloc(&gate_, 1));
  MSI_RETURN_IF_ERROR(host_alloc(&host_flags_, n_pairs()));
  for (int d : {a, b}) {  // the memsets above ran on the legacy stream: finish them before any round
    DeviceScope scope(d);
    MSI_GPU_RETURN_IF_ERROR(cudaDeviceSynchronize());  // set-up only, never on a round
  }
  return init_transport();
}

GpuM2NBase::~GpuM2NBase() {
  if (send_stream_ != nullptr && gate_ != nullptr) {
    // Open the gate in case a failed enqueue left it shut, then drain (bounded).
    __atomic_store_n(gate_, gate_gen_, __ATOMIC_RELEASE);
    bounded_poll([&] { return cudaStreamQuery(send_stream_) != cudaErrorNotReady &&
                              cudaStreamQuery(recv_stream_) != cudaErrorNotReady; },
                 [] { return 0; }, std::chrono::seconds(5));
  }
  for (int d : {config_.send_device, config_.recv_device}) {
    DeviceScope scope(d);
    for (cudaStream_t* s : {&send_stream_, &send_side_, &recv_stream_, &recv_side_}) {
      if (*s != nullptr) {
        int dev = -1;
        // Each stream is destroyed with its own device current.
        if (cudaStreamGetDevice(*s, &dev) == cudaSuccess && dev == d) {
          (void)cudaStreamDestroy(*s);
          *s = nullptr;
        }
      }
    }
  }
  {
    DeviceScope scope(config_.send_device);
    for (void* p : {static_cast<void*>(send_payload_), static_cast<void*>(combine_inbox_),
                    static_cast<void*>(combine_flags_), static_cast<void*>(send_counters_)}) {
      if (p != nullptr) (void)cudaFree(p);
    }
    for (int i = 0; i < kMaxRoundsPerCall; ++i) {
      if (start_[i] != nullptr) (void)cudaEventDestroy(start_[i]);
      if (end_[i] != nullptr) (void)cudaEventDestroy(end_[i]);
    }
  }
  {
    DeviceScope scope(config_.recv_device);
    for (void* p : {static_cast<void*>(dispatch_inbox_), static_cast<void*>(dispatch_flags_),
                    static_cast<void*>(recv_counters_)}) {
      if (p != nullptr) (void)cudaFree(p);
    }
    if (recv_done_ != nullptr) (void)cudaEventDestroy(recv_done_);
  }
  for (void* p : {static_cast<void*>(errors_), static_cast<void*>(gate_), static_cast<void*>(host_flags_)}) {
    if (p != nullptr) (void)cudaFreeHost(p);
  }
  (void)cudaGetLastError();
}

Status GpuM2NBase::run_rounds(size_t bytes, float* round_us, int n_rounds, const RoundFault& fault) {
  if (broken_) return Status(StatusCode::kUnavailable, "GPU M2N group is broken by an earlier stall; recreate it");
  if (bytes % 16 != 0 || bytes > config_.max_bytes || bytes == 0) {
    return error(StatusCode::kInvalidArgument, "message of {} bytes: need a positive multiple of 16 up to {}",
                 bytes, config_.max_bytes);
  }
  if (n_rounds < 1 || n_rounds > kMaxRoundsPerCall) {
    return error(StatusCode::kInvalidArgument, "{} rounds in one call: need 1..{}", n_rounds,
                 kMaxRoundsPerCall);
  }
  if (fault.silent_sender >= config_.n_senders) {
    return error(StatusCode::kInvalidArgument, "silent sender {} of {}", fault.silent_sender, config_.n_senders);
  }
  const int per_batch = std::max(1, kMaxOpsPerBatch / std::max(1, ops_per_round()));
  RoundFault batch_fault = fault;  // the fault silences the first round of the call only
  for (int i = 0; i < n_rounds; i += per_batch) {
    MSI_RETURN_IF_ERROR(run_batch(bytes, round_us + i, std::min(per_batch, n_rounds - i), batch_fault));
    batch_fault = {};
  }
  return Status::ok();
}

Status GpuM2NBase::run_batch(size_t bytes, float* round_us, int n_rounds, const RoundFault& fault) {
  const uint32_t gen = ++gate_gen_;
  const uint64_t gate_timeout_ns = 4 * timeout_ns() + 1000000000ull;
  {
    DeviceScope scope(config_.send_device);
    MSI_GPU_RETURN_IF_ERROR(launch_gate(gate_, gen, gate_timeout_ns, send_stream_));
  }
  {
    DeviceScope scope(config_.recv_device);
    MSI_GPU_RETURN_IF_ERROR(launch_gate(gate_, gen, gate_timeout_ns, recv_stream_));
  }
  auto enqueue_timed_round = [&](int i) -> Status {
    ++seq_;
    DeviceScope scope(config_.send_device);
    MSI_GPU_RETURN_IF_ERROR(cudaEventRecord(start_[i], send_stream_));
    MSI_RETURN_IF_ERROR(enqueue_round(bytes, seq_, i == 0 ? fault : RoundFault{}));
    MSI_GPU_RETURN_IF_ERROR(cudaEventRecord(end_[i], send_stream_));
    return Status::ok();
  };
  int n_enqueued = 0;
  auto enqueue_all = [&]() -> Status {
    for (; n_enqueued < n_rounds; ++n_enqueued) MSI_RETURN_IF_ERROR(enqueue_timed_round(n_enqueued));
    return Status::ok();
  };
  const Status enqueued = enqueue_all();
  {
    DeviceScope scope(config_.recv_device);
    MSI_GPU_RETURN_IF_ERROR(cudaEventRecord(recv_done_, recv_stream_));
  }
  // Open the gate even after an enqueue error, so what was queued drains.
  __atomic_store_n(gate_, gen, __ATOMIC_RELEASE);
  Status waited = wait_batch(n_enqueued);
  MSI_RETURN_IF_ERROR(enqueued);
  if (!waited.is_ok()) return waited;
  Status device = take_device_errors();
  if (!device.is_ok()) {
    MSI_RETURN_IF_ERROR(reset_counters());
    return device;
  }
  for (int i = 0; i < n_enqueued; ++i) {
    float ms = 0.0f;
    MSI_GPU_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start_[i], end_[i]));
    round_us[i] = ms * 1000.0f;
  }
  return Status::ok();
}

Status GpuM2NBase::wait_batch(int n_rounds) {
  const auto limit = std::chrono::nanoseconds(2 * timeout_ns() + 100000000ull);
  int done = 0;  // rounds known complete, in order
  auto progress = [&] {
    while (done < n_rounds && cudaEventQuery(end_[done]) == cudaSuccess) ++done;
    return done;
  };
  auto all_done = [&] {
    return progress() == n_rounds && cudaEventQuery(recv_done_) != cudaErrorNotReady;
  };
  if (bounded_poll(all_done, progress, limit)) {
    const cudaError_t a = cudaEventQuery(recv_done_);
    if (a != cudaSuccess) return detail::cuda_error("round on the receive device", a);
    if (n_rounds > 0) {
      const cudaError_t e = cudaEventQuery(end_[n_rounds - 1]);
      if (e != cudaSuccess) return detail::cuda_error("round on the send device", e);
    }
    return Status::ok();
  }
  // Stalled at round `done`: name who is behind, raise their flags so the queued waits drain.
  const uint32_t stalled_seq = seq_ - static_cast<uint32_t>(n_rounds - done) + 1;
  std::string diagnosis;
  MSI_RETURN_IF_ERROR(diagnose_and_raise(stalled_seq, &diagnosis));
  Status stall = on_stall(diagnosis);
  // Later rounds of the batch may wait on flags of their own sequence numbers: raise until drained,
  // a few times at most (a stall that raising cannot clear is a device that does not finish).
  bool drained = false;
  for (int attempt = 0; attempt < 3 && !drained; ++attempt) {
    drained = bounded_poll(all_done, progress, limit);
    if (drained) break;
    std::string ignored;
    MSI_RETURN_IF_ERROR(diagnose_and_raise(seq_ - static_cast<uint32_t>(n_rounds - done) + 1, &ignored));
  }
  if (!drained) broken_ = true;
  (void)take_device_errors();
  (void)reset_counters();
  return stall;
}

Status GpuM2NBase::on_stall(const std::string& diagnosis) {
  return Status(StatusCode::kDeadlineExceeded, diagnosis);
}

Status GpuM2NBase::diagnose_and_raise(uint32_t seq, std::string* diagnosis) {
  // Dispatch first: a combine flag behind a missing dispatch flag is a consequence, not a cause,
  // and raising only the cause lets the receivers reply for real.
  const size_t n = static_cast<size_t>(n_pairs());
  for (bool dispatch : {true, false}) {
    const int device = dispatch ? config_.recv_device : config_.send_device;
    cudaStream_t side = dispatch ? recv_side_ : send_side_;
    uint32_t* flags = dispatch ? dispatch_flags_ : combine_flags_;
    MSI_RETURN_IF_ERROR(copy_slice(device, side, host_flags_, flags, n * sizeof(uint32_t)));
    std::string behind;
    for (size_t p = 0; p < n; ++p) {
      if (seq_reached(host_flags_[p], seq)) continue;
      // dispatch flags are [s][r] (the receiver waits on the sender); combine flags [r][s].
      const uint32_t hi = static_cast<uint32_t>(p / (dispatch ? config_.n_receivers : config_.n_senders));
      const uint32_t lo = static_cast<uint32_t>(p % (dispatch ? config_.n_receivers : config_.n_senders));
      if (behind.size() < 400) behind += (behind.empty() ? "" : "; ") + pair_name(dispatch, lo, hi);
      host_flags_[p] = seq;
    }
    if (behind.empty()) continue;
    MSI_RETURN_IF_ERROR(copy_slice(device, side, flags, host_flags_, n * sizeof(uint32_t)));
    *diagnosis = fmt::format("{}: no flag within {} ms (round {}): {}", dispatch ? "dispatch" : "combine",
                             (2 * timeout_ns() + 100000000ull) / 1000000ull, seq, behind);
    return Status::ok();
  }
  *diagnosis = fmt::format("round {} stalled with every flag raised (a device did not finish)", seq);
  return Status::ok();
}

std::string GpuM2NBase::pair_name(bool dispatch, uint32_t waiter, uint32_t peer) const {
  return dispatch ? fmt::format("receiver {} waited for sender {}", waiter, peer)
                  : fmt::format("sender {} waited for receiver {}", waiter, peer);
}

Status GpuM2NBase::take_device_errors() {
  std::string message;
  for (int site : {kDispatchWait, kCombineWait}) {
    WaitError& e = errors_[site];
    if (__atomic_load_n(&e.claimed, __ATOMIC_ACQUIRE) == 0) continue;
    if (message.empty()) {
      message = fmt::format("{}: {} {} ms (round {})", site == kDispatchWait ? "dispatch" : "combine",
                            pair_name(site == kDispatchWait, e.waiter, e.peer), config_.timeout.count(), e.seq);
    }
    std::memset(static_cast<void*>(&e), 0, sizeof(e));
  }
  if (message.empty()) return Status::ok();
  return Status(StatusCode::kDeadlineExceeded, message);
}

Status GpuM2NBase::reset_counters() {
  {
    DeviceScope scope(config_.send_device);
    MSI_GPU_RETURN_IF_ERROR(cudaMemsetAsync(send_counters_, 0, n_pairs() * sizeof(uint32_t), send_stream_));
  }
  DeviceScope scope(config_.recv_device);
  MSI_GPU_RETURN_IF_ERROR(cudaMemsetAsync(recv_counters_, 0, n_pairs() * sizeof(uint32_t), recv_stream_));
  return Status::ok();
}

Status GpuM2NBase::copy_slice(int device, cudaStream_t side, void* dst, const void* src, size_t n) {
  DeviceScope scope(device);
  MSI_GPU_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, side));
  // A side-stream copy cannot wait behind a stalled round, so a plain sync is bounded here.
  MSI_GPU_RETURN_IF_ERROR(cudaStreamSynchronize(side));
  return Status::ok();
}

Status GpuM2NBase::write_payload(int sender, int receiver, const void* data, size_t n) {
  if (sender < 0 || sender >= config_.n_senders || receiver < 0 || receiver >= config_.n_receivers ||
      n > config_.max_bytes) {
    return Status(StatusCode::kInvalidArgument, "write_payload: pair or size out of range");
  }
  const size_t off = static_cast<size_t>(sender * config_.n_receivers + receiver) * slice_;
  return copy_slice(config_.send_device, send_side_, send_payload_ + off, data, n);
}

Status GpuM2NBase::read_dispatch_inbox(int sender, int receiver, void* out, size_t n) {
  if (sender < 0 || sender >= config_.n_senders || receiver < 0 || receiver >= config_.n_receivers ||
      n > config_.max_bytes) {
    return Status(StatusCode::kInvalidArgument, "read_dispatch_inbox: pair or size out of range");
  }
  const size_t off = static_cast<size_t>(sender * config_.n_receivers + receiver) * slice_;
  return copy_slice(config_.recv_device, recv_side_, out, dispatch_inbox_ + off, n);
}

Status GpuM2NBase::read_combine_inbox(int receiver, int sender, void* out, size_t n) {
  if (sender < 0 || sender >= config_.n_senders || receiver < 0 || receiver >= config_.n_receivers ||
      n > config_.max_bytes) {
    return Status(StatusCode::kInvalidArgument, "read_combine_inbox: pair or size out of range");
  }
  const size_t off = static_cast<size_t>(receiver * config_.n_senders + sender) * slice_;
  return copy_slice(config_.send_device, send_side_, out, combine_inbox_ + off, n);
}

}  // namespace msi::comm::gpu
