#!/usr/bin/env bash
# Builds BertlingFFI.xcframework (the Rust runtime as a static library for iOS devices, the iOS
# simulator and macOS, with the C header and module map uniffi generates) and the Swift API
# Sources/Bertling/Bertling.swift, which Package.swift puts together as the `Bertling` library.
#   ios/build-xcframework.sh [--debug]     (default: the `mobile` profile)
# Needs macOS with Xcode (xcodebuild, lipo) and rustup; installs the Rust targets it lacks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
[ "$(uname -s)" = Darwin ] || { echo "error: this needs macOS with Xcode (xcodebuild, lipo)" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "error: xcodebuild not found: install Xcode and run xcode-select" >&2; exit 1; }

profile=mobile   # release with fat LTO (the workspace Cargo.toml)
[ "${1:-}" = --debug ] && profile=debug
flag=(--profile "$profile"); [ "$profile" = debug ] && flag=()
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
for t in "${targets[@]}"; do
  echo "== cargo build $profile --target $t"
  cargo build --locked "${flag[@]}" -p bertling-uniffi --lib --target "$t"
done
lib() { echo "$CARGO_TARGET_DIR/$1/$profile/libbertling_uniffi.a"; }

out="$here/build"
rm -rf "$out" "$here/BertlingFFI.xcframework"
mkdir -p "$out/ios-sim" "$out/macos" "$out/headers" "$out/swift"

echo "== Swift sources and C header (uniffi-bindgen, library mode)"
# The host's dylib carries the same interface metadata as every target's library.
host=$(uname -m | sed 's/arm64/aarch64/')-apple-darwin
cargo run --locked "${flag[@]}" -p bertling-uniffi --features bindgen --bin uniffi-bindgen -- \
  generate --library "$CARGO_TARGET_DIR/$host/$profile/libbertling_uniffi.dylib" \
  --language swift --out-dir "$out/swift"
cp "$out/swift/BertlingFFI.h" "$out/headers/"
# Inside an XCFramework the module map must be called module.modulemap.
cp "$out/swift/BertlingFFI.modulemap" "$out/headers/module.modulemap"
cp "$out/swift/Bertling.swift" "$here/Sources/Bertling/Bertling.swift"

echo "== fat libraries (lipo)"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$out/ios-sim/libbertling_uniffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$out/macos/libbertling_uniffi.a"

echo "== xcodebuild -create-xcframework"
xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$out/headers" \
  -library "$out/ios-sim/libbertling_uniffi.a" -headers "$out/headers" \
  -library "$out/macos/libbertling_uniffi.a" -headers "$out/headers" \
  -output "$here/BertlingFFI.xcframework"
echo "wrote $here/BertlingFFI.xcframework and $here/Sources/Bertling/Bertling.swift"
