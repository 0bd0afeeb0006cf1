"""The QAOA circuit family: phase separators and mixers on K qubits.

One layer is ``exp(-i β H_M) exp(-i γ C̃)`` on a group's K qubits, started from
``|+>^K``; ``p`` layers with angles ``(γ_j, β_j)`` are the QAOA circuit of
:mod:`qselax.solvers.qaoa` (Farhi et al. 2014), and a Trotterised quantum anneal
(:mod:`qselax.solvers.anneal`) is the same circuit with angles from a schedule.
``C̃`` is the landscape as given (the solvers pass it normalised).  Layers are one
``lax.scan`` over the ``(γ_j, β_j)`` pairs, so compile time does not grow with ``p``.

Phase operator ``exp(-i γ C̃)``
------------------------------
* ``"diagonal"`` (default): C̃ is diagonal, so the operator is the phase vector
  ``exp(-i γ C̃(s))`` multiplied into the state vector between the TensorCircuit
  blocks of the mixer.  This is exact and costs one elementwise pass; a dense
  ``c.any(..., unitary=diag)`` would cost ``S^2`` per group and layer.  Hardware
  would need the gate form below (or an oracle that evaluates the masked network).
* ``"ising"``: the same operator as gates, from the Walsh (Z-string) expansion
  ``C̃(x) = Σ_T c_T Π_{k∈T} (-1)^{x_k}`` (exact for any landscape; ``c_T`` by a fast
  Walsh–Hadamard transform,
  :func:`qselax.hamiltonians.walsh_coefficients`).  All ``Z_T`` commute, so
  ``exp(-i γ C̃) = Π_T exp(-i γ c_T Z_T)`` with no Trotter error.  The rotations are
  grouped by their last qubit ``t``: for the subsets ``{t} ∪ A``, ``A ⊆ {0..t-1}``,
  visited in Gray-code order, one CNOT ``a -> t`` moves from one parity to the next
  and ``RZ(2 γ c_T)`` on ``t`` applies its phase (the ancilla-free construction of
  Welch et al. 2014): ``2^K - 2`` CNOTs and ``2^K - 1`` RZ per layer, against
  ``Σ_w C(K, w) 2 (w - 1)`` CNOTs for one CNOT ladder per Z-string (1538 at K=8).
  ``c_∅`` is a global phase, applied as a scalar.  Every gate is simulated (one
  ``tc.Circuit`` per block), about ``2^K`` passes over the state per layer instead
  of one, so this form is for checking the gate form and its counts, not for speed
  (K=8, G=256, 3 layers, 100 steps: 59 s per solve and 90 s to compile, against
  0.9 s and 1.2 s with ``"diagonal"``).  The resources count this circuit either way.

Mixers ``exp(-i β H_M)``
------------------------
* ``"x"``: the transverse field ``H_M = Σ_v X_v``: ``RX(2β)`` on every qubit,
  simulated as ``H^{⊗K} exp(-i β Σ Z_v) H^{⊗K}`` (see :func:`_x_mixer`).
* ``"bitflip"``: the bit-flip mixer the paper takes from Hadfield et al. (2019),
  ``H_M = Σ_v 2^{-d(v)} X_v Π_{w∈N(v)} (I + (-1)^b Z_w)`` with ``b = 0``.  A group's
  mask bits have no graph of their own, so ``N(v)`` is the path ``0 - 1 - ... -
  K-1`` (neighbours ``v ± 1``).  With ``b = 0`` each term is ``X_v P_v``, ``P_v``
  the projector on "all neighbours of v are 0": a NOT on ``v`` controlled (on 0) by
  its neighbours.  Terms of adjacent vertices do **not** commute (``X_v`` flips a
  control of the other), terms at distance >= 2 do.  The mixer is therefore
  Trotterised in a fixed order that is exact within each colour class:
  ``exp(-i β H_odd) exp(-i β H_even)``, even vertices first, each factor a product
  of commuting ``exp(-i β X_v P_v) = (I - P_v) + P_v RX_v(2β)`` (one 2- or 3-qubit
  TensorCircuit gate).  In gate form a term is ``H_v``, the Gray-code phase of
  ``Z_v P_v`` (4 CNOTs for an inner vertex, 2 at an end) and ``H_v``.

Gates run through :func:`qselax.circuits.apply_gates` (TensorCircuit on the JAX
backend).

Shapes: ``K`` qubits, ``S = 2^K`` configurations, ``P`` layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from qselax import circuits
from qselax.bits import check_k
from qselax.circuits import Gate
from qselax.hamiltonians import ising_phase_gates, walsh_coefficients
from qselax.solvers.base import check_choice, check_count

__all__ = [
    "MIXERS",
    "PHASES",
    "qaoa_circuit",
    "qaoa_probs",
    "qaoa_qasm",
    "qaoa_resources",
    "qaoa_state",
]

MIXERS = ("x", "bitflip")
PHASES = ("diagonal", "ising")
# Qubits per constant Hadamard gate of the X mixer: 2 and 4 measured equal at K=8.
_X_CHUNK = 4


def _num_qubits(landscape: jax.Array) -> int:
    size = landscape.shape[-1]
    k = int(size).bit_length() - 1
    if size < 2 or 2**k != size:
        raise ValueError(
            f"landscape must have 2^K entries on its last axis, got {landscape.shape}"
        )
    return k


# ---------------------------------------------------------------------------
# Phase separator in gate form.


def _phase_blocks(k: int) -> tuple[tuple[tuple, ...], ...]:
    """Gray-code gate sequence of ``Π_T exp(-i γ c_T Z_T)`` over nonempty subsets T.

    One block per last qubit ``t`` (the largest qubit of ``T``), the longest block
    first.  Items are ``("rz", t, T)`` (rotate qubit ``t`` by ``2 γ c_T``, ``T`` the
    subset's index) and ``("cnot", a, t)``.  A block walks ``A ⊆ {0..t-1}`` in
    Gray-code order; after its CNOTs so far, qubit ``t`` holds
    ``x_t ⊕ (⊕_{a∈A} x_a)``, the parity of ``T = {t} ∪ A``; a final CNOT
    ``t-1 -> t`` restores it (the last Gray-code word is ``{t - 1}``).  So a block
    has ``2^t`` RZ and ``2^t`` CNOTs (none for ``t = 0``): ``2^K - 2`` in all.
    """
    blocks = []
    for t in range(k - 1, -1, -1):
        block = []
        code = 0
        for i in range(2**t):
            if i:
                j = (i & -i).bit_length() - 1  # the Gray-code bit that flips
                code ^= 1 << j
                block.append(("cnot", j, t))
            members = [t] + [a for a in range(t) if code >> a & 1]
            block.append(("rz", t, sum(1 << (k - 1 - q) for q in members)))
        if t:
            block.append(("cnot", t - 1, t))
        blocks.append(tuple(block))
    return tuple(blocks)


def _ising_phase(
    state: Complex[Array, " S"], gamma: jax.Array, coeffs: Float[Array, " S"]
) -> Complex[Array, " S"]:
    """Applies ``exp(-i γ Σ_T c_T Z_T)`` to a state as CNOT and RZ gates (exact).

    One ``tc.Circuit`` per block of :func:`_phase_blocks`
    (:func:`qselax.circuits.apply_gates`).
    """
    k = _num_qubits(state)
    for block in _phase_blocks(k):
        # RZ(θ) = exp(-i θ Z / 2): θ = 2 γ c_T gives exp(-i γ c_T Z_T).
        gates = [
            Gate("cnot", (a, b))
            if name == "cnot"
            else Gate("rz", (a,), theta=2.0 * gamma * coeffs[b])
            for name, a, b in block
        ]
        state = circuits.apply_gates(state, gates, k)
    # c_∅ only multiplies the state by a global phase.
    phase = -gamma * coeffs[0]
    return state * jax.lax.complex(jnp.cos(phase), jnp.sin(phase))


# ---------------------------------------------------------------------------
# Mixers.


def _hadamards(width: int) -> np.ndarray:
    """``H^{⊗ width}`` as a constant ``(2^width, 2^width)`` complex64 matrix."""
    h = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
    out = np.ones((1, 1))
    for _ in range(width):
        out = np.kron(out, h)
    return out.astype(np.complex64)


def _hadamard_layer(state: Complex[Array, " S"]) -> Complex[Array, " S"]:
    """``H`` on every qubit, as constant TensorCircuit gates on ``_X_CHUNK`` qubits."""
    k = _num_qubits(state)
    for start in range(0, k, _X_CHUNK):
        qubits = tuple(range(start, min(start + _X_CHUNK, k)))
        gate = Gate("any", qubits, unitary=_hadamards(len(qubits)))
        state = circuits.apply_gates(state, [gate], k)
    return state


def _z_layer_phases(beta: jax.Array, k: int) -> Complex[Array, " S"]:
    """Diagonal of ``exp(-i β Σ_v Z_v)``: ``⊗_v (e^{-iβ}, e^{iβ})``."""
    down = jnp.exp(jax.lax.complex(jnp.zeros_like(beta), -beta))
    pair = jnp.stack([down, jnp.conj(down)])
    out = pair
    for _ in range(k - 1):
        out = (out[:, None] * pair[None, :]).reshape(-1)
    return out


def _x_mixer(state: Complex[Array, " S"], beta: jax.Array) -> Complex[Array, " S"]:
    """``exp(-i β Σ X_v) = H^{⊗K} exp(-i β Σ Z_v) H^{⊗K}`` (``RX(2β) = H RZ(2β) H``).

    The Hadamard layers do not depend on β, so under ``vmap`` over groups they stay
    unbatched gates that XLA runs as plain matrix products, where batched ``RX``
    gates become G small matrix products each (measured K=8, G=2368, p=3,
    ``value_and_grad``: 167 against 191 ms per step of CPU time for fused RX pairs,
    64 ms without any mixer).  The RZ layer is a product-form phase vector.
    """
    k = _num_qubits(state)
    return _hadamard_layer(_z_layer_phases(beta, k) * _hadamard_layer(state))


def _path_neighbours(k: int, v: int) -> tuple[int, ...]:
    return tuple(w for w in (v - 1, v + 1) if 0 <= w < k)


def _bitflip_order(k: int) -> tuple[int, ...]:
    """Trotter order of the bit-flip terms: even vertices, then odd ones."""
    return tuple(range(0, k, 2)) + tuple(range(1, k, 2))


def _bitflip_parts(k: int, v: int) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Qubits of term ``v`` (sorted) and the constants of its exponential.

    ``exp(-i β X_v P_v) = (I - P_v) + cos(β) P_v - i sin(β) X_v P_v``, returned as
    ``(qubits, I - P_v, X_v P_v)`` (``P_v`` is implied: ``I - (I - P_v)``).
    """
    qubits = tuple(sorted((v,) + _path_neighbours(k, v)))
    n = len(qubits)
    pos = qubits.index(v)
    bits = (np.arange(2**n)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    others = [i for i in range(n) if i != pos]
    proj = np.all(bits[:, others] == 0, axis=1).astype(np.complex64)
    flip = np.zeros((2**n, 2**n), np.complex64)
    idx = np.arange(2**n)
    flip[idx ^ (1 << (n - 1 - pos)), idx] = 1.0  # X_v
    return qubits, np.diag(1.0 - proj), flip * proj[None, :]


def _bitflip_mixer(
    state: Complex[Array, " S"], beta: jax.Array
) -> Complex[Array, " S"]:
    k = _num_qubits(state)
    cos = jnp.cos(beta).astype(jnp.complex64)
    msin = (-1j * jnp.sin(beta)).astype(jnp.complex64)
    for v in _bitflip_order(k):
        qubits, rest, flip = _bitflip_parts(k, v)
        proj = np.eye(rest.shape[0], dtype=np.complex64) - rest
        unitary = jnp.asarray(rest) + cos * jnp.asarray(proj) + msin * flip
        state = circuits.apply_gates(state, [Gate("any", qubits, unitary=unitary)], k)
    return state


_MIXER_FNS = {"x": _x_mixer, "bitflip": _bitflip_mixer}


# ---------------------------------------------------------------------------
# The circuit.


def qaoa_state(
    gammas: Float[Array, " P"],
    betas: Float[Array, " P"],
    landscape: Float[Array, " S"],
    *,
    mixer: str = "x",
    phase: str = "diagonal",
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Complex[Array, " S"]:
    """State vector of a p-layer QAOA circuit on ``K = log2(S)`` qubits.

    ``Π_j exp(-i β_j H_M) exp(-i γ_j C) |+>^K``, layer ``j = 0`` applied first,
    ``C = diag(landscape)`` used as given (callers normalise it).  With
    ``noise_key`` and ``noise_rate > 0``: one trajectory of a depolarizing channel
    on every qubit after every layer (:func:`qselax.circuits.depolarizing_codes`).

    Args:
        gammas: ``(P,)`` phase angles.
        betas: ``(P,)`` mixer angles.
        landscape: ``(S,)`` costs of the ``S = 2^K`` configurations.
        mixer: ``"x"`` or ``"bitflip"`` (see the module docstring).
        phase: ``"diagonal"`` (exact phase vector) or ``"ising"`` (CNOT/RZ gates).
        noise_key: key of the noise trajectory (``None``: noiseless).
        noise_rate: depolarizing probability per qubit and layer (static).

    Returns:
        ``(S,)`` complex64 amplitudes, qubit 0 the most significant bit.

    Example:
        >>> psi = qaoa_state(jnp.zeros(1), jnp.zeros(1), jnp.array([0.0, 1.0]))
        >>> [round(float(abs(a) ** 2), 3) for a in psi]
        [0.5, 0.5]
    """
    check_choice("mixer", mixer, MIXERS)
    check_choice("phase", phase, PHASES)
    k = _num_qubits(landscape)
    landscape = jnp.asarray(landscape, jnp.float32)
    gammas = jnp.asarray(gammas, jnp.float32)
    betas = jnp.asarray(betas, jnp.float32)
    if gammas.ndim != 1 or gammas.shape != betas.shape:
        raise ValueError(
            f"gammas and betas must both have shape (layers,), got {gammas.shape} "
            f"and {betas.shape}"
        )
    apply_mixer = _MIXER_FNS[mixer]
    coeffs = walsh_coefficients(landscape) if phase == "ising" else None

    noisy = noise_key is not None and circuits.check_noise_rate(noise_rate) > 0.0
    codes = (
        circuits.depolarizing_codes(noise_key, noise_rate, (gammas.shape[0], k))
        if noisy
        else None
    )

    def layer(state, xs):
        gamma, beta, layer_codes = xs
        if phase == "diagonal":
            # exp(-i γ C(s)) multiplied in directly: exact, and one pass over S.
            # (complex exp: 49 against 64 ms/step for separate cos and sin at K=8.)
            arg = -gamma * landscape
            state = state * jnp.exp(jax.lax.complex(jnp.zeros_like(arg), arg))
        else:
            state = _ising_phase(state, gamma, coeffs)
        state = apply_mixer(state, beta)
        if layer_codes is not None:
            state = circuits.apply_pauli_string(state, layer_codes, k)
        return state, None

    # |+>^K is the constant 2^(-K/2) vector; no need to contract K Hadamards.
    plus = jnp.full((2**k,), 2.0 ** (-k / 2), dtype=jnp.complex64)
    state, _ = jax.lax.scan(layer, plus, (gammas, betas, codes))
    return state


def qaoa_probs(
    gammas: Float[Array, " P"],
    betas: Float[Array, " P"],
    landscape: Float[Array, " S"],
    *,
    mixer: str = "x",
    phase: str = "diagonal",
    noise_key: jax.Array | None = None,
    noise_rate: float = 0.0,
) -> Float[Array, " S"]:
    """Born probabilities of :func:`qaoa_state`, float32."""
    state = qaoa_state(
        gammas,
        betas,
        landscape,
        mixer=mixer,
        phase=phase,
        noise_key=noise_key,
        noise_rate=noise_rate,
    )
    # re^2 + im^2 rather than abs()**2: no sqrt, and a clean gradient at 0.
    return jnp.square(jnp.real(state)) + jnp.square(jnp.imag(state))


# ---------------------------------------------------------------------------
# Resources.


def _mixer_program(k: int, mixer: str) -> tuple[tuple, ...]:
    """Gate form of ``exp(-i β H_M)``, the one counted in the resources.

    Items: ``("rx", v, w)`` is ``RX(w β)``, ``("rz", v, w)`` is ``RZ(w β)``,
    ``("h", v, 0)`` a Hadamard, ``("cnot", a, v)``.  A bit-flip term is
    ``H_v exp(-i β Z_v P_v) H_v``, and ``Z_v P_v = 2^{-d} Σ_{A ⊆ N(v)} Z_v Z_A`` is
    applied like the Ising phase: ``RZ(2 β / 2^d)`` at every step of a Gray-code
    walk over the neighbours (``2^d`` CNOTs).  The tests check this program against
    the fused gates of the simulation.
    """
    if mixer == "x" or k == 1:
        return tuple(("rx", v, 2.0) for v in range(k))
    program = []
    for v in _bitflip_order(k):
        neighbours = _path_neighbours(k, v)
        weight = 2.0 / 2 ** len(neighbours)
        program.append(("h", v, 0))
        for i in range(2 ** len(neighbours)):
            if i:
                j = (i & -i).bit_length() - 1
                program.append(("cnot", neighbours[j], v))
            program.append(("rz", v, weight))
        program.append(("cnot", neighbours[-1], v))  # the walk ends on {last}
        program.append(("h", v, 0))
    return tuple(program)


def _gate_qubits(k: int, phase: str, mixer: str) -> list[tuple[int, ...]]:
    """Qubits of every gate of one layer (phase then mixer); two-qubit = CNOT."""
    if phase == "diagonal":
        gates = [tuple(range(k))]  # one K-qubit diagonal gate
    else:
        gates = [
            (a, b) if name == "cnot" else (a,)
            for block in _phase_blocks(k)
            for name, a, b in block
        ]
    for name, a, b in _mixer_program(k, mixer):
        gates.append((a, b) if name == "cnot" else (a,))
    return gates


def _circuit_counts(k: int, layers: int, mixer: str, phase: str) -> tuple[int, int]:
    """``(depth, two_qubit_gates)`` of the H layer then ``layers`` × (phase, mixer).

    Depth is the ASAP critical path with every gate counting 1 (like qiskit's
    ``QuantumCircuit.depth()``); the diagonal phase is one K-qubit gate and is not
    a two-qubit gate.
    """
    level = [1] * k  # the H layer
    two = 0
    for _ in range(layers):
        for qubits in _gate_qubits(k, phase, mixer):
            d = 1 + max(level[q] for q in qubits)
            for q in qubits:
                level[q] = d
    for name, *_ in _mixer_program(k, mixer):
        two += name == "cnot"
    if phase == "ising":
        two += sum(op[0] == "cnot" for block in _phase_blocks(k) for op in block)
    return max(level), two * layers


def qaoa_resources(k: int, layers: int, mixer: str = "x", phase: str = "diagonal"):
    """Static resource counts of one group's QAOA circuit.

    ``depth`` and ``two_qubit_gates`` count the circuit as simulated: the diagonal
    phase as one K-qubit gate (depth 1, no two-qubit gates) or, for
    ``phase="ising"``, as its CNOT/RZ gates; the bit-flip mixer in its gate form.
    ``ising_depth`` and ``ising_two_qubit_gates`` always count the gate form of the
    phase (for a dense Walsh expansion; a landscape with fewer nonzero ``c_T`` needs
    fewer).  Depth is the ASAP critical path with every gate counting 1.

    Example:
        >>> r = qaoa_resources(3, 1)
        >>> r["depth"], r["two_qubit_gates"], r["ising_two_qubit_gates"]
        (3, 0, 6)
    """
    k = check_k(k)
    layers = check_count("layers", layers)
    check_choice("mixer", mixer, MIXERS)
    check_choice("phase", phase, PHASES)
    depth, two = _circuit_counts(k, layers, mixer, phase)
    ising_depth, ising_two = _circuit_counts(k, layers, mixer, "ising")
    return {
        "qubits": k,
        "layers": layers,
        "depth": depth,
        "two_qubit_gates": two,
        "ising_depth": ising_depth,
        "ising_two_qubit_gates": ising_two,
    }


# ---------------------------------------------------------------------------
# Gate form and export.


def qaoa_circuit(gammas, betas, landscape, *, tol: float = 0.0) -> circuits.Circuit:
    """The X-mixer QAOA circuit gate by gate, for export and inspection.

    H on every qubit, then per layer the phase separator ``exp(-i γ C)`` compiled
    from the landscape's Walsh (Ising) expansion into CNOT ladders and RZ gates
    (:func:`qselax.hamiltonians.ising_phase_gates`, up to the global phase of the
    constant term) and the mixer ``RX(2β)`` on every qubit.  Its state equals
    :func:`qaoa_state` with ``phase="ising"`` up to a global phase (a test checks).

    Args:
        gammas: ``(P,)`` concrete phase angles.
        betas: ``(P,)`` concrete mixer angles.
        landscape: ``(S,)`` concrete costs (normalise them first if the angles were
            tuned on normalised costs, as the solver does).
        tol: Walsh terms with ``|c| <= tol`` are dropped.

    Returns:
        A ``tc.Circuit`` on ``K = log2(S)`` qubits.
    """
    landscape = np.asarray(landscape, np.float32)
    k = _num_qubits(landscape)
    gammas = np.asarray(gammas, np.float64).reshape(-1)
    betas = np.asarray(betas, np.float64).reshape(-1)
    if gammas.shape != betas.shape:
        raise ValueError(
            f"gammas and betas must have the same shape, got {gammas.shape} and "
            f"{betas.shape}"
        )
    coeffs = np.asarray(walsh_coefficients(jnp.asarray(landscape)))
    gates = [Gate("h", (q,)) for q in range(k)]
    for gamma, beta in zip(gammas, betas, strict=True):
        for gate in ising_phase_gates(coeffs, k, float(gamma), tol):
            if gate[0] == "cx":
                gates.append(Gate("cnot", tuple(gate[1])))
            else:
                gates.append(Gate("rz", (gate[1][0],), theta=gate[2]))
        gates += [Gate("rx", (q,), theta=2.0 * float(beta)) for q in range(k)]
    return circuits.build_circuit(k, gates)


def qaoa_qasm(gammas, betas, landscape, *, tol: float = 0.0) -> str:
    """OpenQASM 2 text of :func:`qaoa_circuit`.

    Example:
        >>> text = qaoa_qasm([0.5], [0.3], jnp.array([0.0, 1.0, 1.0, 3.0]))
        >>> text.splitlines()[2], text.count("cx ")
        ('qreg q[2];', 2)
    """
    k = _num_qubits(jnp.asarray(landscape))
    return circuits.circuit_qasm(qaoa_circuit(gammas, betas, landscape, tol=tol), k)
