"""``exhaustive``: the exact minimum of every landscape (the reference optimum)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qselax.solvers.base import Solver, SolveResult, with_costs


def exhaustive(k: int) -> Solver:
    """Argmin over all ``2^K`` configurations of each group.

    Ties go to the lowest configuration index.  Every entry of the landscape is
    looked up, so ``lookups = 2^K`` per group.
    """

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        del key, current, oracle
        index = jnp.argmin(landscapes, axis=-1).astype(jnp.int32)
        lookups = jnp.full(index.shape, landscapes.shape[-1], jnp.int32)
        return SolveResult(index, index, None, lookups)

    resources = {"qubits": 0, "classical_lookups": 2**k}
    return Solver("exhaustive", with_costs(solve), resources)
