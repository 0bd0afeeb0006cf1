"""The solver interface shared by every solver.

A solver turns a batch of G landscapes ``(G, S)`` (``S = 2^K`` costs per group, the
diagonal of each group's H_C) into one chosen configuration per group.  Solvers are
built by factories that capture their static settings (K, depth, budgets) and return a
:class:`Solver`; ``solve`` is pure and jit-compatible, and is called on all groups of a
sweep at once (quantum solvers ``vmap`` one K-qubit circuit per group inside it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class SolveResult(NamedTuple):
    """What a solver returns for G groups.

    Attributes:
        index: ``(G,)`` int32 chosen configuration of each group.
        top1: ``(G,)`` int32 single most probable configuration (readout S = 1); equal
            to ``index`` for classical solvers.
        probs: ``(G, S)`` final Born probabilities, or ``None`` where undefined.
        lookups: ``(G,)`` int32 costs the solver consulted (landscape look-ups or
            oracle evaluations of sampled configurations).
        oracle_calls: ``(G,)`` int32 coherent oracle uses (Grover iterations), or
            ``None``.
        shots: ``(G,)`` int32 circuit executions measured (finite-shot mode), or
            ``None``.
        entropy: ``(G,)`` half-cut entanglement entropy (bits) of each group's final
            noiseless state, or ``None`` where there is no state.
        cost: ``(G,)`` cost of the chosen configuration ``index`` (filled in by
            :func:`with_costs`, which every registered solver's ``solve`` passes
            through).
    """

    index: jax.Array
    top1: jax.Array
    probs: jax.Array | None
    lookups: jax.Array
    oracle_calls: jax.Array | None = None
    shots: jax.Array | None = None
    entropy: jax.Array | None = None
    cost: jax.Array | None = None


class Solver(NamedTuple):
    """A named, configured solver.

    Attributes:
        name: registry name (``"exhaustive"``, ``"vqe"``, ...).
        solve: ``(key, landscapes (G, S), current (G,), oracle=None) ->
            SolveResult``; ``current`` is each group's present configuration
            (solvers may ignore it); ``oracle`` (``(G, R) configurations -> (G, R)
            costs``, see :mod:`qselax.solvers.measure`) is what finite-shot solvers
            query for sampled configurations (default: look-ups in ``landscapes``).
        resources: static resource counts per group (qubits, depth, gates, ...).
    """

    name: str
    solve: Callable[[jax.Array, jax.Array, jax.Array], SolveResult]
    resources: dict


def check_count(name: str, value) -> int:
    """``value`` as an int ``>= 1``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def with_costs(solve: Callable) -> Callable:
    """Wraps a ``solve`` so that its result carries the chosen configurations' costs.

    The cost of ``index`` is read off the landscape (with a finite-shot oracle it is
    the same number: the network evaluated on that configuration).
    """

    def wrapped(key, landscapes, current, oracle=None) -> SolveResult:
        res = solve(key, landscapes, current, oracle)
        if res.cost is None:
            cost = jnp.take_along_axis(landscapes, res.index[:, None], axis=-1)[:, 0]
            res = res._replace(cost=cost)
        return res

    return wrapped


def normalize_landscapes(landscapes: jax.Array) -> jax.Array:
    """Shifts and scales each landscape to zero mean and unit spread.

    An affine map ``a C + b`` with ``a > 0`` keeps the ground state and the ordering
    of configurations, but puts every group's H_C on the same scale, so one learning
    rate and one set of angles suit all groups.  Flat landscapes map to zeros.
    """
    # Shift by one entry first so that a flat row is exactly zero: its float32 mean
    # is not exact (e.g. 0.1), which would leave a rounding-noise spread of ~1e-8
    # that the division blows up to +-1.
    centred = landscapes - landscapes[..., :1]
    mean = jnp.mean(centred, axis=-1, keepdims=True)
    std = jnp.std(centred, axis=-1, keepdims=True)
    return (centred - mean) / jnp.where(std > 0, std, jnp.ones_like(std))


def best_of(landscapes: jax.Array, candidates: jax.Array) -> jax.Array:
    """The candidate with the lowest cost per group: ``(G, S), (G, R) -> (G,)``."""
    costs = jnp.take_along_axis(landscapes, candidates, axis=-1)
    pick = jnp.argmin(costs, axis=-1)
    return jnp.take_along_axis(candidates, pick[:, None], axis=-1)[:, 0]
