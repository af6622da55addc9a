#!/usr/bin/env python3
"""How far transformers itself moves from a fixture's float32 reference when it runs in bfloat16.

For each case of a fixture's reference (reference-recomputed.json when present), runs the model
in bfloat16 on the given device over prompt + reference output (teacher forcing) and reports the
relative L2 distance of each step's logits from the reference's, and how many greedy tokens
differ. The bound a bf16 engine can be held to is of this order (docs/perf.md).

    python3 tools/bf16_gap.py tests/data/tiny-mixtral [--device cuda] [--json]
"""
import argparse
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {}
    for d in args.model_dirs:
        ref_path = os.path.join(d, "reference-recomputed.json")
        if not os.path.exists(ref_path):
            ref_path = os.path.join(d, "reference.json")
        with open(ref_path) as f:
            ref = json.load(f)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).to(args.device).eval()
        worst, rels, flips = 0.0, [], 0
        for case in ref["cases"]:
            ids = case["prompt_ids"] + case["output_ids"]
            with torch.no_grad():
                out = model(torch.tensor([ids], device=args.device)).logits[0].float().cpu()
            p = len(case["prompt_ids"])
            for j, ref_logits in enumerate(case["logits"]):
                r = torch.tensor(ref_logits)
                got = out[p - 1 + j]
                rel = float(torch.linalg.norm(got - r) / torch.linalg.norm(r))
                rels.append(rel)
                worst = max(worst, rel)
                if int(got.argmax()) != case["output_ids"][j]:
                    flips += 1
        rels.sort()
        results[os.path.basename(os.path.normpath(d))] = {
            "reference": os.path.basename(ref_path), "steps": len(rels), "rel_l2_max": worst,
            "rel_l2_median": rels[len(rels) // 2], "greedy_token_differences": flips}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            print(f"{name}: bf16 vs float32 reference over {r['steps']} steps: relative L2 median "
                  f"{r['rel_l2_median']:.3g}, max {r['rel_l2_max']:.3g}; "
                  f"{r['greedy_token_differences']} greedy tokens differ")


if __name__ == "__main__":
    sys.exit(main())
