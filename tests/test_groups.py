"""Tests for qselax.groups: groupings partition the mask bits; gather/scatter."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qselax.bits import bit_index, gather_bits, index_bits, scatter_bits
from qselax.groups import (
    GROUP_ORDERS,
    GROUPINGS,
    MAX_K,
    Grouping,
    explicit_grouping,
    flatten_masks,
    make_grouping,
    unflatten_masks,
)
from qselax.networks import make_model, mask_shapes

# The same tiny models as tests/test_networks.py and tests/test_landscapes.py.
MLP_W = make_model("mlp", (5,), 3, hidden=(8, 6), init="kaiming_normal")
MLP_N = make_model(
    "mlp", (5,), 3, hidden=(8, 6), init="kaiming_normal", mask_level="neuron"
)
CNN_W = make_model(
    "cnn", (4, 4, 1), 3, hidden=(6,), channels=(3,), init="kaiming_normal"
)
CNN_N = make_model(
    "cnn",
    (4, 4, 1),
    3,
    hidden=(6,),
    channels=(3, 4),
    init="kaiming_normal",
    mask_level="neuron",
)
WEIGHT_MODELS = {"mlp": MLP_W, "cnn": CNN_W}
NEURON_MODELS = {"mlp": MLP_N, "cnn": CNN_N}
KS = [1, 2, 3, 4, 7, MAX_K]


def check_partition(g: Grouping, shapes):
    """Invariants every grouping satisfies."""
    n_groups, k = g.index.shape
    assert g.shapes == tuple(tuple(s) for s in shapes)
    assert g.num_bits == sum(math.prod(s) for s in shapes)
    assert g.index.dtype == np.int32 and g.valid.dtype == bool
    assert g.layer.dtype == np.int32
    assert g.valid.shape == (n_groups, k) and g.layer.shape == (n_groups,)
    assert g.num_groups == n_groups and k == g.k
    offsets = g.offsets
    np.testing.assert_array_equal(
        offsets, np.concatenate([[0], np.cumsum([math.prod(s) for s in shapes])])
    )
    sizes = g.valid.sum(1)
    assert np.all(sizes >= 1) and np.all(sizes <= k)
    # Valid positions come first; padding repeats the group's first index.
    np.testing.assert_array_equal(g.valid, np.arange(k)[None, :] < sizes[:, None])
    np.testing.assert_array_equal(np.where(g.valid, g.index, g.index[:, :1]), g.index)
    # Sorted by layer, and layer_slices are the contiguous runs of each layer.
    assert np.all(np.diff(g.layer) >= 0)
    assert len(g.layer_slices) == len(shapes)
    stop = 0
    for l, (a, b) in enumerate(g.layer_slices):
        assert a == stop and b >= a
        np.testing.assert_array_equal(g.layer[a:b], l)
        stop = b
    assert stop == n_groups
    # No group spans layers.
    lo, hi = offsets[g.layer][:, None], offsets[g.layer + 1][:, None]
    assert np.all((g.index >= lo) & (g.index < hi))
    return sizes


def check_exact_cover(g: Grouping):
    """Every mask bit is in exactly one group."""
    bits = np.sort(g.index[g.valid])
    np.testing.assert_array_equal(bits, np.arange(g.num_bits))


# ------------------------------------------------------------------- groupings


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_fan_in_grouping(net, k):
    model = WEIGHT_MODELS[net]
    shapes = mask_shapes(model)
    g = make_grouping("fan_in", model, k)
    assert g.name == "fan_in"
    sizes = check_partition(g, shapes)
    check_exact_cover(g)
    expected = sum(s[-1] * math.ceil(math.prod(s[:-1]) / k) for s in shapes)
    assert g.num_groups == expected
    for l, ((a, b), shape) in enumerate(zip(g.layer_slices, shapes, strict=True)):
        fan_in, units = math.prod(shape[:-1]), shape[-1]
        per_unit = math.ceil(fan_in / k)
        assert b - a == units * per_unit
        local = g.index[a:b] - g.offsets[l]
        unit_of = []
        for row, valid in zip(local, g.valid[a:b], strict=True):
            # All valid entries of a group share the kernel's last (output) index.
            coords = np.unravel_index(row[valid], shape)
            assert len(set(coords[-1].tolist())) == 1
            unit_of.append(int(coords[-1][0]))
        # Units in order, each with ceil(fan_in / k) near-equal groups.
        assert unit_of == [u for u in range(units) for _ in range(per_unit)]
        unit_sizes = sizes[a:b].reshape(units, per_unit)
        assert np.all(unit_sizes.sum(1) == fan_in)
        assert np.all(unit_sizes.max(1) - unit_sizes.min(1) <= 1)


def test_fan_in_conv_group_is_one_output_channel():
    """A conv fan-in group holds (kh, kw, cin) positions of a single channel."""
    g = make_grouping("fan_in", CNN_W, 9)
    shape = mask_shapes(CNN_W)[0]  # (3, 3, 1, 3): fan-in 9 per channel
    a, b = g.layer_slices[0]
    assert b - a == shape[-1] and g.valid[a:b].all()
    for ch, row in enumerate(g.index[a:b]):
        kh, kw, cin, cout = np.unravel_index(row, shape)
        assert set(cout.tolist()) == {ch}
        assert sorted(zip(kh, kw, cin, strict=True)) == [
            (i, j, 0) for i in range(3) for j in range(3)
        ]


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_fan_in_interleave_is_round_robin_over_units(net, k):
    """The same groups as unit order, per layer, each unit's i-th group before any
    unit's (i+1)-th and units in order within a round: consecutive groups of a
    round feed distinct units."""
    model = WEIGHT_MODELS[net]
    shapes = mask_shapes(model)
    unit = make_grouping("fan_in", model, k)
    inter = make_grouping("fan_in", model, k, order="interleave")
    check_partition(inter, shapes)
    check_exact_cover(inter)
    assert inter.layer_slices == unit.layer_slices
    for l, ((a, b), shape) in enumerate(zip(inter.layer_slices, shapes, strict=True)):
        units, per_unit = shape[-1], (b - a) // shape[-1]
        # The unit-order rows, reordered as (round, unit).
        expected = unit.index[a:b].reshape(units, per_unit, -1).swapaxes(0, 1)
        np.testing.assert_array_equal(
            inter.index[a:b], expected.reshape(units * per_unit, -1)
        )
        outs = np.unravel_index(inter.index[a:b, 0] - inter.offsets[l], shape)[-1]
        np.testing.assert_array_equal(outs, np.tile(np.arange(units), per_unit))


@pytest.mark.parametrize("name", ["block", "neuron"])
def test_interleave_keeps_block_and_neuron_order(name):
    model = MLP_N if name == "neuron" else MLP_W
    a = make_grouping(name, model, 3)
    b = make_grouping(name, model, 3, order="interleave")
    np.testing.assert_array_equal(a.index, b.index)


def test_make_grouping_unknown_order():
    assert GROUP_ORDERS == ("unit", "interleave")
    with pytest.raises(ValueError, match="order must be one of"):
        make_grouping("fan_in", MLP_W, 3, order="random")


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_block_grouping(net, k):
    model = WEIGHT_MODELS[net]
    shapes = mask_shapes(model)
    g = make_grouping("block", model, k)
    sizes = check_partition(g, shapes)
    check_exact_cover(g)
    assert g.num_groups == sum(math.ceil(math.prod(s) / k) for s in shapes)
    for l, (a, b) in enumerate(g.layer_slices):
        # Contiguous runs of the raveled kernel, in order, near-equal sizes.
        flat = np.concatenate(
            [r[v] for r, v in zip(g.index[a:b], g.valid[a:b], strict=True)]
        )
        np.testing.assert_array_equal(flat, np.arange(g.offsets[l], g.offsets[l + 1]))
        assert sizes[a:b].max() - sizes[a:b].min() <= 1


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_neuron_grouping(net, k):
    model = NEURON_MODELS[net]
    shapes = mask_shapes(model)
    g = make_grouping("neuron", model, k)
    check_partition(g, shapes)
    check_exact_cover(g)
    assert g.num_groups == sum(math.ceil(s[0] / k) for s in shapes)
    for l, (a, b) in enumerate(g.layer_slices):
        flat = np.concatenate(
            [r[v] for r, v in zip(g.index[a:b], g.valid[a:b], strict=True)]
        )
        np.testing.assert_array_equal(flat, np.arange(g.offsets[l], g.offsets[l + 1]))


def test_fan_in_example_by_hand():
    """MLP 5-8-6-3 with k=3: fan-ins 5 -> 3+2, 8 -> 3+3+2, 6 -> 3+3."""
    g = make_grouping("fan_in", MLP_W, 3)
    assert g.num_groups == 8 * 2 + 6 * 3 + 3 * 2
    assert g.layer_slices == ((0, 16), (16, 34), (34, 40))
    # Column 0 of the (5, 8) kernel is flat 0, 8, 16, 24, 32.
    np.testing.assert_array_equal(g.index[0:2], [[0, 8, 16], [24, 32, 24]])
    np.testing.assert_array_equal(g.valid[0:2], [[1, 1, 1], [1, 1, 0]])
    # Column 1 follows column 0.
    np.testing.assert_array_equal(g.index[2], [1, 9, 17])
    # Layer 1 starts at flat 40; column 0 of its (8, 6) kernel: 40, 46, ..., 82.
    np.testing.assert_array_equal(
        g.index[16:19], [[40, 46, 52], [58, 64, 70], [76, 82, 76]]
    )
    np.testing.assert_array_equal(g.valid[16:19].sum(1), [3, 3, 2])


@pytest.mark.parametrize("k", [0, MAX_K + 1, -1, 2.5, "3", None])
def test_make_grouping_bad_k(k):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 20\]"):
        make_grouping("fan_in", MLP_W, k)


def test_make_grouping_numpy_int_k():
    g = make_grouping("block", MLP_W, np.int64(4))
    assert g.k == 4 and isinstance(g.k, int)


def test_make_grouping_unknown_name():
    with pytest.raises(ValueError, match="grouping must be one of"):
        make_grouping("rows", MLP_W, 3)


@pytest.mark.parametrize(
    "name, model, need",
    [
        ("neuron", MLP_W, "neuron"),
        ("fan_in", MLP_N, "weight"),
        ("block", CNN_N, "weight"),
    ],
)
def test_make_grouping_mask_level_mismatch(name, model, need):
    with pytest.raises(ValueError, match=f"needs mask_level='{need}'"):
        make_grouping(name, model, 3)


def test_groupings_constant():
    assert set(GROUPINGS) == {"fan_in", "block", "neuron"}


# ------------------------------------------------------------ explicit grouping

SHAPES = ((2, 3), (3,))  # flat 0..5 in layer 0, 6..8 in layer 1


def test_explicit_grouping_sorts_by_layer_and_pads():
    g = explicit_grouping([[7, 8], [0, 1, 2], [6], [5, 3]], SHAPES)
    check_partition(g, SHAPES)
    assert g.name == "explicit" and g.k == 3
    np.testing.assert_array_equal(g.index, [[0, 1, 2], [5, 3, 5], [7, 8, 7], [6, 6, 6]])
    np.testing.assert_array_equal(g.valid, [[1, 1, 1], [1, 1, 0], [1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(g.layer, [0, 0, 1, 1])
    assert g.layer_slices == ((0, 2), (2, 4))
    # Bit 4 is in no group: explicit groupings need not cover the mask.
    assert 4 not in g.index[g.valid]


def test_explicit_grouping_k_and_empty_layer():
    g = explicit_grouping([[6, 7]], SHAPES, k=4)
    assert g.k == 4 and g.index.shape == (1, 4)
    assert g.layer_slices == ((0, 0), (0, 1))


@pytest.mark.parametrize(
    "groups, k, match",
    [
        ([], None, "non-empty list"),
        ([[0], []], None, "non-empty"),
        ([[0, 1, 2]], 2, r"groups\[0\] has 3 indices, more than k=2"),
        ([[0], [9]], None, r"groups\[1\] has indices outside \[0, 9\)"),
        ([[-1]], None, "outside"),
        ([[0, 0]], None, r"groups\[0\] repeats an index"),
        ([[0, 1], [2, 1]], None, r"groups\[1\] repeats an index"),
        ([[5, 6]], None, r"groups\[0\] spans layers \[0, 1\]"),
        ([[0]], 0, "k must be an integer"),
        ([[0]], MAX_K + 1, "k must be an integer"),
    ],
)
def test_explicit_grouping_errors(groups, k, match):
    with pytest.raises(ValueError, match=match):
        explicit_grouping(groups, SHAPES, k=k)


# ------------------------------------------------- flatten, gather and scatter

N_BITS = sum(math.prod(s) for s in mask_shapes(MLP_W))  # 106
# fan_in with k=3 pads layer 0's second groups (2 of 3 valid).
FAN3 = make_grouping("fan_in", MLP_W, 3)
# An explicit grouping covering part of the mask, with lots of padding.
PARTIAL = explicit_grouping([[3], [0, 7, 1, 9], [45, 41], [105, 104, 103]], FAN3.shapes)

GATHER = jax.jit(gather_bits)
SCATTER = jax.jit(scatter_bits)
FLATTEN = jax.jit(flatten_masks)
bits_strategy = hnp.arrays(np.float32, N_BITS, elements=st.sampled_from([0.0, 1.0]))


@settings(max_examples=20, deadline=None)
@given(flat=bits_strategy)
def test_flatten_unflatten_round_trip(flat):
    masks = unflatten_masks(flat, FAN3.shapes)
    assert [m.shape for m in masks] == list(FAN3.shapes)
    np.testing.assert_array_equal(FLATTEN(masks), flat)
    # C order, layer after layer.
    for l, m in enumerate(masks):
        for idx in [(0, 0), tuple(d - 1 for d in m.shape)]:
            assert m[idx] == flat[FAN3.offsets[l] + np.ravel_multi_index(idx, m.shape)]


@settings(max_examples=20, deadline=None)
@given(
    flat=bits_strategy,
    new=hnp.arrays(np.float32, FAN3.index.shape, elements=st.sampled_from([0.0, 1.0])),
)
def test_gather_scatter_round_trip(flat, new):
    g = FAN3
    got = np.asarray(GATHER(flat, g.index, g.valid))
    np.testing.assert_array_equal(got, np.where(g.valid, flat[g.index], 0.0))
    # Writing back what was read changes nothing.
    np.testing.assert_array_equal(SCATTER(flat, g.index, g.valid, got), flat)
    # Scattering new bits then gathering reads them back (zero on padding).
    out = SCATTER(flat, g.index, g.valid, new)
    np.testing.assert_array_equal(
        GATHER(out, g.index, g.valid), np.where(g.valid, new, 0.0)
    )


@settings(max_examples=20, deadline=None)
@given(flat=bits_strategy, seed=st.integers(0, 2**32 - 1))
def test_scatter_padding_never_overrides(flat, seed):
    """Padding repeats a valid index; its (opposite) bit must not win the write."""
    g = PARTIAL
    assert not g.valid.all()
    new = np.random.default_rng(seed).integers(0, 2, g.index.shape).astype(np.float32)
    new = np.where(g.valid, new, 1.0 - new[:, :1])  # padding says the opposite
    out = np.asarray(SCATTER(flat, g.index, g.valid, new))
    expected = flat.copy()
    expected[g.index[g.valid]] = new[g.valid]
    np.testing.assert_array_equal(out, expected)


class GatherScatterVariants(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_gather_scatter(self):
        g = PARTIAL
        flat = np.zeros(N_BITS, np.float32)
        ones = np.ones(g.index.shape, np.float32)
        out = self.variant(scatter_bits)(flat, g.index, g.valid, ones)
        chex.assert_shape(out, (N_BITS,))
        self.assertEqual(out.dtype, jnp.float32)
        np.testing.assert_array_equal(np.flatnonzero(out), sorted(g.index[g.valid]))
        got = self.variant(gather_bits)(out, g.index, g.valid)
        np.testing.assert_array_equal(got, g.valid.astype(np.float32))

    @chex.variants(with_jit=True, without_jit=True)
    def test_bit_index_msb_first(self):
        bits = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0]], np.int32)
        np.testing.assert_array_equal(self.variant(bit_index)(bits), [4, 1, 6, 0])
        np.testing.assert_array_equal(
            self.variant(index_bits, static_argnums=1)(np.array([4, 1, 6, 0]), 3),
            bits,
        )
        # Batched (..., K) rows and float bits (masks are float32).
        batched = np.stack([bits, 1 - bits]).astype(np.float32)
        np.testing.assert_array_equal(
            self.variant(bit_index)(batched), [[4, 1, 6, 0], [3, 6, 1, 7]]
        )


@pytest.mark.parametrize("k", [1, 3, 6])
def test_index_bits_inverts_bit_index(k):
    s = np.arange(2**k)
    bits = np.asarray(index_bits(jnp.asarray(s), k))
    assert bits.shape == (2**k, k) and bits.dtype == np.int32
    np.testing.assert_array_equal(bit_index(bits), s)
    strings = ["".join(map(str, row)) for row in bits]
    assert [int(b, 2) for b in strings] == s.tolist()


@settings(max_examples=20, deadline=None)
@given(row=st.lists(st.integers(0, 1), min_size=MAX_K, max_size=MAX_K))
def test_bit_index_matches_binary_string(row):
    bits = np.asarray(row, np.int32)
    s = int("".join(map(str, row)), 2)
    assert int(bit_index(bits)) == s
    np.testing.assert_array_equal(index_bits(jnp.asarray(s, jnp.int32), MAX_K), bits)


def test_doctests():
    import doctest

    from qselax import groups

    result = doctest.testmod(groups, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
