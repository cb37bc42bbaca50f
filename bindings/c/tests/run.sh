#!/usr/bin/env bash
# The C ABI's tests: the committed header is what cbindgen generates; the library is installed
# into a scratch prefix with its pkg-config file; C programs compiled with gcc through
# pkg-config run under valgrind (no errors, no leaks) on the host, or under qemu-user for
# aarch64 (no valgrind there).
#   bindings/c/tests/run.sh                  host (x86_64), library with the default `gpu` feature
#   bindings/c/tests/run.sh host-cpu         host, CPU-only library (--no-default-features)
#   bindings/c/tests/run.sh aarch64          aarch64 CPU-only library, cross-built, run by qemu
# Needs: gcc, pkg-config, valgrind, cbindgen, python3, readelf (apt: gcc pkg-config valgrind cbindgen;
# for aarch64 also gcc-aarch64-linux-gnu qemu-user); BERTLING_TEST_MODEL (scripts/fetch_model.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
arch=${1:-host}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
: "${BERTLING_TEST_MODEL:=$(scripts/fetch_model.sh)}"

echo "== C header is what cbindgen generates"
cbindgen --quiet --config bindings/c/cbindgen.toml --crate bertling-c --output "$work/bertling.h" bindings/c
if ! diff -u bindings/c/include/bertling.h "$work/bertling.h"; then
  echo "error: bindings/c/include/bertling.h is stale; regenerate it with:" >&2
  echo "  cbindgen --config bindings/c/cbindgen.toml --crate bertling-c --output bindings/c/include/bertling.h bindings/c" >&2
  exit 1
fi

echo "== build (libbertling: $arch)"
# scripts/test.sh passes its workspace selection in BERTLING_CARGO_SELECT, so that the host
# builds reuse its build instead of compiling the dependencies again with another feature set.
select=${BERTLING_CARGO_SELECT:-}
if [ -n "$select" ]; then
  # shellcheck disable=SC2086
  cargo build -q $select --lib --examples
else
  cargo build --locked -q -p bertling-runtime --example binding_fixtures
fi
case $arch in
  host | host-cpu)
    if [ "$arch" = host ]; then features=gpu; flags=(); else features=cpu; flags=(--no-default-features); fi
    if [ "$arch" = host-cpu ] || [ -z "$select" ]; then
      cargo build --locked -q -p bertling-c "${flags[@]}"
    fi
    build=$target_dir/debug; cc=gcc; plain=(env)
    # --fair-sched: by default valgrind lets one thread starve the others, and the cancellation
    # test needs the main thread to run while a worker embeds.
    run=(valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
         --errors-for-leak-kinds=definite,indirect --track-origins=yes)
    ;;
  aarch64)
    triple=aarch64-unknown-linux-gnu
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    # The profile apps ship (fat LTO): what scripts/size_check.sh measures, built once for both.
    profile=${BERTLING_C_PROFILE:-mobile}
    cargo build --locked -q -p bertling-c --profile "$profile" --no-default-features --target $triple
    build=$target_dir/$triple/$profile; cc=aarch64-linux-gnu-gcc; features=cpu
    run=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu); plain=("${run[@]}")
    ;;
  *) echo "usage: $0 [host|host-cpu|aarch64]" >&2; exit 2 ;;
esac

bindings/c/install.sh "$build" "$work/prefix"
soname=$(readelf -d "$work/prefix/lib/libbertling.so.0" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libbertling.so.0 ] || { echo "error: soname is '$soname', expected libbertling.so.0" >&2; exit 1; }
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$work/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ "$arch" = aarch64 ]; then run+=(-E "LD_LIBRARY_PATH=$work/prefix/lib"); fi

echo "== fixtures (4-bit all-MiniLM-L6-v2, a classifier, a tagger, the runtime's answers)"
texts=bindings/c/tests/texts.txt
fx=$work/fixtures
# all-MiniLM-L6-v2 at 4 bits: the real model, run natively; the tiny BERT classifier at 4 bits
# (same kernels, 1,000× less work): what valgrind runs, which is ~50× slower and serialises
# threads.
"$target_dir/debug/examples/binding_fixtures" "$BERTLING_TEST_MODEL" $texts "$fx/minilm"
"$target_dir/debug/examples/binding_fixtures" runtime/tests/fixtures/tiny_cls $texts "$fx/tiny" \
  runtime/tests/fixtures/tiny_cls runtime/tests/fixtures/tiny_tok
python3 bindings/c/tests/make_damaged.py "$fx/tiny/model.bertling" "$work/damaged"

echo "== C tests ($cc, pkg-config; run by ${run[0]})"
flags=(-std=c11 -O1 -g -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L)
for t in embed classify tag errors; do
  # shellcheck disable=SC2046
  $cc "${flags[@]}" $(pkg-config --cflags bertling) bindings/c/tests/test_$t.c -o "$work/test_$t" \
    $(pkg-config --libs bertling) -lpthread
done
"${plain[@]}" "$work/test_embed" "$fx/minilm/model.bertling" $texts "$fx/minilm/embeddings.txt"
"${run[@]}" "$work/test_embed" "$fx/tiny/model.bertling" $texts "$fx/tiny/embeddings.txt"
"${run[@]}" "$work/test_classify" "$fx/tiny/classifier.bertling" $texts "$fx/tiny/classify.txt" \
  "$fx/tiny/labels.txt"
"${run[@]}" "$work/test_tag" "$fx/tiny/tagger.bertling" $texts "$fx/tiny/tag.txt" \
  "$fx/tiny/tag_labels.txt" "$fx/tiny/classifier.bertling" "$fx/tiny/model.bertling"
"${run[@]}" "$work/test_errors" "$fx/tiny/model.bertling" "$work/damaged" $features

echo "== static library"
# shellcheck disable=SC2046
$cc "${flags[@]}" $(pkg-config --cflags bertling) bindings/c/tests/test_errors.c -o "$work/test_static" \
  "$work/prefix/lib/libbertling.a" $(pkg-config --static --libs-only-l bertling | sed 's/-lbertling//')
"${plain[@]}" "$work/test_static" "$fx/tiny/model.bertling" "$work/damaged" $features
echo "C ABI tests ($arch): all passed"
