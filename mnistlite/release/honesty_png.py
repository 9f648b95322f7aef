"""The gate report's honesty picture: each model's selective-risk curve and reliability diagram.

Drawn with Pillow from the verdict's metrics alone (``honesty.honesty_metrics``), so a stored
verdict.json can be redrawn.
"""
from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_bytes

HONESTY_PNG = "honesty.png"
PANEL, PAD = 260, 36
COLOURS = {"candidate": (30, 90, 200), "production": (200, 60, 30)}
MAX_ERROR = 0.02   # the selective-risk panel's error axis runs 0 .. 2%


def honesty_png(verdict: dict, path) -> Path:
    """Left: error among answered (0-2%) against share answered (50-100%); right: accuracy against
    confidence per bin (the diagonal is perfect calibration). One colour per model."""
    from PIL import Image, ImageDraw

    from .report import _font, _png_bytes

    font = _font()
    w, h = 2 * PANEL + 3 * PAD, PANEL + 2 * PAD + 30
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    left, right = (PAD, PAD), (2 * PAD + PANEL, PAD)
    for x0, y0 in (left, right):
        d.rectangle([x0, y0, x0 + PANEL, y0 + PANEL], outline=(0, 0, 0))
    d.line([(right[0], right[1] + PANEL), (right[0] + PANEL, right[1])], fill=(180, 180, 180))
    d.text((left[0], 8), "error among answered (0-2%)", font=font, fill=(0, 0, 0))
    d.text((left[0], PAD + PANEL + 4), "vs share answered (50-100%)", font=font, fill=(0, 0, 0))
    d.text((right[0], 8), "reliability: accuracy per bin", font=font, fill=(0, 0, 0))
    d.text((right[0], PAD + PANEL + 4), "vs confidence (0-1)", font=font, fill=(0, 0, 0))
    y = PAD + PANEL + 20
    for name in ("production", "candidate"):
        m = verdict.get(name)
        if not m or "selective_risk" not in m:
            continue
        colour = COLOURS[name]
        curve = m["selective_risk"]
        pts = [(left[0] + (a - 0.5) / 0.5 * PANEL, left[1] + PANEL - min(e, MAX_ERROR) / MAX_ERROR * PANEL)
               for a, e in zip(curve["answered"], curve["error"], strict=True) if a >= 0.5]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        rel = m.get("reliability") or {}
        pts = [(right[0] + c * PANEL, right[1] + PANEL - a * PANEL)
               for c, a, n in zip(rel.get("confidence", []), rel.get("accuracy", []), rel.get("count", []),
                                  strict=True) if n >= 10]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for px, py in pts:
            d.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        label = (f"{name}: rejects {100 * m['reject_for_0.5pct_error']:.2f}% for 0.5% error, "
                 f"ECE {100 * m['ece']:.2f}%" + ("" if m.get("calibrated") else " (not calibrated)"))
        d.text((left[0], y), label, font=font, fill=colour)
        y += 12
    path = Path(path)
    atomic_write_bytes(path, _png_bytes(img))
    return path
