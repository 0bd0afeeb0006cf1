"""Figures of a run and of the experiments (matplotlib, drawn without a screen).

``qselax plot RUN_DIR`` (:func:`plot_run`) reads what a run wrote and draws every
figure its files allow into ``RUN_DIR/plots/``, as PNG and SVG:

* ``history``: per sweep (per epoch for ``edge-popup``/``supermask``/``dense``),
  the training and validation cost and accuracy, one line per solver; one column
  per stage (distillation: one per student block, whose cost is the block loss);
  NK-ESN: the shared mode's total fitness per sweep;
* ``search``: the optimum rate (and top-1 rate) and the accepted groups per sweep;
* ``kept_fraction``: the kept fraction of every mask layer (``masks_<solver>.npz``);
* ``landscapes_<solver>``: the cost of all 2^K configurations of a few groups at
  the final mask, the solver's choice, the final mask's setting and the optimum
  marked (``landscapes_<solver>.npz`` of direct runs,
  :func:`qselax.selection.landscape_sample`);
* ``entanglement``: the mean half-cut entropy of the final states per layer
  (``direct.entanglement.per_layer`` of quantum solvers);
* ``committees`` and ``nk_fitness`` (NK-ESN): the generalisation scores of every
  row's committees, and every output's fitness range in the table with each row's
  per-output fitness (``landscapes.npz``).

A figure whose data a run lacks is skipped with a note, never an error.  The
figure functions take loaded data (dicts and arrays) and return a
:class:`matplotlib.figure.Figure`, so experiment scripts draw their README figures
with the same functions (:func:`plot_grouped_bars`, :func:`plot_series`) and
:func:`save_figure`.  Figures are built from :class:`~matplotlib.figure.Figure`
directly, without pyplot: nothing global (backend, open windows) is touched.

Example:
    >>> fig = plot_grouped_bars(
    ...     {"digits": {"vqe": [0.97, 0.98], "dense": 0.974}}, ylabel="test accuracy"
    ... )
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "FORMATS",
    "HISTORY_PANELS",
    "SEARCH_PANELS",
    "Run",
    "histories",
    "load_run",
    "plot_committees",
    "plot_entanglement",
    "plot_grouped_bars",
    "plot_history",
    "plot_kept_fraction",
    "plot_landscapes",
    "plot_nk_fitness",
    "plot_run",
    "plot_search",
    "plot_series",
    "run_figures",
    "save_figure",
]

FORMATS = ("png", "svg")
# (panel title, history keys): the panels plot_history draws where records have
# the keys (training dashed, validation solid).
HISTORY_PANELS = (
    ("cost", ("train_cost", "val_cost")),
    ("accuracy", ("train_accuracy", "val_accuracy")),
    ("loss (training mini-batches)", ("loss",)),
    ("kept fraction", ("kept_fraction",)),
    ("shared-mode fitness", ("fitness",)),
)
# The panels of plot_search.
SEARCH_PANELS = (
    ("optimum rate", ("optimum_rate", "top1_optimum_rate")),
    ("accepted groups", ("accepted",)),
)
# How a history key is told apart within a panel: (label suffix, line style).
_KEY_STYLE = {
    "train_cost": ("train", "--"),
    "val_cost": ("val", "-"),
    "train_accuracy": ("train", "--"),
    "val_accuracy": ("val", "-"),
    "top1_optimum_rate": ("top-1", ":"),
}
_MASK_LAYER = re.compile(r"^(block\d+_)?layer\d+$")
_BASELINES = ("edge-popup", "supermask", "dense")


class Run(NamedTuple):
    """What one run directory holds (:func:`load_run`).

    Attributes:
        path: the run directory.
        result: ``result.json`` (:mod:`qselax.results`).
        metrics: ``metrics.jsonl``'s records (``[]`` where absent).
        masks: ``{solver: {array name: mask}}`` from ``masks_<solver>.npz``.
        landscapes: ``{solver: sample}`` from ``landscapes_<solver>.npz``
            (:func:`qselax.selection.landscape_sample`).
        nk_table: NK-ESN's ``landscapes.npz``: ``fitness (N, 2^(K+1))`` and, where
            written, ``row_fitness (R, N)`` and ``row_labels (R,)``; else ``None``.
    """

    path: Path
    result: dict
    metrics: list[dict]
    masks: dict[str, dict[str, np.ndarray]]
    landscapes: dict[str, dict[str, np.ndarray]]
    nk_table: dict[str, np.ndarray] | None


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {name: f[name] for name in f.files}


def _by_suffix(
    path: Path, prefix: str, order: Sequence[str]
) -> dict[str, dict[str, np.ndarray]]:
    """``{name: arrays}`` of ``<prefix><name>.npz``, the run's solvers first in
    their order (so every figure gives a solver the same colour)."""
    found = {f.stem[len(prefix) :]: f for f in path.glob(f"{prefix}*.npz")}
    names = [n for n in order if n in found] + sorted(set(found) - set(order))
    return {name: _npz(found[name]) for name in names}


def load_run(run_dir: str | Path) -> Run:
    """Reads a run directory's ``result.json``, ``metrics.jsonl`` and ``.npz`` files.

    Raises:
        ValueError: no readable ``result.json`` in ``run_dir``.
    """
    path = Path(run_dir)
    file = path / "result.json"
    if not file.is_file():
        raise ValueError(
            f"{path}: no result.json (not a qselax run directory, or its run did "
            "not finish)"
        )
    try:
        result = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: cannot read JSON ({err})") from None
    if not isinstance(result, dict) or not {"method", "solvers"} <= set(result):
        raise ValueError(f"{file}: not a qselax result (no 'method' and 'solvers')")
    metrics = []
    if (path / "metrics.jsonl").is_file():
        lines = (path / "metrics.jsonl").read_text().splitlines()
        metrics = [json.loads(line) for line in lines if line.strip()]
    table = path / "landscapes.npz"
    return Run(
        path=path,
        result=result,
        metrics=metrics,
        masks=_by_suffix(path, "masks_", list(result["solvers"])),
        landscapes=_by_suffix(path, "landscapes_", list(result["solvers"])),
        nk_table=_npz(table) if table.is_file() else None,
    )


def histories(run: Run) -> dict[str, list[dict]]:
    """Every solver's history records: ``result.json``'s, else ``metrics.jsonl``'s."""
    out = {}
    for name, entry in run.result["solvers"].items():
        records = entry.get("history") or [
            m for m in run.metrics if m.get("solver") == name
        ]
        out[name] = list(records)
    return out


def save_figure(
    fig: Figure, stem: str | Path, formats: Sequence[str] = FORMATS, dpi: int = 100
) -> list[Path]:
    """Writes ``fig`` as ``stem.<format>`` for every format; returns the paths.

    The SVG carries no date, so an unchanged figure gives an unchanged file.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata)
        paths.append(path)
    return paths


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _color(names: Sequence[str], name: str) -> str:
    """One colour per solver, the same in every figure of a run."""
    return f"C{list(names).index(name) % 10}" if name in names else "C7"


def _stats(value) -> tuple[float, float] | None:
    """Mean and population std of a number or a sequence (NaN and None dropped)."""
    if value is None:
        return None
    v = np.atleast_1d(np.asarray(value, dtype=object))
    v = np.asarray([float(x) for x in v if x is not None], np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return float(v.mean()), float(v.std())


def plot_grouped_bars(
    data: Mapping[str, Mapping[str, float | Sequence[float] | None]],
    *,
    ylabel: str,
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
    colors: Mapping[str, str] | None = None,
    legend: bool | None = None,
    ax=None,
) -> Figure:
    """Grouped bars: ``data[category][series]``, one colour per series.

    A value that is a sequence (e.g. one number per seed) is drawn as its mean with
    a ±std error bar; ``None`` or NaN leaves its bar out.

    Args:
        data: ``{category (x tick): {series (legend): value(s)}}``.
        ylabel: the value axis' label.
        title: the axes' title.
        ylim: value axis limits (default matplotlib's).
        colors: ``{series: colour}`` (default the colour cycle in series order).
        legend: draw the series' legend (default: where there are several).
        ax: draw into these axes instead of a new figure.

    Returns:
        The figure drawn into.
    """
    cats = list(data)
    series = list(dict.fromkeys(s for c in data.values() for s in c))
    if not cats or not series:
        raise ValueError("plot_grouped_bars: nothing to draw")
    if ax is None:
        per = max(1.2, 0.25 * (len(series) + 1))  # inches per category
        ax = _figure(min(14.0, 2.2 + per * len(cats)), 3.2).subplots()
    step = 0.8 / len(series)
    for i, name in enumerate(series):
        xs, means, errs = [], [], []
        for j, cat in enumerate(cats):
            stats = _stats(data[cat].get(name))
            if stats is not None:
                xs.append(j - 0.4 + step * (i + 0.5))
                means.append(stats[0])
                errs.append(stats[1])
        color = (colors or {}).get(name, f"C{i % 10}")
        ax.bar(
            xs,
            means,
            step,
            yerr=errs if any(errs) else None,
            capsize=2,
            label=name,
            color=color,
        )
    ax.set_xticks(range(len(cats)), cats)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    if legend or (legend is None and len(series) > 1):
        _legend(ax)
    ax.grid(axis="y", alpha=0.3)
    return ax.figure


def _legend(ax, fontsize: str = "small") -> None:
    """The axes' legend outside, on its right (constrained layout makes room)."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_series(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logy: bool = False,
    dashed: Sequence[str] = (),
    ax=None,
) -> Figure:
    """Lines with markers: ``series[label] = (xs, ys)``.

    Args:
        series: ``{legend label: (x values, y values)}``.
        xlabel: the x axis label.
        ylabel: the y axis label.
        title: the axes' title.
        logy: a base-2 logarithmic y axis.
        dashed: labels drawn as dashed lines without markers (e.g. a theory).
        ax: draw into these axes instead of a new figure.

    Returns:
        The figure drawn into.
    """
    if not series:
        raise ValueError("plot_series: nothing to draw")
    if ax is None:
        ax = _figure(7.0, 3.4).subplots()
    for i, (label, (xs, ys)) in enumerate(series.items()):
        style = dict(ls="--", marker=None) if label in dashed else dict(marker="o")
        ax.plot(xs, ys, ms=3, label=label, color=f"C{i % 10}", **style)
    xs = {float(x) for xs, _ in series.values() for x in xs}
    if len(xs) <= 12 and all(x.is_integer() for x in xs):
        ax.set_xticks(sorted(xs))
    if logy:
        ax.set_yscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        _legend(ax)
    ax.grid(alpha=0.3)
    return ax.figure


def _x_key(records: Sequence[Mapping]) -> str:
    return "sweep" if any("sweep" in r for r in records) else "epoch"


def plot_history(
    histories: Mapping[str, Sequence[Mapping]],
    panels: Sequence[tuple[str, Sequence[str]]] | None = None,
    *,
    x: str | None = None,
) -> Figure:
    """History records per sweep (or epoch): a row per panel, a column per stage.

    Args:
        histories: ``{solver: records}`` (:mod:`qselax.driver`'s history records,
            or the per-epoch records of the score-trained baselines).
        panels: ``(title, keys)`` rows; default: those of :data:`HISTORY_PANELS`
            whose keys the records have (``("cost", ("cost",))`` where they have
            no split costs).
        x: the records' x key (default ``sweep`` where present, else ``epoch``).

    Returns:
        The figure: one line per solver and key (training dashed, validation
        solid).

    Raises:
        ValueError: no records, or none with a panel's keys.
    """
    records = [r for h in histories.values() for r in h]
    if not records:
        raise ValueError("no history records")
    x = x or _x_key(records)
    if panels is None:
        have = {k for r in records for k, v in r.items() if v is not None}
        panels = [(t, ks) for t, ks in HISTORY_PANELS if have & set(ks)]
        if not have & {"train_cost", "val_cost"} and "cost" in have:
            panels.insert(0, ("cost", ("cost",)))
    if not panels:
        raise ValueError("no history record has a key to plot")
    stages = list(dict.fromkeys(r.get("stage", "") for r in records))
    names = list(histories)
    if len(stages) == 1:  # one stage: the panels side by side
        fig = _figure(0.6 + 3.4 * len(panels), 3.0)
        axes = fig.subplots(1, len(panels), squeeze=False).T
    else:
        fig = _figure(1.0 + 3.0 * len(stages), 0.8 + 2.3 * len(panels))
        axes = fig.subplots(len(panels), len(stages), squeeze=False)
    for col, stage in enumerate(stages):
        for row, (title, keys) in enumerate(panels):
            ax = axes[row, col]
            for name, hist in histories.items():
                own = [r for r in hist if r.get("stage", "") == stage and x in r]
                for key in keys:
                    pts = [(r[x], r[key]) for r in own if r.get(key) is not None]
                    if not pts:
                        continue
                    suffix, style = _KEY_STYLE.get(key, ("", "-"))
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        style,
                        marker="o" if len(pts) <= 30 else None,
                        ms=3,
                        color=_color(names, name),
                        label=f"{name} {suffix}".strip(),
                    )
            head = f"{stage}: {title}" if len(stages) > 1 else title
            ax.set_title(head, fontsize="medium")
            ax.grid(alpha=0.3)
            ticks = sorted({v for line in ax.get_lines() for v in line.get_xdata()})
            if 0 < len(ticks) <= 10:  # few sweeps: one tick each
                ax.set_xticks(ticks)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if row == len(panels) - 1 or len(stages) == 1:
                ax.set_xlabel(x)
    _figure_legend(fig)
    return fig


def _figure_legend(fig: Figure) -> None:
    """One legend below the axes: every distinct line label of the figure."""
    labels: dict = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    if labels:
        fig.legend(
            list(labels.values()),
            list(labels),
            loc="outside lower center",
            ncols=min(4, len(labels)),
            fontsize="small",
        )


def plot_search(histories: Mapping[str, Sequence[Mapping]]) -> Figure:
    """Optimum rate (solid; top-1 dotted) and accepted groups per sweep.

    Raises:
        ValueError: no record has an optimum rate (e.g. the score-trained
            baselines' epochs).
    """
    records = [r for h in histories.values() for r in h]
    if not any(r.get("optimum_rate") is not None for r in records):
        raise ValueError("no history record has an optimum rate")
    return plot_history(histories, SEARCH_PANELS, x="sweep")


def plot_kept_fraction(masks: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """Kept fraction of every mask layer (``layer<j>``, ``block<b>_layer<j>``).

    Args:
        masks: ``{solver: {array name: 0/1 mask}}``; other arrays (e.g. a
            distillation block's compression) are ignored.

    Raises:
        ValueError: no mask layer.
    """
    data: dict[str, dict[str, float]] = {}
    for name, arrays in masks.items():
        for layer, mask in arrays.items():
            if _MASK_LAYER.match(layer):
                label = layer.replace("_", "\n")
                data.setdefault(label, {})[name] = float(np.mean(mask))
    if not data:
        raise ValueError("no mask layers")
    data = dict(sorted(data.items(), key=lambda kv: _natural(kv[0])))
    names = list(masks)
    colors = {n: _color(names, n) for n in names}
    fig = plot_grouped_bars(
        data, ylabel="kept fraction", ylim=(0.0, 1.0), colors=colors, legend=True
    )
    fig.axes[0].set_title("kept fraction per mask layer")
    return fig


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def plot_entanglement(per_layer: Mapping[str, Sequence[float | None] | None]) -> Figure:
    """Mean half-cut entanglement entropy of the final states per network layer.

    Args:
        per_layer: ``{solver: per-layer means (None where a layer has no groups)}``;
            solvers without a quantum state give ``None``.

    Raises:
        ValueError: no solver with entropies.
    """
    data: dict[str, dict[str, float | None]] = {}
    for name, values in per_layer.items():
        for j, v in enumerate(values or []):
            data.setdefault(f"layer{j}", {})[name] = v
    if not any(v is not None for d in data.values() for v in d.values()):
        raise ValueError(
            "no solver with a quantum state's entanglement per layer (classical "
            "solvers have none)"
        )
    names = list(per_layer)
    fig = plot_grouped_bars(
        data,
        ylabel="half-cut entropy (bits)",
        colors={n: _color(names, n) for n in names},
        legend=True,
    )
    fig.axes[0].set_title("final states' entanglement")
    return fig


def plot_landscapes(sample: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Every sampled group's landscape with the solver's choice and the optimum.

    Args:
        sample: :func:`qselax.selection.landscape_sample`'s arrays:
            ``landscapes (n, 2^K)``, ``group``, ``layer``, ``chosen``, ``kept``
            and ``optimum`` ``(n,)``.
        title: the figure's title.

    Returns:
        A grid of one panel per group (cost against configuration index, bit 0
        most significant).
    """
    lands = np.asarray(sample["landscapes"])
    n, num = lands.shape
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig = _figure(0.6 + 2.6 * ncols, 0.6 + 2.1 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    k = int(np.log2(num))
    marks = (  # (sample key, legend label, marker style)
        ("optimum", "optimum", dict(marker="*", ms=11, mfc="gold", mec="k")),
        ("kept", "final mask", dict(marker="o", ms=8, mfc="none", mec="C0")),
        ("chosen", "solver's choice (kept sweep)", dict(marker="x", ms=7, mec="C3")),
    )
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        land = lands[i]
        ax.plot(np.arange(num), land, ".", ms=2, color="0.45")
        for key, label, style in marks:
            if key in sample:
                s = int(sample[key][i])
                ax.plot([s], [land[s]], ls="none", mew=1.2, label=label, **style)
        chosen = int(sample["chosen"][i]) if "chosen" in sample else None
        head = f"group {int(sample['group'][i])}, layer {int(sample['layer'][i])}"
        if chosen is not None:
            rank = int(np.sum(land < land[chosen]))
            head += f"\nchoice {chosen:0{k}b}, rank {rank}"
        ax.set_title(head, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("cost")
        if i >= n - ncols:
            ax.set_xlabel("configuration")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_committees(
    rows: Sequence[Mapping], best_entry: Mapping | None = None
) -> Figure:
    """NK-ESN: every row's committee generalisation scores (of 625 starts).

    Args:
        rows: ``result["nk-esn"]["rows"]``: ``solver``, ``mode`` and
            ``generalisation`` (``all``, ``top``, ``best``).
        best_entry: ``result["nk-esn"]["best_entry"]``, drawn as a line.
    """
    if not rows:
        raise ValueError("no NK-ESN rows")
    data = {
        f"{r['solver']}\n{r['mode']}": {
            f"{c} outputs" if c == "all" else c: r["generalisation"][c]
            for c in ("all", "top", "best")
        }
        for r in rows
    }
    fig = plot_grouped_bars(
        data, ylabel="generalisation score (of 625)", ylim=(0.0, 640.0)
    )
    ax = fig.axes[0]
    if best_entry is not None:
        ax.axhline(
            best_entry["generalisation"],
            color="k",
            ls=":",
            lw=1,
            label="best table entry",
        )
        _legend(ax)
    ax.set_title("NK-ESN committees")
    return fig


def plot_nk_fitness(
    fitness: np.ndarray, rows: Mapping[str, np.ndarray] | None = None
) -> Figure:
    """NK-ESN: each output's fitness over its 2^(K+1) settings, and the rows'.

    Args:
        fitness: ``(N, 2^(K+1))`` the tabulated training fitness.
        rows: ``{"solver/mode": (N,) fitness of each output under its bits}``.

    Returns:
        One bar per output from its worst to its best setting (the best marked),
        the rows' per-output fitness as markers.
    """
    fitness = np.asarray(fitness)
    n = fitness.shape[0]
    out = np.arange(n)
    fig = _figure(min(12.0, 6.0 + 0.06 * n), 3.4)
    ax = fig.subplots()
    ax.vlines(
        out, fitness.min(-1), fitness.max(-1), color="0.75", lw=3, label="table range"
    )
    ax.plot(out, fitness.max(-1), "_", color="k", ms=8, label="output's optimum")
    markers = "ox+^sdv<>"
    for i, (label, values) in enumerate((rows or {}).items()):
        ax.plot(
            out,
            np.asarray(values),
            markers[i % len(markers)],
            ms=4,
            mfc="none",
            color=f"C{i % 10}",
            label=label,
        )
    ax.set_xlabel("output")
    ax.set_ylabel("training fitness")
    ax.set_title("per-output fitness")
    _legend(ax, "x-small")
    ax.grid(alpha=0.3)
    return fig


def _entanglement(result: dict) -> dict[str, list | None]:
    out = {}
    for name, entry in result["solvers"].items():
        ent = (entry.get(result["method"]) or {}).get("entanglement")
        out[name] = None if not ent else ent.get("per_layer")
    return out


def _attempt(build, *args) -> Figure | str:
    try:
        return build(*args)
    except ValueError as err:
        return str(err)


def run_figures(run: Run) -> Iterator[tuple[str, Figure | str]]:
    """Every figure of a run: ``(name, figure)``, or ``(name, why it is skipped)``."""
    result, method = run.result, run.result["method"]
    hist = histories(run)
    if method == "distill":
        panels = [("block loss (validation)", ("cost",))]
        yield "history", _attempt(plot_history, hist, panels)
    elif method == "nk-esn":
        shared = {n: [r for r in h if "fitness" in r] for n, h in hist.items()}
        yield "history", _attempt(plot_history, shared)
    else:
        yield "history", _attempt(plot_history, hist)
    if method in _BASELINES:
        yield "search", f"--method {method} trains by gradient: no sweeps"
    elif method == "nk-esn":
        yield "search", "nk-esn's history records the shared mode's fitness only"
    else:
        yield "search", _attempt(plot_search, hist)
    if run.masks:
        yield "kept_fraction", _attempt(plot_kept_fraction, run.masks)
    else:
        yield "kept_fraction", "no masks_<solver>.npz in the run directory"
    if run.landscapes:
        for name, sample in run.landscapes.items():
            title = f"{name}: landscapes at the final mask"
            yield f"landscapes_{name}", _attempt(plot_landscapes, sample, title)
    else:
        yield "landscapes", "no landscapes_<solver>.npz (written by direct runs)"
    if method in ("direct", "distill"):
        yield "entanglement", _attempt(plot_entanglement, _entanglement(result))
    else:
        yield "entanglement", f"--method {method} has no quantum states per layer"
    if method == "nk-esn":
        nk = result.get("nk-esn", {})
        yield (
            "committees",
            _attempt(plot_committees, nk.get("rows", []), nk.get("best_entry")),
        )
        table = run.nk_table
        if table is None or "fitness" not in table:
            yield "nk_fitness", "no landscapes.npz with the fitness table"
        else:
            rows = None
            if "row_fitness" in table:
                labels = [str(v) for v in table["row_labels"]]
                rows = dict(zip(labels, table["row_fitness"], strict=True))
            yield "nk_fitness", _attempt(plot_nk_fitness, table["fitness"], rows)


def plot_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: int = 100,
) -> tuple[list[Path], dict[str, str]]:
    """Draws every figure of a run directory into ``out`` (default ``RUN_DIR/plots``).

    Returns:
        ``(written files, {skipped figure: why})``.

    Raises:
        ValueError: ``run_dir`` holds no readable ``result.json``.
    """
    run = load_run(run_dir)
    out = Path(out) if out is not None else run.path / "plots"
    written, skipped = [], {}
    for name, fig in run_figures(run):
        if isinstance(fig, str):
            skipped[name] = fig
        else:
            written += save_figure(fig, out / name, formats, dpi)
    return written, skipped
