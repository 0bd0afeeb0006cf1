"""Hardware-efficient K-qubit circuits (TensorCircuit on the JAX backend).

This is the only qselax module that imports :mod:`tensorcircuit`.  It changes no
global TensorCircuit setting: every circuit is built and contracted inside
:func:`jax_backend`, which selects the JAX backend and ``complex64`` for that block
only.  Other modules build circuits from :class:`Gate` lists with
:func:`apply_gates` (the hot path: gates on a state vector) and
:func:`build_circuit` (a gate-by-gate circuit for export and inspection).

Bit order
---------
Qubit 0 is the **most significant** bit of a basis index: the amplitude of the
bitstring ``(x_0, ..., x_{K-1})`` sits at index ``s = sum_k x_k 2**(K-1-k)``. This is
TensorCircuit's native order of ``Circuit.state()`` and ``Circuit.probability()``;
:func:`qselax.bits.bit_table` returns the matching ``(2**K, K)`` table, row ``s`` =
bits of ``s``.
In the OpenQASM export qubit ``k`` is ``q[k]``.

Shape vocabulary: ``K`` qubits, ``S = 2**K`` outcomes, ``L`` layers, ``R`` rotations
per layer, ``G`` groups. Every function works on one group; callers batch groups
with ``jax.vmap``.

Hardware-efficient ansatz (HEA)
-------------------------------
Start in ``|+>^K`` (H on every qubit). Then, ``layers`` times:

1. an entangling ladder: ``entangler`` on ``(0, 1), (1, 2), ..., (K-2, K-1)`` in that
   order (nothing for ``"none"`` or ``K == 1``);
2. the rotations, in the order of ``ansatz.rotations``, each applied on every qubit
   with its own angle ``params[layer, r, k]``; ``rx/ry/rz(t) = exp(-i t P / 2)``.

How the state is computed (the hot path)
----------------------------------------
:func:`hea_state` is one ``jax.lax.scan`` over the layer axis, so compile time does
not grow with depth. Inside a layer the gates are fused into a few small TensorCircuit
gates instead of ``(1 + R) K - 1`` separate ones: the qubits are cut into chunks of 2
(3 for K > 10, 4 for K > 14), and chunk ``i`` becomes one ``Circuit.any`` gate on its
qubits plus the first qubit of the next chunk, with unitary
``(R_chunk (x) I) @ Ladder_chunk``: the ladder steps inside the chunk and the step
into the next chunk, then the chunk's rotations. The ladder keeps its order (chunk
``i`` holds the steps that precede those of chunk ``i + 1``) and a qubit is rotated
only after the last ladder step that touches it, so this is the unitary of
:func:`hea_circuit` (the tests check both against each other and against NumPy).
Each fused gate is its own one-gate ``tc.Circuit(K, inputs=state)``: one gate
contracts in a fixed order, whereas the greedy order of a many-gate network permutes
axes and XLA then spends as long transposing as multiplying.

Measured on the 2-core CPU, one jitted ``vmap(value_and_grad(sum(probs * c)))`` with
K=8, 4 layers, 2048 groups: 0.18 s/step against 0.34 s/step for the gate-by-gate
layer (``c.cnot`` / ``c.ry`` / ``c.rz``), 1.8 s against 3.9 s to compile.

:func:`hea_probs` (what the solvers run) skips TensorCircuit for noiseless
circuits.  Small states are simulated gate by gate as float32 elementwise
arithmetic on the real and imaginary parts (an RY or RX is a few multiply-adds on
the state seen as ``(2^k, 2, 2^(K-k-1))``, a CNOT a flip of half of it, a layer's
RZ rotations one phase per amplitude), which XLA fuses into a few loops per layer
with no batched small matrix products, and differentiated by the adjoint method
(:func:`_gatewise_state`); this wins up to K = 10 for real ansätze and K = 6 for
complex ones.  Larger real states use the fused gates above as one
``einsum`` each on the float32 state; larger complex ones the TensorCircuit path.
The measurements behind the thresholds are in ``_gatewise_is_faster``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tensorcircuit as tc
from jaxtyping import Array, Complex, Float

from qselax.bits import bit_table, check_k

# jaxtyping: a one-axis shape is written with a leading space (" S") so that linters
# do not read it as a forward-referenced name.

__all__ = [
    "ENTANGLERS",
    "MAX_QUBITS",
    "PAULIS",
    "ROTATIONS",
    "Ansatz",
    "Circuit",
    "Gate",
    "apply_gates",
    "apply_pauli_string",
    "build_circuit",
    "check_noise_rate",
    "circuit_qasm",
    "depolarizing_codes",
    "hea_circuit",
    "hea_ladder_matrix",
    "hea_param_shape",
    "hea_probs",
    "hea_resources",
    "hea_state",
    "init_hea_params",
    "is_real",
    "jax_backend",
    "to_qasm",
]

# A group's state vector holds 2^K complex64 amplitudes (8 MiB per group at K = 20),
# and TensorCircuit contracts a gate against all of it: statevector circuits stay
# below the 24 of :data:`qselax.bits.MAX_K`.
MAX_QUBITS = 20
ROTATIONS = ("rx", "ry", "rz")
ENTANGLERS = ("cnot", "cz", "none")

Circuit = tc.Circuit
"""TensorCircuit's circuit class, named here so that no other module imports it."""


@contextlib.contextmanager
def jax_backend() -> Iterator[None]:
    """TensorCircuit on the JAX backend with ``complex64``, for this block only.

    Every circuit of this module is built and contracted inside it, so importing
    qselax leaves TensorCircuit's global backend alone.  ``tc.runtime_backend``
    does the same but leaves the JAX backend set when the block raises; this
    restores the previous settings either way.  A nested block costs nothing.

    Example:
        >>> import tensorcircuit
        >>> before = tensorcircuit.backend.name
        >>> with jax_backend():
        ...     inside = tensorcircuit.backend.name
        >>> inside, tensorcircuit.backend.name == before
        ('jax', True)
    """
    saved = (tc.backend.name, tc.dtypestr)
    if saved == ("jax", "complex64"):
        yield
        return
    tc.set_backend("jax")
    tc.set_dtype("complex64")
    try:
        yield
    finally:
        tc.set_backend(saved[0])
        tc.set_dtype(saved[1])


class Gate(NamedTuple):
    """One gate of a gate list: a ``tc.Circuit`` method and its operands.

    Attributes:
        name: the ``tc.Circuit`` method: ``"h"``, ``"x"``, ``"z"``, ``"cnot"``,
            ``"cz"``, ``"rx"``, ``"ry"``, ``"rz"``, ``"any"`` (a given unitary) or
            ``"multicontrol"``.
        qubits: the qubits it acts on, in the method's order.
        theta: rotation angle (``rx``, ``ry``, ``rz``), may be traced.
        unitary: matrix of an ``"any"`` gate, or the target unitary of a
            ``"multicontrol"`` gate.
        ctrl: control values of a ``"multicontrol"`` gate, one per control qubit.
        label: name recorded for an ``"any"`` gate (shown by ``to_qir``).

    Example:
        >>> Gate("rz", (1,), theta=0.5).qubits
        (1,)
    """

    name: str
    qubits: tuple[int, ...]
    theta: Any = None
    unitary: Any = None
    ctrl: tuple[int, ...] | None = None
    label: str | None = None


def _append(c: Circuit, gate: Gate) -> None:
    kwargs: dict[str, Any] = {}
    if gate.theta is not None:
        kwargs["theta"] = gate.theta
    if gate.unitary is not None:
        kwargs["unitary"] = gate.unitary
    if gate.ctrl is not None:
        kwargs["ctrl"] = list(gate.ctrl)
    if gate.label is not None:
        kwargs["name"] = gate.label
    getattr(c, gate.name)(*gate.qubits, **kwargs)


def apply_gates(
    state: Complex[Array, " S"], gates: Sequence[Gate], num_qubits: int
) -> Complex[Array, " S"]:
    """Applies ``gates`` in order to a state vector, as one ``tc.Circuit``.

    One call is one tensor network, contracted by TensorCircuit: callers that want a
    fixed contraction order (the hot paths) pass one or a few gates per call.

    Args:
        state: ``(2^K,)`` amplitudes, qubit 0 the most significant bit.
        gates: the gates, applied first to last.
        num_qubits: K.

    Returns:
        ``(2^K,)`` complex64 amplitudes.

    Example:
        >>> psi = jnp.array([1.0, 0.0, 0.0, 0.0], jnp.complex64)
        >>> out = apply_gates(psi, [Gate("h", (0,)), Gate("cnot", (0, 1))], 2)
        >>> [round(float(abs(a) ** 2), 3) for a in out]
        [0.5, 0.0, 0.0, 0.5]
    """
    with jax_backend():
        c = tc.Circuit(num_qubits, inputs=state)
        for gate in gates:
            _append(c, gate)
        return c.state()


def build_circuit(num_qubits: int, gates: Sequence[Gate]) -> Circuit:
    """A gate-by-gate ``tc.Circuit`` from ``|0>^K``, for export and inspection.

    Example:
        >>> c = build_circuit(2, [Gate("h", (0,)), Gate("cnot", (0, 1))])
        >>> [g["name"] for g in c.to_qir()]
        ['h', 'cnot']
    """
    with jax_backend():
        c = tc.Circuit(num_qubits)
        for gate in gates:
            _append(c, gate)
    return c


def _chunk_size(num_qubits: int) -> int:
    """Qubits whose rotations share one fused gate (which also holds one more qubit).

    Measured on a 2-core CPU (value_and_grad, 4 layers): 2 is fastest up to K=10
    (K=8: 3-qubit gates beat 4-qubit ones 1.2x, 5-qubit ones 2x), 3 at K=12 and 4 at
    K=16, where the passes over the larger state saved outweigh the bigger matmuls.
    """
    if num_qubits <= 10:
        return 2
    return 3 if num_qubits <= 14 else 4


class Ansatz(NamedTuple):
    """Static description of a hardware-efficient ansatz (hashable, never traced).

    Attributes:
        num_qubits: K, between 1 and 20.
        layers: number of (entangling ladder, rotations) layers, >= 0.
        rotations: rotation gates applied on every qubit in each layer, in order;
            each one of ``"rx"``, ``"ry"``, ``"rz"``.
        entangler: ``"cnot"``, ``"cz"`` or ``"none"`` (a product-state ansatz).

    Example:
        >>> Ansatz(num_qubits=4, layers=2)
        Ansatz(num_qubits=4, layers=2, rotations=('ry', 'rz'), entangler='cnot')
    """

    num_qubits: int
    layers: int
    rotations: tuple[str, ...] = ("ry", "rz")
    entangler: str = "cnot"


def _check_ansatz(ansatz: Ansatz) -> None:
    """Raises ValueError naming the offending field; runs at set-up / trace time."""
    if not isinstance(ansatz, Ansatz):
        raise ValueError(f"ansatz must be an Ansatz, got {type(ansatz).__name__}")
    check_k(ansatz.num_qubits, "num_qubits", high=MAX_QUBITS)
    layers = ansatz.layers
    if isinstance(layers, bool) or not isinstance(layers, int | np.integer):
        raise ValueError(f"layers must be an int, got {layers!r}")
    if layers < 0:
        raise ValueError(f"layers must be >= 0, got {layers}")
    if not isinstance(ansatz.rotations, tuple):
        # A list would make the Ansatz unhashable, hence unusable as static config.
        raise ValueError(
            f"rotations must be a tuple of names, got {ansatz.rotations!r}"
        )
    for name in ansatz.rotations:
        if name not in ROTATIONS:
            raise ValueError(
                f"rotations: unknown rotation {name!r}, expected one of {ROTATIONS}"
            )
    if ansatz.entangler not in ENTANGLERS:
        raise ValueError(
            f"entangler: unknown entangler {ansatz.entangler!r}, "
            f"expected one of {ENTANGLERS}"
        )


def hea_param_shape(ansatz: Ansatz) -> tuple[int, int, int]:
    """Shape ``(L, R, K)`` of the angles: ``params[layer, rotation, qubit]``.

    Example:
        >>> hea_param_shape(Ansatz(3, 2))
        (2, 2, 3)
    """
    _check_ansatz(ansatz)
    return (int(ansatz.layers), len(ansatz.rotations), int(ansatz.num_qubits))


def init_hea_params(
    key: jax.Array, ansatz: Ansatz, scale: float = 0.1
) -> Float[Array, "L R K"]:
    """Small random angles, ``scale * N(0, 1)``, so the circuit starts near ``|+>^K``.

    Starting near the uniform superposition keeps every bitstring reachable and the
    gradients of a landscape expectation away from barren plateaus.

    Args:
        key: a ``jax.random`` key.
        ansatz: the ansatz.
        scale: standard deviation of the angles.

    Returns:
        ``(L, R, K)`` float32 angles.

    Example:
        >>> init_hea_params(jax.random.key(0), Ansatz(3, 2)).shape
        (2, 2, 3)
    """
    shape = hea_param_shape(ansatz)
    return jnp.float32(scale) * jax.random.normal(key, shape, dtype=jnp.float32)


def _check_params(params, ansatz: Ansatz) -> jax.Array:
    shape = hea_param_shape(ansatz)
    params = jnp.asarray(params)
    if params.shape != shape:
        raise ValueError(
            f"params must have shape (layers, len(rotations), num_qubits) = {shape}, "
            f"got {params.shape}; vmap over groups instead of passing a batch"
        )
    if not jnp.issubdtype(params.dtype, jnp.floating) and not jnp.issubdtype(
        params.dtype, jnp.integer
    ):
        raise ValueError(f"params must be real angles, got dtype {params.dtype}")
    return params.astype(jnp.float32)


# ---------------------------------------------------------------------------
# Depolarizing noise as quantum trajectories.

# I, X, Y, Z: the Kraus unitaries of the depolarizing channel, indexed by code 0..3.
PAULIS = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
    dtype=np.complex64,
)


def check_noise_rate(rate) -> float:
    """``rate`` as a float in ``[0, 1)``, else a ``ValueError`` naming it."""
    if isinstance(rate, bool) or not isinstance(rate, int | float | np.floating):
        raise ValueError(f"noise rate must be a number in [0, 1), got {rate!r}")
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"noise rate must lie in [0, 1), got {rate}")
    return float(rate)


def depolarizing_codes(key: jax.Array, rate: float, shape) -> jax.Array:
    """One trajectory of the depolarizing channel: a Pauli per qubit and layer.

    The channel ``rho -> (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z)`` (``p`` =
    ``rate``, TensorCircuit's ``depolarizing(px=p/3, py=p/3, pz=p/3)``) is the average
    over Pauli insertions drawn independently per qubit: nothing with probability
    ``1 - p``, else X, Y or Z with ``p/3`` each.  A pure-state trajectory with the
    drawn Paulis inserted is therefore an exact sample of the noisy circuit: a
    bitstring measured on it is distributed as on the density matrix, and the mean of
    the trajectories' Born probabilities converges to the density matrix's diagonal.

    Args:
        key: a ``jax.random`` key.
        rate: error probability ``p`` per qubit and layer, in ``[0, 1)``.
        shape: output shape, e.g. ``(L, K)``.

    Returns:
        int32 codes: 0 = I, 1 = X, 2 = Y, 3 = Z.

    Example:
        >>> codes = depolarizing_codes(jax.random.key(0), 0.0, (3, 4))
        >>> int(codes.sum())
        0
    """
    rate = check_noise_rate(rate)
    u = jax.random.uniform(key, shape)
    which = jnp.minimum((u / max(rate, 1e-30) * 3.0).astype(jnp.int32), 2)
    return jnp.where(u < rate, 1 + which, 0).astype(jnp.int32)


def apply_pauli_string(
    state: Complex[Array, " S"], codes: jax.Array, num_qubits: int
) -> Complex[Array, " S"]:
    """Applies ``P_0 (x) ... (x) P_{K-1}`` (codes 0..3 = I, X, Y, Z) to a state.

    One pass over the ``2^K`` amplitudes: a sign for the Z parts, then the bit flips
    of the X parts as an index permutation (``Y = i X Z``; the global phase ``i`` is
    dropped, it changes no probability).

    Example:
        >>> psi = jnp.array([1.0, 0.0, 0.0, 0.0], jnp.complex64)  # |00>
        >>> apply_pauli_string(psi, jnp.array([1, 0]), 2).real.tolist()  # X on q0
        [0.0, 0.0, 1.0, 0.0]
    """
    bits = jnp.asarray(bit_table(num_qubits), jnp.int32)
    flip = ((codes == 1) | (codes == 2)).astype(jnp.int32)
    phase = ((codes == 2) | (codes == 3)).astype(jnp.int32)
    weights = jnp.asarray(2 ** np.arange(num_qubits - 1, -1, -1), jnp.int32)
    xmask = jnp.sum(flip * weights)
    sign = 1 - 2 * ((bits @ phase) % 2)
    state = state * sign.astype(state.dtype)
    return state[jnp.arange(2**num_qubits, dtype=jnp.int32) ^ xmask]


# ---------------------------------------------------------------------------
# Gate-by-gate circuit (export, inspection, reference).


def hea_circuit(params: Float[Array, "L R K"], ansatz: Ansatz) -> Circuit:
    """The ansatz as a gate-by-gate ``tc.Circuit`` (H, ladder, ``rx/ry/rz`` gates).

    Meant for export and inspection (a Python loop over gates); the hot path is
    :func:`hea_state`, which builds the same unitary from fused gates.

    Args:
        params: ``(L, R, K)`` angles.
        ansatz: the ansatz.

    Returns:
        A ``tc.Circuit`` on K qubits.

    Example:
        >>> a = Ansatz(2, 1)
        >>> c = hea_circuit(jnp.zeros(hea_param_shape(a)), a)
        >>> [g["name"] for g in c.to_qir()]
        ['h', 'h', 'cnot', 'ry', 'ry', 'rz', 'rz']
    """
    params = _check_params(params, ansatz)
    k_qubits = ansatz.num_qubits
    gates = [Gate("h", (k,)) for k in range(k_qubits)]
    for layer in range(ansatz.layers):
        gates += [Gate(ansatz.entangler, pair) for pair in _ladder_pairs(ansatz)]
        for r, name in enumerate(ansatz.rotations):
            gates += [
                Gate(name, (k,), theta=params[layer, r, k]) for k in range(k_qubits)
            ]
    return build_circuit(k_qubits, gates)


def _ladder_pairs(ansatz: Ansatz) -> list[tuple[int, int]]:
    if ansatz.entangler == "none":
        return []
    return [(k, k + 1) for k in range(ansatz.num_qubits - 1)]


# ---------------------------------------------------------------------------
# Fused hot path.


class _ChunkGate(NamedTuple):
    """Static plan of one fused gate: qubits it acts on and its entangling part."""

    qubits: tuple[int, ...]  # rotated qubits, then possibly the next chunk's first
    rotated: int  # how many leading qubits get their rotations in this gate
    # (d, d) column permutation (cnot), (d,) sign vector (cz), or None.
    ladder: np.ndarray | None


def hea_ladder_matrix(num_qubits: int) -> np.ndarray:
    """The CNOT ladder ``(0,1), (1,2), ...`` as a real ``(2^K, 2^K)`` permutation.

    Example:
        >>> hea_ladder_matrix(2).astype(int).tolist()
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    return np.real(_ladder_permutation(num_qubits)).astype(np.float32)


def _ladder_permutation(n: int) -> np.ndarray:
    """Matrix of CNOT(0,1) then CNOT(1,2) ... on n qubits: |x> -> |prefix-xor(x)>."""
    bits = bit_table(n).astype(np.int64)
    out_bits = np.cumsum(bits, axis=1) % 2
    out = out_bits @ (2 ** (n - 1 - np.arange(n)))
    mat = np.zeros((2**n, 2**n), np.complex64)
    mat[out, np.arange(2**n)] = 1.0
    return mat


def _ladder_signs(n: int) -> np.ndarray:
    """Diagonal of the CZ ladder on n qubits: (-1)^(sum_j x_j x_{j+1})."""
    bits = bit_table(n).astype(np.int64)
    parity = np.sum(bits[:, :-1] * bits[:, 1:], axis=1) % 2
    return (1 - 2 * parity).astype(np.complex64)


def _plan(ansatz: Ansatz, chunk: int | None = None) -> tuple[_ChunkGate, ...]:
    k_qubits = ansatz.num_qubits
    chunk = _chunk_size(k_qubits) if chunk is None else chunk
    entangled = ansatz.entangler != "none"
    plan = []
    for start in range(0, k_qubits, chunk):
        rotated = tuple(range(start, min(start + chunk, k_qubits)))
        qubits = rotated
        if entangled and rotated[-1] + 1 < k_qubits:
            qubits = rotated + (rotated[-1] + 1,)
        ladder = None
        if entangled and len(qubits) > 1:
            if ansatz.entangler == "cnot":
                ladder = _ladder_permutation(len(qubits))
            else:
                ladder = _ladder_signs(len(qubits))
        plan.append(_ChunkGate(qubits, len(rotated), ladder))
    return tuple(plan)


def _complex(re: jax.Array, im: jax.Array) -> jax.Array:
    return jax.lax.complex(re, im)


def _rotation_matrices(name: str, theta: Float[Array, " K"]) -> Complex[Array, "K 2 2"]:
    """``exp(-i theta P / 2)`` for each qubit, built elementwise (no tiny matmuls)."""
    c = jnp.cos(0.5 * theta)
    s = jnp.sin(0.5 * theta)
    z = jnp.zeros_like(c)
    if name == "rx":
        entries = (_complex(c, z), _complex(z, -s), _complex(z, -s), _complex(c, z))
    elif name == "ry":
        entries = (_complex(c, z), _complex(-s, z), _complex(s, z), _complex(c, z))
    else:  # rz
        entries = (_complex(c, -s), _complex(z, z), _complex(z, z), _complex(c, s))
    m00, m01, m10, m11 = entries
    return jnp.stack(
        [jnp.stack([m00, m01], axis=-1), jnp.stack([m10, m11], axis=-1)], axis=-2
    )


def _matmul_2x2(a: jax.Array, b: jax.Array) -> jax.Array:
    # Broadcast-and-sum instead of ``a @ b``: under vmap a batched 2x2 dot is a slow
    # XLA CPU kernel, while this fuses into one elementwise loop.
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


def _kron(a: jax.Array, b: jax.Array) -> jax.Array:
    (da, _), (db, _) = a.shape, b.shape
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(da * db, da * db)


def _layer_unitaries(
    layer_params: Float[Array, "R K"],
    ansatz: Ansatz,
    plan: tuple[_ChunkGate, ...],
    codes: jax.Array | None = None,
) -> list[jax.Array]:
    """The fused unitary of every chunk gate of one layer.

    ``codes`` (``(K,)``, 0..3 = I, X, Y, Z): a depolarizing trajectory's Pauli on
    each qubit after the layer.  A qubit's rotations are the last gates on it in its
    layer (see the module docstring), so the Pauli is folded into them: ``P R``.
    """
    k_qubits = ansatz.num_qubits
    one_qubit = jnp.broadcast_to(jnp.eye(2, dtype=jnp.complex64), (k_qubits, 2, 2))
    for r, name in enumerate(ansatz.rotations):
        one_qubit = _matmul_2x2(_rotation_matrices(name, layer_params[r]), one_qubit)
    if codes is not None:
        one_qubit = _matmul_2x2(jnp.asarray(PAULIS)[codes], one_qubit)
    unitaries = []
    for gate in plan:
        first = gate.qubits[0]
        u = one_qubit[first]
        for k in gate.qubits[1 : gate.rotated]:
            u = _kron(u, one_qubit[k])
        if len(gate.qubits) > gate.rotated:  # the next chunk's qubit: identity here
            u = _kron(u, jnp.eye(2, dtype=jnp.complex64))
        if gate.ladder is not None:
            ladder = jnp.asarray(gate.ladder)
            # Ladder first, then rotations: U = R @ Ladder. The ladder is constant, so
            # the CNOT product is one unbatched matmul and the CZ one a column scaling.
            u = u @ ladder if ladder.ndim == 2 else u * ladder[None, :]
        unitaries.append(u)
    return unitaries


def hea_state(
    params: Float[Array, "L R K"],
    ansatz: Ansatz,
    *,
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Complex[Array, " S"]:
    """State vector of the hardware-efficient ansatz.

    With ``noise_key`` and ``noise_rate > 0`` it is one trajectory of the circuit
    with a depolarizing channel of rate ``noise_rate`` on every qubit after every
    layer (see :func:`depolarizing_codes`): an exact sample of the noisy circuit.

    Args:
        params: ``(L, R, K)`` angles, ``params[layer, r, k]`` the angle of rotation
            ``ansatz.rotations[r]`` on qubit ``k`` in ``layer``.
        ansatz: the ansatz (static).
        noise_key: key of the noise trajectory (``None``: noiseless).
        noise_rate: depolarizing probability per qubit and layer (static).

    Returns:
        ``(2**K,)`` complex64 amplitudes, qubit 0 the most significant bit.

    Raises:
        ValueError: bad ansatz, or params of the wrong shape (checked when traced).

    Example:
        >>> a = Ansatz(num_qubits=2, layers=1)
        >>> psi = hea_state(jnp.zeros(hea_param_shape(a)), a)
        >>> [round(float(v), 3) for v in jnp.abs(psi) ** 2]
        [0.25, 0.25, 0.25, 0.25]
    """
    params = _check_params(params, ansatz)
    k_qubits = ansatz.num_qubits
    plan = _plan(ansatz)
    # |+>^K is the constant 2^(-K/2) vector; no need to contract K Hadamards.
    plus = jnp.full((2**k_qubits,), 2.0 ** (-k_qubits / 2), dtype=jnp.complex64)

    noisy = noise_key is not None and check_noise_rate(noise_rate) > 0.0
    codes = (
        depolarizing_codes(noise_key, noise_rate, params.shape[::2]) if noisy else None
    )

    def layer(state, xs):
        layer_params, layer_codes = xs
        for gate, unitary in zip(
            plan,
            _layer_unitaries(layer_params, ansatz, plan, layer_codes),
            strict=True,
        ):
            state = apply_gates(
                state, [Gate("any", gate.qubits, unitary=unitary)], k_qubits
            )
        return state, None

    state, _ = jax.lax.scan(layer, plus, (params, codes))
    return state


def is_real(ansatz: Ansatz) -> bool:
    """Whether the ansatz keeps the state real: RY rotations only (any entangler).

    ``|+>^K``, RY, CNOT and CZ all have real matrices, so such a circuit never
    leaves the real amplitudes, and :func:`hea_probs` simulates it in float32
    (half the numbers of complex64, and real 2x2 products).

    Example:
        >>> is_real(Ansatz(4, 2, ("ry",), "cz")), is_real(Ansatz(4, 2))
        (True, False)
    """
    return all(name == "ry" for name in ansatz.rotations)


def _real_state(params: jax.Array, ansatz: Ansatz) -> Float[Array, " S"]:
    """:func:`hea_state` of a real ansatz in float32 (noiseless).

    Each fused gate acts on contiguous qubits ``first .. first + d - 1``, so it is
    one ``einsum`` on the state seen as ``(2^first, 2^d, 2^rest)``: no tensor
    network to contract and no complex arithmetic.
    """
    k_qubits = ansatz.num_qubits
    plan = _plan(ansatz, _real_chunk_size(k_qubits))
    plus = jnp.full((2**k_qubits,), 2.0 ** (-k_qubits / 2), dtype=jnp.float32)
    eye = jnp.eye(2, dtype=jnp.float32)

    def layer(state, layer_params):
        c, s = jnp.cos(0.5 * layer_params), jnp.sin(0.5 * layer_params)
        one_qubit = jnp.broadcast_to(eye, (k_qubits, 2, 2))
        for r in range(layer_params.shape[0]):  # all RY: real 2x2 rotations
            ry = jnp.stack(
                [jnp.stack([c[r], -s[r]], -1), jnp.stack([s[r], c[r]], -1)], -2
            )
            one_qubit = _matmul_2x2(ry, one_qubit)
        for gate in plan:
            u = one_qubit[gate.qubits[0]]
            for k in gate.qubits[1 : gate.rotated]:
                u = _kron(u, one_qubit[k])
            if len(gate.qubits) > gate.rotated:
                u = _kron(u, eye)
            if gate.ladder is not None:
                ladder = jnp.asarray(np.real(gate.ladder).astype(np.float32))
                u = u @ ladder if ladder.ndim == 2 else u * ladder[None, :]
            first, d = gate.qubits[0], len(gate.qubits)
            view = state.reshape(2**first, 2**d, 2 ** (k_qubits - first - d))
            state = jnp.einsum("ij,ajb->aib", u, view).reshape(-1)
        return state, None

    state, _ = jax.lax.scan(layer, plus, params)
    return state


def _pair_view(x: jax.Array, qubit: int, k_qubits: int) -> tuple[jax.Array, jax.Array]:
    """The amplitudes with ``qubit`` at 0 and at 1: two ``(2^qubit, 2^(K-qubit-1))``."""
    v = x.reshape(2**qubit, 2, 2 ** (k_qubits - qubit - 1))
    return v[:, 0], v[:, 1]


def _from_pair(x0: jax.Array, x1: jax.Array) -> jax.Array:
    return jnp.stack([x0, x1], axis=1).reshape(-1)


def _cnot(x: jax.Array, control: int, k_qubits: int) -> jax.Array:
    """CNOT(control, control + 1): the target's two halves swap where control is 1."""
    v = x.reshape(2**control, 2, 2, 2 ** (k_qubits - control - 2))
    return jnp.concatenate([v[:, :1], jnp.flip(v[:, 1:], axis=2)], axis=1).reshape(-1)


def _rz_phase(
    c: Float[Array, " K"], s: Float[Array, " K"], k_qubits: int
) -> tuple[Float[Array, " S"], Float[Array, " S"]]:
    """``(cos, sin)`` of a layer's RZ phase per amplitude: ``e^{i phase(x)} =
    prod_k (c_k -/+ i s_k)``, a Kronecker product of the K qubits' phase pairs
    (about ``2^(K+1)`` complex products and 2K sines)."""
    cp, sp = jnp.stack([c[0], c[0]]), jnp.stack([-s[0], s[0]])
    for k in range(1, k_qubits):
        fc, fs = jnp.stack([c[k], c[k]]), jnp.stack([-s[k], s[k]])
        cp, sp = (
            (cp[:, None] * fc[None] - sp[:, None] * fs[None]).reshape(-1),
            (cp[:, None] * fs[None] + sp[:, None] * fc[None]).reshape(-1),
        )
    return cp, sp


def _rotate_qubit(name, c, s, k, k_qubits, re, im):
    """RY (``[[c, -s], [s, c]]``) or RX (``[[c, -i s], [-i s, c]]``) on qubit ``k``
    of ``(re, im)`` (``im`` ``None`` for a real state and RY); ``s -> -s`` is the
    inverse gate."""
    r0, r1 = _pair_view(re, k, k_qubits)
    if name == "ry":
        re = _from_pair(c * r0 - s * r1, s * r0 + c * r1)
        if im is not None:
            i0, i1 = _pair_view(im, k, k_qubits)
            im = _from_pair(c * i0 - s * i1, s * i0 + c * i1)
        return re, im
    i0, i1 = _pair_view(im, k, k_qubits)
    return (
        _from_pair(c * r0 + s * i1, c * r1 + s * i0),
        _from_pair(c * i0 - s * r1, c * i1 - s * r0),
    )


def _entangle(ansatz: Ansatz, re, im, reverse: bool = False):
    """The layer's ladder on ``(re, im)``; ``reverse`` applies its inverse (the
    CNOTs in the opposite order; the CZ ladder is its own inverse)."""
    k_qubits = ansatz.num_qubits
    if ansatz.entangler == "cnot":
        order = range(k_qubits - 1)
        for k in reversed(order) if reverse else order:
            re = _cnot(re, k, k_qubits)
            im = None if im is None else _cnot(im, k, k_qubits)
    elif ansatz.entangler == "cz" and k_qubits > 1:
        signs = jnp.asarray(np.real(_ladder_signs(k_qubits)).astype(np.float32))
        re = re * signs
        im = None if im is None else im * signs
    return re, im


def _gatewise_forward(
    params: Float[Array, "L R K"], ansatz: Ansatz
) -> tuple[Float[Array, " S"], Float[Array, " S"] | None]:
    """The gates of :func:`_gatewise_state` in order (JAX differentiates this one
    by its own rules: the tests' reference for the adjoint gradient)."""
    k_qubits = ansatz.num_qubits
    re = jnp.full((2**k_qubits,), 2.0 ** (-k_qubits / 2), dtype=jnp.float32)
    im = None if is_real(ansatz) else jnp.zeros_like(re)
    for layer_params in params:
        re, im = _entangle(ansatz, re, im)
        for name, theta in zip(ansatz.rotations, layer_params, strict=True):
            c, s = jnp.cos(0.5 * theta), jnp.sin(0.5 * theta)
            if name == "rz":  # diag(e^{-it/2}, e^{it/2}) on every qubit: one phase
                cp, sp = _rz_phase(c, s, k_qubits)
                re, im = re * cp - im * sp, re * sp + im * cp
                continue
            for k in range(k_qubits):
                re, im = _rotate_qubit(name, c[k], s[k], k, k_qubits, re, im)
    return re, im


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _gatewise_state(
    params: Float[Array, "L R K"], ansatz: Ansatz
) -> tuple[Float[Array, " S"], Float[Array, " S"] | None]:
    """:func:`hea_state` (noiseless) gate by gate as elementwise float32 arithmetic.

    Every gate is a handful of multiply-adds on the real and imaginary parts seen
    as ``(2^k, 2, 2^(K-k-1))`` (a CNOT a flip of half the state, a layer's RZ
    rotations one phase per amplitude, built as a Kronecker product of the K
    qubits' phase pairs), which XLA fuses into loops over the state:
    no small matrix products and no complex arithmetic.  The imaginary part is
    ``None`` for a real ansatz (:func:`is_real`).  The layers are unrolled (a
    ``lax.scan`` over them was 1.5-4x slower: XLA then cannot fuse across layers).

    The gradient is the *adjoint* method (a ``jax.custom_vjp``), not JAX's
    reverse mode through the gates: keeping only the final state, the backward
    pass walks the gates in reverse, undoing each on the state and on the
    cotangent and reading each angle's derivative off the pair
    (``d/dθ RY(θ) = RY(θ) (-i Y / 2)``: ``0.5 <λ, J ψ>`` with ``J = [[0, -1],
    [1, 0]]``; RX and RZ alike).  On the 2-core CPU (3 layers, medians of 7
    interleaved rounds) it was 1.06-2.2x faster than JAX's own reverse mode of
    the same gates on 29 of 30 rows (real K = 4-12, complex K = 4-8; G = 1, 64 and
    1024), 0.97x on one.  Forward-mode differentiation (``jax.jvp``) of this
    function is not defined.

    Args:
        params: ``(L, R, K)`` angles.
        ansatz: the ansatz (static).

    Returns:
        ``(re, im)``: ``(2**K,)`` float32 each, ``im`` ``None`` for a real ansatz.
    """
    return _gatewise_forward(params, ansatz)


def _gatewise_fwd(params, ansatz):
    state = _gatewise_forward(params, ansatz)
    return state, (params, state)


def _gatewise_bwd(ansatz: Ansatz, residuals, cotangent):
    """The adjoint pass: undo every gate on the state ``psi`` and the cotangent
    ``lam`` (both orthogonal maps of ``(re, im)``), each angle's derivative read
    between: ``<lam, dU/dθ U^T psi>``, a dot product per gate (a ``vdot`` under
    ``vmap`` is a batched dot; against a sum of products it took 0.75-1.1x the
    time at K = 6 and 8, G = 64 and 1024, in one check that did not interleave
    the two)."""
    params, (re, im) = residuals
    if params.size == 0:  # no layers or no rotations: no angle to differentiate
        return (jnp.zeros_like(params),)
    lre, lim = cotangent
    k_qubits = ansatz.num_qubits
    real = im is None
    if not real and lim is None:
        lim = jnp.zeros_like(re)
    grads = [[None] * len(ansatz.rotations) for _ in range(ansatz.layers)]
    for layer in reversed(range(ansatz.layers)):
        for r in reversed(range(len(ansatz.rotations))):
            name, theta = ansatz.rotations[r], params[layer, r]
            c, s = jnp.cos(0.5 * theta), jnp.sin(0.5 * theta)
            if name == "rz":
                # d/dθ_k multiplies amplitude x by i sign_k(x) / 2, sign -1 where
                # bit k is 0: 0.5 sum_x sign_k(x) (re lam_im - im lam_re).
                w = (re * lim - im * lre).reshape((2,) * k_qubits)
                per_qubit = []
                for k in range(k_qubits):
                    t = jnp.sum(w, axis=tuple(a for a in range(k_qubits) if a != k))
                    per_qubit.append(0.5 * (t[1] - t[0]))
                grads[layer][r] = jnp.stack(per_qubit)
                cp, sp = _rz_phase(c, s, k_qubits)
                re, im = re * cp + im * sp, im * cp - re * sp
                lre, lim = lre * cp + lim * sp, lim * cp - lre * sp
                continue
            per_qubit = [None] * k_qubits
            for k in reversed(range(k_qubits)):
                p0, p1 = _pair_view(re, k, k_qubits)
                l0, l1 = _pair_view(lre, k, k_qubits)
                if name == "ry":  # J psi = (-psi_1, psi_0) on the pair
                    acc = jnp.vdot(l1, p0) - jnp.vdot(l0, p1)
                    if not real:
                        q0, q1 = _pair_view(im, k, k_qubits)
                        m0, m1 = _pair_view(lim, k, k_qubits)
                        acc = acc + jnp.vdot(m1, q0) - jnp.vdot(m0, q1)
                else:  # rx: -i X psi / 2 -> (im_1, -re_1) at 0, (im_0, -re_0) at 1
                    q0, q1 = _pair_view(im, k, k_qubits)
                    m0, m1 = _pair_view(lim, k, k_qubits)
                    acc = (
                        jnp.vdot(l0, q1)
                        - jnp.vdot(m0, p1)
                        + jnp.vdot(l1, q0)
                        - jnp.vdot(m1, p0)
                    )
                per_qubit[k] = 0.5 * acc
                re, im = _rotate_qubit(name, c[k], -s[k], k, k_qubits, re, im)
                lre, lim = _rotate_qubit(name, c[k], -s[k], k, k_qubits, lre, lim)
            grads[layer][r] = jnp.stack(per_qubit)
        re, im = _entangle(ansatz, re, im, reverse=True)
        lre, lim = _entangle(ansatz, lre, lim, reverse=True)
    return (jnp.stack([jnp.stack(g) for g in grads]).astype(params.dtype),)


_gatewise_state.defvjp(_gatewise_fwd, _gatewise_bwd)


def _gatewise_is_faster(ansatz: Ansatz) -> bool:
    """Whether :func:`hea_probs` takes :func:`_gatewise_state` (measured per K).

    On the 2-core CPU (``jit(vmap(value_and_grad(sum(probs * c))))`` of 3 layers,
    G = 1, 64 and 1024, medians of 7 rounds interleaving the paths), the gate path
    with its adjoint gradient against the paths it replaced: real ansätze
    1.15-1.7x at K = 4, 1.1-2.2x at K = 6, 1.1-2.0x at K = 8 (JAX's reverse mode of
    the same gates before) and 1.0-1.4x at K = 10 (the fused-gate ``einsum``
    before), but 0.65-0.85x against the ``einsum`` at K = 12; complex ansätze
    (RY, RZ) 1.5-2.5x at K = 4, 1.1-2.1x at K = 5 and 1.2-1.3x at K = 6 (the
    fused TensorCircuit gates), mixed at K = 7 (0.8-1.05x) and slower at K = 8
    (0.6-1.0x).  Before the adjoint gradient the thresholds were K = 8 and 5.
    """
    return ansatz.num_qubits <= (10 if is_real(ansatz) else 6)


def _real_chunk_size(num_qubits: int) -> int:
    """Rotated qubits per fused gate of the real path (measured: see bench_roofline).

    On the 2-core CPU (value_and_grad, K = 8, 3 layers, 2048 groups) gates over 3
    qubits (chunks of 2) beat 4 and 5 qubits 1.6x and 2.2x.
    """
    return _chunk_size(num_qubits)


def hea_probs(
    params: Float[Array, "L R K"],
    ansatz: Ansatz,
    *,
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Float[Array, " S"]:
    """Born probabilities ``|amp|^2`` of :func:`hea_state`, float32.

    With noise, the probabilities of one trajectory (average several to estimate
    the noisy circuit's distribution).  Noiseless circuits are simulated in
    float32 without TensorCircuit (the same probabilities): gate by gate as
    elementwise arithmetic for real ansätze (:func:`is_real`) up to K = 10 and
    complex ones up to K = 6 (gradients by the adjoint method), and with fused
    gates (one ``einsum`` each) for larger real ones, whichever was measured
    faster (see the module docstring).

    Example:
        >>> a = Ansatz(num_qubits=3, layers=2)
        >>> p = hea_probs(init_hea_params(jax.random.key(0), a), a)
        >>> p.shape, p.dtype
        ((8,), dtype('float32'))
    """
    noisy = noise_key is not None and check_noise_rate(noise_rate) > 0.0
    if not noisy and _gatewise_is_faster(ansatz):
        re, im = _gatewise_state(_check_params(params, ansatz), ansatz)
        return jnp.square(re) if im is None else jnp.square(re) + jnp.square(im)
    if is_real(ansatz) and not noisy:
        return jnp.square(_real_state(_check_params(params, ansatz), ansatz))
    state = hea_state(params, ansatz, noise_key=noise_key, noise_rate=noise_rate)
    # re^2 + im^2 rather than abs()**2: no sqrt, and a clean gradient at 0.
    return jnp.square(jnp.real(state)) + jnp.square(jnp.imag(state))


# ---------------------------------------------------------------------------
# Resources and export.


def hea_resources(ansatz: Ansatz) -> dict[str, int]:
    """Gate counts and depth of :func:`hea_circuit`.

    ``depth`` is the critical-path length of the gate sequence with every gate
    counting 1 (as-soon-as-possible scheduling, like ``qiskit``'s
    ``QuantumCircuit.depth()``). With ``L`` layers, ``R`` rotations and ``K`` qubits:

    * ``L == 0``: ``1`` (the H layer);
    * no entangler (``"none"`` or ``K == 1``): ``1 + L * R``;
    * ``K == 2``: ``1 + L * (R + 1)``;
    * ``K >= 3``: ``K + R + (L - 1) * (R + 2)``: the first ladder is a chain of
      ``K - 1`` gates, and each further layer's ladder starts ``R + 2`` steps after
      the previous one (qubit 1 must finish its rotations).

    Returns:
        ``{"qubits", "depth", "two_qubit_gates", "single_qubit_gates",
        "parameters"}``, all ints.

    Example:
        >>> hea_resources(Ansatz(4, 2))
        {'qubits': 4, 'depth': 10, 'two_qubit_gates': 6, 'single_qubit_gates': 20, \
'parameters': 16}
    """
    _check_ansatz(ansatz)
    k, layers, r = int(ansatz.num_qubits), int(ansatz.layers), len(ansatz.rotations)
    per_layer = len(_ladder_pairs(ansatz))
    if layers == 0:
        depth = 1
    elif per_layer == 0:
        depth = 1 + layers * r
    elif k == 2:
        depth = 1 + layers * (r + 1)
    else:
        depth = k + r + (layers - 1) * (r + 2)
    return {
        "qubits": k,
        "depth": depth,
        "two_qubit_gates": layers * per_layer,
        "single_qubit_gates": k + layers * r * k,
        "parameters": layers * r * k,
    }


_QASM_NAMES = {
    "h": "h",
    "x": "x",
    "y": "y",
    "z": "z",
    "cnot": "cx",
    "cx": "cx",
    "cz": "cz",
    "rx": "rx",
    "ry": "ry",
    "rz": "rz",
}


def _qasm_from_qir(qir: list[dict], num_qubits: int) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{num_qubits}];"]
    for op in qir:
        name = _QASM_NAMES.get(op["name"])
        if name is None:
            raise ValueError(f"to_qasm: no OpenQASM 2 name for gate {op['name']!r}")
        args = ",".join(f"q[{int(i)}]" for i in op["index"])
        theta = op.get("parameters", {}).get("theta")
        angle = "" if theta is None else f"({float(np.asarray(theta))!r})"
        lines.append(f"{name}{angle} {args};")
    return "\n".join(lines) + "\n"


def circuit_qasm(circuit: Circuit, num_qubits: int) -> str:
    """OpenQASM 2 text of a gate-by-gate ``tc.Circuit`` (concrete parameters).

    Uses TensorCircuit's ``Circuit.to_openqasm()`` when qiskit is installed (the
    ``bench`` extra), else writes the same text from ``Circuit.to_qir()``.
    """
    with jax_backend():
        if importlib.util.find_spec("qiskit") is not None:
            return circuit.to_openqasm()
        return _qasm_from_qir(circuit.to_qir(), num_qubits)


def to_qasm(params: Float[Array, "L R K"], ansatz: Ansatz) -> str:
    """OpenQASM 2 text of :func:`hea_circuit` (concrete params; not under jit).

    TensorCircuit's ``Circuit.to_openqasm()`` goes through qiskit (the ``bench``
    extra). Without qiskit it fails with an unhelpful ``TypeError`` (its stand-in
    class is ``typing.Any``), so then this writes the same OpenQASM 2 from
    TensorCircuit's own gate list (``Circuit.to_qir()``). Qubit ``k`` is ``q[k]``.

    Example:
        >>> a = Ansatz(2, 1)
        >>> to_qasm(jnp.zeros(hea_param_shape(a)), a).splitlines()[0]
        'OPENQASM 2.0;'
    """
    params = np.asarray(_check_params(params, ansatz), dtype=np.float64)
    return circuit_qasm(hea_circuit(params, ansatz), ansatz.num_qubits)
