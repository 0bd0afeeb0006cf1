"""Wall time of one full NK-ESN landscape tabulation, against a NumPy episode loop.

The tabulation runs all N 2^(K+1) training episodes (one per output and bit
setting) in one compiled, chunked call (:func:`qselax.esn.tabulate`).  The peer, in
the same run, is a plain NumPy float64 loop that steps the same episodes one at a
time (reservoir, the output's K+1 probes, 2 RK4 substeps); it runs a random sample
of episodes and its time is scaled to all of them by control steps simulated, so the
ratio is per simulated control step.  Agreement of the two is checked first.  One
JSON line per (preset, K) is appended to ``<out>/bench_tabulate.jsonl``.

    python experiments/nk_esn_tabulate/main.py --ks 2 5 8 --preset gain reference
    python experiments/nk_esn_tabulate/main.py --table
    python experiments/nk_esn_tabulate/main.py --smoke
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

FILE = "bench_tabulate.jsonl"
# --smoke: K = 2, 4 outputs, the gain preset, 2 peer episodes.
SMOKE = dict(ks=[2], preset=["gain"], n=4, sample=2)


# ---------------------------------------------------------------------------
# The calls into qselax


def tabulate(preset: str, k: int, n: int, seed: int):
    """The network, the plant, its training start and the landscapes.

    The tabulation runs twice: the first call's seconds include compilation.
    """
    import jax

    from qselax import esn as E
    from qselax import pole

    plant = pole.PoleConfig()
    cfg = E.ESNConfig(n=n, k=k, **E.PRESETS[preset])
    net = E.make_esn(jax.random.key(seed), cfg)
    start = time.perf_counter()
    land = jax.block_until_ready(E.tabulate(net, plant))
    first = time.perf_counter() - start
    start = time.perf_counter()
    land = jax.block_until_ready(E.tabulate(net, plant))
    wall = time.perf_counter() - start
    train_start = np.asarray(pole.train_start(plant), np.float64)
    return net, plant, train_start, land, first, wall


def backend() -> str:
    import jax

    return jax.default_backend()


# ---------------------------------------------------------------------------
# The peer: one episode at a time in NumPy


def _derivs(s, f, c):
    g = -c.gravity
    x, xd, t1, t1d, t2, t2d = s
    acc = []
    ft, mt = 0.0, 0.0
    temps = []
    for m, l, th, thd in (
        (c.pole_masses[0], c.half_lengths[0], t1, t1d),
        (c.pole_masses[1], c.half_lengths[1], t2, t2d),
    ):
        temp = c.hinge_friction * thd / (m * l)
        temps.append(temp)
        ft += m * l * thd**2 * np.sin(th) + 0.75 * m * np.cos(th) * (
            temp + g * np.sin(th)
        )
        mt += m * (1 - 0.75 * np.cos(th) ** 2)
    xdd = (f - c.cart_friction * np.sign(xd) + ft) / (c.cart_mass + mt)
    for (l, th), temp in zip(
        ((c.half_lengths[0], t1), (c.half_lengths[1], t2)), temps, strict=True
    ):
        acc.append(-0.75 * (xdd * np.cos(th) + g * np.sin(th) + temp) / l)
    return np.array([xd, xdd, t1d, acc[0], t2d, acc[1]])


def numpy_episode(net, out, bits, c, start):
    """One episode in NumPy: returns control steps survived."""
    w_in, w_res, b_res = (np.asarray(a, np.float64) for a in net[:3])
    rows = np.asarray(net.neighbours)[out]
    wp = np.asarray(net.w_probe, np.float64)[rows]
    bp = np.asarray(net.b_probe, np.float64)[rows]
    wo = np.asarray(net.w_out, np.float64)[out] * bits
    bo = float(net.b_out[out])
    z = np.asarray(net.z0, np.float64)
    s = start
    lim = np.deg2rad(c.angle_limit_deg)
    for t in range(c.max_steps):
        obs = np.array([s[0] / c.x_limit, s[2] / lim, s[4] / lim])
        z = np.tanh(b_res + w_in @ obs + w_res @ z)
        y = np.tanh(bo + wo @ np.tanh(bp + wp @ z))
        f = c.force_mag * np.clip(y, -1, 1)
        for _ in range(c.substeps):
            k1 = _derivs(s, f, c)
            k2 = _derivs(s + 0.5 * c.dt * k1, f, c)
            k3 = _derivs(s + 0.5 * c.dt * k2, f, c)
            k4 = _derivs(s + c.dt * k3, f, c)
            s = s + c.dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if abs(s[0]) > c.x_limit or abs(s[2]) > lim or abs(s[4]) > lim:
            return t
    return c.max_steps


def _seconds(x: float) -> str:
    """1 decimal from 1 s, 2 from 0.01 s, else 3 (as the README's table)."""
    return f"{x:.1f}" if x >= 1 else f"{x:.2f}" if x >= 0.01 else f"{x:.3f}"


def table(rows: list[dict]) -> str:
    header = ["preset", "K", "episodes", "control steps simulated"]
    header += ["tabulation (s)", "NumPy loop, scaled (s)", "ratio"]
    body = [
        [
            r["preset"],
            r["k"],
            f"{r['episodes']:,}",
            f"{r['control_steps']:,}",
            _seconds(r["tabulate_s"]),
            f"{r['numpy_peer_estimate_s']:.1f}",
            f"{r['speedup']:.0f}×",
        ]
        for r in rows
    ]
    mismatches = sum(r["peer_step_mismatches"] for r in rows)
    samples = sorted({r["peer_sample"] for r in rows})
    return (
        common.markdown(header, body)
        + f"\n\nPeer sample {', '.join(map(str, samples))} episodes per row; "
        f"episodes whose lengths differ by more than one step: {mismatches}."
    )


def main() -> None:
    p = common.parser(__file__, __doc__)
    p.add_argument("--ks", type=int, nargs="+", default=[2, 5, 8])
    p.add_argument("--preset", nargs="+", default=["gain", "reference"])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--sample", type=int, default=48, help="peer episodes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.table:
        results = common.read_results(common.table_dir(args, __file__))
        print(table(results[Path(FILE).stem]))
        return
    if args.smoke:
        common.smoke_jax()
        for name, value in SMOKE.items():
            setattr(args, name, value)
    path = common.out_dir(args, __file__) / FILE
    rng = np.random.default_rng(args.seed)
    rows = []
    for preset in args.preset:
        for k in args.ks:
            net, plant, start_state, land, first, wall = tabulate(
                preset, k, args.n, args.seed
            )
            steps = np.asarray(land.steps)
            picks = rng.choice(steps.size, min(args.sample, steps.size), replace=False)
            start = time.perf_counter()
            peer = []
            for e in picks:
                out, c = divmod(int(e), 2 ** (k + 1))
                bits = np.array([(c >> (k - j)) & 1 for j in range(k + 1)], float)
                peer.append(numpy_episode(net, out, bits, plant, start_state))
            peer_s = time.perf_counter() - start
            mismatch = int(np.sum(np.abs(np.array(peer) - steps.ravel()[picks]) > 1))
            # Peer time per simulated control step, scaled to all episodes' steps.
            per_step = peer_s / max(1, sum(p + 1 for p in peer))
            peer_total = per_step * float(np.sum(steps + 1))
            row = {
                "preset": preset,
                "k": k,
                "n": args.n,
                "episodes": int(steps.size),
                "control_steps": int(np.sum(steps + 1)),
                "tabulate_s": wall,
                "compile_and_run_s": first,
                "numpy_peer_estimate_s": peer_total,
                "speedup": peer_total / wall,
                "peer_sample": len(picks),
                "peer_step_mismatches": mismatch,
                "backend": backend(),
            }
            print(json.dumps(row), flush=True)
            common.write_jsonl(path, [row], append=True)
            rows.append(row)
    print(table(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
