"""Sweeps: rebuild every group's landscape against the current mask and re-solve it.

One sweep is one pure function ``(weights, state, data) -> (state, info)``: cached
activations, exact landscapes, the solver's circuits, readout, acceptance, scatter of
the new bits and the masked network's scores all happen inside it, so ``jax.jit`` of a
sweep compiles once and every later sweep reuses it.

Modes (``SWEEP_MODES``):

* ``parallel``: every group is solved at once against the frozen rest of the mask.
  Changing many groups together can interact, so the proposals are ranked by their
  own gain ``C_g(current) - C_g(chosen)`` and a backtracking line search over how
  many of the best are applied (all improving ones, half of them, a quarter, ...,
  one, none) keeps the prefix with the lowest full validation cost.  Since "none" is
  a candidate, the cost never rises.
* ``sequential``: layer by layer, groups in order, in blocks of ``block_size`` (1 by
  default: pure coordinate descent); each block sees every earlier block's update and
  applies the same line search within itself (for one group: accept if it improves).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax.groups import (
    Grouping,
    bit_index,
    gather_bits,
    index_bits,
    scatter_bits,
    unflatten_masks,
)
from qselax.landscapes import Engine, cost_fn
from qselax.networks import accuracy, activations, forward_from
from qselax.solvers import Solver

SWEEP_MODES = ("parallel", "sequential")
ORACLES = ("landscape", "network")
OPTIMUM_RTOL = 1e-6


class SelectionState(NamedTuple):
    """Loop state of a selection: the flat mask and the key it carries.

    Attributes:
        flat: ``(N,)`` float32 mask bits.
        key: PRNG key, split once per sweep.
        sweep: number of sweeps done.
    """

    flat: jax.Array
    key: jax.Array
    sweep: jax.Array


class SweepInfo(NamedTuple):
    """Per-group outcome of one sweep (``(G,)`` arrays) and scores after it.

    ``min_cost`` is the exhaustive optimum of each group's exact landscape, so
    ``optimal`` (the chosen configuration attains it) is known for every solver.
    ``oracle_calls`` and ``shots`` are zero and ``entropy`` is NaN where the solver
    does not report them.
    """

    chosen: jax.Array
    top1: jax.Array
    chosen_cost: jax.Array
    top1_cost: jax.Array
    min_cost: jax.Array
    max_cost: jax.Array
    current_cost: jax.Array
    accepted: jax.Array
    lookups: jax.Array
    optimal: jax.Array
    top1_optimal: jax.Array
    oracle_calls: jax.Array
    shots: jax.Array
    entropy: jax.Array
    val_cost: jax.Array
    val_accuracy: jax.Array
    train_accuracy: jax.Array


def attains(cost: jax.Array, minimum: jax.Array) -> jax.Array:
    """Whether ``cost`` equals the minimum up to float32 noise."""
    return cost <= minimum + OPTIMUM_RTOL * jnp.maximum(1.0, jnp.abs(minimum))


def _prefix_counts(num_groups: int) -> int:
    return int(math.ceil(math.log2(max(num_groups, 1)))) + 2


def line_search_accept(
    flat, index, valid, new_bits, gain, evaluate: Callable[[jax.Array], jax.Array]
):
    """Applies the best prefix of the improving proposals ranked by gain.

    Args:
        flat: ``(N,)`` current mask.
        index, valid: ``(G, K)`` group indices and validity.
        new_bits: ``(G, K)`` proposed bits.
        gain: ``(G,)`` cost decrease each proposal achieves on its own.
        evaluate: ``flat -> scalar`` full validation cost.

    Returns:
        ``(new_flat, accepted (G,) bool, cost of new_flat)``.
    """
    num_groups = gain.shape[0]
    improving = gain > 0
    rank = (
        jnp.zeros(num_groups, jnp.int32)
        .at[jnp.argsort(-gain)]
        .set(jnp.arange(num_groups, dtype=jnp.int32))
    )
    n_imp = jnp.sum(improving.astype(jnp.int32))
    counts = jnp.concatenate(
        [n_imp >> jnp.arange(_prefix_counts(num_groups) - 1), jnp.zeros(1, jnp.int32)]
    )

    def apply(count):
        take = improving & (rank < count)
        return scatter_bits(flat, index, valid & take[:, None], new_bits), take

    costs = jax.lax.map(lambda c: evaluate(apply(c)[0]), counts)
    best = jnp.argmin(costs)
    new_flat, take = apply(counts[best])
    return new_flat, take, costs[best]


def make_sweep(
    model,
    grouping: Grouping,
    engine: Engine,
    solver: Solver,
    *,
    mode: str = "parallel",
    block_size: int = 1,
    cost: str = "ce",
    oracle: str = "landscape",
):
    """Builds the pure sweep function of a model, grouping, engine and solver.

    ``oracle`` is where finite-shot solvers get the costs of the configurations
    they measure: ``"landscape"`` reads them off the exact landscape the sweep
    computes anyway (for the optimality check), ``"network"`` evaluates the masked
    network on exactly those configurations (:attr:`Engine.layer` with
    ``configs``), as hardware would.  Both give the same numbers; ``network``
    costs one network evaluation per shot.

    Returns:
        ``sweep(weights_model, state, x_val, y_val, x_train, y_train) ->
        (state, SweepInfo)`` where ``weights_model`` is the merged network (merge it
        inside ``jit``).
    """
    if mode not in SWEEP_MODES:
        raise ValueError(f"mode must be one of {SWEEP_MODES}, got {mode!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    if oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")
    cost_of = cost_fn(cost)
    k = grouping.k
    shapes = grouping.shapes

    def evaluate(net, flat, x, y):
        return cost_of(forward_from(net, 0, x, unflatten_masks(flat, shapes)), y)

    def finish(net, flat, per_group, x_val, y_val, x_train, y_train):
        masks = unflatten_masks(flat, shapes)
        val_logits = forward_from(net, 0, x_val, masks)
        train_logits = forward_from(net, 0, x_train, masks)
        return SweepInfo(
            *per_group,
            cost_of(val_logits, y_val),
            accuracy(val_logits, y_val),
            accuracy(train_logits, y_train),
        )

    plans = engine.plans

    def parallel(net, state: SelectionState, x_val, y_val, x_train, y_train):
        x_val, y_val, x_train, y_train = map(
            jnp.asarray, (x_val, y_val, x_train, y_train)
        )
        key, sub = jax.random.split(state.key)
        masks = unflatten_masks(state.flat, shapes)
        cache = activations(net, x_val, masks)
        lands = jnp.concatenate(
            [
                engine.layer(net, state.flat, cache, y_val, _arrays(p.arrays), p)
                for p in plans
            ]
        )
        arrays = {
            "index": jnp.asarray(grouping.index),
            "valid": jnp.asarray(grouping.valid),
        }
        sizes = np.cumsum([p.arrays["index"].shape[0] for p in plans])[:-1]

        def network_oracle(configs):
            parts = jnp.split(configs, sizes)
            return jnp.concatenate(
                [
                    engine.layer(
                        net, state.flat, cache, y_val, _arrays(p.arrays), p, part
                    )
                    for p, part in zip(plans, parts, strict=True)
                ]
            )

        flat, per_group = _solve_with_landscapes(
            net,
            state.flat,
            sub,
            x_val,
            y_val,
            arrays,
            lands,
            network_oracle if oracle == "network" else None,
        )
        info = finish(net, flat, per_group, x_val, y_val, x_train, y_train)
        return SelectionState(flat, key, state.sweep + 1), info

    def _solve_with_landscapes(net, flat, key, x, y, arrays, lands, oracle_fn):
        index, valid = arrays["index"], arrays["valid"]
        current = bit_index(gather_bits(flat, index, valid))
        res = solver.solve(key, lands, current, oracle_fn)
        num_groups = lands.shape[0]

        def count(v):
            zeros = jnp.zeros((num_groups,), jnp.int32)
            return zeros if v is None else v.astype(jnp.int32)

        def pick(i):
            return jnp.take_along_axis(lands, i[:, None], axis=-1)[:, 0]

        chosen_cost, cur_cost = pick(res.index), pick(current)
        new_bits = index_bits(res.index, k)
        flat, take, _ = line_search_accept(
            flat,
            index,
            valid,
            new_bits,
            cur_cost - chosen_cost,
            lambda f: evaluate(net, f, x, y),
        )
        min_cost = jnp.min(lands, axis=-1)
        top1_cost = pick(res.top1)
        return flat, (
            res.index,
            res.top1,
            chosen_cost,
            top1_cost,
            min_cost,
            jnp.max(lands, axis=-1),
            cur_cost,
            take,
            res.lookups,
            attains(chosen_cost, min_cost),
            attains(top1_cost, min_cost),
            count(res.oracle_calls),
            count(res.shots),
            jnp.full((num_groups,), jnp.nan, jnp.float32)
            if res.entropy is None
            else res.entropy.astype(jnp.float32),
        )

    def sequential(net, state: SelectionState, x_val, y_val, x_train, y_train):
        x_val, y_val, x_train, y_train = map(
            jnp.asarray, (x_val, y_val, x_train, y_train)
        )
        key, sub = jax.random.split(state.key)
        keys = jax.random.split(sub, len(plans))
        flat = state.flat
        outs = []
        for plan, pkey in zip(plans, keys, strict=True):
            blocks, n = _blocked(plan.arrays, block_size)
            num_blocks = blocks["index"].shape[0]

            def body(flat, xs, plan=plan):
                arrays, bkey = xs
                masks = unflatten_masks(flat, shapes)
                cache = activations(net, x_val, masks)
                lands = engine.layer(net, flat, cache, y_val, arrays, plan)

                def network_oracle(configs):
                    return engine.layer(net, flat, cache, y_val, arrays, plan, configs)

                return _solve_with_landscapes(
                    net,
                    flat,
                    bkey,
                    x_val,
                    y_val,
                    arrays,
                    lands,
                    network_oracle if oracle == "network" else None,
                )

            flat, per_group = jax.lax.scan(
                body, flat, (blocks, jax.random.split(pkey, num_blocks))
            )
            outs.append(jax.tree.map(lambda a, n=n: a.reshape(-1)[:n], per_group))
        per_group = jax.tree.map(lambda *a: jnp.concatenate(a), *outs)
        info = finish(net, flat, per_group, x_val, y_val, x_train, y_train)
        return SelectionState(flat, key, state.sweep + 1), info

    return parallel if mode == "parallel" else sequential


def _arrays(arrays: dict) -> dict:
    return {name: jnp.asarray(a) for name, a in arrays.items()}


def _blocked(arrays: dict, block_size: int):
    """Pads a layer's group arrays to whole blocks: ``(num_blocks, block, ...)``.

    Padding groups have no valid bit, so their landscape is flat and they never
    change anything; their outputs are dropped.
    """
    n = arrays["index"].shape[0]
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        filler = np.zeros((pad, *a.shape[1:]), a.dtype)
        if name != "valid":
            filler[:] = a[:1]
        out[name] = jnp.asarray(
            np.concatenate([a, filler]).reshape(num_blocks, block_size, *a.shape[1:])
        )
    return out, n
