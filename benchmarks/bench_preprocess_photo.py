"""Time and memory of preprocess_image on photos, and how unchanged MNIST's own digits come through.

Usage: python benchmarks/bench_preprocess_photo.py [--data DIR] [--photos 20] [--repeat 3]

For each resolution (640x480 .. 4032x3024) it renders --photos photo-like JPEGs of MNIST test digits
(benchmarks/realworld_photo.py) and prints the median and p95 time of ``preprocess_image`` per call
(each photo --repeat times), with the median CPU time of the calling thread beside it, which a busy
machine inflates less than wall time. The peak-memory figure is measured in a fresh child process per
resolution: its peak RSS (VmHWM, reset through /proc/self/clear_refs) while preprocessing the photos
minus its RSS just before (imports, the JPEG bytes and one warm-up call on a 28x28 PNG already done).
Then every MNIST test digit goes
through ``preprocess_image`` as a PNG: the share that comes back within one grey level of itself.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from bench_realworld import _png, cpu_model  # noqa: E402
from realworld_photo import RESOLUTIONS, Photo, render  # noqa: E402

import mnistlite as ml  # noqa: E402
from mnistlite.images.preprocess import preprocess_image  # noqa: E402


def _child(path: str) -> None:
    """Child process: preprocess the photos in ``path`` (an .npz of blobs) and print the RSS increase."""
    with np.load(path) as z:
        blobs = [bytes(b) for b in z["blobs"]]
    preprocess_image(_png(np.zeros((28, 28), np.uint8)))
    Path("/proc/self/clear_refs").write_text("5")    # reset the peak-RSS mark (VmHWM) to the current RSS
    before = _status_kb("VmHWM")
    for b in blobs:
        preprocess_image(b)
    after = _status_kb("VmHWM")
    print(json.dumps({"rss_increase_mb": (after - before) / 1024, "peak_rss_mb": after / 1024}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="MNIST folder (default: $MNISTLITE_DATA_DIR / load_mnist)")
    ap.add_argument("--photos", type=int, default=20, help="photos per resolution (default 20)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per photo (default 3)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.photos < 1 or args.repeat < 1:
        print("error: --photos and --repeat must be >= 1", file=sys.stderr)
        return 2
    (_, _), (x, _) = ml.load_mnist(args.data, as_float=False)
    print(f"CPU: {cpu_model()}")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in RESOLUTIONS:
            blobs = [render(x[i], rng, Photo(size=(w, h))) for i in rng.choice(len(x), args.photos)]
            preprocess_image(blobs[0])
            t, cpu = [], []
            for _ in range(args.repeat):
                for b in blobs:
                    c0, t0 = time.thread_time(), time.perf_counter()
                    preprocess_image(b)
                    t.append(time.perf_counter() - t0)
                    cpu.append(time.thread_time() - c0)
            t, cpu = np.array(t) * 1e3, np.array(cpu) * 1e3
            path = Path(tmp) / f"{w}.npz"
            np.savez(path, blobs=np.array(blobs, dtype=object).astype(bytes))
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                                 capture_output=True, text=True).stdout
            mem = json.loads(out.strip().splitlines()[-1])
            size = np.mean([len(b) for b in blobs]) / 1e6
            print(f"preprocess_image {w}x{h} JPEG (~{size:.1f} MB): p50 {np.median(t):.1f} ms  "
                  f"p95 {np.percentile(t, 95):.1f} ms  max {t.max():.1f} ms  "
                  f"(CPU time p50 {np.median(cpu):.1f} ms)  "
                  f"peak RSS +{mem['rss_increase_mb']:.0f} MB (process {mem['peak_rss_mb']:.0f} MB)")
    out = np.stack([preprocess_image(_png(d)) for d in x])
    err = np.abs(out.astype(np.int16) - x).reshape(len(x), -1).max(axis=1)
    print(f"MNIST test digits through preprocess_image: {np.mean(err == 0):.2%} identical, "
          f"{np.mean(err <= 1):.2%} within one grey level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
