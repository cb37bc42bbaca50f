#!/usr/bin/env python3
"""The layer-map study's table (benches/search/run.sh maps) from maps.jsonl, as Markdown.

Per commit: the proxy search (maps scored, the five best and uniform), then the final runs of the
best map, `uniform` and `last`: held-out cosine and STS-B dev per seed, their mean and spread
(max - min over seeds), and whether the searched map beats uniform by more than the larger of
the two spreads. Standard library only.  Usage: maps_summary.py maps.jsonl
"""
import json
import sys
from collections import defaultdict


def fmt(v):
    return "-" if v is None else f"{v:.4f}"


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by_commit = defaultdict(list)
    for r in rows:
        by_commit[r["commit"]].append(r)
    for commit, rs in by_commit.items():
        for s in (r for r in rs if r["row"] == "search"):
            print(f"### commit {commit}: proxy search ({s['cpu']})\n")
            how = "every map" if s["exhaustive"] else "genetic search"
            print(f"{s['evaluated']} of {s['space']} monotone maps scored ({how}), "
                  f"{s['proxy_steps']} proxy steps each, {s['minutes']:.0f} min.\n")
            print("| map | proxy cosine | proxy STS-B |\n|---|---|---|")
            for m, c, st in s["ranking"][:5]:
                print(f"| {m} | {fmt(c)} | {fmt(st)} |")
            u = s["uniform"]
            print(f"| {u['map']} (uniform) | {fmt(u['cosine'])} | {fmt(u['stsb'])} |\n")
        finals = [r for r in rs if r["row"] == "final"]
        if not finals:
            continue
        print(f"### commit {commit}: final distillation ({finals[0]['cpu']})\n")
        print("| map | steps | seeds | cosine per seed | mean | spread | STS-B per seed | mean "
              "| spread |\n|---|---|---|---|---|---|---|---|---|")
        groups = defaultdict(list)
        for r in finals:
            groups[(r["map"], r["steps"], r["searched"])].append(r)
        stats = {}
        for (m, steps, searched), g in sorted(groups.items()):
            g.sort(key=lambda r: r["seed"])
            cos = [r["cosine"] for r in g]
            st = [r["stsb"] for r in g]
            stats[m] = (sum(cos) / len(cos), max(cos) - min(cos), sum(st) / len(st),
                        max(st) - min(st), searched)
            name = f"{m} (searched)" if searched else m
            print(f"| {name} | {steps} | {len(g)} | {', '.join(fmt(c) for c in cos)} | "
                  f"{fmt(stats[m][0])} | {fmt(stats[m][1])} | {', '.join(fmt(x) for x in st)} | "
                  f"{fmt(stats[m][2])} | {fmt(stats[m][3])} |")
        best = [v for v in stats.values() if v[4]]
        searched = [r["map"] for r in finals if r["searched"]]
        uniform = [",".join(map(str, r["uniform"]["map"])) for r in rs if r["row"] == "search"]
        if searched and uniform and searched[0] in (uniform[0], "uniform"):
            print(f"\nThe search's best map is uniform's ({uniform[0]}).")
        elif best and "uniform" in stats:
            b, u = best[0], stats["uniform"]
            for i, what in ((0, "held-out cosine"), (2, "STS-B")):
                gain, spread = b[i] - u[i], max(b[i + 1], u[i + 1])
                verdict = "beats" if gain > spread else "does not beat"
                print(f"\nThe searched map {verdict} uniform on {what}: {gain:+.4f} against a "
                      f"seed spread of {spread:.4f}.")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
