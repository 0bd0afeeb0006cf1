"""Solvers: landscapes in, chosen configurations out (see :mod:`.base`).

Every factory below builds a solver with K, ``vqe(8, layers=3)``, or, without K,
describes one, ``vqe(layers=3)`` (a :class:`SolverSpec` that configs hold and
:meth:`SolverSpec.build` turns into a solver once K is known).  The variational ones
are compositions of shared pieces (:mod:`.variational`, :mod:`.measure`).
"""

from __future__ import annotations

from qselax.solvers.anneal import anneal
from qselax.solvers.base import (
    Solver,
    SolveResult,
    SolverSpec,
    best_of,
    max_readout,
    normalize_landscapes,
)
from qselax.solvers.classical import random_search, sa
from qselax.solvers.exhaustive import exhaustive
from qselax.solvers.grover import grover, grover_search
from qselax.solvers.qaoa import qaoa
from qselax.solvers.vqe import vqe

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


def solver_spec(name_or_spec: str | SolverSpec, **options) -> SolverSpec:
    """A :class:`SolverSpec` from a registry name (or a spec) and options.

    Option names are checked here; their values when the spec is built.  Options
    given with a spec replace the spec's own.

    Example:
        >>> str(solver_spec("qaoa", layers=2))
        'qaoa(layers=2)'
        >>> str(solver_spec(solver_spec("qaoa", layers=2), steps=5))
        'qaoa(layers=2, steps=5)'

    Raises:
        ValueError: an unknown solver name or option name.
    """
    if isinstance(name_or_spec, SolverSpec):
        name, options = name_or_spec.name, {**name_or_spec.kwargs, **options}
    else:
        name = name_or_spec
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(f"solver must be one of {tuple(SOLVERS)}, got {name!r}")
    return SOLVERS[name](**options)


def make_solver(name_or_spec: str | SolverSpec, k: int, **options) -> Solver:
    """Builds a registered solver by name (or from a spec) with its options.

    Its ``resources`` always hold the standard entries :data:`STANDARD_RESOURCES`
    (zero where they do not apply: no circuit, no shots, no coherent oracle);
    ``oracle_calls`` is the per-group budget of Grover iterations.  Options given
    with a spec replace the spec's own.

    Example:
        >>> make_solver("vqe", 4, layers=1).resources["parameters"]
        8
        >>> make_solver(vqe(layers=1), 4).resources["parameters"]
        8

    Raises:
        ValueError: unknown solver name, an option the solver does not take, or a
            bad option value (named in the message).
    """
    spec = solver_spec(name_or_spec, **options)  # checks the name and option names
    if k is None:
        raise ValueError(f"solver {spec.name!r} needs k, the bits per group")
    solver = SOLVERS[spec.name](k, **spec.kwargs)
    resources = dict.fromkeys(STANDARD_RESOURCES, 0)
    resources["oracle_calls"] = solver.resources.get("oracle_budget", 0)
    resources.update(solver.resources)
    return solver._replace(resources=resources)


__all__ = [
    "SOLVERS",
    "STANDARD_RESOURCES",
    "Solver",
    "SolveResult",
    "SolverSpec",
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
    "solver_spec",
    "vqe",
]
