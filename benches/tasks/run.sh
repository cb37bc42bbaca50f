#!/usr/bin/env bash
# Downstream tasks (issue 16): all-MiniLM-L6-v2 fine-tuned on a GLUE task, and students of it
# made by each method, compared on the task's dev set: metric, label and probability loyalty to
# the fine-tuned teacher, robustness under a WordNet word-substitution attack, size, CPU
# latency. Long (an hour and more per task on 2 cores); not part of CI.
#
#   benches/tasks/run.sh teacher   # fine-tune the teacher on TASK
#   benches/tasks/run.sh kdlsq     # KDLSQ of the fine-tuned teacher at each of BITS (default
#                                  # "8 4 2"): calibrated round-to-nearest W<b>A8 (groups of 32;
#                                  # 16 below 4 bits), then fine-tuned with LSQ on, taught by the
#                                  # fine-tuned teacher's logits and the gold labels
#   benches/tasks/run.sh prune     # the pruning baselines at SPARSITY (default 0.5) of the
#                                  # fine-tuned teacher, each fine-tuned again with its logits:
#                                  # structured (heads and neurons by importance) and magnitude
#                                  # (unstructured; the zeros are kept)
#   benches/tasks/run.sh theseus   # BERT-of-Theseus: a LAYERS-layer (default 3) student of the
#                                  # fine-tuned teacher by progressive module replacing
#   benches/tasks/run.sh students  # task distillation of task-agnostic students given in
#                                  # STUDENTS (packages of `bertling compress`, e.g. its
#                                  # student-f32 and student-w4 of a 3x256 student)
#   benches/tasks/run.sh eval      # every package of the task against the teacher (loyalty on
#                                  # the whole dev set, the attack on its first ATTACK (200)
#                                  # examples, latency at seq 128 over ROUNDS (3) rounds);
#                                  # summary.py writes the table
#   benches/tasks/run.sh all       # teacher, then kdlsq, prune and theseus, each followed by
#                                  # `eval`, so that every finished model is a row at once
#
# Rows (issue 29.5): as soon as a package's evaluation (and attack) is done, `eval` appends its
# row to benches/tasks/results.jsonl (committed; keyed by task, model, epochs and training
# limit; rows already there are skipped), and after the latency rounds one "latency" row with
# every package's median of that run (ratios are read within one row).
#
# Settings through the environment: TASK (sst2, mrpc, stsb or rte; default sst2), TRAIN_LIMIT
# (a seeded sample of the training set; default all), EPOCHS (default 3), EVAL_EVERY (dev
# scores every N steps; default after each epoch), LR (teacher, default
# 1e-4), QUANT_LR (default 1e-4 at 4 bits and more, 3e-4 below, KDLSQ's recipe), THREADS
# (default 2), OUT (default ~/.cache/bertling/tasks), BERTLING (the CLI binary). Every run
# checkpoints; run the same command again to resume it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
task="${TASK:-sst2}"
threads="${THREADS:-2}"
case "$task" in
  sst2) data="$root/../shared/data/glue/SST-2" ;;
  mrpc) data="$root/../shared/data/glue/MRPC" ;;
  stsb) data="$root/../shared/data/glue/STS-B" ;;
  rte) data="$root/../shared/data/glue/RTE" ;;
  *) echo "TASK: sst2, mrpc, stsb or rte (the GLUE tasks with a train.tsv here)" >&2; exit 2 ;;
esac
out="${OUT:-$BERTLING_CACHE/tasks}/$task"
mkdir -p "$out"
teacher=$("$root/scripts/fetch_model.sh")
# BERTLING: a CLI binary to use as it is (a long run keeps a copy, so that editing and building
# the checkout meanwhile does not change the program halfway); default: build the checkout's.
if [ -n "${BERTLING:-}" ]; then
  bertling=$BERTLING
else
  (cd "$root" && cargo build -q --release -p bertling-cli)
  bertling="$CARGO_TARGET_DIR/release/bertling"
fi
common=(--task "$task" --data "$data" --epochs "${EPOCHS:-3}" --threads "$threads" --seed 42
  --checkpoint-every 50)
[ -n "${TRAIN_LIMIT:-}" ] && common+=(--train-limit "$TRAIN_LIMIT")
[ -n "${EVAL_EVERY:-}" ] && common+=(--eval-every "$EVAL_EVERY")
finetuned="$out/teacher.bertling"

# The task's first $1 training texts (calibration and importance samples).
texts() {
  local col=1
  case "$task" in mrpc) col=4 ;; stsb) col=8 ;; rte) col=2 ;; esac
  # awk stops by itself: `head` in a pipe would end the script (SIGPIPE under pipefail).
  awk -F'\t' -v c="$col" -v n="$1" 'NR > 1 { print $c } NR > n { exit }' "$data/train.tsv"
}

# Runs "$@" into file $1, kept only when it succeeds (a failed run is redone next time).
into() {
  local f=$1
  shift
  "$@" >"$f.partial" && mv "$f.partial" "$f"
}

# $1 name, then finetune's flags: resumes a killed run, skips a finished one.
finetune() {
  local name=$1
  shift
  [ -f "$out/$name.bertling" ] && return
  local resume=()
  [ -f "$out/ck-$name/state.json" ] && resume=(--resume)
  into "$out/$name.report.json" "$bertling" finetune "${common[@]}" --out "$out/$name.bertling" \
    --checkpoint "$out/ck-$name" --log "$out/$name.jsonl" "${resume[@]}" "$@"
}

# Appends the row of package $1 (or, for "latency", this run's medians) to the results file.
row() {
  python3 "$root/benches/tasks/summary.py" --row "$out" "$1" "$root/benches/tasks/results.jsonl" \
    "${EPOCHS:-3}" "${TRAIN_LIMIT:-all}" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
    "$(git -C "$root" rev-parse --short HEAD)"
}

case "${1:-}" in
  teacher)
    finetune teacher --model "$teacher" --lr "${LR:-1e-4}"
    ;;
  kdlsq)
    [ -f "$finetuned" ] || { echo "run 'teacher' first" >&2; exit 1; }
    texts 256 >"$out/calibration.txt"
    for bits in ${BITS:-8 4 2}; do
      group=32 lr="${QUANT_LR:-1e-4}"
      if [ "$bits" -lt 4 ]; then group=16 lr="${QUANT_LR:-3e-4}"; fi
      rtn="$out/teacher-w${bits}a8-rtn.bertling"
      [ -f "$rtn" ] || "$bertling" pack --from "$finetuned" --bits "$bits" --group "$group" \
        --act-bits 8 --calibrate "$out/calibration.txt" --out "$rtn"
      finetune "teacher-w${bits}a8" --model "$rtn" --teacher "$finetuned" --lr "$lr"
    done
    ;;
  prune)
    [ -f "$finetuned" ] || { echo "run 'teacher' first" >&2; exit 1; }
    sparsity="${SPARSITY:-0.5}"
    texts 64 >"$out/importance.txt"
    for method in ${METHODS:-structured magnitude}; do
      pruned="$out/pruned-$method.bertling.tmp"
      name="teacher-$method$(python3 -c "print(round($sparsity * 100))")"
      [ -f "$out/$name.bertling" ] && continue
      [ -f "$pruned" ] || "$bertling" prune --model "$finetuned" --method "$method" \
        --sparsity "$sparsity" --texts "$out/importance.txt" --out "$pruned"
      finetune "$name" --model "$pruned" --teacher "$finetuned" --lr "${LR:-1e-4}"
    done
    ;;
  theseus)
    [ -f "$finetuned" ] || { echo "run 'teacher' first" >&2; exit 1; }
    finetune "theseus-${LAYERS:-3}" --model "$finetuned" --theseus "${LAYERS:-3}" --lr "${LR:-1e-4}"
    ;;
  students)
    [ -f "$finetuned" ] || { echo "run 'teacher' first" >&2; exit 1; }
    for s in ${STUDENTS:?give the task-agnostic student packages in STUDENTS}; do
      name="student-$(basename "$s" .bertling)"
      finetune "$name" --model "$s" --teacher "$finetuned" --lr "${LR:-1e-4}"
    done
    ;;
  eval)
    for m in "$out"/*.bertling; do
      name=$(basename "$m" .bertling)
      [ -f "$out/$name.eval.json" ] || into "$out/$name.eval.json" "$bertling" eval \
        --teacher "$finetuned" --student "$m" --task "$task" --data "$data" --json \
        --threads "$threads"
      if [ "$task" != stsb ] && [ ! -f "$out/$name.attack.json" ]; then
        into "$out/$name.attack.json" "$bertling" eval --teacher "$finetuned" --student "$m" \
          --task "$task" --data "$data" --attack --limit "${ATTACK:-200}" --json \
          --threads "$threads"
      fi
      row "$name"
    done
    # Latency: ROUNDS (default 3) rounds over every package, one after another in each round, so
    # that a slow spell of the machine falls on all of them; summary.py takes each one's median.
    rm -f "$out"/*.bench.jsonl
    for _ in $(seq 1 "${ROUNDS:-3}"); do
      for m in "$out"/*.bertling; do
        "$bertling" bench --model "$m" --seq 128 --threads "$threads" --json \
          >>"$out/$(basename "$m" .bertling).bench.jsonl"
      done
    done
    row latency
    python3 "$root/benches/tasks/summary.py" "$out" | tee "$out/summary.md"
    ;;
  all)
    for stage in teacher kdlsq prune theseus; do
      "$0" "$stage"
      "$0" eval
    done
    ;;
  *)
    sed -n '2,38p' "$0"
    exit 2
    ;;
esac
