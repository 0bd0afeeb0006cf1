"""Classical references: simulated annealing (``sa``) and random search (``random``).

Both read the landscape one entry at a time and count those look-ups, so they can
be compared with the quantum solvers at equal (or stated) cost.  Their default
budgets are fractions of ``S = 2^K`` -- they are *not* exhaustive search.

``sa``: per group, ``restarts`` Metropolis chains of single-bit flips.  Chain 0
starts at the group's ``current`` configuration, the others at uniformly random
ones.  At step ``i`` (of ``steps``) a qubit ``j`` is drawn uniformly, the flip
``s' = s XOR 2^(K-1-j)`` (qubit 0 the most significant bit) is looked up, and
accepted if ``dC <= 0`` or with probability ``exp(-dC / T_i)``.  The temperature
is geometric, ``T_i = tau_i * scale_i`` with ``tau_i = t0 (t1/t0)^(i/(steps-1))``,
and ``scale_i`` the mean ``|dC|`` of the proposals made so far by that chain: the
chain learns the landscape's energy scale from its own look-ups (no extra ones),
so ``t0`` and ``t1`` are dimensionless and any affine rescaling ``a C + b`` of a
landscape (``a > 0``) gives the same run.  The best configuration a chain visited
is kept, and the best over chains is returned.  Steps run in ``lax.scan`` with all
random numbers drawn up front (one draw per group: XLA compiles random-bit
generation slowly, so one call instead of one per step keeps compile time down).

``random``: the best of ``samples`` configurations drawn uniformly with
replacement.  Group ``g`` draws ``jax.random.randint(keys[g], (samples,), 0, S)``
with ``keys = jax.random.split(key, G)``.

Shapes: ``G`` groups, ``K`` bits, ``S = 2^K`` configurations, ``R`` restarts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from qselax.bits import check_k
from qselax.solvers.base import (
    Solver,
    SolveResult,
    best_of,
    check_count,
    check_float,
    solver_factory,
    with_costs,
)

__all__ = ["default_sa_steps", "random_search", "sa"]


def _check_inputs(landscapes, current, k: int) -> tuple[jax.Array, jax.Array]:
    landscapes = jnp.asarray(landscapes)
    if landscapes.ndim != 2 or landscapes.shape[-1] != 2**k:
        raise ValueError(
            f"landscapes must have shape (G, 2^K = {2**k}) for K={k}, "
            f"got {landscapes.shape}"
        )
    current = jnp.asarray(current)
    if current.shape != landscapes.shape[:1]:
        raise ValueError(
            f"current must have shape (G,) = {landscapes.shape[:1]}, "
            f"got {current.shape}"
        )
    return landscapes.astype(jnp.float32), current.astype(jnp.int32)


# ---------------------------------------------------------------------------
# Simulated annealing.


def default_sa_steps(k: int, restarts: int = 1) -> int:
    """Steps per chain: ``max(1, 2^K // (4 R))``, about ``S/4`` look-ups in all.

    Example:
        >>> default_sa_steps(8), default_sa_steps(8, restarts=4)
        (64, 16)
    """
    return max(1, 2 ** check_k(k) // (4 * check_count("restarts", restarts)))


def _anneal_chain(
    landscape: Float[Array, " S"],
    start: Int[Array, ""],
    uniforms: Float[Array, "N 2"],
    taus: Float[Array, " N"],
    k: int,
) -> tuple[jax.Array, jax.Array]:
    """One Metropolis chain; returns ``(best configuration, its cost)``."""
    cost0 = landscape[start]

    def step(carry, xs):
        s, cost, best, best_cost, abs_sum, count = carry
        (u_flip, u_accept), tau = xs
        qubit = jnp.minimum(jnp.floor(u_flip * k).astype(jnp.int32), k - 1)
        proposal = jnp.bitwise_xor(s, jnp.left_shift(jnp.int32(1), k - 1 - qubit))
        new_cost = landscape[proposal]
        delta = new_cost - cost
        abs_sum = abs_sum + jnp.abs(delta)
        count = count + 1
        temperature = tau * abs_sum / count
        # delta <= 0 always passes; a zero temperature never accepts uphill.
        accept = (delta <= 0) | (
            u_accept < jnp.exp(-delta / jnp.maximum(temperature, 1e-30))
        )
        s = jnp.where(accept, proposal, s)
        cost = jnp.where(accept, new_cost, cost)
        improved = cost < best_cost
        best = jnp.where(improved, s, best)
        best_cost = jnp.where(improved, cost, best_cost)
        return (s, cost, best, best_cost, abs_sum, count), None

    init = (start, cost0, start, cost0, jnp.float32(0.0), jnp.float32(0.0))
    (_, _, best, best_cost, _, _), _ = jax.lax.scan(step, init, (uniforms, taus))
    return best, best_cost


@solver_factory("sa")
def sa(
    k: int,
    *,
    steps: int | None = None,
    t0: float | None = None,
    t1: float | None = None,
    restarts: int = 1,
) -> Solver:
    """Builds the simulated-annealing solver (single-bit flips, Metropolis).

    Without ``k`` it returns its :class:`~qselax.solvers.base.SolverSpec`.

    Args:
        k: bits per group, in ``[1, 24]``.
        steps: proposals per chain (default ``max(1, 2^K // (4 restarts))``, so
            about ``2^K / 4`` look-ups in all: a budget well below exhaustive).
        t0: initial temperature in units of the mean ``|dC|`` of the chain's
            proposals (default 1.0: an average uphill move passes with ``1/e``).
        t1: final temperature, same units (default 0.01: nearly greedy).
        restarts: independent chains per group, ``>= 1``; chain 0 starts at
            ``current``, the others at uniformly random configurations.

    Returns:
        A :class:`Solver` whose ``solve`` gives ``index = top1`` = the best
        configuration visited, ``probs = None`` and
        ``lookups = restarts * (steps + 1)``.

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> land = jnp.arange(16.0)[None, ::-1]  # minimum at 15 = 0b1111
        >>> start = jnp.zeros(1, jnp.int32)
        >>> out = sa(4, steps=32).solve(jax.random.key(0), land, start)
        >>> int(out.index[0]), int(out.lookups[0])
        (15, 33)
    """
    k = check_k(k)
    restarts = check_count("restarts", restarts)
    steps = (
        default_sa_steps(k, restarts) if steps is None else check_count("steps", steps)
    )
    t0 = 1.0 if t0 is None else check_float("t0", t0)
    t1 = 0.01 if t1 is None else check_float("t1", t1)
    frac = np.arange(steps) / max(steps - 1, 1)
    taus_np = (t0 * (t1 / t0) ** frac).astype(np.float32)
    size = 2**k

    def solve_one(key, landscape, current):
        # One random draw per group: column 0 of row 0 of chain r > 0 picks its start.
        uniforms = jax.random.uniform(key, (restarts, steps + 1, 2), jnp.float32)
        random_starts = jnp.minimum(
            jnp.floor(uniforms[:, 0, 0] * size).astype(jnp.int32), size - 1
        )
        starts = random_starts.at[0].set(current)
        taus = jnp.asarray(taus_np)
        best, best_cost = jax.vmap(
            lambda st, u: _anneal_chain(landscape, st, u, taus, k)
        )(starts, uniforms[:, 1:])
        return best[jnp.argmin(best_cost)]

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        del oracle  # each chain step is one look-up (= one network evaluation)
        landscapes, current = _check_inputs(landscapes, current, k)
        num_groups = landscapes.shape[0]
        keys = jax.random.split(key, num_groups)
        index = jax.vmap(solve_one)(keys, landscapes, current).astype(jnp.int32)
        lookups = jnp.full((num_groups,), restarts * (steps + 1), jnp.int32)
        return SolveResult(index, index, None, lookups)

    resources = {
        "qubits": 0,
        "steps": steps,
        "restarts": restarts,
        "t0": t0,
        "t1": t1,
        "classical_lookups": restarts * (steps + 1),
    }
    return Solver("sa", with_costs(solve), resources)


# ---------------------------------------------------------------------------
# Random search.


@solver_factory("random")
def random_search(k: int, *, samples: int | None = None) -> Solver:
    """Builds the random-search solver (registered as ``"random"``).

    Without ``k`` it returns its :class:`~qselax.solvers.base.SolverSpec`.

    Args:
        k: bits per group, in ``[1, 24]``.
        samples: configurations drawn per group, uniformly with replacement
            (default ``max(1, 2^K // 16)``).

    Returns:
        A :class:`Solver` whose ``solve`` gives the best sample (``index = top1``,
        first sample on ties), ``probs = None`` and ``lookups = samples``.

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> solver = random_search(8)
        >>> solver.name, solver.resources["classical_lookups"]
        ('random', 16)
    """
    k = check_k(k)
    samples = max(1, 2**k // 16) if samples is None else check_count("samples", samples)
    size = 2**k

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        landscapes, current = _check_inputs(landscapes, current, k)
        num_groups = landscapes.shape[0]
        keys = jax.random.split(key, num_groups)
        candidates = jax.vmap(
            lambda kk: jax.random.randint(kk, (samples,), 0, size, dtype=jnp.int32)
        )(keys)
        if oracle is None:
            index = best_of(landscapes, candidates).astype(jnp.int32)
        else:  # the sampled configurations' costs from the oracle
            pick = jnp.argmin(oracle(candidates), axis=-1)
            index = jnp.take_along_axis(candidates, pick[:, None], axis=-1)[:, 0]
        lookups = jnp.full((num_groups,), samples, jnp.int32)
        return SolveResult(index, index, None, lookups)

    resources = {"qubits": 0, "samples": samples, "classical_lookups": samples}
    return Solver("random", with_costs(solve), resources)
