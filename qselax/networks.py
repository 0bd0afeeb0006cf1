"""Maskable random Flax NNX networks and the trained dense twin.

A *maskable* network has frozen random weights and is evaluated under a binary mask
pytree: one array per layer.  Two mask levels exist:

* ``"weight"``: one mask bit per weight; ``masks[l]`` has the shape of layer ``l``'s
  kernel (``(in, out)`` for dense, ``(kh, kw, in, out)`` for conv).
* ``"neuron"``: one mask bit per hidden unit (per channel for conv); ``masks[l]`` has
  shape ``(out_l,)`` for every layer but the last (output units are never dropped).

Every network exposes the same layer-by-layer interface, which the landscape code uses
to evaluate only the part of the network that a group's bits can change:

* ``pre(l, h, wmask)``: pre-activation ``z_l`` of layer ``l`` from its input ``h``;
* ``post(l, z, nmask)``: activation of layer ``l`` (plus pooling/flattening), times the
  neuron mask; the last layer returns its logits unchanged.

The network is split once (``graphdef, weights = nnx.split(model)``) and merged inside
``jit`` by :func:`apply_masked`, so weights travel as data.

Example:
    >>> import jax
    >>> from flax import nnx
    >>> model = MaskableMLP(64, (32,), 10, rngs=nnx.Rngs(0))
    >>> graphdef, weights = nnx.split(model)
    >>> masks = ones_masks(model)
    >>> apply_masked(graphdef, weights, masks, jax.numpy.zeros((5, 64))).shape
    (5, 10)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from qselax.training import check_budget, fit

__all__ = [
    "INITS",
    "MASK_LEVELS",
    "MODELS",
    "PRESETS",
    "DenseResult",
    "MaskableCNN",
    "MaskableMLP",
    "Masks",
    "Model",
    "accuracy",
    "activations",
    "apply_masked",
    "count_weights",
    "cross_entropy",
    "error_rate",
    "forward_from",
    "kernel_init",
    "make_model",
    "mask_shapes",
    "ones_masks",
    "random_masks",
    "train_dense",
]

INITS = ("signed_constant", "kaiming_normal", "kaiming_uniform", "uniform")
MODELS = ("mlp", "cnn", "lenet300", "conv4")
# The strong-lottery-ticket field's networks (fixed widths; see make_model).
PRESETS = {
    "lenet300": {"kind": "mlp", "hidden": (300, 100)},
    "conv4": {
        "kind": "cnn",
        "channels": (64, 64, 128, 128),
        "pools": (False, True, False, True),
        "hidden": (256, 256),
    },
}
MASK_LEVELS = ("weight", "neuron")

Masks = tuple[jax.Array, ...]


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def kernel_init(scheme: str):
    """Returns a flax initializer for one of :data:`INITS`.

    ``fan_in`` is the product of all kernel axes but the last, as in Kaiming et al.:
    ``signed_constant`` draws ``±sqrt(2 / fan_in)`` with equal probability (the
    edge-popup scheme of Ramanujan et al. 2020), ``kaiming_normal`` draws
    ``N(0, 2 / fan_in)``, ``kaiming_uniform`` draws ``U(-sqrt(6 / fan_in), +)`` and
    ``uniform`` draws ``U(-1, 1)``.
    """
    _check_choice("init", scheme, INITS)

    def init(key, shape, dtype=jnp.float32):
        fan_in = math.prod(shape[:-1])
        if scheme == "signed_constant":
            sign = jax.random.rademacher(key, shape, dtype=dtype)
            return sign * jnp.asarray(math.sqrt(2.0 / fan_in), dtype)
        if scheme == "kaiming_normal":
            return jax.random.normal(key, shape, dtype) * math.sqrt(2.0 / fan_in)
        if scheme == "kaiming_uniform":
            bound = math.sqrt(6.0 / fan_in)
            return jax.random.uniform(key, shape, dtype, -bound, bound)
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0)

    return init


def _widen(v: jax.Array, ndim: int) -> jax.Array:
    """Reshapes a per-unit vector to broadcast against ``(B, ..., units)``."""
    return v.reshape((1,) * (ndim - 1) + (-1,))


def _activate(last: bool, z: jax.Array, nmask: jax.Array | None) -> jax.Array:
    """ReLU times the neuron mask, or the identity on the logits (``last``)."""
    if last:
        return z
    h = jax.nn.relu(z)
    if nmask is not None:
        h = h * _widen(nmask.astype(h.dtype), h.ndim)
    return h


class MaskableMLP(nnx.Module):
    """A bias-free ReLU MLP whose weights stay random; only masks select it.

    Args:
        in_features: input size (inputs of other shapes are flattened).
        hidden: hidden layer widths.
        num_classes: number of logits.
        init: one of :data:`INITS`.
        mask_level: ``"weight"`` or ``"neuron"``.
        rngs: flax random streams.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        *,
        init: str = "signed_constant",
        mask_level: str = "weight",
        rngs: nnx.Rngs,
    ):
        _check_choice("mask_level", mask_level, MASK_LEVELS)
        widths = (int(in_features), *map(int, hidden), int(num_classes))
        if min(widths) < 1:
            raise ValueError(f"layer widths must be positive, got {widths}")
        self.widths = widths
        self.mask_level = mask_level
        self.init = init
        self.layers = nnx.List(
            [
                nnx.Linear(
                    a, b, use_bias=False, kernel_init=kernel_init(init), rngs=rngs
                )
                for a, b in zip(widths[:-1], widths[1:], strict=True)
            ]
        )

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def kernel(self, l: int) -> jax.Array:
        return self.layers[l].kernel[...]

    def pre(self, l: int, h: jax.Array, wmask: jax.Array | None) -> jax.Array:
        """Pre-activation of layer ``l``: ``(B, in) -> (B, out)``."""
        if l == 0:
            h = h.reshape(h.shape[0], -1)
        w = self.kernel(l)
        if wmask is not None:
            w = w * wmask.astype(w.dtype)
        return h @ w

    def post(self, l: int, z: jax.Array, nmask: jax.Array | None) -> jax.Array:
        """Activation of layer ``l`` times its neuron mask (identity on logits)."""
        return _activate(l == self.num_layers - 1, z, nmask)

    def __call__(self, x: jax.Array, masks: Masks | None = None) -> jax.Array:
        return forward_from(self, 0, x, masks)


class MaskableCNN(nnx.Module):
    """A bias-free ReLU CNN of 3x3 convs (2x2 max-pools where ``pools`` says) and an
    MLP head.

    Args:
        in_shape: image shape ``(H, W, C)``.
        channels: conv channel counts.
        hidden: dense hidden widths after flattening.
        pools: per conv layer, whether a 2x2 max-pool follows it (default: after
            every conv; Conv-4 pools after the 2nd and 4th).
        num_classes: number of logits.
        init: one of :data:`INITS`.
        mask_level: ``"weight"`` or ``"neuron"`` (per channel for conv layers).
        rngs: flax random streams.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        num_classes: int,
        *,
        pools: Sequence[bool] | None = None,
        init: str = "signed_constant",
        mask_level: str = "weight",
        rngs: nnx.Rngs,
    ):
        _check_choice("mask_level", mask_level, MASK_LEVELS)
        pools = (True,) * len(channels) if pools is None else tuple(map(bool, pools))
        if len(pools) != len(channels):
            raise ValueError(
                f"pools needs one flag per conv layer ({len(channels)}), got {pools}"
            )
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(f"in_shape must be (H, W, C), got {in_shape}")
        if not channels:
            raise ValueError("channels must name at least one conv layer")
        height, width, c = in_shape
        self.in_shape = in_shape
        self.mask_level = mask_level
        self.init = init
        self.num_conv = len(channels)
        self.pools = pools
        init_fn = kernel_init(init)
        layers = []
        for ch, pool in zip(channels, pools, strict=True):
            layers.append(
                nnx.Conv(
                    c, int(ch), (3, 3), use_bias=False, kernel_init=init_fn, rngs=rngs
                )
            )
            c = int(ch)
            if pool:
                height, width = max(height // 2, 1), max(width // 2, 1)
        widths = (height * width * c, *map(int, hidden), int(num_classes))
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers.append(
                nnx.Linear(a, b, use_bias=False, kernel_init=init_fn, rngs=rngs)
            )
        self.layers = nnx.List(layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def kernel(self, l: int) -> jax.Array:
        return self.layers[l].kernel[...]

    def pre(self, l: int, h: jax.Array, wmask: jax.Array | None) -> jax.Array:
        w = self.kernel(l)
        if wmask is not None:
            w = w * wmask.astype(w.dtype)
        if l < self.num_conv:
            return jax.lax.conv_general_dilated(
                h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        return h @ w

    def post(self, l: int, z: jax.Array, nmask: jax.Array | None) -> jax.Array:
        h = _activate(l == self.num_layers - 1, z, nmask)
        if l < self.num_conv:
            # Halve each spatial axis longer than 1 (as the head's width assumes);
            # a length-1 axis is left as it is rather than skipping the pool.
            window = tuple(2 if d > 1 else 1 for d in h.shape[1:3])
            if self.pools[l] and window != (1, 1):
                h = nnx.max_pool(h, window, window)
            if l == self.num_conv - 1:
                h = h.reshape(h.shape[0], -1)
        return h

    def __call__(self, x: jax.Array, masks: Masks | None = None) -> jax.Array:
        return forward_from(self, 0, x, masks)


Model = MaskableMLP | MaskableCNN


def _layer_masks(model: Model, masks: Masks | None, l: int):
    """The (weight mask, neuron mask) pair that layer ``l`` uses."""
    if masks is None:
        return None, None
    if model.mask_level == "weight":
        return masks[l], None
    return None, (masks[l] if l < model.num_layers - 1 else None)


def forward_from(model: Model, start: int, h: jax.Array, masks: Masks | None):
    """Runs layers ``start, start+1, ...`` on the input ``h`` of layer ``start``."""
    for l in range(start, model.num_layers):
        wmask, nmask = _layer_masks(model, masks, l)
        h = model.post(l, model.pre(l, h, wmask), nmask)
    return h


def activations(model: Model, x: jax.Array, masks: Masks | None):
    """All intermediate arrays of a masked forward pass.

    Returns:
        ``(hs, zs)``: ``hs[l]`` is the input of layer ``l`` (``hs[0] = x``,
        ``hs[L]`` = logits) and ``zs[l]`` the pre-activation of layer ``l``.
    """
    hs, zs = [x], []
    for l in range(model.num_layers):
        wmask, nmask = _layer_masks(model, masks, l)
        zs.append(model.pre(l, hs[-1], wmask))
        hs.append(model.post(l, zs[-1], nmask))
    return hs, zs


def mask_shapes(model: Model) -> tuple[tuple[int, ...], ...]:
    """Shapes of the mask pytree's arrays (see module docstring)."""
    if model.mask_level == "weight":
        return tuple(tuple(model.kernel(l).shape) for l in range(model.num_layers))
    return tuple((model.kernel(l).shape[-1],) for l in range(model.num_layers - 1))


def ones_masks(model: Model) -> Masks:
    """The all-ones mask pytree: the unmasked random network."""
    return tuple(jnp.ones(s, jnp.float32) for s in mask_shapes(model))


def random_masks(key: jax.Array, model: Model, keep: float = 0.5) -> Masks:
    """Bernoulli(``keep``) masks, one key per layer."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    shapes = mask_shapes(model)
    keys = jax.random.split(key, len(shapes))
    return tuple(
        jax.random.bernoulli(k, keep, s).astype(jnp.float32)
        for k, s in zip(keys, shapes, strict=True)
    )


def apply_masked(graphdef, weights, masks: Masks | None, x: jax.Array) -> jax.Array:
    """Pure masked forward pass, usable inside ``jit`` and ``vmap``.

    Args:
        graphdef: from ``nnx.split(model)``.
        weights: the network state from ``nnx.split(model)``.
        masks: mask pytree (or ``None`` for the unmasked network).
        x: inputs ``(B, *feature_shape)``.

    Returns:
        Logits ``(B, num_classes)``.
    """
    return nnx.merge(graphdef, weights)(x, masks)


def make_model(
    kind: str,
    feature_shape: Sequence[int],
    num_classes: int,
    *,
    hidden: Sequence[int] = (128,),
    channels: Sequence[int] = (8, 16),
    width: float = 1.0,
    init: str = "signed_constant",
    mask_level: str = "weight",
    seed: int = 0,
) -> Model:
    """Builds a maskable network of one of :data:`MODELS` for a dataset.

    ``"mlp"`` and ``"cnn"`` take ``hidden`` (and ``channels``); the presets of the
    strong-lottery-ticket literature fix them (:data:`PRESETS`): ``"lenet300"`` is
    LeNet-300-100 (hidden 300, 100; 266,200 weights on 28x28 inputs) and
    ``"conv4"`` the Conv-4 of Frankle & Carbin and Ramanujan et al. (convs 64, 64,
    pool, 128, 128, pool; dense 256, 256).  ``width`` multiplies every hidden width
    and channel count (rounded, at least 1), as in those papers' width sweeps.
    """
    _check_choice("model", kind, MODELS)
    _check_choice("init", init, INITS)
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    preset = PRESETS.get(kind, {})
    hidden = preset.get("hidden", hidden)
    channels = preset.get("channels", channels)
    pools = preset.get("pools")

    def scale(sizes):  # a bad size (< 1) is left for the network to reject
        return tuple(
            max(1, round(int(v) * width)) if int(v) >= 1 else int(v) for v in sizes
        )

    rngs = nnx.Rngs(params=seed)
    if preset.get("kind", kind) == "mlp":
        return MaskableMLP(
            math.prod(feature_shape),
            scale(hidden),
            num_classes,
            init=init,
            mask_level=mask_level,
            rngs=rngs,
        )
    if len(feature_shape) != 3:
        raise ValueError(
            f"model {kind!r} needs image features (H, W, C), got shape "
            f"{tuple(feature_shape)}"
        )
    return MaskableCNN(
        feature_shape,
        scale(channels),
        scale(hidden),
        num_classes,
        pools=pools,
        init=init,
        mask_level=mask_level,
        rngs=rngs,
    )


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the batch axis (axis -2 of logits)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    labels = jnp.broadcast_to(labels, logits.shape[:-1])
    picked = jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    return -jnp.mean(picked, axis=-1)


def error_rate(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean 0-1 error over the batch axis (axis -2 of logits)."""
    wrong = jnp.argmax(logits, axis=-1) != jnp.broadcast_to(labels, logits.shape[:-1])
    return jnp.mean(wrong.astype(jnp.float32), axis=-1)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return 1.0 - error_rate(logits, labels)


class DenseResult(NamedTuple):
    """The trained dense twin: its weights, its accuracies and its budget.

    ``best_epoch`` is the kept (best-validation) epoch, ``samples`` the training
    samples passed forward and backward, ``compile_s``/``run_s`` the timings and
    ``history`` one ``{"epoch", "loss", "val_accuracy"}`` dict per epoch.
    """

    graphdef: Any
    weights: Any
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    epochs: int
    best_epoch: int = 0
    samples: int = 0
    compile_s: float = 0.0
    run_s: float = 0.0
    history: tuple = ()


def train_dense(
    key: jax.Array,
    model: Model,
    data,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
) -> DenseResult:
    """Trains every weight of a copy of ``model`` with Adam: the dense reference.

    The epoch with the best validation accuracy is kept (early stopping on the
    validation split; the test split is only scored).  Epochs run in one ``lax.scan``
    over shuffled mini-batches, so the whole training is one compiled call.

    Args:
        key: PRNG key for shuffling.
        model: the architecture to copy (its weights are the starting point).
        data: a :class:`qselax.data.Dataset`.
        epochs: Adam epochs.
        batch_size: samples per mini-batch.
        learning_rate: Adam's learning rate.
    """
    check_budget(epochs, batch_size, learning_rate)
    graphdef, weights = nnx.split(model)

    def loss_fn(w, key, xb, yb):
        return cross_entropy(apply_masked(graphdef, w, None, xb), yb)

    def evaluate(w, split):
        xs, ys = split
        return {"select": accuracy(apply_masked(graphdef, w, None, xs), ys)}

    val = (jnp.asarray(data.x_val), jnp.asarray(data.y_val))
    out = fit(
        key,
        loss_fn,
        weights,
        optax.adam(learning_rate),
        jnp.asarray(data.x_train),
        jnp.asarray(data.y_train),
        val,
        evaluate,
        epochs=epochs,
        batch_size=batch_size,
    )

    def acc(xs, ys):
        logits = apply_masked(graphdef, out.params, None, jnp.asarray(xs))
        return float(accuracy(logits, jnp.asarray(ys)))

    return DenseResult(
        graphdef,
        out.params,
        acc(data.x_train, data.y_train),
        acc(data.x_val, data.y_val),
        acc(data.x_test, data.y_test),
        epochs,
        out.best_epoch,
        out.samples,
        out.compile_s,
        out.run_s,
        tuple(
            {"epoch": e + 1, "loss": float(loss), "val_accuracy": float(val)}
            for e, (loss, val) in enumerate(
                zip(out.history["loss"], out.history["select"], strict=True)
            )
        ),
    )


def count_weights(model: Model) -> int:
    return int(sum(np.prod(model.kernel(l).shape) for l in range(model.num_layers)))
