"""Tunes the field's mask finders on validation, as their papers do.

Grid over the score optimiser, learning rate, keep fraction (edge-popup), evaluation
mask (supermask) and epochs; every setting runs on seeds 0-2 of one dataset/network
and appends one JSON line (validation and test accuracy per seed) to
``<out>/tune.jsonl``.  The kept setting is the one with the best mean *validation*
accuracy (``--table`` prints the ranking); test accuracy is only reported.
Usage::

    python experiments/generalisation/tune.py --hidden 256
    python experiments/generalisation/tune.py --hidden 256 --stage 2
    python experiments/generalisation/tune.py --table
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from qselax.data import load_dataset  # noqa: E402
from qselax.networks import make_model  # noqa: E402
from qselax.scores import score_config, train_scores  # noqa: E402

GRID = {
    "edge-popup": {
        "optimizer": ["sgd", "adam"],
        "learning_rate": [0.03, 0.1, 0.3],
        "keep": [0.3, 0.5, 0.7],
        "epochs": [100, 200],
    },
    "supermask": {
        "optimizer": ["adam", "sgd"],
        "learning_rate": [0.03, 0.1, 0.3, 1.0, 10.0],
        "eval_mask": ["expected", "sampled"],
        "epochs": [100, 200],
    },
}
# Stage 2 widens the grid where stage 1's best settings sat on its edge (the
# largest learning rate, keep fraction and epoch count).
GRID2 = {
    "edge-popup": {
        "optimizer": ["sgd"],
        "learning_rate": [0.3, 1.0],
        "keep": [0.7, 0.8, 0.9],
        "epochs": [200, 400],
    },
    "supermask": {
        "optimizer": ["adam"],
        "learning_rate": [0.3, 1.0],
        "eval_mask": ["expected", "sampled"],
        "epochs": [200, 400],
    },
}
# Adam and SGD want different step sizes: stage-1 SGD rows skip the smallest rates
# and Adam rows the largest.
SKIP = {("adam", 10.0), ("adam", 1.0), ("sgd", 0.03)}


def settings(method: str, smoke: bool, stage: int = 1):
    grid = (GRID if stage == 1 else GRID2)[method]
    if smoke:
        grid = {k: v[:1] for k, v in grid.items()} | {"epochs": [2]}
    for values in itertools.product(*grid.values()):
        s = dict(zip(grid, values, strict=True))
        if stage == 2 or (s["optimizer"], s["learning_rate"]) not in SKIP:
            yield s


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", default="256")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(GRID))
    p.add_argument("--stage", type=int, choices=(1, 2), default=1)
    args = p.parse_args()
    if args.table:
        table(common.table_dir(args, __file__))
        return
    out = common.out_dir(args, __file__)
    if args.smoke:
        common.smoke_jax()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    seeds = args.seeds[:1] if args.smoke else args.seeds
    path = out / "tune.jsonl"
    old = common.read_jsonl(path) if path.exists() else []
    done = {
        (r["method"], r["dataset"], tuple(r["hidden"]), json.dumps(r["setting"]))
        for r in old
    }
    datas = {s: load_dataset(args.dataset, seed=s) for s in seeds}
    for method in args.methods:
        for setting in settings(method, args.smoke, args.stage):
            tag = (method, args.dataset, hidden, json.dumps(setting))
            if tag in done:
                continue
            rows = []
            for seed in seeds:
                data = datas[seed]
                model = make_model(
                    "mlp",
                    data.feature_shape,
                    data.num_classes,
                    hidden=hidden,
                    seed=seed,
                )
                start = time.perf_counter()
                r = train_scores(
                    jax.random.key(seed), model, data, score_config(method, **setting)
                )
                rows.append(
                    {
                        "seed": seed,
                        "val": r.val_accuracy,
                        "test": r.test_accuracy,
                        "kept": r.kept_fraction,
                        "best_epoch": r.best_epoch,
                        "seconds": time.perf_counter() - start,
                    }
                )
            record = {
                "method": method,
                "dataset": args.dataset,
                "hidden": list(hidden),
                "setting": setting,
                "val_mean": float(np.mean([r["val"] for r in rows])),
                "test_mean": float(np.mean([r["test"] for r in rows])),
                "runs": rows,
            }
            common.write_jsonl(path, [record], append=True)
            print(json.dumps({k: v for k, v in record.items() if k != "runs"}))


def table(out: Path) -> None:
    rows = common.read_jsonl(out / "tune.jsonl")
    groups = sorted({(r["method"], r["dataset"], tuple(r["hidden"])) for r in rows})
    for method, dataset, hidden in groups:
        mine = [
            r
            for r in rows
            if (r["method"], r["dataset"], tuple(r["hidden"]))
            == (method, dataset, hidden)
        ]
        mine.sort(key=lambda r: -r["val_mean"])
        print(
            f"\n{method} on {dataset}, hidden {hidden}: top 5 of {len(mine)} by val\n"
        )
        print("| setting | val mean | test mean |\n|---|---|---|")
        for r in mine[:5]:
            s = ", ".join(f"{k}={v}" for k, v in r["setting"].items())
            print(f"| {s} | {r['val_mean']:.4f} | {r['test_mean']:.4f} |")


if __name__ == "__main__":
    main()
