"""The selection driver: groups, landscapes, a solver and sweeps on a frozen network.

:func:`select` is the Python entry point of a local quantum neuron selection run::

    sel = select(key, model, data, SelectConfig(solver="vqe", k=8, sweeps=3))
    sel.masks, sel.optimum_rate, sel.history

It builds everything static at set-up (grouping, landscape plan with its memory
check, solver), compiles one sweep ahead of time (``compile_s``), then runs the
sweeps (``run_s``) with a progress bar.  Selection only ever sees the validation split
(the cost C(x)) and reports training accuracy; the test split is never touched here.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from qselax.groups import Grouping, flatten_masks, make_grouping, unflatten_masks
from qselax.landscapes import COSTS, METHODS, make_engine
from qselax.networks import (
    Masks,
    Model,
    accuracy,
    apply_masked,
    cross_entropy,
    ones_masks,
    random_masks,
)
from qselax.solvers import SOLVERS, make_solver
from qselax.sweeps import (
    ORACLES,
    SWEEP_MODES,
    SelectionState,
    attains,
    make_sweep,
)

INIT_MASKS = ("ones", "random")


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    """Static settings of one selection run (hashable; never traced).

    Attributes:
        grouping: ``fan_in``, ``block`` or ``neuron``.
        k: bits (qubits) per group.
        solver: a name in :data:`qselax.solvers.SOLVERS`.
        solver_options: ``((name, value), ...)`` passed to the solver factory.
        sweeps: number of sweeps.
        mode: ``parallel`` or ``sequential``.
        block_size: groups per block in sequential sweeps.
        cost: ``ce`` (cross-entropy) or ``error`` (0-1 error) on the validation split.
        method: landscape evaluator (``auto``, ``rank1``, ``suffix``, ``naive``).
        memory_mb: memory budget of one landscape chunk.
        init_mask: ``ones`` (start from the full random network) or ``random``
            (Bernoulli(1/2)).
        val_samples: use only the first this-many validation samples (None: all).
        oracle: where finite-shot solvers get sampled configurations' costs:
            ``landscape`` (read off the exact landscape) or ``network`` (the
            masked network evaluated on them); see :func:`qselax.sweeps.make_sweep`.
    """

    grouping: str = "fan_in"
    k: int = 8
    solver: str = "vqe"
    solver_options: tuple[tuple[str, Any], ...] = ()
    sweeps: int = 3
    mode: str = "parallel"
    block_size: int = 1
    cost: str = "ce"
    method: str = "auto"
    memory_mb: float = 512.0
    init_mask: str = "ones"
    val_samples: int | None = None
    oracle: str = "landscape"

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first bad field."""
        choices = {
            "solver": tuple(SOLVERS),
            "mode": SWEEP_MODES,
            "cost": COSTS,
            "method": METHODS,
            "init_mask": INIT_MASKS,
            "oracle": ORACLES,
        }
        for name, options in choices.items():
            if getattr(self, name) not in options:
                raise ValueError(
                    f"{name} must be one of {options}, got {getattr(self, name)!r}"
                )
        if not isinstance(self.sweeps, int) or self.sweeps < 1:
            raise ValueError(f"sweeps must be an integer >= 1, got {self.sweeps!r}")
        if self.val_samples is not None and self.val_samples < 1:
            raise ValueError(f"val_samples must be >= 1, got {self.val_samples}")


class Selection(NamedTuple):
    """The result of a selection run.

    Attributes:
        masks: the selected mask pytree.
        grouping: the groups used.
        history: one dict per sweep (validation cost and accuracy, training
            accuracy, optimum rates, accepted groups, look-ups, seconds).
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


def select(
    key: jax.Array,
    model: Model,
    data,
    config: SelectConfig = SelectConfig(),
    *,
    progress: bool = True,
) -> Selection:
    """Selects masks of a frozen random network with local K-bit solvers.

    Args:
        key: PRNG key (initial mask, solver randomness).
        model: a maskable network; its weights are never changed.
        data: a :class:`qselax.data.Dataset` (validation split: cost; train split:
            reported accuracy).
        config: static settings.
        progress: show a progress bar over sweeps.

    Returns:
        A :class:`Selection`.

    Raises:
        ValueError: bad settings, a grouping that does not fit the model, or a
            landscape chunk over the memory budget, all before any heavy work.
    """
    config.validate()
    grouping = make_grouping(config.grouping, model, config.k)
    x_val, y_val = np.asarray(data.x_val), np.asarray(data.y_val)
    if config.val_samples is not None:
        x_val, y_val = x_val[: config.val_samples], y_val[: config.val_samples]
    x_train, y_train = np.asarray(data.x_train), np.asarray(data.y_train)
    engine = make_engine(
        model,
        grouping,
        num_samples=x_val.shape[0],
        feature_shape=tuple(x_val.shape[1:]),
        cost=config.cost,
        method=config.method,
        memory_mb=config.memory_mb,
    )
    solver = make_solver(config.solver, config.k, **dict(config.solver_options))
    sweep = make_sweep(
        model,
        grouping,
        engine,
        solver,
        mode=config.mode,
        block_size=config.block_size,
        cost=config.cost,
        oracle=config.oracle,
    )
    graphdef, weights = nnx.split(model)

    @jax.jit
    def step(weights, state, x_val, y_val, x_train, y_train):
        return sweep(
            nnx.merge(graphdef, weights), state, x_val, y_val, x_train, y_train
        )

    mask_key, state_key = jax.random.split(key)
    init = (
        ones_masks(model)
        if config.init_mask == "ones"
        else random_masks(mask_key, model)
    )
    state = SelectionState(flatten_masks(init), state_key, jnp.zeros((), jnp.int32))
    args = tuple(map(jnp.asarray, (x_val, y_val, x_train, y_train)))

    start = time.perf_counter()
    compiled = step.lower(weights, state, *args).compile()
    compile_s = time.perf_counter() - start

    history, solves = [], []
    run_s = 0.0
    bar = tqdm(
        range(config.sweeps), desc=f"{config.solver} sweeps", disable=not progress
    )
    for i in bar:
        start = time.perf_counter()
        state, info = compiled(weights, state, *args)
        info = jax.device_get(info)
        seconds = time.perf_counter() - start
        run_s += seconds
        nontrivial = _nontrivial(info)
        solves.append(
            (
                info.optimal,
                info.top1_optimal,
                nontrivial,
                info.lookups,
                info.oracle_calls,
                info.shots,
            )
        )
        record = {
            "sweep": i + 1,
            "val_cost": float(info.val_cost),
            "val_accuracy": float(info.val_accuracy),
            "train_accuracy": float(info.train_accuracy),
            "optimum_rate": float(np.mean(info.optimal)),
            "top1_optimum_rate": float(np.mean(info.top1_optimal)),
            "accepted": int(np.sum(info.accepted)),
            "oracle_calls": int(np.sum(info.oracle_calls)),
            "shots": int(np.sum(info.shots)),
            "mean_entropy": _mean_or_none(info.entropy),
            "seconds": seconds,
        }
        history.append(record)
        bar.set_postfix(
            val_cost=f"{record['val_cost']:.4f}",
            val_acc=f"{record['val_accuracy']:.3f}",
            opt=f"{record['optimum_rate']:.2f}",
        )
    optimal = np.concatenate([s[0] for s in solves])
    top1 = np.concatenate([s[1] for s in solves])
    nontrivial = np.concatenate([s[2] for s in solves])
    lookups = int(sum(int(np.sum(s[3])) for s in solves))
    oracle_calls = int(sum(int(np.sum(s[4])) for s in solves))
    shots = int(sum(int(np.sum(s[5])) for s in solves))
    resources = dict(solver.resources)
    resources.update(groups=grouping.num_groups, group_size=grouping.k)
    return Selection(
        masks=unflatten_masks(state.flat, grouping.shapes),
        grouping=grouping,
        history=history,
        groups={name: np.asarray(v) for name, v in info._asdict().items()},
        optimum_rate=float(np.mean(optimal)),
        top1_optimum_rate=float(np.mean(top1)),
        nontrivial_optimum_rate=float(np.mean(optimal[nontrivial]))
        if nontrivial.any()
        else 1.0,
        lookups=lookups,
        landscape_evals=int(config.sweeps * grouping.num_groups * 2**grouping.k),
        oracle_calls=oracle_calls,
        shots=shots,
        entanglement=_entanglement(np.asarray(info.entropy), grouping),
        resources=resources,
        compile_s=compile_s,
        run_s=run_s,
    )


def _nontrivial(info) -> np.ndarray:
    """Groups whose landscape is not flat (a flat one is solved by any answer)."""
    return ~np.asarray(attains(info.max_cost, info.min_cost))


def _mean_or_none(values) -> float | None:
    values = np.asarray(values)
    return None if np.isnan(values).all() else float(np.nanmean(values))


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
