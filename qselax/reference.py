"""Replay of the NK Echo State Network reference implementation's own files.

The reference C++ code (R. Tinós; public in the GitHub repository
``tjwhitaker/generalization``, ``neuroevolution/nkensemble/``) writes, per run r:

* ``NN_r.dat``: the network.  Text sections, one matrix row per line:
  ``Parameters`` (inputs, reservoir R, probes N, outputs N), ``W_in`` (R x 3),
  ``W_rec`` (R x R), ``W_hid`` (N x R, the probes), ``W_out`` (N x N, row i non-zero
  at output i's K+1 probes), ``B_hid1`` (R), ``B_hid2`` (N), ``B_out`` (N).
* ``NK_r.dat``: the tabulated NK model.  ``Parameters`` (N, K), ``F_el`` (N rows of
  2^(K+1) fitness values), ``M_out`` (N x N 0/1 wiring).  Column j of row i sets
  output i's probes, *sorted by index*, to the bits of j, least significant bit on
  the lowest index.
* ``solDP_r.dat``: ``Optimal solution: <N bits>`` and ``Optimal fitness: <float>``,
  the exact NK optimum; the bit string is read *reversed* (its last character is
  probe 0).

:func:`load_run` turns them into the objects qselax uses: the network as an
:class:`qselax.esn.ESN` (wiring in qselax's order, output i's own probe first and
the rest in circular order, so adjacent wiring is ``i, i+1, ..., i+K``), the table
in :mod:`qselax.nk`'s column order (bit 0, the most significant, on
``neighbours[i, 0]``), the mask and its optimum.  :func:`replay` scores the loaded
network on a plant (by default :func:`qselax.pole.plant_config` ``("reference")``,
the plant the files come from): its own tabulation against the file's, the DP
optimum of the file's table, and the generalisation scores of the reference's
three controllers.

Example:
    >>> run = load_run("tests/data/nk-esn-k2-run0")  # doctest: +SKIP
    >>> replay(run)["generalisation"]  # doctest: +SKIP
    {'all': 200, 'top': 475, 'best_entry': 510}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qselax import nk, pole
from qselax.bits import bit_index, index_bits
from qselax.esn import (
    ESN,
    best_entry,
    committee_weights,
    generalisation_scores,
    tabulate,
)

__all__ = [
    "WARMUP",
    "ReferenceRun",
    "load_run",
    "read_mask",
    "read_network",
    "read_nk",
    "replay",
]

#: Reservoir steps with zero input before every episode, as in the reference.
WARMUP = 20


class ReferenceRun(NamedTuple):
    """One run of the reference implementation, in qselax's objects.

    Attributes:
        esn: the network (``z0`` after ``warmup`` zero-input steps).
        fitness: ``(N, 2^(K+1))`` float64 the file's table, qselax's column order.
        mask: ``(N,)`` int32 the file's optimal shared mask, or ``None``.
        optimum: the file's optimal fitness, or ``None``.
        k: K.
    """

    esn: ESN
    fitness: np.ndarray
    mask: np.ndarray | None
    optimum: float | None
    k: int


def _sections(path: Path) -> dict[str, list[str]]:
    """Named sections of a reference text file: header line -> the lines after it."""
    out: dict[str, list[str]] = {}
    current = None
    for line in Path(path).read_text().splitlines():
        words = line.split()
        if not words:
            continue
        try:
            float(words[0])
        except ValueError:
            name, colon, rest = line.partition(":")
            current = name.strip()
            out[current] = [rest.strip()] if colon and rest.strip() else []
            continue
        if current is None:
            raise ValueError(f"{path}: numbers before any section header")
        out[current].append(line)
    return out


def _matrix(sections: dict, name: str, path: Path, shape: tuple[int, int]):
    if name not in sections:
        raise ValueError(f"{path}: no {name!r} section")
    rows = [[float(v) for v in line.split()] for line in sections[name]]
    array = np.asarray(rows, np.float64)
    if array.shape != shape:
        raise ValueError(f"{path}: {name} has shape {array.shape}, expected {shape}")
    return array


def _wiring(connections: np.ndarray) -> np.ndarray:
    """``(N, N)`` 0/1 rows -> ``(N, K+1)`` probes, own first, then circular order."""
    n = connections.shape[0]
    rows = [np.flatnonzero(connections[i]) for i in range(n)]
    sizes = {len(r) for r in rows}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"every output must read the same number of probes: {sizes}")
    return np.asarray(
        [sorted(r, key=lambda j, i=i: (j - i) % n) for i, r in enumerate(rows)],
        np.int32,
    )


def _column_map(neighbours: np.ndarray) -> np.ndarray:
    """``(N, 2^(K+1))``: the reference column of each qselax column of each row."""
    bits = neighbours.shape[1]
    settings = np.asarray(index_bits(jnp.arange(2**bits), bits), np.int64)  # (S, B)
    rank = np.argsort(np.argsort(neighbours, axis=1), axis=1)  # index order of probes
    return np.einsum("sb,nb->ns", settings, 2 ** rank.astype(np.int64))


def read_nk(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``NK_r.dat``.

    Args:
        path: the file.

    Returns:
        ``(N, 2^(K+1))`` float64 table in qselax's column order and ``(N, K+1)``
        int32 wiring (own probe first, then circular order).
    """
    path = Path(path)
    sections = _sections(path)
    if "Parameters" not in sections or not sections["Parameters"]:
        raise ValueError(f"{path}: no 'Parameters' section")
    n, k = (int(v) for v in sections["Parameters"][0].split()[:2])
    table = _matrix(sections, "F_el", path, (n, 2 ** (k + 1)))
    neighbours = _wiring(_matrix(sections, "M_out", path, (n, n)))
    if neighbours.shape[1] != k + 1:
        raise ValueError(f"{path}: M_out rows read {neighbours.shape[1]} probes, K={k}")
    return np.take_along_axis(table, _column_map(neighbours), axis=1), neighbours


def read_network(
    path: str | Path, neighbours: np.ndarray, *, warmup: int = WARMUP
) -> ESN:
    """Reads ``NN_r.dat`` into an :class:`qselax.esn.ESN` (float32).

    Args:
        path: the file.
        neighbours: ``(N, K+1)`` the wiring (from :func:`read_nk`).
        warmup: zero-input reservoir steps before every episode (``z0``).

    Returns:
        The network; ``W_out`` must be zero off the wiring.
    """
    path = Path(path)
    sections = _sections(path)
    if "Parameters" not in sections or not sections["Parameters"]:
        raise ValueError(f"{path}: no 'Parameters' section")
    n_in, r, n_probe, n_out = (int(v) for v in sections["Parameters"][0].split()[:4])
    neighbours = np.asarray(neighbours, np.int32)
    if n_in != 3 or n_probe != n_out or neighbours.shape[0] != n_out:
        raise ValueError(
            f"{path}: expected 3 inputs and {neighbours.shape[0]} probes = outputs, "
            f"got {(n_in, r, n_probe, n_out)}"
        )
    w_out = _matrix(sections, "W_out", path, (n_out, n_probe))
    read = np.take_along_axis(w_out, neighbours, axis=1)
    off = w_out.copy()
    np.put_along_axis(off, neighbours, 0.0, axis=1)
    if np.any(off != 0):
        raise ValueError(f"{path}: W_out has weights outside the wiring")
    w_res = _matrix(sections, "W_rec", path, (r, r))
    b_res = _matrix(sections, "B_hid1", path, (1, r))[0]
    z0 = np.zeros(r)
    for _ in range(warmup):  # float64, as the C++ code
        z0 = np.tanh(b_res + w_res @ z0)

    def f32(a):
        return jnp.asarray(a, jnp.float32)

    return ESN(
        w_in=f32(_matrix(sections, "W_in", path, (r, 3))),
        w_res=f32(w_res),
        b_res=f32(b_res),
        w_probe=f32(_matrix(sections, "W_hid", path, (n_probe, r))),
        b_probe=f32(_matrix(sections, "B_hid2", path, (1, n_probe))[0]),
        w_out=f32(read),
        b_out=f32(_matrix(sections, "B_out", path, (1, n_out))[0]),
        neighbours=jnp.asarray(neighbours, jnp.int32),
        z0=f32(z0),
    )


def read_mask(path: str | Path) -> tuple[np.ndarray, float]:
    """Reads ``solDP_r.dat``: the mask (string reversed: last character = probe 0).

    Args:
        path: the file.

    Returns:
        ``(N,)`` int32 mask and the optimal fitness.
    """
    path = Path(path)
    sections = _sections(path)
    try:
        text = sections["Optimal solution"][0]
        optimum = float(sections["Optimal fitness"][0])
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"{path}: expected 'Optimal solution/fitness' lines") from None
    if not text or set(text) - {"0", "1"}:
        raise ValueError(f"{path}: the solution must be a 0/1 string, got {text!r}")
    return np.asarray([int(c) for c in reversed(text)], np.int32), optimum


def load_run(directory: str | Path, run: int = 0, *, warmup: int = WARMUP):
    """Loads ``NN_run.dat``, ``NK_run.dat`` and (if present) ``solDP_run.dat``.

    Args:
        directory: the folder of the files.
        run: the run number r in the file names.
        warmup: zero-input reservoir steps before every episode.

    Returns:
        The :class:`ReferenceRun`.
    """
    directory = Path(directory)
    fitness, neighbours = read_nk(directory / f"NK_{run}.dat")
    esn = read_network(directory / f"NN_{run}.dat", neighbours, warmup=warmup)
    mask = optimum = None
    if (directory / f"solDP_{run}.dat").exists():
        mask, optimum = read_mask(directory / f"solDP_{run}.dat")
        if mask.shape[0] != neighbours.shape[0]:
            raise ValueError(
                f"solDP_{run}.dat has {mask.shape[0]} bits for N = "
                f"{neighbours.shape[0]}"
            )
    return ReferenceRun(esn, fitness, mask, optimum, neighbours.shape[1] - 1)


def replay(
    run: ReferenceRun,
    plant: pole.PoleConfig | None = None,
    *,
    top_fraction: float = 0.2,
    chunk: int = 4096,
) -> dict:
    """Scores a loaded run the way the reference does.

    Tabulates the network on ``plant`` and compares with the file's table; takes
    the DP optimum of the file's table (adjacent wiring); with the file's mask (or
    else the DP one), scores the committees of all outputs and of the best
    ``top_fraction`` (fitness-proportional weights from the file's table), and the
    reference's best single output: the best table entry with its own bits.

    Args:
        run: from :func:`load_run`.
        plant: the plant (default ``plant_config("reference")``).
        top_fraction: share of outputs in the ``top`` committee.
        chunk: episodes per chunk of the tabulation.

    Returns:
        A JSON-ready dict: ``max_abs_diff`` and ``max_rel_diff`` (tabulated vs
        file), ``file_optimum``, ``dp_optimum``, ``dp_mask_equal``,
        ``best_entry`` (output, bits, fitness), ``generalisation`` and
        ``train_fitness`` per controller (``all``, ``top``, ``best_entry``).
    """
    plant = pole.plant_config("reference") if plant is None else plant
    land = tabulate(run.esn, plant, chunk=chunk)
    mine = np.asarray(land.fitness, np.float64)
    diff = np.abs(mine - run.fitness)
    table = jnp.asarray(run.fitness, jnp.float32)
    neighbours = np.asarray(run.esn.neighbours)
    n = neighbours.shape[0]
    dp_mask = dp_optimum = None
    if np.array_equal(neighbours, nk.adjacent_neighbours(n, run.k)):
        x, cost = nk.nk_dp(-table, circular=True)
        dp_mask, dp_optimum = np.asarray(x, np.int32), -float(cost)
    mask = dp_mask if run.mask is None else run.mask
    if mask is None:
        raise ValueError("no mask: the file gives none and the wiring is not adjacent")
    bits = jnp.asarray(mask[neighbours])
    columns = np.asarray(bit_index(bits))
    chosen = np.take_along_axis(run.fitness, columns[:, None], axis=1)[:, 0]
    f = jnp.asarray(chosen, jnp.float32)
    output, setting = best_entry(table)
    k1 = run.k + 1
    own = bits.at[output].set(index_bits(jnp.asarray(setting), k1).astype(bits.dtype))
    names = ("all", "top", "best_entry")
    weights = jnp.stack(
        [
            committee_weights(f, "all", top_fraction),
            committee_weights(f, "top", top_fraction),
            jax.nn.one_hot(output, bits.shape[0], dtype=jnp.float32),
        ]
    )
    scores, train = generalisation_scores(
        run.esn, jnp.stack([bits, bits, own]), weights, plant
    )
    return {
        "n": int(bits.shape[0]),
        "k": run.k,
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(np.max(diff / np.maximum(np.abs(run.fitness), 1e-12))),
        "file_optimum": run.optimum,
        "dp_optimum": dp_optimum,
        "dp_mask_equal": (
            None
            if run.mask is None or dp_mask is None
            else bool(np.all(dp_mask == run.mask))
        ),
        "mask_fitness": float(np.sum(chosen)),
        "best_entry": {
            "output": int(output),
            "bits": np.asarray(index_bits(jnp.asarray(setting), k1)).tolist(),
            "fitness": float(run.fitness[output, setting]),
        },
        "generalisation": {c: int(s) for c, s in zip(names, scores, strict=True)},
        "train_fitness": {c: float(t) for c, t in zip(names, train, strict=True)},
        "top_outputs": math.ceil(top_fraction * bits.shape[0]),
    }
