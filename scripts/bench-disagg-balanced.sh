#!/bin/bash
# Issue 7's balanced point (docs/perf.md): attention on cuda:0, experts on cuda:1, batch 256, the
# context chosen so that T_a ≈ T_e; m = 1..3, plus one GPU and the experts split over both GPUs for
# comparison. Then tools/pipeline_check.py OUT/*disagg*.json evaluates the closed form.
#   scripts/bench-disagg-balanced.sh MSINFER OUT_DIR
set -euo pipefail
msinfer=$1
out=$2
mkdir -p "$out"
run() {  # name model layers context [flags]
  local name=$1 model=$2 layers=$3 ctx=$4
  shift 4
  "$msinfer" bench --model "bench/configs/$model" --load-format dummy --hf-overrides "{\"num_hidden_layers\": $layers}" \
    --batch-size 256 --input-len "$ctx" --output-len 24 --no-progress --result-file "$out/$name.json" "$@" >"$out/$name.txt"
  echo "$name: $(grep -E 'decode step' "$out/$name.txt" | tr -s ' ')"
}
for spec in "mixtral mixtral-8x7b 8 4864" "qwen3 qwen3-30b-a3b 16 4096"; do
  set -- $spec
  for m in 1 2 3; do
    run "$1-disagg-c$4-m$m" "$2" "$3" "$4" --attention-devices cuda:0 --expert-devices cuda:1 --micro-batches "$m"
  done
  run "$1-one-c$4" "$2" "$3" "$4" --device cuda:0 --enforce-eager
  run "$1-ep2-c$4-m1" "$2" "$3" "$4" --attention-devices cuda:0 --expert-devices cuda:0,cuda:1 --micro-batches 1
done
python3 "$(dirname "$0")/../tools/pipeline_check.py" "$out"/*disagg*.json
