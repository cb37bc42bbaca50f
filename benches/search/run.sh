#!/usr/bin/env bash
# The architecture search's benchmark (issue 15): all-MiniLM-L6-v2, WikiText-2 + GLUE-train
# sentences (benches/quality/make_corpus.py), this machine's CPU. Long: hours; not part of CI.
#
#   benches/search/run.sh latency    # REPEATS (default 6) times: a CPU latency table (W4 g32 A8,
#                                    # seq 128, batch 1), the predictions it makes for SAMPLE
#                                    # (default 24) random architectures, and those timed as
#                                    # `bertling bench` times them; latency_stats.py compares
#                                    # each table's predictions with the median measurement
#   benches/search/run.sh family     # `bertling search` with budgets BUDGETS (default
#                                    # 4MB,7MB,10.5MB), seed SEED (default 42), the uniform ETD
#                                    # students of `baselines` compared in its report and plot
#   benches/search/run.sh baselines  # uniform ETD students near the budgets (SHAPES, default
#                                    # "2x128 2x192 3x256": layers x width), the same training
#                                    # budget as the family's students, W4 g32 A8
#   benches/search/run.sh maps       # the layer-map study (issue 29.4): `bertling map-search` of
#                                    # a 3-layer student (ETD-Impt, full width) of the teacher,
#                                    # POPULATION (8) maps x GENERATIONS (3) of the genetic search
#                                    # (the space has 56), each scored by a proxy (PROXY_STEPS,
#                                    # default 150, of PROXY_BATCH 8 sentences of 64 tokens;
#                                    # held-out cosine and STS-B dev), then the best map,
#                                    # `uniform` and `last` distilled for MAP_STEPS (default 300,
#                                    # batch 32) with seeds MAP_SEEDS
#                                    # (default "1 2"); each finished row goes to
#                                    # benches/search/maps.jsonl (RESULTS) at once, rows there
#                                    # are skipped
#   benches/search/run.sh maps-summary  # the table of maps.jsonl
#   benches/search/run.sh proof      # searched against uniform students, Kendall τ: runs
#                                    # benches/search/proof.sh (its header has the settings)
#
# Settings through the environment: THREADS (default 2: the latency table and the measured
# latencies use all of them), WIDTHS (default 64,128,192,256,384), SUPERNET_STEPS (default
# 2000), STEPS (distillation of each student, default 1600), QUANT_STEPS (KDLSQ, default 300),
# OUT (default ~/.cache/bertling/search). Every job checkpoints; run the same command again to
# resume it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BERTLING_CACHE="${BERTLING_CACHE:-$HOME/.cache/bertling}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTLING_CACHE/target}"
out="${OUT:-$BERTLING_CACHE/search}"
threads="${THREADS:-2}"
widths="${WIDTHS:-64,128,192,256,384}"
seed="${SEED:-42}"
shared="$root/../shared/data"
quality="$BERTLING_CACHE/quality"
mkdir -p "$out"
[ -f "$quality/train.txt" ] || python3 "$root/benches/quality/make_corpus.py" "$shared" "$quality"
teacher=$("$root/scripts/fetch_model.sh")
(cd "$root" && cargo build -q --release -p bertling-cli)
bertling="$CARGO_TARGET_DIR/release/bertling"
table="$out/cpu-table.json"
make_table() {
  [ -f "$table" ] || "$bertling" profile --backend cpu --threads "$threads" --out "$table" \
    --widths "$widths" --bits 4 --group 32 --act-bits 8 --seq 128 --runs 20
}
train=(--corpus "$quality/train.txt" --eval-texts "$quality/eval.txt" --stsb "$shared/glue/STS-B"
  --bits 4 --group 32 --act-bits 8 --batch 32 --max-len 128 --threads "$threads" --seed "$seed"
  --steps "${STEPS:-1600}" --quant-steps "${QUANT_STEPS:-300}" --checkpoint-every 50)

case "${1:-}" in
  latency)
    dir="$out/latency-t$threads"
    rm -rf "$dir" && mkdir -p "$dir"
    check=(--teacher "$teacher" --widths "$widths" --sample "${SAMPLE:-24}" --seed 7 --json)
    for k in $(seq 1 "${REPEATS:-6}"); do
      "$bertling" profile --backend cpu --threads "$threads" --out "$dir/table-$k.json" \
        --widths "$widths" --bits 4 --group 32 --act-bits 8 --seq 128 --runs 20 2>/dev/null
      "$bertling" predict-latency "${check[@]}" --table "$dir/table-$k.json" >"$dir/pred-$k.json"
      "$bertling" predict-latency "${check[@]}" --table "$dir/table-$k.json" --measure \
        --runs 30 --threads "$threads" >"$dir/meas-$k.json"
    done
    python3 "$root/benches/search/latency_stats.py" "$dir" | tee "$dir/summary.txt"
    ;;
  family)
    make_table
    dir="$out/family-seed$seed"
    base=()
    for p in "$out"/baselines/*/student-w4.bertling; do [ -f "$p" ] && base+=(--baseline "$p"); done
    res=(); [ -f "$dir/checkpoints/supernet/state.json" ] && res=(--resume)
    "$bertling" search --teacher "$teacher" "${train[@]}" --out "$dir" --latency-table "$table" \
      --widths "$widths" --budgets "${BUDGETS:-4MB,7MB,10.5MB}" \
      --supernet-steps "${SUPERNET_STEPS:-2000}" "${base[@]}" "${res[@]}"
    ;;
  baselines)
    for shape in ${SHAPES:-2x128 2x192 3x256}; do
      layers=${shape%x*}; width=${shape#*x}
      dir="$out/baselines/etd-${shape}-seed$seed"
      res=(); [ -d "$dir/checkpoints" ] && res=(--resume)
      "$bertling" compress --teacher "$teacher" "${train[@]}" --out "$dir" --layers "$layers" \
        --width "$width" --heads $((width / 32)) --inner $((4 * width)) "${res[@]}"
    done
    ;;
  maps)
    dir="$out/maps"
    mkdir -p "$dir"
    results="${RESULTS:-$root/benches/search/maps.jsonl}"
    touch "$results"
    commit=$(git -C "$root" rev-parse --short HEAD)
    cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
    # One max length for the proxies and the final runs: they share one target cache.
    common=(--teacher "$teacher" --corpus "$quality/train.txt" --eval-texts "$quality/eval.txt"
      --layers 3 --max-len 64 --threads "$threads" --target-cache "$BERTLING_CACHE/targets")
    start=$(date +%s)
    nice "$bertling" map-search "${common[@]}" --stsb "$shared/glue/STS-B" \
      --proxy-steps "${PROXY_STEPS:-150}" --batch "${PROXY_BATCH:-8}" --population "${POPULATION:-8}" \
      --generations "${GENERATIONS:-3}" --seed 42 --out "$dir/maps.json" | tee "$dir/maps.txt"
    key="\"row\": \"search\", \"proxy_steps\": ${PROXY_STEPS:-150}, \"commit\": \"$commit\""
    grep -qF "$key" "$results" || python3 - "$dir/maps.json" "$key" "$start" "$cpu" >>"$results" <<'PY'
import json, sys, time
r = json.load(open(sys.argv[1]))
row = json.loads("{" + sys.argv[2] + "}")
row.update(cpu=sys.argv[4], space=r["space"], exhaustive=r["exhaustive"],
           evaluated=len(r["evaluated"]), minutes=(time.time() - float(sys.argv[3])) / 60,
           best=r["evaluated"][0], uniform=r["uniform"],
           ranking=[[m["map"], m["cosine"], m["stsb"]] for m in r["evaluated"]])
print(json.dumps(row))
PY
    best=$(python3 -c 'import json, sys; print(",".join(map(str, json.load(open(sys.argv[1]))["evaluated"][0]["map"])))' "$dir/maps.json")
    # A best map that is uniform's is trained once, under the name uniform (same map and seed
    # give the same student).
    umap=$(python3 -c 'import json, sys; print(",".join(map(str, json.load(open(sys.argv[1]))["uniform"]["map"])))' "$dir/maps.json")
    finals=("$best"); [ "$best" = "$umap" ] && finals=()
    for map in "${finals[@]}" uniform last; do
      for seed in ${MAP_SEEDS:-1 2}; do
        key="\"row\": \"final\", \"map\": \"$map\", \"seed\": $seed, \"steps\": ${MAP_STEPS:-300}, \"commit\": \"$commit\""
        grep -qF "$key" "$results" && continue
        name="map-${map//,/-}-seed$seed"
        res=(); [ -f "$dir/ck-$name/state.json" ] && res=(--resume)
        nice "$bertling" distill "${common[@]}" --map "$map" --seed "$seed" \
          --steps "${MAP_STEPS:-300}" --batch 32 --checkpoint "$dir/ck-$name" \
          --checkpoint-every 50 --out "$dir/$name.bertling" "${res[@]}"
        "$bertling" eval --teacher "$teacher" --student "$dir/$name.bertling" \
          --texts "$quality/eval.txt" --limit 500 --agreement --task stsb \
          --data "$shared/glue/STS-B" --json --threads "$threads" >"$dir/$name.eval.json"
        python3 - "$dir/$name.eval.json" "$key" "$cpu" "$best" "$umap" >>"$results" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
row = json.loads("{" + sys.argv[2] + "}")
best, umap = sys.argv[4], sys.argv[5]
row.update(cpu=sys.argv[3], searched=row["map"] == best or (row["map"] == "uniform" and best == umap),
           cosine=e["agreement"]["mean"], cosine_p5=e["agreement"]["p5"],
           stsb=e["stsb"]["student"],
           categories={c["category"]: c["mean"] for c in e["agreement_by_category"]})
print(json.dumps(row))
PY
      done
    done
    python3 "$root/benches/search/maps_summary.py" "$results"
    ;;
  proof)
    # The family proven within two hours (issue 29.3): benches/search/proof.sh, its settings.
    exec bash "$root/benches/search/proof.sh" "${@:2}"
    ;;
  maps-summary)
    python3 "$root/benches/search/maps_summary.py" "$root/benches/search/maps.jsonl"
    ;;
  *)
    sed -n '2,44p' "$0"
    exit 2
    ;;
esac
