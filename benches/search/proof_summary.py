#!/usr/bin/env python3
"""The proof's table and plot (benches/search/proof.sh) from proof.jsonl.

Per commit and CPU: the search row (supernet steps, minutes, Kendall τ of the supernet's ranking
with the trained one), then per budget the searched and the uniform W4A8 student: bytes,
measured latency, held-out cosine and STS-B dev per seed with their mean and spread (max - min),
the mean of the agreement-set category means, and whether the searched one wins by more than
the larger spread. Writes an SVG of STS-B against bytes (each seed a dot, the mean a bar).
Standard library only.  Usage: proof_summary.py proof.jsonl [plot.svg]
"""
import json
import sys
from collections import defaultdict


def fmt(v, d=4):
    return "-" if v is None else f"{v:.{d}f}"


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return sum(xs) / len(xs), max(xs) - min(xs)


def svg(groups, path):
    pts = [(g["mb"], s) for g in groups for s in g["stsb"] if s is not None]
    if not pts:
        return
    w, h, pad = 560, 360, 50
    x0, x1 = min(p[0] for p in pts) * 0.9, max(p[0] for p in pts) * 1.1
    y0, y1 = min(p[1] for p in pts) - 0.01, max(p[1] for p in pts) + 0.01
    sx = lambda x: pad + (x - x0) / (x1 - x0) * (w - 2 * pad)
    sy = lambda y: h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad)
    colour = {"searched": "#d62728", "uniform": "#1f77b4"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">package MB (W4A8)</text>',
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" '
           f'text-anchor="middle">STS-B dev Spearman</text>']
    for t in range(5):
        y = y0 + (y1 - y0) * t / 4
        out.append(f'<text x="{pad - 4}" y="{sy(y) + 4}" text-anchor="end">{y:.3f}</text>')
        x = x0 + (x1 - x0) * t / 4
        out.append(f'<text x="{sx(x)}" y="{h - pad + 14}" text-anchor="middle">{x:.1f}</text>')
    for g in groups:
        c = colour[g["kind"]]
        vals = [s for s in g["stsb"] if s is not None]
        for s in vals:
            out.append(f'<circle cx="{sx(g["mb"])}" cy="{sy(s)}" r="3" fill="{c}"/>')
        if vals:
            m = sum(vals) / len(vals)
            out.append(f'<line x1="{sx(g["mb"]) - 8}" y1="{sy(m)}" x2="{sx(g["mb"]) + 8}" '
                       f'y2="{sy(m)}" stroke="{c}" stroke-width="2"/>')
    for i, (k, c) in enumerate(colour.items()):
        out.append(f'<circle cx="{w - 120}" cy="{pad + 14 * i}" r="4" fill="{c}"/>')
        out.append(f'<text x="{w - 110}" y="{pad + 14 * i + 4}">{k}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(path, plot=None):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    runs = defaultdict(list)
    for r in rows:
        runs[(r["commit"], r["cpu"])].append(r)
    groups_all = []
    for (commit, cpu), rs in runs.items():
        minutes = sum(r.get("minutes", 0) for r in rs)
        print(f"### commit {commit}, {cpu}: {minutes:.0f} min of this machine in all\n")
        for s in (r for r in rs if r["row"] == "search"):
            v = s.get("verification") or {}
            print(f"Search: {s['supernet_steps']} supernet steps ({s['supernet_seconds'] / 60:.0f} "
                  f"min), {s['minutes']:.0f} min with the verification. Kendall τ of the supernet "
                  f"cosine with the trained cosine over {len(v.get('candidates', []))} "
                  f"candidates ({v.get('steps', '-')} steps each): {fmt(v.get('tau'), 3)}; of the "
                  f"proxy loss {fmt(v.get('tau_proxy_loss'), 3)}; within budgets "
                  f"{fmt(v.get('tau_within_budgets'), 3)}.\n")
        students = [r for r in rs if r["row"] == "student"]
        if not students:
            continue
        print("| budget | kind | architecture | steps (distil + KDLSQ) | MB | ms | cosine per seed | "
              "mean ± spread | "
              "STS-B per seed | mean ± spread | categories (mean) | minutes |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        by = defaultdict(list)
        for r in students:
            by[(r["budget"], r["kind"], r["steps"], r["quant_steps"])].append(r)
        order = sorted({r["budget"] for r in students}, key=lambda b: float(b.split("MB")[0]))
        verdicts = []
        for b in order:
            res = {}
            for key in sorted(k for k in by if k[0] == b):
                _, kind, steps, qsteps = key
                g = sorted(by[key], key=lambda r: r["seed"])
                cos, st = [r["cosine"] for r in g], [r["stsb"] for r in g]
                cats = [sum(r["categories"].values()) / len(r["categories"]) for r in g
                        if r["categories"]]
                mb = sum(r["bytes"] for r in g) / len(g) / 1e6
                ms = sum(r["measured_ms"] for r in g) / len(g)
                res[(kind, steps)] = (stats(cos), stats(st), ms, mb)
                groups_all.append({"kind": kind, "mb": mb, "stsb": st})
                (cm, cs), (sm, ss) = stats(cos), stats(st)
                arch = g[0]["arch"].replace("|", "\\|")
                print(f"| {b} | {kind} | `{arch}` | {steps} + {qsteps} | {mb:.2f} | {ms:.2f} | "
                      f"{', '.join(fmt(c) for c in cos)} | {fmt(cm)} ± {fmt(cs)} | "
                      f"{', '.join(fmt(x) for x in st)} | {fmt(sm)} ± {fmt(ss)} | "
                      f"{fmt(stats(cats)[0])} | {sum(r['minutes'] for r in g):.0f} |")
            for (kind, steps), s in res.items():
                if kind != "searched":
                    continue
                for (ukind, usteps), u in res.items():
                    if ukind != "uniform":
                        continue
                    extra = "" if usteps == steps else f" given {usteps} steps to {steps}"
                    for i, what in ((1, "STS-B"), (0, "held-out cosine")):
                        if s[i][0] is None or u[i][0] is None:
                            continue
                        gain, spread = s[i][0] - u[i][0], max(s[i][1], u[i][1])
                        word = "wins" if gain > spread else "loses" if -gain > spread else "ties"
                        verdicts.append(
                            f"{b}: search {word} on {what} against uniform{extra} ({gain:+.4f}, "
                            f"seed spread {spread:.4f}; bytes {100 * (s[3] / u[3] - 1):+.1f} %, "
                            f"measured latency {100 * (s[2] / u[2] - 1):+.1f} %)")
        print()
        for v in verdicts:
            print(f"- {v}")
        print()
    if plot and groups_all:
        svg(groups_all, plot)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
