"""Find the digit's ink in a photo or a damaged scan: background, polarity, components, stroke width.

``to_mnist`` calls ``clean`` for pictures whose border is not one flat level (photos with uneven
light, fog, noise) and ``normalise_stroke`` on every crop it has to shrink. Everything is vectorised
numpy on an image shrunk to at most WORK pixels a side; connected components are labelled by
min-label propagation with pointer jumping, so no scipy is needed.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..nn.arrays import aany as _any
from ..nn.arrays import amax as _max
from ..nn.arrays import amin as _min
from .grain import is_noise
from .morphology import dilate, label, median3
from .stroke import STROKE, normalise_stroke, stroke_width
from .worksize import WORK, shrink, to_work_size

__all__ = ["WORK", "SMALL", "FLAT", "STROKE", "is_flat", "shrink", "background", "select", "clean",
           "declutter", "label", "median3", "stroke_width", "normalise_stroke"]

class Frame(NamedTuple):
    level: float
    tol: int
    ink: float
    inside: float
    specks: float
    runs: int
    shading: float


_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
SMALL = 64          # pictures up to this many pixels a side are scans or digit crops, not photos
FLAT = (24, 8)      # border 5th..95th percentile spread (levels) of one flat background: small, photo
# frame_level: shares of the border at the background level (give or take tol levels) and in ink,
# of the picture at that level, of the ink in single pixels (impulse noise); ink runs along one side;
# pixels a few levels off the background over those at it
FRAME = Frame(level=0.15, tol=2, ink=0.10, inside=0.05, specks=0.02, runs=3, shading=1.5)
# Reductions called on the ufuncs directly: is_flat and declutter's check run on every upload
# (the figures are in docs/performance.md).


@functools.lru_cache(maxsize=128)
def ring_index(h: int, w: int, width: int = 2) -> np.ndarray:
    """Flat indices of the outer ``width``-pixel ring of an (h, w) picture (h, w > 2 * width), read-only."""
    inner = np.zeros((h, w), bool)
    inner[width:-width, width:-width] = True
    idx = np.flatnonzero(~inner)
    idx.flags.writeable = False
    return idx


def _border(g: np.ndarray) -> np.ndarray:
    """The outer two-pixel ring of uint8 (h, w) ``g`` (h, w > 4) as a new 1-D array."""
    h, w = g.shape
    if h * w > WORK * WORK:   # no index table as big as the picture for a one-off shape
        return np.concatenate((g[:2].ravel(), g[-2:].ravel(), g[2:-2, :2].ravel(), g[2:-2, -2:].ravel()))
    return g.take(ring_index(h, w)) if g.flags.c_contiguous else g.ravel().take(ring_index(h, w))


def ring_level(g: np.ndarray) -> int | None:
    """The one level of the whole outer two-pixel ring of uint8 (h, w) ``g`` (h, w > 4; a clean page), or
    None. Then ``is_flat(g)`` holds and so does ``_border_median(g)`` == that level (its ring lies inside)."""
    h, w = g.shape
    if h <= 4 or w <= 4:
        return None
    raw = _border(g).tobytes()
    return raw[0] if raw.count(raw[:1]) == len(raw) else None


def is_flat(g: np.ndarray) -> bool:
    """True when the outer two-pixel ring of uint8 (h, w) ``g`` is one level give or take FLAT.

    Photos get the tighter bound: sensor grain and uneven light always spread their border.
    """
    h, w = g.shape
    if h <= 4 or w <= 4:
        return True
    ring = _border(g)
    raw = ring.tobytes()
    if raw.count(raw[:1]) == len(raw):   # exactly one level (a clean page): no reductions either
        return True
    limit = FLAT[max(h, w) > SMALL]
    if int(_max(ring)) - int(_min(ring)) <= limit:   # the common case, one level: no sort needed
        return True
    n = ring.size
    lo, hi = n * 5 // 100, n * 95 // 100
    ring.partition((lo, hi))
    return int(ring[hi]) - int(ring[lo]) <= limit


def frame_level(g: np.ndarray, work: np.ndarray | None = None) -> int | None:
    """The background level of uint8 (h, w) ``g`` when a digit fills its frame on one flat background
    (cropped to its edges, a low-resolution scan scaled to fill it): None for anything else.

    Of the outer ring, a share FRAME.level lies within FRAME.tol levels of one level, a share
    FRAME.ink is ink (a line or a digit merely grazing the edge is not a digit filling its frame)
    and all but 1% of the rest lies on one side of that level (ink of one polarity). Pixels a few
    levels off it number at most FRAME.shading times those at it (not light falling off in a photo),
    no side is crossed more than FRAME.runs times (a dotted line along it), the level holds a tenth
    of two sides and FRAME.inside of the picture (not fog rising from one edge), and at most
    FRAME.specks of the strong ink is single pixels (impulse noise). Photos fail, as grain and light
    spread their border both ways. ``work``: ``to_work_size(g)`` when the caller has it.
    """
    h, w = g.shape
    if h <= 4 or w <= 4:
        return None
    ring = _border(g)
    tol = FRAME.tol
    counts = np.bincount(ring, minlength=256)
    near = np.convolve(counts, np.ones(2 * tol + 1, np.int64), mode="same")
    centre = int(np.argmax(near))
    lo, hi = max(centre - tol, 0), centre + tol + 1
    bg = lo + int(np.argmax(counts[lo:hi]))
    n = ring.size
    below, above = int(counts[:lo].sum()), int(counts[hi:].sum())
    if near[centre] < FRAME.level * n or min(below, above) > 0.01 * n or below + above < FRAME.ink * n:
        return None
    a = to_work_size(g) if work is None else work
    d = np.abs(a.astype(np.int16) - bg)
    at = np.count_nonzero(d <= tol)
    if np.count_nonzero(d <= 6 * tol) - at > FRAME.shading * at:
        return None
    edges = [np.abs(e.astype(np.int16) - bg) > tol for e in (g[0], g[-1], g[:, 0], g[:, -1])]
    if max(np.count_nonzero(e[1:] & ~e[:-1]) + bool(e[0]) for e in edges) > FRAME.runs:
        return None
    sides = sum(np.count_nonzero(~e) >= 0.1 * e.size for e in edges)
    if sides < 2 or at < FRAME.inside * a.size:
        return None
    strong = d > 64          # faint stray pixels, upscaled, may stand alone: not counted
    p = np.pad(strong, 1)
    alone = strong.copy()
    for dy, dx in _OFFSETS8:
        alone &= ~p[1 + dy:1 + dy + a.shape[0], 1 + dx:1 + dx + a.shape[1]]
    return None if np.count_nonzero(alone) > FRAME.specks * np.count_nonzero(strong) else bg


def background(a: np.ndarray, q: float, blocks: int = 16) -> np.ndarray:
    """Smooth background of float32 (h, w) ``a``: the q-quantile of blocks of 1/``blocks`` of the
    longest side, 3x3-median-filtered over blocks (ink-filled blocks lose), bilinearly upsampled."""
    from PIL import Image

    h, w = a.shape
    b = max(3, -(-max(h, w) // blocks))
    gh, gw = -(-h // b), -(-w // b)
    p = np.pad(a, ((0, gh * b - h), (0, gw * b - w)), mode="edge")
    blocks = p.reshape(gh, b, gw, b).transpose(0, 2, 1, 3).reshape(gh, gw, b * b)
    k = min(b * b - 1, int(q * (b * b - 1) + 0.5))
    coarse = np.ascontiguousarray(np.partition(blocks, k, axis=2)[:, :, k])
    coarse = median3(coarse)
    up = Image.fromarray(coarse, "F").resize((gw * b, gh * b), Image.Resampling.BILINEAR)
    return np.asarray(up)[:h, :w]


def select(ink: np.ndarray, mask: np.ndarray, *, photo: bool = True, anywhere: bool = False,
           stats: dict | None = None) -> np.ndarray:
    """Bool (h, w): the components of ``mask`` that form the digit.

    The component with the most ink mass times mean contrast is the digit; in a photo, components
    touching the frame or spanning most of it (page edges, shadow borders) are passed over unless
    nothing else is left. Components near the digit with >= 5% of its mass and >= 40% of its mean
    contrast join it (a 5's detached bar, a broken pen line), and in a small picture so does any
    piece within the digit's box; with ``anywhere``, pieces with that share join wherever they lie.
    Grain, speckles, dots and faint shadow fringes do not. ``stats``, when given, gets ``share``: the
    kept components' ink mass over that of all components passed over neither as frame nor as huge.
    """
    h, w = mask.shape
    lab, n = label(mask)
    if n == 0:
        return mask
    on = lab >= 0
    comp = lab[on]
    rows, cols = np.nonzero(on)
    mass = np.bincount(comp, weights=ink[on], minlength=n)
    mean = mass / np.bincount(comp, minlength=n)
    r0 = np.full(n, h)
    r1 = np.full(n, -1)
    c0 = np.full(n, w)
    c1 = np.full(n, -1)
    np.minimum.at(r0, comp, rows)
    np.maximum.at(r1, comp, rows)
    np.minimum.at(c0, comp, cols)
    np.maximum.at(c1, comp, cols)
    good = np.ones(n, bool)
    if photo:
        edge = (r0 == 0) | (c0 == 0) | (r1 == h - 1) | (c1 == w - 1)
        huge = ((r1 - r0 + 1) > 0.7 * h) | ((c1 - c0 + 1) > 0.7 * w)
        good = ~edge & ~huge
        if not good.any():
            good = ~huge if (~huge).any() else np.ones(n, bool)
    main = int(np.argmax(np.where(good, mass * mean, -1)))
    size = max(r1[main] - r0[main], c1[main] - c0[main]) + 1
    m = 0.5 * size
    near = ((r1 >= r0[main] - m) & (r0 <= r1[main] + m) & (c1 >= c0[main] - m) & (c0 <= c1[main] + m))
    inside = (r0 >= r0[main] - 1) & (r1 <= r1[main] + 1) & (c0 >= c0[main] - 1) & (c1 <= c1[main] + 1)
    if anywhere:   # a scan's own field: every piece of some weight is the digit's, wherever it lies
        keep = (mean >= 0.4 * mean[main]) & ((mass >= 0.05 * mass[main]) | inside)
    else:
        heavy = (mass >= 0.05 * mass[main]) | (inside & (not photo))
        keep = good & near & (mean >= 0.4 * mean[main]) & heavy
    keep[main] = True
    if stats is not None:
        stats["share"] = float(mass[keep].sum() / max(float(mass[keep | good].sum()), 1e-12))
    return keep[np.maximum(lab, 0)] & on


def clean(g: np.ndarray, info: dict | None = None) -> np.ndarray:
    """uint8 (h, w) photo or damaged scan -> uint8 white-on-black image holding only the digit's ink.

    Shrinks to WORK and removes impulse noise; then works on log intensity, where uneven light and
    shadow divide rather than add: a smooth background estimate is subtracted, the ink's polarity
    is the side with the stronger extreme, ink above the noise is thresholded, the digit's connected
    components are kept and their ink stretched to 0..255. All zeros when no ink stands out; a small
    picture where no component holds most of the ink (noise) comes back unchanged. Given ``info``, a
    photo whose ink is pure noise (``is_noise``) gives all zeros and sets ``info["noise"]``.
    """
    a = shrink(g)
    photo = max(g.shape) > SMALL
    med = median3(a)
    spread = float(a.max() - a.min()) or 1.0
    impulse = np.count_nonzero(np.abs(a - med) > 0.4 * spread) > 0.02 * a.size   # salt and pepper
    if impulse:
        a = med
        med = median3(a)
    # Fine-grained noise that a median does not remove (the data gate's noise kinds, a digit under
    # heavy Gaussian noise) is not cleaned up in a small picture: it stays for the detector to flag.
    if not photo and float(np.mean(np.abs(a - med))) > (0.016 if impulse else 0.022) * spread:
        return g
    nb = 16 if photo else 4
    la = np.log(a + 8.0) if photo else a * np.float32(1 / 64)   # small: the linear scale, in log-like units
    r = la - background(la, 0.5, nb)
    sm = median3(r)
    n = sm.size
    lo, hi = np.partition(sm.ravel(), (n // 500, n - 1 - n // 500))[[n // 500, n - 1 - n // 500]]
    dark = -float(lo) >= float(hi)
    ink = background(la, 0.8, nb) - la if dark else la - background(la, 0.2, nb)
    np.maximum(ink, 0, out=ink)
    sigma = 1.4826 * float(np.median(ink)) + 0.02
    peak = float(median3(ink).max())
    t = max(4 * sigma, 0.35 * peak)
    if peak < 0.25:     # under ~22% contrast: nothing stands out as ink
        return np.zeros(a.shape, np.uint8)
    mask = ink > t
    stats: dict = {}
    keep = select(ink, mask, photo=photo, stats=stats)
    if not keep.any():
        return np.zeros(a.shape, np.uint8)
    if info is not None and photo and is_noise(keep, stats["share"]):
        info["noise"] = True
        return np.zeros(a.shape, np.uint8)
    if not photo and ink[dilate(keep, 1)].sum() < (0.85 if impulse else 0.5) * ink.sum():
        return g    # no component stands out (noise, not a digit): left for the detector to judge
    level = float(np.percentile(ink[keep], 90)) or 1.0
    soft = ink * (255.0 / level)
    soft[~dilate(keep, 1)] = 0
    if photo:
        soft[soft < 0.5 * 255 * t / level] = 0
    return np.clip(soft, 0, 255).astype(np.uint8)


def declutter(g: np.ndarray, mask: np.ndarray, bg: int) -> np.ndarray:
    """A small picture on one flat background whose ink reaches its border: remove what crosses it.

    Straight lines from border to border (a ruled line, a fold, a scanner streak) and components
    lying apart from the digit (dots, specks, a stray line) are painted over with the background
    level ``bg``. ``mask`` is the bool ink mask of uint8 ``g``. Returns ``g`` itself when the ink
    stays clear of the outermost pixels, as nearly all of MNIST's digits do: labelling components
    costs more than the rest of ``to_mnist``.
    """
    h, w = g.shape
    if not (_any(mask[0]) or _any(mask[-1]) or _any(mask[:, 0]) or _any(mask[:, -1])):
        return g
    if np.count_nonzero(mask) > 0.3 * mask.size:
        return g    # ink everywhere: noise, not a digit with clutter; the detector judges it
    m = mask.copy()
    out = g.copy()
    # a line end to end: touching both opposite borders, inked along >= 60% of its length (the
    # digit it crosses may break it); a digit's own strokes never span the field
    cols = (np.count_nonzero(m, axis=0) >= 0.6 * h) & m[:2].any(axis=0) & m[-2:].any(axis=0)
    rows = (np.count_nonzero(m, axis=1) >= 0.6 * w) & m[:, :2].any(axis=1) & m[:, -2:].any(axis=1)
    out[:, cols] = bg
    out[rows] = bg
    m[:, cols] = False
    m[rows] = False
    if not m.any():
        return g
    strength = np.abs(g.astype(np.float32) - bg)
    keep = select(strength, m, photo=False, anywhere=True)
    if strength[keep].sum() < 0.6 * strength[m].sum():
        return g    # no one digit dominates: noise, left whole for the detector to judge
    drop = m & ~keep
    # One or two stray bits are as likely the writer's (MNIST has such); a line of dots is not.
    if not (cols.any() or rows.any()) and label(drop)[1] < 3:
        return g
    out[dilate(drop, 1) & ~dilate(keep, 1)] = bg
    return out
