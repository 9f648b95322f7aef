"""Fixtures of the page tests: digits 0-9 as a person draws them (``strokes``) and a photo of one
(``photo_jpeg``).

Each digit is a list of strokes in its own unit box (x right, y down, 0..1). A repeated control
point is a corner (the pen stops and turns there); elsewhere the path is a Catmull-Rom curve
through the points, as a hand moves. ``paths(digit)`` places the digit on the pad the way people
do: a bit above centre, about 60% of the pad high, narrower than tall, leaning slightly right.
``photo_jpeg(digit)`` writes those strokes with a felt pen on unevenly lit paper and photographs it.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import browser_kit
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

DIGITS = {
    0: [[(0.55, 0.02), (0.25, 0.10), (0.07, 0.45), (0.20, 0.86), (0.50, 0.99), (0.82, 0.86), (0.94, 0.50),
         (0.80, 0.14), (0.55, 0.02), (0.42, 0.07)]],
    1: [[(0.56, 0.01), (0.51, 0.50), (0.46, 0.99)]],
    2: [[(0.10, 0.25), (0.30, 0.04), (0.62, 0.02), (0.86, 0.20), (0.80, 0.45), (0.50, 0.70), (0.08, 0.97),
         (0.08, 0.97), (0.50, 0.95), (0.95, 0.96)]],
    3: [[(0.12, 0.14), (0.45, 0.00), (0.80, 0.12), (0.76, 0.36), (0.40, 0.48), (0.40, 0.48), (0.80, 0.60),
         (0.88, 0.82), (0.55, 0.99), (0.10, 0.88)]],
    4: [[(0.40, 0.00), (0.06, 0.64), (0.06, 0.64), (0.96, 0.62)],
        [(0.74, 0.18), (0.71, 1.00)]],
    5: [[(0.22, 0.03), (0.16, 0.45), (0.16, 0.45), (0.50, 0.38), (0.84, 0.54), (0.85, 0.80), (0.55, 0.98),
         (0.10, 0.90)],
        [(0.22, 0.03), (0.90, 0.01)]],
    6: [[(0.76, 0.00), (0.42, 0.20), (0.16, 0.55), (0.20, 0.88), (0.50, 0.99), (0.80, 0.85), (0.78, 0.60),
         (0.50, 0.50), (0.20, 0.62)]],
    7: [[(0.05, 0.05), (0.95, 0.03), (0.95, 0.03), (0.62, 0.50), (0.42, 1.00)]],
    8: [[(0.80, 0.12), (0.50, 0.00), (0.20, 0.12), (0.25, 0.35), (0.50, 0.50), (0.82, 0.68), (0.80, 0.92),
         (0.50, 1.00), (0.18, 0.90), (0.20, 0.68), (0.50, 0.50), (0.75, 0.32), (0.80, 0.12)]],
    9: [[(0.85, 0.16), (0.50, 0.00), (0.15, 0.16), (0.20, 0.42), (0.55, 0.46), (0.85, 0.24), (0.86, 0.10),
         (0.86, 0.10), (0.82, 0.60), (0.74, 1.00)]],
}

HEIGHT, WIDTH, LEAN = 0.60, 0.42, 0.10  # of the pad; LEAN: x shift from bottom to top


def _catmull_rom(points, per_segment: int) -> list:
    pts = [points[0], *points, points[-1]]
    out = []
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for k in range(per_segment):
            t = k / per_segment
            t2, t3 = t * t, t * t * t
            out.append(tuple(0.5 * (2 * p1[j] + (-p0[j] + p2[j]) * t
                                    + (2 * p0[j] - 5 * p1[j] + 4 * p2[j] - p3[j]) * t2
                                    + (-p0[j] + 3 * p1[j] - 3 * p2[j] + p3[j]) * t3) for j in (0, 1)))
    out.append(points[-1])
    # Drop the repeats a corner leaves behind (a pen resting on one spot moves nowhere).
    return [p for i, p in enumerate(out) if i == 0 or math.dist(p, out[i - 1]) > 1e-6]


def paths(digit: int, per_segment: int = 8) -> list:
    """The strokes of ``digit`` as lists of (x, y) in pad units (0..1 of its width and height)."""
    out = []
    for stroke in DIGITS[digit]:
        pts = []
        for bx, by in _catmull_rom(stroke, per_segment):
            y = 0.47 + (by - 0.5) * HEIGHT
            x = 0.5 + (bx - 0.5) * WIDTH + (0.5 - by) * LEAN
            pts.append((x, y))
        out.append(pts)
    return out


def _photo_jpeg(digit: int, size=(1200, 900), seed: int = 0, quality: int = 85) -> bytes:
    """JPEG bytes of ``digit`` written with a felt pen on paper, photographed (landscape ``size``)."""
    w, h = size
    rng = np.random.default_rng(seed)
    # Paper: brighter towards the top left where the light is, a soft vignette, warm white.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    light = 236 - 38 * (0.6 * xx / w + 0.4 * yy / h) - 14 * vignette
    paper = np.stack([light, light - 4, light - 12], axis=-1)
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8), "RGB")
    # The digit, as the page's strokes, in the middle half of the picture's height.
    draw = ImageDraw.Draw(img)
    side = int(h * 0.9)
    x0, y0, width = (w - side) / 2, (h - side) / 2, max(3, int(side * 0.055))
    for stroke in paths(digit):
        pts = [(x0 + x * side, y0 + y * side) for x, y in stroke]
        draw.line(pts, fill=(38, 42, 58), width=width, joint="curve")
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=(38, 42, 58))
    img = img.filter(ImageFilter.GaussianBlur(1.6))
    noisy = np.asarray(img, np.float32) + rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def strokes():
    """``strokes(digit)`` -> its strokes as lists of (x, y) in pad units, as a hand draws them."""
    return paths


@pytest.fixture(scope="session")
def photo_jpeg():
    """``photo_jpeg(digit, size=(1200, 900), seed=0, quality=85)`` -> JPEG bytes of a photo of it."""
    return _photo_jpeg


# ---- the browser (tests/service/page/browser_kit.py drives it) --------------------------------
@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("MNISTLITE_ARTIFACTS") or browser_kit.ROOT / "artifacts")
    out = base / "page"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    return out


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver); session-scoped so a missing browser skips (fails in CI) before any
    training."""
    return browser_kit.browser_paths()


@pytest.fixture(scope="module")
def browser(browser_binaries):
    chromium, chromedriver = browser_binaries
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--window-size=1280,1000",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
