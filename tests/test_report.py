"""The gate report: Markdown shape and the two PNGs (sizes, determinism, the right digits drawn)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mnistlite as ml
from mnistlite.release import report
from mnistlite.release.evaluation import compare_files, error_verdict
from mnistlite.release.gate import Policy

LOW = Policy(min_accuracy=0.5)


@pytest.fixture(scope="module")
def pair(mnist, tmp_path_factory):
    """Two quick softmax-regression models trained on different slices of real MNIST (~76% and ~85%)."""
    (x, y), _ = mnist
    d = tmp_path_factory.mktemp("report_models")
    out = {}
    for name, sl in (("weak", slice(0, 2000)), ("better", slice(2000, 7000))):
        m = ml.MLP([784, 10], seed=1)
        m.fit(x[sl], y[sl], epochs=1, batch_size=64, optimizer=ml.Adam(2e-3))
        out[name] = ml.save(m, d / f"{name}.npz")
    return out


@pytest.fixture(scope="module")
def comparison(pair, mnist_dir):
    return compare_files(pair["better"], pair["weak"], None, LOW)


def _png(path):
    with Image.open(path) as im:
        im.load()  # decodes every pixel: a truncated file fails here
        return im.format, im.size, np.asarray(im.convert("RGB"))


def test_report_markdown_and_both_pngs(comparison, tmp_path):
    v = comparison.verdict
    out = report.write_report(tmp_path / "report.md", v, comparison)
    md = (tmp_path / "report.md").read_text()
    lines = md.splitlines()
    assert lines[0].startswith("### ") and "candidate" in lines[0] and "production" in lines[0]
    assert lines[0].startswith("### ✅" if v["passed"] else "### ❌")
    assert report.MARKER in md and len(md.encode()) < report.MAX_MARKDOWN_BYTES
    assert "(confusion.png)" in md and "(disagreements.png)" in md
    assert all(f"| recall {k} |" in md for k in range(10))
    assert f"b = {v['mcnemar']['b']}" in md and f"c = {v['mcnemar']['c']}" in md
    assert v["hashes"]["candidate_model"] in md and v["hashes"]["test_set"] in md

    fmt, size, _ = _png(tmp_path / "confusion.png")
    assert out["confusion"] == tmp_path / "confusion.png"
    assert fmt == "PNG" and size == report.confusion_size(10)
    n = v["disagreements"]
    assert n > 100  # these two models disagree on many digits, so the grid is capped
    fmt, size, _ = _png(tmp_path / "disagreements.png")
    assert fmt == "PNG" and size == report.disagreement_size(min(n, report.MAX_DIGITS))


def test_grid_shows_the_disagreeing_digits_in_order(comparison, tmp_path):
    t = comparison.test
    order = report.disagreement_order(t.labels, comparison.pred_candidate, comparison.pred_production)
    assert len(order) == comparison.verdict["disagreements"]
    path = report.disagreement_png(t.images, t.labels, comparison.pred_candidate, comparison.pred_production,
                                   tmp_path / "d.png", limit=12)
    _, size, rgb = _png(path)
    assert size == report.disagreement_size(12)
    side, x0 = 28 * report.SCALE, (report.TILE_W - 28 * report.SCALE) // 2
    for n in (0, 11):   # first and last tile: the upscaled test image, pixel for pixel
        x = (n % report.COLS) * report.TILE_W + x0
        y = report.GRID_HEADER + (n // report.COLS) * report.TILE_H + 2
        want = np.repeat(np.repeat(t.images[order[n]], report.SCALE, 0), report.SCALE, 1)
        assert np.array_equal(rgb[y:y + side, x:x + side, 0], want)


def test_disagreement_order_puts_regressions_first():
    y = np.array([1, 2, 3, 4, 5, 6])
    cand = np.array([1, 0, 3, 0, 9, 6])   # wrong at 1, 3, 4
    prod = np.array([0, 2, 3, 4, 8, 6])   # wrong at 0, 4
    # disagreements at 0 (cand fixed), 1 and 3 (cand regressed), 4 (both wrong): regressions first
    assert report.disagreement_order(y, cand, prod).tolist() == [1, 3, 0, 4]


def test_pngs_are_deterministic(comparison, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        report.write_report(d / "report.md", comparison.verdict, comparison)
    for name in ("confusion.png", "disagreements.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_tie_draws_an_empty_grid(pair, tmp_path):
    c = compare_files(pair["better"], pair["better"], None, LOW)
    report.write_report(tmp_path / "report.md", c.verdict, c)
    assert _png(tmp_path / "disagreements.png")[1] == report.disagreement_size(0)
    assert "disagree on 0 test digits" in (tmp_path / "report.md").read_text()


def test_first_deploy_has_no_disagreement_grid(pair, tmp_path):
    c = compare_files(pair["better"], None, None, LOW)
    out = report.write_report(tmp_path / "report.md", c.verdict, c)
    md = (tmp_path / "report.md").read_text()
    assert "(first deploy)" in md.splitlines()[0] and "only the accuracy floor applies" in md
    assert out["disagreements"] is None and not (tmp_path / "disagreements.png").exists()
    assert _png(tmp_path / "confusion.png")[1] == report.confusion_size()


def test_error_report_fails_closed_without_images(tmp_path):
    v = error_verdict("x.npz: no such model file")
    report.write_report(tmp_path / "report.md", v)
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("### ⚠️ Gate could not evaluate: x.npz: no such model file")
    assert report.MARKER in md and ".png" not in md and not list(tmp_path.glob("*.png"))


def test_markdown_is_capped_at_100kb(comparison):
    v = dict(comparison.verdict)
    v["checks"] = [{"name": "x", "passed": False, "detail": "y" * 1000}] * 300
    md = report.render_markdown(v)
    assert len(md.encode()) <= report.MAX_MARKDOWN_BYTES and md.endswith("_(report truncated)_\n")


def test_assets_url_prefixes_the_links(comparison):
    md = report.render_markdown(comparison.verdict, assets_url="https://example.test/run/1/")
    assert "(https://example.test/run/1/confusion.png)" in md
