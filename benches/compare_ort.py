#!/usr/bin/env python3
"""Alternates rounds of ONNX Runtime and bertling on the same shapes; prints medians and ratios.

Called by compare_ort.sh. Each round runs bench_ort.py once (all shapes) and `bertling bench`
once per shape; the reported time per engine and shape is the median over rounds of each
round's median, so slow drift of a shared machine hits both engines alike.
"""
import argparse, json, statistics, subprocess, sys

SHAPES = [(1, 16), (1, 128), (8, 128)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bertling", required=True)
    ap.add_argument("--model", required=True, help="bertling package or HF directory")
    ap.add_argument("--bench-ort", required=True)
    ap.add_argument("--ort-model", default=None, help="ONNX file (default: the fp32 anchor)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="print one JSON line per shape")
    a = ap.parse_args()
    ours = {s: [] for s in SHAPES}
    ort = {s: [] for s in SHAPES}
    for r in range(a.rounds):
        cmd = [sys.executable, a.bench_ort, "--threads", str(a.threads), "--runs", str(a.runs)]
        if a.ort_model:
            cmd += ["--model", a.ort_model]
        for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines():
            d = json.loads(line)
            ort[(d["batch"], d["seq"])].append(d["median_ms"])
        for b, s in SHAPES:
            out = subprocess.run([a.bertling, "bench", "--model", a.model, "--batch", str(b), "--seq", str(s),
                                  "--threads", str(a.threads), "--runs", str(a.runs), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            ours[(b, s)].append(json.loads(out)["median_ms"])
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    rows = []
    for s in SHAPES:
        o, x = statistics.median(ours[s]), statistics.median(ort[s])
        rows.append({"batch": s[0], "seq": s[1], "threads": a.threads, "bertling_ms": round(o, 3),
                     "ort_ms": round(x, 3), "ratio": round(o / x, 3)})
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"model: {a.model}\nanchor: {a.ort_model or 'all-MiniLM-L6-v2.fp32.onnx'}, {a.threads} threads, "
          f"{a.rounds} alternating rounds of {a.runs} runs\n")
    print("| shape | bertling ms | ONNX Runtime ms | ratio (bertling / ORT) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| b{r['batch']} x s{r['seq']} | {r['bertling_ms']:.2f} | {r['ort_ms']:.2f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
