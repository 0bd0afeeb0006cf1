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
as a statistic, never in the search.  Usage::

    python experiments/grover_scaling.py [--ks 6 8 10 12 14] [--groups 128]
        [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from qselax.solvers.grover import default_oracle_budget, grover_search


def measure(k: int, groups: int, seed: int) -> dict:
    """GAS statistics on ``groups`` random K-bit landscapes."""
    key = jax.random.key(seed)
    land_key, search_key = jax.random.split(jax.random.fold_in(key, k))
    landscapes = jax.random.normal(land_key, (groups, 2**k))
    search = jax.jit(grover_search)
    start = time.perf_counter()
    out = jax.block_until_ready(search(search_key, landscapes))
    seconds = time.perf_counter() - start
    found = np.asarray(out.calls_to_optimum) >= 0
    calls = np.asarray(out.calls_to_optimum)[found]
    looks = np.asarray(out.lookups_to_optimum)[found]
    return {
        "k": k,
        "groups": groups,
        "oracle_budget": default_oracle_budget(k),
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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[6, 8, 10, 12, 14])
    parser.add_argument("--groups", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    rows = [measure(k, args.groups, args.seed) for k in args.ks]
    header = (
        f"{'K':>3} {'2^K':>6} {'budget':>6} {'opt.rate':>8} {'calls→opt':>10} "
        f"{'median':>7} {'lookups→opt':>11} {'s':>6}"
    )
    print(f"devices: {jax.devices()}")
    print(header)
    for r in rows:
        print(
            f"{r['k']:>3} {2 ** r['k']:>6} {r['oracle_budget']:>6} "
            f"{r['optimum_rate']:>8.3f} {r['mean_calls_to_optimum']:>10.1f} "
            f"{r['median_calls_to_optimum']:>7.1f} "
            f"{r['mean_lookups_to_optimum']:>11.1f} {r['seconds_with_compile']:>6.1f}"
        )
    ks = [r["k"] for r in rows]
    fits = {
        "slope_log2_calls_to_optimum": slope(
            ks, [r["mean_calls_to_optimum"] for r in rows]
        ),
        "slope_log2_lookups_to_optimum": slope(
            ks, [r["mean_lookups_to_optimum"] for r in rows]
        ),
        "slope_log2_calls_plus_lookups": slope(
            ks,
            [r["mean_calls_to_optimum"] + r["mean_lookups_to_optimum"] for r in rows],
        ),
    }
    print(
        "least-squares slope of log2(mean) vs K  (theory 0.5, exhaustive 1.0): "
        + ", ".join(f"{name[11:]} {value:.3f}" for name, value in fits.items())
    )
    result = {"rows": rows, **fits, "seed": args.seed}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
