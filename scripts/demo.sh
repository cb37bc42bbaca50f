#!/usr/bin/env bash
# The quickstart's main job: fetch the default teacher (all-MiniLM-L6-v2) if missing, run a
# short compression on the sample corpus shipped in data/corpus (KDLSQ of the teacher at 4
# bits, a few dozen steps), print the report (size, embedding agreement, STS-B when the GLUE
# data is beside the checkout), then embed example sentences with the 4-bit package and print
# their similarity table and the latency.
#   scripts/demo.sh [--steps N] [--bits 8,4,2]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
steps=30; bits=4
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    *) echo "usage: scripts/demo.sh [--steps N] [--bits LIST]" >&2; exit 2 ;;
  esac
done
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
out="$BERTLING_CACHE/quickstart"
rm -rf "$out"
stsb=(); [ -f "$root/../shared/data/glue/STS-B/dev.tsv" ] && stsb=(--stsb "$root/../shared/data/glue/STS-B")
"$bertling" compress --teacher "$teacher" --corpus "$root/data/corpus/wikitext2-valid-300k.txt" --out "$out" \
  --teacher-only --bits "$bits" --group 32 --steps "$steps" --batch 8 --max-len 64 --lr 5e-5 --warmup 5 "${stsb[@]}"
first=${bits%%,*}
"$bertling" demo --model "$out/student-w$first.bertling"
