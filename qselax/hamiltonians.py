"""Landscapes as Hamiltonians: the Walsh (Z-string) expansion and a QUBO surrogate.

A landscape ``C(s)``, ``s = 0 .. 2^K - 1``, is the diagonal of a group's problem
Hamiltonian H_C. Hardware needs H_C as Pauli operators: QAOA's phase separator
``exp(-i gamma H_C)`` as gates, an annealer as an Ising/QUBO model. Every diagonal
operator on K qubits is *exactly* a sum of Z-strings,

    C(s) = sum_T c_T prod_{k in T} z_k(s),

the Walsh (Fourier) expansion of a pseudo-Boolean function, with 2^K coefficients.

Conventions
-----------
* Bits: ``x_k(s)`` is bit ``k`` of ``s`` with bit 0 the **most significant**, as in
  :func:`qselax.bits.bit_table` and :mod:`qselax.circuits`.
* Spins: ``z_k = (-1)^{x_k} = 1 - 2 x_k``, the eigenvalue of Pauli Z on qubit ``k``:
  ``x_k = 0`` (``|0>``, mask bit off) is ``z_k = +1``; ``x_k = 1`` is ``z_k = -1``.
* Terms: a subset ``T`` of qubits is the bitmask index ``t = sum_{k in T} 2^(K-1-k)``
  (same MSB convention), so ``c[..., 0]`` is the constant (the landscape's mean),
  ``c[..., 2^(K-1-i)]`` the field on qubit ``i``, and so on; see :func:`term_index`.
* The coefficient of a term is ``c_T = 2^-K sum_s C(s) W_T(s)`` with the Walsh
  function ``W_T(s) = (-1)^popcount(s & t)``. The ``W_T`` are orthogonal, which makes
  truncating the expansion the least-squares fit of its span (:func:`fit_qubo`).

Shape vocabulary: ``K`` qubits, ``S = 2^K`` configurations, ``*G`` any leading
(group) axes. Every array function is pure, jit-compatible and batched over the
leading axes (and so also works under ``jax.vmap``); :func:`to_ising` and
:func:`ising_phase_gates` are host-side exports.

Example:
    >>> import jax.numpy as jnp
    >>> c = walsh_coefficients(jnp.array([0.0, 1.0, 1.0, 4.0]))  # K = 2
    >>> c.tolist()  # constant, z_1, z_0, z_0 z_1
    [1.5, -1.0, -1.0, 0.5]
    >>> walsh_landscape(c).tolist()
    [0.0, 1.0, 1.0, 4.0]
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from qselax.bits import MAX_K, bit_table, check_k

__all__ = [
    "QuboFit",
    "fit_qubo",
    "ising_gate_counts",
    "ising_landscape",
    "ising_phase_gates",
    "qubo_from_ising",
    "term_index",
    "term_orders",
    "term_qubits",
    "to_ising",
    "walsh_coefficients",
    "walsh_landscape",
]

# ---------------------------------------------------------------------------
# Term bookkeeping (NumPy, static).


def term_index(qubits, k: int) -> int:
    """Bitmask index ``t`` of the Z-string on ``qubits`` (qubit 0 = MSB).

    Args:
        qubits: distinct qubit numbers in ``[0, K)``; ``()`` is the constant term.
        k: K, the number of qubits.

    Returns:
        ``sum_{q in qubits} 2^(K-1-q)``.

    Example:
        >>> term_index((0,), 3), term_index((1, 2), 3), term_index((), 3)
        (4, 3, 0)
    """
    k = check_k(k)
    qubits = tuple(int(q) for q in qubits)
    if len(set(qubits)) != len(qubits) or any(not 0 <= q < k for q in qubits):
        raise ValueError(f"qubits must be distinct and in [0, {k}), got {qubits}")
    return sum(1 << (k - 1 - q) for q in qubits)


def term_qubits(t: int, k: int) -> tuple[int, ...]:
    """Sorted qubits of term ``t``, the inverse of :func:`term_index`.

    Example:
        >>> term_qubits(3, 3), term_qubits(5, 3)
        ((1, 2), (0, 2))
    """
    k = check_k(k)
    if not 0 <= int(t) < 2**k:
        raise ValueError(f"t must be in [0, 2^{k}), got {t}")
    return tuple(q for q in range(k) if (int(t) >> (k - 1 - q)) & 1)


def term_orders(k: int) -> np.ndarray:
    """``(2^K,)`` int32: the order ``|T|`` (popcount) of every term index.

    Example:
        >>> term_orders(2).tolist()
        [0, 1, 1, 2]
    """
    k = check_k(k)
    t = np.arange(2**k)
    return ((t[:, None] >> np.arange(k)[None, :]) & 1).sum(axis=1).astype(np.int32)


def _field_indices(k: int) -> np.ndarray:
    """``(K,)`` term index of ``z_i``."""
    return (1 << (k - 1 - np.arange(k))).astype(np.int32)


def _pair_indices(k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(K, K)`` term index of ``z_i z_j`` and the strictly-upper-triangle mask."""
    f = _field_indices(k)
    upper = np.triu(np.ones((k, k), bool), 1)
    return np.where(upper, f[:, None] + f[None, :], 0).astype(np.int32), upper


# ---------------------------------------------------------------------------
# Fast Walsh-Hadamard transform.


def _check_table(x, name: str) -> tuple[jax.Array, int]:
    """A ``(*G, 2^K)`` real array as a float array, and its K."""
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"{name} must have a last axis of size 2^K, got a scalar")
    s = x.shape[-1]
    if s < 2 or s & (s - 1):
        raise ValueError(
            f"{name}: last axis must have size S = 2^K with K >= 1, got shape {x.shape}"
        )
    k = s.bit_length() - 1
    if k > MAX_K:
        raise ValueError(f"{name}: K = {k} is over the limit of {MAX_K} qubits")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x, k


def _lift(a, ndim: int) -> jax.Array:
    """``a`` with leading unit axes up to ``ndim`` (explicit, for strict rank rules)."""
    a = jnp.asarray(a)
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


@functools.partial(jax.jit, static_argnames="k")
def _fwht(x: jax.Array, k: int) -> jax.Array:
    """Unnormalised Walsh-Hadamard transform along the last axis.

    ``y[t] = sum_s (-1)^popcount(s & t) x[s]``: K butterfly stages, stage ``i``
    combining the entries that differ in bit ``i`` (MSB first). The matrix is
    symmetric and squares to ``S * I``, so the same routine is both directions.
    """
    lead, s = x.shape[:-1], x.shape[-1]
    n = int(np.prod(lead, dtype=np.int64))
    y = x.reshape(n, s)
    for i in range(k):
        y = y.reshape(n, 2**i, 2, s >> (i + 1))
        a, b = y[:, :, 0], y[:, :, 1]
        y = jnp.stack([a + b, a - b], axis=2)
    return y.reshape(*lead, s)


def walsh_coefficients(landscapes: Float[Array, "*G S"]) -> Float[Array, "*G S"]:
    """Exact Z-string (Walsh) expansion of landscapes.

    ``C(s) = sum_t c[t] prod_{k in T(t)} z_k(s)`` with ``z_k = 1 - 2 x_k`` and term
    ``t`` the bitmask of ``T`` (qubit 0 = MSB), computed by a fast Walsh-Hadamard
    transform (``K`` butterfly stages, ``O(S K)`` per landscape).

    Args:
        landscapes: ``(*G, S)`` real costs, ``S = 2^K``. Integers are cast to the
            default float dtype; other float dtypes are kept.

    Returns:
        ``(*G, S)`` coefficients ``c_T = 2^-K sum_s C(s) (-1)^popcount(s & t)``;
        ``c[..., 0]`` is the mean of each landscape.

    Raises:
        ValueError: a last axis that is not a power of two, or complex input.

    Example:
        >>> import jax.numpy as jnp
        >>> from qselax.bits import bit_table
        >>> x = bit_table(3)  # (8, 3)
        >>> c = walsh_coefficients(jnp.asarray(x[:, 0]))  # C = x_0 = (1 - z_0) / 2
        >>> c[0].item(), c[term_index((0,), 3)].item()
        (0.5, -0.5)
    """
    x, k = _check_table(landscapes, "landscapes")
    return _fwht(x, k) * jnp.asarray(2.0**-k, x.dtype)


def walsh_landscape(coeffs: Float[Array, "*G S"]) -> Float[Array, "*G S"]:
    """The landscapes of Walsh coefficients: the inverse of :func:`walsh_coefficients`.

    Args:
        coeffs: ``(*G, S)`` Z-string coefficients, term ``t`` a bitmask (qubit 0 =
            MSB).

    Returns:
        ``(*G, S)`` values ``C(s) = sum_t c[t] (-1)^popcount(s & t)``.

    Example:
        >>> import jax.numpy as jnp
        >>> walsh_landscape(jnp.array([0.0, 0.0, 1.0, 0.0])).tolist()  # z_0
        [1.0, 1.0, -1.0, -1.0]
    """
    c, k = _check_table(coeffs, "coeffs")
    return _fwht(c, k)


# ---------------------------------------------------------------------------
# Ising export.


def to_ising(coeffs, k: int, tol: float = 0.0) -> dict:
    """One group's Walsh coefficients as a plain Ising dictionary (host side).

    The model is

        H(z) = offset + sum_i h_i z_i + sum_{i<j} J_ij z_i z_j
               + sum_{|T|>=3} c_T prod_{k in T} z_k,

    with spins ``z_i = 1 - 2 x_i`` in {+1, -1} (the Pauli-Z eigenvalue; ``z = +1`` is
    ``x = 0``, mask bit off) and ``H(z(s)) = C(s)``, the cost to minimise. The signs
    are those of D-Wave's ``dimod`` SPIN models, ``E(s) = sum h s + sum J s s +
    offset`` (the physics form ``-sum J s s - sum h s`` in the paper has the opposite
    sign). Note dimod's BINARY<->SPIN map is ``x = (s + 1) / 2``, i.e. ``s = -z``:
    to hand this model to dimod with that map, negate ``h`` and every odd-order
    ``higher`` term.

    Args:
        coeffs: ``(S,)`` coefficients of one group (:func:`walsh_coefficients`); must
            be concrete (not traced).
        k: K, with ``S = 2^K``.
        tol: terms with ``|c_T| <= tol`` are dropped (the offset is always kept).

    Returns:
        ``{"offset": float, "h": {i: float}, "J": {(i, j): float},
        "higher": {(i, j, l, ...): float}}`` with sorted qubit tuples, Python types.

    Raises:
        ValueError: wrong shape, negative tol, or non-finite coefficients.

    Example:
        >>> import jax.numpy as jnp
        >>> ising = to_ising(walsh_coefficients(jnp.array([0.0, 1.0, 1.0, 4.0])), 2)
        >>> ising["offset"], ising["h"], ising["J"], ising["higher"]
        (1.5, {0: -1.0, 1: -1.0}, {(0, 1): 0.5}, {})
    """
    k = check_k(k)
    c = np.asarray(coeffs, dtype=np.float64)
    if c.shape != (2**k,):
        raise ValueError(
            f"coeffs must have shape (2^k,) = ({2**k},), got {c.shape}; export one "
            "group at a time"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError("coeffs must be finite; the landscape holds NaN or inf")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    out = {"offset": float(c[0]), "h": {}, "J": {}, "higher": {}}
    terms = [(term_qubits(int(t), k), float(c[t])) for t in np.flatnonzero(c)]
    # Fields, then couplings, then higher terms, each in qubit order.
    for qubits, value in sorted(terms, key=lambda item: (len(item[0]), item[0])):
        if not qubits or abs(value) <= tol:
            continue
        if len(qubits) == 1:
            out["h"][qubits[0]] = value
        elif len(qubits) == 2:
            out["J"][qubits] = value
        else:
            out["higher"][qubits] = value
    return out


def _check_ising(offset, h, j):
    """``(offset, h, j, K)`` as arrays of one dtype; ``ValueError`` on bad shapes."""
    h = jnp.asarray(h)
    k = check_k(h.shape[-1] if h.ndim else 0, "h.shape[-1]")
    j = jnp.asarray(j, h.dtype)
    offset = jnp.asarray(offset, h.dtype)
    if j.shape != h.shape + (k,) or offset.shape != h.shape[:-1]:
        raise ValueError(
            "offset, h, j must have shapes (*G,), (*G, K), (*G, K, K); got "
            f"{offset.shape}, {h.shape}, {j.shape}"
        )
    return offset, h, j, k


def ising_landscape(
    offset: Float[Array, "*G"], h: Float[Array, "*G K"], j: Float[Array, "*G K K"]
) -> Float[Array, "*G S"]:
    """Values of a quadratic Ising model on all ``2^K`` configurations.

    ``E(s) = offset + sum_i h_i z_i + sum_{i,j} J_ij z_i z_j`` summed over *every*
    entry of ``J`` (so pass a strictly upper-triangular ``J`` for ``sum_{i<j}``; a
    diagonal entry adds the constant ``J_ii`` since ``z_i^2 = 1``).

    Args:
        offset: ``(*G,)`` constants.
        h: ``(*G, K)`` fields.
        j: ``(*G, K, K)`` couplings.

    Returns:
        ``(*G, 2^K)`` energies, configuration ``s`` with qubit 0 the MSB.

    Example:
        >>> import jax.numpy as jnp
        >>> ising_landscape(jnp.array(0.0), jnp.array([1.0, 0.0]),
        ...                 jnp.array([[0.0, 2.0], [0.0, 0.0]])).tolist()
        [3.0, -1.0, -3.0, 1.0]
    """
    offset, h, j, k = _check_ising(offset, h, j)
    z = jnp.asarray(1.0 - 2.0 * bit_table(k), h.dtype)  # (S, K)
    lin = jnp.einsum("sk,...k->...s", z, h)
    quad = jnp.einsum("sk,...kl,sl->...s", z, j, z)
    return offset[..., None] + lin + quad


# ---------------------------------------------------------------------------
# Quadratic surrogate.


class QuboFit(NamedTuple):
    """The best quadratic (<= 2-body) surrogate of landscapes and how good it is.

    Attributes:
        offset: ``(*G,)`` constant ``c_{}``.
        h: ``(*G, K)`` fields ``h_i = c_{i}``.
        j: ``(*G, K, K)`` couplings ``J_ij = c_{ij}`` for ``i < j``, zero elsewhere.
        landscape: ``(*G, S)`` surrogate values ``offset + h.z + sum_{i<j} J z z``.
        rms_error: ``(*G,)`` root-mean-square error over all configurations.
        max_abs_error: ``(*G,)`` largest absolute error.
        r2: ``(*G,)`` coefficient of determination ``1 - SSE / SST`` (1 for a
            constant landscape, which is fitted exactly).
        ground_state_kept: ``(*G,)`` bool, the surrogate's argmin is a ground
            state of the true landscape (robust to degenerate ground states, e.g.
            of padded groups whose dummy bits do not matter).
        regret: ``(*G,)`` ``C(argmin surrogate) - min C`` (0 where kept).
    """

    offset: Float[Array, "*G"]
    h: Float[Array, "*G K"]
    j: Float[Array, "*G K K"]
    landscape: Float[Array, "*G S"]
    rms_error: Float[Array, "*G"]
    max_abs_error: Float[Array, "*G"]
    r2: Float[Array, "*G"]
    ground_state_kept: Bool[Array, "*G"]
    regret: Float[Array, "*G"]


def fit_qubo(landscapes: Float[Array, "*G S"]) -> QuboFit:
    """Least-squares quadratic (QUBO / 2-local Ising) surrogate of landscapes.

    Why truncation is the least-squares fit: stack the Walsh functions as the
    columns of ``W`` (``S x S``, ``W^T W = S I``). The quadratic models are the span
    of the columns with ``|T| <= 2`` (``1, z_i, z_i z_j``; the 0/1 monomials
    ``1, x_i, x_i x_j`` span the same space, as ``x = (1 - z) / 2``). The normal
    equations of that sub-design are ``S I beta = W_2^T C = S c_2``, so
    ``beta = c_2``: the best fit keeps the expansion's terms up to order 2 and its
    squared error is ``S sum_{|T|>2} c_T^2`` (Parseval). The tests check this
    against ``np.linalg.lstsq``.

    Args:
        landscapes: ``(*G, S)`` real costs, ``S = 2^K``.

    Returns:
        A :class:`QuboFit` with Ising parameters (``z`` spins, see :func:`to_ising`)
        and error statistics; :func:`qubo_from_ising` turns it into a 0/1 QUBO.

    Example:
        >>> import jax.numpy as jnp
        >>> fit = fit_qubo(jnp.array([0.0, 1.0, 1.0, 4.0]))  # K = 2: exact
        >>> fit.offset.item(), fit.h.tolist(), fit.j.tolist(), fit.r2.item()
        (1.5, [-1.0, -1.0], [[0.0, 0.5], [0.0, 0.0]], 1.0)
    """
    x, k = _check_table(landscapes, "landscapes")
    return _fit_qubo(x, k)


@functools.partial(jax.jit, static_argnames="k")
def _fit_qubo(x: jax.Array, k: int) -> QuboFit:
    c = walsh_coefficients(x)
    keep = _lift(term_orders(k) <= 2, c.ndim)
    surrogate = walsh_landscape(jnp.where(keep, c, jnp.zeros_like(c)))
    pairs, upper = _pair_indices(k)
    h = c[..., _field_indices(k)]
    j = jnp.where(_lift(upper, c.ndim + 1), c[..., pairs], jnp.zeros((), c.dtype))
    err = surrogate - x
    sse = jnp.sum(jnp.square(err), axis=-1)
    sst = jnp.sum(jnp.square(x - c[..., :1]), axis=-1)
    positive = sst > 0
    r2 = jnp.where(positive, 1.0 - sse / jnp.where(positive, sst, 1.0), 1.0)
    chosen = jnp.argmin(surrogate, axis=-1)
    value = jnp.take_along_axis(x, chosen[..., None], axis=-1)[..., 0]
    best = jnp.min(x, axis=-1)
    return QuboFit(
        offset=c[..., 0],
        h=h,
        j=j,
        landscape=surrogate,
        rms_error=jnp.sqrt(sse / x.shape[-1]),
        max_abs_error=jnp.max(jnp.abs(err), axis=-1),
        r2=r2.astype(x.dtype),
        ground_state_kept=value <= best,
        regret=value - best,
    )


def qubo_from_ising(
    offset: Float[Array, "*G"], h: Float[Array, "*G K"], j: Float[Array, "*G K K"]
) -> tuple[Float[Array, "*G K K"], Float[Array, "*G"]]:
    """The 0/1 QUBO of a quadratic Ising model: ``E = const + x^T Q x``.

    With ``z_i = 1 - 2 x_i`` and ``x_i^2 = x_i``: writing ``W = J + J^T`` without its
    diagonal, ``const = offset + sum_i h_i + sum_i J_ii + sum_{i<j} W_ij``,
    ``Q_ii = -2 h_i - 2 sum_{j != i} W_ij`` and ``Q_ij = 4 W_ij`` for ``i < j``.
    ``J`` is read as in :func:`ising_landscape` (every entry counts).

    Args:
        offset: ``(*G,)`` constants.
        h: ``(*G, K)`` fields.
        j: ``(*G, K, K)`` couplings (e.g. :attr:`QuboFit.j`).

    Returns:
        ``(Q, const)``: ``(*G, K, K)`` upper-triangular QUBO matrix (linear terms on
        the diagonal) and ``(*G,)`` constant, so that for every bit vector ``x``
        ``const + x^T Q x`` equals the Ising energy.

    Example:
        >>> import jax.numpy as jnp
        >>> fit = fit_qubo(jnp.array([0.0, 1.0, 1.0, 4.0]))
        >>> q, const = qubo_from_ising(fit.offset, fit.h, fit.j)
        >>> q.tolist(), const.item()  # C = x_0 + x_1 + 2 x_0 x_1
        ([[1.0, 2.0], [0.0, 1.0]], 0.0)
    """
    offset, h, j, _ = _check_ising(offset, h, j)
    return _qubo_from_ising(offset, h, j)


@jax.jit
def _qubo_from_ising(offset, h, j):
    k, nd = h.shape[-1], j.ndim
    eye = _lift(np.eye(k, dtype=bool), nd)
    diag = jnp.diagonal(j, axis1=-2, axis2=-1)
    w = jnp.where(eye, jnp.zeros((), h.dtype), j + jnp.swapaxes(j, -1, -2))
    const = (
        offset
        + jnp.sum(h, axis=-1)
        + jnp.sum(diag, axis=-1)
        + 0.5 * jnp.sum(w, axis=(-2, -1))
    )
    lin = -2.0 * h - 2.0 * jnp.sum(w, axis=-1)
    upper = _lift(np.triu(np.ones((k, k), bool), 1), nd)
    q = jnp.where(upper, 4.0 * w, jnp.zeros((), h.dtype))
    q = q + jnp.where(eye, lin[..., :, None], jnp.zeros((), h.dtype))
    return q, const


# ---------------------------------------------------------------------------
# Gate resources of the exact phase separator.


def ising_gate_counts(
    coeffs: Float[Array, "*G S"], tol: float = 0.0
) -> dict[str, Int[Array, "*G"]]:
    """CNOTs and RZs of ``exp(-i gamma H_C)`` built exactly from its Z-strings.

    The Z-strings commute, so the phase separator is a product of one rotation
    ``exp(-i gamma c_T Z_T)`` per term with ``|c_T| > tol``. A term on qubits
    ``q_1 < ... < q_m`` is compiled as a CNOT ladder ``CNOT(q_1, q_2) ...
    CNOT(q_{m-1}, q_m)`` that leaves the parity on ``q_m``, one ``RZ(2 gamma c_T)``
    on ``q_m``, and the ladder reversed: ``2 (m - 1)`` CNOTs and one RZ (so a field
    needs no CNOT, a coupling 2). The constant term is a global phase and costs
    nothing. No cancellation between neighbouring ladders is attempted, so these
    are upper bounds for an optimising compiler. :func:`ising_phase_gates` lists
    the same gates.

    Ladders suit sparse models (a QUBO surrogate needs ``K (K - 1)`` CNOTs). A dense
    expansion is cheaper in the Gray-code form that ``qselax.solvers.qaoa`` uses
    for ``phase="ising"`` (Welch et al. 2014): the terms whose last qubit is ``t``
    share one walk of ``2^t`` CNOTs onto qubit ``t``, ``2^K - 2`` for all terms
    (254 at K=8, against 1538 ladder CNOTs); ``"cnot_gray"`` counts that form,
    skipping the walks of qubits that are the last qubit of no kept term.

    Args:
        coeffs: ``(*G, S)`` Walsh coefficients (:func:`walsh_coefficients`).
        tol: terms with ``|c_T| <= tol`` are dropped (a static Python float).

    Returns:
        ``{"rz", "cnot", "cnot_gray", "terms", "max_order"}``, each a ``(*G,)``
        int32 array per application of ``exp(-i gamma H_C)`` (one QAOA layer): RZ
        gates (= non-constant terms kept), ladder CNOTs, Gray-code CNOTs, terms
        kept, and the largest ``|T|`` kept.

    Example:
        >>> import jax.numpy as jnp
        >>> n = ising_gate_counts(walsh_coefficients(jnp.array([0.0, 1.0, 1.0, 4.0])))
        >>> {name: int(v) for name, v in n.items()}
        {'rz': 3, 'cnot': 2, 'cnot_gray': 2, 'terms': 3, 'max_order': 2}
    """
    c, k = _check_table(coeffs, "coeffs")
    if not float(tol) >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    order = _lift(term_orders(k), c.ndim)
    kept = (jnp.abs(c) > tol) & (order > 0)
    zero = jnp.zeros((), jnp.int32)
    terms = jnp.sum(kept, axis=-1, dtype=jnp.int32)
    cnot = jnp.sum(jnp.where(kept, 2 * (order - 1), zero), axis=-1, dtype=jnp.int32)
    # Last (largest) qubit of each term = its lowest set bit; walk t costs 2^t.
    t = np.arange(2**k)
    last = k - 1 - np.log2(np.maximum(t & -t, 1)).astype(np.int64)
    walks = [
        jnp.any(kept & _lift(last == q, c.ndim), axis=-1).astype(jnp.int32) * 2**q
        for q in range(1, k)
    ]
    gray = sum(walks, jnp.zeros(c.shape[:-1], jnp.int32))
    return {
        "rz": terms,
        "cnot": cnot,
        "cnot_gray": gray,
        "terms": terms,
        "max_order": jnp.max(jnp.where(kept, order, zero), axis=-1),
    }


def ising_phase_gates(coeffs, k: int, gamma: float, tol: float = 0.0) -> list[tuple]:
    """Gate list of ``exp(-i gamma H_C)`` up to the global phase of the constant.

    The compilation counted by :func:`ising_gate_counts`, for export (e.g. QASM):
    per kept term, in increasing term index, the CNOT ladder, the RZ and the
    ladder reversed. ``rz(theta) = exp(-i theta Z / 2)``.

    Args:
        coeffs: ``(S,)`` concrete Walsh coefficients of one group.
        k: K, with ``S = 2^K``.
        gamma: the phase angle.
        tol: terms with ``|c_T| <= tol`` are dropped.

    Returns:
        A list of ``("cx", (control, target))`` and ``("rz", (qubit,), theta)``.

    Example:
        >>> import jax.numpy as jnp
        >>> c = jnp.zeros(4).at[term_index((0, 1), 2)].set(0.5)  # 0.5 z_0 z_1
        >>> ising_phase_gates(c, 2, gamma=1.0)
        [('cx', (0, 1)), ('rz', (1,), 1.0), ('cx', (0, 1))]
    """
    model = to_ising(coeffs, k, tol)
    terms = [((q,), v) for q, v in model["h"].items()]
    terms += list(model["J"].items()) + list(model["higher"].items())
    terms.sort(key=lambda item: term_index(item[0], k))
    gates: list[tuple] = []
    for qubits, value in terms:
        ladder = [("cx", (a, b)) for a, b in zip(qubits[:-1], qubits[1:], strict=True)]
        gates += ladder
        gates.append(("rz", (qubits[-1],), 2.0 * float(gamma) * value))
        gates += ladder[::-1]
    return gates
