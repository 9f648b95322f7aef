"""Morphology on small numpy images: 3x3 median, max filters whose cost does not grow with the
radius, and 8-connected component labelling. Vectorised numpy only (no scipy)."""
from __future__ import annotations

import numpy as np

_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


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



def _max_rows(p: np.ndarray, k: int) -> np.ndarray:
    """Max over windows of k along axis 1 of (h, n) ``p`` -> (h, n - k + 1); van Herk/Gil-Werman:
    a prefix and a suffix running max inside blocks of k, so the cost does not depend on k."""
    h, n = p.shape
    w = n - k + 1
    if k <= 5:   # a few shifted maxima are cheaper than the block passes
        out = p[:, :w].copy()
        for s in range(1, k):
            np.maximum(out, p[:, s:s + w], out=out)
        return out
    m = -(-n // k) * k
    q = np.zeros((h, m), p.dtype)
    q[:, :n] = p
    blocks = q.reshape(h, m // k, k)
    pre = np.maximum.accumulate(blocks, axis=2).reshape(h, m)
    suf = np.maximum.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(h, m)
    return np.maximum(suf[:, :w], pre[:, k - 1:k - 1 + w])


def dilate(a: np.ndarray, r: int, edge: bool = False) -> np.ndarray:
    """Square max filter of radius r of a bool or numeric (h, w) array -> same shape and dtype.

    Outside the picture counts as zero, or as the nearest edge pixel with ``edge``. Separable, and
    its cost does not grow with r.
    """
    if r <= 0:
        return a
    k = 2 * r + 1
    p = np.pad(a, ((0, 0), (r, r)), mode="edge" if edge else "constant")
    rows = _max_rows(p, k)
    p = np.pad(rows.T, ((0, 0), (r, r)), mode="edge" if edge else "constant")
    return np.ascontiguousarray(_max_rows(p, k).T)


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


