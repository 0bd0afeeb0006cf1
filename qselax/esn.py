"""NK Echo State Networks for double-pole balancing without velocities (method B).

The network (Whitley, Tinós & Chicano 2015, arXiv 1505.01887), all weights fixed
random, ``U(-s, s)`` with ``s = weight_scale``:

* a tanh **reservoir** of R neurons, ``z(t) = tanh(b + W_in u(t) + W z(t-1))``, with
  ``W`` sparse (each entry present with probability ``density``) and rescaled to
  spectral radius ``spectral_radius``; ``z`` starts at zero and runs ``warmup``
  steps with zero input before every episode (the same state ``z0`` for all);
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

Selection (:func:`select_independent`, :func:`select_shared`), as cost ``-f``:

* ``independent``: each output's K+1 bits are one (K+1)-qubit problem; all N are
  solved at once (the solver vmaps over them) and each output keeps its own best
  setting, i.e. every output owns a private copy of its probe neurons (the
  paper's "ensemble" of duplicated outputs).
* ``shared``: one mask serves all outputs.  The N bits are cut into contiguous
  windows of ``group_size`` (default K+1) bits; windows whose bits no output reads
  together are solved simultaneously (colour classes of the interaction graph,
  :func:`qselax.nk.colour_groups`), each window's landscape being the exact total
  cost over its ``2^group_size`` settings with the rest of the mask fixed
  (:func:`qselax.nk.nk_group_landscapes`, read off the tabulated ``f_i``: no new
  episodes).  A window's choice is accepted only if it lowers the total cost, so
  ``F`` never falls; odd sweeps shift the windows by half a window.

**Committees** (:func:`committee_weights`): ``y = sum_i a_i y_i`` with
fitness-proportional ``a_i = f_i / sum_j f_j`` over all outputs or over the best
``top_fraction`` (20 %) of them, and the best single output for reference; each is
scored by the standard generalisation test (:func:`generalisation`: 625 starts,
balanced for 1000 steps).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax import nk, pole
from qselax.bits import bit_index, gather_bits, index_bits, scatter_bits
from qselax.nk import CONNECTIVITIES
from qselax.solvers import grover_search, make_solver

NK_MODES = ("independent", "shared")
# Gain settings of ESNConfig used by the experiments: "reference" is the reference
# implementation's (the defaults), "gain" removes the biases (an odd controller)
# and sets the output gain to 30 (experiments/nk_esn/README.md).
PRESETS = {
    "reference": {"bias_scale": 1.0, "output_scale": 1.0},
    "gain": {"bias_scale": 0.0, "output_scale": 30.0},
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
    for _ in range(config.warmup):
        z0 = jnp.tanh(b_res + w_res @ z0)
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
    )


def reservoir_step(esn: ESN, z: jax.Array, obs: jax.Array) -> jax.Array:
    """``z(t) = tanh(b + W_in u(t) + W z(t-1))`` for a batch: ``(B, R), (B, 3)``."""
    return jnp.tanh(esn.b_res[None] + obs @ esn.w_in.T + z @ esn.w_res.T)


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
    esn: ESN, pole_config: pole.PoleConfig, *, chunk: int = 4096
) -> Landscapes:
    """Every output's fitness for all ``2^(K+1)`` settings of its bits.

    ``N 2^(K+1)`` training episodes (start :func:`qselax.pole.train_start`, at most
    ``max_steps`` control steps each), each controlled by one output alone, run in
    chunks of ``chunk`` episodes (``lax.map``) inside one compiled function; a chunk
    stops as soon as all its episodes have failed.

    Args:
        esn: the network.
        pole_config: the plant (static).
        chunk: episodes per chunk (bounds memory: a chunk holds its episodes' K+1
            probe rows, ``chunk (K+1) R`` floats, besides their states).

    Returns:
        The :class:`Landscapes`.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    return _tabulate(esn, pole_config, chunk)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _tabulate(esn: ESN, pole_config: pole.PoleConfig, chunk: int) -> Landscapes:
    n, bits = esn.w_out.shape
    configs = 2**bits
    total = n * configs
    chunk = min(chunk, total)
    padded = -(-total // chunk) * chunk
    episode = jnp.minimum(jnp.arange(padded, dtype=jnp.int32), total - 1)
    start = pole.train_start(pole_config)

    def run_chunk(ids):
        out, cfg = ids // configs, ids % configs
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
        starts = jnp.broadcast_to(start, (ids.shape[0], start.shape[0]))
        ep = pole.run_episodes(_single_policy, params, z0, starts, pole_config)
        return ep.fitness, ep.steps

    fitness, steps = jax.lax.map(run_chunk, episode.reshape(-1, chunk))
    return Landscapes(
        fitness=fitness.reshape(-1)[:total].reshape(n, configs),
        steps=steps.reshape(-1)[:total].reshape(n, configs),
    )


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


class NKSelection(NamedTuple):
    """Masks chosen by NK neuron selection.

    Attributes:
        bits: ``(N, K+1)`` each output's bits (shared mode: ``x[neighbours]``).
        fitness: ``(N,)`` each output's fitness under ``bits`` (from the tables).
        mask: ``(N,)`` the shared mask (shared mode) or ``None``.
        optimum_rate: independent: fraction of outputs whose setting attains
            their exhaustive optimum; shared: 1.0 if ``F(x)`` equals the
            reference optimum passed in, else 0.0 (``nan`` without one).
        lookups: total landscape look-ups / oracle evaluations.
        oracle_calls: total coherent oracle calls (Grover) or 0.
        history: ``(sweeps,)`` total fitness after each sweep (shared) or ``None``.
        calls_to_optimum: Grover (independent mode) only: total oracle calls made
            by the time each output's kept setting first was its optimum (the full
            budget for an output that never got there), else ``None``.
    """

    bits: jax.Array
    fitness: jax.Array
    mask: jax.Array | None
    optimum_rate: float
    lookups: int
    oracle_calls: int
    history: np.ndarray | None = None
    calls_to_optimum: int | None = None


@functools.lru_cache(maxsize=64)
def _cached_solver(name: str, bits: int, options: tuple):
    solver = make_solver(name, bits, **dict(options))
    return solver, jax.jit(solver.solve)


def _solver(name: str, bits: int, options: dict | None):
    """The solver and its jitted ``solve``, built once per (name, K+1, options), so
    that every seed and sweep of an experiment reuses one compiled function."""
    items = tuple(sorted((options or {}).items()))
    try:
        hash(items)
    except TypeError:  # unhashable option values: build afresh
        solver = make_solver(name, bits, **dict(items))
        return solver, jax.jit(solver.solve)
    return _cached_solver(name, bits, items)


def _output_fitness(fitness: jax.Array, bits: jax.Array) -> jax.Array:
    """Each output's tabulated fitness under its bits: ``(N, S), (N, K+1) -> (N,)``."""
    return jnp.take_along_axis(fitness, bit_index(bits)[:, None], axis=-1)[:, 0]


def _sum(value) -> int:
    return 0 if value is None else int(jnp.sum(value))


def select_independent(
    key: jax.Array, fitness: jax.Array, solver: str, options: dict | None = None
) -> NKSelection:
    """Each output's K+1 bits solved as its own (K+1)-qubit problem (cost ``-f``).

    Args:
        key: PRNG key of the solver.
        fitness: ``(N, 2^(K+1))`` tabulated fitness.
        solver: a registered solver name.
        options: solver options.
    """
    n, configs = fitness.shape
    bits = int(round(math.log2(configs)))
    cost = -fitness
    to_optimum = None
    if solver == "grover":
        # grover_search is the grover solver's own search (same key, same choice)
        # with its statistics, so one run gives both the choice and the calls to
        # each output's optimum.
        make_solver(solver, bits, **(options or {}))  # checks the options
        res = _grover_stats(key, cost, tuple(sorted((options or {}).items())))
        to_optimum = int(
            jnp.sum(
                jnp.where(
                    res.calls_to_optimum >= 0, res.calls_to_optimum, res.oracle_calls
                )
            )
        )
    else:
        _, solve = _solver(solver, bits, options)
        current = jnp.full((n,), configs - 1, jnp.int32)  # all probes on
        res = solve(key, cost, current)
    chosen = jnp.take_along_axis(fitness, res.index[:, None], axis=-1)[:, 0]
    best = jnp.max(fitness, axis=-1)
    return NKSelection(
        bits=index_bits(res.index, bits),
        fitness=chosen,
        mask=None,
        optimum_rate=float(jnp.mean(chosen >= best)),
        lookups=_sum(res.lookups),
        oracle_calls=_sum(res.oracle_calls),
        calls_to_optimum=to_optimum,
    )


@functools.partial(jax.jit, static_argnums=(2,))
def _grover_stats(key, cost, options):
    return grover_search(key, cost, **dict(options))


def _shared_plan(neighbours: np.ndarray, n: int, size: int):
    """Padded ``(C, G, size)`` groups/valid of both window offsets' colour classes."""
    classes = []
    for offset in (0, size // 2):
        groups, valid = nk.window_groups(n, size, offset)
        for members in nk.colour_groups(groups, valid, neighbours):
            classes.append((groups[members], valid[members]))
    width = max(len(g) for g, _ in classes)
    g_out = np.zeros((len(classes), width, size), np.int32)
    v_out = np.zeros((len(classes), width, size), bool)
    for c, (g, v) in enumerate(classes):
        g_out[c, : len(g)] = g
        v_out[c, : len(g)] = v
    return g_out, v_out


def select_shared(
    key: jax.Array,
    fitness: jax.Array,
    neighbours: jax.Array,
    solver: str,
    options: dict | None = None,
    *,
    sweeps: int = 4,
    group_size: int | None = None,
    optimum: float | None = None,
) -> NKSelection:
    """One shared mask, solved by the solver on windows of bits in sweeps.

    Args:
        key: PRNG key of the solver.
        fitness: ``(N, 2^(K+1))`` tabulated fitness.
        neighbours: ``(N, K+1)`` the wiring.
        solver: a registered solver name.
        options: solver options.
        sweeps: sweeps over all windows; each sweep runs both window offsets
            (0 and ``group_size // 2``).
        group_size: bits (qubits) per window (default K+1).
        optimum: the exact optimum of ``sum_i f_i`` (e.g. :func:`qselax.nk.nk_dp`)
            for ``optimum_rate``.

    Starts from the all-ones mask; a window's choice is accepted only if it lowers
    the total cost, so the total fitness never falls.
    """
    n, configs = fitness.shape
    size = int(round(math.log2(configs))) if group_size is None else group_size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= n:
        raise ValueError(f"group_size must be an int in [1, {n}], got {group_size!r}")
    if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
        raise ValueError(f"sweeps must be an int >= 1, got {sweeps!r}")
    neighbours_np = np.asarray(neighbours)
    groups, valid = _shared_plan(neighbours_np, n, size)
    s, _ = _solver(solver, size, options)
    x, history, lookups, calls = _shared_sweeps(
        key,
        -fitness,
        jnp.asarray(neighbours_np, jnp.int32),
        jnp.asarray(groups),
        jnp.asarray(valid),
        s.solve,
        sweeps,
    )
    bits = x[neighbours_np]
    chosen = _output_fitness(fitness, bits)
    total = float(jnp.sum(chosen))
    rate = float("nan")
    if optimum is not None:
        rate = float(total >= optimum - 1e-5 * max(1.0, abs(optimum)))
    return NKSelection(
        bits=bits,
        fitness=chosen,
        mask=x,
        optimum_rate=rate,
        lookups=int(lookups),
        oracle_calls=int(calls),
        history=-np.asarray(history),
    )


@functools.partial(jax.jit, static_argnums=(5, 6))
def _shared_sweeps(key, cost, neighbours, groups, valid, solve, sweeps):
    n = cost.shape[0]
    real = jnp.any(valid, axis=-1)  # (C, G) padding groups are all-invalid

    def one_class(carry, inputs):
        x, lookups, calls = carry
        k, g, v, r = inputs
        land = nk.nk_group_landscapes(cost, neighbours, x, g, v)  # (G, 2^size)
        current = bit_index(gather_bits(x, g, v))
        res = solve(k, land, current)
        now = jnp.take_along_axis(land, current[:, None], axis=-1)[:, 0]
        new = jnp.take_along_axis(land, res.index[:, None], axis=-1)[:, 0]
        accept = r & (new < now)
        chosen = jnp.where(accept, res.index, current)
        x = scatter_bits(x, g, v, index_bits(chosen, g.shape[-1]))
        lookups = lookups + jnp.sum(jnp.where(r, res.lookups, 0))
        if res.oracle_calls is not None:
            calls = calls + jnp.sum(jnp.where(r, res.oracle_calls, 0))
        return (x, lookups, calls), None

    def one_sweep(carry, k):
        keys = jax.random.split(k, groups.shape[0])
        carry, _ = jax.lax.scan(one_class, carry, (keys, groups, valid, real))
        total = nk.nk_value(cost, neighbours, carry[0])
        return carry, total

    x0 = jnp.ones((n,), jnp.int32)
    zero = jnp.zeros((), jnp.int32)
    (x, lookups, calls), history = jax.lax.scan(
        one_sweep, (x0, zero, zero), jax.random.split(key, sweeps)
    )
    return x, history, lookups, calls


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


@dataclasses.dataclass(frozen=True)
class NKESNConfig:
    """One NK-ESN experiment: network, plant, solvers, modes and budgets.

    Attributes:
        esn: the network structure.
        pole: the plant.
        solvers: registered solver names; each runs in every mode of ``modes``.
        solver_options: ``((solver, ((name, value), ...)), ...)``.
        modes: from :data:`NK_MODES`.
        sweeps: sweeps of the shared mode.
        group_size: bits per window in the shared mode (default K+1).
        top_fraction: share of outputs in the ``"top"`` committee.
        chunk: episodes per chunk of the tabulation.
    """

    esn: ESNConfig = ESNConfig()
    pole: pole.PoleConfig = pole.PoleConfig()
    solvers: tuple[str, ...] = ("vqe",)
    solver_options: tuple = ()
    modes: tuple[str, ...] = NK_MODES
    sweeps: int = 4
    group_size: int | None = None
    top_fraction: float = 0.2
    chunk: int = 4096

    def validate(self) -> NKESNConfig:
        """Checks every field (``ValueError`` naming it); returns ``self``."""
        self.esn.validate()
        if not self.solvers or len(set(self.solvers)) != len(self.solvers):
            raise ValueError(f"solvers must be distinct names, got {self.solvers!r}")
        options = dict(self.solver_options)
        for name in self.solvers:
            make_solver(name, self.esn.bits, **dict(options.get(name, ())))
        for mode in self.modes:
            if mode not in NK_MODES:
                raise ValueError(f"modes must be from {NK_MODES}, got {mode!r}")
        if not self.modes:
            raise ValueError("modes must name at least one mode")
        if isinstance(self.sweeps, bool) or not isinstance(self.sweeps, int):
            raise ValueError(f"sweeps must be an int >= 1, got {self.sweeps!r}")
        if self.sweeps < 1:
            raise ValueError(f"sweeps must be an int >= 1, got {self.sweeps!r}")
        if self.group_size is not None and not 1 <= self.group_size <= min(
            self.esn.n, 20
        ):
            raise ValueError(
                f"group_size must be in [1, {min(self.esn.n, 20)}], got "
                f"{self.group_size!r}"
            )
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int):
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")
        return self


class NKESNResult(NamedTuple):
    """What :func:`nk_esn` measured.

    Attributes:
        esn: the network.
        landscapes: the tabulated per-output fitness.
        rows: one dict per (solver, mode) and the classical references
            (``exhaustive``/independent: each output's optimum; ``dp``/shared: the
            exact NK optimum, adjacent wiring or N <= 20): ``optimum_rate``,
            ``total_fitness`` (sum of the outputs' fitness), ``lookups``,
            ``oracle_calls``, ``select_s``, ``generalisation`` and
            ``train_fitness`` per committee (``all``, ``top``, ``best``).
        optimum: the exact shared-mask optimum of ``sum_i f_i`` or ``None``.
        tabulate_s: seconds of the tabulation (compile included).
        episodes: episodes run by the tabulation, ``N 2^(K+1)``.
    """

    esn: ESN
    landscapes: Landscapes
    rows: list
    optimum: float | None
    tabulate_s: float
    episodes: int


def nk_esn(key: jax.Array, config: NKESNConfig) -> NKESNResult:
    """Tabulates, selects with every solver and mode, and scores the committees.

    Args:
        key: PRNG key (network from ``fold_in(key, 0)``, solvers from later folds).
        config: the experiment.

    Returns:
        The :class:`NKESNResult`.
    """
    config.validate()
    cfg = config.esn
    esn = make_esn(jax.random.fold_in(key, 0), cfg)
    start = time.perf_counter()
    land = jax.block_until_ready(tabulate(esn, config.pole, chunk=config.chunk))
    tabulate_s = time.perf_counter() - start
    fitness = land.fitness
    neighbours = np.asarray(esn.neighbours)
    start = time.perf_counter()
    best = select_independent(key, fitness, "exhaustive")
    selections = [("exhaustive", "independent", best, time.perf_counter() - start)]
    optimum = None
    exact = None
    start = time.perf_counter()
    if cfg.connectivity == "adjacent":
        exact = nk.nk_dp(-fitness, circular=True)
    elif cfg.n <= 20:
        exact = nk.nk_exhaustive(-fitness, neighbours, cfg.n)
    if exact is not None:
        x = jnp.asarray(exact[0], jnp.int32)
        bits = x[neighbours]
        chosen = _output_fitness(fitness, bits)
        optimum = float(jnp.sum(chosen))
        selections.append(
            (
                "dp" if cfg.connectivity == "adjacent" else "exhaustive",
                "shared",
                NKSelection(bits, chosen, x, 1.0, int(fitness.size), 0),
                time.perf_counter() - start,
            )
        )
    options = dict(config.solver_options)
    for i, name in enumerate(config.solvers):
        opts = dict(options.get(name, ()))
        for mode in config.modes:
            k = jax.random.fold_in(key, 100 + 2 * i + (mode == "shared"))
            start = time.perf_counter()
            if mode == "independent":
                sel = select_independent(k, fitness, name, opts)
            else:
                sel = select_shared(
                    k,
                    fitness,
                    neighbours,
                    name,
                    opts,
                    sweeps=config.sweeps,
                    group_size=config.group_size,
                    optimum=optimum,
                )
            jax.block_until_ready(sel.bits)
            selections.append((name, mode, sel, time.perf_counter() - start))
    bits, weights = [], []
    for _, _, sel, _ in selections:
        for kind in COMMITTEES:
            bits.append(sel.bits)
            weights.append(committee_weights(sel.fitness, kind, config.top_fraction))
    scores, train = generalisation_scores(
        esn, jnp.stack(bits), jnp.stack(weights), config.pole
    )
    rows = []
    for r, (name, mode, sel, seconds) in enumerate(selections):
        row = {
            "solver": name,
            "mode": mode,
            "optimum_rate": sel.optimum_rate,
            "total_fitness": float(jnp.sum(sel.fitness)),
            "lookups": sel.lookups,
            "oracle_calls": sel.oracle_calls,
            "calls_to_optimum": sel.calls_to_optimum,
            "select_s": seconds,
            "generalisation": {},
            "train_fitness": {},
        }
        for c, kind in enumerate(COMMITTEES):
            row["generalisation"][kind] = int(scores[3 * r + c])
            row["train_fitness"][kind] = float(train[3 * r + c])
        if sel.history is not None:
            row["history"] = [float(v) for v in sel.history]
        rows.append(row)
    return NKESNResult(
        esn=esn,
        landscapes=land,
        rows=rows,
        optimum=optimum,
        tabulate_s=tabulate_s,
        episodes=int(fitness.size),
    )


__all__ = [
    "COMMITTEES",
    "CONNECTIVITIES",
    "ESN",
    "NK_MODES",
    "PRESETS",
    "ESNConfig",
    "NKESNConfig",
    "NKESNResult",
    "Landscapes",
    "NKSelection",
    "committee_weights",
    "evaluate",
    "generalisation_scores",
    "make_esn",
    "nk_esn",
    "outputs",
    "reservoir_step",
    "select_independent",
    "select_shared",
    "tabulate",
]
