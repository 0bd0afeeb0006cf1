"""NK landscapes: evaluation, exact optima (DP vs exhaustive), groups, colouring."""

import itertools
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qselax.nk import (
    adjacent_neighbours,
    colour_groups,
    nk_dp,
    nk_exhaustive,
    nk_group_landscapes,
    nk_neighbours,
    nk_value,
    window_groups,
)


def _value_loop(tables, neighbours, x):
    """Plain Python oracle: sum over subfunctions of the looked-up table entry."""
    total = 0.0
    for i, row in enumerate(np.asarray(neighbours)):
        idx = 0
        for v in row:
            idx = 2 * idx + int(x[v])
        total += float(tables[i][idx])
    return total


def _random_tables(rng, m, k, integer=False):
    shape = (m, 2 ** (k + 1))
    if integer:  # few distinct values: many ties
        return rng.integers(0, 3, shape).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


def _interact(groups, valid, neighbours, g, h):
    """Brute-force interaction test of two groups."""
    vg = {int(v) for v, ok in zip(groups[g], valid[g], strict=True) if ok}
    vh = {int(v) for v, ok in zip(groups[h], valid[h], strict=True) if ok}
    if vg & vh:
        return True
    return any(set(row.tolist()) & vg and set(row.tolist()) & vh for row in neighbours)


# --- structure --------------------------------------------------------------------


def test_nk_neighbours_adjacent_and_random():
    np.testing.assert_array_equal(
        nk_neighbours(5, 2), [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1]]
    )
    np.testing.assert_array_equal(nk_neighbours(5, 2), adjacent_neighbours(5, 2))
    nb = nk_neighbours(9, 3, "random", seed=1)
    assert nb.shape == (9, 4) and nb.dtype == np.int32
    np.testing.assert_array_equal(nb[:, 0], np.arange(9))
    for i, row in enumerate(nb):
        assert len(set(row.tolist())) == 4 and i not in row[1:].tolist()
        assert row.min() >= 0 and row.max() < 9
    np.testing.assert_array_equal(nb, nk_neighbours(9, 3, "random", seed=1))
    assert not np.array_equal(nb, nk_neighbours(9, 3, "random", seed=2))
    np.testing.assert_array_equal(
        adjacent_neighbours(3, 2, circular=False), [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    )


def test_window_groups():
    g, v = window_groups(7, 3, offset=5)
    np.testing.assert_array_equal(g, [[5, 6, 0], [1, 2, 3], [4, 4, 4]])
    np.testing.assert_array_equal(v[-1], [True, False, False])
    assert v[:2].all()
    g, v = window_groups(6, 3)
    assert g.shape == (2, 3) and v.all()
    np.testing.assert_array_equal(np.sort(g.ravel()), np.arange(6))


# --- evaluation -------------------------------------------------------------------


def test_nk_value_matches_python_loop():
    rng = np.random.default_rng(0)
    nb = nk_neighbours(8, 2, "random", seed=3)
    tables = _random_tables(rng, 8, 2)
    x = rng.integers(0, 2, (2, 3, 8))
    got = np.asarray(nk_value(tables, nb, x))
    assert got.shape == (2, 3)
    want = [[_value_loop(tables, nb, xi) for xi in row] for row in x]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Integer tables become float32; bool masks work.
    c = nk_value(np.ones((8, 8), np.int32), nb, x[0, 0].astype(bool))
    assert c.dtype == jnp.float32 and float(c) == 8.0


def test_exhaustive_small_and_ties():
    rng = np.random.default_rng(1)
    nb = nk_neighbours(6, 1, "random", seed=0)
    tables = _random_tables(rng, 6, 1)
    exhaustive = jax.jit(nk_exhaustive, static_argnames="n")
    x, c = exhaustive(tables, nb, n=6)
    brute = [_value_loop(tables, nb, b) for b in itertools.product((0, 1), repeat=6)]
    assert int(np.argmin(brute)) == int(np.asarray(x) @ 2 ** np.arange(5, -1, -1))
    np.testing.assert_allclose(float(c), min(brute), rtol=1e-5, atol=1e-6)
    # All ties: the lowest index (all zeros) wins.
    x, c = exhaustive(np.zeros((6, 4), np.float32), nb, n=6)
    assert np.asarray(x).tolist() == [0] * 6 and float(c) == 0.0


# --- dynamic programming ----------------------------------------------------------

# (K, M, circular): every K in 0..3, both chain kinds, N = M (+K) up to 12.
DP_CASES = [
    (0, 5, True),
    (1, 2, True),  # the smallest circular chains: every bit wraps
    (2, 11, True),
    (3, 4, True),
    (3, 12, True),
    (0, 6, False),
    (1, 8, False),
    (2, 7, False),
    (3, 9, False),
]


@pytest.mark.parametrize("k,m,circular", DP_CASES)
def test_dp_matches_exhaustive(k, m, circular):
    rng = np.random.default_rng(100 * k + m)
    n = m if circular else m + k
    nb = adjacent_neighbours(m, k, circular=circular)
    batch = 16  # half float tables, half integer tables with many ties
    tables = np.stack(
        [_random_tables(rng, m, k, integer=b >= batch // 2) for b in range(batch)]
    )

    @jax.jit
    @jax.vmap
    def solve(t):  # one compile per case
        x, c = nk_dp(t, circular=circular)
        return x, c, nk_exhaustive(t, nb, n)[1], nk_value(t, nb, x)

    x, c, ex_c, v = solve(tables)
    chex.assert_shape(x, (batch, n))
    assert x.dtype == jnp.int32 and set(np.unique(x).tolist()) <= {0, 1}
    c, ex_c, v = np.asarray(c), np.asarray(ex_c), np.asarray(v)
    half = batch // 2
    np.testing.assert_allclose(c[:half], ex_c[:half], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(c[half:], ex_c[half:])  # integers: exact
    np.testing.assert_array_equal(c, v)
    # The returned x really is optimal under the oracle too.
    for t, xi, ci in zip(tables[:3], np.asarray(x), ex_c, strict=False):
        assert _value_loop(t, nb, xi) == pytest.approx(float(ci), abs=1e-5)


def _greedy(tables, nb, x):
    """Best-improvement bit-flip local search (NumPy)."""
    n = x.shape[0]
    weights = 2 ** np.arange(nb.shape[1] - 1, -1, -1)
    rows = np.arange(nb.shape[0])

    def cost(masks):  # (B, N) -> (B,)
        return tables[rows[None, :], masks[:, nb] @ weights].sum(-1)

    cur = cost(x[None])[0]
    while True:
        flips = np.tile(x, (n, 1))
        flips[np.arange(n), np.arange(n)] ^= 1
        costs = cost(flips)
        b = int(np.argmin(costs))
        if costs[b] >= cur - 1e-9:
            return cur
        x, cur = flips[b], costs[b]


def test_dp_large_circular():
    n, k = 100, 8
    rng = np.random.default_rng(7)
    tables = rng.normal(size=(n, 2 ** (k + 1))).astype(np.float32)
    nb = nk_neighbours(n, k)
    dp = jax.jit(nk_dp)
    jax.block_until_ready(dp(tables))
    start = time.perf_counter()
    x, c = jax.block_until_ready(dp(tables))
    assert time.perf_counter() - start < 1.0
    chex.assert_shape(x, (n,))
    x = np.asarray(x)
    c = float(c)
    np.testing.assert_allclose(c, _value_loop(tables, nb, x), rtol=1e-5, atol=1e-4)
    assert c == pytest.approx(float(nk_value(tables, nb, x)), rel=1e-6)
    masks = rng.integers(0, 2, (200, n))
    assert c <= float(np.asarray(nk_value(tables, nb, masks)).min())
    for _ in range(2):
        assert c <= _greedy(tables, nb, rng.integers(0, 2, n)) + 1e-4


class VariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_dp_and_value_jit_agree(self):
        rng = np.random.default_rng(3)
        tables = _random_tables(rng, 6, 2)
        nb = nk_neighbours(6, 2)
        # Both variants against the same NumPy oracles.
        brute = [
            _value_loop(tables, nb, b) for b in itertools.product((0, 1), repeat=6)
        ]
        ref_x = np.array(list(itertools.product((0, 1), repeat=6))[np.argmin(brute)])
        x, c = self.variant(nk_dp, static_argnames="circular")(tables, circular=True)
        chex.assert_trees_all_close(
            (x, c), (ref_x.astype(np.int32), np.float32(min(brute))), rtol=1e-5
        )
        masks = rng.integers(0, 2, (4, 6))
        got = self.variant(nk_value)(tables, nb, masks)
        want = np.array([_value_loop(tables, nb, m) for m in masks], np.float32)
        chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


# --- group landscapes -------------------------------------------------------------


# One jitted copy so tests with the same shapes share a compile.
_landscapes = jax.jit(nk_group_landscapes)


def _landscape_case():
    rng = np.random.default_rng(5)
    n, k = 10, 2
    nb = nk_neighbours(n, k, "random", seed=4)
    tables = _random_tables(rng, n, k)
    x = rng.integers(0, 2, n).astype(np.int32)
    return tables, nb, x


def test_group_landscapes_brute_force():
    tables, nb, x = _landscape_case()
    groups, valid = window_groups(10, 3, offset=2)  # last group padded
    land = np.asarray(_landscapes(tables, nb, x, groups, valid))
    chex.assert_shape(land, (4, 8))
    base = _value_loop(tables, nb, x)
    for g in range(4):
        cur = 0
        for j in range(3):  # the group's current setting, padded bits 0
            cur = 2 * cur + (int(x[groups[g, j]]) if valid[g, j] else 0)
        assert land[g, cur] == pytest.approx(base, abs=1e-5)
        for c in range(8):
            xp = x.copy()
            for j in range(3):
                if valid[g, j]:
                    xp[groups[g, j]] = (c >> (2 - j)) & 1
            assert land[g, c] == pytest.approx(_value_loop(tables, nb, xp), abs=1e-5)


def test_group_landscapes_padding_ignored():
    tables, nb, x = _landscape_case()
    groups, valid = window_groups(10, 2)
    land = np.asarray(_landscapes(tables, nb, x, groups, valid))
    # An extra padded least significant bit duplicates each configuration.
    padded = np.concatenate([groups, groups[:, :1]], axis=1)
    pvalid = np.concatenate([valid, np.zeros((5, 1), bool)], axis=1)
    pland = np.asarray(_landscapes(tables, nb, x, padded, pvalid))
    np.testing.assert_array_equal(pland[:, 0::2], land)
    np.testing.assert_array_equal(pland[:, 1::2], land)


# --- colouring --------------------------------------------------------------------


def _check_colouring(classes, groups, valid, nb):
    flat = np.concatenate(classes)
    np.testing.assert_array_equal(np.sort(flat), np.arange(groups.shape[0]))
    for cls in classes:
        for g, h in itertools.combinations(cls.tolist(), 2):
            assert not _interact(groups, valid, nb, g, h)


def test_colour_groups_random_and_independent():
    tables, nb, x = _landscape_case()
    groups, valid = window_groups(10, 2, offset=1)
    classes = colour_groups(groups, valid, nb)
    _check_colouring(classes, groups, valid, nb)
    # Optimising a whole class at once changes the cost by the sum of the parts.
    land = np.asarray(_landscapes(tables, nb, x, groups, valid))
    base = _value_loop(tables, nb, x)
    for cls in classes:
        xp = x.copy()
        for g in cls:
            best = int(np.argmin(land[g]))
            xp[groups[g]] = [(best >> 1) & 1, best & 1]
        want = base + sum(land[g].min() - base for g in cls)
        assert _value_loop(tables, nb, xp) == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("n,k", [(12, 2), (16, 3), (4, 1)])
def test_colour_groups_adjacent_windows_two_classes(n, k):
    nb = nk_neighbours(n, k)
    groups, valid = window_groups(n, k + 1, offset=1)
    classes = colour_groups(groups, valid, nb)
    assert len(classes) == 2
    _check_colouring(classes, groups, valid, nb)


# --- errors -----------------------------------------------------------------------


def test_errors():
    nb = nk_neighbours(4, 1)
    with pytest.raises(ValueError, match="connectivity"):
        nk_neighbours(4, 1, "ring")
    with pytest.raises(ValueError):
        nk_neighbours(3, 3)
    with pytest.raises(ValueError):
        nk_neighbours(3, -1)
    with pytest.raises(ValueError, match="power of two"):
        nk_dp(np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="M >= 3"):
        nk_dp(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="tables"):
        nk_value(np.zeros((4, 8), np.float32), nb, np.zeros(4))
    # Mismatched M: a TypeError where the tests check shapes at run time.
    with pytest.raises((ValueError, TypeError), match="tables"):
        nk_value(np.zeros((3, 4), np.float32), nb, np.zeros(4))
    with pytest.raises(ValueError, match="n must be"):
        nk_exhaustive(np.zeros((25, 4), np.float32), nk_neighbours(25, 1), 25)
    with pytest.raises(ValueError, match="exceeds"):
        nk_group_landscapes(
            np.zeros((4, 4), np.float32),
            nb,
            np.zeros(4, np.int32),
            np.zeros((1, 24), np.int32),
            np.ones((1, 24), bool),
        )
    with pytest.raises(ValueError):
        window_groups(0, 2)
    with pytest.raises(ValueError):
        colour_groups(np.zeros((2, 2)), np.ones((2, 3), bool), nb)
