"""Tests for solver specs (``vqe(layers=3)`` without K) and the solvers' module lines.

Like optax's ``alias_test.py``, the spec contract runs over every registered solver.
"""

import ast
import dataclasses
import functools
import importlib
import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qselax.solvers
from qselax.solvers import (
    SOLVERS,
    STANDARD_RESOURCES,
    SolverSpec,
    make_solver,
    solver_spec,
    vqe,
)

K = 3
# Small budgets so that one solve per solver stays quick.
QUICK = {"vqe": {"steps": 3}, "qaoa": {"steps": 3}, "anneal": {"steps": 5}}


def _solve(solver):
    land = jax.random.normal(jax.random.key(0), (4, 2**K))
    return solver.solve(jax.random.key(1), land, jnp.zeros(4, jnp.int32))


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_factory_without_k_is_a_spec(name):
    factory = SOLVERS[name]
    options = QUICK.get(name, {})
    spec = factory(**options)
    assert isinstance(spec, SolverSpec)
    assert spec.name == name and spec.kwargs == options
    assert spec == solver_spec(name, **options)
    assert hash(spec) == hash(solver_spec(name, **options))
    assert str(spec) == spec.describe()
    assert str(spec).startswith(f"{name}(")
    assert inspect.signature(factory).parameters["k"].default is None


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_spec_builds_the_same_solver(name):
    options = QUICK.get(name, {})
    built = SOLVERS[name](**options).build(K)
    direct = make_solver(name, K, **options)
    assert built.name == SOLVERS[name](K, **options).name == name
    assert built.resources == direct.resources
    assert set(STANDARD_RESOURCES) <= set(built.resources)
    a, b = _solve(built), _solve(direct)
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_unknown_option_is_refused_when_the_spec_is_made(name):
    with pytest.raises(ValueError, match=rf"solver '{name}'.*'no_such_option'"):
        SOLVERS[name](no_such_option=1)
    with pytest.raises(ValueError, match="no_such_option"):
        solver_spec(name, no_such_option=1)


def test_values_are_checked_at_build_time():
    spec = vqe(readout=5)  # depends on K: 5 <= 2^K/16 needs K >= 7
    with pytest.raises(ValueError, match="readout"):
        spec.build(6)
    assert spec.build(7).resources["readout"] == 5
    with pytest.raises(ValueError, match="k"):
        qselax.solvers.sa().build(0)


def test_describe_and_options_order():
    spec = vqe(steps=100, layers=3)
    assert str(spec) == "vqe(layers=3, steps=100)"
    assert spec == vqe(layers=3, steps=100)
    assert spec.kwargs == {"layers": 3, "steps": 100}
    assert str(qselax.solvers.exhaustive()) == "exhaustive()"
    assert repr(spec) == (
        "SolverSpec(name='vqe', options=(('layers', 3), ('steps', 100)))"
    )


def test_lists_from_json_become_tuples():
    options = json.loads('{"rotations": ["ry", "rz"], "layers": 2}')
    spec = solver_spec("vqe", **options)
    assert spec.kwargs["rotations"] == ("ry", "rz")
    assert spec == vqe(layers=2, rotations=("ry", "rz"))
    assert {spec: 1}[vqe(layers=2, rotations=["ry", "rz"])] == 1
    assert spec.build(4).resources["parameters"] == 2 * 2 * 4


def test_spec_is_frozen_and_a_static_jit_argument():
    spec = vqe(layers=1, steps=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "qaoa"

    traces = []

    @functools.partial(jax.jit, static_argnums=1)
    def scaled(x, spec):
        traces.append(spec)
        return x * spec.build(4).resources["parameters"]

    assert int(scaled(jnp.int32(1), spec)) == 8
    assert int(scaled(jnp.int32(2), vqe(steps=2, layers=1))) == 16  # an equal spec
    assert len(traces) == 1


def test_solver_spec_and_make_solver_accept_specs():
    spec = vqe(layers=1)
    assert solver_spec(spec) is not None and solver_spec(spec) == spec
    merged = solver_spec(spec, steps=7)
    assert merged == vqe(layers=1, steps=7)
    solver = make_solver(spec, 4, steps=7)
    assert solver.resources["optimizer_steps"] == 7
    assert solver.resources["parameters"] == 8
    with pytest.raises(ValueError, match="solver must be one of"):
        solver_spec("qaoa9")
    with pytest.raises(ValueError, match="solver must be one of"):
        make_solver(SolverSpec("qaoa9"), 4)
    with pytest.raises(ValueError, match="needs k"):
        make_solver("vqe", None)


def test_bad_spec_contents_raise():
    with pytest.raises(ValueError, match="repeated"):
        SolverSpec("vqe", (("steps", 1), ("steps", 2)))
    with pytest.raises(ValueError, match="hashable"):
        SolverSpec("vqe", (("steps", {"a": 1}),))
    with pytest.raises(ValueError, match="pairs"):
        SolverSpec("vqe", (1, 2))
    with pytest.raises(ValueError, match="name"):
        SolverSpec(3)


# --- The module line: each solver module is its own, pieces are shared. ------------

PACKAGE = pathlib.Path(qselax.solvers.__file__).parent
SOLVER_MODULES = {"anneal", "classical", "exhaustive", "grover", "qaoa", "vqe"}
OWN_MODULES = sorted(PACKAGE.glob("*.py")) + [
    PACKAGE.parent / name
    for name in ("circuits.py", "entanglement.py", "hamiltonians.py")
]


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]


@pytest.mark.parametrize(
    "path", [PACKAGE / f"{m}.py" for m in sorted(SOLVER_MODULES)], ids=lambda p: p.stem
)
def test_no_solver_module_imports_another(path):
    """Solver modules share pieces (base, variational, measure, qaoa_layers) only;
    the registry (``__init__``) is the one place that imports them all."""
    for module, _ in _imports(path):
        if module.startswith("qselax.solvers."):
            assert module.split(".")[-1] not in SOLVER_MODULES, module


@pytest.mark.parametrize("path", OWN_MODULES, ids=lambda p: p.stem)
def test_modules_have_all_and_import_no_private_names(path):
    for module, names in _imports(path):
        if module.startswith("qselax"):
            assert not [n for n in names if n.startswith("_")], (module, names)
    source = path.read_text()
    # No module reaches into another's private names (module._name).
    tree = ast.parse(source)
    imported_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qselax")
        for alias in node.names
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
        ):
            raise AssertionError(f"{path.name}: {node.value.id}.{node.attr}")
    name = "qselax." + ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    module = importlib.import_module(name.removesuffix(".__init__"))
    assert hasattr(module, "__all__"), name
    for public in module.__all__:
        assert hasattr(module, public), (name, public)
