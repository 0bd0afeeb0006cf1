#!/usr/bin/env bash
# Everything a GPU machine should measure, in one command (never needed for tests or
# CI). Run from the repository root in an environment with the project installed
# with its GPU and peer extras (pip install -e ".[gpu,bench]"; the machine may have
# no network, so install before). Fashion-MNIST is read from --data-dir DIR (the
# Debian package's files: train-images-idx3-ubyte.gz, ...), default the package's
# /usr/share/datasets/fashion-mnist.
#
#   bash experiments/gpu/run.sh [OUT] [DATA_DIR]
#
# writes, under OUT (default runs/gpu):
#   demo/result.json            the default demo (qselax run)
#   lenet_fashion/result.json   one subsampled exhaustive sweep of LeNet-300-100 on
#                               the full Fashion-MNIST split
#   roofline/roofline.jsonl     experiments/bench_roofline at GPU sizes
#   peers/                      experiments/peers (qselax vs PennyLane and Qiskit Aer)
#   env.txt                     nvidia-smi, jax devices and versions
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/gpu}"
data="${2:-/usr/share/datasets/fashion-mnist}"
mkdir -p "$out"
{
  nvidia-smi || true
  python -c "import jax, jaxlib; print(jax.__version__, jaxlib.__version__, jax.devices())"
} > "$out/env.txt" 2>&1
python -c "import jax; assert jax.default_backend() == 'gpu', jax.devices()"

step() { echo "== $1 ($(date +%T))"; }

step "demo"
python -m qselax.cli run --quiet --out "$out/demo"

step "LeNet-300-100 on Fashion-MNIST, one sweep"
python -m qselax.cli run --quiet --dataset fashion_mnist --data-dir "$data" \
  --model lenet300 --solver exhaustive --sweeps 1 --dense-epochs 0 \
  --batch-samples 2048 --cost-samples 16384 --out "$out/lenet_fashion"

step "roofline"
python experiments/bench_roofline/main.py --matmul 8192 --stream $((1 << 28)) \
  --lenet-samples 2048 --groups 16384 --out "$out/roofline"

step "peers"
python experiments/peers/main.py --ks 6 8 10 12 --groups 1 64 1024 \
  --out "$out/peers"

step "done: $out"
