#!/usr/bin/env bash
# Everything a GPU machine should measure, in one command (never needed for tests or
# CI). Run from the repository root with the project importable (pip install -e
# ".[gpu,bench]", or PYTHONPATH=. with the dependencies installed; the machine may
# have no network, so install before). Fashion-MNIST is read from DATA_DIR (the
# Debian package's files: train-images-idx3-ubyte.gz, ...), default the package's
# /usr/share/datasets/fashion-mnist.
#
#   bash experiments/gpu/run.sh [OUT] [DATA_DIR]
#
# writes, under OUT (default runs/gpu), one step after another:
#   env.txt                     nvidia-smi, jax devices, versions, matmul precision
#   roofline/roofline.jsonl     experiments/bench_roofline at GPU sizes
#   demo/result.json            the default demo (qselax run), metrics.jsonl per sweep
#   lenet_fashion/              LeNet-300-100 on the full Fashion-MNIST split, masks
#                               only (experiments/generalisation's exhaustive row with
#                               K = 2 and exact landscapes on all 48,000 training
#                               images; 40 sweeps, about 6 minutes on an H200):
#                               fashion-lenet300.jsonl and, per sweep,
#                               runs/*/metrics.jsonl
#   peers/                      experiments/peers (qselax vs PennyLane, Aer)
#   steps.tsv                   each step's exit status and seconds
#
# Environment: PYTHON (default python3), BUDGET_S (stop starting steps, and cut the
# running one, when this many seconds have passed; default none), LENET_SWEEPS
# (default 40), CAP_ROOFLINE and CAP_DEMO (seconds for those steps; default none),
# SKIP (steps to leave out, e.g. "peers"). A step that fails or runs
# out of time is recorded in steps.tsv and the next one starts.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/gpu}"
data="${2:-/usr/share/datasets/fashion-mnist}"
py="${PYTHON:-python3}"
budget="${BUDGET_S:-0}"
skip=" ${SKIP:-} "
start=$(date +%s)
mkdir -p "$out"
printf 'step\trc\tseconds\n' > "$out/steps.tsv"

{
  nvidia-smi || true
  "$py" - <<'EOF'
import jax, jaxlib
print("jax", jax.__version__, "jaxlib", jaxlib.__version__, jax.devices())
print("default_matmul_precision", jax.config.jax_default_matmul_precision)
EOF
} > "$out/env.txt" 2>&1
"$py" -c "import jax; assert jax.default_backend() == 'gpu', jax.devices()" || exit 1

# step NAME CAP CMD...: runs CMD for at most CAP seconds (0: no cap) and what is left
# of the budget, and records its exit status (124: cut) and seconds.
step() {
  local name="$1" limit="$2" left t0 rc
  shift 2
  if [[ "$skip" == *" $name "* ]]; then return; fi
  if ((budget > 0)); then
    left=$((budget - ($(date +%s) - start)))
    if ((left < 20)); then
      printf '%s\tnot started (budget)\t0\n' "$name" >> "$out/steps.tsv"
      return
    fi
    if ((limit == 0 || left < limit)); then limit=$left; fi
  fi
  echo "== $name ($(date +%T), limit ${limit}s; 0 = none)"
  t0=$(date +%s)
  if ((limit > 0)); then timeout "$limit" "$@"; else "$@"; fi
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >> "$out/steps.tsv"
}

step roofline "${CAP_ROOFLINE:-0}" "$py" experiments/bench_roofline/main.py --matmul 8192 \
  --stream $((1 << 28)) --lenet-samples 2048 --groups 16384 --repeats 3 \
  --memory-mb 32768 --out "$out/roofline"

step demo "${CAP_DEMO:-0}" "$py" -m qselax.cli run --quiet --out "$out/demo"

step lenet 0 "$py" experiments/generalisation/main.py --suite fashion-lenet300 \
  --rows exhaustive --seeds 0 --set k=2 --set batch_samples=null \
  --set cost_samples=null --set "sweeps=${LENET_SWEEPS:-40}" \
  --set memory_mb=65536 --set "data_dir=\"$data\"" --tag /gpu-k2-full \
  --logs "$out/lenet_fashion/runs" --out "$out/lenet_fashion"

step peers 0 "$py" experiments/peers/main.py --ks 6 8 10 12 --groups 1 64 1024 \
  --out "$out/peers"

echo "== done: $out ($(($(date +%s) - start)) s)"
cat "$out/steps.tsv"
