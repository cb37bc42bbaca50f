#!/usr/bin/env bash
# Builds a cdylib in release for x86_64 and aarch64 Linux, with its default features (GPU) and
# CPU-only, strips each copy, prints a table of sizes and fails when one exceeds its limit.
#   scripts/size_check.sh [PACKAGE [LIBFILE]]        (default: bertling-c libbertling.so)
# Variables:
#   SIZE_MANIFEST      Cargo.toml to build from (default: the workspace's)
#   SIZE_PROFILE       cargo profile (default: release)
#   SIZE_CPU_FEATURES  cargo flags of the CPU-only build (default: --no-default-features);
#                      set to "skip" to build only the default features
#   SIZE_TARGETS       targets (default: "x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu")
#   LIMIT_<TARGET>_<CONFIG>_MB  limit in MB (10^6 bytes) of one stripped build, e.g.
#                      LIMIT_AARCH64_CPU_MB (default 4), LIMIT_AARCH64_GPU_MB (default 10),
#                      LIMIT_X86_64_CPU_MB / LIMIT_X86_64_GPU_MB (default: none, report only)
# Installs the aarch64 cross linker and Rust target when missing (apt-get, rustup).
# Builds into $CARGO_TARGET_DIR (default ~/.cache/bertling/target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
package="${1:-bertling-c}"
libfile="${2:-libbertling.so}"
manifest="${SIZE_MANIFEST:-$root/Cargo.toml}"
profile="${SIZE_PROFILE:-release}"
cpu_features="${SIZE_CPU_FEATURES:---no-default-features}"
targets="${SIZE_TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu}"
: "${LIMIT_AARCH64_CPU_MB:=4}" "${LIMIT_AARCH64_GPU_MB:=10}"
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
command -v cargo >/dev/null \
  || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

if [[ " $targets " == *" aarch64-unknown-linux-gnu "* ]]; then
  need=()
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  command -v aarch64-linux-gnu-strip >/dev/null || need+=(binutils-aarch64-linux-gnu)
  [ -f /usr/aarch64-linux-gnu/lib/crti.o ] || need+=(libc6-dev-arm64-cross)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
fi
for t in $targets; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
    command -v rustup >/dev/null \
      || { echo "error: rustup is needed to add the $t target" >&2; exit 1; }
    rustup target add "$t"
  fi
done

configs=(gpu)
[ "$cpu_features" = skip ] || configs+=(cpu)
# The output directory of a profile is named after it, except dev's.
outdir=$profile; [ "$profile" = dev ] && outdir=debug
keep="$CARGO_TARGET_DIR/size_check"
mkdir -p "$keep"
rows=()
fail=0
for t in $targets; do
  strip="strip"
  [ "$t" = aarch64-unknown-linux-gnu ] && strip=aarch64-linux-gnu-strip
  [ "$t" = x86_64-unknown-linux-gnu ] || [ "$t" = aarch64-unknown-linux-gnu ] \
    || { echo "error: no strip known for target $t" >&2; exit 1; }
  for c in "${configs[@]}"; do
    flags=()
    [ "$c" = cpu ] && read -r -a flags <<<"$cpu_features"
    echo "== $package, $t, $c (${flags[*]:-default features})"
    SECONDS=0
    cargo build --locked --manifest-path "$manifest" --profile "$profile" --target "$t" \
      -p "$package" --lib "${flags[@]}" 2>&1
    built="$CARGO_TARGET_DIR/$t/$outdir/$libfile"
    [ -f "$built" ] \
      || { echo "error: $built was not built; is $package a cdylib named $libfile?" >&2; exit 1; }
    # Keep a stripped copy per configuration: the next build overwrites the same file.
    out="$keep/$t-$c-$libfile"
    cp "$built" "$out"
    "$strip" --strip-all "$out"
    bytes=$(stat -c %s "$out")
    var="LIMIT_$(echo "${t%%-*}_$c" | tr '[:lower:]' '[:upper:]')_MB"
    limit="${!var:-}"
    verdict=ok
    max=$(awk -v l="${limit:-0}" 'BEGIN { printf "%d", l * 1000000 }')
    if [ -n "$limit" ] && [ "$bytes" -gt "$max" ]; then
      verdict="OVER LIMIT"; fail=1
    fi
    rows+=("$(printf '%-28s %-4s %10s %8.2f %9s  %s' "$t" "$c" "$bytes" \
      "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "${limit:--}" "$verdict")")
    echo "   built in ${SECONDS}s"
  done
done

echo
echo "== stripped $libfile ($package, profile $profile; copies in $keep)"
printf '%-28s %-4s %10s %8s %9s  %s\n' target conf bytes MB limit_MB verdict
printf '%s\n' "${rows[@]}"
[ "$fail" = 0 ] \
  || { echo "error: a build exceeds its size limit (see the table above)" >&2; exit 1; }
