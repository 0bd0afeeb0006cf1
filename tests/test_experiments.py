"""Every ``experiments/<name>/main.py``: its ``--smoke`` run and its ``--table``.

Each runs in a subprocess, as a user would run it from the repository root.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.parent.name for p in ROOT.glob("experiments/*/main.py"))
# Smoke runs: every experiment's --smoke, and the extra smoke parts too slow for the
# quick step (a whole selection compiles for several seconds).
SMOKES = [pytest.param(name, (), id=name) for name in EXPERIMENTS] + [
    pytest.param(
        "solver_table",
        ("--part", "shots"),
        id="solver_table-shots",
        marks=pytest.mark.slow,
    )
]
TIMEOUT_S = 600


def _run(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"experiments/{name}/main.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _failure(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def _results(name: str) -> dict[str, int]:
    """The committed raw results of an experiment: file name -> size."""
    folder = ROOT / "experiments" / name / "results"
    return {p.name: p.stat().st_size for p in folder.glob("*.jsonl")}


def _markdown_tables(text: str) -> list[str]:
    """The Markdown tables of ``text``, emphasis removed."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append(line.replace("**", "").rstrip())
        elif rows:
            tables.append("\n".join(rows))
            rows = []
    return tables


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """``smoke(name, args)``: runs ``--smoke --out DIR *args`` once; process, DIR."""
    done = {}

    def run(name: str, args: tuple[str, ...] = ()):
        if (name, args) not in done:
            out = tmp_path_factory.mktemp(name)
            before = _results(name)
            proc = _run(name, "--smoke", "--out", str(out), *args)
            assert _results(name) == before, f"{name} --smoke changed results/"
            done[name, args] = proc, out
        return done[name, args]

    return run


@pytest.mark.parametrize("name, args", SMOKES)
def test_smoke(name, args, smoke):
    proc, out = smoke(name, args)
    assert proc.returncode == 0, _failure(proc)
    records = [
        json.loads(line)
        for path in sorted(out.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert records, f"{name} --smoke wrote no JSONL record to {out}"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_table(name, smoke):
    """``--table`` prints Markdown: every README table, from the committed results.

    An experiment without committed results tabulates its smoke run's records.
    """
    committed = bool(_results(name))
    args = ["--table"]
    if not committed:
        smoke_proc, out = smoke(name)
        assert smoke_proc.returncode == 0, _failure(smoke_proc)
        args += ["--out", str(out)]
    proc = _run(name, *args)
    assert proc.returncode == 0, _failure(proc)
    printed = _markdown_tables(proc.stdout)
    assert printed, f"{name} --table printed no Markdown table"
    if committed:
        readme = (ROOT / "experiments" / name / "README.md").read_text()
        output = "\n".join(printed)
        missing = [t for t in _markdown_tables(readme) if t not in output]
        assert not missing, "README tables --table does not print:\n" + "\n\n".join(
            missing
        )


@pytest.mark.parametrize("name", ["generalisation", "grover_scaling", "solver_table"])
def test_plot(name, tmp_path):
    """``--plot`` draws the README's figure from the committed results."""
    for path in (ROOT / "experiments" / name / "results").glob("*.jsonl"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    proc = _run(name, "--plot", "--out", str(tmp_path))
    assert proc.returncode == 0, _failure(proc)
    figures = list((tmp_path / "figures").glob("*.png"))
    assert len(figures) == 1 and figures[0].name in proc.stdout
    readme = (ROOT / "experiments" / name / "README.md").read_text()
    assert f"](figures/{figures[0].name})" in readme
    assert (ROOT / "experiments" / name / "figures" / figures[0].name).is_file()


def _generalisation():
    """``experiments/generalisation/main.py`` as a module (its table helpers)."""
    import importlib.util

    path = ROOT / "experiments" / "generalisation" / "main.py"
    spec = importlib.util.spec_from_file_location("generalisation_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_difference_matches_scipy_ttest_rel():
    """The paired CI equals scipy's paired t test interval; counts by sign."""
    from scipy.stats import ttest_rel

    gen = _generalisation()
    a = {0: 0.90, 1: 0.80, 2: 0.75, 3: 0.60, 9: 0.5}
    b = {0: 0.80, 1: 0.80, 2: 0.70, 3: 0.65, 7: 0.1}
    result = gen.paired(a, b)
    seeds = [0, 1, 2, 3]
    ci = ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).confidence_interval()
    assert result["seeds"] == 4
    assert result["mean"] == pytest.approx(0.025)
    assert result["low"] == pytest.approx(ci.low)
    assert result["high"] == pytest.approx(ci.high)
    assert (result["higher"], result["equal"], result["lower"]) == (2, 1, 1)
    assert gen.paired({0: 0.9, 1: 0.8}, {1: 0.7, 2: 0.6}) is None


def test_paired_table_picks_the_better_field_row():
    """Each qselax row is set against the field row with the higher shared mean."""
    gen = _generalisation()

    def row(name, tests):
        return [{"row": name, "seed": s, "test": t} for s, t in enumerate(tests)]

    rows = {
        "exhaustive/16": row("exhaustive/16", [0.97, 0.98, 0.96]),
        "vqe": row("vqe", [0.95]),  # one seed: no paired line
        "edge-popup": row("edge-popup", [0.98, 0.98, 0.97]),
        "supermask": row("supermask", [0.99, 0.97, 0.90]),
        "dense": row("dense", [0.99, 0.99, 0.99]),  # not a mask finder
    }
    lines = gen.paired_table(rows)
    assert [line[:3] for line in lines] == [("exhaustive/16", "edge-popup", 3)]
    assert lines[0][3] == "-0.0067" and lines[0][5] == "0 / 1 / 2"


def test_plot_row_prefers_the_default_group_order_then_most_sweeps():
    gen = _generalisation()
    names = ["vqe", "vqe/8", "vqe/16", "vqe/16-p0.1", "vqe/8-il", "edge-popup"]
    rows = dict.fromkeys(names, [])
    assert gen._plot_row(rows, "vqe") == "vqe/8-il"
    del rows["vqe/8-il"]
    assert gen._plot_row(rows, "vqe") == "vqe/16"
    assert gen._plot_row({"exhaustive/il": [], "exhaustive": []}, "exhaustive") == (
        "exhaustive/il"
    )
    assert gen._plot_row(rows, "edge-popup") == "edge-popup"
    assert gen._plot_row(rows, "supermask") is None
    assert gen._variant("8-il") == "8 sweeps\ninterleaved"
    assert gen._variant("il") == "3 sweeps\ninterleaved"
    assert gen._variant("12") == "12 sweeps"


def test_roofline_refuses_a_memory_budget_that_is_not_positive(tmp_path):
    """A bad ``--memory-mb`` stops the roofline before its bounds are measured."""
    proc = _run("bench_roofline", "--memory-mb", "0", "--out", str(tmp_path))
    assert proc.returncode == 2, _failure(proc)
    assert "--memory-mb must be > 0, got 0.0" in proc.stderr
    assert not list(tmp_path.iterdir())
