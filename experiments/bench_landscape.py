"""Benchmark: incremental exact landscapes against the naive full forward pass.

Times, in one run on one machine, the landscape evaluation of the default demo
(digits, random 64-256-10 MLP, fan-in groups of K = 8, 359 validation samples):

* ``rank1`` (qselax's default incremental evaluator) on **all** groups;
* ``suffix`` (recompute the group's layer and everything after it) and ``naive``
  (a full masked forward pass per configuration, the test oracle) on a sample of
  groups from every layer (running them on all groups would take tens of minutes),
  reported per group and extrapolated to all groups;
* one full exact sweep (landscapes + exhaustive solve + acceptance + scoring) of the
  default demo's sweep settings, after compilation.

It prints per-group times and the speed-ups as ratios; absolute times depend on the
machine, ratios much less.  Usage::

    python experiments/bench_landscape.py [--sample 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from flax import nnx

from qselax.cli import DEFAULTS
from qselax.data import load_dataset
from qselax.groups import explicit_grouping, flatten_masks, make_grouping
from qselax.landscapes import make_engine
from qselax.networks import make_model, random_masks
from qselax.selection import SelectConfig, select


def _time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=64, help="groups per layer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    data = load_dataset("digits", seed=0)
    hidden = tuple(int(h) for h in DEFAULTS["hidden"].split(","))
    model = make_model("mlp", data.feature_shape, data.num_classes, hidden=hidden)
    k = DEFAULTS["k"]
    grouping = make_grouping("fan_in", model, k)
    graphdef, weights = nnx.split(model)
    flat = flatten_masks(random_masks(jax.random.key(1), model))
    x, y = jax.numpy.asarray(data.x_val), jax.numpy.asarray(data.y_val)
    n = x.shape[0]

    def timed(group, method):
        engine = make_engine(
            model, group, num_samples=n, method=method, memory_mb=DEFAULTS["memory_mb"]
        )
        fn = jax.jit(lambda w, f: engine.all(nnx.merge(graphdef, w), f, x, y))
        return _time(lambda: fn(weights, flat), args.repeats), fn(weights, flat)

    sample_ids = np.concatenate(
        [np.arange(a, min(b, a + args.sample)) for a, b in grouping.layer_slices]
    )
    sample = explicit_grouping(
        [grouping.index[i][grouping.valid[i]] for i in sample_ids], grouping.shapes, k
    )
    rows = {}
    t_all, full = timed(grouping, "auto")
    rows["rank1 (all groups)"] = t_all / grouping.num_groups
    for method in ("rank1", "suffix", "naive"):
        t, out = timed(sample, method)
        rows[f"{method} (sample)"] = t / sample.num_groups
        if method != "rank1":
            err = float(np.max(np.abs(np.asarray(out) - np.asarray(full)[sample_ids])))
            assert err < 1e-4, f"{method} disagrees with rank1 by {err}"

    config = SelectConfig(
        solver="exhaustive",
        k=k,
        sweeps=2,
        mode=DEFAULTS["mode"],
        block_size=DEFAULTS["block_size"],
        memory_mb=DEFAULTS["memory_mb"],
    )
    sel = select(jax.random.key(0), model, data, config, progress=False)
    sweep_s = min(h["seconds"] for h in sel.history)

    base = rows["rank1 (all groups)"]
    print(
        f"digits MLP 64-{'-'.join(map(str, hidden))}-10, {grouping.num_groups} fan-in "
        f"groups of K={k}, {n} validation samples, backend {jax.default_backend()}"
    )
    print(f"{'evaluator':<22} {'ms / group':>11} {'all groups (s)':>15} {'ratio':>8}")
    for name, per in rows.items():
        print(
            f"{name:<22} {per * 1e3:>11.3f} {per * grouping.num_groups:>15.2f} "
            f"{per / base:>8.1f}x"
        )
    print(
        f"one full exact sweep ({DEFAULTS['mode']}, block {DEFAULTS['block_size']}): "
        f"{sweep_s:.2f} s after {sel.compile_s:.1f} s compile"
    )
    print(
        f"speed-up of rank1 over naive: {rows['naive (sample)'] / base:.0f}x, "
        f"over suffix: {rows['suffix (sample)'] / base:.0f}x"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_group_s": rows, "sweep_s": sweep_s}, f, indent=2)


if __name__ == "__main__":
    main()
