#!/usr/bin/env bash
# The tagging study (issue 30.4) on UD English EWT UPOS: each model a row of
# benches/tagging/results.jsonl, appended as soon as it is scored (rows already there are
# skipped, killed runs resume from their checkpoints). Long; not part of CI.
#
#   benches/tagging/run.sh teacher   # all-MiniLM-L6-v2 fine-tuned as a UPOS tagger on EWT train
#                                    # (EPOCHS, default 3; LR, default 1e-4; batch 32, 128
#                                    # tokens), dev scored every EVAL_EVERY (default 100) steps
#                                    # and the best kept; then `bertling tag --conllu` on EWT dev
#                                    # (every word, at the model's full length): the row
#   benches/tagging/run.sh light     # the light tagger (bertling cvt, multi-task UPOS+XPOS) four
#                                    # ways: supervised only, +CVT, +distillation from the
#                                    # teacher row's tagger, both; unlabelled text: WikiText-2
#                                    # valid + the GLUE train sentences (make_corpus.py)
#   benches/tagging/run.sh semi      # 1,000 labelled sentences (seeds 1 and 2), the rest of EWT
#                                    # train as unlabelled text: supervised only and +CVT
#   benches/tagging/run.sh w4a8      # the teacher tagger at W4 g32 A8 (RTN, then fine-tuned with
#                                    # its quantization, distilled from the teacher row)
#
# A light row also records label loyalty to the teacher row's tagger, MFLOPs per word (`eval`),
# the package's bytes, CPU latency of it and of the teacher at 32 tokens in the same run
# (`bench`), and the cost to train in core-hours (wall time of its training × THREADS; a
# resumed run counts only its last part and says so).
#
# Settings through the environment: TRAIN_LIMIT (a seeded sample of the training sentences;
# default all), THREADS (default 2), OUT (default ~/.cache/bertling/tagging), BERTLING (the CLI
# binary to use as it is; default: build the checkout's), CVT_EPOCHS (default 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
data="$root/../shared/data/ud_english_ewt"
out="${OUT:-$BERTLING_CACHE/tagging}"
mkdir -p "$out"
teacher=$("$root/scripts/fetch_model.sh")
if [ -n "${BERTLING:-}" ]; then
  bertling=$BERTLING
else
  (cd "$root" && cargo build -q --release -p bertling-cli)
  bertling="$CARGO_TARGET_DIR/release/bertling"
fi
threads="${THREADS:-2}"
epochs="${EPOCHS:-3}"
cvt_epochs="${CVT_EPOCHS:-20}"
limit="${TRAIN_LIMIT:-all}"
rows="$root/benches/tagging/results.jsonl"
touch "$rows"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
tagger="$out/teacher-upos.bertling"

# $1 row name: appends the row of $out/$1.bertling (its report and `tag --conllu` on dev).
row() {
  local name=$1
  grep -qF "\"model\": \"$name\", \"epochs\": $epochs, \"train_limit\": \"$limit\"" "$rows" && return
  "$bertling" tag --model "$out/$name.bertling" --conllu "$data/en_ewt-ud-dev.conllu" \
    --threads "$threads" >"$out/$name.dev.conllu" 2>"$out/$name.tag.txt"
  python3 - "$out/$name" "$name" "$epochs" "$limit" "$rows" "$cpu" \
    "$(git -C "$root" rev-parse --short HEAD)" <<'PY'
import datetime, json, os, re, sys
base, name, epochs, limit, rows, cpu, commit = sys.argv[1:]
report = json.load(open(base + ".report.json"))
m = re.search(r"accuracy ([0-9.]+) \((\d+) of (\d+) words", open(base + ".tag.txt").read())
row = {"model": name, "epochs": int(epochs), "train_limit": limit,
       "dev_upos_accuracy": float(m.group(1)), "dev_words": int(m.group(3)),
       "bytes": os.path.getsize(base + ".bertling"), "best_step": report["best"]["step"],
       "steps": report["steps"], "train_sentences": report["train_examples"],
       "cpu": cpu, "commit": commit, "date": datetime.date.today().isoformat()}
open(rows, "a").write(json.dumps(row) + "\n")
print(json.dumps(row))
PY
}

# $1 row name: the row of a tagger scored against the teacher row's tagger ($out/$1.bertling,
# $out/$1.report.json, $out/$1.seconds).
scored_row() {
  local name=$1
  grep -qF "\"model\": \"$name\"," "$rows" && return
  "$bertling" tag --model "$out/$name.bertling" --conllu "$data/en_ewt-ud-dev.conllu" \
    --threads "$threads" >"$out/$name.dev.conllu" 2>"$out/$name.tag.txt"
  "$bertling" eval --teacher "$tagger" --student "$out/$name.bertling" --task upos --data "$data" \
    --limit 100000 --json --threads "$threads" >"$out/$name.eval.json"
  "$bertling" bench --model "$out/$name.bertling" --seq 32 --threads 1 --runs 200 --json \
    >"$out/$name.bench.json"
  "$bertling" bench --model "$tagger" --seq 32 --threads 1 --runs 200 --json \
    >"$out/$name.teacher-bench.json"
  python3 - "$out/$name" "$name" "$rows" "$cpu" "$threads" \
    "$(git -C "$root" rev-parse --short HEAD)" <<'PY'
import datetime, json, os, re, sys
base, name, rows, cpu, threads, commit = sys.argv[1:]
report = json.load(open(base + ".report.json"))
ev = json.load(open(base + ".eval.json"))["upos"]
bench = json.loads(open(base + ".bench.json").read().strip().splitlines()[-1])
tbench = json.loads(open(base + ".teacher-bench.json").read().strip().splitlines()[-1])
m = re.search(r"accuracy ([0-9.]+) \((\d+) of (\d+) words", open(base + ".tag.txt").read())
secs = open(base + ".seconds").read().split()
row = {"model": name, "dev_upos_accuracy": float(m.group(1)), "dev_words": int(m.group(3)),
       "label_loyalty": ev["label_loyalty"], "teacher_accuracy": ev["teacher_accuracy"],
       "mflops_per_word": ev["student_mflops_per_word"],
       "teacher_mflops_per_word": ev["teacher_mflops_per_word"],
       "bytes": os.path.getsize(base + ".bertling"),
       "cpu_ms_seq32": bench["median_ms"], "teacher_cpu_ms_seq32": tbench["median_ms"],
       "train_core_hours": float(secs[0]) * int(threads) / 3600, "resumed": secs[1] == "resumed",
       "best_step": report["best"]["step"], "steps": report["steps"],
       "train_sentences": report.get("train_sentences", report.get("train_examples")),
       "unlabeled_sentences": report.get("unlabeled_sentences", 0),
       "cpu": cpu, "threads": int(threads), "commit": commit,
       "date": datetime.date.today().isoformat()}
open(rows, "a").write(json.dumps(row) + "\n")
print(json.dumps(row))
PY
}

# $1 name, then the command: runs it (resuming its checkpoint) unless the package exists,
# timing it into $out/$1.seconds.
train() {
  local name=$1
  shift
  [ -f "$out/$name.bertling" ] && return
  local how=fresh
  [ -f "$out/ck-$name/state.json" ] && how=resumed
  local resume=()
  [ "$how" = resumed ] && resume=(--resume)
  local t0
  t0=$(date +%s)
  "$@" --checkpoint "$out/ck-$name" --log "$out/$name.jsonl" "${resume[@]}" \
    --out "$out/$name.bertling.partial" >"$out/$name.report.json.partial"
  echo "$(($(date +%s) - t0)) $how" >"$out/$name.seconds"
  mv "$out/$name.report.json.partial" "$out/$name.report.json"
  mv "$out/$name.bertling.partial" "$out/$name.bertling"
}

corpus() {
  [ -f "$out/corpus/train.txt" ] || python3 "$root/benches/quality/make_corpus.py" "$root/../shared/data" "$out/corpus" >&2
  echo "$out/corpus/train.txt"
}

need_tagger() {
  [ -f "$tagger" ] || { echo "error: run '$0 teacher' first (the tagger to distil and compare with)" >&2; exit 1; }
}

cvt_cmd=("$bertling" cvt --teacher "$teacher" --task upos --data "$data" --epochs "$cvt_epochs"
  --threads "$threads" --checkpoint-every 500)

case "${1:-}" in
  teacher)
    name=teacher-upos
    if [ ! -f "$out/$name.bertling" ]; then
      resume=()
      [ -f "$out/ck-$name/state.json" ] && resume=(--resume)
      train=()
      [ "$limit" != all ] && train=(--train-limit "$limit")
      "$bertling" finetune --model "$teacher" --task upos --data "$data" --epochs "$epochs" \
        --lr "${LR:-1e-4}" --batch 32 --max-len 128 --eval-every "${EVAL_EVERY:-100}" \
        --threads "$threads" --seed 42 --checkpoint "$out/ck-$name" --checkpoint-every 50 \
        --log "$out/$name.jsonl" "${train[@]}" "${resume[@]}" --out "$out/$name.bertling" \
        >"$out/$name.report.json.partial"
      mv "$out/$name.report.json.partial" "$out/$name.report.json"
    fi
    row "$name"
    ;;
  light)
    need_tagger
    text=$(corpus)
    train light-sup "${cvt_cmd[@]}" --no-cvt
    scored_row light-sup
    train light-cvt "${cvt_cmd[@]}" --unlabeled "$text"
    scored_row light-cvt
    train light-distill "${cvt_cmd[@]}" --no-cvt --distill "$tagger" --unlabeled "$text"
    scored_row light-distill
    train light-both "${cvt_cmd[@]}" --distill "$tagger" --unlabeled "$text"
    scored_row light-both
    ;;
  semi)
    need_tagger
    for seed in 1 2; do
      train "semi-sup-s$seed" "${cvt_cmd[@]}" --no-cvt --train-limit 1000 --seed "$seed"
      scored_row "semi-sup-s$seed"
      train "semi-cvt-s$seed" "${cvt_cmd[@]}" --train-limit 1000 --unlabeled-rest --seed "$seed"
      scored_row "semi-cvt-s$seed"
    done
    ;;
  w4a8)
    need_tagger
    [ -f "$out/teacher-upos-rtn-w4a8.bertling" ] || "$bertling" pack --from "$tagger" --bits 4 \
      --group 32 --act-bits 8 --out "$out/teacher-upos-rtn-w4a8.bertling"
    train teacher-w4a8 "$bertling" finetune --model "$out/teacher-upos-rtn-w4a8.bertling" \
      --teacher "$tagger" --task upos --data "$data" --epochs 1 --lr 5e-5 --batch 32 \
      --eval-every 100 --threads "$threads" --seed 42 --checkpoint-every 50
    scored_row teacher-w4a8
    ;;
  *)
    sed -n '2,27p' "$0"
    exit 2
    ;;
esac
