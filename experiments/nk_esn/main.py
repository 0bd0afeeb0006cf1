"""NK quantum neuron selection on NK Echo State Networks: double pole, no velocities.

For every K and seed: draw an NK-ESN (N outputs, each reading K+1 probe neurons),
tabulate every output's Gruau damping fitness for all 2^(K+1) settings of its bits
(N 2^(K+1) training episodes), select masks with the exact references (per-output
exhaustive optimum, NK dynamic programming for the shared mask) and with every
quantum solver in the independent and shared modes, and score the all-output,
top-20 % and best-single-output committees on the 625-start generalisation test.
One JSON line per (K, seed, solver, mode).

    python experiments/nk_esn/main.py --preset gain --out experiments/nk_esn/gain.jsonl
    python experiments/nk_esn/main.py --table experiments/nk_esn/gain.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import defaultdict

import jax
import numpy as np

from qselax import esn as E
from qselax import pole


@dataclasses.dataclass(frozen=True)
class Config:
    """The experiment grid."""

    ks: tuple[int, ...] = (2, 5, 8)
    seeds: tuple[int, ...] = tuple(range(10))
    n: int = 100
    solvers: tuple[str, ...] = ("vqe", "qaoa", "anneal", "grover")
    sweeps: int = 4
    preset: str = "gain"
    connectivity: str = "adjacent"
    substeps: int = 2


def run(cfg: Config, out) -> None:
    for k in cfg.ks:
        for seed in cfg.seeds:
            config = E.NKESNConfig(
                esn=E.ESNConfig(
                    n=cfg.n, k=k, connectivity=cfg.connectivity, **E.PRESETS[cfg.preset]
                ),
                pole=pole.PoleConfig(substeps=cfg.substeps),
                solvers=cfg.solvers,
                sweeps=cfg.sweeps,
            )
            start = time.perf_counter()
            res = E.nk_esn(jax.random.key(seed), config)
            wall = time.perf_counter() - start
            steps = np.asarray(res.landscapes.steps)
            common = {
                "preset": cfg.preset,
                "connectivity": cfg.connectivity,
                "n": cfg.n,
                "k": k,
                "seed": seed,
                "episodes": res.episodes,
                "tabulate_s": res.tabulate_s,
                "wall_s": wall,
                "nk_optimum": res.optimum,
                # outputs with a setting that balances the training start throughout
                "balancing_outputs": int(
                    np.sum(steps.max(axis=1) >= config.pole.max_steps)
                ),
                "max_steps": config.pole.max_steps,
            }
            for row in res.rows:
                line = {**common, **row}
                out.write(json.dumps(line) + "\n")
                out.flush()
            best = max(r["generalisation"]["top"] for r in res.rows)
            print(
                f"K={k} seed={seed}: {res.episodes} episodes in "
                f"{res.tabulate_s:.1f} s, run {wall:.1f} s, best top-20% {best}/625",
                flush=True,
            )


def _ms(values, fmt="{:.0f}") -> str:
    v = np.asarray(values, np.float64)
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}"


def table(path: str) -> str:
    """Mean ± std over seeds of every (K, solver, mode) row."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["k"], r["solver"], r["mode"])].append(r)
    head = (
        "| K | solver | mode | seeds | all | top 20 % | best single | "
        "optimum rate | sum f_i / DP | look-ups | oracle calls / N 2^(K+1) | "
        "calls to optimum / N 2^(K+1) |"
    )
    lines = [head, "|" + "---|" * 12]
    for (k, solver, mode), rs in sorted(groups.items(), key=lambda x: x[0][0]):
        ratio = [
            r["total_fitness"] / r["nk_optimum"] if r["nk_optimum"] else np.nan
            for r in rs
        ]
        calls = [r["oracle_calls"] / r["episodes"] for r in rs]
        to_opt = [
            r["calls_to_optimum"] / r["episodes"]
            for r in rs
            if r.get("calls_to_optimum") is not None
        ]
        to_opt = f"{np.mean(to_opt):.3f}" if to_opt else "–"
        lines.append(
            f"| {k} | {solver} | {mode} | {len(rs)} | "
            f"{_ms([r['generalisation']['all'] for r in rs])} | "
            f"{_ms([r['generalisation']['top'] for r in rs])} | "
            f"{_ms([r['generalisation']['best'] for r in rs])} | "
            f"{_ms([r['optimum_rate'] for r in rs], '{:.3f}')} | "
            f"{_ms(ratio, '{:.3f}')} | {np.mean([r['lookups'] for r in rs]):.0f} | "
            f"{np.mean(calls):.2f} | {to_opt} |"
        )
    seeds = {(r["k"], r["seed"]): r for r in rows}
    lines.append("")
    for k in sorted({k for k, _ in seeds}):
        rs = [r for (kk, _), r in seeds.items() if kk == k]
        lines.append(
            f"K={k}: tabulation {_ms([r['tabulate_s'] for r in rs], '{:.1f}')} s "
            f"for {rs[0]['episodes']} episodes; outputs with a setting balancing "
            f"the training start for {rs[0]['max_steps']} steps: "
            f"{_ms([r['balancing_outputs'] for r in rs], '{:.1f}')} of {rs[0]['n']}"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", help="print the table of a results file and exit")
    p.add_argument("--ks", type=int, nargs="+", default=[2, 5, 8])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--solvers", nargs="+", default=["vqe", "qaoa", "anneal", "grover"])
    p.add_argument("--sweeps", type=int, default=4)
    p.add_argument("--preset", choices=tuple(E.PRESETS), default="gain")
    p.add_argument("--connectivity", choices=E.CONNECTIVITIES, default="adjacent")
    p.add_argument("--substeps", type=int, default=2)
    p.add_argument("--out", default="experiments/nk_esn/results.jsonl")
    args = p.parse_args()
    if args.table:
        print(table(args.table))
        return
    cfg = Config(
        ks=tuple(args.ks),
        seeds=tuple(args.seeds),
        n=args.n,
        solvers=tuple(args.solvers),
        sweeps=args.sweeps,
        preset=args.preset,
        connectivity=args.connectivity,
        substeps=args.substeps,
    )
    print(cfg, flush=True)
    with open(args.out, "a") as out:
        run(cfg, out)
    print(table(args.out))


if __name__ == "__main__":
    main()
