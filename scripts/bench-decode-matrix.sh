#!/bin/bash
# The decode-step roofline matrix of docs/perf.md (issue 6): Mixtral-8x7B (8 of 32 layers) and
# Qwen3-30B-A3B (16 of 48 layers) with dummy weights on one GPU, batch 1/8/64/256 × context
# 1K/4K, plus op-by-op (--enforce-eager) runs at batch 1 and 8. One JSON per run in OUT_DIR.
#   scripts/bench-decode-matrix.sh MSINFER OUT_DIR [DEVICE]
set -euo pipefail
msinfer=$1
out=$2
device=${3:-cuda:0}
mkdir -p "$out"
run() {  # name model layers batch context [extra flags]
  local name=$1 model=$2 layers=$3 batch=$4 ctx=$5
  shift 5
  "$msinfer" bench --model "bench/configs/$model" --load-format dummy --device "$device" \
    --hf-overrides "{\"num_hidden_layers\": $layers}" --batch-size "$batch" --input-len "$ctx" \
    --output-len 32 --no-progress --result-file "$out/$name.json" "$@" >"$out/$name.txt"
  echo "$name: $(grep -E 'decode step|floor ' "$out/$name.txt" | tr -s ' ' | tr '\n' ' ')"
}
for spec in "mixtral mixtral-8x7b 8" "qwen3 qwen3-30b-a3b 16"; do
  set -- $spec
  for batch in 1 8 64 256; do
    for ctx in 1024 4096; do
      run "$1-b$batch-c$ctx" "$2" "$3" "$batch" "$ctx"
    done
  done
  for batch in 1 8; do
    run "$1-b$batch-c1024-eager" "$2" "$3" "$batch" 1024 --enforce-eager
  done
done
