#!/usr/bin/env bash
# The compressor's quality benchmark (issue 4): all-MiniLM-L6-v2 compressed on WikiText-2 +
# GLUE-train sentences, evaluated on held-out WikiText-2 test sentences (embedding cosine to the
# teacher) and STS-B dev (Spearman). Long: hours on a 2-core machine; not part of CI.
#
#   benches/quality/run.sh teacher   # (a)+(b): KDLSQ of the teacher itself: W4 g32 A8 without and
#                                    # with activation smoothing, W2 g16 A8 (RUNS=w2-g32: W2 g32)
#   benches/quality/run.sh student   # (c): 3 layers, width 256, ETD-Impt, distilled, then W4 g32 A8
#   benches/quality/run.sh init      # ETD-Impt, ETD-Rand and random init, distilled like (c),
#                                    # stopped after INIT_STEPS steps (held-out loss curves)
#   benches/quality/run.sh loyalty   # teacher W4 g32 A8, LOYALTY_STEPS KDLSQ steps, for each span
#                                    # fraction in SPANS: agreement per category of what users type
#   benches/quality/run.sh bytes     # teacher W2 A8 with 2-bit embedding tables, BYTES_STEPS KDLSQ
#                                    # steps, for each grouping in BYTES_GROUPS (bytes vs quality)
#   benches/quality/run.sh tokens    # as loyalty (spans 0.25) with per-token activation steps,
#                                    # TOKENS_STEPS steps (default 300), for each smoothing
#                                    # strength in TOKENS_SMOOTH (default "0.5 0.7")
#   benches/quality/run.sh noise     # as tokens at α 0.5, with the fraction NOISE (default 0.15) of
#                                    # lines replaced by synthetic noise (--noise), weights in groups
#                                    # of NOISE_GROUP (default 32), seed SEED (default 42)
#   benches/quality/run.sh defaults  # `compress --teacher-only --bits 4` with no recipe flag (the
#                                    # default recipe end to end), THREADS_DEFAULTS threads (2)
#   benches/quality/run.sh frontier  # the 6 MB W2 package (bytes' row:row) trained long, shrunk to
#                                    # fit about an hour; rows in benches/quality/frontier.jsonl
#   benches/quality/run.sh summary   # steps-to-loss table of the three inits, and the reports
#
# Settings through the environment: RUNS (teacher runs, default "w4 w4-smooth w2"), STEPS (teacher
# runs w4 and w2-g32, default 1300), SMOOTH_STEPS (w4-smooth, default 700), W2_STEPS (w2, default
# 1800), STUDENT_STEPS (distillation of (c), default 1600), QUANT_STEPS (its KDLSQ stage, default 600), INIT_STEPS (default 300),
# LOYALTY_STEPS (default 300), BYTES_STEPS (default 300), BYTES_GROUPS (default "row:row 16:16 16:row": the
# weights' and the embedding tables' grouping, `row` = one step per row), SPANS (default "0 0.25 0.5"; one value per job, e.g. SPANS=0 and SPANS=0.25
# in two processes), THREADS (per job, default 1, so two jobs share a 2-core machine), OUT (default
# ~/.cache/bertling/quality). Every job checkpoints; run the same command again to resume it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
out="${OUT:-$BERTLING_CACHE/quality}"
steps="${STEPS:-1300}"; smooth_steps="${SMOOTH_STEPS:-700}"; w2_steps="${W2_STEPS:-1800}"; student_steps="${STUDENT_STEPS:-1600}"; quant_steps="${QUANT_STEPS:-600}"
init_steps="${INIT_STEPS:-300}"
threads="${THREADS:-1}"
shared="$root/../shared/data"
mkdir -p "$out"
[ -f "$out/train.txt" ] || python3 "$root/benches/quality/make_corpus.py" "$shared" "$out"
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
common=(--teacher "$teacher" --corpus "$out/train.txt" --eval-texts "$out/eval.txt" --stsb "$shared/glue/STS-B"
  --act-bits 8 --batch 32 --max-len 128 --threads "$threads" --checkpoint-every 50 --eval-every 50)
# Every run before per-token activation steps existed used one step per matrix: `tensor` keeps
# them reproducing RESULTS.md (the `tokens` mode sets `token`, the default now).
common+=(--act-steps "${ACT_STEPS:-tensor}")
# The teacher, student and init runs of RESULTS.md were measured before span augmentation
# existed: they keep --spans 0, so that they reproduce those numbers and resume old checkpoints.
# They also spell out every setting the default recipe (compressor/src/recipe.rs) now chooses.
plain=(--spans 0)
resume() { [ -f "$1/checkpoints/$2/state.json" ] && echo --resume || true; }

case "${1:-}" in
  teacher)
    # One package per run; a finished run is not redone. Least-error initial steps for weights
    # and activations (RESULTS.md); W4 also with activation smoothing (α = 0.7), W2 without it
    # (where the weights dominate the error, smoothing costs more than it gives). W2 in groups
    # of 16 at lr 3e-4 (w2), or as first run, in groups of 32 at lr 1e-4 (w2-g32).
    for run in ${RUNS:-w4 w4-smooth w2}; do
      dir="$out/teacher-$run"
      case "$run" in
        w4) bits=4; args=(--group 32 --smooth 0 --steps "$steps" --lr 1e-4) ;;
        w4-smooth) bits=4; args=(--group 32 --smooth 0.7 --steps "$smooth_steps" --lr 1e-4) ;;
        w2) bits=2; dir="$out/teacher-w2-g16"; args=(--group 16 --steps "$w2_steps" --lr 3e-4 --sentence-weight 5) ;;
        w2-g32) bits=2; dir="$out/teacher-w2"; args=(--group 32 --steps "$steps" --lr 1e-4 --sentence-weight 1) ;;
        *) echo "unknown teacher run '$run': use w4, w4-smooth, w2 or w2-g32" >&2; exit 2 ;;
      esac
      [ -f "$dir/report.json" ] && continue
      "$bertling" compress "${common[@]}" --out "$dir" --teacher-only --bits "$bits" --weight-init mse --act-init mse \
        "${args[@]}" "${plain[@]}" --warmup 30 $(resume "$dir" "kdlsq-w$bits")
    done ;;
  student)
    dir="$out/student-l3-w256"
    "$bertling" compress "${common[@]}" --group 32 --out "$dir" --layers 3 --width 256 --init etd-impt --bits 4 --weight-init lsq --act-init mse --smooth 0 \
      --steps "$student_steps" --quant-steps "$quant_steps" --lr 2e-4 --warmup 40 "${plain[@]}" $(resume "$dir" distill) ;;
  init)
    # Same settings as the distillation stage of `student`, stopped after INIT_STEPS steps, with
    # the held-out loss measured every 25 steps.
    for init in etd-impt etd-rand random; do
      dir="$out/init-$init"; mkdir -p "$dir"
      [ -f "$dir/checkpoints/state.json" ] && grep -q "\"step\": $init_steps," "$dir/checkpoints/state.json" && continue
      "$bertling" distill --teacher "$teacher" --corpus "$out/train.txt" --out "$dir/student.bertling" \
        --layers 3 --width 256 --init "$init" --batch 32 --max-len 128 --threads "$threads" \
        --steps "$student_steps" --lr 2e-4 --warmup 40 --checkpoint "$dir/checkpoints" --checkpoint-every 50 \
        --log "$dir/train.jsonl" --eval-texts "$out/eval.txt" --eval-every 25 --stop-after "$init_steps" "${plain[@]}" \
        $( [ -f "$dir/checkpoints/state.json" ] && echo --resume || true)
    done ;;
  loyalty)
    # The recipe of (a) with smoothing, short (a new user's run length), once per fraction of
    # training lines cut to spans (--spans); the reports hold the agreement per category.
    for spans in ${SPANS:-0 0.25 0.5}; do
      dir="$out/loyalty-w4-spans$spans"
      [ -f "$dir/report.json" ] && continue
      "$bertling" compress "${common[@]}" --out "$dir" --teacher-only --bits 4 --group 32 --weight-init mse --act-init mse \
        --smooth 0.7 --steps "${LOYALTY_STEPS:-300}" --lr 1e-4 --warmup 30 --spans "$spans" $(resume "$dir" kdlsq-w4)
    done ;;
  bytes)
    # The W2 recipe of (b) (least-error steps, lr 3e-4, sentence weight 5, no smoothing), with
    # the embedding tables at 2 bits too, short, once per grouping of the weights and of the
    # embedding tables (WEIGHTS:EMBEDDINGS, each 16, 32, 64, 128 or row).
    for groups in ${BYTES_GROUPS:-row:row 16:16 16:row}; do
      dir="$out/bytes-w2-e2-${groups/:/-}"
      [ -f "$dir/report.json" ] && continue
      "$bertling" compress "${common[@]}" --out "$dir" --teacher-only --bits 2 --embedding-bits 2 --group "${groups%%:*}" \
        --embedding-group "${groups##*:}" --weight-init mse --act-init mse --steps "${BYTES_STEPS:-300}" --lr 3e-4 \
        --sentence-weight 5 --warmup 30 $(resume "$dir" kdlsq-w2)
    done ;;
  tokens)
    # The loyalty run with spans 0.25 and per-token activation steps instead of one per matrix,
    # once per smoothing strength in TOKENS_SMOOTH (one value per job).
    tokens=("${common[@]}"); tokens[-1]=token  # the value of --act-steps
    for smooth in ${TOKENS_SMOOTH:-0.5 0.7}; do
      dir="$out/tokens-w4-smooth$smooth"
      [ -f "$dir/report.json" ] && continue
      "$bertling" compress "${tokens[@]}" --out "$dir" --teacher-only --bits 4 --group 32 --weight-init mse \
        --act-init mse --smooth "$smooth" --steps "${TOKENS_STEPS:-300}" --lr 1e-4 --warmup 30 --spans 0.25 \
        $(resume "$dir" kdlsq-w4)
    done ;;
  noise)
    tokens=("${common[@]}"); tokens[-1]=token
    noise="${NOISE:-0.15}"; group="${NOISE_GROUP:-32}"; seed="${SEED:-42}"
    dir="$out/noise-w4-g$group-n$noise"; [ "$seed" = 42 ] || dir="$dir-seed$seed"
    [ -f "$dir/report.json" ] && exit 0
    "$bertling" compress "${tokens[@]}" --out "$dir" --teacher-only --bits 4 --group "$group" --weight-init mse \
      --act-init mse --smooth 0.5 --steps "${TOKENS_STEPS:-300}" --lr 1e-4 --warmup 30 --spans 0.25 --noise "$noise" --seed "$seed" \
      $(resume "$dir" kdlsq-w4) ;;
  frontier)
    # Where the 6 MB 2-bit package goes with more steps (issue 29.5): the `bytes` row:row run
    # (W2 weights and tables, one step per row; the W2 recipe) for FRONTIER_STEPS (default
    # 1800) steps, shrunk to batches of FRONTIER_BATCH (16) texts of FRONTIER_LEN (64) tokens so
    # that it fits about an hour of this machine, two threads. Its held-out cosine every
    # FRONTIER_EVAL (150) steps, read from the run's log, and at the end the package's own
    # evaluation (STS-B dev, cosine per category) are rows of benches/quality/frontier.jsonl;
    # every invocation first harvests what the log (train.jsonl) has (a run killed with the session keeps its
    # rows and resumes from its checkpoint), rows already there are skipped.
    fsteps="${FRONTIER_STEPS:-1800}"; fbatch="${FRONTIER_BATCH:-16}"; flen="${FRONTIER_LEN:-64}"
    dir="$out/frontier-w2-e2-row-row-b$fbatch-l$flen-s$fsteps"
    rows="$root/benches/quality/frontier.jsonl"
    touch "$rows"
    cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
    commit=$(git -C "$root" rev-parse --short HEAD)
    harvest() {
      [ -f "$dir/train.jsonl" ] || return 0
      python3 - "$dir/train.jsonl" "$rows" "$fsteps" "$fbatch" "$flen" "$cpu" "$commit" <<'PY'
import datetime, json, sys
log, rows, steps, batch, length, cpu, commit = sys.argv[1:]
key = dict(row="training", config="w2-e2-row-row", steps=int(steps), batch=int(batch),
           max_len=int(length))
have = {json.dumps({k: r.get(k) for k in (*key, "step")}, sort_keys=True)
        for r in map(json.loads, filter(str.strip, open(rows)))}
with open(rows, "a") as out:
    for r in map(json.loads, filter(str.strip, open(log))):
        if "eval" not in r:
            continue
        row = dict(key, step=r["step"])
        if json.dumps(row, sort_keys=True) in have:
            continue
        have.add(json.dumps(row, sort_keys=True))
        row.update(cosine=r["eval"]["cosine_mean"], cosine_p5=r["eval"]["cosine_p5"],
                   texts=r["eval"]["texts"], cpu=cpu, commit=commit,
                   date=datetime.date.today().isoformat())
        out.write(json.dumps(row) + "\n")
        print(json.dumps(row))
PY
    }
    harvest
    if [ ! -f "$dir/report.json" ]; then
      mkdir -p "$dir"
      "$bertling" compress --teacher "$teacher" --corpus "$out/train.txt" --eval-texts "$out/eval.txt" \
        --stsb "$shared/glue/STS-B" --act-bits 8 --act-steps token --batch "$fbatch" --max-len "$flen" \
        --threads "${THREADS:-2}" --eval-every "${FRONTIER_EVAL:-150}" --checkpoint-every 50 \
        --out "$dir" \
        --teacher-only --bits 2 --embedding-bits 2 --group row --embedding-group row --weight-init mse \
        --act-init mse --steps "$fsteps" --lr 3e-4 --sentence-weight 5 --warmup 30 --spans 0.25 \
        $(resume "$dir" kdlsq-w2)
      harvest
    fi
    key="\"row\": \"final\", \"config\": \"w2-e2-row-row\", \"steps\": $fsteps, \"batch\": $fbatch, \"max_len\": $flen"
    if ! grep -qF "$key" "$rows"; then
      pkg=$(ls "$dir"/*w2*.bertling 2>/dev/null | head -1)
      "$bertling" eval --teacher "$teacher" --student "$pkg" --texts "$out/eval.txt" --limit 500 \
        --agreement --task stsb --data "$shared/glue/STS-B" --json --threads "${THREADS:-2}" >"$dir/eval.json"
      python3 - "$dir/eval.json" "$key" "$pkg" "$cpu" "$commit" >>"$rows" <<'PY'
import json, os, sys
e = json.load(open(sys.argv[1]))
row = json.loads("{" + sys.argv[2] + "}")
row.update(bytes=os.path.getsize(sys.argv[3]), cosine=e["agreement"]["mean"],
           cosine_p5=e["agreement"]["p5"], stsb=e["stsb"]["student"], cpu=sys.argv[4],
           commit=sys.argv[5],
           categories={c["category"]: c["mean"] for c in e["agreement_by_category"]})
print(json.dumps(row))
PY
      tail -1 "$rows"
    fi ;;
  defaults)
    # What a user who passes no recipe flag gets: `compress --teacher-only --bits 4` with only
    # the data, the thread count and the bookkeeping (checkpoints, evaluations) given.
    dir="$out/defaults-w4"
    [ -f "$dir/report.json" ] && exit 0
    "$bertling" compress --teacher "$teacher" --corpus "$out/train.txt" --eval-texts "$out/eval.txt" \
      --stsb "$shared/glue/STS-B" --threads "${THREADS_DEFAULTS:-2}" --checkpoint-every 50 --eval-every 50 \
      --out "$dir" --teacher-only --bits 4 $(resume "$dir" kdlsq-w4) ;;
  summary)
    python3 "$root/benches/quality/summary.py" "$out" ;;
  *)
    echo "usage: benches/quality/run.sh teacher|student|init|loyalty|bytes|tokens|noise|defaults|summary" >&2; exit 2 ;;
esac
