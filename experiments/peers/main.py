"""Benchmark: qselax against PennyLane and Qiskit Aer on identical K-qubit circuits.

Question: how fast is qselax's batched circuit simulation per group, next to the
simulators a researcher would otherwise use, on exactly the circuits qselax runs?

Circuits (one per group, each group with its own angles and its own random landscape
``C``, i.i.d. N(0, 1) costs of the ``S = 2^K`` bitstrings; qubit 0 is the most
significant bit everywhere):

* ``hea``: the ``vqe`` solver's default ansatz, the gates of
  :func:`qselax.circuits.hea_circuit`: H on every qubit, then ``layers`` x (CNOT
  ladder ``(0,1), ..., (K-2,K-1)``, RY on every qubit, RZ on every qubit); ``6K``
  angles at 3 layers; complex64.
* ``hea_real``: the direct VQE's ansatz (``qselax.selection.DIRECT_VQE``, rotations
  ``("ry",)``): H on every qubit, then ``layers`` x (CNOT ladder, RY on every
  qubit); ``3K`` angles. The state stays real: qselax simulates it on its float32
  real path (:func:`qselax.circuits.hea_probs` picks it for an all-RY ansatz).
* ``qaoa``: p layers of the diagonal phase ``exp(-i gamma_j diag(C))`` and the X
  mixer ``RX(2 beta_j)`` on every qubit, from ``|+>^K``
  (:func:`qselax.solvers.qaoa.qaoa_state`); ``2p`` angles.

Quantities per group: the expectation ``E = sum_s p(s) C(s)`` and ``E`` with its
gradient in all the angles. K = 6, 8, 10 and 12, G = 1, 64 and 1024 groups, 3
layers (the defaults of qselax's ``vqe`` and ``qaoa`` solvers).

How each framework computes them:

* **qselax**: ``jax.jit(jax.vmap(f))`` and
  ``jax.jit(jax.vmap(jax.value_and_grad(f)))`` of ``f = sum(hea_probs(params) *
  C)`` or ``sum(qaoa_probs(gamma, beta, C) * C)``: the functions its solvers run.
* **PennyLane** ``default.qubit``, JAX interface, backprop, ``jax.jit`` (complex64):
  the same gates; the readout is ``qml.probs`` dotted with ``C`` (2x faster than
  ``qml.expval(qml.Hermitian(diag(C)))`` at K = 8, G = 1, and the Hermitian is a
  dense ``S x S`` matrix); the phase is ``qml.DiagonalQubitUnitary``. Batched with
  ``jax.vmap`` over the qnode; gradients by ``jax.value_and_grad``.
  ``--pl-batch broadcast`` uses parameter broadcasting instead: at K = 8, G = 1024
  it was slower relative to qselax on all four rows (PL/qselax 1.8x, 2.2x, 66x,
  28x against 1.3-1.6x, 1.6-2.1x, 37-43x, 17x with vmap) and compiled QAOA 20-30x
  longer. ``default.qubit`` applies ``DiagonalQubitUnitary`` as a dense ``S x S``
  matrix, so groups run in chunks that fit ``--peer-memory-mb``.
* **PennyLane** ``lightning.qubit`` (C++ state vector, complex64, adjoint
  gradients): not JAX-jittable, so run as its users run it on many groups, see
  :class:`_Lightning` (``--lightning-mode batch``, the default: one batch of tapes
  through the device; ``loop``: a Python loop of qnode calls).
* **Qiskit Aer** ``AerSimulator(method="statevector")`` in its default double
  precision (single precision was not faster here), reading ``save_probabilities``
  dotted with ``C``. HEA circuits: one parameterised circuit, transpiled once, all
  groups (and parameter shifts) bound in one job with ``parameter_binds`` and
  ``runtime_parameter_bind_enable=True`` (2-3x faster than Aer's default binding
  at K = 6, 8). QAOA: the phase depends on ``gamma`` and on the group's landscape,
  so every group and angle set is its own circuit (``DiagonalGate`` of
  ``exp(-i gamma C)``, Aer's native ``diagonal`` instruction, no transpilation
  needed), all in one job with ``max_parallel_experiments=0`` (over all cores);
  building these circuits in Python is included in the time and its share is
  printed. Aer has no autodiff. HEA gradients by the parameter-shift rule (``2P``
  extra circuits per group, exact); QAOA gradients by central finite differences
  (step 1e-4, ``4p`` extra circuits), because a diagonal phase with ``2^K``
  distinct eigenvalues has no two-term shift rule.

First all peers are checked to agree, on one group per (circuit, K), on the
expectation and the gradient, to ``rtol`` (default 1e-4) times the scale
``max(max|C|, max|grad|)``; the run stops if they do not. Every batched result
that is timed is checked the same way against qselax's. Then every row is timed,
after compilation (reported separately for the JAX frameworks) and one warm-up
call: ``--repeats`` rounds that each time every framework once (interleaved, so
that drifting load on a shared machine hits all alike; a call shorter than
``--min-s`` is repeated within its round), the median round, divided by the
groups in the call. A peer that would take too long or use too much memory on all
G groups is timed on its first ``n`` groups (shown as ``[n]``) and reported per
group: default.qubit runs one chunk of ``n`` groups sized to ``--peer-memory-mb``;
lightning.qubit and Aer run as many groups as fit in ``--cap-s`` seconds at their
single-group speed (a call of one group that already took ``--min-s`` or more
served as its own warm-up).

Issue 14 asks for the HEA rows at 5x default.qubit or more. After the rows the run
measures two machine bounds (:func:`_machine_bounds`: the cost of one call of a
jitted program holding one small gate product, and the streaming bandwidth), and
every HEA row under 5x is set against them (:func:`bounds_table`).

Absolute times depend on the machine and its load; the ratios peer/qselax come
from one run. One JSON line per record goes to ``<out>/peers.jsonl``: the run
(``record: "run"``: arguments, versions, machine, bounds), every agreement check
(``"agreement"``) and every timed row (``"timing"``). Usage (needs the ``bench``
extra, ``pip install -e ".[bench]"``)::

    python experiments/peers/main.py [--quick] [--ks 6 8 10 12]
        [--groups 1 64 1024] [--circuits hea hea_real qaoa]
        [--peers pennylane lightning aer] [--lightning-mode batch|loop]
        [--layers 3] [--repeats 5] [--min-s 0.2] [--cap-s 2] [--out DIR]
    python experiments/peers/main.py --table
    python experiments/peers/main.py --smoke

The full grid takes 20-27 minutes (5 repeats) on the 2-core CPU, ``--quick`` a few.
``--smoke`` (K = 4, G = 1, one round) runs in seconds; it times qselax alone where a
peer is not installed, and says so.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

FILE = "peers.jsonl"
SMOKE = dict(ks=[4], groups=[1], repeats=1, min_s=0.0, cap_s=0.5)
CIRCUITS = ("hea", "hea_real", "qaoa")
# The rotations of each layer of the HEA circuits (qselax's ``Ansatz.rotations``):
# ``hea`` is the solver's complex default, ``hea_real`` the direct VQE's
# (``qselax.selection.DIRECT_VQE``), simulated by qselax's real float32 path.
ROTATIONS = {"hea": ("ry", "rz"), "hea_real": ("ry",)}
QUANTITIES = ("E", "E+grad")
FRAMEWORKS = ("qselax", "pennylane", "lightning", "aer")
# Column names: "pennylane" is PennyLane's default.qubit (JAX), "lightning" its
# lightning.qubit (C++).
NAMES = {
    "qselax": "qselax",
    "pennylane": "default.qubit",
    "lightning": "lightning.qubit",
    "aer": "Aer",
}
SPEEDUP_GOAL = 5.0  # issue 14: the HEA rows >= 5x default.qubit
FD_STEP = 1e-4  # Aer QAOA finite differences (double precision)
AER_MAX_EXPERIMENTS = 2048  # experiments per Aer job, bounds the result's memory

# A framework's evaluation: (params (n, ...), landscapes (n, S)) -> energies (n,)
# or (energies (n,), grads (n, ...)), as NumPy arrays once it returns.
Evaluate = Callable[[object, object], object]


def _make_problem(key: jax.Array, circuit: str, k: int, layers: int, groups: int):
    """Random angles and landscapes for ``groups`` groups, float32 NumPy."""
    k_params, k_land = jax.random.split(key)
    if circuit in ROTATIONS:
        shape = (groups, layers, len(ROTATIONS[circuit]), k)  # qselax's (L, R, K)
        params = jax.random.uniform(k_params, shape, minval=-np.pi, maxval=np.pi)
    else:
        # Row 0 the gammas, row 1 the betas (the layout of qselax's qaoa solver),
        # around the signs of its linear ramp.
        u = jax.random.uniform(k_params, (groups, 2, layers), minval=0.1, maxval=1.0)
        params = u * jnp.asarray([[1.0], [-1.0]])
    landscapes = jax.random.normal(k_land, (groups, 2**k))
    return np.asarray(params, np.float32), np.asarray(landscapes, np.float32)


# ---------------------------------------------------------------------------
# qselax: its only calls into qselax


def _qselax(circuit: str, k: int, layers: int, quantity: str) -> Evaluate:
    from qselax.circuits import Ansatz, hea_probs
    from qselax.solvers.qaoa import qaoa_probs

    if circuit in ROTATIONS:
        # hea_real is all RY: hea_probs takes qselax's real float32 path, as in
        # the direct VQE solver.
        ansatz = Ansatz(k, layers, ROTATIONS[circuit])

        def energy(p, c):
            return jnp.sum(hea_probs(p, ansatz) * c)

    else:

        def energy(a, c):
            return jnp.sum(qaoa_probs(a[0], a[1], c) * c)

    if quantity == "E":
        return jax.jit(jax.vmap(energy))
    return jax.jit(jax.vmap(jax.value_and_grad(energy)))


# ---------------------------------------------------------------------------
# PennyLane


def _pennylane(circuit: str, k: int, layers: int, quantity: str, batch: str):
    import pennylane as qml

    dev = qml.device("default.qubit", wires=k)

    @qml.qnode(dev, interface="jax", diff_method="backprop")
    def probs(x, c):
        # x[..., ...]: the leading ``...`` is the broadcast axis (if any).
        for q in range(k):
            qml.Hadamard(q)
        for layer in range(layers):
            if circuit in ROTATIONS:
                for q in range(k - 1):
                    qml.CNOT([q, q + 1])
                for r, name in enumerate(ROTATIONS[circuit]):
                    gate = getattr(qml, name.upper())
                    for q in range(k):
                        gate(x[..., layer, r, q], wires=q)
            else:
                arg = -x[..., 0, layer, None] * c
                phase = jnp.exp(jax.lax.complex(jnp.zeros_like(arg), arg))
                qml.DiagonalQubitUnitary(phase, wires=range(k))
                for q in range(k):
                    qml.RX(2.0 * x[..., 1, layer], wires=q)
        return qml.probs(wires=range(k))

    def energy(x, c):
        return jnp.sum(probs(x, c) * c, axis=-1)

    if batch == "vmap":
        if quantity == "E":
            return jax.jit(jax.vmap(energy))
        return jax.jit(jax.vmap(jax.value_and_grad(energy)))
    # Parameter broadcasting: one tape with a batch axis. The groups are
    # independent, so the gradient of the sum is every group's gradient.
    if quantity == "E":
        return jax.jit(energy)

    def total(x, c):
        e = energy(x, c)
        return jnp.sum(e), e

    vg = jax.value_and_grad(total, has_aux=True)
    return jax.jit(lambda x, c: (lambda r: (r[0][1], r[1]))(vg(x, c)))


def _pennylane_chunk(circuit, k, layers, quantity, groups, memory_mb) -> int:
    """Groups per PennyLane call that fit ``memory_mb`` (a rough upper estimate).

    The state is complex64 (8 B per amplitude). Backprop through ``default.qubit``
    keeps about two states per gate; ``DiagonalQubitUnitary`` is a dense S x S
    matrix per layer (measured: ~0.5 GB per group at K = 12, p = 3).
    """
    s = 2**k
    if circuit in ROTATIONS:
        gates = k + layers * ((1 + len(ROTATIONS[circuit])) * k - 1)
        per_group = 8 * s * (8 if quantity == "E" else 2 * gates)
    else:
        per_group = 8 * s * s * (layers + 1)
    chunk = max(1, (memory_mb << 20) // per_group)
    chunk = 1 << (int(chunk).bit_length() - 1)  # a power of two
    return int(min(groups, chunk))


# ---------------------------------------------------------------------------
# Qiskit Aer


class _Aer:
    """Qiskit Aer statevector evaluation of one (circuit, K)."""

    def __init__(self, circuit: str, k: int, layers: int):
        from qiskit import QuantumCircuit, transpile
        from qiskit.circuit import ParameterVector
        from qiskit.circuit.library import DiagonalGate
        from qiskit_aer import AerSimulator

        self.circuit, self.k, self.layers = circuit, k, layers
        if circuit in ROTATIONS:
            # Binding at run time inside Aer: 2-3x faster than Aer's default
            # per-experiment binding for small circuits (measured at K = 6, 8).
            options = dict(runtime_parameter_bind_enable=True)
        else:
            # Distinct circuits: run them in parallel over the cores.
            options = dict(max_parallel_experiments=0)
        self.sim = AerSimulator(method="statevector", shots=1, **options)
        self._qc_cls, self._diag_cls = QuantumCircuit, DiagonalGate
        self.setup_s = 0.0
        self.build_s = 0.0  # time spent building QAOA circuits in Python
        if circuit in ROTATIONS:
            rotations = ROTATIONS[circuit]
            start = time.perf_counter()
            # Qiskit's qubit 0 is the least significant bit: qselax qubit q is
            # qiskit qubit k-1-q, so probability vectors share one index order.
            w = [k - 1 - q for q in range(k)]
            theta = ParameterVector("theta", layers * len(rotations) * k)
            qc = QuantumCircuit(k)
            for q in range(k):
                qc.h(w[q])
            for layer in range(layers):
                for q in range(k - 1):
                    qc.cx(w[q], w[q + 1])
                for r, name in enumerate(rotations):
                    gate = getattr(qc, name)
                    for q in range(k):
                        gate(theta[(layer * len(rotations) + r) * k + q], w[q])
            qc.save_probabilities()
            self.template = transpile(qc, self.sim)
            ops = dict(self.template.count_ops())
            expected = {"h": k, "cx": layers * (k - 1), "save_probabilities": 1}
            expected.update({name: layers * k for name in rotations})
            if ops != expected:
                raise SystemExit(f"Aer transpilation changed the circuit: {ops}")
            self.theta = list(theta)
            self.setup_s = time.perf_counter() - start

    def _run(self, circuits, binds=None) -> np.ndarray:
        """Probabilities of every experiment, ``(experiments, S)`` float64."""
        out = []
        if binds is None:
            for i in range(0, len(circuits), AER_MAX_EXPERIMENTS):
                res = self.sim.run(circuits[i : i + AER_MAX_EXPERIMENTS]).result()
                n = len(circuits[i : i + AER_MAX_EXPERIMENTS])
                out += [res.data(j)["probabilities"] for j in range(n)]
        else:  # binds: (experiments, P) angles for the one template
            for i in range(0, len(binds), AER_MAX_EXPERIMENTS):
                chunk = binds[i : i + AER_MAX_EXPERIMENTS]
                table = {t: chunk[:, j].tolist() for j, t in enumerate(self.theta)}
                res = self.sim.run([self.template], parameter_binds=[table]).result()
                out += [res.data(j)["probabilities"] for j in range(len(chunk))]
        return np.asarray(out, np.float64)

    def _qaoa_circuit(self, angles: np.ndarray, landscape: np.ndarray):
        qc = self._qc_cls(self.k)
        for q in range(self.k):
            qc.h(q)
        for layer in range(self.layers):
            phase = np.exp(-1j * angles[0, layer] * landscape)
            qc.append(self._diag_cls(phase), range(self.k))
            for q in range(self.k):
                qc.rx(2.0 * angles[1, layer], q)
        qc.save_probabilities()
        return qc

    def _points(self, params: np.ndarray, grad: bool) -> tuple[np.ndarray, float]:
        """Evaluation points per group: ``(n, 1 [+ 2P], ...)`` and the shift."""
        params = np.asarray(params, np.float64)
        if not grad:
            return params[:, None], 0.0
        shift = np.pi / 2 if self.circuit in ROTATIONS else FD_STEP
        n, shape = params.shape[0], params.shape[1:]
        eye = np.eye(int(np.prod(shape))).reshape((-1,) + shape)
        pts = np.concatenate(
            [
                params[:, None],
                params[:, None] + shift * eye,
                params[:, None] - shift * eye,
            ],
            axis=1,
        )
        return pts.reshape((n, -1) + shape), shift

    def __call__(self, params, landscapes, grad: bool = False):
        land = np.asarray(landscapes, np.float64)
        pts, shift = self._points(params, grad)
        n, m = pts.shape[:2]
        if self.circuit in ROTATIONS:
            probs = self._run(None, pts.reshape(n * m, -1))
        else:
            start = time.perf_counter()
            circuits = [
                self._qaoa_circuit(pts[g, i], land[g])
                for g in range(n)
                for i in range(m)
            ]
            self.build_s += time.perf_counter() - start
            probs = self._run(circuits)
        e = np.einsum("gms,gs->gm", probs.reshape(n, m, -1), land)
        if not grad:
            return e[:, 0]
        p = (m - 1) // 2
        plus, minus = e[:, 1 : 1 + p], e[:, 1 + p :]
        if self.circuit in ROTATIONS:  # parameter shift: (E(+pi/2) - E(-pi/2)) / 2
            g = (plus - minus) / 2.0
        else:  # central differences
            g = (plus - minus) / (2.0 * shift)
        return e[:, 0], g.reshape(np.shape(params))


# ---------------------------------------------------------------------------
# PennyLane lightning.qubit


def _diagonal_observable(landscape: np.ndarray):
    """``diag(C)`` as a ``qml.SparseHamiltonian`` (a CSR matrix with S entries)."""
    import pennylane as qml
    import scipy.sparse

    s = landscape.shape[0]
    rows = np.arange(s)
    matrix = scipy.sparse.csr_matrix(
        (np.asarray(landscape, np.float64), rows, np.arange(s + 1)), shape=(s, s)
    )
    return qml.SparseHamiltonian(matrix, wires=range(int(s).bit_length() - 1))


class _Lightning:
    """PennyLane ``lightning.qubit`` evaluation of one (circuit, K), complex64.

    ``lightning.qubit`` is a C++ state-vector simulator driven from Python; it is
    not JAX-jittable (under ``jax.jit`` it runs as a host callback, measured 1.4x
    slower at K = 8 and no faster at K = 12), so it is timed as a user runs it on
    many groups. ``mode="batch"`` (the default, the faster): one batch of tapes,
    one per group, bound from a template tape (``bind_new_parameters``, 3x cheaper
    than building each tape), executed by the device's own batch execution
    (``dev.execute`` under the device's default configuration,
    ``dev.execute_and_compute_derivatives`` under the adjoint one, both from
    ``dev.setup_execution_config``: what ``qml.execute`` runs underneath, without
    its interface layer). ``mode="loop"``: a Python loop of ``qml.qnode`` calls,
    ``qml.grad`` (autograd) for the gradient.

    The expectation alone reads ``qml.probs`` dotted with ``C``; with the gradient
    it is ``qml.expval`` of ``diag(C)`` as a ``SparseHamiltonian`` (the adjoint
    method needs an expectation; a dense ``Hermitian`` is an ``S x S`` matrix),
    differentiated by the adjoint method. QAOA's phase is
    ``qml.DiagonalQubitUnitary``: lightning applies it as a dense ``S x S`` matrix,
    and for the adjoint gradient PennyLane decomposes it into about ``2^K`` CNOT
    and RZ gates per layer (a diagonal has no generator), so the QAOA gradient is
    always the qnode loop: the phases depend on ``gamma``, and only PennyLane's
    interface carries their derivative back to it.
    """

    def __init__(self, circuit: str, k: int, layers: int, mode: str = "batch"):
        import pennylane as qml
        from pennylane.devices import ExecutionConfig

        self.qml, self.circuit, self.k, self.layers = qml, circuit, k, layers
        self.mode = mode
        self.dev = qml.device("lightning.qubit", wires=k, c_dtype=np.complex64)
        # The expectation alone runs under the device's default configuration: under
        # the adjoint one, dev.execute was 8x slower on the QAOA tapes (K = 8).
        self.config = self.dev.setup_execution_config(ExecutionConfig())
        self.adjoint = self.dev.setup_execution_config(
            ExecutionConfig(gradient_method="adjoint")
        )
        self.probs_mp = qml.probs(wires=range(k))
        if circuit in ROTATIONS:
            shape = (layers, len(ROTATIONS[circuit]), k)
            self.template = qml.tape.QuantumScript(self._ops(np.zeros(shape)))
            self.indices = list(range(int(np.prod(shape))))
        self.qnodes: dict[str, Callable] = {}

    def _ops(self, x: np.ndarray, landscape: np.ndarray | None = None) -> list:
        """The gates of one group; ``x``: HEA ``(L, R, K)`` or QAOA ``(2, p)``."""
        qml, k = self.qml, self.k
        ops = [qml.Hadamard(q) for q in range(k)]
        for layer in range(self.layers):
            if self.circuit in ROTATIONS:
                ops += [qml.CNOT([q, q + 1]) for q in range(k - 1)]
                for r, name in enumerate(ROTATIONS[self.circuit]):
                    gate = getattr(qml, name.upper())
                    ops += [gate(x[layer, r, q], wires=q) for q in range(k)]
            else:
                phase = qml.math.exp(-1j * x[0, layer] * landscape)
                ops.append(qml.DiagonalQubitUnitary(phase, wires=range(k)))
                ops += [qml.RX(2.0 * x[1, layer], wires=q) for q in range(k)]
        return ops

    def _qnode(self, quantity: str) -> Callable:
        """``f(x, landscape)``: probabilities (E) or the expectation (E+grad)."""
        if quantity not in self.qnodes:
            qml = self.qml
            diff = None if quantity == "E" else "adjoint"

            @qml.qnode(self.dev, diff_method=diff)
            def f(x, landscape):
                self._ops(x, landscape)  # made inside the qnode: queued on its tape
                if quantity == "E":
                    return qml.probs(wires=range(self.k))
                return qml.expval(_diagonal_observable(landscape))

            self.qnodes[quantity] = f
        return self.qnodes[quantity]

    def _loop(self, params, landscapes, grad: bool):
        from pennylane import numpy as pnp

        energies, grads = [], []
        for x, c in zip(params, landscapes, strict=True):
            if not grad:
                energies.append(np.dot(self._qnode("E")(x, c), c))
                continue
            grad_fn = self.qml.grad(self._qnode("E+grad"), argnums=0)
            grads.append(grad_fn(pnp.array(x, requires_grad=True), c))
            energies.append(grad_fn.forward)
        if not grad:
            return np.asarray(energies)
        return np.asarray(energies), np.asarray(grads)

    def _batch(self, params, landscapes, grad: bool):
        qml = self.qml
        if not grad:
            if self.circuit in ROTATIONS:
                tapes = [
                    self.template.bind_new_parameters(x.ravel(), self.indices)
                    for x in params
                ]
                tapes = [t.copy(measurements=[self.probs_mp]) for t in tapes]
            else:
                tapes = [
                    qml.tape.QuantumScript(self._ops(x, c), [self.probs_mp])
                    for x, c in zip(params, landscapes, strict=True)
                ]
            probs = self.dev.execute(tapes, self.config)
            return np.einsum("gs,gs->g", np.asarray(probs), landscapes)
        tapes = [
            self.template.bind_new_parameters(x.ravel(), self.indices).copy(
                measurements=[qml.expval(_diagonal_observable(c))],
                trainable_params=self.indices,
            )
            for x, c in zip(params, landscapes, strict=True)
        ]
        energies, jacobians = self.dev.execute_and_compute_derivatives(
            tapes, self.adjoint
        )
        grads = np.asarray(jacobians, np.float64).reshape(np.shape(params))
        return np.asarray(energies, np.float64), grads

    def __call__(self, params, landscapes, grad: bool = False):
        params = np.asarray(params, np.float64)
        landscapes = np.asarray(landscapes, np.float64)
        if self.mode == "loop" or (grad and self.circuit not in ROTATIONS):
            return self._loop(params, landscapes, grad)
        return self._batch(params, landscapes, grad)


# ---------------------------------------------------------------------------
# Agreement and timing


def _outputs(result) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(result, tuple):
        return np.asarray(result[0], np.float64), np.asarray(result[1], np.float64)
    return np.asarray(result, np.float64), None


def _errors(ref, other, landscapes) -> tuple[float, float]:
    """Worst error of (energies, grads) relative to the group's scale."""
    (e0, g0), (e1, g1) = _outputs(ref), _outputs(other)
    n = e0.shape[0]
    scale = np.max(np.abs(landscapes[:n]), axis=1)
    err_e = float(np.max(np.abs(e1 - e0) / scale))
    err_g = 0.0
    if g0 is not None:
        g0, g1 = g0.reshape(n, -1), g1.reshape(n, -1)
        scale = np.maximum(scale, np.max(np.abs(g0), axis=1))
        err_g = float(np.max(np.max(np.abs(g1 - g0), axis=1) / scale))
    return err_e, err_g


def _check(name, ref, other, landscapes, rtol) -> tuple[float, float]:
    err_e, err_g = _errors(ref, other, landscapes)
    if not (err_e <= rtol and err_g <= rtol):  # also catches NaN
        raise SystemExit(
            f"DISAGREEMENT ({name}): relative error of the expectation {err_e:.2e}, "
            f"of the gradient {err_g:.2e}, tolerance {rtol:.0e}; not timing "
            f"circuits that are not the same"
        )
    return err_e, err_g


def _median_time(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_interleaved(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    min_s: float,
    once: dict[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, float], dict[str, bool]]:
    """Median seconds per call of every framework, timed in interleaved rounds.

    The machine is shared, so its load drifts: each round times every framework
    once, and a fast call is repeated within a round until it lasts ``min_s``.
    ``once``: seconds of an earlier call of the same (warm-up done) for calls that
    need no compilation; one of at least ``min_s`` gets no further warm-up.
    Returns the medians, the seconds spent timing each framework, and whether
    each was warmed up here.
    """
    inner, warmed = {}, {}
    for name, call in calls.items():
        before = (once or {}).get(name, 0.0)
        warmed[name] = before < min_s or before == 0.0
        if warmed[name]:
            start = time.perf_counter()
            call()  # warm-up
            before = time.perf_counter() - start
        inner[name] = int(min(1000, max(1, np.ceil(min_s / max(before, 1e-9)))))
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(inner[name]):
                call()
            samples[name].append((time.perf_counter() - start) / inner[name])
    medians = {name: statistics.median(v) for name, v in samples.items()}
    spent = {name: sum(v) * inner[name] for name, v in samples.items()}
    return medians, spent, warmed


def _block(x):
    return jax.block_until_ready(x)


def _versions() -> dict[str, str]:
    names = ("jax", "jaxlib", "tensorcircuit-ng", "pennylane", "pennylane-lightning")
    names += ("qiskit", "qiskit-aer")
    out = {"python": platform.python_version()}
    for name in names + ("numpy",):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2e}"


class _Bench:
    """The problems, the compiled evaluations and the results of one run.

    ``frameworks``: qselax first, then the peers that are installed.
    """

    def __init__(self, args, frameworks: tuple[str, ...]):
        self.args, self.frameworks = args, frameworks
        self.peers = frameworks[1:]
        keys = jax.random.split(jax.random.key(args.seed), len(args.circuits))
        self.problems, self.aers, self.lightnings = {}, {}, {}
        for key, circuit in zip(keys, args.circuits, strict=True):
            for sub, k in zip(
                jax.random.split(key, len(args.ks)), args.ks, strict=True
            ):
                self.problems[circuit, k] = _make_problem(
                    sub, circuit, k, args.layers, max(args.groups)
                )
                if "aer" in frameworks:
                    self.aers[circuit, k] = _Aer(circuit, k, args.layers)
                if "lightning" in frameworks:
                    self.lightnings[circuit, k] = _Lightning(
                        circuit, k, args.layers, args.lightning_mode
                    )
        self.fns: dict[tuple, Evaluate] = {}
        self.compile_s: dict[tuple, float] = {}
        self.outputs: dict[tuple, object] = {}

    def evaluator(self, fw: str, circuit: str, k: int, quantity: str, n: int):
        """The framework's callable for n groups (JAX ones compile once per n)."""
        key = (fw, circuit, k, quantity, n)
        if key not in self.fns:
            layers = self.args.layers
            if fw == "qselax":
                self.fns[key] = _qselax(circuit, k, layers, quantity)
            elif fw == "pennylane":
                batch = self.args.pl_batch
                self.fns[key] = _pennylane(circuit, k, layers, quantity, batch)
            else:
                sims = self.aers if fw == "aer" else self.lightnings
                sim, grad = sims[circuit, k], quantity != "E"
                self.fns[key] = lambda p, c: sim(p, c, grad=grad)
        return self.fns[key]

    def inputs(self, fw: str, circuit: str, k: int, n: int):
        params, land = self.problems[circuit, k]
        if fw in ("aer", "lightning"):
            return params[:n], land[:n]
        return jnp.asarray(params[:n]), jnp.asarray(land[:n])

    def first_call(self, fw: str, circuit: str, k: int, quantity: str, n: int):
        """Runs (and for JAX compiles) the evaluation once; records the time.

        The result is kept: a later call for the same arguments returns it (the
        slowest peers take seconds per group).
        """
        key = (fw, circuit, k, quantity, n)
        if key not in self.outputs:
            f = self.evaluator(fw, circuit, k, quantity, n)
            x, c = self.inputs(fw, circuit, k, n)
            start = time.perf_counter()
            self.outputs[key] = _block(f(x, c))
            self.compile_s[key] = time.perf_counter() - start
        return self.outputs[key]

    def agreement(self) -> list[dict]:
        """Checks the peers against qselax on group 0 of every (circuit, K)."""
        rtol, table = self.args.rtol, []
        for circuit, k in self.problems:
            land = self.problems[circuit, k][1]
            out = {
                (fw, q): self.first_call(fw, circuit, k, q, 1)
                for q in QUANTITIES
                for fw in self.frameworks
            }
            for fw in self.peers:
                name = f"{fw} {circuit} K={k}"
                err_e, err_g = _check(
                    name, out["qselax", "E+grad"], out[fw, "E+grad"], land, rtol
                )
                err_e = max(
                    err_e,
                    _check(name, out["qselax", "E"], out[fw, "E"], land, rtol)[0],
                )
                table.append(dict(circuit=circuit, k=k, peer=fw, e=err_e, g=err_g))
        return table

    def timed_groups(self, fw: str, circuit: str, k: int, quantity: str, g: int):
        """Groups to time: all for qselax; a memory chunk (default.qubit) or a time
        cap (lightning.qubit, Aer) for peers."""
        args = self.args
        if fw == "qselax" or g == 1:
            return g
        if fw == "pennylane":
            return _pennylane_chunk(
                circuit, k, args.layers, quantity, g, args.peer_memory_mb
            )
        self.first_call(fw, circuit, k, quantity, 1)
        one = self.compile_s[fw, circuit, k, quantity, 1]
        if one < args.cap_s / 10:  # cheap: measure it better
            f = self.evaluator(fw, circuit, k, quantity, 1)
            x, c = self.inputs(fw, circuit, k, 1)
            one = _median_time(lambda: f(x, c), 1)
        return int(min(g, max(1, args.cap_s // one)))

    def time_row(self, circuit: str, k: int, g: int, quantity: str) -> dict:
        row = dict(circuit=circuit, k=k, groups=g, quantity=quantity)
        land = self.problems[circuit, k][1]
        calls, groups, ref = {}, {}, None
        for fw in self.frameworks:
            n = groups[fw] = self.timed_groups(fw, circuit, k, quantity, g)
            out = self.first_call(fw, circuit, k, quantity, n)
            if fw == "qselax":
                ref = out
            else:  # the batched peer computes the same numbers as qselax
                ref_n = jax.tree.map(lambda a, n=n: a[:n], ref)
                name = f"{fw} {circuit} K={k} G={g} {quantity}"
                _check(name, ref_n, out, land, self.args.rtol)
            f = self.evaluator(fw, circuit, k, quantity, n)
            x, c = self.inputs(fw, circuit, k, n)
            calls[fw] = lambda f=f, x=x, c=c: _block(f(x, c))
        aer = self.aers.get((circuit, k))
        if aer is not None:
            aer.build_s = 0.0
        # A peer without compilation that already ran this call once and took
        # long: that run was its warm-up.
        once = {
            fw: self.compile_s[fw, circuit, k, quantity, groups[fw]]
            for fw in ("lightning", "aer")
            if fw in calls
        }
        medians, spent, warmed = _time_interleaved(
            calls, self.args.repeats, self.args.min_s, once
        )
        for fw in self.frameworks:
            t, n = medians[fw], groups[fw]
            row[fw] = dict(per_group=t / n, timed_groups=n)
            if fw == "aer":
                # Share of Aer's time spent building circuits in Python (QAOA).
                total = spent[fw] + (medians[fw] if warmed[fw] else 0.0)
                row[fw]["build_share"] = aer.build_s / total
            elif fw in ("qselax", "pennylane"):
                comp = self.compile_s[fw, circuit, k, quantity, n]
                row[fw]["compile"] = max(0.0, comp - t)
        for fw in self.peers:
            row[fw]["ratio"] = row[fw]["per_group"] / row["qselax"]["per_group"]
        times = ", ".join(
            f"{fw} {_fmt(row[fw]['per_group'])}" for fw in self.frameworks
        )
        print(f"# {circuit} K={k} G={g} {quantity}: {times}", flush=True)
        return row


def agreement_table(agreement: list[dict], rtol: float | None) -> str:
    lines = [
        "## Agreement (group 0; worst error / max(max|C|, max|grad|))",
        "",
        common.markdown(
            ["circuit", "K", "peer", "expectation", "gradient"],
            [
                [
                    a["circuit"],
                    a["k"],
                    NAMES[a["peer"]],
                    f"{a['e']:.1e}",
                    f"{a['g']:.1e}",
                ]
                for a in agreement
            ],
        ),
    ]
    if not agreement:
        lines.append("\nNo peer installed: nothing to check against.")
    elif rtol is not None:
        lines.append(f"\nAll agree to rtol {rtol:.0e}.")
    return "\n".join(lines)


def _ratio_range(rows: list[dict], fw: str) -> str:
    ratios = [r[fw]["ratio"] for r in rows if fw in r]
    return f"{min(ratios):.1f}-{max(ratios):.1f}x" if ratios else "n/a"


def timing_table(rows: list[dict], setup: dict | None = None) -> str:
    """The Markdown table of seconds per group, and the summary lines.

    A peer missing from a row (not installed, or not run) is shown as ``n/a``.
    """
    body = []
    for r in rows:
        cells = []
        for fw in FRAMEWORKS:
            if fw not in r:
                cells.append("n/a")
                continue
            n = r[fw]["timed_groups"]
            tag = f" [{n}]" if n < r["groups"] else ""
            cells.append(_fmt(r[fw]["per_group"]) + tag)
        ratios = [
            f"{r[fw]['ratio']:.1f}x" if fw in r else "n/a" for fw in FRAMEWORKS[1:]
        ]
        pl = f"{r['pennylane']['compile']:.1f}" if "pennylane" in r else "n/a"
        comp = f"{r['qselax']['compile']:.1f} / {pl}"
        body.append(
            [r["circuit"], r["k"], r["groups"], r["quantity"], *cells, *ratios, comp]
        )
    header = ["circuit", "K", "G", "quantity"] + [NAMES[fw] for fw in FRAMEWORKS]
    header += [f"{NAMES[fw]} / qselax" for fw in FRAMEWORKS[1:]]
    header += ["compile qselax / default.qubit (s)"]
    lines = [
        "## Seconds per group (median of repeats; [n] = timed on n groups)",
        "",
        common.markdown(header, body),
        "",
    ]
    peers = [fw for fw in FRAMEWORKS[1:] if any(fw in r for r in rows)]
    slower = [
        f"{r['circuit']} K={r['k']} G={r['groups']} {r['quantity']} vs {NAMES[fw]}"
        for r in rows
        for fw in peers
        if fw in r and r[fw]["ratio"] < 1.0
    ]
    if not peers:
        lines.append("No peer installed: qselax timed alone.")
    elif slower:
        lines.append("qselax is NOT faster on: " + "; ".join(slower))
    else:
        lines.append("qselax is faster on every row.")
    hea = [r for r in rows if r["circuit"] in ROTATIONS and "pennylane" in r]
    if hea:
        short = [
            f"{r['circuit']} K={r['k']} G={r['groups']} {r['quantity']} "
            f"({r['pennylane']['ratio']:.1f}x)"
            for r in hea
            if r["pennylane"]["ratio"] < SPEEDUP_GOAL
        ]
        goal = f"HEA rows at >= {SPEEDUP_GOAL:.0f}x default.qubit: "
        lines.append(
            goal + ("all." if not short else "all but " + "; ".join(short) + ".")
        )
    for fw in peers:
        by_circuit = {c: [r for r in rows if r["circuit"] == c] for c in CIRCUITS}
        lines.append(
            f"{NAMES[fw]} / qselax: "
            + ", ".join(
                f"{c} {_ratio_range(rs, fw)}" for c, rs in by_circuit.items() if rs
            )
        )
    shares = [
        f"K={r['k']} G={r['groups']} {r['quantity']} {r['aer']['build_share']:.0%}"
        for r in rows
        if r["circuit"] == "qaoa" and "aer" in r
    ]
    if shares:
        lines.append(
            "Aer QAOA, share of its time spent building circuits: " + ", ".join(shares)
        )
    if setup:
        lines.append(
            "Aer HEA template build + transpile (once per circuit and K): "
            + ", ".join(f"{name} {s:.2f} s" for name, s in setup.items())
        )
    return "\n".join(lines)


def _machine_bounds(stream: int, repeats: int = 5) -> dict:
    """The two bounds the HEA rows are held against, measured in this process.

    * ``floor_s``: one call of a jitted program holding one gate product, the
      smallest a fused-gate circuit runs: a vmapped 8 x 8 by 8 x 8 matrix
      product and its sum, one group. On XLA:CPU this costs several times a
      program of one fused elementwise kernel (``single_kernel_s``, recorded
      too); a chain of per-qubit elementwise rotations costs about as much.
    * ``bandwidth``: bytes/s of ``y = 1.5 x + 0.5`` over ``stream`` float32 (one
      read and one write per float; best of ``repeats``), bench_roofline's measure.
    """
    m = jnp.ones((1, 8, 8), jnp.float32)
    v = jnp.ones((1, 8), jnp.float32)
    two = jax.jit(jax.vmap(lambda a, b: jnp.sum(a @ a) + jnp.sum(b)))
    one = jax.jit(jax.vmap(lambda a, b: jnp.sum(a) * jnp.sum(b)))
    out = {}
    for name, fn in (("floor_s", two), ("single_kernel_s", one)):
        call = lambda fn=fn: _block(fn(m, v))  # noqa: E731
        call()
        inner = 200
        rounds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                call()
            rounds.append((time.perf_counter() - start) / inner)
        out[name] = statistics.median(rounds)
    x = jnp.ones((stream,), jnp.float32)
    axpy = jax.jit(lambda y: 1.5 * y + 0.5)
    _block(axpy(x))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        _block(axpy(x))
        best = min(best, time.perf_counter() - start)
    out["bandwidth"] = 8.0 * stream / best
    out["stream_floats"] = stream
    return out


def _least_bytes(circuit: str, k: int, layers: int, quantity: str) -> float:
    """Least bytes one group's evaluation moves (bench_roofline's model).

    The whole state is read and written at least once per layer, three times over
    with the gradient (forward, and backward through the state and its cotangent);
    float32 amplitudes on qselax's real path, complex64 otherwise.
    """
    amp_bytes = 4 if circuit == "hea_real" else 8
    passes = layers * (1 if quantity == "E" else 3)
    return float(passes * 2 * 2**k * amp_bytes)


def bounds_table(rows: list[dict], bounds: dict | None, layers: int) -> str:
    """Every HEA row below the goal, against the machine's bounds.

    qselax's least time per group is the larger of the multi-kernel call floor
    shared by the G groups and the least bytes at the measured bandwidth; the
    ceiling is default.qubit's time over it, the most ``default.qubit / qselax``
    could be under these bounds. A ceiling under the goal: a bound stops it.
    """
    short = [
        r
        for r in rows
        if r["circuit"] in ROTATIONS
        and "pennylane" in r
        and r["pennylane"]["ratio"] < SPEEDUP_GOAL
    ]
    if not short or not bounds:
        return ""
    body = []
    for r in short:
        floor = bounds["floor_s"] / r["groups"]
        band = _least_bytes(r["circuit"], r["k"], layers, r["quantity"])
        band /= bounds["bandwidth"]
        least = max(floor, band)
        ceiling = r["pennylane"]["per_group"] / least
        if ceiling < SPEEDUP_GOAL:
            verdict = "bound: call floor" if floor >= band else "bound: bandwidth"
        else:
            verdict = "no bound reached"
        body.append(
            [
                r["circuit"],
                r["k"],
                r["groups"],
                r["quantity"],
                f"{r['pennylane']['ratio']:.1f}x",
                _fmt(floor),
                _fmt(band),
                f"{least / r['qselax']['per_group']:.0%}",
                f"{ceiling:.1f}x",
                verdict,
            ]
        )
    header = [
        "circuit",
        "K",
        "G",
        "quantity",
        "default.qubit / qselax",
        "call floor / G (s)",
        "least bytes / bandwidth (s)",
        "qselax at % of its bound",
        "ceiling",
        "verdict",
    ]
    return "\n".join(
        [
            f"## HEA rows under {SPEEDUP_GOAL:.0f}x default.qubit, against the "
            f"machine's bounds (call floor {bounds['floor_s'] * 1e6:.1f} us, one "
            f"kernel {bounds['single_kernel_s'] * 1e6:.1f} us; bandwidth "
            f"{bounds['bandwidth'] / 1e9:.1f} GB/s)",
            "",
            common.markdown(header, body),
        ]
    )


def tables(records: list[dict]) -> str:
    """Every run's agreement and timing tables from the records of ``peers.jsonl``."""
    runs: list[dict] = []
    for r in records:
        if r["record"] == "run":
            runs.append({"run": r, "agreement": [], "timing": []})
        else:
            runs[-1][r["record"]].append(r)
    out = []
    for run in runs:
        meta = run["run"]
        out.append(
            f"# peers {meta['date']}  machine: {meta['machine']}\n# "
            + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        )
        out.append(agreement_table(run["agreement"], meta["args"]["rtol"]))
        out.append(timing_table(run["timing"], meta.get("aer_setup_s")))
        bounds = bounds_table(run["timing"], meta.get("bounds"), meta["args"]["layers"])
        if bounds:
            out.append(bounds)
    return "\n\n".join(out)


def _available(smoke: bool, wanted: list[str]) -> tuple[str, ...]:
    """qselax and the wanted peers that are installed; a full run needs them all."""
    frameworks = ["qselax"]
    modules_of = {
        "pennylane": ("pennylane",),
        "lightning": ("pennylane", "pennylane_lightning"),
        "aer": ("qiskit_aer",),
    }
    for fw in FRAMEWORKS[1:]:
        if fw not in wanted:
            continue
        modules = modules_of[fw]
        try:
            for module in modules:
                importlib.import_module(module)
        except ImportError as err:
            msg = f'{err}: install the peers with pip install -e ".[bench]"'
            if not smoke:
                raise SystemExit(msg) from None
            print(f"# skipping {fw} ({msg})", flush=True)
        else:
            frameworks.append(fw)
    return tuple(frameworks)


def main() -> None:
    parser = common.parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="short run: K=6, G=1,16")
    parser.add_argument("--ks", type=int, nargs="+", default=[6, 8, 10, 12])
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--circuits", nargs="+", default=list(CIRCUITS))
    parser.add_argument("--layers", type=int, default=3, help="HEA layers, QAOA p")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cap-s", type=float, default=2.0, help="Aer s per call")
    parser.add_argument(
        "--min-s", type=float, default=0.2, help="repeat fast calls to this long"
    )
    parser.add_argument("--peer-memory-mb", type=int, default=1024)
    parser.add_argument("--pl-batch", choices=("vmap", "broadcast"), default="vmap")
    parser.add_argument(
        "--lightning-mode",
        choices=("batch", "loop"),
        default="batch",
        help="lightning.qubit: one batch of tapes, or a loop of qnode calls",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        default=list(FRAMEWORKS[1:]),
        help=f"peers to run, of {FRAMEWORKS[1:]} (qselax always runs)",
    )
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument(
        "--stream", type=int, default=2**26, help="floats streamed for the bandwidth"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.table:
        records = common.read_results(common.table_dir(args, __file__))
        print(tables(records[Path(FILE).stem]))
        return
    if args.quick:
        args.ks, args.groups, args.repeats = [6], [1, 16], 2
    if args.smoke:
        common.smoke_jax()
        args.stream = 2**20
        for name, value in SMOKE.items():
            setattr(args, name, value)
    for c in args.circuits:
        if c not in CIRCUITS:
            parser.error(f"--circuits: unknown circuit {c!r}, expected {CIRCUITS}")
    for fw in args.peers:
        if fw not in FRAMEWORKS[1:]:
            parser.error(f"--peers: unknown peer {fw!r}, expected {FRAMEWORKS[1:]}")
    frameworks = _available(args.smoke, args.peers)
    # PennyLane's probs casts complex to real inside JAX; harmless, but noisy.
    warnings.filterwarnings("ignore", message=".*[Cc]omplex.*")
    out = common.out_dir(args, __file__)

    versions = _versions()
    start = time.perf_counter()
    date = datetime.datetime.now().isoformat(timespec="seconds")
    machine = (
        f"{_cpu_model()}, nproc={os.cpu_count()}, jax backend "
        f"{jax.default_backend()}, load average {os.getloadavg()}"
    )
    print(f"# peers  {date}")
    print(f"# machine: {machine}")
    print("# " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"# layers={args.layers} repeats={args.repeats} pl_batch={args.pl_batch} "
        f"lightning_mode={args.lightning_mode} "
        f"min_s={args.min_s} cap_s={args.cap_s} "
        f"peer_memory_mb={args.peer_memory_mb} seed={args.seed}"
    )
    # The bounds depend on the load (the call floor was 4x higher while another
    # job ran): measured before and after the rows, the lower floor and the higher
    # bandwidth kept, so that a row is called bound only under the most favourable.
    bounds_before = _machine_bounds(args.stream)
    bench = _Bench(args, frameworks)
    agreement = bench.agreement()  # 1. agree first (exits if not) ...
    print("\n" + agreement_table(agreement, args.rtol))
    rows = [  # 2. ... then time
        bench.time_row(circuit, k, g, quantity)
        for circuit, k in bench.problems
        for g in args.groups
        for quantity in QUANTITIES
    ]
    setup = {
        f"{c} K={k}": a.setup_s for (c, k), a in bench.aers.items() if c in ROTATIONS
    }
    bounds_after = _machine_bounds(args.stream)
    bounds = dict(
        floor_s=min(bounds_before["floor_s"], bounds_after["floor_s"]),
        single_kernel_s=min(
            bounds_before["single_kernel_s"], bounds_after["single_kernel_s"]
        ),
        bandwidth=max(bounds_before["bandwidth"], bounds_after["bandwidth"]),
        stream_floats=args.stream,
        before=bounds_before,
        after=bounds_after,
    )
    print("\n" + timing_table(rows, setup))
    table = bounds_table(rows, bounds, args.layers)
    if table:
        print("\n" + table)
    print(
        f"Total wall time {time.perf_counter() - start:.0f} s; load average now "
        f"{os.getloadavg()}."
    )
    run = dict(
        record="run",
        date=date,
        machine=machine,
        frameworks=list(frameworks),
        args=vars(args),
        versions=versions,
        aer_setup_s=setup,
        bounds=bounds,
    )
    records = [run] + [dict(record="agreement", **a) for a in agreement]
    records += [dict(record="timing", **r) for r in rows]
    common.write_jsonl(out / FILE, records, append=True)
    print(f"wrote {out / FILE}")


if __name__ == "__main__":
    main()
