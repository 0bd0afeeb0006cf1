"""The one gradient-training loop: optax mini-batch epochs, kept on validation.

The trained dense twin (:func:`qselax.networks.train_dense`), the distillation
teacher and the score-based mask finders of :mod:`qselax.scores` (edge-popup,
supermask) all train through :func:`fit`.  Every epoch shuffles the training split,
runs its mini-batch steps in one ``lax.scan``, then calls ``evaluate`` on the whole
parameters; the epoch with the highest ``evaluate(...)["select"]`` (a validation
score) is kept.  The whole training is one compiled call, timed apart from its
compilation.

Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> x = jax.random.normal(jax.random.key(0), (64, 3)); y = (x[:, 0] > 0).astype(int)
    >>> def loss(p, key, xb, yb):
    ...     logits = jnp.stack([-xb @ p, xb @ p], -1)
    ...     return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(yb)), yb])
    >>> def evaluate(p, arrays):
    ...     xs, ys = arrays
    ...     return {"select": jnp.mean((xs @ p > 0) == ys)}
    >>> out = fit(jax.random.key(1), loss, jnp.zeros(3), optax.adam(0.1), x, y,
    ...           (x, y), evaluate, epochs=5, batch_size=16)
    >>> out.history["select"].shape, out.steps
    ((5,), 20)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["FitResult", "check_budget", "fit"]


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        params: the parameters of the kept (best-``select``) epoch.
        best_epoch: that epoch, counted from 1.
        history: per-epoch numpy arrays ``(epochs,)``: ``loss`` (mean mini-batch
            loss) and every key ``evaluate`` returns.
        steps: optimiser steps taken (epochs x batches per epoch).
        samples: training samples passed forward and backward (steps x batch).
        compile_s, run_s: compilation and run time (s).
    """

    params: Any
    best_epoch: int
    history: dict
    steps: int
    samples: int
    compile_s: float
    run_s: float


def check_budget(epochs: int, batch_size: int, learning_rate: float) -> None:
    """Raises ``ValueError`` unless epochs, batch size >= 1 and learning rate > 0."""
    bad = (
        isinstance(epochs, bool)
        or not isinstance(epochs, int | np.integer)
        or epochs < 1
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
        or not learning_rate > 0
    )
    if bad:
        raise ValueError(
            "epochs and batch_size must be integers >= 1 and learning_rate > 0, got "
            f"{epochs=}, {batch_size=}, {learning_rate=}"
        )


def fit(
    key: jax.Array,
    loss_fn: Callable,
    params,
    optimizer: optax.GradientTransformation,
    x: jax.Array,
    y: jax.Array,
    arrays,
    evaluate: Callable,
    *,
    epochs: int,
    batch_size: int,
) -> FitResult:
    """Trains ``params`` on ``(x, y)`` in shuffled mini-batches; keeps the best epoch.

    Args:
        key: PRNG key; epoch ``e`` shuffles with ``split(key, epochs)[e]`` and draws
            its per-step keys (passed to ``loss_fn``) from that key folded with 1.
        loss_fn: ``loss_fn(params, key, xb, yb) -> scalar``.
        params: the starting pytree.
        optimizer: an optax transformation.
        x: ``(N, ...)`` training inputs; y: ``(N,)`` labels.
        arrays: a pytree passed to ``evaluate`` (e.g. the validation split), as data
            rather than compile-time constants.
        evaluate: ``evaluate(params, arrays) -> dict`` of scalars, with ``"select"``
            (higher is better) choosing the kept epoch.
        epochs: passes over the training split.
        batch_size: samples per step (capped at N; the last partial batch is
            dropped, a new shuffle each epoch).

    Returns:
        A :class:`FitResult`.
    """
    n = int(x.shape[0])
    batch_size = min(int(batch_size), n)
    per_epoch = n // batch_size

    def run(p, k, x, y, arrays):
        def epoch(carry, k):
            p, state, best, best_score, best_epoch, e = carry
            perm = jax.random.permutation(k, n)[: per_epoch * batch_size]
            perm = perm.reshape(per_epoch, batch_size)
            step_keys = jax.random.split(jax.random.fold_in(k, 1), per_epoch)

            def step(c, inputs):
                p, state = c
                idx, sk = inputs
                loss, grads = jax.value_and_grad(loss_fn)(p, sk, x[idx], y[idx])
                updates, state = optimizer.update(grads, state, p)
                return (optax.apply_updates(p, updates), state), loss

            (p, state), losses = jax.lax.scan(step, (p, state), (perm, step_keys))
            metrics = dict(evaluate(p, arrays))
            better = metrics["select"] > best_score
            best = jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best)
            best_score = jnp.where(better, metrics["select"], best_score)
            best_epoch = jnp.where(better, e + 1, best_epoch)
            record = {"loss": jnp.mean(losses), **metrics}
            return (p, state, best, best_score, best_epoch, e + 1), record

        init = (p, optimizer.init(p), p, jnp.asarray(-jnp.inf), 0, 0)
        carry, history = jax.lax.scan(epoch, init, jax.random.split(k, epochs))
        return carry[2], carry[4], history

    # The data are traced arguments, not constants baked into the program.
    start = time.perf_counter()
    compiled = jax.jit(run).lower(params, key, x, y, arrays).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    best, best_epoch, history = jax.block_until_ready(
        compiled(params, key, x, y, arrays)
    )
    run_s = time.perf_counter() - start
    steps = epochs * per_epoch
    return FitResult(
        params=best,
        best_epoch=int(best_epoch),
        history={k: np.asarray(v) for k, v in history.items()},
        steps=steps,
        samples=steps * batch_size,
        compile_s=compile_s,
        run_s=run_s,
    )
