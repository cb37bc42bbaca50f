#!/usr/bin/env python3
"""Alternates rounds of ONNX Runtime and bertling on the same shapes; prints medians and ratios.

Called by compare_ort.sh. Each pair is (label, bertling model, ONNX model). Each round runs
bench_ort.py once per ONNX model (all shapes) and `bertling bench` once per model and shape;
the reported time per engine and shape is the median over rounds of each round's median, so
slow drift of a shared machine hits both engines alike. Peak RSS is measured per process
(os.wait4): ONNX Runtime runs every shape in one process, bertling one process per shape, so
both report the peak of the largest shape.
"""
import argparse, json, os, statistics, subprocess, sys

SHAPES = [(1, 16), (1, 128), (8, 128)]


def run_rss(cmd):
    """Runs cmd, returning (stdout, peak RSS in MB of that process)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return out, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bertling", required=True)
    ap.add_argument("--model", help="bertling package or HF directory (single-pair mode)")
    ap.add_argument("--bench-ort", required=True)
    ap.add_argument("--ort-model", default=None, help="ONNX file (default: the fp32 anchor)")
    ap.add_argument("--pair", action="append", default=[],
                    help="LABEL=BERTLING_MODEL@ONNX_FILE; repeat for several (replaces --model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="print one JSON line per pair and shape")
    a = ap.parse_args()
    default_onnx = os.path.join(os.path.dirname(a.bench_ort), "onnx", "all-MiniLM-L6-v2.fp32.onnx")
    pairs = []
    for p in a.pair:
        label, rest = p.split("=", 1)
        model, onnx = rest.rsplit("@", 1)
        pairs.append((label, model, onnx))
    if not pairs:
        if not a.model:
            sys.exit("give --model or --pair")
        pairs = [("bertling", a.model, a.ort_model or default_onnx)]
    onnx_files = sorted({p[2] for p in pairs})
    ours = {(p[0], s): [] for p in pairs for s in SHAPES}
    ort = {(f, s): [] for f in onnx_files for s in SHAPES}
    rss_ours = {p[0]: 0.0 for p in pairs}
    rss_ort = {f: 0.0 for f in onnx_files}
    for r in range(a.rounds):
        for f in onnx_files:
            out, rss = run_rss([sys.executable, a.bench_ort, "--threads", str(a.threads), "--runs", str(a.runs), "--model", f])
            rss_ort[f] = max(rss_ort[f], rss)
            for line in out.splitlines():
                d = json.loads(line)
                ort[(f, (d["batch"], d["seq"]))].append(d["median_ms"])
        for label, model, _ in pairs:
            for b, s in SHAPES:
                out, rss = run_rss([a.bertling, "bench", "--model", model, "--batch", str(b), "--seq", str(s),
                                    "--threads", str(a.threads), "--runs", str(a.runs), "--json"])
                rss_ours[label] = max(rss_ours[label], rss)
                ours[(label, (b, s))].append(json.loads(out)["median_ms"])
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    rows = []
    for label, model, onnx in pairs:
        for s in SHAPES:
            o, x = statistics.median(ours[(label, s)]), statistics.median(ort[(onnx, s)])
            rows.append({"pair": label, "onnx": os.path.basename(onnx), "batch": s[0], "seq": s[1],
                         "threads": a.threads, "bertling_ms": round(o, 3), "ort_ms": round(x, 3),
                         "ratio": round(o / x, 3), "bertling_rss_mb": round(rss_ours[label], 1),
                         "ort_rss_mb": round(rss_ort[onnx], 1)})
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{a.threads} threads, {a.rounds} alternating rounds of {a.runs} runs; ratio = bertling / ONNX Runtime "
          f"(below 1: bertling is faster)\n")
    print("| bertling | ONNX Runtime | shape | bertling ms | ORT ms | ratio | peak RSS MB (bertling / ORT) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pair']} | {r['onnx']} | b{r['batch']} x s{r['seq']} | {r['bertling_ms']:.2f} | "
              f"{r['ort_ms']:.2f} | {r['ratio']:.2f} | {r['bertling_rss_mb']:.0f} / {r['ort_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
