"""``qaoa``: the quantum approximate optimisation algorithm, one circuit per group.

Each group gets a K-qubit QAOA circuit (Farhi et al. 2014; the paper's method 4):

    |γ, β> = Π_{j=1..p} exp(-i β_j H_M) exp(-i γ_j C̃) |+>^K,

``C̃`` the group's landscape shifted and scaled to zero mean and unit spread (the same
ground state; :func:`qselax.solvers.base.normalize_landscapes`).  The circuit, its
phase separators (``"diagonal"``, ``"ising"``), mixers (``"x"``, ``"bitflip"``),
resources and OpenQASM export are in :mod:`qselax.solvers.qaoa_layers` (re-exported
here).  The ``2p`` angles minimise ``F(γ, β) = <γ, β| C̃ |γ, β> = Σ_s p(s) C̃(s)``
with ``optax`` Adam inside ``lax.scan``: per group (``jax.vmap`` of the whole
optimisation) or, with ``shared=True``, one angle set for all groups on their mean
energy (:func:`qselax.solvers.variational.variational_solver`).

The start ``|+>^K`` is the ground state of ``-Σ X_v``; with ``γ > 0``, the ramp
``γ_j = s_j Δ``, ``β_j = -(1 - s_j) Δ`` (``s_j = (j + ½)/p``) is a first-order
Trotterised anneal from ``-Σ X_v`` to ``C̃`` with time step Δ (the "TQA"
initialisation of Sack & Serbyn 2021), so the optimiser starts from a good point.
The sign of ``β`` matters: ``(γ, β)`` and ``(-γ, -β)`` give the same
probabilities, but ``(γ, -β)`` anneals towards the *maximum* of C̃.

Readout as for :mod:`qselax.solvers.vqe`: the ``readout`` most probable bitstrings
(at most ``2^K / 16``) are looked up in the landscape and the best is kept; the
single most probable one is reported as ``top1``.

Shapes: ``G`` groups, ``K`` qubits, ``S = 2^K`` configurations, ``P`` layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

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
from qselax.solvers.qaoa_layers import (
    MIXERS,
    PHASES,
    qaoa_circuit,
    qaoa_probs,
    qaoa_qasm,
    qaoa_resources,
    qaoa_state,
)
from qselax.solvers.variational import (
    Readout,
    Tuner,
    VariationalCircuit,
    variational_solver,
)

__all__ = [
    "INITS",
    "MIXERS",
    "PHASES",
    "RAMP_STEP",
    "qaoa",
    "qaoa_circuit",
    "qaoa_probs",
    "qaoa_qasm",
    "qaoa_resources",
    "qaoa_state",
    "ramp_angles",
]

INITS = ("ramp", "random")
# Time step Δ of the initial linear ramp.  Measured at p=3, K=8, G=256 after 100
# Adam steps, Δ from 0.4 to 1.2: structured landscapes 100% optimum rate throughout,
# random-uniform ones 58-66% with no trend beyond noise; 0.7 is mid-range.
RAMP_STEP = 0.7


def ramp_angles(
    layers: int, step: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Linear-ramp angles: ``γ_j = s_j Δ``, ``β_j = -(1 - s_j) Δ``, ``s_j = (j+½)/p``.

    A first-order Trotterised anneal from ``-Σ X`` to the landscape with step
    Δ = ``step`` (default :data:`RAMP_STEP`).

    Example:
        >>> g, b = ramp_angles(2, 1.0)
        >>> g.tolist(), b.tolist()
        ([0.25, 0.75], [-0.75, -0.25])
    """
    layers = check_count("layers", layers)
    step = RAMP_STEP if step is None else float(step)
    s = (np.arange(layers) + 0.5) / layers
    return (s * step).astype(np.float32), (-(1.0 - s) * step).astype(np.float32)


def _split_key(key: jax.Array, exact: bool):
    # Exact: the key only seeds the (random) initial angles.
    if exact:
        return key, None, None
    init_key, run_key, read_key = jax.random.split(key, 3)
    return init_key, run_key, read_key


@solver_factory("qaoa")
def qaoa(
    k: int,
    *,
    layers: int = 3,
    steps: int = 100,
    learning_rate: float = 0.05,
    mixer: str = "x",
    phase: str = "diagonal",
    shared: bool = False,
    readout: int | None = None,
    init: str = "ramp",
    shots: int | None = None,
    noise: float = 0.0,
    trajectories: int = 8,
) -> Solver:
    """Builds the QAOA solver (without ``k``: its :class:`SolverSpec`).

    Args:
        k: qubits per group, in ``[1, 20]``.
        layers: QAOA depth p (phase + mixer blocks).
        steps: Adam steps on the angles (0: keep the initial angles).
        learning_rate: Adam learning rate.
        mixer: ``"x"`` (transverse field) or ``"bitflip"`` (Hadfield et al.,
            path neighbourhood, Trotterised even/odd).
        phase: ``"diagonal"`` (exact phase vector) or ``"ising"`` (Walsh gates).
        shared: one angle set for all groups (mean energy) instead of one per group.
        readout: bitstrings looked up per group (default and maximum ``2^K/16``).
        init: ``"ramp"`` (linear anneal ramp, :func:`ramp_angles`) or ``"random"``
            (``|γ|, |β|`` uniform in ``[0, Δ]`` with the ramp's signs, from the key).
        shots: measured bitstrings per group and step (``None``: exact
            expectations); see :mod:`qselax.solvers.measure`.  The phase operator
            still needs H_C, so the circuit is built from the landscape; the shots
            set the training signal and the readout.
        noise: depolarizing probability per qubit after every layer.
        trajectories: noise trajectories per step.

    Returns:
        A :class:`~qselax.solvers.base.Solver` named ``"qaoa"``; its ``solve`` maps
        ``(key, landscapes (G, S), current (G,))`` to a ``SolveResult``.

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> solver = qaoa(4, layers=2, steps=20)
        >>> land = jnp.arange(16.0)[None, :]
        >>> int(solver.solve(jax.random.key(0), land, jnp.zeros(1, jnp.int32)).index[0])
        0
    """
    k = check_k(k, high=MAX_QUBITS)
    layers = check_count("layers", layers)
    steps = check_count("steps", steps, low=0)
    learning_rate = check_float("learning_rate", learning_rate)
    check_choice("mixer", mixer, MIXERS)
    check_choice("phase", phase, PHASES)
    check_choice("init", init, INITS)
    check_bool("shared", shared)
    readout = check_readout(k, readout)
    m = measure.make_measurement(shots, noise, trajectories)
    ramp = np.stack(ramp_angles(layers))

    def init_angles(key: jax.Array) -> jax.Array:
        """``(2, P)`` angles: row 0 the γ's, row 1 the β's."""
        if init == "random":
            sign = jnp.asarray([[1.0], [-1.0]], jnp.float32)
            return sign * jax.random.uniform(key, (2, layers), maxval=RAMP_STEP)
        return jnp.asarray(ramp)

    def init_params(key: jax.Array, num_groups: int) -> jax.Array:
        if shared:
            return init_angles(key)
        return jax.vmap(init_angles)(jax.random.split(key, num_groups))

    def probs(angles, landscape, noise_key=None, noise_rate=0.0):
        return qaoa_probs(
            angles[0],
            angles[1],
            landscape,
            mixer=mixer,
            phase=phase,
            noise_key=noise_key,
            noise_rate=noise_rate,
        )

    def state(angles, landscape):
        return qaoa_state(angles[0], angles[1], landscape, mixer=mixer, phase=phase)

    circuit = VariationalCircuit(probs, state, init_params, _split_key, shared)
    return variational_solver(
        "qaoa",
        circuit,
        tuner=Tuner(optax.adam(learning_rate), steps),
        readout=Readout(readout),
        measurement=m,
        resources={
            **qaoa_resources(k, layers, mixer, phase),
            "parameters": 2 * layers,
        },
    )
