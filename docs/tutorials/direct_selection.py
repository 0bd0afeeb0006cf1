"""Tutorial 1: direct selection from Python, then with a grouping of your own.

Run ``python docs/tutorials/direct_selection.py`` (a few seconds on a laptop CPU);
``QSELAX_SMOKE=1`` makes the network and the budgets smaller still, which is how
``tests/test_tutorials.py`` runs it.  ``docs/tutorials/direct_selection.md`` walks
through it section by section.
"""

# --8<-- [start:setup]
import os

import jax
import numpy as np
from flax import nnx

import qselax
from qselax.driver import Driver, initial_state
from qselax.networks import mask_shapes

SMOKE = os.environ.get("QSELAX_SMOKE") == "1"
HIDDEN = (8,) if SMOKE else (32,)
SWEEPS = 1 if SMOKE else 3
K = 4

data = qselax.load_dataset("iris", seed=0)  # 4 features, 3 classes, 150 flowers
model = qselax.make_model(
    "mlp", data.feature_shape, data.num_classes, hidden=HIDDEN, seed=0
)
graphdef, weights = nnx.split(model)


def accuracy_on_test(masks) -> float:
    """Accuracy of the network under ``masks`` (None: unmasked) on the test split."""
    score = qselax.score(graphdef, weights, masks, data.x_test, data.y_test)
    return score["accuracy"]


print("mask shapes:", mask_shapes(model))
print(f"unmasked: test accuracy {accuracy_on_test(None):.3f}")
# --8<-- [end:setup]

# --8<-- [start:select]
config = qselax.SelectConfig(
    solver="exhaustive",  # the exact optimum of every group: the reference
    grouping="fan_in",
    k=K,
    sweeps=SWEEPS,
    block_size=8,
)
sel = qselax.select(jax.random.key(0), model, data, config, progress=False)
print(
    f"fan_in: {sel.grouping.num_groups} groups, optimum rate {sel.optimum_rate:.3f}, "
    f"test accuracy {accuracy_on_test(sel.masks):.3f}"
)
# --8<-- [end:select]

# --8<-- [start:grouping]
shapes = mask_shapes(model)  # one (fan_in, fan_out) kernel mask per layer
offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
fan_out = []
for layer, (rows, cols) in enumerate(shapes):
    for row in range(rows):
        # The flat indices of one input unit's outgoing weights (C order), cut
        # into pieces of at most K bits.
        start = offsets[layer] + row * cols
        fan_out += np.array_split(np.arange(start, start + cols), -(-cols // K))
grouping = qselax.explicit_grouping(fan_out, shapes, k=K)
print(f"fan_out: {grouping.num_groups} groups of <= {grouping.k} bits")
# --8<-- [end:grouping]

# --8<-- [start:pipeline]
solver = qselax.make_solver(qselax.solvers.vqe(layers=2, steps=40), K)
landscape = qselax.network_landscape(model, grouping, num_samples=len(data.y_train))
sweep = qselax.make_sweep(landscape, solver, mode="sequential", block_size=8)
splits = {
    split: (getattr(data, f"x_{split}"), getattr(data, f"y_{split}"))
    for split in ("train", "val", "test")
}
params = qselax.network_params(model, data.x_train, data.y_train, splits)
state = initial_state(jax.random.key(1), qselax.flatten_masks(qselax.ones_masks(model)))
with Driver(SWEEPS, progress=False) as driver:
    run = driver.run(sweep, params, state, SWEEPS, k=K, select_on="val_cost")
masks = qselax.unflatten_masks(run.state.flat, grouping.shapes)
# --8<-- [end:pipeline]

# --8<-- [start:report]
for record in run.history:
    print(
        f"sweep {record['sweep']}: train cost {record['cost']:.4f}, "
        f"val accuracy {record['val_accuracy']:.3f}, "
        f"optimum rate {record['optimum_rate']:.2f}"
    )
kept = float(np.mean(np.asarray(run.state.flat)))
print(
    f"fan_out + vqe: optimum rate {run.optimum_rate:.3f}, kept {kept:.0%} of the "
    f"weights, test accuracy {accuracy_on_test(masks):.3f}"
)
# --8<-- [end:report]
