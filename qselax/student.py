"""Teacher and student networks of layerwise distillation (paper method A).

A small *trained* teacher MLP ``F_t`` (layers ``0 .. L-1``, widths ``t_0 .. t_{L-1}``,
``t_{L-1}`` = number of classes) and a *random* student twice as deep and ``f`` times
wider.  Student block ``i`` is two frozen random layers::

    h_i = act( relu(u_i @ (W_i0 * M_i0)) @ (W_i1 * M_i1) ) @ P_i     (B, t_i)

with input ``u_0 = x`` and ``u_i = alpha_{i-1} h_{i-1}``, output width ``f t_i``,
hidden width ``f max(t_{i-1}, t_i)`` (``hidden_width="max"``, ``t_{-1} = t_0``) or
``f t_i`` (``"output"``), ``act`` = ReLU on hidden blocks and the identity on the last
one, and ``P_i`` a fixed ``(f t_i, t_i)`` *compression* to the teacher's width
(:func:`compression_matrix`: ``magnitude`` keeps the ``t_i`` most active units,
``pool`` averages contiguous groups of ``f`` units).  The block loss and its scale
``alpha_i`` are :func:`block_loss` and :func:`block_scale`; selection is in
:mod:`qselax.distill`.

The functions that take a config read its ``teacher_hidden``, ``width_factor``,
``hidden_width``, ``init``, ``mask_level``, ``teacher_epochs``, ``teacher_lr``,
``grouping`` and ``k`` (a :class:`qselax.distill.DistillConfig`).

:func:`block_landscape` is a block's exact block-loss landscape for the one sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from qselax.bits import bit_table
from qselax.groups import Grouping, explicit_grouping, make_grouping, unflatten_masks
from qselax.landscapes import Landscape, Segment, column_sets, map_groups, plan_chunk
from qselax.networks import (
    DenseResult,
    MaskableMLP,
    Masks,
    activations,
    apply_masked,
    train_dense,
)

__all__ = [
    "COMPRESSIONS",
    "BlockArrays",
    "BlockParams",
    "block_grouping",
    "block_landscape",
    "Student",
    "Teacher",
    "block_arrays",
    "block_forward",
    "block_loss",
    "block_scale",
    "block_weights",
    "compression_matrix",
    "compression_parts",
    "make_student",
    "make_teacher",
    "student_forward",
    "student_widths",
    "teacher_targets",
    "teacher_widths",
]

COMPRESSIONS = ("magnitude", "pool")

DistillConfig = Any  # qselax.distill.DistillConfig (read by attribute)


def teacher_widths(config: DistillConfig, num_classes: int) -> tuple[int, ...]:
    """Output width of every teacher layer: ``(*teacher_hidden, num_classes)``."""
    return (*config.teacher_hidden, int(num_classes))


def student_widths(
    config: DistillConfig, in_features: int, num_classes: int
) -> tuple[tuple[int, int, int], ...]:
    """``(in, hidden, out)`` widths of every student block (before compression).

    Block ``i`` maps its input (the features, or ``t_{i-1}``) to a hidden layer of
    ``f t_i`` units (``hidden_width="output"``) or ``f max(t_{i-1}, t_i)`` units
    (``"max"``, with ``t_{-1} = t_0``), then to ``f t_i`` output units.
    """
    widths, fan_in = [], int(in_features)
    tw = teacher_widths(config, num_classes)
    f = config.width_factor
    for i, t in enumerate(tw):
        hidden = f * t
        if config.hidden_width == "max":
            hidden = f * max(tw[max(i - 1, 0)], t)
        widths.append((fan_in, hidden, f * t))
        fan_in = t
    return tuple(widths)


class Teacher(NamedTuple):
    """The trained dense teacher: its network and its accuracies."""

    model: MaskableMLP
    dense: DenseResult

    @property
    def widths(self) -> tuple[int, ...]:
        return self.model.widths[1:]


class Student(NamedTuple):
    """A random student: one two-layer :class:`MaskableMLP` per block.

    Attributes:
        blocks: the block networks (frozen random weights; block ``i`` maps
            ``t_{i-1}`` inputs, or the features for ``i = 0``, to ``f t_i`` units).
        teacher_widths: ``(t_0, ..., t_{L-1})``.
    """

    blocks: tuple[MaskableMLP, ...]
    teacher_widths: tuple[int, ...]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)


def make_teacher(key: jax.Array, data, config: DistillConfig) -> Teacher:
    """Trains the teacher MLP (Kaiming-normal start, Adam on the training split).

    The epoch with the best validation accuracy is kept (see
    :func:`qselax.networks.train_dense`); the test split is only scored.
    """
    init_key, train_key = jax.random.split(key)
    model = MaskableMLP(
        math.prod(data.feature_shape),
        config.teacher_hidden,
        data.num_classes,
        init="kaiming_normal",
        rngs=nnx.Rngs(params=init_key),
    )
    dense = train_dense(
        train_key,
        model,
        data,
        epochs=config.teacher_epochs,
        learning_rate=config.teacher_lr,
    )
    nnx.update(model, dense.weights)
    return Teacher(model, dense)


def make_student(
    key: jax.Array, in_features: int, num_classes: int, config: DistillConfig
) -> Student:
    """Builds the random student: ``2 L`` layers, ``width_factor`` times wider."""
    blocks = []
    widths = student_widths(config, in_features, num_classes)
    for i, (n_in, n0, n1) in enumerate(widths):
        blocks.append(
            MaskableMLP(
                n_in,
                (n0,),
                n1,
                init=config.init,
                mask_level=config.mask_level,
                rngs=nnx.Rngs(params=jax.random.fold_in(key, i)),
            )
        )
    return Student(tuple(blocks), teacher_widths(config, num_classes))


def teacher_targets(teacher: Teacher | MaskableMLP, x: jax.Array) -> tuple:
    """The teacher's output at every layer: ``((B, t_0), ..., (B, t_{L-1}))``.

    Hidden layers give their ReLU activations, the last layer its logits.
    """
    model = teacher.model if isinstance(teacher, Teacher) else teacher
    hs, _ = activations(model, jnp.asarray(x), None)
    return tuple(hs[1:])


def compression_matrix(
    kind: str, block_output: jax.Array | np.ndarray, width: int
) -> np.ndarray:
    """The ``(n, t)`` compression of a block's ``n`` output units to ``t = width``.

    Args:
        kind: ``magnitude`` or ``pool``.
        block_output: ``(B, n)`` unmasked block output on the validation samples
            (read by ``magnitude`` only).
        width: teacher width ``t``; ``n`` must be a multiple of it for ``pool``.

    Returns:
        ``magnitude``: 0/1 matrix selecting the ``t`` units of largest mean
        ``|output|`` (ties to the lower index) in index order; ``pool``: ``1/f`` on
        the ``f = n / t`` contiguous units of each teacher unit.

    Raises:
        ValueError: unknown kind, ``t > n``, or ``n`` not a multiple of ``t`` (pool).
    """
    out = np.asarray(block_output, np.float32)
    n = out.shape[-1]
    if kind not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {kind!r}")
    if not 1 <= width <= n:
        raise ValueError(f"compression width must lie in [1, {n}], got {width}")
    mat = np.zeros((n, width), np.float32)
    if kind == "pool":
        if n % width:
            raise ValueError(f"pool needs a multiple of {width} units, got {n}")
        f = n // width
        mat[np.arange(n), np.arange(n) // f] = 1.0 / f
        return mat
    activity = np.mean(np.abs(out), axis=0)
    kept = np.sort(np.argsort(-activity, kind="stable")[:width])
    mat[kept, np.arange(width)] = 1.0
    return mat


class BlockArrays(NamedTuple):
    """What a block's jitted functions take as data.

    Attributes:
        w0: ``(n_in, n0)`` first kernel.
        w1: ``(n0, n1)`` second kernel.
        proj: ``(n1, t)`` compression matrix.
        used, weight: ``(t, f)`` its gather form (:func:`compression_parts`).
    """

    w0: jax.Array
    w1: jax.Array
    proj: jax.Array
    used: jax.Array
    weight: jax.Array


def block_arrays(block: MaskableMLP, proj) -> BlockArrays:
    """A block's kernels and compression, as the jitted functions take them."""
    used, weight = compression_parts(proj)
    return BlockArrays(
        block.kernel(0),
        block.kernel(1),
        jnp.asarray(proj),
        jnp.asarray(used),
        jnp.asarray(weight),
    )


def block_weights(arrays: BlockArrays, masks: Masks, level: str):
    """Masked kernels and the hidden-unit mask ``(n0,)`` (ones at weight level)."""
    if level == "weight":
        return arrays.w0 * masks[0], arrays.w1 * masks[1], None
    return arrays.w0, arrays.w1, masks[0]


def block_forward(
    arrays: BlockArrays, masks: Masks, u: jax.Array, *, level: str, last: bool
):
    """One masked block: ``u (B, n_in) -> (z0 (B, n0), h0, z1 (B, n1), out (B, t))``."""
    w0, w1, nmask = block_weights(arrays, masks, level)
    z0 = u @ w0
    h0 = jax.nn.relu(z0)
    if nmask is not None:
        h0 = h0 * nmask[None, :]
    z1 = h0 @ w1
    h1 = z1 if last else jax.nn.relu(z1)
    return z0, h0, z1, h1 @ arrays.proj


def block_scale(out: jax.Array, target: jax.Array) -> jax.Array:
    """``(..., B, t), (B, t) -> (...)``: the least-squares block scale ``alpha``.

    ``alpha = <T, h> / <h, h>`` over all samples and units (``0`` when the output is
    identically zero): the scalar that minimises ``sum_b ||T_b - alpha h_b||^2``.
    On a hidden block both ``T`` and ``h`` are ReLU outputs, so ``alpha >= 0``; on
    the last block (logits) it may be negative.  It is not clamped at 0, which
    would leave a flat landscape (every configuration scoring ``mean_b ||T_b||``)
    whenever the random logits start anti-correlated with the teacher's.
    """
    target = target.reshape((1,) * (out.ndim - target.ndim) + target.shape)
    th = jnp.sum(out * target, axis=(-2, -1))
    hh = jnp.sum(jnp.square(out), axis=(-2, -1))
    return jnp.where(hh > 0, th / jnp.where(hh > 0, hh, 1.0), 0.0)


def block_loss(out: jax.Array, target: jax.Array, scale: bool = False) -> jax.Array:
    """``(..., B, t), (B, t) -> (...)``: mean over samples of the L2 distance.

    With ``scale``, the output is first multiplied by its :func:`block_scale`
    ``alpha``: ``mean_b ||T_b - alpha h_b||_2`` (the block is matched up to one
    non-negative scalar).
    """
    target = target.reshape((1,) * (out.ndim - target.ndim) + target.shape)
    if scale:
        out = out * block_scale(out, target)[..., None, None]
    return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(out - target), axis=-1)), axis=-1)


def student_forward(
    student: Student,
    projs: Sequence,
    masks: Sequence[Masks] | None,
    x: jax.Array,
    scales: Sequence[float] | None = None,
) -> jax.Array:
    """The compressed student's logits ``(B, C)`` through the block networks.

    Block ``i`` runs :func:`qselax.networks.apply_masked` of its two-layer network,
    ReLU (hidden blocks), the compression ``projs[i]``, then the block scale
    ``scales[i]`` (default 1).  The student is bias-free and ReLU is positively
    homogeneous, so non-negative scales only multiply the logits by their product:
    the predicted classes are those of the plain masked subnetwork.
    """
    h = jnp.asarray(x).reshape(x.shape[0], -1)
    for i, block in enumerate(student.blocks):
        graphdef, weights = nnx.split(block)
        out = apply_masked(graphdef, weights, None if masks is None else masks[i], h)
        if i < student.num_blocks - 1:
            out = jax.nn.relu(out)
        h = out @ jnp.asarray(projs[i])
        if scales is not None:
            h = h * scales[i]
    return h


def compression_parts(proj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gather form of a compression matrix whose rows feed at most one unit.

    Returns:
        ``(used (t, f) int32, weight (t, f) float32)``: teacher unit ``r`` is
        ``sum_q weight[r, q] * h[used[r, q]]``.  Used by the landscapes, which then
        touch only the ``t f`` units that reach the loss instead of multiplying by
        the dense ``(n, t)`` matrix.

    Raises:
        ValueError: a student unit feeds two teacher units, or the teacher units
            read different numbers of student units.
    """
    proj = np.asarray(proj, np.float32)
    if np.any((proj != 0).sum(axis=1) > 1):
        raise ValueError("compression: a student unit feeds more than one teacher unit")
    per_unit = [np.flatnonzero(proj[:, r]) for r in range(proj.shape[1])]
    if len({len(p) for p in per_unit}) != 1 or not len(per_unit[0]):
        raise ValueError("compression: every teacher unit must read equally many units")
    used = np.stack(per_unit).astype(np.int32)
    return used, np.take_along_axis(proj.T, used, axis=1).astype(np.float32)


def block_grouping(
    block: MaskableMLP, config: DistillConfig, proj: np.ndarray
) -> Grouping:
    """The block's core grouping, less groups that cannot change its output.

    With ``magnitude`` compression, second-layer bits that only reach dropped output
    units leave the block loss unchanged; their groups are removed (their bits stay
    as they are).  Otherwise this is ``make_grouping(config.grouping, block, k)``.
    """
    grouping = make_grouping(config.grouping, block, config.k)
    if config.mask_level != "weight":
        return grouping
    live = np.abs(proj).sum(axis=1) > 0  # (n1,) output units that reach the loss
    off = grouping.offsets[1]
    n1 = block.kernel(1).shape[1]
    keep = []
    for g in range(grouping.num_groups):
        idx = grouping.index[g][grouping.valid[g]]
        if grouping.layer[g] == 0 or live[(idx - off) % n1].any():
            keep.append(idx)
    if len(keep) == grouping.num_groups:
        return grouping
    out = explicit_grouping(keep, grouping.shapes, grouping.k)
    return out._replace(name=grouping.name)


def _teacher_sets(cols: np.ndarray, proj: np.ndarray):
    """Distinct teacher units ``(G, Kr)`` a second-layer group's columns feed.

    Returns ``(tunits, tvalid, tassign)``: ``tassign[g, c, r]`` is the compression
    weight from the group's column ``c`` to its teacher unit ``r``.
    """
    owner = np.where(np.abs(proj).sum(axis=1) > 0, np.argmax(proj != 0, axis=1), -1)
    sets = [np.unique(owner[c][owner[c] >= 0]) for c in cols]
    kr = max(1, max(len(s) for s in sets))
    g, kc = cols.shape
    tunits = np.zeros((g, kr), np.int32)
    tvalid = np.zeros((g, kr), np.float32)
    tassign = np.zeros((g, kc, kr), np.float32)
    for i, units in enumerate(sets):
        tunits[i, : len(units)] = units
        tvalid[i, : len(units)] = 1.0
        for c, col in enumerate(cols[i]):
            if owner[col] >= 0:
                # Repeated (padding) columns are counted once.
                if col in cols[i][:c]:
                    continue
                r = int(np.searchsorted(units, owner[col]))
                tassign[i, c, r] = proj[col, owner[col]]
    return tunits, tvalid, tassign


class BlockParams(NamedTuple):
    """The data of :func:`block_landscape`.

    Attributes:
        arrays: the block's kernels and compression (:func:`qselax.student.
            block_arrays`).
        u: ``(B, n_in)`` the block's input.
        target: ``(B, t)`` the teacher layer's output.
    """

    arrays: BlockArrays
    u: jax.Array
    target: jax.Array


def _segments(block, grouping, proj, num_samples, memory_mb) -> list[Segment]:
    """Per-layer group arrays and chunk sizes of a block (NumPy, at set-up)."""
    k = grouping.k
    level = block.mask_level
    n_used = int((np.abs(proj).sum(axis=1) > 0).sum())
    segments = []
    for l, (start, stop) in enumerate(grouping.layer_slices):
        if stop == start:
            continue
        index = grouping.index[start:stop]
        valid = grouping.valid[start:stop]
        local = (index - grouping.offsets[l]).astype(np.int32)
        arrays = {"index": index.astype(np.int32), "valid": valid}
        if level == "weight":
            n_out = block.kernel(l).shape[1]
            rows, bitcols = local // n_out, local % n_out
            cols, assign = column_sets(bitcols, valid)
            arrays.update(
                rows=rows.astype(np.int32),
                bitcols=bitcols.astype(np.int32),
                cols=cols,
                assign=assign,
            )
            if l == 1:
                tunits, tvalid, tassign = _teacher_sets(cols, proj)
                arrays.update(tunits=tunits, tvalid=tvalid, tassign=tassign)
        else:
            arrays.update(
                cols=local, assign=np.eye(k, dtype=np.float32)[None] * valid[..., None]
            )
        widest = max(n_used if l == 0 else proj.shape[1], k)
        nbytes = 2**k * num_samples * widest * 4 * 4
        chunk = plan_chunk(
            stop - start, nbytes, memory_mb, f"one group of block layer {l}"
        )
        segments.append(Segment(f"layer{l}", arrays, chunk, None, nbytes))
    return segments


def block_landscape(
    block: MaskableMLP,
    grouping: Grouping,
    proj: np.ndarray,
    *,
    last: bool,
    scale: bool = True,
    num_samples: int,
    memory_mb: float = 512.0,
) -> Landscape:
    """The exact block-loss landscape of a student block's groups.

    ``params`` is a :class:`BlockParams`; ``total`` is the block loss.  A
    first-layer group's ``Δh_J (S, B, Kc)`` updates only the ``t f`` second-layer
    pre-activations that reach the compressed output (rank-``Kc``); a second-layer
    group's ``Δh_J`` moves at most ``Kc`` compressed units, so its squared distance
    is updated from the cached residual in ``O(S B Kc)``.

    Args:
        block: the two-layer block network (structure and mask level).
        grouping: its groups (:func:`block_grouping`).
        proj: ``(n1, t)`` its compression.
        last: the last block (identity output activation).
        scale: factor out the least-squares block scale.
        num_samples: samples B of the block loss.
        memory_mb: budget of one landscape chunk.
    """
    level = block.mask_level
    k = grouping.k
    shapes = grouping.shapes
    segments = _segments(block, grouping, proj, num_samples, memory_mb)
    layers = [int(s.name[-1]) for s in segments]
    table = jnp.asarray(bit_table(k))
    act = (lambda z: z) if last else jax.nn.relu

    def prepare(params: BlockParams, flat):
        arrays, u, target = (
            params.arrays,
            jnp.asarray(params.u),
            jnp.asarray(params.target),
        )
        masks = unflatten_masks(flat, shapes)
        _, w1, _ = block_weights(arrays, masks, level)
        z0, h0, z1, out = block_forward(arrays, masks, u, level=level, last=last)
        used = arrays.used.reshape(-1)
        resid = target - out  # (B, t)
        return {
            "z0": z0,
            "h0": h0,
            "z1": z1,
            "out": out,
            "w1_used": w1[:, used],  # (n0, t f)
            "z1_used": z1[:, used],  # (B, t f)
            "resid": resid,
            "sq": jnp.sum(jnp.square(resid), axis=-1),  # (B,)
        }

    def costs(params: BlockParams, flat, ctx, segment: int, groups, configs=None):
        arrays, u, target = (
            params.arrays,
            jnp.asarray(params.u),
            jnp.asarray(params.target),
        )
        layer = layers[segment]
        used, weight = arrays.used, arrays.weight  # (t, f)
        t, f = used.shape
        z0, h0, z1, out = ctx["z0"], ctx["h0"], ctx["z1"], ctx["out"]

        def one(g):
            cur = jnp.where(g["valid"], flat[g["index"]], 0.0)
            d = (table - cur[None, :]) * g["valid"][None, :].astype(table.dtype)
            if layer == 0:
                if level == "weight":
                    contrib = u[:, g["rows"]] * arrays.w0[g["rows"], g["bitcols"]][None]
                    dz = jnp.einsum("sk,bk,kc->sbc", d, contrib, g["assign"])
                    z_j = z0[:, g["cols"]]
                    dh = jax.nn.relu(z_j[None] + dz) - jax.nn.relu(z_j)[None]
                else:
                    a = jax.nn.relu(z0[:, g["cols"]])  # (B, Kc), Kc = K
                    dh = jnp.einsum("sk,bk,kc->sbc", d, a, g["assign"])
                z1n = ctx["z1_used"][None] + jnp.einsum(
                    "sbc,cn->sbn", dh, ctx["w1_used"][g["cols"]]
                )
                s_, b_ = z1n.shape[:2]
                new = jnp.sum(
                    act(z1n).reshape(s_, b_, t, f) * weight[None, None], axis=-1
                )
                return block_loss(new, target, scale)
            contrib = h0[:, g["rows"]] * arrays.w1[g["rows"], g["bitcols"]][None]
            dz = jnp.einsum("sk,bk,kc->sbc", d, contrib, g["assign"])
            z_j = z1[:, g["cols"]]
            dh = act(z_j[None] + dz) - act(z_j)[None]  # (S, B, Kc)
            # Kr distinct teacher units of the group; tassign carries the weights.
            delta = jnp.einsum("sbc,cr->sbr", dh, g["tassign"])
            if scale:
                # The scale reads every unit: rebuild the whole compressed output.
                onehot = jax.nn.one_hot(g["tunits"], t) * g["tvalid"][:, None]
                new = out[None] + jnp.einsum("sbr,rt->sbt", delta, onehot)
                return block_loss(new, target, True)
            r = ctx["resid"][:, g["tunits"]] * g["tvalid"][None, :]  # (B, Kr)
            new_sq = (
                ctx["sq"][None]
                - jnp.sum(jnp.square(r), axis=-1)[None]
                + jnp.sum(jnp.square(r[None] - delta), axis=-1)
            )
            return jnp.mean(jnp.sqrt(jnp.maximum(new_sq, 0.0)), axis=-1)

        return map_groups(one, groups, segments[segment].chunk)

    def total(params: BlockParams, flat):
        arrays, u, target = (
            params.arrays,
            jnp.asarray(params.u),
            jnp.asarray(params.target),
        )
        out = block_forward(
            arrays, unflatten_masks(flat, shapes), u, level=level, last=last
        )[-1]
        return block_loss(out, target, scale)

    return Landscape(k, tuple(segments), prepare, costs, total)
