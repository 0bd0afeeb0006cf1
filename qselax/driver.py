"""The one driver: sweeps (and stages) of a compiled sweep, with history and hooks.

Every method runs its sweeps through :class:`Driver`: direct selection is one stage
(the whole network), distillation one stage per student block, NK shared mode one
stage.  For each stage the driver compiles the sweep once ahead of time
(``compile_s``), runs it ``sweeps`` times (``run_s``), keeps one history record per
sweep, moves one progress bar over all stages, and hands every record to the
``loggers`` as it is made (the hook where metric writers plug in, like netket's
``driver.run(n, out=loggers, callback=...)``).  Given :class:`qselax.checkpoints.
Checkpoints`, it saves its loop after every sweep and resumes each stage from its
last checkpoint: a finished stage is returned as saved (its history replayed to the
loggers), an unfinished one continues where it stopped.

A history record holds ``stage``, ``sweep``, ``cost`` (the landscape's total cost
after the sweep), the landscape's ``metrics`` (e.g. ``val_accuracy``),
``optimum_rate`` and ``top1_optimum_rate`` of the sweep's solves, ``accepted``
groups, ``lookups``, ``oracle_calls``, ``shots``, ``mean_entropy``,
``optimizer_steps`` (mean optimiser steps per group; 0 without an optimiser) and
``seconds``.

Example:
    >>> import jax, numpy as np
    >>> from qselax.nk import NKParams, nk_landscape
    >>> from qselax.solvers import make_solver
    >>> from qselax.sweeps import make_sweep
    >>> tables = np.arange(16, dtype=np.float32).reshape(4, 4) % 3
    >>> wiring = np.array([[0, 1], [1, 2], [2, 3], [3, 0]], np.int32)
    >>> land = nk_landscape(wiring, 4, 2)
    >>> params = NKParams(tables, wiring)
    >>> sweep = make_sweep(land, make_solver("exhaustive", 2))
    >>> state = initial_state(jax.random.key(0), np.ones(4, np.float32))
    >>> with Driver(2, desc="nk", progress=False) as driver:
    ...     out = driver.run(sweep, params, state, 2, k=2)
    >>> [h["sweep"] for h in out.history], out.optimum_rate
    ([1, 2], 1.0)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from qselax.checkpoints import Checkpoints, StageCheckpoint
from qselax.sweeps import SelectionState, SweepInfo, attains

__all__ = ["Driver", "Logger", "StageResult", "initial_state", "sweep_record"]

Logger = Callable[[dict], None]


class StageResult(NamedTuple):
    """What :meth:`Driver.run` measured over one stage's sweeps.

    Attributes:
        name: the stage's name.
        state: the final :class:`qselax.sweeps.SelectionState`.
        history: one record per sweep (module docstring).
        info: the ``best_sweep``'s :class:`qselax.sweeps.SweepInfo` (NumPy, padding
            groups dropped).
        groups: real groups of the stage (padding excluded).
        optimum_rate: fraction of all group solves (every sweep) whose chosen
            configuration attains the group's exhaustive minimum.
        top1_optimum_rate: the same for the single most probable configuration.
        nontrivial_optimum_rate: ``optimum_rate`` over groups whose landscape is
            not flat (a flat landscape is solved by any answer; 1 if none).
        lookups: landscape entries the solver's readout consulted, all sweeps.
        landscape_evals: landscape entries computed, all sweeps (G 2^K a sweep).
        oracle_calls: coherent oracle uses (Grover iterations), all sweeps.
        shots: circuit executions measured, all sweeps.
        compile_s: seconds to compile the sweep.
        run_s: seconds of all sweeps after compilation.
        best_sweep: the sweep whose state is ``state`` (``select_on``), else
            the last.
    """

    name: str
    state: SelectionState
    history: list[dict]
    info: SweepInfo
    groups: int
    optimum_rate: float
    top1_optimum_rate: float
    nontrivial_optimum_rate: float
    lookups: int
    landscape_evals: int
    oracle_calls: int
    shots: int
    compile_s: float
    run_s: float
    best_sweep: int


# Compiled sweeps by (sweep function, argument structure and shapes): a sweep built
# once (e.g. NK shared mode's, cached per wiring and solver) compiles once however
# many seeds run it.
_COMPILED: OrderedDict = OrderedDict()
_MAX_COMPILED = 16


def _compiled(sweep: Callable, params: Any, state: SelectionState):
    leaves, tree = jax.tree.flatten((params, state))
    sig = (sweep, tree, tuple((tuple(x.shape), str(x.dtype)) for x in leaves))
    if sig in _COMPILED:
        _COMPILED.move_to_end(sig)
        return _COMPILED[sig]
    compiled = jax.jit(sweep).lower(params, state).compile()
    _COMPILED[sig] = compiled
    if len(_COMPILED) > _MAX_COMPILED:
        _COMPILED.popitem(last=False)
    return compiled


def initial_state(key: jax.Array, flat) -> SelectionState:
    """A selection's starting state: the mask ``flat (N,)`` as float32 and a key."""
    return SelectionState(jnp.asarray(flat, jnp.float32), key, jnp.zeros((), jnp.int32))


def _real(info: SweepInfo, values) -> np.ndarray:
    return np.asarray(values)[np.asarray(info.real, bool)]


def _mean_or_none(values) -> float | None:
    values = np.asarray(values, np.float64)
    if values.size == 0 or np.isnan(values).all():
        return None
    return float(np.nanmean(values))


def sweep_record(info: SweepInfo, **extra: Any) -> dict:
    """The history record of one sweep (module docstring), ``extra`` keys first."""
    return {
        **extra,
        "cost": float(info.cost),
        **{name: float(v) for name, v in info.metrics.items()},
        "optimum_rate": float(np.mean(_real(info, info.optimal))),
        "top1_optimum_rate": float(np.mean(_real(info, info.top1_optimal))),
        "accepted": int(np.sum(info.accepted)),
        "lookups": int(np.sum(info.lookups)),
        "oracle_calls": int(np.sum(info.oracle_calls)),
        "shots": int(np.sum(info.shots)),
        "mean_entropy": _mean_or_none(_real(info, info.entropy)),
        "optimizer_steps": float(np.mean(_real(info, info.steps))),
    }


def _drop_padding(info: SweepInfo) -> SweepInfo:
    real = np.asarray(info.real, bool)
    if real.all():
        return info
    fields = {
        name: np.asarray(v)[real]
        for name, v in info._asdict().items()
        if name not in ("cost", "metrics")
    }
    return info._replace(**fields)


class Driver:
    """Runs compiled sweeps stage by stage with one progress bar and the loggers.

    Args:
        total_sweeps: sweeps over all stages (the progress bar's length).
        desc: the progress bar's label.
        progress: show the bar.
        loggers: callables given every history record as it is made.
        checkpoints: save every stage after every sweep there, and resume the
            stages already saved there (``None``: no checkpoints).
    """

    def __init__(
        self,
        total_sweeps: int,
        *,
        desc: str = "sweeps",
        progress: bool = True,
        loggers: Sequence[Logger] = (),
        checkpoints: Checkpoints | None = None,
    ):
        self.loggers = tuple(loggers)
        self.checkpoints = checkpoints
        self.bar = tqdm(total=total_sweeps, desc=desc, disable=not progress)

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Closes the progress bar, the checkpoint managers and the loggers that
        have a ``close`` (e.g. a TensorBoard event file, written out)."""
        self.bar.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        for logger in self.loggers:
            if callable(getattr(logger, "close", None)):
                logger.close()

    def _log(self, record: dict, stage: str) -> None:
        for logger in self.loggers:
            logger(record)
        self.bar.update(1)
        self.bar.set_postfix(
            stage=stage,
            cost=f"{record['cost']:.4f}",
            opt=f"{record['optimum_rate']:.2f}",
        )

    def run(
        self,
        sweep: Callable,
        params: Any,
        state: SelectionState,
        sweeps: int,
        *,
        k: int,
        stage: str = "select",
        select_on: str | None = None,
        patience: int | None = None,
    ) -> StageResult:
        """Compiles ``sweep`` once and runs it ``sweeps`` times from ``state``.

        Args:
            sweep: ``(params, state) -> (state, SweepInfo)`` (:func:`make_sweep`).
            params: the landscape's data.
            state: the starting state.
            sweeps: at most this many sweeps.
            k: bits per group (for ``landscape_evals``).
            stage: the stage's name, recorded in every history record.
            select_on: a history key to minimise (e.g. ``"val_cost"``): the
                result's ``state`` is the sweep with its lowest value (the first
                on ties), not necessarily the last.  ``None``: the last sweep.
            patience: with ``select_on``, stop after this many sweeps without a
                new lowest value (early stopping); ``None`` runs every sweep.

        Returns:
            A :class:`StageResult` (``compile_s`` is 0 where the same sweep was
            compiled for the same shapes before).
        """
        if patience is not None and select_on is None:
            raise ValueError("patience needs select_on (the value to watch)")
        init_carry = getattr(sweep, "init_carry", None)
        if state.carry is None and init_carry is not None:
            state = state._replace(carry=init_carry())  # a warm-starting solver's
        params, state = jax.tree.map(
            lambda x: x if isinstance(x, jax.Array) else jnp.asarray(x), (params, state)
        )
        saved = None
        if self.checkpoints is not None:
            saved = self.checkpoints.restore(stage, state)
        if saved is not None:
            for record in saved.history:
                self._log(record, stage)
        if saved is not None and saved.done and not _extends(saved, sweeps, patience):
            self.bar.update(max(sweeps - saved.sweep, 0))
            return _result(stage, saved, k)
        start = time.perf_counter()
        compiled = _compiled(sweep, params, state)
        compile_s = time.perf_counter() - start
        if saved is None:
            saved = StageCheckpoint(
                sweep=0,
                done=False,
                state=state,
                best_state=state,
                best=None,
                best_sweep=0,
                history=[],
                info={},
                flags={name: np.zeros(0, bool) for name in _FLAGS},
                groups=0,
                compile_s=compile_s,
                run_s=0.0,
            )
        state, history = saved.state, list(saved.history)
        best = np.inf if saved.best is None else saved.best
        best_state, best_sweep = saved.best_state, saved.best_sweep
        best_info, flags, run_s = saved.info, dict(saved.flags), saved.run_s
        for i in range(saved.sweep, sweeps):
            start = time.perf_counter()
            state, info = compiled(params, state)
            info = jax.device_get(info)
            seconds = time.perf_counter() - start
            run_s += seconds
            record = sweep_record(info, stage=stage, sweep=i + 1)
            record["seconds"] = seconds
            history.append(record)
            nontrivial = ~np.asarray(attains(info.max_cost, info.min_cost))[info.real]
            new = {
                "optimal": _real(info, info.optimal),
                "top1": _real(info, info.top1_optimal),
                "nontrivial": nontrivial,
            }
            flags = {
                n: np.concatenate([flags[n], np.asarray(v, bool)])
                for n, v in new.items()
            }
            value = None if select_on is None else record[select_on]
            done = i + 1 == sweeps
            if value is None or value < best:
                best, best_state, best_sweep = value, state, i + 1
                best_info = _drop_padding(info)._asdict()
            elif patience is not None and i + 1 - best_sweep >= patience:
                done = True
            saved = StageCheckpoint(
                sweep=i + 1,
                done=done,
                state=state,
                best_state=best_state,
                best=None if best is None or not np.isfinite(best) else float(best),
                best_sweep=best_sweep,
                history=history,
                info=best_info,
                flags=flags,
                groups=int(np.sum(info.real)),
                compile_s=compile_s,
                run_s=run_s,
            )
            if self.checkpoints is not None:
                self.checkpoints.save(stage, saved)
            self._log(record, stage)
            if done:
                self.bar.update(sweeps - i - 1)
                break
        return _result(stage, saved, k)


_FLAGS = ("optimal", "top1", "nontrivial")


def _extends(saved: StageCheckpoint, sweeps: int, patience: int | None) -> bool:
    """Whether a finished stage continues: it ran all of its sweeps (it was not
    stopped early) and more are asked for now."""
    stopped = patience is not None and saved.sweep - saved.best_sweep >= patience
    return saved.sweep < sweeps and not stopped


def _result(stage: str, saved: StageCheckpoint, k: int) -> StageResult:
    """The stage's result from its loop's last saved state."""
    history, flags = saved.history, saved.flags
    optimal, nontrivial = flags["optimal"], flags["nontrivial"]
    return StageResult(
        name=stage,
        state=saved.best_state,
        history=history,
        info=SweepInfo(**saved.info),
        groups=saved.groups,
        optimum_rate=float(np.mean(optimal)),
        top1_optimum_rate=float(np.mean(flags["top1"])),
        nontrivial_optimum_rate=float(np.mean(optimal[nontrivial]))
        if nontrivial.any()
        else 1.0,
        lookups=int(sum(h["lookups"] for h in history)),
        landscape_evals=int(len(history) * saved.groups * 2**k),
        oracle_calls=int(sum(h["oracle_calls"] for h in history)),
        shots=int(sum(h["shots"] for h in history)),
        compile_s=saved.compile_s,
        run_s=saved.run_s,
        best_sweep=saved.best_sweep,
    )
