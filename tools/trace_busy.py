#!/usr/bin/env python3
"""Busy fraction of each device from a Chrome trace written by `msinfer generate/serve --trace`.

Device tracks ("<worker> (device)", tid >= 1000) hold device-timed spans (CUDA events on the
worker's stream). Per track, over the window from the first span of step --from-step to the last
span of the trace: busy = the union of its compute spans (attention, experts, combine, logits +
sampling, whole graph steps) / the window. `wait+combine` spans (the attention device waiting for
the experts' partial sums, then adding them) are not counted as busy; their share is printed
separately, as an upper bound on the combine's own time.

  tools/trace_busy.py trace.json [--from-step 2] [--json]
"""
import argparse
import json
import sys

WAIT_KINDS = ("wait+combine", "wait+experts")


def kind_of(name):
    at = name.rfind(" L")
    return name[:at] if at >= 0 else name


def union_ms(spans):
    total, end = 0.0, None
    for b, e in sorted(spans):
        if end is None or b > end:
            total += e - b
            end = e
        elif e > end:
            total += e - end
            end = e
    return total / 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--from-step", type=int, default=2, help="first step in the window (default 2: after prefill)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    events = json.load(open(a.trace))["traceEvents"]
    names = {ev["tid"]: ev["args"]["name"] for ev in events if ev.get("ph") == "M" and ev.get("name") == "thread_name"}
    tracks = {}
    for ev in events:
        if ev.get("ph") != "X" or ev.get("cat") != "device":
            continue
        step = ev.get("args", {}).get("step", 0)
        if step < a.from_step:
            continue
        tracks.setdefault(ev["tid"], []).append((kind_of(ev["name"]), ev["ts"], ev["ts"] + ev["dur"]))
    if not tracks:
        print("no device spans in the window", file=sys.stderr)
        return 1
    begin = min(b for spans in tracks.values() for _, b, _ in spans)
    end = max(e for spans in tracks.values() for _, _, e in spans)
    window_ms = (end - begin) / 1000.0
    rows = []
    for tid in sorted(tracks):
        spans = tracks[tid]
        busy = union_ms([(b, e) for k, b, e in spans if k not in WAIT_KINDS])
        wait = union_ms([(b, e) for k, b, e in spans if k in WAIT_KINDS])
        rows.append({"track": names.get(tid, str(tid)), "window_ms": window_ms, "busy_ms": busy,
                     "busy_fraction": busy / window_ms if window_ms > 0 else 0.0,
                     "wait_spans_fraction": wait / window_ms if window_ms > 0 else 0.0, "spans": len(spans)})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"window: {window_ms:.2f} ms from step {a.from_step}")
    for r in rows:
        print(f"{r['track']:40s} busy {100 * r['busy_fraction']:5.1f}%  (wait+ spans {100 * r['wait_spans_fraction']:5.1f}%)"
              f"  {r['spans']} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
