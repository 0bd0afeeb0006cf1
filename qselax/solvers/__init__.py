"""Solvers: landscapes in, chosen configurations out (see :mod:`.base`)."""

from __future__ import annotations

from qselax.solvers.anneal import anneal
from qselax.solvers.base import Solver, SolveResult, best_of, normalize_landscapes
from qselax.solvers.classical import random_search, sa
from qselax.solvers.exhaustive import exhaustive
from qselax.solvers.grover import grover, grover_search
from qselax.solvers.qaoa import qaoa
from qselax.solvers.vqe import max_readout, vqe

SOLVERS = {
    "exhaustive": exhaustive,
    "vqe": vqe,
    "qaoa": qaoa,
    "grover": grover,
    "anneal": anneal,
    "sa": sa,
    "random": random_search,
}


STANDARD_RESOURCES = ("qubits", "depth", "two_qubit_gates", "shots", "oracle_calls")


def make_solver(name: str, k: int, **options) -> Solver:
    """Builds a registered solver by name with its options.

    Its ``resources`` always hold the standard entries :data:`STANDARD_RESOURCES`
    (zero where they do not apply: no circuit, no shots, no coherent oracle);
    ``oracle_calls`` is the per-group budget of Grover iterations.

    Raises:
        ValueError: unknown solver name, or an option the solver does not take.
    """
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {tuple(SOLVERS)}, got {name!r}")
    try:
        solver = SOLVERS[name](k, **options)
    except TypeError as err:
        raise ValueError(f"bad options for solver {name!r}: {err}") from None
    resources = dict.fromkeys(STANDARD_RESOURCES, 0)
    resources["oracle_calls"] = solver.resources.get("oracle_budget", 0)
    resources.update(solver.resources)
    return solver._replace(resources=resources)


__all__ = [
    "SOLVERS",
    "STANDARD_RESOURCES",
    "Solver",
    "SolveResult",
    "anneal",
    "best_of",
    "exhaustive",
    "grover",
    "grover_search",
    "make_solver",
    "max_readout",
    "normalize_landscapes",
    "qaoa",
    "random_search",
    "sa",
    "vqe",
]
