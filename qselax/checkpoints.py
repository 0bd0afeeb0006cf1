"""Resumable runs: an orbax checkpoint of the driver's loop after every sweep.

:class:`Checkpoints` is handed to :class:`qselax.driver.Driver` (``checkpoints=``).
After every sweep of every stage the driver saves, with orbax, everything its loop
carries: the selection state (the mask, the PRNG key and the sweep count, and any
solver state a sweep carries), the state of the best sweep so far, the history
records, the per-group optimum flags behind the optimum rates, the best sweep's
per-group outcome and the seconds spent.  A driver given the same directory again
finds each stage's last checkpoint: a finished stage is returned as it was (its
history replayed to the loggers), an unfinished one continues from its last sweep.
As every sweep's randomness comes from the key in the state, a resumed run computes
the same masks and numbers as an uninterrupted one.

Each stage has its own orbax ``CheckpointManager`` in ``directory/<stage>`` that
keeps only the latest step; orbax writes a step to a temporary folder and renames
it when complete, so a run killed mid-save leaves the previous step intact.

Example:
    >>> import tempfile, jax, numpy as np
    >>> from qselax.driver import Driver, initial_state
    >>> from qselax.nk import NKParams, nk_landscape
    >>> from qselax.solvers import make_solver
    >>> from qselax.sweeps import make_sweep
    >>> tables = np.arange(16, dtype=np.float32).reshape(4, 4) % 3
    >>> wiring = np.array([[0, 1], [1, 2], [2, 3], [3, 0]], np.int32)
    >>> sweep = make_sweep(nk_landscape(wiring, 4, 2), make_solver("exhaustive", 2))
    >>> state = initial_state(jax.random.key(0), np.ones(4, np.float32))
    >>> folder = tempfile.mkdtemp()
    >>> with Driver(2, progress=False, checkpoints=Checkpoints(folder)) as d:
    ...     first = d.run(sweep, NKParams(tables, wiring), state, 2, k=2)
    >>> with Driver(2, progress=False, checkpoints=Checkpoints(folder)) as d:
    ...     again = d.run(sweep, NKParams(tables, wiring), state, 2, k=2)
    >>> again.history == first.history, Checkpoints(folder).stages()
    (True, ['select'])
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["Checkpoints", "StageCheckpoint"]


class StageCheckpoint(NamedTuple):
    """A stage's loop as the driver saved it after its last finished sweep.

    Attributes:
        sweep: sweeps done.
        done: the stage finished (all sweeps, or stopped early).
        state: the selection state after ``sweep`` sweeps.
        best_state: the state of ``best_sweep``.
        best: the lowest ``select_on`` value so far (``None`` without one).
        best_sweep: the sweep whose state is ``best_state``.
        history: one record per sweep done.
        info: the best sweep's per-group outcome (a dict of ``SweepInfo`` fields).
        flags: ``optimal``, ``top1`` and ``nontrivial`` flags of the real groups of
            every sweep done, concatenated.
        groups: real groups of the stage.
        compile_s: seconds the first compile took.
        run_s: seconds of the sweeps done.
    """

    sweep: int
    done: bool
    state: Any
    best_state: Any
    best: float | None
    best_sweep: int
    history: list[dict]
    info: dict
    flags: dict
    groups: int
    compile_s: float
    run_s: float


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_saved(state) -> tuple[list, list]:
    """The state's leaves as NumPy (keys as their raw data) and the key impls."""
    leaves = jax.tree.leaves(state)
    impls = [str(jax.random.key_impl(x)) if _is_key(x) else None for x in leaves]
    arrays = [np.asarray(jax.random.key_data(x) if _is_key(x) else x) for x in leaves]
    return arrays, impls


def _from_saved(like, arrays: list, impls: list):
    """The inverse of :func:`_to_saved`, shaped as the pytree ``like``."""
    leaves = [
        jax.random.wrap_key_data(np.asarray(a), impl=impl)
        if impl is not None
        else jax.numpy.asarray(a)
        for a, impl in zip(arrays, impls, strict=True)
    ]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"{name!r} cannot name a checkpoint folder")


class Checkpoints:
    """The checkpoints of one run's stages, in one directory.

    Args:
        directory: where the stages' checkpoints live (created on first save).

    Raises:
        ValueError: ``directory`` exists and is not a directory.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"checkpoint path {self.directory} is not a directory")
        self._managers: dict[str, ocp.CheckpointManager] = {}

    def _manager(self, stage: str) -> ocp.CheckpointManager:
        _check_name(stage)
        if stage not in self._managers:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=1,
                create=True,
                enable_async_checkpointing=False,
                cleanup_tmp_directories=True,
            )
            self._managers[stage] = ocp.CheckpointManager(
                self.directory / stage, options=options
            )
        return self._managers[stage]

    def sub(self, name: str) -> Checkpoints:
        """The checkpoints of a part of the run (e.g. one solver) in ``name/``."""
        _check_name(name)
        return Checkpoints(self.directory / name)

    def save_tree(self, name: str, tree) -> None:
        """Saves a pytree of arrays computed once (e.g. a tabulation) as ``name``."""
        manager = self._manager(name)
        manager.save(
            1, args=ocp.args.StandardSave(jax.tree.map(np.asarray, tree)), force=True
        )
        manager.wait_until_finished()

    def restore_tree(self, name: str, like):
        """The pytree saved as ``name`` shaped as ``like`` (``None`` if not saved).

        Raises:
            ValueError: the saved arrays do not have ``like``'s shapes.
        """
        if not (self.directory / name).is_dir():
            return None
        manager = self._manager(name)
        if manager.latest_step() is None:
            return None
        tree = manager.restore(
            manager.latest_step(), args=ocp.args.StandardRestore(like)
        )
        if [np.shape(x) for x in jax.tree.leaves(tree)] != [
            np.shape(x) for x in jax.tree.leaves(like)
        ]:
            raise ValueError(f"the saved {name!r} in {self.directory} has other shapes")
        return tree

    def stages(self) -> list[str]:
        """Names of the stages with a saved checkpoint, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.is_dir() and any(c.name.isdigit() for c in p.iterdir())
        )

    def save(self, stage: str, saved: StageCheckpoint) -> None:
        """Saves ``stage``'s loop after sweep ``saved.sweep`` (replacing the last)."""
        state, state_impls = _to_saved(saved.state)
        best, best_impls = _to_saved(saved.best_state)
        arrays = {
            "state": state,
            "best_state": best,
            "info": jax.tree.map(np.asarray, saved.info),
            "flags": {k: np.asarray(v) for k, v in saved.flags.items()},
        }
        meta = {
            "sweep": saved.sweep,
            "done": saved.done,
            "best": saved.best,
            "best_sweep": saved.best_sweep,
            "history": saved.history,
            "groups": saved.groups,
            "compile_s": saved.compile_s,
            "run_s": saved.run_s,
            "state_impls": state_impls,
            "best_impls": best_impls,
        }
        manager = self._manager(stage)
        manager.save(
            saved.sweep,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        manager.wait_until_finished()

    def restore(self, stage: str, like) -> StageCheckpoint | None:
        """``stage``'s last checkpoint, its states shaped as ``like``; else ``None``.

        Raises:
            ValueError: the saved state does not have ``like``'s leaves (another
                configuration's checkpoint).
        """
        if not (self.directory / stage).is_dir():
            return None
        manager = self._manager(stage)
        step = manager.latest_step()
        if step is None:
            return None
        out = manager.restore(
            step,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()
            ),
        )
        arrays, meta = out["arrays"], out["meta"]
        want = [tuple(np.shape(x)) for x in jax.tree.leaves(like)]
        # (raw key data has a trailing axis the key array has not)
        if len(arrays["state"]) != len(want) or any(
            tuple(np.shape(a))[: len(w)] != w
            for a, w in zip(arrays["state"], want, strict=True)
        ):
            raise ValueError(
                f"the checkpoint of stage {stage!r} in {self.directory} holds a "
                "state of other shapes: it belongs to another configuration"
            )
        return StageCheckpoint(
            sweep=int(meta["sweep"]),
            done=bool(meta["done"]),
            state=_from_saved(like, arrays["state"], meta["state_impls"]),
            best_state=_from_saved(like, arrays["best_state"], meta["best_impls"]),
            best=meta["best"],
            best_sweep=int(meta["best_sweep"]),
            history=list(meta["history"]),
            info=arrays["info"],
            flags=dict(arrays["flags"]),
            groups=int(meta["groups"]),
            compile_s=float(meta["compile_s"]),
            run_s=float(meta["run_s"]),
        )

    def clear(self) -> None:
        """Deletes every checkpoint in the directory (a fresh start)."""
        self.close()
        if self.directory.exists():
            shutil.rmtree(self.directory)

    def close(self) -> None:
        """Closes the orbax managers (the directory stays)."""
        for manager in self._managers.values():
            manager.close()
        self._managers.clear()
