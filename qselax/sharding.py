"""Groups sharded over devices: a 1-D mesh over the group axis.

Groups are independent: the landscape of one group and its solve never read
another group's.  So when more than one device is visible, a sweep
(:func:`qselax.sweeps.make_sweep`) spreads its groups over a one-dimensional
:class:`jax.sharding.Mesh` of the devices (axis name :data:`GROUP_AXIS`), and
the network's weights, the data and the mask stay whole on every device:

* landscapes: :func:`qselax.landscapes.map_groups` computes ``chunk`` groups at
  a time (the memory planner's chunk); inside a sweep over a mesh
  (:func:`sharded_groups`) :func:`map_chunks` hands whole chunks to the devices
  (a loop over ``(devices, chunk)`` slices laid over the mesh), so that every
  device holds one chunk at a time and every chunk is computed with the same
  shapes as on one device;
* the solver's inputs and outputs (``(G, 2^K)`` landscapes, ``(G,)`` results)
  are laid over the mesh with ``jax.lax.with_sharding_constraint``
  (:func:`on_groups`) and XLA's partitioner runs each device's share of the
  vmapped circuits;
* the acceptance and the scores read whole arrays (:func:`replicated`).

With one device there is no mesh (:func:`group_mesh` is ``None``) and the sweep is
the single-device program, unchanged.

Several hosts: call ``jax.distributed.initialize()`` before anything else; then
``jax.devices()`` lists every host's devices and the default mesh spans them.

Example:
    >>> import jax
    >>> group_mesh(jax.devices()[:1]) is None  # one device: no mesh
    True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "GROUP_AXIS",
    "current_mesh",
    "group_mesh",
    "map_chunks",
    "on_groups",
    "replicated",
    "sharded_groups",
]

GROUP_AXIS = "groups"

_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar(
    "qselax_group_mesh", default=None
)


def group_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh | None:
    """The 1-D mesh over ``devices`` (default: all visible), or ``None`` for one.

    Args:
        devices: the devices to spread groups over; ``None`` for ``jax.devices()``
            (every host's, after ``jax.distributed.initialize()``).

    Raises:
        ValueError: an empty device list.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    if len(devices) == 1:
        return None
    return Mesh(np.asarray(devices), (GROUP_AXIS,))


@contextlib.contextmanager
def sharded_groups(mesh: Mesh | None) -> Iterator[None]:
    """While tracing under it, :func:`qselax.landscapes.map_groups` spreads its
    chunks over ``mesh`` (``None``: no sharding)."""
    token = _MESH.set(mesh)
    try:
        yield
    finally:
        _MESH.reset(token)


def current_mesh() -> Mesh | None:
    """The mesh of the enclosing :func:`sharded_groups`, or ``None``."""
    return _MESH.get()


def on_groups(tree, mesh: Mesh | None):
    """Lays the leading (group) axis of every leaf with one over the mesh (no-op
    without a mesh; scalars stay whole)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec(GROUP_AXIS))
    return jax.tree.map(
        lambda x: (
            x if jnp.ndim(x) == 0 else jax.lax.with_sharding_constraint(x, sharding)
        ),
        tree,
    )


def replicated(tree, mesh: Mesh | None):
    """Every leaf whole on every device of the mesh (no-op without one)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)


def map_chunks(fn: Callable, arrays: Mapping, chunk: int, mesh: Mesh) -> jax.Array:
    """``jax.lax.map(fn, arrays, batch_size=chunk)`` with its chunks on the devices.

    ``lax.map`` computes ``q = G // chunk`` whole chunks one after another and
    the ``r = G % chunk`` remaining groups in one more step.  Here the whole
    chunks are dealt to the D devices in order (``ceil(q / D)`` each; the last
    devices' spare turns compute a copy of the first chunk, dropped), and every
    device computes the remainder itself.  Each chunk is ``jax.vmap(fn)`` of the
    same ``chunk`` (or ``r``) groups as on one device, so the numbers agree with
    the single-device ``lax.map`` bit for bit: XLA picks kernels by shape, and the
    shapes do not change.  Fewer groups than one chunk are not split at all.

    Args:
        fn: one group's arrays -> its output.
        arrays: dict of ``(G, ...)`` group arrays.
        chunk: groups per step (:func:`qselax.landscapes.plan_chunk`).
        mesh: the 1-D group mesh.

    Returns:
        ``(G, ...)`` outputs: the chunks' rows laid over the devices.
    """
    arrays = dict(arrays)
    n = next(iter(arrays.values())).shape[0]
    whole, rest = divmod(n, chunk)
    batched = jax.vmap(fn)
    parts = []
    if whole:
        d = mesh.size
        turns = -(-whole // d)
        spare = turns * d - whole

        def deal(a):
            a = a[: whole * chunk].reshape(whole, chunk, *a.shape[1:])
            if spare:
                a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (spare, *a.shape[1:]))])
            # (turns, devices, chunk, ...): device i computes chunks i * turns to
            # (i + 1) * turns - 1, one per step of the loop.
            return a.reshape(d, turns, *a.shape[1:]).swapaxes(0, 1)

        def step(_, x):
            x = on_groups(x, mesh)
            return (), on_groups(jax.vmap(batched)(x), mesh)

        _, out = jax.lax.scan(step, (), jax.tree.map(deal, arrays))
        parts.append(
            jax.tree.map(
                lambda a: a.swapaxes(0, 1).reshape(-1, *a.shape[3:])[: whole * chunk],
                out,
            )
        )
    if rest:
        # Every device computes the remainder whole: its shapes stay those of
        # the single-device program.
        tail = jax.tree.map(lambda a: a[whole * chunk :], arrays)
        parts.append(replicated(batched(replicated(tail, mesh)), mesh))
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *p: jnp.concatenate(p), *parts)
