#!/usr/bin/env bash
# Type-checks the libraries apps ship for the mobile targets, which cannot be linked here (no
# Android NDK, no Xcode): the Kotlin/Swift library (bertling-uniffi; on Android with the JNI
# loader) and the C library, with their default features (the wgpu backend: Vulkan/GL on
# Android, Metal on iOS). Adds the Rust targets when missing.
#   scripts/check_mobile.sh
# Builds into $CARGO_TARGET_DIR (default ~/.cache/bertling/target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
command -v rustup >/dev/null || { echo "error: rustup is needed to add the mobile targets" >&2; exit 1; }

installed=$(rustup target list --installed)
for t in aarch64-linux-android aarch64-apple-ios; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

echo "== cargo check --target aarch64-linux-android (bertling-uniffi with jni, bertling-c)"
cargo check --locked --target aarch64-linux-android -p bertling-uniffi -p bertling-c \
  --features bertling-uniffi/jni
echo "== cargo check --target aarch64-apple-ios (bertling-uniffi)"
cargo check --locked --target aarch64-apple-ios -p bertling-uniffi
