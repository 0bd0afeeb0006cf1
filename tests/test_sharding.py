"""Groups sharded over devices: the same masks on 1 and 4 (forced CPU) devices."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from qselax.landscapes import map_groups
from qselax.sharding import (
    GROUP_AXIS,
    current_mesh,
    group_mesh,
    map_chunks,
    sharded_groups,
)

ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh process with N forced host devices: tiny selections (both sweep
# modes, the exhaustive solver and a short VQE; a distillation and an NK shared-mode
# selection), their masks, and checks that the work really is laid over the devices.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import chex, jax, jax.numpy as jnp, numpy as np
    from qselax import solvers
    from qselax.data import load_dataset
    from qselax.distill import DistillConfig, distill
    from qselax.driver import Driver, initial_state
    from qselax.groups import flatten_masks, make_grouping
    from qselax.landscapes import network_landscape, network_params
    from qselax.nk import NKParams, nk_landscape
    from qselax.selection import SelectConfig, select
    from qselax.sharding import group_mesh, sharded_groups
    from qselax.solvers import make_solver
    from qselax.sweeps import make_sweep
    from tests.test_sweeps import tiny_data, tiny_model

    data, model = tiny_data(), tiny_model()
    masks, checks = {}, {"devices": len(jax.devices())}
    for mode in ("parallel", "sequential"):
        for name, spec in (("exhaustive", "exhaustive"),
                           ("vqe", solvers.vqe(layers=1, steps=10))):
            cfg = SelectConfig(k=4, solver=spec, sweeps=2, mode=mode,
                               block_size=16, memory_mb=0.5)
            sel = select(jax.random.key(0), model, data, cfg, progress=False)
            masks[f"{mode}-{name}"] = np.concatenate(
                [np.ravel(m) for m in sel.masks])
    cfg = DistillConfig(teacher_hidden=(4,), width_factor=2, k=3, sweeps=2,
                        block_size=4, solver="exhaustive", teacher_epochs=20,
                        val_samples=12)
    res = distill(jax.random.key(0), load_dataset("iris", seed=0), cfg,
                  progress=False)
    masks["distill-exhaustive"] = np.concatenate(
        [np.ravel(a) for m in res.masks for a in jax.tree.leaves(m)])
    n = 24
    wiring = np.stack([(np.arange(n) + j) % n for j in range(4)], 1).astype(np.int32)
    tables = np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32)
    nk_sweep = make_sweep(nk_landscape(wiring, n, 4),
                          make_solver(solvers.vqe(layers=1, steps=10), 4))
    with Driver(2, progress=False) as driver:
        run = driver.run(nk_sweep, NKParams(tables, wiring),
                         initial_state(jax.random.key(0), np.ones(n)), 2, k=4)
    masks["nk-vqe"] = np.asarray(run.state.flat)

    # Where the work goes: a layer's landscapes come back laid over the devices,
    # and the compiled sweep spans them all and traces once.
    grouping = make_grouping("fan_in", model, 4)
    land = network_landscape(model, grouping, num_samples=60, memory_mb=0.25)
    params = network_params(model, data.x_val, data.y_val)
    flat = jnp.asarray(flatten_masks(
        [np.ones(s, np.float32) for s in grouping.shapes]))
    seg = land.segments[0]
    arrays = {k: jnp.asarray(v) for k, v in seg.arrays.items()}

    @jax.jit
    def layer(params, flat, arrays):
        with sharded_groups(group_mesh()):
            return land.costs(params, flat, land.prepare(params, flat), 0, arrays)

    out = layer(params, flat, arrays)
    checks["chunk"] = seg.chunk
    checks["groups"] = seg.num_groups
    checks["landscape_devices"] = len(out.sharding.device_set)
    checks["landscape_shards"] = sorted(
        {s.data.shape[0] for s in out.addressable_shards})
    sweep = make_sweep(land, make_solver("exhaustive", 4), block_size=16)
    step = jax.jit(chex.assert_max_traces(sweep, n=1))
    state = initial_state(jax.random.key(0), flat)
    mesh = group_mesh()
    if mesh is not None:  # where the sweep leaves its state: whole on every device
        whole = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        params, state = jax.device_put((params, state), whole)
    state, _ = step(params, state)
    state, _ = step(params, state)
    compiled = jax.jit(sweep).lower(params, state).compile()
    checks["sweep_devices"] = len(compiled.output_shardings[0].flat.device_set)
    checks["collectives"] = "all-gather" in compiled.as_text()
    np.savez(sys.argv[1], **masks)
    print(json.dumps(checks))
    """
)


# One process of a multi-process run: jax.distributed.initialize first, then the
# same selection as in one process.
DISTRIBUTED = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    port, rank, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=rank)
    from qselax.selection import SelectConfig, select
    from tests.test_sweeps import tiny_data, tiny_model

    assert (jax.process_count(), len(jax.devices())) == (2, 4)
    cfg = SelectConfig(k=4, solver="exhaustive", sweeps=2, block_size=16,
                       memory_mb=0.5)
    sel = select(jax.random.key(0), tiny_model(), tiny_data(), cfg, progress=False)
    np.save(path, np.concatenate([np.ravel(m) for m in sel.masks]))
    """
)


def _env(devices: int) -> dict:
    return dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )


def _run(devices: int, path: Path) -> dict:
    env = _env(devices)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two subprocesses, 6 selections each: 89 s on 2 cores
def test_four_devices_select_the_single_device_masks(tmp_path):
    one = _run(1, tmp_path / "one.npz")
    four = _run(4, tmp_path / "four.npz")
    assert (one["devices"], four["devices"]) == (1, 4)
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "four.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert len(a.files) == 6  # parallel/sequential x exhaustive/vqe, distill, nk
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # One device: no mesh. Four: the landscapes of a layer sit on the four devices,
    # whole chunks on each, and the compiled sweep spans them.
    assert one["landscape_devices"] == 1 and one["sweep_devices"] == 1
    assert four["landscape_devices"] == 4 and four["sweep_devices"] == 4
    assert four["groups"] > 4 * four["chunk"]
    assert max(four["landscape_shards"]) < four["groups"]
    assert four["collectives"] and not one["collectives"]


@pytest.mark.slow
def test_two_processes_select_the_single_device_masks(tmp_path):
    """jax.distributed.initialize in 2 processes of 2 CPU devices each: the sweep
    spans the 4 devices of both and every process gets the single-device masks."""
    from qselax.selection import SelectConfig, select
    from tests.test_sweeps import tiny_data, tiny_model

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DISTRIBUTED, str(port), str(rank)]
            + [str(tmp_path / f"{rank}.npy")],
            cwd=ROOT,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-5000:]
    cfg = SelectConfig(k=4, solver="exhaustive", sweeps=2, block_size=16, memory_mb=0.5)
    sel = select(jax.random.key(0), tiny_model(), tiny_data(), cfg, progress=False)
    want = np.concatenate([np.ravel(m) for m in sel.masks])
    for rank in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"{rank}.npy"), want)


def test_one_device_has_no_mesh():
    assert group_mesh(jax.devices()[:1]) is None
    with pytest.raises(ValueError, match="at least one device"):
        group_mesh([])


def test_sharded_groups_sets_the_mesh_while_tracing():
    mesh = Mesh(np.asarray(jax.devices()[:1]), (GROUP_AXIS,))
    assert current_mesh() is None
    with sharded_groups(mesh):
        assert current_mesh() is mesh
        with sharded_groups(None):
            assert current_mesh() is None
        assert current_mesh() is mesh
    assert current_mesh() is None


@pytest.mark.parametrize(("n", "chunk"), [(10, 3), (9, 3), (2, 5), (7, 1), (4, 4)])
def test_map_chunks_equals_lax_map(n, chunk):
    """Chunks dealt to a mesh give lax.map's numbers, bit for bit, and map_groups
    deals them only inside sharded_groups."""
    mesh = Mesh(np.asarray(jax.devices()[:1]), (GROUP_AXIS,))
    rng = np.random.default_rng(n)
    arrays = {
        "x": jnp.asarray(rng.normal(size=(n, 5, 3)).astype(np.float32)),
        "i": jnp.arange(n, dtype=jnp.int32),
    }
    w = jnp.asarray(rng.normal(size=(3, 4)).astype(np.float32))

    def fn(g):
        return jnp.sum(jnp.tanh(g["x"] @ w), axis=0) * g["i"].astype(jnp.float32)

    want = jax.jit(lambda a: jax.lax.map(fn, a, batch_size=chunk))(arrays)
    got = jax.jit(lambda a: map_chunks(fn, a, chunk, mesh))(arrays)
    np.testing.assert_array_equal(got, want)

    def inside(a):
        with sharded_groups(mesh):
            return map_groups(fn, a, chunk)

    np.testing.assert_array_equal(jax.jit(inside)(arrays), want)
