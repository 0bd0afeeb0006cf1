"""Tests for qselax.hamiltonians: Walsh expansion, Ising export, QUBO surrogate."""

import itertools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qselax.bits import bit_table
from qselax.hamiltonians import (
    QuboFit,
    fit_qubo,
    ising_gate_counts,
    ising_landscape,
    ising_phase_gates,
    qubo_from_ising,
    term_index,
    term_orders,
    term_qubits,
    to_ising,
    walsh_coefficients,
    walsh_landscape,
)

# --- NumPy float64 references (qubit 0 = most significant bit). --------------------


def spins(k):
    """``(S, K)`` float64 Z eigenvalues z = 1 - 2x."""
    return 1.0 - 2.0 * bit_table(k).astype(np.float64)


def walsh_matrix(k):
    """``W[s, t] = prod_{q in T(t)} z_q(s)``, built from its definition."""
    z = spins(k)
    w = np.ones((2**k, 2**k))
    for t in range(2**k):
        for q in term_qubits(t, k):
            w[:, t] *= z[:, q]
    return w


def numpy_coefficients(landscapes):
    k = int(np.log2(landscapes.shape[-1]))
    return np.asarray(landscapes, np.float64) @ walsh_matrix(k) / 2**k


def random_ising(rng, k):
    offset = rng.normal()
    h = rng.normal(size=k)
    j = np.triu(rng.normal(size=(k, k)), 1)
    return offset, h, j


def ising_values(offset, h, j, higher=()):
    """Energies from the Ising formula, term by term."""
    k = len(h)
    z = spins(k)
    c = offset + z @ h
    for a, b in itertools.combinations(range(k), 2):
        c = c + j[a, b] * z[:, a] * z[:, b]
    for qubits, value in higher:
        c = c + value * np.prod(z[:, list(qubits)], axis=1)
    return c


round_trip = jax.jit(lambda x: walsh_landscape(walsh_coefficients(x)))
qubo_from_ising_jit = jax.jit(qubo_from_ising)


# --- Conventions and the transform. -------------------------------------------------


def test_term_bookkeeping():
    assert term_index((0,), 4) == 8 and term_index((3,), 4) == 1
    for t in range(16):
        assert term_index(term_qubits(t, 4), 4) == t
        assert len(term_qubits(t, 4)) == term_orders(4)[t]
    with pytest.raises(ValueError, match="qubits"):
        term_index((0, 0), 3)
    with pytest.raises(ValueError, match="qubits"):
        term_index((3,), 3)


def test_convention_bit_zero_is_msb_and_z_plus_is_bit_off():
    # C = x_0 = (1 - z_0) / 2: constant 1/2, field -1/2 on qubit 0, index 2^(K-1).
    x = bit_table(3)
    c = np.asarray(walsh_coefficients(jnp.asarray(x[:, 0])))
    expected = np.zeros(8)
    expected[0], expected[4] = 0.5, -0.5
    np.testing.assert_allclose(c, expected, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_matches_definition_and_round_trips_float32(k):
    rng = np.random.default_rng(k)
    landscapes = rng.normal(size=(3, 2**k)).astype(np.float32) * 10 + 3
    c = walsh_coefficients(landscapes)
    chex.assert_shape(c, (3, 2**k))
    chex.assert_type(c, jnp.float32)
    scale = np.max(np.abs(landscapes))
    np.testing.assert_allclose(c, numpy_coefficients(landscapes), atol=1e-5 * scale)
    back = walsh_landscape(c)
    np.testing.assert_allclose(back, landscapes, rtol=0, atol=2e-6 * scale)


def test_float64_is_exact_to_round_off():
    rng = np.random.default_rng(0)
    landscapes = rng.normal(size=(4, 2**7))
    with jax.enable_x64(True):
        c = walsh_coefficients(landscapes)
        back = walsh_landscape(c)
        assert c.dtype == jnp.float64
        np.testing.assert_allclose(c, numpy_coefficients(landscapes), atol=1e-14)
        np.testing.assert_allclose(back, landscapes, atol=1e-13)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    st.lists(st.floats(-1e3, 1e3, width=32), min_size=32, max_size=32),
)
def test_round_trip_any_values(values):
    landscape = np.asarray(values, np.float32)
    back = np.asarray(round_trip(landscape))
    scale = max(1.0, float(np.max(np.abs(landscape))))
    np.testing.assert_allclose(back, landscape, rtol=0, atol=2e-6 * scale)


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(st.integers(0, 2**31 - 1))
def test_hand_built_ising_gives_exactly_its_h_and_j(seed):
    rng = np.random.default_rng(seed)
    k = 5
    offset, h, j = random_ising(rng, k)
    higher = [((0, 2, 4), rng.normal()), ((0, 1, 2, 3), rng.normal())]
    landscape = ising_values(offset, h, j, higher)
    with jax.enable_x64(True):
        c = np.asarray(walsh_coefficients(landscape))
    expected = np.zeros(2**k)
    expected[0] = offset
    for q in range(k):
        expected[term_index((q,), k)] = h[q]
    for a, b in itertools.combinations(range(k), 2):
        expected[term_index((a, b), k)] = j[a, b]
    for qubits, value in higher:
        expected[term_index(qubits, k)] = value
    np.testing.assert_allclose(c, expected, atol=1e-12)
    # float32 path: same numbers to single precision.
    c32 = walsh_coefficients(landscape.astype(np.float32))
    np.testing.assert_allclose(c32, expected, atol=1e-5 * np.max(np.abs(landscape)))


def test_vmap_equals_batched_and_integer_input():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 16)).astype(np.float32)
    batched = walsh_coefficients(x)
    chex.assert_shape(batched, (2, 3, 16))
    mapped = jax.vmap(jax.vmap(walsh_coefficients))(x)
    np.testing.assert_allclose(batched, mapped, atol=1e-6)
    ints = walsh_coefficients(np.arange(8, dtype=np.int32))
    chex.assert_type(ints, jnp.float32)
    np.testing.assert_allclose(ints, numpy_coefficients(np.arange(8.0)), atol=1e-6)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(6), "power|2\\^K"),
        (np.zeros((2, 1)), "2\\^K"),
        (np.float32(1.0), "scalar"),
        (np.zeros(4, np.complex64), "real"),
    ],
)
def test_bad_landscapes_raise(bad, match):
    with pytest.raises(ValueError, match="landscapes") as info:
        walsh_coefficients(bad)
    assert info.match(match)
    with pytest.raises(ValueError, match="coeffs"):
        walsh_landscape(bad)


# --- Ising export. -----------------------------------------------------------------


def test_to_ising_export_and_tolerance():
    rng = np.random.default_rng(2)
    k = 4
    offset, h, j = random_ising(rng, k)
    h[2] = 0.0
    higher = [((0, 1, 3), 0.25), ((0, 1, 2, 3), 1e-3)]
    landscape = ising_values(offset, h, j, higher)
    with jax.enable_x64(True):
        model = to_ising(walsh_coefficients(landscape), k, tol=1e-9)
    assert set(model) == {"offset", "h", "J", "higher"}
    assert model["offset"] == pytest.approx(offset, abs=1e-12)
    assert set(model["h"]) == {0, 1, 3}  # the zero field is dropped
    for q, value in model["h"].items():
        assert isinstance(q, int) and isinstance(value, float)
        assert value == pytest.approx(h[q], abs=1e-12)
    assert list(model["J"]) == list(itertools.combinations(range(k), 2))
    for (a, b), value in model["J"].items():
        assert value == pytest.approx(j[a, b], abs=1e-12)
    assert model["higher"] == pytest.approx({(0, 1, 3): 0.25, (0, 1, 2, 3): 1e-3})
    # Evaluating the dictionary reproduces the landscape.
    rebuilt = ising_values(
        model["offset"],
        np.array([model["h"].get(q, 0.0) for q in range(k)]),
        np.array([[model["J"].get((a, b), 0.0) for b in range(k)] for a in range(k)]),
        model["higher"].items(),
    )
    np.testing.assert_allclose(rebuilt, landscape, atol=1e-12)
    coarse = to_ising(walsh_coefficients(landscape.astype(np.float32)), k, tol=0.01)
    assert (0, 1, 2, 3) not in coarse["higher"] and (0, 1, 3) in coarse["higher"]


def test_to_ising_errors():
    with pytest.raises(ValueError, match="coeffs"):
        to_ising(np.zeros((2, 4)), 2)
    with pytest.raises(ValueError, match="coeffs"):
        to_ising(np.zeros(8), 2)
    with pytest.raises(ValueError, match="finite"):
        to_ising(np.array([0.0, np.nan, 0.0, 0.0]), 2)
    with pytest.raises(ValueError, match="tol"):
        to_ising(np.zeros(4), 2, tol=-1.0)
    with pytest.raises(ValueError, match="k"):
        to_ising(np.zeros(4), 0)


# --- Quadratic surrogate. ----------------------------------------------------------


def quadratic_design(k, basis):
    """Columns 1, v_i, v_i v_j (i < j) with v = z (spins) or x (bits)."""
    v = spins(k) if basis == "z" else bit_table(k).astype(np.float64)
    cols = [np.ones(2**k)] + [v[:, i] for i in range(k)]
    cols += [v[:, a] * v[:, b] for a, b in itertools.combinations(range(k), 2)]
    return np.stack(cols, axis=1)


class FitQuboTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_least_squares_in_both_bases(self):
        k = 5
        rng = np.random.default_rng(3)
        landscapes = rng.normal(size=(4, 2**k)).astype(np.float32)
        fit = self.variant(fit_qubo)(landscapes)
        assert isinstance(fit, QuboFit)
        chex.assert_shape(
            (fit.offset, fit.h, fit.j, fit.landscape),
            [(4,), (4, k), (4, k, k), (4, 32)],
        )
        chex.assert_shape(
            (fit.rms_error, fit.max_abs_error, fit.r2, fit.ground_state_kept), (4,)
        )
        chex.assert_type(fit.ground_state_kept, jnp.bool_)
        chex.assert_tree_all_finite((fit.offset, fit.h, fit.j, fit.r2))
        pairs = list(itertools.combinations(range(k), 2))
        for g in range(4):
            target = landscapes[g].astype(np.float64)
            beta = np.linalg.lstsq(quadratic_design(k, "z"), target, rcond=None)[0]
            np.testing.assert_allclose(fit.offset[g], beta[0], atol=1e-5)
            np.testing.assert_allclose(fit.h[g], beta[1 : k + 1], atol=1e-5)
            j = np.zeros((k, k))
            for (a, b), value in zip(pairs, beta[k + 1 :], strict=True):
                j[a, b] = value
            np.testing.assert_allclose(fit.j[g], j, atol=1e-5)
            # The 0/1 monomials span the same space: same fitted values.
            design_x = quadratic_design(k, "x")
            pred = design_x @ np.linalg.lstsq(design_x, target, rcond=None)[0]
            np.testing.assert_allclose(fit.landscape[g], pred, atol=2e-5)
            err = pred - target
            np.testing.assert_allclose(
                fit.rms_error[g], np.sqrt(np.mean(err**2)), rtol=1e-4
            )
            np.testing.assert_allclose(fit.max_abs_error[g], np.max(np.abs(err)), 1e-4)
            sst = np.sum((target - target.mean()) ** 2)
            np.testing.assert_allclose(fit.r2[g], 1 - np.sum(err**2) / sst, atol=1e-5)
            kept = target[np.argmin(pred)] == target.min()
            assert bool(fit.ground_state_kept[g]) == kept
            np.testing.assert_allclose(
                fit.regret[g], target[np.argmin(pred)] - target.min(), atol=1e-6
            )

    @chex.variants(with_jit=True, without_jit=True)
    def test_exact_on_quadratic_landscapes(self):
        rng = np.random.default_rng(4)
        k = 6
        offset, h, j = random_ising(rng, k)
        landscape = ising_values(offset, h, j).astype(np.float32)
        fit = self.variant(fit_qubo)(landscape[None])
        np.testing.assert_allclose(fit.offset[0], offset, atol=1e-5)
        np.testing.assert_allclose(fit.h[0], h, atol=1e-5)
        np.testing.assert_allclose(fit.j[0], j, atol=1e-5)
        assert float(fit.r2[0]) == pytest.approx(1.0, abs=1e-6)
        assert float(fit.max_abs_error[0]) < 1e-4
        assert bool(fit.ground_state_kept[0]) and float(fit.regret[0]) == 0.0


def test_fit_qubo_degenerate_and_constant_landscapes():
    # Bit 2 is a padded dummy: two ground states; kept must not depend on the tie.
    bits = bit_table(3).astype(np.float64)
    cubic = bits[:, 0] * bits[:, 1] - 0.5 * bits[:, 0] - 0.6 * bits[:, 1] + 2.0
    fit = fit_qubo(np.stack([cubic, np.full(8, 3.0)]).astype(np.float32))
    assert fit.ground_state_kept.tolist() == [True, True]
    np.testing.assert_allclose(fit.r2, [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(fit.rms_error, [0.0, 0.0], atol=1e-6)


def test_fit_qubo_can_lose_the_ground_state():
    # C = -3-body parity term + small field: the quadratic part alone points elsewhere.
    k = 3
    z = spins(k)
    landscape = -z[:, 0] * z[:, 1] * z[:, 2] + 0.1 * z[:, 0]
    fit = fit_qubo(landscape.astype(np.float32))
    assert not bool(fit.ground_state_kept)
    assert float(fit.regret) > 0
    np.testing.assert_allclose(fit.r2, 0.1**2 / (1 + 0.1**2), atol=1e-6)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(st.integers(0, 2**31 - 1))
def test_qubo_from_ising_matches_direct_evaluation(seed):
    rng = np.random.default_rng(seed)
    k = 4
    offset = rng.normal(size=(2,))
    h = rng.normal(size=(2, k))
    j = rng.normal(size=(2, k, k))  # full matrix: diagonal and lower entries count too
    q, const = qubo_from_ising_jit(offset, h, j)
    chex.assert_shape((q, const), [(2, k, k), (2,)])
    np.testing.assert_allclose(np.tril(q, -1), 0.0)
    x = bit_table(k).astype(np.float64)
    z = 1.0 - 2.0 * x
    for g in range(2):
        direct = offset[g] + z @ h[g] + np.einsum("sa,ab,sb->s", z, j[g], z)
        qubo = const[g] + np.einsum("sa,ab,sb->s", x, np.asarray(q[g], np.float64), x)
        np.testing.assert_allclose(qubo, direct, atol=1e-4)
        np.testing.assert_allclose(
            ising_landscape(offset[g], h[g], j[g]), direct, atol=1e-4
        )


def test_qubo_from_fit_reproduces_surrogate():
    landscapes = np.random.default_rng(5).normal(size=(3, 16)).astype(np.float32)
    fit = fit_qubo(landscapes)
    q, const = qubo_from_ising(fit.offset, fit.h, fit.j)
    x = jnp.asarray(bit_table(4))
    qubo = const[:, None] + jnp.einsum("sa,gab,sb->gs", x, q, x)
    np.testing.assert_allclose(qubo, fit.landscape, atol=2e-5)
    np.testing.assert_allclose(
        ising_landscape(fit.offset, fit.h, fit.j), fit.landscape, atol=2e-5
    )
    with pytest.raises(ValueError, match="shapes"):
        qubo_from_ising(fit.offset, fit.h, fit.j[:, :2])


# --- Gate resources of exp(-i gamma H_C). ------------------------------------------


CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], complex)


def gate_unitary(gates, k):
    """Full unitary of a gate list (qubit 0 = MSB) by acting on basis states."""
    u = np.eye(2**k, dtype=complex)
    for gate in gates:
        psi = u.reshape((2,) * k + (2**k,))
        if gate[0] == "cx":
            a, b = gate[1]
            psi = np.moveaxis(psi, (a, b), (0, 1)).copy()
            psi[1] = psi[1, ::-1].copy()
            psi = np.moveaxis(psi, (0, 1), (a, b))
        else:
            (q,), theta = gate[1], gate[2]
            phase = np.exp(np.array([-0.5j, 0.5j]) * theta)
            shape = [1] * (k + 1)
            shape[q] = 2
            psi = psi * phase.reshape(shape)
        u = psi.reshape(2**k, 2**k)
    return u


def test_phase_gates_implement_the_phase_separator_and_match_counts():
    k, gamma = 4, 0.37
    rng = np.random.default_rng(6)
    landscape = rng.normal(size=2**k)
    with jax.enable_x64(True):
        c = np.array(walsh_coefficients(landscape))
    c[np.abs(c) < 0.1] = 0.0  # a sparse model, so the tolerance matters
    gates = ising_phase_gates(c, k, gamma)
    target = np.diag(np.exp(-1j * gamma * (walsh_matrix(k) @ c - c[0])))
    np.testing.assert_allclose(gate_unitary(gates, k), target, atol=1e-12)
    counts = {name: int(v) for name, v in ising_gate_counts(c).items()}
    assert counts["cnot"] == sum(g[0] == "cx" for g in gates)
    assert counts["rz"] == sum(g[0] == "rz" for g in gates)
    orders = term_orders(k)[np.flatnonzero(c)]
    assert counts["terms"] == np.count_nonzero(orders)
    assert counts["cnot"] == np.sum(2 * (orders[orders > 0] - 1))
    assert counts["max_order"] == orders.max()


def test_gate_counts_batched_and_tolerance():
    k = 3
    c = np.zeros((2, 8), np.float32)
    c[:, 0] = 5.0  # constant: free
    c[0, term_index((0,), k)] = 1.0
    c[0, term_index((0, 1, 2), k)] = 0.5  # 4 CNOTs
    c[1, term_index((1, 2), k)] = 0.01  # 2 CNOTs, unless below tol
    counts = jax.jit(ising_gate_counts, static_argnames="tol")(c)
    chex.assert_shape(list(counts.values()), (2,))
    assert counts["cnot"].tolist() == [4, 2] and counts["rz"].tolist() == [2, 1]
    assert counts["max_order"].tolist() == [3, 2]
    # Gray code: row 0 has terms ending on qubits 0 and 2 (walk of 4 CNOTs), row 1
    # a term ending on qubit 2.
    assert counts["cnot_gray"].tolist() == [4, 4]
    coarse = ising_gate_counts(c, tol=0.1)
    assert coarse["cnot"].tolist() == [4, 0] and coarse["terms"].tolist() == [2, 0]
    with pytest.raises(ValueError, match="tol"):
        ising_gate_counts(c, tol=-1.0)


def test_gate_counts_of_dense_and_quadratic_models():
    k = 8
    landscape = np.random.default_rng(7).normal(size=(1, 2**k)).astype(np.float32)
    dense = ising_gate_counts(walsh_coefficients(landscape))
    # Every term: sum_w C(8, w) 2 (w - 1) ladder CNOTs, 2^8 - 2 Gray-code CNOTs.
    assert int(dense["cnot"][0]) == 1538 and int(dense["cnot_gray"][0]) == 254
    assert int(dense["rz"][0]) == 255 and int(dense["max_order"][0]) == 8
    fit = fit_qubo(landscape)
    quadratic = ising_gate_counts(walsh_coefficients(fit.landscape), tol=1e-5)
    assert int(quadratic["cnot"][0]) == k * (k - 1)
    assert int(quadratic["rz"][0]) == k + k * (k - 1) // 2
    assert int(quadratic["max_order"][0]) == 2
