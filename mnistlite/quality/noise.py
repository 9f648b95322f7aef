"""Seeded generators of corrupted "digits": the kinds of noise the data gate must catch.

Each generator returns uint8 (n, 28, 28). ``noisy_digits`` needs real digits to spoil; the others
make images from nothing, like the week that arrived as random white, black and gray pixels.
"""
from __future__ import annotations

import numpy as np

from ..nn.rng import as_generator

SIZE = 28


def uniform(n: int, seed=0) -> np.ndarray:
    """Uniform random bytes 0..255."""
    return as_generator(seed).integers(0, 256, size=(n, SIZE, SIZE), dtype=np.uint8)


def levels(n: int, seed=0) -> np.ndarray:
    """Each pixel black, gray or white at random (the incident), gray level and mix drawn per image."""
    rng = as_generator(seed)
    gray = rng.integers(64, 192, size=(n, 1, 1))
    # Per-image probabilities of black / gray / white so some images are mostly dark.
    p = rng.dirichlet([1.0, 1.0, 1.0], size=n)[:, None, None, :]
    u = rng.random((n, SIZE, SIZE, 1))
    choice = (u > np.cumsum(p, axis=-1)).sum(axis=-1)          # 0, 1 or 2
    out = np.where(choice == 0, 0, np.where(choice == 1, gray, 255))
    return out.astype(np.uint8)


def salt_pepper(n: int, seed=0, density=(0.02, 0.5)) -> np.ndarray:
    """Salt-and-pepper over a blank image: salt on black or pepper on white, a share in ``density``
    of pixels."""
    rng = as_generator(seed)
    blank = rng.choice(np.array([0, 255], dtype=np.uint8), size=(n, 1, 1))
    d = rng.uniform(*density, size=(n, 1, 1))
    u = rng.random((n, SIZE, SIZE))
    hit = u < d
    return np.where(hit, 255 - blank, blank).astype(np.uint8)


def gaussian(n: int, seed=0, sigma=(20.0, 100.0)) -> np.ndarray:
    """Gaussian noise around a random mean level (40..215), sigma drawn per image, clipped to 0..255."""
    rng = as_generator(seed)
    mean = rng.uniform(40, 215, size=(n, 1, 1))
    s = rng.uniform(*sigma, size=(n, 1, 1))
    return np.clip(mean + s * rng.standard_normal((n, SIZE, SIZE)), 0, 255).astype(np.uint8)


def _blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur of float (n, 28, 28) with edge padding, repeated twice (close to Gaussian)."""
    k = 2 * radius + 1
    for _ in range(2):
        for axis in (1, 2):
            pad = [(0, 0)] * 3
            pad[axis] = (radius, radius)
            c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
            c = np.concatenate([np.zeros_like(c.take([0], axis=axis)), c], axis=axis)
            a = (c.take(np.arange(k, c.shape[axis]), axis=axis)
                 - c.take(np.arange(0, c.shape[axis] - k), axis=axis)) / k
    return a


def blurred(n: int, seed=0) -> np.ndarray:
    """Uniform noise blurred (radius 1..2) and contrast-stretched: smooth blobs, no digit."""
    rng = as_generator(seed)
    a = rng.random((n, SIZE, SIZE))
    out = np.empty((n, SIZE, SIZE))
    radius = rng.integers(1, 3, size=n)
    for r in (1, 2):                      # two radii: a loop over kinds, not samples
        m = radius == r
        out[m] = _blur(a[m], r)
    lo = out.min(axis=(1, 2), keepdims=True)
    hi = out.max(axis=(1, 2), keepdims=True)
    return (255 * (out - lo) / np.maximum(hi - lo, 1e-6)).astype(np.uint8)


def noisy_digits(digits: np.ndarray, seed=0, sigma=(60.0, 120.0)) -> np.ndarray:
    """Real digits uint8 (n, 28, 28) with heavy Gaussian noise on top (sigma drawn per image)."""
    rng = as_generator(seed)
    d = np.asarray(digits, dtype=np.float32)
    if d.ndim != 3 or d.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"digits must be (n, 28, 28), got shape {d.shape}")
    s = rng.uniform(*sigma, size=(len(d), 1, 1))
    return np.clip(d + s * rng.standard_normal(d.shape), 0, 255).astype(np.uint8)


KINDS = {
    "uniform": uniform, "levels": levels, "salt_pepper": salt_pepper,
    "gaussian": gaussian, "blurred": blurred,
}
ALL_KINDS = (*KINDS, "noisy_digit")


def make(kind: str, n: int, seed=0, digits: np.ndarray | None = None) -> np.ndarray:
    """``n`` images of one noise kind (``ALL_KINDS``); ``noisy_digit`` needs ``digits`` (m, 28, 28),
    m >= 1."""
    if kind == "noisy_digit":
        if digits is None or len(digits) == 0:
            raise ValueError("noise kind 'noisy_digit' needs real digits to spoil")
        rng = as_generator(seed)
        pick = rng.integers(0, len(digits), size=n)
        return noisy_digits(np.asarray(digits)[pick], seed=rng)
    if kind not in KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(ALL_KINDS)}")
    return KINDS[kind](n, seed=seed)


def mixed(n: int, seed=0, digits: np.ndarray | None = None) -> np.ndarray:
    """``n`` images cycling through every kind (``noisy_digit`` only when ``digits`` are given)."""
    rng = as_generator(seed)
    kinds = [k for k in ALL_KINDS if k != "noisy_digit" or digits is not None]
    which = np.arange(n) % len(kinds)
    out = np.empty((n, SIZE, SIZE), dtype=np.uint8)
    for i, k in enumerate(kinds):
        m = which == i
        out[m] = make(k, int(m.sum()), seed=rng, digits=digits)
    return out
