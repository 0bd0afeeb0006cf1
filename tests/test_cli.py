"""The ``qselax run`` command: settings, result.json, datasets and errors."""

import dataclasses
import json

import numpy as np
import pytest

from qselax.cli import (
    _distill_config,
    _nk_config,
    _select_config,
    build_parser,
    main,
    resolve,
)
from qselax.distill import DistillConfig
from qselax.nk_selection import NKESNConfig
from qselax.plots import FORMATS, plot_run
from qselax.pole import PoleConfig, plant_config
from qselax.results import COMMON_KEYS, TOP_KEYS
from qselax.selection import DIRECT_VQE, SelectConfig
from qselax.solvers import vqe

_VQE_FLAGS = {
    "layers": 3,
    "steps": 100,
    "learning_rate": 0.1,
    "readout": None,
    "rotations": ("ry", "rz"),
}

TINY = [
    "--hidden", "8", "--k", "4", "--sweeps", "1", "--vqe-steps", "10",
    "--vqe-layers", "1", "--dense-epochs", "3", "--block-size", "16", "--quiet",
]  # fmt: skip


def _resolve(*argv):
    return resolve(build_parser().parse_args(["run", *argv]))


def test_defaults_are_the_documented_demo():
    s = _resolve()
    assert s["method"] == "direct" and s["solver"] == "vqe,exhaustive"
    assert (s["dataset"], s["model"], s["grouping"], s["k"]) == (
        "digits",
        "mlp",
        "fan_in",
        8,
    )
    assert (s["init"], s["sweeps"], s["hidden"]) == ("signed_constant", 3, "256")
    assert "teacher_hidden" not in s and "n" not in s  # other methods' settings


def test_cli_defaults_are_the_configs_defaults():
    """One set of defaults: every setting the CLI shares with a config is the
    config's default, per method, and the solver flags are the factory's."""
    direct = _resolve()
    cfg = SelectConfig()
    for f in dataclasses.fields(SelectConfig):
        if f.name != "solver":
            assert direct[f.name] == getattr(cfg, f.name), f.name
    assert _select_config(direct, "vqe") == SelectConfig(
        solver=vqe(layers=3, readout=None, **DIRECT_VQE)
    )
    assert SelectConfig().solver == vqe(**DIRECT_VQE)
    distill = _resolve("--method", "distill")
    assert _distill_config(distill, "exhaustive") == DistillConfig()
    nk = _resolve("--method", "nk-esn", "--solver", "vqe")
    assert _nk_config(nk) == NKESNConfig(solvers=(vqe(**_VQE_FLAGS),))


def test_vqe_objective_flag():
    """Direct selection tunes on the Gibbs objective by default; --vqe-gibbs 0 is
    the expected cost; the other methods keep the expectation."""
    assert _resolve()["vqe_gibbs"] == DIRECT_VQE["gibbs"] > 0
    assert _select_config(_resolve(), "vqe").solver.kwargs["gibbs"] == 16.0
    plain = _select_config(_resolve("--vqe-gibbs", "0"), "vqe").solver
    assert "gibbs" not in plain.kwargs
    hot = _select_config(_resolve("--vqe-gibbs", "4"), "vqe").solver
    assert hot.build(4).resources["gibbs"] == 4.0
    assert _resolve("--method", "distill", "--solver", "vqe")["vqe_gibbs"] == 0.0


def test_flags_of_another_method_are_errors():
    with pytest.raises(ValueError, match="--teacher-hidden do"):
        _resolve("--teacher-hidden", "8")
    with pytest.raises(ValueError, match="--dataset do"):
        _resolve("--method", "nk-esn", "--dataset", "iris")


def test_config_file_then_flags(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"k": 6, "sweeps": 2, "model": "mlp:32,16"}))
    s = _resolve("--config", str(cfg), "--sweeps", "5")
    assert (s["k"], s["sweeps"], s["hidden"]) == (6, 5, "32,16")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--solver", "vqe,nope"], "--solver"),
        (["--solver", "vqe,vqe"], "distinct"),
        (["--model", "rnn"], "--model"),
        (["--hidden", "8,x"], "--hidden"),
        (["--hidden", "0"], "--hidden"),
        (["--dense-epochs", "-1"], "--dense-epochs"),
        (["--opt", "vqe.steps"], "SOLVER.NAME=VALUE"),
        (["--opt", "sa.steps=3"], "names solver 'sa'"),
        (["--vqe-gibbs", "-1"], "--vqe-gibbs must be a number >= 0"),
    ],
)
def test_bad_settings(argv, match):
    with pytest.raises(ValueError, match=match):
        _resolve(*argv)


def test_solver_options_reach_their_solver(tmp_path):
    out = tmp_path / "opts"
    argv = ["run", "--dataset", "iris", *TINY, "--solver", "sa,random"]
    argv += ["--opt", "sa.restarts=2", "--opt", "random.samples=1", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    groups = result["resources"]["groups"]
    assert result["solvers"]["random"]["lookups"] == groups  # one sample per group
    assert result["config"]["opt"] == ["sa.restarts=2", "random.samples=1"]


def test_bad_config_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        _resolve("--config", str(bad))
    bad.write_text(json.dumps({"kk": 1}))
    with pytest.raises(ValueError, match="unknown keys"):
        _resolve("--config", str(bad))


def test_run_writes_result_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--dataset", "iris", *TINY, "--out", str(out)]) == 0
    table = capsys.readouterr().out
    for row in ("vqe (masks)", "exhaustive (masks)", "dense (trained)", "random"):
        assert row in table
    result = json.loads((out / "result.json").read_text())
    assert set(TOP_KEYS) <= set(result) and "direct" in result
    for entry in result["solvers"].values():
        assert set(COMMON_KEYS) <= set(entry) and "direct" in entry
        assert len(entry["history"]) == 1
    assert result["solver"] == "vqe"
    assert "teacher_hidden" not in result["config"]  # only settings that apply
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["solver"] for line in lines] == ["vqe", "exhaustive"]
    assert result["config"]["dataset"] == "iris"
    res = result["resources"]
    assert res["qubits"] == 4 and res["groups"] > 0
    assert {"depth", "two_qubit_gates"} <= set(res)
    assert result["solvers"]["exhaustive"]["optimum_rate"] == 1.0
    assert 0.0 <= result["optimum_rate"] <= 1.0
    masks = np.load(out / "masks_vqe.npz")
    assert masks["layer0"].shape == (4, 8) and masks["layer1"].shape == (8, 3)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_run_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = np.array([5, 7, 9])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)]
    path = tmp_path / "data.csv"
    rows = ["a,b,c,label"] + [
        ",".join(f"{v:.4f}" for v in r) + f",{c}" for r, c in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(rows))
    out = tmp_path / "csv"
    argv = ["run", "--dataset", f"csv:{path}", "--solver", "exhaustive", *TINY]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["dataset"]["num_classes"] == 3
    assert result["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--dataset", "nope"], "dataset"),
        (["--dataset", "csv:/no/such/file.csv"], "file.csv"),
        (["--k", "0"], "k must"),
        (["--readout", "9"], "readout"),
        (["--memory-mb", "0.0001"], "MiB"),
        (["--mode", "parallel", "--grouping", "neuron"], "mask_level"),
        (["--batch-samples", "0"], "batch_samples"),
        (["--batch-samples", "10000"], "exceeds the"),
    ],
)
def test_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, match):
    out = tmp_path / "err"
    assert main(["run", "--dataset", "iris", *TINY, "--out", str(out), *argv]) == 2
    assert match in capsys.readouterr().err
    assert not (out / "result.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["wine", "breast_cancer", "digits"])
def test_every_bundled_dataset_runs(tmp_path, dataset):
    out = tmp_path / dataset
    argv = ["run", "--dataset", dataset, *TINY, "--solver", "exhaustive"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    # A tiny budget (8 hidden units, one sweep): clearly above chance is the claim.
    assert result["test_accuracy"] > 1.0 / result["dataset"]["num_classes"] + 0.1


@pytest.mark.slow
def test_fashion_mnist_subsample_cnn(tmp_path):
    from qselax.data import FASHION_MNIST_DIR

    if not (FASHION_MNIST_DIR and __import__("os").path.isdir(FASHION_MNIST_DIR)):
        pytest.skip("dataset-fashion-mnist is not installed")
    out = tmp_path / "fm"
    argv = ["run", "--dataset", "fashion_mnist", "--max-train", "300", *TINY]
    argv += ["--model", "cnn:4", "--hidden", "16", "--cost-samples", "64"]
    assert main([*argv, "--solver", "exhaustive", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["test_accuracy"] > 0.3


@pytest.mark.slow
def test_default_demo_meets_its_claims(tmp_path):
    """`qselax run` verbatim: the numbers the README promises."""
    out = tmp_path / "demo"
    assert main(["run", "--quiet", "--out", str(out)]) == 0
    r = json.loads((out / "result.json").read_text())
    vqe, exact = r["solvers"]["vqe"], r["solvers"]["exhaustive"]
    assert exact["test_accuracy"] >= 0.92
    assert vqe["optimum_rate"] >= 0.9
    assert vqe["test_accuracy"] >= exact["test_accuracy"] - 0.02


DISTILL = [
    "--method", "distill", "--dataset", "iris", "--teacher-hidden", "4",
    "--width-factor", "2", "--k", "3", "--sweeps", "1", "--block-size", "8",
    "--teacher-epochs", "5", "--val-samples", "12", "--quiet",
]  # fmt: skip


def test_method_distill_writes_its_fields(tmp_path, capsys):
    out = tmp_path / "distill"
    argv = ["run", *DISTILL, "--solver", "exhaustive", "--compression", "magnitude"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "teacher (trained)" in capsys.readouterr().out
    r = json.loads((out / "result.json").read_text())
    assert r["method"] == "distill" and r["config"]["compression"] == "magnitude"
    assert set(TOP_KEYS) <= set(r) and "mode" not in r["config"]
    assert 0.0 <= r["distill"]["teacher_test_accuracy"] <= 1.0
    assert 0.0 <= r["test_accuracy"] <= 1.0
    own = r["solvers"]["exhaustive"]["distill"]
    assert len(own["block_losses"]) == len(own["block_optimum_rates"]) == 2
    assert own["block_optimum_rates"] == [1.0, 1.0]
    assert r["landscape_evals"] == r["resources"]["groups"] * 2**3
    masks = np.load(out / "masks_exhaustive.npz")
    assert masks["block0_layer0"].shape == (4, 8)
    assert masks["block1_compression"].shape == (6, 3)


def test_evaluator_flag_and_old_method_values():
    assert _resolve()["method"] == "direct"
    assert _resolve("--evaluator", "suffix")["evaluator"] == "suffix"
    with pytest.raises(SystemExit):
        _resolve("--method", "rank1")  # argparse: not a method any more


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--model", "cnn"], "--model mlp"),
        (["--mode", "parallel"], "sequential"),
        (["--teacher-hidden", "4,x"], "--teacher-hidden"),
        (["--width-factor", "0"], "--width-factor"),
        (["--teacher-epochs", "0"], "--teacher-epochs"),
        (["--evaluator", "naive"], "--evaluator"),
        (["--memory-mb", "0.00001"], "memory_mb"),
        (["--grouping", "neuron"], "mask_level"),
    ],
)
def test_distill_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, match):
    out = tmp_path / "err"
    assert main(["run", *DISTILL, "--out", str(out), *argv]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_config_file_with_old_method_key(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "rank1"}))
    with pytest.raises(ValueError, match="evaluator"):
        _resolve("--config", str(cfg))


NK = [
    "--method", "nk-esn", "--n", "6", "--k", "1", "--reservoir", "8",
    "--max-steps", "30", "--sweeps", "1", "--bias-scale", "0",
    "--output-scale", "30", "--quiet",
]  # fmt: skip


def test_method_nk_esn_writes_its_fields(tmp_path, capsys):
    out = tmp_path / "nk"
    argv = [*NK, "--plant", "reference", "--solver", "grover", "--out", str(out)]
    assert main(["run", *argv]) == 0
    printed = capsys.readouterr().out
    assert "dp" in printed and "generalisation" in printed
    assert "best table entry" in printed
    assert "plant reference (1 RK4 step(s) of 0.01 s per control step)" in printed
    r = json.loads((out / "result.json").read_text())
    assert (r["config"]["plant"], r["config"]["substeps"]) == ("reference", 1)
    assert r["nk-esn"]["pole"]["poles"] == "hanging"
    entry = r["nk-esn"]["best_entry"]
    assert 0 <= entry["generalisation"] <= 625 and len(entry["bits"]) == 2
    assert r["method"] == "nk-esn" and r["solver"] == "grover"
    assert set(TOP_KEYS) <= set(r) and r["dataset"] is None
    assert r["nk-esn"]["episodes"] == 6 * 2**2
    assert set(r["solvers"]["grover"]["nk-esn"]["modes"]) == {"independent", "shared"}
    assert {(row["solver"], row["mode"]) for row in r["nk-esn"]["rows"]} == {
        ("exhaustive", "independent"),
        ("dp", "shared"),
        ("grover", "independent"),
        ("grover", "shared"),
    }
    assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["optimum_rate"] <= 1.0
    assert r["resources"]["qubits"] == 2 and len(r["model"]["neighbours"]) == 6
    table = np.load(out / "landscapes.npz")["fitness"]
    assert table.shape == (6, 4)
    assert entry["fitness"] == pytest.approx(float(table.max()))
    # Every row's per-output fitness, and the figures `qselax plot` draws of them.
    npz = np.load(out / "landscapes.npz")
    rows = r["nk-esn"]["rows"]
    assert npz["row_labels"].tolist() == [f"{w['solver']}/{w['mode']}" for w in rows]
    totals = [w["total_fitness"] for w in rows]
    np.testing.assert_allclose(npz["row_fitness"].sum(-1), totals, rtol=1e-5)
    written, skipped = plot_run(out)
    assert {p.name for p in written} == {
        f"{n}.{e}" for n in ("history", "committees", "nk_fitness") for e in FORMATS
    }
    assert set(skipped) == {"search", "kept_fraction", "landscapes", "entanglement"}


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--nk-mode", "joint"], "--nk-mode"),
        (["--k", "6"], "k + 1"),
        (["--max-steps", "0"], "--max-steps"),
        (["--output-scale", "-1"], "output_scale"),
        (["--top-fraction", "0"], "top_fraction"),
        (["--substeps", "0"], "substeps"),
    ],
)
def test_nk_esn_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, match):
    out = tmp_path / "err"
    assert main(["run", *NK, "--out", str(out), *argv]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_plant_flags():
    # The default plant is NKESNConfig's: inverted, controlled every 0.01 s (the
    # masks-only search's setting); --substeps 2 is the benchmark's 0.02 s.
    default = _resolve("--method", "nk-esn")
    assert default["substeps"] == 1 and _nk_config(default).pole == NKESNConfig().pole
    two = _resolve("--method", "nk-esn", "--substeps", "2")
    assert _nk_config(two).pole == PoleConfig()
    ref = _resolve("--method", "nk-esn", "--plant", "reference")
    assert ref["substeps"] == 1 and _nk_config(ref).pole == plant_config("reference")
    three = _resolve("--method", "nk-esn", "--plant", "reference", "--substeps", "3")
    assert _nk_config(three).pole == plant_config("reference", substeps=3)
    # training starts: NKESNConfig's on the inverted plant, the reference's one start
    # on its plant, or the flag's
    assert _nk_config(default).train_starts == NKESNConfig().train_starts
    assert _nk_config(ref).train_starts == 1
    four = _resolve("--method", "nk-esn", "--plant", "reference", "--train-starts", "4")
    assert _nk_config(four).train_starts == 4
    with pytest.raises(ValueError, match="train_starts"):
        _resolve("--method", "nk-esn", "--train-starts", "0")
    flags = (["--plant", "reference"], ["--substeps", "1"], ["--train-starts", "2"])
    for flag in flags:
        with pytest.raises(ValueError, match="do.*not apply to --method direct"):
            _resolve(*flag)


def test_subsampled_landscapes_from_the_command_line(tmp_path):
    out = tmp_path / "sub"
    argv = ["run", "--dataset", "iris", *TINY, "--solver", "exhaustive"]
    argv += ["--batch-samples", "16", "--cost-samples", "40", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["batch_samples"] == 16
    assert result["solvers"]["exhaustive"]["direct"]["landscape_samples"] == 16
