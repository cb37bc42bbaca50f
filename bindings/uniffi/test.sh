#!/usr/bin/env bash
# Tests the Kotlin and Swift bindings end to end: builds libbertling_uniffi.so, generates the
# bindings from it (uniffi library mode), packs all-MiniLM-L6-v2 at 4 bits and writes the Rust
# runtime's answers for it (runtime/examples/binding_fixtures.rs), then compiles and runs
#   - tests/kotlin/BindingTest.kt on the JVM (kotlinc + JNA), and
#   - tests/swift/main.swift on Linux in the Debian trixie chroot (swiftc), linked against the .so,
# which check the bindings' answers against those. The Kotlin program also runs the Android
# loading path (android/.../BertlingAssets.kt and its JNI entry point, feature `jni`) against
# stand-ins of the AssetManager. Each prints 'N passed, M failed'; the script fails if either
# does, or if the generated sources committed for Android (android/src/main/kotlin) and iOS
# (ios/Sources/Bertling) differ from what uniffi-bindgen generates.
#   bindings/uniffi/test.sh [kotlin|swift]...   (default: both)
# Needs root (apt-get, the chroot); toolchains.sh installs and caches the toolchains.
# Cache: $BERTLING_CACHE (default ~/.cache/bertling); cargo builds into $CARGO_TARGET_DIR
# (default $BERTLING_CACHE/target); work files go to $CARGO_TARGET_DIR/uniffi-test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(kotlin swift)
for l in "${langs[@]}"; do
  case "$l" in kotlin | swift) ;; *) echo "unknown language $l: kotlin or swift" >&2; exit 2 ;; esac
done
wants() { [[ " ${langs[*]} " == *" $1 "* ]]; }

echo "== toolchains"
eval "$("$here/toolchains.sh")"

echo "== cargo build (library, uniffi-bindgen; the runtime's fixture writer)"
# scripts/test.sh passes its workspace selection in BERTLING_CARGO_SELECT, so that this reuses
# its build instead of compiling the dependencies again with another feature set.
if [ -n "${BERTLING_CARGO_SELECT:-}" ]; then
  # shellcheck disable=SC2086
  cargo build $BERTLING_CARGO_SELECT --lib --bins --examples
else
  cargo build --locked -p bertling-uniffi -p bertling-runtime --features bertling-uniffi/bindgen,bertling-uniffi/jni \
    --lib --bin uniffi-bindgen --example binding_fixtures
fi
lib="$CARGO_TARGET_DIR/debug/libbertling_uniffi.so"

work="$CARGO_TARGET_DIR/uniffi-test"
rm -rf "$work"
mkdir -p "$work/fixtures" "$work/lib"
cp "$lib" "$work/lib/"

echo "== fixtures (4-bit all-MiniLM-L6-v2 and the runtime's answers)"
model=${BERTLING_TEST_MODEL:-$("$root/scripts/fetch_model.sh")}
# Texts 0 and 1 are paraphrases and text 2 is unrelated (the tests check that).
cat >"$work/fixtures/texts.txt" <<'EOF'
A man is playing a guitar on stage.
Someone performs music with a guitar in front of an audience.
The quarterly tax report is due next Tuesday.
Tiny
Ünïcödé, emoji 🎸 and punctuation!?
EOF
"$CARGO_TARGET_DIR/debug/examples/binding_fixtures" "$model" "$work/fixtures/texts.txt" "$work/fixtures"
# The tiny random tagger (runtime/tests/fixtures/tiny_tok) and its tags of the same texts.
"$CARGO_TARGET_DIR/debug/examples/binding_fixtures" runtime/tests/fixtures/tiny_cls "$work/fixtures/texts.txt" \
  "$work/fixtures/tiny" runtime/tests/fixtures/tiny_cls runtime/tests/fixtures/tiny_tok
# A package cut in half: a corrupt file the loader must reject (InvalidModel).
size=$(stat -c %s "$work/fixtures/model.bertling")
head -c $((size / 2)) "$work/fixtures/model.bertling" >"$work/fixtures/truncated.bertling"

echo "== generate bindings"
bindgen="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
for l in "${langs[@]}"; do
  "$bindgen" generate --library "$work/lib/libbertling_uniffi.so" --language "$l" --out-dir "$work/$l" --no-format
done

status=0
# The generated sources the Android module and the Swift package ship must be today's.
stale() {
  if ! diff -q "$1" "$2" >/dev/null; then
    echo "error: $2 is not what uniffi-bindgen generates from the library; update it with" >&2
    echo "  cp $1 $2" >&2
    status=1
  fi
}
if wants kotlin; then
  stale "$work/kotlin/dev/bertling/bertling_uniffi.kt" android/src/main/kotlin/dev/bertling/bertling_uniffi.kt kotlin
  echo "== Kotlin (JVM; the Android loader through JNI against AssetManager stand-ins)"
  "$KOTLINC" -nowarn -include-runtime -cp "$JNA_JAR" -d "$work/kotlin/test.jar" \
    "$work/kotlin/dev/bertling/bertling_uniffi.kt" android/src/main/kotlin/dev/bertling/BertlingAssets.kt \
    android/src/main/kotlin/dev/bertling/Tagging.kt \
    "$here"/tests/kotlin/*.kt "$here"/tests/kotlin/android-stubs/*.kt 2>&1 | grep -v '^info:' || true
  [ -f "$work/kotlin/test.jar" ] || { echo "kotlinc failed" >&2; exit 1; }
  # jna.library.path: the generated bindings (JNA); java.library.path: System.loadLibrary (JNI).
  java -Djna.nosys=false -Djna.library.path="$work/lib" -Djava.library.path="$work/lib" \
    -cp "$JNA_JAR:$work/kotlin/test.jar" BindingTestKt "$work/fixtures" || status=1
fi

if wants swift; then
  stale "$work/swift/Bertling.swift" ios/Sources/Bertling/Bertling.swift
  echo "== Swift (Linux, trixie chroot)"
  cp "$here/tests/swift/main.swift" "$work/swift/"
  cp ios/Sources/Bertling/Tagging.swift "$work/swift/"
  cp "$work/lib/libbertling_uniffi.so" "$work/swift/"
  # One module: the generated Bertling.swift and the test, against the C module BertlingFFI.
  "$here/run_in_swift_chroot.sh" "$work" -- sh -c '
    cd swift &&
    swiftc -module-name BertlingTest -I "$PWD" -L "$PWD" -lbertling_uniffi \
      -Xcc -fmodule-map-file="$PWD/BertlingFFI.modulemap" Bertling.swift Tagging.swift main.swift -o bindingtest &&
    LD_LIBRARY_PATH="$PWD" ./bindingtest ../fixtures' || status=1
fi

exit $status
