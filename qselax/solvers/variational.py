"""Variational solvers as compositions: a circuit, the optax loop, a readout.

``vqe``, ``qaoa`` and ``anneal`` differ only in their circuit.  Each describes it as
a :class:`VariationalCircuit` (per-group Born probabilities and state, initial
parameters, how it uses the solve key) and hands it to :func:`variational_solver`
with the shared pieces, the way optax builds ``adam`` as ``chain(scale_by_adam(...),
scale_by_learning_rate(...))``:

* :class:`Tuner` and :func:`tune`: the one optax loop (``lax.scan`` of gradient and
  update) that minimises the expected normalised cost ``E(θ) = Σ_s p_θ(s) C̃(s)``;
* :class:`Readout` and :func:`read_top`: the most probable (or Born-sampled)
  configurations are looked up and the best kept; the most probable is ``top1``;
* a :class:`~qselax.solvers.measure.Measurement`: exact expectations, or finite
  shots and noise trajectories (:mod:`qselax.solvers.measure`).

Exact and noiseless, each group's parameters are tuned on its own landscape
(``jax.vmap`` over groups of the loop), or, for a ``shared`` circuit, one parameter
set on the groups' mean energy.  Measured, all groups are tuned together from the
step gradient of :func:`qselax.solvers.measure.gradient_fn`.

Shapes: ``G`` groups, ``S = 2^K`` configurations, ``R`` readout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import logsumexp

from qselax.entanglement import half_cut_entropy
from qselax.solvers import measure
from qselax.solvers.base import (
    Solver,
    SolveResult,
    best_of,
    check_choice,
    normalize_landscapes,
    with_costs,
)

__all__ = [
    "READOUTS",
    "Readout",
    "Tuner",
    "VariationalCircuit",
    "objective",
    "read_top",
    "tune",
    "tune_until",
    "variational_solver",
]

READOUTS = ("top", "sample")


class Tuner(NamedTuple):
    """The optax loop's settings.

    Attributes:
        optimizer: an optax transformation (the solvers use ``optax.adam``).
        steps: optimiser steps per solve; 0 keeps the initial parameters.
        warm_steps: steps of a warm-started solve: each group starts from its
            parameters at the end of its previous solve (kept in the sweep's
            carry); ``None``: every solve starts cold from fresh parameters.
        tol: stop a group's loop once its objective changes by less than
            ``tol`` in one step (``None``: always run every step).
        gibbs: inverse temperature ``η`` of the Gibbs objective (Li et al.,
            Phys. Rev. Research 2, 023074, 2020) that replaces the expected
            normalised cost: ``-(1/η) log Σ_s p_θ(s) exp(-η C̃(s))``, which weighs
            the low-cost configurations and has the same minimiser; ``None``:
            the expectation ``Σ_s p_θ(s) C̃(s)``.  Exact, per-group tuning only.
    """

    optimizer: optax.GradientTransformation
    steps: int
    warm_steps: int | None = None
    tol: float | None = None
    gibbs: float | None = None


def objective(
    probs: jax.Array, landscape: jax.Array, gibbs: float | None = None
) -> jax.Array:
    """What the loop minimises for one group: ``(S,), (S,) -> ()``.

    Args:
        probs: ``(S,)`` Born probabilities.
        landscape: ``(S,)`` normalised costs ``C̃``.
        gibbs: ``None`` for the expectation ``Σ p C̃``; else the Gibbs objective's
            inverse temperature ``η``: ``-(1/η) log Σ p exp(-η C̃)`` (a soft
            minimum over the distribution; it tends to the expectation as
            ``η → 0`` and to the lowest cost with support as ``η → ∞``).

    Returns:
        The scalar objective.

    Example:
        >>> p = jnp.array([0.5, 0.5]); c = jnp.array([-1.0, 1.0])
        >>> float(objective(p, c)), round(float(objective(p, c, 4.0)), 3)
        (0.0, -0.827)
    """
    if gibbs is None:
        return jnp.sum(probs * landscape)
    # In log space: no overflow, and no underflow to log(0) when the lowest costs
    # carry no probability (zero-probability terms are left out of the sum).
    return -logsumexp(-gibbs * landscape, b=probs) / gibbs


class Readout(NamedTuple):
    """How final circuits become chosen configurations.

    Attributes:
        size: configurations looked up per group (``R``), at most ``2^K / 16``
            (:func:`qselax.solvers.base.check_readout`).
        mode: ``"top"`` (the ``R`` most probable) or ``"sample"`` (``R`` Born
            samples; exact mode only: the shot mode reads out its measured shots).
    """

    size: int
    mode: str = "top"


class VariationalCircuit(NamedTuple):
    """What makes a variational solver: its circuit and parameters.

    Attributes:
        probs: ``(params, landscape (S,), noise_key=None, noise_rate=0.0) -> (S,)``
            Born probabilities of one group's circuit (one noise trajectory for a
            key); ``landscape`` is the group's normalised costs.
        state: ``(params, landscape (S,)) -> (S,)`` one group's noiseless state,
            for the entanglement entropy.
        init: ``(key | None, G) -> params``: initial parameters with a leading
            ``G`` axis (no such axis if ``shared``), or ``None`` for a circuit
            without parameters.
        split_key: ``(key, exact) -> (init_key, run_key, read_key)``: how one
            solve's key is split between initialisation, the loop's shots and
            trajectories, and the readout (``None`` where unused).  Each solver
            keeps its own layout so that its results stay the same across
            releases.
        shared: one parameter set for all groups, tuned on their mean energy.
    """

    probs: Callable
    state: Callable
    init: Callable
    split_key: Callable
    shared: bool = False


def tune(
    params,
    grad_fn: Callable,
    optimizer: optax.GradientTransformation,
    steps: int,
    key: jax.Array | None = None,
):
    """The optax loop: ``steps`` updates of ``params`` along ``grad_fn``, in a scan.

    Args:
        params: initial parameters (any pytree).
        grad_fn: ``(params, step_key | None) -> gradient`` (same structure).
        optimizer: an optax transformation.
        steps: number of updates.
        key: split into one key per step (shots, noise trajectories); ``None``
            passes ``None`` to every step.

    Returns:
        The parameters after the last update.

    Example:
        >>> grad_fn = jax.grad(lambda p, _: jnp.sum(p**2))
        >>> p = tune(jnp.ones(2), grad_fn, optax.sgd(0.25), steps=3)
        >>> p.tolist()
        [0.125, 0.125]
    """

    def step(carry, step_key):
        p, state = carry
        updates, state = optimizer.update(grad_fn(p, step_key), state, p)
        return (optax.apply_updates(p, updates), state), None

    keys = None if key is None else jax.random.split(key, steps)
    (params, _), _ = jax.lax.scan(
        step, (params, optimizer.init(params)), keys, length=steps
    )
    return params


def tune_until(
    params,
    value_and_grad: Callable,
    optimizer: optax.GradientTransformation,
    steps,
    tol: float | None = None,
):
    """The optax loop with a traced budget and a convergence stop (``while_loop``).

    Args:
        params: initial parameters (any pytree).
        value_and_grad: ``params -> (value, gradient)``.
        optimizer: an optax transformation.
        steps: at most this many updates (may be traced: e.g. fewer for a warm
            start).
        tol: stop after the first step whose value differs from the previous
            step's by less than ``tol`` (``None``: run all ``steps``).

    Returns:
        ``(params, used)``: the parameters and the updates made (int32).

    Example:
        >>> vg = jax.value_and_grad(lambda p: jnp.sum(p**2))
        >>> p, used = tune_until(jnp.ones(2), vg, optax.sgd(0.5), 50, tol=1e-6)
        >>> p.tolist(), int(used)
        ([0.0, 0.0], 3)
    """

    def cond(carry):
        _, _, i, _, done = carry
        return (i < steps) & ~done

    def body(carry):
        p, state, i, prev, _ = carry
        value, grad = value_and_grad(p)
        updates, state = optimizer.update(grad, state, p)
        done = jnp.bool_(False) if tol is None else jnp.abs(value - prev) < tol
        return optax.apply_updates(p, updates), state, i + 1, value, done

    start = (
        params,
        optimizer.init(params),
        jnp.zeros((), jnp.int32),
        jnp.full((), jnp.inf, jnp.float32),
        jnp.zeros((), bool),
    )
    params, _, used, _, _ = jax.lax.while_loop(cond, body, start)
    return params, used


def read_top(
    key: jax.Array | None,
    probs: jax.Array,
    landscapes: jax.Array,
    readout: Readout,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The exact readout: candidates from ``(G, S)`` probabilities, best kept.

    Args:
        key: PRNG key of ``"sample"`` readouts (unused for ``"top"``).
        probs: ``(G, S)`` Born probabilities.
        landscapes: ``(G, S)`` raw costs the candidates are looked up in.
        readout: how many candidates and how they are picked.

    Returns:
        ``(index, top1, lookups)``, each ``(G,)`` int32: the best candidate, the
        most probable configuration and the look-ups made (``R``).

    Example:
        >>> probs = jnp.array([[0.1, 0.5, 0.4, 0.0]])
        >>> land = jnp.array([[0.0, 3.0, 1.0, -1.0]])
        >>> [a.tolist() for a in read_top(None, probs, land, Readout(2))]
        [[2], [1], [2]]
    """
    num_groups = probs.shape[0]
    top1 = jnp.argmax(probs, axis=-1).astype(jnp.int32)
    if readout.mode == "top":
        candidates = jax.lax.top_k(probs, readout.size)[1]
    else:
        logits = jnp.log(jnp.maximum(probs, 1e-30))
        candidates = jax.random.categorical(
            key, logits[:, None, :], axis=-1, shape=(num_groups, readout.size)
        )
    index = best_of(landscapes, candidates.astype(jnp.int32)).astype(jnp.int32)
    lookups = jnp.full((num_groups,), readout.size, jnp.int32)
    return index, top1, lookups


def variational_solver(
    name: str,
    circuit: VariationalCircuit,
    *,
    tuner: Tuner,
    readout: Readout,
    measurement: measure.Measurement,
    resources: dict,
) -> Solver:
    """Composes a variational solver from its circuit and the shared pieces.

    Args:
        name: the solver's registry name.
        circuit: the circuit, its parameters and key layout.
        tuner: the optax loop (no loop for ``steps == 0`` or ``init -> None``).
        readout: the exact readout (the shot mode reads ``readout.size`` of its
            most frequent measured configurations).
        measurement: exact, or shots and noise.
        resources: the circuit's static counts (qubits, depth, gates, parameters);
            the loop's, readout's and measurement's entries are appended.

    Returns:
        A :class:`~qselax.solvers.base.Solver` whose ``solve`` maps ``(key,
        landscapes (G, S), current (G,), oracle=None)`` to a ``SolveResult`` with
        probabilities and entropies (and shots in the shot mode).
    """
    check_choice("readout_mode", readout.mode, READOUTS)
    m = measurement
    axis = None if circuit.shared else 0
    warm = tuner.warm_steps is not None
    looped = warm or tuner.tol is not None
    gibbs = tuner.gibbs
    if (looped or gibbs is not None) and (circuit.shared or not m.exact):
        raise ValueError(
            "warm_steps, tol and gibbs need exact, noiseless expectations of "
            "per-group circuits (no shots, no noise, not shared)"
        )
    resources = {
        **resources,
        "optimizer_steps": tuner.steps,
        "readout": readout.size,
        **m.resources(tuner.steps),
    }
    if warm:
        resources["warm_steps"] = tuner.warm_steps
    if gibbs is not None:
        resources["gibbs"] = gibbs

    def batched_probs(params, normed, noise_key=None) -> jax.Array:
        """``(G, S)`` probabilities of all groups (one trajectory each for a key)."""
        if noise_key is None:
            return jax.vmap(circuit.probs, in_axes=(axis, 0))(params, normed)
        keys = jax.random.split(noise_key, normed.shape[0])
        return jax.vmap(
            lambda p, land, nk: circuit.probs(p, land, nk, m.noise),
            in_axes=(axis, 0, 0),
        )(params, normed, keys)

    def entropy(params, normed) -> jax.Array:
        k = normed.shape[-1].bit_length() - 1
        return jax.vmap(
            lambda p, land: half_cut_entropy(circuit.state(p, land), k),
            in_axes=(axis, 0),
        )(params, normed)

    def tune_exact(params, normed):
        """Exact, noiseless: per group on its landscape, or shared on the mean."""
        if circuit.shared:

            def mean_energy(p):
                probs = jax.vmap(circuit.probs, in_axes=(None, 0))(p, normed)
                return jnp.mean(jnp.sum(probs * normed, axis=-1))

            grad = jax.grad(mean_energy)
            return tune(params, lambda p, _: grad(p), tuner.optimizer, tuner.steps)

        def one(p, land):
            grad = jax.grad(lambda q: objective(circuit.probs(q, land), land, gibbs))
            return tune(p, lambda q, _: grad(q), tuner.optimizer, tuner.steps)

        return jax.vmap(one)(params, normed)

    def tune_looped(params, normed, limit):
        """Per group: at most ``limit`` steps, stopping once converged."""

        def one(p, land, steps):
            energy = lambda q: objective(circuit.probs(q, land), land, gibbs)
            vg = jax.value_and_grad(energy)
            return tune_until(p, vg, tuner.optimizer, steps, tuner.tol)

        return jax.vmap(one)(params, normed, limit)

    def init_carry(num_groups: int):
        """Cold carry: zero parameters, no group warm yet."""
        shape = jax.eval_shape(lambda k: circuit.init(k, num_groups), jax.random.key(0))
        params = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shape)
        return {"params": params, "warm": jnp.zeros((num_groups,), bool)}

    def solve(
        key: jax.Array,
        landscapes: jax.Array,
        current: jax.Array,
        oracle=None,
        carry=None,
    ) -> SolveResult:
        del current
        num_groups = landscapes.shape[0]
        normed = normalize_landscapes(landscapes)
        init_key, run_key, read_key = circuit.split_key(key, m.exact)
        params = circuit.init(init_key, num_groups)
        trained = tuner.steps > 0 and params is not None
        if m.exact:
            steps = jnp.full((num_groups,), tuner.steps if trained else 0, jnp.int32)
            if trained and looped:
                limit = steps
                if warm and carry is not None:
                    is_warm = carry["warm"]
                    params = jax.tree.map(
                        lambda c, p: jnp.where(
                            is_warm.reshape(-1, *(1,) * (p.ndim - 1)), c, p
                        ),
                        carry["params"],
                        params,
                    )
                    limit = jnp.where(is_warm, tuner.warm_steps, tuner.steps)
                params, steps = tune_looped(params, normed, limit)
            elif trained:
                params = tune_exact(params, normed)
            probs = batched_probs(params, normed)
            index, top1, lookups = read_top(read_key, probs, landscapes, readout)
            new_carry = None
            if warm:
                new_carry = {"params": params, "warm": jnp.ones((num_groups,), bool)}
            return SolveResult(
                index,
                top1,
                probs,
                lookups,
                entropy=entropy(params, normed),
                carry=new_carry,
                steps=steps.astype(jnp.int32),
            )
        oracle = measure.lookup_oracle(landscapes) if oracle is None else oracle

        def probs_fn(p, noise_key):
            return batched_probs(p, normed, noise_key)

        if trained:
            grad_fn = measure.gradient_fn(
                probs_fn, landscapes=normed, oracle=oracle, measurement=m
            )
            params = tune(params, grad_fn, tuner.optimizer, tuner.steps, run_key)
        prob_key, shot_key = jax.random.split(read_key)
        if m.shots is None:  # exact expectations of the noisy circuit
            probs = measure.mean_probs(prob_key, probs_fn, params, m)
            index, top1, lookups = read_top(
                None, probs, landscapes, readout._replace(mode="top")
            )
            shots = None
        else:
            index, top1, probs, shots = measure.read_shots(
                shot_key,
                params,
                probs_fn,
                size=landscapes.shape[-1],
                oracle=oracle,
                readout=readout.size,
                measurement=m,
            )
            # Every training shot's cost was evaluated by the oracle too.
            spent = tuner.steps * m.shots
            lookups = jnp.full(index.shape, readout.size, jnp.int32) + spent
            shots = shots + spent
        return SolveResult(
            index, top1, probs, lookups, shots=shots, entropy=entropy(params, normed)
        )

    return Solver(name, with_costs(solve), resources, init_carry if warm else None)
