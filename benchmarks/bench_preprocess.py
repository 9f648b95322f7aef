"""Time user-image preprocessing and PNG-folder reading.

Usage: python benchmarks/bench_preprocess.py [--data DIR] [--repeat N] [--folder-count N]

Prints the median and p95 time per call of ``preprocess_image`` on a 28x28 PNG (a real MNIST digit
when --data is given, else a synthetic one), a 1000x1000 JPEG and a 1000x1000 PNG, then the time
``read_folder`` takes for --folder-count 28x28 PNGs written to a temporary folder.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time

import numpy as np


def _digits(data_dir, n):
    if data_dir:
        import mnistlite as ml

        (_, _), (x, _) = ml.load_mnist(data_dir, as_float=False)
        return x[:n]
    rng = np.random.default_rng(0)
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 6:22, 10:18] = rng.integers(128, 256, size=(n, 16, 8), dtype=np.uint8)
    return x


def _big(digit, fmt):
    from PIL import Image

    im = Image.fromarray(255 - digit).resize((600, 600), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (1000, 1000), 255)
    canvas.paste(im, (150, 300))
    buf = io.BytesIO()
    canvas.convert("RGB").save(buf, format=fmt, quality=90) if fmt == "JPEG" else canvas.save(buf, format=fmt)
    return buf.getvalue()


def _time(fn, arg, repeat):
    fn(arg)
    t = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(arg)
        t[i] = time.perf_counter() - t0
    return np.median(t) * 1e3, np.percentile(t, 95) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="MNIST folder (default: synthetic digits)")
    ap.add_argument("--repeat", type=int, default=2000, help="calls per timing (big images: repeat/20)")
    ap.add_argument("--folder-count", type=int, default=10000, help="PNGs for the read_folder timing")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.folder_count < 1:
        print("error: --repeat and --folder-count must be >= 1", file=sys.stderr)
        return 2
    from mnistlite.data.images import encode_png, read_folder, write_folder
    from mnistlite.images.decode import decode_image
    from mnistlite.images.preprocess import preprocess_image

    try:
        digits = _digits(args.data, args.folder_count)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    small = encode_png(digits[0])
    cases = [("28x28 PNG", small, args.repeat),
             ("1000x1000 JPEG", _big(digits[0], "JPEG"), max(args.repeat // 20, 5)),
             ("1000x1000 PNG", _big(digits[0], "PNG"), max(args.repeat // 20, 5))]
    for name, blob, repeat in cases:
        p50, p95 = _time(preprocess_image, blob, repeat)
        d50, _ = _time(decode_image, blob, repeat)
        print(f"preprocess_image {name:15s} ({len(blob):6d} B): p50 {p50:.3f} ms  p95 {p95:.3f} ms"
              f"  (decode_image alone p50 {d50:.3f} ms)")
    with tempfile.TemporaryDirectory() as tmp:
        labels = np.arange(len(digits)) % 10
        t0 = time.perf_counter()
        write_folder(tmp, digits, labels)
        t1 = time.perf_counter()
        folder = read_folder(tmp)
        t2 = time.perf_counter()
        ok = np.array_equal(folder.images, digits)
    print(f"write_folder {len(digits)} PNGs: {t1 - t0:.2f} s; read_folder: {t2 - t1:.2f} s"
          f" (round trip exact: {ok}, problems: {len(folder.problems)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
