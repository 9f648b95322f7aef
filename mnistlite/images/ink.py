"""Find the digit's ink in a photo or a damaged scan: background, polarity, components, stroke width.

``to_mnist`` calls ``clean`` for pictures whose border is not one flat level (photos with uneven
light, fog, noise) and ``normalise_stroke`` on every crop it has to shrink. Everything is vectorised
numpy on an image shrunk to at most WORK pixels a side; connected components are labelled by
min-label propagation with pointer jumping, so no scipy is needed.
"""
from __future__ import annotations

import functools

import numpy as np

WORK = 384          # longest side (pixels) the ink search works at
SMALL = 64          # pictures up to this many pixels a side are scans or digit crops, not photos
FLAT = (24, 8)      # border 5th..95th percentile spread (levels) of one flat background: small, photo
STROKE = 0.10       # MNIST's stroke width over the digit's longest side (training-set median of stroke_width)
# Reductions called on the ufuncs directly: is_flat and declutter's check run on every upload
# (the figures are in docs/performance.md).
_any = np.logical_or.reduce
_min = np.minimum.reduce
_max = np.maximum.reduce
_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@functools.lru_cache(maxsize=64)
def _ring(h: int, w: int) -> np.ndarray:
    """Flat indices of the outer two-pixel ring of an (h, w) picture (h, w > 4), read-only."""
    inner = np.zeros((h, w), bool)
    inner[2:-2, 2:-2] = True
    idx = np.flatnonzero(~inner)
    idx.flags.writeable = False
    return idx


def is_flat(g: np.ndarray) -> bool:
    """True when the outer two-pixel ring of uint8 (h, w) ``g`` is one level give or take FLAT.

    Photos get the tighter bound: sensor grain and uneven light always spread their border.
    """
    h, w = g.shape
    if h <= 4 or w <= 4:
        return True
    ring = g.take(_ring(h, w)) if g.flags.c_contiguous else g.ravel().take(_ring(h, w))
    limit = FLAT[max(h, w) > SMALL]
    if int(_max(ring)) - int(_min(ring)) <= limit:   # the common case, one level: no sort needed
        return True
    n = ring.size
    lo, hi = n * 5 // 100, n * 95 // 100
    ring.partition((lo, hi))
    return int(ring[hi]) - int(ring[lo]) <= limit


def shrink(g: np.ndarray, limit: int = WORK) -> np.ndarray:
    """uint8 (h, w) -> float32 box-filtered by the smallest integer factor that brings it within ``limit``."""
    h, w = g.shape
    f = -(-max(h, w) // limit)
    if f == 1:
        return g.astype(np.float32)
    h2, w2 = h // f, w // f
    return g[:h2 * f, :w2 * f].reshape(h2, f, w2, f).mean(axis=(1, 3), dtype=np.float32)


# Compare-exchange pairs of the 19-step median-of-9 network (Paeth): the median ends in slot 4.
_MED9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
         (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def median3(a: np.ndarray) -> np.ndarray:
    """3x3 median filter (edges replicated) of a float32 (h, w) array, by a min/max sorting network."""
    h, w = a.shape
    p = np.pad(a, 1, mode="edge")
    v = [p[i:i + h, j:j + w] for i in range(3) for j in range(3)]
    for i, j in _MED9:
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    return v[4]


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


def label(mask: np.ndarray):
    """8-connected components of a bool (h, w) mask -> (labels int64 (h, w), -1 off the mask; count).

    Min-label propagation over the ink pixels only, with each label's root hooked to the smaller one
    and pointer jumping, so it takes a handful of passes rather than one per pixel of path length.
    """
    h, w = mask.shape
    pw = w + 2
    p = np.zeros((h + 2, pw), bool)
    p[1:-1, 1:-1] = mask
    idx = np.flatnonzero(p)
    out = np.full((h, w), -1, np.int64)
    if idx.size == 0:
        return out, 0
    lab = np.full(p.size, p.size, np.int64)
    lab[idx] = idx
    nbrs = [idx + (dy * pw + dx) for dy, dx in _OFFSETS8]
    while True:
        cur = lab[idx]
        m = cur.copy()
        for nb in nbrs:
            np.minimum(m, lab[nb], out=m)
        if np.array_equal(m, cur):
            break
        np.minimum.at(lab, cur, m)                   # hook each root to the smallest label seen
        lab[idx] = np.minimum(lab[idx], m)
        while True:                                  # pointer jumping: every pixel to its root
            cur = lab[idx]
            nxt = lab[cur]
            if np.array_equal(nxt, cur):
                break
            lab[idx] = nxt
    roots, comp = np.unique(lab[idx], return_inverse=True)
    rr, cc = np.divmod(idx, pw)
    out[rr - 1, cc - 1] = comp
    return out, len(roots)


def select(ink: np.ndarray, mask: np.ndarray, *, photo: bool = True, anywhere: bool = False) -> np.ndarray:
    """Bool (h, w): the components of ``mask`` that form the digit.

    The component with the most ink mass times mean contrast is the digit; in a photo, components
    touching the frame or spanning most of it (page edges, shadow borders) are passed over unless
    nothing else is left. Components near the digit with >= 5% of its mass and >= 40% of its mean
    contrast join it (a 5's detached bar, a broken pen line), and in a small picture so does any
    piece within the digit's box; with ``anywhere``, pieces with that share join wherever they lie.
    Grain, speckles, dots and faint shadow fringes do not.
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
    return keep[np.maximum(lab, 0)] & on


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Square max filter of radius r of a bool or numeric (h, w) array (zero outside)."""
    if r <= 0:
        return mask
    p = np.pad(mask, r)
    out = p.copy()
    for s in range(1, r + 1):   # separable: rows then columns
        np.maximum(out[:, s:], p[:, :-s], out=out[:, s:])
        np.maximum(out[:, :-s], p[:, s:], out=out[:, :-s])
    q = out.copy()
    for s in range(1, r + 1):
        np.maximum(out[s:], q[:-s], out=out[s:])
        np.maximum(out[:-s], q[s:], out=out[:-s])
    return out[r:-r, r:-r]


def clean(g: np.ndarray) -> np.ndarray:
    """uint8 (h, w) photo or damaged scan -> uint8 white-on-black image holding only the digit's ink.

    Shrinks to WORK and removes impulse noise; then works on log intensity, where uneven light and
    shadow divide rather than add: a smooth background estimate is subtracted, the ink's polarity
    is the side with the stronger extreme, ink above the noise is thresholded, the digit's connected
    components are kept and their ink stretched to 0..255. All zeros when no ink stands out; a small
    picture where no component holds most of the ink (noise) comes back unchanged.
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
    keep = select(ink, mask, photo=photo)
    if not keep.any():
        return np.zeros(a.shape, np.uint8)
    if not photo and ink[_dilate(keep, 1)].sum() < (0.85 if impulse else 0.5) * ink.sum():
        return g    # no component stands out (noise, not a digit): left for the detector to judge
    level = float(np.percentile(ink[keep], 90)) or 1.0
    soft = ink * (255.0 / level)
    soft[~_dilate(keep, 1)] = 0
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
    out[_dilate(drop, 1) & ~_dilate(keep, 1)] = bg
    return out


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a bool (h, w) mask: twice the area over the number of ink/paper edges."""
    area = np.count_nonzero(mask)
    if not area:
        return 0.0
    p = np.pad(mask, 1)
    edges = np.count_nonzero(p[1:] != p[:-1]) + np.count_nonzero(p[:, 1:] != p[:, :-1])
    return 2.0 * area / max(edges, 1)


def normalise_stroke(box: np.ndarray) -> np.ndarray:
    """Thicken (or thin) the strokes of a white-on-black uint8 crop towards MNIST's width/size ratio.

    Only strokes well outside MNIST's range change: thinner than 0.6x or thicker than 1.8x STROKE of
    the crop's longest side. Thickening pads the crop by the radius used.
    """
    size = max(box.shape)
    sw = stroke_width(box > 127)
    target = STROKE * size
    if sw <= 0 or 0.6 * target <= sw <= 1.8 * target:
        return box
    r = int(round(abs(target - sw) / 2))
    if r == 0:
        return box
    if sw < target:
        return _dilate(box, r)
    return 255 - _dilate_keep(255 - box, r)


def _dilate_keep(a: np.ndarray, r: int) -> np.ndarray:
    """Max filter of radius r with edges replicated (no growth): erosion of 255 - a."""
    p = np.pad(a, r, mode="edge")
    return _dilate(p, r)[r:-r, r:-r]

