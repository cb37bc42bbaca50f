#!/usr/bin/env bash
# Cross-builds bertling-runtime's CPU tests for aarch64-unknown-linux-gnu and runs them under
# qemu-user, so the aarch64 code (gemm's NEON micro-kernels, our kernels vectorised for NEON)
# is executed, not only compiled. Installs what is missing (Debian/Ubuntu: apt-get; rustup).
#   scripts/test_aarch64.sh
# Runs the runtime's unit tests and its CPU integration tests (tiny; of minilm, by default, the
# tokenizer and every layer against PyTorch: see below) on an emulated CPU with every feature
# qemu knows (-cpu max: fp16, dotprod, i8mm, SVE...), then the unit tests and tiny again on a
# Cortex-A53 (ARMv8.0: NEON, no FP16). gpu.rs is not run: there is no GPU adapter under qemu.
# Cache: $BERTLING_CACHE (default ~/.cache/bertling); builds into $CARGO_TARGET_DIR (default
# $BERTLING_CACHE/target), under aarch64-unknown-linux-gnu/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu

# The CPU-only runtime (no wgpu to compile, nothing to run it on under qemu), with Hugging Face
# directories for the tests that load all-MiniLM-L6-v2.
features=(--no-default-features --features hf)

command -v cargo >/dev/null \
  || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null \
  || { echo "error: python3 (with pip) is needed to fetch the test model" >&2; exit 1; }

need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -f "$sysroot/lib/crt1.o" ] && [ -f "$sysroot/lib/ld-linux-aarch64.so.1" ] \
  || need+=(libc6-dev-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  command -v rustup >/dev/null \
    || { echo "error: rustup is needed to add the $target target" >&2; exit 1; }
  echo "== rustup target add $target"
  rustup target add "$target"
fi

# Environment variables rather than a committed .cargo/config.toml: native builds of everyone
# else stay untouched. CC/AR are for any build script that compiles C for the target.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
runner() {
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $1 -L $sysroot"
}

echo "== test model"
BERTLING_TEST_MODEL=$("$root/scripts/fetch_model.sh")
export BERTLING_TEST_MODEL

cargo_test=(cargo test --locked --target "$target" -p bertling-runtime "${features[@]}")
SECONDS=0
echo "== cross-build (${features[*]:-default features})"
"${cargo_test[@]}" --lib --test tiny --test minilm --no-run 2>&1
echo "   cross-build: ${SECONDS}s"

SECONDS=0
echo "== tests under qemu-aarch64 -cpu max"
runner max
"${cargo_test[@]}" --lib --test tiny 2>&1
# One pass of all-MiniLM-L6-v2 over the golden texts takes ~3.5 min under qemu on 2 cores, and
# the whole file makes ~12 (~40 min): by default run the check of every layer against PyTorch
# (and the tokenizer); BERTLING_AARCH64_ALL=1 runs every minilm test.
minilm=(-- --exact tokenization_matches_transformers hidden_states_match_pytorch)
[ "${BERTLING_AARCH64_ALL:-0}" = 1 ] && minilm=()
"${cargo_test[@]}" --test minilm "${minilm[@]}" 2>&1
echo "   -cpu max: ${SECONDS}s"

# Nothing of ours dispatches on features past NEON, but half's f16 conversions use FP16
# instructions when present: a Cortex-A53 (ARMv8.0) runs their portable path and would fault
# on code built for a newer CPU.
SECONDS=0
echo "== unit tests and tiny under qemu-aarch64 -cpu cortex-a53 (ARMv8.0)"
runner cortex-a53
"${cargo_test[@]}" --lib --test tiny 2>&1
echo "   -cpu cortex-a53: ${SECONDS}s"
