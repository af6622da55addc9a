#!/usr/bin/env python3
"""Renders an msinfer Chrome trace (msinfer generate --trace FILE) as a timeline picture.

One row per worker; compute spans are coloured by micro-batch (attention in solid colours,
experts hatched), waits are grey. Shows the ping-pong pipeline: attention of micro-batch i
running while the experts work on micro-batch i-1.

  /usr/bin/python3 tools/render_trace.py trace.json out.png [--step N] [--steps K]

Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--step", type=int, default=1, help="first step to draw (default 1: past warm-up)")
    ap.add_argument("--steps", type=int, default=1, help="how many steps to draw")
    args = ap.parse_args()

    events = json.load(open(args.trace))["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    spans = [e for e in events if e.get("ph") == "X"
             and args.step <= e["args"]["step"] < args.step + args.steps]
    if not spans:
        raise SystemExit("no spans in the chosen steps")
    t0 = min(e["ts"] for e in spans)
    tids = sorted(names)
    colors = plt.get_cmap("tab10").colors

    fig, ax = plt.subplots(figsize=(14, 1.0 + 0.7 * len(tids)))
    for row, tid in enumerate(tids):
        for e in (e for e in spans if e["tid"] == tid):
            mb = e["args"]["micro_batch"]
            start, width = (e["ts"] - t0) / 1e3, e["dur"] / 1e3
            if e["cat"] == "wait":
                ax.broken_barh([(start, width)], (row - 0.15, 0.3), color="0.85")
                continue
            expert = e["name"].startswith("experts")
            color = colors[mb % len(colors)] if mb >= 0 else "0.4"
            ax.broken_barh([(start, width)], (row - 0.35, 0.7), facecolor=color, edgecolor="black",
                           linewidth=0.3, hatch="//" if expert else None)
            if width > 0.02 * ((max(s["ts"] + s["dur"] for s in spans) - t0) / 1e3) and e["args"]["layer"] >= 0:
                ax.text(start + width / 2, row, f"L{e['args']['layer']}", ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(tids)))
    ax.set_yticklabels([names[t] for t in tids])
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    n_mb = max(e["args"]["micro_batch"] for e in spans) + 1
    legend = [Patch(facecolor=colors[i % len(colors)], label=f"micro-batch {i}") for i in range(n_mb)]
    legend += [Patch(facecolor="white", edgecolor="black", hatch="//", label="expert compute"),
               Patch(facecolor="0.85", label="waiting")]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=len(legend), fontsize=8)
    ax.set_title(f"msinfer ping-pong pipeline, step {args.step}" + (f"–{args.step + args.steps - 1}" if args.steps > 1 else ""))
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)


if __name__ == "__main__":
    main()
