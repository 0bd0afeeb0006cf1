"""Tutorial 2: writing a solver and running it through qselax's sweep.

Run ``python docs/tutorials/new_solver.py`` (seconds on a laptop CPU);
``QSELAX_SMOKE=1`` shrinks it further, which is how ``tests/test_tutorials.py``
runs it.  ``docs/tutorials/new_solver.md`` walks through it section by section.
"""

# --8<-- [start:solver]
import os

import jax
import jax.numpy as jnp
from flax import nnx

import qselax
from qselax.bits import check_k
from qselax.solvers import SOLVERS
from qselax.solvers.base import (
    Solver,
    SolveResult,
    check_count,
    solver_factory,
    with_costs,
)


@solver_factory("greedy")
def greedy(k: int, *, steps: int | None = None) -> Solver:
    """Steepest descent by single-bit flips from each group's current bits.

    Every step looks up the K neighbours of the present configuration and moves
    to the best of them if it is lower; ``steps`` defaults to K.
    """
    k = check_k(k)
    steps = k if steps is None else check_count("steps", steps)
    flips = (2 ** jnp.arange(k, dtype=jnp.int32))[None, :]  # (1, K) XOR masks

    def solve(key, landscapes, current, oracle=None) -> SolveResult:
        del key, oracle  # deterministic, and it reads the landscape directly

        def step(index, _):
            here = jnp.take_along_axis(landscapes, index[:, None], axis=-1)
            neighbours = index[:, None] ^ flips  # (G, K)
            costs = jnp.take_along_axis(landscapes, neighbours, axis=-1)
            best = jnp.argmin(costs, axis=-1, keepdims=True)  # (G, 1)
            lower = jnp.take_along_axis(costs, best, axis=-1) < here
            moved = jnp.take_along_axis(neighbours, best, axis=-1)
            return jnp.where(lower, moved, index[:, None])[:, 0], None

        index, _ = jax.lax.scan(step, current.astype(jnp.int32), None, length=steps)
        lookups = jnp.full(index.shape, 1 + steps * k, jnp.int32)
        return SolveResult(index=index, top1=index, probs=None, lookups=lookups)

    resources = {"qubits": 0, "classical_lookups": 1 + steps * k}
    return Solver("greedy", with_costs(solve), resources)


SOLVERS["greedy"] = greedy  # registered: names, specs and configs now know it
# --8<-- [end:solver]

# --8<-- [start:check]
SMOKE = os.environ.get("QSELAX_SMOKE") == "1"
K = 4 if SMOKE else 6
G = 64 if SMOKE else 1024

solver = qselax.make_solver("greedy", K, steps=K)
exact = qselax.make_solver("exhaustive", K)
key_land, key_start = jax.random.split(jax.random.key(0))
landscapes = jax.random.normal(key_land, (G, 2**K))  # structureless landscapes
current = jax.random.randint(key_start, (G,), 0, 2**K)
result = jax.jit(solver.solve)(jax.random.key(1), landscapes, current)
optimum = exact.solve(jax.random.key(1), landscapes, current)
start_cost = jnp.take_along_axis(landscapes, current[:, None], axis=-1)[:, 0]
random_rate = float(jnp.mean(result.cost == optimum.cost))
print(f"greedy on {G} random landscapes, K = {K}: optimum rate {random_rate:.3f}")
print(f"never worse than its start: {bool(jnp.all(result.cost <= start_cost))}")
print("resources:", solver.resources)
# --8<-- [end:check]

# --8<-- [start:select]
data = qselax.load_dataset("iris", seed=0)
model = qselax.make_model(
    "mlp", data.feature_shape, data.num_classes, hidden=(8,) if SMOKE else (32,)
)
graphdef, weights = nnx.split(model)
runs = {}
for spec in (greedy(steps=K), qselax.solvers.exhaustive()):
    config = qselax.SelectConfig(solver=spec, k=K, sweeps=2, block_size=8)
    runs[spec.name] = sel = qselax.select(
        jax.random.key(0), model, data, config, progress=False
    )
    test = qselax.score(graphdef, weights, sel.masks, data.x_test, data.y_test)
    costs = [f"{h['cost']:.4f}" for h in sel.history]
    print(
        f"{spec}: optimum rate {sel.optimum_rate:.3f}, look-ups {sel.lookups}, "
        f"train cost by sweep {costs}, test accuracy {test['accuracy']:.3f}"
    )
kept = {name: float(qselax.flatten_masks(s.masks).mean()) for name, s in runs.items()}
print("kept fraction of weights:", kept)
# --8<-- [end:select]
