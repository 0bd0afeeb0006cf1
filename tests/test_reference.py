"""Tests for qselax.reference: the reference implementation's files, replayed.

The fixture (``tests/data/nk-esn-k2-run0``, see its README) is one run of the NK
Echo State Network reference code: N = 100, K = 2.  qselax must reproduce, on the
reference plant, every tabulated fitness, the DP optimum and the reference's own
generalisation scores (200 / 475 / 510 of 625).
"""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from qselax import nk, pole, reference
from qselax.cli import main
from qselax.esn import tabulate

DATA = Path(__file__).parent / "data" / "nk-esn-k2-run0"
OPTIMUM = 3.5652777528060997


@pytest.fixture(scope="module")
def run():
    return reference.load_run(DATA)


@pytest.fixture(scope="module")
def replayed(run):
    # One tabulation and one batch of committees, shared by the tests below.
    return reference.replay(run)


def test_load_shapes_and_wiring(run):
    esn = run.esn
    assert run.k == 2 and run.fitness.shape == (100, 8)
    assert esn.w_in.shape == (60, 3) and esn.w_res.shape == (60, 60)
    assert esn.w_probe.shape == (100, 60) and esn.w_out.shape == (100, 3)
    np.testing.assert_array_equal(esn.neighbours, nk.adjacent_neighbours(100, 2))
    assert np.all(np.asarray(esn.w_out) != 0)
    # The bit string is read reversed: its last character is probe 0.
    text = (DATA / "solDP_0.dat").read_text().split("Optimal solution:")[1].split()[0]
    assert run.mask[0] == int(text[-1]) and run.mask[-1] == int(text[0])
    assert run.optimum == OPTIMUM


def test_column_order_on_a_wrapping_row(run):
    """Row 99 reads probes 99, 0, 1; the file orders them 0, 1, 99 (LSB first)."""
    file_row = [
        float(v)
        for v in (DATA / "NK_0.dat")
        .read_text()
        .split("F_el")[1]
        .split("M_out")[0]
        .split()
    ]
    file_row = np.asarray(file_row).reshape(100, 8)[99]
    for c in range(8):
        b99, b0, b1 = (c >> 2) & 1, (c >> 1) & 1, c & 1  # qselax: bit 0 is the MSB
        assert run.fitness[99, c] == file_row[b0 + 2 * b1 + 4 * b99]


def test_every_tabulated_fitness_matches_the_file(run, replayed):
    assert replayed["max_abs_diff"] < 1e-6
    assert replayed["max_rel_diff"] < 1e-5  # float32 against the C++ doubles


def test_dp_optimum_and_mask(replayed):
    assert replayed["dp_optimum"] == pytest.approx(OPTIMUM, rel=1e-6)
    assert replayed["dp_mask_equal"] is True
    assert replayed["mask_fitness"] == pytest.approx(OPTIMUM, rel=1e-12)


def test_generalisation_scores_are_the_reference_s(replayed):
    assert replayed["generalisation"] == {"all": 200, "top": 475, "best_entry": 510}
    assert replayed["top_outputs"] == 20
    assert replayed["best_entry"]["output"] == 47
    assert replayed["best_entry"]["fitness"] == pytest.approx(0.12762381167302)


def test_the_inverted_plant_does_not_give_the_file(run):
    land = tabulate(run.esn, pole.plant_config("inverted"))
    assert np.max(np.abs(np.asarray(land.fitness) - run.fitness)) > 1e-2


def test_replay_command(tmp_path, capsys, replayed):
    out = tmp_path / "replay.json"
    assert main(["replay", str(DATA), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["generalisation"] == replayed["generalisation"]
    assert result["plant"] == "reference" and result["pole"]["substeps"] == 1
    assert json.loads(capsys.readouterr().out)["dp_mask_equal"] is True
    assert main(["replay", str(tmp_path)]) == 2  # no files there
    assert "NK_0.dat" in capsys.readouterr().err


def test_bad_files(tmp_path):
    (tmp_path / "NK_0.dat").write_text("Parameters\n2 1\nF_el\n0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match="F_el"):
        reference.read_nk(tmp_path / "NK_0.dat")
    (tmp_path / "solDP_0.dat").write_text("Optimal solution: 01x\n")
    with pytest.raises(ValueError, match="Optimal"):
        reference.read_mask(tmp_path / "solDP_0.dat")
    mask, optimum = reference.read_mask(DATA / "solDP_0.dat")
    assert mask.dtype == np.int32 and optimum == OPTIMUM
    neighbours = np.asarray(jnp.roll(nk.adjacent_neighbours(100, 2), 1, axis=0))
    with pytest.raises(ValueError, match="outside the wiring"):
        reference.read_network(DATA / "NN_0.dat", neighbours)
