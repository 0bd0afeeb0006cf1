"""Masks-only NK-ESNs against readout-trained ESNs on the inverted double pole.

Both controllers use the same fixed random reservoir (the best masks-only setting
of ``../nk_esn_search/``: ``ESNConfig(n=50, **PRESETS["masks"])``, K = 8, control
every 0.01 s) and see the same training episodes: the training start and, with
``S > 1`` starts, ``S - 1`` random starts of the test's region
(:func:`qselax.pole.training_starts`).  Per network seed:

* **masks only** (:func:`qselax.nk_selection.nk_esn`, ``train_starts=S``): every
  output's ``2^(K+1)`` settings tabulated from the S starts (``N 2^(K+1) S``
  episodes), the per-output optimum, the exact NK optimum (DP) and annealing in
  both modes, then the committees (all outputs, top 20 %, best single);
* **readout trained** (:func:`qselax.readout.train_readout`): CMA-ES over the
  ``R + 4`` readout weights with the *same budget of training episodes*.

Every controller is scored on the 625-start generalisation test and on a
validation set of 100 further random starts (another key), which is what chooses
between settings; the test is never used for a choice.

    python experiments/nk_esn_readout/main.py --starts 1 8 --seeds 0 1 2 ... 9
    python experiments/nk_esn_readout/main.py --table
    python experiments/nk_esn_readout/main.py --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

COMMITTEES = ("all", "top", "best")
VALIDATION = 100  # random starts of the validation set, key fold_in(key, 3)

# Neuroevolution on the double pole without velocities, Gruau et al.'s (1996)
# protocol: damping fitness from the 4.5 degree start over 1000 steps; a run is
# solved when its champion balances 100,000 steps from that start; its
# generalisation is then the number of the 625 starts balanced for 1000 steps.
# Evaluations: networks evaluated until solved, mean over runs.
LITERATURE = (
    (
        "CE",
        "weights and topology (cellular encoding)",
        "Gruau et al. 1996, in Stanley & Miikkulainen 2002, Table 2",
        "840,000",
    ),
    (
        "ESP",
        "weights (neuron subpopulations)",
        "Gomez & Miikkulainen 1999, in Stanley & Miikkulainen 2002, Table 2",
        "169,466",
    ),
    (
        "NEAT",
        "weights and topology",
        "Stanley & Miikkulainen 2002, Table 2",
        "33,184",
    ),
)


@dataclasses.dataclass(frozen=True)
class Config:
    """The comparison."""

    starts: tuple[int, ...] = (1, 8)
    seeds: tuple[int, ...] = tuple(range(10))
    n: int = 50
    k: int = 8
    reservoir: int = 60
    substeps: int = 1
    max_steps: int = 1000
    solvers: tuple[str, ...] = ("anneal",)
    validation: int = VALIDATION
    readout: bool = True  # False: the masks-only rows alone


SMOKE = Config(starts=(2,), seeds=(0,), n=6, k=2, reservoir=10, max_steps=50)


def run(cfg: Config, path: Path) -> None:
    """Both methods on every (S, seed); one record per controller, appended."""
    import jax
    import jax.numpy as jnp

    from qselax import esn as E
    from qselax import nk_selection, pole, readout

    esn_cfg = E.ESNConfig(
        n=cfg.n, k=cfg.k, reservoir=cfg.reservoir, **E.PRESETS["masks"]
    )
    plant = pole.plant_config(
        "inverted", substeps=cfg.substeps, max_steps=cfg.max_steps
    )
    for s in cfg.starts:
        config = nk_selection.NKESNConfig(
            esn=esn_cfg, pole=plant, solvers=cfg.solvers, train_starts=s
        )
        for seed in cfg.seeds:
            key = jax.random.key(seed)
            begin = time.perf_counter()
            res = nk_selection.nk_esn(key, config)
            masks_s = time.perf_counter() - begin
            net = res.esn
            val = pole.training_starts(
                plant, cfg.validation + 1, jax.random.fold_in(key, 3)
            )[1:]
            base = {"S": s, "seed": seed, "n": cfg.n, "k": cfg.k}
            records = []
            for r, row in enumerate(res.rows):
                validation = {}
                for name in COMMITTEES:
                    weights = E.committee_weights(
                        jnp.asarray(res.row_fitness[r]), name, config.top_fraction
                    )
                    bits = jnp.asarray(res.row_bits[r])
                    ep = E.evaluate(net, bits, weights, val, plant)
                    validation[name] = int(jnp.sum(ep.balanced))
                records.append(
                    {
                        **base,
                        "method": "masks",
                        "solver": row["solver"],
                        "mode": row["mode"],
                        "generalisation": row["generalisation"],
                        "validation": validation,
                        "train_fitness": row["train_fitness"],
                        "episodes": res.episodes,
                        "wall_s": masks_s,
                    }
                )
            if not cfg.readout:
                common.write_jsonl(path, records, append=True)
                print(f"S {s} seed {seed}: masks {masks_s:.0f} s", flush=True)
                continue
            starts = pole.training_starts(plant, s, jax.random.fold_in(key, 1))
            ro = readout.train_readout(
                jax.random.fold_in(key, 2),
                net,
                plant,
                readout.ReadoutConfig(episodes=res.episodes),
                starts=starts,
            )
            score, fitness = readout.readout_scores(net, ro.weights[None], plant)
            ep = readout.evaluate(net, ro.weights, val, plant)
            records.append(
                {
                    **base,
                    "method": "readout",
                    "solver": "cma-es",
                    "mode": "-",
                    "generalisation": {"readout": int(score[0])},
                    "validation": {"readout": int(jnp.sum(ep.balanced))},
                    "train_fitness": {"readout": float(fitness[0])},
                    "search_fitness": ro.fitness,
                    "episodes": ro.episodes,
                    "generations": ro.generations,
                    "popsize": ro.popsize,
                    "wall_s": ro.seconds,
                }
            )
            common.write_jsonl(path, records, append=True)
            dp = next(r for r in records if r["mode"] == "shared")
            print(
                f"S {s} seed {seed}: masks {masks_s:.0f} s, DP mask "
                f"{dp['generalisation']}; readout {ro.seconds:.0f} s, "
                f"{int(score[0])} of 625",
                flush=True,
            )


# ---------------------------------------------------------------------------
# Tables


def _mse(values) -> str:
    v = np.asarray(values, np.float64)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():.0f} ± {se:.0f}"


CONTROLLERS = (
    ("masks", "dp", "shared", "top", "masks, DP mask, top-20 % committee"),
    ("masks", "dp", "shared", "all", "masks, DP mask, all outputs"),
    ("masks", "dp", "shared", "best", "masks, DP mask, best single output"),
    ("masks", "anneal", "shared", "top", "masks, anneal shared, top 20 %"),
    ("masks", "anneal", "independent", "top", "masks, anneal independent, top 20 %"),
    ("readout", "cma-es", "-", "readout", "readout trained by CMA-ES"),
)


def comparison_table(rows: list[dict]) -> str:
    """One row per (S, N, controller): test and validation scores, mean ± s.e."""
    out = []
    for s, n in sorted({(r["S"], r["n"]) for r in rows}):
        for method, solver, mode, key, label in CONTROLLERS:
            sel = [
                r
                for r in rows
                if r["S"] == s
                and r["n"] == n
                and r["method"] == method
                and r["solver"] == solver
                and r["mode"] == mode
            ]
            if not sel:
                continue
            sel.sort(key=lambda r: r["seed"])
            test = [r["generalisation"][key] for r in sel]
            out.append(
                (
                    s,
                    n,
                    label,
                    len(sel),
                    f"{sel[0]['episodes']:,}",
                    _mse(test),
                    ", ".join(str(t) for t in test),
                    _mse([r["validation"][key] for r in sel]),
                    f"{np.mean([r['wall_s'] for r in sel]):.0f}",
                )
            )
    header = (
        "S",
        "N",
        "controller",
        "seeds",
        "training episodes",
        "test (of 625)",
        "per seed",
        "validation (of 100)",
        "wall s",
    )
    return common.markdown(header, out)


def summary_table(rows: list[dict]) -> str:
    """The inverted plant side by side: masks-only committees (the DP mask's
    top 20 %, per S and N), the CMA-ES readout and the literature's figures."""
    out = []
    groups = sorted({(r["S"], r["n"]) for r in rows})
    for method, key, label, trained in (
        ("masks", "top", "NK-ESN, DP mask, top-20 % committee", "N probe mask bits"),
        ("readout", "readout", "ESN, readout by CMA-ES", "R + 4 = 64 weights"),
    ):
        for s, n in groups:
            sel = [
                r
                for r in rows
                if (r["S"], r["n"]) == (s, n)
                and r["method"] == method
                and r["solver"] in ("dp", "cma-es")
            ]
            if not sel:
                continue
            out.append(
                (
                    f"{label} (S = {s}, N = {n})"
                    if method == "masks"
                    else f"{label} (S = {s})",
                    trained,
                    f"{sel[0]['episodes']:,}",
                    _mse([r["generalisation"][key] for r in sel]),
                    len(sel),
                )
            )
    for method, trained, source, evals in LITERATURE:
        out.append((f"{method} ({source})", trained, evals, "not checked", "-"))
    header = (
        "controller",
        "trained",
        "training episodes",
        "test (of 625), mean ± s.e.",
        "seeds",
    )
    return common.markdown(header, out)


def literature_table() -> str:
    """The neuroevolution figures quoted in the README, with their sources."""
    header = ("method", "trained", "source", "evaluations to solve")
    return common.markdown(header, LITERATURE)


def tables(results: dict[str, list[dict]]) -> str:
    parts = []
    for name, rows in results.items():
        parts.append(f"## {name}\n\n{comparison_table(rows)}")
    every = [r for rows in results.values() for r in rows]
    parts.append(f"## inverted plant, side by side\n\n{summary_table(every)}")
    parts.append(f"## literature\n\n{literature_table()}")
    return "\n\n".join(parts)


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--name", default="compare", help="records: <out>/<name>.jsonl")
    p.add_argument("--starts", type=int, nargs="+", default=list(Config.starts))
    p.add_argument("--seeds", type=int, nargs="+", default=list(Config.seeds))
    p.add_argument("--n", type=int, default=Config.n, help="outputs = probes N")
    p.add_argument(
        "--no-readout", action="store_true", help="the masks-only rows alone"
    )
    args = p.parse_args()
    if args.table:
        print(tables(common.read_results(common.table_dir(args, __file__))))
        return
    cfg = Config(
        starts=tuple(args.starts),
        seeds=tuple(args.seeds),
        n=args.n,
        readout=not args.no_readout,
    )
    if args.smoke:
        common.smoke_jax()
        cfg = SMOKE
    out = common.out_dir(args, __file__)
    run(cfg, out / f"{args.name}.jsonl")
    print(tables(common.read_results(out)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
