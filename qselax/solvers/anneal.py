"""``anneal``: Trotterised quantum annealing (adiabatic evolution), per group.

The paper's method 2.  Each group's K qubits start in ``|+>^K``, the ground state of
``H_0 = -Σ_v X_v``, and evolve for a total time ``T`` under

    H(t) = (1 - s(t)) H_0 + s(t) C̃,

``C̃`` the group's landscape shifted and scaled to zero mean and unit spread (the same
ground state; :func:`qselax.solvers.base.normalize_landscapes`), so one ``T`` suits
every group.  The evolution is ``steps`` first-order Trotter steps of ``dt = T/steps``:

    U_j = exp(-i dt (1 - s_j) H_0) exp(-i dt s_j C̃),   s_j = s((j + ½) dt),

the schedule sampled at each step's midpoint.  A Trotter step is a QAOA layer with
``γ_j = dt s_j`` and ``β_j = -dt (1 - s_j)`` (``exp(+i dt (1 - s) Σ X)``), so the
circuit is :func:`qselax.solvers.qaoa.qaoa_state` with the X mixer and the exact
diagonal phase, steps applied by ``lax.scan``.  If ``T`` is long against the inverse
square of the spectral gap (and ``dt`` short), the final state is close to the
ground state of C̃ (the adiabatic theorem).

Schedules ``s(t)``, ``s(0) = 0``, ``s(T) = 1``: ``"linear"`` ``t/T``,
``"quadratic"`` ``(t/T)^2`` (slower where the gap of a transverse-field anneal
usually closes, late), or, with ``learn_schedule=True``, a piecewise-linear schedule
on ``schedule_pieces`` equal time intervals, per group, started at the named schedule
and tuned by ``optax`` Adam (``schedule_steps`` steps) on the final ``<C̃>`` through
the differentiable simulation.  Its knot values are cumulative sums of softplus
increments divided by their total: monotone, 0 at the start and 1 at the end for any
parameters, so the optimiser needs no constraints.

Readout as for :mod:`qselax.solvers.vqe`: the ``readout`` most probable bitstrings
(at most ``2^K / 16``) are looked up and the best is kept; the single most probable
one is reported as ``top1``.

Shapes: ``G`` groups, ``K`` qubits, ``S = 2^K`` configurations, ``N`` Trotter steps,
``M`` schedule pieces.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from qselax.entanglement import half_cut_entropy
from qselax.solvers import measure
from qselax.solvers.base import (
    Solver,
    SolveResult,
    best_of,
    normalize_landscapes,
    with_costs,
)
from qselax.solvers.qaoa import (
    _check_choice,
    _check_int,
    _check_rate,
    _check_readout,
    qaoa_probs,
    qaoa_resources,
    qaoa_state,
)

__all__ = ["SCHEDULES", "anneal", "anneal_probs", "schedule_values"]

SCHEDULES = ("linear", "quadratic")


def _named_schedule(name: str, u: np.ndarray) -> np.ndarray:
    return u if name == "linear" else u**2


def schedule_values(schedule: str, steps: int) -> np.ndarray:
    """``s_j = s((j + ½)/N)`` of a named schedule at the Trotter step midpoints.

    Example:
        >>> schedule_values("linear", 4).tolist()
        [0.125, 0.375, 0.625, 0.875]
    """
    _check_choice("schedule", schedule, SCHEDULES)
    steps = _check_int("steps", steps, 1)
    u = (np.arange(steps) + 0.5) / steps
    return _named_schedule(schedule, u).astype(np.float32)


def anneal_probs(
    values: Float[Array, " N"],
    landscape: Float[Array, " S"],
    time: float,
    *,
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Float[Array, " S"]:
    """Born probabilities after the Trotterised anneal with schedule values ``s_j``.

    Args:
        values: ``(N,)`` schedule at the step midpoints, one per Trotter step.
        landscape: ``(S,)`` costs ``C``, used as given (callers normalise them).
        time: total annealing time ``T``; ``dt = T / N``.
        noise_key: key of a depolarizing-noise trajectory (``None``: noiseless).
        noise_rate: depolarizing probability per qubit after every Trotter step.

    Returns:
        ``(S,)`` float32 probabilities, qubit 0 the most significant bit.

    Example:
        >>> p = anneal_probs(jnp.asarray(schedule_values("linear", 40)),
        ...                  jnp.array([1.0, -1.0]), time=20.0)
        >>> bool(p[1] > 0.99)
        True
    """
    values = jnp.asarray(values, jnp.float32)
    dt = jnp.float32(time) / values.shape[0]
    return qaoa_probs(
        dt * values,
        -dt * (1.0 - values),
        landscape,
        noise_key=noise_key,
        noise_rate=noise_rate,
    )


def _interpolate(knots: Float[Array, " M1"], steps: int) -> Float[Array, " N"]:
    """Piecewise-linear schedule through ``knots`` (``M + 1`` values at ``i/M``)."""
    grid = np.linspace(0.0, 1.0, knots.shape[0]).astype(np.float32)
    mid = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    return jnp.interp(jnp.asarray(mid), jnp.asarray(grid), knots)


def _knots(params: Float[Array, " M"]) -> Float[Array, " M1"]:
    """Monotone knot values from free parameters: normalised cumulative softplus."""
    increments = jax.nn.softplus(params)
    cumulative = jnp.cumsum(increments) / jnp.sum(increments)
    return jnp.concatenate([jnp.zeros((1,), cumulative.dtype), cumulative])


def _initial_params(schedule: str, pieces: int) -> np.ndarray:
    """Parameters whose :func:`_knots` are the named schedule at ``i/M``."""
    knots = _named_schedule(schedule, np.linspace(0.0, 1.0, pieces + 1))
    increments = np.maximum(np.diff(knots) * pieces, 1e-3)  # softplus > 0
    # inverse softplus, stable for large increments: y + log(1 - exp(-y))
    return (increments + np.log(-np.expm1(-increments))).astype(np.float32)


def anneal(
    k: int,
    *,
    time: float = 10.0,
    steps: int = 50,
    schedule: str = "linear",
    learn_schedule: bool = False,
    schedule_steps: int = 50,
    learning_rate: float = 0.05,
    readout: int | None = None,
    schedule_pieces: int = 8,
    shots: int | None = None,
    noise: float = 0.0,
    trajectories: int = 8,
) -> Solver:
    """Builds the quantum annealing solver.

    Args:
        k: qubits per group.
        time: total annealing time ``T`` (landscapes have unit spread), > 0.
        steps: Trotter steps ``N``; ``dt = T / N``.
        schedule: ``"linear"`` or ``"quadratic"``; the start of a learned schedule.
        learn_schedule: tune a piecewise-linear schedule per group on ``<C̃>``.
        schedule_steps: Adam steps of the schedule tuning (used if learned).
        learning_rate: Adam learning rate (used if learned).
        readout: bitstrings looked up per group (default and maximum ``2^K/16``).
        schedule_pieces: linear pieces ``M`` of a learned schedule.
        shots: measured bitstrings per group (and per schedule-tuning step);
            ``None``: exact probabilities.  See :mod:`qselax.solvers.measure`.
        noise: depolarizing probability per qubit after every Trotter step.
        trajectories: noise trajectories per step.

    Returns:
        A :class:`~qselax.solvers.base.Solver` named ``"anneal"``.

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> solver = anneal(3, time=20.0, steps=40)
        >>> land = jnp.array([[3.0, 1.0, 2.0, 0.0, 5.0, 4.0, 6.0, 7.0]])
        >>> int(solver.solve(jax.random.key(0), land, jnp.zeros(1, jnp.int32)).top1[0])
        3
    """
    k = _check_int("k", k, 1)
    try:
        time = float(time)
    except (TypeError, ValueError):
        raise ValueError(f"time must be a number, got {time!r}") from None
    if not (time > 0 and np.isfinite(time)):
        raise ValueError(f"time must be > 0 and finite, got {time}")
    steps = _check_int("steps", steps, 1)
    _check_choice("schedule", schedule, SCHEDULES)
    if not isinstance(learn_schedule, bool):
        raise ValueError(f"learn_schedule must be a bool, got {learn_schedule!r}")
    schedule_steps = _check_int("schedule_steps", schedule_steps, 0)
    schedule_pieces = _check_int("schedule_pieces", schedule_pieces, 1)
    learning_rate = _check_rate(learning_rate)
    readout = _check_readout(k, readout)
    m = measure.make_measurement(shots, noise, trajectories)

    gates = qaoa_resources(k, steps)
    resources = {
        "qubits": k,
        "trotter_steps": steps,
        "depth": gates["depth"],
        "two_qubit_gates": gates["two_qubit_gates"],
        "ising_depth": gates["ising_depth"],
        "ising_two_qubit_gates": gates["ising_two_qubit_gates"],
        "parameters": schedule_pieces if learn_schedule else 0,
        "optimizer_steps": schedule_steps if learn_schedule else 0,
        "readout": readout,
        **m.resources(schedule_steps if learn_schedule else 0),
    }
    fixed = schedule_values(schedule, steps)
    start = _initial_params(schedule, schedule_pieces)
    opt = optax.adam(learning_rate)

    def learned(landscape: jax.Array) -> jax.Array:
        def energy(params):
            values = _interpolate(_knots(params), steps)
            return jnp.sum(anneal_probs(values, landscape, time) * landscape)

        def step(carry, _):
            params, state = carry
            grad = jax.grad(energy)(params)
            updates, state = opt.update(grad, state, params)
            return (optax.apply_updates(params, updates), state), None

        params = jnp.asarray(start)
        (params, _), _ = jax.lax.scan(
            step, (params, opt.init(params)), length=schedule_steps
        )
        return params

    def schedule_of(params: jax.Array | None) -> jax.Array:
        if params is None:
            return jnp.asarray(fixed)
        return _interpolate(_knots(params), steps)

    def entropy(params, normed: jax.Array) -> jax.Array:
        def one(p, land):
            values = schedule_of(p)
            dt = jnp.float32(time) / steps
            state = qaoa_state(dt * values, -dt * (1.0 - values), land)
            return half_cut_entropy(state, k)

        axis = None if params is None else 0
        return jax.vmap(one, in_axes=(axis, 0))(params, normed)

    def measured(key, landscapes, normed, oracle) -> SolveResult:
        """Finite shots and/or noise: :mod:`qselax.solvers.measure`."""
        num_groups = landscapes.shape[0]
        run_key, read_key = jax.random.split(key)
        axis = 0 if learn_schedule else None

        def probs_fn(params, noise_key):
            keys = (
                jnp.zeros((num_groups,), jnp.uint32)
                if noise_key is None
                else jax.random.split(noise_key, num_groups)
            )

            def one(p, land, nk):
                return anneal_probs(
                    schedule_of(p),
                    land,
                    time,
                    noise_key=None if noise_key is None else nk,
                    noise_rate=m.noise,
                )

            return jax.vmap(one, in_axes=(axis, 0, 0))(params, normed, keys)

        params = None
        if learn_schedule:
            params = jnp.broadcast_to(jnp.asarray(start), (num_groups, len(start)))
        return measure.solve_measured(
            run_key,
            read_key,
            params,
            probs_fn,
            landscapes=landscapes,
            normed=normed,
            oracle=oracle,
            steps=schedule_steps if learn_schedule else 0,
            optimizer=opt,
            readout=readout,
            measurement=m,
            entropy=lambda p: entropy(p, normed),
        )

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        del current
        num_groups = landscapes.shape[0]
        normed = normalize_landscapes(landscapes)
        if not m.exact:
            return measured(key, landscapes, normed, oracle)
        # Exact and noiseless: the evolution is deterministic, the key unused.
        if learn_schedule:
            params = jax.vmap(learned)(normed)
        else:
            params = None
        probs = jax.vmap(
            lambda p, land: anneal_probs(schedule_of(p), land, time),
            in_axes=(0 if learn_schedule else None, 0),
        )(params, normed)
        top1 = jnp.argmax(probs, axis=-1).astype(jnp.int32)
        candidates = jax.lax.top_k(probs, readout)[1].astype(jnp.int32)
        index = best_of(landscapes, candidates).astype(jnp.int32)
        lookups = jnp.full((num_groups,), readout, jnp.int32)
        return SolveResult(index, top1, probs, lookups, entropy=entropy(params, normed))

    return Solver("anneal", with_costs(solve), resources)
