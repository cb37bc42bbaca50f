#!/usr/bin/env bash
# Prepares what benches/gpu/run.sh carries to a GPU machine that has nothing installed:
#   benches/gpu/.carry/bertling             the release CLI (wgpu backend), stripped
#   benches/gpu/.carry/minilm-w8.bertling   all-MiniLM-L6-v2 as an 8-bit package (23 MB); run.sh
#                                           re-encodes it to f32/f16/W4/W2 there (the timings
#                                           depend on shapes and storage, not on the values)
#   .gl/*.deb                               the Vulkan/EGL loaders (libvulkan1, libglvnd, ...)
# Both folders are git-ignored and together stay under the device tool's 64 MiB.
# Then, through the device tool: run(command="benches/gpu/run.sh", carry=[".gl", "benches/gpu/.carry"]).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cache="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
carry="$root/benches/gpu/.carry"
mkdir -p "$carry"
(cd "$root" && cargo build -q --release -p bertling-cli)
strip -o "$carry/bertling" "$CARGO_TARGET_DIR/release/bertling"
model=$("$root/scripts/fetch_model.sh")
"$carry/bertling" pack --from "$model" --bits 8 --out "$carry/minilm-w8.bertling"
if ! ls "$root"/.gl/libvulkan1_*.deb >/dev/null 2>&1; then
  grep -qx '/.gl/' "$root/.git/info/exclude" 2>/dev/null || echo /.gl/ >>"$root/.git/info/exclude"
  mkdir -p "$root/.gl" /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update -qq
  # shellcheck disable=SC2086
  (cd "$root/.gl" && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh "$carry" "$root/.gl"
