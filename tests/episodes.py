"""A plain Python double-pole episode: the oracle the compiled episodes are checked
against (tests/test_esn.py, tests/test_readout.py)."""

import jax.numpy as jnp
import numpy as np

from qselax import pole


def python_episode(net, controller, start, cfg):
    """One episode of ``controller(z, obs) -> y`` on ``net``'s reservoir, in float64.

    The reservoir steps ``z <- (1 - a) z + a tanh(b + W_in u + W z)`` (``a`` the
    net's leak) before each control; the plant steps with ``qselax.pole``.

    Returns:
        ``(steps balanced, Gruau damping fitness)``.
    """
    w_in, w_res, b_res = (np.asarray(a, np.float64) for a in net[:3])
    leak = float(net.leak)
    z = np.asarray(net.z0, np.float64)
    state = jnp.asarray(start)[None]
    window, t = [], 0
    while t < cfg.max_steps:
        obs = np.asarray(pole.observe(state, cfg))[0]
        z = (1 - leak) * z + leak * np.tanh(b_res + w_in @ obs + w_res @ z)
        y = controller(z, obs)
        new = pole.step(state, jnp.asarray([y], jnp.float32), cfg)
        if bool(pole.failed(new, cfg)[0]):
            break
        state, t = new, t + 1
        v = np.asarray(state[0])
        window.append(abs(v[0]) + abs(v[1]) + abs(v[2]) + abs(v[3]))
    stable = 0.0
    if t >= cfg.stable_window:
        stable = 0.75 / sum(window[-cfg.stable_window :])
    return t, 1e-4 * t + 0.9 * stable
