"""Robustness suite: MNIST test digits as people really send them, through preprocess_image and a model.

Usage:
  python benchmarks/bench_realworld.py --model M.npz [--data DIR] [--n 1000] [--n-photo 100] [--n-crop 1000]
         [--grid docs/realworld.png] [--out figures.json] [--cache DIR] [--only KIND,...]

Builds every condition from the MNIST *test* split only (never training data), each from its own
seeded sample of test digits: 18 MNIST-C-style kinds (benchmarks/realworld_mnistc.py) sent as 28x28
PNGs (lowres_scan as 64x64), and photo-like JPEG renderings on paper (benchmarks/realworld_photo.py) at
four resolutions from 640x480 to 4032x3024 plus pen/marker, blue/black ink, shadow, rotation, low
JPEG quality and chalk on a dark board, and digits filling their frame (benchmarks/realworld_crops.py:
cropped to the ink box and upscaled, low-resolution 8x8 scans upscaled; each beside its margin twin,
both polarities). Each input goes through ``preprocess_image`` and the model;
the script prints accuracy per condition beside clean MNIST (the test set through the same path), the
median preprocessing time per condition, and writes a PNG grid: input, what preprocessing made of it,
the prediction. For every condition it counts the inputs that came back all black and the path
each took through ``to_mnist`` (flat / photo / scan cleaning, declutter, stroke normalisation).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from machine import cpu_model  # noqa: E402
from realworld_crops import KINDS as CROPS  # noqa: E402
from realworld_mnistc import KINDS  # noqa: E402
from realworld_photo import RESOLUTIONS, Photo, render  # noqa: E402

import mnistlite as ml  # noqa: E402
from mnistlite.images.preprocess import preprocess_image  # noqa: E402

PHOTOS = {f"photo {w}x{h}": Photo(size=(w, h)) for w, h in RESOLUTIONS}
PHOTOS.update({
    "photo blue ballpoint": Photo(ink="blue", pen="pen"),
    "photo black marker": Photo(ink="black", pen="marker"),
    "photo hard shadow": Photo(shadow=1.0),
    "photo rotated 15-25 deg": Photo(rotation=25.0),
    "photo JPEG q15-30": Photo(quality=(15, 30)),
    "photo chalk on dark board": Photo(dark_board=True),
})


def _png(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def build(name: str, x, y, n: int, seed: int):
    """(blobs, labels) of one condition from its own seeded sample of the test set."""
    # a margin twin draws the same digits as its cropped condition
    rng = np.random.default_rng([seed, sum(name.removesuffix(" +margin").encode())])
    idx = rng.choice(len(x), size=min(n, len(x)), replace=False)
    if name in KINDS or name in CROPS:
        make = KINDS.get(name) or CROPS[name]
        blobs = [_png(make(x[i], rng)) for i in idx]
    else:
        blobs = [render(x[i], rng, PHOTOS[name]) for i in idx]
    return blobs, y[idx]


def run(name, blobs, labels, model):
    t = np.empty(len(blobs))
    digits = np.empty((len(blobs), 28, 28), np.uint8)
    paths = dict.fromkeys(("flat", "frame", "photo", "scan", "declutter", "stroke", "empty"), 0)
    for i, b in enumerate(blobs):
        info = {}
        t0 = time.perf_counter()
        digits[i] = preprocess_image(b, info=info)
        t[i] = time.perf_counter() - t0
        paths[info["path"]] += 1
        for k in ("declutter", "stroke", "empty"):
            paths[k] += bool(info[k])
    pred = model.predict(digits)
    blank = int((digits.reshape(len(blobs), -1).max(axis=1) == 0).sum())
    return {"accuracy": float((pred == labels).mean()), "n": len(labels), "all_black": blank,
            "paths": paths,
            "preprocess_ms_p50": float(np.median(t) * 1e3), "preprocess_ms_max": float(t.max() * 1e3)}, \
        digits, pred


def _paths(r) -> str:
    p = r["paths"]
    return " ".join(f"{k}={v}" for k, v in p.items() if v)


def grid(rows, path):
    """One row per condition: three (input, preprocessed, prediction) triples."""
    from PIL import Image, ImageDraw

    th, cell = 84, 84 + 56 + 40
    img = Image.new("RGB", (190 + 3 * cell, 24 + th * len(rows)), "white")
    d = ImageDraw.Draw(img)
    d.text((4, 4), "condition", fill="black")
    for k in range(3):
        d.text((190 + k * cell, 4), "input / preprocessed / pred", fill="black")
    for r, (name, acc, blobs, digits, pred, labels) in enumerate(rows):
        y0 = 24 + r * th
        d.text((4, y0 + 30), f"{name}\n{acc:.1%}", fill="black")
        for k in range(min(3, len(blobs))):
            im = Image.open(io.BytesIO(blobs[k])).convert("RGB")
            im.thumbnail((84, 80))
            x0 = 190 + k * cell
            img.paste(im, (x0, y0))
            img.paste(Image.fromarray(digits[k]).resize((56, 56), Image.Resampling.NEAREST).convert("RGB"),
                      (x0 + 86, y0 + 10))
            ok = pred[k] == labels[k]
            d.text((x0 + 146, y0 + 30), f"{pred[k]}" + ("" if ok else f"({labels[k]})"),
                   fill=(0, 130, 0) if ok else (200, 0, 0))
    img.save(path)


def _crop_table(results) -> dict:
    """Print each frame-filling condition beside its margin twin; the worst figures as a dict."""
    pairs = [(k, f"{k} +margin") for k in CROPS if not k.endswith("+margin")
             and k in results and f"{k} +margin" in results]
    if not pairs:
        return {}
    print(f"{'frame-filling':22s} {'cropped':>8s} {'margin':>8s} {'gap':>6s} {'black':>5s}")
    for k, t in pairs:
        a, b = results[k]["accuracy"], results[t]["accuracy"]
        print(f"{k:22s} {a:8.2%} {b:8.2%} {100 * (b - a):6.2f} {results[k]['all_black']:5d}")
    worst = min(results[k]["accuracy"] for k, _ in pairs)
    gap = max(results[t]["accuracy"] - results[k]["accuracy"] for k, t in pairs)
    black = sum(results[k]["all_black"] + results[t]["all_black"] for k, t in pairs)
    print(f"frame-filling: worst cropped {worst:.2%}; widest gap to the twin {100 * gap:.2f} points; "
          f"{black} all black")
    return {"crop_worst": worst, "crop_gap_max": gap, "crop_all_black": black}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model .npz")
    p.add_argument("--data", help="MNIST IDX folder (default: $MNISTLITE_DATA_DIR / load_mnist)")
    p.add_argument("--n", type=int, default=1000, help="test digits per MNIST-C-style kind (default 1000)")
    p.add_argument("--n-photo", type=int, default=100, help="photos per photo condition (default 100)")
    p.add_argument("--n-crop", type=int, default=1000,
                   help="test digits per frame-filling (crop, 8x8) condition (default 1000)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--grid", help="write the picture here (PNG)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--cache", help="folder to keep rendered inputs in (reused when present)")
    p.add_argument("--only", help="comma-separated condition names or prefixes (default: all)")
    args = p.parse_args(argv)
    if args.n < 1 or args.n_photo < 1 or args.n_crop < 1:
        print("error: --n, --n-photo and --n-crop must be >= 1", file=sys.stderr)
        return 2
    try:
        model = ml.load(args.model)
        (_, _), (x, y) = ml.load_mnist(args.data, as_float=False)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model} sha256 {model.sha256[:12]}")
    results, rows = {}, []
    t0 = time.perf_counter()
    clean = [_png(d) for d in x]
    r, digits, pred = run("clean MNIST", clean, y, model)
    r["model_on_raw_test"] = float((model.predict(x) == y).mean())
    results["clean MNIST"] = r
    rows.append(("clean MNIST", r["accuracy"], clean[:3], digits, pred, y))
    print(f"{'condition':28s} {'accuracy':>9s} {'n':>5s} {'prep p50 ms':>11s} {'max ms':>8s} "
          f"{'black':>5s}  paths")
    print(f"{'clean MNIST (raw arrays)':28s} {r['model_on_raw_test']:9.2%} {len(y):5d}")
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    for name in list(KINDS) + list(PHOTOS) + list(CROPS):
        if only and not any(name.startswith(o) for o in only):
            continue
        n = args.n if name in KINDS else args.n_crop if name in CROPS else args.n_photo
        cached = Path(args.cache) / f"{name.replace(' ', '_')}-{n}-{args.seed}.npz" if args.cache else None
        if cached and cached.exists():
            z = np.load(cached, allow_pickle=False)
            blobs, labels = [bytes(b) for b in z["blobs"]], z["labels"]
        else:
            blobs, labels = build(name, x, y, n, args.seed)
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, blobs=np.array(blobs, dtype=object).astype(bytes), labels=labels)
        r, digits, pred = run(name, blobs, labels, model)
        results[name] = r
        rows.append((name, r["accuracy"], blobs[:3], digits, pred, labels))
        print(f"{name:28s} {r['accuracy']:9.2%} {r['n']:5d} {r['preprocess_ms_p50']:11.2f} "
              f"{r['preprocess_ms_max']:8.1f} {r['all_black']:5d}  {_paths(r)}", flush=True)
    kinds = [results[k]["accuracy"] for k in KINDS if k in results]
    photos = {k: results[k]["accuracy"] for k in PHOTOS if k in results}
    summary = {"cpu": cpu_model(), "model": args.model, "model_sha256": model.sha256,
               "clean_mnist": results["clean MNIST"]["accuracy"],
               "seconds": round(time.perf_counter() - t0, 1)}
    if kinds:
        worst = min((results[k]["accuracy"], k) for k in KINDS if k in results)
        summary.update({"mnistc_mean": float(np.mean(kinds)), "mnistc_worst": worst})
        print(f"MNIST-C-style mean {np.mean(kinds):.2%} over {len(kinds)} kinds; "
              f"worst {worst[1]} {worst[0]:.2%}")
    if photos:
        res = [photos[k] for k in photos if "x" in k.split()[-1] and k.split()[-1][0].isdigit()]
        summary.update({"photo_min": min(photos.values()), "photo_min_resolution": min(res) if res else None})
        print(f"photos: worst condition {min(photos.values()):.2%}" +
              (f"; worst resolution {min(res):.2%}" if res else ""))
    crops = _crop_table(results)
    if crops:
        summary.update(crops)
    print(f"clean MNIST through preprocess_image {summary['clean_mnist']:.2%}; {summary['seconds']} s in all")
    if args.grid:
        grid(rows, args.grid)
        print(f"grid -> {args.grid}")
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "conditions": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
