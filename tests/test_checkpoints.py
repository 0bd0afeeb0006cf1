"""Checkpoints and resume: a resumed run computes exactly an uninterrupted run's."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from qselax.checkpoints import Checkpoints
from qselax.cli import DEFAULTS, _differs, _start, build_parser, main, resolve
from qselax.driver import Driver, initial_state
from qselax.nk import NKParams, nk_landscape
from qselax.solvers import make_solver
from qselax.sweeps import make_sweep

N, K, SWEEPS = 12, 3, 5
_RNG = np.random.default_rng(3)
TABLES = _RNG.normal(size=(N, 2**K)).astype(np.float32)
WIRING = np.stack([(np.arange(N) + j) % N for j in range(K)], 1).astype(np.int32)
PARAMS = NKParams(TABLES, WIRING)
# "sa" draws from the state's key every sweep, so a resume that lost the key
# would choose differently.
SWEEP = make_sweep(nk_landscape(WIRING, N, K), make_solver("sa", K), mode="parallel")


class _Stop(Exception):
    pass


def _stop_after(n: int):
    """A logger that raises after the n-th record (the checkpoint is saved first)."""
    seen = []

    def logger(record):
        seen.append(record)
        if len(seen) == n:
            raise _Stop

    return logger


def _stages(checkpoints=None, loggers=(), patience=None):
    """Two stages (as distillation's blocks), the second from the first's mask."""
    out = []
    state = initial_state(jax.random.key(7), np.ones(N, np.float32))
    with Driver(
        2 * SWEEPS, progress=False, loggers=loggers, checkpoints=checkpoints
    ) as driver:
        for name in ("block0", "block1"):
            run = driver.run(
                SWEEP,
                PARAMS,
                state,
                SWEEPS,
                k=K,
                stage=name,
                select_on="cost",
                patience=patience,
            )
            out.append(run)
            state = initial_state(jax.random.fold_in(run.state.key, 1), run.state.flat)
    return out


def _plain(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _assert_same(got, want):
    for a, b in zip(got, want, strict=True):
        assert _plain(a.history) == _plain(b.history)
        np.testing.assert_array_equal(a.state.flat, b.state.flat)
        np.testing.assert_array_equal(
            jax.random.key_data(a.state.key), jax.random.key_data(b.state.key)
        )
        assert int(a.state.sweep) == int(b.state.sweep)
        for name in ("best_sweep", "groups", "lookups", "landscape_evals", "shots"):
            assert getattr(a, name) == getattr(b, name), name
        for name in ("optimum_rate", "top1_optimum_rate", "nontrivial_optimum_rate"):
            assert getattr(a, name) == getattr(b, name), name
        chex.assert_trees_all_equal(
            {k: np.asarray(v) for k, v in a.info._asdict().items() if k != "metrics"},
            {k: np.asarray(v) for k, v in b.info._asdict().items() if k != "metrics"},
        )


@pytest.mark.parametrize("stop", [1, 3, SWEEPS, SWEEPS + 2, 2 * SWEEPS - 1])
@pytest.mark.parametrize("patience", [None, 1])
def test_interrupted_stages_resume_to_the_uninterrupted_result(
    tmp_path, stop, patience
):
    want = _stages(patience=patience)
    records = []
    try:
        _stages(Checkpoints(tmp_path), [_stop_after(stop)], patience)
    except _Stop:
        pass
    got = _stages(Checkpoints(tmp_path), [records.append], patience)
    _assert_same(got, want)
    # the resumed driver hands its loggers every record, restored ones included
    assert _plain(records) == _plain([h for r in want for h in r.history])
    assert Checkpoints(tmp_path).stages() == ["block0", "block1"]


def test_finished_stages_are_not_run_again(tmp_path):
    first = _stages(Checkpoints(tmp_path))
    again = _stages(Checkpoints(tmp_path))
    _assert_same(again, first)
    assert [r.run_s for r in again] == [r.run_s for r in first]  # restored, not rerun


def test_checkpoint_of_other_shapes_is_an_error(tmp_path):
    _stages(Checkpoints(tmp_path))
    other = initial_state(jax.random.key(0), np.ones(N + 1, np.float32))
    with pytest.raises(ValueError, match="another configuration"):
        Checkpoints(tmp_path).restore("block0", other)


def test_bad_checkpoint_paths_and_names(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        Checkpoints(path)
    with pytest.raises(ValueError, match="cannot name"):
        Checkpoints(tmp_path).sub("../up")
    assert Checkpoints(tmp_path / "none").restore("block0", None) is None
    assert Checkpoints(tmp_path / "none").stages() == []


def test_saved_trees_round_trip_and_check_shapes(tmp_path):
    ckpt = Checkpoints(tmp_path)
    tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": 1.5}
    ckpt.save_tree("table", tree)
    back = Checkpoints(tmp_path).restore_tree("table", tree)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert float(back["s"]) == 1.5
    assert ckpt.restore_tree("missing", tree) is None
    with pytest.raises(ValueError, match="other shapes"):
        Checkpoints(tmp_path).restore_tree("table", {"a": np.zeros(6), "s": 0.0})


TINY = [
    "run", "--dataset", "iris", "--hidden", "8", "--k", "4", "--sweeps", "3",
    "--solver", "exhaustive,sa", "--dense-epochs", "0", "--quiet",
]  # fmt: skip


def _numbers(result: dict):
    """result.json without timings, the platform and the output folder."""
    if isinstance(result, dict):
        return {
            k: _numbers(v)
            for k, v in result.items()
            if k not in ("compile_s", "run_s", "seconds", "platform", "out")
        }
    if isinstance(result, list):
        return [_numbers(v) for v in result]
    return result


def _masks(out: Path) -> dict:
    return {
        p.name: dict(np.load(p)) for p in sorted(out.glob("masks_*.npz"))
    }  # fmt: skip


def test_cli_resume_of_a_finished_run_and_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out)]) == 0
    first = json.loads((out / "result.json").read_text())
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert main([*TINY, "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "result.json").read_text())
    assert _numbers(again) == _numbers(first)
    assert again["solvers"]["sa"]["run_s"] == first["solvers"]["sa"]["run_s"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(lines)
    capsys.readouterr()
    assert main([*TINY, "--out", str(out), "--resume", "--seed", "5"]) == 2
    assert "--seed differ" in capsys.readouterr().err
    # without --resume, the run starts again (checkpoints cleared)
    assert main([*TINY, "--out", str(out), "--seed", "5"]) == 0
    assert json.loads((out / "result.json").read_text())["seed"] == 5


def test_cli_resume_with_more_sweeps_continues_a_finished_selection(tmp_path, capsys):
    """A finished direct selection resumed with a larger --sweeps runs only the new
    sweeps and ends where an uninterrupted run of that many ends; fewer sweeps are
    refused."""
    at = TINY.index("--sweeps") + 1
    two, three = [*TINY], [*TINY]
    two[at], three[at] = "2", "3"
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*three, "--out", str(whole)]) == 0
    assert main([*two, "--out", str(cut)]) == 0
    assert main([*three, "--out", str(cut), "--resume"]) == 0
    expected = json.loads((whole / "result.json").read_text())
    resumed = json.loads((cut / "result.json").read_text())
    assert _numbers(resumed) == _numbers(expected)
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((whole / "metrics.jsonl").read_text().splitlines())
    chex.assert_trees_all_equal(_masks(cut), _masks(whole))
    capsys.readouterr()
    assert main([*two, "--out", str(cut), "--resume"]) == 2
    assert "--sweeps differ" in capsys.readouterr().err
    # A copied folder resumes, and so do checkpoints written before a setting was
    # added to qselax, while that setting stays at its default.
    moved = tmp_path / "moved"
    shutil.copytree(cut, moved)
    record = moved / "checkpoints" / "settings.json"
    saved = json.loads(record.read_text())
    del saved["accept_split"]
    record.write_text(json.dumps(saved))
    assert main([*three, "--out", str(moved), "--resume"]) == 0
    assert main([*three, "--out", str(moved), "--resume", "--accept-split", "val"]) == 2
    assert "--accept-split differ" in capsys.readouterr().err
    # group_order is implied "unit" in checkpoints written before it existed (then
    # the only order): they resume with --group-order unit, not the new default.
    del saved["group_order"]
    record.write_text(json.dumps(saved))
    assert main([*three, "--out", str(moved), "--resume"]) == 2
    assert "--group-order differ" in capsys.readouterr().err
    assert main([*three, "--out", str(moved), "--resume", "--group-order", "unit"]) == 0


def test_checkpoints_without_the_vqe_objective_imply_the_expectation():
    """VQE checkpoints written before --vqe-gibbs existed tuned the expected cost:
    they resume with --vqe-gibbs 0, not under the Gibbs default."""
    settings = resolve(build_parser().parse_args(["run"]))
    saved = {k: v for k, v in settings.items() if k != "vqe_gibbs"}
    assert _differs(saved, settings, "vqe_gibbs")
    assert not _differs(saved, {**settings, "vqe_gibbs": 0.0}, "vqe_gibbs")


@pytest.mark.parametrize("method", ["distill", "nk-esn"])
def test_resume_with_more_sweeps_is_refused_for_staged_methods(tmp_path, method):
    """Only a direct selection grows: distillation's later blocks and the NK-ESN's
    stages read the earlier ones, so more sweeps there is a changed setting."""
    settings = {**DEFAULTS, "method": method, "sweeps": 2, "out": str(tmp_path)}
    _start(settings)
    with pytest.raises(ValueError, match="--sweeps differ"):
        _start({**settings, "sweeps": 3}, resume=True)
    direct = tmp_path / "direct"
    settings = {**settings, "method": "direct", "out": str(direct)}
    _start(settings)
    _start({**settings, "sweeps": 3}, resume=True)
    saved = json.loads((direct / "checkpoints" / "settings.json").read_text())
    assert saved["sweeps"] == 3


KILL_ARGS = [
    "run", "--dataset", "iris", "--hidden", "12", "--k", "4", "--sweeps", "6",
    "--solver", "exhaustive,vqe", "--dense-epochs", "0", "--quiet",
]  # fmt: skip


def _cli(args, **kwargs):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "qselax.cli", *args]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs
    )


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    start = time.perf_counter()
    proc = _cli([*KILL_ARGS, "--out", str(whole)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    total = time.perf_counter() - start
    seed = int.from_bytes(os.urandom(4), "little")
    delay = random.Random(seed).uniform(0.1, 0.9) * total
    proc = _cli([*KILL_ARGS, "--out", str(cut)])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    killed = proc.wait(timeout=60)
    resumed = _cli([*KILL_ARGS, "--out", str(cut), "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    why = f"kill seed {seed}: SIGKILL after {delay:.1f} s of {total:.1f} s ({killed})"
    want = json.loads((whole / "result.json").read_text())
    got = json.loads((cut / "result.json").read_text())
    assert _numbers(got) == _numbers(want), why
    for name, arrays in _masks(whole).items():
        chex.assert_trees_all_equal(_masks(cut)[name], arrays)
    plain = [
        [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in f]
        for f in ((whole / "metrics.jsonl").open(), (cut / "metrics.jsonl").open())
    ]
    assert plain[0] == plain[1], why


def test_a_warm_solver_carry_is_checkpointed_and_resumed(tmp_path):
    from qselax.solvers import solver_spec

    solver = make_solver(solver_spec("vqe", steps=20, warm_steps=3), K)
    sweep = make_sweep(nk_landscape(WIRING, N, K), solver, block_size=4)
    state = initial_state(jax.random.key(1), np.ones(N, np.float32))

    def run(checkpoints=None, loggers=()):
        with Driver(4, progress=False, loggers=loggers, checkpoints=checkpoints) as d:
            return d.run(sweep, PARAMS, state, 4, k=K)

    want = run()
    with pytest.raises(_Stop):
        run(Checkpoints(tmp_path), [_stop_after(2)])
    got = run(Checkpoints(tmp_path))
    assert _plain(got.history) == _plain(want.history)
    assert [h["optimizer_steps"] for h in got.history] == [20.0, 3.0, 3.0, 3.0]
    chex.assert_trees_all_equal(got.state.carry, want.state.carry)
