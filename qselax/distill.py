"""Layerwise quantum neuron selection with knowledge distillation (paper method A).

The teacher, the random student (two frozen random layers per teacher layer,
``width_factor`` times wider) and the compressions are in :mod:`qselax.student`.
Block ``i`` is selected to reproduce teacher layer ``i`` on the validation split,
*up to one scalar*: the block loss is

    L_i(M_i) = mean_b || T_i[b] - alpha_i h_i[b] ||_2,
    alpha_i = <T_i, h_i> / <h_i, h_i>     (sums over samples and units)

with ``T_i`` the teacher's recorded output of layer ``i`` and ``alpha_i`` the
closed-form least-squares scale of the configuration being scored
(:func:`qselax.student.block_scale`; recomputed for every landscape entry).  A
masked random block cannot reach a trained layer's activation scale by selection
alone, so the scale is factored out.  It is no trained parameter of the
classifier: the student is bias-free and ReLU is positively homogeneous, so the
hidden scales only multiply the logits by their product, and the predicted classes
are those of the masked subnetwork (logits negated when the last block's ``alpha``
is negative, reported in :attr:`Distillation.scales`).  ``scale=False`` gives the
raw distance ``mean_b || T_i[b] - h_i[b] ||_2``.

Each block is one :class:`qselax.landscapes.Landscape` (:func:`block_landscape`):
its mask bits are split into K-bit groups by any core grouping (``fan_in``,
``block`` or ``neuron``, on the two-layer block network), each group's exact
landscape is ``L_i`` over its ``2^K`` configurations with the rest of the block
held fixed, and the blocks run in order through the one sweep (sequential, with
the line-search acceptance, so ``L_i`` never rises) and the one driver (one
compile per block).  Only the validation split is used for targets and selection;
the test split is only scored.

Landscapes are incremental: a group in the block's first layer changes at most K
columns of the hidden pre-activation, which updates the second layer's cached
pre-activation by a rank-``|J|`` product; a group in the second layer changes at
most K output units, which move the compressed output by ``Δh_J @ P_i[J]`` (with
the scale, the whole compressed output is rebuilt from that update, since
``alpha`` reads every unit).

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
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from qselax.bits import check_k
from qselax.checkpoints import Checkpoints
from qselax.driver import Driver, Logger, initial_state
from qselax.groups import (
    GROUPINGS,
    flatten_masks,
    unflatten_masks,
)
from qselax.landscapes import plan_chunk
from qselax.networks import (
    INITS,
    MASK_LEVELS,
    Masks,
    accuracy,
    apply_masked,
    ones_masks,
)
from qselax.solvers import SolverSpec, make_solver, solver_spec
from qselax.solvers.base import check_choice, check_count
from qselax.student import (
    COMPRESSIONS,
    BlockParams,
    Student,
    Teacher,
    block_arrays,
    block_forward,
    block_grouping,
    block_landscape,
    block_scale,
    compression_matrix,
    make_student,
    make_teacher,
    student_forward,
    student_widths,
    teacher_targets,
    teacher_widths,
)
from qselax.sweeps import make_sweep

__all__ = [
    "HIDDEN_WIDTHS",
    "DistillConfig",
    "Distillation",
    "check_memory",
    "direct_hidden",
    "distill",
]

HIDDEN_WIDTHS = ("max", "output")


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Static settings of one distillation run (hashable; never traced).

    The defaults are ``qselax run --method distill``'s (the command line reads them
    from here): the best setting measured on digits (``experiments/distillation``:
    magnitude compression, f = 8, K = 6, 8 sweeps of blocks of 16 groups).

    Attributes:
        solver: a built solver spec (``qselax.solvers.vqe(steps=50)``) or a
            registered name (its default options).
        teacher_hidden: hidden widths of the teacher MLP (its depth is
            ``len(teacher_hidden) + 1`` layers; the student has twice as many).
        width_factor: student block widths are this times the teacher widths.
        compression: ``magnitude`` or ``pool`` (:func:`qselax.student.
            compression_matrix`).
        init: the student's random init scheme (one of :data:`qselax.networks.INITS`).
        mask_level: ``weight`` or ``neuron`` masks of the student.
        grouping: ``fan_in``, ``block`` (weight level) or ``neuron``.
        k: bits (qubits) per group.
        sweeps: sequential sweeps per block.
        block_size: groups solved together per step of a sweep.
        teacher_epochs: Adam epochs of the teacher (optax, best validation epoch).
        teacher_lr: the teacher's Adam learning rate.
        memory_mb: memory budget of one landscape chunk.
        val_samples: use only the first this-many validation samples (None: all).
        scale: match every block up to its least-squares scale ``alpha_i``; False:
            the raw L2 distance.
        hidden_width: ``max`` (hidden layer of block ``i`` is ``f max(t_{i-1},
            t_i)`` wide) or ``output`` (``f t_i``).
    """

    solver: SolverSpec | str = "exhaustive"
    teacher_hidden: tuple[int, ...] = (32,)
    width_factor: int = 8
    compression: str = "magnitude"
    init: str = "uniform"
    mask_level: str = "weight"
    grouping: str = "fan_in"
    k: int = 6
    sweeps: int = 8
    block_size: int = 16
    teacher_epochs: int = 100
    teacher_lr: float = 1e-3
    memory_mb: float = 512.0
    val_samples: int | None = None
    scale: bool = True
    hidden_width: str = "max"

    def __post_init__(self):
        object.__setattr__(self, "solver", solver_spec(self.solver))

    def validate(self) -> DistillConfig:
        """Raises ``ValueError`` naming the first bad field; returns ``self``."""
        choices = {
            "compression": COMPRESSIONS,
            "init": INITS,
            "mask_level": MASK_LEVELS,
            "grouping": GROUPINGS,
            "hidden_width": HIDDEN_WIDTHS,
        }
        for name, options in choices.items():
            check_choice(name, getattr(self, name), options)
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
            check_count(name, getattr(self, name))
        if not self.teacher_lr > 0:
            raise ValueError(f"teacher_lr must be > 0, got {self.teacher_lr}")
        if not self.memory_mb > 0:
            raise ValueError(f"memory_mb must be > 0, got {self.memory_mb}")
        if self.val_samples is not None:
            check_count("val_samples", self.val_samples)
        need = "neuron" if self.grouping == "neuron" else "weight"
        if self.mask_level != need:
            raise ValueError(
                f"grouping {self.grouping!r} needs mask_level={need!r}, got "
                f"mask_level={self.mask_level!r}"
            )
        check_k(self.k)
        return self


def check_memory(
    config: DistillConfig, in_features: int, num_classes: int, num_samples: int
) -> tuple[int, ...]:
    """Per-group working-set estimate of every block; raises if one is over budget.

    A first-layer group holds ``2^K x B x hidden`` floats a few times over (the
    updated second-layer pre-activation, its activation and the compressed output).
    Runs before the teacher is trained, from the widths alone.

    Raises:
        ValueError: one group's estimate is over ``memory_mb`` (the message says it).
    """
    out = []
    for i, (_, _, n1) in enumerate(student_widths(config, in_features, num_classes)):
        nbytes = int(2**config.k * num_samples * max(n1, config.k) * 4 * 4)
        plan_chunk(
            1,
            nbytes,
            config.memory_mb,
            f"one group of student block {i} (2^{config.k} configurations x "
            f"{num_samples} samples x {n1} units)",
        )
        out.append(nbytes)
    return tuple(out)


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
            (after selection), ``history`` (the driver's records per sweep),
            ``optimum_rate``, ``top1_optimum_rate``, ``nontrivial_optimum_rate``,
            ``groups``, ``bits``, ``landscape_evals``, ``lookups``,
            ``kept_fraction``, ``compile_s``, ``run_s``, ``scale``.
        block_losses: final validation block loss of every block.
        block_optimum_rates: optimum rate of every block (all its solves).
        optimum_rate: over all group solves of all blocks.
        top1_optimum_rate: the same for the single most probable configuration.
        nontrivial_optimum_rate: over the solves of non-flat landscapes.
        landscape_evals: landscape entries computed (sum of sweeps x G_i x 2^K).
        lookups: landscape entries the solver's readout consulted.
        oracle_calls: coherent oracle uses (Grover iterations).
        shots: circuit executions measured.
        history: every block's records, in order (``stage`` names the block).
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
    nontrivial_optimum_rate: float
    landscape_evals: int
    lookups: int
    oracle_calls: int
    shots: int
    history: list[dict]
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


def _check_networks(config, teacher, student, in_features, num_classes) -> None:
    want = teacher_widths(config, num_classes)
    if teacher is not None and tuple(teacher.widths) != want:
        raise ValueError(
            f"teacher has layer widths {tuple(teacher.widths)}, the config wants {want}"
        )
    if student is not None:
        shapes = tuple((b.widths[0], b.widths[1], b.widths[2]) for b in student.blocks)
        wanted = student_widths(config, in_features, num_classes)
        if shapes != wanted or any(
            b.mask_level != config.mask_level for b in student.blocks
        ):
            raise ValueError(
                f"student blocks have widths {shapes}, the config wants {wanted} "
                f"with mask_level={config.mask_level!r}"
            )


def distill(
    key: jax.Array,
    data,
    config: DistillConfig = DistillConfig(),
    *,
    teacher: Teacher | None = None,
    student: Student | None = None,
    progress: bool = True,
    loggers: Sequence[Logger] = (),
    checkpoints: Checkpoints | None = None,
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
        loggers: callables given every sweep's history record as it is made.
        checkpoints: save every block after every sweep there and resume from the
            last checkpoint (:mod:`qselax.checkpoints`).

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
    solver = make_solver(config.solver, config.k)
    t_key, s_key, run_key = jax.random.split(key, 3)
    _check_networks(config, teacher, student, in_features, data.num_classes)
    if teacher is None:
        teacher = make_teacher(t_key, data, config)
    if student is None:
        student = make_student(s_key, in_features, data.num_classes, config)

    targets = teacher_targets(teacher, x_val)
    u = jnp.asarray(x_val)
    level = config.mask_level
    masks_out, projs, blocks, scales, runs = [], [], [], [], []
    driver = Driver(
        student.num_blocks * config.sweeps,
        desc=f"distill {solver.name}",
        progress=progress,
        loggers=loggers,
        checkpoints=checkpoints,
    )
    with driver:
        for i, block in enumerate(student.blocks):
            last = i == student.num_blocks - 1
            ones = ones_masks(block)
            plain = block_arrays(block, np.eye(block.widths[-1], dtype=np.float32))
            wide = block_forward(plain, ones, u, level=level, last=last)[-1]
            proj = compression_matrix(
                config.compression, wide, student.teacher_widths[i]
            )
            grouping = block_grouping(block, config, proj)
            landscape = block_landscape(
                block,
                grouping,
                proj,
                last=last,
                scale=config.scale,
                num_samples=u.shape[0],
                memory_mb=config.memory_mb,
            )
            sweep = make_sweep(
                landscape, solver, mode="sequential", block_size=config.block_size
            )
            params = BlockParams(block_arrays(block, proj), u, jnp.asarray(targets[i]))
            flat = flatten_masks(ones)
            initial = float(landscape.total(params, flat))
            run = driver.run(
                sweep,
                params,
                initial_state(jax.random.fold_in(run_key, i), flat),
                config.sweeps,
                k=config.k,
                stage=f"block{i}",
            )
            masks = unflatten_masks(run.state.flat, grouping.shapes)
            # The next block reads this block's own masked, compressed (scaled) output.
            out = block_forward(params.arrays, masks, u, level=level, last=last)[-1]
            alpha = float(block_scale(out, params.target)) if config.scale else 1.0
            blocks.append(
                {
                    "initial_loss": initial,
                    "loss": run.history[-1]["cost"],
                    "history": run.history,
                    "optimum_rate": run.optimum_rate,
                    "top1_optimum_rate": run.top1_optimum_rate,
                    "nontrivial_optimum_rate": run.nontrivial_optimum_rate,
                    "groups": grouping.num_groups,
                    "bits": grouping.num_bits,
                    "landscape_evals": run.landscape_evals,
                    "lookups": run.lookups,
                    "kept_fraction": float(np.mean(np.asarray(run.state.flat))),
                    "compile_s": run.compile_s,
                    "run_s": run.run_s,
                    "scale": alpha,
                }
            )
            runs.append(run)
            masks_out.append(masks)
            projs.append(proj)
            scales.append(alpha)
            u = out * alpha

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
    solves = np.array([r.groups * config.sweeps for r in runs], np.float64)

    def pooled(name):
        return float(np.sum(solves * [getattr(r, name) for r in runs]) / solves.sum())

    return Distillation(
        masks=tuple(masks_out),
        projs=tuple(projs),
        scales=tuple(scales),
        student=student,
        teacher=teacher,
        blocks=blocks,
        block_losses=[b["loss"] for b in blocks],
        block_optimum_rates=[b["optimum_rate"] for b in blocks],
        optimum_rate=pooled("optimum_rate"),
        top1_optimum_rate=pooled("top1_optimum_rate"),
        nontrivial_optimum_rate=pooled("nontrivial_optimum_rate"),
        landscape_evals=int(sum(r.landscape_evals for r in runs)),
        lookups=int(sum(r.lookups for r in runs)),
        oracle_calls=int(sum(r.oracle_calls for r in runs)),
        shots=int(sum(r.shots for r in runs)),
        history=[h for r in runs for h in r.history],
        resources=resources,
        accuracy={"teacher": scores(teacher_fn), "student": scores(student_fn)},
        compile_s=float(sum(r.compile_s for r in runs)),
        run_s=float(sum(r.run_s for r in runs)),
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
