"""Finite shots, depolarizing noise, cost oracles and entanglement reporting.

Noise trajectories are checked exactly against TensorCircuit density-matrix circuits
(all Pauli patterns enumerated and weighted), sampling against Born probabilities,
the score-function gradient against the exact gradient, the network oracle against
the exact landscape, and the accounting (shots, look-ups) of every solver mode.
"""

import functools
import importlib
import itertools
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorcircuit as tc
from flax import nnx

import qselax
from qselax import circuits
from qselax.groups import flatten_masks, make_grouping
from qselax.landscapes import network_landscape, network_params
from qselax.networks import MaskableMLP, ones_masks, random_masks
from qselax.selection import SelectConfig, select
from qselax.solvers import anneal, grover, make_solver, qaoa, vqe
from qselax.solvers.base import normalize_landscapes
from qselax.solvers.measure import (
    advantages,
    gradient_fn,
    lookup_oracle,
    make_measurement,
    sample_configs,
    score_gradient,
)
from qselax.solvers.qaoa import qaoa_probs
from qselax.solvers.variational import tune


def _enumerated(probs_with_codes, rate, shape):
    """The exact noisy distribution: every Pauli pattern, weighted (one compile)."""
    n = int(np.prod(shape))
    patterns = np.asarray(list(itertools.product(range(4), repeat=n)), np.int32)
    weights = np.prod(np.where(patterns == 0, 1 - rate, rate / 3), axis=-1)

    def one(codes):
        with mock.patch.object(
            circuits, "depolarizing_codes", lambda key, r, s: codes.reshape(shape)
        ):
            return probs_with_codes()

    probs = jax.jit(jax.vmap(one))(jnp.asarray(patterns))
    return np.asarray(weights @ np.asarray(probs, np.float64))


def test_hea_noise_trajectories_average_to_the_density_matrix():
    ansatz = circuits.Ansatz(2, 2)
    params = circuits.init_hea_params(jax.random.key(3), ansatz, 1.0)
    rate = 0.3
    c = tc.DMCircuit(2)
    for q in range(2):
        c.h(q)
    for layer in range(2):
        c.cnot(0, 1)
        for r, name in enumerate(ansatz.rotations):
            for q in range(2):
                getattr(c, name)(q, theta=params[layer, r, q])
        for q in range(2):
            c.depolarizing(q, px=rate / 3, py=rate / 3, pz=rate / 3)
    expected = np.real(np.diag(np.asarray(c.densitymatrix())))
    got = _enumerated(
        lambda: circuits.hea_probs(
            params, ansatz, noise_key=jax.random.key(0), noise_rate=rate
        ),
        rate,
        (2, 2),
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_qaoa_noise_trajectories_average_to_the_density_matrix():
    land = jnp.array([0.3, -1.0, 0.5, 0.2])
    gamma, beta, rate = 0.7, 0.4, 0.2
    c = tc.DMCircuit(2)
    for q in range(2):
        c.h(q)
    c.any(0, 1, unitary=np.diag(np.exp(-1j * gamma * np.asarray(land))))
    for q in range(2):
        c.rx(q, theta=2 * beta)
    for q in range(2):
        c.depolarizing(q, px=rate / 3, py=rate / 3, pz=rate / 3)
    expected = np.real(np.diag(np.asarray(c.densitymatrix())))
    got = _enumerated(
        lambda: qaoa_probs(
            jnp.array([gamma]),
            jnp.array([beta]),
            land,
            noise_key=jax.random.key(0),
            noise_rate=rate,
        ),
        rate,
        (1, 2),
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("codes", [(1, 0, 0), (0, 2, 0), (3, 1, 2), (2, 2, 3)])
def test_pauli_string_matches_tensorcircuit_gates(codes):
    state = jax.random.normal(jax.random.key(1), (8,)) + 1j * jax.random.normal(
        jax.random.key(2), (8,)
    )
    state = (state / jnp.linalg.norm(state)).astype(jnp.complex64)
    c = tc.Circuit(3, inputs=state)
    for q, code in enumerate(codes):
        if code:
            getattr(c, "xyz"[code - 1])(q)
    expected = np.asarray(c.state())
    got = np.asarray(circuits.apply_pauli_string(state, jnp.asarray(codes), 3))
    # Equal up to the global phase dropped from Y = i X Z.
    overlap = abs(np.vdot(expected, got))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-5)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), atol=1e-6)


def test_depolarizing_codes_frequencies():
    rate = 0.3
    codes = np.asarray(circuits.depolarizing_codes(jax.random.key(0), rate, (200_000,)))
    freq = np.bincount(codes, minlength=4) / codes.size
    np.testing.assert_allclose(
        freq, [1 - rate, rate / 3, rate / 3, rate / 3], atol=4e-3
    )
    assert not np.asarray(
        circuits.depolarizing_codes(jax.random.key(0), 0.0, (9,))
    ).any()


def test_full_depolarizing_gives_uniform_probabilities():
    # p = 3/4 is the completely depolarizing channel: rho -> I / 2 per qubit.
    ansatz = circuits.Ansatz(3, 1)
    params = circuits.init_hea_params(jax.random.key(0), ansatz, 1.0)
    keys = jax.random.split(jax.random.key(1), 4096)
    probs = jax.vmap(
        lambda k: circuits.hea_probs(params, ansatz, noise_key=k, noise_rate=0.75)
    )(keys)
    np.testing.assert_allclose(np.asarray(probs.mean(0)), 1 / 8, atol=0.01)


@pytest.mark.parametrize("jit", [False, True])
def test_samples_follow_born_probabilities(jit):
    probs = jnp.asarray([[0.5, 0.25, 0.125, 0.125], [0.0, 0.0, 1.0, 0.0]])
    fn = jax.jit(sample_configs, static_argnums=2) if jit else sample_configs
    draws = np.asarray(fn(jax.random.key(0), probs, 40_000))
    chex.assert_shape(draws, (2, 40_000))
    freq = np.stack([np.bincount(d, minlength=4) / d.size for d in draws])
    # 4 standard errors of a Bernoulli mean at n = 40000 is at most 0.01.
    np.testing.assert_allclose(freq, probs, atol=0.01)


def test_advantages_are_centred_and_scaled():
    costs = jax.random.normal(jax.random.key(0), (5, 16)) * 3.0 + 7.0
    adv = np.asarray(advantages(costs))
    np.testing.assert_allclose(adv.sum(-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(adv.std(-1), 16 / 15, rtol=1e-4)
    assert not np.asarray(advantages(jnp.ones((2, 4)))).any()


def test_score_function_gradient_is_the_scaled_exact_gradient():
    ansatz = circuits.Ansatz(3, 2)
    params = circuits.init_hea_params(jax.random.key(0), ansatz, 0.8)[None]
    land = jax.random.normal(jax.random.key(1), (1, 8))

    def probs_fn(p, noise_key):
        del noise_key
        return jax.vmap(lambda q: circuits.hea_probs(q, ansatz))(p)

    m = make_measurement(shots=4096)
    grads = jax.jit(
        jax.vmap(
            lambda k: score_gradient(params, probs_fn, k, lookup_oracle(land), m)[0]
        )
    )(jax.random.split(jax.random.key(2), 64))
    estimate = np.asarray(grads.mean(0)).ravel()
    probs = probs_fn(params, None)[0]
    spread = float(jnp.sqrt(jnp.sum(probs * (land[0] - jnp.sum(probs * land[0])) ** 2)))
    exact = np.asarray(
        jax.grad(lambda p: jnp.sum(probs_fn(p, None) * land))(params)
    ).ravel()
    exact = exact / spread  # advantages are divided by the cost spread
    cosine = estimate @ exact / np.linalg.norm(estimate) / np.linalg.norm(exact)
    assert cosine > 0.98, cosine
    np.testing.assert_allclose(
        np.linalg.norm(estimate), np.linalg.norm(exact), rtol=0.1
    )


# --- Solvers in shot / noise mode. -------------------------------------------------

K = 4
G = 6


@functools.cache
def _landscapes():
    base = jnp.arange(2**K, dtype=jnp.float32)[::-1]
    noise = 0.2 * jax.random.normal(jax.random.key(5), (G, 2**K))
    return base[None] + noise


@functools.cache
def _jitted(name, **options):
    return jax.jit(make_solver(name, K, **options).solve)


SHOT_SOLVERS = [
    ("vqe", (("shots", 64), ("steps", 30))),
    ("qaoa", (("shots", 64), ("steps", 30))),
    ("anneal", (("shots", 64),)),
    ("anneal", (("shots", 64), ("learn_schedule", True), ("schedule_steps", 5))),
    ("vqe", (("noise", 0.01), ("steps", 30), ("trajectories", 4))),
    ("qaoa", (("shots", 64), ("noise", 0.01), ("steps", 10), ("trajectories", 4))),
]


@pytest.mark.parametrize("name,options", SHOT_SOLVERS)
def test_measured_solvers_contract(name, options):
    options = dict(options)
    land = _landscapes()
    res = _jitted(name, **options)(jax.random.key(0), land, jnp.zeros(G, jnp.int32))
    chex.assert_shape([res.index, res.top1, res.lookups, res.entropy], (G,))
    chex.assert_shape(res.probs, (G, 2**K))
    probs = np.asarray(res.probs)
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    entropy = np.asarray(res.entropy)
    assert ((entropy >= -1e-6) & (entropy <= K // 2 + 1e-5)).all()
    shots = options.get("shots")
    steps = options.get("steps", 100) if name != "anneal" else 0
    if name == "anneal" and options.get("learn_schedule"):
        steps = options["schedule_steps"]
    if shots is None:
        assert res.shots is None
        return
    # Empirical frequencies of `shots` measurements; the choice was observed.
    np.testing.assert_allclose(probs * shots, np.round(probs * shots), atol=1e-3)
    assert (probs[np.arange(G), np.asarray(res.index)] > 0).all()
    assert (np.asarray(res.top1) == probs.argmax(-1)).all()
    assert (np.asarray(res.shots) == shots * (steps + 1)).all()
    assert (np.asarray(res.lookups) == shots * steps + 2**K // 16).all()


def test_shot_vqe_solves_an_easy_landscape():
    land = _landscapes()
    res = _jitted("vqe", shots=64, steps=30)(
        jax.random.key(1), land, jnp.zeros(G, jnp.int32)
    )
    assert (np.asarray(res.index) == np.asarray(land.argmin(-1))).mean() >= 5 / 6


def test_shot_mode_uses_only_the_oracle():
    # An oracle that is the landscape + 100 at configuration 0: shot-mode readout
    # must see that, proving costs come from the oracle, not the landscapes.
    land = jnp.tile(jnp.arange(2**K, dtype=jnp.float32)[None], (G, 1))
    bias = jnp.zeros(2**K).at[0].set(100.0)

    def oracle(configs):
        return jnp.take_along_axis(land + bias[None], configs, axis=-1)

    solver = vqe(K, shots=64, steps=5, learning_rate=1e-6)
    res = solver.solve(jax.random.key(0), land, jnp.zeros(G, jnp.int32), oracle)
    assert (np.asarray(res.index) != 0).all()


def test_measured_solve_does_not_retrace():
    solver = vqe(K, shots=32, steps=3)
    fn = jax.jit(chex.assert_max_traces(solver.solve, n=1))
    land = _landscapes()
    for seed in range(3):
        fn(jax.random.key(seed), land + seed, jnp.zeros(G, jnp.int32))


def test_exact_solvers_report_entropy_and_product_ansatz_has_none():
    land = _landscapes()
    product = vqe(K, entangler="none", steps=10).solve(
        jax.random.key(0), land, jnp.zeros(G, jnp.int32)
    )
    np.testing.assert_allclose(np.asarray(product.entropy), 0.0, atol=1e-4)
    entangled = vqe(K, steps=10, init_scale=1.0).solve(
        jax.random.key(0), land, jnp.zeros(G, jnp.int32)
    )
    assert float(entangled.entropy.max()) > 0.05
    for solver in (qaoa(K, steps=2), anneal(K, steps=5)):
        res = solver.solve(jax.random.key(0), land, jnp.zeros(G, jnp.int32))
        assert res.entropy is not None and res.shots is None


def test_tuning_exact_with_noise_lowers_the_energy():
    ansatz = circuits.Ansatz(3, 2)
    land = normalize_landscapes(jax.random.normal(jax.random.key(0), (2, 8)))
    m = make_measurement(noise=0.01, trajectories=4)

    def probs_fn(p, noise_key):
        keys = jax.random.split(noise_key, p.shape[0])
        return jax.vmap(
            lambda q, k: circuits.hea_probs(q, ansatz, noise_key=k, noise_rate=0.01)
        )(p, keys)

    import optax

    params = jax.vmap(lambda k: circuits.init_hea_params(k, ansatz))(
        jax.random.split(jax.random.key(1), 2)
    )
    grad_fn = gradient_fn(
        probs_fn, landscapes=land, oracle=lookup_oracle(land), measurement=m
    )
    tuned = tune(params, grad_fn, optax.adam(0.1), 40, key=jax.random.key(2))

    def energy(p):
        probs = jax.vmap(lambda q: circuits.hea_probs(q, ansatz))(p)
        return np.asarray(jnp.sum(probs * land, -1))

    assert (energy(tuned) < energy(params) - 0.3).all()


# --- The network oracle and selection reporting. -----------------------------------


@functools.cache
def _tiny():
    model = MaskableMLP(5, (6,), 3, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    y = rng.integers(0, 3, 12).astype(np.int32)
    return model, x, y


@pytest.mark.parametrize("method", ["rank1", "suffix", "naive"])
def test_network_oracle_equals_landscape_lookups(method):
    model, x, y = _tiny()
    grouping = make_grouping("fan_in", model, 3)
    land = network_landscape(model, grouping, num_samples=12, evaluator=method)
    params = network_params(model, x, y)
    flat = jnp.asarray(flatten_masks(random_masks(jax.random.key(0), model)))
    lands = land.all(params, flat)
    ctx = land.prepare(params, flat)
    start = 0
    for i, segment in enumerate(land.segments):
        n = segment.num_groups
        configs = jax.random.randint(jax.random.key(i), (n, 5), 0, 8)
        arrays = jax.tree.map(jnp.asarray, segment.arrays)
        got = land.costs(params, flat, ctx, i, arrays, configs)
        chex.assert_shape(got, (n, 5))
        expected = jnp.take_along_axis(lands[start : start + n], configs, axis=-1)
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
        start += n


def _data():
    model, x, y = _tiny()
    return qselax.data.Dataset(
        name="tiny",
        x_train=x,
        y_train=y,
        x_val=x,
        y_val=y,
        x_test=x,
        y_test=y,
        num_classes=3,
        feature_shape=(5,),
    )


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_select_with_network_oracle_matches_landscape_oracle(mode):
    model, _, _ = _tiny()
    results = {}
    for oracle in ("landscape", "network"):
        config = SelectConfig(
            k=4,
            solver=vqe(shots=16, steps=4, readout=1),
            sweeps=1,
            mode=mode,
            block_size=4,
            oracle=oracle,
        )
        sel = select(jax.random.key(0), model, _data(), config, progress=False)
        results[oracle] = sel
    a, b = results["landscape"], results["network"]
    for ma, mb in zip(a.masks, b.masks, strict=True):
        np.testing.assert_array_equal(np.asarray(ma), np.asarray(mb))
    groups = a.grouping.num_groups
    assert a.shots == b.shots == groups * 16 * 5
    assert a.entanglement is not None and len(a.entanglement["per_layer"]) == 2
    assert a.history[0]["shots"] == a.shots


def test_selection_reports_grover_oracle_calls_and_no_entropy_for_classical():
    model, _, _ = _tiny()
    sel = select(
        jax.random.key(0),
        model,
        _data(),
        SelectConfig(k=4, solver="grover", sweeps=1),
        progress=False,
    )
    assert sel.oracle_calls > 0 and sel.shots > 0
    sel = select(
        jax.random.key(0),
        model,
        _data(),
        SelectConfig(k=4, solver="exhaustive", sweeps=1),
        progress=False,
    )
    assert sel.entanglement is None and sel.oracle_calls == 0 and sel.shots == 0
    assert ones_masks(model) is not None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shots": 1}, "shots"),
        ({"shots": 2.5}, "shots"),
        ({"noise": 1.0}, "noise"),
        ({"noise": -0.1}, "noise"),
        ({"noise": "high"}, "noise"),
        ({"trajectories": 0}, "trajectories"),
        ({"shots": 4, "noise": 0.1, "trajectories": 8}, "trajectories"),
    ],
)
@pytest.mark.parametrize("factory", [vqe, qaoa, anneal])
def test_bad_measurement_settings_raise(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(4, **kwargs)


def test_bad_oracle_raises():
    with pytest.raises(ValueError, match="oracle"):
        SelectConfig(oracle="hardware").validate()
    with pytest.raises(ValueError, match="noise rate"):
        circuits.depolarizing_codes(jax.random.key(0), 1.5, (2,))


def test_grover_noise_trajectories_average_to_the_density_matrix():
    grover_module = importlib.import_module("qselax.solvers.grover")
    signs = jnp.array([1.0, 1.0, 1.0, -1.0])
    rate = 0.3
    diffuser = 2 * np.full((4, 4), 0.25) - np.eye(4)
    c = tc.DMCircuit(2)
    for q in range(2):
        c.h(q)
    c.any(0, 1, unitary=np.diag(np.asarray(signs)) + 0j)
    c.any(0, 1, unitary=diffuser + 0j)
    for q in range(2):
        c.depolarizing(q, px=rate / 3, py=rate / 3, pz=rate / 3)
    expected = np.real(np.diag(np.asarray(c.densitymatrix())))
    got = _enumerated(
        lambda: jnp.square(
            grover_module.grover_state(
                signs, 1, noise_key=jax.random.key(0), noise_rate=rate
            )
        ),
        rate,
        (2,),
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_noisy_grover_search_runs_and_full_noise_loses_the_speed_up():
    land = jax.random.normal(jax.random.key(0), (64, 2**6))
    quiet = jax.jit(grover(6).solve)(jax.random.key(1), land, jnp.zeros(64, jnp.int32))
    noisy = jax.jit(grover(6, noise=0.75).solve)(
        jax.random.key(1), land, jnp.zeros(64, jnp.int32)
    )
    assert grover(6, noise=0.01).resources["noise"] == 0.01
    best = np.asarray(land.argmin(-1))
    # Fully depolarized rounds measure uniform states: GAS is then random search
    # with the same number of measurements, which finds the optimum less often.
    assert (np.asarray(quiet.index) == best).mean() >= 0.95
    assert (np.asarray(noisy.index) == best).mean() < 0.9
    with pytest.raises(ValueError, match="noise"):
        grover(4, noise=1.5)


@pytest.mark.parametrize("name", sorted(qselax.solvers.SOLVERS))
def test_every_solver_returns_the_cost_of_its_choice(name):
    land = jax.random.normal(jax.random.key(0), (2, 8))
    solver = make_solver(name, 3, **({"steps": 3} if name in ("vqe", "qaoa") else {}))
    res = solver.solve(jax.random.key(1), land, jnp.zeros(2, jnp.int32))
    chex.assert_shape(res.cost, (2,))
    expected = np.asarray(land)[np.arange(2), np.asarray(res.index)]
    np.testing.assert_allclose(np.asarray(res.cost), expected)
    assert set(qselax.solvers.STANDARD_RESOURCES) <= set(solver.resources)
