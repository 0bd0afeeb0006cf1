"""Exact landscapes: the cost of all 2^K configurations of every group.

A group's *landscape* is the vector ``C_g(s)``, ``s = 0 .. 2^K - 1``, of the network's
cost on the validation split when the group's bits are set to configuration ``s`` (bit
0 most significant, see :func:`qselax.groups.bit_index`) and every other mask bit is
held at its current value.  It is the diagonal of the group's problem Hamiltonian H_C.

Three evaluators compute the same numbers at very different prices:

* ``rank1`` (dense layers): a group in layer ``l`` changes only a few columns ``J``
  of that layer's output (one column for a fan-in group), so the next layer's
  pre-activation changes by a rank-``|J|`` update ``Δh_J @ W_{l+1}[J]`` of the cached
  one, and only the layers after that are run again.  For a group in the last layer
  only ``|J|`` logits change.
* ``suffix`` (any layer, e.g. convolutions): layer ``l`` is recomputed from its cached
  input for every configuration, then the rest of the network.
* ``naive``: the whole masked network per configuration.  Orders of magnitude slower;
  it is the test oracle and the benchmark's peer.

Groups are evaluated with ``lax.map(..., batch_size=chunk)`` (a chunked ``vmap``), the
chunk chosen up front from a memory budget; a group whose own working set exceeds the
budget is a ``ValueError`` at set-up.

Example:
    >>> import jax, numpy as np
    >>> from flax import nnx
    >>> from qselax.networks import MaskableMLP, ones_masks
    >>> from qselax.groups import make_grouping, flatten_masks
    >>> model = MaskableMLP(4, (3,), 2, rngs=nnx.Rngs(0))
    >>> grouping = make_grouping("fan_in", model, k=2)
    >>> engine = make_engine(model, grouping, num_samples=5)
    >>> x, y = np.ones((5, 4), np.float32), np.zeros(5, np.int32)
    >>> flat = flatten_masks(ones_masks(model))
    >>> engine.all(model, flat, x, y).shape
    (10, 4)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax.groups import Grouping, unflatten_masks
from qselax.networks import (
    MaskableCNN,
    Model,
    activations,
    cross_entropy,
    error_rate,
    forward_from,
)

COSTS = ("ce", "error")
METHODS = ("auto", "rank1", "suffix", "naive")


def bit_table(k: int) -> np.ndarray:
    """``(2^K, K)`` float32 table; row ``s`` holds the bits of ``s`` (bit 0 = MSB)."""
    s = np.arange(2**k)[:, None]
    return ((s >> np.arange(k - 1, -1, -1)[None, :]) & 1).astype(np.float32)


def cost_fn(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(…, B, C) logits, (B,) labels -> (…)`` mean cost over the batch."""
    if name not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {name!r}")
    return cross_entropy if name == "ce" else error_rate


def _is_dense(model: Model, l: int) -> bool:
    return not (isinstance(model, MaskableCNN) and l < model.num_conv)


def _layer_method(model: Model, l: int, method: str) -> str:
    """Which evaluator layer ``l``'s groups use."""
    last = model.num_layers - 1
    rank1_ok = _is_dense(model, l) and (l == last or _is_dense(model, l + 1))
    if model.mask_level == "neuron":
        rank1_ok = _is_dense(model, l) and _is_dense(model, l + 1)
    if method == "rank1" and not rank1_ok:
        raise ValueError(
            f"method 'rank1' needs dense layers; layer {l} of this model is a "
            "convolution: use 'auto' or 'suffix'"
        )
    if method == "auto":
        return "rank1" if rank1_ok else "suffix"
    return method


class LayerPlan(NamedTuple):
    """Per-group arrays of one layer's groups (all NumPy, built at set-up).

    Attributes:
        layer: the mask array / layer these groups belong to.
        method: evaluator used.
        arrays: dict of ``(G_l, ...)`` arrays: ``index``, ``valid``, ``local``
            (index within the layer's raveled mask) and, for ``rank1``, ``rows``,
            ``cols`` (``(G_l, Kc)`` distinct output columns) and ``assign``
            (``(G_l, K, Kc)`` bit-to-column one-hot).
        chunk: groups per ``vmap`` chunk.
    """

    layer: int
    method: str
    arrays: dict
    chunk: int


class Engine(NamedTuple):
    """Landscape evaluators of one model and grouping.

    Attributes:
        plans: one :class:`LayerPlan` per layer that has groups.
        layer: ``(model, flat, cache, y, arrays, plan, configs=None) -> (G_sub,
            S)``: landscapes of some groups of one layer given the cached
            activations; with ``configs`` (``(G_sub, R)`` configuration indices)
            only those configurations' costs, ``(G_sub, R)``: the network evaluated
            on sampled bitstrings, as hardware would (the finite-shot oracle).
        all: ``(model, flat, x, y) -> (G, S)``: landscapes of every group.
        bytes_per_group: estimated peak working set of one group, per layer.
    """

    plans: tuple[LayerPlan, ...]
    layer: Callable
    all: Callable
    bytes_per_group: tuple[int, ...]


def _unit_view(model: Model, l: int, local: np.ndarray):
    """(rows, cols) of raveled layer-``l`` kernel indices in its (fan_in, out) view."""
    n_out = model.kernel(l).shape[-1]
    return local // n_out, local % n_out


def _column_sets(cols: np.ndarray, valid: np.ndarray):
    """Distinct output columns of each group and the bit-to-column one-hot."""
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


def _act_sizes(model: Model, feature_shape) -> list[int]:
    """Per-sample size of every layer's pre-activation and output."""
    hs, zs = jax.eval_shape(
        lambda x: activations(model, x, None),
        jax.ShapeDtypeStruct((1, *feature_shape), jnp.float32),
    )
    return [math.prod(z.shape[1:]) for z in zs] + [math.prod(h.shape[1:]) for h in hs]


def make_engine(
    model: Model,
    grouping: Grouping,
    *,
    num_samples: int,
    feature_shape: tuple[int, ...] | None = None,
    cost: str = "ce",
    method: str = "auto",
    memory_mb: float = 1024.0,
) -> Engine:
    """Plans the exact landscape evaluation of every group of ``grouping``.

    Args:
        model: the maskable network (only its structure and shapes are read here).
        grouping: the groups.
        num_samples: validation samples B the landscapes average over.
        feature_shape: input feature shape (default: the model's).
        cost: ``"ce"`` (mean cross-entropy) or ``"error"`` (0-1 error).
        method: ``"auto"`` (``rank1`` where layers are dense, else ``suffix``),
            ``"rank1"``, ``"suffix"`` or ``"naive"``.
        memory_mb: budget for one chunk's working set.

    Raises:
        ValueError: unknown cost/method, a grouping that does not match the model,
            or one group's working set over ``memory_mb`` (the message gives the
            estimate).
    """
    cost_of = cost_fn(cost)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb}")
    from qselax.networks import mask_shapes

    if tuple(grouping.shapes) != tuple(mask_shapes(model)):
        raise ValueError(
            f"grouping was built for mask shapes {grouping.shapes}, the model has "
            f"{mask_shapes(model)}"
        )
    if feature_shape is None:
        feature_shape = (
            model.in_shape if isinstance(model, MaskableCNN) else (model.widths[0],)
        )
    k = grouping.k
    num_configs = 2**k
    sizes = _act_sizes(model, feature_shape)
    n_layers = model.num_layers
    offsets = grouping.offsets
    table = bit_table(k)
    plans, per_group = [], []
    for l, (start, stop) in enumerate(grouping.layer_slices):
        if stop == start:
            continue
        how = _layer_method(model, l, method)
        index = grouping.index[start:stop]
        valid = grouping.valid[start:stop]
        local = (index - offsets[l]).astype(np.int32)
        arrays = {"index": index, "valid": valid, "local": local}
        # Widest array a configuration batch of one group holds at once.
        if how == "rank1":
            if model.mask_level == "weight":
                rows, cols = _unit_view(model, l, local)
                cset, assign = _column_sets(cols, valid)
                arrays.update(rows=rows.astype(np.int32), cols=cset, assign=assign)
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
        nbytes = int(num_configs * num_samples * widest * 4 * 4)
        budget = int(memory_mb * 2**20)
        if nbytes > budget:
            raise ValueError(
                f"one group of layer {l} needs about {nbytes / 2**20:.0f} MiB "
                f"(2^{k} configurations x {num_samples} samples x {widest} units), "
                "over "
                f"the memory budget of {memory_mb:.0f} MiB: lower k, use fewer "
                "validation samples, or raise memory_mb"
            )
        chunk = max(1, min(stop - start, budget // nbytes))
        plans.append(LayerPlan(l, how, arrays, int(chunk)))
        per_group.append(nbytes)

    def layer_fn(model, flat, cache, y, arrays, plan: LayerPlan, configs=None):
        hs, zs = cache
        l = plan.layer
        masks = unflatten_masks(flat, grouping.shapes)
        xbits = jnp.asarray(table)
        chunk = plan.chunk
        if configs is not None:
            # Only the given configurations of each group: (G_sub, R) indices.
            arrays = dict(arrays, configs=jnp.asarray(configs, jnp.int32))
            chunk = max(1, plan.chunk * num_configs // max(1, configs.shape[-1]))

        def bits_of(g):
            return xbits if configs is None else xbits[g["configs"]]

        def rank1(g):
            cur = jnp.where(g["valid"], flat[g["index"]], 0.0)
            d = (bits_of(g) - cur[None, :]) * g["valid"][None, :].astype(xbits.dtype)
            if model.mask_level == "weight":
                h_in = hs[l].reshape(hs[l].shape[0], -1)
                w = model.kernel(l).reshape(-1, model.kernel(l).shape[-1])
                contrib = h_in[:, g["rows"]] * w[g["rows"], g["cols_of_bits"]][None, :]
                dz = jnp.einsum("sk,bk,kc->sbc", d, contrib, g["assign"])
                if l == n_layers - 1:
                    onehot = jax.nn.one_hot(g["cols"], hs[-1].shape[-1], dtype=dz.dtype)
                    logits = hs[-1][None] + jnp.einsum("sbc,cn->sbn", dz, onehot)
                    return cost_of(logits, y)
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
            return cost_of(forward_from(model, l + 2, h, masks), y)

        def suffix(g):
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
                return cost_of(forward_from(model, l + 1, h, new), y)

            return jax.vmap(one)(bits_of(g))

        def naive(g):
            target = jnp.where(g["valid"], g["index"], flat.shape[0])

            def one(bits):
                f = jnp.concatenate([flat, jnp.zeros((1,), flat.dtype)])
                f = f.at[target].set(bits)[:-1]
                m = unflatten_masks(f, grouping.shapes)
                return cost_of(forward_from(model, 0, hs[0], m), y)

            return jax.vmap(one)(bits_of(g))

        fn = {"rank1": rank1, "suffix": suffix, "naive": naive}[plan.method]
        if plan.method == "rank1" and model.mask_level == "weight":
            arrays = dict(arrays)
            # Column of each bit, needed to read its weight.
            arrays["cols_of_bits"] = arrays["local"] % model.kernel(l).shape[-1]
        return jax.lax.map(fn, arrays, batch_size=chunk)

    def all_fn(model, flat, x, y):
        # Host (NumPy) masks too: flat is indexed by traced group indices below.
        flat, x, y = jnp.asarray(flat), jnp.asarray(x), jnp.asarray(y)
        masks = unflatten_masks(flat, grouping.shapes)
        cache = activations(model, x, masks)
        outs = [
            layer_fn(model, flat, cache, y, jax.tree.map(jnp.asarray, p.arrays), p)
            for p in plans
        ]
        return jnp.concatenate(outs, axis=0)

    return Engine(tuple(plans), layer_fn, all_fn, tuple(per_group))


def naive_landscapes(model: Model, grouping: Grouping, flat, x, y, cost: str = "ce"):
    """The test oracle: a full masked forward pass per group and configuration."""
    engine = make_engine(
        model,
        grouping,
        num_samples=x.shape[0],
        feature_shape=tuple(x.shape[1:]),
        cost=cost,
        method="naive",
        memory_mb=64 * 1024,
    )
    return engine.all(model, flat, x, y)
