"""The solver interface shared by every solver: results, options, specs.

A solver turns a batch of G landscapes ``(G, S)`` (``S = 2^K`` costs per group, the
diagonal of each group's H_C) into one chosen configuration per group.  Solvers are
built by factories that capture their static settings (K, depth, budgets) and return a
:class:`Solver`; ``solve`` is pure and jit-compatible, and is called on all groups of a
sweep at once (quantum solvers ``vmap`` one K-qubit circuit per group inside it).

Every registered factory is wrapped by :func:`solver_factory`: called with K it
builds the solver, ``factory(k, **options) -> Solver``; called without K it returns
a :class:`SolverSpec`, a hashable description that configs hold and that is built
once K is known (as ``optax.adam(1e-3)`` is handed to ``nnx.Optimizer``):

    >>> from qselax.solvers import vqe
    >>> spec = vqe(layers=2, steps=10)
    >>> str(spec), spec.build(4).resources["qubits"]
    ('vqe(layers=2, steps=10)', 4)

The option checks below (:func:`check_count`, :func:`check_choice`, ...) are the
ones every factory uses, so that a bad setting gives the same message everywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SolveResult",
    "Solver",
    "SolverSpec",
    "best_of",
    "check_bool",
    "check_choice",
    "check_count",
    "check_float",
    "check_readout",
    "max_readout",
    "normalize_landscapes",
    "solver_factory",
    "with_costs",
]


class SolveResult(NamedTuple):
    """What a solver returns for G groups.

    Attributes:
        index: ``(G,)`` int32 chosen configuration of each group.
        top1: ``(G,)`` int32 single most probable configuration (readout S = 1); equal
            to ``index`` for classical solvers.
        probs: ``(G, S)`` final Born probabilities, or ``None`` where undefined.
        lookups: ``(G,)`` int32 costs the solver consulted (landscape look-ups or
            oracle evaluations of sampled configurations).
        oracle_calls: ``(G,)`` int32 coherent oracle uses (Grover iterations), or
            ``None``.
        shots: ``(G,)`` int32 circuit executions measured (finite-shot mode), or
            ``None``.
        entropy: ``(G,)`` half-cut entanglement entropy (bits) of each group's final
            noiseless state, or ``None`` where there is no state.
        cost: ``(G,)`` cost of the chosen configuration ``index`` (filled in by
            :func:`with_costs`, which every registered solver's ``solve`` passes
            through).
        carry: what a warm-starting solver hands its next solve of the same
            groups (a pytree with a leading ``G`` axis, the shape of its
            ``init_carry``), or ``None``.
        steps: ``(G,)`` int32 optimiser steps each group's solve used, or ``None``
            for solvers without an optimiser loop.
    """

    index: jax.Array
    top1: jax.Array
    probs: jax.Array | None
    lookups: jax.Array
    oracle_calls: jax.Array | None = None
    shots: jax.Array | None = None
    entropy: jax.Array | None = None
    cost: jax.Array | None = None
    carry: Any = None
    steps: jax.Array | None = None


class Solver(NamedTuple):
    """A named, configured solver.

    Attributes:
        name: registry name (``"exhaustive"``, ``"vqe"``, ...).
        solve: ``(key, landscapes (G, S), current (G,), oracle=None) ->
            SolveResult``; ``current`` is each group's present configuration
            (solvers may ignore it); ``oracle`` (``(G, R) configurations -> (G, R)
            costs``, see :mod:`qselax.solvers.measure`) is what finite-shot solvers
            query for sampled configurations (default: look-ups in ``landscapes``).
            A warm-starting solver also takes ``carry=`` (its last
            ``SolveResult.carry`` for the same groups).
        resources: static resource counts per group (qubits, depth, gates, ...).
        init_carry: ``G -> carry`` the cold carry of ``G`` groups (leading ``G``
            axis) for a warm-starting solver; ``None`` for the others.  The sweep
            keeps each group's carry in the selection state between sweeps.
    """

    name: str
    solve: Callable[[jax.Array, jax.Array, jax.Array], SolveResult]
    resources: dict
    init_carry: Callable | None = None


# ---------------------------------------------------------------------------
# Option checks (set-up time, before any tracing).


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_count(name: str, value, low: int = 1) -> int:
    """``value`` as an int ``>= low``, else a ``ValueError`` naming ``name``.

    Example:
        >>> check_count("steps", 3), check_count("steps", 0, low=0)
        (3, 0)
    """
    if not _is_int(value):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_float(name: str, value, *, above: float = 0.0) -> float:
    """``value`` as a finite float ``> above``, else a ``ValueError`` naming it.

    Example:
        >>> check_float("learning_rate", 0.1), check_float("lam", 2, above=1.0)
        (0.1, 2.0)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number > {above:g}, got {value!r}")
    if not (math.isfinite(value) and value > above):
        raise ValueError(f"{name} must be finite and > {above:g}, got {value}")
    return float(value)


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool, else a ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def max_readout(k: int) -> int:
    """Largest allowed readout for K qubits: ``max(1, 2^K // 16)``.

    Example:
        >>> [max_readout(k) for k in (1, 4, 6)]
        [1, 1, 4]
    """
    return max(1, 2**k // 16)


def check_readout(k: int, readout) -> int:
    """Configurations read out per group: default and cap :func:`max_readout`.

    A readout of more than ``2^K / 16`` configurations would turn the readout into
    exhaustive search, so it is refused.

    Raises:
        ValueError: ``readout`` not ``None`` or an int in ``[1, max_readout(k)]``.
    """
    cap = max_readout(k)
    readout = cap if readout is None else readout
    if not _is_int(readout):
        raise ValueError(f"readout must be an int or None, got {readout!r}")
    if not 1 <= readout <= cap:
        raise ValueError(
            f"readout must lie in [1, 2^K/16 = {cap}] for K={k}, got {readout}: a "
            "larger readout turns into exhaustive search"
        )
    return int(readout)


# ---------------------------------------------------------------------------
# Landscapes and chosen configurations.


def with_costs(solve: Callable) -> Callable:
    """Wraps a ``solve`` so that its result carries the chosen configurations' costs.

    The cost of ``index`` is read off the landscape (with a finite-shot oracle it is
    the same number: the network evaluated on that configuration).
    """

    def wrapped(key, landscapes, current, oracle=None, carry=None) -> SolveResult:
        if carry is None:
            res = solve(key, landscapes, current, oracle)
        else:
            res = solve(key, landscapes, current, oracle, carry=carry)
        if res.cost is None:
            cost = jnp.take_along_axis(landscapes, res.index[:, None], axis=-1)[:, 0]
            res = res._replace(cost=cost)
        return res

    return wrapped


def normalize_landscapes(landscapes: jax.Array) -> jax.Array:
    """Shifts and scales each landscape to zero mean and unit spread.

    An affine map ``a C + b`` with ``a > 0`` keeps the ground state and the ordering
    of configurations, but puts every group's H_C on the same scale, so one learning
    rate and one set of angles suit all groups.  Flat landscapes map to zeros.
    """
    # Shift by one entry first so that a flat row is exactly zero: its float32 mean
    # is not exact (e.g. 0.1), which would leave a rounding-noise spread of ~1e-8
    # that the division blows up to +-1.
    centred = landscapes - landscapes[..., :1]
    mean = jnp.mean(centred, axis=-1, keepdims=True)
    std = jnp.std(centred, axis=-1, keepdims=True)
    return (centred - mean) / jnp.where(std > 0, std, jnp.ones_like(std))


def best_of(landscapes: jax.Array, candidates: jax.Array) -> jax.Array:
    """The candidate with the lowest cost per group: ``(G, S), (G, R) -> (G,)``."""
    costs = jnp.take_along_axis(landscapes, candidates, axis=-1)
    pick = jnp.argmin(costs, axis=-1)
    return jnp.take_along_axis(candidates, pick[:, None], axis=-1)[:, 0]


# ---------------------------------------------------------------------------
# Specs: solvers described before K is known.


def _hashable(value):
    """Lists (e.g. from JSON) as tuples, recursively, so a spec can be hashed."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class SolverSpec:
    """A registered solver and its options, without K: a value configs can hold.

    Frozen and hashable (it can be a static field of a jitted config); options are
    kept sorted by name, lists turned into tuples, so equal settings give equal
    specs.  Build it with :meth:`build` once K is known.  Create specs with the
    factories (``qselax.solvers.vqe(layers=3)``) or
    :func:`qselax.solvers.solver_spec`, which check the option names.

    Attributes:
        name: the registry name (a key of :data:`qselax.solvers.SOLVERS`).
        options: ``((option, value), ...)`` passed to the factory (a dict is
            accepted and stored as such pairs).

    Example:
        >>> spec = SolverSpec("vqe", (("steps", 5), ("rotations", ["ry"])))
        >>> spec.options
        (('rotations', ('ry',)), ('steps', 5))
        >>> spec.describe()
        "vqe(rotations=('ry',), steps=5)"
    """

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"solver name must be a str, got {self.name!r}")
        options = self.options
        pairs = options.items() if isinstance(options, Mapping) else options
        try:
            items = [(n, _hashable(v)) for n, v in pairs]
        except (TypeError, ValueError):
            items = None
        if items is None or not all(isinstance(n, str) for n, _ in items):
            raise ValueError(
                f"options of solver {self.name!r} must be (name, value) pairs, got "
                f"{options!r}"
            )
        names = [n for n, _ in items]
        if len(set(names)) != len(names):
            raise ValueError(f"solver {self.name!r}: an option is repeated: {names}")
        for option, value in items:
            try:
                hash(value)
            except TypeError:
                raise ValueError(
                    f"option {option!r} of solver {self.name!r} must be hashable "
                    f"(a number, string, bool, None or tuple), got {value!r}"
                ) from None
        object.__setattr__(self, "options", tuple(sorted(items)))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as a dict, ready for ``factory(k, **spec.kwargs)``."""
        return dict(self.options)

    def build(self, k: int) -> Solver:
        """The solver for K bits: ``make_solver(name, k, **options)``."""
        from qselax.solvers import make_solver  # the registry imports this module

        return make_solver(self.name, k, **self.kwargs)

    def describe(self) -> str:
        """``name(option=value, ...)``, as a researcher would write the call."""
        args = ", ".join(f"{n}={v!r}" for n, v in self.options)
        return f"{self.name}({args})"

    def __str__(self) -> str:
        return self.describe()


def solver_factory(name: str) -> Callable[[Callable], Callable]:
    """Decorator for a solver factory ``build(k, *, options) -> Solver``.

    The wrapped factory takes K as an optional first argument: with K it is
    ``build(k, **options)``; without it, it returns ``SolverSpec(name, options)``
    after checking the option *names* against ``build``'s keyword-only
    parameters (their values are checked when the spec is built, since some
    depend on K).

    Args:
        name: the solver's registry name (what ``Solver.name`` says).

    Example:
        >>> @solver_factory("toy")
        ... def toy(k, *, depth=1):
        ...     return Solver("toy", None, {"qubits": k, "depth": depth})
        >>> toy(3).resources, str(toy(depth=2))
        ({'qubits': 3, 'depth': 1}, 'toy(depth=2)')
    """

    def decorate(build: Callable) -> Callable:
        signature = inspect.signature(build)
        first, *rest = signature.parameters.values()
        allowed = tuple(
            p.name for p in rest if p.kind is inspect.Parameter.KEYWORD_ONLY
        )

        @functools.wraps(build)
        def factory(k=None, **options):
            if k is not None:
                return build(k, **options)
            unknown = sorted(set(options) - set(allowed))
            if unknown:
                raise ValueError(
                    f"solver {name!r} has no option {unknown[0]!r}; its options "
                    f"are {allowed}"
                )
            return SolverSpec(name, tuple(options.items()))

        factory.__signature__ = signature.replace(
            parameters=[first.replace(default=None, annotation="int | None"), *rest],
            return_annotation="Solver | SolverSpec",
        )
        factory.solver_name = name
        factory.option_names = allowed
        return factory

    return decorate
