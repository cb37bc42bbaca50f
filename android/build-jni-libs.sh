#!/usr/bin/env bash
# Cross-compiles libbertling_uniffi.so (with the JNI loader, feature `jni`) for each Android ABI
# into src/main/jniLibs/<abi>/, stripped, with 16 KB-aligned segments (checked), and regenerates
# the Kotlin bindings in src/main/kotlin/dev/bertling/ from the built library.
#   android/build-jni-libs.sh [ABI...]      (default: arm64-v8a armeabi-v7a x86_64)
# Needs the Android NDK (r26 or newer): ANDROID_NDK_HOME (or ANDROID_NDK_ROOT) pointing at it,
# and rustup (the Rust targets are added when missing). Variables: ANDROID_API (default 24),
# BERTLING_FEATURES (default "gpu jni"; "jni" alone is the CPU-only, smaller library),
# PROFILE (default mobile: fat LTO, one codegen unit; see the workspace Cargo.toml).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

ndk=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
[ -n "$ndk" ] && [ -d "$ndk/toolchains/llvm/prebuilt" ] || {
  echo "error: set ANDROID_NDK_HOME to the Android NDK (Android Studio: SDK Manager > SDK Tools >" >&2
  echo "       NDK; or https://developer.android.com/ndk/downloads)" >&2
  exit 1
}
host=$(ls "$ndk/toolchains/llvm/prebuilt" | head -n1)
bin=$ndk/toolchains/llvm/prebuilt/$host/bin
api=${ANDROID_API:-24}
profile=${PROFILE:-mobile}
features=${BERTLING_FEATURES:-gpu jni}
abis=("$@")
[ ${#abis[@]} -gt 0 ] || abis=(arm64-v8a armeabi-v7a x86_64)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

triple() {
  case $1 in
    arm64-v8a) echo aarch64-linux-android ;;
    armeabi-v7a) echo armv7-linux-androideabi ;;
    x86_64) echo x86_64-linux-android ;;
    x86) echo i686-linux-android ;;
    *) echo "error: unknown ABI $1 (arm64-v8a, armeabi-v7a, x86_64, x86)" >&2; exit 2 ;;
  esac
}
# The NDK's clang wrappers are named after the target, armv7a instead of armv7.
clang_for() {
  case $1 in
    armv7-linux-androideabi) echo "$bin/armv7a-linux-androideabi$api-clang" ;;
    *) echo "$bin/$1$api-clang" ;;
  esac
}

installed=$(rustup target list --installed)
for abi in "${abis[@]}"; do
  t=$(triple "$abi")
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
  var=$(echo "$t" | tr '[:lower:]-' '[:upper:]_')
  cc=$(clang_for "$t")
  [ -x "$cc" ] || { echo "error: $cc not found (is ANDROID_API=$api supported by this NDK?)" >&2; exit 1; }
  echo "== $abi ($t, API $api, features: $features, profile $profile)"
  env "CARGO_TARGET_${var}_LINKER=$cc" "CC_${t//-/_}=$cc" "AR_${t//-/_}=$bin/llvm-ar" \
    cargo build --locked --profile "$profile" --target "$t" -p bertling-uniffi --lib \
    --no-default-features --features "$features"
  out=$here/src/main/jniLibs/$abi
  mkdir -p "$out"
  "$bin/llvm-strip" --strip-all -o "$out/libbertling_uniffi.so" \
    "$CARGO_TARGET_DIR/$t/$profile/libbertling_uniffi.so"
  # Every LOAD segment aligned to 16 KB (0x4000) or more.
  bad=$("$bin/llvm-readelf" -lW "$out/libbertling_uniffi.so" |
    awk '$1 == "LOAD" { a = strtonum($NF); if (a < 16384) print $NF }')
  [ -z "$bad" ] || { echo "error: $abi: LOAD segments aligned to $bad, not 16 KB" >&2; exit 1; }
  echo "   $(stat -c %s "$out/libbertling_uniffi.so" 2>/dev/null || stat -f %z "$out/libbertling_uniffi.so") bytes, 16 KB-aligned"
done

echo "== Kotlin bindings (uniffi-bindgen, from the host build of the same crate)"
cargo build --locked -p bertling-uniffi --features bindgen,jni --lib --bin uniffi-bindgen
so=$CARGO_TARGET_DIR/debug/libbertling_uniffi.so
[ -f "$so" ] || so=$CARGO_TARGET_DIR/debug/libbertling_uniffi.dylib
"$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --library "$so" --language kotlin \
  --out-dir "$here/src/main/kotlin" --no-format
echo "done: $here/src/main/jniLibs/, $here/src/main/kotlin/dev/bertling/bertling_uniffi.kt"
