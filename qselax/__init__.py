"""qselax: quantum neuron selection in JAX.

Find high-performing subnetworks (binary masks) of fixed random Flax networks with
batched K-qubit circuits simulated by TensorCircuit on JAX, and measure them against
the exact classical optimum of every local group.
"""

__version__ = "0.1.0"

from qselax.bits import bit_index, bit_table, gather_bits, index_bits, scatter_bits
from qselax.data import DATASETS, Dataset, load_dataset, read_idx
from qselax.distill import COMPRESSIONS, Distillation, DistillConfig, distill
from qselax.driver import Driver
from qselax.esn import ESNConfig, make_esn
from qselax.groups import (
    GROUP_ORDERS,
    GROUPINGS,
    Grouping,
    explicit_grouping,
    flatten_masks,
    make_grouping,
    unflatten_masks,
)
from qselax.landscapes import (
    Landscape,
    naive_landscapes,
    network_landscape,
    network_params,
)
from qselax.networks import (
    INITS,
    MASK_LEVELS,
    MaskableCNN,
    MaskableMLP,
    apply_masked,
    make_model,
    ones_masks,
    random_masks,
    train_dense,
)
from qselax.nk import nk_dp, nk_exhaustive, nk_value
from qselax.nk_selection import NKESNConfig, NKESNResult, nk_esn
from qselax.pole import PLANTS, PoleConfig, plant_config
from qselax.selection import SelectConfig, Selection, score, select
from qselax.solvers import (
    SOLVERS,
    Solver,
    SolveResult,
    SolverSpec,
    make_solver,
    solver_spec,
)
from qselax.sweeps import SWEEP_MODES, SelectionState, SweepInfo, make_sweep

__all__ = [
    "COMPRESSIONS",
    "DATASETS",
    "GROUP_ORDERS",
    "GROUPINGS",
    "INITS",
    "MASK_LEVELS",
    "PLANTS",
    "SOLVERS",
    "SWEEP_MODES",
    "Dataset",
    "Driver",
    "DistillConfig",
    "ESNConfig",
    "Distillation",
    "Landscape",
    "Grouping",
    "MaskableCNN",
    "MaskableMLP",
    "NKESNConfig",
    "NKESNResult",
    "PoleConfig",
    "SelectConfig",
    "Selection",
    "SelectionState",
    "SolveResult",
    "SolverSpec",
    "Solver",
    "SweepInfo",
    "__version__",
    "apply_masked",
    "bit_index",
    "bit_table",
    "distill",
    "explicit_grouping",
    "flatten_masks",
    "gather_bits",
    "index_bits",
    "load_dataset",
    "network_landscape",
    "network_params",
    "make_esn",
    "make_grouping",
    "make_model",
    "make_solver",
    "make_sweep",
    "naive_landscapes",
    "nk_dp",
    "nk_esn",
    "nk_exhaustive",
    "nk_value",
    "ones_masks",
    "plant_config",
    "random_masks",
    "read_idx",
    "scatter_bits",
    "score",
    "select",
    "solver_spec",
    "train_dense",
    "unflatten_masks",
]
