"""NK Echo State Networks for double-pole balancing without velocities (method B).

The network (Whitley, Tinós & Chicano 2015, arXiv 1505.01887), all weights fixed
random, ``U(-s, s)`` with ``s = weight_scale``:

* a tanh **reservoir** of R neurons, ``z(t) = tanh(b + W_in u(t) + W z(t-1))``
  (with a leak rate ``a < 1``, leaky integration: ``z(t) = (1 - a) z(t-1) + a
  tanh(...)``), with ``W`` sparse (each entry present with probability
  ``density``) and rescaled to spectral radius ``spectral_radius``; ``z`` starts
  at zero and runs ``warmup`` steps with zero input before every episode (the same
  state ``z0`` for all);
  ``u(t)`` is the plant's observation (:func:`qselax.pole.observe`: cart position
  and both pole angles, no velocities);
* N **probe neurons** densely reading the reservoir, ``s_i = x_i tanh(b_i + W_i z)``,
  with the bitmask ``x in {0, 1}^N`` the *only* trained thing;
* N **outputs**, output ``i`` reading exactly the K+1 probe neurons
  ``neighbours[i] = (i, i+1, ..., i+K) mod N`` (``"adjacent"``, circular) or ``i``
  and K random others (``"random"``), ``y_i = tanh(b_i + sum_j w_ij s_{n_ij})``.

Output ``i`` with its K+1 bits alone is a controller (force ``10 y_i`` newtons), so
its **landscape** is the Gruau damping fitness ``f_i`` of one training episode for
each of its ``2^(K+1)`` bit settings: ``N 2^(K+1)`` episodes in one compiled, chunked
evaluation (:func:`tabulate`).  The total ``F(x) = sum_i f_i(x_{n_i})`` over one
shared mask is an NK landscape (:mod:`qselax.nk`: dynamic programming gives its
exact optimum for adjacent connectivity).

Selection of the bits, in its ``independent`` and ``shared`` modes, is in
:mod:`qselax.nk_selection`; shared mode runs on the one sweep and driver.

**Committees** (:func:`committee_weights`): ``y = sum_i a_i y_i`` with
fitness-proportional ``a_i = f_i / sum_j f_j`` over all outputs or over the best
``top_fraction`` (20 %) of them, and the best single output for reference; each is
scored by the standard generalisation test (:func:`generalisation_scores`: 625 starts,
balanced for 1000 steps).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax import nk, pole
from qselax.bits import index_bits
from qselax.nk import CONNECTIVITIES

__all__ = [
    "COMMITTEES",
    "CONNECTIVITIES",
    "ESN",
    "PRESETS",
    "ESNConfig",
    "Landscapes",
    "best_entry",
    "committee_weights",
    "evaluate",
    "generalisation_scores",
    "make_esn",
    "outputs",
    "reservoir_step",
    "tabulate",
]

# Gain settings of ESNConfig used by the experiments: "reference" is the reference
# implementation's (the defaults), "gain" removes the biases (an odd controller)
# and sets the output gain to 30 (experiments/nk_esn/README.md).  "masks" is the
# best masks-only setting of the optuna search on the inverted plant (trial 147 of
# experiments/nk_esn_search, chosen on training episodes only; it goes with N = 50,
# K = 8, 60 reservoir neurons and control every 0.01 s): NKESNConfig's default.
PRESETS = {
    "reference": {"bias_scale": 1.0, "output_scale": 1.0},
    "gain": {"bias_scale": 0.0, "output_scale": 30.0},
    "masks": {
        "bias_scale": 0.055511227001533305,
        "output_scale": 99.92522051023589,
        "input_scale": 1.225334590094194,
        "spectral_radius": 0.4403846925001,
        "leak": 0.9736664107677082,
    },
}
COMMITTEES = ("all", "top", "best")


@dataclasses.dataclass(frozen=True)
class ESNConfig:
    """The NK Echo State Network's structure (defaults: the reference implementation).

    Attributes:
        n: probe neurons = outputs (N).
        k: extra probe neurons per output (K); output ``i`` reads K+1 of them.
        reservoir: reservoir neurons (R).
        density: probability that a recurrent weight is present.
        spectral_radius: spectral radius the recurrent matrix is scaled to.
        weight_scale: all weights and biases are ``U(-weight_scale, weight_scale)``.
        warmup: reservoir steps with zero input before every episode.
        connectivity: ``"adjacent"`` (circular) or ``"random"`` output wiring.
        bias_scale: multiplies every bias (1: the reference's ``U(-s, s)``; 0: no
            biases, which makes the controller an odd function of its inputs).
        input_scale: multiplies the input weights ``W_in``.
        output_scale: multiplies the output weights and biases (the gain of
            ``y_i = tanh(.)``; large values approach bang-bang control).
        leak: leak rate ``a`` in ``(0, 1]`` of leaky integration, ``z(t) = (1 - a)
            z(t-1) + a tanh(...)``; 1 (the default) is the plain tanh reservoir,
            bit for bit.
    """

    n: int = 100
    k: int = 8
    reservoir: int = 60
    density: float = 0.1
    spectral_radius: float = 0.6
    weight_scale: float = 0.6
    warmup: int = 20
    connectivity: str = "adjacent"
    bias_scale: float = 1.0
    input_scale: float = 1.0
    output_scale: float = 1.0
    leak: float = 1.0

    def validate(self) -> ESNConfig:
        """Raises ``ValueError`` naming the first bad field; returns ``self``."""
        for name in ("n", "reservoir"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise ValueError(f"k must be an int >= 0, got {self.k!r}")
        if self.k + 1 > self.n:
            raise ValueError(f"k + 1 must be <= n = {self.n}, got k = {self.k}")
        if self.k + 1 > 20:
            raise ValueError(f"k + 1 must be <= 20 qubits, got k = {self.k}")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        for name in ("spectral_radius", "weight_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("bias_scale", "input_scale", "output_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.leak <= 1.0:
            raise ValueError(f"leak must be in (0, 1], got {self.leak}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if self.connectivity not in CONNECTIVITIES:
            raise ValueError(
                f"connectivity must be one of {CONNECTIVITIES}, got "
                f"{self.connectivity!r}"
            )
        return self

    @property
    def bits(self) -> int:
        """Bits (qubits) per output: K + 1."""
        return self.k + 1


class ESN(NamedTuple):
    """Fixed random weights of an NK Echo State Network (R reservoir, N probes).

    Attributes:
        w_in: ``(R, 3)`` input weights.
        w_res: ``(R, R)`` recurrent weights (sparse, scaled spectral radius).
        b_res: ``(R,)`` reservoir biases.
        w_probe: ``(N, R)`` probe weights.
        b_probe: ``(N,)`` probe biases.
        w_out: ``(N, K+1)`` output weights, column ``j`` reads ``neighbours[:, j]``.
        b_out: ``(N,)`` output biases.
        neighbours: ``(N, K+1)`` int32 probe neurons of each output.
        z0: ``(R,)`` reservoir state after the warm-up.
        leak: leak rate ``a`` of the reservoir (1: no leaky integration).
    """

    w_in: jax.Array
    w_res: jax.Array
    b_res: jax.Array
    w_probe: jax.Array
    b_probe: jax.Array
    w_out: jax.Array
    b_out: jax.Array
    neighbours: jax.Array
    z0: jax.Array
    leak: jax.Array | float = 1.0


def make_esn(key: jax.Array, config: ESNConfig) -> ESN:
    """Draws an NK Echo State Network.

    Args:
        key: PRNG key.
        config: the structure.

    Returns:
        The weights; ``z0`` is the reservoir after ``warmup`` zero-input steps.

    Example:
        >>> esn = make_esn(jax.random.key(0), ESNConfig(n=6, k=2, reservoir=8))
        >>> esn.w_out.shape, esn.neighbours[1].tolist()
        ((6, 3), [1, 2, 3])
    """
    config.validate()
    n, r, s = config.n, config.reservoir, config.weight_scale
    keys = jax.random.split(key, 9)

    def uniform(k, shape):
        return jax.random.uniform(k, shape, jnp.float32, -s, s)

    present = jax.random.bernoulli(keys[0], config.density, (r, r))
    w_res = np.asarray(jnp.where(present, uniform(keys[1], (r, r)), 0.0))
    radius = float(np.max(np.abs(np.linalg.eigvals(w_res.astype(np.float64)))))
    if radius > 0:
        w_res = w_res * np.float32(config.spectral_radius / radius)
    seed = int(jax.random.randint(keys[8], (), 0, 2**31 - 1))
    neighbours = nk.nk_neighbours(n, config.k, config.connectivity, seed=seed)
    b_res = uniform(keys[2], (r,)) * config.bias_scale
    w_res = jnp.asarray(w_res, jnp.float32)
    z0 = jnp.zeros((r,), jnp.float32)
    leak = jnp.float32(config.leak)
    for _ in range(config.warmup):
        z0 = _leaky(leak, z0, jnp.tanh(b_res + w_res @ z0))
    return ESN(
        w_in=uniform(keys[3], (r, 3)) * config.input_scale,
        w_res=w_res,
        b_res=b_res,
        w_probe=uniform(keys[4], (n, r)),
        b_probe=uniform(keys[5], (n,)) * config.bias_scale,
        w_out=uniform(keys[6], (n, config.bits)) * config.output_scale,
        b_out=uniform(keys[7], (n,)) * (config.bias_scale * config.output_scale),
        neighbours=jnp.asarray(neighbours, jnp.int32),
        z0=z0,
        leak=leak,
    )


def _leaky(leak, z, new):
    # (1 - 1) z + 1 new is new exactly (z finite), so leak 1 is the plain reservoir.
    return (1.0 - leak) * z + leak * new


def reservoir_step(esn: ESN, z: jax.Array, obs: jax.Array) -> jax.Array:
    """``z(t) = (1 - a) z(t-1) + a tanh(b + W_in u(t) + W z(t-1))`` for a batch.

    Shapes: ``z (B, R)`` and ``obs (B, 3)`` to ``(B, R)``; ``a = esn.leak``.
    """
    new = jnp.tanh(esn.b_res[None] + obs @ esn.w_in.T + z @ esn.w_res.T)
    return _leaky(jnp.asarray(esn.leak, z.dtype), z, new)


def outputs(esn: ESN, bits: jax.Array, z: jax.Array) -> jax.Array:
    """All N outputs for reservoir states ``z (B, R)`` and per-output bits.

    Args:
        esn: the network.
        bits: ``(N, K+1)`` each output's bits for its probe neurons (shared mode:
            ``x[neighbours]``).
        z: ``(B, R)`` reservoir states.

    Returns:
        ``(B, N)`` outputs ``y_i`` in ``(-1, 1)``.
    """
    s = jnp.tanh(esn.b_probe[None] + z @ esn.w_probe.T)  # (B, N)
    read = s[:, esn.neighbours] * bits[None].astype(s.dtype)  # (B, N, K+1)
    return jnp.tanh(esn.b_out[None] + jnp.sum(read * esn.w_out[None], axis=-1))


def _committee_policy(params, z, obs):
    esn, bits, weights = params
    z = reservoir_step(esn, z, obs)
    return z, outputs(esn, bits, z) @ weights


def _single_policy(params, z, obs):
    # One output per episode: its K+1 probe rows, biases and masked output weights
    # were gathered per episode, so a step costs K+1 probes instead of N.
    esn, w_probe, b_probe, w_out, b_out = params
    z = reservoir_step(esn, z, obs)
    s = jnp.tanh(b_probe + jnp.einsum("bjr,br->bj", w_probe, z))
    return z, jnp.tanh(b_out + jnp.sum(w_out * s, axis=-1))


class Landscapes(NamedTuple):
    """Tabulated per-output fitness.

    Attributes:
        fitness: ``(N, 2^(K+1))`` damping fitness of output ``i`` with bit setting
            ``c`` (bit 0 of ``c``, the most significant, is ``neighbours[i, 0]``).
        steps: ``(N, 2^(K+1))`` int32 control steps balanced in that episode.
    """

    fitness: jax.Array
    steps: jax.Array


def tabulate(
    esn: ESN,
    pole_config: pole.PoleConfig,
    *,
    chunk: int = 4096,
    starts: jax.Array | None = None,
) -> Landscapes:
    """Every output's fitness for all ``2^(K+1)`` settings of its bits.

    ``N 2^(K+1)`` training episodes (start :func:`qselax.pole.train_start`, at most
    ``max_steps`` control steps each), each controlled by one output alone, run in
    chunks of ``chunk`` episodes (``lax.map``) inside one compiled function; a chunk
    stops as soon as all its episodes have failed.  With ``S`` training ``starts``
    (:func:`qselax.pole.training_starts`) every setting runs one episode from each
    (``N 2^(K+1) S`` episodes) and its fitness is their mean.

    Args:
        esn: the network.
        pole_config: the plant (static).
        chunk: episodes per chunk (bounds memory: a chunk holds its episodes' K+1
            probe rows, ``chunk (K+1) R`` floats, besides their states).
        starts: ``(S, 6)`` training starts (default: the one training start).

    Returns:
        The :class:`Landscapes` (``fitness`` the mean over the starts, ``steps``
        the fewest control steps balanced from any of them).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    if starts is None:
        starts = pole.train_start(pole_config)[None]
    starts = jnp.asarray(starts, jnp.float32)
    if starts.ndim != 2 or starts.shape[1] != 6 or starts.shape[0] < 1:
        raise ValueError(f"starts must have shape (S, 6), S >= 1, got {starts.shape}")
    return _tabulate(esn, pole_config, chunk, starts)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _tabulate(
    esn: ESN, pole_config: pole.PoleConfig, chunk: int, starts: jax.Array
) -> Landscapes:
    n, bits = esn.w_out.shape
    configs = 2**bits
    n_starts = starts.shape[0]
    total = n * configs * n_starts
    chunk = min(chunk, total)
    padded = -(-total // chunk) * chunk
    episode = jnp.minimum(jnp.arange(padded, dtype=jnp.int32), total - 1)

    def run_chunk(ids):
        setting, which = ids // n_starts, ids % n_starts
        out, cfg = setting // configs, setting % configs
        x = index_bits(cfg, bits).astype(jnp.float32)  # (C, K+1)
        rows = esn.neighbours[out]  # (C, K+1)
        params = (
            esn,
            esn.w_probe[rows],
            esn.b_probe[rows],
            esn.w_out[out] * x,
            esn.b_out[out],
        )
        z0 = jnp.broadcast_to(esn.z0, (ids.shape[0], esn.z0.shape[0]))
        ep = pole.run_episodes(_single_policy, params, z0, starts[which], pole_config)
        return ep.fitness, ep.steps

    fitness, steps = jax.lax.map(run_chunk, episode.reshape(-1, chunk))
    fitness = fitness.reshape(-1)[:total].reshape(n, configs, n_starts)
    steps = steps.reshape(-1)[:total].reshape(n, configs, n_starts)
    return Landscapes(fitness=jnp.mean(fitness, axis=-1), steps=jnp.min(steps, -1))


def evaluate(
    esn: ESN,
    bits: jax.Array,
    weights: jax.Array,
    starts: jax.Array,
    pole_config: pole.PoleConfig,
    *,
    chunk: int = 1024,
) -> pole.Episodes:
    """Episodes of the committee ``y = sum_i weights_i y_i`` from ``starts (B, 6)``.

    Args:
        esn: the network.
        bits: ``(N, K+1)`` per-output bits.
        weights: ``(N,)`` committee weights (zero drops an output).
        starts: ``(B, 6)`` initial plant states.
        pole_config: the plant (static).
        chunk: episodes per chunk.
    """
    return _evaluate(esn, bits, weights, starts, pole_config, chunk)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _evaluate(esn, bits, weights, starts, pole_config, chunk):
    z0 = jnp.broadcast_to(esn.z0, (starts.shape[0], esn.z0.shape[0]))
    return pole.run_chunked(
        _committee_policy,
        (esn, bits.astype(jnp.float32), weights.astype(jnp.float32)),
        z0,
        starts,
        pole_config,
        chunk=min(chunk, starts.shape[0]),
        batched_params=False,
    )


def committee_weights(
    fitness: jax.Array, kind: str = "all", top_fraction: float = 0.2
) -> jax.Array:
    """Committee weights ``a (N,)`` from each output's fitness ``f (N,)``.

    ``"all"``: ``a_i = f_i / sum_j f_j``; ``"top"``: the same over the best
    ``ceil(top_fraction N)`` outputs (others 0); ``"best"``: the single best output.
    Fitness is ``>= 0``; if every selected ``f_i`` is 0 the weights are uniform.
    """
    if kind not in COMMITTEES:
        raise ValueError(f"committee must be one of {COMMITTEES}, got {kind!r}")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    n = fitness.shape[0]
    keep = {"all": n, "top": math.ceil(top_fraction * n), "best": 1}[kind]
    order = jnp.argsort(-fitness, stable=True)
    chosen = jnp.zeros((n,), bool).at[order[:keep]].set(True)
    f = jnp.where(chosen, fitness, 0.0)
    total = jnp.sum(f)
    uniform = chosen.astype(fitness.dtype) / keep
    return jnp.where(total > 0, f / jnp.where(total > 0, total, 1.0), uniform)


def best_entry(fitness: jax.Array) -> tuple[int, int]:
    """The best table entry: output ``i`` and setting ``c`` of the largest fitness.

    The reference implementation's "best single output": the one output, with its
    own best bits, whose training fitness is the highest in the whole table (the
    first in row-major order on ties).  It is the ``best`` committee of every
    output at its own optimum (exhaustive, independent mode).

    Args:
        fitness: ``(N, 2^(K+1))`` tabulated fitness.

    Returns:
        ``(i, c)`` as Python ints.

    Example:
        >>> best_entry(jnp.asarray([[0.1, 0.3], [0.5, 0.2]]))
        (1, 0)
    """
    flat = int(jnp.argmax(jnp.asarray(fitness).reshape(-1)))
    return divmod(flat, int(fitness.shape[1]))


def generalisation_scores(
    esn: ESN,
    bits: jax.Array,
    weights: jax.Array,
    pole_config: pole.PoleConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalisation scores and training fitness of C committees in one call.

    Args:
        esn: the network.
        bits: ``(C, N, K+1)`` per-output bits of each controller.
        weights: ``(C, N)`` committee weights of each controller.
        pole_config: the plant (static).

    Returns:
        ``(C,)`` int scores (of the 625 starts of
        :func:`qselax.pole.generalisation_starts`, those balanced for
        ``max_steps`` control steps) and ``(C,)`` damping fitness of one episode
        from the training start.
    """
    if bits.ndim != 3 or weights.ndim != 2 or bits.shape[:2] != weights.shape:
        raise ValueError(
            f"bits must be (C, N, K+1) and weights (C, N), got {bits.shape} and "
            f"{weights.shape}"
        )
    scores, fitness = _generalisation_scores(esn, bits, weights, pole_config)
    return np.asarray(scores), np.asarray(fitness)


@functools.partial(jax.jit, static_argnums=(3,))
def _generalisation_scores(esn, bits, weights, pole_config):
    grid = jnp.asarray(pole.generalisation_starts(), jnp.float32)
    starts = jnp.concatenate([grid, pole.train_start(pole_config)[None]], axis=0)
    z0 = jnp.broadcast_to(esn.z0, (starts.shape[0], esn.z0.shape[0]))

    def one(args):
        b, w = args
        params = (esn, b.astype(jnp.float32), w.astype(jnp.float32))
        ep = pole.run_episodes(_committee_policy, params, z0, starts, pole_config)
        return jnp.sum(ep.balanced[:-1].astype(jnp.int32)), ep.fitness[-1]

    return jax.lax.map(one, (bits, weights))
