"""Tutorial 3: an NK Echo State Network on the reference implementation's plant.

Run ``python docs/tutorials/nk_esn_reference.py`` (about a minute on a laptop CPU:
N = 100 outputs, K = 5, episodes of 1000 control steps); ``QSELAX_SMOKE=1`` cuts
it to N = 10, K = 2, episodes of 100 steps and one solver (seconds), which is how
``tests/test_tutorials.py`` runs it.  ``docs/tutorials/nk_esn_reference.md`` walks
through it section by section.
"""

# --8<-- [start:plant]
import os
from pathlib import Path

import jax

import qselax
from qselax.pole import rest_eigenvalues
from qselax.reference import load_run, replay

SMOKE = os.environ.get("QSELAX_SMOKE") == "1"

plant = qselax.plant_config("reference", max_steps=100 if SMOKE else 1000)
for name, cfg in (("inverted", qselax.plant_config("inverted")), ("reference", plant)):
    fastest = float(rest_eigenvalues(cfg).real.max())
    print(
        f"{name}: poles {cfg.poles}, {cfg.substeps} RK4 step(s) per control step, "
        f"largest growth rate at rest {fastest:+.2f} 1/s"
    )
# --8<-- [end:plant]

# --8<-- [start:config]
qaoa = qselax.solvers.qaoa(layers=2, steps=30)
if SMOKE:
    esn, solvers = qselax.ESNConfig(n=10, k=2), (qaoa,)
else:
    esn, solvers = qselax.ESNConfig(k=5), (qaoa, qselax.solvers.grover())
config = qselax.NKESNConfig(
    esn=esn,  # ESNConfig()'s weights and gains are the reference implementation's
    pole=plant,
    solvers=solvers,
    modes=("independent", "shared"),
    sweeps=2,
)
result = qselax.nk_esn(jax.random.key(0), config)
print(
    f"tabulated {result.episodes} episodes in {result.tabulate_s:.1f} s; "
    f"NK optimum of the shared mask: {result.optimum:.3f}"
)
# --8<-- [end:config]

# --8<-- [start:rows]
print(f"{'solver':>10} {'mode':>12} {'optimum':>8}   all   top  best (of 625)")
for row in result.rows:
    score = row["generalisation"]
    print(
        f"{row['solver']:>10} {row['mode']:>12} {row['optimum_rate']:8.2f} "
        f"{score['all']:5d} {score['top']:5d} {score['best']:5d}"
    )
# --8<-- [end:rows]

# --8<-- [start:replay]
files = Path(__file__).resolve().parents[2] / "tests" / "data" / "nk-esn-k2-run0"
run = load_run(files)  # the reference's own network, table and DP mask (N=100, K=2)
report = replay(run)  # on plant_config("reference"), the plant the files come from
print(
    f"tabulation against the file's table: largest relative difference "
    f"{report['max_rel_diff']:.1e}; same DP mask: {report['dp_mask_equal']}"
)
print("generalisation of the reference's controllers:", report["generalisation"])
# --8<-- [end:replay]
