"""Tests for the QAOA and annealing solvers: NumPy oracles, exactness of the Ising
gate form and the bit-flip mixer, autodiff, the adiabatic limit, optimum rates on
structured landscapes, no retrace, resources and errors."""

import functools
import importlib

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from absl.testing import parameterized

from qselax.hamiltonians import walsh_coefficients
from qselax.solvers.anneal import anneal, anneal_probs, schedule_values
from qselax.solvers.base import normalize_landscapes
from qselax.solvers.qaoa import (
    qaoa,
    qaoa_circuit,
    qaoa_probs,
    qaoa_qasm,
    qaoa_resources,
    qaoa_state,
    ramp_angles,
)

# The package re-exports the factories under the module names, so fetch the modules
# (for the private helpers tested here: mixers, the gate program, schedule knots).
anneal_module = importlib.import_module("qselax.solvers.anneal")
layers_module = importlib.import_module("qselax.solvers.qaoa_layers")

# --- Hand-written NumPy reference, qubit 0 = most significant bit. ----------------

I2 = np.eye(2)
X = np.array([[0.0, 1.0], [1.0, 0.0]])
Z = np.diag([1.0, -1.0])
H = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)


def on(ops: dict, k: int) -> np.ndarray:
    """Kronecker product with ``ops[q]`` on qubit q and identity elsewhere."""
    out = np.eye(1)
    for q in range(k):
        out = np.kron(out, ops.get(q, I2))
    return out


def x_mixer_hamiltonian(k):
    return sum(on({v: X}, k) for v in range(k))


def bitflip_terms(k):
    """``2^{-d(v)} X_v Π_{w∈N(v)} (I + Z_w)`` on the path 0-1-...-(K-1), b = 0."""
    terms = {}
    for v in range(k):
        neighbours = [w for w in (v - 1, v + 1) if 0 <= w < k]
        term = on({v: X}, k)
        for w in neighbours:
            term = term @ (np.eye(2**k) + on({w: Z}, k))
        terms[v] = term / 2 ** len(neighbours)
    return terms


def numpy_bitflip_unitary(k, beta):
    """The documented Trotter order: even vertices first, then odd ones."""
    terms = bitflip_terms(k)
    u = np.eye(2**k, dtype=complex)
    for v in list(range(0, k, 2)) + list(range(1, k, 2)):
        u = scipy.linalg.expm(-1j * beta * terms[v]) @ u
    return u


def numpy_qaoa_state(gammas, betas, landscape, mixer="x"):
    landscape = np.asarray(landscape, np.float64)
    k = int(np.log2(landscape.size))
    psi = np.full(2**k, 2 ** (-k / 2), dtype=complex)
    for gamma, beta in zip(gammas, betas, strict=True):
        psi = np.exp(-1j * gamma * landscape) * psi
        if mixer == "x":
            psi = scipy.linalg.expm(-1j * beta * x_mixer_hamiltonian(k)) @ psi
        else:
            psi = numpy_bitflip_unitary(k, beta) @ psi
    return psi


def numpy_anneal_state(values, landscape, time):
    landscape = np.asarray(landscape, np.float64)
    k = int(np.log2(landscape.size))
    h0 = -x_mixer_hamiltonian(k)
    dt = time / len(values)
    psi = np.full(2**k, 2 ** (-k / 2), dtype=complex)
    for s in values:
        psi = np.exp(-1j * dt * s * landscape) * psi
        psi = scipy.linalg.expm(-1j * dt * (1 - s) * h0) @ psi
    return psi


def structured_landscapes(rng, groups, k, weight=0.3):
    """``C(x) = Σ a_k x_k + weight Σ_{k<l} b_kl x_k x_l``, a and b standard normal."""
    bits = ((np.arange(2**k)[:, None] >> (k - 1 - np.arange(k))) & 1).astype(float)
    a = rng.normal(size=(groups, k))
    b = np.triu(rng.normal(size=(groups, k, k)), 1)
    quad = np.einsum("sk,gkl,sl->gs", bits, b, bits)
    return (a @ bits.T + weight * quad).astype(np.float32)


# --- Module-level jitted functions (compiled once per shape for the whole file). --

state_jit = jax.jit(qaoa_state, static_argnames=("mixer", "phase"))
probs_jit = jax.jit(qaoa_probs, static_argnames=("mixer", "phase"))
anneal_jit = jax.jit(anneal_probs, static_argnames=("time",))
walsh_jit = jax.jit(walsh_coefficients)


def solve_jit(solver, landscapes):
    """One jitted solve (the way sweeps call solvers), key 0, current all zeros."""
    current = jnp.zeros(landscapes.shape[0], jnp.int32)
    return jax.jit(solver.solve)(jax.random.key(0), landscapes, current)


@functools.partial(jax.jit, static_argnums=(0, 2))
def mixer_matrix(k, beta, mixer):
    """The simulated mixer's unitary, column by column from basis states."""
    fn = layers_module._MIXER_FNS[mixer]
    eye = jnp.eye(2**k, dtype=jnp.complex64)
    return jax.vmap(fn, in_axes=(0, None))(eye, jnp.float32(beta)).T


# --- Physics oracles. --------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("mixer", ["x", "bitflip"])
@pytest.mark.parametrize("phase", ["diagonal", "ising"])
def test_qaoa_state_matches_numpy(k, mixer, phase):
    rng = np.random.default_rng(k)
    landscape = rng.normal(size=2**k).astype(np.float32)
    gammas, betas = rng.normal(size=(2, 3)).astype(np.float32)
    psi = state_jit(gammas, betas, landscape, mixer=mixer, phase=phase)
    chex.assert_shape(psi, (2**k,))
    assert psi.dtype == jnp.complex64
    expected = numpy_qaoa_state(gammas, betas, landscape, mixer)
    np.testing.assert_allclose(psi, expected, atol=2e-6)


def test_qaoa_hand_computed_one_qubit_states():
    # exp(-i pi/4 X)|+> = e^{-i pi/4}|+>: the mixer alone only adds a global phase.
    psi = state_jit(jnp.zeros(1), jnp.full(1, np.pi / 4), jnp.array([0.0, 0.0]))
    np.testing.assert_allclose(psi, np.exp(-1j * np.pi / 4) / np.sqrt(2), atol=1e-6)
    # Phase pi/2 on |1> makes |+> into |-i>; RX(pi/2)|-i> = -i|1>, RX(-pi/2)|-i> = |0>:
    # with gamma > 0 a positive beta moves towards the maximum of C, a negative one
    # towards the minimum (hence the signs of the ramp).
    gamma, landscape = jnp.full(1, np.pi / 2), jnp.array([0.0, 1.0])
    psi = state_jit(gamma, jnp.full(1, np.pi / 4), landscape)
    np.testing.assert_allclose(psi, [0.0, -1j], atol=1e-6)
    psi = state_jit(gamma, jnp.full(1, -np.pi / 4), landscape)
    np.testing.assert_allclose(psi, [1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_anneal_probs_match_numpy(k):
    rng = np.random.default_rng(10 + k)
    landscape = rng.normal(size=2**k).astype(np.float32)
    values = schedule_values("quadratic", 7)
    probs = anneal_jit(values, landscape, time=3.0)
    expected = np.abs(numpy_anneal_state(values, landscape, 3.0)) ** 2
    np.testing.assert_allclose(probs, expected, atol=2e-6)


def test_anneal_is_qaoa_with_trotter_angles():
    landscape = jnp.asarray(np.random.default_rng(0).normal(size=8), jnp.float32)
    values = schedule_values("linear", 5)
    dt = 2.0 / 5
    expected = probs_jit(dt * values, -dt * (1 - values), landscape)
    np.testing.assert_allclose(anneal_jit(values, landscape, time=2.0), expected)


class ProbsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("x", "bitflip")
    def test_qaoa_probs_are_a_distribution(self, mixer):
        rng = np.random.default_rng(3)
        landscape = jnp.asarray(rng.normal(size=8), jnp.float32)
        angles = jnp.asarray(rng.normal(size=(2, 2)), jnp.float32)
        fn = self.variant(functools.partial(qaoa_probs, mixer=mixer))
        probs = fn(angles[0], angles[1], landscape)
        chex.assert_shape(probs, (8,))
        chex.assert_tree_all_finite(probs)
        assert probs.dtype == jnp.float32
        assert float(jnp.min(probs)) >= 0.0
        np.testing.assert_allclose(float(jnp.sum(probs)), 1.0, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_anneal_probs_are_a_distribution(self):
        landscape = jnp.asarray(np.random.default_rng(4).normal(size=8), jnp.float32)
        values = jnp.asarray(schedule_values("linear", 6))
        probs = self.variant(functools.partial(anneal_probs, time=4.0))(
            values, landscape
        )
        chex.assert_shape(probs, (8,))
        assert float(jnp.min(probs)) >= 0.0
        np.testing.assert_allclose(float(jnp.sum(probs)), 1.0, atol=1e-5)


# --- The Ising (Walsh) gate form of the phase. -------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_walsh_coefficients_rebuild_the_landscape(k):
    landscape = np.random.default_rng(k).normal(size=2**k).astype(np.float32)
    coeffs = np.asarray(walsh_jit(jnp.asarray(landscape)))
    s = np.arange(2**k)
    signs = (-1.0) ** np.array([[bin(t & x).count("1") for t in s] for x in s])
    np.testing.assert_allclose(signs @ coeffs, landscape, atol=1e-5)
    # Index T = subset of qubits, MSB convention: C = x_0 (qubit 0 the top bit) is
    # 1/2 - Z_0 / 2, so c_T sits at T = 2^(K-1).
    bits0 = (s >> (k - 1)) & 1
    coeffs = np.asarray(walsh_jit(jnp.asarray(bits0, jnp.float32)))
    expected = np.zeros(2**k)
    expected[0], expected[2 ** (k - 1)] = 0.5, -0.5
    np.testing.assert_allclose(coeffs, expected, atol=1e-7)


@pytest.mark.parametrize(
    "k, mixer", [(1, "x"), (2, "x"), (3, "x"), (4, "x"), (3, "bitflip")]
)
def test_ising_phase_equals_diagonal_phase(k, mixer):
    rng = np.random.default_rng(20 + k)
    landscape = rng.normal(size=2**k).astype(np.float32) + 0.5  # nonzero mean: c_∅
    gammas, betas = rng.normal(size=(2, 2)).astype(np.float32)
    ising = state_jit(gammas, betas, landscape, mixer=mixer, phase="ising")
    diagonal = state_jit(gammas, betas, landscape, mixer=mixer, phase="diagonal")
    np.testing.assert_allclose(ising, diagonal, atol=2e-6)  # states, global phase too


# --- The bit-flip mixer. ------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_bitflip_mixer_matrix_matches_numpy(k):
    beta = 0.37
    np.testing.assert_allclose(
        mixer_matrix(k, beta, "bitflip"), numpy_bitflip_unitary(k, beta), atol=2e-6
    )


def test_bitflip_terms_commute_only_beyond_distance_one():
    """Why the mixer is Trotterised even/odd: adjacent terms do not commute."""
    k = 4
    terms = bitflip_terms(k)
    total = sum(terms.values())
    np.testing.assert_allclose(total, total.T)  # Hermitian (real symmetric)
    for u in range(k):
        for v in range(u + 1, k):
            commutator = terms[u] @ terms[v] - terms[v] @ terms[u]
            assert (np.abs(commutator).max() > 0.1) == (v - u == 1), (u, v)
    # ... so the product is an approximation of exp(-i β H_M), not equal to it.
    exact = scipy.linalg.expm(-1j * 0.37 * total)
    assert np.abs(numpy_bitflip_unitary(k, 0.37) - exact).max() > 1e-3


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("mixer", ["x", "bitflip"])
def test_counted_mixer_gates_equal_the_simulated_mixer(k, mixer):
    """The gate form the resources count is the unitary that is simulated."""
    beta = 0.61
    gates = {
        "h": lambda w: H,
        "rx": lambda w: scipy.linalg.expm(-0.5j * w * beta * X),
        "rz": lambda w: scipy.linalg.expm(-0.5j * w * beta * Z),
    }
    u = np.eye(2**k, dtype=complex)
    p0, p1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    for name, a, b in layers_module._mixer_program(k, mixer):
        if name == "cnot":
            u = (on({a: p0}, k) + on({a: p1, b: X}, k)) @ u
        else:
            u = on({a: gates[name](b)}, k) @ u
    np.testing.assert_allclose(mixer_matrix(k, beta, mixer), u, atol=2e-6)


# --- Gradients. ---------------------------------------------------------------------


@pytest.mark.parametrize("mixer", ["x", "bitflip"])
def test_autodiff_gradient_matches_finite_differences(mixer):
    rng = np.random.default_rng(5)
    landscape = rng.normal(size=8).astype(np.float32)
    angles = rng.normal(size=(2, 2)).astype(np.float32)

    def energy(a):
        return jnp.sum(probs_jit(a[0], a[1], landscape, mixer=mixer) * landscape)

    def numpy_energy(a):
        psi = numpy_qaoa_state(a[0], a[1], landscape, mixer)
        return float(np.sum(np.abs(psi) ** 2 * landscape))

    grad = np.asarray(jax.jit(jax.grad(energy))(jnp.asarray(angles)))
    eps = 1e-5
    expected = np.zeros((2, 2))
    for idx in np.ndindex(2, 2):
        step = np.zeros((2, 2))
        step[idx] = eps
        a = angles.astype(np.float64)
        expected[idx] = (numpy_energy(a + step) - numpy_energy(a - step)) / (2 * eps)
    np.testing.assert_allclose(grad, expected, atol=2e-5)


# --- Schedules. ---------------------------------------------------------------------


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(st.lists(st.floats(-20, 20, width=32), min_size=5, max_size=5))
def test_learned_schedule_knots_are_monotone_from_0_to_1(params):
    knots = np.asarray(anneal_module._knots(jnp.asarray(params, jnp.float32)))
    assert knots[0] == 0.0
    np.testing.assert_allclose(knots[-1], 1.0, rtol=1e-6)
    assert np.all(np.diff(knots) >= 0)


@pytest.mark.parametrize("schedule", ["linear", "quadratic"])
def test_learned_schedule_starts_at_the_named_schedule(schedule):
    params = jnp.asarray(anneal_module._initial_params(schedule, 8))
    values = anneal_module._interpolate(anneal_module._knots(params), 16)
    expected = schedule_values(schedule, 16)
    # quadratic: piecewise-linear interpolation of u^2 is off by at most 1/(4 M^2).
    np.testing.assert_allclose(values, expected, atol=1 / (4 * 8**2) + 1e-6)


def test_slow_anneal_reaches_the_ground_state():
    """Adiabatic theorem: a long, finely Trotterised anneal ends in the ground state."""
    k = 4
    s = np.arange(2**k)
    # Hamming distance to 1011 has a unique minimum; a small tilt splits the rest.
    landscape = np.array([bin(x ^ 0b1011).count("1") for x in s]) + 0.05 * s / 16
    landscape = np.asarray(normalize_landscapes(jnp.asarray(landscape[None])))[0]
    h0 = -x_mixer_hamiltonian(k)
    gaps = [
        np.diff(np.linalg.eigvalsh((1 - u) * h0 + u * np.diag(landscape))[:2])[0]
        for u in np.linspace(0, 1, 101)
    ]
    assert min(gaps) > 0.4  # a gapped path
    result = solve_jit(anneal(k, time=30.0, steps=300), landscape[None])
    assert float(result.probs[0, 0b1011]) > 0.9
    assert int(result.index[0]) == int(result.top1[0]) == 0b1011


# --- Solvers against the exhaustive optimum; readout; shared angles. ---------------

STRUCTURED = structured_landscapes(np.random.default_rng(0), 64, 8)


@pytest.mark.parametrize("factory", [qaoa, anneal], ids=lambda f: f.__name__)
def test_default_budgets_find_the_optimum_of_structured_landscapes(factory):
    solver = factory(8)
    result = solve_jit(solver, STRUCTURED)
    chex.assert_shape([result.index, result.top1, result.lookups], (64,))
    chex.assert_shape(result.probs, (64, 256))
    optimum = np.argmin(STRUCTURED, axis=1)
    assert np.mean(np.asarray(result.index) == optimum) >= 0.9
    # Readout: the best of the `readout` most probable bitstrings; top1 the argmax.
    probs = np.asarray(result.probs)
    np.testing.assert_array_equal(result.top1, np.argmax(probs, axis=1))
    top = np.argsort(-probs, axis=1)[:, : solver.resources["readout"]]
    best = np.take_along_axis(STRUCTURED, top, 1).min(axis=1)
    np.testing.assert_allclose(
        np.take_along_axis(STRUCTURED, result.index[:, None], 1)[:, 0], best
    )
    np.testing.assert_array_equal(result.lookups, solver.resources["readout"])


def test_shared_angles_equal_per_group_angles_for_one_group():
    land = STRUCTURED[:1, :16]
    own = solve_jit(qaoa(4, steps=20), land)
    shared = solve_jit(qaoa(4, steps=20, shared=True), land)
    np.testing.assert_allclose(own.probs, shared.probs, atol=1e-5)


def test_optimisation_and_learned_schedule_lower_the_energy():
    land = jnp.asarray(STRUCTURED[:4, :16])
    normed = normalize_landscapes(land)

    def energy(solver):
        return np.asarray(jnp.sum(solve_jit(solver, land).probs * normed, axis=1))

    assert np.all(energy(qaoa(4, steps=30)) < energy(qaoa(4, steps=0)) + 1e-6)
    learned = energy(anneal(4, time=3.0, steps=10, learn_schedule=True))
    assert np.all(learned < energy(anneal(4, time=3.0, steps=10)) + 1e-6)


def test_second_call_does_not_retrace():
    solver = qaoa(3, layers=2, steps=3)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def solve(key, landscapes, current):
        return solver.solve(key, landscapes, current)

    land = STRUCTURED[:5, :8]
    cur = jnp.zeros(5, jnp.int32)
    solve(jax.random.key(0), land, cur)
    solve(jax.random.key(1), land + 1.0, cur + 1)


# --- Resources and errors. ----------------------------------------------------------


def test_resources():
    r = qaoa(8, layers=3).resources
    assert r["qubits"] == 8 and r["layers"] == 3 and r["parameters"] == 6
    assert r["two_qubit_gates"] == 0  # diagonal phase, X mixer
    assert r["ising_two_qubit_gates"] == 3 * (2**8 - 2)  # Gray-code phase
    assert r["depth"] == 1 + 3 * 2 and r["optimizer_steps"] == 100
    assert r["readout"] == 16
    assert qaoa(4, phase="ising").resources["depth"] == r_depth_ising(4, 3)
    bitflip = qaoa_resources(5, 2, "bitflip")
    assert bitflip["two_qubit_gates"] == 2 * 4 * (5 - 1)  # 4 per inner, 2 per end
    assert bitflip["ising_two_qubit_gates"] == 2 * (4 * (5 - 1) + 2**5 - 2)
    a = anneal(6, steps=20).resources
    assert a["trotter_steps"] == 20 and a["two_qubit_gates"] == 0
    assert a["ising_two_qubit_gates"] == 20 * (2**6 - 2) and a["depth"] == 1 + 2 * 20
    assert anneal(6, learn_schedule=True).resources["parameters"] == 8


def r_depth_ising(k, layers):
    return qaoa_resources(k, layers, "x", "ising")["ising_depth"]


def test_ramp_angles_anneal_towards_the_minimum():
    gammas, betas = ramp_angles(4)
    assert np.all(np.diff(gammas) > 0) and np.all(gammas > 0)
    assert np.all(np.diff(np.abs(betas)) < 0) and np.all(betas < 0)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"layers": 0}, "layers"),
        ({"steps": -1}, "steps"),
        ({"mixer": "xy"}, "mixer"),
        ({"phase": "qubo"}, "phase"),
        ({"init": "zeros"}, "init"),
        ({"readout": 17}, "readout"),
        ({"readout": 0}, "readout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"shared": 1}, "shared"),
    ],
)
def test_qaoa_bad_options_raise(options, name):
    with pytest.raises(ValueError, match=name):
        qaoa(8, **options)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"time": 0.0}, "time"),
        ({"time": float("nan")}, "time"),
        ({"steps": 0}, "steps"),
        ({"schedule": "cubic"}, "schedule"),
        ({"schedule_steps": -1}, "schedule_steps"),
        ({"readout": 100}, "readout"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_anneal_bad_options_raise(options, name):
    with pytest.raises(ValueError, match=name):
        anneal(8, **options)


def test_qaoa_state_bad_inputs_raise():
    with pytest.raises(ValueError, match="landscape"):
        qaoa_state(jnp.zeros(1), jnp.zeros(1), jnp.zeros(6))
    with pytest.raises(ValueError, match="betas"):
        qaoa_state(jnp.zeros(2), jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="mixer"):
        qaoa_state(jnp.zeros(1), jnp.zeros(1), jnp.zeros(4), mixer="y")


@pytest.mark.parametrize("k", [1, 3])
def test_qaoa_gate_circuit_matches_the_simulated_state(k):
    land = jax.random.normal(jax.random.key(k), (2**k,))
    gammas, betas = np.array([0.4, -0.7]), np.array([0.3, 0.2])
    circuit = qaoa_circuit(gammas, betas, land)
    expected = qaoa_state(jnp.asarray(gammas), jnp.asarray(betas), land, phase="ising")
    overlap = abs(np.vdot(np.asarray(circuit.state()), np.asarray(expected)))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-5)
    text = qaoa_qasm(gammas, betas, land)
    assert text.startswith("OPENQASM 2.0;")
    assert text.count("rx(") == 2 * k
    with pytest.raises(ValueError, match="same shape"):
        qaoa_circuit(gammas, betas[:1], land)
