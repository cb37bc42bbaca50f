#!/usr/bin/env python3
"""The downstream-task table of benches/tasks/run.sh: one row per package of a task directory
(teacher first), from its eval/attack/bench JSON files. Usage: summary.py DIR"""
import json
import pathlib
import sys


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(d):
    d = pathlib.Path(d)
    task = d.name
    names = sorted(p.name[: -len(".eval.json")] for p in d.glob("*.eval.json"))
    names.sort(key=lambda n: (n != "teacher", n.endswith("-rtn"), n))
    rows = []
    teacher_ms = None
    for n in names:
        ev = load(d / f"{n}.eval.json") or {}
        at = load(d / f"{n}.attack.json") or {}
        runs = []
        try:
            runs = [json.loads(l)["median_ms"] for l in (d / f"{n}.bench.jsonl").read_text().splitlines() if l.strip()]
        except (OSError, ValueError, KeyError):
            pass
        be = {"median_ms": sorted(runs)[len(runs) // 2]} if runs else {}
        st = ev.get("student", {})
        if task == "stsb":
            s = ev.get("stsb", {}).get("student_scores", {})
            metric = f"{s.get('spearman', float('nan')):.4f} / {s.get('pearson') or float('nan'):.4f}"
            loyal = ("", "")
        else:
            lo = ev.get(task, {})
            m = lo.get("student_metrics", {})
            parts = [f"{m.get('accuracy', float('nan')):.4f}"]
            for k in ("f1", "matthews"):
                if k in m:
                    parts.append(f"{k} {m[k]:.4f}")
            metric = ", ".join(parts)
            loyal = (f"{lo.get('label_loyalty', float('nan')):.4f}",
                     f"{lo.get('probability_loyalty', float('nan')):.4f}")
        a = at.get("attack", {}).get("student", {})
        attack = (f"{a['accuracy_under_attack']:.4f}", f"{a['attack_success_rate']:.4f}") if a else ("", "")
        ms = be.get("median_ms")
        if n == "teacher":
            teacher_ms = ms
        speed = f"{teacher_ms / ms:.2f}×" if ms and teacher_ms else ""
        bits = "/".join(str(b) for b in sorted(set(st.get("matrix_bits", [])))) or "32"
        rows.append([n, f"{st.get('bytes', 0) / 1e6:.1f}", bits, metric, *loyal, *attack,
                     f"{ms:.1f}" if ms else "", speed])
    head = ["model", "MB", "matrix bits", "dev metric" + (" (Spearman / Pearson)" if task == "stsb" else " (accuracy)"),
            "label loyalty", "prob. loyalty", "accuracy under attack", "attack success",
            "CPU ms (seq 128, median of rounds)", "speed vs teacher"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
