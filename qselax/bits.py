"""Bits: configuration indices, bit tables, group gather/scatter and the one K check.

A group's configuration ``s`` in ``0 .. 2^K - 1`` and its K bits are related by the
big-endian convention used everywhere in qselax (landscapes, circuits, Hamiltonians,
NK tables): bit 0 is the most significant, so ``s = sum_j b_j 2^(K-1-j)``.

Mask bits live in one flat ``(N,)`` vector; a batch of G groups is an ``(G, K)``
index array with a ``(G, K)`` validity mask (padding positions repeat a valid index
and are ignored on scatter).

Example:
    >>> import jax.numpy as jnp
    >>> bit_table(2).tolist()
    [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    >>> int(bit_index(jnp.array([1, 0, 1])))
    5
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Int, Shaped

__all__ = [
    "MAX_K",
    "bit_index",
    "bit_table",
    "check_k",
    "gather_bits",
    "index_bits",
    "scatter_bits",
]

# One limit for every K-bit object: a group's landscape and a K-qubit state hold
# 2^K entries per group, 2^24 complex64 amplitudes are 128 MiB for a single group.
MAX_K = 24


def check_k(k, name: str = "k", *, high: int = MAX_K) -> int:
    """``k`` as an int in ``[1, high]``, else a ``ValueError`` naming ``name``.

    Args:
        k: the number of bits (qubits) of a group.
        name: how the message names it.
        high: the largest allowed value (at most :data:`MAX_K`).

    Returns:
        ``int(k)``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"{name} must be an integer in [1, {high}], got {k!r}")
    if not 1 <= k <= high:
        raise ValueError(
            f"{name} must be an integer in [1, {high}], got {k}: a group holds 2^{name}"
            " entries"
        )
    return int(k)


def bit_table(k: int) -> np.ndarray:
    """``(2^K, K)`` float32 table; row ``s`` holds the bits of ``s`` (bit 0 = MSB)."""
    s = np.arange(2**k)[:, None]
    return ((s >> np.arange(k - 1, -1, -1)[None, :]) & 1).astype(np.float32)


def bit_index(bits: Shaped[ArrayLike, "*B K"]) -> Int[Array, "*B"]:
    """Configuration index of bit rows ``(..., K) -> (...)`` int32."""
    bits = jnp.asarray(bits)
    k = bits.shape[-1]
    weights = jnp.asarray(2 ** np.arange(k - 1, -1, -1), jnp.int32)
    weights = weights.reshape((1,) * (bits.ndim - 1) + (k,))
    return jnp.sum(bits.astype(jnp.int32) * weights, axis=-1)


def index_bits(index: Int[ArrayLike, "*B"], k: int) -> Int[Array, "*B K"]:
    """Inverse of :func:`bit_index`: ``(...,) -> (..., K)`` int32 bits."""
    index = jnp.asarray(index)
    shifts = jnp.asarray(np.arange(k - 1, -1, -1), jnp.int32)
    shifts = shifts.reshape((1,) * index.ndim + (k,))
    return (index[..., None].astype(jnp.int32) >> shifts) & 1


def gather_bits(
    flat: Shaped[ArrayLike, " N"],
    index: Int[ArrayLike, "*G K"],
    valid: Bool[ArrayLike, "*G K"],
) -> Shaped[Array, "*G K"]:
    """Current bits of groups ``(..., K)`` from ``flat (N,)``; 0 on padding."""
    flat = jnp.asarray(flat)
    return jnp.where(valid, flat[index], jnp.zeros((), flat.dtype))


def scatter_bits(
    flat: Shaped[ArrayLike, " N"],
    index: Int[ArrayLike, "*G K"],
    valid: Bool[ArrayLike, "*G K"],
    bits: Shaped[ArrayLike, "*G K"],
) -> Shaped[Array, " N"]:
    """Writes ``bits (G, K)`` into ``flat (N,)`` at the valid positions.

    Padded positions are routed to a scratch slot past the end, so they never race
    with the valid position they repeat.
    """
    flat = jnp.asarray(flat)
    n = flat.shape[0]
    target = jnp.where(valid, index, n).reshape(-1)
    padded = jnp.concatenate([flat, jnp.zeros((1,), flat.dtype)])
    return padded.at[target].set(jnp.asarray(bits).astype(flat.dtype).reshape(-1))[:n]
