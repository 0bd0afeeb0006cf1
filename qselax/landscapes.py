"""Landscapes: the cost of all 2^K configurations of every group, for any method.

A group's *landscape* is the vector ``C_g(s)``, ``s = 0 .. 2^K - 1``, of a method's
cost when the group's bits are set to configuration ``s`` (bit 0 most significant,
see :func:`qselax.bits.bit_index`) and every other mask bit is held at its current
value.  It is the diagonal of the group's problem Hamiltonian H_C.

Every selection method is one :class:`Landscape`: pure functions of the method's
data ``params`` (a pytree: network weights and a data split, a distillation block,
an NK table, ...) and the flat mask, plus the static :class:`Segment` s its groups
come in.  The sweep (:mod:`qselax.sweeps`) and the driver (:mod:`qselax.driver`)
only ever talk to this interface:

* ``prepare(params, flat) -> ctx``: what every group's landscape shares against the
  current mask (e.g. the cached activations);
* ``costs(params, flat, ctx, segment, arrays, configs=None) -> (G_sub, S)``: the
  landscapes of a batch of groups of one segment (``arrays``: their rows of
  ``segments[segment].arrays``), or with ``configs (G_sub, R)`` only those
  configurations' costs (the finite-shot oracle evaluates exactly what it samples);
* ``total(params, flat) -> ()``: the full cost the acceptance line search reads;
* ``metrics(params, flat) -> dict`` of scalars recorded after every sweep.

Groups run through :func:`map_groups` (a chunked ``vmap``) with the chunk chosen up
front by the one memory planner :func:`plan_chunk`; a group whose own working set
exceeds the budget is a ``ValueError`` at set-up, before any large allocation.

This module holds the masked network's landscape (:func:`network_landscape`).  Its
three evaluators compute the same numbers at very different prices:

* ``rank1`` (dense layers): a group in layer ``l`` changes only a few columns ``J``
  of that layer's output (one column for a fan-in group), so the next layer's
  pre-activation changes by a rank-``|J|`` update ``Δh_J @ W_{l+1}[J]`` of the cached
  one, and only the layers after that are run again.  For a group in the last layer
  only ``|J|`` logits change.
* ``suffix`` (any layer, e.g. convolutions): layer ``l`` is recomputed from its cached
  input for every configuration, then the rest of the network.
* ``naive``: the whole masked network per configuration.  Orders of magnitude slower;
  it is the test oracle and the benchmark's peer.

Example:
    >>> import numpy as np
    >>> from flax import nnx
    >>> from qselax.networks import MaskableMLP, ones_masks
    >>> from qselax.groups import make_grouping, flatten_masks
    >>> model = MaskableMLP(4, (3,), 2, rngs=nnx.Rngs(0))
    >>> grouping = make_grouping("fan_in", model, k=2)
    >>> land = network_landscape(model, grouping, num_samples=5)
    >>> x, y = np.ones((5, 4), np.float32), np.zeros(5, np.int32)
    >>> params = network_params(model, x, y)
    >>> land.all(params, flatten_masks(ones_masks(model))).shape
    (10, 4)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from qselax.bits import bit_table
from qselax.groups import Grouping, unflatten_masks
from qselax.networks import (
    MaskableCNN,
    Model,
    accuracy,
    activations,
    cross_entropy,
    error_rate,
    forward_from,
    mask_shapes,
)
from qselax.sharding import current_mesh, map_chunks

__all__ = [
    "CACHE_MB",
    "CACHE_TILE",
    "COSTS",
    "EVALUATORS",
    "Landscape",
    "NetParams",
    "Segment",
    "column_sets",
    "cost_fn",
    "map_groups",
    "naive_landscapes",
    "network_landscape",
    "network_params",
    "plan_chunk",
    "prune_penalty",
]

COSTS = ("ce", "error")
EVALUATORS = ("auto", "rank1", "suffix", "naive")


# On a CPU, a chunk's working set is kept near this size (MiB, in the planner's
# estimate) so it stays in cache: measured fastest on LeNet-300-100 and the demo.
CACHE_MB = 16.0
CACHE_TILE = 64


def _cache_tile(num_samples: int, per_sample: int) -> int:
    """Samples per tile of a CPU landscape: at most ``CACHE_TILE``, a power of two,
    and small enough that one group's estimate fits ``CACHE_MB`` (at least 1)."""
    tile = min(num_samples, CACHE_TILE)
    while tile > 1 and tile * per_sample > CACHE_MB * 2**20:
        tile = (tile + 1) // 2
    return tile


class Segment(NamedTuple):
    """Groups of one kind (e.g. one layer's) with their per-group arrays.

    Attributes:
        name: a label (``"layer0"``, ``"class3"``, ...).
        arrays: dict of ``(G_s, ...)`` NumPy arrays built at set-up; ``index`` and
            ``valid`` (``(G_s, K)``) always, others as the landscape needs.
        chunk: groups per vectorised chunk (:func:`plan_chunk`).
        block: groups solved together per step of a sequential sweep, or ``None``
            for the sweep's ``block_size`` (NK colour classes fix their own).
        bytes_per_group: the planner's working-set estimate of one group.
        kind: how the landscape evaluates them (e.g. the network's evaluator).
        tile: samples a group is evaluated on at once (``None``: not tiled).
    """

    name: str
    arrays: dict
    chunk: int
    block: int | None = None
    bytes_per_group: int = 0
    kind: str = ""
    tile: int | None = None

    @property
    def num_groups(self) -> int:
        return int(self.arrays["index"].shape[0])


class Landscape(NamedTuple):
    """A selection method's cost over its groups' configurations (module docstring).

    Attributes:
        k: bits per group.
        segments: the groups, in sweep order.
        prepare: ``(params, flat) -> ctx``.
        costs: ``(params, flat, ctx, segment: int, arrays, configs=None) -> (G_sub,
            S)`` or ``(G_sub, R)`` with ``configs``.
        total: ``(params, flat) -> ()`` the cost acceptance minimises.
        metrics: ``(params, flat) -> dict`` of scalars, or ``None``.
        network_oracle: whether ``costs`` evaluates ``configs`` by the network
            itself (else only ``oracle="landscape"`` applies).
        subsample: ``(params, key) -> params`` whose landscape sample is a fresh
            seeded minibatch, or ``None`` (exact landscapes on the whole sample).
            The sweep draws one per block (sequential) or per sweep (parallel)
            for ``prepare``/``costs``; ``total`` (the acceptance) keeps the
            original ``params``: a larger fixed sample.
    """

    k: int
    segments: tuple[Segment, ...]
    prepare: Callable
    costs: Callable
    total: Callable
    metrics: Callable | None = None
    network_oracle: bool = False
    subsample: Callable | None = None

    @property
    def num_groups(self) -> int:
        return sum(s.num_groups for s in self.segments)

    def all(self, params: Any, flat: jax.Array) -> jax.Array:
        """``(G, 2^K)`` landscapes of every group against ``flat`` (in order)."""
        flat = jnp.asarray(flat)
        ctx = self.prepare(params, flat)
        return jnp.concatenate(
            [
                self.costs(params, flat, ctx, i, _device(s.arrays))
                for i, s in enumerate(self.segments)
            ]
        )


def _device(arrays: Mapping) -> dict:
    return {name: jnp.asarray(a) for name, a in arrays.items()}


def plan_chunk(
    num_groups: int, bytes_per_group: int, memory_mb: float, what: str
) -> int:
    """Groups per chunk that fit ``memory_mb``: the one memory planner.

    Args:
        num_groups: groups to evaluate.
        bytes_per_group: estimated peak working set of one group.
        memory_mb: the budget of one chunk.
        what: how the error message names one group's working set (e.g. ``"one
            group of layer 1 (2^8 configurations x 359 samples x 256 units)"``).

    Raises:
        ValueError: one group is over the budget (the message gives the estimate).
    """
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb}")
    budget = int(memory_mb * 2**20)
    if bytes_per_group > budget:
        raise ValueError(
            f"memory_mb: {what} needs about {bytes_per_group / 2**20:.0f} MiB, over "
            f"the memory budget of {memory_mb:.0f} MiB: lower k, use fewer samples, "
            "or raise memory_mb"
        )
    return int(max(1, min(num_groups, budget // max(1, bytes_per_group))))


def map_groups(fn: Callable, arrays: Mapping, chunk: int) -> jax.Array:
    """``fn`` over the leading (group) axis of ``arrays``, ``chunk`` groups at once.

    Inside a sweep over several devices (:func:`qselax.sharding.sharded_groups`)
    the chunks are spread over the devices (:func:`qselax.sharding.map_chunks`),
    each computed with the same shapes, hence the same numbers, as on one.
    """
    mesh = current_mesh()
    if mesh is not None:
        return map_chunks(fn, dict(arrays), chunk, mesh)
    return jax.lax.map(fn, dict(arrays), batch_size=chunk)


def cost_fn(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(…, B, C) logits, (B,) labels -> (…)`` mean cost over the batch."""
    if name not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {name!r}")
    return cross_entropy if name == "ce" else error_rate


def column_sets(cols: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct output columns of each group and the bit-to-column one-hot.

    Args:
        cols: ``(G, K)`` output column of every bit.
        valid: ``(G, K)`` validity.

    Returns:
        ``(cset (G, Kc) int32, assign (G, K, Kc) float32)``: the distinct columns
        (padded with the first) and ``assign[g, j, c] = 1`` where bit ``j`` feeds
        column ``cset[g, c]``.
    """
    g, k = cols.shape
    sets = [np.unique(c[v]) for c, v in zip(cols, valid, strict=True)]
    kc = max(len(s) for s in sets)
    out = np.zeros((g, kc), np.int32)
    assign = np.zeros((g, k, kc), np.float32)
    for i, s in enumerate(sets):
        out[i, : len(s)] = s
        out[i, len(s) :] = s[0]
        pos = np.searchsorted(s, cols[i])
        assign[i, np.arange(k)[valid[i]], pos[valid[i]]] = 1.0
    return out, assign


# ------------------------------------------------------------ the masked network


class NetParams(NamedTuple):
    """The data of a network landscape (see :func:`network_params`).

    Attributes:
        weights: the network's state from ``nnx.split(model)`` (merged inside jit).
        x, y: the cost split: ``(B, *features)`` inputs and ``(B,)`` labels (with
            a ``pool``: the fixed acceptance sample).
        splits: ``{name: (x, y)}`` splits scored after every sweep (metrics).
        pool: ``(x, y)`` the subsampled landscapes draw their minibatches from
            (``(P, *features)``, ``(P,)``), or ``None`` (exact landscapes on ``x``).
        accept: ``(x, y)`` the sample the acceptance line search (``total``)
            scores, e.g. the validation split, or ``None`` (``x, y``).
    """

    weights: Any
    x: jax.Array
    y: jax.Array
    splits: dict
    pool: tuple | None = None
    accept: tuple | None = None


def network_params(
    model: Model, x, y, splits: Mapping | None = None, pool=None, accept=None
) -> NetParams:
    """The ``params`` of :func:`network_landscape`: weights, cost sample, scored
    splits, (for subsampled landscapes) the minibatch pool ``(x, y)`` and (where
    it is not the cost sample) the acceptance sample ``(x, y)``."""
    _, weights = nnx.split(model)
    splits = {
        name: (jnp.asarray(sx), jnp.asarray(sy))
        for name, (sx, sy) in (splits or {}).items()
    }
    if pool is not None:
        pool = (jnp.asarray(pool[0]), jnp.asarray(pool[1]))
    if accept is not None:
        accept = (jnp.asarray(accept[0]), jnp.asarray(accept[1]))
    return NetParams(weights, jnp.asarray(x), jnp.asarray(y), splits, pool, accept)


def _is_dense(model: Model, l: int) -> bool:
    return not (isinstance(model, MaskableCNN) and l < model.num_conv)


def _layer_evaluator(model: Model, l: int, evaluator: str) -> str:
    """Which evaluator layer ``l``'s groups use."""
    last = model.num_layers - 1
    rank1_ok = _is_dense(model, l) and (l == last or _is_dense(model, l + 1))
    if model.mask_level == "neuron":
        rank1_ok = _is_dense(model, l) and _is_dense(model, l + 1)
    if evaluator == "rank1" and not rank1_ok:
        raise ValueError(
            f"evaluator 'rank1' needs dense layers; layer {l} of this model is a "
            "convolution: use 'auto' or 'suffix'"
        )
    if evaluator == "auto":
        return "rank1" if rank1_ok else "suffix"
    return evaluator


def _act_sizes(model: Model, feature_shape) -> list[int]:
    """Per-sample size of every layer's pre-activation and output."""
    hs, zs = jax.eval_shape(
        lambda x: activations(model, x, None),
        jax.ShapeDtypeStruct((1, *feature_shape), jnp.float32),
    )
    return [math.prod(z.shape[1:]) for z in zs] + [math.prod(h.shape[1:]) for h in hs]


def network_landscape(
    model: Model,
    grouping: Grouping,
    *,
    num_samples: int,
    feature_shape: tuple[int, ...] | None = None,
    cost: str = "ce",
    evaluator: str = "auto",
    memory_mb: float = 1024.0,
    batch: int | None = None,
    tile: int | str | None = "auto",
) -> Landscape:
    """The masked network's cost on a data split, for every group of ``grouping``.

    ``params`` is a :class:`NetParams` (:func:`network_params`): the cost is the
    mean ``cost`` of the masked network on ``(params.x, params.y)``; ``metrics``
    gives ``{split}_cost`` and ``{split}_accuracy`` of every split in
    ``params.splits``.  Segments are the network's layers (those with groups).

    With ``batch = M`` the landscapes are *subsampled*: ``subsample(params, key)``
    draws M distinct samples of ``params.pool`` (seeded by the sweep's key, a new
    draw per block), the landscapes are exact on them, and the acceptance
    (``total``) stays on the fixed ``(params.x, params.y)``.

    Args:
        model: the maskable network (only its structure and shapes are read here).
        grouping: the groups.
        num_samples: samples B of the cost split the landscapes average over.
        feature_shape: input feature shape (default: the model's).
        cost: ``"ce"`` (mean cross-entropy) or ``"error"`` (0-1 error).
        evaluator: ``"auto"`` (``rank1`` where layers are dense, else ``suffix``),
            ``"rank1"``, ``"suffix"`` or ``"naive"``.
        memory_mb: budget for one chunk's working set.
        batch: minibatch size M of subsampled landscapes (``num_samples`` must
            then be M), or ``None``.
        tile: samples a group's configurations are evaluated on at once (the
            rest follow in a ``lax.scan``, summed): ``"auto"`` (on a CPU, at most
            ``CACHE_TILE`` and a chunk within ``CACHE_MB`` so the working set stays
            in cache: 1.7x faster on the demo's exact sweep and 5x on
            LeNet-300-100's, ``experiments/bench_roofline``; elsewhere all
            samples), ``None`` (all samples) or an int.

    Raises:
        ValueError: unknown cost/evaluator, a bad ``tile``, a grouping that does
            not match the model, or one group's working set over ``memory_mb``
            (the message gives the estimate).
    """
    cost_of = cost_fn(cost)
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {EVALUATORS}, got {evaluator!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if batch is not None and batch != num_samples:
        raise ValueError(
            f"subsampled landscapes average over batch = {batch} samples; "
            f"num_samples must equal it, got {num_samples}"
        )
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb}")
    if tuple(grouping.shapes) != tuple(mask_shapes(model)):
        raise ValueError(
            f"grouping was built for mask shapes {grouping.shapes}, the model has "
            f"{mask_shapes(model)}"
        )
    if feature_shape is None:
        feature_shape = (
            model.in_shape if isinstance(model, MaskableCNN) else (model.widths[0],)
        )
    counted = isinstance(tile, int) and not isinstance(tile, bool) and tile >= 1
    if not (tile is None or tile == "auto" or counted):
        raise ValueError(f"tile must be 'auto', None or an int >= 1, got {tile!r}")
    cached = tile == "auto" and jax.default_backend() == "cpu"
    graphdef = nnx.graphdef(model)
    shapes = grouping.shapes
    k = grouping.k
    num_configs = 2**k
    sizes = _act_sizes(model, feature_shape)
    n_layers = model.num_layers
    offsets = grouping.offsets
    table = bit_table(k)
    segments, layers, hows = [], [], []
    for l, (start, stop) in enumerate(grouping.layer_slices):
        if stop == start:
            continue
        how = _layer_evaluator(model, l, evaluator)
        index = grouping.index[start:stop]
        valid = grouping.valid[start:stop]
        local = (index - offsets[l]).astype(np.int32)
        arrays = {"index": index, "valid": valid, "local": local}
        # Widest array a configuration batch of one group holds at once.
        if how == "rank1":
            if model.mask_level == "weight":
                n_out = model.kernel(l).shape[-1]
                rows, cols = local // n_out, local % n_out
                cset, assign = column_sets(cols, valid)
                arrays.update(
                    rows=rows.astype(np.int32),
                    cols=cset,
                    assign=assign,
                    cols_of_bits=cols.astype(np.int32),
                )
            else:
                arrays.update(
                    cols=local,
                    assign=np.eye(k, dtype=np.float32)[None] * valid[..., None],
                )
            # Only |J| <= K columns of layer l change; layers after l are rerun.
            widest = max(sizes[l + 1 : n_layers] + sizes[n_layers + l + 2 :] + [k])
        elif how == "suffix":
            widest = max(sizes[l:n_layers] + sizes[n_layers + l :])
        else:
            widest = max(sizes)
        per_sample = num_configs * widest * 4 * 4
        if cached:
            tile_len = _cache_tile(num_samples, per_sample)
        else:
            tile_len = num_samples if tile in (None, "auto") else min(tile, num_samples)
        nbytes = int(per_sample * tile_len)
        chunk = plan_chunk(
            stop - start,
            nbytes,
            min(memory_mb, CACHE_MB) if cached else memory_mb,
            f"one group of layer {l} (2^{k} configurations x {tile_len} samples "
            f"x {widest} units)",
        )
        segments.append(
            Segment(f"layer{l}", arrays, chunk, None, nbytes, how, tile_len)
        )
        layers.append(l)
        hows.append(how)

    def prepare(params: NetParams, flat):
        net = nnx.merge(graphdef, params.weights)
        return net, activations(net, params.x, unflatten_masks(flat, shapes))

    def costs(params: NetParams, flat, ctx, segment: int, arrays, configs=None):
        model, (hs, zs) = ctx
        l, how = layers[segment], hows[segment]
        masks = unflatten_masks(flat, shapes)
        xbits = jnp.asarray(table)
        chunk = segments[segment].chunk
        if configs is not None:
            # Only the given configurations of each group: (G_sub, R) indices.
            arrays = dict(arrays, configs=jnp.asarray(configs, jnp.int32))
            chunk = max(1, chunk * num_configs // max(1, configs.shape[-1]))

        def bits_of(g):
            return xbits if configs is None else xbits[g["configs"]]

        def summed(logits, y, w):
            """``(S, t)`` per-sample costs of a tile, weighted and summed: ``(S,)``."""
            return cost_of(logits[..., None, :], y[:, None]) @ w

        def rank1(g, hs, zs, y, w):
            cur = jnp.where(g["valid"], flat[g["index"]], 0.0)
            d = (bits_of(g) - cur[None, :]) * g["valid"][None, :].astype(xbits.dtype)
            if model.mask_level == "weight":
                h_in = hs[l].reshape(hs[l].shape[0], -1)
                w_l = model.kernel(l).reshape(-1, model.kernel(l).shape[-1])
                contrib = h_in[:, g["rows"]] * w_l[g["rows"], g["cols_of_bits"]][None]
                dz = jnp.einsum("sk,bk,kc->sbc", d, contrib, g["assign"])
                if l == n_layers - 1:
                    onehot = jax.nn.one_hot(g["cols"], hs[-1].shape[-1], dtype=dz.dtype)
                    logits = hs[-1][None] + jnp.einsum("sbc,cn->sbn", dz, onehot)
                    return summed(logits, y, w)
                z_j = zs[l][:, g["cols"]]
                dh = jax.nn.relu(z_j[None] + dz) - jax.nn.relu(z_j)[None]
            else:
                act = jax.nn.relu(zs[l][:, g["cols"]])
                dh = jnp.einsum("sk,bk->sbk", d, act)
            w_next = model.kernel(l + 1)
            if model.mask_level == "weight":
                w_next = w_next * masks[l + 1]
            z_next = zs[l + 1][None] + jnp.einsum("sbc,cn->sbn", dh, w_next[g["cols"]])
            nmask = (
                masks[l + 1]
                if model.mask_level == "neuron" and l + 1 < n_layers - 1
                else None
            )
            h = model.post(l + 1, z_next, nmask)
            return summed(forward_from(model, l + 2, h, masks), y, w)

        def suffix(g, hs, zs, y, w):
            layer_mask = masks[l].reshape(-1)
            target = jnp.where(g["valid"], g["local"], layer_mask.shape[0])

            def one(bits):
                m = jnp.concatenate([layer_mask, jnp.zeros((1,), layer_mask.dtype)])
                m = m.at[target].set(bits)[:-1].reshape(masks[l].shape)
                if model.mask_level == "weight":
                    h = model.post(l, model.pre(l, hs[l], m), None)
                else:
                    h = model.post(l, zs[l], m)
                new = masks[:l] + (m,) + masks[l + 1 :]
                return summed(forward_from(model, l + 1, h, new)[None], y, w)[0]

            return jax.vmap(one)(bits_of(g))

        def naive(g, hs, zs, y, w):
            target = jnp.where(g["valid"], g["index"], flat.shape[0])

            def one(bits):
                f = jnp.concatenate([flat, jnp.zeros((1,), flat.dtype)])
                f = f.at[target].set(bits)[:-1]
                m = unflatten_masks(f, shapes)
                return summed(forward_from(model, 0, hs[0], m)[None], y, w)[0]

            return jax.vmap(one)(bits_of(g))

        fn = {"rank1": rank1, "suffix": suffix, "naive": naive}[how]
        # The samples in n_tiles tiles of tile_len (the last padded with weight 0):
        # a group's working set is one tile's, so it stays in cache.
        tile_len, n = segments[segment].tile, params.y.shape[0]
        n_tiles = -(-n // tile_len)
        pad = n_tiles * tile_len - n

        def tiles(a):
            a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
            return a.reshape(n_tiles, tile_len, *a.shape[1:])

        weights = jnp.full((n,), 1.0 / n, jnp.float32)
        data = jax.tree.map(tiles, ((list(hs), list(zs)), params.y, weights))

        def per_group(g):
            if n_tiles == 1:
                (th, tz), ty, tw = jax.tree.map(lambda a: a[0], data)
                return fn(g, th, tz, ty, tw)

            def body(acc, tile):
                (th, tz), ty, tw = tile
                return acc + fn(g, th, tz, ty, tw), None

            width = num_configs if configs is None else configs.shape[-1]
            return jax.lax.scan(body, jnp.zeros((width,), jnp.float32), data)[0]

        return map_groups(per_group, arrays, chunk)

    def total(params: NetParams, flat):
        net = nnx.merge(graphdef, params.weights)
        x, y = (params.x, params.y) if params.accept is None else params.accept
        return cost_of(forward_from(net, 0, x, unflatten_masks(flat, shapes)), y)

    def metrics(params: NetParams, flat):
        net = nnx.merge(graphdef, params.weights)
        masks = unflatten_masks(flat, shapes)
        out = {}
        for name, (x, y) in params.splits.items():
            logits = forward_from(net, 0, x, masks)
            out[f"{name}_cost"] = cost_of(logits, y)
            out[f"{name}_accuracy"] = accuracy(logits, y)
        return out

    def subsample(params: NetParams, key):
        px, py = params.pool
        idx = jax.random.permutation(key, py.shape[0])[:batch]
        return params._replace(x=px[idx], y=py[idx])

    return Landscape(
        k,
        tuple(segments),
        prepare,
        costs,
        total,
        metrics,
        network_oracle=True,
        subsample=None if batch is None else subsample,
    )


def prune_penalty(landscape: Landscape, weight: float, num_bits: int) -> Landscape:
    """``landscape`` with ``weight`` x the fraction of mask bits at 0 added to its cost.

    The penalised cost of a mask ``m`` of ``N = num_bits`` bits is ``cost(m) +
    weight * (N - sum(m)) / N``: a prior on the mask, not a change of the network.
    A positive weight charges every pruned bit ``weight / N``, so a group's
    proposal must gain more than that per bit it prunes (a density prior, as
    edge-popup's fixed keep fraction is); a negative weight pushes towards sparse
    masks.  ``costs`` adds the group's own part, ``weight / N`` per 0 bit of the
    configuration (the other bits' part is the same for all its configurations,
    so differences within a landscape are the penalised total's); ``total`` (the
    acceptance) adds the whole penalty.  ``metrics`` stay the network's own.

    Args:
        landscape: any landscape whose segments carry ``valid`` ``(G, K)`` bits.
        weight: the penalty of pruning every bit (finite).
        num_bits: N, the mask's length.

    Returns:
        The penalised landscape (``landscape`` itself for ``weight = 0``).

    Raises:
        ValueError: a non-finite weight or ``num_bits < 1``.
    """
    if not np.isfinite(weight):
        raise ValueError(f"prune penalty must be finite, got {weight!r}")
    if num_bits < 1:
        raise ValueError(f"num_bits must be >= 1, got {num_bits}")
    if weight == 0:
        return landscape
    per_bit = float(weight) / num_bits
    zeros = jnp.asarray(1.0 - bit_table(landscape.k))  # (2^K, K)

    def costs(params, flat, ctx, segment: int, arrays, configs=None):
        base = landscape.costs(params, flat, ctx, segment, arrays, configs)
        valid = jnp.asarray(arrays["valid"], jnp.float32)  # (G, K)
        if configs is None:
            pruned = valid @ zeros.T  # (G, 2^K)
        else:
            pruned = jnp.einsum("grk,gk->gr", zeros[jnp.asarray(configs)], valid)
        return base + per_bit * pruned

    def total(params, flat):
        return landscape.total(params, flat) + per_bit * (num_bits - jnp.sum(flat))

    return landscape._replace(costs=costs, total=total)


def naive_landscapes(model: Model, grouping: Grouping, flat, x, y, cost: str = "ce"):
    """The test oracle: a full masked forward pass per group and configuration."""
    land = network_landscape(
        model,
        grouping,
        num_samples=x.shape[0],
        feature_shape=tuple(x.shape[1:]),
        cost=cost,
        evaluator="naive",
        memory_mb=64 * 1024,
    )
    return land.all(network_params(model, x, y), flat)
