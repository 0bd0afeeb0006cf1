"""The one ``result.json`` schema of every method, and its atomic writer.

Every ``qselax run`` writes ``DIR/result.json`` with the same top-level keys:

* identity: ``schema`` (this layout's version, :data:`SCHEMA`), ``qselax_version``,
  ``method`` (``direct``, ``distill`` or ``nk-esn``), ``seed``, ``solver`` (the
  main solver: the first of ``--solver``);
* ``config``: the resolved settings that apply to this method only;
* the main solver's :data:`COMMON_KEYS`, repeated at the top so a script can read
  ``result["test_accuracy"]`` whatever the method;
* ``solvers``: for every solver, its :data:`COMMON_KEYS`, its ``history`` (the
  driver's records, :mod:`qselax.driver`) and its method-specific keys under the
  method's name (``solvers[name]["distill"]["block_losses"]``);
* ``references``: baselines scored on the same data (``random``: the unmasked
  network; ``dense``: the trained twin; ``teacher``; for nk-esn the exact
  ``exhaustive`` and ``dp`` rows), each with the accuracy keys it has;
* ``dataset`` (``None`` for nk-esn), ``model``, ``platform``;
* the method's own top-level keys under its name (``result["nk-esn"]``).

Accuracies are fractions in ``[0, 1]``.  nk-esn has no classification task: its
``test_accuracy`` is the main row's top-committee generalisation score / 625,
``train_accuracy`` its training-start damping fitness, ``val_accuracy`` ``None``.
Numbers not measured separately (e.g. nk-esn's ``compile_s``) are ``None``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

__all__ = [
    "COMMON_KEYS",
    "SCHEMA",
    "TOP_KEYS",
    "check_result",
    "platform_info",
    "write_atomic",
    "write_json",
]

SCHEMA = 1
COMMON_KEYS = (
    "test_accuracy",
    "train_accuracy",
    "val_accuracy",
    "optimum_rate",
    "top1_optimum_rate",
    "nontrivial_optimum_rate",
    "lookups",
    "landscape_evals",
    "oracle_calls",
    "shots",
    "resources",
    "compile_s",
    "run_s",
)
TOP_KEYS = (
    "schema",
    "qselax_version",
    "method",
    "seed",
    "solver",
    "config",
    *COMMON_KEYS,
    "solvers",
    "references",
    "dataset",
    "model",
    "platform",
)


def platform_info() -> dict:
    """Versions and the machine a result was measured on."""
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def check_result(result: dict) -> dict:
    """Raises ``ValueError`` where ``result`` breaks the schema; returns it.

    Checks the top-level keys, the common keys of every solver and of the top
    level (the main solver's), the method's own section, and that accuracies are
    fractions.
    """
    missing = [k for k in TOP_KEYS if k not in result]
    if missing:
        raise ValueError(f"result.json misses top-level keys {missing}")
    method = result["method"]
    if method not in result:
        raise ValueError(f"result.json misses the method's own section {method!r}")
    if result["solver"] not in result["solvers"]:
        raise ValueError(f"main solver {result['solver']!r} has no entry")
    for name, entry in result["solvers"].items():
        gone = [k for k in (*COMMON_KEYS, "history", method) if k not in entry]
        if gone:
            raise ValueError(f"solvers[{name!r}] misses {gone}")
        for key in ("test_accuracy", "train_accuracy", "val_accuracy"):
            value = entry[key]
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"solvers[{name!r}][{key!r}] = {value} not in [0, 1]")
    main = result["solvers"][result["solver"]]
    for key in COMMON_KEYS:
        if result[key] != main[key]:
            raise ValueError(f"top-level {key!r} is not the main solver's")
    return result


def write_atomic(path: Path, write: Callable) -> None:
    """Writes through a temporary file in the same directory, then renames, so a
    reader never sees a half-written file and a failed write leaves nothing."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: Path, value) -> None:
    """``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, default=_json_default).encode()
    write_atomic(path, lambda f: f.write(text))
