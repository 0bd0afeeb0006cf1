"""The tutorials run as the site shows them (``docs/tutorials/*.py``, smoke size).

Each script is executed in this process with ``QSELAX_SMOKE=1`` and its variables
are checked against what qselax promises: shapes, the exact solvers' optimum, costs
that never rise, and the scores the reference implementation reports for its own run.
"""

import runpy
from pathlib import Path

import numpy as np
import pytest

from qselax.networks import mask_shapes
from qselax.solvers import SOLVERS

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"


def run_tutorial(name: str, monkeypatch) -> dict:
    monkeypatch.setenv("QSELAX_SMOKE", "1")
    return runpy.run_path(str(TUTORIALS / f"{name}.py"), run_name="__main__")


def never_rises(costs) -> bool:
    return all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))


def test_direct_selection(monkeypatch, capsys):
    ns = run_tutorial("direct_selection", monkeypatch)
    model, sel, run, grouping = ns["model"], ns["sel"], ns["run"], ns["grouping"]
    shapes = mask_shapes(model)
    # The named grouping, solved exactly: every group at its optimum.
    assert sel.optimum_rate == 1.0
    assert [m.shape for m in sel.masks] == list(shapes)
    # The custom grouping: every bit once, each group inside one row of one kernel.
    valid = grouping.index[grouping.valid]
    assert sorted(valid.tolist()) == list(range(sum(int(np.prod(s)) for s in shapes)))
    offsets = ns["offsets"]
    for index, ok in zip(grouping.index, grouping.valid, strict=True):
        bits = index[ok]
        layer = np.searchsorted(offsets, bits, side="right") - 1
        rows = (bits - offsets[layer]) // np.array([shapes[l][1] for l in layer])
        assert len(set(layer.tolist())) == 1 and len(set(rows.tolist())) == 1
    # The hand-built pipeline: masks of the model's shapes, a cost that never rises.
    assert [m.shape for m in ns["masks"]] == list(shapes)
    costs = [h["cost"] for h in run.history]
    assert len(costs) == ns["SWEEPS"] and never_rises(costs)
    data = ns["data"]
    unmasked = ns["qselax"].score(
        ns["graphdef"], ns["weights"], None, data.x_train, data.y_train
    )["loss"]
    assert costs[-1] <= unmasked + 1e-5  # "keep everything" is always a candidate
    assert 0.0 <= run.optimum_rate <= 1.0
    assert "fan_out + vqe: optimum rate" in capsys.readouterr().out


def test_new_solver(monkeypatch):
    before = dict(SOLVERS)
    try:
        ns = run_tutorial("new_solver", monkeypatch)
        assert "greedy" in SOLVERS
    finally:
        SOLVERS.clear()
        SOLVERS.update(before)
    k, lands = ns["K"], np.asarray(ns["landscapes"])
    result, current = ns["result"], np.asarray(ns["current"])
    # The greedy solver against a plain NumPy steepest descent.
    for g in range(lands.shape[0]):
        index = int(current[g])
        for _ in range(k):
            flips = [index ^ (1 << j) for j in range(k)]
            best = min(flips, key=lambda c: (lands[g, c], flips.index(c)))
            if lands[g, best] < lands[g, index]:
                index = best
        assert int(result.index[g]) == index
    np.testing.assert_allclose(result.cost, lands[np.arange(len(lands)), result.index])
    assert np.all(np.asarray(result.lookups) == 1 + k * k)
    exact = lands.min(axis=1)
    assert ns["random_rate"] == pytest.approx(np.mean(np.asarray(result.cost) == exact))
    assert ns["random_rate"] < 1.0  # structureless landscapes trap a local search
    # Through the sweep: registered by name, costs that never rise.
    greedy, exhaustive = ns["runs"]["greedy"], ns["runs"]["exhaustive"]
    assert exhaustive.optimum_rate == 1.0
    solves = len(greedy.history) * greedy.grouping.num_groups
    assert greedy.lookups == solves * (1 + k * k)  # its own count, summed by the sweep
    assert never_rises([h["cost"] for h in greedy.history])
    assert str(ns["greedy"](steps=k)) == f"greedy(steps={k})"


@pytest.mark.slow  # about 20 s of CPU: the replay runs 1000-step episodes
def test_nk_esn_reference(monkeypatch):
    ns = run_tutorial("nk_esn_reference", monkeypatch)
    result, config = ns["result"], ns["config"]
    assert config.pole.poles == "hanging" and config.pole.substeps == 1
    rows = {(r["solver"], r["mode"]): r for r in result.rows}
    exact, dp = rows["exhaustive", "independent"], rows["dp", "shared"]
    assert result.episodes == config.esn.n * 2 ** (config.esn.k + 1)
    assert dp["total_fitness"] == pytest.approx(result.optimum, rel=1e-5)
    for (_, mode), row in rows.items():
        # Nothing beats the exact optimum of its mode; scores count of 625 starts.
        bound = exact if mode == "independent" else dp
        assert row["total_fitness"] <= bound["total_fitness"] * (1 + 1e-5)
        assert all(0 <= s <= 625 for s in row["generalisation"].values())
    assert never_rises([-f for f in rows["qaoa", "shared"]["history"]])
    # The reference implementation's own run, replayed: its published scores.
    report = ns["report"]
    assert report["dp_mask_equal"] and report["max_rel_diff"] < 1e-4
    assert report["generalisation"] == {"all": 200, "top": 475, "best_entry": 510}


def test_every_tutorial_is_tested():
    scripts = {p.stem for p in TUTORIALS.glob("*.py")}
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    assert scripts <= tested, scripts - tested


def test_never_rises_rejects_a_rise():
    # The checks above lean on it: it must be able to say no.
    assert never_rises([3.0, 2.0, 2.0]) and not never_rises([1.0, 1.5])
