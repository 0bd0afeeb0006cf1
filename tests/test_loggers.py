"""Loggers: metrics.jsonl lines and TensorBoard scalars as a run goes."""

import json
import struct

import numpy as np
from tensorboardX.proto import event_pb2

from qselax.cli import main
from qselax.loggers import JsonLog, TensorBoardLog

TINY = [
    "run", "--dataset", "iris", "--hidden", "8", "--k", "4", "--sweeps", "2",
    "--solver", "exhaustive", "--dense-epochs", "0", "--quiet",
]  # fmt: skip


def _scalars(logdir) -> dict:
    """``{tag: [(step, value), ...]}`` read from the TFRecord event files."""
    out: dict = {}
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_json_log_appends_one_line_per_record(tmp_path):
    log = JsonLog(tmp_path / "m.jsonl", solver="sa")
    log({"sweep": 1, "cost": 2.0})
    log({"sweep": 2, "cost": 1.0})
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert lines == [
        {"solver": "sa", "sweep": 1, "cost": 2.0},
        {"solver": "sa", "sweep": 2, "cost": 1.0},
    ]


def test_tensorboard_log_writes_numeric_fields_per_step(tmp_path):
    log = TensorBoardLog(tmp_path, "vqe")
    log({"stage": "block0", "sweep": 1, "cost": 2.5, "mean_entropy": None})
    log({"stage": "block1", "sweep": 1, "cost": 1.5, "ok": True, "x": float("nan")})
    log.close()
    scalars = _scalars(tmp_path)
    assert scalars["vqe/block0/cost"] == [(1, 2.5)]
    assert scalars["vqe/block1/cost"] == [(2, 1.5)]
    assert not any("entropy" in t or t.endswith(("/ok", "/x")) for t in scalars)


def test_cli_tensorboard_has_a_scalar_per_sweep_like_metrics(tmp_path):
    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out), "--tensorboard"]) == 0
    scalars = _scalars(out / "tensorboard")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # the same numbers as metrics.jsonl (TensorBoard keeps float32)
    cost = [v for _, v in scalars["exhaustive/network/cost"]]
    assert cost == [float(np.float32(r["cost"])) for r in lines]
    assert [s for s, _ in scalars["exhaustive/network/val_accuracy"]] == [1, 2]
