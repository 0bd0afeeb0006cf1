"""Plumbing shared by the experiment scripts ``experiments/<name>/main.py``.

Every script takes ``--smoke`` (seconds-long run on tiny settings, written to a
temporary directory unless ``--out`` names one; never to ``results/``), ``--table``
(print the README's tables from the raw ``results/*.jsonl``, or from ``--out``) and
``--out DIR`` (where records go; default the experiment's ``results/``).  Scripts
with a README figure also take ``--plot``: it draws the figure from the same records
with :mod:`qselax.plots` into ``figures/`` (``--out``: into ``DIR/figures``).
Records are JSON lines, one dict per line.  A script imports this module with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import common
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def parser(main_file: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--smoke``, ``--table`` and ``--out``."""
    p = argparse.ArgumentParser(
        description=(doc or "").strip().split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run on tiny settings (into a temporary --out)",
    )
    p.add_argument(
        "--table",
        action="store_true",
        help="print the README's tables from the raw results and exit",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"results directory (default {_rel(results_dir(main_file))}; "
        "--smoke: a new temporary directory)",
    )
    return p


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def results_dir(main_file: str) -> Path:
    """The experiment's committed raw results: ``<folder>/results``."""
    return Path(main_file).resolve().parent / "results"


def smoke_jax() -> None:
    """Smoke runs compile far more than they compute: trade XLA optimisation for
    compile time (results are the same computation, just slower code)."""
    import jax

    jax.config.update("jax_disable_most_optimizations", True)


def out_dir(args: argparse.Namespace, main_file: str) -> Path:
    """Where this run writes (created): ``--out``, a temp dir for smoke, results/."""
    if args.out:
        path = Path(args.out)
    elif args.smoke:
        path = Path(tempfile.mkdtemp(prefix=Path(main_file).parent.name + "-smoke-"))
    else:
        path = results_dir(main_file)
    path.mkdir(parents=True, exist_ok=True)
    return path


def table_dir(args: argparse.Namespace, main_file: str) -> Path:
    """The directory ``--table`` reads: ``--out`` if given, else results/."""
    return Path(args.out) if args.out else results_dir(main_file)


def figures_dir(args: argparse.Namespace, main_file: str) -> Path:
    """Where ``--plot`` draws the README figures (created): ``<--out>/figures``
    where ``--out`` is given, else the experiment's committed ``figures/``."""
    base = Path(args.out) if args.out else Path(main_file).resolve().parent
    path = base / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def jsonl_line(record: dict) -> str:
    """One record as one JSON line (NaN as in ``json.dumps``)."""
    return json.dumps(record) + "\n"


def write_jsonl(path: Path, records: Iterable[dict], append: bool = False) -> None:
    """Writes (or appends) records, one JSON object per line."""
    with open(path, "a" if append else "w") as f:
        for record in records:
            f.write(jsonl_line(record))


def read_jsonl(path: Path) -> list[dict]:
    """The records of one JSONL file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_results(directory: Path) -> dict[str, list[dict]]:
    """``{file stem: records}`` of every ``*.jsonl`` in ``directory``, by name.

    Exits with a message when there is none, so that ``--table`` never prints an
    empty table.
    """
    files = sorted(Path(directory).glob("*.jsonl"))
    if not files:
        sys.exit(f"no *.jsonl results in {directory}")
    return {f.stem: read_jsonl(f) for f in files}


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; cells are printed with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_std(values: Iterable[float], fmt: str = "{:.3f}") -> str:
    """``mean ± std`` (population std) of ``values`` in ``fmt``."""
    v = np.asarray(list(values), np.float64)
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}"
