#!/usr/bin/env python3
"""The paper's pipeline closed form against measured disaggregated decode steps.

For each `msinfer bench --json` result of a disaggregated run (attention and experts on separate
GPUs), takes the measured stage times — T_a = the attention GPU's busy time per step / (m·L),
T_e = the busiest expert GPU's busy time per step / (m·L), both from the bench's profiled steps
(profile.step_ms_with_marks × busy_fraction) —
and evaluates T_total = (T_a + T_e + 2·T_c) + T_f·(m·L − 1), T_f = max(T_a, T_e, T_c), against the
measured median step. m = 1 has no pipeline: the step is L·(T_a + T_e + 2·T_c).

  tools/pipeline_check.py [--tc-ms 0.02] result.json...
"""
import argparse
import json
import sys


def check(path, tc):
    r = json.load(open(path))
    if "busy_fraction" not in r:
        return None
    m, L = r["micro_batches"], r["layers"]
    step = r["decode"]["step_ms"]["median"]
    busy_a = r["busy_fraction"]["attention_device"]
    busy_e = r["busy_fraction"]["busiest_expert_device"]
    # Busy fractions are of the profiled steps (device-timed marks): scale by their length.
    marked = r["profile"]["step_ms_with_marks"]
    ta, te = busy_a * marked / (m * L), busy_e * marked / (m * L)
    tf = max(ta, te, tc)
    pred = L * (ta + te + 2 * tc) if m == 1 else (ta + te + 2 * tc) + tf * (m * L - 1)
    return {"file": path, "model": r["model"].split("/")[-1], "batch": r["batch_size"], "context": r["input_len"],
            "m": m, "layers": L, "T_a_ms": ta, "T_e_ms": te, "T_c_ms": tc, "predicted_ms": pred,
            "measured_ms": step, "measured_over_predicted": step / pred, "attention_busy": busy_a,
            "expert_busy": busy_e, "tokens_per_s": r["decode"]["throughput_tokens_per_s"],
            # The same device-timed busy time per step, over the timed (unprofiled) median step: the
            # profiled steps run longer (the expert side waits for each unit's clock on the host).
            "attention_busy_of_step": ta * m * L / step, "expert_busy_of_step": te * m * L / step,
            "profiled_step_ms": marked}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tc-ms", type=float, default=0.02, help="one transfer, ms (default: the p2p round, 0.02)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    rows = [x for x in (check(p, a.tc_ms) for p in a.results) if x]
    if a.json:
        for x in rows:
            print(json.dumps(x))
        return 0
    print("| model | batch | context | m | T_a ms | T_e ms | predicted ms | measured ms | measured/predicted "
          "| attention busy (profiled step / timed step) | expert busy (profiled / timed) | tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['model']} | {x['batch']} | {x['context']} | {x['m']} | {x['T_a_ms']:.3f} | {x['T_e_ms']:.3f} | "
              f"{x['predicted_ms']:.2f} | {x['measured_ms']:.2f} | {x['measured_over_predicted']:.3f} | "
              f"{100 * x['attention_busy']:.0f}% / {100 * x['attention_busy_of_step']:.0f}% | "
              f"{100 * x['expert_busy']:.0f}% / {100 * x['expert_busy_of_step']:.0f}% | {x['tokens_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
