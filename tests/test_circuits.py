"""Tests for qselax.circuits: physics oracles, autodiff, shapes, export, errors."""

import functools
import pathlib
import re
import subprocess
import sys

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from qselax import circuits
from qselax.bits import bit_index, bit_table, index_bits
from qselax.circuits import (
    Ansatz,
    Gate,
    apply_gates,
    build_circuit,
    hea_circuit,
    hea_param_shape,
    hea_probs,
    hea_resources,
    hea_state,
    init_hea_params,
    is_real,
    to_qasm,
)

tc = pytest.importorskip("tensorcircuit")  # only for reference circuits here

# --- Hand-written NumPy reference, qubit 0 = most significant bit. ----------------

H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
CNOT = np.array(
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128
)
CZ = np.diag([1, 1, 1, -1]).astype(np.complex128)


def rx(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def ry(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -s], [s, c]], dtype=np.complex128)


def rz(t):
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


ROT = {"rx": rx, "ry": ry, "rz": rz}


def on(gate, first, num_qubits):
    """``gate`` on qubits first, first+1, ... as a full 2^K matrix (explicit kron)."""
    width = int(np.log2(gate.shape[0]))
    left = np.eye(2**first)
    right = np.eye(2 ** (num_qubits - first - width))
    return np.kron(np.kron(left, gate), right)


def numpy_hea_state(params, ansatz):
    k = ansatz.num_qubits
    params = np.asarray(params, dtype=np.float64)
    psi = np.zeros(2**k, dtype=np.complex128)
    psi[0] = 1.0
    for q in range(k):
        psi = on(H, q, k) @ psi
    ent = {"cnot": CNOT, "cz": CZ}.get(ansatz.entangler)
    for layer in range(ansatz.layers):
        if ent is not None:
            for q in range(k - 1):
                psi = on(ent, q, k) @ psi
        for r, name in enumerate(ansatz.rotations):
            for q in range(k):
                psi = on(ROT[name](params[layer, r, q]), q, k) @ psi
    return psi


@functools.cache
def jitted(fn, ansatz):
    """One compiled function per (function, ansatz), reused across tests."""
    return jax.jit(lambda p: fn(p, ansatz))


def random_params(seed, ansatz, scale=1.0):
    return init_hea_params(jax.random.key(seed), ansatz, scale=scale)


# --- Physics oracles. --------------------------------------------------------------

ROTATION_VARIANTS = [("ry", "rz"), ("rx",), ("rz", "rx", "ry")]


# Every (K, entangler, rotations) for K <= 3; each (K, entangler) pair meets
# layers 0, 1 and 2 once, with a different rotation tuple each time (27 compiles).
KRON_CASES = [
    (k, entangler, rotations, (k + i) % 3)
    for k in (1, 2, 3)
    for entangler in ("cnot", "cz", "none")
    for i, rotations in enumerate(ROTATION_VARIANTS)
]


@pytest.mark.parametrize("num_qubits, entangler, rotations, layers", KRON_CASES)
def test_state_matches_numpy_kron(num_qubits, entangler, rotations, layers):
    ansatz = Ansatz(num_qubits, layers, rotations, entangler)
    params = random_params(num_qubits, ansatz)
    psi = jitted(hea_state, ansatz)(params)
    chex.assert_shape(psi, (2**num_qubits,))
    assert psi.dtype == jnp.complex64
    np.testing.assert_allclose(psi, numpy_hea_state(params, ansatz), atol=2e-6)


@pytest.mark.parametrize(
    "ansatz",
    [
        Ansatz(5, 2, ("ry", "rz"), "cnot"),
        Ansatz(6, 1, ("rx", "ry"), "cz"),
        Ansatz(11, 1, ("ry", "rz"), "cnot"),  # chunks of 3
        Ansatz(15, 1, ("ry",), "cz"),  # chunks of 4
    ],
)
def test_fused_state_matches_gate_by_gate_tc_circuit(ansatz):
    params = random_params(7, ansatz)
    expected = hea_circuit(params, ansatz).state()
    np.testing.assert_allclose(jitted(hea_state, ansatz)(params), expected, atol=3e-6)


def test_numpy_oracle_on_hand_computed_states():
    q = np.pi / 2
    # |+> then RY(pi/2) gives |1>.
    psi = numpy_hea_state([[[q]]], Ansatz(1, 1, ("ry",)))
    np.testing.assert_allclose(psi, [0, 1], atol=1e-12)
    # Qubit 0 -> |1>, qubit 1 -> |0>: index 2 = 0b10 (qubit 0 most significant).
    psi = numpy_hea_state([[[q, -q]]], Ansatz(2, 1, ("ry",), "none"))
    np.testing.assert_allclose(psi, np.eye(4)[2], atol=1e-12)
    # CNOT|++> = |++>, then as above: |10>; a second layer's CNOT(0, 1) gives |11>.
    psi = numpy_hea_state([[[q, -q]], [[0, 0]]], Ansatz(2, 2, ("ry",), "cnot"))
    np.testing.assert_allclose(psi, np.eye(4)[3], atol=1e-12)
    # CZ|++> = (|0+> + |1->)/sqrt2; RY(pi/2) on qubit 0 makes it (|01> + |10>)/sqrt2.
    psi = numpy_hea_state([[[q, 0]]], Ansatz(2, 1, ("ry",), "cz"))
    np.testing.assert_allclose(psi, np.array([0, 1, 1, 0]) / np.sqrt(2), atol=1e-12)


@pytest.mark.parametrize("name", ["rx", "ry", "rz"])
def test_tensorcircuit_rotation_convention(name):
    """tc's rx/ry/rz(theta) are exp(-i theta P / 2), e.g. RZ = diag(e^-i/2, e^i/2)."""
    theta = 0.73
    for basis in range(2):
        c = tc.Circuit(1, inputs=np.eye(2, dtype=np.complex64)[basis])
        getattr(c, name)(0, theta=theta)
        np.testing.assert_allclose(c.state(), ROT[name](theta)[:, basis], atol=1e-6)
    paulis = {
        "rx": np.array([[0, 1], [1, 0]]),
        "ry": np.array([[0, -1j], [1j, 0]]),
        "rz": np.diag([1, -1]),
    }
    expm = np.cos(theta / 2) * np.eye(2) - 1j * np.sin(theta / 2) * paulis[name]
    np.testing.assert_allclose(ROT[name](theta), expm, atol=1e-12)


PROPERTY_ANSATZ = Ansatz(5, 2, ("rx", "rz"), "cnot")


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(
    st.lists(
        st.floats(-6.25, 6.25, width=32),
        min_size=int(np.prod(hea_param_shape(PROPERTY_ANSATZ))),
        max_size=int(np.prod(hea_param_shape(PROPERTY_ANSATZ))),
    )
)
def test_state_matches_numpy_for_any_angles(angles):
    params = np.asarray(angles, np.float32).reshape(hea_param_shape(PROPERTY_ANSATZ))
    psi = jitted(hea_state, PROPERTY_ANSATZ)(params)
    np.testing.assert_allclose(psi, numpy_hea_state(params, PROPERTY_ANSATZ), atol=3e-6)


def test_zero_layers_is_uniform_superposition():
    ansatz = Ansatz(3, 0)
    chex.assert_shape(init_hea_params(jax.random.key(0), ansatz), (0, 2, 3))
    probs = hea_probs(jnp.zeros((0, 2, 3), jnp.float32), ansatz)
    np.testing.assert_allclose(probs, np.full(8, 1 / 8), atol=1e-7)


# --- Probabilities and shape contracts (chex variants). ----------------------------


class ProbsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("cnot", "cz", "none")
    def test_probs_are_a_distribution(self, entangler):
        ansatz = Ansatz(4, 3, ("ry", "rz"), entangler)
        params = random_params(3, ansatz)
        probs = self.variant(lambda p: hea_probs(p, ansatz))(params)
        chex.assert_shape(probs, (16,))
        chex.assert_type(probs, jnp.float32)
        chex.assert_tree_all_finite(probs)
        assert np.all(np.asarray(probs) >= 0.0)
        np.testing.assert_allclose(np.sum(probs), 1.0, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_shapes_and_dtypes(self):
        ansatz = Ansatz(3, 2, ("rx", "ry", "rz"))
        params = init_hea_params(jax.random.key(1), ansatz, scale=0.1)
        chex.assert_shape(params, hea_param_shape(ansatz))
        chex.assert_shape(params, (2, 3, 3))
        chex.assert_type(params, jnp.float32)
        assert float(jnp.std(params)) < 0.3  # "small" angles
        state = self.variant(lambda p: hea_state(p, ansatz))(params)
        chex.assert_shape(state, (8,))
        chex.assert_type(state, jnp.complex64)


def test_params_of_other_real_dtypes_are_accepted():
    ansatz = Ansatz(2, 1)
    p64 = np.full(hea_param_shape(ansatz), 0.3, dtype=np.float64)
    np.testing.assert_allclose(
        hea_probs(p64, ansatz), hea_probs(p64.astype(np.float32), ansatz), atol=1e-7
    )
    hea_probs(np.zeros(hea_param_shape(ansatz), np.int32), ansatz)


# --- Autodiff against the parameter-shift rule. ------------------------------------


@pytest.mark.parametrize(
    "ansatz",
    [
        Ansatz(3, 2, ("ry", "rz"), "cnot"),
        Ansatz(3, 2, ("rx", "rz"), "cz"),
        Ansatz(3, 2, ("ry",), "cz"),  # the real-amplitude path
    ],
)
def test_autodiff_gradient_matches_parameter_shift(ansatz):
    params = random_params(11, ansatz)
    cost = jax.random.normal(jax.random.key(12), (8,), jnp.float32)
    energy = lambda p: jnp.sum(hea_probs(p, ansatz) * cost)
    grad = jax.jit(jax.grad(energy))(params)

    # Every gate carries one parameter with generator P/2 and P^2 = I, so
    # dE/dθ = [E(θ + π/2) - E(θ - π/2)] / 2 exactly.
    n = params.size
    shifts = (np.pi / 2) * np.eye(n, dtype=np.float32).reshape((n, *params.shape))
    shifted = jnp.concatenate([params[None] + shifts, params[None] - shifts])
    energies = jax.jit(jax.vmap(energy))(shifted)
    shift_grad = 0.5 * (energies[:n] - energies[n:])
    np.testing.assert_allclose(grad.reshape(-1), shift_grad, atol=2e-5)


# --- Batching and tracing. ---------------------------------------------------------


def test_vmap_over_groups_equals_loop_and_traces_once():
    ansatz = Ansatz(4, 2)
    groups = 5
    params = jax.vmap(lambda k: init_hea_params(k, ansatz, scale=1.0))(
        jax.random.split(jax.random.key(4), groups)
    )
    costs = jax.random.normal(jax.random.key(5), (groups, 16), jnp.float32)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, c):
        energy = lambda pg, cg: jnp.sum(hea_probs(pg, ansatz) * cg)
        return jax.vmap(jax.value_and_grad(energy))(p, c)

    values, grads = step(params, costs)
    chex.assert_shape(values, (groups,))
    chex.assert_shape(grads, (groups, *hea_param_shape(ansatz)))
    chex.assert_tree_all_finite(grads)
    single = jax.jit(
        jax.value_and_grad(lambda pg, cg: jnp.sum(hea_probs(pg, ansatz) * cg))
    )
    for g in range(groups):
        value, grad = single(params[g], costs[g])
        np.testing.assert_allclose(values[g], value, atol=1e-6)
        np.testing.assert_allclose(grads[g], grad, atol=1e-6)
    # Same shapes, new values: served from the cache, not traced again.
    for _ in range(2):
        step(params + 0.1, costs * 2.0)


# --- Bit order. --------------------------------------------------------------------


@pytest.mark.parametrize("num_qubits", [1, 3, 4])
def test_bit_table_matches_tensorcircuit_order(num_qubits):
    table = bit_table(num_qubits)
    chex.assert_shape(table, (2**num_qubits, num_qubits))
    weights = 2 ** (num_qubits - 1 - np.arange(num_qubits))
    np.testing.assert_array_equal(table @ weights, np.arange(2**num_qubits))
    for qubit in range(num_qubits):
        c = tc.Circuit(num_qubits)
        c.x(qubit)
        probs = np.asarray(c.probability())
        index = int(np.argmax(probs))
        assert probs[index] == pytest.approx(1.0)
        assert index == 2 ** (num_qubits - 1 - qubit)  # qubit 0 -> 2^(K-1)
        np.testing.assert_array_equal(table[index], np.eye(num_qubits)[qubit])


@pytest.mark.parametrize("num_qubits", [1, 3, 5])
def test_bit_table_matches_bit_index(num_qubits):
    table = bit_table(num_qubits)
    index = np.arange(2**num_qubits)
    np.testing.assert_array_equal(bit_index(jnp.asarray(table)), index)
    np.testing.assert_array_equal(index_bits(jnp.asarray(index), num_qubits), table)


# --- Export. -----------------------------------------------------------------------


def _state_from_qasm(text, num_qubits):
    """Tiny OpenQASM 2 reader for the gates to_qasm emits, replayed on tc."""
    c = tc.Circuit(num_qubits)
    names = {"cx": "cnot"}
    for line in text.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)(?:\(([^)]*)\))? (.*);", line)
        name, angle, args = m.groups()
        qubits = [int(q) for q in re.findall(r"q\[(\d+)\]", args)]
        kwargs = {} if angle is None else {"theta": float(angle)}
        getattr(c, names.get(name, name))(*qubits, **kwargs)
    return c.state()


@pytest.mark.parametrize(
    "ansatz, two_qubit",
    [
        (Ansatz(3, 2, ("ry", "rz"), "cnot"), "cx"),
        (Ansatz(4, 1, ("rx",), "cz"), "cz"),
        (Ansatz(3, 2, ("ry",), "none"), None),
    ],
)
def test_to_qasm(ansatz, two_qubit):
    params = random_params(2, ansatz)
    text = to_qasm(params, ansatz)
    assert text.startswith("OPENQASM 2.0")
    lines = text.splitlines()
    k, layers = ansatz.num_qubits, ansatz.layers

    def count(name):
        return sum(bool(re.match(rf"{name}[ (]", line)) for line in lines)

    assert count("h") == k
    for name in ("cx", "cz"):
        assert count(name) == (layers * (k - 1) if name == two_qubit else 0)
    for name in ("rx", "ry", "rz"):
        assert count(name) == layers * k * ansatz.rotations.count(name)
    sum_rot = sum(count(name) for name in ("rx", "ry", "rz"))
    assert sum_rot == hea_resources(ansatz)["parameters"]
    # The ansatz has no measurements; readout is the probability vector.
    assert count("measure") == 0
    # Angles come back in params[layer, r, k] order, exactly (repr of the float32).
    angles = [float(a) for a in re.findall(r"^r[xyz]\(([^)]*)\)", text, re.M)]
    np.testing.assert_array_equal(np.float32(angles), np.asarray(params).reshape(-1))
    qubits = [int(q) for q in re.findall(r"^r[xyz]\([^)]*\) q\[(\d+)\];", text, re.M)]
    assert qubits == list(range(k)) * (layers * len(ansatz.rotations))
    np.testing.assert_allclose(
        _state_from_qasm(text, k), hea_state(params, ansatz), atol=2e-6
    )


# --- Resources. --------------------------------------------------------------------


def _asap_depth(circuit, num_qubits):
    """Critical path of the gate list, every gate counting 1."""
    ready = [0] * num_qubits
    for op in circuit.to_qir():
        t = max(ready[q] for q in op["index"]) + 1
        for q in op["index"]:
            ready[q] = t
    return max(ready)


@pytest.mark.parametrize("entangler", ["cnot", "cz", "none"])
@pytest.mark.parametrize("num_qubits", [1, 2, 3, 5])
def test_resources_counts_and_depth(num_qubits, entangler):
    for layers, rotations in [(0, ("ry",)), (1, ("ry", "rz")), (3, ("rx",)), (2, ())]:
        ansatz = Ansatz(num_qubits, layers, rotations, entangler)
        res = hea_resources(ansatz)
        r = len(rotations)
        two = layers * (num_qubits - 1) if entangler != "none" else 0
        assert res == {
            "qubits": num_qubits,
            "depth": res["depth"],
            "two_qubit_gates": two,
            "single_qubit_gates": num_qubits + layers * r * num_qubits,
            "parameters": layers * r * num_qubits,
        }
        circuit = hea_circuit(np.zeros(hea_param_shape(ansatz), np.float32), ansatz)
        assert res["depth"] == _asap_depth(circuit, num_qubits), ansatz
        ops = circuit.to_qir()
        assert sum(len(op["index"]) == 2 for op in ops) == two
        assert sum(len(op["index"]) == 1 for op in ops) == res["single_qubit_gates"]


def test_resources_depth_formula_examples():
    # K >= 3: K + R + (L - 1)(R + 2); K == 2: 1 + L(R + 1); none: 1 + L R.
    assert hea_resources(Ansatz(8, 4))["depth"] == 8 + 2 + 3 * 4
    assert hea_resources(Ansatz(2, 3))["depth"] == 1 + 3 * 3
    assert hea_resources(Ansatz(8, 4, entangler="none"))["depth"] == 1 + 4 * 2


# --- Errors. -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ansatz, field",
    [
        (Ansatz(3, 1, ("ry", "rw")), "rotations"),
        (Ansatz(3, 1, ["ry"]), "rotations"),
        (Ansatz(3, 1, entangler="iswap"), "entangler"),
        (Ansatz(0, 1), "num_qubits"),
        (Ansatz(21, 1), "num_qubits"),
        (Ansatz(2.0, 1), "num_qubits"),
        (Ansatz(3, -1), "layers"),
    ],
)
def test_bad_ansatz_raises_value_error_naming_field(ansatz, field):
    for fn in (
        hea_param_shape,
        hea_resources,
        lambda a: init_hea_params(jax.random.key(0), a),
        lambda a: hea_state(jnp.zeros((1, 1, 3), jnp.float32), a),
    ):
        with pytest.raises(ValueError, match=field):
            fn(ansatz)


def test_bad_params_raise_value_error():
    ansatz = Ansatz(3, 2)
    with pytest.raises(ValueError, match="params"):
        hea_state(jnp.zeros((2, 2, 4), jnp.float32), ansatz)
    with pytest.raises(ValueError, match="params"):  # a batch instead of one group
        hea_probs(jnp.zeros((5, 2, 2, 3), jnp.float32), ansatz)
    with pytest.raises(ValueError, match="params"):
        jax.jit(lambda p: hea_probs(p, ansatz))(jnp.zeros((2, 3), jnp.float32))
    with pytest.raises(ValueError, match="params"):
        hea_state(jnp.zeros((2, 2, 3), jnp.complex64), ansatz)


# --- TensorCircuit: one owner, an explicit backend, no global side effect. ---------


def test_only_circuits_imports_tensorcircuit():
    package = pathlib.Path(circuits.__file__).parent
    owners = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import|from) tensorcircuit", path.read_text(), re.M)
    )
    assert owners == ["circuits.py"]


def test_importing_qselax_keeps_the_global_backend():
    code = (
        "import tensorcircuit as tc\n"
        "before = (tc.backend.name, tc.dtypestr)\n"
        "import qselax, qselax.solvers, qselax.circuits\n"
        "print(before == (tc.backend.name, tc.dtypestr), tc.backend.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "numpy"], out.stdout + out.stderr


def test_circuits_run_on_jax_and_restore_the_backend():
    before = (tc.backend.name, tc.dtypestr)
    ansatz = Ansatz(3, 2)
    psi = hea_state(random_params(0, ansatz), ansatz)
    assert isinstance(psi, jax.Array) and psi.dtype == jnp.complex64
    circuit = build_circuit(2, [Gate("h", (0,)), Gate("cnot", (0, 1))])
    np.testing.assert_allclose(
        np.abs(np.asarray(circuit.state())) ** 2, [0.5, 0, 0, 0.5], atol=1e-6
    )
    assert (tc.backend.name, tc.dtypestr) == before
    with pytest.raises(ValueError):  # an error inside the block restores it too
        with circuits.jax_backend():
            raise ValueError("inside")
    assert (tc.backend.name, tc.dtypestr) == before


def test_apply_gates_matches_numpy():
    state = jnp.asarray(np.eye(4, dtype=np.complex64)[1])  # |01>
    out = apply_gates(state, [Gate("x", (0,)), Gate("rz", (1,), theta=0.4)], 2)
    expected = np.kron(np.eye(2), ROT["rz"](0.4)) @ np.eye(4)[3]
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)


# --- The real-amplitude path. ------------------------------------------------------

REAL_CASES = [
    Ansatz(1, 2, ("ry",), "cnot"),
    Ansatz(3, 2, ("ry",), "cz"),
    Ansatz(4, 1, ("ry", "ry"), "none"),
    Ansatz(5, 3, ("ry",), "cnot"),
    Ansatz(11, 1, ("ry",), "cnot"),  # fused gates over 4 qubits
]


class RealPathTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*REAL_CASES)
    def test_real_ansatz_probs_equal_the_complex_state(self, *fields):
        ansatz = Ansatz(*fields)
        assert is_real(ansatz)
        params = random_params(3, ansatz)
        probs = self.variant(lambda p: hea_probs(p, ansatz))(params)
        chex.assert_shape(probs, (2**ansatz.num_qubits,))
        assert probs.dtype == jnp.float32
        psi = hea_circuit(params, ansatz).state()  # gate by gate, complex64
        np.testing.assert_allclose(probs, np.abs(np.asarray(psi)) ** 2, atol=2e-6)
        np.testing.assert_allclose(float(jnp.sum(probs)), 1.0, atol=1e-5)


def test_noisy_real_ansatz_takes_the_complex_path():
    ansatz = Ansatz(3, 2, ("ry",), "cnot")
    params = random_params(8, ansatz)
    key = jax.random.key(9)
    noisy = hea_probs(params, ansatz, noise_key=key, noise_rate=0.3)
    state = hea_state(params, ansatz, noise_key=key, noise_rate=0.3)
    np.testing.assert_allclose(noisy, np.abs(np.asarray(state)) ** 2, atol=2e-6)


# --- The gate-by-gate elementwise path (hea_probs' noiseless hot path). ----------

GATEWISE_CASES = [
    (k, entangler, rotations, layers)
    for k, entangler, rotations, layers in KRON_CASES
    if layers > 0
] + [
    (5, "cnot", ("ry", "rz"), 3),
    (6, "cz", ("rx", "ry"), 2),
    (7, "cnot", ("ry",), 2),
]


class GatewiseTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*GATEWISE_CASES[::3])
    def test_gatewise_state_matches_numpy(
        self, num_qubits, entangler, rotations, layers
    ):
        from qselax.circuits import _gatewise_state

        ansatz = Ansatz(num_qubits, layers, rotations, entangler)
        params = random_params(num_qubits + 11, ansatz)
        expected = numpy_hea_state(params, ansatz)
        re, im = self.variant(lambda p: _gatewise_state(p, ansatz))(params)
        chex.assert_shape(re, (2**num_qubits,))
        assert re.dtype == jnp.float32
        assert (im is None) == is_real(ansatz)
        psi = np.asarray(re) + 1j * (0.0 if im is None else np.asarray(im))
        np.testing.assert_allclose(psi, expected, atol=3e-6)


ADJOINT_CASES = [
    (1, "cnot", ("ry",), 2),
    (2, "cz", ("rx",), 1),
    (3, "cnot", ("ry", "rz"), 3),
    (3, "none", ("rz", "rx", "ry"), 2),
    (4, "cz", ("ry",), 0),
    (4, "cnot", ("rx", "rz", "ry"), 2),
]


class AdjointGradientTest(chex.TestCase):
    """The gate path's adjoint VJP is JAX's reverse mode through the same gates."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*ADJOINT_CASES)
    def test_vjp_matches_reverse_mode_for_any_cotangent(
        self, num_qubits, entangler, rotations, layers
    ):
        from qselax.circuits import _gatewise_forward, _gatewise_state

        ansatz = Ansatz(num_qubits, layers, rotations, entangler)
        params = random_params(num_qubits + 5, ansatz)
        # Cotangents on both parts, not only those of |amp|^2: the VJP of the state.
        keys = jax.random.split(jax.random.key(num_qubits), 2)
        shape = (2**num_qubits,)
        cot = tuple(
            None if part is None else jax.random.normal(key, shape)
            for key, part in zip(keys, _gatewise_forward(params, ansatz), strict=True)
        )

        def pullback(fn):
            return lambda p: jax.vjp(lambda q: fn(q, ansatz), p)[1](cot)[0]

        got = self.variant(pullback(_gatewise_state))(params)
        want = jax.jit(pullback(_gatewise_forward))(params)
        chex.assert_shape(got, params.shape)
        chex.assert_trees_all_close(got, want, atol=2e-5)

    @chex.variants(with_jit=True)  # op by op under vmap: 13 s of dispatch, no news
    def test_vmapped_value_and_grad_of_probs(self):
        from qselax.circuits import _gatewise_forward

        ansatz = Ansatz(6, 2, ("ry", "rz"))  # complex K = 6: on the gate path
        params = 0.7 * jax.random.normal(
            jax.random.key(2), (4, *hea_param_shape(ansatz))
        )
        cost = jax.random.normal(jax.random.key(3), (4, 2**6))

        def energy(p, c):
            return jnp.sum(hea_probs(p, ansatz) * c)

        def reference(p, c):
            re, im = _gatewise_forward(p, ansatz)
            return jnp.sum((re**2 + im**2) * c)

        v, g = self.variant(jax.vmap(jax.value_and_grad(energy)))(params, cost)
        v_ref, g_ref = jax.jit(jax.vmap(jax.value_and_grad(reference)))(params, cost)
        chex.assert_shape((v, g), ((4,), params.shape))
        chex.assert_trees_all_close((v, g), (v_ref, g_ref), atol=2e-5)


@pytest.mark.parametrize(
    "ansatz",
    [Ansatz(4, 2, ("ry", "rz")), Ansatz(5, 2, ("ry",)), Ansatz(6, 2, ("ry", "rz"))],
)
def test_hea_probs_gradient_matches_the_tensorcircuit_state(ansatz):
    """hea_probs' noiseless path and TensorCircuit's state agree in value and grad."""
    params = random_params(21, ansatz)
    cost = jax.random.normal(jax.random.key(3), (2**ansatz.num_qubits,))

    def fast(p):
        return jnp.sum(hea_probs(p, ansatz) * cost)

    def reference(p):
        psi = hea_state(p, ansatz)
        return jnp.sum((jnp.real(psi) ** 2 + jnp.imag(psi) ** 2) * cost)

    v, g = jax.jit(jax.value_and_grad(fast))(params)
    v_ref, g_ref = jax.jit(jax.value_and_grad(reference))(params)
    np.testing.assert_allclose(v, v_ref, atol=1e-5)
    np.testing.assert_allclose(g, g_ref, atol=1e-5)
