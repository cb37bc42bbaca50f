#!/usr/bin/env bash
# A new head on small data (issue 29.5): `bertling finetune --task sst2 --epochs 1` of the
# 4-bit all-MiniLM-L6-v2 package (W4 g32 A8, calibrated round-to-nearest: no head, so the
# fine-tuning makes a new one) on the first N of a seeded sample of SST-2's training set, with the
# head first fitted on the frozen features (`--head-probe`, the default) and without (`0`: the
# random head the issue found at chance). Each finished row goes to benches/tasks/head.jsonl at
# once; rows already there (same N, probe, commit and CPU) are skipped on a rerun.
#
#   benches/tasks/head.sh           # SIZES (default "1000 2000 8000") x PROBES (default "200 0")
#   benches/tasks/head.sh summary   # the table: dev accuracy per size and probe
#
# Settings through the environment: THREADS (default 2), OUT (default ~/.cache/bertling/head).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
results="$root/benches/tasks/head.jsonl"
if [ "${1:-}" = summary ]; then
  python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| sentences | head | dev accuracy | task loss: first → last step | steps | s | commit | cpu |")
print("|---|---|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: (r["commit"], r["n"], -r["probe"])):
    head = f"probe {r['probe']}" if r["probe"] else "random"
    print(f"| {r['n']} | {head} | {r['dev_accuracy']:.3f} | {r['first_loss']:.3f} → "
          f"{r['last_loss']:.3f} | {r['steps']} | {r['seconds']:.0f} | {r['commit']} | {r['cpu']} |")
EOF
  exit 0
fi
out="${OUT:-$BERTLING_CACHE/head}"
threads="${THREADS:-2}"
data="$root/../shared/data/glue/SST-2"
mkdir -p "$out"
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
commit=$(git -C "$root" rev-parse --short HEAD)
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
pkg="$out/minilm-w4a8.bertling"
if [ ! -f "$pkg" ]; then
  awk -F'\t' 'NR > 1 { print $1 } NR > 513 { exit }' "$data/train.tsv" >"$out/calibrate.txt"
  "$bertling" pack --from "$teacher" --bits 4 --group 32 --act-bits 8 \
    --calibrate "$out/calibrate.txt" --out "$pkg.partial"
  mv "$pkg.partial" "$pkg"
fi
touch "$results"
for n in ${SIZES:-1000 2000 8000}; do
  for probe in ${PROBES:-200 0}; do
    key="\"n\": $n, \"probe\": $probe, \"commit\": \"$commit\", \"cpu\": \"$cpu\""
    grep -qF "$key" "$results" && continue
    name="sst2-n$n-probe$probe"
    rm -f "$out/$name.jsonl"
    start=$(date +%s.%N)
    nice "$bertling" finetune --model "$pkg" --task sst2 --data "$data" --epochs 1 \
      --train-limit "$n" --head-probe "$probe" --threads "$threads" --seed 42 \
      --out "$out/$name.bertling" --log "$out/$name.jsonl" >"$out/$name.report.json"
    end=$(date +%s.%N)
    python3 - "$out/$name.report.json" "$out/$name.jsonl" "$key" "$start" "$end" >>"$results" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
steps = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
losses = [s["task"] for s in steps if "task" in s]
row = json.loads("{" + sys.argv[3] + "}")
row.update(dev_accuracy=report["best"]["scores"]["metric"], steps=report["steps"],
           first_loss=losses[0], last_loss=losses[-1],
           seconds=float(sys.argv[5]) - float(sys.argv[4]))
print(json.dumps(row))
EOF
  done
done
