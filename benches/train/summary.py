#!/usr/bin/env python3
"""The training-speed table of benches/train/results.jsonl: per CPU, commit and case, bertling's
and PyTorch's tokens/s and their ratio (measured in the same run of benches/train/run.sh)."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if len(sys.argv) > 1 else []
groups = {}
for r in rows:
    groups.setdefault((r["cpu"], r["commit"], r["case"]), {})[r["impl"]] = r
print("| date | CPU | commit | case | batch x seq | threads | bertling tok/s | PyTorch tok/s "
      "| bertling / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|")
for (cpu, commit, case), g in groups.items():
    b, p = g.get("bertling"), g.get("pytorch")
    any_row = b or p
    ratio = f"{b['tokens_per_s'] / p['tokens_per_s']:.2f}x" if b and p else "-"
    print(f"| {any_row['date']} | {cpu} | {commit} | {case} | {any_row['batch']} x "
          f"{any_row['seq']} | {any_row['threads']} | {b['tokens_per_s'] if b else '-'} | "
          f"{p['tokens_per_s'] if p else '-'} | {ratio} |")
