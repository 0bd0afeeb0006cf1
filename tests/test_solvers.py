"""Solvers: exhaustive optimum, normalisation, VQE against the known optimum, errors.

Compile time dominates, so every VQE solver is built once at module level, jitted
once, and always called with the same shapes (G = 64 groups).
"""

import chex
import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from qselax.bits import bit_table
from qselax.circuits import Ansatz, hea_resources
from qselax.solvers import (
    SOLVERS,
    SolveResult,
    best_of,
    exhaustive,
    make_solver,
    max_readout,
    normalize_landscapes,
    solver_spec,
    vqe,
)
from qselax.solvers.variational import objective

G = 64


def structured(seed, k, pair=0.1, groups=G):
    """Network-like costs ``C(s) = sum_k a_k x_k + pair * sum_jk b_jk x_j x_k``.

    Per-bit effects dominate and the pairwise terms are small, as for the cost of
    a network whose mask bits interact weakly; ``pair = 0`` is separable.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(groups, k))
    b = pair * rng.normal(size=(groups, k, k))
    x = bit_table(k).astype(np.float64)
    cost = np.einsum("sk,gk->gs", x, a) + np.einsum("sj,gjk,sk->gs", x, b, x)
    return jnp.asarray(cost, jnp.float32)


def uniform(seed, k, groups=G):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(size=(groups, 2**k)), jnp.float32)


def current(groups=G):
    return jnp.zeros((groups,), jnp.int32)


def optimum_rate(result, landscapes):
    return float(np.mean(np.asarray(result.index) == np.argmin(landscapes, axis=-1)))


def mean_rank(result, landscapes):
    """Configurations strictly cheaper than the chosen one, averaged over groups."""
    land = np.asarray(landscapes)
    chosen = np.take_along_axis(land, np.asarray(result.index)[:, None], axis=-1)
    return float(np.mean(np.sum(land < chosen, axis=-1)))


# One compiled solve per solver; assert_max_traces makes any retrace in any test
# (same shapes, new values) fail. chex identifies a function by its name and source,
# and every solver's ``solve`` is the same closure, hence one named wrapper each.
VQE4 = make_solver("vqe", 4)
VQE6 = make_solver("vqe", 6, layers=3, steps=100)  # readout 2^6/16 = 4
VQE4_PRODUCT = make_solver("vqe", 4, entangler="none")
VQE4_SAMPLE = make_solver("vqe", 4, readout=1, readout_mode="sample")


@jax.jit
@chex.assert_max_traces(n=1)
def solve4(key, landscapes, current):
    return VQE4.solve(key, landscapes, current)


@jax.jit
@chex.assert_max_traces(n=1)
def solve6(key, landscapes, current):
    return VQE6.solve(key, landscapes, current)


@jax.jit
@chex.assert_max_traces(n=1)
def solve4_product(key, landscapes, current):
    return VQE4_PRODUCT.solve(key, landscapes, current)


@jax.jit
@chex.assert_max_traces(n=1)
def solve4_sample(key, landscapes, current):
    return VQE4_SAMPLE.solve(key, landscapes, current)


# --- exhaustive. -------------------------------------------------------------------

EXHAUSTIVE3 = exhaustive(3)


class ExhaustiveTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_exhaustive_is_argmin(self):
        solve = self.variant(EXHAUSTIVE3.solve)

        @hypothesis.settings(max_examples=25, deadline=None)
        @hypothesis.given(
            # XLA on CPU flushes subnormals to zero, so they would tie with 0.
            hnp.arrays(
                np.float32,
                (5, 8),
                elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False),
            )
        )
        def check(landscapes):
            result = solve(jax.random.key(0), jnp.asarray(landscapes), current(5))
            assert isinstance(result, SolveResult)
            chex.assert_shape([result.index, result.top1, result.lookups], (5,))
            chex.assert_type([result.index, result.top1, result.lookups], jnp.int32)
            # Ties go to the lowest index, as in NumPy.
            np.testing.assert_array_equal(result.index, np.argmin(landscapes, -1))
            np.testing.assert_array_equal(result.top1, result.index)
            np.testing.assert_array_equal(result.lookups, np.full(5, 8))
            assert result.probs is None

        check()

    def test_resources(self):
        assert EXHAUSTIVE3.name == "exhaustive"
        assert EXHAUSTIVE3.resources == {"qubits": 0, "classical_lookups": 8}


# --- normalize_landscapes and best_of. ---------------------------------------------


class BaseTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_normalize_landscapes(self):
        rng = np.random.default_rng(0)
        scale = np.array([[1e-3], [1.0], [50.0], [1.0], [1.0]])
        shift = np.array([[5.0], [-3.0], [1e3], [0.0], [0.0]])
        raw = rng.normal(size=(5, 16)) * scale + shift
        # Flat landscapes, including constants whose float32 mean is inexact.
        raw[3], raw[4] = 0.1, 123.456
        raw = raw.astype(np.float32)
        out = np.asarray(self.variant(normalize_landscapes)(jnp.asarray(raw)))
        chex.assert_shape(out, (5, 16))
        chex.assert_tree_all_finite(out)
        np.testing.assert_allclose(out[:3].mean(-1), 0.0, atol=1e-5)
        np.testing.assert_allclose(out[:3].std(-1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(out[3:], np.zeros((2, 16)))
        # An increasing affine map: same ordering, same ground state.
        np.testing.assert_array_equal(
            np.argsort(out[:3], -1, kind="stable"), np.argsort(raw[:3], -1, "stable")
        )
        np.testing.assert_array_equal(out.argmin(-1)[:3], raw.argmin(-1)[:3])

    @chex.variants(with_jit=True, without_jit=True)
    def test_best_of_picks_the_cheapest_candidate(self):
        rng = np.random.default_rng(1)
        land = rng.normal(size=(6, 16)).astype(np.float32)
        cand = rng.integers(0, 16, size=(6, 3)).astype(np.int32)
        got = self.variant(best_of)(jnp.asarray(land), jnp.asarray(cand))
        chex.assert_shape(got, (6,))
        expected = [min(row, key=lambda s: land[g, s]) for g, row in enumerate(cand)]
        np.testing.assert_array_equal(got, expected)


# --- vqe: contracts. ---------------------------------------------------------------


def test_vqe_result_contract_k4():
    land = uniform(1, 4)
    result = solve4(jax.random.key(0), land, current())
    probs = np.asarray(result.probs)
    chex.assert_shape(result.probs, (G, 16))
    chex.assert_type(result.probs, jnp.float32)
    chex.assert_shape([result.index, result.top1, result.lookups], (G,))
    chex.assert_type([result.index, result.top1, result.lookups], jnp.int32)
    chex.assert_tree_all_finite(result.probs)
    assert probs.min() >= 0.0
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.top1, probs.argmax(-1))
    # K = 4: readout is capped at 2^4/16 = 1, so the pick is the top bitstring.
    assert VQE4.resources["readout"] == 1
    np.testing.assert_array_equal(result.lookups, np.ones(G))
    np.testing.assert_array_equal(result.index, result.top1)


def test_vqe_k6_index_is_best_of_top_readout():
    land = structured(2, 6, pair=0.3)
    result = solve6(jax.random.key(1), land, current())
    probs = np.asarray(result.probs)
    readout = VQE6.resources["readout"]
    assert readout == max_readout(6) == 4
    chex.assert_shape(result.probs, (G, 64))
    assert probs.min() >= 0.0
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.top1, probs.argmax(-1))
    np.testing.assert_array_equal(result.lookups, np.full(G, readout))
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :readout]
    assert all(result.index[g] in top[g] for g in range(G))
    np.testing.assert_array_equal(
        result.index, best_of(land, jnp.asarray(top, jnp.int32))
    )
    assert optimum_rate(result, land) >= 0.9


# --- vqe: quality against the exhaustive optimum. ----------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_vqe_finds_optimum_of_structured_landscapes(seed):
    land = structured(10 + seed, 4)
    result = solve4(jax.random.key(seed), land, current())
    exact = exhaustive(4).solve(jax.random.key(0), land, current())
    rate = float(np.mean(np.asarray(result.index) == np.asarray(exact.index)))
    # Measured 0.98-1.0 over six seeds; misses are near-degenerate minima.
    assert rate >= 0.9
    assert mean_rank(result, land) <= 0.1


def test_vqe_on_uniform_random_landscapes_is_far_above_chance():
    """Unstructured landscapes are hard for 3 layers: honest, measured bounds.

    Measured over six seeds: K=4 optimum rate 0.73-0.83 (chance 1/16), mean rank
    of the pick 0.17-0.30 (chance 7.5); K=6 rate 0.34-0.55 (chance 1/64 per
    lookup, 4 lookups), mean rank 1.0-1.4 (chance 31.5).
    """
    land4, land6 = uniform(3, 4), uniform(4, 6)
    r4 = solve4(jax.random.key(3), land4, current())
    r6 = solve6(jax.random.key(4), land6, current())
    rate4, rank4 = optimum_rate(r4, land4), mean_rank(r4, land4)
    rate6, rank6 = optimum_rate(r6, land6), mean_rank(r6, land6)
    print(f"uniform K=4 rate {rate4:.3f} rank {rank4:.2f}; K=6 {rate6:.3f} {rank6:.2f}")
    assert optimum_rate(r4, land4) >= 0.6
    assert mean_rank(r4, land4) <= 0.5
    assert optimum_rate(r6, land6) >= 0.25
    assert mean_rank(r6, land6) <= 2.5


def test_product_ansatz_solves_separable_landscapes_exactly():
    land = structured(5, 4, pair=0.0)
    result = solve4_product(jax.random.key(5), land, current())
    assert optimum_rate(result, land) == 1.0
    assert VQE4_PRODUCT.resources["two_qubit_gates"] == 0


def test_vqe_does_not_retrace_on_new_values():
    land = structured(6, 4)
    for seed in range(3):
        # Same shapes, new keys and values: assert_max_traces(n=1) would raise.
        result = solve4(jax.random.key(100 + seed), land * (seed + 1.0), current())
        chex.assert_shape(result.probs, (G, 16))
    assert solve4._cache_size() == 1


# --- vqe: sampled readout. ---------------------------------------------------------


def test_sample_readout_near_deterministic_state_gives_its_mode():
    land = structured(7, 4, pair=0.0)
    result = solve4_sample(jax.random.key(7), land, current())
    probs = np.asarray(result.probs)
    concentrated = probs.max(-1) > 0.99
    assert concentrated.mean() > 0.9
    # One Born sample of a state with p_max > 0.99 is its mode (the optimum).
    np.testing.assert_array_equal(
        np.asarray(result.index)[concentrated], probs.argmax(-1)[concentrated]
    )
    assert optimum_rate(result, land) >= 0.9
    np.testing.assert_array_equal(result.lookups, np.ones(G))


def test_sample_readout_follows_born_distribution():
    """Flat landscapes leave the state near |+>^K; readout 1 is one Born sample."""
    land = jnp.zeros((G, 16), jnp.float32)
    observed = np.zeros(16)
    expected = np.zeros(16)
    for seed in range(8):
        result = solve4_sample(jax.random.key(seed), land, current())
        probs = np.asarray(result.probs, np.float64)
        assert probs.max() < 0.2  # not converged: many outcomes are likely
        observed += np.bincount(np.asarray(result.index), minlength=16)
        expected += probs.sum(0)
        # Every pick was sampled, so it has non-negligible probability.
        assert (
            np.take_along_axis(probs, np.asarray(result.index)[:, None], 1).min() > 1e-3
        )
    stat = np.sum((observed - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(stat, df=15) > 1e-3, (observed, expected)
    # The "top" readout would put all 512 picks on a few argmax outcomes.
    assert np.count_nonzero(observed) >= 12


# --- make_solver and settings. -----------------------------------------------------


def test_make_solver_builds_registered_solvers():
    assert {"exhaustive", "vqe"} <= set(SOLVERS)
    assert make_solver("exhaustive", 3).name == "exhaustive"
    assert make_solver("vqe", 4, steps=5, layers=1).name == "vqe"


def test_make_solver_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="exhaustive") as err:
        make_solver("qaoa9", 4)
    assert "vqe" in str(err.value) and "qaoa" in str(err.value)


@pytest.mark.parametrize(
    "name, options", [("vqe", {"depth": 3}), ("exhaustive", {"layers": 2})]
)
def test_make_solver_bad_option(name, options):
    with pytest.raises(ValueError, match=name):
        make_solver(name, 4, **options)


@pytest.mark.parametrize(
    "k, options, match",
    [
        (6, {"readout": 5}, "exhaustive"),  # > 2^6/16 = 4
        (4, {"readout": 2}, "exhaustive"),
        (4, {"readout": 0}, "readout"),
        (4, {"steps": 0}, "steps"),
        (4, {"learning_rate": 0.0}, "learning_rate"),
        (4, {"learning_rate": -0.1}, "learning_rate"),
        (4, {"readout_mode": "best"}, "readout_mode"),
        (4, {"entangler": "iswap"}, "entangler"),
        (4, {"rotations": ("ry", "rw")}, "rotations"),
        (4, {"layers": -1}, "layers"),
        (4, {"gibbs": 0.0}, "gibbs"),
        (4, {"gibbs": -2.0}, "gibbs"),
        (0, {}, "k must"),
        (21, {}, "k must"),
    ],
)
def test_vqe_bad_settings_raise_value_error(k, options, match):
    with pytest.raises(ValueError, match=match):
        make_solver("vqe", k, **options)
    with pytest.raises(ValueError, match=match):
        vqe(k, **options)


def test_max_readout():
    assert [max_readout(k) for k in (1, 4, 5, 6, 8)] == [1, 1, 2, 4, 16]


@pytest.mark.parametrize(
    "k, options",
    [(4, {}), (6, {"layers": 2, "readout": 3, "steps": 7}), (4, {"entangler": "cz"})],
)
def test_vqe_resources(k, options):
    solver = make_solver("vqe", k, **options)
    res = solver.resources
    for field in (
        "qubits",
        "depth",
        "two_qubit_gates",
        "parameters",
        "optimizer_steps",
        "readout",
    ):
        assert isinstance(res[field], int), field
    layers = options.get("layers", 3)
    ansatz = Ansatz(k, layers, ("ry", "rz"), options.get("entangler", "cnot"))
    circuit = hea_resources(ansatz)
    assert {f: res[f] for f in circuit} == circuit
    assert res["qubits"] == k
    assert res["two_qubit_gates"] == layers * (k - 1)
    assert res["parameters"] == layers * 2 * k
    assert res["optimizer_steps"] == options.get("steps", 100)
    assert res["readout"] == options.get("readout", max_readout(k))


# --- Warm starts and the convergence stop. -----------------------------------------


def test_vqe_warm_start_continues_from_the_carried_angles():
    k, groups = 4, 6
    solver = make_solver(solver_spec("vqe", steps=40, warm_steps=5), k)
    land = jax.random.normal(jax.random.key(0), (groups, 2**k))
    current = jnp.zeros(groups, jnp.int32)
    cold = solver.init_carry(groups)
    chex.assert_shape(cold["warm"], (groups,))
    assert not bool(jnp.any(cold["warm"]))
    first = jax.jit(solver.solve)(jax.random.key(1), land, current, None, cold)
    np.testing.assert_array_equal(first.steps, 40)
    assert bool(jnp.all(first.carry["warm"]))
    second = jax.jit(solver.solve)(jax.random.key(2), land, current, None, first.carry)
    np.testing.assert_array_equal(second.steps, 5)
    # 5 more Adam steps from the tuned angles: close to them, and as good.
    moved = jnp.max(jnp.abs(second.carry["params"] - first.carry["params"]))
    assert float(moved) < 0.6
    np.testing.assert_array_equal(second.index, first.index)
    # without a carry, the solve is the cold one (same key, same answer)
    again = solver.solve(jax.random.key(1), land, current)
    np.testing.assert_array_equal(again.index, first.index)


def test_vqe_tolerance_stops_converged_groups_early():
    k = 3
    land = jnp.asarray(np.eye(2**k, dtype=np.float32)[:4] * -1.0)  # one-hot minima
    full = make_solver(solver_spec("vqe", steps=300), k)
    early = make_solver(solver_spec("vqe", steps=300, tol=1e-5), k)
    current = jnp.zeros(4, jnp.int32)
    a = full.solve(jax.random.key(3), land, current)
    b = early.solve(jax.random.key(3), land, current)
    np.testing.assert_array_equal(a.steps, 300)
    assert 0 < int(jnp.max(b.steps)) < 300
    np.testing.assert_array_equal(b.index, jnp.argmin(land, -1))


@pytest.mark.parametrize(
    "options",
    [
        {"warm_steps": 5, "shots": 64},
        {"tol": 1e-3, "noise": 0.01},
        {"gibbs": 4.0, "shots": 64},
    ],
)
def test_warm_starts_need_exact_expectations(options):
    with pytest.raises(ValueError, match="exact, noiseless"):
        make_solver(solver_spec("vqe", **options), 3)


def test_sweep_keeps_the_warm_carry_between_sweeps():
    from qselax.driver import Driver, initial_state
    from qselax.nk import NKParams, nk_landscape
    from qselax.sweeps import make_sweep

    n, k = 8, 3
    tables = np.random.default_rng(0).normal(size=(n, 2**k)).astype(np.float32)
    wiring = np.stack([(np.arange(n) + j) % n for j in range(k)], 1).astype(np.int32)
    solver = make_solver(solver_spec("vqe", steps=30, warm_steps=4), k)
    for mode in ("parallel", "sequential"):
        sweep = make_sweep(nk_landscape(wiring, n, k), solver, mode=mode, block_size=3)
        state = initial_state(jax.random.key(0), np.ones(n, np.float32))
        with Driver(3, progress=False) as driver:
            run = driver.run(sweep, NKParams(tables, wiring), state, 3, k=k)
        assert [h["optimizer_steps"] for h in run.history] == [30.0, 4.0, 4.0], mode
        warm = jax.tree.leaves(run.state.carry)
        assert all(np.all(np.asarray(x)) for x in warm if x.dtype == bool)


# --- The Gibbs objective. ------------------------------------------------------------


class GibbsObjectiveTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @hypothesis.settings(max_examples=30, deadline=None)
    @hypothesis.given(
        logits=hnp.arrays(np.float32, 16, elements=st.floats(-4, 4, width=32)),
        costs=hnp.arrays(np.float32, 16, elements=st.floats(-3, 3, width=32)),
        eta=st.sampled_from([0.5, 4.0, 16.0]),
    )
    def test_gibbs_lies_between_the_support_minimum_and_the_mean(
        self, logits, costs, eta
    ):
        probs = jax.nn.softmax(jnp.asarray(logits))
        costs = jnp.asarray(costs)
        f = self.variant(objective, static_argnums=2)
        mean, soft = f(probs, costs, None), f(probs, costs, eta)
        chex.assert_shape([mean, soft], ())
        chex.assert_tree_all_finite(soft)
        # Jensen: -(1/eta) log E[exp(-eta C)] <= E[C]; and it is >= min C.
        assert float(soft) <= float(mean) + 1e-5
        assert float(soft) >= float(jnp.min(costs)) - 1e-5
        np.testing.assert_allclose(mean, jnp.sum(probs * costs), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_gibbs_limits(self):
        probs = jnp.array([0.25, 0.5, 0.25, 0.0])
        costs = jnp.array([1.0, -0.5, 2.0, -9.0])
        f = self.variant(objective, static_argnums=2)
        # eta -> 0: the expectation; eta -> inf: the lowest cost with support.
        np.testing.assert_allclose(f(probs, costs, 1e-3), 0.5, atol=2e-3)
        np.testing.assert_allclose(f(probs, costs, 200.0), -0.5, atol=1e-2)
        # A basis state: its own cost at every eta (no probability on -9).
        basis = jnp.array([0.0, 1.0, 0.0, 0.0])
        np.testing.assert_allclose(f(basis, costs, 16.0), -0.5, atol=1e-6)
        # Its gradient in the probabilities is finite where a probability is 0.
        grad = jax.grad(lambda p: f(p, costs, 16.0))(probs)
        chex.assert_tree_all_finite(grad)


def test_gibbs_vqe_finds_flat_minima_more_often_than_the_expectation():
    """Flat bottoms, as a converged network's landscapes have: many configurations
    within a few hundredths of a spread of the best.  The Gibbs objective weighs
    them apart; the expected cost barely does."""
    rng = np.random.default_rng(7)
    raw = rng.normal(size=(G, 64))
    raw = np.sign(raw) * np.abs(raw) ** 0.25  # a dense band near the minimum
    land = jnp.asarray(raw, jnp.float32)
    plain = make_solver(solver_spec("vqe", steps=50, learning_rate=0.2), 6)
    gibbs = make_solver(solver_spec("vqe", steps=50, learning_rate=0.2, gibbs=16.0), 6)
    assert gibbs.resources["gibbs"] == 16.0 and "gibbs" not in plain.resources
    a = jax.jit(plain.solve)(jax.random.key(0), land, current())
    b = jax.jit(gibbs.solve)(jax.random.key(0), land, current())
    rate_a, rate_b = optimum_rate(a, land), optimum_rate(b, land)
    print(f"flat minima K=6: expectation {rate_a:.3f}, gibbs {rate_b:.3f}")
    assert rate_b >= rate_a + 0.1
    assert rate_b >= 0.8
