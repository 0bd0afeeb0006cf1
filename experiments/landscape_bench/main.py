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
machine, ratios much less.  One JSON line per run goes to
``<out>/landscape_bench.jsonl`` (appended).  Usage::

    python experiments/landscape_bench/main.py [--sample 64] [--repeats 3]
    python experiments/landscape_bench/main.py --table
    python experiments/landscape_bench/main.py --smoke
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

FILE = "landscape_bench.jsonl"
# --smoke: a 64-16-10 MLP, K = 4, 2 sampled groups per layer, one sweep.
SMOKE = dict(hidden="16", k=4, sample=2, repeats=1, sweeps=1)


def _time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------
# The calls into qselax


def defaults() -> dict:
    """The demo's settings (``qselax run`` with no flags), resolved by the CLI."""
    from qselax.cli import build_parser, resolve

    return resolve(build_parser().parse_args(["run"]))


def setup(hidden: str, k: int):
    """The demo's data, network, its weights, fan-in grouping and a random mask."""
    from flax import nnx

    from qselax.data import load_dataset
    from qselax.groups import flatten_masks, make_grouping
    from qselax.networks import make_model, random_masks

    data = load_dataset("digits", seed=0)
    widths = tuple(int(h) for h in hidden.split(","))
    model = make_model("mlp", data.feature_shape, data.num_classes, hidden=widths)
    grouping = make_grouping("fan_in", model, k)
    flat = flatten_masks(random_masks(jax.random.key(1), model))
    _, weights = nnx.split(model)
    return data, model, weights, grouping, flat


def sample_groups(grouping, ids: np.ndarray, k: int):
    from qselax.groups import explicit_grouping

    return explicit_grouping(
        [grouping.index[i][grouping.valid[i]] for i in ids], grouping.shapes, k
    )


def landscape_fn(model, group, num_samples: int, method: str, x, y):
    """A jitted ``(weights, flat mask) -> landscapes of group`` with ``method``."""

    from qselax.landscapes import NetParams, network_landscape

    land = network_landscape(
        model,
        group,
        num_samples=num_samples,
        evaluator=method,
        memory_mb=defaults()["memory_mb"],
    )
    return jax.jit(lambda w, f: land.all(NetParams(w, x, y, {}), f))


def exact_sweep(model, data, k: int, sweeps: int):
    """The demo's exact selection; its fastest sweep and its compile seconds."""
    from qselax.selection import SelectConfig, select

    d = defaults()
    config = SelectConfig(
        solver="exhaustive",
        k=k,
        sweeps=sweeps,
        mode=d["mode"],
        block_size=d["block_size"],
        memory_mb=d["memory_mb"],
    )
    sel = select(jax.random.key(0), model, data, config, progress=False)
    return min(h["seconds"] for h in sel.history), sel.compile_s


# ---------------------------------------------------------------------------


def run(args) -> dict:
    data, model, weights, grouping, flat = setup(args.hidden, args.k)
    x, y = jax.numpy.asarray(data.x_val), jax.numpy.asarray(data.y_val)
    n = x.shape[0]

    def timed(group, method):
        fn = landscape_fn(model, group, n, method, x, y)
        return _time(lambda: fn(weights, flat), args.repeats), fn(weights, flat)

    sample_ids = np.concatenate(
        [np.arange(a, min(b, a + args.sample)) for a, b in grouping.layer_slices]
    )
    sample = sample_groups(grouping, sample_ids, args.k)
    rows = {}
    t_all, full = timed(grouping, "auto")
    rows["rank1 (all groups)"] = t_all / grouping.num_groups
    for method in ("rank1", "suffix", "naive"):
        t, out = timed(sample, method)
        rows[f"{method} (sample)"] = t / sample.num_groups
        if method != "rank1":
            err = float(np.max(np.abs(np.asarray(out) - np.asarray(full)[sample_ids])))
            assert err < 1e-4, f"{method} disagrees with rank1 by {err}"
    sweep_s, compile_s = exact_sweep(model, data, args.k, args.sweeps)
    d = defaults()
    return {
        "per_group_s": rows,
        "sweep_s": sweep_s,
        "compile_s": compile_s,
        "hidden": args.hidden,
        "k": args.k,
        "groups": grouping.num_groups,
        "samples": n,
        "sample_per_layer": args.sample,
        "repeats": args.repeats,
        "sweeps": args.sweeps,
        "mode": d["mode"],
        "block_size": d["block_size"],
        "backend": jax.default_backend(),
    }


def table(r: dict) -> str:
    """One run's table and summary lines."""
    base = r["per_group_s"]["rank1 (all groups)"]
    body = [
        [
            name,
            f"{per * 1e3:.3f}",
            f"{per * r['groups']:.2f}",
            f"{per / base:.1f}x",
        ]
        for name, per in r["per_group_s"].items()
    ]
    rows = r["per_group_s"]
    return "\n".join(
        [
            f"digits MLP 64-{'-'.join(r['hidden'].split(','))}-10, {r['groups']} "
            f"fan-in groups of K={r['k']}, {r['samples']} validation samples, "
            f"backend {r['backend']}",
            "",
            common.markdown(
                ["evaluator", "ms / group", "all groups (s)", "ratio"], body
            ),
            "",
            f"one full exact sweep ({r['mode']}, block {r['block_size']}): "
            f"{r['sweep_s']:.2f} s after {r['compile_s']:.1f} s compile; speed-up of "
            f"rank1 over naive: {rows['naive (sample)'] / base:.0f}x, over suffix: "
            f"{rows['suffix (sample)'] / base:.0f}x",
        ]
    )


def main() -> None:
    parser = common.parser(__file__, __doc__)
    parser.add_argument("--sample", type=int, default=64, help="groups per layer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweeps", type=int, default=2, help="exact sweeps timed")
    parser.add_argument("--hidden", help="hidden widths (default the demo's, 256)")
    parser.add_argument("--k", type=int, help="bits per group (default the demo's, 8)")
    args = parser.parse_args()
    if args.table:
        results = common.read_results(common.table_dir(args, __file__))
        print("\n\n".join(table(r) for r in results[Path(FILE).stem]))
        return
    if args.smoke:
        common.smoke_jax()
        for name, value in SMOKE.items():
            setattr(args, name, value)
    args.hidden = args.hidden or defaults()["hidden"]
    args.k = args.k or defaults()["k"]
    out = common.out_dir(args, __file__)
    record = run(args)
    common.write_jsonl(out / FILE, [record], append=True)
    print(table(record))
    print(f"wrote {out / FILE}")


if __name__ == "__main__":
    main()
