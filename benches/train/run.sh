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
#   benches/train/run.sh kdlsq-cached    # (a) and (b) with the teacher's targets read from
#   benches/train/run.sh distill-cached  # --target-cache (filled by an untimed run first);
#                                        # PyTorch's row is the same reference as above
#   benches/train/run.sh supernet  # (c) one step of `bertling search`'s supernet training (the
#                                  #     default space, 3 stages; shrinking off): the embedding
#                                  #     and each stage on a drawn candidate and the largest;
#                                  #     PyTorch repeats the candidates bertling's log says it drew
#   benches/train/run.sh all       # all five
#   benches/train/run.sh summary   # the table (RESULTS.md, "Training speed")
#
# ROUNDS (default 3) rounds, each timing bertling then PyTorch, so that both see the same
# machine state; the table gives each side's median and the ratio of the medians. Each finished
# row is appended at once to benches/train/results.jsonl (date, CPU, commit, case,
# implementation, round, tokens/s); a row of the same case, implementation, round, commit and
# CPU is not measured again. STEPS (default 10) optimizer steps, the first one not timed;
# THREADS (default 2) for both; PYTHON (default ~/.cache/bertling/venv-train/bin/python, created with
# `pip install torch==2.15.0 numpy safetensors` when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
steps="${STEPS:-10}"
rounds="${ROUNDS:-3}"
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
  [ -f "$results" ] && python3 - "$results" "$1" "$2" "$3" "$commit" "$cpu" <<'EOF'
import json, sys
path, case, impl, rnd, commit, cpu = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
sys.exit(0 if any(r["case"] == case and r["impl"] == impl and r.get("round", 1) == int(rnd)
                  and r["commit"] == commit and r["cpu"] == cpu for r in rows) else 1)
EOF
}

append() {  # case impl round tokens/s
  python3 - "$results" "$1" "$2" "$3" "$4" "$commit" "$cpu" "$batch" "$seq" "$threads" "$steps" <<'EOF'
import datetime, json, sys
path, case, impl, rnd, tps, commit, cpu, batch, seq, threads, steps = sys.argv[1:]
row = {"date": datetime.date.today().isoformat(), "cpu": cpu, "commit": commit, "case": case,
       "impl": impl, "round": int(rnd), "tokens_per_s": round(float(tps), 1),
       "batch": int(batch), "seq": int(seq), "threads": int(threads),
       "steps_timed": int(steps) - 1}
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

bertling_run() {  # case log [flags]
  local case=$1 log=$2
  shift 2
  rm -f "$log"
  local common=(--corpus "$work/texts.txt" --steps "$steps" --batch "$batch" --max-len "$seq"
    --threads "$threads" --eval-every 0 --eval-size 1 --log "$log" "$@")
  case "$case" in
    kdlsq) "$bertling" quantize --teacher "$teacher" --bits 4 --group 32 --act-bits 8 \
             --out "$work/kdlsq.bertling" "${common[@]}" ;;
    supernet)
      # Training only (--search-only, a small pool); the log is the supernet's own.
      rm -rf "$work/search"
      "$bertling" search --teacher "$teacher" --corpus "$work/texts.txt" --out "$work/search" \
        --budgets 4MB --bits 32 --supernet-steps "$steps" --shrink-every 0 --pool 4 \
        --held-out 8 --top 1 --search-only --batch "$batch" --max-len "$seq" \
        --threads "$threads" --eval-size 1 &&
        cp "$work/search/supernet.jsonl" "$log" ;;
    distill) "$bertling" distill --teacher "$teacher" --layers 3 --width 192 --init random \
               --out "$work/distill.bertling" "${common[@]}" ;;
  esac >/dev/null 2>&1
}

bertling_case() {  # case
  local log="$work/$1.jsonl"
  case "$1" in
    *-cached)
      # Filled by a first, untimed run of the same texts (kept between rounds).
      bertling_run "${1%-cached}" "$log" --target-cache "$work/cache"
      bertling_run "${1%-cached}" "$log" --target-cache "$work/cache" ;;
    *) bertling_run "$1" "$log" ;;
  esac
  log_speed "$log"
}

run_case() {  # case
  local k tps out
  for k in $(seq 1 "$rounds"); do
    if done_row "$1" bertling "$k"; then echo "bertling $1 round $k: measured at $commit"; else
      tps=$(bertling_case "$1")
      append "$1" bertling "$k" "$tps"
    fi
    if done_row "$1" pytorch "$k"; then echo "pytorch $1 round $k: measured at $commit"; else
      out=$("$python" "$root/benches/train/reference.py" --case "${1%-cached}" --teacher "$teacher" \
        --ids "$work/ids.json" --batch "$batch" --steps "$steps" --threads "$threads" \
        --drawn "$work/supernet.jsonl")
      tps=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
      append "$1" pytorch "$k" "$tps"
    fi
  done
}

case "${1:-}" in
  kdlsq | distill | kdlsq-cached | distill-cached | supernet) run_case "$1" ;;
  all)
    run_case kdlsq
    run_case distill
    run_case kdlsq-cached
    run_case distill-cached
    run_case supernet
    ;;
  *) sed -n '2,/^set /{/^#/p}' "$0" >&2; exit 2 ;;
esac
python3 "$root/benches/train/summary.py" "$results"
