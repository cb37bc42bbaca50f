#!/usr/bin/env bash
# GPU latency of the wgpu backend on all-MiniLM-L6-v2 at f32, f16, W8, W4 and W2 (round-to-
# nearest, per-channel steps), batch 1 and 32 at 128 tokens; prints one JSON table (and writes
# it to $OUT/gpu.json when $OUT is set). Runs on a machine with an NVIDIA driver and nothing
# else: the CLI, the model and the Vulkan loaders come from benches/gpu/prepare.sh (or set
# BERTLING_BIN and BERTLING_MODEL; with cargo present and no carried CLI, it builds one).
# RUNS (30), WARMUP (5) and BATCHES ("1 32") change the work; see benches/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
carry="$root/benches/gpu/.carry"
bin="${BERTLING_BIN:-$carry/bertling}"
model="${BERTLING_MODEL:-$carry/minilm-w8.bertling}"
runs="${RUNS:-30}"
warmup="${WARMUP:-5}"
batches="${BATCHES:-1 32}"
if [ ! -x "$bin" ]; then
  command -v cargo >/dev/null || { echo "error: no CLI at $bin and no cargo: run benches/gpu/prepare.sh first" >&2; exit 1; }
  (cd "$root" && cargo build -q --release -p bertling-cli)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/bertling"
fi
[ -f "$model" ] || { echo "error: no model at $model: run benches/gpu/prepare.sh or set BERTLING_MODEL" >&2; exit 1; }
# Vulkan loader and the NVIDIA driver's ICD, as the device tool's README describes.
if ! ldconfig -p | grep -q libvulkan.so.1 && ls "$root"/.gl/*.deb >/dev/null 2>&1; then
  for f in "$root"/.gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] \
   && ! ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" pack --from "$model" --bits 32 --out "$work/f32.bertling" 2>/dev/null
"$bin" pack --from "$model" --bits 16 --out "$work/f16.bertling" 2>/dev/null
cp "$model" "$work/w8.bertling"
"$bin" pack --from "$model" --bits 4 --out "$work/w4.bertling" 2>/dev/null
"$bin" pack --from "$model" --bits 2 --out "$work/w2.bertling" 2>/dev/null
rows=()
for p in f32 f16 w8 w4 w2; do
  for b in $batches; do
    line=$("$bin" bench --backend wgpu --model "$work/$p.bertling" --batch "$b" --seq 128 --runs "$runs" --warmup "$warmup" --json)
    echo "$p $line" >&2
    rows+=("{\"storage\":\"$p\",\"result\":$line}")
  done
done
json="[$(IFS=,; echo "${rows[*]}")]"
echo "$json"
if [ -n "${OUT:-}" ]; then echo "$json" >"$OUT/gpu.json"; fi
