"""CPU time and extra memory of ``to_mnist`` per stage on shapes built to defeat it (decoding excluded).

Usage: python benchmarks/bench_preprocess_cost.py [--repeat 3] [--only NAME,...] [--sides 4000,1000,384]

Each case is a uint8 picture as decoding would hand it over (big flat margins around a dark block,
dark blocks, thin lines and grids, a maze, a spiral, noise, gradients ...), at each side length. For
each it prints the median CPU time of the calling thread (``time.thread_time``) over --repeat
calls, split by stage (is_flat, frame_level, to_work_size, clean, declutter, normalise_stroke; "rest"
is the remainder of ``to_mnist``; a stage the code does not have reads 0, and one called inside
another counts there), and the extra memory of one call: the larger of the peak numpy and Python
allocated over what the input already took (tracemalloc) and the growth of the process's peak RSS
(VmHWM, reset through /proc/self/clear_refs), which also sees Pillow's allocations.
The last line gives the worst case against the targets (50 ms, 40 MB).
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from machine import cpu_model  # noqa: E402

from mnistlite.images import ink  # noqa: E402
from mnistlite.images import preprocess as pre  # noqa: E402

STAGES = ("is_flat", "frame_level", "to_work_size", "clean", "declutter", "normalise_stroke")


def _margin_block(s, rng):      # the CPU bomb of the abuse report: a flat 12 px margin, one dark block
    g = np.full((s, s), 255, np.uint8)
    g[12:-12, 12:-12] = 0
    return g


def _block_to_edge(s, rng):     # a dark block reaching three edges, light strip on the fourth
    g = np.zeros((s, s), np.uint8)
    g[:, : s // 10] = 255
    return g


def _centre_block(s, rng):
    g = np.full((s, s), 255, np.uint8)
    g[s // 4:-s // 4, s // 4:-s // 4] = 0
    return g


def _thin_line(s, rng):         # one 1 px diagonal on white: the thickening radius is largest
    g = np.full((s, s), 255, np.uint8)
    i = np.arange(s // 8, s - s // 8)
    g[i, i] = 0
    return g


def _grid(s, rng):              # 1 px ruled grid every 8 px: many lines, one component
    g = np.full((s, s), 255, np.uint8)
    g[::8] = 0
    g[:, ::8] = 0
    return g


def _maze(s, rng):              # a serpentine: one component thousands of pixels long
    g = np.full((s, s), 255, np.uint8)
    g[2:-2:4, 2:-2] = 0
    g[np.arange(2, s - 6, 8)[:, None] + np.arange(4), s - 3] = 0
    g[np.arange(6, s - 6, 8)[:, None] + np.arange(4), 2] = 0
    return g


def _spiral(s, rng):
    yy, xx = np.mgrid[:s, :s].astype(np.float32) - s / 2
    r, t = np.hypot(yy, xx), np.arctan2(yy, xx)
    g = np.full((s, s), 255, np.uint8)
    g[(np.mod(r - t * s / 60, s / 30) < 2) & (r < s / 2 - 4)] = 0
    return g


def _noise(s, rng):
    return rng.integers(0, 256, (s, s), dtype=np.uint8)


def _salt(s, rng):              # 5% black specks on white: many tiny components
    g = np.full((s, s), 255, np.uint8)
    g[rng.random((s, s)) < 0.05] = 0
    return g


def _checker(s, rng):
    yy, xx = np.mgrid[:s, :s]
    return np.where(((yy // 2) + (xx // 2)) % 2 == 0, 0, 255).astype(np.uint8)


def _gradient(s, rng):          # no flat border at all, ink nowhere: the photo path's background work
    return np.broadcast_to(np.linspace(0, 255, s, dtype=np.float32), (s, s)).astype(np.uint8)


def _ring_of_ink(s, rng):       # a thick frame of ink touching every edge, blank inside
    g = np.zeros((s, s), np.uint8)
    g[s // 6:-s // 6, s // 6:-s // 6] = 255
    return g


def _noisy_maze(s, rng):        # the maze under grain: no flat border, so the photo path labels it
    return np.clip(_maze(s, rng) + rng.normal(0, 20, (s, s)), 0, 255).astype(np.uint8)


def _noisy_spiral(s, rng):
    return np.clip(_spiral(s, rng) * 0.8 + rng.normal(20, 15, (s, s)), 0, 255).astype(np.uint8)


def _strip(s, rng):             # s x 16: a long thin picture with ink along it
    g = np.full((s, 16), 255, np.uint8)
    g[s // 8:-s // 8, 6:10] = 0
    return g


def _channel_view(s, rng):      # a strided view (one channel of RGB), as a decoder may hand over
    rgb = np.full((s, s, 3), 255, np.uint8)
    rgb[12:-12, 12:-12] = 0
    return rgb[:, :, 1]


CASES = {f.__name__[1:]: f for f in (_margin_block, _block_to_edge, _centre_block, _thin_line, _grid,
                                     _maze, _spiral, _noise, _salt, _checker, _gradient, _ring_of_ink,
                                     _noisy_maze, _noisy_spiral, _strip, _channel_view)}


class Stages:
    """Wraps the stage functions so each call adds its thread CPU time to a per-stage total."""

    def __init__(self):
        self.t = dict.fromkeys(STAGES, 0.0)
        self.depth = 0
        self.originals = []
        for mod in (ink, pre):
            for name in STAGES:
                f = getattr(mod, name, None)
                if f is not None and not getattr(f, "_timed", False):
                    self.originals.append((mod, name, f))
                    setattr(mod, name, self._wrap(name, f))

    def _wrap(self, name, f):
        @functools.wraps(f)
        def timed(*a, **k):
            if self.depth:          # called from inside another stage: counted there
                return f(*a, **k)
            self.depth += 1
            t0 = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                self.t[name] += time.thread_time() - t0
                self.depth -= 1
        timed._timed = True
        return timed

    def reset(self):
        self.t = dict.fromkeys(STAGES, 0.0)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _peak_rss_growth(g) -> float:
    """MB the process's peak RSS grows by during one to_mnist call (0 where /proc is missing)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return 0.0
    before = _rss_kb("VmRSS:")
    pre.to_mnist(g)
    return max(0, _rss_kb("VmHWM:") - before) / 1024


def measure(g, repeat, stages):
    """(median CPU s, per-stage CPU s of the median call, peak extra MB) of to_mnist(g)."""
    runs = []
    for _ in range(repeat):
        stages.reset()
        t0 = time.thread_time()
        pre.to_mnist(g)
        runs.append((time.thread_time() - t0, dict(stages.t)))
    runs.sort(key=lambda r: r[0])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    pre.to_mnist(g)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    total, per = runs[len(runs) // 2]
    return total, per, max(peak / 2**20, _peak_rss_growth(g))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", help="comma-separated case names (default: all)")
    p.add_argument("--sides", default="4000,1000,384", help="comma-separated side lengths")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(CASES)
    bad = [n for n in names if n not in CASES]
    if bad or args.repeat < 1:
        print(f"error: unknown case {bad} (choose from {', '.join(CASES)}) or --repeat < 1", file=sys.stderr)
        return 2
    sides = [int(s) for s in args.sides.split(",")]
    stages = Stages()
    rng = np.random.default_rng(0)
    pre.to_mnist(_centre_block(64, rng))    # warm-up: Pillow's import and first calls
    print(f"CPU: {cpu_model()}; median of {args.repeat} calls, thread CPU time")
    print(f"{'case':14s} {'side':>5s} {'total ms':>9s} " + " ".join(f"{s[:10]:>10s}" for s in STAGES)
          + f" {'rest':>7s} {'peak MB':>8s}")
    worst_t, worst_m = (0.0, ""), (0.0, "")
    for s in sides:
        for name in names:
            g = CASES[name](s, rng)
            total, per, mb = measure(g, args.repeat, stages)
            rest = total - sum(per.values())
            print(f"{name:14s} {s:5d} {total * 1e3:9.1f} " + " ".join(f"{per[k] * 1e3:10.1f}" for k in STAGES)
                  + f" {rest * 1e3:7.1f} {mb:8.1f}", flush=True)
            worst_t = max(worst_t, (total * 1e3, f"{name} {s}"))
            worst_m = max(worst_m, (mb, f"{name} {s}"))
    print(f"worst CPU {worst_t[0]:.1f} ms ({worst_t[1]}), target 50; "
          f"worst extra memory {worst_m[0]:.1f} MB ({worst_m[1]}), target 40")
    return 0


if __name__ == "__main__":
    sys.exit(main())
