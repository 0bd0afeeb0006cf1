"""Tests for qselax.entanglement: known states, Page value, symmetries, errors."""

import functools
import math

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from qselax.entanglement import (
    entanglement_summary,
    half_cut_entropy,
    page_entropy,
    reduced_density_matrix,
    single_qubit_entropies,
    von_neumann_entropy,
)

# --- States and NumPy references (qubit 0 = most significant bit). -----------------


def ghz(k):
    psi = np.zeros(2**k, np.complex64)
    psi[0] = psi[-1] = 1 / np.sqrt(2)
    return psi


def w_state(k):
    psi = np.zeros(2**k, np.complex64)
    psi[[2 ** (k - 1 - q) for q in range(k)]] = 1 / np.sqrt(k)
    return psi


def dicke(k, ones):
    weights = np.array([bin(s).count("1") for s in range(2**k)])
    psi = (weights == ones).astype(np.complex64)
    return psi / np.linalg.norm(psi)


def product(qubit_states):
    psi = np.ones(1, np.complex128)
    for q in qubit_states:
        psi = np.kron(psi, q)
    return psi.astype(np.complex64)


def haar(rng, k, n=None):
    shape = (2**k,) if n is None else (n, 2**k)
    psi = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return (psi / np.linalg.norm(psi, axis=-1, keepdims=True)).astype(np.complex64)


def binary_entropy(p):
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def numpy_rdm(psi, keep, k):
    """Partial trace by einsum over named axes."""
    letters = "abcdefghijklmnop"[:k]
    primed = "ABCDEFGHIJKLMNOP"[:k]
    t = np.asarray(psi, np.complex128).reshape((2,) * k)
    bra = "".join(primed[q] if q in keep else letters[q] for q in range(k))
    out = "".join(letters[q] for q in keep) + "".join(primed[q] for q in keep)
    rho = np.einsum(f"{letters},{bra}->{out}", t, t.conj())
    return rho.reshape(2 ** len(keep), 2 ** len(keep))


def permute_qubits(psi, perm, k):
    """New qubit i is old qubit perm[i]."""
    return np.transpose(np.asarray(psi).reshape((2,) * k), perm).reshape(-1)


@functools.cache
def jitted(fn, k):
    return jax.jit(lambda psi: fn(psi, k))


K_PROP = 5
unit_floats = st.floats(-1.0, 1.0, width=32)
state_values = st.lists(unit_floats, min_size=2 * 2**K_PROP, max_size=2 * 2**K_PROP)


def as_state(values):
    v = np.asarray(values, np.float64).reshape(2, -1)
    psi = v[0] + 1j * v[1]
    norm = np.linalg.norm(psi)
    hypothesis.assume(norm > 0.1)
    return (psi / norm).astype(np.complex64)


# --- Reduced density matrices. -----------------------------------------------------


class ReducedDensityMatrixTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((0,), (2,), (3, 0), (1, 2, 4), (), (0, 1, 2, 3, 4))
    def test_matches_numpy_partial_trace(self, *keep):
        k = 5
        psi = haar(np.random.default_rng(len(keep)), k)
        rho = self.variant(lambda p: reduced_density_matrix(p, keep, k))(psi)
        d = 2 ** len(keep)
        chex.assert_shape(rho, (d, d))
        chex.assert_type(rho, jnp.complex64)
        np.testing.assert_allclose(rho, numpy_rdm(psi, keep, k), atol=2e-6)
        np.testing.assert_allclose(np.trace(rho), 1.0, atol=1e-5)
        np.testing.assert_allclose(rho, np.conj(rho).T, atol=1e-7)
        assert np.linalg.eigvalsh(np.asarray(rho, np.complex128)).min() > -1e-6

    @chex.variants(with_jit=True, without_jit=True)
    def test_entropies_of_known_states(self):
        k = 4
        half = self.variant(lambda p: half_cut_entropy(p, k))
        single = self.variant(lambda p: single_qubit_entropies(p, k))
        for psi, half_value, single_value in [
            (ghz(k), 1.0, 1.0),
            (w_state(k), binary_entropy(2 / k), binary_entropy(1 / k)),
            (product([np.array([0.6, 0.8j])] * k), 0.0, 0.0),
        ]:
            h, s = half(psi), single(psi)
            chex.assert_shape((h, s), [(), (k,)])
            chex.assert_type((h, s), jnp.float32)
            np.testing.assert_allclose(h, half_value, atol=2e-5)
            np.testing.assert_allclose(s, np.full(k, single_value), atol=2e-5)


@pytest.mark.parametrize("k", [2, 3, 5, 6])
def test_bell_ghz_and_w_states(k):
    np.testing.assert_allclose(jitted(half_cut_entropy, k)(ghz(k)), 1.0, atol=2e-5)
    np.testing.assert_allclose(
        jitted(single_qubit_entropies, k)(ghz(k)), np.ones(k), atol=2e-5
    )
    m = k // 2
    w = w_state(k)
    np.testing.assert_allclose(
        jitted(half_cut_entropy, k)(w), binary_entropy(m / k), atol=2e-5
    )
    np.testing.assert_allclose(
        jitted(single_qubit_entropies, k)(w), np.full(k, binary_entropy(1 / k)), 2e-5
    )


def test_one_qubit_and_real_input():
    plus = np.array([1.0, 1.0], np.float32) / np.sqrt(2)
    assert float(half_cut_entropy(plus, 1)) == 0.0  # a 1x1 rho: exactly 0
    np.testing.assert_allclose(single_qubit_entropies(plus, 1), [0.0], atol=1e-6)
    chex.assert_type(reduced_density_matrix(plus, (0,), 1), jnp.complex64)


# --- Property tests on values. -----------------------------------------------------


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(st.lists(unit_floats, min_size=4 * K_PROP, max_size=4 * K_PROP))
def test_product_states_have_no_entanglement(values):
    v = np.asarray(values, np.float64).reshape(K_PROP, 4)
    qubits = v[:, :2] + 1j * v[:, 2:]
    norms = np.linalg.norm(qubits, axis=1, keepdims=True)
    hypothesis.assume(np.all(norms > 0.1))
    psi = product(qubits / norms)
    assert float(jitted(half_cut_entropy, K_PROP)(psi)) < 1e-4
    assert float(jnp.max(jitted(single_qubit_entropies, K_PROP)(psi))) < 1e-4


def half_and_complement(psi):
    half = half_cut_entropy(psi, K_PROP)
    rest = von_neumann_entropy(
        reduced_density_matrix(psi, tuple(range(K_PROP // 2, K_PROP)), K_PROP)
    )
    return half, rest


half_and_complement_jit = jax.jit(half_and_complement)


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(state_values)
def test_pure_state_cuts_are_symmetric_and_bounded(values):
    psi = as_state(values)
    half, rest = half_and_complement_jit(psi)
    np.testing.assert_allclose(half, rest, atol=3e-5)
    assert -1e-6 <= float(half) <= K_PROP // 2 + 1e-5
    single = jitted(single_qubit_entropies, K_PROP)(psi)
    assert np.all(np.asarray(single) >= -1e-6) and np.all(np.asarray(single) <= 1.0)


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(state_values, st.permutations(range(K_PROP)))
def test_relabelling_qubits_permutes_entropies(values, perm):
    psi = as_state(values)
    moved = permute_qubits(psi, perm, K_PROP)
    single = np.asarray(jitted(single_qubit_entropies, K_PROP)(psi))
    np.testing.assert_allclose(
        jitted(single_qubit_entropies, K_PROP)(moved), single[list(perm)], atol=3e-5
    )


@pytest.mark.parametrize("k, ones", [(4, 2), (5, 2), (6, 3)])
def test_symmetric_states_are_invariant_under_relabelling(k, ones):
    psi = dicke(k, ones)
    single = np.asarray(jitted(single_qubit_entropies, k)(psi))
    np.testing.assert_allclose(single, np.full(k, single[0]), atol=2e-5)
    p = ones / k  # one qubit of a Dicke state: diag(1 - p, p)
    np.testing.assert_allclose(single[0], binary_entropy(p), atol=2e-5)
    rng = np.random.default_rng(k)
    perm = tuple(int(q) for q in rng.permutation(k))
    np.testing.assert_allclose(permute_qubits(psi, perm, k), psi, atol=1e-7)
    first = reduced_density_matrix(psi, (0, 1), k)
    np.testing.assert_allclose(
        reduced_density_matrix(psi, perm[:2], k), first, atol=1e-6
    )


def test_haar_random_states_are_near_the_page_value():
    k = 8
    states = haar(np.random.default_rng(0), k, n=64)
    entropies = jax.jit(jax.vmap(lambda p: half_cut_entropy(p, k)))(states)
    chex.assert_shape(entropies, (64,))
    page = page_entropy(k)
    # Page: ln 16 - 1/2 + O(1/256) nats = 3.28 bits, fluctuations ~ 1/16.
    assert 3.27 < page < 3.29
    np.testing.assert_allclose(np.mean(entropies), page, atol=0.02)
    assert np.all(np.asarray(entropies) < k // 2)


def test_page_entropy_small_cases():
    assert page_entropy(2) == pytest.approx(1 / 3 / math.log(2))
    assert page_entropy(3, 0) == 0.0
    assert page_entropy(4, 1) == pytest.approx(page_entropy(4, 3))


def test_von_neumann_entropy_basics():
    np.testing.assert_allclose(von_neumann_entropy(np.eye(8) / 8), 3.0, atol=1e-6)
    batch = np.stack([np.diag([1.0, 0.0]), np.diag([0.5, 0.5])])
    np.testing.assert_allclose(von_neumann_entropy(batch), [0.0, 1.0], atol=1e-6)
    # Round-off eigenvalues below zero are clipped, not fed to log.
    noisy = np.diag([1.0 + 1e-7, -1e-7])
    assert np.isfinite(float(von_neumann_entropy(noisy)))


# --- Summary and errors. -----------------------------------------------------------


def test_entanglement_summary_per_layer():
    k = 4
    rng = np.random.default_rng(1)
    states = np.concatenate([haar(rng, k, n=3), np.stack([ghz(k), w_state(k)])])
    layer = np.array([2, 0, 2, 0, 1])
    out = entanglement_summary(states, layer, memory_mb=0.001)  # chunks of one
    assert list(out) == [0, 1, 2]
    half = np.asarray(jax.vmap(lambda p: half_cut_entropy(p, k))(states))
    single = np.asarray(jax.vmap(lambda p: single_qubit_entropies(p, k))(states))
    for value, stats in out.items():
        sel = layer == value
        assert stats["groups"] == int(sel.sum())
        assert isinstance(stats["half_cut_mean"], float)
        np.testing.assert_allclose(stats["half_cut_mean"], half[sel].mean(), atol=1e-5)
        np.testing.assert_allclose(stats["half_cut_max"], half[sel].max(), atol=1e-5)
        np.testing.assert_allclose(
            stats["single_qubit_mean"], single[sel].mean(), atol=1e-5
        )
    np.testing.assert_allclose(out[1]["half_cut_max"], binary_entropy(0.5), atol=1e-5)
    assert entanglement_summary(np.zeros((0, 4), np.complex64), np.zeros(0, int)) == {}


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: reduced_density_matrix(np.zeros(8), (0,), 2), "state"),
        (lambda: reduced_density_matrix(np.zeros((2, 4)), (0,), 2), "state"),
        (lambda: reduced_density_matrix(np.zeros(4), (0, 0), 2), "keep"),
        (lambda: reduced_density_matrix(np.zeros(4), (2,), 2), "keep"),
        (lambda: reduced_density_matrix(np.zeros(4), 0, 2), "keep"),
        (lambda: reduced_density_matrix(np.zeros(4), (0,), 0), "k"),
        (lambda: half_cut_entropy(np.zeros(6), 3), "state"),
        (lambda: single_qubit_entropies(np.zeros(4), 3), "state"),
        (lambda: von_neumann_entropy(np.zeros((2, 3))), "rho"),
        (lambda: von_neumann_entropy(np.zeros(4)), "rho"),
        (lambda: entanglement_summary(np.zeros(4), [0]), "states"),
        (lambda: entanglement_summary(np.zeros((2, 6)), [0, 0]), "states"),
        (lambda: entanglement_summary(np.zeros((2, 4)), [0]), "layer"),
        (lambda: entanglement_summary(np.zeros((2, 4)), [0.5, 1.0]), "layer"),
        (lambda: page_entropy(4, 5), "m"),
    ],
)
def test_shape_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
