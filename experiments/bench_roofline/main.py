"""Benchmark: landscapes and circuits against this machine's matmul and memory bounds.

In one run on one machine it measures

* the **bounds**: the float32 matmul rate (FLOP/s, best of ``--repeats`` square
  products of side ``--matmul``) and the memory bandwidth (bytes/s, best of
  ``--repeats`` passes ``y = 1.5 x + 0.5`` over ``--stream`` floats: one read and
  one write of each);
* (a) **one exact landscape sweep**: every group's ``(2^K,)`` landscape of the
  default demo (digits, random 64-256-10 MLP, fan-in groups of K = 8, the 1,079
  training samples) and of LeNet-300-100 (784-300-100-10, K = 8, ``--lenet-samples``
  synthetic 784-pixel samples: FLOPs do not depend on the values). Its FLOPs and
  bytes are XLA's own count (``compiled.cost_analysis()``) of the landscapes of one
  and of two groups of each layer: their difference is one group's work, the rest
  is the shared forward pass (XLA counts a loop body once, so the whole sweep's
  program cannot be counted directly). Reported as a fraction of the matmul bound;
* (b) **one batched circuit step** of G = ``--groups`` K = 8 circuits: a VQE
  ``value_and_grad`` step of the default (RY, RZ; complex64) and of the real (RY;
  float32) ansatz, and a QAOA step (p = 3). A circuit touches every amplitude in
  every layer, so its least traffic is one read and one write of the state per
  layer, three times over for a value and its gradient; that is counted against
  the bandwidth bound (the real state has half the bytes of the complex one).

The same script runs unchanged on a GPU (larger ``--matmul`` and ``--stream`` are
then advisable).  One JSON line per run goes to ``<out>/roofline.jsonl``.  Usage::

    python experiments/bench_roofline/main.py
    python experiments/bench_roofline/main.py --table
    python experiments/bench_roofline/main.py --smoke
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

FILE = "roofline.jsonl"
SMOKE = dict(
    matmul=256,
    stream=1 << 20,
    repeats=1,
    groups=16,
    hidden="16",
    lenet=False,
    k=4,
    alt_ks=[3],
)


def _best(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def bounds(n: int, stream: int, repeats: int) -> dict:
    """The matmul rate (FLOP/s) and the streaming bandwidth (bytes/s)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    mm = jax.jit(lambda p, q: p @ q)
    t_mm = _best(lambda: mm(a, b), repeats)
    x = jnp.ones((stream,), jnp.float32)
    axpy = jax.jit(lambda v: 1.5 * v + 0.5)
    t_bw = _best(lambda: axpy(x), repeats)
    return {
        "matmul_flops": 2.0 * n**3 / t_mm,
        "bandwidth_bytes": 8.0 * stream / t_bw,
        "matmul_n": n,
        "stream_floats": stream,
    }


def _cost(fn, *args) -> tuple[float, float]:
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per program
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0))


def landscape_roofline(name, model, x, y, k, memory_mb, repeats) -> dict:
    """One exact landscape sweep of ``model``: seconds, XLA's FLOPs and bytes."""
    from flax import nnx

    from qselax.groups import explicit_grouping, flatten_masks, make_grouping
    from qselax.landscapes import NetParams, network_landscape
    from qselax.networks import random_masks

    grouping = make_grouping("fan_in", model, k)
    flat = flatten_masks(random_masks(jax.random.key(1), model))
    _, weights = nnx.split(model)
    x, y = jnp.asarray(x), jnp.asarray(y)
    n = x.shape[0]

    def land_of(groups, tile="auto"):
        return network_landscape(
            model, groups, num_samples=n, memory_mb=memory_mb, tile=tile
        )

    def all_of(land):
        return lambda w, f: land.all(NetParams(w, x, y, {}), f)

    # Timed as qselax runs it (cache-sized tiles of samples on a CPU) and with all
    # samples at once; counted untiled: the same arithmetic, but XLA counts a
    # loop body (here: the scan over tiles) once.
    planned = land_of(grouping)
    tiles = [seg.tile for seg in planned.segments]
    fn = jax.jit(all_of(planned))
    seconds = _best(lambda: fn(weights, flat), repeats)
    whole = jax.jit(all_of(land_of(grouping, None)))
    seconds_whole = _best(lambda: whole(weights, flat), repeats)
    flops = bytes_ = 0.0
    shared = []
    for start, stop in grouping.layer_slices:
        if stop - start < 2:
            continue
        rows = [grouping.index[i][grouping.valid[i]] for i in (start, start + 1)]
        one = explicit_grouping(rows[:1], grouping.shapes, k)
        two = explicit_grouping(rows, grouping.shapes, k)
        f1, b1 = _cost(all_of(land_of(one, None)), weights, flat)
        f2, b2 = _cost(all_of(land_of(two, None)), weights, flat)
        flops += (stop - start) * (f2 - f1)
        bytes_ += (stop - start) * (b2 - b1)
        shared.append((f1 - (f2 - f1), b1 - (b2 - b1)))
    # the forward pass shared by all groups (the same for every layer's pair)
    flops += max(f for f, _ in shared)
    bytes_ += max(b for _, b in shared)
    return {
        "name": name,
        "groups": grouping.num_groups,
        "k": k,
        "samples": n,
        "seconds": seconds,
        "seconds_whole": seconds_whole,
        "tiles": tiles,
        "flops": flops,
        "bytes": bytes_,
    }


def skinny_matmul(rows: int, inner: int, cols: int, repeats: int) -> dict:
    """The matmul rate (FLOP/s) of ``(rows, inner) @ (inner, cols)`` in cache.

    The bound of a sweep whose arithmetic is that product: LeNet-300-100's first
    layer, where each configuration's changed unit reruns the 100 -> 10 tail for
    every sample of a tile (``rows = 2^K x tile``).  The operand stays in cache
    (the same array, rescaled, 64 times in one compiled loop), so memory does not
    limit it: what XLA's CPU GEMM reaches at this shape.
    """
    h = jax.random.normal(jax.random.key(6), (rows, inner), jnp.float32)
    w = jax.random.normal(jax.random.key(7), (inner, cols), jnp.float32)
    times = 64

    @jax.jit
    def run(h, w):
        def body(i, acc):
            return acc + (h * (1.0 + 1e-3 * i)) @ w

        return jax.lax.fori_loop(0, times, body, jnp.zeros((rows, cols)))

    seconds = _best(lambda: run(h, w), repeats)
    return {
        "rows": rows,
        "inner": inner,
        "cols": cols,
        "flops": 2.0 * rows * inner * cols * times / seconds,
    }


def circuit_roofline(name, k, groups, repeats, **options) -> dict:
    """One batched value-and-gradient step of ``groups`` circuits of ``k`` qubits."""
    from qselax import circuits
    from qselax.solvers.qaoa_layers import qaoa_probs

    land = jax.random.normal(jax.random.key(2), (groups, 2**k), jnp.float32)
    if name == "qaoa":
        layers = options.get("layers", 3)
        params = 0.1 * jnp.ones((groups, 2, layers), jnp.float32)

        def energy(p, c):
            return jnp.sum(qaoa_probs(p[0], p[1], c) * c)

        amp_bytes = 8  # complex64
    else:
        ansatz = circuits.Ansatz(k, options.get("layers", 3), options["rotations"])
        layers = ansatz.layers
        params = jax.vmap(lambda kk: circuits.init_hea_params(kk, ansatz))(
            jax.random.split(jax.random.key(3), groups)
        )

        def energy(p, c):
            return jnp.sum(circuits.hea_probs(p, ansatz) * c)

        amp_bytes = 4 if circuits.is_real(ansatz) else 8
    step = jax.jit(jax.vmap(jax.value_and_grad(energy)))
    seconds = _best(lambda: step(params, land), repeats)
    least = 3 * layers * 2 * (2**k) * amp_bytes * groups
    return {
        "name": name if name == "qaoa" else f"vqe {'+'.join(options['rotations'])}",
        "k": k,
        "groups": groups,
        "layers": layers,
        "seconds": seconds,
        "least_bytes": float(least),
    }


def layer_alternatives(k: int, groups: int, repeats: int) -> dict:
    """One value-and-gradient step of a 3-layer ansatz four ways (seconds)."""
    from qselax import circuits

    layers = 3
    real = circuits.Ansatz(k, layers, ("ry",), "cnot")
    cx = circuits.Ansatz(k, layers, ("ry", "rz"), "cnot")
    ladder = jnp.asarray(circuits.hea_ladder_matrix(k))

    def dense_probs(p):
        """Each layer as one dense 2^K x 2^K matrix (kron of the RYs, ladder)."""

        def layer(state, theta):
            c, s = jnp.cos(0.5 * theta[0]), jnp.sin(0.5 * theta[0])
            ry = jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)
            u = ry[0]
            for q in range(1, k):
                u = jnp.kron(u, ry[q])
            return (u @ ladder) @ state, None

        plus = jnp.full((2**k,), 2.0 ** (-k / 2), jnp.float32)
        return jnp.square(jax.lax.scan(layer, plus, p)[0])

    land = jax.random.normal(jax.random.key(4), (groups, 2**k), jnp.float32)
    p = 0.1 * jax.random.normal(jax.random.key(5), (groups, layers, 1, k))
    p2 = jnp.concatenate([p, p], axis=2)

    def timed(probs, params):
        step = jax.jit(jax.vmap(jax.value_and_grad(lambda q, c: jnp.sum(probs(q) * c))))
        return _best(lambda: step(params, land), repeats)

    def einsum_probs(q):
        return jnp.square(circuits._real_state(q, real))

    def gatewise_probs(q):
        return jnp.square(circuits._gatewise_state(q, real)[0])

    def gatewise_reverse_probs(q):
        """The same gates, differentiated by JAX's reverse mode (not the adjoint)."""
        return jnp.square(circuits._gatewise_forward(q, real)[0])

    def gatewise_complex_probs(q):
        re, im = circuits._gatewise_state(q, cx)
        return jnp.square(re) + jnp.square(im)

    def tc_probs(q):
        psi = circuits.hea_state(q, cx)
        return jnp.square(jnp.real(psi)) + jnp.square(jnp.imag(psi))

    return {
        "k": k,
        "groups": groups,
        "real_gatewise": timed(gatewise_probs, p),
        "real_fused_einsum": timed(einsum_probs, p),
        "real_dense_layer": timed(dense_probs, p) if k <= 8 else None,
        "complex_fused_tc": timed(tc_probs, p2),
        "real_gatewise_reverse": timed(gatewise_reverse_probs, p),
        "complex_gatewise": timed(gatewise_complex_probs, p2),
    }


def run(args) -> dict:
    from qselax.cli import build_parser, resolve
    from qselax.data import load_dataset
    from qselax.networks import make_model

    demo = resolve(build_parser().parse_args(["run"]))
    record = {"backend": jax.default_backend(), "device": str(jax.devices()[0])}
    memory_mb = demo["memory_mb"] if args.memory_mb is None else args.memory_mb
    record["memory_mb"] = memory_mb
    record["bounds"] = bounds(args.matmul, args.stream, args.repeats)
    data = load_dataset("digits", seed=0)
    widths = tuple(int(h) for h in args.hidden.split(","))
    mlp = make_model("mlp", data.feature_shape, data.num_classes, hidden=widths)
    rows = [
        landscape_roofline(
            f"digits 64-{'-'.join(map(str, widths))}-10",
            mlp,
            data.x_train,
            data.y_train,
            args.k,
            memory_mb,
            args.repeats,
        )
    ]
    if args.lenet:
        lenet = make_model("lenet300", (784,), 10)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(args.lenet_samples, 784)).astype(np.float32)
        y = rng.integers(0, 10, args.lenet_samples).astype(np.int32)
        rows.append(
            landscape_roofline(
                "LeNet-300-100", lenet, x, y, args.k, memory_mb, args.repeats
            )
        )
    record["landscapes"] = rows
    if args.lenet:
        tile = rows[-1]["tiles"][0]
        record["skinny"] = skinny_matmul(2**args.k * tile, 100, 10, args.repeats)
    record["circuits"] = [
        circuit_roofline("vqe", args.k, args.groups, args.repeats, rotations=r)
        for r in (("ry", "rz"), ("ry",))
    ] + [circuit_roofline("qaoa", args.k, args.groups, args.repeats)]
    record["alternatives"] = [
        layer_alternatives(k, args.groups, args.repeats) for k in args.alt_ks
    ]
    return record


def table(r: dict) -> str:
    b = r["bounds"]
    head = (
        f"backend {r['backend']} ({r['device']}): matmul {b['matmul_flops'] / 1e9:.1f} "
        f"GFLOP/s (n = {b['matmul_n']}), bandwidth {b['bandwidth_bytes'] / 1e9:.1f} "
        f"GB/s ({b['stream_floats'] * 4 / 2**20:.0f} MiB streamed)"
    )
    peak, bw = b["matmul_flops"], b["bandwidth_bytes"]

    def land_row(w):
        intensity = w["flops"] / w["bytes"]
        rate = w["flops"] / w["seconds"]
        bound = min(peak, intensity * bw)  # the roofline at this intensity
        # Records before tiles timed one (untiled) program: its seconds are whole.
        whole, tiled = w.get("seconds_whole"), f"{w['seconds']:.2f}"
        if whole is None:
            whole, tiled = w["seconds"], "-"
        return [
            w["name"],
            w["groups"],
            f"{whole:.2f}",
            tiled,
            f"{w['flops'] / 1e9:.1f}",
            f"{w['bytes'] / 1e9:.1f}",
            f"{intensity:.2f}",
            f"{rate / 1e9:.1f}",
            f"{rate / peak:.1%}",
            f"{bound / 1e9:.1f}",
            f"{rate / bound:.0%}",
        ]

    lands = common.markdown(
        [
            "landscape sweep",
            "groups",
            "s (all samples at once)",
            "s (cache tiles: qselax)",
            "GFLOP",
            "GB (XLA)",
            "FLOP/byte",
            "GFLOP/s",
            "of matmul bound",
            "roofline bound (GFLOP/s)",
            "of roofline",
        ],
        [land_row(w) for w in r["landscapes"]],
    )
    circs = common.markdown(
        [
            "circuit step (value and grad)",
            "G",
            "ms",
            "least GB",
            "GB/s",
            "of bandwidth",
        ],
        [
            [
                f"{c['name']}, K={c['k']}, {c['layers']} layers",
                c["groups"],
                f"{c['seconds'] * 1e3:.1f}",
                f"{c['least_bytes'] / 1e9:.3f}",
                f"{c['least_bytes'] / c['seconds'] / 1e9:.1f}",
                f"{c['least_bytes'] / c['seconds'] / b['bandwidth_bytes']:.0%}",
            ]
            for c in r["circuits"]
        ],
    )

    def ms(a, key):
        return "-" if a.get(key) is None else f"{a[key] * 1e3:.1f}"

    alternatives = r.get("alternatives", [])
    # Records since the adjoint gradient (2026-12-05) also time the gate path under
    # JAX's reverse mode and the complex ansatz on the gate path.
    adjoint = any("real_gatewise_reverse" in a for a in alternatives)
    columns = [
        ("real, gate by gate, elementwise (ms)", "real_gatewise"),
        ("real, fused gates, einsum (ms)", "real_fused_einsum"),
        ("real, one dense layer matrix (ms)", "real_dense_layer"),
        ("complex (RY, RZ), fused TensorCircuit gates (ms)", "complex_fused_tc"),
    ]
    if adjoint:
        columns[0] = ("real, gate by gate, adjoint gradient (ms)", "real_gatewise")
        columns.insert(
            1, ("real, gate by gate, JAX reverse mode (ms)", "real_gatewise_reverse")
        )
        columns.append(
            ("complex (RY, RZ), gate by gate, adjoint (ms)", "complex_gatewise")
        )
    alts = common.markdown(
        ["K (value and grad, 3 RY layers)", "G", *(name for name, _ in columns)],
        [
            [a["k"], a["groups"], *(ms(a, key) for _, key in columns)]
            for a in alternatives
        ],
    )
    parts = [head, "", lands]
    if "skinny" in r:
        sk = r["skinny"]
        lenet = next(w for w in r["landscapes"] if w["name"].startswith("LeNet"))
        rate = lenet["flops"] / lenet["seconds"]
        parts += [
            "",
            f"The LeNet-300-100 sweep's own product, ({sk['rows']}, {sk['inner']}) @ "
            f"({sk['inner']}, {sk['cols']}) in cache: {sk['flops'] / 1e9:.1f} GFLOP/s "
            f"({sk['flops'] / peak:.0%} of the square matmul); the sweep runs at "
            f"{rate / sk['flops']:.0%} of it.",
        ]
    return "\n".join([*parts, "", circs, "", alts])


def main() -> None:
    parser = common.parser(__file__, __doc__)
    parser.add_argument("--matmul", type=int, default=2048, help="matmul side")
    parser.add_argument("--stream", type=int, default=1 << 26, help="floats streamed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--groups", type=int, default=2048, help="circuits G")
    parser.add_argument("--hidden", default="256", help="digits MLP hidden widths")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--lenet-samples", type=int, default=128)
    parser.add_argument(
        "--memory-mb",
        type=float,
        help="one landscape chunk's memory budget (default: the demo's); a GPU run "
        "with all samples of a group at once needs more",
    )
    parser.add_argument(
        "--alt-ks",
        type=int,
        nargs="+",
        default=[4, 6, 8],
        help="K of the layer alternatives (the dense layer matrix only up to K = 8)",
    )
    parser.add_argument(
        "--no-lenet", dest="lenet", action="store_false", help="skip LeNet-300-100"
    )
    args = parser.parse_args()
    if args.memory_mb is not None and not args.memory_mb > 0:
        parser.error(f"--memory-mb must be > 0, got {args.memory_mb}")
    if args.table:
        results = common.read_results(common.table_dir(args, __file__))
        print("\n\n".join(table(r) for r in results[Path(FILE).stem]))
        return
    if args.smoke:
        common.smoke_jax()
        for name, value in SMOKE.items():
            setattr(args, name, value)
    out = common.out_dir(args, __file__)
    record = run(args)
    common.write_jsonl(out / FILE, [record], append=True)
    print(table(record))
    print(f"wrote {out / FILE}")


if __name__ == "__main__":
    main()
