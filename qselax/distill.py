"""Layerwise quantum neuron selection with knowledge distillation (paper method A).

A small *trained* teacher MLP ``F_t`` (layers ``0 .. L-1``, widths ``t_0 .. t_{L-1}``,
``t_{L-1}`` = number of classes) and a *random* student twice as deep and ``f`` times
wider.  Student block ``i`` is two frozen random layers::

    h_i = act( relu(u_i @ (W_i0 * M_i0)) @ (W_i1 * M_i1) ) @ P_i     (B, t_i)

with input ``u_0 = x`` and ``u_i = alpha_{i-1} h_{i-1}`` (the masked student's own
output of the previous block, times its scale), output width ``f t_i``, hidden width
``f max(t_{i-1}, t_i)`` (``hidden_width="max"``, default, ``t_{-1} = t_0``) or
``f t_i`` (``"output"``), ``act`` = ReLU on hidden blocks and the identity on the last
one (its output are the logits), and ``P_i`` a fixed ``(f t_i, t_i)`` *compression*
to the teacher's width:

* ``magnitude``: keep the ``t_i`` most active output units of the unmasked block
  (largest mean ``|unit|`` over the validation samples, given the block's actual
  input), chosen once when the block starts; kept unit ``r`` (in index order) stands
  for teacher unit ``r``.  ``P_i`` is a 0/1 selection matrix, so the student stays a
  plain subnetwork: the other units are dropped.  Groups whose bits only reach
  dropped units cannot change the block loss and are left out of the grouping.
* ``pool``: average pooling over contiguous groups of ``f`` units: teacher unit ``r``
  is matched by the mean of student units ``r f .. r f + f - 1``
  (``P_i[r f + q, r] = 1 / f``).

Block ``i`` is selected to reproduce teacher layer ``i`` on the validation split,
*up to one scalar*: the block loss is

    L_i(M_i) = mean_b || T_i[b] - alpha_i h_i[b] ||_2,
    alpha_i = <T_i, h_i> / <h_i, h_i>     (sums over samples and units)

with ``T_i`` the teacher's recorded output of layer ``i`` (ReLU activations, logits
for the last layer) and ``alpha_i`` the closed-form least-squares scale of the
configuration being scored (:func:`block_scale`; recomputed for every landscape
entry).  A masked random block cannot reach a trained layer's activation scale by
selection alone (on digits the all-ones ``U(-1, 1)`` student's best scale is about
0.1, and pruning to shrink it wastes the selection), so the scale is factored out.
It is no trained parameter of the classifier: the student is bias-free and
ReLU is positively homogeneous, so the hidden scales (``>= 0``) only multiply the
logits by their product, and the predicted classes are those of the masked
subnetwork, with the logits negated when the last block's ``alpha`` is negative
(reported in :attr:`Distillation.scales`).  ``scale=False`` gives the raw distance
``mean_b || T_i[b] - h_i[b] ||_2``.

The block's mask bits are split into K-bit groups by any core grouping (``fan_in``,
``block`` or ``neuron``, on the two-layer block network), each group's exact landscape
is ``L_i`` over its ``2^K`` configurations with the rest of the block held fixed,
groups are solved by any registered solver in sequential sweeps with the core's line-
search acceptance (so ``L_i`` never rises), and blocks are selected in order. Only the
validation split is used for targets and selection; the test split is only scored.

Landscapes are incremental, as in :mod:`qselax.landscapes`: a group in the block's
first layer changes at most K columns of the hidden pre-activation, which updates the
second layer's cached pre-activation by a rank-``|J|`` product; a group in the second
layer changes at most K output units, which move the compressed output by ``Δh_J @
P_i[J]`` (with the scale, the whole compressed output is rebuilt from that update,
since ``alpha`` reads every unit). Groups run through ``lax.map(...,
batch_size=chunk)`` with the chunk fixed up front by a memory budget. Every block's
sweep is one jitted function, compiled once and reused by every sweep.

Example:
    >>> import jax
    >>> from qselax.data import load_dataset
    >>> data = load_dataset("iris", seed=0)
    >>> cfg = DistillConfig(teacher_hidden=(4,), width_factor=2, k=4, sweeps=1,
    ...                     solver="exhaustive", teacher_epochs=5)
    >>> out = distill(jax.random.key(0), data, cfg, progress=False)
    >>> len(out.block_losses), out.landscape_evals > 0
    (2, True)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from qselax.groups import (
    GROUPINGS,
    Grouping,
    bit_index,
    explicit_grouping,
    flatten_masks,
    gather_bits,
    index_bits,
    make_grouping,
    unflatten_masks,
)
from qselax.landscapes import _column_sets, bit_table
from qselax.networks import (
    INITS,
    MASK_LEVELS,
    DenseResult,
    MaskableMLP,
    Masks,
    accuracy,
    activations,
    apply_masked,
    ones_masks,
    train_dense,
)
from qselax.solvers import SOLVERS, Solver, make_solver
from qselax.sweeps import attains, line_search_accept

COMPRESSIONS = ("magnitude", "pool")
HIDDEN_WIDTHS = ("max", "output")


# --------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Static settings of one distillation run (hashable; never traced).

    Attributes:
        teacher_hidden: hidden widths of the teacher MLP (its depth is
            ``len(teacher_hidden) + 1`` layers; the student has twice as many).
        width_factor: student block widths are this times the teacher widths.
        compression: ``magnitude`` or ``pool`` (see the module docstring).
        init: the student's random init scheme (one of :data:`qselax.networks.INITS`).
        mask_level: ``weight`` or ``neuron`` masks of the student.
        grouping: ``fan_in``, ``block`` (weight level) or ``neuron``.
        k: bits (qubits) per group.
        solver: a name in :data:`qselax.solvers.SOLVERS`.
        solver_options: ``((name, value), ...)`` passed to the solver factory.
        sweeps: sequential sweeps per block.
        block_size: groups solved together per step of a sweep.
        teacher_epochs: Adam epochs of the teacher (optax, best validation epoch).
        teacher_lr: the teacher's Adam learning rate.
        memory_mb: memory budget of one landscape chunk.
        val_samples: use only the first this-many validation samples (None: all).
        scale: match every block up to its least-squares scale ``alpha_i``
            (:func:`block_scale`); False: the raw L2 distance.
        hidden_width: ``max`` (hidden layer of block ``i`` is ``f max(t_{i-1},
            t_i)`` wide) or ``output`` (``f t_i``); see :func:`student_widths`.
    """

    teacher_hidden: tuple[int, ...] = (32,)
    width_factor: int = 4
    compression: str = "pool"
    init: str = "uniform"
    mask_level: str = "weight"
    grouping: str = "fan_in"
    k: int = 8
    solver: str = "exhaustive"
    solver_options: tuple[tuple[str, Any], ...] = ()
    sweeps: int = 3
    block_size: int = 64
    teacher_epochs: int = 100
    teacher_lr: float = 1e-3
    memory_mb: float = 512.0
    val_samples: int | None = None
    scale: bool = True
    hidden_width: str = "max"

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first bad field."""
        choices = {
            "compression": COMPRESSIONS,
            "init": INITS,
            "mask_level": MASK_LEVELS,
            "grouping": GROUPINGS,
            "solver": tuple(SOLVERS),
            "hidden_width": HIDDEN_WIDTHS,
        }
        for name, options in choices.items():
            if getattr(self, name) not in options:
                raise ValueError(
                    f"{name} must be one of {options}, got {getattr(self, name)!r}"
                )
        hidden = self.teacher_hidden
        if (
            not isinstance(hidden, tuple)
            or not hidden
            or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden
            )
        ):
            raise ValueError(
                f"teacher_hidden must be a non-empty tuple of positive integers, got "
                f"{hidden!r}"
            )
        for name in ("width_factor", "sweeps", "block_size", "teacher_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.teacher_lr > 0:
            raise ValueError(f"teacher_lr must be > 0, got {self.teacher_lr}")
        if not self.memory_mb > 0:
            raise ValueError(f"memory_mb must be > 0, got {self.memory_mb}")
        if self.val_samples is not None and self.val_samples < 1:
            raise ValueError(f"val_samples must be >= 1, got {self.val_samples}")
        need = "neuron" if self.grouping == "neuron" else "weight"
        if self.mask_level != need:
            raise ValueError(
                f"grouping {self.grouping!r} needs mask_level={need!r}, got "
                f"mask_level={self.mask_level!r}"
            )
        if not isinstance(self.k, int) or not 1 <= self.k <= 20:
            raise ValueError(f"k must be an integer in [1, 20], got {self.k!r}")


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


def check_memory(
    config: DistillConfig, in_features: int, num_classes: int, num_samples: int
) -> tuple[int, ...]:
    """Per-group working-set estimate of every block; raises if one is over budget.

    A first-layer group holds ``2^K x B x hidden`` floats a few times over (the
    updated second-layer pre-activation, its activation and the compressed output).

    Raises:
        ValueError: one group's estimate is over ``memory_mb`` (the message says it).
    """
    budget = config.memory_mb * 2**20
    out = []
    for i, (_, _, n1) in enumerate(student_widths(config, in_features, num_classes)):
        nbytes = int(2**config.k * num_samples * max(n1, config.k) * 4 * 4)
        if nbytes > budget:
            raise ValueError(
                f"memory_mb: one group of student block {i} needs about "
                f"{nbytes / 2**20:.0f} MiB (2^{config.k} configurations x "
                f"{num_samples} samples x {n1} units), over the budget of "
                f"{config.memory_mb:.0f} MiB: lower k, width_factor or val_samples, "
                "or raise memory_mb"
            )
        out.append(nbytes)
    return tuple(out)


# --------------------------------------------------------------- teacher, student


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


def make_teacher(
    key: jax.Array, data, config: DistillConfig = DistillConfig()
) -> Teacher:
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


# ------------------------------------------------------------------- compression


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


# ------------------------------------------------------------------ block network


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


def _weights(arrays: BlockArrays, masks: Masks, level: str):
    """Masked kernels and the hidden-unit mask ``(n0,)`` (ones at weight level)."""
    if level == "weight":
        return arrays.w0 * masks[0], arrays.w1 * masks[1], None
    return arrays.w0, arrays.w1, masks[0]


def block_forward(
    arrays: BlockArrays, masks: Masks, u: jax.Array, *, level: str, last: bool
):
    """One masked block: ``u (B, n_in) -> (z0 (B, n0), h0, z1 (B, n1), out (B, t))``."""
    w0, w1, nmask = _weights(arrays, masks, level)
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


# -------------------------------------------------------------------- landscapes


class Plan(NamedTuple):
    """The groups of one layer of a block, as NumPy arrays built at set-up.

    Attributes:
        layer: 0 (first layer of the block) or 1 (second).
        arrays: ``index``, ``valid`` ``(G_l, K)``; ``rows``, ``bitcols``
            ``(G_l, K)`` (weight level: kernel row and column of each bit); ``cols``
            ``(G_l, Kc)`` distinct changed columns; ``assign`` ``(G_l, K, Kc)``.
        chunk: groups per vectorised chunk.
    """

    layer: int
    arrays: dict
    chunk: int


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


def make_plans(
    block: MaskableMLP,
    grouping: Grouping,
    proj: np.ndarray,
    *,
    num_samples: int,
    memory_mb: float,
) -> tuple[Plan, ...]:
    """Per-layer group arrays and chunk sizes of a block (NumPy, at set-up)."""
    k = grouping.k
    level = block.mask_level
    n_used = int((np.abs(proj).sum(axis=1) > 0).sum())
    plans = []
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
            cols, assign = _column_sets(bitcols, valid)
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
        chunk = max(1, min(stop - start, int(memory_mb * 2**20) // nbytes))
        plans.append(Plan(l, arrays, int(chunk)))
    return tuple(plans)


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


def make_block_landscapes(
    level: str,
    k: int,
    last: bool,
    shapes: tuple[tuple[int, ...], ...],
    *,
    scale: bool = False,
):
    """The exact block-loss landscapes of some groups of one layer of a block.

    A first-layer group's ``Δh_J (S, B, Kc)`` updates only the ``t f`` second-layer
    pre-activations that reach the compressed output (rank-``Kc``); a second-layer
    group's ``Δh_J`` moves at most ``Kc`` compressed units, so its squared distance
    is updated from the cached residual in ``O(S B Kc)``.

    Returns:
        ``landscapes(arrays, flat, u, target, group_arrays, layer, chunk) -> (G, S)``
        with ``arrays`` a :class:`BlockArrays`, ``flat`` the block's ``(N,)`` mask
        bits, ``u (B, n_in)`` the block input, ``target (B, t)`` and
        ``group_arrays`` the (jnp) arrays of a :class:`Plan`.
    """
    table = jnp.asarray(bit_table(k))
    act = (lambda z: z) if last else jax.nn.relu

    def landscapes(arrays, flat, u, target, groups, layer: int, chunk: int):
        flat, u, target = jnp.asarray(flat), jnp.asarray(u), jnp.asarray(target)
        masks = unflatten_masks(flat, shapes)
        _, w1, _ = _weights(arrays, masks, level)
        z0, h0, z1, out = block_forward(arrays, masks, u, level=level, last=last)
        used, weight = arrays.used, arrays.weight  # (t, f)
        t, f = used.shape
        w1_used = w1[:, used.reshape(-1)]  # (n0, t f)
        z1_used = z1[:, used.reshape(-1)]  # (B, t f)
        resid = target - out  # (B, t)
        sq = jnp.sum(jnp.square(resid), axis=-1)  # (B,)

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
                z1n = z1_used[None] + jnp.einsum("sbc,cn->sbn", dh, w1_used[g["cols"]])
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
            r = resid[:, g["tunits"]] * g["tvalid"][None, :]  # (B, Kr)
            new_sq = (
                sq[None]
                - jnp.sum(jnp.square(r), axis=-1)[None]
                + jnp.sum(jnp.square(r[None] - delta), axis=-1)
            )
            return jnp.mean(jnp.sqrt(jnp.maximum(new_sq, 0.0)), axis=-1)

        return jax.lax.map(one, groups, batch_size=chunk)

    return landscapes


# ------------------------------------------------------------------------ sweeps


class BlockState(NamedTuple):
    """Loop state of one block's selection: its flat mask and the key it carries."""

    flat: jax.Array
    key: jax.Array
    sweep: jax.Array


class BlockInfo(NamedTuple):
    """Per-group outcome of one block sweep (``(G,)`` arrays) and the loss after it."""

    chosen: jax.Array
    top1: jax.Array
    chosen_cost: jax.Array
    min_cost: jax.Array
    max_cost: jax.Array
    current_cost: jax.Array
    accepted: jax.Array
    lookups: jax.Array
    optimal: jax.Array
    top1_optimal: jax.Array
    loss: jax.Array


def _blocked(arrays: dict, block_size: int):
    """Pads a layer's group arrays to whole steps: ``(steps, block_size, ...)``.

    Padding groups have no valid bit: their landscape is flat, so they never
    change anything; their outputs are dropped.
    """
    n = arrays["index"].shape[0]
    size = min(block_size, n)
    steps = -(-n // size)
    pad = steps * size - n
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        filler = np.zeros((pad, *a.shape[1:]), a.dtype)
        if name != "valid":
            filler[:] = a[:1]
        if name == "assign":
            filler[:] = 0.0
        out[name] = jnp.asarray(
            np.concatenate([a, filler]).reshape(steps, size, *a.shape[1:])
        )
    return out, n


def make_block_sweep(
    plans: Sequence[Plan],
    solver: Solver,
    *,
    level: str,
    last: bool,
    shapes: tuple[tuple[int, ...], ...],
    block_size: int,
    scale: bool = False,
):
    """One sequential sweep over a block's groups: a pure, jittable function.

    Layer 0's groups come first, then layer 1's, ``block_size`` at a time in a
    ``lax.scan``; every step rebuilds its landscapes against the mask that holds
    every earlier step's update, solves them, and applies the core's line-search
    acceptance (:func:`qselax.sweeps.line_search_accept`) on the block loss, so the
    loss never rises.

    Returns:
        ``sweep(arrays, state, u, target) -> (state, BlockInfo)``.
    """
    k = plans[0].arrays["index"].shape[1]
    landscapes = make_block_landscapes(level, k, last, shapes, scale=scale)
    blocked = [(_blocked(p.arrays, block_size), p) for p in plans]

    def loss_of(arrays, flat, u, target):
        out = block_forward(
            arrays, unflatten_masks(flat, shapes), u, level=level, last=last
        )[-1]
        return block_loss(out, target, scale)

    def sweep(arrays: BlockArrays, state: BlockState, u, target):
        key, sub = jax.random.split(state.key)
        keys = jax.random.split(sub, len(blocked))
        flat, outs = state.flat, []
        for ((groups, n), plan), pkey in zip(blocked, keys, strict=True):
            steps = groups["index"].shape[0]

            def body(flat, xs, plan=plan):
                g, skey = xs
                lands = landscapes(arrays, flat, u, target, g, plan.layer, plan.chunk)
                index, valid = g["index"], g["valid"]
                current = bit_index(gather_bits(flat, index, valid))
                res = solver.solve(skey, lands, current)

                def pick(i):
                    return jnp.take_along_axis(lands, i[:, None], axis=-1)[:, 0]

                chosen_cost, cur_cost = pick(res.index), pick(current)
                flat, take, _ = line_search_accept(
                    flat,
                    index,
                    valid,
                    index_bits(res.index, k),
                    cur_cost - chosen_cost,
                    lambda f: loss_of(arrays, f, u, target),
                )
                min_cost = jnp.min(lands, axis=-1)
                return flat, (
                    res.index,
                    res.top1,
                    chosen_cost,
                    min_cost,
                    jnp.max(lands, axis=-1),
                    cur_cost,
                    take,
                    res.lookups,
                    attains(chosen_cost, min_cost),
                    attains(pick(res.top1), min_cost),
                )

            flat, per_group = jax.lax.scan(
                body, flat, (groups, jax.random.split(pkey, steps))
            )
            outs.append(jax.tree.map(lambda a, n=n: a.reshape(-1)[:n], per_group))
        per_group = jax.tree.map(lambda *a: jnp.concatenate(a), *outs)
        info = BlockInfo(*per_group, loss_of(arrays, flat, u, target))
        return BlockState(flat, key, state.sweep + 1), info

    return sweep


# ---------------------------------------------------------------------- driver


class Distillation(NamedTuple):
    """The result of a distillation run.

    Attributes:
        masks: per block, its mask pytree (two arrays at weight level).
        projs: per block, the ``(f t_i, t_i)`` compression matrix.
        scales: per block, its least-squares scale ``alpha_i`` after selection
            (1 without ``config.scale``).
        student: the random student.
        teacher: the trained teacher.
        blocks: per block, a dict: ``initial_loss`` (all-ones mask), ``loss``
            (after selection), ``history`` (per sweep: loss, optimum rates,
            accepted groups, seconds), ``optimum_rate``, ``top1_optimum_rate``,
            ``nontrivial_optimum_rate``, ``groups``, ``landscape_evals``,
            ``lookups``, ``kept_fraction``, ``compile_s``, ``run_s``.
        block_losses: final validation block loss of every block.
        block_optimum_rates: optimum rate of every block (all its solves).
        optimum_rate: over all group solves of all blocks.
        top1_optimum_rate: the same for the single most probable configuration.
        landscape_evals: landscape entries computed (sum of sweeps x G_i x 2^K).
        lookups: landscape entries the solver's readout consulted.
        resources: the solver's per-group resources plus group counts.
        accuracy: ``{"teacher": {...}, "student": {...}}`` train/val/test accuracy.
        compile_s: seconds compiling the block sweeps (one compile per block).
        run_s: seconds of all sweeps after compilation.
    """

    masks: tuple[Masks, ...]
    projs: tuple[np.ndarray, ...]
    scales: tuple[float, ...]
    student: Student
    teacher: Teacher
    blocks: list[dict]
    block_losses: list[float]
    block_optimum_rates: list[float]
    optimum_rate: float
    top1_optimum_rate: float
    landscape_evals: int
    lookups: int
    resources: dict
    accuracy: dict
    compile_s: float
    run_s: float


def _splits(data, val_samples):
    x_val, y_val = np.asarray(data.x_val), np.asarray(data.y_val)
    if val_samples is not None:
        x_val, y_val = x_val[:val_samples], y_val[:val_samples]
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1)  # noqa: E731
    return {
        "train": (flat(data.x_train), np.asarray(data.y_train)),
        "val": (flat(x_val), y_val),
        "test": (flat(data.x_test), np.asarray(data.y_test)),
    }


def distill(
    key: jax.Array,
    data,
    config: DistillConfig = DistillConfig(),
    *,
    teacher: Teacher | None = None,
    student: Student | None = None,
    progress: bool = True,
) -> Distillation:
    """Layerwise selection of a random student that reproduces a trained teacher.

    Args:
        key: PRNG key (teacher init and training, student weights, solvers).
        data: a :class:`qselax.data.Dataset` (train: teacher; validation: targets
            and block losses; test: only scored).
        config: static settings.
        teacher: a trained teacher to reuse (default: train one with ``key``).
        student: a student to reuse (default: draw one with ``key``).
        progress: show a progress bar over blocks and sweeps.

    Returns:
        A :class:`Distillation`.

    Raises:
        ValueError: bad settings, a teacher or student that does not fit, or a
            landscape chunk over the memory budget, all before any heavy work.
    """
    config.validate()
    splits = _splits(data, config.val_samples)
    x_val = splits["val"][0]
    in_features = x_val.shape[1]
    check_memory(config, in_features, data.num_classes, x_val.shape[0])
    solver = make_solver(config.solver, config.k, **dict(config.solver_options))
    t_key, s_key, run_key = jax.random.split(key, 3)
    want = teacher_widths(config, data.num_classes)
    if teacher is not None and tuple(teacher.widths) != want:
        raise ValueError(
            f"teacher has layer widths {tuple(teacher.widths)}, the config wants {want}"
        )
    if student is not None:
        shapes = tuple((b.widths[0], b.widths[1], b.widths[2]) for b in student.blocks)
        if shapes != student_widths(config, in_features, data.num_classes) or any(
            b.mask_level != config.mask_level for b in student.blocks
        ):
            raise ValueError(
                f"student blocks have widths {shapes}, the config wants "
                f"{student_widths(config, in_features, data.num_classes)} with "
                f"mask_level={config.mask_level!r}"
            )
    if teacher is None:
        teacher = make_teacher(t_key, data, config)
    if student is None:
        student = make_student(s_key, in_features, data.num_classes, config)

    targets = teacher_targets(teacher, x_val)
    u = jnp.asarray(x_val)
    masks_out, projs, blocks, scales = [], [], [], []
    compile_s = run_s = 0.0
    all_opt, all_top1 = [], []
    total_evals = total_lookups = 0
    bar = tqdm(
        total=student.num_blocks * config.sweeps,
        desc=f"distill {config.solver}",
        disable=not progress,
    )
    for i, block in enumerate(student.blocks):
        last = i == student.num_blocks - 1
        ones = ones_masks(block)
        plain = block_arrays(block, np.eye(block.widths[-1], dtype=np.float32))
        wide = block_forward(plain, ones, u, level=config.mask_level, last=last)[-1]
        proj = compression_matrix(config.compression, wide, student.teacher_widths[i])
        arrays = block_arrays(block, proj)
        grouping = block_grouping(block, config, proj)
        plans = make_plans(
            block, grouping, proj, num_samples=u.shape[0], memory_mb=config.memory_mb
        )
        sweep = make_block_sweep(
            plans,
            solver,
            level=config.mask_level,
            last=last,
            shapes=grouping.shapes,
            block_size=config.block_size,
            scale=config.scale,
        )
        target = jnp.asarray(targets[i])
        state = BlockState(
            flatten_masks(ones),
            jax.random.fold_in(run_key, i),
            jnp.zeros((), jnp.int32),
        )
        start = time.perf_counter()
        compiled = jax.jit(sweep).lower(arrays, state, u, target).compile()
        block_compile = time.perf_counter() - start
        initial = float(
            block_loss(
                block_forward(arrays, ones, u, level=config.mask_level, last=last)[-1],
                target,
                config.scale,
            )
        )
        history, opt, top1, nontrivial, lookups = [], [], [], [], 0
        block_run = 0.0
        for s in range(config.sweeps):
            start = time.perf_counter()
            state, info = compiled(arrays, state, u, target)
            info = jax.device_get(info)
            seconds = time.perf_counter() - start
            block_run += seconds
            opt.append(info.optimal)
            top1.append(info.top1_optimal)
            nontrivial.append(~np.asarray(attains(info.max_cost, info.min_cost)))
            lookups += int(np.sum(info.lookups))
            history.append(
                {
                    "sweep": s + 1,
                    "loss": float(info.loss),
                    "optimum_rate": float(np.mean(info.optimal)),
                    "top1_optimum_rate": float(np.mean(info.top1_optimal)),
                    "accepted": int(np.sum(info.accepted)),
                    "seconds": seconds,
                }
            )
            bar.update(1)
            bar.set_postfix(block=i, loss=f"{float(info.loss):.4f}")
        masks = unflatten_masks(state.flat, grouping.shapes)
        opt, top1, nontrivial = map(np.concatenate, (opt, top1, nontrivial))
        evals = config.sweeps * grouping.num_groups * 2**config.k
        blocks.append(
            {
                "initial_loss": initial,
                "loss": history[-1]["loss"],
                "history": history,
                "optimum_rate": float(np.mean(opt)),
                "top1_optimum_rate": float(np.mean(top1)),
                "nontrivial_optimum_rate": float(np.mean(opt[nontrivial]))
                if nontrivial.any()
                else 1.0,
                "groups": grouping.num_groups,
                "bits": grouping.num_bits,
                "landscape_evals": evals,
                "lookups": lookups,
                "kept_fraction": float(np.mean(np.asarray(state.flat))),
                "compile_s": block_compile,
                "run_s": block_run,
            }
        )
        all_opt.append(opt)
        all_top1.append(top1)
        total_evals += evals
        total_lookups += lookups
        compile_s += block_compile
        run_s += block_run
        masks_out.append(masks)
        projs.append(proj)
        # The next block reads this block's own masked, compressed (scaled) output.
        out = block_forward(arrays, masks, u, level=config.mask_level, last=last)[-1]
        alpha = float(block_scale(out, target)) if config.scale else 1.0
        blocks[-1]["scale"] = alpha
        scales.append(alpha)
        u = out * alpha
    bar.close()

    def scores(fn):
        return {
            name: float(accuracy(fn(jnp.asarray(x)), jnp.asarray(y)))
            for name, (x, y) in splits.items()
        }

    graphdef, weights = nnx.split(teacher.model)
    teacher_fn = jax.jit(lambda x: apply_masked(graphdef, weights, None, x))
    student_fn = jax.jit(
        lambda x: student_forward(student, projs, masks_out, x, scales)
    )
    resources = dict(solver.resources)
    resources.update(
        groups=int(sum(b["groups"] for b in blocks)),
        groups_per_block=[b["groups"] for b in blocks],
        group_size=config.k,
        blocks=student.num_blocks,
    )
    return Distillation(
        masks=tuple(masks_out),
        projs=tuple(projs),
        scales=tuple(scales),
        student=student,
        teacher=teacher,
        blocks=blocks,
        block_losses=[b["loss"] for b in blocks],
        block_optimum_rates=[b["optimum_rate"] for b in blocks],
        optimum_rate=float(np.mean(np.concatenate(all_opt))),
        top1_optimum_rate=float(np.mean(np.concatenate(all_top1))),
        landscape_evals=int(total_evals),
        lookups=int(total_lookups),
        resources=resources,
        accuracy={"teacher": scores(teacher_fn), "student": scores(student_fn)},
        compile_s=compile_s,
        run_s=run_s,
    )


def direct_hidden(config: DistillConfig, num_classes: int) -> tuple[int, ...]:
    """Hidden widths of the plain ``2 L``-layer MLP that direct selection uses.

    The same depth and widths as the student without compressions: block ``i``'s two
    layers are ``f t_i`` wide and the last layer maps ``f C`` units to the ``C``
    logits, so that teacher-free selection (:func:`qselax.select`) searches a
    network of the student's size.
    """
    widths = []
    for _, hidden, out in student_widths(config, 1, num_classes):
        widths += [hidden, out]
    return tuple(widths[:-1])
