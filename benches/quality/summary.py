#!/usr/bin/env python3
"""Summarises the quality benchmark (benches/quality/run.sh) in OUT_DIR as Markdown.

- The compress reports of the teacher runs (W4, W4 with smoothing, W2) and the student run,
  and the held-out cosine of the teacher runs during training.
- The cosine to the teacher per category of what users type, for every run whose report has it
  (the loyalty runs and any run made since the agreement set exists).
- Initialisation: the held-out distillation loss of ETD-Impt, ETD-Rand and random init at each
  evaluation, and the steps each needs to reach the loss random init ends with (and the loss
  ETD-Rand ends with). Standard library only.  Usage: summary.py OUT_DIR
"""
import json
import os
import sys


def report(out, name):
    path = os.path.join(out, name, "report.json")
    if not os.path.isfile(path):
        return f"{name}: no report yet\n"
    r = json.load(open(path))
    fmt = lambda v: "-" if v is None else f"{v:.4f}"
    s = f"### {name}\n\nteacher STS-B {fmt(r.get('teacher_stsb'))}, agreement over {r['eval_texts']} held-out texts\n\n"
    s += "| model | bits | MB | cosine mean | cosine p5 | STS-B |\n|---|---|---|---|---|---|\n"
    for m in r["models"]:
        s += f"| {m['name']} | {m['bits']} | {m['bytes'] / 1e6:.1f} | {fmt(m.get('cosine_mean'))} | {fmt(m.get('cosine_p5'))} | {fmt(m.get('stsb'))} |\n"
    return s + "\n"


def loyalty(out):
    """Agreement per category of what users type, one row per run that has it (mean / p5 / min)."""
    rows, cats = [], None
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        path = os.path.join(out, name, "report.json")
        if not os.path.isfile(path):
            continue
        r = json.load(open(path))
        for m in r["models"]:
            by = m.get("agreement_by_category")
            if not by:
                continue
            cats = cats or [c["category"] for c in by]
            cells = {c["category"]: f"{c['mean']:.3f} / {c['p5']:.3f} / {c['min']:.3f}" for c in by}
            worst = min(c["min"] for c in by)
            stsb = "-" if m.get("stsb") is None else f"{m['stsb']:.4f}"
            rows.append(f"| {name} | {stsb} | {worst:.3f} | " + " | ".join(cells.get(c, "-") for c in cats) + " |")
    if not rows:
        return ""
    s = "### Cosine to the teacher on what users type (mean / p5 / min per category)\n\n"
    s += "| run | STS-B | min over all | " + " | ".join(cats) + " |\n|---|---|---|" + "---|" * len(cats) + "\n"
    return s + "\n".join(rows) + "\n\n"


def evals(path):
    out = []
    if os.path.isfile(path):
        for line in open(path):
            j = json.loads(line)
            if "eval" in j:
                out.append((j["step"], j["eval"]["loss"]["total"], j["eval"].get("cosine_mean")))
    return out


def first_reaching(curve, target):
    for step, loss, _ in curve:
        if loss <= target:
            return step
    return None


def main():
    out = sys.argv[1]
    s = "## Quality benchmark\n\n"
    for name in ["teacher-w4", "teacher-w4-smooth", "teacher-w2-g16", "teacher-w2", "student-l3-w256"]:
        s += report(out, name)
    s += loyalty(out)
    s += "### Held-out cosine of the teacher runs during training (every 100 steps)\n\n"
    for name in ["teacher-w4", "teacher-w4-smooth", "teacher-w2-g16", "teacher-w2"]:
        curve = evals(os.path.join(out, name, "train.jsonl"))
        if curve:
            s += f"- {name}: " + ", ".join(f"{st}: {c:.4f}" for st, _, c in curve if st % 100 == 0 or st == curve[-1][0]) + "\n"
    s += "\n"
    inits = ["etd-impt", "etd-rand", "random"]
    curves = {i: evals(os.path.join(out, f"init-{i}", "train.jsonl")) for i in inits}
    if all(curves.values()):
        steps = sorted(set.intersection(*[{c[0] for c in curves[i]} for i in inits]))
        s += "### Initialisation (held-out distillation loss / cosine to the teacher)\n\n| step | " + " | ".join(inits) + " |\n|---|" + "---|" * len(inits) + "\n"
        for st in steps:
            row = []
            for i in inits:
                _, loss, cos = next(c for c in curves[i] if c[0] == st)
                row.append(f"{loss:.4f} / {cos:.3f}" if cos is not None else f"{loss:.4f}")
            s += f"| {st} | " + " | ".join(row) + " |\n"
        last = steps[-1]
        for ref in ["random", "etd-rand"]:
            target = next(c[1] for c in curves[ref] if c[0] == last)
            s += f"\nsteps to reach {ref}'s loss at step {last} ({target:.4f}): " + ", ".join(
                f"{i} {first_reaching(curves[i], target)}" for i in inits
            )
        s += "\n"
    print(s)


if __name__ == "__main__":
    main()
