"""The ``qselax`` command.

``qselax run`` with no flags runs the default demo: digits, a random signed-constant
MLP (64-256-10, 18,944 weights), fan-in groups of K = 8 weights, sequential sweeps with
``vqe`` and with ``exhaustive``, beside the trained dense twin and the unmasked random
network.  It prints a comparison table and writes ``DIR/result.json`` (and the selected
masks as ``DIR/masks_<solver>.npz``).  ``qselax run --config FILE.json`` reads the same
settings from a JSON object whose keys are the long flag names (``--k`` -> ``"k"``,
``--block-size`` -> ``"block_size"``); flags given on the command line win.

``--method`` picks the selection method: ``direct`` (the default above: the whole
random network selected on the validation cost) or ``distill`` (paper method A,
:mod:`qselax.distill`: a trained teacher MLP with ``--teacher-hidden`` widths, a
random student twice as deep and ``--width-factor`` times wider, selected block by
block to reproduce the teacher's layers, with ``--compression magnitude`` or
``pool``).  The landscape evaluator of ``direct`` is ``--evaluator``.

``--method nk-esn`` is paper method B (:mod:`qselax.esn`): an NK Echo State Network
(``--n`` probe neurons and outputs, each output reading ``--k`` + 1 of them,
``--reservoir`` neurons, ``--connectivity adjacent|random``) balances two poles on a
cart without velocity inputs; every output's ``2^(K+1)`` bit settings are tabulated
by one episode each, the masks are selected by each ``--solver`` in the
``--nk-mode`` modes (``independent``: every output its own (K+1)-qubit problem;
``shared``: one mask, windows of bits in ``--sweeps`` sweeps), beside the exact NK
dynamic-programming optimum, and the committees are scored by the 625-start
generalisation test.  Data flags do not apply.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

import qselax
from qselax.data import DATASETS, load_dataset
from qselax.distill import COMPRESSIONS, HIDDEN_WIDTHS, DistillConfig, distill
from qselax.esn import CONNECTIVITIES, NK_MODES, ESNConfig, NKESNConfig, nk_esn
from qselax.groups import GROUPINGS
from qselax.landscapes import COSTS, METHODS
from qselax.networks import INITS, MASK_LEVELS, count_weights, make_model, train_dense
from qselax.pole import PoleConfig
from qselax.selection import INIT_MASKS, SelectConfig, score, select
from qselax.solvers import SOLVERS, make_solver
from qselax.sweeps import ORACLES, SWEEP_MODES

METHODS_RUN = ("direct", "distill", "nk-esn")

DEFAULTS = {
    "dataset": "digits",
    "model": "mlp",
    "hidden": "256",
    "channels": "8,16",
    "init": "signed_constant",
    "mask_level": "weight",
    "grouping": "fan_in",
    "k": 8,
    "solver": "vqe,exhaustive",
    "sweeps": 3,
    "mode": "sequential",
    "block_size": 64,
    "cost": "ce",
    "init_mask": "ones",
    "method": "direct",
    "evaluator": "auto",
    "memory_mb": 512.0,
    "val_samples": None,
    "vqe_layers": 3,
    "vqe_steps": 100,
    "vqe_lr": 0.1,
    "readout": None,
    "oracle": "landscape",
    "opt": [],
    "seed": 0,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "max_train": None,
    "data_dir": None,
    "dense_epochs": 100,
    "teacher_hidden": "32",
    "width_factor": 4,
    "compression": "pool",
    "hidden_width": "max",
    "block_scale": True,
    "teacher_epochs": 100,
    "n": 100,
    "reservoir": 60,
    "connectivity": "adjacent",
    "nk_mode": "independent,shared",
    "max_steps": 1000,
    "top_fraction": 0.2,
    "bias_scale": 1.0,
    "input_scale": 1.0,
    "output_scale": 1.0,
    "out": "runs/latest",
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
    a("--model", help="mlp or cnn; 'mlp:256,128' also sets --hidden (default mlp)")
    a("--hidden", help="hidden widths, comma-separated (default 256)")
    a("--channels", help="cnn conv channels, comma-separated (default 8,16)")
    a("--init", choices=INITS, help="weight init scheme (default signed_constant)")
    a("--mask-level", choices=MASK_LEVELS, help="weight or neuron masks")
    a("--grouping", choices=GROUPINGS, help="how bits form groups (default fan_in)")
    a("--k", type=int, help="bits (qubits) per group (default 8)")
    a(
        "--solver",
        help=f"comma-separated solvers from {tuple(SOLVERS)}; the first is "
        "the run's solver (default vqe,exhaustive)",
    )
    a("--sweeps", type=int, help="sweeps per solver (default 3)")
    a("--mode", choices=SWEEP_MODES, help="sweep mode (default sequential)")
    a("--block-size", type=int, help="groups per block in sequential sweeps (64)")
    a("--cost", choices=COSTS, help="validation cost: ce or error (default ce)")
    a("--init-mask", choices=INIT_MASKS, help="starting mask (default ones)")
    a(
        "--method",
        choices=METHODS_RUN,
        help="direct (select the whole network, default) or distill (layerwise "
        "selection against a trained teacher)",
    )
    a("--evaluator", choices=METHODS, help="direct's landscape evaluator (auto)")
    a("--memory-mb", type=float, help="memory budget of a landscape chunk (512)")
    a("--val-samples", type=int, help="cap on validation samples used as cost")
    a("--vqe-layers", type=int, help="VQE ansatz layers (default 3)")
    a("--vqe-steps", type=int, help="VQE Adam steps per sweep (default 100)")
    a("--vqe-lr", type=float, help="VQE Adam learning rate (default 0.1)")
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
    a("--teacher-hidden", help="distill: teacher hidden widths, comma-separated (32)")
    a("--width-factor", type=int, help="distill: student width / teacher width (4)")
    a(
        "--compression",
        choices=COMPRESSIONS,
        help="distill: student output to teacher width (default pool)",
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
    a("--n", type=int, help="nk-esn: probe neurons = outputs N (100)")
    a("--reservoir", type=int, help="nk-esn: reservoir neurons (60)")
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
    a("--top-fraction", type=float, help="nk-esn: share of the top committee (0.2)")
    a("--bias-scale", type=float, help="nk-esn: multiplies all biases (1)")
    a("--input-scale", type=float, help="nk-esn: multiplies the input weights (1)")
    a("--output-scale", type=float, help="nk-esn: output gain (1)")
    a("--out", help="output directory (default runs/latest)")
    a("--quiet", action="store_true", help="no progress bars")
    return parser


def resolve(args: argparse.Namespace) -> dict:
    """Defaults, then the JSON config, then command-line flags."""
    settings = dict(DEFAULTS)
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
    for name in DEFAULTS:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    model = str(settings["model"])
    if ":" in model:
        kind, _, widths = model.partition(":")
        settings["model"] = kind
        settings["hidden" if kind == "mlp" else "channels"] = widths
    if settings["model"] not in ("mlp", "cnn"):
        raise ValueError(f"--model must be mlp or cnn, got {settings['model']!r}")
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
    _csv_ints(settings["hidden"], "hidden")
    _csv_ints(settings["channels"], "channels")
    if settings["dense_epochs"] < 0:
        raise ValueError(f"--dense-epochs must be >= 0, got {settings['dense_epochs']}")
    if settings["method"] not in METHODS_RUN:
        hint = ""
        if settings["method"] in METHODS:
            hint = " (the landscape evaluator is now 'evaluator' / --evaluator)"
        raise ValueError(
            f"--method must be one of {METHODS_RUN}, got {settings['method']!r}{hint}"
        )
    if settings["evaluator"] not in METHODS:
        raise ValueError(
            f"--evaluator must be one of {METHODS}, got {settings['evaluator']!r}"
        )
    if settings["method"] == "distill":
        _check_distill(settings)
    if settings["method"] == "nk-esn":
        _nk_config(settings).validate()
    return settings


def _check_distill(settings: dict) -> None:
    """Settings that ``--method distill`` cannot honour, named before any work."""
    if not _csv_ints(settings["teacher_hidden"], "teacher-hidden"):
        raise ValueError("--teacher-hidden needs at least one width")
    if settings["model"] != "mlp":
        raise ValueError("--method distill needs --model mlp (teacher and student)")
    if settings["mode"] != "sequential":
        raise ValueError("--method distill runs sequential sweeps: drop --mode")
    if settings["evaluator"] != "auto":
        raise ValueError("--evaluator applies to --method direct only")
    if settings["hidden_width"] not in HIDDEN_WIDTHS:
        raise ValueError(
            f"--hidden-width must be one of {HIDDEN_WIDTHS}, got "
            f"{settings['hidden_width']!r}"
        )
    if settings["compression"] not in COMPRESSIONS:
        raise ValueError(
            f"--compression must be one of {COMPRESSIONS}, got "
            f"{settings['compression']!r}"
        )
    for name in ("width_factor", "teacher_epochs"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be an integer >= 1, got {value!r}")


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


def _select_config(settings: dict, solver: str) -> SelectConfig:
    options = _solver_options(settings, solver)
    return SelectConfig(
        grouping=settings["grouping"],
        k=settings["k"],
        solver=solver,
        solver_options=tuple(options.items()),
        sweeps=settings["sweeps"],
        mode=settings["mode"],
        block_size=settings["block_size"],
        cost=settings["cost"],
        method=settings["evaluator"],
        memory_mb=settings["memory_mb"],
        init_mask=settings["init_mask"],
        val_samples=settings["val_samples"],
        oracle=settings["oracle"],
    )


def _solver_options(settings: dict, solver: str) -> dict:
    options = {}
    if solver == "vqe":
        options = {
            "layers": settings["vqe_layers"],
            "steps": settings["vqe_steps"],
            "learning_rate": settings["vqe_lr"],
            "readout": settings["readout"],
        }
    for opt in settings["opt"]:
        target, name, value = _parse_opt(opt, settings["solver"].split(","))
        if target == solver:
            options[name] = value
    return options


def _distill_config(settings: dict, solver: str) -> DistillConfig:
    return DistillConfig(
        teacher_hidden=_csv_ints(settings["teacher_hidden"], "teacher-hidden"),
        width_factor=settings["width_factor"],
        compression=settings["compression"],
        init=settings["init"],
        mask_level=settings["mask_level"],
        grouping=settings["grouping"],
        k=settings["k"],
        solver=solver,
        solver_options=tuple(_solver_options(settings, solver).items()),
        sweeps=settings["sweeps"],
        block_size=settings["block_size"],
        teacher_epochs=settings["teacher_epochs"],
        memory_mb=settings["memory_mb"],
        val_samples=settings["val_samples"],
        scale=bool(settings["block_scale"]),
        hidden_width=settings["hidden_width"],
    )


def _nk_config(settings: dict) -> NKESNConfig:
    modes = tuple(m.strip() for m in str(settings["nk_mode"]).split(",") if m.strip())
    for mode in modes:
        if mode not in NK_MODES:
            raise ValueError(f"--nk-mode {mode!r} is not one of {NK_MODES}")
    solvers = tuple(settings["solver"].split(","))
    try:
        plant = PoleConfig(max_steps=settings["max_steps"])
    except ValueError as err:
        raise ValueError(f"--max-steps: {err}") from None
    return NKESNConfig(
        esn=ESNConfig(
            n=settings["n"],
            k=settings["k"],
            reservoir=settings["reservoir"],
            connectivity=settings["connectivity"],
            bias_scale=settings["bias_scale"],
            input_scale=settings["input_scale"],
            output_scale=settings["output_scale"],
        ),
        pole=plant,
        solvers=solvers,
        solver_options=tuple(
            (s, tuple(_solver_options(settings, s).items())) for s in solvers
        ),
        modes=modes,
        sweeps=settings["sweeps"],
        top_fraction=settings["top_fraction"],
    )


def _write_atomic(path: Path, write) -> None:
    """Writes through a temporary file in the same directory, then renames."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(settings: dict, *, progress: bool = True) -> dict:
    """Runs one experiment and returns the result dict (also written to disk)."""
    if settings.get("method", "direct") == "distill":
        return run_distill(settings, progress=progress)
    if settings.get("method") == "nk-esn":
        return run_nk_esn(settings)
    image = settings["model"] == "cnn"
    data = load_dataset(
        settings["dataset"],
        seed=settings["seed"],
        val_fraction=settings["val_fraction"],
        test_fraction=settings["test_fraction"],
        max_train=settings["max_train"],
        image=image,
        data_dir=settings["data_dir"],
    )
    model = make_model(
        settings["model"],
        data.feature_shape,
        data.num_classes,
        hidden=_csv_ints(settings["hidden"], "hidden"),
        channels=_csv_ints(settings["channels"], "channels"),
        init=settings["init"],
        mask_level=settings["mask_level"],
        seed=settings["seed"],
    )
    solvers = settings["solver"].split(",")
    configs = {s: _select_config(settings, s) for s in solvers}
    # Check every solver's settings (names, K, memory) before any heavy work.
    from qselax.groups import make_grouping
    from qselax.landscapes import make_engine

    for config in configs.values():
        config.validate()
        grouping = make_grouping(config.grouping, model, config.k)
        n_val = len(data.y_val) if config.val_samples is None else config.val_samples
        make_engine(
            model,
            grouping,
            num_samples=min(n_val, len(data.y_val)),
            feature_shape=data.feature_shape,
            cost=config.cost,
            method=config.method,
            memory_mb=config.memory_mb,
        )
        make_solver(config.solver, config.k, **dict(config.solver_options))
    out = Path(settings["out"])
    out.mkdir(parents=True, exist_ok=True)

    graphdef, weights = nnx.split(model)
    key = jax.random.key(settings["seed"])
    references = {}
    random_test = score(graphdef, weights, None, data.x_test, data.y_test)
    random_train = score(graphdef, weights, None, data.x_train, data.y_train)
    references["random"] = {
        "test_accuracy": random_test["accuracy"],
        "train_accuracy": random_train["accuracy"],
    }
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

    per_solver = {}
    for i, (name, config) in enumerate(configs.items()):
        sel = select(
            jax.random.fold_in(key, 100 + i), model, data, config, progress=progress
        )
        test = score(graphdef, weights, sel.masks, data.x_test, data.y_test)
        train = score(graphdef, weights, sel.masks, data.x_train, data.y_train)
        val = score(graphdef, weights, sel.masks, data.x_val, data.y_val)
        kept = float(sum(float(m.sum()) for m in sel.masks) / sel.grouping.num_bits)
        per_solver[name] = {
            "test_accuracy": test["accuracy"],
            "train_accuracy": train["accuracy"],
            "val_accuracy": val["accuracy"],
            "test_loss": test["loss"],
            "val_loss": val["loss"],
            "optimum_rate": sel.optimum_rate,
            "top1_optimum_rate": sel.top1_optimum_rate,
            "nontrivial_optimum_rate": sel.nontrivial_optimum_rate,
            "lookups": sel.lookups,
            "landscape_evals": sel.landscape_evals,
            "oracle_calls": sel.oracle_calls,
            "shots": sel.shots,
            "entanglement": sel.entanglement,
            "kept_fraction": kept,
            "resources": sel.resources,
            "compile_s": sel.compile_s,
            "run_s": sel.run_s,
            "history": sel.history,
        }
        masks = {f"layer{j}": np.asarray(m, np.uint8) for j, m in enumerate(sel.masks)}
        _write_atomic(out / f"masks_{name}.npz", lambda f, m=masks: np.savez(f, **m))

    main = per_solver[solvers[0]]
    result = {
        "qselax_version": qselax.__version__,
        "config": settings,
        "seed": settings["seed"],
        "method": "direct",
        "solver": solvers[0],
        **{
            k: main[k]
            for k in (
                "test_accuracy",
                "train_accuracy",
                "val_accuracy",
                "optimum_rate",
                "top1_optimum_rate",
                "nontrivial_optimum_rate",
                "lookups",
                "landscape_evals",
                "oracle_calls",
                "shots",
                "entanglement",
                "resources",
                "compile_s",
                "run_s",
            )
        },
        "solvers": per_solver,
        "references": references,
        "dataset": {
            "name": data.name,
            "num_classes": data.num_classes,
            "feature_shape": list(data.feature_shape),
            "n_train": len(data.y_train),
            "n_val": len(data.y_val),
            "n_test": len(data.y_test),
        },
        "model": {"kind": settings["model"], "weights": count_weights(model)},
        "platform": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    text = json.dumps(result, indent=2, default=_json_default).encode()
    _write_atomic(out / "result.json", lambda f: f.write(text))
    return result


def run_distill(settings: dict, *, progress: bool = True) -> dict:
    """``--method distill``: one teacher, one student, a distillation per solver."""
    from qselax.distill import check_memory, make_student, make_teacher
    from qselax.networks import mask_shapes

    data = load_dataset(
        settings["dataset"],
        seed=settings["seed"],
        val_fraction=settings["val_fraction"],
        test_fraction=settings["test_fraction"],
        max_train=settings["max_train"],
        data_dir=settings["data_dir"],
    )
    solvers = settings["solver"].split(",")
    configs = {s: _distill_config(settings, s) for s in solvers}
    in_features = int(np.prod(data.feature_shape))
    n_val = len(data.y_val)
    # Check every solver's settings (names, K, memory) before any heavy work.
    for config in configs.values():
        config.validate()
        samples = n_val if config.val_samples is None else config.val_samples
        check_memory(config, in_features, data.num_classes, min(samples, n_val))
        make_solver(config.solver, config.k, **dict(config.solver_options))
    out = Path(settings["out"])
    out.mkdir(parents=True, exist_ok=True)

    first = configs[solvers[0]]
    key = jax.random.key(settings["seed"])
    t_key, s_key = jax.random.split(jax.random.fold_in(key, 2))
    start = time.perf_counter()
    teacher = make_teacher(t_key, data, first)
    teacher_s = time.perf_counter() - start
    student = make_student(s_key, in_features, data.num_classes, first)
    per_solver = {}
    for i, (name, config) in enumerate(configs.items()):
        res = distill(
            jax.random.fold_in(key, 100 + i),
            data,
            config,
            teacher=teacher,
            student=student,
            progress=progress,
        )
        acc = res.accuracy["student"]
        per_solver[name] = {
            "test_accuracy": acc["test"],
            "train_accuracy": acc["train"],
            "val_accuracy": acc["val"],
            "student_test_accuracy": acc["test"],
            "block_losses": res.block_losses,
            "block_scales": list(res.scales),
            "block_optimum_rates": res.block_optimum_rates,
            "optimum_rate": res.optimum_rate,
            "top1_optimum_rate": res.top1_optimum_rate,
            "lookups": res.lookups,
            "landscape_evals": res.landscape_evals,
            "resources": res.resources,
            "compile_s": res.compile_s,
            "run_s": res.run_s,
            "blocks": res.blocks,
        }
        arrays = {}
        for b, masks in enumerate(res.masks):
            for j, m in enumerate(masks):
                arrays[f"block{b}_layer{j}"] = np.asarray(m, np.uint8)
            arrays[f"block{b}_compression"] = np.asarray(res.projs[b])
            arrays[f"block{b}_scale"] = np.asarray(res.scales[b], np.float32)
        _write_atomic(out / f"masks_{name}.npz", lambda f, m=arrays: np.savez(f, **m))

    from qselax.distill import student_forward

    ones = [
        tuple(np.ones(s, np.float32) for s in mask_shapes(b)) for b in student.blocks
    ]
    unmasked = student_forward(student, res.projs, ones, data.x_test)
    random_test = float(np.mean(np.argmax(unmasked, -1) == data.y_test))
    teacher_acc = res.accuracy["teacher"]
    main = per_solver[solvers[0]]
    fields = (
        "test_accuracy",
        "train_accuracy",
        "val_accuracy",
        "optimum_rate",
        "top1_optimum_rate",
        "lookups",
        "landscape_evals",
        "resources",
        "compile_s",
        "run_s",
        "block_losses",
        "block_optimum_rates",
    )
    result = {
        "qselax_version": qselax.__version__,
        "config": settings,
        "seed": settings["seed"],
        "method": "distill",
        "solver": solvers[0],
        **{k: main[k] for k in fields},
        "teacher_test_accuracy": teacher_acc["test"],
        "student_test_accuracy": main["test_accuracy"],
        "solvers": per_solver,
        "references": {
            "teacher": {
                "test_accuracy": teacher_acc["test"],
                "train_accuracy": teacher_acc["train"],
                "val_accuracy": teacher_acc["val"],
                "epochs": settings["teacher_epochs"],
                "seconds": teacher_s,
            },
            "random": {"test_accuracy": random_test},
        },
        "dataset": {
            "name": data.name,
            "num_classes": data.num_classes,
            "feature_shape": list(data.feature_shape),
            "n_train": len(data.y_train),
            "n_val": len(data.y_val),
            "n_test": len(data.y_test),
        },
        "model": {
            "kind": "mlp",
            "teacher_widths": [in_features, *teacher.widths],
            "student_block_widths": [list(b.widths) for b in student.blocks],
            "weights": int(sum(count_weights(b) for b in student.blocks)),
            "teacher_weights": count_weights(teacher.model),
        },
        "platform": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    text = json.dumps(result, indent=2, default=_json_default).encode()
    _write_atomic(out / "result.json", lambda f: f.write(text))
    return result


def run_nk_esn(settings: dict) -> dict:
    """``--method nk-esn``: tabulate, select with every solver and mode, score."""
    config = _nk_config(settings).validate()
    out = Path(settings["out"])
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(settings["seed"])
    res = nk_esn(key, config)
    rows = res.rows
    quantum = [r for r in rows if r["solver"] == config.solvers[0]]
    main = quantum[0] if quantum else rows[0]
    per_solver = {}
    for r in rows:
        per_solver.setdefault(r["solver"], {})[r["mode"]] = r
    resources = {
        name: make_solver(
            name, config.esn.bits, **dict(dict(config.solver_options).get(name, ()))
        ).resources
        for name in config.solvers
    }
    result = {
        "qselax_version": qselax.__version__,
        "config": settings,
        "seed": settings["seed"],
        "method": "nk-esn",
        "solver": config.solvers[0],
        "mode": main["mode"],
        # The task has no accuracy: test_accuracy is the main row's top committee's
        # generalisation score / 625, train_accuracy its training-start fitness.
        "test_accuracy": main["generalisation"]["top"] / 625,
        "train_accuracy": main["train_fitness"]["top"],
        "generalisation": main["generalisation"],
        "optimum_rate": main["optimum_rate"],
        "nk_optimum": res.optimum,
        "rows": rows,
        "solvers": per_solver,
        "resources": resources.get(config.solvers[0], {}),
        "solver_resources": resources,
        "tabulate_s": res.tabulate_s,
        "episodes": res.episodes,
        "compile_s": None,
        "run_s": res.tabulate_s + sum(r["select_s"] for r in rows),
        "model": {
            "kind": "nk-esn",
            "n": config.esn.n,
            "k": config.esn.k,
            "reservoir": config.esn.reservoir,
            "connectivity": config.esn.connectivity,
            "neighbours": np.asarray(res.esn.neighbours).tolist(),
        },
        "platform": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    arrays = {"fitness": np.asarray(res.landscapes.fitness)}
    _write_atomic(out / "landscapes.npz", lambda f: np.savez(f, **arrays))
    text = json.dumps(result, indent=2, default=_json_default).encode()
    _write_atomic(out / "result.json", lambda f: f.write(text))
    return result


def format_nk_table(result: dict) -> str:
    """The NK-ESN table: generalisation scores (of 625) per solver and mode."""
    rows = [
        (
            "solver",
            "mode",
            "all",
            "top",
            "best",
            "optimum rate",
            "sum f_i",
            "look-ups",
            "oracle calls",
        )
    ]
    for r in result["rows"]:
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


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_table(result: dict) -> str:
    """The comparison table printed at the end of a run."""
    rows = [("method", "test acc", "train acc", "optimum rate", "time (s)")]
    for name, r in result["solvers"].items():
        rows.append(
            (
                f"{name} (masks)",
                f"{r['test_accuracy']:.4f}",
                f"{r['train_accuracy']:.4f}",
                f"{r['optimum_rate']:.3f} (top-1 {r['top1_optimum_rate']:.3f})",
                f"{r['run_s']:.1f} + {r['compile_s']:.1f} compile",
            )
        )
    refs = result["references"]
    if "teacher" in refs:
        d = refs["teacher"]
        rows.append(
            (
                "teacher (trained)",
                f"{d['test_accuracy']:.4f}",
                f"{d['train_accuracy']:.4f}",
                "-",
                f"{d['seconds']:.1f}",
            )
        )
    if "dense" in refs:
        d = refs["dense"]
        rows.append(
            (
                "dense (trained)",
                f"{d['test_accuracy']:.4f}",
                f"{d['train_accuracy']:.4f}",
                "-",
                f"{d['seconds']:.1f}",
            )
        )
    r = refs["random"]
    rows.append(
        (
            "random (unmasked)",
            f"{r['test_accuracy']:.4f}",
            f"{r['train_accuracy']:.4f}" if "train_accuracy" in r else "-",
            "-",
            "-",
        )
    )
    return _aligned(rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = resolve(args)
        result = run(settings, progress=not args.quiet)
    except ValueError as err:
        print(f"qselax: error: {err}", file=sys.stderr)
        return 2
    if result.get("method") == "nk-esn":
        m = result["model"]
        print(
            f"\nNK-ESN double pole without velocities: N={m['n']} outputs of K+1="
            f"{m['k'] + 1} probes ({m['connectivity']}), reservoir {m['reservoir']}; "
            f"{result['episodes']} episodes tabulated in {result['tabulate_s']:.1f} s; "
            "generalisation scores of 625 (committees: all outputs, top "
            f"{settings['top_fraction']:.0%}, best single output)"
        )
        print(format_nk_table(result))
        print(f"\nwrote {Path(settings['out']) / 'result.json'}")
        return 0
    d = result["dataset"]
    res = result["resources"]
    if result.get("method") == "distill":
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
            losses = ", ".join(f"{v:.4f}" for v in r["block_losses"])
            rates = ", ".join(f"{v:.3f}" for v in r["block_optimum_rates"])
            print(f"{name}: block losses [{losses}], optimum rates [{rates}]")
        print(f"\nwrote {Path(settings['out']) / 'result.json'}")
        return 0
    print(
        f"\n{d['name']}: {d['n_train']} train / {d['n_val']} val / {d['n_test']} test; "
        f"{settings['model']} with {result['model']['weights']} random weights; "
        f"{res['groups']} groups of K={res['group_size']} "
        f"({settings['grouping']}, {settings['mode']} sweeps x {settings['sweeps']})"
    )
    print(format_table(result))
    print(f"\nwrote {Path(settings['out']) / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
