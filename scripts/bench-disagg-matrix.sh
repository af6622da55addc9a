#!/bin/bash
# Issue 7's decode measurements on two GPUs (docs/perf.md): Mixtral-8x7B (8 of 32 layers) and
# Qwen3-30B-A3B (16 of 48 layers), dummy weights, batch B, context C: one GPU; attention on
# cuda:0 with experts on cuda:1 at m = 1..4; experts split over both GPUs (colocated EP) at m = 1, 2.
#   scripts/bench-disagg-matrix.sh MSINFER OUT_DIR [BATCH] [CONTEXT]
set -euo pipefail
msinfer=$1
out=$2
batch=${3:-256}
ctx=${4:-1024}
mkdir -p "$out"
run() {  # name model layers [flags]
  local name=$1 model=$2 layers=$3
  shift 3
  "$msinfer" bench --model "bench/configs/$model" --load-format dummy --hf-overrides "{\"num_hidden_layers\": $layers}" \
    --batch-size "$batch" --input-len "$ctx" --output-len 24 --no-progress --result-file "$out/$name.json" "$@" >"$out/$name.txt"
  echo "$name: $(grep -E 'decode step|throughput' "$out/$name.txt" | tr -s ' ' | tr '\n' ' ')"
}
for spec in "mixtral mixtral-8x7b 8" "qwen3 qwen3-30b-a3b 16"; do
  set -- $spec
  run "$1-one-gpu" "$2" "$3" --device cuda:0 --enforce-eager
  for m in 1 2 3 4; do
    run "$1-disagg-m$m" "$2" "$3" --attention-devices cuda:0 --expert-devices cuda:1 --micro-batches "$m"
  done
  for m in 1 2; do
    run "$1-ep2-m$m" "$2" "$3" --attention-devices cuda:0 --expert-devices cuda:0,cuda:1 --micro-batches "$m"
  done
done
