"""The one sweep: gather -> solve -> accept -> scatter, for every landscape.

A sweep re-solves every group of a :class:`qselax.landscapes.Landscape` against the
current mask.  It is one pure function ``(params, state) -> (state, SweepInfo)``:
the landscapes, the solver's circuits, the acceptance, the scatter of the new bits
and the scores after it all happen inside it, so ``jax.jit`` of a sweep compiles
once and every later sweep reuses it.  Direct selection, every distillation block
and NK shared mode run on this same function; only their landscapes differ.

Modes (``SWEEP_MODES``):

* ``parallel``: every group is solved at once against the frozen rest of the mask.
  Changing many groups together can interact, so the proposals are ranked by their
  own gain ``C_g(current) - C_g(chosen)`` and a backtracking line search over how
  many of the best are applied (all improving ones, half of them, a quarter, ...,
  one, none) keeps the prefix with the lowest total cost.  Since "none" is a
  candidate, the cost never rises.
* ``sequential``: segment by segment (e.g. layer by layer), groups in order, in
  blocks of ``block_size`` (a segment may fix its own block, as NK colour classes
  of non-interacting groups do); each block sees every earlier block's update and
  applies the same line search within itself (for one group: accept if it
  improves).  For non-interacting groups the line search keeps every improving
  group, so each is accepted on its own merit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Shaped

from qselax.bits import bit_index, gather_bits, index_bits, scatter_bits
from qselax.landscapes import Landscape
from qselax.sharding import group_mesh, on_groups, replicated, sharded_groups
from qselax.solvers import Solver

__all__ = [
    "OPTIMUM_RTOL",
    "ORACLES",
    "SWEEP_MODES",
    "SelectionState",
    "SweepInfo",
    "attains",
    "pad_blocks",
    "line_search_accept",
    "make_sweep",
]

SWEEP_MODES = ("parallel", "sequential")
ORACLES = ("landscape", "network")
OPTIMUM_RTOL = 1e-6


class SelectionState(NamedTuple):
    """Loop state of a selection: the flat mask and the key it carries.

    Attributes:
        flat: ``(N,)`` float32 mask bits.
        key: PRNG key, split once per sweep.
        sweep: number of sweeps done.
        carry: a warm-starting solver's per-group carry (e.g. VQE's tuned angles),
            laid out as the sweep's groups (``sweep.init_carry()``); ``None`` for
            other solvers.
    """

    flat: jax.Array
    key: jax.Array
    sweep: jax.Array
    carry: Any = None


class SweepInfo(NamedTuple):
    """Per-group outcome of one sweep (``(G,)`` arrays) and the scores after it.

    ``min_cost`` is the exhaustive optimum of each group's exact landscape, so
    ``optimal`` (the chosen configuration attains it) is known for every solver.
    ``oracle_calls`` and ``shots`` are zero and ``entropy`` is NaN where the solver
    does not report them.  ``real`` is False on padding groups (no valid bit) that
    a segment carries to fill its blocks; their counts are zero.  ``steps`` are
    the optimiser steps each group's solve used (zero without an optimiser).
    ``cost`` is the landscape's total cost after the sweep and ``metrics`` its
    scores.
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
    real: jax.Array
    steps: jax.Array
    cost: jax.Array
    metrics: dict


def attains(cost: ArrayLike, minimum: ArrayLike) -> jax.Array:
    """Whether ``cost`` equals the minimum up to float32 noise."""
    return cost <= minimum + OPTIMUM_RTOL * jnp.maximum(1.0, jnp.abs(minimum))


def _prefix_counts(num_groups: int) -> int:
    return int(math.ceil(math.log2(max(num_groups, 1)))) + 2


def line_search_accept(
    flat: Float[Array, " N"],
    index: Int[Array, "G K"],
    valid: Bool[Array, "G K"],
    new_bits: Shaped[Array, "G K"],
    gain: Float[Array, " G"],
    evaluate: Callable[[jax.Array], jax.Array],
) -> tuple[Float[Array, " N"], Bool[Array, " G"], Float[Array, ""]]:
    """Applies the best prefix of the improving proposals ranked by gain.

    Args:
        flat: ``(N,)`` current mask.
        index: ``(G, K)`` group indices.
        valid: ``(G, K)`` validity of the indices.
        new_bits: ``(G, K)`` proposed bits.
        gain: ``(G,)`` cost decrease each proposal achieves on its own.
        evaluate: ``flat -> scalar`` total cost.

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


def pad_blocks(arrays: dict, block_size: int) -> tuple[dict, int]:
    """Pads a segment's group arrays to whole blocks: ``(blocks, size, ...)``.

    The block is ``min(block_size, G_s)`` groups.  Padding groups copy the first
    group with no valid bit, so their landscape is flat and they never change
    anything; the sweep drops their outputs.

    Returns:
        ``(blocked arrays, G_s)``.
    """
    n = arrays["index"].shape[0]
    size = min(block_size, n)
    num_blocks = -(-n // size)
    pad = num_blocks * size - n
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        filler = np.zeros((pad, *a.shape[1:]), a.dtype)
        if name != "valid":
            filler[:] = a[:1]
        out[name] = jnp.asarray(
            np.concatenate([a, filler]).reshape(num_blocks, size, *a.shape[1:])
        )
    return out, n


def make_sweep(
    landscape: Landscape,
    solver: Solver,
    *,
    mode: str = "sequential",
    block_size: int = 64,
    oracle: str = "landscape",
    devices: Sequence[jax.Device] | None = None,
):
    """Builds the pure sweep of a landscape and a solver.

    ``oracle`` is where finite-shot solvers get the costs of the configurations
    they measure: ``"landscape"`` reads them off the exact landscape the sweep
    computes anyway (for the optimality check), ``"network"`` asks the landscape
    to evaluate exactly those configurations (the masked network run on them, as
    hardware would; only landscapes with ``network_oracle``).  Both give the same
    numbers; ``network`` costs one network evaluation per shot.

    Args:
        landscape: the method's landscape.
        solver: a built solver for ``landscape.k`` bits.
        mode: ``"sequential"`` or ``"parallel"``.
        block_size: groups per block in sequential sweeps.
        oracle: ``"landscape"`` or ``"network"``.
        devices: the devices the groups are sharded over (:mod:`qselax.sharding`);
            ``None`` for every visible device.  With one there is no sharding.

    Returns:
        ``sweep(params, state) -> (state, SweepInfo)``; ``sweep.init_carry()`` is
        the ``state.carry`` a warm-starting solver starts from (``None`` for the
        others; :class:`qselax.driver.Driver` fills it in).

    Raises:
        ValueError: a bad mode, block size or oracle.
    """
    if mode not in SWEEP_MODES:
        raise ValueError(f"mode must be one of {SWEEP_MODES}, got {mode!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    if oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")
    if oracle == "network" and not landscape.network_oracle:
        raise ValueError(
            "oracle 'network' needs a landscape that evaluates sampled "
            "configurations (the masked network's); use oracle='landscape'"
        )
    k = landscape.k
    segments = landscape.segments
    mesh = group_mesh(devices)

    def solve_accept(params, flat, key, index, valid, lands, oracle_fn, carry=None):
        current = bit_index(gather_bits(flat, index, valid))
        lands, current = on_groups((lands, current), mesh)
        if carry is None:
            res = solver.solve(key, lands, current, oracle_fn)
        else:
            carry = on_groups(carry, mesh)
            res = solver.solve(key, lands, current, oracle_fn, carry=carry)
        res = on_groups(res, mesh)
        num_groups = lands.shape[0]
        real = jnp.any(valid, axis=-1)

        def count(v):
            if v is None:
                return jnp.zeros((num_groups,), jnp.int32)
            return jnp.where(real, v.astype(jnp.int32), 0)

        def pick(i):
            return jnp.take_along_axis(lands, i[:, None], axis=-1)[:, 0]

        chosen_cost, cur_cost = pick(res.index), pick(current)
        flat, take, _ = line_search_accept(
            flat,
            index,
            valid,
            index_bits(res.index, k),
            cur_cost - chosen_cost,
            # The totals are the single-device program's: the whole mask and
            # data on every device, never a sum split over devices.
            lambda f: landscape.total(params, replicated(f, mesh)),
        )
        flat = replicated(flat, mesh)
        min_cost = jnp.min(lands, axis=-1)
        top1_cost = pick(res.top1)
        entropy = (
            jnp.full((num_groups,), jnp.nan, jnp.float32)
            if res.entropy is None
            else res.entropy.astype(jnp.float32)
        )
        return (
            flat,
            res.carry,
            (
                res.index,
                res.top1,
                chosen_cost,
                top1_cost,
                min_cost,
                jnp.max(lands, axis=-1),
                cur_cost,
                take,
                count(res.lookups),
                attains(chosen_cost, min_cost),
                attains(top1_cost, min_cost),
                count(res.oracle_calls),
                count(res.shots),
                entropy,
                real,
                count(res.steps),
            ),
        )

    def finish(params, state, key, flat, per_group, carry=None):
        metrics = {} if landscape.metrics is None else landscape.metrics(params, flat)
        info = SweepInfo(*per_group, landscape.total(params, flat), metrics)
        state = SelectionState(flat, key, state.sweep + 1, carry)
        # Whole on every device: the next sweep's input and the driver's record.
        return replicated((state, info), mesh)

    def sample(params, key):
        """The landscapes' params and the solver's key (a minibatch drawn from the
        key where the landscape is subsampled; otherwise the key untouched)."""
        if landscape.subsample is None:
            return params, key
        key, batch_key = jax.random.split(key)
        return landscape.subsample(params, batch_key), key

    def with_oracle(params, flat, ctx, segment, arrays):
        if oracle != "network":
            return None
        return lambda configs: landscape.costs(
            params, flat, ctx, segment, arrays, configs
        )

    def parallel(params, state: SelectionState):
        key, sub = jax.random.split(state.key)
        flat = state.flat
        lparams, sub = sample(params, sub)
        ctx = landscape.prepare(lparams, flat)
        arrays = [
            {name: jnp.asarray(a) for name, a in s.arrays.items()} for s in segments
        ]
        lands = jnp.concatenate(
            [landscape.costs(lparams, flat, ctx, i, a) for i, a in enumerate(arrays)]
        )
        sizes = np.cumsum([s.num_groups for s in segments])[:-1]
        oracle_fn = None
        if oracle == "network":

            def oracle_fn(configs):
                parts = jnp.split(configs, sizes)
                return jnp.concatenate(
                    [
                        landscape.costs(lparams, flat, ctx, i, a, part)
                        for i, (a, part) in enumerate(zip(arrays, parts, strict=True))
                    ]
                )

        index = jnp.concatenate([a["index"] for a in arrays])
        valid = jnp.concatenate([a["valid"] for a in arrays])
        flat, carry, per_group = solve_accept(
            params, flat, sub, index, valid, lands, oracle_fn, state.carry
        )
        return finish(params, state, key, flat, per_group, carry)

    def sequential(params, state: SelectionState):
        key, sub = jax.random.split(state.key)
        keys = jax.random.split(sub, len(segments))
        flat = state.flat
        outs, carries = [], []
        for i, (segment, skey) in enumerate(zip(segments, keys, strict=True)):
            blocks, n = pad_blocks(segment.arrays, segment.block or block_size)
            num_blocks = blocks["index"].shape[0]
            carry = None if state.carry is None else state.carry[i]

            def body(flat, xs, i=i):
                arrays, bkey, bcarry = xs
                lparams, bkey = sample(params, bkey)
                ctx = landscape.prepare(lparams, flat)
                lands = landscape.costs(lparams, flat, ctx, i, arrays)
                flat, bcarry, per_group = solve_accept(
                    params,
                    flat,
                    bkey,
                    arrays["index"],
                    arrays["valid"],
                    lands,
                    with_oracle(lparams, flat, ctx, i, arrays),
                    bcarry,
                )
                return flat, (per_group, bcarry)

            flat, (per_group, carry) = jax.lax.scan(
                body, flat, (blocks, jax.random.split(skey, num_blocks), carry)
            )
            outs.append(jax.tree.map(lambda a, n=n: a.reshape(-1)[:n], per_group))
            carries.append(carry)
        per_group = jax.tree.map(lambda *a: jnp.concatenate(a), *outs)
        carry = None if state.carry is None else carries
        return finish(params, state, key, flat, per_group, carry)

    def init_carry():
        """The cold carry of a warm-starting solver, laid out as this sweep's
        groups (parallel: ``(G, ...)``; sequential: per segment ``(blocks,
        block, ...)``); ``None`` for other solvers."""
        if solver.init_carry is None:
            return None
        if mode == "parallel":
            return solver.init_carry(sum(s.num_groups for s in segments))
        out = []
        for segment in segments:
            n = segment.num_groups
            size = min(segment.block or block_size, n)
            blocks = -(-n // size)
            cold = solver.init_carry(blocks * size)
            out.append(
                jax.tree.map(lambda a, b=blocks: a.reshape(b, -1, *a.shape[1:]), cold)
            )
        return out

    run = parallel if mode == "parallel" else sequential
    if mesh is None:
        sweep = run
    else:

        def sweep(params, state: SelectionState):
            with sharded_groups(mesh):
                # Weights, data, mask and carry whole on every device, as the
                # sweep returns the state: the next sweep's input is laid out as
                # this one's.
                return run(*replicated((params, state), mesh))

    sweep.init_carry = init_carry
    return sweep
