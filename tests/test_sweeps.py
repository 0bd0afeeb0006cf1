"""Sweeps and the selection driver: monotone costs, optimality, no recompiles."""

import dataclasses
from functools import cache

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from qselax import solvers
from qselax.bits import scatter_bits
from qselax.data import Dataset
from qselax.driver import Driver, initial_state
from qselax.groups import flatten_masks, make_grouping
from qselax.landscapes import network_landscape, network_params
from qselax.networks import apply_masked, cross_entropy, make_model, random_masks
from qselax.selection import SelectConfig, select
from qselax.solvers import make_solver
from qselax.sweeps import line_search_accept, make_sweep

K = 4


@cache
def tiny_data() -> Dataset:
    """A 3-class problem with 6 features that a masked 6-12-3 MLP can fit."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))

    def split(n):
        x = rng.normal(size=(n, 6)).astype(np.float32)
        return x, np.argmax(x @ w, axis=1).astype(np.int32)

    (xt, yt), (xv, yv), (xs, ys) = split(120), split(60), split(60)
    return Dataset(xt, yt, xv, yv, xs, ys, 3, "tiny", (6,))


def tiny_model(level="weight"):
    return make_model("mlp", (6,), 3, hidden=(12,), mask_level=level, seed=3)


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_exhaustive_sweeps_never_raise_cost(mode):
    data, model = tiny_data(), tiny_model()
    g, w = nnx.split(model)
    cfg = SelectConfig(k=K, solver="exhaustive", sweeps=3, mode=mode, block_size=4)
    sel = select(jax.random.key(0), model, data, cfg, progress=False)
    start = float(cross_entropy(apply_masked(g, w, None, data.x_train), data.y_train))
    costs = [start] + [h["cost"] for h in sel.history]  # the cost split: train
    assert all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))
    assert costs[-1] < start - 0.1
    assert sel.optimum_rate == 1.0 and sel.top1_optimum_rate == 1.0
    assert sel.lookups == 3 * sel.grouping.num_groups * 2**K
    assert sel.landscape_evals == sel.lookups


def test_sequential_block1_is_coordinate_descent():
    """With one group per block, every accepted group lands on its exact optimum
    of the landscape it saw, and the final mask is a fixed point after convergence."""
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(
        k=K, solver="exhaustive", sweeps=6, mode="sequential", block_size=1
    )
    sel = select(jax.random.key(1), model, data, cfg, progress=False)
    last = sel.groups
    assert np.all(last["accepted"] <= (last["chosen_cost"] < last["current_cost"]))
    assert sel.history[-1]["val_accuracy"] >= 0.8
    assert sel.history[-1]["accepted"] <= sel.history[0]["accepted"]


def _network(model, data):
    grouping = make_grouping("fan_in", model, K)
    land = network_landscape(model, grouping, num_samples=60)
    splits = {"val": (data.x_val, data.y_val), "train": (data.x_train, data.y_train)}
    return grouping, land, network_params(model, data.x_val, data.y_val, splits)


def test_sweep_traces_once_and_state_advances():
    data, model = tiny_data(), tiny_model()
    grouping, land, params = _network(model, data)
    solver = make_solver("exhaustive", K)
    sweep = make_sweep(land, solver, mode="sequential", block_size=3)
    step = jax.jit(chex.assert_max_traces(sweep, n=1))
    flat = flatten_masks(random_masks(jax.random.key(2), model))
    state = initial_state(jax.random.key(0), flat)
    state, info = step(params, state)
    state, info2 = step(params, state)  # second sweep: no new trace
    assert int(state.sweep) == 2
    chex.assert_shape(info.chosen, (grouping.num_groups,))
    assert float(info2.cost) <= float(info.cost) + 1e-6
    assert float(info2.metrics["val_cost"]) == float(info2.cost)
    chex.assert_tree_all_finite((info.cost, info.min_cost, info.chosen_cost))


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_sweep_landscapes_match_the_landscape(mode):
    """The first sweep's per-group minima are the landscape's minima (parallel: all
    against the starting mask; sequential with one block per segment: the first
    segment's)."""
    data, model = tiny_data(), tiny_model()
    grouping, land, params = _network(model, data)
    sweep = make_sweep(land, make_solver("exhaustive", K), mode=mode, block_size=999)
    flat = flatten_masks(random_masks(jax.random.key(3), model))
    _, info = sweep(params, initial_state(jax.random.key(0), flat))
    lands = np.asarray(land.all(params, flat))
    first = slice(None) if mode == "parallel" else slice(*grouping.layer_slices[0])
    np.testing.assert_allclose(
        info.min_cost[first], lands.min(axis=1)[first], rtol=1e-6
    )
    np.testing.assert_allclose(
        info.max_cost[first], lands.max(axis=1)[first], rtol=1e-6
    )


def test_driver_records_logs_and_compiles_once():
    data, model = tiny_data(), tiny_model()
    _, land, params = _network(model, data)
    sweep = make_sweep(land, make_solver("exhaustive", K), block_size=8)
    state = initial_state(
        jax.random.key(0), flatten_masks(random_masks(jax.random.key(4), model))
    )
    seen = []
    with Driver(3, progress=False, loggers=[seen.append]) as driver:
        first = driver.run(sweep, params, state, 2, k=K, stage="a")
        again = driver.run(sweep, params, first.state, 1, k=K, stage="b")
    assert [(r["stage"], r["sweep"]) for r in seen] == [("a", 1), ("a", 2), ("b", 1)]
    assert seen[:2] == first.history and seen[2:] == again.history
    assert again.compile_s < first.compile_s  # the compiled sweep was reused
    assert first.landscape_evals == 2 * land.num_groups * 2**K
    costs = [r["cost"] for r in seen]
    assert all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))
    for record in seen:
        assert {"val_accuracy", "train_accuracy", "optimum_rate", "seconds"} <= set(
            record
        )


def test_neuron_level_selection_runs():
    data, model = tiny_data(), tiny_model("neuron")
    cfg = SelectConfig(grouping="neuron", k=K, solver="exhaustive", sweeps=2)
    sel = select(jax.random.key(0), model, data, cfg, progress=False)
    assert [m.shape for m in sel.masks] == [(12,)]
    assert sel.optimum_rate == 1.0


def test_vqe_selection_close_to_exhaustive():
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(
        solver=solvers.vqe(steps=60, layers=2), k=K, sweeps=2, block_size=8
    )
    vqe = select(jax.random.key(0), model, data, cfg, progress=False)
    assert vqe.optimum_rate >= 0.8
    assert vqe.lookups == 2 * vqe.grouping.num_groups  # readout 2^4/16 = 1
    assert vqe.resources["qubits"] == K and vqe.resources["two_qubit_gates"] == 6
    costs = [h["cost"] for h in vqe.history]
    assert costs[1] <= costs[0] + 1e-6


def _sq(f, target):
    return jnp.sum((f - target) ** 2)


@jax.jit
def _line_search(flat, index, valid, bits, gain, target):
    return line_search_accept(flat, index, valid, bits, gain, lambda f: _sq(f, target))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(-1.0, 1.0))
def test_line_search_never_increases_cost(seed, scale):
    rng = np.random.default_rng(seed)
    n, g, k = 24, 6, 4
    flat = jnp.asarray(rng.integers(0, 2, n).astype(np.float32))
    index = jnp.asarray(rng.permutation(n)[: g * k].reshape(g, k).astype(np.int32))
    valid = jnp.asarray(rng.random((g, k)) < 0.8)
    bits = jnp.asarray(rng.integers(0, 2, (g, k)))
    gain = jnp.asarray((rng.normal(size=g) + scale).astype(np.float32))
    target = jnp.asarray(rng.normal(size=n).astype(np.float32))
    new, take, cost = _line_search(flat, index, valid, bits, gain, target)
    before = float(_sq(flat, target))
    assert float(cost) <= before + 1e-6 * max(1.0, before)
    np.testing.assert_allclose(float(_sq(new, target)), float(cost), rtol=1e-5)
    assert not np.any(np.asarray(take) & (np.asarray(gain) <= 0))
    expect = scatter_bits(flat, index, valid & take[:, None], bits)
    np.testing.assert_array_equal(np.asarray(new), np.asarray(expect))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("solver", "qaoa9", "solver"),
        ("mode", "diagonal", "mode"),
        ("cost", "mse", "cost"),
        ("evaluator", "fast", "evaluator"),
        ("init_mask", "zeros", "init_mask"),
        ("sweeps", 0, "sweeps"),
        ("cost_samples", 0, "cost_samples"),
        ("batch_samples", 0, "batch_samples"),
        ("batch_samples", 121, "exceeds the 120 samples"),
        ("cost_split", "test", "cost_split"),
        ("accept_split", "train", "accept_split"),
        ("prune_penalty", float("inf"), "prune_penalty"),
        ("prune_penalty", "0.1", "prune_penalty"),
        ("patience", 0, "patience"),
        ("block_size", 0, "block_size"),
        ("k", 0, "k must"),
        ("grouping", "rows", "grouping"),
    ],
)
def test_select_config_errors(field, value, match):
    fields = {"k": K, "solver": "exhaustive", field: value}
    with pytest.raises(ValueError, match=match):
        cfg = SelectConfig(**fields)
        select(jax.random.key(0), tiny_model(), tiny_data(), cfg, progress=False)


def test_memory_budget_error_before_work():
    cfg = SelectConfig(k=K, solver="exhaustive", memory_mb=1e-3)
    with pytest.raises(ValueError, match="MiB"):
        select(jax.random.key(0), tiny_model(), tiny_data(), cfg, progress=False)


@pytest.mark.parametrize("solver", ["qaoa", "anneal", "grover", "sa", "random"])
def test_every_registered_solver_drives_a_sweep(solver):
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(k=K, solver=solver, sweeps=2, block_size=8)
    sel = select(jax.random.key(0), model, data, cfg, progress=False)
    costs = [h["cost"] for h in sel.history]
    assert costs[1] <= costs[0] + 1e-6
    assert 0.0 <= sel.optimum_rate <= 1.0 and sel.lookups > 0


def test_cost_split_validation_keeps_the_best_sweep_and_stops_early():
    """The cost is the training split's; the kept masks are the sweep with the
    lowest validation cost; patience stops once it stops falling; every record
    scores all three splits."""
    data, model = tiny_data(), tiny_model()
    g, w = nnx.split(model)
    cfg = SelectConfig(k=K, solver="exhaustive", sweeps=12, block_size=4, patience=2)
    sel = select(jax.random.key(0), model, data, cfg, progress=False)
    val = [h["val_cost"] for h in sel.history]
    assert sel.best_sweep == int(np.argmin(val)) + 1
    assert len(sel.history) == 12 or len(sel.history) - sel.best_sweep == 2
    assert len(sel.history) < 12  # exhaustive sweeps converge on this tiny net
    kept = cross_entropy(apply_masked(g, w, sel.masks, data.x_val), data.y_val)
    np.testing.assert_allclose(float(kept), min(val), rtol=1e-5)
    for record in sel.history:
        for split in ("train", "val", "test"):
            assert 0.0 <= record[f"{split}_accuracy"] <= 1.0
        np.testing.assert_allclose(record["cost"], record["train_cost"], rtol=1e-6)
    # The paper's literal setting: the validation split is the cost.
    lit = select(
        jax.random.key(0),
        model,
        data,
        SelectConfig(k=K, solver="exhaustive", sweeps=2, cost_split="val"),
        progress=False,
    )
    for record in lit.history:
        np.testing.assert_allclose(record["cost"], record["val_cost"], rtol=1e-6)


def test_validation_acceptance_never_raises_the_validation_cost():
    """With ``accept_split="val"`` the landscapes stay the training split's, but a
    block's proposals are kept only where the validation cost falls ("none" is a
    candidate), so the validation cost never rises from sweep to sweep and the
    recorded cost is the validation cost."""
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(k=K, solver="exhaustive", sweeps=4, block_size=4)
    guarded = select(
        jax.random.key(0),
        model,
        data,
        dataclasses.replace(cfg, accept_split="val"),
        progress=False,
    )
    plain = select(jax.random.key(0), model, data, cfg, progress=False)
    val = [h["val_cost"] for h in guarded.history]
    assert np.all(np.diff(val) <= 1e-6)
    for record in guarded.history:
        np.testing.assert_allclose(record["cost"], record["val_cost"], rtol=1e-6)
    # The same landscapes, another acceptance: the runs part ways.
    assert [h["train_cost"] for h in plain.history] != [
        h["train_cost"] for h in guarded.history
    ]


def test_prune_penalty_keeps_masks_denser_and_the_cost_penalised():
    """A penalty on pruned bits: the recorded cost is the training cost plus the
    penalty, a larger penalty keeps more weights, and one far above any change of
    the cross-entropy keeps them all (every pruning costs more than it gains)."""
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(k=K, solver="exhaustive", sweeps=1, block_size=8)
    kept = []
    for weight in (0.0, 0.3, 1e4):
        sel = select(
            jax.random.key(0),
            model,
            data,
            dataclasses.replace(cfg, prune_penalty=weight),
            progress=False,
        )
        flat = np.asarray(flatten_masks(sel.masks))
        kept.append(flat.mean())
        (last,) = sel.history  # one sweep: its mask is the kept one
        np.testing.assert_allclose(
            last["cost"],
            last["train_cost"] + weight * (1 - flat.mean()),
            rtol=1e-5,
            atol=1e-6,
        )
    assert kept[0] < kept[1] <= kept[2] == 1.0


def test_network_total_scores_the_acceptance_sample():
    data, model = tiny_data(), tiny_model()
    grouping = make_grouping("fan_in", model, K)
    land = network_landscape(model, grouping, num_samples=data.y_train.shape[0])
    flat = flatten_masks(random_masks(jax.random.key(2), model))
    own = network_params(model, data.x_train, data.y_train)
    on_val = own._replace(accept=(jnp.asarray(data.x_val), jnp.asarray(data.y_val)))
    val_only = network_params(model, data.x_val, data.y_val)
    for fn in (land.total, jax.jit(land.total)):
        np.testing.assert_allclose(fn(on_val, flat), fn(val_only, flat), rtol=1e-6)
        assert abs(float(fn(on_val, flat)) - float(fn(own, flat))) > 1e-6
    # The landscapes themselves stay the cost sample's.
    np.testing.assert_allclose(land.all(on_val, flat), land.all(own, flat), rtol=1e-6)


# ------------------------------------------------------- subsampled landscapes


def test_subsampled_landscapes_are_exact_on_their_minibatch():
    """Each draw is M distinct pool samples, seeded, and the landscape is the exact
    landscape of the network on that minibatch."""
    data, model = tiny_data(), tiny_model()
    grouping = make_grouping("fan_in", model, K)
    land = network_landscape(model, grouping, num_samples=16, batch=16)
    exact = network_landscape(model, grouping, num_samples=16)
    params = network_params(
        model, data.x_val, data.y_val, pool=(data.x_train, data.y_train)
    )
    flat = flatten_masks(random_masks(jax.random.key(1), model))
    draws = [land.subsample(params, jax.random.key(i)) for i in (0, 0, 1)]
    for d in draws:
        chex.assert_shape(d.x, (16, 6))
        rows = {tuple(r) for r in np.asarray(d.x)}
        assert len(rows) == 16 and rows <= {tuple(r) for r in data.x_train}
    np.testing.assert_array_equal(draws[0].x, draws[1].x)  # seeded
    assert not np.array_equal(draws[0].x, draws[2].x)  # a new key, a new batch
    mini = network_params(model, draws[2].x, draws[2].y)
    np.testing.assert_allclose(
        land.all(draws[2], flat), exact.all(mini, flat), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="num_samples must equal"):
        network_landscape(model, grouping, num_samples=20, batch=16)


def test_subsampled_selection_accepts_on_the_fixed_sample_and_compiles_once():
    data, model = tiny_data(), tiny_model()
    cfg = SelectConfig(
        k=K,
        solver="exhaustive",
        sweeps=3,
        block_size=4,
        batch_samples=24,
        cost_samples=100,
    )
    g, w = nnx.split(model)
    accept_x, accept_y = data.x_train[:100], data.y_train[:100]
    start = float(cross_entropy(apply_masked(g, w, None, accept_x), accept_y))
    sel = select(jax.random.key(0), model, data, cfg, progress=False)
    costs = [start] + [h["cost"] for h in sel.history]  # the acceptance sample
    assert all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))
    assert costs[-1] < start - 0.05
    final = float(cross_entropy(apply_masked(g, w, sel.masks, accept_x), accept_y))
    assert sel.history[sel.best_sweep - 1]["cost"] == pytest.approx(final, rel=1e-5)
    assert sel.landscape_samples == 24
    again = select(jax.random.key(0), model, data, cfg, progress=False)
    for a, b in zip(sel.masks, again.masks, strict=True):
        np.testing.assert_array_equal(a, b)  # seeded minibatches


def test_subsampled_sweep_traces_once_and_redraws_per_block():
    data, model = tiny_data(), tiny_model()
    grouping = make_grouping("fan_in", model, K)
    land = network_landscape(model, grouping, num_samples=8, batch=8)
    params = network_params(
        model, data.x_train, data.y_train, pool=(data.x_train, data.y_train)
    )
    seen = []

    def spy(p, key):
        out = land.subsample(p, key)
        jax.debug.callback(lambda x: seen.append(np.asarray(x)), out.y)
        return out

    sweep = make_sweep(
        land._replace(subsample=spy), make_solver("exhaustive", K), block_size=4
    )
    step = jax.jit(chex.assert_max_traces(sweep, n=1))
    state = initial_state(
        jax.random.key(0), flatten_masks(random_masks(jax.random.key(4), model))
    )
    state, _ = step(params, state)
    state, _ = step(params, state)
    blocks = sum(-(-s.num_groups // 4) for s in land.segments)
    assert len(seen) == 2 * blocks  # one minibatch per block and sweep
    assert len({tuple(b) for b in seen}) > 1
