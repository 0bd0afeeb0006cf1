"""Shared test set-up: strict promotion, CPU, a key fixture."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
# optax's Adam mixes its int32 step count with Python floats, which "strict" dtype
# promotion rejects; qselax's own code is checked under the stricter rank rule.
jax.config.update("jax_numpy_dtype_promotion", "standard")


@pytest.fixture
def key():
    return jax.random.key(0)
