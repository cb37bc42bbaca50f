#!/usr/bin/env python3
"""The training-speed table of benches/train/results.jsonl: per CPU, commit and case, the median
over rounds of bertling's and PyTorch's tokens/s (each round timed both, one after the other, in
one run of benches/train/run.sh), the ratio of the medians and the range of the rounds' ratios."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if len(sys.argv) > 1 else []
groups = {}
for r in rows:
    g = groups.setdefault((r["cpu"], r["commit"], r["case"]), {"first": r, "runs": {}})
    g["runs"].setdefault(r.get("round", 1), {})[r["impl"]] = r["tokens_per_s"]
print("| date | CPU | commit | case | batch x seq | threads | rounds | bertling tok/s | "
      "PyTorch tok/s | bertling / PyTorch (rounds' range) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (cpu, commit, case), g in groups.items():
    runs = g["runs"].values()
    b = [r["bertling"] for r in runs if "bertling" in r]
    p = [r["pytorch"] for r in runs if "pytorch" in r]
    ratios = [r["bertling"] / r["pytorch"] for r in runs if len(r) == 2]
    mb = statistics.median(b) if b else None
    mp = statistics.median(p) if p else None
    ratio = f"{mb / mp:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if mb and mp else "-"
    f = g["first"]
    print(f"| {f['date']} | {cpu} | {commit} | {case} | {f['batch']} x {f['seq']} | "
          f"{f['threads']} | {len(runs)} | {mb or '-'} | {mp or '-'} | {ratio} |")
