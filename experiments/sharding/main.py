"""Benchmark: one selection with its groups sharded over 1, 2 and 4 devices.

Runs the default demo's selection (``qselax run`` with no flags, without the dense
twin: digits, random 64-256-10 MLP, fan-in groups of K = 8, sequential sweeps in
blocks of 64, solvers vqe and exhaustive) once per device count, each in its own
subprocess under ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and
``JAX_PLATFORMS=cpu``: the same user code, qselax spreads the groups over whatever
devices it sees.  Per solver it records ``compile_s``, ``run_s`` and whether the
masks are bit for bit the 1-device run's.  Forced host devices share the machine's
cores, so on one CPU the numbers show the overhead of sharding, not a speed-up.

One JSON line per (devices, solver) is appended to ``<out>/<suite>.jsonl``.  Usage::

    python experiments/sharding/main.py [--devices 1 2 4] [--suite demo]
    python experiments/sharding/main.py --table
    python experiments/sharding/main.py --smoke
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

# Suites: extra ``qselax run`` flags on top of the demo's defaults.
SUITES = {
    "demo": [],
    "demo-1sweep": ["--sweeps", "1"],
    "demo-exhaustive": ["--solver", "exhaustive"],
    # The demo's VQE in blocks of 8: at most 4 groups per device (README: why).
    "demo-vqe-block8": ["--solver", "vqe", "--block-size", "8", "--sweeps", "1"],
}
SMOKE = [
    "--dataset", "iris", "--hidden", "8", "--k", "3", "--sweeps", "1",
    "--vqe-steps", "5", "--vqe-layers", "1", "--block-size", "8",
]  # fmt: skip


def worker(run_dir: str, flags: list[str]) -> None:
    """In the subprocess: the demo's selection through the CLI's own ``run``."""
    import jax

    from qselax.cli import build_parser, resolve, run

    argv = ["run", "--quiet", "--dense-epochs", "0", "--out", run_dir, *flags]
    result = run(resolve(build_parser().parse_args(argv)), progress=False)
    out = {
        "devices": len(jax.devices()),
        "solvers": {
            name: {
                key: s[key]
                for key in ("compile_s", "run_s", "test_accuracy", "optimum_rate")
            }
            for name, s in result["solvers"].items()
        },
    }
    Path(run_dir, "worker.json").write_text(json.dumps(out))


def _masks(run_dir: Path, solver: str) -> dict:
    with np.load(run_dir / f"masks_{solver}.npz") as f:
        return {k: f[k] for k in f.files}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def measure(
    devices: list[int],
    flags: list[str],
    suite: str,
    out: Path,
    xla_flags: str = "",
    timeout: float | None = None,
) -> None:
    """One subprocess per device count; records appended to ``<suite>.jsonl``.

    A run past ``timeout`` seconds is recorded as timed out (``run_s`` null).
    """
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for n in devices:
            run_dir = Path(tmp) / f"d{n}"
            env = dict(
                os.environ,
                XLA_FLAGS=f"--xla_force_host_platform_device_count={n} {xla_flags}",
                JAX_PLATFORMS="cpu",
            )
            try:
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", str(run_dir), "--", *flags],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                rec = {"suite": suite, "devices": n, "timed_out_s": timeout}
                rec.update(flags=flags, xla_flags=xla_flags, cpu_cores=os.cpu_count())
                common.write_jsonl(out / f"{suite}.jsonl", [rec], append=True)
                print(f"{suite} {n} device(s): timed out after {timeout} s", flush=True)
                continue
            if proc.returncode:
                sys.exit(f"{n} devices failed:\n{proc.stderr[-4000:]}")
            got = json.loads((run_dir / "worker.json").read_text())
            if got["devices"] != n:
                sys.exit(f"asked for {n} devices, jax saw {got['devices']}")
            masks = {s: _masks(run_dir, s) for s in got["solvers"]}
            if n == 1:
                reference = masks
            for solver, s in got["solvers"].items():
                rec = {
                    "suite": suite,
                    "devices": n,
                    "solver": solver,
                    **s,
                    "masks_equal_1_device": None
                    if reference is None or n == 1
                    else _same(masks[solver], reference[solver]),
                    "flags": flags,
                    "xla_flags": xla_flags,
                    "cpu_cores": os.cpu_count(),
                    "machine": platform.processor() or platform.machine(),
                }
                common.write_jsonl(out / f"{suite}.jsonl", [rec], append=True)
                print(
                    f"{suite} {n} device(s) {solver}: run {s['run_s']:.1f} s, "
                    f"compile {s['compile_s']:.1f} s, masks = 1 device: "
                    f"{rec['masks_equal_1_device']}",
                    flush=True,
                )


def table(directory: Path) -> None:
    for suite, records in common.read_results(directory).items():
        late = [r for r in records if "timed_out_s" in r]
        records = [r for r in records if "timed_out_s" not in r]
        base = {r["solver"]: r["run_s"] for r in records if r["devices"] == 1}
        extra = records[0]["xla_flags"]
        print(
            f"\n### {suite} ({records[0]['cpu_cores']} CPU cores"
            + (f", XLA_FLAGS += `{extra}`" if extra else "")
            + ")\n"
        )
        body = []
        for r in sorted(records, key=lambda r: (r["solver"] != "vqe", r["devices"])):
            ratio = r["run_s"] / base[r["solver"]] if r["solver"] in base else None
            equal = None if r["devices"] == 1 else r["masks_equal_1_device"]
            body.append(
                (
                    r["solver"],
                    r["devices"],
                    f"{r['run_s']:.2f}",
                    f"{r['compile_s']:.1f}",
                    "-" if ratio is None else f"{ratio:.2f}",
                    ("reference" if r["devices"] == 1 else "-")
                    if equal is None
                    else ("yes" if equal else "**no**"),
                    f"{r['test_accuracy']:.4f}",
                )
            )
        header = (
            "solver",
            "devices",
            "run (s)",
            "compile (s)",
            "run / 1 device",
            "masks = 1 device",
            "test acc",
        )
        print(common.markdown(header, body))
        for r in late:
            print(f"\n{r['devices']} devices: stopped after {r['timed_out_s']:.0f} s.")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[4:])
        return
    p = common.parser(__file__, __doc__)
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--suite", choices=list(SUITES), default="demo")
    p.add_argument("--tag", default="", help="suffix of the results file's name")
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds per device count"
    )
    p.add_argument(
        "--xla-flags",
        default="",
        help="extra XLA_FLAGS for every device count (recorded), e.g. "
        "--xla_cpu_use_thunk_runtime=false (README: why)",
    )
    args = p.parse_args()
    if args.table:
        table(common.table_dir(args, __file__))
        return
    out = common.out_dir(args, __file__)
    if args.smoke:
        measure(args.devices, SMOKE, "smoke", out, args.xla_flags, args.timeout)
    else:
        suite = args.suite + args.tag
        measure(
            args.devices, SUITES[args.suite], suite, out, args.xla_flags, args.timeout
        )


if __name__ == "__main__":
    main()
