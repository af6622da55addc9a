// The record a device-side wait leaves when it gives up, and the spin it gives up in.
//
// Records live in mapped pinned host memory, one per wait site, so the host reads them after the
// kernel ends without a copy; the first wait to time out at a site claims the record (a system-
// scope CAS), later ones leave it, so the report names the first silent peer.
#pragma once

#include <cstdint>

namespace msi::comm::gpu {

enum WaitSite : uint32_t {
  kDispatchWait = 0,  // a receiver waiting for a sender's dispatch flag (on the receive device)
  kCombineWait = 1,   // a sender waiting for a receiver's combine flag (on the send device)
  kNumWaitSites = 2,
};

struct WaitError {
  uint32_t claimed;  // 0: no timeout at this site since the host last cleared it
  uint32_t waiter;   // receiver index (kDispatchWait) or sender index (kCombineWait)
  uint32_t peer;     // the silent one: sender (kDispatchWait) or receiver (kCombineWait)
  uint32_t seq;      // the round's sequence number the waiter needed
};

// True when `a` is at or past `b`, across the 2^32 wrap.
__host__ __device__ inline bool seq_reached(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) >= 0;
}

#ifdef __CUDACC__

__device__ inline uint64_t global_timer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ inline uint32_t load_acquire_sys(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ inline void store_release_sys(uint32_t* p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// Spins until *flag reaches seq or timeout_ns pass; on timeout claims `err` (if unclaimed) with
// the waiter and peer and returns false. Called by one thread per flag.
__device__ inline bool wait_flag(const uint32_t* flag, uint32_t seq, uint64_t timeout_ns, WaitError* err,
                                 uint32_t waiter, uint32_t peer) {
  const uint64_t t0 = global_timer_ns();
  while (!seq_reached(load_acquire_sys(flag), seq)) {
    if (global_timer_ns() - t0 > timeout_ns) {
      if (atomicCAS_system(&err->claimed, 0u, 1u) == 0u) {
        err->waiter = waiter;
        err->peer = peer;
        err->seq = seq;
        __threadfence_system();
      }
      return false;
    }
  }
  return true;
}

#endif  // __CUDACC__

}  // namespace msi::comm::gpu
