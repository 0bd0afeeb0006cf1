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
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from qselax import circuits
from qselax.solvers.base import Solver, SolveResult, best_of, normalize_landscapes

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
) -> Solver:
    """Builds the VQE solver.

    Args:
        k: qubits per group.
        layers: ansatz depth (entangler + rotation layers).
        steps: Adam steps per sweep.
        learning_rate: Adam learning rate.
        readout: bitstrings looked up per group (default and maximum ``2^K/16``).
        readout_mode: ``"top"`` (most probable) or ``"sample"`` (Born samples).
        rotations: rotation gates of each layer.
        entangler: ``"cnot"``, ``"cz"`` or ``"none"`` (product ansatz).
        init_scale: standard deviation of the initial angles.

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
    ansatz = circuits.Ansatz(k, layers, tuple(rotations), entangler)
    resources = dict(circuits.hea_resources(ansatz))
    resources.update(optimizer_steps=steps, readout=readout)
    opt = optax.adam(learning_rate)

    def tune(key: jax.Array, landscape: jax.Array):
        params = circuits.init_hea_params(key, ansatz, init_scale)

        def energy(p):
            return jnp.sum(circuits.hea_probs(p, ansatz) * landscape)

        def step(carry, _):
            p, state = carry
            value, grad = jax.value_and_grad(energy)(p)
            updates, state = opt.update(grad, state, p)
            return (optax.apply_updates(p, updates), state), value

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), length=steps)
        return circuits.hea_probs(params, ansatz)

    def solve(key: jax.Array, landscapes: jax.Array, current: jax.Array) -> SolveResult:
        del current
        num_groups = landscapes.shape[0]
        init_key, read_key = jax.random.split(key)
        probs = jax.vmap(tune)(
            jax.random.split(init_key, num_groups), normalize_landscapes(landscapes)
        )
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
        return SolveResult(index, top1, probs, lookups)

    return Solver("vqe", solve, resources)
