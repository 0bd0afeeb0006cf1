"""Direct selection: the whole frozen network, its groups, one solver, the driver.

:func:`select` is the Python entry point of a local quantum neuron selection run::

    cfg = SelectConfig(solver=qselax.solvers.vqe(layers=3, steps=100), k=8)
    sel = select(key, model, data, cfg)
    sel.masks, sel.optimum_rate, sel.history

It builds everything static at set-up (grouping, the network's landscape with its
memory check, the solver), then hands the sweep to the one driver
(:class:`qselax.driver.Driver`), which compiles it once (``compile_s``) and runs
the sweeps (``run_s``) with a progress bar and the loggers.  The cost is the
network's on the cost split (training by default); the validation cost picks the
kept sweep and stops early; the test split is only scored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax.bits import bit_index, gather_bits
from qselax.checkpoints import Checkpoints
from qselax.driver import Driver, Logger, initial_state
from qselax.groups import (
    GROUP_ORDERS,
    GROUPINGS,
    Grouping,
    flatten_masks,
    make_grouping,
    unflatten_masks,
)
from qselax.landscapes import (
    COSTS,
    EVALUATORS,
    network_landscape,
    network_params,
    prune_penalty,
)
from qselax.networks import (
    Masks,
    Model,
    accuracy,
    apply_masked,
    cross_entropy,
    ones_masks,
    random_masks,
)
from qselax.solvers import SolverSpec, make_solver, solver_spec
from qselax.solvers.base import check_choice, check_count, check_float
from qselax.sweeps import ORACLES, SWEEP_MODES, make_sweep

__all__ = [
    "ACCEPT_SPLITS",
    "COST_SPLITS",
    "DIRECT_VQE",
    "INIT_MASKS",
    "SelectConfig",
    "Selection",
    "group_landscapes",
    "landscape_sample",
    "plan",
    "score",
    "select",
]

INIT_MASKS = ("ones", "random")
COST_SPLITS = ("train", "val")
ACCEPT_SPLITS = ("cost", "val")


# Direct selection's VQE: the real-amplitude ansatz (RY layers and CNOT ladders,
# float32 states) with 50 Adam steps at learning rate 0.2. On the demo (seeds 0-2)
# it kept the optimum rate of the complex (RY, RZ) ansatz with 100 steps at 0.1
# (0.975-0.980 against 0.974-0.978) at about a quarter of its circuit time.  With
# interleaved groups the landscapes are flatter near their minimum and the
# expected cost found the optimum less often (0.958-0.963); the Gibbs objective at
# eta = 16 (in units of each landscape's spread) finds it in 0.991-0.994 of the
# solves, at 1.04-1.13x the exhaustive run's time (README; experiments/vqe_objective).
DIRECT_VQE = {"rotations": ("ry",), "steps": 50, "learning_rate": 0.2, "gibbs": 16.0}


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    """Static settings of one direct selection run (hashable; never traced).

    The defaults are the ``qselax run`` demo's (the command line reads them from
    here).

    Attributes:
        solver: a built solver spec (``qselax.solvers.vqe(layers=3)``) or a
            registered name (its default options).
        grouping: ``fan_in``, ``block`` or ``neuron``.
        group_order: the order of each layer's groups, so which groups share a
            sequential block (:data:`qselax.groups.GROUP_ORDERS`): ``interleave``
            (the default: a block's groups feed different units) or ``unit``
            (unit by unit, every version before 2026-11-28).
        k: bits (qubits) per group.
        sweeps: number of sweeps.
        mode: ``sequential`` or ``parallel``.
        block_size: groups per block in sequential sweeps.
        cost: ``ce`` (cross-entropy) or ``error`` (0-1 error) on the cost split.
        evaluator: landscape evaluator (``auto``, ``rank1``, ``suffix``, ``naive``).
        memory_mb: memory budget of one landscape chunk.
        init_mask: ``ones`` (start from the full random network) or ``random``
            (Bernoulli(1/2)).
        cost_split: the split whose cost the landscapes are (``train``, the
            default, or ``val``, the paper's literal setting).  The masks kept are
            those of the sweep with the lowest validation cost; the test split is
            only scored (every sweep's record holds all three accuracies).
        cost_samples: use only the first this-many samples of the cost split
            (None: all); with ``batch_samples``, the fixed acceptance sample.
        batch_samples: subsampled landscapes (for large data): every block's
            landscapes are exact on a fresh seeded minibatch of this many samples
            of the whole cost split, and a block's proposals are accepted on the
            fixed ``cost_samples`` sample (None: exact landscapes on the cost
            sample, today's default).
        patience: stop after this many sweeps without a lower validation cost
            (None: run every sweep).
        accept_split: what the acceptance line search scores a block's
            proposals on: ``cost`` (the cost sample, the default) or ``val`` (the
            validation split: proposals from the cost split's landscapes are
            kept only where they lower the validation cost, a guard against
            fitting the cost split; the validation numbers then stop being an
            unbiased estimate, the test split stays unseen).
        prune_penalty: added to the cost: this weight times the fraction of
            mask bits at 0 (:func:`qselax.landscapes.prune_penalty`).  Positive
            values keep masks denser, a guard against fitting the cost split with
            many small prunings; 0 (the default) is the plain cost.  The
            validation cost that picks the kept sweep stays the network's own.
        oracle: where finite-shot solvers get sampled configurations' costs:
            ``landscape`` (read off the exact landscape) or ``network`` (the
            masked network evaluated on them); see :func:`qselax.sweeps.make_sweep`.
    """

    solver: SolverSpec | str = solver_spec("vqe", **DIRECT_VQE)
    grouping: str = "fan_in"
    group_order: str = "interleave"
    k: int = 8
    sweeps: int = 3
    mode: str = "sequential"
    block_size: int = 64
    cost: str = "ce"
    evaluator: str = "auto"
    memory_mb: float = 512.0
    init_mask: str = "ones"
    cost_split: str = "train"
    cost_samples: int | None = None
    batch_samples: int | None = None
    patience: int | None = None
    accept_split: str = "cost"
    prune_penalty: float = 0.0
    oracle: str = "landscape"

    def __post_init__(self):
        object.__setattr__(self, "solver", solver_spec(self.solver))

    def validate(self) -> SelectConfig:
        """Raises ``ValueError`` naming the first bad field; returns ``self``."""
        choices = {
            "grouping": GROUPINGS,
            "group_order": GROUP_ORDERS,
            "mode": SWEEP_MODES,
            "cost": COSTS,
            "evaluator": EVALUATORS,
            "init_mask": INIT_MASKS,
            "cost_split": COST_SPLITS,
            "accept_split": ACCEPT_SPLITS,
            "oracle": ORACLES,
        }
        for name, options in choices.items():
            check_choice(name, getattr(self, name), options)
        for name in ("sweeps", "block_size"):
            check_count(name, getattr(self, name))
        for name in ("cost_samples", "batch_samples", "patience"):
            if getattr(self, name) is not None:
                check_count(name, getattr(self, name))
        check_float("prune_penalty", self.prune_penalty, above=-math.inf)
        return self


class Selection(NamedTuple):
    """The result of a selection run.

    Attributes:
        masks: the selected mask pytree.
        grouping: the groups used.
        history: one record per sweep (:mod:`qselax.driver`): ``cost`` (on the
            cost split), ``{train,val,test}_cost`` and ``_accuracy``, optimum
            rates, accepted groups, look-ups, seconds.
        groups: per-group arrays of the last sweep (numpy), see
            :class:`qselax.sweeps.SweepInfo`.
        optimum_rate: fraction of all group solves (every sweep) whose chosen
            configuration attains the group's exhaustive minimum.
        top1_optimum_rate: the same for the single most probable configuration.
        nontrivial_optimum_rate: ``optimum_rate`` over groups whose landscape is not
            flat (a flat landscape is solved by any answer).
        lookups: landscape entries the solver's readout consulted, all sweeps.
        landscape_evals: landscape entries computed, all sweeps (G · 2^K per sweep).
        oracle_calls: coherent oracle uses (Grover iterations), all sweeps.
        shots: circuit executions measured (finite-shot solvers), all sweeps.
        entanglement: half-cut entanglement entropy (bits) of the groups' final
            noiseless states in the last sweep, ``{"mean", "max", "per_layer"}``
            (``per_layer``: the mean over each network layer's groups), or ``None``
            for solvers without a quantum state.
        resources: per-group circuit resources plus ``groups``.
        compile_s: seconds to compile one sweep.
        run_s: seconds of all sweeps after compilation.
        best_sweep: the sweep whose masks these are (lowest validation cost).
        landscape_samples: samples each landscape entry averages over (the cost
            sample, or the minibatch of subsampled landscapes): network
            evaluations are ``landscape_evals`` passes over this many samples.
    """

    masks: Masks
    grouping: Grouping
    history: list[dict]
    groups: dict
    optimum_rate: float
    top1_optimum_rate: float
    nontrivial_optimum_rate: float
    lookups: int
    landscape_evals: int
    oracle_calls: int
    shots: int
    entanglement: dict | None
    resources: dict
    compile_s: float
    run_s: float
    best_sweep: int
    landscape_samples: int = 0


def score(graphdef, weights, masks: Masks | None, x, y) -> dict:
    """Accuracy and mean cross-entropy of a masked network on ``(x, y)``."""
    logits = jax.jit(apply_masked, static_argnums=0)(
        graphdef, weights, masks, jnp.asarray(x)
    )
    y = jnp.asarray(y)
    return {
        "accuracy": float(accuracy(logits, y)),
        "loss": float(cross_entropy(logits, y)),
    }


def plan(model: Model, data, config: SelectConfig):
    """Set-up of a direct selection: grouping, landscape, solver and the cost split.

    Everything that can fail on bad settings happens here, before any heavy work.

    Returns:
        ``(grouping, landscape, solver, (x, y), pool)`` with ``(x, y)`` the cost
        sample (the acceptance sample of subsampled landscapes) and ``pool`` the
        whole cost split minibatches are drawn from (``None`` unless
        ``config.batch_samples``).
    """
    config.validate()
    grouping = make_grouping(config.grouping, model, config.k, config.group_order)
    x, y = (
        np.asarray(getattr(data, f"x_{config.cost_split}")),
        np.asarray(getattr(data, f"y_{config.cost_split}")),
    )
    pool, batch = None, config.batch_samples
    if batch is not None:
        if batch > len(y):
            raise ValueError(
                f"batch_samples = {batch} exceeds the {len(y)} samples of the "
                f"{config.cost_split} split"
            )
        pool = (x, y)
    if config.cost_samples is not None:
        x, y = x[: config.cost_samples], y[: config.cost_samples]
    landscape = network_landscape(
        model,
        grouping,
        num_samples=x.shape[0] if batch is None else batch,
        feature_shape=tuple(x.shape[1:]),
        cost=config.cost,
        evaluator=config.evaluator,
        memory_mb=config.memory_mb,
        batch=batch,
    )
    landscape = prune_penalty(landscape, config.prune_penalty, grouping.num_bits)
    solver = make_solver(config.solver, config.k)
    return grouping, landscape, solver, (x, y), pool


def select(
    key: jax.Array,
    model: Model,
    data,
    config: SelectConfig = SelectConfig(),
    *,
    progress: bool = True,
    loggers: Sequence[Logger] = (),
    checkpoints: Checkpoints | None = None,
) -> Selection:
    """Selects masks of a frozen random network with local K-bit solvers.

    Args:
        key: PRNG key (initial mask, solver randomness).
        model: a maskable network; its weights are never changed.
        data: a :class:`qselax.data.Dataset` (``config.cost_split``: the cost;
            validation: the kept sweep; all three splits scored every sweep).
        config: static settings.
        progress: show a progress bar over sweeps.
        loggers: callables given every sweep's history record as it is made.
        checkpoints: save the loop after every sweep there and resume from its
            last checkpoint (:mod:`qselax.checkpoints`).

    Returns:
        A :class:`Selection`.

    Raises:
        ValueError: bad settings, a grouping that does not fit the model, or a
            landscape chunk over the memory budget, all before any heavy work.
    """
    grouping, landscape, solver, (x, y), pool = plan(model, data, config)
    sweep = make_sweep(
        landscape,
        solver,
        mode=config.mode,
        block_size=config.block_size,
        oracle=config.oracle,
    )
    # Every sweep's record holds the three splits' scores; only the cost split
    # (landscapes, acceptance) and the validation cost (which sweep is kept, early
    # stopping) steer the selection.
    splits = {
        name: (getattr(data, f"x_{name}"), getattr(data, f"y_{name}"))
        for name in ("train", "val", "test")
    }
    accept = splits["val"] if config.accept_split == "val" else None
    params = network_params(model, x, y, splits, pool, accept)
    mask_key, state_key = jax.random.split(key)
    init = (
        ones_masks(model)
        if config.init_mask == "ones"
        else random_masks(mask_key, model)
    )
    state = initial_state(state_key, flatten_masks(init))
    with Driver(
        config.sweeps,
        desc=f"{config.solver.name} sweeps",
        progress=progress,
        loggers=loggers,
        checkpoints=checkpoints,
    ) as driver:
        out = driver.run(
            sweep,
            params,
            state,
            config.sweeps,
            k=config.k,
            stage="network",
            select_on="val_cost",
            patience=config.patience,
        )
    info = out.info
    resources = dict(solver.resources)
    resources.update(groups=grouping.num_groups, group_size=grouping.k)
    groups = {
        name: np.asarray(v)
        for name, v in info._asdict().items()
        if name not in ("cost", "metrics", "real")
    }
    return Selection(
        masks=unflatten_masks(out.state.flat, grouping.shapes),
        grouping=grouping,
        history=out.history,
        groups=groups,
        optimum_rate=out.optimum_rate,
        top1_optimum_rate=out.top1_optimum_rate,
        nontrivial_optimum_rate=out.nontrivial_optimum_rate,
        lookups=out.lookups,
        landscape_evals=out.landscape_evals,
        oracle_calls=out.oracle_calls,
        shots=out.shots,
        entanglement=_entanglement(np.asarray(info.entropy), grouping),
        resources=resources,
        compile_s=out.compile_s,
        run_s=out.run_s,
        best_sweep=out.best_sweep,
        landscape_samples=int(config.batch_samples or len(y)),
    )


def _entanglement(entropy: np.ndarray, grouping: Grouping) -> dict | None:
    """Mean/max half-cut entropy over all groups and the mean per network layer."""
    if np.isnan(entropy).all():
        return None
    per_layer = [
        float(np.mean(entropy[start:stop])) if stop > start else None
        for start, stop in grouping.layer_slices
    ]
    return {
        "mean": float(np.mean(entropy)),
        "max": float(np.max(entropy)),
        "per_layer": per_layer,
    }


def group_landscapes(
    model: Model, data, config: SelectConfig, masks: Masks, groups
) -> np.ndarray:
    """Exact landscapes of some groups against a given mask (e.g. the selected one).

    The landscape of group ``g`` is the cost on ``config``'s cost sample of all
    2^K settings of its bits, every other bit held at ``masks`` (the same
    :class:`qselax.landscapes.Landscape` a selection's sweeps use, through its
    ``prepare`` and ``costs``, so with ``config.prune_penalty`` each entry includes
    the group's part of the penalty).  Subsampled runs (``config.batch_samples = M``)
    get exact landscapes on the first M samples of the cost sample.

    Args:
        model: the maskable network.
        data: the :class:`qselax.data.Dataset` the selection ran on.
        config: the selection's settings (grouping, K, cost and its split).
        masks: the mask pytree to hold the other bits at.
        groups: ``(n,)`` group ids of ``config``'s grouping.

    Returns:
        ``(n, 2^K)`` float32 costs, row ``i`` for ``groups[i]``.

    Raises:
        ValueError: a group id outside the grouping (or what :func:`plan` raises).

    Example:
        >>> import qselax
        >>> from qselax.networks import ones_masks
        >>> data = qselax.load_dataset("iris", seed=0)
        >>> model = qselax.make_model("mlp", data.feature_shape, 3, hidden=(8,))
        >>> cfg = SelectConfig(solver="exhaustive", k=4)
        >>> group_landscapes(model, data, cfg, ones_masks(model), [0, 13]).shape
        (2, 16)
    """
    if config.batch_samples is not None:
        cap = min(config.cost_samples or config.batch_samples, config.batch_samples)
        config = dataclasses.replace(config, batch_samples=None, cost_samples=cap)
    grouping, landscape, _, (x, y), _ = plan(model, data, config)
    groups = np.asarray(groups, np.int64).reshape(-1)
    bad = groups[(groups < 0) | (groups >= grouping.num_groups)]
    if bad.size:
        raise ValueError(
            f"group ids {bad.tolist()} are outside the {grouping.num_groups} groups"
        )
    params = network_params(model, x, y)
    flat = jnp.asarray(flatten_masks(masks), jnp.float32)
    # Segments hold the grouping's groups in order: segment i is ids [lo, hi).
    bounds = np.cumsum([0] + [s.num_groups for s in landscape.segments])
    out = np.zeros((groups.size, 2**landscape.k), np.float32)
    for i, segment in enumerate(landscape.segments):
        rows = np.flatnonzero((groups >= bounds[i]) & (groups < bounds[i + 1]))
        if rows.size:
            local = groups[rows] - bounds[i]
            arrays = {n: jnp.asarray(a[local]) for n, a in segment.arrays.items()}
            costs = jax.jit(
                lambda p, f, a, i=i: landscape.costs(
                    p, f, landscape.prepare(p, f), i, a
                )
            )
            out[rows] = np.asarray(costs(params, flat, arrays))
    return out


def _spread_groups(grouping: Grouping, num: int) -> np.ndarray:
    """``num`` group ids shared as evenly as possible between the layers with
    groups, evenly spaced within each layer."""
    slices = [(a, b) for a, b in grouping.layer_slices if b > a]
    counts = [0] * len(slices)
    i = 0
    while sum(counts) < min(num, grouping.num_groups):
        a, b = slices[i % len(slices)]
        if counts[i % len(slices)] < b - a:
            counts[i % len(slices)] += 1
        i += 1
    ids = [
        np.round(np.linspace(a, b - 1, c)).astype(np.int64)
        for (a, b), c in zip(slices, counts, strict=True)
        if c
    ]
    return np.concatenate(ids)


def landscape_sample(
    model: Model, data, config: SelectConfig, selection: Selection, num: int = 8
) -> dict[str, np.ndarray]:
    """The landscapes of ``num`` groups at a selection's final mask, for figures.

    The groups are shared between the network's layers and evenly spaced within
    each.  Each landscape is exact at the final mask (:func:`group_landscapes`),
    so its entry at ``kept`` is the final mask's cost for every group.  ``chosen``
    is the solver's answer in the kept sweep, made against the mask of that
    moment; where later groups changed since, it need not be this landscape's
    minimum even for ``exhaustive``.

    Args:
        model: the maskable network of the selection.
        data: its dataset.
        config: its settings.
        selection: what :func:`select` returned.
        num: how many groups (all where the grouping has fewer).

    Returns:
        ``{"group": (n,), "layer": (n,), "landscapes": (n, 2^K), "chosen": (n,),
        "kept": (n,), "optimum": (n,), "k": ()}``: group ids, their network
        layer, the costs, and three configuration indices (bit 0 most
        significant): the solver's choice, the final mask's setting and the
        landscape's argmin.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be an integer >= 1, got {num!r}")
    grouping = selection.grouping
    ids = _spread_groups(grouping, num)
    lands = group_landscapes(model, data, config, selection.masks, ids)
    flat = flatten_masks(selection.masks)
    kept = bit_index(gather_bits(flat, grouping.index[ids], grouping.valid[ids]))
    starts = np.asarray([a for a, _ in grouping.layer_slices])
    stops = np.asarray([b for _, b in grouping.layer_slices])
    layer = np.asarray([np.flatnonzero((starts <= g) & (g < stops))[0] for g in ids])
    return {
        "group": ids,
        "layer": layer.astype(np.int64),
        "landscapes": lands,
        "chosen": np.asarray(selection.groups["chosen"])[ids].astype(np.int64),
        "kept": np.asarray(kept, np.int64),
        "optimum": np.argmin(lands, axis=-1).astype(np.int64),
        "k": np.asarray(grouping.k, np.int64),
    }
