"""Distillation experiment: does a distilled random student reach its teacher?

For every seed: one data split, one trained teacher, one random student (2x deep,
``width_factor`` x wide).  The student is selected block by block against the
teacher (``qselax.distill``) with each compression and solver, and the same-size
plain random MLP is selected end to end without a teacher (``qselax.select``, the
direct method) with the number of sweeps that gives about the same number of
landscape evaluations.  One JSON line per run is appended to
``<out>/<name>.jsonl`` (default ``experiments/distillation/results/results.jsonl``);
``--table`` prints the README's tables from ``results/`` (mean ± std over seeds).
Usage::

    python experiments/distillation/main.py --dataset digits --seeds 0 1 2 \\
        --name digits
    python experiments/distillation/main.py --table
    python experiments/distillation/main.py --smoke
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402


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
    teacher_epochs: int = 100


# --smoke: 200 digits, teacher 64-8-10 trained 2 epochs, f = 1, K = 2, one sweep,
# exhaustive, magnitude, then direct selection capped at one sweep.
SMOKE = dict(
    config=dict(
        max_train=200,
        teacher_hidden=(8,),
        width_factor=1,
        k=2,
        sweeps=1,
        val_samples=40,
        teacher_epochs=2,
        direct_max_sweeps=1,
    ),
    seeds=[0],
    compressions=["magnitude"],
    solvers=["exhaustive"],
)


def solver(name: str, cfg: Config):
    """The solver spec of ``name`` with this experiment's VQE budget."""
    from qselax.solvers import solver_spec

    if name == "vqe":
        return solver_spec(name, layers=cfg.vqe_layers, steps=cfg.vqe_steps)
    return solver_spec(name)


# ---------------------------------------------------------------------------
# The calls into qselax


def setup(cfg: Config, seed: int):
    """Data, the distillation settings, the trained teacher and the student."""
    import qselax
    from qselax.distill import DistillConfig
    from qselax.student import make_student, make_teacher

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
        teacher_epochs=cfg.teacher_epochs,
    )
    teacher = make_teacher(t_key, data, base)
    in_features = math.prod(data.feature_shape)
    student = make_student(s_key, in_features, data.num_classes, base)
    return data, base, teacher, student


def run_distill(cfg, seed, data, base, teacher, student, comp, name) -> dict:
    """One distillation of the student with compression ``comp`` and ``name``."""
    import qselax

    config = dataclasses.replace(base, compression=comp, solver=solver(name, cfg))
    start = time.perf_counter()
    res = qselax.distill(
        jax.random.fold_in(jax.random.key(seed), 100),
        data,
        config,
        teacher=teacher,
        student=student,
        progress=False,
    )
    return {
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


def direct_model(cfg, seed, data, base):
    """The plain MLP of the student's widths and its number of fan-in groups."""
    import qselax
    from qselax.distill import direct_hidden

    hidden = direct_hidden(base, data.num_classes)
    model = qselax.make_model(
        "mlp", data.feature_shape, data.num_classes, hidden=hidden, init=cfg.init,
        seed=seed,
    )  # fmt: skip
    return model, qselax.make_grouping("fan_in", model, cfg.k).num_groups


def run_direct(cfg, seed, data, teacher, model, name, sweeps) -> dict:
    """End-to-end selection of ``model`` with ``name`` for ``sweeps`` sweeps."""
    from flax import nnx

    import qselax

    config = qselax.SelectConfig(
        k=cfg.k,
        solver=solver(name, cfg),
        sweeps=sweeps,
        mode="sequential",
        block_size=cfg.block_size,
        cost_split="val",  # as measured: the paper's literal setting
        cost_samples=cfg.val_samples,
    )
    graphdef, weights = nnx.split(model)
    start = time.perf_counter()
    sel = qselax.select(jax.random.fold_in(jax.random.key(seed), 100), model, data,
                        config, progress=False)  # fmt: skip
    test = qselax.score(graphdef, weights, sel.masks, data.x_test, data.y_test)
    val = qselax.score(graphdef, weights, sel.masks, data.x_val, data.y_val)
    return {
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


# ---------------------------------------------------------------------------


def run_seed(cfg: Config, seed: int, compressions, solvers, out) -> None:
    data, base, teacher, student = setup(cfg, seed)

    def emit(row):
        print(json.dumps(row), flush=True)
        out.write(common.jsonl_line(row))
        out.flush()

    budget = {}
    for comp in compressions:
        for name in solvers:
            row = run_distill(cfg, seed, data, base, teacher, student, comp, name)
            budget[name] = max(budget.get(name, 0), row["landscape_evals"])
            emit(row)
    if cfg.direct_max_sweeps < 0:
        return
    model, groups = direct_model(cfg, seed, data, base)
    for name in solvers:
        sweeps = max(1, round(budget[name] / (groups * 2**cfg.k)))
        if cfg.direct_max_sweeps > 0:
            sweeps = min(sweeps, cfg.direct_max_sweeps)
        emit(run_direct(cfg, seed, data, teacher, model, name, sweeps))


# ---------------------------------------------------------------------------
# Tables


def _ms(values, fmt="{:.3f}") -> str:
    return common.mean_std(values, fmt)


def _range(values, fmt="{:.0f}") -> str:
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def table(rows: list[dict], f: int | None = None, wall: bool = False) -> str:
    """Mean ± std over seeds per (method, solver); ``f``: a width-factor column;
    ``wall``: the range of the runs' wall times."""
    cells = defaultdict(list)
    for r in rows:
        cells[r["method"], r["solver"]].append(r)
    header = ["method", "solver", "seeds", "student test acc", "teacher test acc"]
    header += ["gap (pts)", "block losses (initial → final)", "block scales abs(α)"]
    header += ["optimum rate", "landscape evals"]
    if f is not None:
        header.insert(1, "f")
    if wall:
        header.append("wall per seed")
    body = []
    for (method, solver), rs in sorted(cells.items()):
        gap = [100 * (r["teacher_test"] - r["test"]) for r in rs]
        if "block_losses" in rs[0]:
            nb = len(rs[0]["block_losses"])
            losses = "; ".join(
                f"{np.mean([r['initial_losses'][i] for r in rs]):.2f} → "
                + _ms([r["block_losses"][i] for r in rs], "{:.2f}")
                for i in range(nb)
            )
            sc = np.asarray([r.get("scales", [1.0] * nb) for r in rs], float)
            scales = "; ".join(
                _ms(np.abs(sc[:, i]), "{:.3f}") + f" ({int(np.sum(sc[:, i] < 0))} neg)"
                for i in range(nb)
            )
        else:
            losses = scales = "–"
        row = [
            method,
            solver,
            len(rs),
            _ms([r["test"] for r in rs]),
            _ms([r["teacher_test"] for r in rs]),
            _ms(gap, "{:.1f}"),
            losses,
            scales,
            _ms([r["optimum_rate"] for r in rs]),
            f"{int(np.mean([r['landscape_evals'] for r in rs])):,}",
        ]
        if f is not None:
            row.insert(1, f)
        if wall:
            row.append(_range([r["wall_s"] for r in rs]) + " s")
        body.append(row)
    return common.markdown(header, body)


def ablation_table(variants: list[tuple[str, dict]]) -> str:
    """One row per (label, record) of the seed-0 ablation."""
    body = []
    for label, r in variants:
        if "block_losses" in r:
            test = f"{r['test']:.3f}"
            losses = "; ".join(
                f"{a:.2f} → {b:.2f}"
                for a, b in zip(r["initial_losses"], r["block_losses"], strict=True)
            )
        else:
            test, losses = f"{r['test']:.3f} (val {r['val']:.3f})", "–"
        body.append(
            [label, test, f"{r['teacher_test']:.3f}", losses]
            + [f"{r['landscape_evals']:,}"]
        )
    header = ["variant", "student test acc", "teacher"]
    header += ["block losses (initial → final)", "landscape evals"]
    return common.markdown(header, body)


def _distill_first(cell):
    (method, solver), _ = cell
    return method == "direct", method, solver


def direct_table(rows: list[dict], labels: dict[str, str]) -> str:
    """Distillation against direct selection at the same budget, per method."""
    cells = defaultdict(list)
    for r in rows:
        cells[r["method"], r["solver"]].append(r)
    body = []
    for (method, solver), rs in sorted(cells.items(), key=_distill_first):
        vals = [r["val"] for r in rs]
        val = (
            f"{vals[0]:.3f} (every seed)"
            if len(set(vals)) == 1
            else _range(vals, "{:.2f}")
        )
        body.append(
            [
                labels.get(method, method),
                solver,
                len(rs),
                _ms([r["test"] for r in rs]),
                val,
                _ms([r["teacher_test"] for r in rs]),
                f"{int(np.mean([r['landscape_evals'] for r in rs])):,}",
                _range([r["wall_s"] for r in rs]) + " s",
            ]
        )
    header = ["method", "solver", "seeds", "student test acc", "validation acc"]
    header += ["teacher test acc", "landscape evals", "wall per seed"]
    return common.markdown(header, body)


def tables(results: dict[str, list[dict]]) -> str:
    """The README's tables from the files it names; any other file generically."""
    out, used = [], set()

    def have(*names):
        used.update(names)
        return all(n in results for n in names)

    if have("digits", "digits_f4"):
        t8, t4 = table(results["digits"], 8), table(results["digits_f4"], 4)
        out.append("### digits (f = 8, f = 4)\n\n" + t8 + "\n" + t4.split("\n", 2)[2])
    if have("digits_pool_f4"):
        out.append("### digits, pool (f = 4)\n\n" + table(results["digits_pool_f4"], 4))
    if have("ablation_raw", "ablation_scale", "ablation_scale_max"):
        (scaled_max, direct) = results["ablation_scale_max"]
        variants = [
            ("first version (raw loss, hidden f·t_i)", results["ablation_raw"][0]),
            ("+ block scale", results["ablation_scale"][0]),
            ("+ block scale + hidden f·max(t_{i−1}, t_i)", scaled_max),
            (f"direct (no teacher), {direct['sweeps']} sweeps", direct),
        ]
        out.append("### ablation (seed 0)\n\n" + ablation_table(variants))
    if have("digits_f4_direct"):
        labels = {
            "distill/magnitude": "distill/magnitude (f = 4)",
            "direct": "direct (64-128-128-128-10)",
        }
        out.append(
            "### digits, direct selection at the same budget (f = 4)\n\n"
            + direct_table(results["digits_f4_direct"], labels)
        )
    if have("fashion_mnist"):
        out.append(
            "### Fashion-MNIST (f = 4, CPU subsample)\n\n"
            + table(results["fashion_mnist"], wall=True)
        )
    for name, rows in results.items():
        if name not in used:
            out.append(f"### {name}\n\n" + table(rows, wall=True))
    return "\n\n".join(out)


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--name", default="results", help="results file <out>/<name>.jsonl")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--compressions", nargs="+", default=["magnitude", "pool"])
    p.add_argument("--solvers", nargs="+", default=["exhaustive", "vqe"])
    for f in dataclasses.fields(Config):
        kind = str if f.name in ("dataset", "init", "hidden_width") else int
        if f.name == "teacher_hidden":
            p.add_argument("--teacher-hidden", type=int, nargs="+", default=None)
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None)
    args = p.parse_args()
    if args.table:
        print(tables(common.read_results(common.table_dir(args, __file__))))
        return
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Config)
        if getattr(args, f.name) is not None
    }
    if "teacher_hidden" in changes:
        changes["teacher_hidden"] = tuple(changes["teacher_hidden"])
    if args.smoke:
        common.smoke_jax()
        changes.update(SMOKE["config"])
        args.seeds = SMOKE["seeds"]
        args.compressions = SMOKE["compressions"]
        args.solvers = SMOKE["solvers"]
    cfg = Config(**changes)
    print(cfg, flush=True)
    path = common.out_dir(args, __file__) / f"{args.name}.jsonl"
    with open(path, "a") as out:
        for seed in args.seeds:
            run_seed(cfg, seed, args.compressions, args.solvers, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
