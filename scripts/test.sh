#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: fetches what the tests need (the test
# model, into a cache outside the checkout), then the whole workspace's tests.
#   scripts/test.sh
# Cache: $BERTLING_CACHE (default ~/.cache/bertling); cargo builds into $CARGO_TARGET_DIR
# (default $BERTLING_CACHE/target) so repeated runs and fresh clones reuse the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 (with pip) is needed to fetch the test model" >&2; exit 1; }

# The wgpu tests run on Mesa's software drivers: lavapipe (Vulkan) and llvmpipe (GL).
need=()
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || need+=(libegl1)
ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1 || need+=(libgl1-mesa-dri)
# The C ABI's tests: valgrind, the header generator, pkg-config.
for tool in valgrind cbindgen pkg-config; do command -v $tool >/dev/null || need+=($tool); done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
# EGL wants a runtime directory; a private one is enough for headless compute.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== test model"
BERTLING_TEST_MODEL=$("$root/scripts/fetch_model.sh")
export BERTLING_TEST_MODEL

# One package and feature selection for every host build of the run, so that nothing is built
# twice: the compressor's `wgpu` feature (training on burn's wgpu backend is tested against the
# CPU), the uniffi crate's binding generator and its JNI loader (Android). The C and uniffi test
# scripts build with it too (BERTLING_CARGO_SELECT).
select="--workspace --locked --features bertling-compressor/wgpu,bertling-uniffi/bindgen,bertling-uniffi/jni"
export BERTLING_CARGO_SELECT=$select
step() { echo "== $1 (at ${SECONDS}s)"; }
SECONDS=0

step "cargo test (workspace; GPU tests on Vulkan: lavapipe)"
# shellcheck disable=SC2086
WGPU_BACKEND=vulkan cargo test $select 2>&1

step "GPU tests on GL (llvmpipe)"
# One test at a time: wgpu's GL backend serialises every call through one EGL context lock that
# gives up after 6 s, which parallel tests on a loaded 2-core machine can exceed (seen in CI).
# shellcheck disable=SC2086
WGPU_BACKEND=gl cargo test $select --test gpu -- --test-threads=1 2>&1

step "C ABI (bindings/c: header, pkg-config, C programs under valgrind)"
bash "$root/bindings/c/tests/run.sh" host 2>&1

step "Kotlin (JVM) and Swift (Linux) through uniffi; the Android JNI loader"
bash "$root/bindings/uniffi/test.sh" kotlin swift 2>&1

step "mobile targets type-check (no NDK or Xcode here): Android and iOS"
bash "$root/scripts/check_mobile.sh" 2>&1

step "aarch64 under qemu-user: the CPU-only runtime's tests (cross-built)"
bash "$root/scripts/test_aarch64.sh" 2>&1

step "aarch64 library size (profile mobile; CI fails past the limits) and its C tests under qemu"
SIZE_PROFILE=mobile SIZE_TARGETS=aarch64-unknown-linux-gnu bash "$root/scripts/size_check.sh" 2>&1
BERTLING_C_PROFILE=mobile bash "$root/bindings/c/tests/run.sh" aarch64 2>&1
step "all tests passed"
