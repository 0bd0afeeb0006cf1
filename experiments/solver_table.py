"""Every solver on real landscapes, and VQE with finite shots and noise.

Two measurements on the default demo's network (digits, random signed-constant MLP
64-256-10, fan-in groups, validation split of 359 samples, cross-entropy cost):

``--part table``: the exact landscapes of ``--groups`` fan-in groups drawn at
random (seeded) from all groups (``--landscapes random``: i.i.d. N(0, 1) costs
instead, a structureless control), at the demo's starting mask (all ones), for each K in
``--k``; every registered solver at its default budget solves the same landscapes
(plus ``vqe`` with a product ansatz, no entanglers, at the same budget).  Reported
per solver: optimum rate (chosen bitstring attains the group's exhaustive minimum),
top-1 rate (the single most probable bitstring), the rate over non-flat landscapes,
costs consulted per group, shots and oracle calls per group, mean half-cut
entanglement entropy, qubits / depth / two-qubit gates, and seconds after
compilation.  The QUBO surrogate's fit (R², ground state kept) on the same
landscapes is printed too.

``--part shots``: full selection runs of the demo (3 sequential sweeps over all
2368 groups, K = 8) with ``vqe`` exact, with 256 / 1024 / 4096 shots per step
(score-function gradients, readout from measured shots), and with depolarizing
noise 1e-3 and 1e-2 per qubit and layer (8 trajectories per step, exact
expectations), each followed by the test accuracy of the selected mask.

Usage::

    python experiments/solver_table.py --part table --k 8,10,12 --groups 256
    python experiments/solver_table.py --part shots

Results are printed as Markdown tables and written as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from qselax.cli import DEFAULTS
from qselax.data import load_dataset
from qselax.groups import explicit_grouping, flatten_masks, make_grouping
from qselax.hamiltonians import fit_qubo
from qselax.landscapes import make_engine
from qselax.networks import make_model, ones_masks
from qselax.selection import SelectConfig, score, select
from qselax.solvers import SOLVERS, make_solver
from qselax.sweeps import attains

TABLE_SOLVERS = [(name, {}) for name in SOLVERS] + [
    ("vqe (product)", {"entangler": "none"})
]


def _demo(seed: int = 0):
    data = load_dataset("digits", seed=seed)
    hidden = tuple(int(h) for h in DEFAULTS["hidden"].split(","))
    model = make_model(
        "mlp", data.feature_shape, data.num_classes, hidden=hidden, seed=seed
    )
    return data, model


def sample_landscapes(model, data, k: int, num_groups: int, seed: int):
    """Exact landscapes of ``num_groups`` random fan-in groups at the all-ones mask."""
    grouping = make_grouping("fan_in", model, k)
    rng = np.random.default_rng(seed)
    ids = np.sort(
        rng.choice(grouping.num_groups, min(num_groups, grouping.num_groups), False)
    )
    sample = explicit_grouping(
        [grouping.index[i][grouping.valid[i]] for i in ids], grouping.shapes, k
    )
    x, y = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    engine = make_engine(model, sample, num_samples=x.shape[0], memory_mb=512.0)
    graphdef, weights = nnx.split(model)
    flat = flatten_masks(ones_masks(model))
    fn = jax.jit(lambda w, f: engine.all(nnx.merge(graphdef, w), f, x, y))
    return np.asarray(fn(weights, flat)), grouping.num_groups


def solver_row(name: str, options: dict, k: int, lands: np.ndarray, seed: int):
    solver = make_solver(name.split(" ")[0], k, **options)
    fn = jax.jit(solver.solve)
    lands_j = jnp.asarray(lands)
    current = jnp.full((lands.shape[0],), 2**k - 1, jnp.int32)  # all-ones mask
    key = jax.random.key(seed)
    start = time.perf_counter()
    jax.block_until_ready(fn(key, lands_j, current))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    res = jax.block_until_ready(fn(jax.random.fold_in(key, 1), lands_j, current))
    run_s = time.perf_counter() - start
    rows = np.arange(lands.shape[0])
    minimum = lands.min(-1)
    optimal = np.asarray(attains(lands[rows, np.asarray(res.index)], minimum))
    top1 = np.asarray(attains(lands[rows, np.asarray(res.top1)], minimum))
    flat = np.asarray(attains(lands.max(-1), minimum))
    r = solver.resources
    return {
        "solver": name,
        "optimum_rate": float(optimal.mean()),
        "top1_rate": float(top1.mean()),
        "nontrivial_rate": float(optimal[~flat].mean()) if (~flat).any() else 1.0,
        "lookups_per_group": float(np.mean(res.lookups)),
        "shots_per_group": 0.0 if res.shots is None else float(np.mean(res.shots)),
        "oracle_calls_per_group": 0.0
        if res.oracle_calls is None
        else float(np.mean(res.oracle_calls)),
        "mean_entropy": None if res.entropy is None else float(np.mean(res.entropy)),
        "qubits": r.get("qubits", 0),
        "depth": r.get("depth"),
        "two_qubit_gates": r.get("two_qubit_gates"),
        "run_s": run_s,
        "compile_s": compile_s,
    }


def print_table(k: int, entry: dict) -> None:
    """One K's Markdown table (static resources taken from the current solvers).

    Depth and two-qubit gates of ``qaoa`` and ``anneal`` are those of the phase
    separator compiled from the full Walsh (Ising) expansion into CNOT ladders and
    RZ gates (what hardware would run), not of the diagonal phase the simulator
    applies in one step.
    """
    print(
        f"\n### K = {k}: {entry['groups']} of {entry['of_groups']} fan-in groups, "
        f"{entry['flat_fraction']:.1%} flat; QUBO surrogate R² median "
        f"{entry['qubo_r2_median']:.4f}, its ground state optimal in "
        f"{entry['qubo_ground_state_kept']:.1%}\n"
    )
    print(
        "| solver | optimum rate | top-1 | non-flat | costs/group | shots/group "
        "| oracle calls/group | entropy (bits) | qubits | depth | 2q gates "
        "| s (after compile) |"
    )
    print("|" + "---|" * 12)
    for r in entry["rows"]:
        name, *rest = r["solver"].split(" ")
        options = dict(TABLE_SOLVERS)[r["solver"]]
        res = make_solver(name, k, **options).resources
        ent = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}"
        print(
            f"| {r['solver']} | {r['optimum_rate']:.3f} | {r['top1_rate']:.3f} | "
            f"{r['nontrivial_rate']:.3f} | {r['lookups_per_group']:.0f} | "
            f"{r['shots_per_group']:.0f} | {r['oracle_calls_per_group']:.0f} | "
            f"{ent} | {res['qubits']} | {res.get('ising_depth', res['depth'])} | "
            f"{res.get('ising_two_qubit_gates', res['two_qubit_gates'])} "
            f"| {r['run_s']:.2f} |"
        )


def part_table(args) -> dict:
    data, model = _demo(args.seed)
    out = {}
    for k in (int(v) for v in args.k.split(",")):
        if args.landscapes == "random":  # i.i.d. N(0, 1) costs: no structure
            key = jax.random.fold_in(jax.random.key(args.seed), k)
            lands = np.asarray(jax.random.normal(key, (args.groups, 2**k)))
            total = args.groups
        else:
            lands, total = sample_landscapes(model, data, k, args.groups, args.seed)
        flat = np.asarray(attains(lands.max(-1), lands.min(-1)))
        fit = fit_qubo(jnp.asarray(lands))
        kept = np.asarray(fit.ground_state_kept)
        rows = [solver_row(n, o, k, lands, args.seed) for n, o in TABLE_SOLVERS]
        out[k] = {
            "groups": int(lands.shape[0]),
            "of_groups": int(total),
            "flat_fraction": float(flat.mean()),
            "qubo_r2_median": float(np.median(np.asarray(fit.r2))),
            "qubo_ground_state_kept": float(np.mean(kept)),
            "rows": rows,
        }
        print_table(k, out[k])
    return out


SHOT_SETTINGS = [
    ("exact", {}),
    ("256 shots", {"shots": 256}),
    ("1024 shots", {"shots": 1024}),
    ("4096 shots", {"shots": 4096}),
    ("noise 1e-3", {"noise": 1e-3}),
    ("noise 1e-2", {"noise": 1e-2}),
]


def part_shots(args) -> dict:
    data, model = _demo(args.seed)
    graphdef, weights = nnx.split(model)
    base = {
        "layers": DEFAULTS["vqe_layers"],
        "steps": DEFAULTS["vqe_steps"],
        "learning_rate": DEFAULTS["vqe_lr"],
    }
    wanted = set(args.settings.split(",")) if args.settings else None
    rows = []
    print(
        "| vqe setting | optimum rate | top-1 | test acc | val acc | shots/group/solve "
        "| s (after compile) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, options in SHOT_SETTINGS:
        if wanted and label not in wanted:
            continue
        config = SelectConfig(
            k=DEFAULTS["k"],
            solver="vqe",
            solver_options=tuple({**base, **options}.items()),
            sweeps=DEFAULTS["sweeps"],
            mode=DEFAULTS["mode"],
            block_size=DEFAULTS["block_size"],
            memory_mb=DEFAULTS["memory_mb"],
        )
        sel = select(
            jax.random.key(args.seed + 100), model, data, config, progress=False
        )
        test = score(graphdef, weights, sel.masks, data.x_test, data.y_test)
        val = score(graphdef, weights, sel.masks, data.x_val, data.y_val)
        row = {
            "setting": label,
            "optimum_rate": sel.optimum_rate,
            "top1_rate": sel.top1_optimum_rate,
            "test_accuracy": test["accuracy"],
            "val_accuracy": val["accuracy"],
            "shots_per_group_solve": sel.resources.get("shots_per_solve", 0),
            "run_s": sel.run_s,
            "compile_s": sel.compile_s,
        }
        rows.append(row)
        print(
            f"| {label} | {row['optimum_rate']:.3f} | {row['top1_rate']:.3f} | "
            f"{row['test_accuracy']:.4f} | {row['val_accuracy']:.4f} | "
            f"{row['shots_per_group_solve']} | {row['run_s']:.0f} |",
            flush=True,
        )
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("table", "shots"), default="table")
    parser.add_argument("--k", default="8,10,12", help="K values for --part table")
    parser.add_argument("--groups", type=int, default=256, help="groups per K")
    parser.add_argument(
        "--landscapes",
        choices=("demo", "random"),
        default="demo",
        help="the demo network's fan-in landscapes, or i.i.d. N(0, 1) costs",
    )
    parser.add_argument("--settings", help="comma-separated subset of shot settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the numbers to this JSON file")
    parser.add_argument("--show", help="print the tables of a --part table JSON file")
    args = parser.parse_args()
    if args.show:
        for k, entry in json.loads(Path(args.show).read_text()).items():
            print_table(int(k), entry)
        return
    print(f"backend {jax.default_backend()}, seed {args.seed}")
    result = part_table(args) if args.part == "table" else part_shots(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
