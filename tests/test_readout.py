"""Readout-trained ESNs (CMA-ES over the readout): the masks-only baseline."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from episodes import python_episode

from qselax import esn as E
from qselax import pole
from qselax import readout as R

pytest.importorskip("cma")

TINY = E.ESNConfig(n=4, k=1, reservoir=8)
PLANT = pole.PoleConfig(max_steps=40, stable_window=10)
CONFIG = R.ReadoutConfig(episodes=96, popsize=8, sigma0=1.0)


@pytest.fixture(scope="module")
def net():
    return E.make_esn(jax.random.key(3), TINY)


def _episode_loop(net, w, start, cfg):
    """A plain Python episode of the readout controller ``tanh(w . [z, u, 1])``."""
    w = np.asarray(w, np.float64)
    return python_episode(
        net, lambda z, obs: np.tanh(w @ np.concatenate([z, obs, [1.0]])), start, cfg
    )


@pytest.fixture(scope="module")
def trained(net):
    starts = pole.training_starts(PLANT, 2, jax.random.key(9))
    return R.train_readout(jax.random.key(1), net, PLANT, CONFIG, starts=starts), starts


def test_train_readout_budget_and_best_so_far(net, trained):
    result, starts = trained
    chex.assert_shape(result.weights, (R.n_features(net),))
    assert R.n_features(net) == TINY.reservoir + 4
    # 96 episodes: 6 generations of 8 candidates from 2 starts
    assert (result.generations, result.popsize, result.episodes) == (6, 8, 96)
    assert np.all(np.diff(result.history) >= 0)
    assert result.fitness == pytest.approx(float(result.history[-1]))
    # the kept readout's fitness is the mean of its episodes, replayed in Python
    replay = [_episode_loop(net, result.weights, s, PLANT) for s in np.asarray(starts)]
    np.testing.assert_allclose(result.fitness, np.mean([f for _, f in replay]), 1e-4)
    assert result.steps == min(t for t, _ in replay)
    # the same key gives the same search
    again = R.train_readout(jax.random.key(1), net, PLANT, CONFIG, starts=starts)
    np.testing.assert_array_equal(again.weights, result.weights)


def test_readout_scores_match_single_episodes(net, trained):
    result, _ = trained
    w = np.stack([result.weights, np.zeros_like(result.weights)])
    scores, fitness = R.readout_scores(net, w, PLANT)
    chex.assert_shape(scores, (2,))
    assert np.all((scores >= 0) & (scores <= 625))
    # evaluate() from the training start is the same episode as the scores' last
    ep = R.evaluate(net, w[0], pole.train_start(PLANT)[None], PLANT)
    np.testing.assert_allclose(float(ep.fitness[0]), fitness[0], rtol=1e-6)
    for i in range(2):
        t, f = _episode_loop(net, w[i], pole.train_start(PLANT), PLANT)
        np.testing.assert_allclose(fitness[i], f, rtol=1e-4)


@pytest.mark.parametrize(
    "config, match",
    [
        (R.ReadoutConfig(episodes=0), "episodes"),
        (R.ReadoutConfig(popsize=1), "popsize"),
        (R.ReadoutConfig(episodes=10, popsize=16), "exceeds"),
        (R.ReadoutConfig(sigma0=0.0), "sigma0"),
    ],
)
def test_readout_config_errors(net, config, match):
    with pytest.raises(ValueError, match=match):
        R.train_readout(jax.random.key(0), net, PLANT, config)


def test_bad_starts_and_weights(net):
    with pytest.raises(ValueError, match="starts must have shape"):
        R.train_readout(jax.random.key(0), net, PLANT, CONFIG, starts=jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="exceeds"):
        R.train_readout(
            jax.random.key(0), net, PLANT, CONFIG, starts=jnp.zeros((13, 6))
        )
    with pytest.raises(ValueError, match="weights must be"):
        R.readout_scores(net, jnp.zeros((1, 5)), PLANT)
    with pytest.raises(ValueError, match="weights must be"):
        R.evaluate(net, jnp.zeros(5), jnp.zeros((1, 6)), PLANT)
    with pytest.raises(ValueError, match="starts must have"):
        R.evaluate(net, jnp.zeros(R.n_features(net)), jnp.zeros((6,)), PLANT)
