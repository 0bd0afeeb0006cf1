"""``grover``: Grover adaptive search (GAS) for the minimum of each landscape.

Threshold oracle and sign convention
------------------------------------
For a threshold ``y`` the oracle ``O_y`` is the diagonal ``±1`` operator

    O_y |s> = -|s>  if C(s) < y   (the configuration *passes*: better than y)
    O_y |s> = +|s>  otherwise,

i.e. it phase-flips the configurations that beat the threshold, the usual "marked
items" of Grover search.  (The paper's figure flips the *failing* configurations
instead; that is ``-O_y``, the same operator up to a global phase, so every
probability below is unchanged.)  The oracle is the network's threshold test: on
hardware it is a coherent evaluation of the masked network; here it reads the
group's landscape.

Diffuser and how the state is simulated
---------------------------------------
One Grover iteration is ``G_y = D O_y`` with the diffuser ``D = 2|s><s| - I`` about
``|s> = |+>^K``.  The state starts in ``|+>^K`` and stays real, so it is kept as a
float32 vector of ``S = 2^K`` amplitudes (qubit 0 the most significant bit, as in
:mod:`qselax.circuits`).  Two interchangeable ways apply an iteration
(``diffuser=``):

* ``"reflection"`` (default): ``O_y`` as a sign vector and ``D`` as the exact
  reflection ``psi -> 2 <s|psi> |s> - psi`` -- the same unitary, two passes over
  the state.
* ``"gates"``: each iteration is a ``tc.Circuit(K, inputs=O_y psi)`` with the
  textbook diffuser ``H^K X^K (C^{K-1}Z) X^K H^K`` from TensorCircuit gates
  (``c.h``, ``c.x``, ``c.multicontrol``).  This gate sequence equals ``-D``; the
  global sign is undone so that both modes return identical amplitudes (the tests
  check this, and :func:`grover_circuit` exports the gates).

On the 2-core CPU, 200 iterations on 2368 groups of K = 8 take 0.024 s as a
reflection and 7.6 s as TensorCircuit gates (fusing the Hadamards into 2-4 qubit
``c.any`` gates brings that to 2 s): the ``K``-fold Walsh-Hadamard passes and the
tensor-network bookkeeping cost ~300x for the same numbers, hence the default.

Grover adaptive search (Durr & Hoyer 1996; Gilliam, Woerner & Gonciulea 2021)
-----------------------------------------------------------------------------
Per group, with its own key:

1. measure ``|+>^K`` once: a uniformly random configuration ``s_0``; the threshold
   ``y = C(s_0)`` (one landscape look-up, no oracle call); ``m = 1``.
2. while oracle calls ``< oracle_budget`` and rounds ``< max_rounds``:
   draw the rotation count ``r`` uniformly from ``{0, ..., ceil(m) - 1}`` (cut to
   the budget left), apply ``r`` Grover iterations with ``O_y`` to ``|+>^K``
   (``r`` oracle calls), measure one bitstring ``s`` (a draw from the Born
   probabilities with the group's key) and look up ``C(s)`` (one look-up).  If
   ``C(s) < y``: ``y = C(s)``, keep ``s``, ``m = 1``; else
   ``m = min(lam * m, sqrt(S))``.
3. the chosen configuration is the last one that lowered ``y`` (the best seen).

Budget: ``oracle_budget`` defaults to ``ceil(22.5 sqrt(S) + 1.4 log2(S)^2)``, the
total number of Grover iterations after which Durr and Hoyer's minimum finding
succeeds with probability at least 1/2 (their bound on the expected time).  The
last round's ``r`` is cut so that oracle calls never exceed the budget.
``max_rounds`` (default: ``oracle_budget``) bounds the measurements, so that
look-ups stay ``<= oracle_budget + 1`` even when many rounds draw ``r = 0``.

Loop structure: one ``lax.while_loop`` per group (``jax.vmap`` over groups) whose
step is either one Grover iteration or, when the round's ``r`` iterations are done,
the measurement (which also draws the next ``r``).  Under ``vmap`` the loop runs
until the slowest group stops, i.e. ``max_g (oracle calls + rounds)`` steps.  A
nested loop (rounds, then ``r`` iterations) would run ``max_g r`` iterations in
*every* round, about ``sqrt(S)`` of them: on the 2-core CPU the flat loop took
1.2 s against 1.6 s at K = 12 (G = 128) and is asymptotically ``sqrt(S) / 2``
times cheaper; at K = 8 (G = 2368) it costs 1.1 s against 0.75 s.  Measurements
are inverse-CDF draws from one uniform number (see ``_sample``).

Statistics: ``calls_to_optimum`` is the number of oracle calls made when the kept
configuration first attains the landscape's minimum (``-1`` if never).  The minimum
is read only for this statistic; the search itself never sees it.

Shapes: ``G`` groups, ``K`` qubits, ``S = 2^K`` configurations.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from qselax import circuits
from qselax.bits import check_k
from qselax.circuits import MAX_QUBITS, Gate
from qselax.solvers.base import (
    Solver,
    SolveResult,
    check_choice,
    check_count,
    check_float,
    solver_factory,
    with_costs,
)

__all__ = [
    "DIFFUSERS",
    "NOISE_STREAM",
    "GroverSearch",
    "default_oracle_budget",
    "diffuser_two_qubit_gates",
    "grover",
    "grover_circuit",
    "grover_probs",
    "grover_search",
    "grover_state",
    "threshold_signs",
]

DIFFUSERS = ("reflection", "gates")


class GroverSearch(NamedTuple):
    """What :func:`grover_search` returns for G groups.

    Attributes:
        index: ``(G,)`` int32 best configuration found (the final threshold's).
        oracle_calls: ``(G,)`` int32 Grover iterations run (sum of ``r`` over rounds).
        calls_to_optimum: ``(G,)`` int32 oracle calls made when the kept
            configuration first attained the landscape minimum; ``-1`` if never.
        lookups_to_optimum: ``(G,)`` int32 look-ups made by then; ``-1`` if never
            (rounds that draw ``r = 0`` are classical random samples, so this
            says how much of the work was classical).
        lookups: ``(G,)`` int32 landscape look-ups (measurements, the initial one
            included).
        rounds: ``(G,)`` int32 GAS rounds (measurements after the initial one).
        probs: ``(G, S)`` float32 Born probabilities of the last round's state.
    """

    index: jax.Array
    oracle_calls: jax.Array
    calls_to_optimum: jax.Array
    lookups_to_optimum: jax.Array
    lookups: jax.Array
    rounds: jax.Array
    probs: jax.Array


class _GasState(NamedTuple):
    """Loop state of one group's search; it carries its own key.

    One loop step is either one Grover iteration (while ``left > 0``) or the
    round's measurement, which also draws the next round's ``r``.
    """

    key: jax.Array  # the group's key; measurement i draws from fold_in(key, i)
    threshold: jax.Array  # () float32: y, the best cost seen
    best: jax.Array  # () int32: the configuration with cost y
    m: jax.Array  # () float32: rotation-count scale
    oracle_calls: jax.Array  # () int32
    lookups: jax.Array  # () int32: measurements so far (rounds + 1)
    calls_to_optimum: jax.Array  # () int32, -1 until found
    lookups_to_optimum: jax.Array  # () int32, -1 until found
    amps: jax.Array  # (S,) float32: the current round's state
    left: jax.Array  # () int32: Grover iterations left in this round
    done: jax.Array  # () bool: a cap was reached at the last measurement


class _Config(NamedTuple):
    """Static settings of a search (hashable; never traced)."""

    num_qubits: int
    oracle_budget: int
    max_rounds: int
    lam: float
    diffuser: str
    noise: float = 0.0


# ---------------------------------------------------------------------------
# Set-up checks and static resource counts.


def default_oracle_budget(k: int) -> int:
    """Durr-Hoyer budget ``ceil(22.5 sqrt(S) + 1.4 log2(S)^2)`` for ``S = 2^K``.

    Example:
        >>> default_oracle_budget(8)
        450
    """
    k = check_k(k, high=MAX_QUBITS)
    return math.ceil(22.5 * 2.0 ** (k / 2) + 1.4 * k**2)


def diffuser_two_qubit_gates(k: int) -> int:
    """Two-qubit gates of the diffuser ``H^K X^K C^{K-1}Z X^K H^K``.

    Only the multi-controlled Z needs two-qubit gates.  Counted for the standard
    ancilla-free Gray-code construction (Barenco et al. 1995, Lemma 7.1): a
    ``C^{n}`` phase gate on ``n + 1 = K`` qubits is ``2^n - 1`` controlled-phase
    gates and ``2^n - 2`` CNOTs, i.e. ``2^K - 3`` two-qubit gates (``K = 2``: one CZ;
    ``K = 3``: five, the textbook CCZ).  ``K = 1`` needs none.  Linear-size
    constructions exist (with more single-qubit gates); this is the simple,
    exact-count reference.

    Example:
        >>> [diffuser_two_qubit_gates(k) for k in (1, 2, 3, 8)]
        [0, 1, 5, 253]
    """
    k = check_k(k, high=MAX_QUBITS)
    return 0 if k == 1 else 2**k - 3


def _resources(config: _Config) -> dict:
    k = config.num_qubits
    mcz_depth = 1 if k == 1 else diffuser_two_qubit_gates(k)
    max_iterations = math.ceil(math.sqrt(2**k))
    return {
        "qubits": k,
        "oracle_budget": config.oracle_budget,
        "max_rounds": config.max_rounds,
        "lam": config.lam,
        "diffuser": config.diffuser,
        "noise": config.noise,
        "diffuser_two_qubit_gates": diffuser_two_qubit_gates(k),
        # The oracle (a coherent network evaluation) counts as one layer; then the
        # H, X layers, the C^{K-1}Z gates scheduled one after another (they share
        # the target qubit), and the X, H layers.
        "depth_per_iteration": 1 + 4 + mcz_depth,
        # The deepest round: r < sqrt(S) iterations after the H layer (the oracle
        # counted as one layer; its own gates depend on the network).
        "depth": 1 + max_iterations * (1 + 4 + mcz_depth),
        "two_qubit_gates": max_iterations * diffuser_two_qubit_gates(k),
        "classical_lookups_max": config.max_rounds + 1,
    }


def _make_config(k, max_rounds, lam, oracle_budget, diffuser, noise=0.0) -> _Config:
    k = check_k(k, high=MAX_QUBITS)
    noise = circuits.check_noise_rate(noise)
    lam = check_float("lam", lam, above=1.0)
    budget = (
        default_oracle_budget(k)
        if oracle_budget is None
        else check_count("oracle_budget", oracle_budget)
    )
    rounds = budget if max_rounds is None else check_count("max_rounds", max_rounds)
    check_choice("diffuser", diffuser, DIFFUSERS)
    return _Config(k, budget, rounds, lam, diffuser, noise)


def _check_landscapes(landscapes, num_qubits: int | None = None) -> jax.Array:
    landscapes = jnp.asarray(landscapes)
    if landscapes.ndim != 2:
        raise ValueError(
            f"landscapes must have shape (G, S=2^K), got {landscapes.shape}"
        )
    size = landscapes.shape[-1]
    if num_qubits is None:
        if size < 2 or size & (size - 1):
            raise ValueError(
                f"landscapes must have S = 2^K columns, got shape {landscapes.shape}"
            )
    elif size != 2**num_qubits:
        raise ValueError(
            f"landscapes must have S = 2^K = {2**num_qubits} columns for "
            f"K={num_qubits}, got shape {landscapes.shape}"
        )
    return landscapes.astype(jnp.float32)


# ---------------------------------------------------------------------------
# One group's Grover iterations.


def threshold_signs(
    landscape: Float[Array, " S"], threshold: Float[Array, ""]
) -> Float[Array, " S"]:
    """Diagonal of the oracle ``O_y``: ``-1`` where ``C(s) < y``, else ``+1``.

    Example:
        >>> threshold_signs(jnp.array([3.0, 1.0, 2.0, 0.0]), 2.0).tolist()
        [1.0, -1.0, 1.0, -1.0]
    """
    return jnp.where(landscape < threshold, -1.0, 1.0).astype(jnp.float32)


def _reflect(amps: jax.Array) -> jax.Array:
    # 2|s><s|psi> - psi with |s> = S^(-1/2) (1, ..., 1): 2 * mean(psi) - psi.
    return 2.0 * jnp.mean(amps) - amps


# Pauli Z, the target of the diffuser's multi-controlled Z.
_Z = np.array([[1.0, 0.0], [0.0, -1.0]])


def _diffuser_gates(num_qubits: int) -> list[Gate]:
    """``H^K X^K C^{K-1}Z X^K H^K`` (which is ``-D``) as gates."""
    qubits = tuple(range(num_qubits))
    if num_qubits == 1:
        mcz = [Gate("z", (0,))]
    else:
        ctrl = (1,) * (num_qubits - 1)
        mcz = [Gate("multicontrol", qubits, unitary=_Z, ctrl=ctrl)]
    hs = [Gate("h", (q,)) for q in qubits]
    xs = [Gate("x", (q,)) for q in qubits]
    return hs + xs + mcz + xs + hs


def _gate_diffuser(amps: jax.Array, num_qubits: int) -> jax.Array:
    state = circuits.apply_gates(
        amps.astype(jnp.complex64), _diffuser_gates(num_qubits), num_qubits
    )
    # H X C^{K-1}Z X H = I - 2|s><s| = -D; amplitudes stay real.
    return -jnp.real(state).astype(jnp.float32)


NOISE_STREAM = 0x6E6F  # fold_in tag of the noise keys (measurements use 0, 1, ...)


def _depolarize(amps: jax.Array, key: jax.Array, config: _Config) -> jax.Array:
    """A depolarizing trajectory step on every qubit (real amplitudes stay real:
    ``Y = i X Z`` up to its global phase)."""
    codes = circuits.depolarizing_codes(key, config.noise, (config.num_qubits,))
    return circuits.apply_pauli_string(amps, codes, config.num_qubits)


def _grover_step(amps: jax.Array, config: _Config) -> jax.Array:
    """The diffuser on an oracle-applied state ``O_y psi``."""
    if config.diffuser == "reflection":
        return _reflect(amps)
    return _gate_diffuser(amps, config.num_qubits)


def grover_state(
    signs: Float[Array, " S"],
    iterations: Int[Array, ""] | int,
    diffuser: str = "reflection",
    *,
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Float[Array, " S"]:
    """Amplitudes of ``(D O)^r |+>^K`` for an oracle with diagonal ``signs``.

    Args:
        signs: ``(S,)`` oracle diagonal, ``±1`` (see :func:`threshold_signs`).
        iterations: ``r >= 0`` Grover iterations (may be traced).
        diffuser: ``"reflection"`` or ``"gates"`` (see the module notes).
        noise_key: key of a depolarizing-noise trajectory (``None``: noiseless).
        noise_rate: depolarizing probability per qubit after every iteration.

    Returns:
        ``(S,)`` float32 real amplitudes, qubit 0 the most significant bit.

    Example:
        >>> signs = jnp.array([1.0, 1.0, 1.0, -1.0])  # mark |11> of 2 qubits
        >>> [round(float(a), 3) for a in grover_state(signs, 1)]
        [0.0, 0.0, 0.0, 1.0]
    """
    check_choice("diffuser", diffuser, DIFFUSERS)
    signs = jnp.asarray(signs, jnp.float32)
    size = signs.shape[-1]
    num_qubits = size.bit_length() - 1
    plus = jnp.full((size,), size**-0.5, jnp.float32)
    noisy = noise_key is not None and circuits.check_noise_rate(noise_rate) > 0
    config = _Config(num_qubits, 1, 1, 2.0, diffuser, float(noise_rate))

    def step(i, amps):
        amps = _grover_step(signs * amps, config)
        if noisy:
            amps = _depolarize(amps, jax.random.fold_in(noise_key, i), config)
        return amps

    return jax.lax.fori_loop(0, iterations, step, plus)


def grover_probs(
    signs: Float[Array, " S"],
    iterations: Int[Array, ""] | int,
    diffuser: str = "reflection",
) -> Float[Array, " S"]:
    """Born probabilities of :func:`grover_state`, renormalised to sum to 1.

    Example:
        >>> p = grover_probs(jnp.array([1.0] * 7 + [-1.0]), 2)  # 3 qubits, 1 marked
        >>> round(float(p[7]), 3)  # sin^2(5 theta), sin(theta) = 1/sqrt(8)
        0.945
    """
    amps = grover_state(signs, iterations, diffuser)
    probs = jnp.square(amps)
    # Float32 drift over many iterations; renormalise so Σp = 1 exactly enough.
    return probs / jnp.sum(probs)


def grover_circuit(signs, iterations: int) -> circuits.Circuit:
    """Gate-by-gate ``tc.Circuit`` of ``r`` Grover iterations, for inspection.

    H on every qubit, then ``iterations`` times: the oracle as one diagonal
    ``c.any`` gate on all qubits (a ``2^K x 2^K`` matrix, so small K only), and the
    diffuser ``H^K X^K C^{K-1}Z X^K H^K`` (which is ``-D``: the state differs from
    :func:`grover_state` by the global sign ``(-1)^r``).  A Python loop over gates:
    not for the hot path.

    Args:
        signs: ``(S,)`` concrete oracle diagonal, ``S = 2^K`` with ``K <= 10``.
        iterations: number of Grover iterations, ``>= 0``.

    Example:
        >>> c = grover_circuit(np.array([1.0, 1.0, 1.0, -1.0]), 1)
        >>> [round(float(p), 3) for p in c.probability()]
        [0.0, 0.0, 0.0, 1.0]
    """
    signs = np.asarray(signs, dtype=np.float64)
    size = signs.shape[-1]
    if signs.ndim != 1 or size < 2 or size & (size - 1) or size > 2**10:
        raise ValueError(
            f"signs must have shape (S,), S = 2^K with 1 <= K <= 10, got {signs.shape}"
        )
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer):
        raise ValueError(f"iterations must be an int, got {iterations!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    num_qubits = size.bit_length() - 1
    qubits = tuple(range(num_qubits))
    oracle = Gate(
        "any", qubits, unitary=np.diag(signs).astype(np.complex64), label="oracle"
    )
    gates = [Gate("h", (q,)) for q in qubits]
    for _ in range(int(iterations)):
        gates += [oracle, *_diffuser_gates(num_qubits)]
    return circuits.build_circuit(num_qubits, gates)


# ---------------------------------------------------------------------------
# Grover adaptive search, one group, then vmapped.


def _sample(u: Float[Array, ""], probs: Float[Array, " S"]) -> Int[Array, ""]:
    """One measurement from a uniform ``u`` in [0, 1): inverse-CDF sampling.

    One uniform number per draw instead of the ``S`` Gumbel numbers of
    ``jax.random.categorical`` (75x slower on the CPU).  The CDF is two-level --
    pick a block of ``2^(K - K//2)`` outcomes from the block sums, then an outcome
    inside it -- because a flat ``jnp.cumsum`` over ``S`` entries is 10x slower
    than a pass over the state on the CPU (XLA's reduce-window lowering), and it
    would be the largest cost of a search.  ``side="right"`` and the caps never
    return an outcome of probability zero (its CDF equals its predecessor's).
    ``probs`` need not be normalised.
    """
    size = probs.shape[-1]
    num_qubits = size.bit_length() - 1
    blocks = probs.reshape(2 ** (num_qubits // 2), -1)
    block_cdf = jnp.cumsum(jnp.sum(blocks, axis=-1))
    v = u * block_cdf[-1]
    i = jnp.searchsorted(block_cdf, v, side="right")
    # Rounding may put v at or past the end: take the last block with mass.
    i = jnp.minimum(i, jnp.argmax(block_cdf >= block_cdf[-1]))
    row = blocks[i]
    row_cdf = jnp.cumsum(row)
    # >= 0: a rounding below zero would pick the row's first entry even at p = 0.
    v_in = jnp.maximum(v - (block_cdf[i] - jnp.sum(row)), 0.0)
    j = jnp.searchsorted(row_cdf, v_in, side="right")
    j = jnp.minimum(j, jnp.argmax(row_cdf >= row_cdf[-1]))
    return (i * blocks.shape[-1] + j).astype(jnp.int32)


def _search_one(
    key: jax.Array, landscape: Float[Array, " S"], config: _Config
) -> _GasState:
    size = 2**config.num_qubits
    budget = jnp.int32(config.oracle_budget)
    ceiling = jnp.float32(math.sqrt(size))
    lam = jnp.float32(config.lam)
    plus = jnp.full((size,), size**-0.5, jnp.float32)
    # Statistic only: never enters the search's decisions below.
    optimum = jnp.min(landscape)
    # The initial measurement is the first round: with y = +inf and r = 0 it
    # measures |+>^K (a uniform configuration) and always "improves", so y becomes
    # its cost and m = 1.
    init = _GasState(
        key=key,
        threshold=jnp.float32(jnp.inf),
        best=jnp.int32(0),
        m=jnp.float32(1.0),
        oracle_calls=jnp.int32(0),
        lookups=jnp.int32(0),
        calls_to_optimum=jnp.int32(-1),
        lookups_to_optimum=jnp.int32(-1),
        amps=plus,
        left=jnp.int32(0),
        done=jnp.bool_(False),
    )

    def iterate(state: _GasState) -> _GasState:
        signs = threshold_signs(landscape, state.threshold)
        amps = _grover_step(signs * state.amps, config)
        if config.noise > 0:  # one depolarizing trajectory step per iteration
            noise_key = jax.random.fold_in(
                jax.random.fold_in(state.key, NOISE_STREAM), state.oracle_calls
            )
            amps = _depolarize(amps, noise_key, config)
        return state._replace(
            amps=amps,
            oracle_calls=state.oracle_calls + 1,
            left=state.left - 1,
        )

    def measure(state: _GasState) -> _GasState:
        # One random call per measurement (fold_in by its number): random-bit
        # generation dominates XLA compile time here.
        u_s, u_r = jax.random.uniform(
            jax.random.fold_in(state.key, state.lookups), (2,), jnp.float32
        )
        s = _sample(u_s, jnp.square(state.amps))
        cost = landscape[s]
        better = cost < state.threshold
        lookups = state.lookups + 1
        first_hit = better & (cost <= optimum) & (state.calls_to_optimum < 0)
        m = jnp.where(better, jnp.float32(1.0), jnp.minimum(lam * state.m, ceiling))
        # The next round: r uniform in {0, ..., ceil(m) - 1}, cut to the budget.
        top = jnp.ceil(m).astype(jnp.int32)
        r = jnp.minimum(jnp.floor(u_r * top).astype(jnp.int32), top - 1)
        r = jnp.minimum(r, budget - state.oracle_calls)
        done = (state.oracle_calls >= budget) | (lookups > config.max_rounds)
        return _GasState(
            key=state.key,
            threshold=jnp.where(better, cost, state.threshold),
            best=jnp.where(better, s, state.best),
            m=m,
            oracle_calls=state.oracle_calls,
            lookups=lookups,
            calls_to_optimum=jnp.where(
                first_hit, state.oracle_calls, state.calls_to_optimum
            ),
            lookups_to_optimum=jnp.where(first_hit, lookups, state.lookups_to_optimum),
            # A finished search keeps its last state: its probabilities are output.
            amps=jnp.where(done, state.amps, plus),
            left=r,
            done=done,
        )

    def body(state: _GasState) -> _GasState:
        # Under vmap both branches run and a select keeps one (as lax.cond would).
        return jax.tree.map(
            functools.partial(jnp.where, state.left > 0),
            iterate(state),
            measure(state),
        )

    return jax.lax.while_loop(lambda state: ~state.done, body, init)


def _search(key: jax.Array, landscapes: jax.Array, config: _Config) -> GroverSearch:
    keys = jax.random.split(key, landscapes.shape[0])
    state = jax.vmap(lambda k, c: _search_one(k, c, config))(keys, landscapes)
    probs = jnp.square(state.amps)
    return GroverSearch(
        index=state.best,
        oracle_calls=state.oracle_calls,
        calls_to_optimum=state.calls_to_optimum,
        lookups_to_optimum=state.lookups_to_optimum,
        lookups=state.lookups,
        rounds=state.lookups - 1,
        probs=probs / jnp.sum(probs, axis=-1, keepdims=True),
    )


def grover_search(
    key: jax.Array,
    landscapes: Float[Array, "G S"],
    *,
    max_rounds: int | None = None,
    lam: float = 6 / 5,
    oracle_budget: int | None = None,
    diffuser: str = "reflection",
    noise: float = 0.0,
) -> GroverSearch:
    """Grover adaptive search on every group, with its statistics.

    K is read from the landscapes' (static) width.  Jit with the keyword options
    static, e.g. ``jax.jit(grover_search, static_argnames=("oracle_budget",))``.

    Args:
        key: a ``jax.random`` key; group ``g`` uses ``jax.random.split(key, G)[g]``.
        landscapes: ``(G, S)`` costs, ``S = 2^K``.
        max_rounds: cap on GAS rounds (default ``oracle_budget``).
        lam: growth factor of the rotation-count scale ``m``, ``> 1``.
        oracle_budget: Grover iterations per group (default Durr-Hoyer,
            :func:`default_oracle_budget`).
        diffuser: ``"reflection"`` (default) or ``"gates"`` (TensorCircuit gates).
        noise: depolarizing probability per qubit after every Grover iteration
            (quantum trajectories, see :func:`qselax.circuits.depolarizing_codes`;
            each measurement is one shot of one trajectory).

    Returns:
        A :class:`GroverSearch` of ``(G,)`` arrays and ``(G, S)`` probabilities.

    Raises:
        ValueError: a setting out of range, or landscapes not ``(G, 2^K)``.

    Example:
        >>> land = jax.random.normal(jax.random.key(1), (4, 16))
        >>> out = grover_search(jax.random.key(0), land)
        >>> bool(jnp.all(out.index == jnp.argmin(land, axis=-1)))
        True
    """
    landscapes = _check_landscapes(landscapes)
    k = landscapes.shape[-1].bit_length() - 1
    config = _make_config(k, max_rounds, lam, oracle_budget, diffuser, noise)
    return _search(key, landscapes, config)


@solver_factory("grover")
def grover(
    k: int,
    *,
    max_rounds: int | None = None,
    lam: float = 6 / 5,
    oracle_budget: int | None = None,
    diffuser: str = "reflection",
    noise: float = 0.0,
) -> Solver:
    """Builds the Grover adaptive search solver (without ``k``: its
    :class:`~qselax.solvers.base.SolverSpec`).

    ``solve`` returns the best configuration found (``index``), the most probable
    configuration of the last round's state (``top1``; uniform, hence ``0``, when
    that round ran no iteration), that state's Born probabilities (``probs``) and
    the measurements made, the initial one included (``lookups``).  Oracle calls and
    the calls to the optimum are in :func:`grover_search`.

    Args:
        k: qubits per group, in ``[1, 20]``.
        max_rounds: cap on GAS rounds (default ``oracle_budget``).
        lam: growth factor of the rotation-count scale, ``> 1`` (default 6/5).
        oracle_budget: Grover iterations per group (default
            ``ceil(22.5 sqrt(2^K) + 1.4 K^2)``).
        diffuser: ``"reflection"`` (default) or ``"gates"`` (TensorCircuit gates).
        noise: depolarizing probability per qubit after every Grover iteration.

    Raises:
        ValueError: a setting out of range (named in the message).

    Example:
        >>> solver = grover(4)
        >>> solver.resources["oracle_budget"], solver.resources["qubits"]
        (113, 4)
    """
    config = _make_config(k, max_rounds, lam, oracle_budget, diffuser, noise)

    def solve(
        key: jax.Array, landscapes: jax.Array, current: jax.Array, oracle=None
    ) -> SolveResult:
        # GAS starts from a random configuration (a measured |+>^K).  Its threshold
        # oracle is the coherent cost test, built from the landscape.
        del current, oracle
        out = _search(key, _check_landscapes(landscapes, config.num_qubits), config)
        top1 = jnp.argmax(out.probs, axis=-1).astype(jnp.int32)
        return SolveResult(
            out.index,
            top1,
            out.probs,
            out.lookups,
            oracle_calls=out.oracle_calls,
            shots=out.lookups,
        )

    return Solver("grover", with_costs(solve), _resources(config))
