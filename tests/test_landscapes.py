"""Tests for qselax.landscapes: fast evaluators against the naive oracle and by hand."""

import functools

import chex
import jax
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from qselax.bits import bit_index, bit_table, index_bits
from qselax.groups import make_grouping
from qselax.landscapes import (
    CACHE_MB,
    CACHE_TILE,
    COSTS,
    EVALUATORS,
    cost_fn,
    naive_landscapes,
    network_landscape,
    network_params,
    prune_penalty,
)
from qselax.networks import apply_masked, cross_entropy, error_rate, make_model

B, C = 6, 3
# The same tiny models as tests/test_networks.py and tests/test_groups.py.  The 0-1
# error of a sample whose two top logits tie flips with float rounding, which differs
# between evaluators (an incremental update leaves ~1e-7 where a full pass gives an
# exact 0).  Kaiming-normal weights avoid the many ties of signed-constant ones; the
# ties that remain (samples whose masked network is dead: all logits 0) are counted
# and allowed for in assert_matches_hand.
MLP_W = make_model("mlp", (5,), C, hidden=(8, 6), init="kaiming_normal")
MLP_N = make_model(
    "mlp", (5,), C, hidden=(8, 6), init="kaiming_normal", mask_level="neuron"
)
CNN_W = make_model(
    "cnn", (4, 4, 1), C, hidden=(6,), channels=(3,), init="kaiming_normal"
)
CNN_N = make_model(
    "cnn",
    (4, 4, 1),
    C,
    hidden=(6,),
    channels=(3, 4),
    init="kaiming_normal",
    mask_level="neuron",
)
FEATURES = {"mlp": (5,), "cnn": (4, 4, 1)}

# name: (model, grouping rule, k, methods "auto" picks per layer)
CONFIGS = {
    "mlp-fan_in": (MLP_W, "fan_in", 3, ("rank1",) * 3),
    "mlp-block": (MLP_W, "block", 3, ("rank1",) * 3),
    "mlp-neuron": (MLP_N, "neuron", 3, ("rank1",) * 2),
    "cnn-fan_in": (CNN_W, "fan_in", 3, ("suffix", "rank1", "rank1")),
    "cnn-neuron": (CNN_N, "neuron", 2, ("suffix", "suffix", "rank1")),
}
# Extra engines with small memory budgets, to force chunked lax.map: the budget is
# ``factor`` times the largest per-group estimate of that method's default engine.
CHUNKED = {
    "mlp-fan_in": {"small1": ("auto", 1.0), "small3": ("auto", 3.0)},
    "cnn-fan_in": {"small1": ("suffix", 1.0), "small2.5": ("suffix", 2.5)},
}
APPLY = jax.jit(apply_masked, static_argnums=0)
TRACES = dict.fromkeys(CONFIGS, 0)


class Setup:
    """One configuration's model, grouping, engines and one jitted evaluator."""

    def __init__(self, name):
        model, rule, k, auto = CONFIGS[name]
        self.name, self.model, self.auto = name, model, auto
        self.grouping = make_grouping(rule, model, k)
        self.graphdef, self.weights = nnx.split(model)
        self.engines = {
            (method, cost): network_landscape(
                model, self.grouping, num_samples=B, cost=cost, evaluator=method
            )
            for method in ("auto", "suffix")
            for cost in COSTS
        }
        # Samples in tiles: 4 (the last padded) and 1, as a CPU plans for big sets.
        for cost in COSTS:
            self.engines["tile4", cost] = network_landscape(
                model, self.grouping, num_samples=B, cost=cost, tile=4
            )
        self.engines["tile1-suffix", "ce"] = network_landscape(
            model, self.grouping, num_samples=B, evaluator="suffix", tile=1
        )
        for tag, (method, factor) in CHUNKED.get(name, {}).items():
            nbytes = max(p.bytes_per_group for p in self.engines[method, "ce"].segments)
            self.engines[tag, "ce"] = network_landscape(
                model,
                self.grouping,
                num_samples=B,
                evaluator=method,
                memory_mb=factor * nbytes / 2**20,
            )
        self.run = jax.jit(self._all)
        self.hand_logits = jax.jit(self._hand_logits)

    def _all(self, weights, flat, x, y):
        TRACES[self.name] += 1  # runs only while tracing
        net = nnx.merge(self.graphdef, weights)
        out = {
            key: e.all(network_params(net, x, y), flat)
            for key, e in self.engines.items()
        }
        for cost in COSTS:
            out["naive", cost] = naive_landscapes(net, self.grouping, flat, x, y, cost)
        return out

    def _hand_logits(self, weights, flats, x):
        """Logits of plain forward passes, one per row of ``flats (M, N)``."""
        off, shapes = self.grouping.offsets, self.grouping.shapes

        def one(f):
            masks = tuple(
                f[off[l] : off[l + 1]].reshape(t) for l, t in enumerate(shapes)
            )
            return apply_masked(self.graphdef, weights, masks, x)

        return jax.vmap(one)(flats)

    def by_hand(self, flat, x, y):
        """Every landscape entry from scratch: group g's bits set to s by hand in a
        copy of the mask, a plain masked forward pass, the cost in NumPy.

        Returns ``{cost: (G, S)}`` and ``ties (G, S)``, the number of samples whose
        two largest logits (near-)tie: their 0-1 error depends on float rounding.
        """
        g = self.grouping
        num_configs = 2**g.k
        flats = np.stack(
            [
                set_group(flat, g, i, c)
                for i in range(g.num_groups)
                for c in range(num_configs)
            ]
        )
        logits = np.asarray(self.hand_logits(self.weights, flats, x), np.float64)
        logits = logits.reshape(g.num_groups, num_configs, B, C)
        top2 = np.sort(logits, axis=-1)[..., -2:]
        ties = np.sum(top2[..., 1] - top2[..., 0] <= 1e-5, axis=-1)
        costs = {c: np_cost(logits, y, c) for c in COSTS}
        return costs, ties

    def data(self, seed, keep=0.6):
        """Inputs, labels and a random (never all-ones) flat mask."""
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(B, *FEATURES[self.name[:3]])).astype(np.float32)
        y = rng.integers(0, C, B).astype(np.int32)
        flat = (rng.random(self.grouping.num_bits) < keep).astype(np.float32)
        flat[rng.integers(flat.size)] = 0.0
        return x, y, flat

    def landscapes(self, seed, keep=0.6):
        x, y, flat = self.data(seed, keep)
        out = self.run(self.weights, flat, x, y)
        return x, y, flat, {k: np.asarray(v) for k, v in out.items()}


@functools.cache
def setup(name) -> Setup:
    return Setup(name)


def np_cost(logits, y, cost):
    """Mean cost over the batch axis (-2) of ``(..., B, C)`` logits, in NumPy."""
    logits = np.asarray(logits, np.float64)
    if cost == "error":
        return np.mean(np.argmax(logits, -1) != y, axis=-1)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    labels = np.broadcast_to(y, logp.shape[:-1])[..., None]
    return -np.mean(np.take_along_axis(logp, labels, -1)[..., 0], axis=-1)


def assert_matches_hand(lands, hand, ties, cost, err_msg=""):
    """Equal to the hand-computed costs; for the 0-1 error, entries with tied
    logits may differ by at most the tied samples' share of the batch."""
    if cost == "ce":
        np.testing.assert_allclose(lands, hand, rtol=1e-5, atol=1e-5, err_msg=err_msg)
        return
    free = ties == 0
    np.testing.assert_allclose(lands[free], hand[free], atol=1e-6, err_msg=err_msg)
    assert np.all(np.abs(lands - hand) <= ties / B + 1e-6), err_msg


def set_group(flat, grouping, g, s):
    """A copy of ``flat`` with group ``g``'s bits set to configuration ``s`` (MSB
    first), written out by hand."""
    k = grouping.k
    out = flat.copy()
    for j in range(k):
        if grouping.valid[g, j]:
            out[grouping.index[g, j]] = (s >> (k - 1 - j)) & 1
    return out


def current_config(flat, grouping):
    """Each group's current configuration index (padding bits read as 0)."""
    bits = np.where(grouping.valid, flat[grouping.index], 0).astype(np.int64)
    return bits @ (2 ** np.arange(grouping.k - 1, -1, -1))


# ----------------------------------------------------------------- the oracle


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), keep=st.floats(0.4, 0.95))
def test_fast_landscapes_equal_naive(name, seed, keep):
    s = setup(name)
    x, y, flat, out = s.landscapes(seed, keep)
    hand, ties = s.by_hand(flat, x, y)
    shape = (s.grouping.num_groups, 2**s.grouping.k)
    for cost in COSTS:
        naive = out["naive", cost]
        assert naive.shape == shape
        assert np.all(np.isfinite(naive))
        assert_matches_hand(naive, hand[cost], ties, cost, err_msg="naive")
        for method in ("auto", "suffix", "tile4"):
            assert_matches_hand(out[method, cost], naive, ties, cost, err_msg=method)
    tiled = out["tile1-suffix", "ce"]
    np.testing.assert_allclose(tiled, out["suffix", "ce"], atol=1e-6)
    # Chunked evaluation gives the same numbers.
    for tag in CHUNKED.get(name, {}):
        np.testing.assert_allclose(out[tag, "ce"], out["auto", "ce"], atol=1e-6)
    # New mask values never retrace the evaluator.
    assert TRACES[name] == 1


@pytest.mark.parametrize("name", list(CONFIGS))
def test_landscape_entries_by_hand(name):
    """landscape[g, s] is the cost with group g's bits set to s by hand (every g
    and s, every evaluator); the current configuration's entry is the current
    network's cost, for every group."""
    s = setup(name)
    # A draw where most entries have no tied samples, so the 0-1 error is checked
    # exactly almost everywhere (dead networks tie often; see assert_matches_hand).
    for seed in range(50):
        x, y, flat, out = s.landscapes(seed, keep=0.9)
        hand, ties = s.by_hand(flat, x, y)
        if np.mean(ties == 0) > 0.8:
            break
    else:
        pytest.fail("no mask draw with few logit ties")
    for cost in COSTS:
        for method in ("auto", "suffix", "naive"):
            assert_matches_hand(out[method, cost], hand[cost], ties, cost, method)
    g = s.grouping
    current = current_config(flat, g)
    off = g.offsets
    masks = tuple(flat[off[l] : off[l + 1]].reshape(t) for l, t in enumerate(g.shapes))
    logits = APPLY(s.graphdef, s.weights, masks, x)
    rows = np.arange(g.num_groups)
    for cost in COSTS:
        now = np_cost(logits, y, cost)
        for method in ("auto", "suffix", "naive"):
            lands = out[method, cost]
            tied = ties[rows, current]
            gap = np.abs(lands[rows, current] - now)
            assert np.all(gap <= 1e-5 * (1 + np.abs(now)) + tied / B), (method, cost)


@pytest.mark.parametrize("name", ["mlp-fan_in", "mlp-block", "cnn-neuron"])
def test_padding_bits_do_not_matter(name):
    """Configurations that differ only in padded bits have the same cost."""
    s = setup(name)
    *_, out = s.landscapes(seed=3)
    g = s.grouping
    assert not g.valid.all()
    table = bit_table(g.k)
    for row in np.flatnonzero(~g.valid.all(1)):
        keyed = {}
        for conf, bits in enumerate(table):
            keyed.setdefault(tuple(bits[g.valid[row]]), []).append(conf)
        for confs in keyed.values():
            assert len(confs) > 1
            np.testing.assert_allclose(
                out["auto", "ce"][row, confs], out["auto", "ce"][row, confs[0]]
            )


@pytest.mark.parametrize("name", list(CONFIGS))
def test_plans(name):
    s = setup(name)
    auto = s.engines["auto", "ce"]
    assert tuple(p.kind for p in auto.segments) == s.auto
    assert all(p.kind == "suffix" for p in s.engines["suffix", "ce"].segments)
    # With the default budget a layer's groups run as one chunk.
    for plan in auto.segments:
        a, b = s.grouping.layer_slices[int(plan.name.removeprefix("layer"))]
        assert plan.chunk == b - a
        np.testing.assert_array_equal(plan.arrays["index"], s.grouping.index[a:b])
        assert plan.bytes_per_group > 0


@pytest.mark.parametrize("name", list(CHUNKED))
def test_chunk_sizes_follow_the_budget(name):
    s = setup(name)
    for tag, (method, factor) in CHUNKED[name].items():
        full = s.engines[method, "ce"]
        small = s.engines[tag, "ce"]
        budget = factor * max(p.bytes_per_group for p in full.segments)
        chunks = []
        for plan, nbytes in ((p, p.bytes_per_group) for p in small.segments):
            a, b = s.grouping.layer_slices[int(plan.name.removeprefix("layer"))]
            assert plan.chunk == max(1, min(b - a, int(budget // nbytes)))
            chunks.append((plan.chunk, b - a))
        if factor == 1.0:  # the largest layer runs one group at a time
            assert any(c == 1 < n for c, n in chunks), chunks
        else:  # a chunk that leaves a remainder
            assert any(n % c for c, n in chunks), chunks


@pytest.mark.parametrize("name", ["mlp-fan_in", "cnn-fan_in"])
def test_jit_and_eager_agree(name):
    s = setup(name)
    x, y, flat, out = s.landscapes(seed=11)
    eager = s.engines["auto", "ce"].all(network_params(s.model, x, y), flat)
    np.testing.assert_allclose(eager, out["auto", "ce"], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- prune penalty


class PrunePenaltyTest(chex.TestCase):
    """The penalised landscape is the plain one plus weight/N per 0 bit of each
    configuration, and its differences within a landscape are the penalised
    total's (what the line search and the solvers compare)."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_entries_and_total(self):
        s = setup("mlp-block")  # its last group is padded
        g, n = s.grouping, s.grouping.num_bits
        x, y, flat = s.data(seed=3)
        params = network_params(s.model, x, y)
        plain = s.engines["auto", "ce"]
        weight = 0.37
        land = prune_penalty(plain, weight, n)
        assert not g.valid.all()

        def both(flat):
            return land.all(params, flat), land.total(params, flat)

        lands, total = self.variant(both)(flat)
        zeros = (g.valid[:, None, :] * (1 - bit_table(g.k))[None]).sum(-1)
        chex.assert_shape(lands, (g.num_groups, 2**g.k))
        np.testing.assert_allclose(
            lands, plain.all(params, flat) + weight / n * zeros, atol=1e-6
        )
        np.testing.assert_allclose(
            total, plain.total(params, flat) + weight * np.mean(1 - flat), atol=1e-6
        )
        # A subset of configurations per group (finite-shot oracles) agrees.
        configs = np.random.default_rng(0).integers(0, 2**g.k, (g.num_groups, 5))
        jflat = jax.numpy.asarray(flat)
        ctx = land.prepare(params, jflat)
        seg = land.segments[0]
        some = land.costs(params, jflat, ctx, 0, seg.arrays, configs[: seg.num_groups])
        rows = np.arange(seg.num_groups)[:, None]
        np.testing.assert_allclose(
            some, lands[rows, configs[: seg.num_groups]], atol=1e-5
        )
        # Differences within a landscape are differences of the penalised total.
        rng = np.random.default_rng(1)
        for i in rng.choice(g.num_groups, 4, replace=False):
            cur = current_config(flat, g)[i]
            for c in rng.choice(2**g.k, 3, replace=False):
                moved = set_group(flat, g, i, int(c))
                np.testing.assert_allclose(
                    lands[i, c] - lands[i, cur],
                    land.total(params, moved) - total,
                    atol=1e-5,
                )

    def test_zero_weight_and_bad_arguments(self):
        plain = setup("mlp-fan_in").engines["auto", "ce"]
        assert prune_penalty(plain, 0.0, 10) is plain
        with pytest.raises(ValueError, match="finite"):
            prune_penalty(plain, float("nan"), 10)
        with pytest.raises(ValueError, match="num_bits"):
            prune_penalty(plain, 1.0, 0)


# ----------------------------------------------------------------- conventions


class BitTableTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_bit_table_matches_groups_convention(self):
        for k in (1, 3, 5):
            table = bit_table(k)
            assert table.shape == (2**k, k) and table.dtype == np.float32
            s = np.arange(2**k)
            np.testing.assert_array_equal(self.variant(bit_index)(table), s)
            to_bits = self.variant(index_bits, static_argnums=1)
            np.testing.assert_array_equal(to_bits(s, k), table)
        np.testing.assert_array_equal(
            bit_table(3),
            [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]
            + [[1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]],
        )


def test_cost_fn():
    assert cost_fn("ce") is cross_entropy
    assert cost_fn("error") is error_rate
    with pytest.raises(ValueError, match="cost must be one of"):
        cost_fn("mse")


# ----------------------------------------------------------------------- errors

FAN3 = make_grouping("fan_in", MLP_W, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cost": "mse"}, r"cost must be one of \('ce', 'error'\)"),
        ({"evaluator": "fast"}, "evaluator must be one of"),
        ({"num_samples": 0}, "num_samples must be >= 1, got 0"),
        ({"num_samples": -3}, "num_samples must be >= 1"),
        ({"memory_mb": 0}, "memory_mb must be > 0, got 0"),
        ({"memory_mb": -1.0}, "memory_mb must be > 0"),
        ({"tile": 0}, "tile must be 'auto', None or an int >= 1, got 0"),
        ({"tile": "big"}, "tile must be 'auto', None or an int >= 1"),
        ({"tile": True}, "tile must be 'auto', None or an int >= 1, got True"),
    ],
)
def test_make_engine_bad_arguments(kwargs, match):
    args = {"num_samples": B, **kwargs}
    with pytest.raises(ValueError, match=match):
        network_landscape(MLP_W, FAN3, **args)


@pytest.mark.parametrize(
    "model, grouping",
    [
        (CNN_W, FAN3),  # another network's grouping
        (MLP_N, make_grouping("neuron", CNN_N, 2)),
        (make_model("mlp", (5,), C, hidden=(4,), init="kaiming_normal"), FAN3),
    ],
)
def test_make_engine_mismatched_grouping(model, grouping):
    with pytest.raises(ValueError, match="grouping was built for mask shapes"):
        network_landscape(model, grouping, num_samples=B)


@pytest.mark.parametrize(
    "model, rule", [(CNN_W, "fan_in"), (CNN_W, "block"), (CNN_N, "neuron")]
)
def test_rank1_refuses_convolutions(model, rule):
    grouping = make_grouping(rule, model, 2)
    with pytest.raises(
        ValueError, match="evaluator 'rank1' needs dense layers; layer 0"
    ):
        network_landscape(model, grouping, num_samples=B, evaluator="rank1")


def test_rank1_refuses_last_conv_layer_at_neuron_level():
    """A neuron group of the last conv layer changes a pooled, flattened map."""
    from qselax.groups import explicit_grouping
    from qselax.networks import mask_shapes

    grouping = explicit_grouping([[3, 4]], mask_shapes(CNN_N))  # layer 1: conv
    with pytest.raises(ValueError, match="layer 1 of this model is a convolution"):
        network_landscape(CNN_N, grouping, num_samples=B, evaluator="rank1")


def test_memory_budget_error_gives_estimate():
    # suffix on layer 0 holds 2^3 configs x N samples x 8 units (the widest array,
    # the first hidden layer) x 4 bytes, times 4 for temporaries.
    n = 100_000
    need = 2**3 * n * 8 * 4 * 4 / 2**20  # 97.7 MiB
    with pytest.raises(ValueError) as err:
        network_landscape(
            MLP_W, FAN3, num_samples=n, evaluator="suffix", memory_mb=16, tile=None
        )
    msg = str(err.value)
    assert "one group of layer 0 (2^3 configurations x" in msg
    assert f"2^3 configurations x {n} samples x 8 units) needs about 98 MiB" in msg
    assert "memory budget of 16 MiB" in msg and "raise memory_mb" in msg
    # Exactly at the estimate it plans, one group per chunk.
    engine = network_landscape(
        MLP_W, FAN3, num_samples=n, evaluator="suffix", memory_mb=need, tile=None
    )
    assert engine.segments[0].chunk == 1
    assert engine.segments[0].bytes_per_group == 2**3 * n * 8 * 16
    # An explicit tile of samples is what one group holds: the estimate scales down.
    engine = network_landscape(
        MLP_W, FAN3, num_samples=n, evaluator="suffix", memory_mb=16, tile=1000
    )
    assert engine.segments[0].bytes_per_group == 2**3 * 1000 * 8 * 16


def test_cpu_plans_cache_sized_tiles():
    """On a CPU ("auto") a group sees at most 64 samples at once, and a chunk's
    estimate stays within CACHE_MB whatever memory_mb allows."""
    assert jax.default_backend() == "cpu"
    one = network_landscape(MLP_W, FAN3, num_samples=1, tile=1).segments
    for n in (5, 100, 100_000):
        engine = network_landscape(MLP_W, FAN3, num_samples=n, memory_mb=4096)
        for seg, unit in zip(engine.segments, one, strict=True):
            assert seg.bytes_per_group == seg.tile * unit.bytes_per_group
            assert 1 <= seg.tile <= min(n, CACHE_TILE)
            assert seg.tile & (seg.tile - 1) == 0 or seg.tile == n
            assert seg.chunk * seg.bytes_per_group <= CACHE_MB * 2**20
    whole = network_landscape(MLP_W, FAN3, num_samples=100_000, tile=None).segments
    assert whole[0].bytes_per_group == 100_000 * one[0].bytes_per_group


def test_evaluators_constant():
    assert set(EVALUATORS) == {"auto", "rank1", "suffix", "naive"}
    assert set(COSTS) == {"ce", "error"}


def test_doctests():
    import doctest

    from qselax import landscapes

    result = doctest.testmod(landscapes, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
