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

echo "== test model"
BERTLING_TEST_MODEL=$("$root/scripts/fetch_model.sh")
export BERTLING_TEST_MODEL

echo "== cargo test (workspace)"
cargo test --workspace --locked 2>&1
