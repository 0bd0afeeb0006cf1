"""NK quantum neuron selection on NK Echo State Networks (paper method B).

The network, its tabulated per-output fitness and the committees are in
:mod:`qselax.esn`.  Selection of the probe bits, as cost ``-f``:

* ``independent`` (:func:`select_independent`): each output's K+1 bits are one
  (K+1)-qubit problem; all N are solved at once (the solver vmaps over them) and
  each output keeps its own best setting, i.e. every output owns a private copy of
  its probe neurons (the paper's "ensemble" of duplicated outputs).
* ``shared`` (:func:`select_shared`): one mask serves all outputs.  It is the NK
  table's landscape (:func:`qselax.nk.nk_landscape`: windows of ``group_size``
  bits at two offsets, in colour classes of non-interacting windows) run through
  the one sweep and the one driver, like every other method: a window's choice is
  kept only if it lowers the total cost, so ``F`` never falls.

:func:`nk_esn` runs a whole experiment: tabulation, every solver in every mode,
the exact references (each output's optimum; the NK dynamic-programming optimum of
the shared mask) and the committees' generalisation scores.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax import nk, pole
from qselax.bits import MAX_K, bit_index, check_k, index_bits
from qselax.checkpoints import Checkpoints
from qselax.driver import Driver, Logger, initial_state
from qselax.esn import (
    COMMITTEES,
    ESN,
    PRESETS,
    ESNConfig,
    Landscapes,
    best_entry,
    committee_weights,
    generalisation_scores,
    make_esn,
    tabulate,
)
from qselax.solvers import SolverSpec, grover_search, make_solver, solver_spec
from qselax.sweeps import make_sweep

__all__ = [
    "NK_MODES",
    "NKESNConfig",
    "NKESNResult",
    "NKSelection",
    "nk_esn",
    "select_independent",
    "select_shared",
]

NK_MODES = ("independent", "shared")


class NKSelection(NamedTuple):
    """Masks chosen by NK neuron selection.

    Attributes:
        bits: ``(N, K+1)`` each output's bits (shared mode: ``x[neighbours]``).
        fitness: ``(N,)`` each output's fitness under ``bits`` (from the tables).
        mask: ``(N,)`` the shared mask (shared mode) or ``None``.
        optimum_rate: independent: fraction of outputs whose setting attains
            their exhaustive optimum; shared: 1.0 if ``F(x)`` equals the
            reference optimum passed in, else 0.0 (``nan`` without one).
        lookups: total landscape look-ups / oracle evaluations.
        oracle_calls: total coherent oracle calls (Grover) or 0.
        history: ``(sweeps,)`` total fitness after each sweep (shared) or ``None``.
        calls_to_optimum: Grover (independent mode) only: total oracle calls made
            by the time each output's kept setting first was its optimum (the full
            budget for an output that never got there), else ``None``.
    """

    bits: jax.Array
    fitness: jax.Array
    mask: jax.Array | None
    optimum_rate: float
    lookups: int
    oracle_calls: int
    history: np.ndarray | None = None
    calls_to_optimum: int | None = None


@functools.lru_cache(maxsize=64)
def _jitted_solve(spec: SolverSpec, bits: int):
    """One jitted ``solve`` per (solver spec, K+1), reused by every seed."""
    solver = make_solver(spec, bits)
    return solver, jax.jit(solver.solve)


@functools.partial(jax.jit, static_argnums=(2,))
def _grover_stats(key, cost, options):
    return grover_search(key, cost, **dict(options))


def _output_fitness(fitness: jax.Array, bits: jax.Array) -> jax.Array:
    """Each output's tabulated fitness under its bits: ``(N, S), (N, K+1) -> (N,)``."""
    return jnp.take_along_axis(fitness, bit_index(bits)[:, None], axis=-1)[:, 0]


def _sum(value) -> int:
    return 0 if value is None else int(jnp.sum(value))


def select_independent(
    key: jax.Array, fitness: jax.Array, solver: SolverSpec | str
) -> NKSelection:
    """Each output's K+1 bits solved as its own (K+1)-qubit problem (cost ``-f``).

    Args:
        key: PRNG key of the solver.
        fitness: ``(N, 2^(K+1))`` tabulated fitness.
        solver: a solver spec or registered name.
    """
    spec = solver_spec(solver)
    n, configs = fitness.shape
    bits = int(round(math.log2(configs)))
    cost = -fitness
    to_optimum = None
    if spec.name == "grover":
        # grover_search is the grover solver's own search (same key, same choice)
        # with its statistics, so one run gives both the choice and the calls to
        # each output's optimum.
        make_solver(spec, bits)  # checks the options
        res = _grover_stats(key, cost, spec.options)
        reached = jnp.where(
            res.calls_to_optimum >= 0, res.calls_to_optimum, res.oracle_calls
        )
        to_optimum = int(jnp.sum(reached))
    else:
        _, solve = _jitted_solve(spec, bits)
        current = jnp.full((n,), configs - 1, jnp.int32)  # all probes on
        res = solve(key, cost, current)
    chosen = jnp.take_along_axis(fitness, res.index[:, None], axis=-1)[:, 0]
    best = jnp.max(fitness, axis=-1)
    return NKSelection(
        bits=index_bits(res.index, bits),
        fitness=chosen,
        mask=None,
        optimum_rate=float(jnp.mean(chosen >= best)),
        lookups=_sum(res.lookups),
        oracle_calls=_sum(res.oracle_calls),
        calls_to_optimum=to_optimum,
    )


@functools.lru_cache(maxsize=32)
def _shared_sweep(wiring: bytes, shape: tuple, n: int, size: int, spec: SolverSpec):
    """The shared-mode sweep of one wiring, window size and solver, built once so
    that every seed reuses its compiled executable (see :mod:`qselax.driver`)."""
    neighbours = np.frombuffer(wiring, np.int32).reshape(shape)
    landscape = nk.nk_landscape(neighbours, n, size)
    return make_sweep(landscape, make_solver(spec, size), mode="sequential")


def select_shared(
    key: jax.Array,
    fitness: jax.Array,
    neighbours: jax.Array,
    solver: SolverSpec | str,
    *,
    sweeps: int = 4,
    group_size: int | None = None,
    optimum: float | None = None,
    loggers: Sequence[Logger] = (),
    checkpoints: Checkpoints | None = None,
) -> NKSelection:
    """One shared mask, solved by the solver on windows of bits in sweeps.

    Args:
        key: PRNG key of the solver.
        fitness: ``(N, 2^(K+1))`` tabulated fitness.
        neighbours: ``(N, K+1)`` the wiring.
        solver: a solver spec or registered name.
        sweeps: sweeps over all windows; each sweep runs both window offsets
            (0 and ``group_size // 2``).
        group_size: bits (qubits) per window (default K+1).
        optimum: the exact optimum of ``sum_i f_i`` (e.g. :func:`qselax.nk.nk_dp`)
            for ``optimum_rate``.
        loggers: callables given every sweep's history record.
        checkpoints: save the loop after every sweep there and resume from its
            last checkpoint (:mod:`qselax.checkpoints`).

    Starts from the all-ones mask; a window's choice is accepted only if it lowers
    the total cost, so the total fitness never falls.
    """
    spec = solver_spec(solver)
    n, configs = fitness.shape
    size = int(round(math.log2(configs))) if group_size is None else group_size
    check_k(size, "group_size", high=min(n, MAX_K))
    if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
        raise ValueError(f"sweeps must be an int >= 1, got {sweeps!r}")
    wiring = np.ascontiguousarray(neighbours, np.int32)
    sweep = _shared_sweep(wiring.tobytes(), wiring.shape, n, size, spec)
    params = nk.NKParams(-jnp.asarray(fitness), jnp.asarray(wiring))
    state = initial_state(key, np.ones(n, np.float32))
    with Driver(
        sweeps, progress=False, loggers=loggers, checkpoints=checkpoints
    ) as driver:
        run = driver.run(sweep, params, state, sweeps, k=size, stage="shared")
    x = jnp.asarray(run.state.flat, jnp.int32)
    bits = x[wiring]
    chosen = _output_fitness(fitness, bits)
    total = float(jnp.sum(chosen))
    rate = float("nan")
    if optimum is not None:
        rate = float(total >= optimum - 1e-5 * max(1.0, abs(optimum)))
    return NKSelection(
        bits=bits,
        fitness=chosen,
        mask=x,
        optimum_rate=rate,
        lookups=run.lookups,
        oracle_calls=run.oracle_calls,
        history=-np.asarray([h["cost"] for h in run.history]),
    )


@dataclasses.dataclass(frozen=True)
class NKESNConfig:
    """One NK-ESN experiment: network, plant, solvers, modes and budgets.

    The default network and plant are the best masks-only setting found on the
    inverted plant (``experiments/nk_esn_search``): ``ESNConfig(n=50,
    **PRESETS["masks"])`` (K = 8, 60 reservoir neurons, leak 0.974, spectral
    radius 0.44, output gain 100, biases 0.056) with control every 0.01 s
    (``plant_config("inverted", substeps=1)``).

    Attributes:
        esn: the network structure.
        pole: the plant.
        solvers: solver specs (``qselax.solvers.qaoa(layers=2)``) or registered
            names; each runs in every mode of ``modes``.
        modes: from :data:`NK_MODES`.
        sweeps: sweeps of the shared mode.
        group_size: bits per window in the shared mode (default K+1).
        top_fraction: share of outputs in the ``"top"`` committee.
        chunk: episodes per chunk of the tabulation.
        train_starts: training episodes per bit setting: the training start and
            ``train_starts - 1`` random starts of the test's region
            (:func:`qselax.pole.training_starts`, drawn from ``fold_in(key, 1)``);
            a setting's fitness is its mean over them.  1 is the method's (and
            the reference's) single training start.  ``None`` (the default): 8
            on an upright plant, where it generalises better
            (``experiments/nk_esn_readout``), and 1 on the reference's hanging
            plant.
    """

    esn: ESNConfig = ESNConfig(n=50, **PRESETS["masks"])
    pole: pole.PoleConfig = pole.plant_config("inverted", substeps=1)
    solvers: tuple[SolverSpec | str, ...] = ("vqe",)
    modes: tuple[str, ...] = NK_MODES
    sweeps: int = 4
    group_size: int | None = None
    top_fraction: float = 0.2
    chunk: int = 4096
    train_starts: int | None = None

    def __post_init__(self):
        specs = tuple(solver_spec(s) for s in self.solvers)
        object.__setattr__(self, "solvers", specs)
        if self.train_starts is None:
            starts = 1 if self.pole.poles == "hanging" else 8
            object.__setattr__(self, "train_starts", starts)

    def validate(self) -> NKESNConfig:
        """Checks every field (``ValueError`` naming it); returns ``self``."""
        self.esn.validate()
        names = [s.name for s in self.solvers]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"solvers must have distinct names, got {names!r}")
        for spec in self.solvers:
            make_solver(spec, self.esn.bits)
        for mode in self.modes:
            if mode not in NK_MODES:
                raise ValueError(f"modes must be from {NK_MODES}, got {mode!r}")
        if not self.modes:
            raise ValueError("modes must name at least one mode")
        if isinstance(self.sweeps, bool) or not isinstance(self.sweeps, int):
            raise ValueError(f"sweeps must be an int >= 1, got {self.sweeps!r}")
        if self.sweeps < 1:
            raise ValueError(f"sweeps must be an int >= 1, got {self.sweeps!r}")
        if self.group_size is not None:
            check_k(self.group_size, "group_size", high=min(self.esn.n, MAX_K))
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int):
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")
        t = self.train_starts
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"train_starts must be an int >= 1, got {t!r}")
        return self


class NKESNResult(NamedTuple):
    """What :func:`nk_esn` measured.

    Attributes:
        esn: the network.
        landscapes: the tabulated per-output fitness.
        rows: one dict per (solver, mode) and the classical references
            (``exhaustive``/independent: each output's optimum; ``dp``/shared: the
            exact NK optimum, adjacent wiring or N <= 20): ``optimum_rate``,
            ``total_fitness`` (sum of the outputs' fitness), ``lookups``,
            ``oracle_calls``, ``select_s``, ``generalisation`` and
            ``train_fitness`` per committee (``all``, ``top``, ``best``).
        optimum: the exact shared-mask optimum of ``sum_i f_i`` or ``None``.
        tabulate_s: seconds of the tabulation (compile included).
        episodes: episodes run by the tabulation, ``N 2^(K+1) train_starts``.
        best_entry: the reference implementation's "best single output", the best
            table entry with its own bits (:func:`qselax.esn.best_entry`):
            ``output``, ``bits``, ``fitness``, ``generalisation``,
            ``train_fitness``.
        row_fitness: ``(R, N)`` each row's per-output fitness under its bits
            (from the table), in the order of ``rows``.
        row_bits: ``(R, N, K+1)`` each row's per-output bits, in that order (with
            ``committee_weights(row_fitness[r], kind)`` they rebuild its
            committees).
    """

    esn: ESN
    landscapes: Landscapes
    rows: list
    optimum: float | None
    tabulate_s: float
    episodes: int
    best_entry: dict | None = None
    row_fitness: np.ndarray | None = None
    row_bits: np.ndarray | None = None


def nk_esn(
    key: jax.Array,
    config: NKESNConfig,
    *,
    loggers: Sequence[Logger] = (),
    esn: ESN | None = None,
    checkpoints: Checkpoints | None = None,
) -> NKESNResult:
    """Tabulates, selects with every solver and mode, and scores the committees.

    Args:
        key: PRNG key (network from ``fold_in(key, 0)``, solvers from later folds).
        config: the experiment (``config.pole`` is the plant).
        loggers: callables given every shared-mode sweep's history record.
        esn: a given network (e.g. :func:`qselax.reference.load_run`'s) instead of
            a drawn one; its N and K must be ``config.esn``'s.
        checkpoints: keep the tabulation and every shared-mode sweep there, and
            resume from them (:mod:`qselax.checkpoints`; ``tabulate_s`` is then
            the first run's).

    Returns:
        The :class:`NKESNResult`.
    """
    config.validate()
    cfg = config.esn
    if esn is None:
        esn = make_esn(jax.random.fold_in(key, 0), cfg)
    elif tuple(esn.w_out.shape) != (cfg.n, cfg.bits):
        raise ValueError(
            f"esn has N, K+1 = {tuple(esn.w_out.shape)}, config {(cfg.n, cfg.bits)}"
        )
    land = None
    if checkpoints is not None:
        n_configs = (cfg.n, 2**cfg.bits)
        like = Landscapes(
            np.zeros(n_configs, np.float32), np.zeros(n_configs, np.int32)
        )
        saved = checkpoints.restore_tree("tabulation", {"land": like, "s": 0.0})
        if saved is not None:
            land = Landscapes(*(jnp.asarray(x) for x in saved["land"]))
            tabulate_s = float(saved["s"])
    if land is None:
        start = time.perf_counter()
        starts = pole.training_starts(
            config.pole, config.train_starts, jax.random.fold_in(key, 1)
        )
        land = jax.block_until_ready(
            tabulate(esn, config.pole, chunk=config.chunk, starts=starts)
        )
        tabulate_s = time.perf_counter() - start
        if checkpoints is not None:
            checkpoints.save_tree("tabulation", {"land": land, "s": tabulate_s})
    fitness = land.fitness
    neighbours = np.asarray(esn.neighbours)
    start = time.perf_counter()
    best = select_independent(key, fitness, "exhaustive")
    selections = [("exhaustive", "independent", best, time.perf_counter() - start)]
    optimum = None
    exact = None
    start = time.perf_counter()
    if cfg.connectivity == "adjacent":
        exact = nk.nk_dp(-fitness, circular=True)
    elif cfg.n <= 20:
        exact = nk.nk_exhaustive(-fitness, neighbours, cfg.n)
    if exact is not None:
        x = jnp.asarray(exact[0], jnp.int32)
        bits = x[neighbours]
        chosen = _output_fitness(fitness, bits)
        optimum = float(jnp.sum(chosen))
        selections.append(
            (
                "dp" if cfg.connectivity == "adjacent" else "exhaustive",
                "shared",
                NKSelection(bits, chosen, x, 1.0, int(fitness.size), 0),
                time.perf_counter() - start,
            )
        )
    for i, spec in enumerate(config.solvers):
        for mode in config.modes:
            k = jax.random.fold_in(key, 100 + 2 * i + (mode == "shared"))
            start = time.perf_counter()
            if mode == "independent":
                sel = select_independent(k, fitness, spec)
            else:
                sel = select_shared(
                    k,
                    fitness,
                    neighbours,
                    spec,
                    sweeps=config.sweeps,
                    group_size=config.group_size,
                    optimum=optimum,
                    loggers=loggers,
                    checkpoints=None
                    if checkpoints is None
                    else checkpoints.sub(f"{i}-{spec.name}"),
                )
            jax.block_until_ready(sel.bits)
            selections.append((spec.name, mode, sel, time.perf_counter() - start))
    bits, weights = [], []
    for _, _, sel, _ in selections:
        for kind in COMMITTEES:
            bits.append(sel.bits)
            weights.append(committee_weights(sel.fitness, kind, config.top_fraction))
    # The reference's best single output: the best table entry, its own bits.
    output, setting = best_entry(fitness)
    own = index_bits(jnp.asarray(setting), cfg.bits)
    bits.append(best.bits.at[output].set(own.astype(best.bits.dtype)))
    weights.append(jax.nn.one_hot(output, cfg.n, dtype=jnp.float32))
    scores, train = generalisation_scores(
        esn, jnp.stack(bits), jnp.stack(weights), config.pole
    )
    rows = []
    for r, (name, mode, sel, seconds) in enumerate(selections):
        row = {
            "solver": name,
            "mode": mode,
            "optimum_rate": sel.optimum_rate,
            "total_fitness": float(jnp.sum(sel.fitness)),
            "lookups": sel.lookups,
            "oracle_calls": sel.oracle_calls,
            "calls_to_optimum": sel.calls_to_optimum,
            "select_s": seconds,
            "generalisation": {},
            "train_fitness": {},
        }
        for c, kind in enumerate(COMMITTEES):
            row["generalisation"][kind] = int(scores[3 * r + c])
            row["train_fitness"][kind] = float(train[3 * r + c])
        if sel.history is not None:
            row["history"] = [float(v) for v in sel.history]
        rows.append(row)
    entry = {
        "output": output,
        "bits": np.asarray(own).tolist(),
        "fitness": float(fitness[output, setting]),
        "generalisation": int(scores[-1]),
        "train_fitness": float(train[-1]),
    }
    return NKESNResult(
        esn=esn,
        landscapes=land,
        rows=rows,
        optimum=optimum,
        tabulate_s=tabulate_s,
        episodes=int(fitness.size) * config.train_starts,
        best_entry=entry,
        row_fitness=np.stack([np.asarray(s.fitness) for _, _, s, _ in selections]),
        row_bits=np.stack([np.asarray(s.bits) for _, _, s, _ in selections]),
    )
