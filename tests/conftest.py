"""Shared test set-up: strict promotion, CPU, fast compiles, a key fixture."""

import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
# optax's Adam mixes its int32 step count with Python floats, which "strict" dtype
# promotion rejects; qselax's own code is checked under the stricter rank rule.
jax.config.update("jax_numpy_dtype_promotion", "standard")
# Most tests compile far more than they compute, and XLA's optimisation passes are
# most of a compile: they are off (the same computation, slower code) in every test
# and in the processes tests start (read from the environment there), except the
# slow end-to-end runs in this process, which compute, and the tests marked
# ``optimized``, which compare two programs bit for bit (fixture below). On
# tests/test_measure.py alone this took the run from 95 s to 71 s, and the whole
# suite on 2 workers from 14m40s to 12m51s.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")


@pytest.fixture(autouse=True)
def _fast_compiles(request):
    before = jax.config.read("jax_disable_most_optimizations")
    keep = any(request.node.get_closest_marker(m) for m in ("slow", "optimized"))
    jax.config.update("jax_disable_most_optimizations", not keep)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def key():
    return jax.random.key(0)
