"""``vqe``: a hardware-efficient ansatz per group, tuned by optax on <H_C>.

Each group gets its own K-qubit circuit |ψ(θ)> (:func:`qselax.circuits.hea_probs`:
|+>^K, then ``layers`` × [entangling ladder, RY/RZ on every qubit], layers applied by
``lax.scan``).  The loss is the expected normalised cost
``E(θ) = Σ_s p_θ(s) C̃_g(s)``, ``C̃_g`` the landscape shifted and scaled to zero mean
and unit spread (the same ground state; see
:func:`qselax.solvers.base.normalize_landscapes`).  All G circuits are optimised
together: ``jax.vmap`` over groups of an ``optax`` loop in ``lax.scan``
(:func:`qselax.solvers.variational.variational_solver`).

Readout: the ``readout`` most probable bitstrings (``"top"``) or ``readout`` samples
from the Born distribution (``"sample"``) are looked up in the landscape and the best
is kept.  ``readout`` is capped at ``2^K / 16`` so that readout never becomes
exhaustive search.  The single most probable bitstring is reported as ``top1``.

Finite shots and noise (``shots=``, ``noise=``): the expectation is estimated from
measured bitstrings whose costs come from the cost oracle, with score-function
gradients, on depolarizing-noise trajectories; see :mod:`qselax.solvers.measure`.
The half-cut entanglement entropy of every group's final noiseless state is
reported (``SolveResult.entropy``).
"""

from __future__ import annotations

import jax
import optax

from qselax import circuits
from qselax.bits import check_k
from qselax.solvers import measure
from qselax.solvers.base import (
    Solver,
    check_count,
    check_float,
    check_readout,
    solver_factory,
)
from qselax.solvers.variational import (
    Readout,
    Tuner,
    VariationalCircuit,
    variational_solver,
)

__all__ = ["vqe"]


def _split_key(key: jax.Array, exact: bool):
    init_key, read_key = jax.random.split(key)
    if exact:
        return init_key, None, read_key
    init_key, run_key = jax.random.split(init_key)
    return init_key, run_key, read_key


@solver_factory("vqe")
def vqe(
    k: int,
    *,
    layers: int = 3,
    steps: int = 100,
    learning_rate: float = 0.1,
    readout: int | None = None,
    readout_mode: str = "top",
    rotations: tuple[str, ...] = ("ry", "rz"),
    entangler: str = "cnot",
    init_scale: float = 0.1,
    shots: int | None = None,
    noise: float = 0.0,
    trajectories: int = 8,
    warm_steps: int | None = None,
    tol: float | None = None,
    gibbs: float | None = None,
) -> Solver:
    """Builds the VQE solver (without ``k``: its :class:`SolverSpec`).

    Args:
        k: qubits per group, in ``[1, 20]``.
        layers: ansatz depth (entangler + rotation layers).
        steps: Adam steps per sweep.
        learning_rate: Adam learning rate.
        readout: bitstrings looked up per group (default and maximum ``2^K/16``).
        readout_mode: ``"top"`` (most probable) or ``"sample"`` (Born samples;
            exact mode only, shot mode always reads out from its measured shots).
        rotations: rotation gates of each layer.
        entangler: ``"cnot"``, ``"cz"`` or ``"none"`` (product ansatz).
        init_scale: standard deviation of the initial angles.
        shots: measured bitstrings per group and step (``None``: exact
            expectations); see :mod:`qselax.solvers.measure`.
        noise: depolarizing probability per qubit after every layer.
        trajectories: noise trajectories per step.
        warm_steps: Adam steps of a warm-started solve: from its second sweep on,
            each group starts from its own tuned angles of the previous sweep
            (kept in the selection state); ``None``: every sweep starts cold.
        tol: stop a group's loop once its objective (the expected normalised
            cost, or the Gibbs objective) changes by less than ``tol`` in a step
            (``None``: every step runs).  The steps used are reported per group.
        gibbs: tune on the Gibbs objective ``-(1/η) log Σ p exp(-η C̃)`` at
            inverse temperature ``η = gibbs`` instead of the expectation (exact,
            noiseless mode only; :func:`qselax.solvers.variational.objective`).

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> solver = vqe(4, layers=2, steps=20)
        >>> solver.resources["parameters"], solver.resources["readout"]
        (16, 1)
    """
    k = check_k(k, high=circuits.MAX_QUBITS)
    layers = check_count("layers", layers, low=0)
    steps = check_count("steps", steps)
    learning_rate = check_float("learning_rate", learning_rate)
    readout = check_readout(k, readout)
    if warm_steps is not None:
        warm_steps = check_count("warm_steps", warm_steps)
    if tol is not None:
        tol = check_float("tol", tol)
    if gibbs is not None:
        gibbs = check_float("gibbs", gibbs)
    m = measure.make_measurement(shots, noise, trajectories)
    ansatz = circuits.Ansatz(k, layers, tuple(rotations), entangler)
    resources = circuits.hea_resources(ansatz)  # checks the ansatz

    def init(key: jax.Array, num_groups: int) -> jax.Array:
        keys = jax.random.split(key, num_groups)
        return jax.vmap(lambda kk: circuits.init_hea_params(kk, ansatz, init_scale))(
            keys
        )

    def probs(params, landscape, noise_key=None, noise_rate=0.0):
        del landscape  # the ansatz does not see H_C; only the loss does
        return circuits.hea_probs(
            params, ansatz, noise_key=noise_key, noise_rate=noise_rate
        )

    def state(params, landscape):
        del landscape
        return circuits.hea_state(params, ansatz)

    return variational_solver(
        "vqe",
        VariationalCircuit(probs, state, init, _split_key),
        tuner=Tuner(optax.adam(learning_rate), steps, warm_steps, tol, gibbs),
        readout=Readout(readout, readout_mode),
        measurement=m,
        resources=resources,
    )
