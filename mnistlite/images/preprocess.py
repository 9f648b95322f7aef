"""User images (any size, mode, polarity) -> MNIST form, shared by training and serving.

Decoding image bytes lives in ``decode.py`` (Pillow, libspng); arrays to model input in ``nn/arrays.py``.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..nn.arrays import aany as _any
from ..nn.arrays import amax as _max
from ..nn.arrays import amin as _min
from ..nn.arrays import to_float, to_model_input  # noqa: F401  (re-exported: the images' public names)
from . import grain, ink
from .decode import MIN_CONTRAST, decode_image

# Bump when the mapping from pixels to model input changes; saved in every model file.
# 2: photos and damaged scans cleaned first (ink.py); 3: digits filling their frame read against
# their flat background, every picture reduced to the working size first; 4: the noise rule (pure
# noise comes out empty)
PREPROCESSING_VERSION = 4

# User images (any size, mode, polarity) -> MNIST form. Pillow is imported inside functions.
INK_FRACTION = 0.1    # of the contrast: fainter pixels do not widen the ink bounding box
NOISE_LEVEL = 8       # of 255: margin pixels this faint are compression noise when shrinking
CLEAR_INK = (96, 0.002)   # levels from the background, share of pixels: ink no preprocessing may lose
NOISE_REASON = "noise: no stroke stands out, only grain spread over the picture"
BOX = 20              # MNIST: longest side of the digit, inside a FIELD x FIELD image
FIELD = 28
_LEVELS = np.arange(256, dtype=np.float32)
_SMALL_MASK = 64 * 64   # pixels up to which _bbox searches bytes: fewer numpy calls, a transposed copy


@functools.lru_cache(maxsize=BOX * BOX)
def _moments(h: int, w: int) -> np.ndarray:
    """float64 (h * w, 3), read-only: 1, the row and the column of each pixel of an (h, w) box."""
    rows, cols = np.divmod(np.arange(h * w, dtype=np.float64), w)
    m = np.stack([np.ones(h * w), rows, cols], axis=1)
    m.flags.writeable = False
    return m


def _border_median(g: np.ndarray) -> int:
    """Median level of the outermost pixels: the background, however much ink the middle holds."""
    h, w = g.shape
    if h <= 2 or w <= 2:
        border = g.ravel().copy()
    elif g.flags.c_contiguous:
        border = g.take(ink.ring_index(h, w, 1))
    else:
        border = np.concatenate((g[0], g[-1], g[1:-1, 0], g[1:-1, -1]))
    raw = border.tobytes()
    if raw.count(raw[:1]) == len(raw):   # one level all round (a clean page): that level
        return raw[0]
    k = border.size // 2
    border.partition(k)  # in place on our own copy: only the middle element is needed
    return int(border[k])  # upper median


# Reductions called on the ufuncs directly: to_mnist runs on every upload, on small arrays
# (the figures are in docs/performance.md).


def _bbox(mask: np.ndarray) -> tuple:
    """(first row, last row, first col, last col) of the True pixels of a non-empty (h, w) bool mask."""
    h, w = mask.shape
    if h * w <= _SMALL_MASK:   # the mask's bytes and its transpose's, searched for the first and last 1
        flat, tr = mask.tobytes(), mask.T.tobytes()
        return flat.find(1) // w, flat.rfind(1) // w, tr.find(1) // h, tr.rfind(1) // h
    rows = _any(mask, axis=1).nonzero()[0]
    cols = _any(mask, axis=0).nonzero()[0]
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _nonzero_box(a: np.ndarray) -> tuple:
    """``_bbox(a > 0)`` of a uint8 (h, w) array holding a nonzero pixel: a small one's from the zero bytes
    stripped off both ends of it and of its transpose (no mask made)."""
    h, w = a.shape
    if h * w > _SMALL_MASK:
        return _bbox(a > 0)
    flat, tr = a.tobytes(), a.T.tobytes()
    n = len(flat)
    return ((n - len(flat.lstrip(b"\0"))) // w, (len(flat.rstrip(b"\0")) - 1) // w,
            (n - len(tr.lstrip(b"\0"))) // h, (len(tr.rstrip(b"\0")) - 1) // h)


@functools.lru_cache(maxsize=1024)
def _lut(bg: int, invert: bool, contrast: int) -> np.ndarray:
    """uint8 (256,) table: inversion, background removal and contrast stretch in one lookup.

    Cached (read-only): uploads repeat a few (background, contrast) pairs, white paper above all.
    """
    t = (bg - _LEVELS if invert else _LEVELS - bg) * (255.0 / contrast)
    np.rint(t, out=t)
    np.clip(t, 0, 255, out=t)
    table = t.astype(np.uint8)
    table.flags.writeable = False
    return table


def to_mnist(gray: np.ndarray, info: dict | None = None, pause=None, *,
             noise_rule: bool = True) -> np.ndarray:
    """uint8 (h, w) grayscale of any polarity -> uint8 (28, 28) white-on-black digit, the MNIST way.

    A picture whose border is not one flat level (a photo: uneven light, shadow, grain, page edges;
    fog or noise) first goes through ``ink.clean``: background removed, ink found whatever its
    polarity, only the digit's connected components kept; unless its ink merely reaches the border
    of one flat background (``ink.frame_level``: a digit cropped to its edges). Any picture is first
    box-reduced to at most ``ink.WORK`` pixels a side. Then: inverted if the ink is darker than the
    background (border median, or the frame's level); in a small picture, lines across it and
    specks apart from the digit removed (``ink.declutter``); ink stretched to 0..255, cropped to the
    ink box, strokes far thinner or thicker than MNIST's brought towards its width (crops that must
    shrink only), longest side scaled to 20 px (Lanczos), centre of mass on pixel (14, 14). A
    picture with no ink gives all zeros, and one with clear ink never does: when cleaning loses it,
    the picture is read as it is. The noise rule: a photo whose ink is pure noise (``grain.is_noise``,
    ``grain.scattered``) or a page of scattered specks gives all zeros too (``noise_rule=False``: read as
    before, for the training pool's noise). ``info``, when given, is filled as ``preprocess_image``
    documents; ``pause`` likewise.
    """
    if info is None:
        info = {}
    info.update(path="flat", fallback=False)
    g = np.asarray(gray)
    if g.dtype != np.uint8 or g.ndim != 2 or g.size == 0:
        raise ValueError(f"to_mnist expects a non-empty uint8 (h, w) array, got {g.dtype} {g.shape}")
    info["size"] = g.shape
    clean_page = ink.ring_level(g)   # a page of one level all round: is_flat, and its border's median
    flat = clean_page is not None or ink.is_flat(g)
    work = ink.to_work_size(g)      # the output is 20 px: nothing is gained at full resolution
    level = None if flat else ink.frame_level(g, work)
    if pause is not None:
        pause()
    if flat or level is not None:
        info["path"] = "flat" if flat else "frame"
        if clean_page is not None and work is g:   # not reduced: the border median _place would take
            level = clean_page
        return _place(work, level, info, noise_rule and flat)
    info["path"] = "photo" if max(g.shape) > ink.SMALL else "scan"
    cleaned = ink.clean(g, info if noise_rule else None)
    if pause is not None:
        pause()
    if info.pop("noise", False):   # a grain blown up to 20 px would pass for a digit: nothing placed
        info.update(declutter=False, stroke=False, empty=True, reason=NOISE_REASON)
        out = np.zeros((FIELD, FIELD), np.uint8)
    else:
        out = _place(cleaned, None, info)
    far = _far(work) if info["empty"] else None
    if far is not None and _clear_ink(far):
        # The cleaning lost ink that stands out plainly (a guard: a digit must never vanish), unless
        # that ink is specks scattered over a whole photo: noise's extremes, not a lost digit.
        if noise_rule and max(g.shape) > ink.SMALL and grain.scattered(far, _bbox(far)):
            info["reason"] = NOISE_REASON
            return out
        info["fallback"] = True
        out = _place(work, None, info)
    return out


def _far(g: np.ndarray) -> np.ndarray:
    """Bool (h, w): the pixels of uint8 ``g`` CLEAR_INK[0] levels or more off its border's median."""
    return np.abs(g.astype(np.int16) - _border_median(g)) >= CLEAR_INK[0]


def _clear_ink(far: np.ndarray) -> bool:
    """True when a picture has clear ink: CLEAR_INK[1] of its pixels (and >= 4) are ``far`` (``_far``)."""
    return np.count_nonzero(far) >= max(4, CLEAR_INK[1] * far.size)


def _extremes(g: np.ndarray, bg: int) -> tuple:
    """(min, max) of uint8 (h, w) ``g`` holding level ``bg``: white paper's max and black's min go without
    saying (no reduction over the picture)."""
    lo = 0 if bg == 0 else int(_min(g, axis=None))
    return lo, 255 if bg == 255 else int(_max(g, axis=None))


def _mass(box: np.ndarray) -> tuple:
    """(total, down, across): the ink of uint8 (h, w) ``box`` (at most 20 x 20) and its first moments, exact.

    A float64 product (BLAS) rather than an integer one: every sum is a whole number far below 2**53."""
    h, w = box.shape
    total, down, across = _moments(h, w).T.dot(box.reshape(h * w)).tolist()
    return int(total), int(down), int(across)


def _place(g: np.ndarray, level: int | None, info: dict, noise_rule: bool = False) -> np.ndarray:
    """The rest of ``to_mnist`` on a flat or cleaned uint8 (h, w) picture, ``level`` its background
    (None: the border's median); ``noise_rule``: a big picture's specks scattered over it give zeros."""
    info.update(declutter=False, stroke=False, empty=True, reason=None)   # empty until ink is placed
    out = np.zeros((FIELD, FIELD), np.uint8)
    bg = _border_median(g) if level is None else level
    lo, hi = _extremes(g, bg)
    invert = bg - lo > hi - bg     # the ink is on the side further from the background
    contrast = bg - lo if invert else hi - bg
    if contrast < MIN_CONTRAST:
        info["reason"] = "no ink: the picture is one level" if info["path"] in ("flat", "frame") \
            else "no ink stands out from the background"
        return out
    cut = INK_FRACTION * contrast
    # the same masks as g < bg - cut or g > bg + cut, compared with whole levels: no float temporary
    mask = g < math.ceil(bg - cut) if invert else g > math.floor(bg + cut)
    r0, r1, c0, c1 = _bbox(mask)
    # declutter leaves a picture whose ink stays clear of its outermost pixels as it is: asked only when
    # the ink box reaches them
    if max(g.shape) <= ink.SMALL and (r0 == 0 or c0 == 0 or r1 == g.shape[0] - 1 or c1 == g.shape[1] - 1):
        cleared = ink.declutter(g, mask, bg)
        if cleared is not g:
            cleared_mask = cleared < math.ceil(bg - cut) if invert else cleared > math.floor(bg + cut)
            # A "line" holding most of the ink is the digit (a 1 filling its frame): kept.
            if np.count_nonzero(cleared_mask) >= 0.25 * np.count_nonzero(mask):
                info["declutter"] = True
                g, mask = cleared, cleared_mask
                r0, r1, c0, c1 = _bbox(mask)
    if noise_rule and max(g.shape) > ink.SMALL and grain.scattered(mask, (r0, r1, c0, c1)):
        info["reason"] = NOISE_REASON    # specks over a whole page: no digit to place
        return out
    # One lookup table does inversion, background removal and contrast stretch on the crop only;
    # none when already white-on-black with full contrast (MNIST itself): the identity.
    lut = _lut(bg, invert, contrast) if invert or bg or contrast != 255 else None
    # Faint pixels may not widen the box (noise), but those touching it belong to the strokes'
    # antialiased edge: take one output pixel of margin, then trim back to what is not background.
    # That is kept when it is exactly 20 px (a MNIST digit: no resampling); otherwise margin pixels
    # must beat NOISE_LEVEL, as lossy-compression ringing hugs the strokes and would widen the box.
    span = max(r1 - r0, c1 - c0) + 1
    m = -(-span // BOX)
    box = g[max(r0 - m, 0):r1 + m + 1, max(c0 - m, 0):c1 + m + 1]
    box = box if lut is None else lut.take(box)
    r0, r1, c0, c1 = _nonzero_box(box)
    if max(r1 - r0, c1 - c0) + 1 != BOX:
        r0, r1, c0, c1 = _bbox(box > NOISE_LEVEL)
    box = box[r0:r1 + 1, c0:c1 + 1]
    h, w = box.shape
    if max(h, w) >= 2 * BOX:
        normalised = ink.normalise_stroke(box)
        info["stroke"] = normalised is not box
        box = normalised
        h, w = box.shape
    if max(h, w) != BOX:
        from PIL import Image

        scale = BOX / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        box = np.asarray(Image.fromarray(box).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
        h, w = box.shape
    # the ink's mass and its first moments down and across, exactly (_mass)
    total, down, across = _mass(box)
    if total == 0:
        info["reason"] = "no ink left after scaling to 20 px"
        return out
    cy, cx = down / total, across / total
    # Integer shift putting the centre of mass on (14, 14); clamped so no ink falls off the field.
    top = min(max(math.floor(FIELD / 2 - cy + 0.5), 0), FIELD - h)
    left = min(max(math.floor(FIELD / 2 - cx + 0.5), 0), FIELD - w)
    out[top:top + h, left:left + w] = box
    info["empty"] = False
    return out


def preprocess_image(data: bytes, *, max_side: int = 4096, info: dict | None = None,
                     pause=None) -> np.ndarray:
    """Image bytes -> uint8 (28, 28) MNIST-form digit (decode_image + to_mnist); raises ImageError.

    Big JPEGs are decoded at reduced scale, never below the resolution the ink search works at.
    ``info``, when given, is filled with how the picture was read: ``size`` (its (h, w) as decoded),
    ``path`` ("flat": one flat background; "frame": ink reaching the border of a flat background;
    "photo" / "scan": cleaned first, pictures over / up to ``ink.SMALL`` px), ``fallback`` (cleaning
    lost the ink, so the picture was read as it is), ``declutter`` and ``stroke`` (lines or specks
    removed, strokes normalised) and ``empty``: True when no ink was found and the result is all zeros,
    with ``reason`` saying why in plain words (None otherwise). Callers turn ``empty`` into a warning or
    a "not_a_digit" abstention. ``pause``, when given, is called with no arguments between the stages
    (after decoding, after the full-size checks, after cleaning): a server running requests cooperatively
    lets others run there.
    """
    gray = decode_image(data, max_side=max_side, reduce=ink.WORK, copy=False)
    if pause is not None:
        pause()
    return to_mnist(gray, info, pause)


def image_to_input(data: bytes, *, max_side: int = 4096) -> np.ndarray:
    """Image bytes -> float32 (1, 784) model input in [0, 1]."""
    return to_float(preprocess_image(data, max_side=max_side).reshape(1, -1))
