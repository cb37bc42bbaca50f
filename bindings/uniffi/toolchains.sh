#!/usr/bin/env bash
# Install (once) and cache the toolchains the uniffi binding tests need, then
# print `export` lines for them on stdout:
#
#   eval "$(bindings/uniffi/toolchains.sh)"
#   # -> KOTLINC, JNA_JAR, SWIFT_CHROOT
#
#   bindings/uniffi/toolchains.sh --selftest   # also run small smoke tests
#
# Kotlin/JVM: the npm package kotlin-compiler (cached), Debian's libjna-java and
#             a JDK (java, javac). Run Kotlin programs with
#             java -Djna.nosys=false -cp "$JNA_JAR:..." (Debian's jna.jar has no
#             bundled native part; it loads the system libjnidispatch).
# Swift:      Debian bookworm has no Swift, so a Debian trixie chroot with the
#             `swiftlang` package is built with debootstrap (cached). Use
#             run_in_swift_chroot.sh (next to this file) to run swiftc/swift in it.
#
# Cache: ${BERTLING_CACHE:-$HOME/.cache/bertling}/toolchains/. A run with
# everything cached only checks stamp files (well under a second). Needs root
# for apt-get, debootstrap and chroot. Only stdout carries the export lines;
# progress goes to stderr.
#
# Knobs: BERTLING_KOTLIN_VERSION (default below), BERTLING_DEBIAN_MIRROR
# (default: the Debian mirror apt on this machine uses).
set -euo pipefail

KOTLIN_VERSION="${BERTLING_KOTLIN_VERSION:-2.4.20}"
SWIFT_SUITE=trixie
SWIFT_PACKAGES=(swiftlang libc6-dev libstdc++-14-dev binutils)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}/toolchains"

SELFTEST=0
for a in "$@"; do
  case "$a" in
    --selftest) SELFTEST=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "toolchains.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done

log() { echo "toolchains: $*" >&2; }
die() { echo "toolchains: ERROR: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root"; }

mkdir -p "$CACHE"
# One installer at a time (concurrent CI jobs share the cache).
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------- host packages
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
apt_ensure() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "apt-get install ${missing[*]}"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # try with the current package lists first; refresh them only if that fails
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
}

# --------------------------------------------------------------------- Kotlin
command -v javac >/dev/null && command -v java >/dev/null || apt_ensure openjdk-17-jdk-headless
apt_ensure libjna-java

JNA_JAR=""
for j in /usr/share/java/jna.jar /usr/share/java/jna-[0-9]*.jar; do
  [ -f "$j" ] && { JNA_JAR="$j"; break; }
done
[ -n "$JNA_JAR" ] || die "libjna-java is installed but no jna*.jar found in /usr/share/java"

KOTLIN_DIR="$CACHE/kotlin-$KOTLIN_VERSION"
KOTLINC="$KOTLIN_DIR/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -f "$KOTLIN_DIR/.ready" ] || [ ! -x "$KOTLINC" ]; then
  command -v npm >/dev/null || apt_ensure npm
  log "npm install kotlin-compiler@$KOTLIN_VERSION"
  rm -rf "$KOTLIN_DIR" "$KOTLIN_DIR.tmp"
  mkdir -p "$KOTLIN_DIR.tmp"
  npm install --prefix "$KOTLIN_DIR.tmp" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "kotlin-compiler@$KOTLIN_VERSION" >"$CACHE/npm.log" 2>&1 ||
    { cat "$CACHE/npm.log" >&2; die "npm install kotlin-compiler failed"; }
  mv "$KOTLIN_DIR.tmp" "$KOTLIN_DIR"
  [ -x "$KOTLINC" ] || die "kotlinc not found at $KOTLINC"
  "$KOTLINC" -version >"$KOTLIN_DIR/.ready" 2>&1 || die "kotlinc does not run"
fi

# ---------------------------------------------------------------------- Swift
debian_mirror() {
  if [ -n "${BERTLING_DEBIAN_MIRROR:-}" ]; then echo "$BERTLING_DEBIAN_MIRROR"; return; fi
  local f u
  # deb822 sources first, then one-line sources; skip security/backports/ports
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    if [[ $f == *.sources ]]; then
      u=$(awk -F': *' 'tolower($1)=="uris"{for(i=2;i<=NF;i++)print $i}' "$f" | tr ' ' '\n')
    else
      u=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^[a-z+]+:\/\//){print $i; break}}' "$f")
    fi
    u=$(printf '%s\n' "$u" | grep -E '^https?://[^ ]*/debian/?$' | head -n1 || true)
    if [ -n "$u" ]; then echo "${u%/}"; return; fi
  done
  echo http://deb.debian.org/debian
}

# Refuse to delete a directory that still has something mounted below it
# (rm -rf would follow a bind mount of the project or of /dev).
safe_rm_tree() {
  local d="$1"
  [ -e "$d" ] || return 0
  d="$(realpath -e "$d")"
  local m
  m=$(awk -v p="$d/" 'substr($2"/",1,length(p))==p{print $2}' /proc/self/mounts | sort -r)
  if [ -n "$m" ]; then
    echo "$m" | while read -r x; do umount -R "$x" 2>/dev/null || umount -R -l "$x" 2>/dev/null || true; done
    m=$(awk -v p="$d/" 'substr($2"/",1,length(p))==p{print $2}' /proc/self/mounts)
    [ -z "$m" ] || die "cannot remove $d: still mounted: $m"
  fi
  rm -rf "$d"
}

# Run a command in a chroot with /proc and /dev mounted, in a private mount
# namespace (so nothing leaks to the host).
chroot_run() {
  local root="$1"; shift
  unshare --mount --propagation private -- /bin/sh -c '
    set -e
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
  ' sh "$root" "$@"
}

SWIFT_CHROOT="$CACHE/swift-$SWIFT_SUITE"
if [ ! -f "$SWIFT_CHROOT/.ready" ] || [ ! -x "$SWIFT_CHROOT/usr/bin/swiftc" ]; then
  need_root "building the Swift chroot"
  apt_ensure debootstrap
  unshare --mount --propagation private true 2>/dev/null || die "unshare --mount does not work here"
  MIRROR="$(debian_mirror)"
  tmp="$SWIFT_CHROOT.tmp"
  safe_rm_tree "$SWIFT_CHROOT"
  safe_rm_tree "$tmp"
  log "debootstrap $SWIFT_SUITE from $MIRROR (a few minutes)"
  debootstrap --variant=minbase --components=main "$SWIFT_SUITE" "$tmp" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # keep the chroot small: no docs/man pages, no downloaded .debs
  cat >"$tmp/etc/dpkg/dpkg.cfg.d/01-bertling-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$tmp/etc/apt/apt.conf.d/01-bertling"
  log "apt-get install ${SWIFT_PACKAGES[*]} in the chroot (a few minutes)"
  { chroot_run "$tmp" apt-get update -qq &&
    chroot_run "$tmp" apt-get install -y -qq "${SWIFT_PACKAGES[@]}"; } >"$CACHE/swift-apt.log" 2>&1 ||
    { tail -n 20 "$CACHE/swift-apt.log" >&2; die "apt-get install in the chroot failed (log: $CACHE/swift-apt.log)"; }
  chroot_run "$tmp" apt-get clean
  rm -rf "$tmp"/var/lib/apt/lists/*_Packages* "$tmp"/var/cache/apt/*.bin
  chroot_run "$tmp" swiftc --version >"$tmp/.ready" 2>&1 || die "swiftc does not run in the chroot"
  mv "$tmp" "$SWIFT_CHROOT"
fi

# ------------------------------------------------------------------- selftest
if [ "$SELFTEST" = 1 ]; then
  t="$(mktemp -d /tmp/bertling-toolchains-selftest.XXXXXX)"
  trap 'rm -rf "$t"' EXIT
  cat >"$t/foo.h" <<'EOF'
#include <stdint.h>
int32_t foo_add(int32_t a, int32_t b);
EOF
  printf '#include "foo.h"\nint32_t foo_add(int32_t a, int32_t b) { return a + b; }\n' >"$t/foo.c"
  gcc -shared -fPIC -O2 -o "$t/libfoo.so" "$t/foo.c"

  log "selftest: Kotlin + JNA"
  cat >"$t/Main.kt" <<'EOF'
import com.sun.jna.Library
import com.sun.jna.Native
interface LibC : Library { fun strlen(s: String): Long }
interface Foo : Library { fun foo_add(a: Int, b: Int): Int }
fun main() {
    val c = Native.load("c", LibC::class.java)
    val foo = Native.load("foo", Foo::class.java)
    println("strlen=" + c.strlen("bertling") + " foo_add=" + foo.foo_add(40, 2))
}
EOF
  "$KOTLINC" -nowarn -cp "$JNA_JAR" -d "$t/kt.jar" "$t/Main.kt" 2>&1 | grep -v '^info:' >&2 || true
  out=$(java -Djna.nosys=false -Djna.library.path="$t" -cp "$JNA_JAR:$t/kt.jar" MainKt)
  [ "$out" = "strlen=8 foo_add=42" ] || die "Kotlin selftest: got '$out'"
  log "selftest: Kotlin OK ($out)"

  log "selftest: Swift + C module map in the chroot"
  # named like uniffi's <crate>FFI.modulemap: a file called module.modulemap in an
  # -I dir is also found implicitly and clang then rejects the duplicate module
  printf 'module fooFFI {\n  header "foo.h"\n  export *\n}\n' >"$t/fooFFI.modulemap"
  cat >"$t/main.swift" <<'EOF'
import Foundation
import fooFFI
print("foo_add=\(foo_add(40, 2)) \(String(format: "%.1f", 1.5))")
EOF
  out=$("$HERE/run_in_swift_chroot.sh" "$t" -- sh -c \
    'swiftc -I "$PWD" -L "$PWD" -lfoo -Xcc -fmodule-map-file="$PWD/fooFFI.modulemap" main.swift -o main >&2 &&
      LD_LIBRARY_PATH="$PWD" ./main') ||
    die "Swift selftest failed"
  [ "$out" = "foo_add=42 1.5" ] || die "Swift selftest: got '$out'"
  log "selftest: Swift OK ($out)"
fi

printf 'export KOTLINC=%q\n' "$KOTLINC"
printf 'export JNA_JAR=%q\n' "$JNA_JAR"
printf 'export SWIFT_CHROOT=%q\n' "$SWIFT_CHROOT"
