#!/usr/bin/env python3
"""Summarises repeated latency-predictor checks (benches/search/run.sh latency).

Reads DIR/pred-K.json (`bertling predict-latency --json` with table K, no measuring) and
DIR/meas-K.json (`--measure`, the same architectures timed as `bertling bench` times them).
The reference latency of each architecture is the median of its measured medians over all
measuring runs, so the machine's run-to-run noise is reported apart from the predictor's error.

    python3 benches/search/latency_stats.py DIR
"""
import glob
import json
import os
import statistics as st
import sys


def rows(path):
    out = []
    for line in open(path):
        if line.strip():
            row = json.loads(line)
            if "summary" not in row:
                out.append(row)
    return out


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0] * len(v)
    for k, i in enumerate(order):
        r[i] = k
    return r


def spearman(a, b):
    ra, rb, n = ranks(a), ranks(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def main():
    d = sys.argv[1]
    meas = [rows(f) for f in sorted(glob.glob(os.path.join(d, "meas-*.json")))]
    preds = sorted(glob.glob(os.path.join(d, "pred-*.json")))
    if not meas or not preds:
        sys.exit(f"{d}: no meas-*.json or pred-*.json")
    n = len(meas[0])
    ref = [st.median(m[i]["measured_ms"] for m in meas) for i in range(n)]
    noise = st.mean(abs(m[i]["measured_ms"] - ref[i]) / ref[i] for m in meas for i in range(n))
    print(f"{n} architectures, {len(meas)} measuring runs: a run's latency differs from the")
    print(f"median of the runs by {100 * noise:.1f}% on average (the machine's noise)")
    print("table  mean abs error  mean error  max error  rank correlation")
    maes = []
    for k, f in enumerate(preds, 1):
        p = [r["predicted_ms"] for r in rows(f)]
        e = [(p[i] - ref[i]) / ref[i] for i in range(n)]
        mae = st.mean(abs(x) for x in e)
        maes.append(mae)
        print(f"{k:>5}  {100 * mae:>13.1f}%  {100 * st.mean(e):>+9.1f}%  "
              f"{100 * max(abs(x) for x in e):>8.1f}%  {spearman(p, ref):>16.3f}")
    print(f"median over tables: mean absolute error {100 * st.median(maes):.1f}%")


if __name__ == "__main__":
    main()
