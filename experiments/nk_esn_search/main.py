"""Masks-only NK-ESNs on the inverted double pole: a hyperparameter search.

Only the probe mask bits are learned; every weight stays fixed random.  This script
searches the fixed hyperparameters that echo-state practice tunes (reservoir size,
spectral radius, leak rate, input, bias and output scaling, N, K and the control
interval) with optuna's TPE sampler.  A trial's objective sees training episodes
only: for every search seed it draws the network, tabulates every output's fitness
from the training start (N 2^(K+1) episodes), takes the exact NK optimum of the
shared mask (dynamic programming) and runs its top-20 % committee once from the
training start; the objective is that episode's damping fitness, averaged over the
search seeds.  The 625-start generalisation test is never run during the search.

``--evaluate`` re-scores the best trials on more training networks (the same
objective, ``--rerank`` trials on ``--rerank-seeds``), takes the setting with the
best mean over all those seeds and runs the whole NK-ESN experiment
(:func:`qselax.nk_selection.nk_esn`) on fresh seeds, none of them seen before,
scoring the committees on the generalisation test.

    python experiments/nk_esn_search/main.py --trials 60 --name search
    python experiments/nk_esn_search/main.py --evaluate --name search \
        --seeds 0 1 2 3 4 5 6 7 8 9
    python experiments/nk_esn_search/main.py --table
    python experiments/nk_esn_search/main.py --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    """The search and its evaluation."""

    trials: int = 60
    objective: str = "top"  # "top": committee, "dp": mean f_i of the DP mask
    minutes: float | None = None  # no new trial after this many minutes
    search_seeds: tuple[int, ...] = (1000, 1001)  # networks seen by the search
    study_seed: int = 0  # the TPE sampler's
    seeds: tuple[int, ...] = tuple(range(10))  # fresh networks of --evaluate
    rerank: int = 10  # the best trials re-scored on rerank_seeds before --evaluate
    rerank_seeds: tuple[int, ...] = (1002, 1003, 1004, 1005)  # training only
    solvers: tuple[str, ...] = ("anneal",)
    ns: tuple[int, ...] = (50, 100)
    ks: tuple[int, ...] = (2, 5, 8)
    reservoirs: tuple[int, ...] = (30, 60, 120)
    max_steps: int = 1000
    # The first trial: the nk_esn experiment's ``gain`` preset (0.6 spectral radius,
    # no leak, no biases, output gain 30, 0.02 s control), the best known before.
    first: tuple[tuple[str, object], ...] = (
        ("n", 100),
        ("k", 8),
        ("reservoir", 60),
        ("spectral_radius", 0.6),
        ("leak", 1.0),
        ("input_scale", 1.0),
        ("bias_scale", 0.0),
        ("output_scale", 30.0),
        ("substeps", 2),
    )


# --smoke: two trials of tiny networks and 50-step episodes, one fresh seed.
SMOKE = Config(
    trials=2,
    first=(),
    rerank=2,
    rerank_seeds=(1002,),
    search_seeds=(1000,),
    seeds=(0,),
    ns=(6,),
    ks=(2,),
    reservoirs=(8,),
    max_steps=50,
)


def space(trial, cfg: Config) -> dict:
    """One point of the search space (optuna ``trial.suggest_*``)."""
    return {
        "n": trial.suggest_categorical("n", list(cfg.ns)),
        "k": trial.suggest_categorical("k", list(cfg.ks)),
        "reservoir": trial.suggest_categorical("reservoir", list(cfg.reservoirs)),
        "spectral_radius": trial.suggest_float("spectral_radius", 0.1, 1.5),
        "leak": trial.suggest_float("leak", 0.05, 1.0, log=True),
        "input_scale": trial.suggest_float("input_scale", 0.1, 30.0, log=True),
        "bias_scale": trial.suggest_float("bias_scale", 0.0, 1.0),
        "output_scale": trial.suggest_float("output_scale", 1.0, 100.0, log=True),
        "substeps": trial.suggest_categorical("substeps", [1, 2]),
    }


def configs(params: dict, max_steps: int):
    """The ESN and plant of one point: ``(ESNConfig, PoleConfig)``."""
    from qselax import esn as E
    from qselax import pole

    p = dict(params)
    plant = pole.plant_config(
        "inverted", max_steps=max_steps, substeps=int(p.pop("substeps"))
    )
    return E.ESNConfig(**p), plant


OBJECTIVES = ("top", "dp")


def train_objective(params: dict, seeds, max_steps: int, kind: str = "top") -> dict:
    """Training-only measures of one setting, per search seed and averaged.

    The network of seed ``s`` is the one :func:`qselax.nk_selection.nk_esn` draws
    from ``jax.random.key(s)``.  The objective (``kind``) is the mean over seeds of
    the DP mask's top-20 % committee's damping fitness from the training start
    (``"top"``) or of the DP optimum's mean output fitness ``sum_i f_i / N``
    (``"dp"``); both are returned with their per-seed parts.
    """
    import jax
    import jax.numpy as jnp

    from qselax import esn as E
    from qselax import nk, pole
    from qselax.bits import bit_index

    esn_cfg, plant = configs(params, max_steps)
    esn_cfg.validate()
    start = pole.train_start(plant)[None]
    top, whole, optimum, balancing = [], [], [], []
    for seed in seeds:
        net = E.make_esn(jax.random.fold_in(jax.random.key(seed), 0), esn_cfg)
        land = E.tabulate(net, plant)
        x, _ = nk.nk_dp(-land.fitness, circular=True)
        bits = jnp.asarray(x, jnp.int32)[net.neighbours]
        f = jnp.take_along_axis(land.fitness, bit_index(bits)[:, None], axis=-1)[:, 0]
        for committee, out in (("top", top), ("all", whole)):
            w = E.committee_weights(f, committee)
            out.append(float(E.evaluate(net, bits, w, start, plant).fitness[0]))
        optimum.append(float(jnp.sum(f)))
        steps = np.asarray(land.steps)
        balancing.append(int(np.sum(steps.max(axis=1) >= plant.max_steps)))
    per_output = [o / esn_cfg.n for o in optimum]
    return {
        "objective": float(np.mean(top if kind == "top" else per_output)),
        "objective_kind": kind,
        "train_top": top,
        "train_all": whole,
        "dp_optimum": optimum,
        "balancing_outputs": balancing,
    }


def search(cfg: Config, path: Path, name: str) -> None:
    """Runs the optuna study; one JSON line per finished trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=cfg.study_seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    done = common.read_jsonl(path) if path.exists() else []
    for row in done:  # resume: tell the sampler the finished trials
        study.add_trial(
            optuna.trial.create_trial(
                params=row["params"],
                distributions=_distributions(study, cfg, row["params"]),
                value=row["objective"],
            )
        )
    if not done and cfg.first:
        study.enqueue_trial(dict(cfg.first))
    begin_all = time.perf_counter()
    for number in range(len(done), cfg.trials):
        if cfg.minutes is not None and time.perf_counter() - begin_all > (
            60 * cfg.minutes
        ):
            print(f"stopped after {cfg.minutes} minutes", flush=True)
            break
        trial = study.ask()
        params = space(trial, cfg)
        begin = time.perf_counter()
        measures = train_objective(
            params, cfg.search_seeds, cfg.max_steps, cfg.objective
        )
        study.tell(trial, measures["objective"])
        row = {
            "study": name,
            "trial": number,
            "params": params,
            "search_seeds": list(cfg.search_seeds),
            "max_steps": cfg.max_steps,
            "wall_s": time.perf_counter() - begin,
            **measures,
        }
        common.write_jsonl(path, [row], append=True)
        print(
            f"trial {number}: {measures['objective']:.4f} "
            f"({row['wall_s']:.1f} s) {params}",
            flush=True,
        )


def _distributions(study, cfg: Config, params: dict) -> dict:
    """The distributions of ``space`` (to re-add finished trials on resume)."""
    import optuna

    fixed = optuna.trial.FixedTrial(params)
    space(fixed, cfg)
    return fixed.distributions


def best(rows: list[dict]) -> dict:
    """The search row with the highest objective (the first on ties)."""
    return max(rows, key=lambda r: r["objective"])


def rerank(cfg: Config, rows: list[dict], path: Path) -> dict:
    """Re-scores the ``cfg.rerank`` best trials on ``cfg.rerank_seeds``.

    Still training episodes only: the same objective on more networks, so that the
    choice is not the luck of the search seeds (the best trials' objectives come
    mostly from one of them).  Writes one line per re-scored trial and returns the
    row with the best mean over search and rerank seeds.
    """
    order = sorted(rows, key=lambda r: -r["objective"])[: cfg.rerank]
    out = []
    for r in order:
        begin = time.perf_counter()
        kind = r.get("objective_kind", "top")
        m = train_objective(r["params"], cfg.rerank_seeds, cfg.max_steps, kind)
        seeds = len(r["train_top"]) + len(m["train_top"])
        first = r["objective"] * len(r["train_top"])
        row = {
            "trial": r["trial"],
            "params": r["params"],
            "search_objective": r["objective"],
            "rerank_seeds": list(cfg.rerank_seeds),
            "wall_s": time.perf_counter() - begin,
            **m,
            "mean_objective": (first + m["objective"] * len(m["train_top"])) / seeds,
        }
        common.write_jsonl(path, [row], append=True)
        out.append(row)
        print(
            f"rerank trial {r['trial']}: search {r['objective']:.4f}, rerank "
            f"{m['objective']:.4f}, mean {row['mean_objective']:.4f}",
            flush=True,
        )
    return max(out, key=lambda r: r["mean_objective"])


def evaluate(cfg: Config, params: dict, path: Path, study: str) -> None:
    """The whole NK-ESN experiment with ``params`` on ``cfg.seeds``."""
    import jax

    from qselax import nk_selection

    overlap = set(cfg.seeds) & (set(cfg.search_seeds) | set(cfg.rerank_seeds))
    if overlap:
        raise SystemExit(f"--seeds {sorted(overlap)} were seen by the search")
    esn_cfg, plant = configs(params, cfg.max_steps)
    config = nk_selection.NKESNConfig(
        esn=esn_cfg, pole=plant, solvers=cfg.solvers, train_starts=1
    )
    for seed in cfg.seeds:
        begin = time.perf_counter()
        res = nk_selection.nk_esn(jax.random.key(seed), config)
        wall = time.perf_counter() - begin
        rows = [
            {
                "study": study,
                "params": params,
                "seed": seed,
                "n": esn_cfg.n,
                "k": esn_cfg.k,
                "tabulate_s": res.tabulate_s,
                "wall_s": wall,
                "nk_optimum": res.optimum,
                "best_entry": res.best_entry,
                **row,
            }
            for row in res.rows
        ]
        common.write_jsonl(path, rows, append=True)
        dp = next(r for r in res.rows if r["solver"] == "dp")
        print(
            f"seed {seed}: {wall:.1f} s, DP mask {dp['generalisation']}, best entry "
            f"{res.best_entry['generalisation']}",
            flush=True,
        )


# ---------------------------------------------------------------------------
# Tables


def _mse(values, fmt="{:.0f}") -> str:
    """``mean ± standard error`` of the mean."""
    v = np.asarray(list(values), np.float64)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{fmt.format(v.mean())} ± {fmt.format(se)}"


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def search_table(rows: list[dict], top: int = 10) -> str:
    """The ``top`` best trials of a study, by objective."""
    keys = list(rows[0]["params"])
    order = sorted(rows, key=lambda r: -r["objective"])[:top]
    body = [
        [
            r["trial"],
            f"{r['objective']:.4f}",
            ", ".join(f"{v:.3f}" for v in r["train_all"]),
            ", ".join(str(b) for b in r["balancing_outputs"]),
            *(_fmt(r["params"][k]) for k in keys),
        ]
        for r in order
    ]
    header = ["trial", "objective", "train all", "balancing"] + keys
    walls = [r["wall_s"] for r in rows]
    return (
        common.markdown(header, body)
        + f"\n\n{len(rows)} trials, {sum(walls) / 60:.1f} min "
        f"({np.median(walls):.1f} s median per trial), search seeds "
        f"{rows[0]['search_seeds']}, objective {rows[0].get('objective_kind', 'top')}"
        "\n\n" + importances(rows)
    )


def importances(rows: list[dict]) -> str:
    """fANOVA importance of each hyperparameter for the objective (optuna's)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    cfg = Config(
        ns=tuple(sorted({r["params"]["n"] for r in rows})),
        ks=tuple(sorted({r["params"]["k"] for r in rows})),
        reservoirs=tuple(sorted({r["params"]["reservoir"] for r in rows})),
    )
    for r in rows:
        study.add_trial(
            optuna.trial.create_trial(
                params=r["params"],
                distributions=_distributions(study, cfg, r["params"]),
                value=r["objective"],
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return "fANOVA importance: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items())


def fresh_table(rows: list[dict]) -> str:
    """Generalisation of the fresh seeds, mean ± s.e. per (solver, mode)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["solver"], r["mode"]), []).append(r)
    body = []
    for (solver, mode), rs in groups.items():
        g = [r["generalisation"] for r in rs]
        body.append(
            [solver, mode, len(rs)]
            + [_mse([x[c] for x in g]) for c in ("all", "top", "best")]
            + [_mse([r["train_fitness"]["top"] for r in rs], "{:.3f}")]
        )
    seeds = {r["seed"]: r for r in rows}
    entries = [r["best_entry"]["generalisation"] for r in seeds.values()]
    header = ["solver", "mode", "seeds", "all", "top 20 %", "best single"]
    header.append("top-20 % train fitness")
    return (
        common.markdown(header, body)
        + f"\n\nseeds {sorted(seeds)}; best table entry (own bits): "
        f"{_mse(entries)} of 625; params {rows[0]['params']}"
    )


def rerank_table(rows: list[dict]) -> str:
    """The re-scored trials, best mean objective first."""
    order = sorted(rows, key=lambda r: -r["mean_objective"])
    body = [
        [
            r["trial"],
            f"{r['search_objective']:.4f}",
            f"{r['objective']:.4f}",
            f"{r['mean_objective']:.4f}",
            ", ".join(f"{v:.3f}" for v in r["train_top"]),
            ", ".join(str(b) for b in r["balancing_outputs"]),
        ]
        for r in order
    ]
    header = ["trial", "search objective", "rerank objective", "mean (all seeds)"]
    header += ["rerank train top", "rerank balancing"]
    return common.markdown(header, body) + f"\n\nrerank seeds {rows[0]['rerank_seeds']}"


def tables(results: dict[str, list[dict]]) -> str:
    """A search table per study file, its rerank, and the generalisation table."""
    out = []
    for name, rows in results.items():
        if name.endswith("_fresh"):
            kind = fresh_table
        elif name.endswith("_rerank"):
            kind = rerank_table
        else:
            kind = search_table
        out.append(f"### {name}\n\n" + kind(rows))
    return "\n\n".join(out)


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--name", default="search", help="study: <out>/<name>.jsonl")
    p.add_argument("--trials", type=int, default=Config.trials)
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default=Config.objective,
        help="top: the DP mask's top-20 %% committee's training-start fitness; "
        "dp: the DP optimum's mean output fitness",
    )
    p.add_argument(
        "--minutes", type=float, help="start no trial after this many minutes"
    )
    p.add_argument(
        "--search-seeds", type=int, nargs="+", default=list(Config.search_seeds)
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="score the study's best setting on --seeds (<name>_fresh.jsonl)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=list(Config.seeds))
    p.add_argument("--rerank", type=int, default=Config.rerank)
    p.add_argument(
        "--rerank-seeds", type=int, nargs="+", default=list(Config.rerank_seeds)
    )
    p.add_argument("--solvers", nargs="+", default=list(Config.solvers))
    args = p.parse_args()
    if args.table:
        print(tables(common.read_results(common.table_dir(args, __file__))))
        return
    cfg = Config(
        trials=args.trials,
        objective=args.objective,
        minutes=args.minutes,
        search_seeds=tuple(args.search_seeds),
        seeds=tuple(args.seeds),
        rerank=args.rerank,
        rerank_seeds=tuple(args.rerank_seeds),
        solvers=tuple(args.solvers),
    )
    if args.smoke:
        common.smoke_jax()
        cfg = dataclasses.replace(SMOKE, objective=args.objective)
    out = common.out_dir(args, __file__)
    path = out / f"{args.name}.jsonl"
    if args.smoke or not args.evaluate:
        search(cfg, path, args.name)
    if args.smoke or args.evaluate:
        ranked = out / f"{args.name}_rerank.jsonl"
        if ranked.exists():
            rows = common.read_jsonl(ranked)
            chosen = max(rows, key=lambda r: r["mean_objective"])
        elif cfg.rerank:
            chosen = rerank(cfg, common.read_jsonl(path), ranked)
        else:
            chosen = best(common.read_jsonl(path))
        print(f"chosen trial {chosen['trial']}: {chosen['params']}", flush=True)
        fresh = out / f"{args.name}_fresh.jsonl"
        evaluate(cfg, chosen["params"], fresh, args.name)
    print(tables(common.read_results(out)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
