#!/usr/bin/env bash
# Times `bertling bench` and ONNX Runtime (../shared/anchors/bench_ort.py) on all-MiniLM-L6-v2
# in the same run, alternating rounds, and prints the latency ratios.
#   benches/compare_ort.sh [--threads 2] [--rounds 3] [--model PKG_OR_DIR] [--ort-model FILE.onnx]
# Needs python3 (installs onnxruntime + numpy into a venv under the cache on first use).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
anchors="${BERTLING_ANCHORS:-$root/../shared/anchors}"
[ -f "$anchors/bench_ort.py" ] || { echo "error: $anchors/bench_ort.py not found; set BERTLING_ANCHORS" >&2; exit 1; }
model=$("$root/scripts/fetch_model.sh")
venv="$cache/venv-ort"
if ! "$venv/bin/python" -c "import onnxruntime, numpy" 2>/dev/null; then
  echo "installing onnxruntime into $venv ..." >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q onnxruntime numpy >&2
fi
(cd "$root" && cargo build -q --release -p bertling-cli)
exec "$venv/bin/python" "$root/benches/compare_ort.py" --bertling "$CARGO_TARGET_DIR/release/bertling" \
  --model "$model" --bench-ort "$anchors/bench_ort.py" "$@"
