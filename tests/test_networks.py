"""Tests for qselax.networks: init schemes, masked forward passes, dense twin, costs."""

import doctest
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from qselax import networks
from qselax.data import Dataset
from qselax.networks import (
    INITS,
    MaskableCNN,
    MaskableMLP,
    accuracy,
    activations,
    apply_masked,
    count_weights,
    cross_entropy,
    error_rate,
    kernel_init,
    make_model,
    mask_shapes,
    ones_masks,
    random_masks,
    train_dense,
)

B, C = 6, 3
# The same tiny models as tests/test_groups.py and tests/test_landscapes.py: compiled
# programs are cached by shape, so sharing shapes keeps the session's compile time down.
MODELS = {
    "mlp-weight": make_model(
        "mlp", (5,), C, hidden=(8, 6), init="kaiming_normal", mask_level="weight"
    ),
    "mlp-neuron": make_model(
        "mlp", (5,), C, hidden=(8, 6), init="kaiming_normal", mask_level="neuron"
    ),
    "cnn-weight": make_model(
        "cnn", (4, 4, 1), C, hidden=(6,), channels=(3,), init="kaiming_normal"
    ),
    "cnn-neuron": make_model(
        "cnn",
        (4, 4, 1),
        C,
        hidden=(6,),
        channels=(3, 4),
        init="kaiming_normal",
        mask_level="neuron",
    ),
}
FEATURES = {"mlp": (5,), "cnn": (4, 4, 1)}
EXPECTED_SHAPES = {
    "mlp-weight": ((5, 8), (8, 6), (6, 3)),
    "mlp-neuron": ((8,), (6,)),
    # 4x4 image -> 3x3 SAME conv -> 2x2 max-pool: 2 * 2 * 3 = 12 flat features.
    "cnn-weight": ((3, 3, 1, 3), (12, 6), (6, 3)),
    # Two conv+pool stages: 4x4 -> 2x2 -> 1x1, 4 channels; output units never drop.
    "cnn-neuron": ((3,), (4,), (6,)),
}

# One jitted forward shared by every test: graphdef is static, the rest are arrays,
# so each (model, mask pytree structure) compiles once per session.
APPLY = jax.jit(apply_masked, static_argnums=0)


def abstract(fn):
    """Runs ``fn`` under ``jax.eval_shape``: shapes without compiling anything."""
    box = []
    jax.eval_shape(lambda: box.append(fn()))
    return box[0]


def _inputs(feature_shape, seed=0, batch=B):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, *feature_shape)).astype(np.float32)


def np_masks(model, seed, keep=0.5):
    """Bernoulli(keep) masks drawn in NumPy (no per-shape compile)."""
    rng = np.random.default_rng(seed)
    return tuple((rng.random(s) < keep).astype(np.float32) for s in mask_shapes(model))


def _split(name):
    model = MODELS[name]
    graphdef, weights = nnx.split(model)
    return model, graphdef, weights, _inputs(FEATURES[name[:3]])


def _with_kernel(model, l, edit):
    """A copy of ``model`` whose layer-``l`` kernel is ``edit(kernel)``."""
    twin = nnx.clone(model)
    twin.layers[l].kernel[...] = edit(twin.layers[l].kernel[...])
    return nnx.split(twin)


def np_mlp(kernels, x, wmasks=None, nmasks=None, zero_units=()):
    """NumPy reference: bias-free ReLU MLP with optional masks.

    ``zero_units`` lists ``(layer, unit)`` hidden outputs set to 0 by hand.
    """
    h = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    last = len(kernels) - 1
    for l, w in enumerate(kernels):
        w = np.asarray(w, np.float64)
        if wmasks is not None:
            w = w * np.asarray(wmasks[l])
        h = h @ w
        if l < last:
            h = np.maximum(h, 0.0)
            if nmasks is not None:
                h = h * np.asarray(nmasks[l])
            for zl, unit in zero_units:
                if zl == l:
                    h[:, unit] = 0.0
    return h


def _kernels(model):
    return [np.asarray(model.kernel(l)) for l in range(model.num_layers)]


# ------------------------------------------------------------------------ inits


FAN_SHAPES = {"dense": (512, 64), "conv": (3, 3, 16, 128)}  # fan_in 512 and 144
SC_CNN = dict(hidden=(8,), channels=(4,), init="signed_constant")


@functools.cache
def _init_draws():
    """Every scheme on every shape, plus a signed-constant CNN: one compile."""

    @jax.jit
    def draw(key):
        kernels = {
            (scheme, name): kernel_init(scheme)(key, shape)
            for scheme in INITS
            for name, shape in FAN_SHAPES.items()
        }
        cnn = make_model("cnn", (6, 6, 2), 3, **SC_CNN)
        return kernels, [cnn.kernel(l) for l in range(cnn.num_layers)]

    kernels, cnn = draw(jax.random.key(0))
    return {k: np.asarray(v) for k, v in kernels.items()}, [np.asarray(w) for w in cnn]


@pytest.mark.parametrize("shape", list(FAN_SHAPES))
def test_signed_constant_is_plus_minus_kaiming_constant(shape):
    w = _init_draws()[0]["signed_constant", shape]
    fan_in = math.prod(FAN_SHAPES[shape][:-1])
    c = np.float32(math.sqrt(2.0 / fan_in))
    assert w.shape == FAN_SHAPES[shape] and w.dtype == np.float32
    np.testing.assert_array_equal(np.abs(w), np.full(w.shape, c))
    frac_pos = np.mean(w > 0)
    assert abs(frac_pos - 0.5) < 0.02, frac_pos


@pytest.mark.parametrize("shape", list(FAN_SHAPES))
def test_kaiming_normal_std(shape):
    w = _init_draws()[0]["kaiming_normal", shape]
    std = math.sqrt(2.0 / math.prod(FAN_SHAPES[shape][:-1]))
    assert abs(w.std() / std - 1.0) < 0.03
    assert abs(w.mean()) < 0.03 * std
    # A normal, not a uniform: tails beyond 3 sigma exist.
    assert np.abs(w).max() > 3.0 * std


@pytest.mark.parametrize("shape", list(FAN_SHAPES))
def test_kaiming_uniform_bounds(shape):
    w = _init_draws()[0]["kaiming_uniform", shape]
    bound = math.sqrt(6.0 / math.prod(FAN_SHAPES[shape][:-1]))
    assert np.all(np.abs(w) <= bound)
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.std() / (bound / math.sqrt(3.0)) - 1.0) < 0.03
    assert abs(w.mean()) < 0.03 * bound


@pytest.mark.parametrize("shape", list(FAN_SHAPES))
def test_uniform_init(shape):
    w = _init_draws()[0]["uniform", shape]
    assert np.all((w >= -1.0) & (w <= 1.0))
    assert w.min() < -0.99 and w.max() > 0.99
    assert abs(w.std() - 1.0 / math.sqrt(3.0)) < 0.02
    # Not scaled by fan-in: both shapes draw the same range.
    assert abs(w.std() - _init_draws()[0]["uniform", "dense"].std()) < 0.02


def test_kernel_init_unknown_scheme():
    with pytest.raises(ValueError, match="init must be one of"):
        kernel_init("xavier")


def test_models_draw_each_layer_with_its_fan_in():
    """A signed-constant CNN: conv fan-in is kh * kw * cin, dense fan-in is rows."""
    kernels = _init_draws()[1]
    shapes = [w.shape for w in kernels]
    assert shapes == [(3, 3, 2, 4), (3 * 3 * 4, 8), (8, 3)]
    for w, fan_in in zip(kernels, [3 * 3 * 2, 36, 8], strict=True):
        np.testing.assert_array_equal(np.abs(w), np.float32(math.sqrt(2.0 / fan_in)))
    assert MODELS["cnn-weight"].init == "kaiming_normal"


# ------------------------------------------------------------------- mask pytrees


@pytest.mark.parametrize("name", list(MODELS))
def test_mask_shapes_ones_and_random(name):
    model = MODELS[name]
    shapes = EXPECTED_SHAPES[name]
    assert mask_shapes(model) == shapes
    ones = ones_masks(model)
    assert isinstance(ones, tuple)
    chex.assert_shape(list(ones), list(shapes))
    for m in ones:
        assert m.dtype == jnp.float32
        np.testing.assert_array_equal(m, 1.0)
    rand = abstract(lambda: random_masks(jax.random.key(0), model, keep=0.5))
    assert isinstance(rand, tuple)
    assert [(m.shape, m.dtype) for m in rand] == [(s, jnp.float32) for s in shapes]


@functools.cache
def _big_random_masks():
    """Flat Bernoulli masks of a 64-64-10 MLP for several keep rates: one compile."""

    @jax.jit
    def draw(key):
        model = make_model("mlp", (64,), 10, hidden=(64,))
        out = {}
        for i, keep in enumerate((0.3, 1.0)):
            for j in range(2):
                k = jax.random.fold_in(key, 2 * i + j)
                masks = random_masks(k, model, keep=keep)
                out[keep, j] = jnp.concatenate([jnp.ravel(m) for m in masks])
        return out

    return {k: np.asarray(v) for k, v in draw(jax.random.key(0)).items()}


def test_random_masks_values_and_keep_rate():
    draws = _big_random_masks()
    flat = draws[0.3, 0]
    assert flat.shape == (64 * 64 + 64 * 10,)
    assert set(np.unique(flat)) == {0.0, 1.0}
    assert abs(flat.mean() - 0.3) < 0.025  # 4736 bits: sd ~ 0.007
    assert not np.array_equal(flat, draws[0.3, 1])  # the key matters
    np.testing.assert_array_equal(draws[1.0, 0], 1.0)  # keep=1 keeps everything


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5, float("nan")])
def test_random_masks_bad_keep(key, keep):
    with pytest.raises(ValueError, match="keep must lie in"):
        random_masks(key, MODELS["mlp-weight"], keep=keep)


def test_count_weights():
    assert count_weights(MODELS["mlp-weight"]) == 5 * 8 + 8 * 6 + 6 * 3
    assert count_weights(MODELS["cnn-weight"]) == 3 * 3 * 1 * 3 + 12 * 6 + 6 * 3


# --------------------------------------------------------------- masked forward


@pytest.mark.parametrize("name", list(MODELS))
def test_apply_masked_shape_and_ones_equal_unmasked(name):
    model, graphdef, weights, x = _split(name)
    dense = APPLY(graphdef, weights, None, x)
    chex.assert_shape(dense, (B, C))
    chex.assert_tree_all_finite(dense)
    ones = APPLY(graphdef, weights, ones_masks(model), x)
    chex.assert_trees_all_close(ones, dense, atol=1e-6)
    masked = APPLY(graphdef, weights, np_masks(model, 0), x)
    chex.assert_shape(masked, (B, C))
    chex.assert_tree_all_finite(masked)
    # activations() ends in the same logits and has one entry per layer.
    hs, zs = jax.jit(activations, static_argnums=0)(model, jnp.asarray(x), None)
    assert len(hs) == model.num_layers + 1 and len(zs) == model.num_layers
    chex.assert_trees_all_close(hs[-1], dense, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_all_zero_masks_give_zero_logits(name):
    model, graphdef, weights, x = _split(name)
    zeros = tuple(np.zeros(s, np.float32) for s in mask_shapes(model))
    np.testing.assert_array_equal(APPLY(graphdef, weights, zeros, x), 0.0)


@pytest.mark.parametrize("level", ["weight", "neuron"])
def test_mlp_matches_numpy_reference(level):
    model, graphdef, weights, x = _split(f"mlp-{level}")
    kernels = _kernels(model)
    np.testing.assert_allclose(
        APPLY(graphdef, weights, None, x), np_mlp(kernels, x), rtol=1e-5, atol=1e-5
    )
    for seed in range(3):
        masks = np_masks(model, seed, keep=0.6)
        kw = {"wmasks": masks} if level == "weight" else {"nmasks": masks}
        np.testing.assert_allclose(
            APPLY(graphdef, weights, masks, x),
            np_mlp(kernels, x, **kw),
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize("name", ["mlp-weight", "cnn-weight"])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_weight_mask_zeroing_one_weight(name, layer):
    model, graphdef, weights, x = _split(name)
    shape = mask_shapes(model)[layer]
    idx = tuple(int(i) for i in np.random.default_rng(layer).integers(shape))
    masks = [np.ones(s, np.float32) for s in mask_shapes(model)]
    masks[layer][idx] = 0.0
    got = APPLY(graphdef, weights, tuple(masks), x)
    gd2, w2 = _with_kernel(model, layer, lambda w: w.at[idx].set(0.0))
    chex.assert_trees_all_close(got, APPLY(gd2, w2, None, x), atol=1e-6)
    if name == "mlp-weight":
        np.testing.assert_allclose(
            got, np_mlp(_kernels(model), x, wmasks=masks), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("name", ["mlp-neuron", "cnn-neuron"])
@pytest.mark.parametrize("layer", [0, 1])
def test_neuron_mask_zeroing_one_unit(name, layer):
    """Dropping unit j equals zeroing its output by hand (bias-free: its kernel
    column) and, for the MLP, zeroing its activation in the NumPy reference."""
    model, graphdef, weights, x = _split(name)
    unit = mask_shapes(model)[layer][0] - 1
    masks = [np.ones(s, np.float32) for s in mask_shapes(model)]
    masks[layer][unit] = 0.0
    got = APPLY(graphdef, weights, tuple(masks), x)
    gd2, w2 = _with_kernel(model, layer, lambda w: w.at[..., unit].set(0.0))
    chex.assert_trees_all_close(got, APPLY(gd2, w2, None, x), atol=1e-6)
    if name == "mlp-neuron":
        np.testing.assert_allclose(
            got,
            np_mlp(_kernels(model), x, zero_units=[(layer, unit)]),
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize("name", ["mlp-weight", "cnn-neuron"])
def test_apply_masked_jit_and_vmap_over_masks(name):
    model, graphdef, weights, x = _split(name)
    stacked = [np_masks(model, seed) for seed in range(4)]
    batch = jax.tree.map(lambda *ms: np.stack(ms), *stacked)
    chex.assert_shape(list(batch), [(4, *s) for s in mask_shapes(model)])
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def many(w, masks, x):
        return jax.vmap(lambda m: apply_masked(graphdef, w, m, x))(masks)

    out = many(weights, batch, x)
    chex.assert_shape(out, (4, B, C))
    for i in range(4):
        one = APPLY(graphdef, weights, stacked[i], x)
        chex.assert_trees_all_close(out[i], one, atol=1e-5)
    # New mask values, same shapes: no retrace (assert_max_traces would raise).
    flipped = many(weights, jax.tree.map(lambda m: 1.0 - m, batch), x)
    chex.assert_trees_all_close(
        flipped[0],
        APPLY(graphdef, weights, tuple(1.0 - m for m in stacked[0]), x),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "in_shape, head", [((1, 4, 1), 2), ((5, 3, 1), 2), ((1, 1, 2), 2), ((4, 1, 1), 2)]
)
def test_cnn_head_width_matches_forward(in_shape, head):
    """The head width planned at construction matches the forward pass for odd
    sizes and length-1 axes (pooled only along axes longer than 1)."""

    def build():
        model = MaskableCNN(in_shape, (2, 2), (), 3, rngs=nnx.Rngs(0))
        return mask_shapes(model), model(jnp.ones((2, *in_shape))).shape

    shapes, out = abstract(build)
    assert out == (2, 3)
    assert shapes[-1] == (head, 3)


# ---------------------------------------------------------------- make_model


def test_make_model_builds_mlp_and_cnn():
    mlp = abstract(lambda: make_model("mlp", (4, 4), 3, hidden=(5,)))
    assert isinstance(mlp, MaskableMLP)
    assert mlp.widths == (16, 5, 3) and mlp.mask_level == "weight"
    assert mlp.init == "signed_constant"
    cnn = abstract(
        lambda: mask_shapes(
            make_model("cnn", (8, 8, 1), 10, hidden=(), channels=(2, 4))
        )
    )
    assert cnn == ((3, 3, 1, 2), (3, 3, 2, 4), (2 * 2 * 4, 10))
    # Flat features of any rank are flattened for the MLP.
    out = abstract(lambda: make_model("mlp", (4, 4), 3)(jnp.ones((2, 4, 4))).shape)
    assert out == (2, 3)


def test_make_model_seed_decides_weights():
    kw = dict(hidden=(8, 6), init="kaiming_normal")
    same = make_model("mlp", (5,), C, **kw, seed=0)
    other = make_model("mlp", (5,), C, **kw, seed=1)
    ref = MODELS["mlp-weight"]
    np.testing.assert_array_equal(same.kernel(0), ref.kernel(0))
    assert not np.array_equal(other.kernel(0), ref.kernel(0))


@pytest.mark.parametrize(
    "kind, features, kwargs, match",
    [
        ("rnn", (64,), {}, "model must be one of"),
        ("mlp", (64,), {"init": "xavier"}, "init must be one of"),
        ("mlp", (64,), {"mask_level": "channel"}, "mask_level must be one of"),
        ("cnn", (8, 8, 1), {"mask_level": "channel"}, "mask_level must be one of"),
        ("cnn", (64,), {}, r"'cnn' needs image features \(H, W, C\).*\(64,\)"),
        ("cnn", (8, 8), {}, r"'cnn' needs image features \(H, W, C\).*\(8, 8\)"),
        ("mlp", (64,), {"hidden": (0,)}, "layer widths must be positive"),
        ("cnn", (8, 0, 1), {}, r"in_shape must be \(H, W, C\)"),
        ("cnn", (8, 8, 1), {"channels": ()}, "channels must name"),
    ],
)
def test_make_model_errors(kind, features, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(kind, features, 10, **kwargs)


# ------------------------------------------------------------------- dense twin


def _separable(n, seed):
    """Two well-separated Gaussian blobs in 4-d."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int32)
    centers = np.array([[-2.0, -2.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]])
    x = centers[y] + 0.5 * rng.normal(size=(n, 4))
    return x.astype(np.float32), y


def _dataset():
    (xtr, ytr), (xv, yv), (xte, yte) = (
        _separable(n, s) for n, s in [(96, 0), (32, 1), (32, 2)]
    )
    return Dataset(xtr, ytr, xv, yv, xte, yte, 2, "blobs", (4,))


def test_train_dense_separable(key):
    model = MaskableMLP(4, (8,), 2, init="kaiming_normal", rngs=nnx.Rngs(0))
    before = np.asarray(model.kernel(0)).copy()
    data = _dataset()
    result = train_dense(key, model, data, epochs=15, batch_size=32, learning_rate=0.05)
    assert result.epochs == 15
    assert result.train_accuracy >= 0.95
    assert result.val_accuracy >= 0.95
    assert result.test_accuracy >= 0.9
    # The dense twin is a trained copy: the random network is left untouched.
    np.testing.assert_array_equal(model.kernel(0), before)
    logits = APPLY(result.graphdef, result.weights, None, data.x_test)
    acc = float(accuracy(logits, jnp.asarray(data.y_test)))
    assert acc == pytest.approx(result.test_accuracy)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"learning_rate": -1e-3},
    ],
)
def test_train_dense_bad_budget(key, kwargs):
    model = MODELS["mlp-weight"]
    with pytest.raises(ValueError, match="epochs and batch_size must be"):
        train_dense(key, model, _dataset(), **kwargs)


# ----------------------------------------------------------------------- costs


def np_ce(logits, labels):
    logits = np.asarray(logits, np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    picked = np.take_along_axis(
        logp, np.broadcast_to(labels, logp.shape[:-1])[..., None], -1
    )
    return -picked[..., 0].mean(-1)


def np_err(logits, labels):
    return (np.argmax(logits, -1) != labels).mean(-1)


class CostTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_costs_match_numpy(self):
        rng = np.random.default_rng(0)
        logits = (3.0 * rng.normal(size=(4, 7, 5))).astype(np.float32)  # (S, B, C)
        labels = rng.integers(0, 5, 7).astype(np.int32)  # (B,)
        ce = self.variant(cross_entropy)(logits, labels)
        err = self.variant(error_rate)(logits, labels)
        acc = self.variant(accuracy)(logits, labels)
        chex.assert_shape([ce, err, acc], [(4,)] * 3)
        np.testing.assert_allclose(ce, np_ce(logits, labels), rtol=1e-5)
        np.testing.assert_allclose(err, np_err(logits, labels), atol=1e-7)
        np.testing.assert_allclose(acc, 1.0 - np_err(logits, labels), atol=1e-7)
        # (B, C) logits give a scalar.
        one = self.variant(cross_entropy)(logits[1], labels)
        chex.assert_shape(one, ())
        np.testing.assert_allclose(one, np_ce(logits[1], labels), rtol=1e-5)
        chex.assert_shape(self.variant(error_rate)(logits[1], labels), ())

    @chex.variants(with_jit=True, without_jit=True)
    def test_cost_extremes(self):
        labels = np.array([0, 1, 2], np.int32)
        perfect = 50.0 * np.eye(3, dtype=np.float32)
        np.testing.assert_allclose(
            self.variant(cross_entropy)(perfect, labels), 0.0, atol=1e-6
        )
        self.assertEqual(float(self.variant(error_rate)(perfect, labels)), 0.0)
        flat = np.zeros((3, 3), np.float32)
        np.testing.assert_allclose(
            self.variant(cross_entropy)(flat, labels), math.log(3.0), rtol=1e-6
        )
        wrong = np.roll(perfect, 1, axis=0)
        self.assertEqual(float(self.variant(error_rate)(wrong, labels)), 1.0)


def test_doctests():
    result = doctest.testmod(networks, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
