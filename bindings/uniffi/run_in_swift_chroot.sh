#!/usr/bin/env bash
# Run a command inside the Swift (Debian trixie) chroot made by toolchains.sh.
#
#   run_in_swift_chroot.sh DIR [EXTRA_DIR...] -- CMD [ARGS...]
#
# Host directory DIR (and any EXTRA_DIR, e.g. a cargo target dir outside the
# repo) is bind-mounted at the same absolute path inside the chroot (created if
# needed), /proc and /dev are mounted, CMD runs inside the chroot with DIR as
# its working directory, and everything is unmounted again whatever happens.
# The exit status is CMD's (125 for a usage/setup error).
#
# The mounts are made in a private mount namespace (unshare -m) whenever the
# kernel allows it, so they can never leak onto the host, not even if this
# script is killed with SIGKILL; otherwise they are made in the host namespace
# and removed by an EXIT trap.
#
# Environment:
#   SWIFT_CHROOT  chroot dir (default: ${BERTLING_CACHE:-$HOME/.cache/bertling}/toolchains/swift-trixie)
# CMD runs with a clean environment (HOME=/root, a standard PATH, LANG=C.UTF-8,
# plus TERM and CI when set on the host); pass anything else explicitly,
# e.g.  run_in_swift_chroot.sh "$PWD" -- env LD_LIBRARY_PATH="$PWD/lib" ./test
set -euo pipefail

die() { echo "run_in_swift_chroot: $*" >&2; exit 125; }

usage() { die "usage: $0 DIR [EXTRA_DIR...] -- CMD [ARGS...]"; }
[ "$(id -u)" = 0 ] || die "must run as root (chroot and mount need it)"

CHROOT="${SWIFT_CHROOT:-${BERTLING_CACHE:-$HOME/.cache/bertling}/toolchains/swift-trixie}"
CHROOT="$(realpath -e "$CHROOT" 2>/dev/null)" || die "no chroot at $CHROOT (run toolchains.sh first)"
[ -x "$CHROOT/bin/sh" ] || die "$CHROOT is not a chroot (no /bin/sh)"

DIRS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  d="$(realpath -e "$1" 2>/dev/null)" || die "no such directory: $1"
  [ -d "$d" ] || die "not a directory: $d"
  [ "$d" != / ] || die "refusing to bind-mount / into the chroot"
  case "$d/" in "$CHROOT"/*) die "$d is inside the chroot itself";; esac
  DIRS+=("$d"); shift
done
[ ${#DIRS[@]} -ge 1 ] && [ "${1:-}" = "--" ] && [ $# -ge 2 ] || usage
shift
DIR="${DIRS[0]}"

# Re-exec once inside a private mount namespace.
if [ -z "${_BERTLING_SWIFT_NS:-}" ] && unshare --mount --propagation private true 2>/dev/null; then
  export SWIFT_CHROOT="$CHROOT" _BERTLING_SWIFT_NS=1
  exec unshare --mount --propagation private -- "$(realpath -e "$0")" "${DIRS[@]}" -- "$@"
fi

MOUNTED=()   # mount points, in mount order
cleanup() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTED[i]}" 2>/dev/null || umount -R -l "${MOUNTED[i]}" 2>/dev/null ||
      echo "run_in_swift_chroot: WARNING: could not unmount ${MOUNTED[i]}" >&2
  done
  MOUNTED=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# /proc (swift, swift-driver and SwiftPM read /proc/self/exe, /proc/cpuinfo, ...)
if ! is_mounted "$CHROOT/proc"; then
  mount -t proc proc "$CHROOT/proc"
  MOUNTED+=("$CHROOT/proc")
fi
# /dev (null, urandom, pts, shm); rslave so unmounting never propagates to the host
if ! is_mounted "$CHROOT/dev"; then
  mount --rbind /dev "$CHROOT/dev"
  mount --make-rslave "$CHROOT/dev"
  MOUNTED+=("$CHROOT/dev")
fi
# the project directory (and extra dirs), each at the same path
for d in "${DIRS[@]}"; do
  mkdir -p "$CHROOT$d"
  mount --bind "$d" "$CHROOT$d"
  MOUNTED+=("$CHROOT$d")
done

ENV=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
[ -n "${TERM:-}" ] && ENV+=("TERM=$TERM")
[ -n "${CI:-}" ] && ENV+=("CI=$CI")

set +e
chroot "$CHROOT" /usr/bin/env -i "${ENV[@]}" /bin/sh -c 'cd "$1" || exit 125; shift; exec "$@"' sh "$DIR" "$@"
rc=$?
set -e
exit "$rc"
