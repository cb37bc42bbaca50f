#!/usr/bin/env bash
# The family proven within two hours (issue 29.3): does the searched student beat a uniform ETD
# student of the same bytes, and does the supernet rank architectures as training does?
#
#   benches/search/proof.sh           # the whole comparison (resumes; finished rows skipped)
#   benches/search/proof.sh summary   # the table and benches/search/proof.svg
#
# 1. The CPU latency table (W4 g32 A8, seq 128, THREADS threads; TABLE_WIDTHS).
# 2. Per target of BUDGETS (default 4MB,7MB,10.5MB), the uniform architecture (every stage one
#    width, attention + feed-forward layers with heads of the teacher's head size, the embedding
#    unfactorised) with the largest predicted package within it; its bytes and predicted latency
#    are the search's budget, so the searched student is no larger and no slower.
# 3. `bertling search --search-only --verify VERIFY` under those budgets: the supernet trained
#    block-wise for SUPERNET_STEPS (default 600) steps on WIDTHS, VERIFY (default 8) ranked
#    candidates distilled VERIFY_STEPS (default 200) steps each from their inherited weights:
#    Kendall τ of the supernet's ranking with theirs.
# 4. For each budget, kind (searched: the supernet's weights; uniform: cut from the teacher by
#    ETD importance) and seed of SEEDS (default "1 2"): `bertling compress --bits 4` with the
#    same STEPS (default 600) distillation and QUANT_STEPS (default 200) KDLSQ steps, then its
#    W4A8 package's held-out cosine, STS-B dev Spearman and agreement per category (the
#    compress report) and its latency by `bertling bench` (b1 x s128, THREADS threads).
#
# KINDS (default "searched uniform") limits step 4, e.g. KINDS=uniform STEPS=1200 trains the
# uniform students for as many more steps as the supernet trained (the head-start control).
#
# Training runs at batch BATCH (default 16) of MAX_LEN (default 64) tokens, the teacher's targets
# shared by every run through one --target-cache. Each finished row (the search, each student)
# is appended to benches/search/proof.jsonl (RESULTS) at once with the minutes it took, keyed by
# commit and CPU; a rerun skips finished rows and resumes a killed one from its checkpoints.
# OUT (default ~/.cache/bertling/proof) holds the runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
results="${RESULTS:-$root/benches/search/proof.jsonl}"
if [ "${1:-}" = summary ]; then
  exec python3 "$root/benches/search/proof_summary.py" "$results" "$root/benches/search/proof.svg"
fi
out="${OUT:-$BERTLING_CACHE/proof}"
threads="${THREADS:-2}"
widths="${WIDTHS:-64,128,192,256,384}"
# The table also times the widths between, for the uniform students.
table_widths="${TABLE_WIDTHS:-64,96,128,160,192,224,256,320,384}"
budgets="${BUDGETS:-4MB,7MB,10.5MB}"
shared="$root/../shared/data"
quality="$BERTLING_CACHE/quality"
mkdir -p "$out"
touch "$results"
[ -f "$quality/train.txt" ] || python3 "$root/benches/quality/make_corpus.py" "$shared" "$quality"
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
# The experiment's commit: the one it started at, kept in OUT so that a run continued in a
# later session skips the rows it finished (each row also names the build that made it). Delete
# OUT to start a new experiment at the current commit.
built=$(git -C "$root" rev-parse --short HEAD)
[ -f "$out/commit" ] || echo "$built" >"$out/commit"
commit=$(cat "$out/commit")
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
tag="\"commit\": \"$commit\", \"cpu\": \"$cpu\""
table="$out/cpu-table.json"
[ -f "$table" ] || "$bertling" profile --backend cpu --threads "$threads" --out "$table" \
  --widths "$table_widths" --bits 4 --group 32 --act-bits 8 --seq 128 --runs 20
train=(--corpus "$quality/train.txt" --eval-texts "$quality/eval.txt" --stsb "$shared/glue/STS-B"
  --batch "${BATCH:-16}" --max-len "${MAX_LEN:-64}" --threads "$threads"
  --target-cache "$BERTLING_CACHE/targets" --checkpoint-every 50)
family="$out/family"

# Step 2: per target of BUDGETS, the uniform architecture of the largest predicted package
# within it; its bytes and predicted latency become the search's budget. "budget<TAB>arch".
uniform="$out/uniform.tsv"
if [ ! -f "$uniform" ]; then
  heads_dim=$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1] + "/config.json")); print(c["hidden_size"] // c["num_attention_heads"])' "$teacher")
  mapfile -t cands < <(python3 - "$table_widths" "$heads_dim" <<'PY'
import sys
widths = [int(w) for w in sys.argv[1].split(",")]
hd = int(sys.argv[2])
for w in widths:
    if w % hd:
        continue
    for layers in range(1, 7):
        for inner in (2 * w, 4 * w):
            stages = []
            for k in range(3):
                n = layers // 3 + (k < layers % 3)
                ops = [f"a{w // hd}x{hd}", f"f{inner}"] * n
                stages.append(f"{w}:" + ",".join(ops + ["id"] * (4 - len(ops))))
            print(f"e{w}|" + "|".join(stages))
PY
  )
  args=(); for c in "${cands[@]}"; do args+=(--arch "$c"); done
  "$bertling" predict-latency --teacher "$teacher" --table "$table" --widths "$table_widths" \
    --bits 4 --group 32 --act-bits 8 --seq 128 --json "${args[@]}" >"$out/uniform-candidates.json"
  python3 - "$budgets" "$out/uniform-candidates.json" >"$uniform.partial" <<'PY'
import json, sys
cands = [json.loads(l) for l in open(sys.argv[2]) if '"arch"' in l]
for b in sys.argv[1].split(","):
    target = float(b.rstrip("MB"))
    fit = [c for c in cands if c["megabytes"] <= target]
    best = max(fit, key=lambda c: (c["megabytes"], -c["predicted_ms"]))
    # Rounded up in the last digit so that the uniform student itself is within the budget.
    print(f"{best['megabytes'] + 0.0005:.3f}MB+{best['predicted_ms'] + 0.0005:.3f}ms\t"
          f"{best['arch']}")
PY
  mv "$uniform.partial" "$uniform"
fi
search_budgets=$(cut -f1 "$uniform" | paste -sd,)

key="\"row\": \"search\", \"supernet_steps\": ${SUPERNET_STEPS:-600}, $tag"
if ! grep -qF "$key" "$results"; then
  start=$(date +%s)
  res=(); [ -f "$family/checkpoints/supernet/state.json" ] && res=(--resume)
  nice "$bertling" search --teacher "$teacher" "${train[@]}" --seed 42 --out "$family" \
    --latency-table "$table" --widths "$widths" --budgets "$search_budgets" --bits 4 \
    --group 32 --act-bits 8 --supernet-steps "${SUPERNET_STEPS:-600}" --search-only \
    --verify "${VERIFY:-8}" --verify-steps "${VERIFY_STEPS:-200}" "${res[@]}"
  python3 - "$family/report.json" "$key" "$start" "$built" >>"$results" <<'PY'
import json, sys, time
r = json.load(open(sys.argv[1]))
row = json.loads("{" + sys.argv[2] + "}")
row.update(built=sys.argv[4], minutes=(time.time() - float(sys.argv[3])) / 60,
           supernet_seconds=r["supernet_seconds"],
           members=[{"budget": m["budget"], "arch": m["chosen"]["arch"],
                     "bytes": m["chosen"]["bytes"], "ms": m["chosen"]["ms"],
                     "supernet_cosine": m["supernet_cosine"], "note": m.get("note")}
                    for m in r["members"] if m.get("chosen")],
           verification=r.get("verification"))
print(json.dumps(row))
PY
fi

# Step 4: each budget, kind and seed.
# The report's members are in the budgets' order; it writes a budget as it parsed it (0.99ms).
i=0
while IFS=$'\t' read -r _ uarch <&3; do
  read -r budget sarch < <(python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["members"][int(sys.argv[2])]; print(m["budget"], m["chosen"]["arch"])' "$family/report.json" "$i")
  i=$((i + 1))
  bdir=$(echo "$budget" | tr -c 'A-Za-z0-9.\n' '_')
  for seed in ${SEEDS:-1 2}; do
    for kind in ${KINDS:-searched uniform}; do
      key="\"row\": \"student\", \"budget\": \"$budget\", \"kind\": \"$kind\", \"seed\": $seed, \"steps\": ${STEPS:-600}, \"quant_steps\": ${QUANT_STEPS:-200}, $tag"
      grep -qF "$key" "$results" && continue
      dir="$out/$bdir-$kind-seed$seed-${STEPS:-600}+${QUANT_STEPS:-200}"
      if [ "$kind" = searched ]; then
        student=(--student "$family/$bdir/student-inherited.bertling"); arch=$sarch
      else
        student=(--arch "$uarch"); arch=$uarch
      fi
      start=$(date +%s)
      res=(); [ -d "$dir/checkpoints" ] && res=(--resume)
      nice "$bertling" compress --teacher "$teacher" "${train[@]}" --seed "$seed" --out "$dir" \
        --bits 4 --group 32 --act-bits 8 --steps "${STEPS:-600}" \
        --quant-steps "${QUANT_STEPS:-200}" "${student[@]}" "${res[@]}"
      bench=$("$bertling" bench --model "$dir/student-w4.bertling" --batch 1 --seq 128 \
        --threads "$threads" --runs 30 --json)
      python3 - "$dir/report.json" "$key" "$start" "$arch" "$bench" "$built" >>"$results" <<'PY'
import json, sys, time
r = json.load(open(sys.argv[1]))
row = json.loads("{" + sys.argv[2] + "}")
m = next(m for m in r["models"] if m["name"] == "student-w4")
row.update(arch=sys.argv[4], bytes=m["bytes"], cosine=m.get("cosine_mean"),
           cosine_p5=m.get("cosine_p5"), stsb=m.get("stsb"),
           categories={c["category"]: c["mean"] for c in m.get("agreement_by_category", [])},
           measured_ms=json.loads(sys.argv[5])["median_ms"], built=sys.argv[6],
           minutes=(time.time() - float(sys.argv[3])) / 60)
print(json.dumps(row))
PY
    done
  done
done 3<"$uniform"
python3 "$root/benches/search/proof_summary.py" "$results" "$root/benches/search/proof.svg"
