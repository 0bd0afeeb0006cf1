"""``qselax plot``: the figures of a run directory, and the landscape sample.

The run reuses tests/test_cli.py's tiny settings (iris, a 4-8-3 MLP, K = 4 fan-in
groups, blocks of 16), so it adds no new compiled shapes.  The NK-ESN figures are
drawn from tests/test_cli.py's own NK-ESN run.
"""

import json

import numpy as np
import pytest

import qselax
from qselax.cli import _network, _select_config, main
from qselax.plots import (
    load_run,
    plot_grouped_bars,
    plot_history,
    plot_run,
    plot_series,
    save_figure,
)
from qselax.selection import group_landscapes

TINY = [
    "--hidden", "8", "--k", "4", "--sweeps", "1", "--vqe-steps", "10",
    "--vqe-layers", "1", "--dense-epochs", "3", "--block-size", "16", "--quiet",
]  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"
DIRECT_FIGURES = {
    "history",
    "search",
    "kept_fraction",
    "landscapes_exhaustive",
    "landscapes_vqe",
    "entanglement",
}


@pytest.fixture(scope="module")
def direct_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("direct")
    argv = ["run", "--dataset", "iris", *TINY, "--solver", "exhaustive,vqe"]
    argv += ["--sweeps", "2", "--dense-epochs", "0", "--out", str(out)]
    assert main(argv) == 0
    return out


def _check_files(paths, names):
    """Every figure name as a non-empty PNG and SVG, and nothing else."""
    assert {p.name for p in paths} == {
        f"{n}.{e}" for n in names for e in ("png", "svg")
    }
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data.startswith(PNG) and len(data) > 1000
        else:
            assert b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")


def test_direct_run_writes_its_landscape_sample(direct_run):
    result = json.loads((direct_run / "result.json").read_text())
    for name in ("exhaustive", "vqe"):
        s = dict(np.load(direct_run / f"landscapes_{name}.npz"))
        n = len(s["group"])
        assert s["landscapes"].shape == (n, 2**4) and n == 8
        # Two layers with groups: the sample is shared between them.
        assert set(s["layer"].tolist()) == {0, 1}
        assert (s["optimum"] == s["landscapes"].argmin(-1)).all()
        # At the final mask every group's own setting gives the network's cost.
        at_kept = s["landscapes"][np.arange(n), s["kept"]]
        best = result["solvers"][name]["direct"]["best_sweep"]
        cost = result["solvers"][name]["history"][best - 1]["cost"]
        np.testing.assert_allclose(at_kept, cost, rtol=1e-5)
        assert ((0 <= s["chosen"]) & (s["chosen"] < 16)).all()


def test_plot_direct_run(direct_run, capsys):
    assert main(["plot", str(direct_run)]) == 0
    printed = capsys.readouterr().out.splitlines()
    written = sorted((direct_run / "plots").iterdir())
    _check_files(written, DIRECT_FIGURES)
    assert sorted(printed) == sorted(str(p) for p in written)


def test_plot_notes_what_a_classical_run_lacks(direct_run, tmp_path, capsys):
    # The same run without its quantum solver: no entanglement, a note instead.
    run = tmp_path / "classical"
    run.mkdir()
    result = json.loads((direct_run / "result.json").read_text())
    del result["solvers"]["vqe"]
    (run / "result.json").write_text(json.dumps(result))
    for name in ("masks", "landscapes"):
        src = direct_run / f"{name}_exhaustive.npz"
        (run / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "figures"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped entanglement" in printed
    names = DIRECT_FIGURES - {"landscapes_vqe", "entanglement"}
    _check_files(list(out.iterdir()), names)


def test_plot_run_without_result_is_an_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="no result.json"):
        plot_run(tmp_path)
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "no result.json" in capsys.readouterr().err
    (tmp_path / "result.json").write_text("{broken")
    with pytest.raises(ValueError, match="cannot read JSON"):
        load_run(tmp_path)


def test_stored_landscapes_are_the_landscapes_at_the_final_mask(direct_run):
    result = json.loads((direct_run / "result.json").read_text())
    settings = result["config"]
    data, model = _network(settings)
    config = _select_config(settings, "exhaustive")
    # Group ids are the run's grouping's (its order: the config's group_order).
    grouping = qselax.make_grouping("fan_in", model, 4, config.group_order)
    masks = np.load(direct_run / "masks_exhaustive.npz")
    masks = tuple(masks[f"layer{j}"].astype(np.float32) for j in range(2))
    full = qselax.naive_landscapes(
        model, grouping, qselax.flatten_masks(masks), data.x_train, data.y_train
    )
    s = np.load(direct_run / "landscapes_exhaustive.npz")
    np.testing.assert_allclose(s["landscapes"], np.asarray(full)[s["group"]], 1e-5)
    ids = [0, grouping.num_groups - 1]
    np.testing.assert_allclose(
        group_landscapes(model, data, config, masks, ids), np.asarray(full)[ids], 1e-5
    )
    with pytest.raises(ValueError, match="outside"):
        group_landscapes(model, data, config, masks, [grouping.num_groups])


def test_figure_functions_take_loaded_data(tmp_path):
    fig = plot_grouped_bars(
        {"a": {"x": [1.0, 2.0], "y": None}, "b": {"x": 3.0, "y": 1.0}}, ylabel="v"
    )
    paths = save_figure(fig, tmp_path / "bars", formats=("png",))
    assert [p.name for p in paths] == ["bars.png"]
    fig = plot_series({"s": ([1, 2], [4.0, 8.0])}, xlabel="K", ylabel="c", logy=True)
    assert fig.axes[0].get_yscale() == "log"
    records = {"a": [{"epoch": e, "loss": 1.0 / e} for e in range(1, 4)]}
    assert len(plot_history(records).axes) == 1
    with pytest.raises(ValueError, match="no history"):
        plot_history({"a": []})
    with pytest.raises(ValueError, match="nothing"):
        plot_grouped_bars({}, ylabel="v")
