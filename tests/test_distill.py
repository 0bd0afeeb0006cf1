"""Layerwise selection with knowledge distillation (qselax.distill)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from qselax.bits import index_bits
from qselax.checkpoints import Checkpoints as C
from qselax.data import load_dataset
from qselax.distill import DistillConfig, check_memory, direct_hidden, distill
from qselax.driver import initial_state
from qselax.groups import flatten_masks
from qselax.networks import MaskableMLP, mask_shapes, ones_masks
from qselax.solvers import make_solver, vqe
from qselax.student import (
    BlockParams,
    block_arrays,
    block_forward,
    block_grouping,
    block_landscape,
    block_loss,
    block_scale,
    compression_matrix,
    compression_parts,
    make_student,
    student_forward,
    student_widths,
)
from qselax.sweeps import make_sweep

TINY = DistillConfig(
    teacher_hidden=(4,),
    width_factor=2,
    k=3,
    sweeps=3,
    block_size=1,
    solver="exhaustive",
    teacher_epochs=20,
    val_samples=12,
)


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", seed=0)


@pytest.fixture(scope="module")
def run(iris):
    return distill(jax.random.key(0), iris, TINY, progress=False)


# ------------------------------------------------------------------ compression


def test_pool_is_contiguous_average():
    mat = compression_matrix("pool", np.zeros((2, 6)), 3)
    chex.assert_shape(mat, (6, 3))
    want = np.kron(np.eye(3), np.full((2, 1), 0.5))
    np.testing.assert_array_equal(mat, want)
    h = np.arange(12.0).reshape(2, 6)
    np.testing.assert_allclose(h @ mat, h.reshape(2, 3, 2).mean(-1))


def test_magnitude_keeps_most_active_units_in_index_order():
    out = np.array([[0.1, -5.0, 0.0, 2.0, 3.0], [0.1, 5.0, 0.0, -2.0, 3.5]])
    mat = compression_matrix("magnitude", out, 3)
    chex.assert_shape(mat, (5, 3))
    # mean |unit|: 0.1, 5, 0, 2, 3.25 -> units 1, 3, 4 in index order
    np.testing.assert_array_equal(np.flatnonzero(mat.sum(1)), [1, 3, 4])
    np.testing.assert_array_equal(np.argmax(mat, axis=0), [1, 3, 4])
    np.testing.assert_array_equal(out @ mat, out[:, [1, 3, 4]])
    used, weight = compression_parts(mat)
    np.testing.assert_array_equal(used, [[1], [3], [4]])
    np.testing.assert_array_equal(weight, np.ones((3, 1)))


@pytest.mark.parametrize(
    ("kind", "n", "t", "match"),
    [
        ("max", 4, 2, "compression must"),
        ("pool", 5, 2, "multiple"),
        ("pool", 2, 3, "width"),
    ],
)
def test_compression_errors(kind, n, t, match):
    with pytest.raises(ValueError, match=match):
        compression_matrix(kind, np.zeros((1, n)), t)


# --------------------------------------------------------------- hand computation


def _np_block(w0, w1, m0, m1, proj, u, last):
    h0 = np.maximum(u @ (w0 * m0), 0.0)
    z1 = h0 @ (w1 * m1)
    h1 = z1 if last else np.maximum(z1, 0.0)
    return h1 @ proj


def _tiny_block(compression, last):
    block = MaskableMLP(3, (4,), 4, init="uniform", rngs=nnx.Rngs(params=1))
    rng = np.random.default_rng(0)
    u = rng.normal(size=(5, 3)).astype(np.float32)
    target = rng.normal(size=(5, 2)).astype(np.float32)
    w0, w1 = (np.asarray(block.kernel(l)) for l in range(2))
    wide = _np_block(w0, w1, 1, 1, np.eye(4, dtype=np.float32), u, last)
    proj = compression_matrix(compression, wide, 2)
    return block, u, target, w0, w1, proj


def _hand_loss(target, out, scale):
    """mean_b ||T_b - alpha h_b||_2, alpha = <T, h> / <h, h> (1 without scale)."""
    alpha = np.sum(target * out) / np.sum(out * out) if scale else 1.0
    return np.mean(np.linalg.norm(target - alpha * out, axis=-1))


def test_block_scale_is_least_squares_and_scale_free():
    rng = np.random.default_rng(3)
    out = rng.normal(size=(6, 3)).astype(np.float32)
    target = rng.normal(size=(6, 3)).astype(np.float32)
    alpha = float(block_scale(jnp.asarray(out), jnp.asarray(target)))
    np.testing.assert_allclose(alpha, np.sum(out * target) / np.sum(out**2), 1e-5)
    # alpha minimises the squared error over all scalars (either sign)
    grid = np.linspace(-3, 3, 601)
    sq = [np.sum((target - a * out) ** 2) for a in grid]
    assert np.sum((target - alpha * out) ** 2) <= min(sq) + 1e-5
    # the scaled loss ignores any non-zero rescaling of the student output
    for c in (0.01, 7.0, -2.0):
        np.testing.assert_allclose(
            block_loss(jnp.asarray(c * out), jnp.asarray(target), True),
            _hand_loss(target, out, True),
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        block_loss(jnp.asarray(out), jnp.asarray(target)),
        _hand_loss(target, out, False),
        rtol=1e-5,
    )
    # an all-zero output has scale 0 (loss = mean target norm), never NaN
    zero = jnp.zeros((6, 3))
    assert float(block_scale(zero, jnp.asarray(target))) == 0.0
    np.testing.assert_allclose(
        block_loss(zero, jnp.asarray(target), True),
        np.mean(np.linalg.norm(target, axis=-1)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize("compression", ["pool", "magnitude"])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("scale", [True, False], ids=["scale", "raw"])
def test_landscapes_match_hand_block_loss(compression, last, jit, scale):
    """Every landscape entry equals mean_b ||T_b - alpha compress(block_b)||_2."""
    block, u, target, w0, w1, proj = _tiny_block(compression, last)
    config = DistillConfig(k=3, compression=compression)
    grouping = block_grouping(block, config, proj)
    land = block_landscape(
        block, grouping, proj, last=last, scale=scale, num_samples=5, memory_mb=1.0
    )
    params = BlockParams(block_arrays(block, proj), u, target)
    rng = np.random.default_rng(1)
    m0 = (rng.random(w0.shape) < 0.7).astype(np.float32)
    m1 = (rng.random(w1.shape) < 0.7).astype(np.float32)
    flat = np.concatenate([m0.ravel(), m1.ravel()])
    bits = np.asarray(index_bits(jnp.arange(8), 3), np.float32)
    for i, plan in enumerate(land.segments):

        def lands(params, flat, groups, i=i):
            return land.costs(params, flat, land.prepare(params, flat), i, groups)

        lands = jax.jit(lands) if jit else lands

        got = np.asarray(
            lands(params, jnp.asarray(flat), jax.tree.map(jnp.asarray, plan.arrays))
        )
        chex.assert_shape(got, (len(plan.arrays["index"]), 8))
        for g, (idx, ok) in enumerate(
            zip(plan.arrays["index"], plan.arrays["valid"], strict=True)
        ):
            for s in range(8):
                f = flat.copy()
                f[idx[ok]] = bits[s][ok]
                a0, a1 = f[: m0.size].reshape(m0.shape), f[m0.size :].reshape(m1.shape)
                out = _np_block(w0, w1, a0, a1, proj, u, last)
                hand = _hand_loss(target, out, scale)
                np.testing.assert_allclose(got[g, s], hand, rtol=2e-5, atol=2e-5)


def test_magnitude_drops_groups_that_cannot_matter():
    block, _, _, _, _, proj = _tiny_block("magnitude", False)
    config = DistillConfig(k=2, compression="magnitude")
    full = block_grouping(block, DistillConfig(k=2, compression="pool"), proj * 0 + 1)
    kept = block_grouping(block, config, proj)
    live = np.flatnonzero(proj.sum(1))
    # layer 0 keeps every group; layer 1 keeps the fan-ins of the 2 kept units
    assert kept.num_groups == full.num_groups - (4 - len(live)) * 2
    start, stop = kept.layer_slices[1]
    cols = (kept.index[start:stop] - kept.offsets[1]) % 4
    assert set(np.unique(cols)) == set(live)


# ------------------------------------------------------------- student and teacher


def test_student_shapes_and_all_ones_forward():
    wide = DistillConfig(teacher_hidden=(5, 3), width_factor=2)
    # hidden_width="max": block i's hidden layer is f max(t_{i-1}, t_i) wide
    assert student_widths(wide, 4, 2) == ((4, 10, 10), (5, 10, 6), (3, 6, 4))
    assert direct_hidden(wide, 2) == (10, 10, 10, 6, 6)
    config = DistillConfig(teacher_hidden=(5, 3), width_factor=2, hidden_width="output")
    student = make_student(jax.random.key(0), 4, 2, config)
    assert student_widths(config, 4, 2) == ((4, 10, 10), (5, 6, 6), (3, 4, 4))
    assert [b.widths for b in student.blocks] == [(4, 10, 10), (5, 6, 6), (3, 4, 4)]
    assert direct_hidden(config, 2) == (10, 10, 6, 6, 4)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    projs = [
        compression_matrix("pool", np.zeros((1, n)), t)
        for n, t in ((10, 5), (6, 3), (4, 2))
    ]
    ones = [ones_masks(b) for b in student.blocks]
    got = student_forward(student, projs, ones, x)
    h = x
    for i, b in enumerate(student.blocks):  # plain forward, no masks anywhere
        z = np.maximum(h @ np.asarray(b.kernel(0)), 0) @ np.asarray(b.kernel(1))
        h = (z if i == 2 else np.maximum(z, 0)) @ projs[i]
    chex.assert_shape(got, (7, 2))
    np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(student_forward(student, projs, None, x), h, 1e-5, 1e-5)
    # block scales: hidden ones (>= 0) pass through ReLU, the product scales logits
    scales = [0.5, 2.0, -3.0]
    got = student_forward(student, projs, ones, x, scales)
    np.testing.assert_allclose(got, -3.0 * h, rtol=1e-4, atol=1e-4)


def test_block_forward_matches_networks_apply():
    block, u, _, w0, w1, proj = _tiny_block("pool", False)
    masks = ones_masks(block)
    out = block_forward(block_arrays(block, proj), masks, u, level="weight", last=False)
    np.testing.assert_allclose(
        out[-1], _np_block(w0, w1, 1, 1, proj, u, False), rtol=1e-5, atol=1e-5
    )


# -------------------------------------------------------------------- end to end


def test_exhaustive_sweeps_decrease_block_losses(run):
    assert len(run.blocks) == 2
    for b in run.blocks:
        losses = [b["initial_loss"]] + [h["cost"] for h in b["history"]]
        assert all(a >= c - 1e-5 for a, c in zip(losses, losses[1:], strict=False))
        assert losses[-1] < losses[0]
        assert b["optimum_rate"] == 1.0
    assert run.block_losses == [b["loss"] for b in run.blocks]
    assert run.optimum_rate == 1.0
    g = run.resources["groups_per_block"]
    assert run.landscape_evals == TINY.sweeps * sum(g) * 2**TINY.k
    for name in ("teacher", "student"):
        assert set(run.accuracy[name]) == {"train", "val", "test"}
    for i, m in enumerate(run.masks):
        assert tuple(x.shape for x in m) == tuple(mask_shapes(run.student.blocks[i]))
    chex.assert_shape(run.projs[0], (8, 4))
    # one least-squares scale per block; the hidden block's is non-negative
    assert len(run.scales) == 2 and run.scales[0] >= 0.0
    assert [b["scale"] for b in run.blocks] == list(run.scales)


def test_block_sweep_compiles_once(iris):
    """Two sweeps of a block reuse one trace (one compile per configuration)."""
    block = make_student(jax.random.key(0), 4, 3, TINY).blocks[0]
    proj = compression_matrix("pool", np.zeros((1, 8)), 4)
    grouping = block_grouping(block, TINY, proj)
    land = block_landscape(
        block, grouping, proj, last=False, num_samples=6, memory_mb=1.0
    )
    sweep = make_sweep(land, make_solver("exhaustive", 3), block_size=4)
    step = jax.jit(chex.assert_max_traces(sweep, n=1))
    params = BlockParams(
        block_arrays(block, proj), jnp.asarray(iris.x_val[:6]), jnp.ones((6, 4))
    )
    state = initial_state(jax.random.key(1), flatten_masks(ones_masks(block)))
    state, first = step(params, state)
    state, second = step(params, state)
    assert int(state.sweep) == 2
    assert float(second.cost) <= float(first.cost) + 1e-6
    chex.assert_tree_all_finite([i._replace(entropy=0.0) for i in (first, second)])


def test_vqe_runs_through_the_solver_interface(iris):
    cfg = DistillConfig(
        teacher_hidden=(3,),
        width_factor=1,
        k=4,
        sweeps=1,
        block_size=8,
        solver=vqe(layers=1, steps=5),
        teacher_epochs=5,
        val_samples=10,
    )
    out = distill(jax.random.key(1), iris, cfg, progress=False)
    assert 0.0 <= out.optimum_rate <= 1.0
    assert all(np.isfinite(out.block_losses))
    assert out.resources["qubits"] == 4


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"compression": "max"}, "compression"),
        ({"init": "zeros"}, "init"),
        ({"solver": "nope"}, "solver"),
        ({"teacher_hidden": ()}, "teacher_hidden"),
        ({"teacher_hidden": (4, 0)}, "teacher_hidden"),
        ({"width_factor": 0}, "width_factor"),
        ({"sweeps": 0}, "sweeps"),
        ({"block_size": 0}, "block_size"),
        ({"k": 0}, "k must"),
        ({"grouping": "neuron"}, "mask_level"),
        ({"val_samples": 0}, "val_samples"),
        ({"teacher_lr": 0.0}, "teacher_lr"),
        ({"hidden_width": "wide"}, "hidden_width"),
    ],
)
def test_bad_config(iris, changes, match):
    import dataclasses

    with pytest.raises(ValueError, match=match):
        config = dataclasses.replace(TINY, **changes)
        distill(jax.random.key(0), iris, config, progress=False)


def test_memory_and_mismatch_errors(iris, run):
    big = DistillConfig(k=16, width_factor=64, memory_mb=1.0)
    with pytest.raises(ValueError, match="memory_mb"):
        check_memory(big, 64, 10, 100)
    import dataclasses

    wider = dataclasses.replace(TINY, teacher_hidden=(5,))
    with pytest.raises(ValueError, match="teacher has layer widths"):
        distill(jax.random.key(0), iris, wider, teacher=run.teacher, progress=False)
    with pytest.raises(ValueError, match="student blocks"):
        distill(
            jax.random.key(0),
            iris,
            dataclasses.replace(TINY, width_factor=3),
            student=run.student,
            progress=False,
        )


def test_interrupted_distillation_resumes_to_the_same_student(iris, run, tmp_path):
    class Stop(Exception):
        pass

    def stop(record):  # after block 1's first sweep (its checkpoint is saved)
        if record["stage"] == "block1" and record["sweep"] == 1:
            raise Stop

    key = jax.random.key(0)
    with pytest.raises(Stop):
        distill(
            key, iris, TINY, progress=False, loggers=[stop], checkpoints=C(tmp_path)
        )
    again = distill(key, iris, TINY, progress=False, checkpoints=C(tmp_path))
    plain = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert plain(again.history) == plain(run.history)
    chex.assert_trees_all_equal(again.masks, run.masks)
    assert again.accuracy == run.accuracy
    assert again.optimum_rate == run.optimum_rate
