#!/usr/bin/env bash
# Training speed against PyTorch eager (issue 29.2): bertling's training step, as the `bertling`
# command runs it, and benches/train/reference.py (the same model, losses, batch and lengths in
# PyTorch), timed one after the other on this machine, on the same texts: random whole-word
# vocabulary entries, BATCH (default 8) texts of SEQ (default 64) tokens per step.
#
#   benches/train/run.sh kdlsq     # (a) KDLSQ W4 g32 A8 (per-token steps, smoothing) of
#                                  #     all-MiniLM-L6-v2, from its own float weights
#   benches/train/run.sh distill   # (b) distilling a 3-layer x 192 student (6 heads, 768
#                                  #     inner; 3.6 MB at 4 bits) from all-MiniLM-L6-v2
#   benches/train/run.sh all       # both
#   benches/train/run.sh summary   # the table (RESULTS.md, "Training speed")
#
# Each finished row is appended at once to benches/train/results.jsonl (date, CPU, commit,
# case, implementation, tokens/s); a row of the same case, implementation, commit and CPU is
# not measured again. STEPS (default 6) optimizer steps, the first one not timed; THREADS
# (default 2) for both; PYTHON (default ~/.cache/bertling/venv-train/bin/python, created with
# `pip install torch==2.15.0 numpy safetensors` when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
steps="${STEPS:-6}"
batch="${BATCH:-8}"
seq="${SEQ:-64}"
threads="${THREADS:-2}"
results="$root/benches/train/results.jsonl"
work="$BERTLING_CACHE/train-bench"
mkdir -p "$work"
python="${PYTHON:-$BERTLING_CACHE/venv-train/bin/python}"
if [ "${1:-}" = summary ]; then
  exec python3 "$root/benches/train/summary.py" "$results"
fi
if ! "$python" -c "import torch, safetensors" 2>/dev/null; then
  python3 -m venv "$BERTLING_CACHE/venv-train"
  python="$BERTLING_CACHE/venv-train/bin/python"
  "$python" -m pip install -q torch==2.15.0 numpy safetensors
fi
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . || echo +)

# The texts: SEQ - 2 whole-word vocabulary entries each (one token apiece), and their ids.
python3 - "$teacher/vocab.txt" "$work" "$seq" <<'EOF'
import json, random, sys
vocab, work, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
words = [l.rstrip("\n") for l in open(vocab, encoding="utf-8")]
ok = [i for i, w in enumerate(words) if w.isalpha() and w.isascii() and w.islower() and len(w) > 2]
rng = random.Random(7)
lines = [[rng.choice(ok) for _ in range(seq - 2)] for _ in range(512)]
cls, sep = words.index("[CLS]"), words.index("[SEP]")
open(f"{work}/texts.txt", "w").write("".join(" ".join(words[i] for i in l) + "\n" for l in lines))
json.dump([[cls] + l + [sep] for l in lines], open(f"{work}/ids.json", "w"))
EOF

done_row() {
  [ -f "$results" ] && python3 - "$results" "$1" "$2" "$commit" "$cpu" <<'EOF'
import json, sys
path, case, impl, commit, cpu = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
sys.exit(0 if any(r["case"] == case and r["impl"] == impl and r["commit"] == commit
                  and r["cpu"] == cpu for r in rows) else 1)
EOF
}

append() {  # case impl tokens/s
  python3 - "$results" "$1" "$2" "$3" "$commit" "$cpu" "$batch" "$seq" "$threads" "$steps" <<'EOF'
import datetime, json, sys
path, case, impl, tps, commit, cpu, batch, seq, threads, steps = sys.argv[1:]
row = {"date": datetime.date.today().isoformat(), "cpu": cpu, "commit": commit, "case": case,
       "impl": impl, "tokens_per_s": round(float(tps), 1), "batch": int(batch), "seq": int(seq),
       "threads": int(threads), "steps_timed": int(steps) - 1}
open(path, "a").write(json.dumps(row) + "\n")
print(json.dumps(row))
EOF
}

# tokens/s of steps 2..STEPS from a bertling log (cumulative tokens/s per step).
log_speed() {
  python3 - "$1" "$batch" "$seq" <<'EOF'
import json, sys
path, batch, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
steps = [json.loads(l) for l in open(path) if '"tokens_per_s"' in l]
elapsed = {r["step"]: r["step"] * batch * seq / r["tokens_per_s"] for r in steps}
last = max(elapsed)
print((last - 1) * batch * seq / (elapsed[last] - elapsed[1]))
EOF
}

bertling_case() {  # case
  local log="$work/$1.jsonl"
  rm -f "$log"
  local common=(--corpus "$work/texts.txt" --steps "$steps" --batch "$batch" --max-len "$seq"
    --threads "$threads" --eval-every 0 --eval-size 1 --log "$log")
  case "$1" in
    kdlsq) "$bertling" quantize --teacher "$teacher" --bits 4 --group 32 --act-bits 8 \
             --out "$work/kdlsq.bertling" "${common[@]}" ;;
    distill) "$bertling" distill --teacher "$teacher" --layers 3 --width 192 --init random \
               --out "$work/distill.bertling" "${common[@]}" ;;
  esac >/dev/null
  log_speed "$log"
}

run_case() {  # case
  if done_row "$1" bertling; then echo "bertling $1: measured at $commit on this CPU"; else
    local tps
    tps=$(bertling_case "$1")
    append "$1" bertling "$tps"
  fi
  if done_row "$1" pytorch; then echo "pytorch $1: measured at $commit on this CPU"; else
    local out tps
    out=$("$python" "$root/benches/train/reference.py" --case "$1" --teacher "$teacher" \
      --ids "$work/ids.json" --batch "$batch" --steps "$steps" --threads "$threads")
    tps=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
    append "$1" pytorch "$tps"
  fi
}

case "${1:-}" in
  kdlsq | distill) run_case "$1" ;;
  all)
    run_case kdlsq
    run_case distill
    ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
python3 "$root/benches/train/summary.py" "$results"
