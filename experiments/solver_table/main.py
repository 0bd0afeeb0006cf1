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
landscapes is printed too.  Records: ``<out>/solver_table.jsonl`` (demo
landscapes) or ``<out>/solver_table_random.jsonl``, one line per (K, solver).

``--part shots``: full selection runs of the demo (3 sequential sweeps over all
2368 groups, K = 8) with ``vqe`` exact, with 256 / 1024 / 4096 shots per step
(score-function gradients, readout from measured shots), and with depolarizing
noise 1e-3 and 1e-2 per qubit and layer (8 trajectories per step, exact
expectations), each followed by the test accuracy of the selected mask.  Records:
``<out>/vqe_shots_noise.jsonl``, one line per setting.

Usage::

    python experiments/solver_table/main.py --part table --k 8,10,12 --groups 256
    python experiments/solver_table/main.py --part table --landscapes random --k 8
    python experiments/solver_table/main.py --part shots
    python experiments/solver_table/main.py --table
    python experiments/solver_table/main.py --plot
    python experiments/solver_table/main.py --smoke [--part shots]

Results are printed as Markdown tables and written as JSON lines to ``--out``
(default ``experiments/solver_table/results``, overwriting the part's file).
``--plot`` draws the README's figure (every solver's optimum rate per K, on the
demo's and on random landscapes) into ``figures/optimum_rate.png`` with
:mod:`qselax.plots`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

# Table rows that are a registered solver with options: label -> (name, options).
VARIANTS = {"vqe (product)": ("vqe", {"entangler": "none"})}
SHOT_SETTINGS = [
    ("exact", {}),
    ("256 shots", {"shots": 256}),
    ("1024 shots", {"shots": 1024}),
    ("4096 shots", {"shots": 4096}),
    ("noise 1e-3", {"noise": 1e-3}),
    ("noise 1e-2", {"noise": 1e-2}),
]
FILES = {"demo": "solver_table", "random": "solver_table_random"}
SHOTS_FILE = "vqe_shots_noise"
# --smoke: --part (table or shots) on a 64-16-10 network, K = 3: 4 groups and two
# solvers, or one setting, one sweep and 2 VQE steps.
SMOKE = dict(
    k="3",
    groups=4,
    solvers="exhaustive,vqe (product)",
    hidden="16",
    sweeps=1,
    vqe_steps=2,
    settings="256 shots",
)


# ---------------------------------------------------------------------------
# The calls into qselax


def defaults() -> dict:
    """The demo's settings (``qselax run`` with no flags), resolved by the CLI."""
    from qselax.cli import build_parser, resolve

    return resolve(build_parser().parse_args(["run"]))


def table_solvers() -> list[str]:
    """Row labels: every registered solver, then the variants."""
    from qselax.solvers import SOLVERS

    return list(SOLVERS) + list(VARIANTS)


def make_solver(label: str, k: int):
    from qselax.solvers import make_solver

    name, options = VARIANTS.get(label, (label, {}))
    return make_solver(name, k, **options)


def attains(cost, minimum) -> np.ndarray:
    from qselax.sweeps import attains

    return np.asarray(attains(cost, minimum))


def demo(seed: int, hidden: str | None):
    """The demo's data and random network."""
    import qselax

    data = qselax.load_dataset("digits", seed=seed)
    widths = tuple(int(h) for h in (hidden or defaults()["hidden"]).split(","))
    model = qselax.make_model(
        "mlp", data.feature_shape, data.num_classes, hidden=widths, seed=seed
    )
    return data, model


def sample_landscapes(model, data, k: int, num_groups: int, seed: int):
    """Exact landscapes of ``num_groups`` random fan-in groups at the all-ones mask."""
    from flax import nnx

    from qselax.groups import explicit_grouping, flatten_masks, make_grouping
    from qselax.landscapes import NetParams, network_landscape
    from qselax.networks import ones_masks

    grouping = make_grouping("fan_in", model, k)
    rng = np.random.default_rng(seed)
    ids = np.sort(
        rng.choice(grouping.num_groups, min(num_groups, grouping.num_groups), False)
    )
    sample = explicit_grouping(
        [grouping.index[i][grouping.valid[i]] for i in ids], grouping.shapes, k
    )
    x, y = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    land = network_landscape(model, sample, num_samples=x.shape[0], memory_mb=512.0)
    _, weights = nnx.split(model)
    flat = flatten_masks(ones_masks(model))
    fn = jax.jit(lambda w, f: land.all(NetParams(w, x, y, {}), f))
    return np.asarray(fn(weights, flat)), grouping.num_groups


def qubo_fit(lands: np.ndarray) -> tuple[float, float]:
    """Median R² of the QUBO surrogate and how often its ground state is optimal."""
    from qselax.hamiltonians import fit_qubo

    fit = fit_qubo(jnp.asarray(lands))
    return float(np.median(np.asarray(fit.r2))), float(
        np.mean(np.asarray(fit.ground_state_kept))
    )


def select_and_score(model, data, k, options: dict, seed: int, sweeps: int) -> dict:
    """One demo selection with ``vqe`` and ``options``; its rates and accuracies."""
    from flax import nnx

    import qselax

    d = defaults()
    config = qselax.SelectConfig(
        k=k or d["k"],
        solver=qselax.solvers.vqe(**options),
        sweeps=sweeps,
        mode=d["mode"],
        block_size=d["block_size"],
        memory_mb=d["memory_mb"],
        cost_split="val",  # as measured: the paper's literal setting
    )
    sel = qselax.select(jax.random.key(seed + 100), model, data, config, progress=False)
    graphdef, weights = nnx.split(model)
    test = qselax.score(graphdef, weights, sel.masks, data.x_test, data.y_test)
    val = qselax.score(graphdef, weights, sel.masks, data.x_val, data.y_val)
    return {
        "optimum_rate": sel.optimum_rate,
        "top1_rate": sel.top1_optimum_rate,
        "test_accuracy": test["accuracy"],
        "val_accuracy": val["accuracy"],
        "shots_per_group_solve": sel.resources.get("shots_per_solve", 0),
        "run_s": sel.run_s,
        "compile_s": sel.compile_s,
    }


# ---------------------------------------------------------------------------
# The measurements


def solver_row(label: str, k: int, lands: np.ndarray, seed: int) -> dict:
    solver = make_solver(label, k)
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
    optimal = attains(lands[rows, np.asarray(res.index)], minimum)
    top1 = attains(lands[rows, np.asarray(res.top1)], minimum)
    flat = attains(lands.max(-1), minimum)
    r = solver.resources
    return {
        "solver": label,
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


def part_table(args) -> list[dict]:
    """One record per (K, solver): the K's sample statistics and the solver's row."""
    data, model = demo(args.seed, args.hidden)
    labels = args.solvers.split(",") if args.solvers else table_solvers()
    records = []
    for k in (int(v) for v in (args.k or "8,10,12").split(",")):
        if args.landscapes == "random":  # i.i.d. N(0, 1) costs: no structure
            key = jax.random.fold_in(jax.random.key(args.seed), k)
            lands = np.asarray(jax.random.normal(key, (args.groups, 2**k)))
            total = args.groups
        else:
            lands, total = sample_landscapes(model, data, k, args.groups, args.seed)
        flat = attains(lands.max(-1), lands.min(-1))
        r2, kept = qubo_fit(lands)
        head = {
            "part": "table",
            "landscapes": args.landscapes,
            "seed": args.seed,
            "k": k,
            "groups": int(lands.shape[0]),
            "of_groups": int(total),
            "flat_fraction": float(flat.mean()),
            "qubo_r2_median": r2,
            "qubo_ground_state_kept": kept,
        }
        rows = [{**head, **solver_row(label, k, lands, args.seed)} for label in labels]
        print(k_table(rows), flush=True)
        records += rows
    return records


def part_shots(args) -> list[dict]:
    """One record per VQE setting: a full selection of the demo and its scores."""
    data, model = demo(args.seed, args.hidden)
    d = defaults()
    base = {
        "layers": d["vqe_layers"],
        "steps": args.vqe_steps or d["vqe_steps"],
        "learning_rate": d["vqe_lr"],
    }
    wanted = set(args.settings.split(",")) if args.settings else None
    records = []
    print(SHOTS_HEADER)
    for label, options in SHOT_SETTINGS:
        if wanted and label not in wanted:
            continue
        scores = select_and_score(
            model,
            data,
            int(args.k) if args.k else None,
            {**base, **options},
            args.seed,
            args.sweeps or d["sweeps"],
        )
        records.append({"part": "shots", "seed": args.seed, "setting": label, **scores})
        print(shots_line(records[-1]), flush=True)
    return records


# ---------------------------------------------------------------------------
# Tables


def k_table(rows: list[dict]) -> str:
    """One K's Markdown table (static resources taken from the current solvers).

    Depth and two-qubit gates of ``qaoa`` and ``anneal`` are those of the phase
    separator compiled from the full Walsh (Ising) expansion into CNOT ladders and
    RZ gates (what hardware would run), not of the diagonal phase the simulator
    applies in one step.  The records hold the simulator's counts.
    """
    e, k = rows[0], rows[0]["k"]
    qubo = (
        f"QUBO surrogate R² median {e['qubo_r2_median']:.4f}, its ground state "
        f"optimal in {e['qubo_ground_state_kept']:.1%}"
    )
    if e["landscapes"] == "random":
        head = f"### Control: i.i.d. N(0, 1) landscapes, K = {k}"
        note = f"\n\n{e['groups']} landscapes; {qubo}."
    else:
        head = (
            f"### K = {k}: {e['groups']} of {e['of_groups']} fan-in groups, "
            f"{e['flat_fraction']:.1%} flat; {qubo}"
        )
        note = ""
    header = ["solver", "optimum rate", "top-1", "non-flat", "costs/group"]
    header += ["shots/group", "oracle calls/group", "entropy (bits)", "qubits"]
    header += ["depth", "2q gates", "s (after compile)"]
    body = []
    for r in rows:
        res = make_solver(r["solver"], k).resources
        ent = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}"
        body.append(
            [
                r["solver"],
                f"{r['optimum_rate']:.3f}",
                f"{r['top1_rate']:.3f}",
                f"{r['nontrivial_rate']:.3f}",
                f"{r['lookups_per_group']:.0f}",
                f"{r['shots_per_group']:.0f}",
                f"{r['oracle_calls_per_group']:.0f}",
                ent,
                res["qubits"],
                res.get("ising_depth", res["depth"]),
                res.get("ising_two_qubit_gates", res["two_qubit_gates"]),
                f"{r['run_s']:.2f}",
            ]
        )
    return f"{head}\n\n{common.markdown(header, body)}{note}\n"


SHOTS_HEADER = common.markdown(
    [
        "vqe setting",
        "optimum rate",
        "top-1",
        "test acc",
        "val acc",
        "shots/group/solve",
        "s (after compile)",
    ],
    [],
)


def shots_line(r: dict) -> str:
    return (
        f"| {r['setting']} | {r['optimum_rate']:.3f} | {r['top1_rate']:.3f} | "
        f"{r['test_accuracy']:.4f} | {r['val_accuracy']:.4f} | "
        f"{r['shots_per_group_solve']} | {r['run_s']:.0f} |"
    )


def tables(results: dict[str, list[dict]]) -> str:
    """The README's tables from ``{file stem: records}``."""
    out = []
    for records in results.values():
        by_k: dict[tuple, list[dict]] = {}
        for r in records:
            if r["part"] == "table":
                by_k.setdefault((r["landscapes"], r["k"]), []).append(r)
        out += [k_table(rows) for rows in by_k.values()]
        shots = [r for r in records if r["part"] == "shots"]
        if shots:
            lines = [SHOTS_HEADER] + [shots_line(r) for r in shots]
            out.append("### VQE with finite shots and noise\n\n" + "\n".join(lines))
    return "\n".join(out)


def plot(results: dict[str, list[dict]], figures: Path) -> Path:
    """The README's figure: optimum rate per solver, K and landscape kind."""
    from qselax.plots import plot_grouped_bars, save_figure

    data: dict[str, dict[str, float]] = {}
    for records in results.values():
        for r in records:
            if r["part"] == "table":
                kind = "demo" if r["landscapes"] == "demo" else "random"
                data.setdefault(f"{kind}, K = {r['k']}", {})[r["solver"]] = r[
                    "optimum_rate"
                ]
    if not data:
        sys.exit("no --part table records to plot")
    fig = plot_grouped_bars(
        data,
        ylabel="optimum rate",
        ylim=(0.0, 1.05),
        title="optimum rate at default budgets: demo landscapes and i.i.d. random ones",
    )
    return save_figure(fig, figures / "optimum_rate", formats=("png",))[0]


def main() -> None:
    parser = common.parser(__file__, __doc__)
    parser.add_argument("--part", choices=("table", "shots"), default="table")
    parser.add_argument(
        "--k", help="K values: --part table (default 8,10,12), --part shots (8)"
    )
    parser.add_argument("--groups", type=int, default=256, help="groups per K")
    parser.add_argument(
        "--landscapes",
        choices=("demo", "random"),
        default="demo",
        help="the demo network's fan-in landscapes, or i.i.d. N(0, 1) costs",
    )
    parser.add_argument("--solvers", help="comma-separated table rows (default all)")
    parser.add_argument("--settings", help="comma-separated subset of shot settings")
    parser.add_argument("--hidden", help="the demo MLP's hidden widths (default 256)")
    parser.add_argument("--sweeps", type=int, help="--part shots (default 3)")
    parser.add_argument("--vqe-steps", type=int, help="--part shots (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--plot", action="store_true", help="draw the README's figure and exit"
    )
    args = parser.parse_args()
    if args.table:
        print(tables(common.read_results(common.table_dir(args, __file__))))
        return
    if args.plot:
        results = common.read_results(common.table_dir(args, __file__))
        print(f"wrote {plot(results, common.figures_dir(args, __file__))}")
        return
    if args.smoke:
        common.smoke_jax()
        for name, value in SMOKE.items():
            setattr(args, name, value)
    out = common.out_dir(args, __file__)
    print(f"backend {jax.default_backend()}, seed {args.seed}")
    if args.part == "table":
        records = part_table(args)
        name = FILES[args.landscapes]
    else:
        records = part_shots(args)
        name = SHOTS_FILE
    common.write_jsonl(out / f"{name}.jsonl", records)
    print(f"wrote {out / name}.jsonl")


if __name__ == "__main__":
    main()
