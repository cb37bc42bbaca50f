#!/usr/bin/env bash
# Times `bertling bench` and ONNX Runtime (../shared/anchors/bench_ort.py) on all-MiniLM-L6-v2
# in the same run, alternating rounds, and prints the latency ratios and peak RSS.
#   benches/compare_ort.sh [--threads 2] [--rounds 3] [--model PKG_OR_DIR] [--ort-model FILE.onnx]
#   benches/compare_ort.sh --int8 [--threads 2] [--rounds 3]
# --int8: one run of bertling fp32 vs ORT fp32, and bertling W8A8 and W4A8 (g32) packages vs ORT
# int8. The packages are made first by `bertling pack --act-bits 8 --calibrate` (round-to-nearest,
# calibrated on 128 STS-B sentences, no training; per-token activation steps, and a W8A8 package
# with one step per matrix for the cost of per-token steps) and their embedding cosine is printed.
# Needs python3 (installs onnxruntime + numpy into a venv under the cache on first use).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
anchors="${BERTLING_ANCHORS:-$root/../shared/anchors}"
data="${BERTLING_DATA:-$root/../shared/data}"
[ -f "$anchors/bench_ort.py" ] || { echo "error: $anchors/bench_ort.py not found; set BERTLING_ANCHORS" >&2; exit 1; }
int8=0
args=()
for a in "$@"; do
  if [ "$a" = "--int8" ]; then int8=1; else args+=("$a"); fi
done
model=$("$root/scripts/fetch_model.sh")
venv="$cache/venv-ort"
if ! "$venv/bin/python" -c "import onnxruntime, numpy" 2>/dev/null; then
  echo "installing onnxruntime into $venv ..." >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q onnxruntime numpy >&2
fi
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
if [ "$int8" = 0 ]; then
  exec "$venv/bin/python" "$root/benches/compare_ort.py" --bertling "$bertling" \
    --model "$model" --bench-ort "$anchors/bench_ort.py" ${args[@]+"${args[@]}"}
fi
work="$cache/compare-int8"
mkdir -p "$work"
stsb="$data/glue/STS-B/train.tsv"
[ -f "$stsb" ] || { echo "error: $stsb not found; set BERTLING_DATA" >&2; exit 1; }
awk -F'\t' 'NR > 1 && NR <= 129 { print $8 }' "$stsb" > "$work/calibration.txt"
"$bertling" pack --from "$model" --bits 8 --act-bits 8 --calibrate "$work/calibration.txt" --out "$work/w8a8.bertling"
"$bertling" pack --from "$model" --bits 8 --act-bits 8 --act-steps tensor --calibrate "$work/calibration.txt" \
  --out "$work/w8a8-tensor.bertling"
"$bertling" pack --from "$model" --bits 4 --group 32 --act-bits 8 --calibrate "$work/calibration.txt" --out "$work/w4a8.bertling"
exec "$venv/bin/python" "$root/benches/compare_ort.py" --bertling "$bertling" --bench-ort "$anchors/bench_ort.py" \
  --pair "fp32=$model@$anchors/onnx/all-MiniLM-L6-v2.fp32.onnx" \
  --pair "W8A8=$work/w8a8.bertling@$anchors/onnx/all-MiniLM-L6-v2.int8.onnx" \
  --pair "W8A8 per-tensor steps=$work/w8a8-tensor.bertling@$anchors/onnx/all-MiniLM-L6-v2.int8.onnx" \
  --pair "W4A8 g32=$work/w4a8.bertling@$anchors/onnx/all-MiniLM-L6-v2.int8.onnx" ${args[@]+"${args[@]}"}
