"""The double pole on a cart (Wieland 1991), batched, for thousands of episodes at once.

The plant of the double-pole balancing benchmark as written in the Gomez / Stanley
NEAT and ESP C code and in Igel's Shark: a cart of mass ``M`` on a track carries two
hinged poles of masses ``m_i`` and half-lengths ``l_i``; the poles interact only
through the cart.  The state ``(..., 6)`` float32 is
``[x, x_dot, theta1, theta1_dot, theta2, theta2_dot]`` (metres, seconds, radians);
``theta > 0`` leans the pole towards ``+x``.  With ``g = -gravity`` (the C code's
``GRAVITY = -9.8`` sign; ``g = +gravity`` for ``poles="hanging"``, below), ``mu_c``
the cart and ``mu_p`` the hinge friction::

    temp_i    = mu_p * theta_dot_i / (m_i * l_i)
    Ftilde_i  = m_i l_i theta_dot_i^2 sin(theta_i)
                + 0.75 m_i cos(theta_i) (temp_i + g sin(theta_i))
    mtilde_i  = m_i (1 - 0.75 cos(theta_i)^2)
    x_ddot    = (F - mu_c sign(x_dot) + Ftilde_1 + Ftilde_2)
                / (M + mtilde_1 + mtilde_2)
    theta_ddot_i = -0.75 (x_ddot cos(theta_i) + g sin(theta_i) + temp_i) / l_i

(``sign(0) = 0``: a cart at rest feels no friction.)  Without friction these are
the exact Euler-Lagrange equations of two uniform rods on a cart, so the energy
``M x_dot^2 / 2 + sum_i [m_i |v_i|^2 / 2 + m_i l_i^2 theta_dot_i^2 / 6
+ m_i gravity l_i cos(theta_i)]`` (``v_i`` the velocity of pole i's centre) is
conserved.

**Two plants** (:data:`PLANTS`, :func:`plant_config`).  ``"inverted"`` (the
default :class:`PoleConfig`) is the standard benchmark: ``theta = 0`` is the
upright, unstable equilibrium (linearised at rest: real eigenvalues ``-12.20,
-3.97, 0, 0, +3.97, +12.14`` per second).  ``"reference"`` is the plant of the
NK Echo State Network reference implementation (R. Tinós's C++ code): the same
equations with ``g = +9.80665`` in place of ``-9.8``, so ``theta = 0`` is the
poles' *lowest* position and the rest state is stable (eigenvalues ``±3.97j``
and ``-0.03 ± 12.17j``, damped only by the hinge friction; a zero force keeps
``theta1`` within its 4.5 degree start for 1000 steps); it takes one RK4 step
of 0.01 s per control step and keeps that code's fitness accounting
(``fitness_rule``, below).  :func:`rest_eigenvalues` gives the linearisation
(with the cart held fixed the rates are each pole's ``sqrt(0.75 g / l)``,
3.835 and 12.13 per second).

**Time step.**  One *control step* (:func:`step`) holds the force
``F = force_mag * clip(y, -1, 1)`` constant over ``substeps`` classical RK4 steps
of ``dt`` each: by default two steps of 0.01 s, i.e. 0.02 s per network
activation, exactly as the Gomez / Stanley / Igel code does (``TAU = 0.01`` and
two ``rk4`` calls per action).  ``max_steps = 1000`` control steps are 20 s.

**Failure** (:func:`failed`): ``|x| > x_limit`` (2.4 m) or either
``|theta_i| > angle_limit`` (36 degrees), strict inequalities as in the C code.

**Episodes** (:func:`run_episodes`): a batch of B episodes runs in one
``lax.while_loop`` over control steps that stops when every episode has failed.
Each step: ``obs = observe(state)`` (cart position and pole angles, no
velocities), ``carry, y = policy(params, carry, obs)``, ``new = step(state, y)``.
An episode whose new state fails dies; that step does not count, and its state
and policy carry stay frozen at their values *before* that step, so
``Episodes.final`` is the last non-failed state (the state after ``steps``
control steps).  A start that already fails scores ``steps = 0``.

**Gruau damping fitness** (Gruau, Whitley & Pyeatt 1996, as in the NEAT code)::

    f = 1e-4 * t + 0.9 * f_stable,
    f_stable = 0                  if t < stable_window (100)
             = 0.75 / max(S, JIGGLE_FLOOR)   otherwise,

with ``t`` the control steps survived (at most ``max_steps``) and ``S`` the sum
over the last ``stable_window`` survived control steps of
``|x| + |x_dot| + |theta1| + |theta1_dot|`` of the state *after* each of those
steps (a per-episode ring buffer).  The floor only matters for a perfectly still
plant (``S = 0``, e.g. the rest state without force), which would otherwise
score infinity.

``fitness_rule="reference"`` follows the reference code's loop instead: the time
term counts ``min(t, max_steps - 1)`` and the window holds the last
``stable_window`` (there 101) states *simulated*, the failing one included; the
damping term applies once ``min(t, max_steps - 1) >= stable_window``.

Example:
    >>> cfg = PoleConfig()
    >>> s = step(train_start(cfg), 0.5, cfg)
    >>> s.shape, bool(failed(s, cfg)), observe(s, cfg).shape
    ((6,), False, (3,))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "FITNESS_RULES",
    "GENERALISATION_PERCENTILES",
    "GENERALISATION_RANGES",
    "JIGGLE_FLOOR",
    "PLANTS",
    "POLES",
    "Episodes",
    "PoleConfig",
    "damping_fitness",
    "derivatives",
    "failed",
    "generalisation_starts",
    "observe",
    "plant_config",
    "rest_eigenvalues",
    "rk4_step",
    "run_chunked",
    "run_episodes",
    "step",
    "train_start",
    "training_starts",
]

#: Lower bound on the damping sum ``S`` (see the module docstring).
JIGGLE_FLOOR = 1e-6

#: Percentiles of the generalisation test's ranges (Gruau et al. 1996).
GENERALISATION_PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Half-ranges of x (m), x_dot (m/s), theta1 (deg), theta1_dot (deg/s).
GENERALISATION_RANGES = (2.16, 1.35, 3.6, 8.6)

#: Named plants of :func:`plant_config` (module docstring).
PLANTS = ("inverted", "reference")
#: Values of ``PoleConfig.poles``: the sign of gravity in Wieland's equations.
POLES = ("inverted", "hanging")
#: Values of ``PoleConfig.fitness_rule`` (module docstring).
FITNESS_RULES = ("survived", "reference")

Policy = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]


@dataclasses.dataclass(frozen=True)
class PoleConfig:
    """Constants of the plant and of an episode (hashable; never traced).

    Attributes:
        cart_mass: cart mass M (kg).
        pole_masses: ``(m_1, m_2)`` pole masses (kg).
        half_lengths: ``(l_1, l_2)`` pole *half*-lengths (m).
        cart_friction: cart-track friction coefficient ``mu_c``.
        hinge_friction: pole-hinge friction coefficient ``mu_p``.
        gravity: gravitational acceleration (m/s^2, positive; the equations use
            ``g = -gravity``).
        force_mag: force (N) of a policy output of 1.
        dt: RK4 step (s).
        substeps: RK4 steps per control step.
        x_limit: the cart fails beyond ``|x| > x_limit`` (m).
        angle_limit_deg: a pole fails beyond ``|theta| > angle_limit_deg``.
        max_steps: control steps of an episode.
        stable_window: control steps the damping term of the fitness looks back.
        start_angle_deg: ``theta1`` of the training start :func:`train_start`.
        poles: ``"inverted"`` (``g = -gravity``: the upright equilibrium) or
            ``"hanging"`` (``g = +gravity``, the reference implementation's
            sign: the poles hang below the cart).
        fitness_rule: ``"survived"`` (the damping window holds survived steps) or
            ``"reference"`` (the reference code's loop counts; module docstring).
    """

    cart_mass: float = 1.0
    # Lists (e.g. from JSON) are accepted and turned into tuples.
    pole_masses: tuple[float, float] | list[float] = (0.1, 0.01)
    half_lengths: tuple[float, float] | list[float] = (0.5, 0.05)
    cart_friction: float = 5e-4
    hinge_friction: float = 2e-6
    gravity: float = 9.80665
    force_mag: float = 10.0
    dt: float = 0.01
    substeps: int = 2
    x_limit: float = 2.4
    angle_limit_deg: float = 36.0
    max_steps: int = 1000
    stable_window: int = 100
    start_angle_deg: float = 4.5
    poles: str = "inverted"
    fitness_rule: str = "survived"

    def __post_init__(self):
        # Lists would make the config unhashable (and so unusable as a static arg).
        for name in ("pole_masses", "half_lengths"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                object.__setattr__(self, name, tuple(float(v) for v in value))
        self.validate()

    def validate(self) -> PoleConfig:
        """Raises ``ValueError`` naming the first bad field; returns ``self``."""
        for name in ("pole_masses", "half_lengths"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != 2:
                raise ValueError(f"{name} must be a pair of floats, got {value!r}")
            if not all(v > 0 for v in value):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("cart_mass", "dt", "x_limit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("cart_friction", "hinge_friction", "gravity", "force_mag"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.angle_limit_deg <= 180:
            raise ValueError(
                f"angle_limit_deg must be in (0, 180], got {self.angle_limit_deg!r}"
            )
        for name in ("substeps", "max_steps", "stable_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.poles not in POLES:
            raise ValueError(f"poles must be one of {POLES}, got {self.poles!r}")
        if self.fitness_rule not in FITNESS_RULES:
            raise ValueError(
                f"fitness_rule must be one of {FITNESS_RULES}, got "
                f"{self.fitness_rule!r}"
            )
        if not abs(self.start_angle_deg) < self.angle_limit_deg:
            raise ValueError(
                "start_angle_deg must lie inside (-angle_limit_deg, angle_limit_deg), "
                f"got {self.start_angle_deg!r}"
            )
        return self

    @property
    def angle_limit(self) -> float:
        """The angle limit in radians."""
        return math.radians(self.angle_limit_deg)


_PLANT_FIELDS = {
    "inverted": {},
    "reference": {
        "poles": "hanging",
        "substeps": 1,
        "stable_window": 101,
        "fitness_rule": "reference",
    },
}


def plant_config(name: str = "inverted", **overrides) -> PoleConfig:
    """The named plant of :data:`PLANTS` as a :class:`PoleConfig`.

    ``"inverted"`` is ``PoleConfig()``.  ``"reference"`` is the NK Echo State
    Network reference implementation's plant: hanging poles (``g = +9.80665``),
    one RK4 step of 0.01 s per control step, and that code's fitness accounting
    (a 101-step window that includes the failing state).

    Args:
        name: one of :data:`PLANTS`.
        **overrides: fields of :class:`PoleConfig` to change (e.g. ``substeps``).

    Returns:
        The config.

    Example:
        >>> cfg = plant_config("reference", max_steps=50)
        >>> cfg.poles, cfg.substeps, cfg.max_steps
        ('hanging', 1, 50)
    """
    if name not in PLANTS:
        raise ValueError(f"plant must be one of {PLANTS}, got {name!r}")
    return PoleConfig(**{**_PLANT_FIELDS[name], **overrides})


class Episodes(NamedTuple):
    """Outcome of a batch of B episodes.

    Attributes:
        steps: ``(B,)`` int32 control steps survived (the step whose result fails
            does not count); ``max_steps`` if the episode never failed.
        fitness: ``(B,)`` float32 Gruau damping fitness (module docstring).
        balanced: ``(B,)`` bool, never failed within ``max_steps``.
        final: ``(B, 6)`` the last non-failed state, i.e. the state after
            ``steps`` control steps (not the failing state).
    """

    steps: jax.Array
    fitness: jax.Array
    balanced: jax.Array
    final: jax.Array


def derivatives(
    state: Float[Array, "*B 6"], force: Float[Array, "*B"] | float, cfg: PoleConfig
) -> Float[Array, "*B 6"]:
    """Time derivative of the state under a constant force (Wieland's equations).

    Args:
        state: ``(..., 6)`` ``[x, x_dot, theta1, theta1_dot, theta2, theta2_dot]``.
        force: ``(...)`` (or scalar) force on the cart in newtons.
        cfg: the plant.

    Returns:
        ``(..., 6)`` ``[x_dot, x_ddot, theta1_dot, theta1_ddot, theta2_dot,
        theta2_ddot]``.
    """
    state = jnp.asarray(state)
    g = cfg.gravity if cfg.poles == "hanging" else -cfg.gravity
    x_dot = state[..., 1]
    thetas = (state[..., 2], state[..., 4])
    theta_dots = (state[..., 3], state[..., 5])
    force_sum = force - cfg.cart_friction * jnp.sign(x_dot)
    mass_sum = cfg.cart_mass
    trig = []
    for m, l, theta, theta_dot in zip(
        cfg.pole_masses, cfg.half_lengths, thetas, theta_dots, strict=True
    ):
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        temp = cfg.hinge_friction * theta_dot / (m * l)
        force_sum = force_sum + (
            m * l * theta_dot**2 * sin + 0.75 * m * cos * (temp + g * sin)
        )
        mass_sum = mass_sum + m * (1.0 - 0.75 * cos**2)
        trig.append((cos, sin, temp))
    x_ddot = force_sum / mass_sum
    theta_ddots = [
        -0.75 * (x_ddot * cos + g * sin + temp) / l
        for (cos, sin, temp), l in zip(trig, cfg.half_lengths, strict=True)
    ]
    return jnp.stack(
        [x_dot, x_ddot, theta_dots[0], theta_ddots[0], theta_dots[1], theta_ddots[1]],
        axis=-1,
    )


def rest_eigenvalues(cfg: PoleConfig) -> np.ndarray:
    """Eigenvalues of the plant linearised at rest (zero state, zero force).

    The Jacobian of :func:`derivatives` by ``jax.jacobian`` (float32), without
    the cart friction (its ``sign(x_dot)`` has no derivative at rest); its
    eigenvalues by NumPy.

    Args:
        cfg: the plant.

    Returns:
        ``(6,)`` complex eigenvalues (1/s), sorted by real then imaginary part.

    Example:
        >>> ev = rest_eigenvalues(plant_config("inverted"))
        >>> round(float(ev.real.max()), 2)
        12.14
    """
    plant = dataclasses.replace(cfg, cart_friction=0.0)
    jac = jax.jacobian(lambda s: derivatives(s, 0.0, plant))(jnp.zeros(6))
    return np.sort_complex(np.linalg.eigvals(np.asarray(jac, np.float64)))


def rk4_step(
    state: Float[Array, "*B 6"], force: Float[Array, "*B"] | float, cfg: PoleConfig
) -> Float[Array, "*B 6"]:
    """One classical RK4 step of ``cfg.dt`` with the force held constant.

    Args:
        state: ``(..., 6)`` state.
        force: ``(...)`` (or scalar) force in newtons.
        cfg: the plant.

    Returns:
        ``(..., 6)`` the state ``dt`` later.
    """
    state = jnp.asarray(state)
    h = cfg.dt
    f = lambda s: derivatives(s, force, cfg)
    k1 = f(state)
    k2 = f(state + (0.5 * h) * k1)
    k3 = f(state + (0.5 * h) * k2)
    k4 = f(state + h * k3)
    return state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def step(
    state: Float[Array, "*B 6"], y: Float[Array, "*B"] | float, cfg: PoleConfig
) -> Float[Array, "*B 6"]:
    """One control step: ``substeps`` RK4 steps under ``force_mag * clip(y, -1, 1)``.

    Args:
        state: ``(..., 6)`` state.
        y: ``(...)`` (or scalar) policy output, clipped to ``[-1, 1]``.
        cfg: the plant.

    Returns:
        ``(..., 6)`` the state ``substeps * dt`` later.
    """
    state = jnp.asarray(state)
    force = cfg.force_mag * jnp.clip(jnp.asarray(y, state.dtype), -1.0, 1.0)
    for _ in range(cfg.substeps):
        state = rk4_step(state, force, cfg)
    return state


def failed(state: Float[Array, "*B 6"], cfg: PoleConfig) -> Bool[Array, "*B"]:
    """``|x| > x_limit`` or ``|theta1| > angle_limit`` or ``|theta2| > angle_limit``.

    Args:
        state: ``(..., 6)`` state.
        cfg: the plant.

    Returns:
        ``(...)`` bool.
    """
    state = jnp.asarray(state)
    return (
        (jnp.abs(state[..., 0]) > cfg.x_limit)
        | (jnp.abs(state[..., 2]) > cfg.angle_limit)
        | (jnp.abs(state[..., 4]) > cfg.angle_limit)
    )


def observe(state: Float[Array, "*B 6"], cfg: PoleConfig) -> Float[Array, "*B 3"]:
    """The controller's input, no velocities: ``[x, theta1, theta2]`` scaled by limits.

    Args:
        state: ``(..., 6)`` state.
        cfg: the plant.

    Returns:
        ``(..., 3)`` ``[x / x_limit, theta1 / angle_limit, theta2 / angle_limit]``.
    """
    state = jnp.asarray(state)
    return jnp.stack(
        [
            state[..., 0] / cfg.x_limit,
            state[..., 2] / cfg.angle_limit,
            state[..., 4] / cfg.angle_limit,
        ],
        axis=-1,
    )


def train_start(cfg: PoleConfig) -> Float[Array, " 6"]:
    """The training start: ``theta1 = start_angle_deg`` (4.5 degrees), all else 0.

    Args:
        cfg: the plant.

    Returns:
        ``(6,)`` float32 state.
    """
    return jnp.zeros(6, jnp.float32).at[2].set(math.radians(cfg.start_angle_deg))


def _test_ranges() -> np.ndarray:
    """:data:`GENERALISATION_RANGES` in SI units (angles in radians), float64."""
    r = np.asarray(GENERALISATION_RANGES, np.float64)
    r[2:] = np.radians(r[2:])
    return r


def training_starts(
    cfg: PoleConfig, count: int = 1, key: jax.Array | None = None
) -> Float[Array, "S 6"]:
    """The training start and ``count - 1`` random ones, for multi-start fitness.

    Start 0 is :func:`train_start`.  The others draw ``x``, ``x_dot``, ``theta1``
    and ``theta1_dot`` uniformly from ``±0.9`` times the generalisation test's
    ranges (:data:`GENERALISATION_RANGES`, the span of its 625 starts) with
    ``theta2 = theta2_dot = 0``: training episodes from the region the test covers,
    never its grid points (a continuous draw hits one with probability 0).

    Args:
        cfg: the plant.
        count: starts in all, ``>= 1``.
        key: PRNG key of the random starts (required when ``count > 1``).

    Returns:
        ``(count, 6)`` float32 states.

    Example:
        >>> training_starts(PoleConfig(), 3, jax.random.key(0)).shape
        (3, 6)
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    first = train_start(cfg)[None]
    if count == 1:
        return first
    if key is None:
        raise ValueError("training_starts needs a key for count > 1")
    r = _test_ranges()
    u = jax.random.uniform(key, (count - 1, 4), jnp.float32, -0.9, 0.9)
    rest = (
        jnp.zeros((count - 1, 6), jnp.float32)
        .at[:, :4]
        .set(u * jnp.asarray(r, jnp.float32)[None])
    )
    return jnp.concatenate([first, rest], axis=0)


def generalisation_starts() -> Float[Array, "625 6"]:
    """The 625 starts of the standard generalisation test (Gruau et al. 1996).

    ``x``, ``x_dot``, ``theta1`` and ``theta1_dot`` each take the values at 5, 25,
    50, 75 and 95 % of the ranges ``±2.16 m``, ``±1.35 m/s``, ``±3.6 deg`` and
    ``±8.6 deg/s`` (``-r + p 2r``, i.e. ``0, ±0.5 r, ±0.9 r``), all ``5^4``
    combinations with ``x`` varying slowest and ``theta1_dot`` fastest;
    ``theta2 = theta2_dot = 0``.

    Returns:
        ``(625, 6)`` float32 states, angles in radians.
    """
    p = np.asarray(GENERALISATION_PERCENTILES)
    r = _test_ranges()
    values = -r[:, None] + p[None, :] * 2.0 * r[:, None]  # (4, 5)
    grid = np.meshgrid(*values, indexing="ij")
    starts = np.zeros((625, 6))
    for column, axis in zip((0, 1, 2, 3), grid, strict=True):
        starts[:, column] = axis.reshape(-1)
    return jnp.asarray(starts, jnp.float32)


def _where(mask: Bool[Array, " B"], new, old):
    """Per-episode select over a pytree whose leaves have leading dim B."""

    def leaf(n, o):
        m = mask.reshape(mask.shape + (1,) * (jnp.ndim(n) - 1))
        return jnp.where(m, n, o)

    return jax.tree.map(leaf, new, old)


def _jiggle(state: Float[Array, "B 6"]) -> Float[Array, " B"]:
    return jnp.sum(jnp.abs(state[..., :4]), axis=-1)


class _Loop(NamedTuple):
    t: jax.Array  # () int32 control steps taken by the batch
    state: jax.Array  # (B, 6)
    carry: Any  # policy carry, leaves (B, ...)
    alive: jax.Array  # (B,) bool
    steps: jax.Array  # (B,) int32
    ring: jax.Array  # (B, stable_window) jiggle of the last survived steps


def run_episodes(
    policy: Policy,
    params: Any,
    carry: Any,
    starts: Float[Array, "B 6"],
    cfg: PoleConfig,
) -> Episodes:
    """Run B episodes in one ``lax.while_loop`` over control steps.

    Jit it with the policy and the config static, e.g.
    ``jax.jit(run_episodes, static_argnums=(0, 4))``.

    Args:
        policy: ``policy(params, carry, obs (B, 3)) -> (carry, y (B,))`` on the
            whole batch; ``y`` is clipped to ``[-1, 1]``.
        params: pytree passed to the policy unchanged (per-episode or shared).
        carry: the policy's initial carry, a pytree of leaves with leading dim B
            (e.g. a reservoir state ``(B, R)``); frozen once an episode fails.
        starts: ``(B, 6)`` initial states.
        cfg: the plant and the episode length (static).

    Returns:
        The :class:`Episodes`.
    """
    starts = jnp.asarray(starts, jnp.float32)
    if starts.ndim != 2 or starts.shape[1] != 6:
        raise ValueError(f"starts must have shape (B, 6), got {starts.shape}")
    b, w = starts.shape[0], cfg.stable_window

    def cond(c: _Loop):
        return (c.t < cfg.max_steps) & jnp.any(c.alive)

    def body(c: _Loop) -> _Loop:
        new_carry, y = policy(params, c.carry, observe(c.state, cfg))
        y = jnp.asarray(y)
        if y.shape != (b,):
            raise ValueError(f"policy output must have shape ({b},), got {y.shape}")
        new = step(c.state, y.astype(jnp.float32), cfg)
        ok = c.alive & ~failed(new, cfg)
        slot = c.t % w  # every alive episode has survived exactly t steps
        # The reference code's window also holds the state that fails.
        record = c.alive if cfg.fitness_rule == "reference" else ok
        ring = c.ring.at[:, slot].set(jnp.where(record, _jiggle(new), c.ring[:, slot]))
        return _Loop(
            t=c.t + 1,
            state=_where(ok, new, c.state),
            carry=_where(ok, new_carry, c.carry),
            alive=ok,
            steps=c.steps + ok.astype(jnp.int32),
            ring=ring,
        )

    init = _Loop(
        t=jnp.zeros((), jnp.int32),
        state=starts,
        carry=jax.tree.map(jnp.asarray, carry),
        alive=~failed(starts, cfg),
        steps=jnp.zeros(b, jnp.int32),
        ring=jnp.zeros((b, w), jnp.float32),
    )
    out = jax.lax.while_loop(cond, body, init)
    return Episodes(
        steps=out.steps,
        fitness=damping_fitness(out.steps, jnp.sum(out.ring, axis=1), cfg),
        balanced=out.alive,
        final=out.state,
    )


def damping_fitness(
    steps: Int[Array, " B"], jiggle_sum: Float[Array, " B"], cfg: PoleConfig
) -> Float[Array, " B"]:
    """Gruau's ``1e-4 t + 0.9 f_stable`` from the steps and the damping sum S.

    Args:
        steps: ``(B,)`` control steps survived.
        jiggle_sum: ``(B,)`` S, the sum of ``|x| + |x_dot| + |theta1| +
            |theta1_dot|`` over the last ``stable_window`` survived steps (the
            last simulated ones, the failing one included, under
            ``fitness_rule="reference"``); ignored where ``t < stable_window``.
        cfg: the episode's config.

    Returns:
        ``(B,)`` float32 fitness, with ``t = steps`` (``min(steps, max_steps -
        1)``, the reference code's last loop index, under
        ``fitness_rule="reference"``).
    """
    steps = jnp.asarray(steps)
    if cfg.fitness_rule == "reference":
        steps = jnp.minimum(steps, cfg.max_steps - 1)
    t = steps.astype(jnp.float32)
    stable = 0.75 / jnp.maximum(jiggle_sum, JIGGLE_FLOOR)
    stable = jnp.where(steps >= cfg.stable_window, stable, 0.0)
    return (1e-4 * t + 0.9 * stable).astype(jnp.float32)


def run_chunked(
    policy: Policy,
    params: Any,
    carry: Any,
    starts: Float[Array, "B 6"],
    cfg: PoleConfig,
    *,
    chunk: int,
    batched_params: bool = True,
) -> Episodes:
    """:func:`run_episodes` over chunks of ``chunk`` episodes (``lax.map``).

    Memory is that of one chunk.  B is padded up to a multiple of the chunk by
    repeating the last episode; the padding's results are dropped.  Each chunk's
    loop stops when all its episodes have failed.  A chunk larger than B is
    reduced to B.

    Args:
        policy: as in :func:`run_episodes`.
        params: policy parameters; leaves with leading dim B (chunked with the
            starts) if ``batched_params``, else shared by all episodes.
        carry: initial policy carry, leaves with leading dim B.
        starts: ``(B, 6)`` initial states.
        cfg: the plant (static).
        chunk: episodes per chunk, ``>= 1``.
        batched_params: whether ``params`` is per-episode.

    Returns:
        The :class:`Episodes` of all B episodes, in order.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    starts = jnp.asarray(starts, jnp.float32)
    if starts.ndim != 2 or starts.shape[1] != 6 or starts.shape[0] < 1:
        raise ValueError(f"starts must have shape (B, 6), B >= 1, got {starts.shape}")
    b = starts.shape[0]
    chunk = min(chunk, b)
    n = -(-b // chunk)
    index = np.minimum(np.arange(n * chunk), b - 1)

    def split(leaf):
        leaf = jnp.asarray(leaf)[index]
        return leaf.reshape((n, chunk) + leaf.shape[1:])

    xs = (jax.tree.map(split, params) if batched_params else None,)
    xs += (jax.tree.map(split, carry), split(starts))

    def run(x):
        p, c, s = x
        return run_episodes(policy, p if batched_params else params, c, s, cfg)

    out = jax.lax.map(run, xs)
    return jax.tree.map(lambda a: a.reshape((n * chunk,) + a.shape[2:])[:b], out)
