#!/usr/bin/env bash
# GPU readiness check (issue 16 item 6): one run, under 8 minutes on one H200.
#
#   1. batched llh and llh+gradient throughput at 1e2, 1e3 and 1e4 parameter sets for
#      the circuit and Bachmann_MSB2011 (bench_gpu.py), against AMICI's single-core
#      throughput measured in the same run (on the machine's CPU, in the background
#      while the GPU works);
#   2. the default job (configs/default.yaml) with NUTS and many chains vectorised on
#      the GPU, cut off at its time budget (what it reached is recorded).
#
# Results go to $OUT (default benchmarks/results/gpu): gpu.json, gpu.md, amici.*,
# fit.log and the fit's run folder. Each stage has a time limit, so the whole script
# stays within about 7.5 minutes however slow a stage is.
#
#   bash benchmarks/gpu_check.sh                 # on a machine with a GPU
#   GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh   # the same code paths on the CPU,
#                                                   # tiny sizes (the tests run this)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
# AMICI's generated modules load only with the venv's own swig first on PATH
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"

if [[ "${GPU_CHECK_TINY:-0}" == "1" ]]; then
  SIZES="2 3"; PROBLEMS="circuit Boehm_JProteomeRes2014"; DEVICE=cpu
  CHAINS=2; WARMUP=2; SAMPLES=2; AMICI=--no-amici
  T_BATCH=1500; T_FIT=1500; BUDGET=1200
else
  SIZES="100 1000 10000"; PROBLEMS="circuit Bachmann_MSB2011"; DEVICE=gpu
  CHAINS=256; WARMUP=50; SAMPLES=50; AMICI=""
  T_BATCH=270; T_FIT=150; BUDGET=120
  "$PY" -c 'import jax; assert jax.default_backend() == "gpu", jax.devices()' \
    || { echo "no GPU visible to JAX (install with: pip install -e '.[cuda]')" >&2; exit 1; }
fi

start=$(date +%s)
echo "== device: $("$PY" -c 'import jax; print(jax.devices())')"

# AMICI on the CPU (one core, one problem after another), in the background while
# the GPU works; its models are built once into benchmarks/_build (bench_petab.py).
amici_pid=""
if [[ -z "$AMICI" ]]; then
  JAX_PLATFORMS=cpu timeout $((T_BATCH + T_FIT)) "$PY" benchmarks/bench_gpu.py \
    --problems $PROBLEMS --amici-only --repeats 3 --out "$OUT/amici" \
    > "$OUT/amici.log" 2>&1 &
  amici_pid=$!
fi

echo "== 1. batched throughput ($SIZES) on $DEVICE"
timeout "$T_BATCH" "$PY" benchmarks/bench_gpu.py --problems $PROBLEMS --sizes $SIZES \
  --budget-s "$BUDGET" --no-amici --out "$OUT" || echo "stage 1 stopped (exit $?)"

echo "== 2. default job, NUTS, $CHAINS chains vectorised"
cat > "$OUT/many_chains.yaml" <<EOF
extends: $(pwd)/configs/default.yaml
name: gpu_many_chains
inference:
  method: nuts
  nuts: {num_chains: $CHAINS, chain_method: vectorized, num_warmup: $WARMUP, num_samples: $SAMPLES}
EOF
timeout "$T_FIT" "$PY" -m il6rcc.cli fit "$OUT/many_chains.yaml" --device "$DEVICE" \
  --out "$OUT/fit" > "$OUT/fit.log" 2>&1 || echo "stage 2 stopped (exit $?): see $OUT/fit.log"
tail -n 5 "$OUT/fit.log" || true

if [[ -n "$amici_pid" ]]; then
  wait "$amici_pid" || echo "AMICI stage stopped (exit $?): see $OUT/amici.log"
fi
if [[ -f "$OUT/gpu.json" ]]; then
  "$PY" benchmarks/bench_gpu.py --combine --out "$OUT"
fi
echo "== done in $(( $(date +%s) - start )) s; results in $OUT"
