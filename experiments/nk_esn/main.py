"""NK quantum neuron selection on NK Echo State Networks: double pole, no velocities.

For every K and seed: draw an NK-ESN (N outputs, each reading K+1 probe neurons),
tabulate every output's Gruau damping fitness for all 2^(K+1) settings of its bits
(N 2^(K+1) training episodes), select masks with the exact references (per-output
exhaustive optimum, NK dynamic programming for the shared mask) and with every
quantum solver in the independent and shared modes, and score the all-output,
top-20 % and best-single-output committees on the 625-start generalisation test.
One JSON line per (K, seed, solver, mode) is appended to ``<out>/<name>.jsonl``
(default ``experiments/nk_esn/results/results.jsonl``).

    python experiments/nk_esn/main.py --preset gain --name gain
    python experiments/nk_esn/main.py --preset reference --plant reference \
        --name reference_plant
    python experiments/nk_esn/main.py --table
    python experiments/nk_esn/main.py --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402


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
    plant: str = "inverted"
    substeps: int | None = None  # the plant's (inverted 2, reference 1)
    max_steps: int = 1000


# --smoke: K = 2, one seed, 6 outputs, anneal only, one sweep, 50-step episodes.
SMOKE = Config(ks=(2,), seeds=(0,), n=6, solvers=("anneal",), sweeps=1, max_steps=50)


# ---------------------------------------------------------------------------
# The call into qselax


def nk_esn(cfg: Config, k: int, seed: int):
    """One NK-ESN run: the network, the landscapes, every solver and mode.

    Returns the result, its wall seconds and the episodes' ``max_steps``.
    """
    import jax

    from qselax import esn as E
    from qselax import nk_selection, pole

    if cfg.preset not in E.PRESETS:
        raise SystemExit(f"--preset must be one of {tuple(E.PRESETS)}")
    config = nk_selection.NKESNConfig(
        esn=E.ESNConfig(
            n=cfg.n, k=k, connectivity=cfg.connectivity, **E.PRESETS[cfg.preset]
        ),
        pole=pole.plant_config(
            cfg.plant,
            max_steps=cfg.max_steps,
            **({} if cfg.substeps is None else {"substeps": cfg.substeps}),
        ),
        solvers=cfg.solvers,
        sweeps=cfg.sweeps,
        train_starts=1,  # the method's single training start (these tables')
    )
    start = time.perf_counter()
    res = nk_selection.nk_esn(jax.random.key(seed), config)
    return res, time.perf_counter() - start, config.pole


# ---------------------------------------------------------------------------


def run(cfg: Config, path: Path) -> None:
    for k in cfg.ks:
        for seed in cfg.seeds:
            res, wall, plant = nk_esn(cfg, k, seed)
            max_steps = plant.max_steps
            steps = np.asarray(res.landscapes.steps)
            common_fields = {
                "preset": cfg.preset,
                "plant": cfg.plant,
                "substeps": plant.substeps,
                "connectivity": cfg.connectivity,
                "n": cfg.n,
                "k": k,
                "seed": seed,
                "episodes": res.episodes,
                "tabulate_s": res.tabulate_s,
                "wall_s": wall,
                "nk_optimum": res.optimum,
                # outputs with a setting that balances the training start throughout
                "balancing_outputs": int(np.sum(steps.max(axis=1) >= max_steps)),
                "max_steps": max_steps,
                # the reference's best single output: best table entry, own bits
                "best_entry": res.best_entry,
            }
            common.write_jsonl(
                path, [{**common_fields, **row} for row in res.rows], append=True
            )
            best = max(r["generalisation"]["top"] for r in res.rows)
            dp = [r for r in res.rows if r["solver"] == "dp"]
            dp = dp[0]["generalisation"] if dp else {}
            print(
                f"K={k} seed={seed}: {res.episodes} episodes in "
                f"{res.tabulate_s:.1f} s, run {wall:.1f} s, best top-20% {best}/625, "
                f"DP mask {dp}, best entry {res.best_entry['generalisation']}",
                flush=True,
            )


# ---------------------------------------------------------------------------
# Tables


def _ms(values, fmt="{:.0f}") -> str:
    return common.mean_std(values, fmt)


def _groups(rows: list[dict]) -> dict:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["k"], r["solver"], r["mode"])].append(r)
    return dict(sorted(groups.items(), key=lambda x: x[0][0]))


def _to_optimum(rs: list[dict]) -> str:
    to_opt = [
        r["calls_to_optimum"] / r["episodes"]
        for r in rs
        if r.get("calls_to_optimum") is not None
    ]
    return f"{np.mean(to_opt):.3f}" if to_opt else "–"


def _scores(rs: list[dict]) -> list[str]:
    return [_ms([r["generalisation"][c] for r in rs]) for c in ("all", "top", "best")]


def table(rows: list[dict]) -> str:
    """Mean ± std over seeds of every (K, solver, mode) row."""
    head = (
        "| K | solver | mode | seeds | all | top 20 % | best single | "
        "optimum rate | sum f_i / DP | look-ups | oracle calls / N 2^(K+1) | "
        "calls to optimum / N 2^(K+1) |"
    )
    lines = [head, "|" + "---|" * 12]
    for (k, solver, mode), rs in _groups(rows).items():
        ratio = [
            r["total_fitness"] / r["nk_optimum"] if r["nk_optimum"] else np.nan
            for r in rs
        ]
        calls = [r["oracle_calls"] / r["episodes"] for r in rs]
        lines.append(
            f"| {k} | {solver} | {mode} | {len(rs)} | "
            + " | ".join(_scores(rs))
            + f" | {_ms([r['optimum_rate'] for r in rs], '{:.3f}')} | "
            f"{_ms(ratio, '{:.3f}')} | {np.mean([r['lookups'] for r in rs]):.0f} | "
            f"{np.mean(calls):.2f} | {_to_optimum(rs)} |"
        )
    return "\n".join(lines) + "\n\n" + footer(rows)


def random_table(rows: list[dict]) -> str:
    """Random wiring: no NK optimum, so no shared-mode optimum rate or DP ratio."""
    body = []
    for (_, solver, mode), rs in _groups(rows).items():
        rates = np.asarray([r["optimum_rate"] for r in rs], np.float64)
        if np.isnan(rates).any():
            rate = "–"
        elif rates.std() == 0:
            rate = f"{rates.mean():.3f}"
        else:
            rate = _ms(rates, "{:.3f}")
        calls = np.mean([r["oracle_calls"] / r["episodes"] for r in rs])
        body.append([solver, mode, *_scores(rs), rate, f"{calls:.2f}", _to_optimum(rs)])
    header = ["solver", "mode", "all", "top 20 %", "best single", "optimum rate"]
    header += ["oracle calls / N 2^(K+1)", "calls to optimum / N 2^(K+1)"]
    return common.markdown(header, body) + "\n\n" + footer(rows)


def footer(rows: list[dict]) -> str:
    """Tabulation time and balancing outputs per K."""
    seeds = {(r["k"], r["seed"]): r for r in rows}
    lines = []
    for k in sorted({k for k, _ in seeds}):
        rs = [r for (kk, _), r in seeds.items() if kk == k]
        lines.append(
            f"K={k}: tabulation {_ms([r['tabulate_s'] for r in rs], '{:.1f}')} s "
            f"for {rs[0]['episodes']} episodes; outputs with a setting balancing "
            f"the training start for {rs[0]['max_steps']} steps: "
            f"{_ms([r['balancing_outputs'] for r in rs], '{:.1f}')} of {rs[0]['n']}"
        )
        entries = [r["best_entry"]["generalisation"] for r in rs if "best_entry" in r]
        if entries:
            lines[-1] += f"; best table entry (own bits): {_ms(entries)} of 625"
    return "\n".join(lines)


# The reference implementation's 100-run means (all outputs / top 20 % / best
# single output = best table entry), per K, on its own (hanging) plant.
REFERENCE_MEANS = {2: (324, 451, 239), 5: (434, 489, 231), 8: (480, 504, 183)}


def _se(values, fmt="{:.0f}") -> str:
    """``mean ± standard error of the mean`` (sample std / sqrt(n))."""
    v = np.asarray(list(values), np.float64)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{fmt.format(v.mean())} ± {fmt.format(se)}"


def reference_table(rows: list[dict]) -> str:
    """Committees on the reference plant, mean ± s.e., beside the reference's means.

    ``best single`` is the best table entry with its own bits (one value per seed,
    the same for every row of a K); ``top / DP`` is the row's mean top-20 % score
    over the DP mask's, ``sum f_i / DP`` its mean training fitness over the DP
    optimum's.
    """
    header = ["K", "solver", "mode", "seeds", "all", "top 20 %", "best single"]
    header += ["top / DP", "sum f_i / DP", "all / top / best (reference, 100 runs)"]
    body = []
    groups = _groups(rows)
    for (k, solver, mode), rs in groups.items():
        dp = np.mean([r["generalisation"]["top"] for r in groups[(k, "dp", "shared")]])
        top = [r["generalisation"]["top"] for r in rs]
        entry = [r["best_entry"]["generalisation"] for r in rs]
        ratio = [r["total_fitness"] / r["nk_optimum"] for r in rs]
        body.append(
            [k, solver, mode, len(rs), _se(r["generalisation"]["all"] for r in rs)]
            + [_se(top), _se(entry), f"{np.mean(top) / dp:.3f}"]
            + [f"{np.mean(ratio):.3f}", " / ".join(map(str, REFERENCE_MEANS[k]))]
        )
    return common.markdown(header, body)


def tables(results: dict[str, list[dict]]) -> str:
    """One table per results file (random wiring in its own format); files of the
    reference plant with every solver also get :func:`reference_table`."""
    out = []
    for name, rows in results.items():
        random = rows[0]["connectivity"] == "random"
        out.append(f"### {name}\n\n" + (random_table if random else table)(rows))
        solvers = {r["solver"] for r in rows}
        if rows[0].get("plant") == "reference" and len(solvers) > 3:
            out.append(
                f"### {name}: committees, mean ± s.e.\n\n" + reference_table(rows)
            )
    return "\n\n".join(out)


def inverted_summary() -> str | None:
    """The inverted plant side by side (masks only, the CMA-ES readout, the
    literature), from the committed results of ``../nk_esn_readout/``."""
    import importlib.util

    folder = Path(__file__).resolve().parents[1] / "nk_esn_readout"
    results = folder / "results"
    if not any(results.glob("*.jsonl")):
        return None
    spec = importlib.util.spec_from_file_location("nk_esn_readout", folder / "main.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    rows = [r for rs in common.read_results(results).values() for r in rs]
    return "### inverted plant, side by side (../nk_esn_readout/)\n\n" + (
        module.summary_table(rows)
    )


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--name", default="results", help="results file <out>/<name>.jsonl")
    p.add_argument("--ks", type=int, nargs="+", default=[2, 5, 8])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--solvers", nargs="+", default=["vqe", "qaoa", "anneal", "grover"])
    p.add_argument("--sweeps", type=int, default=4)
    p.add_argument("--preset", default="gain", help="qselax.esn.PRESETS: gain, ...")
    p.add_argument(
        "--connectivity", default="adjacent", help="adjacent or random probe wiring"
    )
    p.add_argument(
        "--plant", default="inverted", help="qselax.pole.PLANTS: inverted, reference"
    )
    p.add_argument(
        "--substeps", type=int, help="RK4 steps per control step (the plant's)"
    )
    p.add_argument("--max-steps", type=int, default=1000, help="control steps")
    args = p.parse_args()
    if args.table:
        print(tables(common.read_results(common.table_dir(args, __file__))))
        summary = None if args.out else inverted_summary()
        if summary:
            print("\n" + summary)
        return
    cfg = Config(
        ks=tuple(args.ks),
        seeds=tuple(args.seeds),
        n=args.n,
        solvers=tuple(args.solvers),
        sweeps=args.sweeps,
        preset=args.preset,
        connectivity=args.connectivity,
        plant=args.plant,
        substeps=args.substeps,
        max_steps=args.max_steps,
    )
    if args.smoke:
        common.smoke_jax()
        cfg = dataclasses.replace(SMOKE, preset=args.preset, plant=args.plant)
    print(cfg, flush=True)
    path = common.out_dir(args, __file__) / f"{args.name}.jsonl"
    run(cfg, path)
    print(tables({args.name: common.read_jsonl(path)}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
