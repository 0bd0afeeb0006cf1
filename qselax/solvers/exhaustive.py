"""``exhaustive``: the exact minimum of every landscape (the reference optimum)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qselax.bits import check_k
from qselax.solvers.base import Solver, SolveResult, solver_factory, with_costs

__all__ = ["exhaustive"]


@solver_factory("exhaustive")
def exhaustive(k: int) -> Solver:
    """Argmin over all ``2^K`` configurations of each group.

    Ties go to the lowest configuration index.  Every entry of the landscape is
    looked up, so ``lookups = 2^K`` per group.  It has no options, so
    ``exhaustive()`` is its :class:`~qselax.solvers.base.SolverSpec`.

    Example:
        >>> land = jnp.array([[2.0, 0.0, 1.0, 0.0]])
        >>> exhaustive(2).solve(jax.random.key(0), land, jnp.zeros(1, jnp.int32)).index
        Array([1], dtype=int32)
    """
    k = check_k(k)

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        del key, current, oracle
        index = jnp.argmin(landscapes, axis=-1).astype(jnp.int32)
        lookups = jnp.full(index.shape, landscapes.shape[-1], jnp.int32)
        return SolveResult(index, index, None, lookups)

    resources = {"qubits": 0, "classical_lookups": 2**k}
    return Solver("exhaustive", with_costs(solve), resources)
