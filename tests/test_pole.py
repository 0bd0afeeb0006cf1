"""Tests for qselax.pole: Wieland's equations, RK4, limits, starts, episodes."""

import dataclasses
import math
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qselax import pole

CFG = pole.PoleConfig()
# Short episodes; a window short enough for an uncontrolled episode to outlive it.
EP_CFG = dataclasses.replace(CFG, max_steps=150, stable_window=40)

STATES = np.array(
    [
        [0.3, -0.4, 0.05, 0.2, -0.03, 0.5],
        [-1.2, 0.7, -0.2, -0.6, 0.1, -1.5],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [2.0, 1.1, 0.5, 1.3, -0.4, 2.2],
    ]
)
FORCES = np.array([3.0, -7.5, 0.0, 10.0])


def _np_derivatives(s, force, cfg):
    """Wieland's equations in float64, written out independently."""
    x, x_dot, th1, th1_dot, th2, th2_dot = (float(v) for v in s)
    g = -cfg.gravity
    mu_p, mu_c = cfg.hinge_friction, cfg.cart_friction
    (m1, m2), (l1, l2) = cfg.pole_masses, cfg.half_lengths
    temp1 = mu_p * th1_dot / (m1 * l1)
    temp2 = mu_p * th2_dot / (m2 * l2)
    f1 = m1 * l1 * th1_dot**2 * math.sin(th1) + 0.75 * m1 * math.cos(th1) * (
        temp1 + g * math.sin(th1)
    )
    f2 = m2 * l2 * th2_dot**2 * math.sin(th2) + 0.75 * m2 * math.cos(th2) * (
        temp2 + g * math.sin(th2)
    )
    mt1 = m1 * (1 - 0.75 * math.cos(th1) ** 2)
    mt2 = m2 * (1 - 0.75 * math.cos(th2) ** 2)
    sign = (x_dot > 0) - (x_dot < 0)
    x_ddot = (force - mu_c * sign + f1 + f2) / (cfg.cart_mass + mt1 + mt2)
    th1_ddot = -0.75 * (x_ddot * math.cos(th1) + g * math.sin(th1) + temp1) / l1
    th2_ddot = -0.75 * (x_ddot * math.cos(th2) + g * math.sin(th2) + temp2) / l2
    return np.array([x_dot, x_ddot, th1_dot, th1_ddot, th2_dot, th2_ddot])


def _np_rk4(s, force, cfg):
    h = cfg.dt
    k1 = _np_derivatives(s, force, cfg)
    k2 = _np_derivatives(s + h / 2 * k1, force, cfg)
    k3 = _np_derivatives(s + h / 2 * k2, force, cfg)
    k4 = _np_derivatives(s + h * k3, force, cfg)
    return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def _energy(s, cfg):
    """Mechanical energy of the frictionless plant (two uniform rods on a cart)."""
    x_dot = s[..., 1]
    e = 0.5 * cfg.cart_mass * x_dot**2
    for i, (m, l) in enumerate(zip(cfg.pole_masses, cfg.half_lengths, strict=True)):
        th, th_dot = s[..., 2 + 2 * i], s[..., 3 + 2 * i]
        vx = x_dot + l * np.cos(th) * th_dot
        vy = -l * np.sin(th) * th_dot
        e = e + 0.5 * m * (vx**2 + vy**2) + m * l**2 * th_dot**2 / 6
        e = e + m * cfg.gravity * l * np.cos(th)
    return e


def test_derivatives_and_rk4_match_numpy():
    s = jnp.asarray(STATES, jnp.float32)
    f = jnp.asarray(FORCES, jnp.float32)
    d = pole.derivatives(s, f, CFG)
    chex.assert_shape(d, (4, 6))
    want = np.stack(
        [_np_derivatives(a, b, CFG) for a, b in zip(STATES, FORCES, strict=True)]
    )
    np.testing.assert_allclose(d, want, rtol=1e-5, atol=1e-5)
    want = np.stack([_np_rk4(a, b, CFG) for a, b in zip(STATES, FORCES, strict=True)])
    np.testing.assert_allclose(pole.rk4_step(s, f, CFG), want, rtol=1e-5, atol=1e-6)
    # A scalar force broadcasts over the batch.
    np.testing.assert_allclose(
        pole.derivatives(s, 3.0, CFG)[0], _np_derivatives(STATES[0], 3.0, CFG), 1e-5
    )


def test_step_is_substeps_rk4_with_clipped_force():
    s = jnp.asarray(STATES, jnp.float32)
    y = jnp.asarray([0.3, -0.75, 0.0, 2.5], jnp.float32)  # the last one clips to 1
    force = CFG.force_mag * jnp.clip(y, -1.0, 1.0)
    want = pole.rk4_step(pole.rk4_step(s, force, CFG), force, CFG)
    np.testing.assert_allclose(pole.step(s, y, CFG), want, rtol=1e-6, atol=1e-7)
    one = dataclasses.replace(CFG, substeps=1)
    np.testing.assert_allclose(
        pole.step(s, y, one), pole.rk4_step(s, force, CFG), rtol=1e-6, atol=1e-7
    )


def test_physics_sanity():
    zero = jnp.zeros(6, jnp.float32)
    # At rest, upright, no force: exactly at rest (sign(0) = 0, no friction).
    np.testing.assert_array_equal(pole.step(zero, 0.0, CFG), zero)
    # Unstable: a positive theta1 falls further.
    d = pole.derivatives(zero.at[2].set(0.05), 0.0, CFG)
    assert d[3] > 0
    # A push accelerates the cart forward and tips both poles backwards.
    d = pole.derivatives(zero, 5.0, CFG)
    assert d[1] > 0 and d[3] < 0 and d[5] < 0
    # Odd symmetry: f(-s, -F) = -f(s, F).
    s = jnp.asarray(STATES, jnp.float32)
    f = jnp.asarray(FORCES, jnp.float32)
    np.testing.assert_allclose(
        pole.derivatives(-s, -f, CFG), -pole.derivatives(s, f, CFG), rtol=1e-6
    )


def test_energy_conserved_without_friction():
    cfg = dataclasses.replace(CFG, cart_friction=0.0, hinge_friction=0.0)
    s = jnp.asarray([0.0, 0.1, 0.05, 0.0, -0.02, 0.1], jnp.float32)
    roll = jax.jit(
        lambda s: jax.lax.scan(lambda c, _: (pole.step(c, 0.0, cfg),) * 2, s, None, 40)
    )
    _, traj = roll(s)
    traj = np.asarray(traj, np.float64)
    assert np.ptp(traj[:, 2]) > 0.05  # the poles really moved
    e0 = _energy(np.asarray(s, np.float64), cfg)
    np.testing.assert_allclose(_energy(traj, cfg), e0, rtol=0, atol=2e-5)


def test_failed_at_the_limits():
    x = np.float32(CFG.x_limit)
    a = np.float32(math.radians(CFG.angle_limit_deg))
    up = lambda v: np.nextafter(v, np.float32(np.inf))
    rows = []
    for column, limit in ((0, x), (2, a), (4, a)):
        for value, sign in ((limit, 1), (up(limit), 1), (limit, -1), (up(limit), -1)):
            row = np.zeros(6, np.float32)
            row[column] = sign * value
            rows.append(row)
    got = np.asarray(pole.failed(jnp.asarray(np.stack(rows)), CFG))
    np.testing.assert_array_equal(got, [False, True, False, True] * 3)
    assert not pole.failed(jnp.zeros(6), CFG)


def test_observe_and_train_start():
    start = pole.train_start(CFG)
    chex.assert_shape(start, (6,))
    np.testing.assert_allclose(start, [0, 0, math.radians(4.5), 0, 0, 0])
    s = jnp.asarray(STATES, jnp.float32)
    obs = pole.observe(s, CFG)
    chex.assert_shape(obs, (4, 3))
    a = math.radians(36.0)
    want = np.stack([STATES[:, 0] / 2.4, STATES[:, 2] / a, STATES[:, 4] / a], -1)
    np.testing.assert_allclose(obs, want, rtol=1e-6)


def test_training_starts():
    one = pole.training_starts(CFG)
    np.testing.assert_array_equal(one, pole.train_start(CFG)[None])
    starts = pole.training_starts(CFG, 200, jax.random.key(0))
    chex.assert_shape(starts, (200, 6))
    np.testing.assert_array_equal(starts[0], pole.train_start(CFG))
    r = np.array(pole.GENERALISATION_RANGES)
    r[2:] = np.radians(r[2:])
    rest = np.asarray(starts[1:])
    assert np.all(np.abs(rest[:, :4]) <= 0.9 * r + 1e-6)
    assert np.all(rest[:, 4:] == 0)
    # they spread over the test's region (each coordinate reaches past half range)
    assert np.all(np.max(np.abs(rest[:, :4]), axis=0) > 0.5 * r)
    again = pole.training_starts(CFG, 200, jax.random.key(0))
    np.testing.assert_array_equal(starts, again)
    with pytest.raises(ValueError, match="needs a key"):
        pole.training_starts(CFG, 2)
    with pytest.raises(ValueError, match="count must be"):
        pole.training_starts(CFG, 0, jax.random.key(0))


def test_generalisation_starts():
    starts = np.asarray(pole.generalisation_starts())
    assert starts.shape == (625, 6) and starts.dtype == np.float32
    np.testing.assert_array_equal(starts[:, 4:], 0.0)
    ranges = (2.16, 1.35, math.radians(3.6), math.radians(8.6))
    levels = np.array([-0.9, -0.5, 0.0, 0.5, 0.9])
    for column, r in enumerate(ranges):
        np.testing.assert_allclose(np.unique(starts[:, column]), r * levels, 1e-6)
    grid = starts[:, :4].reshape(5, 5, 5, 5, 4)
    for column, r in enumerate(ranges):
        index = [0] * 4
        index[column] = slice(None)  # walk along one axis only
        np.testing.assert_allclose(grid[(*index, column)], r * levels, 1e-6)
    # x varies slowest, theta1_dot fastest.
    np.testing.assert_allclose(starts[:5, 3], ranges[3] * levels, 1e-6)
    np.testing.assert_array_equal(starts[:125, 0], starts[0, 0])


# --- episodes ---------------------------------------------------------------


def _policy(params, carry, obs):
    """Constant push ``gain``, reversed after ``switch`` steps; counts its calls."""
    count, hist = carry
    gain, switch = params
    y = gain * jnp.where(count < switch, 1.0, -1.0)
    hist = jnp.stack([obs[:, 1], hist[:, 0]], axis=1)
    return (count + 1, hist), y


def _batch():
    starts = np.zeros((5, 6), np.float32)
    starts[1, 2] = 1e-4  # falls between stable_window and max_steps (58 steps)
    starts[2, 2] = 0.01  # falls before stable_window (30 steps)
    starts[3, 2] = math.radians(4.5)
    starts[4, 1] = 0.3
    gain = np.array([0.0, 0.0, 0.0, 1.0, 1.0], np.float32)
    switch = np.array([0, 0, 0, 1000, 2], np.int32)
    carry = (np.zeros(5, np.int32), np.zeros((5, 2), np.float32))
    return (jnp.asarray(gain), jnp.asarray(switch)), carry, jnp.asarray(starts)


def _python_episode(start, gain, switch, cfg):
    """Oracle: one episode in a plain Python loop over the module's step/failed."""
    step = jax.jit(pole.step, static_argnums=2)
    s, jiggles = jnp.asarray(start), []
    for t in range(cfg.max_steps):
        y = gain * (1.0 if t < switch else -1.0)
        new = step(s, jnp.float32(y), cfg)
        if pole.failed(new, cfg):
            return t, jiggles, s
        s = new
        jiggles.append(float(np.sum(np.abs(np.asarray(new, np.float64)[:4]))))
    return cfg.max_steps, jiggles, s


def test_run_episodes_matches_python_loop():
    params, carry, starts = _batch()
    run = jax.jit(pole.run_episodes, static_argnums=(0, 4))
    ep = run(_policy, params, carry, starts, EP_CFG)
    chex.assert_shape(
        [ep.steps, ep.fitness, ep.balanced, ep.final], [(5,)] * 3 + [(5, 6)]
    )
    assert ep.steps.dtype == jnp.int32 and ep.balanced.dtype == jnp.bool_
    w = EP_CFG.stable_window
    for i in range(5):
        steps, jiggles, final = _python_episode(
            starts[i], float(params[0][i]), int(params[1][i]), EP_CFG
        )
        assert int(ep.steps[i]) == steps, i
        assert bool(ep.balanced[i]) == (steps == EP_CFG.max_steps)
        np.testing.assert_allclose(ep.final[i], final, rtol=1e-6, atol=1e-7)
        if steps >= w:
            stable = 0.75 / max(sum(jiggles[-w:]), pole.JIGGLE_FLOOR)
        else:
            stable = 0.0
        np.testing.assert_allclose(ep.fitness[i], 1e-4 * steps + 0.9 * stable, 1e-5)
    steps = np.asarray(ep.steps)
    assert steps[0] == EP_CFG.max_steps and ep.balanced[0]  # rest, no force
    assert w < steps[1] < EP_CFG.max_steps  # the ring buffer holds the last w
    assert 0 < steps[2] < w and ep.fitness[2] == pytest.approx(1e-4 * steps[2])
    assert steps[3] < 10  # pushed over quickly
    assert not ep.balanced[1:].any()

    # Without jit (the loop itself still compiles), same numbers.
    chex.assert_trees_all_close(
        pole.run_episodes(_policy, params, carry, starts, EP_CFG), ep, rtol=1e-6
    )
    # Chunked, chunk not dividing B, padded with the last episode.
    chunked = jax.jit(
        lambda p, c, s: pole.run_chunked(_policy, p, c, s, EP_CFG, chunk=2)
    )(params, carry, starts)
    chex.assert_trees_all_close(chunked, ep, rtol=1e-6)


def test_run_chunked_shared_params():
    cfg = dataclasses.replace(CFG, max_steps=40, stable_window=10)

    def policy(gain, count, obs):
        # A shared gain on theta1; the counter flips the sign after 5 steps.
        y = gain * obs[:, 1] * jnp.where(count < 5, 1.0, -1.0)
        return count + 1, y

    starts = jnp.zeros((3, 6), jnp.float32).at[:, 2].set(jnp.asarray([0.0, 0.1, -0.2]))
    count = jnp.zeros(3, jnp.int32)
    gain = jnp.float32(3.0)
    chunked = jax.jit(
        lambda g, c, s: pole.run_chunked(
            policy, g, c, s, cfg, chunk=2, batched_params=False
        )
    )
    ep = chunked(gain, count, starts)
    chex.assert_trees_all_close(
        ep, pole.run_episodes(policy, gain, count, starts, cfg), rtol=1e-6
    )
    assert ep.balanced[0] and not ep.balanced[1:].any()


def test_config_validation():
    with pytest.raises((ValueError, TypeError), match="cart_mass"):
        pole.PoleConfig(cart_mass=0.0)
    with pytest.raises((ValueError, TypeError), match="pole_masses"):
        pole.PoleConfig(pole_masses=(0.1, -0.01))
    with pytest.raises((ValueError, TypeError), match="half_lengths"):
        pole.PoleConfig(half_lengths=(0.5,))
    with pytest.raises((ValueError, TypeError), match="dt"):
        pole.PoleConfig(dt=0.0)
    with pytest.raises((ValueError, TypeError), match="substeps"):
        pole.PoleConfig(substeps=0)
    with pytest.raises((ValueError, TypeError), match="max_steps"):
        dataclasses.replace(CFG, max_steps=0)
    with pytest.raises((ValueError, TypeError), match="stable_window"):
        pole.PoleConfig(stable_window=1.5)
    with pytest.raises((ValueError, TypeError), match="cart_friction"):
        pole.PoleConfig(cart_friction=-1.0)
    with pytest.raises((ValueError, TypeError), match="angle_limit_deg"):
        pole.PoleConfig(angle_limit_deg=0.0)
    # Lists are turned into tuples so that the config stays hashable.
    assert hash(pole.PoleConfig(pole_masses=[0.1, 0.01])) == hash(CFG)


def test_bad_chunk_and_starts():
    params, carry, starts = _batch()
    with pytest.raises(ValueError, match="chunk"):
        pole.run_chunked(_policy, params, carry, starts, EP_CFG, chunk=0)
    with pytest.raises((ValueError, TypeError), match="starts"):
        pole.run_episodes(_policy, params, carry, starts[:, :4], EP_CFG)


def test_plant_presets():
    assert pole.plant_config("inverted") == CFG == pole.plant_config()
    ref = pole.plant_config("reference")
    assert (ref.poles, ref.substeps, ref.dt) == ("hanging", 1, 0.01)
    assert (ref.stable_window, ref.fitness_rule) == (101, "reference")
    assert pole.plant_config("reference", substeps=2).substeps == 2
    assert hash(ref) == hash(pole.plant_config("reference"))
    with pytest.raises(ValueError, match="plant"):
        pole.plant_config("upright")
    with pytest.raises(ValueError, match="poles"):
        pole.PoleConfig(poles="sideways")
    with pytest.raises(ValueError, match="fitness_rule"):
        pole.PoleConfig(fitness_rule="gruau")


def test_hanging_flips_the_sign_of_gravity_only():
    hanging = dataclasses.replace(CFG, poles="hanging")
    # The inverted equations written out, with g = +gravity.
    flipped = types.SimpleNamespace(
        **{**dataclasses.asdict(CFG), "gravity": -CFG.gravity}
    )
    for s, f in zip(STATES, FORCES, strict=True):
        np.testing.assert_allclose(
            pole.derivatives(jnp.asarray(s, jnp.float32), f, hanging),
            _np_derivatives(s, f, flipped),
            rtol=2e-5,
            atol=2e-5,
        )


def test_rest_eigenvalues():
    """Linearised at rest: inverted has a real unstable pair, reference none."""
    inverted = pole.rest_eigenvalues(pole.plant_config("inverted"))
    assert np.allclose(inverted.imag, 0.0)
    positive = np.sort(inverted.real[inverted.real > 1e-3])
    # hinge friction shifts the pair: -12.203, +12.143
    np.testing.assert_allclose(positive, [3.972, 12.143], atol=2e-3)
    hanging = pole.rest_eigenvalues(pole.plant_config("reference"))
    assert np.all(hanging.real <= 1e-6) and np.all(hanging.real > -0.05)
    np.testing.assert_allclose(
        np.sort(hanging.imag[hanging.imag > 1e-3]), [3.972, 12.173], atol=2e-3
    )
    # A cart too heavy to move, no hinge friction: each pole's own pivot rate
    # sqrt(0.75 g / l), 3.835 and 12.128 per second.
    for name in ("inverted", "reference"):
        cfg = pole.plant_config(name, cart_mass=1e6, hinge_friction=0.0)
        ev = pole.rest_eigenvalues(cfg)
        rate = np.sort(np.abs(ev[np.abs(ev) > 1e-3]))[::2]
        np.testing.assert_allclose(rate, [3.835, 12.128], atol=2e-3)
        assert np.allclose(ev.imag, 0.0) == (name == "inverted")


def _zero_force_angles(cfg, steps):
    def body(s, _):
        s = pole.step(s, 0.0, cfg)
        return s, s[2]

    return jax.lax.scan(body, pole.train_start(cfg), None, length=steps)[1]


def test_zero_force_on_each_plant():
    """Without force the reference plant's long pole swings within its 4.5 degree
    start for 1000 steps; the inverted plant's falls past 36 degrees."""
    ref = pole.plant_config("reference")
    theta = np.degrees(np.asarray(_zero_force_angles(ref, 1000)))
    assert np.max(np.abs(theta)) <= 4.5 + 1e-4
    assert theta.min() < -4.0  # it does swing
    ep = pole.run_episodes(
        lambda p, c, o: (c, jnp.zeros(o.shape[0])),
        None,
        jnp.zeros(1),
        pole.train_start(ref)[None],
        ref,
    )
    assert bool(ep.balanced[0]) and int(ep.steps[0]) == 1000
    inverted = np.degrees(np.asarray(_zero_force_angles(CFG, 200)))
    assert np.max(np.abs(inverted)) > 36.0


def _reference_loop_fitness(cfg, policy_gain, start):
    """The reference code's fitness loop, written out: every simulated step's state
    enters the window, the failing one too; the time term is the loop index."""
    s = np.asarray(start, np.float32)
    fst, t, f = [], 0, 0.0
    lim = cfg.angle_limit
    while (
        t < cfg.max_steps
        and abs(s[0]) < cfg.x_limit
        and abs(s[2]) < lim
        and abs(s[4]) < lim
    ):
        s = np.asarray(pole.step(jnp.asarray(s), float(policy_gain * s[2] / lim), cfg))
        fst.append(float(np.sum(np.abs(s[:4]))))
        w = cfg.stable_window
        stable = 0.75 / sum(fst[-w:]) if t >= w else 0.0
        f = 1e-4 * t + 0.9 * stable
        t += 1
    return f


@pytest.mark.parametrize("gain", [0.0, 3.0, -2.0])
def test_reference_fitness_rule(gain):
    cfg = pole.plant_config("reference", max_steps=160, stable_window=30)
    start = pole.train_start(cfg)
    ep = pole.run_episodes(
        lambda p, c, o: (c, p * o[:, 1]), gain, jnp.zeros(1), start[None], cfg
    )
    expected = _reference_loop_fitness(cfg, gain, start)
    np.testing.assert_allclose(float(ep.fitness[0]), expected, rtol=1e-4)
