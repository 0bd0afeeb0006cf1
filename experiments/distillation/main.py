"""Distillation experiment: does a distilled random student reach its teacher?

For every seed: one data split, one trained teacher, one random student (2x deep,
``width_factor`` x wide).  The student is selected block by block against the
teacher (``qselax.distill``) with each compression and solver, and the same-size
plain random MLP is selected end to end without a teacher (``qselax.select``, the
direct method) with the number of sweeps that gives about the same number of
landscape evaluations.  One JSON line per run goes to ``--out``; ``--table`` prints
the mean ± std table of a results file.  Usage::

    python experiments/distillation/main.py --dataset digits --seeds 0 1 2
    python experiments/distillation/main.py --table digits.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections import defaultdict

import jax
import numpy as np
from flax import nnx

import qselax
from qselax.distill import DistillConfig, direct_hidden, make_student, make_teacher


@dataclasses.dataclass(frozen=True)
class Config:
    """One experiment: data, network sizes and selection budget.

    ``direct_max_sweeps``: 0 gives direct selection the sweeps that match the
    distillation budget; ``n > 0`` caps them at ``n`` (its evaluations are
    recorded); ``-1`` skips direct selection.
    """

    dataset: str = "digits"
    max_train: int | None = None
    teacher_hidden: tuple[int, ...] = (32,)
    width_factor: int = 8
    init: str = "uniform"
    k: int = 6
    sweeps: int = 8
    block_size: int = 16
    scale: int = 1
    hidden_width: str = "max"
    direct_max_sweeps: int = 0
    val_samples: int | None = None
    vqe_steps: int = 100
    vqe_layers: int = 3


def solver_options(name: str, cfg: Config) -> tuple:
    if name == "vqe":
        return (("layers", cfg.vqe_layers), ("steps", cfg.vqe_steps))
    return ()


def run_seed(cfg: Config, seed: int, compressions, solvers, out):
    data = qselax.load_dataset(cfg.dataset, seed=seed, max_train=cfg.max_train)
    key = jax.random.key(seed)
    t_key, s_key = jax.random.split(jax.random.fold_in(key, 2))
    base = DistillConfig(
        teacher_hidden=cfg.teacher_hidden,
        width_factor=cfg.width_factor,
        init=cfg.init,
        k=cfg.k,
        sweeps=cfg.sweeps,
        block_size=cfg.block_size,
        val_samples=cfg.val_samples,
        scale=bool(cfg.scale),
        hidden_width=cfg.hidden_width,
    )
    teacher = make_teacher(t_key, data, base)
    in_features = math.prod(data.feature_shape)
    student = make_student(s_key, in_features, data.num_classes, base)
    budget = {}
    for comp in compressions:
        for name in solvers:
            config = dataclasses.replace(
                base,
                compression=comp,
                solver=name,
                solver_options=solver_options(name, cfg),
            )
            start = time.perf_counter()
            res = qselax.distill(
                jax.random.fold_in(key, 100),
                data,
                config,
                teacher=teacher,
                student=student,
                progress=False,
            )
            budget[name] = max(budget.get(name, 0), res.landscape_evals)
            row = {
                "seed": seed,
                "method": f"distill/{comp}",
                "solver": name,
                "teacher_test": res.accuracy["teacher"]["test"],
                "test": res.accuracy["student"]["test"],
                "val": res.accuracy["student"]["val"],
                "block_losses": res.block_losses,
                "scales": list(res.scales),
                "initial_losses": [b["initial_loss"] for b in res.blocks],
                "block_optimum_rates": res.block_optimum_rates,
                "optimum_rate": res.optimum_rate,
                "landscape_evals": res.landscape_evals,
                "wall_s": time.perf_counter() - start,
            }
            print(json.dumps(row), flush=True)
            out.write(json.dumps(row) + "\n")
            out.flush()
    if cfg.direct_max_sweeps < 0:
        return
    hidden = direct_hidden(base, data.num_classes)
    model = qselax.make_model(
        "mlp", data.feature_shape, data.num_classes, hidden=hidden, init=cfg.init,
        seed=seed,
    )  # fmt: skip
    groups = qselax.make_grouping("fan_in", model, cfg.k).num_groups
    graphdef, weights = nnx.split(model)
    for name in solvers:
        sweeps = max(1, round(budget[name] / (groups * 2**cfg.k)))
        if cfg.direct_max_sweeps > 0:
            sweeps = min(sweeps, cfg.direct_max_sweeps)
        config = qselax.SelectConfig(
            k=cfg.k,
            solver=name,
            solver_options=solver_options(name, cfg),
            sweeps=sweeps,
            mode="sequential",
            block_size=cfg.block_size,
            val_samples=cfg.val_samples,
        )
        start = time.perf_counter()
        sel = qselax.select(jax.random.fold_in(key, 100), model, data, config,
                            progress=False)  # fmt: skip
        test = qselax.score(graphdef, weights, sel.masks, data.x_test, data.y_test)
        val = qselax.score(graphdef, weights, sel.masks, data.x_val, data.y_val)
        row = {
            "seed": seed,
            "method": "direct",
            "solver": name,
            "teacher_test": teacher.dense.test_accuracy,
            "test": test["accuracy"],
            "val": val["accuracy"],
            "optimum_rate": sel.optimum_rate,
            "landscape_evals": sel.landscape_evals,
            "sweeps": sweeps,
            "wall_s": time.perf_counter() - start,
        }
        print(json.dumps(row), flush=True)
        out.write(json.dumps(row) + "\n")
        out.flush()


def table(path: str) -> str:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cells = defaultdict(list)
    for r in rows:
        cells[r["method"], r["solver"]].append(r)

    def ms(values, fmt="{:.3f}"):
        v = np.asarray(values, float)
        return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}"

    lines = [
        "| method | solver | seeds | student test acc | teacher test acc | gap (pts) "
        "| block losses (initial → final) | block scales abs(α) | optimum rate "
        "| landscape evals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (method, solver), rs in sorted(cells.items()):
        gap = [100 * (r["teacher_test"] - r["test"]) for r in rs]
        if "block_losses" in rs[0]:
            nb = len(rs[0]["block_losses"])
            losses = "; ".join(
                f"{np.mean([r['initial_losses'][i] for r in rs]):.2f} → "
                + ms([r["block_losses"][i] for r in rs], "{:.2f}")
                for i in range(nb)
            )
            sc = np.asarray([r.get("scales", [1.0] * nb) for r in rs], float)
            scales = "; ".join(
                ms(np.abs(sc[:, i]), "{:.3f}") + f" ({int(np.sum(sc[:, i] < 0))} neg)"
                for i in range(nb)
            )
        else:
            losses = scales = "–"
        lines.append(
            f"| {method} | {solver} | {len(rs)} | {ms([r['test'] for r in rs])} | "
            f"{ms([r['teacher_test'] for r in rs])} | {ms(gap, '{:.1f}')} | "
            f"{losses} | {scales} | "
            f"{ms([r['optimum_rate'] for r in rs])} | "
            f"{int(np.mean([r['landscape_evals'] for r in rs])):,} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", help="print the table of a results file and exit")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--compressions", nargs="+", default=["magnitude", "pool"])
    p.add_argument("--solvers", nargs="+", default=["exhaustive", "vqe"])
    p.add_argument("--out", default="experiments/distillation/results.jsonl")
    for f in dataclasses.fields(Config):
        kind = str if f.name in ("dataset", "init", "hidden_width") else int
        if f.name == "teacher_hidden":
            p.add_argument("--teacher-hidden", type=int, nargs="+", default=None)
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None)
    args = p.parse_args()
    if args.table:
        print(table(args.table))
        return
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Config)
        if getattr(args, f.name) is not None
    }
    if "teacher_hidden" in changes:
        changes["teacher_hidden"] = tuple(changes["teacher_hidden"])
    cfg = Config(**changes)
    print(cfg, flush=True)
    with open(args.out, "a") as out:
        for seed in args.seeds:
            run_seed(cfg, seed, args.compressions, args.solvers, out)


if __name__ == "__main__":
    main()
