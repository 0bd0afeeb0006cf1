"""Loggers for the driver's hook: watch a long run while it goes.

A logger is any callable that takes a history record (:mod:`qselax.driver`): the
driver calls it after every sweep, or block for distillation, as netket's drivers
call their ``out=`` loggers.  :class:`JsonLog` appends one JSON line per record
(``qselax run`` writes ``metrics.jsonl`` with it); :class:`TensorBoardLog` writes
the numbers as TensorBoard scalars through tensorboardX (the ``tensorboard``
extra), so ``tensorboard --logdir RUN_DIR/tensorboard`` plots a run as it goes.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> log = JsonLog(path, solver="vqe")
    >>> log({"stage": "network", "sweep": 1, "cost": 0.5})
    >>> json.loads(path.read_text())
    {'solver': 'vqe', 'stage': 'network', 'sweep': 1, 'cost': 0.5}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["JsonLog", "TensorBoardLog"]


class JsonLog:
    """Appends each record as one JSON line, with ``extra`` fields first.

    Args:
        path: the JSON-lines file (appended to; its folder must exist).
        **extra: fields put before each record's (e.g. ``solver="vqe"``).
    """

    def __init__(self, path: str | Path, **extra):
        self.path, self.extra = Path(path), extra

    def __call__(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({**self.extra, **record}) + "\n")


class TensorBoardLog:
    """Writes each record's numbers as TensorBoard scalars (tensorboardX).

    Every numeric field becomes the scalar ``<prefix>/<field>`` (``stage/field``
    when records carry a ``stage`` other than the prefix), at a step that counts
    the records this logger has seen, so stages of a distillation follow one
    another on one axis.

    Args:
        logdir: the folder of the event files.
        prefix: the scalars' group (e.g. the solver's name).

    Raises:
        ImportError: tensorboardX is not installed (``pip install
            'qselax[tensorboard]'``).
    """

    def __init__(self, logdir: str | Path, prefix: str):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError(
                "TensorBoard logging needs tensorboardX: pip install "
                "'qselax[tensorboard]'"
            ) from err
        self._open = lambda: SummaryWriter(logdir=str(logdir))
        self.writer = None
        self.prefix, self.step = prefix, 0

    def __call__(self, record: dict) -> None:
        if self.writer is None:  # (re)opened after close: a new event file
            self.writer = self._open()
        self.step += 1
        stage = record.get("stage")
        tag = self.prefix if stage in (None, self.prefix) else f"{self.prefix}/{stage}"
        for name, value in record.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(f"{tag}/{name}", value, self.step)
        self.writer.flush()

    def close(self) -> None:
        """Writes out and closes the event file (the driver calls it at its end;
        a later record opens a new file)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
