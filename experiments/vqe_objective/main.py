"""The VQE's objective: expected cost against the Gibbs objective, on real landscapes.

On the default demo's network (digits, random signed-constant MLP 64-256-10, fan-in
groups of K = 8 in interleaved order, cross-entropy on the 1,079 training samples),
for each seed: every group's exact landscape at two masks, the unmasked start (all
ones: where sweep 1 begins) and the mask an exhaustive selection (the demo's 3
sweeps) ends at (the flat landscapes of the last sweeps).  The direct VQE (3 layers
of a CNOT ladder and RY, 50 Adam steps at 0.2, readout of the 16 most probable
bitstrings) solves all of them once per objective: the expected normalised cost
``Σ p C̃`` (``gibbs`` off) and the Gibbs objective ``-(1/η) log Σ p exp(-η C̃)`` for
each ``η`` in ``--eta``.  Same landscapes, same keys, same circuit: only the loss
differs.  Reported: optimum rate (the pick attains the group's minimum), top-1 rate
(the single most probable bitstring) and the solve's seconds after compilation.
Records: ``<out>/vqe_objective.jsonl``, one line per (seed, mask, objective).

Usage::

    python experiments/vqe_objective/main.py --seeds 0 1 2
    python experiments/vqe_objective/main.py --table
    python experiments/vqe_objective/main.py --smoke
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

ETAS = (2.0, 4.0, 8.0, 16.0, 32.0)
MASKS = ("start", "final")


def _landscapes(seed: int, argv: list[str]) -> tuple[dict, dict, int]:
    """Every group's landscapes at the start and final masks of one demo seed."""
    from qselax.cli import _network, _select_config, build_parser, resolve
    from qselax.groups import make_grouping
    from qselax.networks import ones_masks
    from qselax.selection import group_landscapes, select

    settings = resolve(
        build_parser().parse_args(
            ["run", "--seed", str(seed), "--solver", "exhaustive", *argv]
        )
    )
    data, model = _network(settings)
    config = _select_config(settings, "exhaustive")
    key = jax.random.fold_in(jax.random.key(seed), 100)
    sel = select(key, model, data, config, progress=False)
    grouping = make_grouping(config.grouping, model, config.k, order=config.group_order)
    ids = np.arange(grouping.num_groups)
    lands = {
        "start": group_landscapes(model, data, config, ones_masks(model), ids),
        "final": group_landscapes(model, data, config, sel.masks, ids),
    }
    kept = next(h for h in sel.history if h["sweep"] == sel.best_sweep)
    info = {
        "exhaustive_test_accuracy": float(kept["test_accuracy"]),
        "groups": int(ids.size),
    }
    return lands, info, config.k


def _solver(k: int, gibbs: float | None):
    """The direct VQE's jitted ``solve`` for K bits, with objective ``gibbs``."""
    from qselax.selection import DIRECT_VQE
    from qselax.solvers import solver_spec

    options = {name: v for name, v in DIRECT_VQE.items() if name != "gibbs"}
    if gibbs is not None:
        options["gibbs"] = gibbs
    return jax.jit(solver_spec("vqe", **options).build(k).solve)


def _solve(seed: int, solve, land: np.ndarray) -> dict:
    """One compiled solve of all groups' landscapes: its rates and seconds."""
    from qselax.sweeps import attains

    land = jnp.asarray(land)
    current = jnp.zeros(land.shape[0], jnp.int32)
    key = jax.random.key(seed)
    start = time.perf_counter()
    res = jax.block_until_ready(solve(key, land, current))
    seconds = time.perf_counter() - start
    low = jnp.min(land, axis=-1)

    def rate(index):
        cost = jnp.take_along_axis(land, index[:, None], axis=-1)[:, 0]
        return float(jnp.mean(attains(cost, low)))

    return {
        "optimum_rate": rate(res.index),
        "top1_rate": rate(res.top1),
        "solve_s": seconds,
    }


def run(args, out: Path) -> None:
    argv = ["--dataset", "iris", "--hidden", "8", "--k", "4", "--sweeps", "1"]
    argv = argv if args.smoke else []
    etas = (4.0,) if args.smoke else tuple(args.eta)
    path = out / "vqe_objective.jsonl"
    if not args.smoke:
        path.write_text("")
    for seed in args.seeds:
        lands, info, k = _landscapes(seed, argv)
        for gibbs in (None, *etas):
            solve = _solver(k, gibbs)
            # Compiled once per objective (both masks' landscapes share a shape).
            first = jnp.asarray(lands[MASKS[0]])
            current = jnp.zeros(first.shape[0], jnp.int32)
            jax.block_until_ready(solve(jax.random.key(seed), first, current))
            for mask in MASKS:
                record = {
                    "seed": seed,
                    "mask": mask,
                    "objective": "expectation" if gibbs is None else "gibbs",
                    "eta": gibbs,
                    "k": k,
                    **info,
                    **_solve(seed, solve, lands[mask]),
                    "backend": jax.default_backend(),
                }
                common.write_jsonl(path, [record], append=True)
                print(record, flush=True)


def table(directory: Path) -> None:
    records = common.read_results(directory)["vqe_objective"]
    seeds = sorted({r["seed"] for r in records})
    objectives = []
    for r in records:
        if (r["objective"], r["eta"]) not in objectives:
            objectives.append((r["objective"], r["eta"]))
    rows = []
    for objective, eta in objectives:
        row = [objective if eta is None else f"{objective}, η = {eta:g}"]
        for mask in MASKS:
            sel = [
                r
                for r in records
                if r["mask"] == mask and r["objective"] == objective and r["eta"] == eta
            ]
            row.append(common.mean_std((r["optimum_rate"] for r in sel), "{:.4f}"))
            row.append(common.mean_std((r["top1_rate"] for r in sel), "{:.4f}"))
            row.append(f"{np.mean([r['solve_s'] for r in sel]):.2f}")
        rows.append(row)
    header = ["objective"]
    for mask in MASKS:
        header += [f"{mask}: optimum rate", f"{mask}: top-1", f"{mask}: solve s"]
    groups = sorted({r["groups"] for r in records})
    print(f"seeds {seeds}, {groups} groups per landscape set, K = {records[0]['k']}")
    print()
    print(common.markdown(header, rows))


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eta", type=float, nargs="+", default=list(ETAS))
    args = p.parse_args()
    bad = [eta for eta in args.eta if not (np.isfinite(eta) and eta > 0)]
    if bad:  # before the selection runs, not at the first solve
        p.error(f"--eta values must be finite and > 0, got {bad}")
    if args.table:
        table(common.table_dir(args, __file__))
        return
    if args.smoke:
        common.smoke_jax()
        args.seeds = [0]
    out = common.out_dir(args, __file__)
    run(args, out)
    table(out)


if __name__ == "__main__":
    main()
