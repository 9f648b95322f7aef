"""The corruption detector: separates handwritten 28x28 digits from noise with cheap image statistics.

Thresholds were set on MNIST *train* images with margin beyond the most extreme real digit. The
data gate (``validate.py``) and the service (on every upload) share it, so an image is judged the
same way wherever it enters. Vectorised over a batch, so a batch of one takes the same path.
"""
from __future__ import annotations

import numpy as np

# Outer 3-pixel ring: MNIST centres a 20x20 digit box in 28x28, so real ink rarely reaches it.
_RING_INDEX = np.flatnonzero(np.pad(np.zeros((22, 22), bool), 3, constant_values=True))
_LEVELS = np.arange(256, dtype=np.float64) / 255
_CHUNK = 4096
_OFFSETS = np.arange(0, 256 * _CHUNK, 256, dtype=np.int64)[:, None]   # per-image histogram offsets
_SMALL = 32   # up to this many images, rules are checked image by image on Python scalars
# below[v] of these levels, fetched in one take for a single image (_one)
_CUTS = np.array([4, 25, 49, 50, 127, 205])

# (statistic, test, threshold, message). Worst MNIST train value in the comment; test set agrees.
# Order matters only for which reason is reported first.
RULES = (
    ("ink", "<", 10.0, "blank: ink of only {:.0f} px (digits: > 10)"),          # min 19.6
    ("mid", ">", 0.17, "noise: {:.0%} mid-gray pixels (digits: < 17%)"),         # max 12.9%
    ("background", "<", 0.50, "noise: only {:.0%} background pixels (digits: > 50%)"),  # min 55.6%
    ("faint", ">", 0.10, "noise: {:.0%} faint gray pixels (digits: < 10%)"),     # max 7.4%
    ("solid", "<", 0.10, "noise: no solid strokes, {:.0%} of ink saturated (digits: > 10%)"),  # min 13%
    ("border", ">", 20.0, "noise: ink at the border ({:.0f} px; digits: < 20)"),  # max 15
    ("speckle", ">", 10, "noise: {:.0f} isolated ink pixels (digits: <= 10)"),    # max 9
    ("speckle_share", ">", 0.35, "noise: {:.0%} of ink pixels isolated (digits: < 35%)"),  # max 19.5%
    ("roughness", ">", 2.6, "noise: edges {:.1f}x the ink mass (digits: < 2.6x)"),  # max 2.2
)


def image_stats(images) -> dict:
    """Per-image statistics of uint8 (n, 28, 28) images, each a float/int array (n,); see RULES."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"images must be uint8 (n, 28, 28), got {x.dtype} {x.shape}")
    if len(x) <= _CHUNK:
        return _stats(x)
    parts = [_stats(x[i:i + _CHUNK]) for i in range(0, len(x), _CHUNK)]   # bounds temporary memory
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _stats(x: np.ndarray) -> dict:
    n = len(x)
    f = x.reshape(n, 784)
    # One histogram per image (a single bincount over offset values) gives every level-range count.
    hist = np.bincount((f + _OFFSETS[:n]).ravel(), minlength=256 * n).reshape(n, 256)
    below = np.cumsum(hist, axis=1)                     # below[:, v] = pixels <= v
    ink = hist @ _LEVELS                                # in full-white pixels
    inked = x > 127
    # An ink pixel is isolated when none of its 4 neighbours is ink (speckle, not strokes).
    p = np.zeros((n, 30, 30), bool)
    p[:, 1:-1, 1:-1] = inked
    nb = p[:, :-2, 1:-1] | p[:, 2:, 1:-1] | p[:, 1:-1, :-2] | p[:, 1:-1, 2:]
    isolated = (inked & ~nb).reshape(n, 784).sum(axis=1)
    xi = x.astype(np.int16)
    tv = (np.abs(xi[:, :, 1:] - xi[:, :, :-1]).sum(axis=(1, 2))
          + np.abs(xi[:, 1:] - xi[:, :-1]).sum(axis=(1, 2)))
    return {
        "mid": (below[:, 205] - below[:, 49]) / 784,
        "background": below[:, 25] / 784,
        "faint": (below[:, 50] - below[:, 4]) / 784,
        "solid": (784 - below[:, 205]) / np.maximum(784 - below[:, 25], 1),
        "border": f[:, _RING_INDEX].sum(axis=1) / 255,
        "speckle": isolated,
        "speckle_share": isolated / np.maximum(784 - below[:, 127], 1),
        "roughness": tv / 255 / np.maximum(ink, 1e-3),
        "ink": ink,
    }


def _first_failure(stats: dict) -> str | None:
    """The reason of the first rule one image's scalar statistics fail, else None."""
    for name, op, limit, message in RULES:
        v = stats[name]
        if v > limit if op == ">" else v < limit:
            return message.format(v)
    return None


def _pairs() -> np.ndarray:
    """Flat indices into a 28x28 image: every horizontal then every vertical pair of neighbours (first
    pixels, then second pixels), and the outer ring; one ``take`` gathers all ``_one`` needs."""
    i = np.arange(784).reshape(28, 28)
    first = np.concatenate([i[:, :-1].ravel(), i[:-1].ravel()])
    second = np.concatenate([i[:, 1:].ravel(), i[1:].ravel()])
    return np.concatenate([first, second, _RING_INDEX])


_PAIRS = _pairs()
_N_PAIRS = 2 * 27 * 28


def _isolated(x: np.ndarray) -> int:
    """Ink pixels (> 127) of one uint8 (28, 28) image with no ink among their four neighbours, counted on
    one integer of its ink bits: rows of 32 bits (28 pixels, then the 4 zeros ``packbits`` pads with), so a
    shift by 1 meets the pixel beside or a zero, one by 32 the pixel above or below or nothing."""
    m = int.from_bytes(np.packbits(x > 127, axis=1).tobytes(), "big")
    return (m & ~((m << 1) | (m >> 1) | (m << 32) | (m >> 32))).bit_count()


def _one(x: np.ndarray) -> dict:
    """``_stats`` of one uint8 (28, 28) image as Python scalars, the same values with fewer array
    operations: one plain histogram, the neighbour pairs and ring gathered in one ``take``, the isolated
    pixels on one integer, scalar arithmetic (a service upload)."""
    f = x.reshape(784)
    hist = np.bincount(f, minlength=256)
    b4, b25, b49, b50, b127, b205 = hist.cumsum().take(_CUTS).tolist()
    ink = (hist[None] @ _LEVELS).item()   # the same (1, 256) product as _stats: the same rounding
    isolated = _isolated(x)
    g = f.take(_PAIRS).astype(np.int16)
    d = g[:_N_PAIRS]
    d -= g[_N_PAIRS:2 * _N_PAIRS]
    tv = int(np.add.reduce(np.abs(d, out=d)))
    border = int(np.add.reduce(g[2 * _N_PAIRS:]))
    return {
        "mid": (b205 - b49) / 784,
        "background": b25 / 784,
        "faint": (b50 - b4) / 784,
        "solid": (784 - b205) / max(784 - b25, 1),
        "border": border / 255,
        "speckle": isolated,
        "speckle_share": isolated / max(784 - b127, 1),
        "roughness": tv / 255 / max(ink, 1e-3),
        "ink": ink,
    }


def corruption_reasons(images) -> list:
    """uint8 (n, 28, 28) -> list of n reasons: None when an image looks like a handwritten digit,
    else a short human reason for the first failed check (e.g. "noise: 61% mid-gray pixels ...")."""
    x = np.asarray(images)
    if x.shape == (1, 28, 28) and x.dtype == np.uint8:
        return [_first_failure(_one(x[0]))]
    stats = image_stats(x)
    n = len(next(iter(stats.values())))
    if n <= _SMALL:
        columns = {name: stats[name].tolist() for name, _, _, _ in RULES}
        return [_first_failure({k: c[i] for k, c in columns.items()}) for i in range(n)]
    reasons: list = [None] * n
    for name, op, limit, message in reversed(RULES):  # reversed: the first rule's reason wins
        v = stats[name]
        for i in np.flatnonzero(v > limit if op == ">" else v < limit):
            reasons[i] = message.format(v[i])
    return reasons


def is_corrupt(image) -> str | None:
    """One uint8 (28, 28) image -> None if it looks like a digit, else the reason (as corruption_reasons)."""
    a = np.asarray(image)
    if a.shape != (28, 28):
        raise ValueError(f"image must be (28, 28), got shape {a.shape}")
    return corruption_reasons(a[None])[0]
