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
#
# Settings through the environment: TRAIN_LIMIT (a seeded sample of the training sentences;
# default all), THREADS (default 2), OUT (default ~/.cache/bertling/tagging), BERTLING (the CLI
# binary to use as it is; default: build the checkout's).
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
limit="${TRAIN_LIMIT:-all}"
rows="$root/benches/tagging/results.jsonl"
touch "$rows"

# $1 row name: appends the row of $out/$1.bertling (its report and `tag --conllu` on dev).
row() {
  local name=$1
  grep -qF "\"model\": \"$name\", \"epochs\": $epochs, \"train_limit\": \"$limit\"" "$rows" && return
  "$bertling" tag --model "$out/$name.bertling" --conllu "$data/en_ewt-ud-dev.conllu" \
    --threads "$threads" >"$out/$name.dev.conllu" 2>"$out/$name.tag.txt"
  python3 - "$out/$name" "$name" "$epochs" "$limit" "$rows" \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(git -C "$root" rev-parse --short HEAD)" <<'PY'
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
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
