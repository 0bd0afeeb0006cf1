"""Entanglement of K-qubit pure states: reduced density matrices and entropies.

The paper's local methods exist to cut the qubits *and the entanglement* a selection
needs. These functions measure how much the solvers' states actually use: the von
Neumann entropy of the half-cut (qubits ``[0, K//2)`` against the rest) and of every
single qubit, per group and summarised per layer.

Bit order as everywhere in qselax: qubit 0 is the most significant bit of a basis
index (see :mod:`qselax.circuits`). Entropies are in **bits** (``log2``); a K-qubit
state has half-cut entropy at most ``K // 2`` and single-qubit entropies at most 1.

Shape vocabulary: ``K`` qubits, ``S = 2^K`` amplitudes, ``D`` a density matrix's
dimension, ``G`` groups. The state functions take one ``(S,)`` state and are pure and
jit-compatible; batch groups with ``jax.vmap`` (as :func:`entanglement_summary` does).

Example:
    >>> import jax.numpy as jnp
    >>> bell = jnp.array([1.0, 0.0, 0.0, 1.0]) / jnp.sqrt(2.0)
    >>> round(half_cut_entropy(bell, 2).item(), 6)
    1.0
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int

from qselax.bits import check_k

__all__ = [
    "entanglement_summary",
    "half_cut_entropy",
    "page_entropy",
    "reduced_density_matrix",
    "single_qubit_entropies",
    "von_neumann_entropy",
]


def _check_state(state, k: int) -> jax.Array:
    state = jnp.asarray(state)
    if state.shape != (2**k,):
        raise ValueError(
            f"state must have shape (2**k,) = ({2**k},), got {state.shape}; "
            "vmap over groups instead of passing a batch"
        )
    if not jnp.issubdtype(state.dtype, jnp.complexfloating):
        if not jnp.issubdtype(state.dtype, jnp.number):
            raise ValueError(f"state must be numeric, got dtype {state.dtype}")
        state = state.astype(jnp.result_type(complex))
    return state


def _check_keep(keep, k: int) -> tuple[int, ...]:
    try:
        keep = tuple(int(q) for q in keep)
    except TypeError as err:
        raise ValueError(
            f"keep must be a tuple of qubit numbers, got {keep!r}"
        ) from err
    if len(set(keep)) != len(keep) or any(not 0 <= q < k for q in keep):
        raise ValueError(f"keep must hold distinct qubits in [0, {k}), got {keep}")
    return keep


def reduced_density_matrix(
    state: Complex[Array, " S"], keep: tuple[int, ...], k: int
) -> Complex[Array, "D D"]:
    """Reduced density matrix of the qubits ``keep``, tracing out the others.

    Args:
        state: ``(2^K,)`` amplitudes of a pure state (real input is cast to complex).
        keep: distinct qubits to keep, in the order they index ``rho``: ``keep[0]``
            is the most significant bit of ``rho``'s row index. ``()`` gives the
            ``(1, 1)`` matrix ``[[<psi|psi>]]``.
        k: K, the number of qubits (static).

    Returns:
        ``(D, D)`` Hermitian matrix, ``D = 2^len(keep)``, trace ``<psi|psi>``.

    Raises:
        ValueError: a state of the wrong shape, or bad ``keep`` / ``k``.

    Example:
        >>> import jax.numpy as jnp
        >>> psi = jnp.array([1.0, 0.0, 0.0, 1.0]) / jnp.sqrt(2.0)
        >>> reduced_density_matrix(psi, (1,), 2).real.round(3).tolist()
        [[0.5, 0.0], [0.0, 0.5]]
    """
    k = check_k(k)
    state = _check_state(state, k)
    return _reduced_density_matrix(state, _check_keep(keep, k), k)


# Jitted cores: one compiled program per shape instead of many eager ops.
@functools.partial(jax.jit, static_argnames=("keep", "k"))
def _reduced_density_matrix(state, keep: tuple[int, ...], k: int):
    rest = tuple(q for q in range(k) if q not in keep)
    psi = jnp.transpose(state.reshape((2,) * k), keep + rest)
    psi = psi.reshape(2 ** len(keep), 2 ** len(rest))
    return psi @ jnp.conj(psi).T


def von_neumann_entropy(rho: Complex[Array, "*B D D"]) -> Float[Array, "*B"]:
    """``-tr(rho log2 rho)`` in bits, from the eigenvalues of ``rho``.

    Eigenvalues below 0 (round-off) are clipped to 0, and ``0 log 0 = 0``. ``rho`` is
    assumed Hermitian with unit trace (only its lower triangle is read).

    Args:
        rho: ``(*B, D, D)`` density matrices.

    Returns:
        ``(*B,)`` real entropies, between 0 and ``log2 D``.

    Raises:
        ValueError: ``rho`` not a (batch of) square matrix.

    Example:
        >>> import jax.numpy as jnp
        >>> von_neumann_entropy(jnp.eye(4) / 4).item()
        2.0
    """
    rho = jnp.asarray(rho)
    if rho.ndim < 2 or rho.shape[-1] != rho.shape[-2]:
        raise ValueError(f"rho must have shape (..., D, D), got {rho.shape}")
    if not jnp.issubdtype(rho.dtype, jnp.inexact):
        rho = rho.astype(jnp.result_type(float))
    return _von_neumann_entropy(rho)


@jax.jit
def _von_neumann_entropy(rho):
    if rho.shape[-1] == 1:  # a pure 1x1 state; skip the round-off of its trace
        return jnp.zeros(rho.shape[:-2], jnp.finfo(rho.dtype).dtype)
    p = jnp.clip(jnp.linalg.eigvalsh(rho), 0.0, None)
    positive = p > 0
    # where() on both sides keeps log2(0) out of the value and the gradient.
    # log2(1 / p) rather than -log2(p): a pure state then gives +0.0, not -0.0.
    info = jnp.log2(1.0 / jnp.where(positive, p, jnp.ones_like(p)))
    return jnp.sum(jnp.where(positive, p * info, jnp.zeros_like(p)), axis=-1)


def half_cut_entropy(state: Complex[Array, " S"], k: int) -> Float[Array, ""]:
    """Entanglement entropy between qubits ``[0, K//2)`` and ``[K//2, K)``, in bits.

    For a pure state both sides have the same entropy; the smaller side (the first
    ``K//2`` qubits) gives the smaller density matrix. ``K = 1`` gives 0.

    Args:
        state: ``(2^K,)`` amplitudes of a normalised pure state.
        k: K (static).

    Returns:
        Scalar entropy between 0 and ``K // 2``.

    Example:
        >>> import jax.numpy as jnp
        >>> ghz = jnp.zeros(8).at[0].set(1.0).at[7].set(1.0) / jnp.sqrt(2.0)
        >>> round(half_cut_entropy(ghz, 3).item(), 6)
        1.0
    """
    k = check_k(k)
    rho = reduced_density_matrix(state, tuple(range(k // 2)), k)
    return von_neumann_entropy(rho)


def single_qubit_entropies(state: Complex[Array, " S"], k: int) -> Float[Array, " K"]:
    """Entropy of every qubit's reduced state (its entanglement with the rest).

    Args:
        state: ``(2^K,)`` amplitudes of a normalised pure state.
        k: K (static).

    Returns:
        ``(K,)`` entropies in bits, each between 0 and 1.

    Example:
        >>> import jax.numpy as jnp
        >>> ghz = jnp.zeros(8).at[0].set(1.0).at[7].set(1.0) / jnp.sqrt(2.0)
        >>> single_qubit_entropies(ghz, 3).round(6).tolist()
        [1.0, 1.0, 1.0]
    """
    k = check_k(k)
    return _single_qubit_entropies(_check_state(state, k), k)


@functools.partial(jax.jit, static_argnames="k")
def _single_qubit_entropies(state, k: int):
    # Qubit q: view the state as (2^q, 2, 2^(K-q-1)) and contract the outer axes.
    rhos = []
    for q in range(k):
        psi = state.reshape(2**q, 2, 2 ** (k - q - 1))
        rhos.append(jnp.einsum("iaj,ibj->ab", psi, jnp.conj(psi)))
    return von_neumann_entropy(jnp.stack(rhos))


def page_entropy(k: int, m: int | None = None) -> float:
    """Page's mean entanglement entropy of Haar-random K-qubit states, in bits.

    For subsystems of dimensions ``a = 2^m <= b = 2^(K-m)``, ``E[S_A] =
    sum_{j=b+1}^{ab} 1/j - (a - 1) / (2 b)`` nats (Page 1993). The reference a
    solver's half-cut entropy is compared with.

    Args:
        k: K.
        m: qubits on one side (default ``K // 2``, the half cut).

    Example:
        >>> round(page_entropy(2), 4)  # one qubit of a random 2-qubit state
        0.4809
    """
    k = check_k(k)
    m = k // 2 if m is None else int(m)
    if not 0 <= m <= k:
        raise ValueError(f"m must be in [0, {k}], got {m}")
    a, b = sorted((2**m, 2 ** (k - m)))
    nats = math.fsum(1.0 / j for j in range(b + 1, a * b + 1)) - (a - 1) / (2 * b)
    return nats / math.log(2)


@functools.partial(jax.jit, static_argnames=("k", "chunk"))
def _per_group(states, k: int, chunk: int):
    def one(state):
        return half_cut_entropy(state, k), jnp.mean(single_qubit_entropies(state, k))

    return jax.lax.map(one, states, batch_size=chunk)


def entanglement_summary(
    states: Complex[Array, "G S"], layer: Int[Array, " G"], *, memory_mb: float = 256.0
) -> dict[int, dict[str, float]]:
    """Per-layer entanglement of the groups' final states (host-side report).

    Args:
        states: ``(G, 2^K)`` normalised state of every group.
        layer: ``(G,)`` integer layer (or any label) of every group.
        memory_mb: working-set budget that sets how many groups are processed at
            once (a ``lax.map`` chunk).

    Returns:
        ``{layer: {"groups", "half_cut_mean", "half_cut_max",
        "single_qubit_mean"}}`` with Python ints/floats, layers in increasing
        order: the mean and max half-cut entropy over the layer's groups and the
        mean single-qubit entropy over its groups and qubits (bits).

    Raises:
        ValueError: ``states`` not ``(G, 2^K)``, ``layer`` not ``(G,)`` integers.

    Example:
        >>> import numpy as np
        >>> product = np.zeros((2, 4), np.complex64); product[:, 0] = 1
        >>> bell = np.array([[1, 0, 0, 1]], np.complex64) / np.sqrt(2)
        >>> out = entanglement_summary(np.concatenate([product, bell]), [0, 0, 1])
        >>> out[0]["half_cut_max"], round(out[1]["half_cut_mean"], 5)
        (0.0, 1.0)
    """
    states = jnp.asarray(states)
    if states.ndim != 2:
        raise ValueError(f"states must have shape (G, 2^K), got {states.shape}")
    g, s = states.shape
    if s < 2 or s & (s - 1):
        raise ValueError(
            f"states: last axis must have size 2^K with K >= 1, got {states.shape}"
        )
    k = check_k(s.bit_length() - 1)
    labels = np.asarray(layer)
    if labels.shape != (g,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"layer must be ({g},) integers (one per group of states), got shape "
            f"{labels.shape} dtype {labels.dtype}"
        )
    if g == 0:
        return {}
    # Per group: the state, a half-cut rho and its eigen-workspace, K 2x2 rhos.
    per_group = 16 * (4 * s + 4 * 2 ** (2 * (k // 2)))
    chunk = int(max(1, min(g, memory_mb * 2**20 // per_group)))
    half, single = jax.device_get(_per_group(states, k, chunk))
    out = {}
    for value in np.unique(labels):
        sel = labels == value
        out[int(value)] = {
            "groups": int(sel.sum()),
            "half_cut_mean": float(np.mean(half[sel])),
            "half_cut_max": float(np.max(half[sel])),
            "single_qubit_mean": float(np.mean(single[sel])),
        }
    return out
