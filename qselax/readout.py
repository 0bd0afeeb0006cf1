"""Readout-trained Echo State Networks: the classical baseline of masks-only NK-ESNs.

Echo-state practice keeps the reservoir fixed and random and *trains the readout*.
On the double pole without velocities the readout cannot be fitted by regression
(there are no target forces), so it is searched by an evolution strategy on the
same objective the masks-only NK-ESN sees: the Gruau damping fitness of one
training episode (:func:`qselax.pole.train_start`).  The controller reads the
reservoir of an :class:`qselax.esn.ESN` (the same family, the same draw) and the
plant's observation::

    z(t) = reservoir_step(z(t-1), u(t))                (fixed, random)
    y(t) = tanh(w . [z(t), u(t), 1])                   (w: R + 4 trained weights)

and pushes with ``force_mag * y`` newtons, as every NK-ESN output does.  The
probe neurons and the NK outputs are not used: every weight of ``w`` is free.

The search is CMA-ES (Hansen's ``cma`` package, ``pip install 'qselax[search]'``)
with a stated budget of training episodes, each generation's population run as one
compiled batch of episodes.  The controller kept is the best candidate seen, by
training fitness; its generalisation is scored on the 625 starts of
:func:`qselax.pole.generalisation_starts`, which the search never sees.

Example:
    >>> from qselax import esn as esn_mod, pole
    >>> net = esn_mod.make_esn(jax.random.key(0), esn_mod.ESNConfig(n=4, k=1))
    >>> plant = pole.plant_config("inverted", max_steps=20)
    >>> result = train_readout(
    ...     jax.random.key(1), net, plant, ReadoutConfig(episodes=40, popsize=8)
    ... )
    >>> result.weights.shape, result.episodes
    ((64,), 40)
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax import pole
from qselax.esn import ESN, reservoir_step

__all__ = [
    "ReadoutConfig",
    "ReadoutResult",
    "evaluate",
    "n_features",
    "readout_features",
    "readout_scores",
    "train_readout",
]


@dataclasses.dataclass(frozen=True)
class ReadoutConfig:
    """The evolution strategy that trains an ESN readout.

    Attributes:
        episodes: budget of training episodes (every candidate costs one).  The
            search runs ``episodes // popsize`` generations.
        popsize: candidates per generation (``None``: CMA-ES's default,
            ``4 + floor(3 ln d)`` for ``d`` weights).
        sigma0: initial step size of CMA-ES around the zero readout.
    """

    episodes: int = 25_600
    popsize: int | None = None
    sigma0: float = 0.5

    def validate(self) -> ReadoutConfig:
        """Raises ``ValueError`` naming the first bad field; returns ``self``."""
        e = self.episodes
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ValueError(f"episodes must be an int >= 1, got {e!r}")
        p = self.popsize
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 2):
            raise ValueError(f"popsize must be None or an int >= 2, got {p!r}")
        if p is not None and p > e:
            raise ValueError(f"popsize {p} exceeds the budget of {e} episodes")
        if not self.sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {self.sigma0}")
        return self


class ReadoutResult(NamedTuple):
    """A trained readout.

    Attributes:
        weights: ``(R + 4,)`` float32 readout ``w`` (see :func:`readout_features`).
        fitness: its damping fitness, the mean over the training starts.
        steps: fewest control steps it balanced from a training start.
        episodes: training episodes spent (``generations * popsize * S``).
        generations: CMA-ES generations run.
        popsize: candidates per generation.
        history: ``(generations,)`` best training fitness so far, per generation.
        seconds: wall time of the search.
    """

    weights: np.ndarray
    fitness: float
    steps: int
    episodes: int
    generations: int
    popsize: int
    history: np.ndarray
    seconds: float


def n_features(esn: ESN) -> int:
    """Readout inputs: R reservoir neurons, 3 observations and a constant."""
    return int(esn.w_res.shape[0]) + 4


def readout_features(z: jax.Array, obs: jax.Array) -> jax.Array:
    """``[z, u, 1]`` for a batch: ``z (B, R)``, ``obs (B, 3)`` to ``(B, R + 4)``."""
    one = jnp.ones(z.shape[:-1] + (1,), z.dtype)
    return jnp.concatenate([z, obs.astype(z.dtype), one], axis=-1)


def _policy(params, z, obs):
    esn, w = params  # w (B, F): one readout per episode
    z = reservoir_step(esn, z, obs)
    return z, jnp.tanh(jnp.sum(readout_features(z, obs) * w, axis=-1))


def _episodes(esn: ESN, ws: jax.Array, starts: jax.Array, cfg: pole.PoleConfig):
    """Episodes of readouts ``ws (B, R + 4)`` from ``starts (B, 6)``, one each."""
    z0 = jnp.broadcast_to(esn.z0, (starts.shape[0], esn.z0.shape[0]))
    return pole.run_episodes(_policy, (esn, ws), z0, starts, cfg)


@functools.partial(jax.jit, static_argnums=(2,))
def _train_fitness(esn: ESN, w: jax.Array, cfg: pole.PoleConfig, starts: jax.Array):
    # Every candidate from every start: (P S) episodes, candidate-major.
    p, s = w.shape[0], starts.shape[0]
    ep = _episodes(esn, jnp.repeat(w, s, axis=0), jnp.tile(starts, (p, 1)), cfg)
    fitness = jnp.mean(ep.fitness.reshape(p, s), axis=1)
    return fitness, jnp.min(ep.steps.reshape(p, s), axis=1)


def train_readout(
    key: jax.Array,
    esn: ESN,
    pole_config: pole.PoleConfig,
    config: ReadoutConfig = ReadoutConfig(),
    *,
    starts: jax.Array | None = None,
) -> ReadoutResult:
    """Searches the readout ``w`` with CMA-ES on the training episode's fitness.

    Args:
        key: PRNG key (seeds CMA-ES's sampler).
        esn: the fixed reservoir (its probes and outputs are not used).
        pole_config: the plant (static).
        config: budget and CMA-ES settings.
        starts: ``(S, 6)`` training starts (:func:`qselax.pole.training_starts`;
            default the one training start).  A candidate's fitness is its mean
            over them and costs S episodes of the budget.

    Returns:
        The best candidate seen (:class:`ReadoutResult`).

    Raises:
        ValueError: a bad config.
        ImportError: ``cma`` is not installed.
    """
    config.validate()
    if starts is None:
        starts = pole.train_start(pole_config)[None]
    starts = jnp.asarray(starts, jnp.float32)
    if starts.ndim != 2 or starts.shape[1] != 6 or starts.shape[0] < 1:
        raise ValueError(f"starts must have shape (S, 6), S >= 1, got {starts.shape}")
    n_starts = int(starts.shape[0])
    try:
        import cma
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "train_readout needs the cma package: pip install 'qselax[search]'"
        ) from err
    dim = n_features(esn)
    seed = int(jax.random.randint(key, (), 1, 2**31 - 1))  # cma: 0 is "by time"
    options = {"seed": seed, "verbose": -9, "maxfevals": np.inf}
    if config.popsize is not None:
        options["popsize"] = config.popsize
    es = cma.CMAEvolutionStrategy(np.zeros(dim), config.sigma0, options)
    popsize = int(es.popsize)
    if popsize * n_starts > config.episodes:
        raise ValueError(
            f"CMA-ES's population of {popsize} from {n_starts} start(s) exceeds "
            f"the budget of {config.episodes} episodes"
        )
    generations = config.episodes // (popsize * n_starts)
    best_w, best_f, best_steps = np.zeros(dim, np.float32), -np.inf, 0
    history = np.zeros(generations, np.float32)
    start = time.perf_counter()
    for g in range(generations):
        xs = np.asarray(es.ask(), np.float32)
        fitness, steps = _train_fitness(esn, jnp.asarray(xs), pole_config, starts)
        fitness, steps = np.asarray(fitness), np.asarray(steps)
        es.tell(list(xs.astype(np.float64)), list(-fitness.astype(np.float64)))
        i = int(np.argmax(fitness))
        if fitness[i] > best_f:
            best_w, best_f, best_steps = xs[i], float(fitness[i]), int(steps[i])
        history[g] = best_f
    return ReadoutResult(
        weights=best_w,
        fitness=best_f,
        steps=best_steps,
        episodes=generations * popsize * n_starts,
        generations=generations,
        popsize=popsize,
        history=history,
        seconds=time.perf_counter() - start,
    )


def evaluate(
    esn: ESN, weights: jax.Array, starts: jax.Array, pole_config: pole.PoleConfig
) -> pole.Episodes:
    """Episodes of one readout ``weights (R + 4,)`` from ``starts (B, 6)``."""
    weights = jnp.asarray(weights, jnp.float32)
    if weights.shape != (n_features(esn),):
        raise ValueError(
            f"weights must be ({n_features(esn)},), got {tuple(weights.shape)}"
        )
    starts = jnp.asarray(starts, jnp.float32)
    if starts.ndim != 2 or starts.shape[1] != 6:
        raise ValueError(f"starts must have shape (B, 6), got {starts.shape}")
    return _evaluate(esn, weights, starts, pole_config)


@functools.partial(jax.jit, static_argnums=(3,))
def _evaluate(esn, weights, starts, cfg):
    ws = jnp.broadcast_to(weights, (starts.shape[0], weights.shape[0]))
    return _episodes(esn, ws, starts, cfg)


def readout_scores(
    esn: ESN, weights: jax.Array, pole_config: pole.PoleConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Generalisation scores and training fitness of C readouts in one call.

    Args:
        esn: the reservoir.
        weights: ``(C, R + 4)`` readouts.
        pole_config: the plant (static).

    Returns:
        ``(C,)`` int scores (of the 625 starts, those balanced for ``max_steps``
        control steps) and ``(C,)`` damping fitness from the training start.
    """
    weights = jnp.asarray(weights, jnp.float32)
    if weights.ndim != 2 or weights.shape[1] != n_features(esn):
        raise ValueError(
            f"weights must be (C, {n_features(esn)}), got {tuple(weights.shape)}"
        )
    scores, fitness = _scores(esn, weights, pole_config)
    return np.asarray(scores), np.asarray(fitness)


@functools.partial(jax.jit, static_argnums=(2,))
def _scores(esn, weights, cfg):
    grid = jnp.asarray(pole.generalisation_starts(), jnp.float32)
    starts = jnp.concatenate([grid, pole.train_start(cfg)[None]], axis=0)

    def one(w):
        ep = _evaluate(esn, w, starts, cfg)
        return jnp.sum(ep.balanced[:-1].astype(jnp.int32)), ep.fitness[-1]

    return jax.lax.map(one, weights)
