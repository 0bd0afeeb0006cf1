"""How a variational solver measures its circuits: exactly, with shots, with noise.

The variational solvers (``vqe``, ``qaoa``, ``anneal`` with a learned schedule)
minimise the expected cost ``E(θ) = Σ_s p_θ(s) C(s)`` of their circuits.  A
:class:`Measurement` says how ``E`` and its gradient are obtained:

* **exact** (``shots=None``): from the simulated Born probabilities and the whole
  landscape, differentiated by autodiff (equal to the parameter-shift rule, which
  the tests check).
* **finite shots** (``shots=n``): what hardware does.  Each optimiser step draws
  ``n`` bitstrings per group from the circuit, and only those bitstrings' costs are
  obtained, from a cost *oracle*: a function ``(G, R) configurations -> (G, R)
  costs``.  The sweep's oracle evaluates the masked network on the sampled
  configurations (or, equivalently and faster, reads them off the exact landscape
  it already holds for the optimality check; see
  :class:`qselax.selection.SelectConfig`, ``oracle``).  The gradient is the
  score-function (REINFORCE) estimator ``∇E ≈ 1/n Σ_i A_i ∇ log p_θ(s_i)`` with
  advantages ``A_i`` = the sampled costs minus the leave-one-out mean of the others
  (an unbiased baseline), divided by the batch's standard deviation so that one
  learning rate suits every group's cost scale.  The readout then measures ``n``
  more shots: the most frequent bitstring is ``top1``, and the ``readout`` most
  frequent *observed* ones are evaluated and the best kept.
* **noise** (``noise=p > 0``): a depolarizing channel of rate ``p`` on every qubit
  after every layer, simulated by quantum trajectories
  (:func:`qselax.circuits.depolarizing_codes`).  Exactly: the Born probabilities are
  the mean over ``trajectories`` trajectories, redrawn every step (an unbiased
  estimate of the density matrix's diagonal and of its gradient).  With shots: the
  shots of a step are spread evenly over its trajectories, so each shot is an exact
  draw from the noisy circuit.

This module holds the measured path's parts -- what a step's gradient is
(:func:`gradient_fn`) and how shots are read out (:func:`read_shots`); the one optax
loop and the composition into a solver are in :mod:`qselax.solvers.variational`.
A ``probs_fn`` below is ``(params, noise_key | None) -> (G, S)`` Born probabilities
of all groups' circuits (one noise trajectory per group for a key, noiseless for
``None``).

Shapes: ``G`` groups, ``S = 2^K`` configurations, ``n`` shots, ``R`` readout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax.circuits import check_noise_rate
from qselax.solvers.base import check_count

__all__ = [
    "MAX_SHOTS",
    "Measurement",
    "Oracle",
    "advantages",
    "gradient_fn",
    "lookup_oracle",
    "make_measurement",
    "mean_probs",
    "read_shots",
    "sample_configs",
    "sample_noisy",
    "score_gradient",
]

Oracle = Callable[[jax.Array], jax.Array]
"""``(G, R) int32 configurations -> (G, R) float32 costs`` of those configurations."""

MAX_SHOTS = 1 << 20


class Measurement(NamedTuple):
    """Static measurement settings of a variational solver.

    Attributes:
        shots: bitstrings measured per group and optimiser step (and at readout);
            ``None`` for exact expectations.
        noise: depolarizing probability per qubit and layer.
        trajectories: noise trajectories averaged per step (exact mode) or over
            which a step's shots are spread (shot mode).
    """

    shots: int | None = None
    noise: float = 0.0
    trajectories: int = 8

    @property
    def exact(self) -> bool:
        """Noiseless exact expectations (the solvers' original fast path)."""
        return self.shots is None and self.noise == 0.0

    def resources(self, steps: int) -> dict:
        """Resource entries: shots per group per solve and the noise settings."""
        per_solve = 0 if self.shots is None else self.shots * (steps + 1)
        return {
            "shots": self.shots or 0,
            "shots_per_solve": per_solve,
            "noise": self.noise,
            "trajectories": self.trajectories if self.noise > 0 else 0,
        }


def make_measurement(shots=None, noise=0.0, trajectories=8) -> Measurement:
    """Checks and builds a :class:`Measurement`.

    Raises:
        ValueError: ``shots`` not ``None`` or an int in ``[2, 2^20]``; ``noise`` not in
            ``[0, 1)``; ``trajectories`` not an int ``>= 1`` (or, with shots, more
            trajectories than shots).
    """
    if shots is not None and (
        isinstance(shots, bool)
        or not isinstance(shots, int | np.integer)
        or not 2 <= shots <= MAX_SHOTS
    ):
        raise ValueError(
            f"shots must be None (exact) or an integer in [2, {MAX_SHOTS}], "
            f"got {shots!r}"
        )
    noise = check_noise_rate(noise)
    trajectories = check_count("trajectories", trajectories)
    if shots is not None and noise > 0 and trajectories > shots:
        raise ValueError(
            f"trajectories ({trajectories}) must not exceed shots ({shots}): each "
            "trajectory needs at least one shot"
        )
    return Measurement(None if shots is None else int(shots), noise, trajectories)


def lookup_oracle(landscapes: jax.Array) -> Oracle:
    """The oracle that reads sampled configurations' costs off exact landscapes."""

    def oracle(configs: jax.Array) -> jax.Array:
        return jnp.take_along_axis(landscapes, configs, axis=-1)

    return oracle


def sample_configs(key: jax.Array, probs: jax.Array, n: int) -> jax.Array:
    """``n`` draws per row from ``(G, S)`` probabilities: ``(G, n)`` int32.

    Inverse-CDF sampling (a sorted search per draw), so memory is ``O(G (S + n))``
    rather than the ``O(G n S)`` of Gumbel-max.

    Example:
        >>> probs = jnp.array([[0.0, 1.0, 0.0, 0.0]])
        >>> sample_configs(jax.random.key(0), probs, 3).tolist()
        [[1, 1, 1]]
    """
    probs = jax.lax.stop_gradient(probs)
    cdf = jnp.cumsum(probs, axis=-1)
    u = jax.random.uniform(key, (probs.shape[0], n)) * cdf[:, -1:]
    idx = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right"))(cdf, u)
    return jnp.minimum(idx, probs.shape[-1] - 1).astype(jnp.int32)


def sample_noisy(key, probs_fn: Callable, params, m: Measurement, n: int):
    """``(G, n)`` draws, spread evenly over ``m.trajectories`` noise trajectories."""
    traj_key, draw_key = jax.random.split(key)
    if m.noise == 0.0:
        return sample_configs(draw_key, probs_fn(params, None), n)
    per = -(-n // m.trajectories)
    draws = jax.vmap(
        lambda tk, dk: sample_configs(dk, probs_fn(params, tk), per), out_axes=1
    )(
        jax.random.split(traj_key, m.trajectories),
        jax.random.split(draw_key, m.trajectories),
    )  # (G, T, per)
    return draws.reshape(draws.shape[0], -1)[:, :n]


def mean_probs(key, probs_fn: Callable, params, m: Measurement) -> jax.Array:
    """``(G, S)`` Born probabilities: exact, or the mean over ``m.trajectories``
    noise trajectories (drawn from ``key``)."""
    if m.noise == 0.0:
        return probs_fn(params, None)
    keys = jax.random.split(key, m.trajectories)
    return jnp.mean(jax.vmap(lambda k: probs_fn(params, k))(keys), axis=0)


def advantages(costs: jax.Array) -> jax.Array:
    """Leave-one-out advantages of ``(G, n)`` sampled costs, per-group standardised.

    ``A_i = (c_i - mean_{j != i} c_j) / std(c)``, which is ``n / (n - 1)`` times the
    centred cost; zero where all samples of a group cost the same.

    Example:
        >>> advantages(jnp.array([[1.0, 3.0], [2.0, 2.0]])).tolist()
        [[-2.0, 2.0], [0.0, 0.0]]
    """
    n = costs.shape[-1]
    centred = costs - jnp.mean(costs, axis=-1, keepdims=True)
    std = jnp.sqrt(jnp.mean(jnp.square(centred), axis=-1, keepdims=True))
    scale = jnp.where(std > 0, std, jnp.ones_like(std))
    return jnp.where(std > 0, centred / scale, 0.0) * (n / (n - 1))


def score_gradient(params, probs_fn: Callable, key, oracle: Oracle, m: Measurement):
    """The score-function gradient estimate from one step's ``m.shots`` shots.

    Returns:
        ``(gradient, mean sampled cost (G,))``; the gradient has the structure of
        ``params``.
    """
    traj_key, draw_key = jax.random.split(key)
    if m.noise == 0.0:
        probs, vjp = jax.vjp(lambda p: probs_fn(p, None), params)
        configs = sample_configs(draw_key, probs, m.shots)
        costs = oracle(configs)
        adv = advantages(costs)
        picked = jnp.take_along_axis(probs, configs, axis=-1)
        # d/dp_s of (1/n) Σ_i A_i log p(s_i) = Σ_{i: s_i = s} A_i / (n p_s)
        values = adv / (m.shots * jnp.maximum(picked, 1e-30))
        cot = jax.vmap(lambda c, v: jnp.zeros(probs.shape[-1]).at[c].add(v))(
            configs, values
        )
        (grad,) = vjp(cot)
        return grad, jnp.mean(costs, axis=-1)
    # With noise: each trajectory's shots score that trajectory's probabilities.
    t = m.trajectories
    per = -(-m.shots // t)
    traj_keys = jax.random.split(traj_key, t)

    def all_probs(p):
        return jax.vmap(lambda k: probs_fn(p, k))(traj_keys)  # (T, G, S)

    probs, vjp = jax.vjp(all_probs, params)
    configs = jax.vmap(sample_configs, in_axes=(0, 0, None))(
        jax.random.split(draw_key, t), probs, per
    )  # (T, G, per)
    flat = jnp.moveaxis(configs, 0, 1).reshape(probs.shape[1], t * per)
    costs = oracle(flat)  # (G, T per)
    adv = jnp.moveaxis(advantages(costs).reshape(-1, t, per), 1, 0)
    picked = jnp.take_along_axis(probs, configs, axis=-1)
    values = adv / (t * per * jnp.maximum(picked, 1e-30))
    cot = jax.vmap(jax.vmap(lambda c, v: jnp.zeros(probs.shape[-1]).at[c].add(v)))(
        configs, values
    )
    (grad,) = vjp(cot)
    return grad, jnp.mean(costs, axis=-1)


def gradient_fn(
    probs_fn: Callable,
    *,
    landscapes: jax.Array,
    oracle: Oracle,
    measurement: Measurement,
) -> Callable:
    """One optimiser step's gradient of the expected cost, as the measurement gets it.

    Args:
        probs_fn: ``(params, noise_key | None) -> (G, S)`` probabilities.
        landscapes: ``(G, S)`` normalised costs for exact expectations.
        oracle: cost oracle for the shot mode (raw costs; advantages are
            standardised per group).
        measurement: exact (with or without noise) or shots.

    Returns:
        ``(params, key) -> gradient``: exact expectations differentiated by
        autodiff (with noise: of the mean over the step's trajectories), or the
        score-function estimate from the step's shots.
    """
    m = measurement
    if m.shots is not None:
        return lambda p, key: score_gradient(p, probs_fn, key, oracle, m)[0]

    def energy(p, key):
        return jnp.sum(mean_probs(key, probs_fn, p, m) * landscapes)

    return jax.grad(energy)


def read_shots(
    key: jax.Array,
    params,
    probs_fn: Callable,
    *,
    size: int,
    oracle: Oracle,
    readout: int,
    measurement: Measurement,
):
    """The finite-shot readout of the final circuits.

    ``m.shots`` bitstrings are measured per group; the most frequent is ``top1``,
    and the ``readout`` most frequent (only ones actually observed) are evaluated by
    the oracle and the best kept.

    Args:
        key: PRNG key of the shots (and noise trajectories).
        params: the circuits' parameters.
        probs_fn: the circuits: their Born probabilities given ``params``.
        size: ``S``, configurations per group.
        oracle: the cost oracle.
        readout: configurations evaluated per group.
        measurement: its ``shots`` (not ``None``) and noise.

    Returns:
        ``(index (G,), top1 (G,), frequencies (G, S), shots (G,))``.
    """
    m = measurement
    configs = sample_noisy(key, probs_fn, params, m, m.shots)
    counts = jax.vmap(lambda c: jnp.zeros(size, jnp.int32).at[c].add(1))(configs)
    freqs = counts.astype(jnp.float32) / m.shots
    top1 = jnp.argmax(counts, axis=-1).astype(jnp.int32)
    seen, candidates = jax.lax.top_k(counts, readout)
    candidates = jnp.where(seen > 0, candidates, top1[:, None]).astype(jnp.int32)
    pick = jnp.argmin(oracle(candidates), axis=-1)
    index = jnp.take_along_axis(candidates, pick[:, None], axis=-1)[:, 0]
    shots = jnp.full((configs.shape[0],), m.shots, jnp.int32)
    return index, top1, freqs, shots
