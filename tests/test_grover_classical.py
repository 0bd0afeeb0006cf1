"""Tests for qselax.solvers.grover (GAS) and qselax.solvers.classical (sa, random)."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import stats

from qselax.bits import bit_table
from qselax.solvers.classical import default_sa_steps, random_search, sa
from qselax.solvers.grover import (
    _sample,
    default_oracle_budget,
    diffuser_two_qubit_gates,
    grover,
    grover_circuit,
    grover_probs,
    grover_search,
    grover_state,
    threshold_signs,
)

# --- Module-level jitted functions: each shape compiles once per session. --------

_search = jax.jit(
    grover_search, static_argnames=("max_rounds", "lam", "oracle_budget", "diffuser")
)
_probs = jax.jit(grover_probs, static_argnames="diffuser")
_samples = jax.jit(jax.vmap(_sample, in_axes=(0, None)))


@functools.cache
def _solver(name, k, **options):
    factory = {"grover": grover, "sa": sa, "random": random_search}[name]
    return factory(k, **options)


@functools.cache
def _jitted_solve(name, k):
    return jax.jit(_solver(name, k).solve)


def _random_landscapes(seed, num_groups, k):
    return jax.random.normal(jax.random.key(seed), (num_groups, 2**k), jnp.float32)


def _structured_landscapes(seed, num_groups, k):
    """C(x) = sum_k a_k x_k + 0.3 sum_{k<l} b_kl x_k x_l, a, b ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(num_groups, k))
    b = np.triu(rng.normal(size=(num_groups, k, k)), 1)
    x = bit_table(k).astype(np.float64)
    costs = a @ x.T + 0.3 * np.einsum("sk,gkl,sl->gs", x, b, x)
    return jnp.asarray(costs, jnp.float32)


def _optimum_rate(landscapes, index):
    best = np.min(np.asarray(landscapes), axis=-1)
    chosen = np.take_along_axis(np.asarray(landscapes), np.asarray(index)[:, None], 1)
    return float(np.mean(chosen[:, 0] <= best))


# --- Hand-written NumPy Grover, qubit 0 = most significant bit. ------------------

H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
X = np.array([[0, 1], [1, 0]])


def _kron_all(gate, k):
    out = np.ones((1, 1))
    for _ in range(k):
        out = np.kron(out, gate)
    return out


def numpy_grover(signs, iterations):
    size = len(signs)
    plus = np.full(size, size**-0.5)
    oracle = np.diag(signs)
    diffuser = 2 * np.outer(plus, plus) - np.eye(size)
    psi = plus
    for _ in range(iterations):
        psi = diffuser @ (oracle @ psi)
    return psi


class GroverCircuitTest(parameterized.TestCase):
    @parameterized.product(k=(2, 3), diffuser=("reflection", "gates"), seed=(0, 1))
    def test_iterations_match_numpy(self, k, diffuser, seed):
        landscape = _random_landscapes(seed, 1, k)[0]
        threshold = jnp.sort(landscape)[seed + 1]  # seed + 1 marked configurations
        signs = threshold_signs(landscape, threshold)
        np.testing.assert_array_equal(
            np.asarray(signs), np.where(np.asarray(landscape) < threshold, -1, 1)
        )
        for r in (1, 2):
            got = grover_state(signs, r, diffuser)
            want = numpy_grover(np.asarray(signs, np.float64), r)
            np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)

    @parameterized.parameters(1, 2, 3)
    def test_gate_diffuser_is_minus_reflection(self, k):
        # H^K X^K C^{K-1}Z X^K H^K as explicit matrices equals -(2|s><s| - I).
        size = 2**k
        mcz = np.diag([1.0] * (size - 1) + [-1.0])
        hk, xk = _kron_all(H, k), _kron_all(X, k)
        gates = hk @ xk @ mcz @ xk @ hk
        plus = np.full(size, size**-0.5)
        want = -(2 * np.outer(plus, plus) - np.eye(size))
        np.testing.assert_allclose(gates, want, atol=1e-12)

    @parameterized.parameters(0, 1, 2, 3)
    def test_exported_circuit_matches_numpy(self, r):
        signs = np.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0])
        state = np.asarray(grover_circuit(signs, r).state())
        np.testing.assert_allclose(state, (-1) ** r * numpy_grover(signs, r), atol=1e-6)


class AmplitudeAmplificationTest(parameterized.TestCase):
    @parameterized.parameters(4, 5, 6)
    def test_single_marked_item(self, k):
        size = 2**k
        marked = (5 * k) % size
        signs = jnp.ones(size, jnp.float32).at[marked].set(-1.0)
        theta = np.arcsin(size**-0.5)
        r_opt = int(round(np.pi / 4 * np.sqrt(size)))
        for r in (0, 1, r_opt):
            probs = np.asarray(_probs(signs, jnp.int32(r)))
            assert probs.min() >= 0
            np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-6)
            np.testing.assert_allclose(
                probs[marked], np.sin((2 * r + 1) * theta) ** 2, atol=1e-5
            )
        assert probs[marked] > 0.9  # r_opt iterations find it almost surely

    @hypothesis.settings(max_examples=15, deadline=None)
    @hypothesis.given(
        st.lists(st.booleans(), min_size=8, max_size=8), st.integers(0, 6)
    )
    def test_probabilities_are_a_distribution(self, marks, r):
        signs = jnp.where(jnp.asarray(marks), -1.0, 1.0).astype(jnp.float32)
        probs = np.asarray(_probs(signs, jnp.int32(r)))
        assert probs.min() >= 0
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
        # M of S marked: every marked item has the same probability (symmetry).
        got = probs[np.asarray(marks)]
        if got.size:
            np.testing.assert_allclose(got, got[0], atol=1e-6)

    def test_measurements_follow_born_probabilities(self):
        # Chi-square of sampled bitstrings against the Born distribution (netket's
        # sampler tests); fixed seed, so the test is deterministic.
        signs = jnp.asarray([1, -1, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.0])
        probs = _probs(signs, jnp.int32(1))
        num = 40_000
        u = jax.random.uniform(jax.random.key(3), (num,), jnp.float32)
        counts = np.bincount(np.asarray(_samples(u, probs)), minlength=16)
        expected = num * np.asarray(probs, np.float64)
        _, p_value = stats.chisquare(counts, expected / expected.sum() * num)
        assert p_value > 0.01

    def test_zero_probability_never_measured(self):
        probs = jnp.asarray([0.0, 0.5, 0.0, 0.0, 0.25, 0.0, 0.25, 0.0])
        u = jnp.concatenate([jnp.linspace(0.0, 1.0, 1001)[:-1], jnp.array([0.9999999])])
        got = np.asarray(_samples(u, probs))
        assert set(got.tolist()) == {1, 4, 6}


# --- Grover adaptive search. -------------------------------------------------------


class GroverSearchTest(parameterized.TestCase):
    @parameterized.parameters(6, 8)
    def test_finds_optimum_at_default_budget(self, k):
        landscapes = _random_landscapes(10 + k, 256, k)
        out = _search(jax.random.key(k), landscapes)
        optimal = np.asarray(
            jnp.take_along_axis(landscapes, out.index[:, None], 1)[:, 0]
            <= jnp.min(landscapes, axis=-1)
        )
        assert optimal.mean() >= 0.9
        budget = default_oracle_budget(k)
        calls = np.asarray(out.oracle_calls)
        assert calls.max() <= budget
        np.testing.assert_array_equal(out.lookups, out.rounds + 1)
        assert int(out.lookups.max()) <= budget + 1
        # The optimum, once kept, stays kept; never found <=> not optimal.
        cto = np.asarray(out.calls_to_optimum)
        np.testing.assert_array_equal(cto >= 0, optimal)
        assert np.all(cto <= calls)
        lto = np.asarray(out.lookups_to_optimum)
        np.testing.assert_array_equal(lto >= 1, optimal)
        if k == 8:
            assert cto[optimal].mean() < 2**k / 4  # well below exhaustive's 2^K
        chex.assert_shape(out.probs, (256, 2**k))
        np.testing.assert_allclose(np.asarray(out.probs).sum(-1), 1.0, atol=1e-5)

    def test_budget_and_round_caps(self):
        landscapes = _random_landscapes(0, 64, 4)
        out = _search(jax.random.key(0), landscapes, oracle_budget=6, max_rounds=10)
        calls, rounds = np.asarray(out.oracle_calls), np.asarray(out.rounds)
        assert calls.max() <= 6 and rounds.max() <= 10
        # Each group stops at whichever cap it reaches first; both caps occur.
        by_budget, by_rounds = calls == 6, rounds == 10
        assert np.all(by_budget | by_rounds)
        assert by_budget.any() and by_rounds.any()
        np.testing.assert_array_equal(out.lookups, rounds + 1)

    def test_gate_diffuser_gives_the_same_search(self):
        landscapes = _random_landscapes(1, 8, 3)
        a = _search(jax.random.key(2), landscapes, oracle_budget=30)
        b = _search(jax.random.key(2), landscapes, oracle_budget=30, diffuser="gates")
        for x, y in zip(a[:-1], b[:-1], strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)

    def test_solver_contract(self):
        k, num_groups = 4, 8  # the shapes of TransformTest: shared compilations
        landscapes = _random_landscapes(4, num_groups, k)
        current = jnp.zeros(num_groups, jnp.int32)
        out = _jitted_solve("grover", k)(jax.random.key(5), landscapes, current)
        search = _search(jax.random.key(5), landscapes)
        chex.assert_shape([out.index, out.top1, out.lookups], (num_groups,))
        chex.assert_type([out.index, out.top1, out.lookups], jnp.int32)
        np.testing.assert_array_equal(out.index, search.index)
        np.testing.assert_array_equal(out.lookups, search.lookups)
        np.testing.assert_array_equal(out.top1, jnp.argmax(out.probs, axis=-1))

    def test_resources(self):
        res = grover(8).resources
        assert res["qubits"] == 8
        assert res["oracle_budget"] == 450 == default_oracle_budget(8)
        assert res["diffuser_two_qubit_gates"] == 253
        assert res["depth_per_iteration"] == 1 + 4 + 253
        assert [diffuser_two_qubit_gates(k) for k in (1, 2, 3)] == [0, 1, 5]
        assert grover(3, oracle_budget=7, max_rounds=2).resources["max_rounds"] == 2


# --- Classical references. ---------------------------------------------------------


class ClassicalTest(parameterized.TestCase):
    @parameterized.parameters(8, 10)
    def test_sa_on_structured_landscapes(self, k):
        num_groups = 256
        landscapes = _structured_landscapes(k, num_groups, k)
        current = jnp.asarray(np.random.default_rng(k).integers(0, 2**k, num_groups))
        out = _jitted_solve("sa", k)(jax.random.key(k), landscapes, current)
        assert _optimum_rate(landscapes, out.index) >= 0.8
        assert out.probs is None
        np.testing.assert_array_equal(out.index, out.top1)
        np.testing.assert_array_equal(out.lookups, default_sa_steps(k) + 1)
        assert default_sa_steps(k) + 1 < 2**k / 2  # not exhaustive
        # The start is visited, so the result is never worse than current.
        chosen = jnp.take_along_axis(landscapes, out.index[:, None], 1)[:, 0]
        start = jnp.take_along_axis(landscapes, current[:, None].astype(jnp.int32), 1)
        assert bool(jnp.all(chosen <= start[:, 0]))

    def test_random_search_is_best_of_its_samples(self):
        k, num_groups = 8, 32
        landscapes = _random_landscapes(7, num_groups, k)
        current = jnp.zeros(num_groups, jnp.int32)
        key = jax.random.key(8)
        out = _jitted_solve("random", k)(key, landscapes, current)
        samples = 2**k // 16
        np.testing.assert_array_equal(out.lookups, samples)
        # Brute force on the same keys (the draw the docstring documents).
        keys = jax.random.split(key, num_groups)
        draw = jax.jit(jax.vmap(lambda kk: jax.random.randint(kk, (samples,), 0, 2**k)))
        cands = np.asarray(draw(keys))
        costs = np.take_along_axis(np.asarray(landscapes), cands, 1)
        want = cands[np.arange(num_groups), np.argmin(costs, axis=1)]
        np.testing.assert_array_equal(out.index, want)
        assert np.all(np.any(cands == np.asarray(out.index)[:, None], axis=1))
        assert _optimum_rate(landscapes, out.index) < 0.5  # it is not exhaustive


# --- jit / no-jit, retracing, errors. -----------------------------------------------


class TransformTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("grover", "sa", "random")
    def test_jit_matches_eager(self, name):
        k, num_groups = 4, 8
        landscapes = _random_landscapes(9, num_groups, k)
        current = jnp.arange(num_groups, dtype=jnp.int32)
        solve = self.variant(_solver(name, k).solve)
        out = solve(jax.random.key(1), landscapes, current)
        ref = _jitted_solve(name, k)(jax.random.key(1), landscapes, current)
        np.testing.assert_array_equal(out.index, ref.index)
        np.testing.assert_array_equal(out.lookups, ref.lookups)
        if name == "grover":
            np.testing.assert_allclose(out.probs, ref.probs, atol=1e-6)

    def test_no_retrace(self):
        k = 4
        solver = grover(k, oracle_budget=40)

        @jax.jit
        @chex.assert_max_traces(n=1)
        def step(key, landscapes, current):
            return solver.solve(key, landscapes, current)

        current = jnp.zeros(8, jnp.int32)
        for seed in range(3):
            step(jax.random.key(seed), _random_landscapes(seed, 8, k), current)
        chex.clear_trace_counter()


class ErrorTest(parameterized.TestCase):
    @parameterized.parameters(
        (grover, {"k": 0}, "k"),
        (grover, {"k": 21}, "k"),
        (grover, {"k": 2.5}, "k"),
        (grover, {"k": 4, "lam": 1.0}, "lam"),
        (grover, {"k": 4, "lam": 0.5}, "lam"),
        (grover, {"k": 4, "oracle_budget": 0}, "oracle_budget"),
        (grover, {"k": 4, "max_rounds": 0}, "max_rounds"),
        (grover, {"k": 4, "diffuser": "qram"}, "diffuser"),
        (sa, {"k": 0}, "k"),
        (sa, {"k": 4, "steps": 0}, "steps"),
        (sa, {"k": 4, "restarts": 0}, "restarts"),
        (sa, {"k": 4, "t0": 0.0}, "t0"),
        (sa, {"k": 4, "t1": -1.0}, "t1"),
        (random_search, {"k": -1}, "k"),
        (random_search, {"k": 4, "samples": 0}, "samples"),
    )
    def test_bad_settings(self, factory, kwargs, name):
        with pytest.raises(ValueError, match=rf"^{name} must"):
            factory(**kwargs)

    @parameterized.parameters("grover", "sa", "random")
    def test_bad_landscape_shape(self, name):
        solver = _solver(name, 3)
        with pytest.raises(ValueError, match="landscapes"):
            solver.solve(jax.random.key(0), jnp.zeros((2, 16)), jnp.zeros(2, jnp.int32))

    def test_grover_search_needs_power_of_two(self):
        with pytest.raises(ValueError, match="landscapes"):
            grover_search(jax.random.key(0), jnp.zeros((2, 12)))
