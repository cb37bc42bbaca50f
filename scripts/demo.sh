#!/usr/bin/env bash
# The quickstart's main job: fetch the default teacher (all-MiniLM-L6-v2) if missing, pack it
# as an 8-bit bertling package, embed example sentences, print their similarity table and the
# latency.
#   scripts/demo.sh [--bits 8|4|2|16|32] [--group 32|64|128]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
bits=8; group=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bits) bits=$2; shift 2 ;;
    --group) group=(--group "$2"); shift 2 ;;
    *) echo "usage: scripts/demo.sh [--bits B] [--group G]" >&2; exit 2 ;;
  esac
done
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
pkg="$BERTLING_CACHE/packages/all-MiniLM-L6-v2.w$bits${group[1]:+g${group[1]}}.bertling"
mkdir -p "$(dirname "$pkg")"
"$bertling" pack --from "$teacher" --bits "$bits" "${group[@]}" --out "$pkg"
"$bertling" demo --model "$pkg"
