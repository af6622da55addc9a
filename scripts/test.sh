#!/usr/bin/env bash
# Configures, builds and runs every test that runs without a GPU (tests labelled `gpu` skip
# themselves where there is none). ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/fetch-test-deps.sh
cmake -G Ninja -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
# Where nvcc is present, compile the CUDA backend too (it cannot run here), so it cannot rot.
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
if [ -x "$NVCC" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR-cuda" -DCMAKE_BUILD_TYPE=Release -DMSI_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" >/dev/null
  cmake --build "$BUILD_DIR-cuda" -j "$(nproc)" --target msinfer_backend_cuda msinfer_comm_gpu
fi
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600
