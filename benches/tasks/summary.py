#!/usr/bin/env python3
"""The downstream-task table of benches/tasks/run.sh: one row per package of a task directory
(teacher first), from its eval/attack/bench JSON files.
  summary.py DIR                       the Markdown table of DIR
  summary.py --row DIR NAME FILE EPOCHS LIMIT CPU COMMIT
                                       appends package NAME's row (or, NAME "latency", the run's
                                       medians) to FILE unless a row with its key is there
  summary.py --results FILE            the Markdown tables of FILE's rows, one per task"""
import datetime
import json
import pathlib
import sys


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def median_ms(d, n):
    try:
        runs = [json.loads(l)["median_ms"] for l in (d / f"{n}.bench.jsonl").read_text().splitlines() if l.strip()]
    except (OSError, ValueError, KeyError):
        return None
    return sorted(runs)[len(runs) // 2] if runs else None


def append_row(d, name, path, epochs, limit, cpu, commit):
    d = pathlib.Path(d)
    key = {"task": d.name, "model": name, "epochs": int(epochs), "train_limit": limit}
    row = dict(key)
    if name == "latency":
        names = sorted(p.name[: -len(".bench.jsonl")] for p in d.glob("*.bench.jsonl"))
        row["median_ms"] = {n: median_ms(d, n) for n in names}
        key["models"] = row["models"] = names
    else:
        ev = load(d / f"{name}.eval.json")
        if ev is None:
            return
        row["eval"] = ev
        row["attack"] = (load(d / f"{name}.attack.json") or {}).get("attack")
        for side in (row["attack"] or {}).values():
            if isinstance(side, dict):
                side.pop("turned", None)  # the adversarial texts stay in DIR, not in the row
        if d.name != "stsb" and row["attack"] is None:
            return  # not finished: the attack is part of the row
    path = pathlib.Path(path)
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
    if any(all(r.get(k) == v for k, v in key.items()) for r in rows):
        return
    row.update(cpu=cpu, commit=commit, date=datetime.date.today().isoformat())
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"row: {d.name} {name} -> {path}")


def table(task, entries):
    """entries: (name, eval, attack, median ms) per package."""
    entries = sorted(entries, key=lambda e: (e[0] != "teacher", e[0].endswith("-rtn"), e[0]))
    rows = []
    teacher_ms = next((e[3] for e in entries if e[0] == "teacher"), None)
    for n, ev, at, ms in entries:
        ev, at = ev or {}, at or {}
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
        a = at.get("student", {})
        attack = (f"{a['accuracy_under_attack']:.4f}", f"{a['attack_success_rate']:.4f}") if a else ("", "")
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


def main(d):
    d = pathlib.Path(d)
    names = [p.name[: -len(".eval.json")] for p in d.glob("*.eval.json")]
    table(d.name, [(n, load(d / f"{n}.eval.json"), (load(d / f"{n}.attack.json") or {}).get("attack"),
                    median_ms(d, n)) for n in names])


def results(path):
    rows = [json.loads(l) for l in pathlib.Path(path).read_text().splitlines() if l.strip()]
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        # Latency from the task's last latency row: one run, so the ratios are comparable.
        lat = next((r["median_ms"] for r in reversed(mine) if r["model"] == "latency"), {})
        first = next(r for r in mine if r["model"] != "latency")
        print(f"\n{task} (epochs {first['epochs']}, training set {first['train_limit']}; "
              f"{first['cpu']}, {first['commit']}, {first['date']})\n")
        table(task, [(r["model"], r["eval"], r["attack"], lat.get(r["model"])) for r in mine if r["model"] != "latency"])


if __name__ == "__main__":
    if sys.argv[1] == "--row":
        append_row(*sys.argv[2:9])
    elif sys.argv[1] == "--results":
        results(sys.argv[2])
    else:
        main(sys.argv[1])
