"""``vqe``: a hardware-efficient ansatz per group, tuned by optax on <H_C>.

Each group gets its own K-qubit circuit |ψ(θ)> (:func:`qselax.circuits.hea_probs`:
|+>^K, then ``layers`` × [entangling ladder, RY/RZ on every qubit], layers applied by
``lax.scan``).  The loss is the expected normalised cost
``E(θ) = Σ_s p_θ(s) C̃_g(s)``, ``C̃_g`` the landscape shifted and scaled to zero mean
and unit spread (the same ground state; see
:func:`qselax.solvers.base.normalize_landscapes`).  All G circuits are optimised
together: ``jax.vmap`` over groups of an ``optax`` loop in ``lax.scan``.

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
import jax.numpy as jnp
import optax

from qselax import circuits
from qselax.entanglement import half_cut_entropy
from qselax.solvers import measure
from qselax.solvers.base import (
    Solver,
    SolveResult,
    best_of,
    normalize_landscapes,
    with_costs,
)

READOUTS = ("top", "sample")


def max_readout(k: int) -> int:
    """Largest allowed readout for K qubits: ``max(1, 2^K // 16)``."""
    return max(1, 2**k // 16)


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
) -> Solver:
    """Builds the VQE solver.

    Args:
        k: qubits per group.
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

    Raises:
        ValueError: a setting out of range (named in the message).
    """
    cap = max_readout(k)
    readout = cap if readout is None else int(readout)
    if not 1 <= readout <= cap:
        raise ValueError(
            f"readout must lie in [1, 2^K/16 = {cap}] for K={k}, got {readout}: a "
            "larger readout turns into exhaustive search"
        )
    if readout_mode not in READOUTS:
        raise ValueError(
            f"readout_mode must be one of {READOUTS}, got {readout_mode!r}"
        )
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    m = measure.make_measurement(shots, noise, trajectories)
    ansatz = circuits.Ansatz(k, layers, tuple(rotations), entangler)
    resources = dict(circuits.hea_resources(ansatz))
    resources.update(optimizer_steps=steps, readout=readout, **m.resources(steps))
    opt = optax.adam(learning_rate)

    def init(key: jax.Array) -> jax.Array:
        return circuits.init_hea_params(key, ansatz, init_scale)

    def tune(key: jax.Array, landscape: jax.Array):
        params = init(key)

        def energy(p):
            return jnp.sum(circuits.hea_probs(p, ansatz) * landscape)

        def step(carry, _):
            p, state = carry
            value, grad = jax.value_and_grad(energy)(p)
            updates, state = opt.update(grad, state, p)
            return (optax.apply_updates(p, updates), state), value

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), length=steps)
        return params

    def probs_fn(params: jax.Array, noise_key: jax.Array | None) -> jax.Array:
        if noise_key is None:
            return jax.vmap(lambda p: circuits.hea_probs(p, ansatz))(params)
        keys = jax.random.split(noise_key, params.shape[0])
        return jax.vmap(
            lambda p, nk: circuits.hea_probs(
                p, ansatz, noise_key=nk, noise_rate=m.noise
            )
        )(params, keys)

    def entropy(params: jax.Array) -> jax.Array:
        states = jax.vmap(lambda p: circuits.hea_state(p, ansatz))(params)
        return jax.vmap(lambda st: half_cut_entropy(st, k))(states)

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        del current
        num_groups = landscapes.shape[0]
        init_key, read_key = jax.random.split(key)
        normed = normalize_landscapes(landscapes)
        if not m.exact:
            init_key, run_key = jax.random.split(init_key)
            return measure.solve_measured(
                run_key,
                read_key,
                jax.vmap(init)(jax.random.split(init_key, num_groups)),
                probs_fn,
                landscapes=landscapes,
                normed=normed,
                oracle=oracle,
                steps=steps,
                optimizer=opt,
                readout=readout,
                measurement=m,
                entropy=entropy,
            )
        params = jax.vmap(tune)(jax.random.split(init_key, num_groups), normed)
        probs = probs_fn(params, None)
        top1 = jnp.argmax(probs, axis=-1).astype(jnp.int32)
        if readout_mode == "top":
            candidates = jax.lax.top_k(probs, readout)[1]
        else:
            logits = jnp.log(jnp.maximum(probs, 1e-30))
            candidates = jax.random.categorical(
                read_key, logits[:, None, :], axis=-1, shape=(num_groups, readout)
            )
        index = best_of(landscapes, candidates.astype(jnp.int32)).astype(jnp.int32)
        lookups = jnp.full((num_groups,), readout, jnp.int32)
        return SolveResult(index, top1, probs, lookups, entropy=entropy(params))

    return Solver("vqe", with_costs(solve), resources)
