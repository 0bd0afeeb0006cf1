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
circuit is :func:`qselax.solvers.qaoa_layers.qaoa_state` with the X mixer and the exact
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

from qselax.bits import check_k
from qselax.circuits import MAX_QUBITS
from qselax.solvers import measure
from qselax.solvers.base import (
    Solver,
    check_bool,
    check_choice,
    check_count,
    check_float,
    check_readout,
    solver_factory,
)
from qselax.solvers.qaoa_layers import qaoa_probs, qaoa_resources, qaoa_state
from qselax.solvers.variational import (
    Readout,
    Tuner,
    VariationalCircuit,
    variational_solver,
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
    check_choice("schedule", schedule, SCHEDULES)
    steps = check_count("steps", steps)
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


def _split_key(key: jax.Array, exact: bool):
    # Exact and noiseless, the evolution is deterministic and the key unused.
    if exact:
        return None, None, None
    run_key, read_key = jax.random.split(key)
    return None, run_key, read_key


@solver_factory("anneal")
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
    """Builds the quantum annealing solver (without ``k``: its :class:`SolverSpec`).

    Args:
        k: qubits per group, in ``[1, 20]``.
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
    k = check_k(k, high=MAX_QUBITS)
    time = check_float("time", time)
    steps = check_count("steps", steps)
    check_choice("schedule", schedule, SCHEDULES)
    check_bool("learn_schedule", learn_schedule)
    schedule_steps = check_count("schedule_steps", schedule_steps, low=0)
    schedule_pieces = check_count("schedule_pieces", schedule_pieces)
    learning_rate = check_float("learning_rate", learning_rate)
    readout = check_readout(k, readout)
    m = measure.make_measurement(shots, noise, trajectories)
    fixed = schedule_values(schedule, steps)
    start = _initial_params(schedule, schedule_pieces)

    def schedule_of(params: jax.Array | None) -> jax.Array:
        if params is None:
            return jnp.asarray(fixed)
        return _interpolate(_knots(params), steps)

    def init(key: None, num_groups: int) -> jax.Array | None:
        del key
        if not learn_schedule:
            return None
        return jnp.broadcast_to(jnp.asarray(start), (num_groups, len(start)))

    def probs(params, landscape, noise_key=None, noise_rate=0.0):
        return anneal_probs(
            schedule_of(params),
            landscape,
            time,
            noise_key=noise_key,
            noise_rate=noise_rate,
        )

    def state(params, landscape):
        values = schedule_of(params)
        dt = jnp.float32(time) / steps
        return qaoa_state(dt * values, -dt * (1.0 - values), landscape)

    gates = qaoa_resources(k, steps)
    resources = {
        "qubits": k,
        "trotter_steps": steps,
        "depth": gates["depth"],
        "two_qubit_gates": gates["two_qubit_gates"],
        "ising_depth": gates["ising_depth"],
        "ising_two_qubit_gates": gates["ising_two_qubit_gates"],
        "parameters": schedule_pieces if learn_schedule else 0,
    }
    return variational_solver(
        "anneal",
        VariationalCircuit(probs, state, init, _split_key),
        tuner=Tuner(optax.adam(learning_rate), schedule_steps if learn_schedule else 0),
        readout=Readout(readout),
        measurement=m,
        resources=resources,
    )
