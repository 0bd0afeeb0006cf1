"""Experiment: how Grover adaptive search's cost to the optimum grows with K.

Question: on random landscapes (i.i.d. N(0, 1) costs, no structure to exploit), how
many oracle calls (Grover iterations) does GAS need until its kept configuration
first attains the group's minimum, as a function of K?  Theory (Durr-Hoyer):
``O(sqrt(2^K))``, a slope of 0.5 in ``log2(calls)`` against K; exhaustive search
reads all ``2^K`` entries, a slope of 1.0.

For each K it runs :func:`qselax.solvers.grover.grover_search` at the default
(Durr-Hoyer) budget on G random landscapes and reports the optimum rate, the mean
and median oracle calls to the optimum (over the groups that found it), the mean
landscape look-ups (measurements) to the optimum, and the least-squares slopes of
``log2(mean)`` against K.  ``calls_to_optimum`` uses the landscape minimum only
as a statistic, never in the search.  One JSON line per K goes to
``<out>/grover_scaling.jsonl``, the slopes to ``<out>/grover_scaling_fit.jsonl``.
Usage::

    python experiments/grover_scaling/main.py [--ks 6 8 10 12 14] [--groups 128]
        [--seed 0] [--out DIR]
    python experiments/grover_scaling/main.py --table
    python experiments/grover_scaling/main.py --plot
    python experiments/grover_scaling/main.py --smoke

``--plot`` draws the README's figure (the costs to the optimum against K on a log
scale, beside 2^(K/2) and 2^K) into ``figures/calls_to_optimum.png`` with
:mod:`qselax.plots`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

SMOKE = {"ks": [3, 4], "groups": 8}


# ---------------------------------------------------------------------------
# The calls into qselax


def grover_search():
    """GAS at its default (Durr-Hoyer) budget, jitted: ``(key, landscapes) -> out``."""
    from qselax.solvers.grover import grover_search

    return jax.jit(grover_search)


def oracle_budget(k: int) -> int:
    from qselax.solvers.grover import default_oracle_budget

    return default_oracle_budget(k)


# ---------------------------------------------------------------------------


def measure(k: int, groups: int, seed: int) -> dict:
    """GAS statistics on ``groups`` random K-bit landscapes."""
    key = jax.random.key(seed)
    land_key, search_key = jax.random.split(jax.random.fold_in(key, k))
    landscapes = jax.random.normal(land_key, (groups, 2**k))
    search = grover_search()
    start = time.perf_counter()
    out = jax.block_until_ready(search(search_key, landscapes))
    seconds = time.perf_counter() - start
    found = np.asarray(out.calls_to_optimum) >= 0
    calls = np.asarray(out.calls_to_optimum)[found]
    looks = np.asarray(out.lookups_to_optimum)[found]
    return {
        "k": k,
        "groups": groups,
        "oracle_budget": oracle_budget(k),
        "optimum_rate": float(found.mean()),
        "mean_calls_to_optimum": float(calls.mean()) if calls.size else float("nan"),
        "median_calls_to_optimum": float(np.median(calls)) if calls.size else None,
        "mean_lookups_to_optimum": float(looks.mean()) if looks.size else None,
        "mean_oracle_calls": float(np.asarray(out.oracle_calls).mean()),
        "mean_lookups": float(np.asarray(out.lookups).mean()),
        "seconds_with_compile": seconds,
    }


def slope(ks, values) -> float:
    """Least-squares slope of ``log2(values)`` against K."""
    return float(np.polyfit(np.asarray(ks, float), np.log2(values), 1)[0])


def fits(rows: list[dict]) -> dict:
    ks = [r["k"] for r in rows]
    calls = [r["mean_calls_to_optimum"] for r in rows]
    looks = [r["mean_lookups_to_optimum"] for r in rows]
    return {
        "ks": ks,
        "slope_log2_calls_to_optimum": slope(ks, calls),
        "slope_log2_lookups_to_optimum": slope(ks, looks),
        "slope_log2_calls_plus_lookups": slope(
            ks, [c + lk for c, lk in zip(calls, looks, strict=True)]
        ),
    }


def table(rows: list[dict], fit: dict) -> str:
    """The README's table and slope line."""
    header = ["K", "2^K", "budget", "opt. rate", "calls→opt", "median"]
    header += ["lookups→opt", "s"]
    body = [
        [
            r["k"],
            2 ** r["k"],
            r["oracle_budget"],
            f"{r['optimum_rate']:.3f}",
            f"{r['mean_calls_to_optimum']:.1f}",
            f"{r['median_calls_to_optimum']:.1f}",
            f"{r['mean_lookups_to_optimum']:.1f}",
            f"{r['seconds_with_compile']:.1f}",
        ]
        for r in rows
    ]
    slopes = ", ".join(
        f"{name[11:]} {value:.3f}"
        for name, value in fit.items()
        if name.startswith("slope_")
    )
    return (
        common.markdown(header, body)
        + "\n\nleast-squares slope of log2(mean) vs K  (theory 0.5, exhaustive 1.0): "
        + slopes
    )


def plot(rows: list[dict], figures: Path) -> Path:
    """The README's figure: mean costs to the optimum per K, log2 scale."""
    from qselax.plots import plot_series, save_figure

    ks = [r["k"] for r in rows]
    calls = np.asarray([r["mean_calls_to_optimum"] for r in rows])
    lookups = np.asarray([r["mean_lookups_to_optimum"] for r in rows])
    fig = plot_series(
        {
            "oracle calls to the optimum": (ks, calls),
            "measurements to the optimum": (ks, lookups),
            "calls + measurements": (ks, calls + lookups),
            "2^(K/2) (square-root law)": (ks, [2 ** (k / 2) for k in ks]),
            "2^K (exhaustive)": (ks, [2**k for k in ks]),
        },
        xlabel="K (qubits)",
        ylabel="mean per group",
        title="Grover adaptive search on random landscapes",
        logy=True,
        dashed=("2^(K/2) (square-root law)", "2^K (exhaustive)"),
    )
    return save_figure(fig, figures / "calls_to_optimum", formats=("png",))[0]


def main(argv=None) -> None:
    parser = common.parser(__file__, __doc__)
    parser.add_argument("--ks", type=int, nargs="+", default=[6, 8, 10, 12, 14])
    parser.add_argument("--groups", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--plot", action="store_true", help="draw the README's figure and exit"
    )
    args = parser.parse_args(argv)
    if args.table:
        results = common.read_results(common.table_dir(args, __file__))
        print(table(results["grover_scaling"], results["grover_scaling_fit"][0]))
        return
    if args.plot:
        results = common.read_results(common.table_dir(args, __file__))
        figures = common.figures_dir(args, __file__)
        print(f"wrote {plot(results['grover_scaling'], figures)}")
        return
    if args.smoke:
        common.smoke_jax()
        args.ks, args.groups = SMOKE["ks"], SMOKE["groups"]
    out = common.out_dir(args, __file__)
    rows = [{**measure(k, args.groups, args.seed), "seed": args.seed} for k in args.ks]
    fit = {**fits(rows), "seed": args.seed}
    common.write_jsonl(out / "grover_scaling.jsonl", rows)
    common.write_jsonl(out / "grover_scaling_fit.jsonl", [fit])
    print(f"devices: {jax.devices()}")
    print(table(rows, fit))
    print(f"\nwrote {out}/grover_scaling.jsonl, grover_scaling_fit.jsonl")


if __name__ == "__main__":
    main()
