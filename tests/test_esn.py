"""NK Echo State Networks: structure, landscapes, selection modes, committees."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from episodes import python_episode

from qselax import esn as E
from qselax import nk, pole
from qselax import nk_selection as S
from qselax.solvers import solver_spec

# One tiny network and plant for the whole file, so every jitted function compiles
# for a single set of shapes.
TINY = E.ESNConfig(n=6, k=1, reservoir=8, output_scale=30.0, bias_scale=0.0)
PLANT = pole.PoleConfig(max_steps=40, stable_window=10)


@pytest.fixture(scope="module")
def net():
    return E.make_esn(jax.random.key(3), TINY)


@pytest.fixture(scope="module")
def land(net):
    return E.tabulate(net, PLANT, chunk=5)


def _episode_loop(net, out, bits, start, cfg):
    """A plain Python episode: output ``out`` with its bits controls the cart."""
    w_probe, b_probe = np.asarray(net.w_probe, np.float64), np.asarray(net.b_probe)
    w_out, b_out = np.asarray(net.w_out, np.float64), np.asarray(net.b_out)
    rows = np.asarray(net.neighbours)[out]

    def controller(z, obs):
        s = bits * np.tanh(b_probe[rows] + w_probe[rows] @ z)
        return np.tanh(b_out[out] + w_out[out] @ s)

    return python_episode(net, controller, start, cfg)


def test_make_esn_structure(net):
    r, n = TINY.reservoir, TINY.n
    chex.assert_shape(net.w_res, (r, r))
    chex.assert_shape(net.w_probe, (n, r))
    chex.assert_shape(net.w_out, (n, TINY.k + 1))
    radius = np.max(np.abs(np.linalg.eigvals(np.asarray(net.w_res, np.float64))))
    np.testing.assert_allclose(radius, TINY.spectral_radius, rtol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(net.neighbours), nk.nk_neighbours(n, TINY.k, "adjacent")
    )
    # No biases at bias_scale 0, and the warm-up of a bias-free reservoir stays 0.
    assert float(jnp.abs(net.b_res).max()) == 0.0
    np.testing.assert_array_equal(np.asarray(net.z0), 0.0)


def test_make_esn_defaults_match_reference():
    cfg = E.ESNConfig(n=10, k=2)
    e = E.make_esn(jax.random.key(0), cfg)
    w = np.asarray(e.w_probe)
    assert w.min() >= -0.6 and w.max() <= 0.6
    z = np.zeros(cfg.reservoir)
    for _ in range(cfg.warmup):
        z = np.tanh(np.asarray(e.b_res) + np.asarray(e.w_res) @ z)
    np.testing.assert_allclose(np.asarray(e.z0), z, atol=1e-6)
    density = np.mean(np.asarray(e.w_res) != 0)
    assert 0.05 < density < 0.15


@pytest.mark.optimized
def test_leak_one_is_the_plain_reservoir_bit_for_bit():
    cfg = dataclasses.replace(TINY, bias_scale=1.0)
    assert cfg.leak == 1.0
    e = E.make_esn(jax.random.key(5), cfg)
    z = jnp.zeros(cfg.reservoir, jnp.float32)
    for _ in range(cfg.warmup):
        z = jnp.tanh(e.b_res + e.w_res @ z)
    np.testing.assert_array_equal(np.asarray(e.z0), np.asarray(z))
    zb = jax.random.normal(jax.random.key(6), (4, cfg.reservoir))
    obs = jax.random.normal(jax.random.key(7), (4, 3))
    plain = jnp.tanh(e.b_res[None] + obs @ e.w_in.T + zb @ e.w_res.T)
    np.testing.assert_array_equal(np.asarray(E.reservoir_step(e, zb, obs)), plain)
    # Compiled, against the plain formula compiled: XLA may fuse a jitted tanh
    # differently from the op-by-op one (on some CPUs 1 ulp apart), so each side
    # is compared with its own kind; leak = 1 must fold away to the same program.
    jitted = jax.jit(E.reservoir_step)(e, zb, obs)
    plain_jitted = jax.jit(
        lambda e, zb, obs: jnp.tanh(e.b_res[None] + obs @ e.w_in.T + zb @ e.w_res.T)
    )(e, zb, obs)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(plain_jitted))


def test_leaky_reservoir_hand_computed():
    cfg = dataclasses.replace(TINY, bias_scale=1.0, leak=0.3)
    e = E.make_esn(jax.random.key(5), cfg)
    z = np.zeros(cfg.reservoir)
    b, w = np.asarray(e.b_res, np.float64), np.asarray(e.w_res, np.float64)
    for _ in range(cfg.warmup):
        z = 0.7 * z + 0.3 * np.tanh(b + w @ z)
    np.testing.assert_allclose(np.asarray(e.z0), z, rtol=1e-5, atol=1e-6)
    zb = np.asarray(jax.random.normal(jax.random.key(6), (4, cfg.reservoir)))
    obs = np.asarray(jax.random.normal(jax.random.key(7), (4, 3)))
    want = 0.7 * zb + 0.3 * np.tanh(b + obs @ np.asarray(e.w_in).T + zb @ w.T)
    got = E.reservoir_step(e, jnp.asarray(zb), jnp.asarray(obs))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_outputs_hand_computed(net):
    z = jax.random.normal(jax.random.key(1), (3, TINY.reservoir))
    bits = jnp.asarray(np.random.default_rng(0).integers(0, 2, (TINY.n, TINY.k + 1)))
    y = E.outputs(net, bits, z)
    s = np.tanh(np.asarray(net.b_probe) + np.asarray(z) @ np.asarray(net.w_probe).T)
    want = np.zeros((3, TINY.n))
    for i in range(TINY.n):
        for j, p in enumerate(np.asarray(net.neighbours)[i]):
            want[:, i] += np.asarray(net.w_out)[i, j] * bits[i, j] * s[:, p]
        want[:, i] = np.tanh(want[:, i] + np.asarray(net.b_out)[i])
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-6)


def test_landscapes_match_direct_episode_loop(net, land):
    chex.assert_shape(land.fitness, (TINY.n, 2 ** (TINY.k + 1)))
    start = np.asarray(pole.train_start(PLANT))
    for out, cfg in [(0, 3), (2, 1), (5, 2), (4, 0)]:
        bits = np.array([(cfg >> 1) & 1, cfg & 1], np.float64)
        steps, fitness = _episode_loop(net, out, bits, start, PLANT)
        assert int(land.steps[out, cfg]) == steps
        np.testing.assert_allclose(float(land.fitness[out, cfg]), fitness, rtol=1e-4)


def test_tabulate_from_several_starts_is_the_mean_of_single_starts(net, land):
    starts = pole.training_starts(PLANT, 3, jax.random.key(5))
    multi = E.tabulate(net, PLANT, chunk=7, starts=starts)
    chex.assert_shape(multi.fitness, land.fitness.shape)
    singles = [
        E.tabulate(net, PLANT, chunk=7, starts=starts[i : i + 1]) for i in range(3)
    ]
    np.testing.assert_allclose(singles[0].fitness, land.fitness, rtol=1e-6)
    want = np.mean([np.asarray(t.fitness) for t in singles], axis=0)
    np.testing.assert_allclose(multi.fitness, want, rtol=1e-5)
    np.testing.assert_array_equal(
        multi.steps, np.min([np.asarray(t.steps) for t in singles], axis=0)
    )
    # a random start's episode, replayed by the Python loop
    steps, fitness = _episode_loop(net, 2, np.array([1.0, 0.0]), starts[1], PLANT)
    assert int(singles[1].steps[2, 2]) == steps
    np.testing.assert_allclose(float(singles[1].fitness[2, 2]), fitness, rtol=1e-4)
    with pytest.raises(ValueError, match="starts must have shape"):
        E.tabulate(net, PLANT, starts=starts[:, :4])


def test_tabulate_compiles_once_per_shape(net, land):
    other = E.make_esn(jax.random.key(4), TINY)
    before = E._tabulate._cache_size()
    E.tabulate(other, PLANT, chunk=5)
    assert E._tabulate._cache_size() == before


def test_committee_weights():
    f = jnp.asarray([0.1, 0.4, 0.0, 0.3, 0.2])
    chex.assert_trees_all_close(E.committee_weights(f, "all"), f / 1.0)
    top = E.committee_weights(f, "top", top_fraction=0.4)
    chex.assert_trees_all_close(top, jnp.asarray([0, 4 / 7, 0, 3 / 7, 0]))
    chex.assert_trees_all_close(
        E.committee_weights(f, "best"), jnp.asarray([0.0, 1, 0, 0, 0])
    )
    flat = E.committee_weights(jnp.zeros(4), "all")
    chex.assert_trees_all_close(flat, jnp.full(4, 0.25))
    with pytest.raises(ValueError, match="committee"):
        E.committee_weights(f, "median")
    with pytest.raises(ValueError, match="top_fraction"):
        E.committee_weights(f, "top", top_fraction=0.0)


def test_select_independent_exhaustive_and_quantum(land):
    ex = S.select_independent(jax.random.key(0), land.fitness, "exhaustive")
    assert ex.optimum_rate == 1.0
    chex.assert_trees_all_close(ex.fitness, jnp.max(land.fitness, axis=-1))
    g = S.select_independent(jax.random.key(0), land.fitness, "grover")
    assert 0.0 <= g.optimum_rate <= 1.0
    assert g.oracle_calls > 0
    assert 0 <= g.calls_to_optimum <= g.oracle_calls
    assert ex.calls_to_optimum is None
    chex.assert_shape(g.bits, (TINY.n, TINY.k + 1))


def test_selection_compiles_once_per_solver(net, land):
    S.select_independent(jax.random.key(0), land.fitness, "anneal")
    _, solve = S._jitted_solve(solver_spec("anneal"), TINY.k + 1)
    before = solve._cache_size()
    S.select_independent(jax.random.key(1), land.fitness * 2.0, "anneal")
    assert solve._cache_size() == before == 1
    # Shared mode: one sweep per (wiring, window, solver), compiled once for every
    # seed (the driver reuses the executable: no compile time the second time).
    S.select_shared(jax.random.key(0), land.fitness, net.neighbours, "anneal")
    hits = S._shared_sweep.cache_info().hits
    S.select_shared(jax.random.key(1), land.fitness * 2.0, net.neighbours, "anneal")
    assert S._shared_sweep.cache_info().hits == hits + 1


def test_select_shared_never_falls_and_reaches_dp_with_one_window(net, land):
    x_opt, cost = nk.nk_dp(-land.fitness, circular=True)
    optimum = -float(cost)
    sel = S.select_shared(
        jax.random.key(0),
        land.fitness,
        net.neighbours,
        "exhaustive",
        sweeps=3,
        optimum=optimum,
    )
    start = float(jnp.sum(land.fitness[:, -1]))  # all-ones mask
    history = np.concatenate([[start], sel.history])
    assert np.all(np.diff(history) >= -1e-6)
    assert sel.history[-1] <= optimum + 1e-6
    chex.assert_trees_all_close(sel.bits, sel.mask[np.asarray(net.neighbours)])
    whole = S.select_shared(
        jax.random.key(0),
        land.fitness,
        net.neighbours,
        "exhaustive",
        sweeps=1,
        group_size=TINY.n,
        optimum=optimum,
    )
    assert whole.optimum_rate == 1.0
    np.testing.assert_allclose(whole.history[-1], optimum, rtol=1e-6)


def test_generalisation_scores_match_run_episodes(net, land):
    bits = jnp.ones((2, TINY.n, TINY.k + 1))
    weights = jnp.stack(
        [E.committee_weights(land.fitness[:, -1], k) for k in ("all", "best")]
    )
    scores, train = E.generalisation_scores(net, bits, weights, PLANT)
    grid = jnp.asarray(pole.generalisation_starts())
    for c in range(2):
        ep = E.evaluate(net, bits[c], weights[c], grid, PLANT, chunk=256)
        assert int(scores[c]) == int(jnp.sum(ep.balanced))
        one = E.evaluate(net, bits[c], weights[c], pole.train_start(PLANT)[None], PLANT)
        np.testing.assert_allclose(train[c], float(one.fitness[0]), rtol=1e-5)
    with pytest.raises(ValueError, match="bits must be"):
        E.generalisation_scores(net, bits[0], weights, PLANT)


def test_nk_esn_end_to_end():
    config = S.NKESNConfig(
        esn=TINY,
        pole=PLANT,
        solvers=("vqe", "grover"),
        sweeps=2,
        chunk=16,
        train_starts=1,
    )
    assert S.NKESNConfig(pole=PLANT).train_starts == 8  # upright plant: 8 starts
    assert S.NKESNConfig(pole=pole.plant_config("reference")).train_starts == 1
    res = S.nk_esn(jax.random.key(0), config)
    names = [(r["solver"], r["mode"]) for r in res.rows]
    assert names[:2] == [("exhaustive", "independent"), ("dp", "shared")]
    assert set(names[2:]) == {
        ("vqe", "independent"),
        ("vqe", "shared"),
        ("grover", "independent"),
        ("grover", "shared"),
    }
    assert res.episodes == TINY.n * 2 ** (TINY.k + 1)
    best_total = max(r["total_fitness"] for r in res.rows if r["mode"] == "shared")
    np.testing.assert_allclose(best_total, res.optimum, rtol=1e-6)
    for r in res.rows:
        assert set(r["generalisation"]) == {"all", "top", "best"}
        assert all(0 <= v <= 625 for v in r["generalisation"].values())
        if r["mode"] == "independent":
            # Each output's best setting bounds every independent selection.
            assert r["total_fitness"] <= res.rows[0]["total_fitness"] + 1e-6
    # The reference's best single output: the best table entry, its own bits.
    table = np.asarray(res.landscapes.fitness)
    entry = res.best_entry
    assert entry["fitness"] == pytest.approx(float(table.max()))
    i, c = E.best_entry(res.landscapes.fitness)
    assert entry["output"] == i and table[i, c] == table.max()
    assert 0 <= entry["generalisation"] <= 625
    # A given network is used as it is.
    cheap = dataclasses.replace(config, solvers=("anneal",), modes=("independent",))
    again = S.nk_esn(jax.random.key(5), cheap, esn=res.esn)
    np.testing.assert_array_equal(again.landscapes.fitness, res.landscapes.fitness)
    # Several training starts: the training start and random ones from fold_in(key, 1)
    multi = S.nk_esn(
        jax.random.key(5), dataclasses.replace(cheap, train_starts=3), esn=res.esn
    )
    starts = pole.training_starts(PLANT, 3, jax.random.fold_in(jax.random.key(5), 1))
    want = E.tabulate(res.esn, PLANT, chunk=16, starts=starts)
    np.testing.assert_array_equal(multi.landscapes.fitness, want.fitness)
    assert multi.episodes == 3 * res.episodes
    with pytest.raises(ValueError, match="esn has"):
        S.nk_esn(
            jax.random.key(0), config, esn=res.esn._replace(w_out=res.esn.w_out[:1])
        )


def test_best_entry_first_on_ties():
    assert E.best_entry(jnp.asarray([[0.1, 0.5], [0.5, 0.2]])) == (0, 1)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n": 0}, "n must"),
        ({"k": -1}, "k must"),
        ({"n": 3, "k": 3}, "k \\+ 1"),
        ({"density": 0.0}, "density"),
        ({"spectral_radius": 0.0}, "spectral_radius"),
        ({"connectivity": "ring"}, "connectivity"),
        ({"output_scale": -1.0}, "output_scale"),
        ({"warmup": -1}, "warmup"),
        ({"leak": 0.0}, "leak"),
        ({"leak": 1.5}, "leak"),
    ],
)
def test_esn_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change).validate()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"solvers": ("vqe", "vqe")}, "distinct"),
        ({"solvers": ("annealing",)}, "solver must be"),
        ({"modes": ("joint",)}, "modes"),
        ({"sweeps": 0}, "sweeps"),
        ({"group_size": 40}, "group_size"),
        ({"top_fraction": 1.5}, "top_fraction"),
        ({"chunk": 0}, "chunk"),
        ({"train_starts": 0}, "train_starts"),
    ],
)
def test_nk_esn_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(S.NKESNConfig(esn=TINY, pole=PLANT), **change).validate()


def test_tabulate_chunk_error(net):
    with pytest.raises(ValueError, match="chunk"):
        E.tabulate(net, PLANT, chunk=0)


def test_nk_esn_random_wiring_uses_exhaustive_reference():
    config = S.NKESNConfig(
        esn=dataclasses.replace(TINY, connectivity="random"),
        pole=PLANT,
        solvers=("anneal",),
        modes=("shared",),
        sweeps=2,
        chunk=16,
    )
    res = S.nk_esn(jax.random.key(1), config)
    names = [(r["solver"], r["mode"]) for r in res.rows]
    assert names == [
        ("exhaustive", "independent"),
        ("exhaustive", "shared"),
        ("anneal", "shared"),
    ]
    assert res.rows[1]["optimum_rate"] == 1.0
    np.testing.assert_allclose(res.rows[1]["total_fitness"], res.optimum, rtol=1e-6)
    assert res.rows[2]["total_fitness"] <= res.optimum + 1e-6


def test_nk_esn_resumes_from_its_tabulation_and_shared_sweeps(tmp_path):
    from qselax.checkpoints import Checkpoints

    config = S.NKESNConfig(esn=TINY, pole=PLANT, solvers=("sa",), sweeps=2, chunk=16)
    key = jax.random.key(0)

    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    with pytest.raises(Stop):  # after the tabulation and one shared sweep
        S.nk_esn(key, config, loggers=[stop], checkpoints=Checkpoints(tmp_path))
    assert Checkpoints(tmp_path).stages() == ["tabulation"]
    assert Checkpoints(tmp_path).sub("0-sa").stages() == ["shared"]
    want = S.nk_esn(key, config)
    got = S.nk_esn(key, config, checkpoints=Checkpoints(tmp_path))
    np.testing.assert_array_equal(got.landscapes.fitness, want.landscapes.fitness)
    untimed = lambda rows: [
        {k: v for k, v in r.items() if k != "select_s"} for r in rows
    ]
    assert untimed(got.rows) == untimed(want.rows)
