"""The field's mask finders (edge-popup, supermask), the one optax loop and the
networks of the strong-lottery-ticket literature."""

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from qselax.cli import build_parser, main, resolve
from qselax.data import Dataset
from qselax.networks import (
    MaskableCNN,
    apply_masked,
    count_weights,
    make_model,
    mask_shapes,
)
from qselax.results import COMMON_KEYS, check_result
from qselax.scores import (
    SCORE_DEFAULTS,
    ScoreConfig,
    edge_popup_masks,
    init_scores,
    score_config,
    supermask_masks,
    train_scores,
)
from qselax.training import fit


def _blobs(n, seed, classes=3, dim=6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    centers = 2.5 * np.eye(classes, dim)
    return (centers[y] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32), y


def _dataset():
    (xt, yt), (xv, yv), (xs, ys) = (
        _blobs(n, s) for n, s in [(192, 0), (64, 1), (64, 2)]
    )
    return Dataset(xt, yt, xv, yv, xs, ys, 3, "blobs", (6,))


DATA = _dataset()
MODEL = make_model("mlp", (6,), 3, hidden=(32,), seed=0)
SHAPES = mask_shapes(MODEL)


# ------------------------------------------------------------------- masks


class MaskTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.1, 0.5, 0.77, 1.0)
    def test_edge_popup_keeps_the_top_fraction_per_layer(self, keep):
        scores = init_scores(jax.random.key(1), MODEL)
        masks = self.variant(lambda s: edge_popup_masks(s, keep))(scores)
        for m, s in zip(masks, scores, strict=True):
            chex.assert_shape(m, s.shape)
            assert int(m.sum()) == max(1, round(keep * s.size))
            a = np.abs(np.asarray(s)).ravel()
            on = np.asarray(m).ravel() == 1
            assert a[on].min() >= a[~on].max(initial=-1.0)  # the largest |score|s

    @chex.variants(with_jit=True, without_jit=True)
    def test_supermask_masks_are_binary_with_mask_shapes(self):
        scores = init_scores(jax.random.key(6), MODEL)
        masks = self.variant(supermask_masks)(jax.random.key(7), scores)
        chex.assert_trees_all_equal_shapes(masks, scores)
        assert all(set(np.unique(m)) <= {0.0, 1.0} for m in masks)


def test_edge_popup_gradient_is_straight_through():
    scores = init_scores(jax.random.key(2), MODEL)
    weights = tuple(jax.random.normal(jax.random.key(3), s) for s in SHAPES)

    def f(s):
        masks = edge_popup_masks(s, 0.5)
        return sum(jnp.sum(m * w) for m, w in zip(masks, weights, strict=True))

    grads = jax.grad(f)(scores)
    for g, s, w in zip(grads, scores, weights, strict=True):
        np.testing.assert_allclose(g, jnp.sign(s) * w, rtol=1e-6)


def test_supermask_expected_mask_and_gradient():
    scores = init_scores(jax.random.key(4), MODEL)
    masks = supermask_masks(None, scores)
    for m, s in zip(masks, scores, strict=True):
        np.testing.assert_array_equal(m, (jax.nn.sigmoid(s) > 0.5).astype(m.dtype))
    grads = jax.grad(lambda s: sum(jnp.sum(m) for m in supermask_masks(None, s)))(
        scores
    )
    for g, s in zip(grads, scores, strict=True):
        p = jax.nn.sigmoid(s)
        np.testing.assert_allclose(g, p * (1 - p), rtol=1e-6)


def test_supermask_samples_follow_the_sigmoid():
    """Bernoulli samples: the mean of many draws approaches sigmoid(score)."""
    s = (jnp.linspace(-3.0, 3.0, 7),)
    draws = jax.vmap(lambda k: supermask_masks(k, s)[0])(
        jax.random.split(jax.random.key(5), 20000)
    )
    p = jax.nn.sigmoid(s[0])
    sigma = np.sqrt(p * (1 - p) / 20000)
    assert np.all(np.abs(draws.mean(0) - p) < 5 * sigma + 1e-6)
    assert set(np.unique(draws)) <= {0.0, 1.0}


# ------------------------------------------------------------------- training


def test_fit_keeps_the_best_validation_epoch_and_compiles_once():
    x, y = jnp.asarray(DATA.x_train), jnp.asarray(DATA.y_train)
    w0 = jnp.zeros((6, 3))

    def loss(w, key, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(xb @ w, yb).mean()

    def evaluate(w, split):
        xv, yv = split
        return {"select": jnp.mean(jnp.argmax(xv @ w, -1) == yv)}

    val = (jnp.asarray(DATA.x_val), jnp.asarray(DATA.y_val))
    out = fit(
        jax.random.key(0),
        chex.assert_max_traces(loss, n=1),  # one compile of the whole training
        w0,
        optax.sgd(0.05),
        x,
        y,
        val,
        evaluate,
        epochs=6,
        batch_size=50,
    )
    chex.assert_shape(out.history["loss"], (6,))
    assert out.steps == 6 * (192 // 50) and out.samples == out.steps * 50
    assert out.best_epoch == int(np.argmax(out.history["select"])) + 1
    best = evaluate(out.params, val)["select"]
    assert float(best) == float(out.history["select"].max())


@pytest.mark.parametrize("method", ["edge-popup", "supermask"])
def test_train_scores_learns_a_mask_of_frozen_weights(method):
    before = [np.asarray(MODEL.kernel(l)).copy() for l in range(MODEL.num_layers)]
    config = score_config(method, epochs=15, batch_size=32)
    out = train_scores(jax.random.key(0), MODEL, DATA, config)
    for l, w in enumerate(before):  # the weights are never trained
        np.testing.assert_array_equal(MODEL.kernel(l), w)
    assert [m.shape for m in out.masks] == list(SHAPES)
    assert all(m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1} for m in out.masks)
    assert out.test_accuracy >= 0.85 and out.val_accuracy >= 0.85
    vals = [h["val_accuracy"] for h in out.history]
    assert out.best_epoch == int(np.argmax(vals)) + 1  # kept on validation
    assert out.val_accuracy == max(vals)
    logits = apply_masked(*nnx.split(MODEL), out.masks, jnp.asarray(DATA.x_test))
    acc = float(np.mean(np.argmax(logits, -1) == DATA.y_test))
    assert acc == pytest.approx(out.test_accuracy, abs=1e-6)
    kept = sum(int(m.sum()) for m in out.masks) / sum(m.size for m in out.masks)
    assert kept == pytest.approx(out.kept_fraction, abs=1e-6)
    if method == "edge-popup":
        assert out.kept_fraction == pytest.approx(config.keep, abs=0.01)
    assert out.network_evals == pytest.approx(15 * (192 // 32) * 32 / 192)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "popup"}, "method"),
        ({"keep": 0.0}, "keep"),
        ({"keep": 1.5}, "keep"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"eval_mask": "mean"}, "eval_mask"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1e-3}, "weight_decay"),
    ],
)
def test_bad_score_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScoreConfig(**kwargs).validate()


def test_score_config_defaults_and_unknown_keys():
    for method, defaults in SCORE_DEFAULTS.items():
        cfg = score_config(method)
        assert cfg.method == method
        assert all(getattr(cfg, k) == v for k, v in defaults.items())
    with pytest.raises(ValueError, match="unknown"):
        score_config("edge-popup", lr=0.1)
    with pytest.raises(ValueError, match="method"):
        score_config("dense")


# ------------------------------------------------------------------- networks


def _abstract_weights(*args, **kwargs) -> int:
    """Weights of a model built abstractly (shapes only: no 2.4M random draws)."""
    model = nnx.eval_shape(lambda: make_model(*args, **kwargs))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model)))


def test_presets_have_the_papers_sizes():
    assert _abstract_weights("lenet300", (28, 28, 1), 10) == 266_200
    # Ramanujan et al.'s Conv-4 on CIFAR-10 images: 2.4M weights.
    assert _abstract_weights("conv4", (32, 32, 3), 10) == 2_425_024
    small = make_model("conv4", (8, 8, 1), 10, width=0.125)
    assert isinstance(small, MaskableCNN) and small.pools == (False, True, False, True)
    assert count_weights(small) == _abstract_weights(
        "conv4", (8, 8, 1), 10, width=0.125
    )
    chex.assert_shape(small(jnp.ones((2, 8, 8, 1))), (2, 10))


def test_width_multiplier_scales_hidden_and_channels():
    def kernels(*args, **kwargs):
        model = nnx.eval_shape(lambda: make_model(*args, **kwargs))
        return [layer.kernel.shape for layer in model.layers]

    assert kernels("lenet300", (64,), 10, width=2.0) == [
        (64, 600),
        (600, 200),
        (200, 10),
    ]
    half = kernels("conv4", (8, 8, 1), 10, width=0.5)
    assert half[0] == (3, 3, 1, 32) and half[3] == (3, 3, 64, 64)
    assert half[4] == (2 * 2 * 64, 128)  # two pools: 8x8 -> 2x2, 64 channels
    assert kernels("mlp", (4,), 2, hidden=(10,), width=0.25)[0] == (4, 2)
    with pytest.raises(ValueError, match="width"):
        make_model("mlp", (4,), 2, width=0.0)
    with pytest.raises(ValueError, match="pools"):
        MaskableCNN((8, 8, 1), (4, 4), (), 3, pools=(True,), rngs=nnx.Rngs(0))


# ------------------------------------------------------------------- command line


def _resolve(*argv):
    return resolve(build_parser().parse_args(["run", *argv]))


def test_baseline_defaults_are_the_score_defaults():
    for method in ("edge-popup", "supermask"):
        s = _resolve("--method", method)
        for name, value in SCORE_DEFAULTS[method].items():
            assert s[name] == value, (method, name)
        assert "solver" not in s and "k" not in s and "channels" not in s
    dense = _resolve("--method", "dense")
    assert (dense["epochs"], dense["learning_rate"], dense["batch_size"]) == (
        100,
        1e-3,
        128,
    )
    assert "keep" not in dense


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--method", "edge-popup", "--k", "4"], "--k do"),
        (["--method", "supermask", "--vqe-steps", "3"], "--vqe-steps do"),
        (["--method", "dense", "--keep", "0.3"], "--keep do"),
        (["--keep", "0.3"], "--keep do"),
        (["--method", "edge-popup", "--keep", "2"], "keep"),
        (["--method", "dense", "--epochs", "0"], "epochs"),
        (["--model", "lenet300", "--hidden", "30"], "fixes its widths"),
        (["--width", "-1"], "--width"),
    ],
)
def test_baseline_flag_errors(argv, match):
    with pytest.raises(ValueError, match=match):
        _resolve(*argv)


@pytest.mark.parametrize("method", ["edge-popup", "supermask", "dense"])
def test_baseline_methods_write_the_common_layout(tmp_path, capsys, method):
    out = tmp_path / method
    argv = ["run", "--method", method, "--dataset", "iris", "--hidden", "16"]
    argv += ["--epochs", "5", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert f"{method} (" in capsys.readouterr().out
    result = check_result(json.loads((out / "result.json").read_text()))
    assert result["method"] == result["solver"] == method
    entry = result["solvers"][method]
    assert set(COMMON_KEYS) <= set(entry) and len(entry["history"]) == 5
    assert entry[method]["network_evals"] > 0 and entry["optimum_rate"] is None
    assert result["config"]["epochs"] == 5 and "solver" not in result["config"]
    assert (out / f"masks_{method}.npz").exists() == (method != "dense")
    assert not (out / "checkpoints").exists()  # one compiled loop, nothing to resume
