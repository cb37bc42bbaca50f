#!/usr/bin/env bash
# Installs a built libbertling into PREFIX: lib/libbertling.so.VERSION with the soname link
# libbertling.so.0 and the development link libbertling.so, lib/libbertling.a,
# include/bertling.h and lib/pkgconfig/bertling.pc.
#   bindings/c/install.sh BUILD_DIR PREFIX     (BUILD_DIR: where cargo put libbertling.*,
#                                               e.g. target/mobile or target/<triple>/mobile)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
prefix=$(mkdir -p "$2" && cd "$2" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 755 "$build/libbertling.so" "$prefix/lib/libbertling.so.$version"
ln -sf "libbertling.so.$version" "$prefix/lib/libbertling.so.0"
ln -sf "libbertling.so.0" "$prefix/lib/libbertling.so"
install -m 644 "$build/libbertling.a" "$prefix/lib/libbertling.a"
install -m 644 "$here/include/bertling.h" "$prefix/include/bertling.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$here/bertling.pc.in" \
  > "$prefix/lib/pkgconfig/bertling.pc"
