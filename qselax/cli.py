"""The ``qselax`` command.

``qselax run`` with no flags runs the default demo: digits, a random signed-constant
MLP (64-256-10, 18,944 weights), fan-in groups of K = 8 weights, sequential sweeps with
``vqe`` and with ``exhaustive``, beside the trained dense twin and the unmasked random
network.  It prints a comparison table and writes ``DIR/result.json`` (the one schema
of :mod:`qselax.results`), ``DIR/metrics.jsonl`` (one line per sweep, written as the
run goes), the selected masks (``DIR/masks_<solver>.npz``) and the exact
landscapes of a few groups at the final mask (``DIR/landscapes_<solver>.npz``,
:func:`qselax.selection.landscape_sample`).  ``qselax run --config
FILE.json`` reads the same settings from a JSON object whose keys are the long flag
names (``--k`` -> ``"k"``, ``--block-size`` -> ``"block_size"``); flags given on the
command line win.

Every method's defaults are its config's (:class:`qselax.SelectConfig`,
:class:`qselax.DistillConfig`, :class:`qselax.NKESNConfig`, the solver factories'):
the command line reads them from there, so the API and the CLI cannot disagree.
``--solver`` names the solvers to compare (each one run of the method); solver
options come from ``--vqe-*``, ``--readout`` and ``--opt SOLVER.NAME=VALUE``.

``--method`` picks the selection method: ``direct`` (the whole random network
selected on the cost split, training by default), ``edge-popup`` and
``supermask`` (the strong-lottery-ticket field's score-trained mask finders on the
same frozen network, :mod:`qselax.scores`), ``dense`` (the trained twin),
``distill`` (paper method A,
:mod:`qselax.distill`: a trained teacher MLP and a random student selected block by
block to reproduce its layers) or ``nk-esn`` (paper method B,
:mod:`qselax.nk_selection`: an NK Echo State Network balancing two poles on a cart
without velocity inputs, its committees scored by the 625-start generalisation
test; data flags do not apply; ``--plant inverted|reference`` picks the plant of
:func:`qselax.pole.plant_config` and ``--substeps`` its RK4 steps per control step).
A flag of one method given to another is an error.

``qselax replay DIR`` loads one run of the NK-ESN reference implementation's own
files (``NN_r.dat``, ``NK_r.dat``, ``solDP_r.dat``; :mod:`qselax.reference`) and
scores it: qselax's tabulation against the file's table, the DP optimum, and the
generalisation scores of the reference's committees (prints JSON; ``--out FILE``
also writes it).

``qselax plot DIR`` draws the figures of a run directory into ``DIR/plots/`` (PNG
and SVG, :func:`qselax.plots.plot_run`) and prints the files it wrote; a figure
whose data the run lacks is skipped with a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

import qselax
from qselax.checkpoints import Checkpoints
from qselax.data import DATASETS, load_dataset
from qselax.distill import HIDDEN_WIDTHS, DistillConfig, check_memory, distill
from qselax.esn import ESNConfig
from qselax.groups import GROUP_ORDERS, GROUPINGS
from qselax.landscapes import COSTS, EVALUATORS
from qselax.loggers import JsonLog, TensorBoardLog
from qselax.networks import (
    INITS,
    MASK_LEVELS,
    MODELS,
    PRESETS,
    count_weights,
    make_model,
    train_dense,
)
from qselax.nk import CONNECTIVITIES
from qselax.nk_selection import NK_MODES, NKESNConfig, nk_esn
from qselax.pole import PLANTS, PoleConfig, plant_config
from qselax.results import (
    COMMON_KEYS,
    SCHEMA,
    check_result,
    platform_info,
    write_atomic,
    write_json,
)
from qselax.scores import (
    EVAL_MASKS,
    SCORE_DEFAULTS,
    SCORE_METHODS,
    SCORE_OPTIMIZERS,
    score_config,
    train_scores,
)
from qselax.selection import (
    ACCEPT_SPLITS,
    COST_SPLITS,
    DIRECT_VQE,
    INIT_MASKS,
    SelectConfig,
    landscape_sample,
    plan,
    score,
    select,
)
from qselax.solvers import SOLVERS, make_solver, solver_spec, vqe
from qselax.student import COMPRESSIONS, make_student, make_teacher, student_forward
from qselax.sweeps import ORACLES, SWEEP_MODES
from qselax.training import check_budget

__all__ = ["DEFAULTS", "METHODS", "build_parser", "format_table", "main", "resolve"]

METHODS = ("direct", *SCORE_METHODS, "dense", "distill", "nk-esn")
_BASELINES = (*SCORE_METHODS, "dense")

_SELECT, _DISTILL, _NK = SelectConfig(), DistillConfig(), NKESNConfig()
_ESN: ESNConfig = _NK.esn  # nk-esn's network defaults are NKESNConfig's
_VQE = {
    name: p.default
    for name, p in inspect.signature(vqe).parameters.items()
    if p.default is not inspect.Parameter.empty
}
# The demo network of ``direct`` (the model is no part of SelectConfig).
DIRECT_INIT = "signed_constant"
# ``--method dense``: Adam on every weight (as the direct run's dense reference).
_DENSE = {
    name: p.default
    for name, p in inspect.signature(train_dense).parameters.items()
    if p.default is not inspect.Parameter.empty
}

DEFAULTS = {
    "method": "direct",
    "dataset": "digits",
    "model": "mlp",
    "hidden": "256",
    "channels": "8,16",
    "width": 1.0,
    "init": None,  # the method's: DIRECT_INIT or DistillConfig.init
    "mask_level": _DISTILL.mask_level,
    "grouping": _SELECT.grouping,
    "group_order": _SELECT.group_order,
    "k": None,  # the method's (as sweeps, solver and block_size)
    "solver": None,
    "sweeps": None,  # the method's: SelectConfig, DistillConfig or NKESNConfig
    "mode": _SELECT.mode,
    "block_size": None,
    "cost": _SELECT.cost,
    "init_mask": _SELECT.init_mask,
    "evaluator": _SELECT.evaluator,
    "memory_mb": _SELECT.memory_mb,
    "cost_split": _SELECT.cost_split,
    "cost_samples": _SELECT.cost_samples,
    "batch_samples": _SELECT.batch_samples,
    "patience": _SELECT.patience,
    "accept_split": _SELECT.accept_split,
    "prune_penalty": _SELECT.prune_penalty,
    "val_samples": _DISTILL.val_samples,
    "oracle": _SELECT.oracle,
    "vqe_layers": _VQE["layers"],
    "vqe_steps": None,  # the method's (direct: DIRECT_VQE; else the factory's)
    "vqe_lr": None,
    "vqe_rotations": None,
    "vqe_gibbs": None,  # the method's (direct: DIRECT_VQE's; else 0: the expectation)
    "readout": _VQE["readout"],
    "opt": [],
    "seed": 0,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "max_train": None,
    "data_dir": None,
    "dense_epochs": 100,
    "epochs": None,  # the method's: SCORE_DEFAULTS or train_dense's
    "learning_rate": None,
    "batch_size": None,
    "keep": None,
    "optimizer": None,
    "momentum": None,
    "weight_decay": None,
    "eval_mask": None,
    "teacher_hidden": ",".join(map(str, _DISTILL.teacher_hidden)),
    "width_factor": _DISTILL.width_factor,
    "compression": _DISTILL.compression,
    "hidden_width": _DISTILL.hidden_width,
    "block_scale": _DISTILL.scale,
    "teacher_epochs": _DISTILL.teacher_epochs,
    "n": _ESN.n,
    "reservoir": _ESN.reservoir,
    "connectivity": _ESN.connectivity,
    "nk_mode": ",".join(_NK.modes),
    "max_steps": PoleConfig().max_steps,
    "plant": PLANTS[0],
    "substeps": None,  # NKESNConfig's on its plant (inverted: 1), else the plant's
    "train_starts": None,  # NKESNConfig's for the plant: 8 inverted, 1 reference
    "top_fraction": _NK.top_fraction,
    "bias_scale": _ESN.bias_scale,
    "input_scale": _ESN.input_scale,
    "output_scale": _ESN.output_scale,
    "spectral_radius": _ESN.spectral_radius,
    "leak": _ESN.leak,
    "out": "runs/latest",
}
_FACTORY_VQE = {
    "vqe_steps": _VQE["steps"],
    "vqe_lr": _VQE["learning_rate"],
    "vqe_rotations": ",".join(_VQE["rotations"]),
    "vqe_gibbs": 0.0,
}
_METHOD_DEFAULTS = {
    "direct": {
        "init": DIRECT_INIT,
        "sweeps": _SELECT.sweeps,
        "k": _SELECT.k,
        "block_size": _SELECT.block_size,
        "solver": "vqe,exhaustive",
        "vqe_steps": DIRECT_VQE["steps"],
        "vqe_lr": DIRECT_VQE["learning_rate"],
        "vqe_rotations": ",".join(DIRECT_VQE["rotations"]),
        "vqe_gibbs": DIRECT_VQE["gibbs"],
    },
    "distill": {
        "init": _DISTILL.init,
        "sweeps": _DISTILL.sweeps,
        "k": _DISTILL.k,
        "block_size": _DISTILL.block_size,
        "solver": _DISTILL.solver.name,
        **_FACTORY_VQE,
    },
    "nk-esn": {
        "sweeps": _NK.sweeps,
        "k": _ESN.k,
        "solver": "vqe,exhaustive",
        **_FACTORY_VQE,
    },
    **{m: {"init": DIRECT_INIT, **SCORE_DEFAULTS[m]} for m in SCORE_METHODS},
    "dense": {
        "init": DIRECT_INIT,
        "epochs": _DENSE["epochs"],
        "learning_rate": _DENSE["learning_rate"],
        "batch_size": _DENSE["batch_size"],
    },
}
_SCORE_KEYS = tuple(SCORE_DEFAULTS["edge-popup"])
_NETWORK = ("model", "hidden", "channels", "width", "init", "mask_level")

# Which settings apply to which method (``config`` in result.json records these).
_COMMON = ("method", "solver", "opt", "seed", "out", "k", "sweeps")
_BASE = ("method", "seed", "out")
_VQE_KEYS = (
    "vqe_layers",
    "vqe_steps",
    "vqe_lr",
    "vqe_rotations",
    "vqe_gibbs",
    "readout",
)
_DATA = ("dataset", "val_fraction", "test_fraction", "max_train", "data_dir")
_APPLIES = {
    "direct": (
        *_COMMON,
        *_DATA,
        *_NETWORK,
        "grouping",
        "group_order",
        "mode",
        "block_size",
        "cost",
        "init_mask",
        "evaluator",
        "memory_mb",
        "cost_split",
        "cost_samples",
        "batch_samples",
        "patience",
        "accept_split",
        "prune_penalty",
        "oracle",
        "dense_epochs",
    ),
    "distill": (
        *_COMMON,
        *_DATA,
        "model",
        "init",
        "mask_level",
        "grouping",
        "block_size",
        "memory_mb",
        "val_samples",
        "teacher_hidden",
        "width_factor",
        "compression",
        "hidden_width",
        "block_scale",
        "teacher_epochs",
    ),
    "nk-esn": (
        *_COMMON,
        "n",
        "reservoir",
        "connectivity",
        "nk_mode",
        "max_steps",
        "plant",
        "substeps",
        "train_starts",
        "top_fraction",
        "bias_scale",
        "input_scale",
        "output_scale",
        "spectral_radius",
        "leak",
    ),
    **{m: (*_BASE, *_DATA, *_NETWORK, *_SCORE_KEYS) for m in SCORE_METHODS},
    "dense": (*_BASE, *_DATA, *_NETWORK, "epochs", "learning_rate", "batch_size"),
}


def _csv_ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(
            f"--{name} must be comma-separated integers, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise ValueError(f"--{name} values must be >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qselax", description="Quantum neuron selection on random networks."
    )
    parser.add_argument("--version", action="version", version=qselax.__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="select masks and compare solvers")
    a = run.add_argument
    a("--config", help="JSON file of settings (keys = long flag names)")
    a("--dataset", help=f"one of {DATASETS}, csv:PATH or npz:PATH (default digits)")
    a(
        "--model",
        help=f"one of {MODELS}; 'mlp:256,128' also sets --hidden (default mlp); "
        "lenet300 = LeNet-300-100, conv4 = Conv-4 (fixed widths)",
    )
    a("--hidden", help="hidden widths, comma-separated (default 256)")
    a("--channels", help="cnn conv channels, comma-separated (default 8,16)")
    a("--width", type=float, help="multiplies hidden widths and channels (default 1)")
    a("--init", choices=INITS, help="weight init scheme (default signed_constant)")
    a("--mask-level", choices=MASK_LEVELS, help="weight or neuron masks")
    a("--grouping", choices=GROUPINGS, help="how bits form groups (default fan_in)")
    a(
        "--group-order",
        choices=GROUP_ORDERS,
        help="direct: order of each layer's groups, so which share a sequential "
        "block: interleave (default: a block's groups feed different units) or unit",
    )
    a("--k", type=int, help="bits (qubits) per group (default 8; distill 6)")
    a(
        "--solver",
        help=f"comma-separated solvers from {tuple(SOLVERS)}; the first is "
        "the run's solver (default vqe,exhaustive; distill: exhaustive)",
    )
    a("--sweeps", type=int, help="sweeps per solver (default 3; distill 8)")
    a("--mode", choices=SWEEP_MODES, help="sweep mode (default sequential)")
    a("--block-size", type=int, help="groups solved together (64; distill 16)")
    a("--cost", choices=COSTS, help="cost on the cost split: ce or error (default ce)")
    a("--init-mask", choices=INIT_MASKS, help="starting mask (default ones)")
    a(
        "--method",
        choices=METHODS,
        help="direct (select the whole network, default), edge-popup / supermask "
        "(score-trained masks of the same network), dense (trained twin), distill "
        "(layerwise selection against a trained teacher) or nk-esn",
    )
    a("--evaluator", choices=EVALUATORS, help="direct's landscape evaluator (auto)")
    a("--memory-mb", type=float, help="memory budget of a landscape chunk (512)")
    a(
        "--cost-split",
        choices=COST_SPLITS,
        help="direct: the split the selection cost is taken on (default train; "
        "val is the paper's literal setting); validation picks the kept sweep",
    )
    a(
        "--cost-samples",
        type=int,
        help="direct: cap on cost-split samples (with --batch-samples: the fixed "
        "acceptance sample)",
    )
    a(
        "--batch-samples",
        type=int,
        help="direct: subsampled landscapes, exact on a fresh seeded minibatch of "
        "this many cost-split samples per block (for large data)",
    )
    a(
        "--patience",
        type=int,
        help="direct: stop after this many sweeps without a lower validation cost",
    )
    a(
        "--accept-split",
        choices=ACCEPT_SPLITS,
        help="direct: what a block's proposals are accepted on: cost (the cost "
        "sample, default) or val (kept only where they lower the validation cost)",
    )
    a(
        "--prune-penalty",
        type=float,
        help="direct: add this weight x the fraction of pruned weights to the "
        "cost (a density prior against fitting the cost split; default 0)",
    )
    a("--val-samples", type=int, help="distill: cap on validation samples (targets)")
    a("--vqe-layers", type=int, help="VQE ansatz layers (default 3)")
    a(
        "--vqe-steps",
        type=int,
        help=f"VQE Adam steps per sweep (default {DIRECT_VQE['steps']} for direct, "
        f"{_VQE['steps']} otherwise)",
    )
    a(
        "--vqe-lr",
        type=float,
        help=f"VQE Adam learning rate (default {DIRECT_VQE['learning_rate']} for "
        f"direct, {_VQE['learning_rate']} otherwise)",
    )
    a(
        "--vqe-rotations",
        help="VQE rotations of each layer, comma-separated from rx, ry, rz (default "
        f"{','.join(DIRECT_VQE['rotations'])} for direct: real amplitudes; "
        f"{','.join(_VQE['rotations'])} otherwise)",
    )
    a(
        "--vqe-gibbs",
        type=float,
        help="VQE objective: the Gibbs objective -(1/eta) log <exp(-eta C)> at this "
        f"inverse temperature eta (default {DIRECT_VQE['gibbs']:g} for direct), or 0 "
        "for the expected cost <C> (the default otherwise)",
    )
    a("--readout", type=int, help="VQE readout bitstrings (default 2^K/16)")
    a(
        "--oracle",
        choices=ORACLES,
        help="costs of sampled bitstrings in finite-shot mode (e.g. --opt "
        "vqe.shots=1024): read off the exact landscape, or evaluate the masked "
        "network on them (default landscape; same numbers)",
    )
    a(
        "--opt",
        action="append",
        metavar="SOLVER.NAME=VALUE",
        help="extra solver option, e.g. grover.lam=1.2 or sa.restarts=4 (repeatable)",
    )
    a("--seed", type=int, help="seed of data split, network and solvers (default 0)")
    a("--val-fraction", type=float, help="validation fraction (default 0.2)")
    a("--test-fraction", type=float, help="test fraction (default 0.2)")
    a("--max-train", type=int, help="subsample the training split")
    a("--data-dir", help="directory of IDX/CSV/NPZ files")
    a("--dense-epochs", type=int, help="epochs of the trained dense twin; 0 skips it")
    a(
        "--epochs",
        type=int,
        help="edge-popup/supermask/dense: epochs (tuned: 400 / 200; dense 100)",
    )
    a("--learning-rate", type=float, help="edge-popup/supermask/dense: peak rate")
    a("--batch-size", type=int, help="edge-popup/supermask/dense: batch (128)")
    a("--keep", type=float, help="edge-popup: kept fraction per layer (0.7)")
    a("--optimizer", choices=SCORE_OPTIMIZERS, help="edge-popup/supermask optimiser")
    a("--momentum", type=float, help="edge-popup/supermask: SGD momentum (0.9)")
    a("--weight-decay", type=float, help="edge-popup/supermask: score decay")
    a(
        "--eval-mask",
        choices=EVAL_MASKS,
        help="supermask: evaluate the expected (sigmoid > 1/2) or a sampled mask",
    )
    a("--teacher-hidden", help="distill: teacher hidden widths, comma-separated (32)")
    a("--width-factor", type=int, help="distill: student width / teacher width (8)")
    a(
        "--compression",
        choices=COMPRESSIONS,
        help="distill: student output to teacher width (default magnitude)",
    )
    a(
        "--hidden-width",
        choices=HIDDEN_WIDTHS,
        help="distill: block hidden width f*max(t_prev, t) or f*t (default max)",
    )
    a(
        "--no-block-scale",
        dest="block_scale",
        action="store_const",
        const=False,
        help="distill: raw block loss, without the least-squares block scale",
    )
    a("--teacher-epochs", type=int, help="distill: teacher Adam epochs (100)")
    a("--n", type=int, help=f"nk-esn: probe neurons = outputs N ({_ESN.n})")
    a("--reservoir", type=int, help=f"nk-esn: reservoir neurons ({_ESN.reservoir})")
    a(
        "--connectivity",
        choices=CONNECTIVITIES,
        help="nk-esn: outputs read probes i..i+K (adjacent, default) or i + K random",
    )
    a(
        "--nk-mode",
        help="nk-esn: comma-separated from independent,shared (default both)",
    )
    a("--max-steps", type=int, help="nk-esn: episode cap in control steps (1000)")
    a(
        "--plant",
        choices=PLANTS,
        help="nk-esn: the double pole (inverted, default) or the NK-ESN reference "
        "code's plant (reference: hanging poles, one 0.01 s RK4 step per control "
        "step)",
    )
    a("--substeps", type=int, help="nk-esn: RK4 steps of 0.01 s per control step")
    a(
        "--train-starts",
        type=int,
        help="nk-esn: training episodes per bit setting, the training start and "
        f"random ones ({_NK.train_starts} on the inverted plant, 1 on the reference)",
    )
    a("--top-fraction", type=float, help="nk-esn: share of the top committee (0.2)")
    a("--bias-scale", type=float, help=f"nk-esn: biases ({_ESN.bias_scale:g})")
    a("--input-scale", type=float, help=f"nk-esn: input gain ({_ESN.input_scale:g})")
    a("--output-scale", type=float, help=f"nk-esn: output gain ({_ESN.output_scale:g})")
    a(
        "--spectral-radius",
        type=float,
        help=f"nk-esn: the reservoir's spectral radius ({_ESN.spectral_radius:g})",
    )
    a(
        "--leak",
        type=float,
        help=f"nk-esn: reservoir leak rate in (0, 1] ({_ESN.leak:g})",
    )
    a("--out", help="output directory (default runs/latest)")
    a("--quiet", action="store_true", help="no progress bars")
    a(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --out (checkpoints are kept after "
        "every sweep, every block for distill; baselines start again); a direct "
        "selection may ask for more --sweeps than it ran",
    )
    a(
        "--tensorboard",
        action="store_true",
        help="also log every sweep as TensorBoard scalars in OUT/tensorboard "
        "(pip install 'qselax[tensorboard]')",
    )
    replay = sub.add_parser(
        "replay", help="score a run of the NK-ESN reference implementation's files"
    )
    replay.add_argument("dir", help="folder of NN_r.dat, NK_r.dat, solDP_r.dat")
    replay.add_argument("--run", type=int, default=0, help="run number r (0)")
    replay.add_argument(
        "--plant", choices=PLANTS, default="reference", help="(default reference)"
    )
    replay.add_argument("--substeps", type=int, help="RK4 steps per control step")
    replay.add_argument("--out", help="also write the JSON to this file")
    plot = sub.add_parser(
        "plot", help="draw a run directory's figures (PNG and SVG) into DIR/plots"
    )
    plot.add_argument("dir", help="a run's output directory (its result.json)")
    plot.add_argument("--out", help="where the figures go (default DIR/plots)")
    return parser


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve(args: argparse.Namespace) -> dict:
    """Defaults, then the JSON config, then command-line flags; checked.

    Returns only the settings that apply to the chosen method (plus ``method``).
    """
    settings, given = dict(DEFAULTS), set()
    if args.config:
        path = Path(args.config)
        try:
            loaded = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"--config {path}: cannot read JSON ({err})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {path}: expected a JSON object")
        unknown = sorted(set(loaded) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"--config {path}: unknown keys {unknown}")
        settings.update(loaded)
        given |= set(loaded)
    for name in DEFAULTS:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
            given.add(name)
    method = settings["method"]
    if method not in METHODS:
        hint = ""
        if method in EVALUATORS:
            hint = " (the landscape evaluator is now 'evaluator' / --evaluator)"
        raise ValueError(f"--method must be one of {METHODS}, got {method!r}{hint}")
    if method == "distill":
        _check_distill(settings, given)
    loose = set() if method in _BASELINES else set(_VQE_KEYS)
    stray = sorted(k for k in given - set(_APPLIES[method]) - loose if k != "config")
    if stray:
        flags = ", ".join(_flag(k) for k in stray)
        raise ValueError(f"{flags} do(es) not apply to --method {method}")
    for name, value in _METHOD_DEFAULTS[method].items():
        if settings[name] is None:
            settings[name] = value
    model = str(settings["model"])
    if ":" in model:
        kind, _, widths = model.partition(":")
        settings["model"] = kind
        settings["hidden" if kind == "mlp" else "channels"] = widths
    if settings["model"] not in MODELS:
        raise ValueError(f"--model must be one of {MODELS}, got {settings['model']!r}")
    fixed = (
        sorted({"hidden", "channels"} & given) if settings["model"] in PRESETS else []
    )
    if fixed:
        raise ValueError(
            f"--model {settings['model']} fixes its widths: drop "
            f"{', '.join(_flag(k) for k in fixed)} (use --width to scale them)"
        )
    if not (isinstance(settings["width"], int | float) and settings["width"] > 0):
        raise ValueError(f"--width must be > 0, got {settings['width']!r}")
    _csv_ints(settings["hidden"], "hidden")
    _csv_ints(settings["channels"], "channels")
    if method in _BASELINES:
        return _resolve_baseline(settings)
    solvers = [s.strip() for s in str(settings["solver"]).split(",") if s.strip()]
    for s in solvers:
        if s not in SOLVERS:
            raise ValueError(f"--solver {s!r} is not one of {tuple(SOLVERS)}")
    if not solvers or len(set(solvers)) != len(solvers):
        raise ValueError(
            f"--solver needs distinct solver names, got {settings['solver']!r}"
        )
    settings["solver"] = ",".join(solvers)
    settings["opt"] = [str(o) for o in settings["opt"] or []]
    for opt in settings["opt"]:
        _parse_opt(opt, solvers)
    if settings["dense_epochs"] < 0:
        raise ValueError(f"--dense-epochs must be >= 0, got {settings['dense_epochs']}")
    if settings["evaluator"] not in EVALUATORS:
        raise ValueError(
            f"--evaluator must be one of {EVALUATORS}, got {settings['evaluator']!r}"
        )
    for s in solvers:
        _spec(settings, s)  # option names
    if method == "nk-esn":
        if settings["substeps"] is None:
            settings["substeps"] = _default_substeps(settings["plant"])
        nk_config = _nk_config(settings).validate()
        if settings["train_starts"] is None:  # recorded as NKESNConfig chose it
            settings["train_starts"] = nk_config.train_starts
    keep = set(_APPLIES[method]) | ({*_VQE_KEYS} if "vqe" in solvers else set())
    return _kept(settings, keep)


def _kept(settings: dict, keep: set) -> dict:
    """The settings in ``keep`` that the chosen network uses."""
    if settings["model"] != "cnn":
        keep = keep - {"channels"}
    if settings["model"] in PRESETS:
        keep = keep - {"hidden"}
    return {k: v for k, v in settings.items() if k in keep}


def _is_image(settings: dict) -> bool:
    """Whether the network is convolutional (takes ``(H, W, C)`` images)."""
    model = settings["model"]
    return PRESETS.get(model, {}).get("kind", model) == "cnn"


def _resolve_baseline(settings: dict) -> dict:
    """Checks the settings of ``edge-popup``, ``supermask`` and ``dense``."""
    method = settings["method"]
    if method == "dense":
        try:
            check_budget(
                settings["epochs"], settings["batch_size"], settings["learning_rate"]
            )
        except ValueError as err:
            raise ValueError(f"--method dense: {err}") from None
    else:
        _score_config(settings)
    return _kept(settings, set(_APPLIES[method]))


def _score_config(settings: dict):
    try:
        return score_config(settings["method"], **{k: settings[k] for k in _SCORE_KEYS})
    except ValueError as err:
        raise ValueError(f"--method {settings['method']}: {err}") from None


def _check_distill(settings: dict, given: set) -> None:
    """Settings that ``--method distill`` cannot honour, named before any work."""
    if settings["model"] != "mlp":
        raise ValueError("--method distill needs --model mlp (teacher and student)")
    if "mode" in given and settings["mode"] != "sequential":
        raise ValueError("--method distill runs sequential sweeps: drop --mode")
    if "evaluator" in given:
        raise ValueError("--evaluator applies to --method direct only")
    if not _csv_ints(settings["teacher_hidden"], "teacher-hidden"):
        raise ValueError("--teacher-hidden needs at least one width")
    for name in ("width_factor", "teacher_epochs"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{_flag(name)} must be an integer >= 1, got {value!r}")
    for name, options in (
        ("hidden_width", HIDDEN_WIDTHS),
        ("compression", COMPRESSIONS),
    ):
        if settings[name] not in options:
            raise ValueError(
                f"{_flag(name)} must be one of {options}, got {settings[name]!r}"
            )


def _parse_opt(text: str, solvers: list[str]) -> tuple[str, str, object]:
    """``SOLVER.NAME=VALUE`` -> (solver, name, JSON value or the raw string)."""
    target, eq, raw = text.partition("=")
    solver, dot, name = target.partition(".")
    if not (eq and dot and name.isidentifier()):
        raise ValueError(f"--opt must look like SOLVER.NAME=VALUE, got {text!r}")
    if solver not in solvers:
        raise ValueError(
            f"--opt {text!r} names solver {solver!r}, not one of {solvers}"
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return solver, name, value


def _spec(settings: dict, solver: str):
    """The solver spec of one ``--solver`` name: its flags and ``--opt`` values."""
    options = {}
    if solver == "vqe":
        options = {
            "layers": settings.get("vqe_layers", DEFAULTS["vqe_layers"]),
            "steps": settings.get("vqe_steps") or _VQE["steps"],
            "learning_rate": settings.get("vqe_lr") or _VQE["learning_rate"],
            "rotations": tuple(
                str(settings.get("vqe_rotations") or ",".join(_VQE["rotations"])).split(
                    ","
                )
            ),
            "readout": settings.get("readout", DEFAULTS["readout"]),
        }
        gibbs = settings.get("vqe_gibbs") or 0.0
        if isinstance(gibbs, bool) or not isinstance(gibbs, int | float) or gibbs < 0:
            raise ValueError(
                f"--vqe-gibbs must be a number >= 0 (0: the expected cost), got "
                f"{gibbs!r}"
            )
        if gibbs:
            options["gibbs"] = float(gibbs)
    for opt in settings["opt"]:
        target, name, value = _parse_opt(opt, settings["solver"].split(","))
        if target == solver:
            options[name] = value
    return solver_spec(solver, **options)


def _select_config(settings: dict, solver: str) -> SelectConfig:
    fields = {f.name for f in dataclasses.fields(SelectConfig)} - {"solver"}
    return SelectConfig(
        solver=_spec(settings, solver), **{k: settings[k] for k in fields}
    )


def _distill_config(settings: dict, solver: str) -> DistillConfig:
    same = ("init", "mask_level", "grouping", "k", "sweeps", "block_size")
    same += ("width_factor", "compression", "hidden_width", "teacher_epochs")
    return DistillConfig(
        solver=_spec(settings, solver),
        teacher_hidden=_csv_ints(settings["teacher_hidden"], "teacher-hidden"),
        memory_mb=settings["memory_mb"],
        val_samples=settings["val_samples"],
        scale=bool(settings["block_scale"]),
        **{k: settings[k] for k in same},
    )


def _nk_config(settings: dict) -> NKESNConfig:
    modes = tuple(m.strip() for m in str(settings["nk_mode"]).split(",") if m.strip())
    for mode in modes:
        if mode not in NK_MODES:
            raise ValueError(f"--nk-mode {mode!r} is not one of {NK_MODES}")
    substeps = settings.get("substeps")
    extra = {} if substeps is None else {"substeps": substeps}
    try:
        plant = _plant(settings["plant"], max_steps=settings["max_steps"], **extra)
    except ValueError as err:
        raise ValueError(f"--plant/--max-steps/--substeps: {err}") from None
    esn = ("n", "k", "reservoir", "connectivity", "bias_scale", "input_scale")
    esn += ("output_scale", "spectral_radius", "leak")
    return NKESNConfig(
        esn=dataclasses.replace(_ESN, **{k: settings[k] for k in esn}),
        pole=plant,
        solvers=tuple(_spec(settings, s) for s in settings["solver"].split(",")),
        modes=modes,
        sweeps=settings["sweeps"],
        top_fraction=settings["top_fraction"],
        train_starts=settings["train_starts"],
    )


def _default_substeps(name: str) -> int:
    """The plant's RK4 steps per control step; NKESNConfig's for its own plant."""
    plant = _plant(name)
    if dataclasses.replace(plant, substeps=_NK.pole.substeps) == _NK.pole:
        return _NK.pole.substeps
    return plant.substeps


def _plant(name, **overrides) -> PoleConfig:
    if name not in PLANTS:
        raise ValueError(f"--plant must be one of {PLANTS}, got {name!r}")
    return plant_config(name, **overrides)


def _load(settings: dict, image: bool = False):
    return load_dataset(
        settings["dataset"],
        seed=settings["seed"],
        val_fraction=settings["val_fraction"],
        test_fraction=settings["test_fraction"],
        max_train=settings["max_train"],
        image=image,
        data_dir=settings["data_dir"],
    )


def _dataset_info(data) -> dict:
    return {
        "name": data.name,
        "num_classes": data.num_classes,
        "feature_shape": list(data.feature_shape),
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
        "n_test": len(data.y_test),
    }


def _document(settings, solvers: dict, references, dataset, model, extra) -> dict:
    """The result.json of a run (:mod:`qselax.results`); the first solver is main."""
    method = settings["method"]
    main = next(iter(solvers))
    common = {k: solvers[main][k] for k in COMMON_KEYS}
    return check_result(
        {
            "schema": SCHEMA,
            "qselax_version": qselax.__version__,
            "method": method,
            "seed": settings["seed"],
            "solver": main,
            "config": settings,
            **common,
            "solvers": solvers,
            "references": references,
            "dataset": dataset,
            "model": model,
            "platform": platform_info(),
            method: extra,
        }
    )


class _Output(NamedTuple):
    """A run's output folder, its checkpoints and whether to log to TensorBoard."""

    out: Path
    checkpoints: Checkpoints
    tensorboard: bool

    def loggers(self, name: str) -> list:
        """``metrics.jsonl`` lines (and TensorBoard scalars) of one solver's run."""
        logs = [JsonLog(self.out / "metrics.jsonl", solver=name)]
        if self.tensorboard:
            logs.append(TensorBoardLog(self.out / "tensorboard", name))
        return logs


# Settings added since some checkpoints were written whose old behaviour is not the
# new default: the value a checkpoint without them ran with.
_IMPLIED = {"group_order": "unit", "vqe_gibbs": 0.0}


def _differs(saved: dict, settings: dict, key: str) -> bool:
    """Whether a saved run's setting differs from this run's.  The folder itself
    may have moved or been copied ("out" is no setting), and a setting added to
    qselax since the checkpoint was written matches when it is at its default."""
    if key == "out":
        return False
    if key not in saved:
        return settings.get(key) != _IMPLIED.get(key, DEFAULTS.get(key))
    return saved[key] != settings.get(key)


def _more_sweeps(saved: dict, settings: dict) -> bool:
    """Whether a resumed direct selection asks for more sweeps than it saved (the
    one setting that may grow: every sweep after the saved ones is new)."""
    old, new = saved.get("sweeps"), settings.get("sweeps")
    direct = settings.get("method") == "direct"  # (the method itself is unchanged)
    return direct and isinstance(old, int) and isinstance(new, int) and new > old


def _start(
    settings: dict,
    resume: bool = False,
    tensorboard: bool = False,
    checkpointed: bool = True,
) -> _Output:
    """The output folder and its checkpoints: cleared, or kept to resume from.

    ``metrics.jsonl`` (and ``tensorboard/``) always start empty: a resumed driver
    writes the records of the sweeps it restores again, so the file equals an
    uninterrupted run's.  A run that keeps no checkpoints (``checkpointed=False``:
    the baselines' one compiled training loop) clears any old ones and records
    no settings.
    """
    out = Path(settings["out"])
    checkpoints = Checkpoints(out / "checkpoints")
    record = checkpoints.directory / "settings.json"
    if resume and record.exists():
        saved = json.loads(record.read_text())
        changed = sorted(
            k for k in set(saved) | set(settings) if _differs(saved, settings, k)
        )
        if changed == ["sweeps"] and _more_sweeps(saved, settings):
            changed = []  # a direct selection goes on for the extra sweeps
            write_json(record, settings)
        if changed:
            raise ValueError(
                f"--resume: the checkpoints in {checkpoints.directory} are of other "
                f"settings ({', '.join(_flag(k) for k in changed)} differ); drop "
                "--resume to start again"
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    shutil.rmtree(out / "tensorboard", ignore_errors=True)
    if not resume or not checkpointed:
        checkpoints.clear()
    if checkpointed and not record.exists():
        checkpoints.directory.mkdir(parents=True, exist_ok=True)
        write_json(record, settings)
    return _Output(out, checkpoints, tensorboard)


def run(
    settings: dict,
    *,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict:
    """Runs one experiment and returns the result dict (also written to disk).

    Args:
        settings: :func:`resolve`'s settings.
        progress: show progress bars.
        resume: continue from the checkpoints in ``settings["out"]`` (kept after
            every sweep) instead of starting again.
        tensorboard: also write every sweep's record as TensorBoard scalars in
            ``settings["out"]/tensorboard`` (needs tensorboardX).
    """
    runner = {"direct": run_direct, "distill": run_distill, "nk-esn": run_nk_esn}
    runner |= {m: run_baseline for m in _BASELINES}
    return runner[settings["method"]](
        settings, progress=progress, resume=resume, tensorboard=tensorboard
    )


def run_direct(
    settings: dict,
    *,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict:
    """``--method direct``: the whole random network, a selection per solver."""
    data, model = _network(settings)
    names = settings["solver"].split(",")
    configs = {s: _select_config(settings, s) for s in names}
    for config in configs.values():
        plan(model, data, config)  # every check before any heavy work
    output = _start(settings, resume, tensorboard)
    out, checkpoints = output.out, output.checkpoints
    graphdef, weights = nnx.split(model)
    key = jax.random.key(settings["seed"])
    references = {"random": _random_reference(graphdef, weights, data)}
    if settings["dense_epochs"] > 0:
        start = time.perf_counter()
        dense = train_dense(
            jax.random.fold_in(key, 1), model, data, epochs=settings["dense_epochs"]
        )
        references["dense"] = {
            "test_accuracy": dense.test_accuracy,
            "train_accuracy": dense.train_accuracy,
            "val_accuracy": dense.val_accuracy,
            "epochs": dense.epochs,
            "seconds": time.perf_counter() - start,
        }
    solvers = {}
    for i, (name, config) in enumerate(configs.items()):
        sel = select(
            jax.random.fold_in(key, 100 + i),
            model,
            data,
            config,
            progress=progress,
            loggers=output.loggers(name),
            checkpoints=checkpoints.sub(name),
        )
        acc = {
            split: score(graphdef, weights, sel.masks, x, y)
            for split, (x, y) in {
                "test": (data.x_test, data.y_test),
                "train": (data.x_train, data.y_train),
                "val": (data.x_val, data.y_val),
            }.items()
        }
        kept = float(sum(float(m.sum()) for m in sel.masks) / sel.grouping.num_bits)
        solvers[name] = {
            **{f"{s}_accuracy": acc[s]["accuracy"] for s in ("test", "train", "val")},
            "optimum_rate": sel.optimum_rate,
            "top1_optimum_rate": sel.top1_optimum_rate,
            "nontrivial_optimum_rate": sel.nontrivial_optimum_rate,
            "lookups": sel.lookups,
            "landscape_evals": sel.landscape_evals,
            "oracle_calls": sel.oracle_calls,
            "shots": sel.shots,
            "resources": sel.resources,
            "compile_s": sel.compile_s,
            "run_s": sel.run_s,
            "history": sel.history,
            "direct": {
                "solver": config.solver.describe(),
                "test_loss": acc["test"]["loss"],
                "val_loss": acc["val"]["loss"],
                "kept_fraction": kept,
                "best_sweep": sel.best_sweep,
                "landscape_samples": sel.landscape_samples,
                "entanglement": sel.entanglement,
            },
        }
        masks = {f"layer{j}": np.asarray(m, np.uint8) for j, m in enumerate(sel.masks)}
        write_atomic(out / f"masks_{name}.npz", lambda f, m=masks: np.savez(f, **m))
        # A few groups' exact landscapes at the final mask, for `qselax plot`.
        sample = landscape_sample(model, data, config, sel)
        write_atomic(
            out / f"landscapes_{name}.npz", lambda f, s=sample: np.savez(f, **s)
        )
    result = _document(
        settings,
        solvers,
        references,
        _dataset_info(data),
        _model_info(settings, model),
        {},
    )
    write_json(out / "result.json", result)
    return result


def _network(settings: dict):
    """The dataset and the frozen random network of a direct or baseline run."""
    data = _load(settings, image=_is_image(settings))
    model = make_model(
        settings["model"],
        data.feature_shape,
        data.num_classes,
        hidden=_csv_ints(settings.get("hidden", DEFAULTS["hidden"]), "hidden"),
        channels=_csv_ints(settings.get("channels", DEFAULTS["channels"]), "channels"),
        width=settings["width"],
        init=settings["init"],
        mask_level=settings["mask_level"],
        seed=settings["seed"],
    )
    return data, model


def _model_info(settings: dict, model) -> dict:
    layers = [list(model.kernel(l).shape) for l in range(model.num_layers)]
    return {
        "kind": settings["model"],
        "width": settings["width"],
        "weights": count_weights(model),
        "kernels": layers,
    }


def _random_reference(graphdef, weights, data) -> dict:
    """The unmasked random network's accuracies."""
    return {
        f"{split}_accuracy": score(graphdef, weights, None, x, y)["accuracy"]
        for split, x, y in (
            ("test", data.x_test, data.y_test),
            ("train", data.x_train, data.y_train),
        )
    }


def run_baseline(
    settings: dict,
    *,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict:
    """``--method edge-popup|supermask|dense`` on the direct method's network.

    The same data split, frozen random weights (same seed and init) and result.json
    layout as ``--method direct``; one row named after the method.
    """
    del progress  # one compiled call: nothing to report along the way
    method = settings["method"]
    data, model = _network(settings)
    out = _start(settings, checkpointed=False).out  # one compiled loop: none
    graphdef, weights = nnx.split(model)
    key = jax.random.key(settings["seed"])
    references = {"random": _random_reference(graphdef, weights, data)}
    train_n = len(data.y_train)
    if method == "dense":
        res = train_dense(
            jax.random.fold_in(key, 1),
            model,
            data,
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            learning_rate=settings["learning_rate"],
        )
        accs = (res.test_accuracy, res.train_accuracy, res.val_accuracy)
        history, masks = list(res.history), None
        extra = {"best_epoch": res.best_epoch, "kept_fraction": 1.0}
        samples = res.samples
    else:
        res = train_scores(
            jax.random.fold_in(key, 100), model, data, _score_config(settings)
        )
        accs = (res.test_accuracy, res.train_accuracy, res.val_accuracy)
        history, masks = res.history, res.masks
        extra = {"best_epoch": res.best_epoch, "kept_fraction": res.kept_fraction}
        samples = res.samples
    entry = {
        **dict(
            zip(("test_accuracy", "train_accuracy", "val_accuracy"), accs, strict=True)
        ),
        "optimum_rate": None,
        "top1_optimum_rate": None,
        "nontrivial_optimum_rate": None,
        "lookups": None,
        "landscape_evals": None,
        "oracle_calls": None,
        "shots": None,
        "resources": None,
        "compile_s": res.compile_s,
        "run_s": res.run_s,
        "history": history,
        method: {
            **extra,
            "epochs": settings["epochs"],
            "samples": samples,
            # forward-and-backward passes over the cost (training) split
            "network_evals": samples / train_n,
        },
    }
    if masks is not None:
        arrays = {f"layer{j}": np.asarray(m, np.uint8) for j, m in enumerate(masks)}
        write_atomic(out / f"masks_{method}.npz", lambda f: np.savez(f, **arrays))
    result = _document(
        settings,
        {method: entry},
        references,
        _dataset_info(data),
        _model_info(settings, model),
        {},
    )
    write_json(out / "result.json", result)
    return result


def run_distill(
    settings: dict,
    *,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict:
    """``--method distill``: one teacher, one student, a distillation per solver."""
    data = _load(settings)
    names = settings["solver"].split(",")
    configs = {s: _distill_config(settings, s) for s in names}
    in_features = int(np.prod(data.feature_shape))
    n_val = len(data.y_val)
    for config in configs.values():  # every check before any heavy work
        config.validate()
        samples = n_val if config.val_samples is None else config.val_samples
        check_memory(config, in_features, data.num_classes, min(samples, n_val))
        make_solver(config.solver, config.k)
    output = _start(settings, resume, tensorboard)
    out, checkpoints = output.out, output.checkpoints
    first = configs[names[0]]
    key = jax.random.key(settings["seed"])
    t_key, s_key = jax.random.split(jax.random.fold_in(key, 2))
    start = time.perf_counter()
    teacher = make_teacher(t_key, data, first)
    teacher_s = time.perf_counter() - start
    student = make_student(s_key, in_features, data.num_classes, first)
    solvers = {}
    for i, (name, config) in enumerate(configs.items()):
        res = distill(
            jax.random.fold_in(key, 100 + i),
            data,
            config,
            teacher=teacher,
            student=student,
            progress=progress,
            loggers=output.loggers(name),
            checkpoints=checkpoints.sub(name),
        )
        acc = res.accuracy["student"]
        solvers[name] = {
            **{f"{s}_accuracy": acc[s] for s in ("test", "train", "val")},
            "optimum_rate": res.optimum_rate,
            "top1_optimum_rate": res.top1_optimum_rate,
            "nontrivial_optimum_rate": res.nontrivial_optimum_rate,
            "lookups": res.lookups,
            "landscape_evals": res.landscape_evals,
            "oracle_calls": res.oracle_calls,
            "shots": res.shots,
            "resources": res.resources,
            "compile_s": res.compile_s,
            "run_s": res.run_s,
            "history": res.history,
            "distill": {
                "solver": config.solver.describe(),
                "block_losses": res.block_losses,
                "block_scales": list(res.scales),
                "block_optimum_rates": res.block_optimum_rates,
                "blocks": [
                    {k: v for k, v in b.items() if k != "history"} for b in res.blocks
                ],
            },
        }
        arrays = {}
        for b, masks in enumerate(res.masks):
            for j, m in enumerate(masks):
                arrays[f"block{b}_layer{j}"] = np.asarray(m, np.uint8)
            arrays[f"block{b}_compression"] = np.asarray(res.projs[b])
            arrays[f"block{b}_scale"] = np.asarray(res.scales[b], np.float32)
        write_atomic(out / f"masks_{name}.npz", lambda f, m=arrays: np.savez(f, **m))
    unmasked = student_forward(student, res.projs, None, data.x_test)
    teacher_acc = res.accuracy["teacher"]
    references = {
        "teacher": {
            **{f"{s}_accuracy": teacher_acc[s] for s in ("test", "train", "val")},
            "epochs": settings["teacher_epochs"],
            "seconds": teacher_s,
        },
        "random": {
            "test_accuracy": float(np.mean(np.argmax(unmasked, -1) == data.y_test))
        },
    }
    model = {
        "kind": "mlp",
        "teacher_widths": [in_features, *teacher.widths],
        "student_block_widths": [list(b.widths) for b in student.blocks],
        "weights": int(sum(count_weights(b) for b in student.blocks)),
        "teacher_weights": count_weights(teacher.model),
    }
    extra = {"teacher_test_accuracy": teacher_acc["test"]}
    result = _document(settings, solvers, references, _dataset_info(data), model, extra)
    write_json(out / "result.json", result)
    return result


def run_nk_esn(
    settings: dict,
    *,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict:
    """``--method nk-esn``: tabulate, select with every solver and mode, score."""
    config = _nk_config(settings).validate()
    output = _start(settings, resume, tensorboard)
    out, checkpoints = output.out, output.checkpoints
    key = jax.random.key(settings["seed"])
    res = nk_esn(
        key,
        config,
        loggers=output.loggers("shared"),
        checkpoints=checkpoints,
    )
    solvers, references = {}, {}
    for row in res.rows:
        label = row["solver"]
        if (label, row["mode"]) in (("exhaustive", "independent"), ("dp", "shared")):
            references[f"{label}/{row['mode']}"] = row
            if label not in settings["solver"].split(","):
                continue
        solvers.setdefault(label, []).append(row)
    entries = {}
    for spec in config.solvers:
        rows = solvers[spec.name]
        main = rows[0]
        history = [
            {"mode": r["mode"], "sweep": i + 1, "fitness": f}
            for r in rows
            for i, f in enumerate(r.get("history", []))
        ]
        entries[spec.name] = {
            # No classification task: the top committee's score / 625 and its
            # training fitness stand for the test and train accuracies.
            "test_accuracy": main["generalisation"]["top"] / 625,
            "train_accuracy": min(1.0, max(0.0, main["train_fitness"]["top"])),
            "val_accuracy": None,
            "optimum_rate": main["optimum_rate"],
            "top1_optimum_rate": None,
            "nontrivial_optimum_rate": None,
            "lookups": int(sum(r["lookups"] for r in rows)),
            "landscape_evals": res.episodes,
            "oracle_calls": int(sum(r["oracle_calls"] for r in rows)),
            "shots": 0,
            "resources": make_solver(spec, config.esn.bits).resources,
            "compile_s": None,
            "run_s": float(sum(r["select_s"] for r in rows)),
            "history": history,
            "nk-esn": {
                "solver": spec.describe(),
                "modes": {r["mode"]: r for r in rows},
            },
        }
    model = {
        "kind": "nk-esn",
        "n": config.esn.n,
        "k": config.esn.k,
        "reservoir": config.esn.reservoir,
        "connectivity": config.esn.connectivity,
        "neighbours": np.asarray(res.esn.neighbours).tolist(),
    }
    extra = {
        "rows": res.rows,
        "nk_optimum": res.optimum,
        "tabulate_s": res.tabulate_s,
        "episodes": res.episodes,
        "best_entry": res.best_entry,
        "pole": dataclasses.asdict(config.pole),
    }
    result = _document(settings, entries, references, None, model, extra)
    arrays = {
        "fitness": np.asarray(res.landscapes.fitness),
        # every row's per-output fitness under its bits, for `qselax plot`
        "row_fitness": np.asarray(res.row_fitness, np.float32),
        "row_labels": np.asarray([f"{r['solver']}/{r['mode']}" for r in res.rows]),
    }
    write_atomic(out / "landscapes.npz", lambda f: np.savez(f, **arrays))
    write_json(out / "result.json", result)
    return result


def format_nk_table(result: dict) -> str:
    """The NK-ESN table: generalisation scores (of 625) per solver and mode."""
    head = ("solver", "mode", "all", "top", "best", "optimum rate", "sum f_i")
    rows = [(*head, "look-ups", "oracle calls")]
    for r in result["nk-esn"]["rows"]:
        g = r["generalisation"]
        rows.append(
            (
                r["solver"],
                r["mode"],
                str(g["all"]),
                str(g["top"]),
                str(g["best"]),
                f"{r['optimum_rate']:.3f}",
                f"{r['total_fitness']:.3f}",
                str(r["lookups"]),
                str(r["oracle_calls"]),
            )
        )
    return _aligned(rows)


def _aligned(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _acc(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_table(result: dict) -> str:
    """The comparison table printed at the end of a run."""
    rows = [("method", "test acc", "train acc", "optimum rate", "time (s)")]
    for name, r in result["solvers"].items():
        rate = "-"
        if r["optimum_rate"] is not None:
            rate = f"{r['optimum_rate']:.3f} (top-1 {r['top1_optimum_rate']:.3f})"
        rows.append(
            (
                f"{name} ({'trained' if name == 'dense' else 'masks'})",
                _acc(r["test_accuracy"]),
                _acc(r["train_accuracy"]),
                rate,
                f"{r['run_s']:.1f} + {r['compile_s']:.1f} compile",
            )
        )
    labels = {"teacher": "teacher (trained)", "dense": "dense (trained)"}
    labels["random"] = "random (unmasked)"
    for name, label in labels.items():
        if name in result["references"]:
            d = result["references"][name]
            seconds = d.get("seconds")
            rows.append(
                (
                    label,
                    _acc(d.get("test_accuracy")),
                    _acc(d.get("train_accuracy")),
                    "-",
                    "-" if seconds is None else f"{seconds:.1f}",
                )
            )
    return _aligned(rows)


def replay_main(args: argparse.Namespace) -> int:
    """``qselax replay DIR``: score one run of the reference's files (JSON)."""
    from qselax.reference import load_run, replay

    try:
        extra = {} if args.substeps is None else {"substeps": args.substeps}
        plant = _plant(args.plant, **extra)
        result = replay(load_run(args.dir, args.run), plant)
    except (OSError, ValueError) as err:
        print(f"qselax: error: {err}", file=sys.stderr)
        return 2
    result = {"dir": str(args.dir), "run": args.run, "plant": args.plant, **result}
    result["pole"] = dataclasses.asdict(plant)
    if args.out:
        write_json(Path(args.out), result)
    print(json.dumps(result, indent=1))
    return 0


def plot_main(args: argparse.Namespace) -> int:
    """``qselax plot DIR``: every figure the run's files allow; prints the files."""
    from qselax.plots import plot_run  # matplotlib only where figures are drawn

    try:
        written, skipped = plot_run(args.dir, args.out)
    except ValueError as err:
        print(f"qselax: error: {err}", file=sys.stderr)
        return 2
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    for path in written:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        return replay_main(args)
    if args.command == "plot":
        return plot_main(args)
    try:
        settings = resolve(args)
        result = run(
            settings,
            progress=not args.quiet,
            resume=args.resume,
            tensorboard=args.tensorboard,
        )
    except ValueError as err:
        print(f"qselax: error: {err}", file=sys.stderr)
        return 2
    where = f"\nwrote {Path(settings['out']) / 'result.json'}"
    if result["method"] == "nk-esn":
        m, nk = result["model"], result["nk-esn"]
        print(
            f"\nNK-ESN double pole without velocities: N={m['n']} outputs of K+1="
            f"{m['k'] + 1} probes ({m['connectivity']}), reservoir {m['reservoir']}; "
            f"{nk['episodes']} episodes ({settings['train_starts']} training "
            f"start(s) per setting) tabulated in {nk['tabulate_s']:.1f} s; "
            "generalisation scores of 625 (committees: all outputs, top "
            f"{settings['top_fraction']:.0%}, best single output)"
        )
        print(format_nk_table(result))
        e = nk["best_entry"]
        print(
            f"plant {settings['plant']} ({settings['substeps']} RK4 step(s) of 0.01 s "
            f"per control step); best table entry (output {e['output']}, its own "
            f"bits {e['bits']}): {e['generalisation']} of 625"
        )
        print(where)
        return 0
    d = result["dataset"]
    res = result["resources"]
    if result["method"] in _BASELINES:
        entry = result["solvers"][result["method"]][result["method"]]
        print(
            f"\n{d['name']}: {d['n_train']} train / {d['n_val']} val / "
            f"{d['n_test']} test; {settings['model']} with "
            f"{result['model']['weights']} weights; {settings['epochs']} epochs "
            f"(kept epoch {entry['best_epoch']}, {entry['network_evals']:.0f} "
            f"forward-backward passes of the training split), kept fraction "
            f"{entry['kept_fraction']:.3f}"
        )
        print(format_table(result))
        print(where)
        return 0
    if result["method"] == "distill":
        m = result["model"]
        print(
            f"\n{d['name']}: {d['n_train']} train / {d['n_val']} val / "
            f"{d['n_test']} test; teacher {m['teacher_widths']}, random student "
            f"blocks {m['student_block_widths']} ({m['weights']} weights, "
            f"{settings['compression']} compression); {res['groups']} groups of "
            f"K={res['group_size']}, {settings['sweeps']} sweeps per block"
        )
        print(format_table(result))
        for name, r in result["solvers"].items():
            losses = ", ".join(f"{v:.4f}" for v in r["distill"]["block_losses"])
            rates = ", ".join(f"{v:.3f}" for v in r["distill"]["block_optimum_rates"])
            print(f"{name}: block losses [{losses}], optimum rates [{rates}]")
        print(where)
        return 0
    print(
        f"\n{d['name']}: {d['n_train']} train / {d['n_val']} val / {d['n_test']} test; "
        f"{settings['model']} with {result['model']['weights']} random weights; "
        f"{res['groups']} groups of K={res['group_size']} "
        f"({settings['grouping']}, {settings['mode']} sweeps x {settings['sweeps']})"
    )
    print(format_table(result))
    print(where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
