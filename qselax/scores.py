"""The strong-lottery-ticket field's mask finders, on the same frozen networks.

Both learn a real-valued *score* per mask bit with optax on the cost (training)
split, through straight-through gradients, while the random weights stay frozen:

* ``"edge-popup"`` (Ramanujan et al. 2020, "What's hidden in a randomly weighted
  neural network?"): each layer keeps the ``keep`` fraction of its bits with the
  largest ``|score|``; the backward pass treats the 0/1 mask as ``|score|``.
* ``"supermask"`` (Zhou et al. 2019, "Deconstructing lottery tickets"): every
  forward pass samples ``m ~ Bernoulli(sigmoid(score))``; the backward pass treats
  ``m`` as ``sigmoid(score)``.  A finished supermask is scored with its
  ``"expected"`` mask (``sigmoid(score) > 1/2``, the most likely one) or one
  ``"sampled"`` mask (a fixed key), as ``eval_mask`` says.

The masks have the model's mask shapes (:func:`qselax.networks.mask_shapes`), weight
or neuron level, so they plug into :func:`qselax.networks.apply_masked` like the
quantum solvers' masks.  The kept epoch is the one with the best validation accuracy
of its evaluation mask (:func:`qselax.training.fit`); the test split is only scored.

Example:
    >>> import jax
    >>> from qselax.data import load_dataset
    >>> from qselax.networks import make_model
    >>> data = load_dataset("digits", seed=0)
    >>> model = make_model("mlp", data.feature_shape, data.num_classes, hidden=(32,))
    >>> out = train_scores(jax.random.key(0), model, data, score_config("edge-popup",
    ...                    epochs=2))
    >>> [m.shape for m in out.masks], round(out.kept_fraction, 2)
    ([(64, 32), (32, 10)], 0.7)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from qselax.networks import (
    Masks,
    Model,
    accuracy,
    apply_masked,
    cross_entropy,
    mask_shapes,
)
from qselax.training import check_budget, fit

__all__ = [
    "EVAL_MASKS",
    "SCORE_DEFAULTS",
    "SCORE_METHODS",
    "SCORE_OPTIMIZERS",
    "ScoreConfig",
    "ScoreResult",
    "edge_popup_masks",
    "init_scores",
    "score_config",
    "supermask_masks",
    "train_scores",
]

SCORE_METHODS = ("edge-popup", "supermask")
SCORE_OPTIMIZERS = ("sgd", "adam")
EVAL_MASKS = ("expected", "sampled")


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """One score-training run (hashable; never traced).

    Attributes:
        method: ``"edge-popup"`` or ``"supermask"``.
        keep: edge-popup's kept fraction per layer (the paper's ``k``); unused by
            supermask, whose kept fraction is learned.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``; both with a cosine
            learning-rate decay over all steps and decoupled weight decay.
        learning_rate: peak learning rate.
        momentum: SGD momentum.
        weight_decay: decay on the scores (added to the gradient).
        epochs: passes over the cost split.
        batch_size: samples per step.
        eval_mask: supermask's evaluation mask, ``"expected"`` or ``"sampled"``.
    """

    method: str = "edge-popup"
    keep: float = 0.5
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 100
    batch_size: int = 128
    eval_mask: str = "expected"

    def validate(self) -> ScoreConfig:
        """Raises ``ValueError`` on a bad setting; returns the config."""
        for name, value, options in (
            ("method", self.method, SCORE_METHODS),
            ("optimizer", self.optimizer, SCORE_OPTIMIZERS),
            ("eval_mask", self.eval_mask, EVAL_MASKS),
        ):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        if not 0.0 < self.keep <= 1.0:
            raise ValueError(f"keep must be in (0, 1], got {self.keep}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        check_budget(self.epochs, self.batch_size, self.learning_rate)
        return self


# Each method's best setting by mean validation accuracy (seeds 0-2, digits,
# 64-256-10) in experiments/generalisation/tune.py's grid (optimiser, learning rate,
# keep fraction or evaluation mask, epochs); weight decay and batch size not tuned.
SCORE_DEFAULTS = {
    "edge-popup": {
        "keep": 0.7,
        "optimizer": "sgd",
        "learning_rate": 1.0,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "epochs": 400,
        "batch_size": 128,
        "eval_mask": "expected",
    },
    "supermask": {
        "keep": 0.5,
        "optimizer": "adam",
        "learning_rate": 0.3,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "epochs": 200,
        "batch_size": 128,
        "eval_mask": "sampled",
    },
}


def score_config(method: str, **overrides) -> ScoreConfig:
    """The method's :data:`SCORE_DEFAULTS` with ``overrides``; validated."""
    if method not in SCORE_METHODS:
        raise ValueError(f"method must be one of {SCORE_METHODS}, got {method!r}")
    unknown = sorted(set(overrides) - set(SCORE_DEFAULTS[method]))
    if unknown:
        raise ValueError(f"unknown score settings {unknown}")
    config = ScoreConfig(method=method, **{**SCORE_DEFAULTS[method], **overrides})
    return config.validate()


def init_scores(key: jax.Array, model: Model) -> tuple[jax.Array, ...]:
    """Scores of the mask bits, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` per layer.

    That is edge-popup's Kaiming-uniform score init (``a = sqrt(5)``); ``fan_in`` is
    the product of a mask's axes but the last (1 for neuron masks).

    Returns:
        One float32 array per layer, shaped like the model's masks.
    """
    shapes = mask_shapes(model)
    keys = jax.random.split(key, len(shapes))
    out = []
    for k, shape in zip(keys, shapes, strict=True):
        bound = 1.0 / math.sqrt(max(math.prod(shape[:-1]), 1))
        out.append(jax.random.uniform(k, shape, jnp.float32, -bound, bound))
    return tuple(out)


def _top_fraction(a: jax.Array, keep: float) -> jax.Array:
    """A 0/1 array with ones at the ``round(keep * a.size)`` largest entries."""
    size = a.size
    kept = max(1, round(keep * size))
    order = jnp.argsort(a.ravel())
    hard = jnp.zeros(size, a.dtype).at[order[size - kept :]].set(1.0)
    return hard.reshape(a.shape)


def edge_popup_masks(scores, keep: float) -> Masks:
    """Edge-popup's per-layer top-``keep`` masks of ``|scores|``, straight-through.

    The value is the 0/1 mask; the gradient w.r.t. each score is the gradient
    w.r.t. its mask bit times ``sign(score)``.
    """
    masks = []
    for s in scores:
        a = jnp.abs(s)
        masks.append(a + jax.lax.stop_gradient(_top_fraction(a, keep) - a))
    return tuple(masks)


def supermask_masks(key: jax.Array | None, scores) -> Masks:
    """Supermask's masks: ``Bernoulli(sigmoid(s))`` samples, straight-through.

    With ``key=None`` the expected (most likely) mask ``sigmoid(s) > 1/2`` instead.
    """
    masks = []
    keys = [None] * len(scores) if key is None else jax.random.split(key, len(scores))
    for k, s in zip(keys, scores, strict=True):
        p = jax.nn.sigmoid(s)
        if k is None:
            hard = (p > 0.5).astype(p.dtype)
        else:
            hard = jax.random.bernoulli(k, p).astype(p.dtype)
        masks.append(p + jax.lax.stop_gradient(hard - p))
    return tuple(masks)


class ScoreResult(NamedTuple):
    """What :func:`train_scores` returns.

    Attributes:
        masks: the kept epoch's 0/1 evaluation masks (uint8, mask shapes).
        scores: the kept epoch's scores.
        train_accuracy, val_accuracy, test_accuracy: of ``masks``.
        kept_fraction: ones in ``masks`` / mask bits.
        best_epoch: the kept epoch (from 1).
        history: one dict per epoch: ``loss`` (mean mini-batch cost) and the
            evaluation mask's ``train_accuracy``, ``val_accuracy``,
            ``test_accuracy`` and ``kept_fraction``.
        steps: optimiser steps.
        samples: training samples passed forward and backward (steps x batch).
        network_evals: forward-and-backward passes over the cost split
            (samples trained on / cost-split size), comparable with the quantum
            rows' ``landscape_evals`` (forward passes over the cost split).
        compile_s, run_s: timings (s).
    """

    masks: Masks
    scores: Any
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    kept_fraction: float
    best_epoch: int
    history: list
    steps: int
    samples: int
    network_evals: float
    compile_s: float
    run_s: float


def _optimizer(config: ScoreConfig, steps: int) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.learning_rate, max(steps, 1))
    if config.optimizer == "sgd":
        inner = optax.sgd(schedule, momentum=config.momentum or None)
    else:
        inner = optax.adam(schedule)
    return optax.chain(optax.add_decayed_weights(config.weight_decay), inner)


def train_scores(
    key: jax.Array, model: Model, data, config: ScoreConfig
) -> ScoreResult:
    """Learns a mask of ``model``'s frozen weights with edge-popup or supermask.

    Args:
        key: PRNG key (score init, shuffles, Bernoulli samples, the sampled
            evaluation mask).
        model: the frozen random network (its weights are never changed).
        data: a :class:`qselax.data.Dataset`; scores train on ``x_train``.
        config: a :class:`ScoreConfig`.

    Returns:
        A :class:`ScoreResult`.
    """
    config.validate()
    graphdef, weights = nnx.split(model)
    k_init, k_fit, k_eval = jax.random.split(key, 3)
    scores = init_scores(k_init, model)
    n_bits = sum(math.prod(s.shape) for s in scores)

    def train_masks(s, k):
        if config.method == "edge-popup":
            return edge_popup_masks(s, config.keep)
        return supermask_masks(k, s)

    def eval_masks(s):
        if config.method == "edge-popup":
            return edge_popup_masks(s, config.keep)
        return supermask_masks(k_eval if config.eval_mask == "sampled" else None, s)

    def loss_fn(s, k, xb, yb):
        return cross_entropy(apply_masked(graphdef, weights, train_masks(s, k), xb), yb)

    def acc(masks, x, y):
        return accuracy(apply_masked(graphdef, weights, masks, x), y)

    def evaluate(s, splits):
        masks = jax.lax.stop_gradient(eval_masks(s))
        (xt, yt), (xv, yv), (xs, ys) = splits
        val = acc(masks, xv, yv)
        kept = sum(jnp.sum(m) for m in masks) / n_bits
        return {
            "select": val,
            "train_accuracy": acc(masks, xt, yt),
            "val_accuracy": val,
            "test_accuracy": acc(masks, xs, ys),
            "kept_fraction": kept,
        }

    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    splits = tuple(
        (jnp.asarray(a), jnp.asarray(b))
        for a, b in (
            (data.x_train, data.y_train),
            (data.x_val, data.y_val),
            (data.x_test, data.y_test),
        )
    )
    steps = config.epochs * (len(y) // min(config.batch_size, len(y)))
    out = fit(
        k_fit,
        loss_fn,
        scores,
        _optimizer(config, steps),
        x,
        y,
        splits,
        evaluate,
        epochs=config.epochs,
        batch_size=config.batch_size,
    )
    masks = tuple(np.asarray(m).astype(np.uint8) for m in eval_masks(out.params))
    best = out.best_epoch - 1
    history = [
        {"epoch": e + 1, **{k: float(v[e]) for k, v in out.history.items()}}
        for e in range(config.epochs)
    ]
    for record in history:
        record.pop("select")
    return ScoreResult(
        masks=masks,
        scores=out.params,
        train_accuracy=float(out.history["train_accuracy"][best]),
        val_accuracy=float(out.history["val_accuracy"][best]),
        test_accuracy=float(out.history["test_accuracy"][best]),
        kept_fraction=float(out.history["kept_fraction"][best]),
        best_epoch=out.best_epoch,
        history=history,
        steps=out.steps,
        samples=out.samples,
        network_evals=out.samples / len(y),
        compile_s=out.compile_s,
        run_s=out.run_s,
    )
