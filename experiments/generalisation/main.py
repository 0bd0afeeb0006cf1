"""Generalisation experiment: qselax masks beside edge-popup, supermask and dense.

Every row is one ``qselax run`` (:func:`qselax.cli.run`, the same code as the
command line) on one dataset, network and seed: the quantum and exhaustive
selections (``--method direct``, cost on the training split, the kept sweep chosen on
validation), the field's score-trained mask finders (``--method edge-popup`` and
``--method supermask``, tuned on validation by ``tune.py``) and the trained dense twin
(``--method dense``), all on the same frozen random weights and splits.  One JSON line
per run (test/val/train accuracy, wall time, network evaluations) is appended to
``<out>/<suite>.jsonl``; runs already there are skipped, so a killed job resumes.
``--table`` prints the README's table (mean ± std over seeds).  Usage::

    python experiments/generalisation/main.py --suite digits
    python experiments/generalisation/main.py --table
    python experiments/generalisation/main.py --plot
    python experiments/generalisation/main.py --smoke

``--plot`` draws the README's figure (test accuracy per suite and row, mean ± std
over seeds) into ``figures/test_accuracy.png`` with :mod:`qselax.plots`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from qselax.cli import DEFAULTS, build_parser, resolve, run  # noqa: E402

# Each suite: the shared settings (long flag names) and its rows (name -> settings).
_SELECT = {"method": "direct", "dense_epochs": 0}
ROWS = {
    "exhaustive": {**_SELECT, "solver": "exhaustive"},
    "vqe": {**_SELECT, "solver": "vqe"},
    "edge-popup": {"method": "edge-popup"},
    "supermask": {"method": "supermask"},
    "dense": {"method": "dense"},
    # scikit-learn's MLPClassifier (Adam, early stopping on its own 10 % of the
    # training split) on the same split: the "trained MLP" peer.
    "sklearn-mlp": {"method": "sklearn"},
}
SUITES = {
    "digits": {"dataset": "digits"},
    "digits-wide": {"dataset": "digits", "width": 4.0},
    "wine": {"dataset": "wine"},
    "breast_cancer": {"dataset": "breast_cancer"},
    "tabular": {"dataset": "csv:{tabular}"},
    # Fashion-MNIST (48,000 train / 12,000 val / the official 10,000 test) with
    # LeNet-300-100: subsampled landscapes (a fresh minibatch per block, the
    # acceptance on a fixed 4,096-sample slice of the training split).
    "fashion-lenet300": {
        "dataset": "fashion_mnist",
        "model": "lenet300",
        "batch_samples": 512,
        "cost_samples": 4096,
        "block_size": 256,
        "epochs": 20,  # edge-popup, supermask, dense: 20 passes of 48,000 images
    },
}
# Settings that only the quantum/exhaustive rows take (dropped for the others).
_DIRECT_ONLY = (
    "k",
    "sweeps",
    "solver",
    "group_order",
    "batch_samples",
    "cost_samples",
    "block_size",
    "accept_split",
    "prune_penalty",
)
SMOKE = {"dataset": "iris", "hidden": "8", "k": 3, "sweeps": 1, "epochs": 2}


def tabular_csv(directory: Path) -> Path:
    """The issue's generated tabular task as a CSV (features..., label)."""
    from sklearn.datasets import make_classification

    path = directory / "make_classification_600x12.csv"
    if not path.exists():
        x, y = make_classification(
            n_samples=600,
            n_features=12,
            n_informative=6,
            n_classes=3,
            random_state=7,
        )
        rows = np.column_stack([x, y])
        np.savetxt(path, rows, delimiter=",", fmt=["%.8g"] * 12 + ["%d"])
    return path


def settings_of(suite: dict, row: dict, seed: int, out: Path, extra: dict) -> dict:
    """The resolved CLI settings of one run (through the CLI's own checks)."""
    given = {**suite, **row, **extra, "seed": seed, "out": str(out)}
    if row["method"] != "direct":
        given = {k: v for k, v in given.items() if k not in _DIRECT_ONLY}
    else:
        given.pop("epochs", None)
    args = build_parser().parse_args(["run", "--quiet"])
    for key, value in given.items():
        if key not in DEFAULTS:
            raise KeyError(key)
        setattr(args, key, value)
    return resolve(args)


def _run_dir(logs: Path, suite_name: str, row: str, seed: int) -> Path:
    """The folder ``--logs`` keeps one row's run of one seed in."""
    return logs / f"{suite_name}-{row}-{seed}".replace("/", "_")


def _extend(path, logs, suite_name, row_name, seed, tag, run_dir) -> dict:
    """Copies the finished run of ``row_name + tag`` into ``run_dir`` (unless a
    copy is there already) and returns its record."""
    source_row = row_name + tag
    prior = [
        r
        for r in (common.read_jsonl(path) if path.exists() else [])
        if r["row"] == source_row and r["seed"] == seed
    ]
    source = _run_dir(logs, suite_name, source_row, seed)
    if not prior or not (source / "checkpoints").exists():
        raise SystemExit(
            f"--extend {tag}: no finished run of {source_row} seed {seed} in "
            f"{path} with its checkpoints in {source}"
        )
    if not run_dir.exists():
        shutil.copytree(source, run_dir)
    return prior[-1]


def record(suite_name: str, row_name: str, seed: int, result: dict, wall: float):
    main = result["solvers"][result["solver"]]
    own = main.get(result["method"], {})
    evals = main["landscape_evals"]
    if evals is None:
        evals = own.get("network_evals")
    return {
        "suite": suite_name,
        "row": row_name,
        "seed": seed,
        "test": main["test_accuracy"],
        "val": main["val_accuracy"],
        "train": main["train_accuracy"],
        "network_evals": evals,
        "run_s": main["run_s"],
        "compile_s": main["compile_s"],
        "wall_s": wall,
        "kept_fraction": own.get("kept_fraction"),
        "best": own.get("best_sweep", own.get("best_epoch")),
        "weights": result["model"]["weights"],
        "config": result["config"],
    }


def sklearn_mlp(suite_name: str, name: str, suite: dict, seed: int) -> dict:
    """scikit-learn's MLP (the suite's hidden widths) on the run's own split."""
    from sklearn.neural_network import MLPClassifier

    from qselax.data import load_dataset

    data = load_dataset(suite["dataset"], seed=seed)
    hidden = tuple(
        int(h) for h in str(suite.get("hidden", DEFAULTS["hidden"])).split(",")
    )
    start = time.perf_counter()
    clf = MLPClassifier(hidden, early_stopping=True, max_iter=500, random_state=seed)
    clf.fit(data.x_train, data.y_train)
    wall = time.perf_counter() - start
    return {
        "suite": suite_name,
        "row": name,
        "seed": seed,
        "test": float(clf.score(data.x_test, data.y_test)),
        "val": float(clf.score(data.x_val, data.y_val)),
        "train": float(clf.score(data.x_train, data.y_train)),
        "network_evals": float(clf.n_iter_),
        "run_s": wall,
        "compile_s": None,
        "wall_s": wall,
        "kept_fraction": None,
        "best": int(clf.n_iter_),
        "weights": int(sum(w.size for w in clf.coefs_)),
        "config": {"hidden": list(hidden), "early_stopping": True, "max_iter": 500},
    }


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--suite", choices=list(SUITES), default="digits")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra CLI setting for every row, e.g. sweeps=6 (recorded)",
    )
    p.add_argument("--tag", default="", help="suffix of the row names (variants)")
    p.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="keep each run's directory (metrics.jsonl per sweep) under this folder",
    )
    p.add_argument(
        "--extend",
        metavar="TAG",
        help="continue each row's finished run of the variant TAG from its --logs "
        "directory (e.g. with a larger sweeps=): a copy resumes from its last "
        "checkpoint, and the wall time adds the earlier run's",
    )
    p.add_argument(
        "--plot", action="store_true", help="draw the README's figure and exit"
    )
    args = p.parse_args()
    if args.extend is not None and args.logs is None:
        p.error("--extend needs --logs (the folder of the runs it continues)")
    if args.table:
        table(common.table_dir(args, __file__))
        return
    if args.plot:
        path = plot(
            common.table_dir(args, __file__), common.figures_dir(args, __file__)
        )
        print(f"wrote {path}")
        return
    out = common.out_dir(args, __file__)
    extra = {}
    for item in args.set:
        name, _, raw = item.partition("=")
        extra[name] = json.loads(raw)
    if args.smoke:
        common.smoke_jax()
        suite, seeds, extra = SMOKE, args.seeds[:1], {**extra}
        suite_name = "smoke"
    else:
        suite, seeds, suite_name = dict(SUITES[args.suite]), args.seeds, args.suite
    if "{tabular}" in str(suite.get("dataset")):
        suite["dataset"] = "csv:" + str(tabular_csv(out))
    path = out / f"{suite_name}.jsonl"
    done = set()
    if path.exists():
        done = {(r["row"], r["seed"]) for r in common.read_jsonl(path)}
    for seed in seeds:
        for row_name in args.rows:
            name = row_name + args.tag
            if (name, seed) in done:
                continue
            if ROWS[row_name]["method"] == "sklearn":
                rec = sklearn_mlp(suite_name, name, suite, seed)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    run_dir = Path(tmp)
                    if args.logs is not None:
                        run_dir = _run_dir(args.logs, suite_name, name, seed)
                    row = ROWS[row_name]
                    settings = settings_of(suite, row, seed, run_dir, extra)
                    prior = None
                    if args.extend is not None:
                        prior = _extend(path, args.logs, suite_name, row_name, seed,
                                        args.extend, run_dir)  # fmt: skip
                    start = time.perf_counter()
                    result = run(settings, progress=False, resume=prior is not None)
                    wall = time.perf_counter() - start
                if prior is not None:
                    wall += prior["wall_s"]
                rec = record(suite_name, name, seed, result, wall)
                if prior is not None:
                    rec["extends"] = prior["row"]
            common.write_jsonl(path, [rec], append=True)
            print(
                f"{suite_name} {name} seed {seed}: test {rec['test']:.4f} "
                f"val {rec['val']:.4f} ({wall:.1f} s)",
                flush=True,
            )


_ORDER = ("exhaustive", "vqe", "qaoa", "anneal", "edge-popup", "supermask", "dense")


def _row_order(name: str) -> tuple:
    """qselax rows first, then the field's mask finders, the trained nets, others;
    a row's variants by their tag, numeric tags (sweep counts) in numeric order."""
    base, _, tag = name.partition("/")
    rank = _ORDER.index(base) if base in _ORDER else len(_ORDER)
    number = int(tag) if tag.isdigit() else 0
    return (rank, base, bool(tag), not tag.isdigit(), number, tag)


def table(directory: Path) -> None:
    results = common.read_results(directory)
    if "tune" in results:
        import tune  # the baselines' tuning ranking (tune.py, same folder)

        tune.table(directory)
    for suite_name, records in results.items():
        if suite_name == "tune":
            continue
        rows = defaultdict(list)
        for r in records:
            rows[r["row"]].append(r)
        first = records[0]
        print(f"\n### {suite_name} ({first['weights']} weights)\n")
        body = []
        for name in sorted(rows, key=_row_order):
            rs = sorted(rows[name], key=lambda r: r["seed"])
            evals = [r["network_evals"] for r in rs if r["network_evals"] is not None]
            body.append(
                (
                    name,
                    len(rs),
                    common.mean_std([r["test"] for r in rs], "{:.4f}"),
                    " / ".join(f"{r['test']:.4f}" for r in rs),
                    common.mean_std([r["val"] for r in rs], "{:.4f}"),
                    f"{np.mean([r['wall_s'] for r in rs]):.1f}",
                    f"{np.mean(evals):.0f}" if evals else "-",
                )
            )
        header = (
            "row",
            "seeds",
            "test",
            "test per seed",
            "val",
            "wall (s)",
            "network evals",
        )
        print(common.markdown(header, body))
        comparisons = paired_table(rows)
        if comparisons:
            print(
                "\nPaired by seed (the same network, split and seed): each qselax row "
                "minus the better of edge-popup and supermask on the seeds both "
                "ran; 95 % CI of the mean difference from the paired t "
                "distribution.\n"
            )
            print(common.markdown(PAIRED_HEADER, comparisons))


QSELAX_ROWS = ("exhaustive", "vqe", "qaoa", "anneal")
FIELD_ROWS = ("edge-popup", "supermask")
PAIRED_HEADER = (
    "row",
    "against",
    "seeds",
    "test difference",
    "95 % CI",
    "higher / equal / lower",
)


def paired(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """The paired difference ``a - b`` over the seeds both have.

    Args:
        a, b: ``{seed: test accuracy}`` of two rows.

    Returns:
        ``None`` under two shared seeds, else ``seeds``, ``mean``, ``low`` and
        ``high`` (the 95 % confidence interval of the mean difference from the
        t distribution with ``seeds - 1`` degrees of freedom), and how many seeds
        ``a`` is ``higher``, ``equal`` (within 1e-6) or ``lower`` on.
    """
    from scipy.stats import t

    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return {
        "seeds": len(d),
        "mean": float(d.mean()),
        "low": float(d.mean() - half),
        "high": float(d.mean() + half),
        "higher": int(np.sum(d > 1e-6)),
        "equal": int(np.sum(np.abs(d) <= 1e-6)),
        "lower": int(np.sum(d < -1e-6)),
    }


def paired_table(rows: dict[str, list[dict]]) -> list[tuple]:
    """One line per qselax row: against the field's better mask finder.

    The better of the untagged (tuned) ``edge-popup`` and ``supermask`` rows is the
    one with the higher mean test accuracy on the seeds it shares with the row.
    """
    tests = {n: {r["seed"]: r["test"] for r in rs} for n, rs in rows.items()}
    lines = []
    for name in sorted(rows, key=_row_order):
        if name.split("/")[0] not in QSELAX_ROWS:
            continue
        best = None
        for field in FIELD_ROWS:
            if field not in tests:
                continue
            shared = set(tests[name]) & set(tests[field])
            mean = np.mean([tests[field][s] for s in shared]) if shared else -1.0
            if best is None or mean > best[0]:
                best = (mean, field)
        result = paired(tests[name], tests[best[1]]) if best else None
        if result is None:
            continue
        lines.append(
            (
                name,
                best[1],
                result["seeds"],
                f"{result['mean']:+.4f}",
                f"[{result['low']:+.4f}, {result['high']:+.4f}]",
                f"{result['higher']} / {result['equal']} / {result['lower']}",
            )
        )
    return lines


# The figure's rows: the qselax rows, the field's mask finders and the trained nets.
PLOT_ROWS = ("exhaustive", "vqe", "edge-popup", "supermask", "dense", "sklearn-mlp")


def _plot_row(rows: dict, base: str) -> str | None:
    """The suite's row for ``base``: its run with today's default group order
    (``interleave``: the ``-il`` / ``/il`` / ``-interleave`` variants) with most
    sweeps, else its variant with most sweeps (``vqe/16`` before ``vqe/8`` and the
    untagged default), else itself; untuned variants are left out."""

    def sweeps_of(name: str) -> int | None:
        tag = name.split("/", 1)[1] if "/" in name else ""
        head = tag.split("-")[0]
        return int(head) if head.isdigit() else None

    own = [n for n in rows if n.split("/")[0] == base]
    interleaved = [n for n in own if n.endswith(("-il", "/il", "-interleave"))]
    if interleaved:
        return max(interleaved, key=lambda n: sweeps_of(n) or 0)
    plain = [n for n in own if n.split("/")[-1].isdigit()]
    if plain:
        return max(plain, key=sweeps_of)
    return base if base in rows else None


def _variant(tag: str) -> str:
    """A row tag in words for the figure: ``8-il`` -> ``8 sweeps\ninterleaved``."""
    head, _, rest = tag.partition("-")
    if not head.isdigit():
        head, rest = "3", tag  # untagged sweeps: the default 3
    words = {"il": "interleaved", "interleave": "interleaved"}
    return f"{head} sweeps" + "".join(f"\n{words.get(w, w)}" for w in [rest] if rest)


def plot(directory: Path, figures: Path) -> Path:
    """The README's figure: test accuracy (mean ± std over seeds) per suite.

    Suites run with one seed only are left out where any suite has several.
    """
    from qselax.plots import plot_grouped_bars, save_figure

    results = {k: v for k, v in common.read_results(directory).items() if k != "tune"}
    data: dict[str, dict[str, list[float]]] = {}
    for suite_name, records in results.items():
        rows = defaultdict(list)
        for r in records:
            rows[r["row"]].append(r["test"])
        picked = {b: _plot_row(rows, b) for b in PLOT_ROWS}
        picked = {b: n for b, n in picked.items() if n is not None}
        if picked:
            variants = sorted({n.split("/")[1] for n in picked.values() if "/" in n})
            label = suite_name + "".join(f"\nqselax: {_variant(v)}" for v in variants)
            data[label] = {b: rows[n] for b, n in picked.items()}
    several = {s: d for s, d in data.items() if max(map(len, d.values())) > 1}
    data = several or data
    low = min(np.mean(v) - np.std(v) for d in data.values() for v in d.values())
    fig = plot_grouped_bars(
        data,
        ylabel="test accuracy",
        title="test accuracy over seeds (mean ± std): masks of the frozen random "
        "network, and trained nets",
        ylim=(np.floor((low - 0.02) * 20) / 20, 1.0),
    )
    return save_figure(fig, figures / "test_accuracy", formats=("png",))[0]


if __name__ == "__main__":
    main()
