"""NK landscapes over mask bits: evaluation, exact optima and group landscapes.

An NK landscape has N binary variables ``x`` (mask bits of N probe neurons) and M
subfunctions.  Subfunction ``i`` reads the K+1 variables ``neighbours[i]`` and looks
its *cost* up in ``tables[i]`` (length ``T = 2^(K+1)``); the total cost
``C(x) = sum_i tables[i, index_i(x)]`` is minimised (elsewhere cost = -fitness).  The
index follows :func:`qselax.groups.bit_index`: neighbour 0 is the most significant bit,
``index_i(x) = sum_j x[neighbours[i, j]] << (K - j)``.

Shape vocabulary: N variables, M subfunctions, K1 = K + 1 neighbours per subfunction,
T = 2^(K+1) table entries, G groups of Kg variables, S = 2^Kg group settings, B batch.

* :func:`nk_neighbours`, :func:`adjacent_neighbours`: who reads whom (NumPy, set-up).
* :func:`nk_value`: the cost of batches of masks.
* :func:`nk_exhaustive`: the exact optimum by enumerating all 2^N masks (N <= 24).
* :func:`nk_dp`: the exact optimum of an *adjacent* landscape by dynamic programming
  over a sliding K-bit window (Wright, Thompson & Zhang 2000, "The computational
  complexity of N-K fitness functions", IEEE TEC 4(4)), in O(N 2^(2K+1)) time.
* :func:`nk_group_landscapes`: the 2^Kg costs of each group's settings with all other
  bits held (the diagonal a K-qubit solver optimises).
* :func:`colour_groups`, :func:`window_groups`: groups that can be optimised together.
* :func:`nk_landscape`: shared-mask selection as a landscape of the one sweep.

Array functions are pure and ``jax.jit``-compatible; structural integers (``n``,
``circular``) must be static.  Shape errors raise ``ValueError`` at trace time.

Example:
    >>> import numpy as np
    >>> nb = nk_neighbours(4, 1)
    >>> tables = np.tile(np.array([[3.0, 1.0, 2.0, 0.0]], np.float32), (4, 1))
    >>> x, cost = nk_dp(tables)
    >>> x.tolist(), float(cost), float(nk_value(tables, nb, x))
    ([1, 1, 1, 1], 0.0, 0.0)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real, Shaped

from qselax.bits import MAX_K, bit_index, check_k, index_bits, scatter_bits
from qselax.landscapes import Landscape, Segment

__all__ = [
    "CONNECTIVITIES",
    "MAX_EXHAUSTIVE_N",
    "MAX_LANDSCAPE_ELEMENTS",
    "NKParams",
    "adjacent_neighbours",
    "colour_groups",
    "nk_dp",
    "nk_exhaustive",
    "nk_group_landscapes",
    "nk_landscape",
    "nk_neighbours",
    "nk_value",
    "window_groups",
]

CONNECTIVITIES = ("adjacent", "random")
MAX_EXHAUSTIVE_N = 24
MAX_LANDSCAPE_ELEMENTS = 50_000_000
_EXHAUSTIVE_CHUNK_BITS = 12


# --- structure (NumPy, set-up time) ------------------------------------------------


def nk_neighbours(
    n: int, k: int, connectivity: str = "adjacent", *, seed: int = 0
) -> np.ndarray:
    """Neighbourhoods of an NK landscape with M = N subfunctions.

    Args:
        n: number of variables N (and of subfunctions).
        k: epistasis K; every subfunction reads K + 1 distinct variables.
        connectivity: ``"adjacent"``: row ``i`` is ``(i, i+1, ..., i+K) mod N``
            (circular; what :func:`nk_dp` solves).  ``"random"``: row ``i`` is ``i``
            followed by K distinct other variables drawn uniformly without
            replacement from ``np.random.default_rng(seed)``, sorted ascending.
        seed: seed of the ``"random"`` draw (ignored for ``"adjacent"``).

    Returns:
        ``(N, K+1)`` int32 variable indices.

    Raises:
        ValueError: unknown connectivity, ``k < 0`` or ``k + 1 > n``.

    Example:
        >>> nk_neighbours(4, 1).tolist()
        [[0, 1], [1, 2], [2, 3], [3, 0]]
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(
            f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}"
        )
    n, k = int(n), int(k)
    if k < 0 or k + 1 > n:
        raise ValueError(f"need 0 <= k and k + 1 <= n, got n={n}, k={k}")
    if connectivity == "adjacent":
        return adjacent_neighbours(n, k, circular=True)
    rng = np.random.default_rng(seed)
    rows = np.empty((n, k + 1), np.int32)
    for i in range(n):
        # Draw from the n - 1 others, then skip over i.
        others = np.sort(rng.choice(n - 1, size=k, replace=False))
        rows[i, 0] = i
        rows[i, 1:] = others + (others >= i)
    return rows


def adjacent_neighbours(m: int, k: int, *, circular: bool = True) -> np.ndarray:
    """The neighbourhoods :func:`nk_dp` assumes for ``m`` subfunctions.

    Row ``i`` is ``(i, ..., i+K)``; modulo N = M if ``circular``, otherwise over
    N = M + K variables with no wrap.

    Returns:
        ``(M, K+1)`` int32 variable indices.

    Raises:
        ValueError: ``k < 0``, ``m < 1``, or ``circular`` with ``m < k + 1``.

    Example:
        >>> adjacent_neighbours(2, 1, circular=False).tolist()
        [[0, 1], [1, 2]]
    """
    m, k = int(m), int(k)
    if k < 0 or m < 1 or (circular and m < k + 1):
        raise ValueError(f"need k >= 0, m >= 1 (m >= k + 1 if circular), got {m}, {k}")
    rows = np.arange(m)[:, None] + np.arange(k + 1)[None, :]
    return (rows % m if circular else rows).astype(np.int32)


def window_groups(n: int, size: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous windows of ``size`` variables, circularly from ``offset``.

    The variables ``(offset + t) mod n``, ``t = 0 .. n-1``, are cut into
    ``G = ceil(n / size)`` consecutive windows; if ``n`` is not a multiple of
    ``size`` the last window is padded with its first index (``valid`` False).

    Returns:
        ``groups (G, size)`` int32 and ``valid (G, size)`` bool.

    Raises:
        ValueError: ``n < 1`` or ``size < 1``.

    Example:
        >>> g, v = window_groups(5, 2, offset=1)
        >>> g.tolist(), v[-1].tolist()
        ([[1, 2], [3, 4], [0, 0]], [True, False])
    """
    n, size = int(n), int(size)
    if n < 1 or size < 1:
        raise ValueError(f"need n >= 1 and size >= 1, got n={n}, size={size}")
    num = math.ceil(n / size)
    order = (offset + np.arange(n)) % n
    pos = np.arange(num * size).reshape(num, size)
    valid = pos < n
    first = pos[:, :1]  # each window's first position is always real
    groups = order[np.where(valid, pos, first)]
    return groups.astype(np.int32), valid


def colour_groups(
    groups: ArrayLike, valid: ArrayLike, neighbours: ArrayLike
) -> list[np.ndarray]:
    """Greedy colouring of the groups' interaction graph (NumPy, set-up time).

    Groups ``g`` and ``h`` interact if they share a valid variable or some
    subfunction reads a valid variable of each; then the cost change of setting one
    depends on the other.  Groups of one colour class are mutually non-interacting,
    so their landscapes, taken at the same ``x``, can all be optimised at once and
    exactly.  Groups are coloured in index order, each with the smallest colour
    none of its already coloured neighbours has.  Memory is O(G^2 + G (M + N)).

    Args:
        groups: ``(G, Kg)`` variable indices (padded entries are ignored).
        valid: ``(G, Kg)`` bool, False on padding.
        neighbours: ``(M, K+1)`` variable indices of the subfunctions.

    Returns:
        A list of int32 arrays of group indices (ascending), one per colour, that
        partition ``range(G)``.

    Example:
        >>> g, v = window_groups(8, 2)
        >>> [c.tolist() for c in colour_groups(g, v, nk_neighbours(8, 1))]
        [[0, 2], [1, 3]]
    """
    groups = np.asarray(groups, np.int64)
    valid = np.asarray(valid, bool)
    neighbours = np.asarray(neighbours, np.int64)
    if groups.ndim != 2 or valid.shape != groups.shape or neighbours.ndim != 2:
        raise ValueError(
            f"need groups (G, Kg), valid of the same shape and neighbours (M, K+1); "
            f"got {groups.shape}, {valid.shape}, {neighbours.shape}"
        )
    num_groups, m = groups.shape[0], neighbours.shape[0]
    n = int(max(groups.max(initial=-1), neighbours.max(initial=-1))) + 1
    member = np.zeros((num_groups, n), np.int64)  # group g holds variable v
    member[np.nonzero(valid)[0], groups[valid]] = 1
    reads = np.zeros((n, m), np.int64)  # subfunction i reads variable v
    reads[neighbours.reshape(-1), np.repeat(np.arange(m), neighbours.shape[1])] = 1
    touches = (member @ reads) > 0  # (G, M)
    t = touches.astype(np.int64)
    interact = ((t @ t.T) > 0) | ((member @ member.T) > 0)
    colour = np.full(num_groups, -1, np.int64)
    for g in range(num_groups):
        taken = set(colour[interact[g] & (colour >= 0)].tolist())
        colour[g] = next(c for c in range(num_groups + 1) if c not in taken)
    return [
        np.nonzero(colour == c)[0].astype(np.int32)
        for c in range(int(colour.max(initial=-1)) + 1)
    ]


# --- evaluation -------------------------------------------------------------------


def _as_tables(tables: ArrayLike) -> jax.Array:
    tables = jnp.asarray(tables)
    if not jnp.issubdtype(tables.dtype, jnp.floating):
        tables = tables.astype(jnp.float32)
    if tables.ndim != 2:
        raise ValueError(f"tables must be (M, 2^(K+1)), got shape {tables.shape}")
    return tables


def _check(tables: ArrayLike, neighbours: ArrayLike) -> tuple[jax.Array, jax.Array]:
    tables = _as_tables(tables)
    neighbours = jnp.asarray(neighbours)
    if neighbours.ndim != 2 or tables.shape != (
        neighbours.shape[0],
        2 ** neighbours.shape[1],
    ):
        raise ValueError(
            f"tables {tables.shape} must be (M, 2^(K+1)) for neighbours "
            f"(M, K+1) = {neighbours.shape}"
        )
    return tables, neighbours.astype(jnp.int32)


def nk_value(
    tables: Real[ArrayLike, "M T"],
    neighbours: Int[ArrayLike, "M K1"],
    x: Shaped[ArrayLike, "*B N"],
) -> Float[Array, "*B"]:
    """Total cost ``C(x) = sum_i tables[i, index_i(x)]`` of masks ``x``.

    Args:
        tables: ``(M, 2^(K+1))`` costs (integer tables are cast to float32).
        neighbours: ``(M, K+1)`` variable indices in ``[0, N)`` (not checked:
            out-of-range gathers clamp).
        x: ``(..., N)`` 0/1 masks (any int, bool or float dtype).

    Returns:
        ``(...)`` costs in the tables' float dtype.

    Raises:
        ValueError: shapes that do not fit together.

    Example:
        >>> import numpy as np
        >>> t, nb = np.array([[0.0, 1.0, 2.0, 3.0]]), np.array([[1, 0]])
        >>> float(nk_value(t, nb, np.array([0, 1])))
        2.0
    """
    tables, neighbours = _check(tables, neighbours)
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"x must be (..., N), got shape {x.shape}")
    batch, n = x.shape[:-1], x.shape[-1]

    def one(row: jax.Array) -> jax.Array:
        idx = bit_index(row[neighbours])  # (M,)
        return jnp.sum(jnp.take_along_axis(tables, idx[:, None], axis=1))

    return jax.vmap(one)(x.reshape(-1, n)).reshape(batch)


def nk_exhaustive(
    tables: Real[ArrayLike, "M T"], neighbours: Int[ArrayLike, "M K1"], n: int
) -> tuple[Int[Array, " N"], Float[Array, ""]]:
    """Exact optimum by enumerating all 2^N masks.

    Masks are enumerated in chunks of at most 2^12 (``lax.map``), keeping only each
    chunk's best, so memory stays O(2^12 N).  Mask ``s`` is ``index_bits(s, n)``
    (``x[0]`` the most significant bit); among equal costs the lowest ``s`` wins.

    Args:
        tables: ``(M, 2^(K+1))`` costs.
        neighbours: ``(M, K+1)`` variable indices in ``[0, n)``.
        n: number of variables N (static), at most :data:`MAX_EXHAUSTIVE_N`.

    Returns:
        ``x (N,)`` int32 and its cost (scalar).

    Raises:
        ValueError: ``n`` outside ``[1, 24]`` or mismatched shapes.

    Example:
        >>> import numpy as np
        >>> t, nb = np.array([[1.0, 0.0, 0.0, 1.0]]), np.array([[0, 1]])
        >>> x, c = nk_exhaustive(t, nb, 2)
        >>> x.tolist(), float(c)
        ([0, 1], 0.0)
    """
    n = int(n)
    if not 1 <= n <= MAX_EXHAUSTIVE_N:
        raise ValueError(f"n must be in [1, {MAX_EXHAUSTIVE_N}], got {n}")
    tables, neighbours = _check(tables, neighbours)
    chunk = 2 ** min(n, _EXHAUSTIVE_CHUNK_BITS)

    def best_of_chunk(c: jax.Array) -> tuple[jax.Array, jax.Array]:
        idx = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        costs = nk_value(tables, neighbours, index_bits(idx, n))
        j = jnp.argmin(costs)  # first minimum: the lowest index
        return costs[j], idx[j]

    mins, args = jax.lax.map(best_of_chunk, jnp.arange(2**n // chunk, dtype=jnp.int32))
    b = jnp.argmin(mins)
    return index_bits(args[b], n), mins[b]


# --- dynamic programming ----------------------------------------------------------


def nk_dp(
    tables: Real[ArrayLike, "M T"], *, circular: bool = True
) -> tuple[Int[Array, " N"], Float[Array, ""]]:
    """Exact optimum of an adjacent NK landscape by dynamic programming.

    Subfunction ``i`` reads ``(i, ..., i+K)`` (:func:`adjacent_neighbours`): modulo
    N = M if ``circular``, otherwise over N = M + K variables.  A forward
    ``lax.scan`` over subfunctions carries, for every K-bit window
    ``w = (x_i, ..., x_{i+K-1})`` (an int, ``x_i`` most significant), the least cost
    of the subfunctions before ``i``.  Step ``i`` appends ``x_{i+K}`` as the least
    significant bit, adds ``tables[i, 2 w + x_{i+K}]``, minimises over the dropped
    bit ``x_i`` and keeps it as a back-pointer; a reverse scan then recovers ``x``.

    Non-circular: every window starts at cost 0 and the best final window wins,
    O(N 2^(K+1)) time.  Circular: the first K bits are fixed to each of their 2^K
    settings (``vmap``) and the wrapped bits (``i+K >= N``) forced to them, O(N
    2^(2K+1)) time; the forward pass runs once more for the best setting to get
    back-pointers, so memory stays O(2^K (N + 2^K)).  Ties are broken towards 0 bits
    and lower first-K settings; the returned cost is ``nk_value`` of the returned
    ``x``.

    Args:
        tables: ``(M, 2^(K+1))`` costs; K is inferred from the width.
        circular: whether the chain wraps (static).

    Returns:
        ``x (N,)`` int32 and its cost (scalar, the tables' float dtype).

    Raises:
        ValueError: a width that is not a power of two >= 2, or ``circular`` with
            ``M < K + 1``.

    Example:
        >>> import numpy as np
        >>> x, c = nk_dp(np.array([[0.0, 2.0, 1.0, 3.0]]), circular=False)
        >>> x.tolist(), float(c)
        ([0, 0], 0.0)
    """
    tables = _as_tables(tables)
    m, width = tables.shape
    if width < 2 or width & (width - 1):
        raise ValueError(f"table width must be a power of two >= 2, got {width}")
    k = width.bit_length() - 2
    if m < 1 or (circular and m < k + 1):
        raise ValueError(f"circular NK with K={k} needs M >= {k + 1}, got M={m}")
    w = 2**k
    n = m if circular else m + k
    full = np.arange(2 * w).reshape(2, w)  # [dropped bit, new window] -> index
    prev = jnp.asarray(full >> 1)  # the old window of each index
    new_bit = jnp.asarray(full & 1)
    # Step i's new bit is x_{i+K}; if i + K >= N it is first-window bit j = i+K-N.
    j = np.arange(m) + k - n
    forced = jnp.asarray(j >= 0)
    shift = jnp.asarray(np.where(j >= 0, k - 1 - j, 0), jnp.int32)
    full = jnp.asarray(full)
    inf = jnp.full((), jnp.inf, tables.dtype)

    def forward(start: jax.Array) -> tuple[jax.Array, jax.Array]:
        if circular:
            f0 = jnp.where(jnp.arange(w) == start, jnp.zeros((), tables.dtype), inf)
        else:
            f0 = jnp.zeros((w,), tables.dtype)

        def step(f, xs):
            row, force, sh = xs
            cand = f[prev] + row[full]  # (2, W)
            want = (start >> sh) & 1
            cand = jnp.where(force & (new_bit != want), inf, cand)
            return jnp.min(cand, axis=0), jnp.argmin(cand, axis=0).astype(jnp.int8)

        return jax.lax.scan(step, f0, (tables, forced, shift))

    if circular:
        starts = jnp.arange(w, dtype=jnp.int32)
        # Cost-only pass over all first-window settings; back-pointers only for
        # the best one keep memory O(2^K N) instead of O(4^K N).
        costs = jax.vmap(lambda s: forward(s)[0][s])(starts)
        end = starts[jnp.argmin(costs)]
        _, back = forward(end)
    else:
        f, back = forward(jnp.zeros((), jnp.int32))
        end = jnp.argmin(f).astype(jnp.int32)

    def unwind(wnd, bp):
        d = bp[wnd].astype(jnp.int32)  # the dropped bit x_i
        return (d * w + wnd) >> 1, d

    _, dropped = jax.lax.scan(unwind, end, back, reverse=True)
    x = dropped if circular else jnp.concatenate([dropped, index_bits(end, k)])
    return x, nk_value(tables, adjacent_neighbours(m, k, circular=circular), x)


# --- group landscapes -------------------------------------------------------------


def nk_group_landscapes(
    tables: Real[ArrayLike, "M T"],
    neighbours: Int[ArrayLike, "M K1"],
    x: Shaped[ArrayLike, " N"],
    groups: Int[ArrayLike, "G Kg"],
    valid: Bool[ArrayLike, "G Kg"],
) -> Float[Array, "G S"]:
    """The total cost of every setting of each group, other bits held at ``x``.

    Entry ``[g, c]`` is ``C(x')`` where ``x'`` equals ``x`` except
    ``x'[groups[g, j]] = bit j of c`` (bit 0 most significant) for the valid ``j``.
    Padded entries are ignored, so configurations that differ only in padded bits
    repeat each other.  Valid entries of one group must be distinct.

    Builds all ``(G, 2^Kg, N)`` candidate masks and evaluates them with
    :func:`nk_value`: fine for N up to a few hundred and Kg <= 10; more than
    :data:`MAX_LANDSCAPE_ELEMENTS` mask elements is a ``ValueError``.

    Args:
        tables: ``(M, 2^(K+1))`` costs.
        neighbours: ``(M, K+1)`` variable indices.
        x: ``(N,)`` current mask.
        groups: ``(G, Kg)`` int variable indices, padded.
        valid: ``(G, Kg)`` bool, False on padding.

    Returns:
        ``(G, 2^Kg)`` costs.

    Raises:
        ValueError: mismatched shapes or too many mask elements.

    Example:
        >>> import numpy as np
        >>> t, nb = np.array([[0.0, 1.0, 2.0, 3.0]]), np.array([[0, 1]])
        >>> g, v = np.array([[1, 1]]), np.array([[True, False]])
        >>> nk_group_landscapes(t, nb, np.array([0, 0]), g, v).tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    tables, neighbours = _check(tables, neighbours)
    x = jnp.asarray(x)
    groups = jnp.asarray(groups)
    valid = jnp.asarray(valid)
    if x.ndim != 1 or groups.ndim != 2 or valid.shape != groups.shape:
        raise ValueError(
            f"need x (N,), groups (G, Kg) and valid of the same shape; got "
            f"{x.shape}, {groups.shape}, {valid.shape}"
        )
    (n,), (num_groups, kg) = x.shape, groups.shape
    s = 2**kg
    if num_groups * s * n > MAX_LANDSCAPE_ELEMENTS:
        raise ValueError(
            f"G * 2^Kg * N = {num_groups * s * n} mask elements exceeds "
            f"{MAX_LANDSCAPE_ELEMENTS}"
        )
    configs = index_bits(jnp.arange(s, dtype=jnp.int32), kg)

    def one(index: jax.Array, ok: jax.Array) -> jax.Array:
        # scatter_bits routes padded entries to a scratch slot, so they change
        # nothing.
        write = jax.vmap(lambda c: scatter_bits(x, index.astype(jnp.int32), ok, c))
        return nk_value(tables, neighbours, write(configs))

    return jax.vmap(one)(groups, valid.astype(bool))


# --- the selection landscape ------------------------------------------------------


class NKParams(NamedTuple):
    """The data of :func:`nk_landscape`: ``tables (M, 2^(K+1))`` costs and the
    ``neighbours (M, K+1)`` int32 wiring."""

    tables: jax.Array
    neighbours: jax.Array


def nk_landscape(neighbours: ArrayLike, n: int, size: int) -> Landscape:
    """NK shared-mask selection as a :class:`qselax.landscapes.Landscape`.

    The N bits are cut into windows of ``size`` variables (:func:`window_groups`)
    at offsets 0 and ``size // 2``; each offset's windows are split into colour
    classes of non-interacting groups (:func:`colour_groups`).  The one segment
    holds every class, padded to the widest class ``W``, with ``block = W``: a
    sequential sweep solves one class per block, all its windows at once and
    exactly (:func:`nk_group_landscapes` read off the tables), and the line search
    keeps every improving window, since their gains add up.

    ``params`` is an :class:`NKParams`; ``total`` is :func:`nk_value`.

    Args:
        neighbours: ``(M, K+1)`` the wiring (NumPy, read at set-up).
        n: variables N.
        size: bits (qubits) per window.

    Raises:
        ValueError: ``size`` outside ``[1, min(N, 24)]``.
    """
    neighbours = np.asarray(neighbours)
    n = int(n)
    check_k(size, "group_size", high=min(n, MAX_K))
    classes = []
    for offset in (0, size // 2):
        groups, valid = window_groups(n, size, offset)
        for members in colour_groups(groups, valid, neighbours):
            classes.append((groups[members], valid[members]))
    width = max(len(g) for g, _ in classes)
    index = np.zeros((len(classes), width, size), np.int32)
    valid = np.zeros((len(classes), width, size), bool)
    for c, (g, v) in enumerate(classes):
        index[c, : len(g)] = g
        valid[c, : len(g)] = v
    arrays = {"index": index.reshape(-1, size), "valid": valid.reshape(-1, size)}
    segment = Segment("windows", arrays, width, block=width)

    def prepare(params: NKParams, flat):
        return None

    def costs(params: NKParams, flat, ctx, segment: int, arrays, configs=None):
        return nk_group_landscapes(
            params.tables, params.neighbours, flat, arrays["index"], arrays["valid"]
        )

    def total(params: NKParams, flat):
        return nk_value(params.tables, params.neighbours, flat)

    return Landscape(size, (segment,), prepare, costs, total)
