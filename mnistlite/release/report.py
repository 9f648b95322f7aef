"""The gate report: Markdown for a PR comment / step summary, plus two PNGs drawn with Pillow.

``write_report`` writes report.md, confusion.png (candidate's confusion matrix as a heatmap),
disagreements.png (test digits on which the two models disagree) and honesty.png (selective-risk and
reliability curves of both models) into one folder; ``errors_png``
draws one model's misclassified digits.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..metrics import percent
from .honesty_png import HONESTY_PNG, honesty_png

MARKER = "<!-- mnistlite-gate-report -->"  # lets a workflow find and update its one PR comment
MAX_MARKDOWN_BYTES = 100_000
CONFUSION_PNG, DISAGREEMENTS_PNG, ERRORS_PNG = "confusion.png", "disagreements.png", "errors.png"

# heatmap geometry (pixels)
CELL, HM_LEFT, HM_TOP, HM_PAD = 36, 44, 44, 8
# disagreement grid geometry: digits upscaled x2 plus two caption lines
SCALE, COLS, TILE_W, TILE_H, GRID_HEADER, MAX_DIGITS = 2, 10, 64, 84, 18, 100


def confusion_size(n_classes: int = 10) -> tuple[int, int]:
    """(width, height) of the confusion heatmap PNG."""
    side = n_classes * CELL
    return HM_LEFT + side + HM_PAD, HM_TOP + side + HM_PAD


def disagreement_size(n_shown: int) -> tuple[int, int]:
    """(width, height) of the disagreement grid PNG showing ``n_shown`` digits (one empty row if 0)."""
    rows = max(1, -(-n_shown // COLS))
    return COLS * TILE_W, GRID_HEADER + rows * TILE_H


def _font():
    from PIL import ImageFont

    # the bitmap font renders the same with or without FreeType, so the PNGs are reproducible
    loader = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)
    return loader()


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _centered(draw, xy, text, font, fill):
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    draw.text((xy[0] - (x1 - x0) / 2 - x0, xy[1] - (y1 - y0) / 2 - y0), text, font=font, fill=fill)


def confusion_png(cm, path, title: str = "candidate: true (rows) x predicted (cols)") -> Path:
    """Draw a (k, k) confusion matrix as an annotated heatmap: blue diagonal by row share, red errors."""
    from PIL import Image, ImageDraw

    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    font = _font()
    img = Image.new("RGB", confusion_size(k), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), title, font=font, fill="black")
    row = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    off = cm * (1 - np.eye(k, dtype=np.int64))
    # errors on a sqrt scale so a handful of mistakes is still visible next to a big one
    err = np.sqrt(off / max(int(off.max()), 1))
    share = cm / row
    for i in range(k):
        _centered(draw, (HM_LEFT - 12, HM_TOP + i * CELL + CELL / 2), str(i), font, "black")
        _centered(draw, (HM_LEFT + i * CELL + CELL / 2, HM_TOP - 10), str(i), font, "black")
        for j in range(k):
            t = share[i, j] if i == j else err[i, j]
            if i == j:
                rgb = (int(255 - 225 * t), int(255 - 170 * t), 255)
            else:
                rgb = (255, int(255 - 215 * t), int(255 - 215 * t))
            x, y = HM_LEFT + j * CELL, HM_TOP + i * CELL
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=rgb, outline=(220, 220, 220))
            if cm[i, j]:
                _centered(draw, (x + CELL / 2, y + CELL / 2), str(cm[i, j]), font,
                          "white" if t > 0.55 else "black")
    draw.text((4, HM_TOP - 24), "true", font=font, fill=(90, 90, 90))
    atomic_write_bytes(path, _png_bytes(img))
    return Path(path)


def disagreement_order(y_true, pred_candidate, pred_production) -> np.ndarray:
    """Indices where the models disagree: candidate regressions first, then the rest, each by index."""
    y, pc, pp = (np.asarray(a) for a in (y_true, pred_candidate, pred_production))
    idx = np.flatnonzero(pc != pp)
    regress = (pc[idx] != y[idx]) & (pp[idx] == y[idx])
    return np.concatenate([idx[regress], idx[~regress]])


def _digit_grid(images, shown, captions, frames, head: str, path) -> Path:
    """Draw digits ``images[shown]`` upscaled in a grid, each framed and with two caption lines."""
    from PIL import Image, ImageDraw

    font = _font()
    img = Image.new("RGB", disagreement_size(len(shown)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), head, font=font, fill="black")
    side = 28 * SCALE
    for n, (i, (top, bottom), frame) in enumerate(zip(shown, captions, frames, strict=True)):
        x, y = (n % COLS) * TILE_W, GRID_HEADER + (n // COLS) * TILE_H
        digit = np.asarray(images[i], dtype=np.uint8).reshape(28, 28)
        tile = np.repeat(np.repeat(digit, SCALE, axis=0), SCALE, axis=1)
        ox = x + (TILE_W - side) // 2
        draw.rectangle([ox - 2, y, ox + side + 1, y + side + 3], fill=frame)
        img.paste(Image.fromarray(tile).convert("RGB"), (ox, y + 2))
        _centered(draw, (x + TILE_W / 2, y + side + 11), top, font, "black")
        _centered(draw, (x + TILE_W / 2, y + side + 22), bottom, font, (90, 90, 90))
    atomic_write_bytes(path, _png_bytes(img))
    return Path(path)


def disagreement_png(images, y_true, pred_candidate, pred_production, path, limit: int = MAX_DIGITS) -> Path:
    """Grid of up to ``limit`` digits the models disagree on, captioned "c:<cand> p:<prod>" and the
    true label.

    Frame: red = only production right, green = only candidate right, grey = both wrong.
    """
    order = disagreement_order(y_true, pred_candidate, pred_production)
    shown = order[:limit]
    if len(order):
        more = f", first {len(shown)} shown" if len(order) > len(shown) else ""
        head = f"{len(order)} disagreements{more}   c: candidate  p: production"
    else:
        head = "the two models agree on every test digit"
    captions = [(f"c:{pred_candidate[i]} p:{pred_production[i]}", f"true {y_true[i]}") for i in shown]
    frames = [(40, 160, 40) if pred_candidate[i] == y_true[i] else
              (200, 40, 40) if pred_production[i] == y_true[i] else (150, 150, 150) for i in shown]
    return _digit_grid(images, shown, captions, frames, head, path)


def errors_png(images, y_true, pred, path, limit: int = MAX_DIGITS) -> Path:
    """Grid of up to ``limit`` misclassified test digits (in test-set order), captioned with both labels."""
    wrong = np.flatnonzero(np.asarray(pred) != np.asarray(y_true))
    shown = wrong[:limit]
    more = f", first {len(shown)} shown" if len(wrong) > len(shown) else ""
    head = f"{len(wrong)} misclassified{more}" if len(wrong) else "no test digit is misclassified"
    captions = [(f"pred {pred[i]}", f"true {y_true[i]}") for i in shown]
    return _digit_grid(images, shown, captions, [(200, 40, 40)] * len(shown), head, path)


# ---- Markdown ------------------------------------------------------------------------------
def _pct(x) -> str:
    return "–" if x is None else percent(x)


def _pp(d) -> str:
    return f"{100 * d:+.2f} pp"


def headline(verdict: dict) -> str:
    """The report's first line: verdict, candidate accuracy and production accuracy."""
    if verdict["status"] == "error":
        reason = verdict["reasons"][0] if verdict["reasons"] else "unknown error"
        return f"### ⚠️ Gate could not evaluate: {reason}"
    ca = verdict["candidate"]["accuracy"]
    icon, word = ("✅", "passed") if verdict["passed"] else ("❌", "failed")
    if verdict["first_deploy"]:
        return (f"### {icon} Gate {word} (first deploy): candidate {_pct(ca)}, "
                f"floor {_pct(verdict['policy']['min_accuracy'])}")
    pa = verdict["production"]["accuracy"]
    return f"### {icon} Gate {word}: candidate {_pct(ca)} vs production {_pct(pa)} ({_pp(ca - pa)})"


def _metric_rows(verdict: dict) -> list[str]:
    cand, prod, policy = verdict["candidate"], verdict["production"], verdict["policy"]
    rows = []

    def row(name, c, p, fmt, delta, flag=""):
        if prod is None:
            rows.append(f"| {name} | {fmt(c)} |")
        else:
            rows.append(f"| {name} | {fmt(p)} | {fmt(c)} | {delta(c - p)}{flag} |")

    num = "{:.4f}".format
    row("accuracy", cand["accuracy"], prod and prod["accuracy"], _pct, _pp)
    row("log loss", cand["log_loss"], prod and prod["log_loss"], num, "{:+.4f}".format)
    row("ECE", cand["ece"], prod and prod["ece"], num, "{:+.4f}".format)
    for g, gc in cand.get("groups", {}).items():
        gp = prod["groups"][g] if prod else None
        flag = " ⚠️" if prod and gp - gc > policy.get("max_group_drop", 1.0) + 1e-12 else ""
        row(f"accuracy, {g}", gc, gp, _pct, _pp, flag)
    if "reject_for_0.5pct_error" in cand:
        row("rejected for 0.5% error", cand["reject_for_0.5pct_error"],
            prod and prod.get("reject_for_0.5pct_error", 1.0), _pct, _pp)
        row("calibrated", cand["calibrated"], prod and prod.get("calibrated", False),
            lambda v: "yes" if v else "no", lambda _: "")
    for k, rc in enumerate(cand["per_class"]["recall"]):
        rp = prod["per_class"]["recall"][k] if prod else None
        flag = " ⚠️" if prod and rp - rc > policy["max_class_drop"] + 1e-12 else ""
        row(f"recall {k}", rc, rp, _pct, _pp, flag)
    return rows


def render_markdown(verdict: dict, assets_url: str = "", with_images: bool = True) -> str:
    """The report as Markdown: verdict line, marker, checks, metrics table, McNemar, PNG links, details."""
    lines = [headline(verdict), MARKER, ""]
    if verdict["status"] == "error":
        lines += ["The gate fails closed: nothing is promoted until the inputs are fixed.", ""]
    failed = [c for c in verdict["checks"] if not c["passed"]]
    if failed:
        lines += ["**Failed checks**", ""] + [f"- `{c['name']}`: {c['detail']}" for c in failed] + [""]
    if verdict["first_deploy"] and verdict["status"] != "error":
        lines += ["_First deploy: no production model, so only the accuracy floor applies._", ""]
    if verdict["checks"]:
        lines += ["| check | result | detail |", "| --- | :---: | --- |"]
        lines += [f"| `{c['name']}` | {'✅' if c['passed'] else '❌'} | {c['detail']} |"
                  for c in verdict["checks"]]
        lines.append("")
    if verdict["candidate"] is not None:
        if verdict["production"] is None:
            lines += ["| metric | candidate |", "| --- | ---: |"]
        else:
            lines += ["| metric | production | candidate | Δ |", "| --- | ---: | ---: | ---: |"]
        lines += _metric_rows(verdict) + [""]
    mc = verdict.get("mcnemar")
    if mc:
        alpha = verdict["policy"]["alpha"]
        worse = mc["c"] > mc["b"] and mc["p_value"] < alpha
        lines += [f"**McNemar (exact, paired):** b = {mc['b']} (only candidate right), c = {mc['c']} "
                  f"(only production right), p = {mc['p_value']:.4g}: "
                  + ("candidate **significantly worse**" if worse else "not significantly worse")
                  + f" at α = {alpha}. The models disagree on {verdict.get('disagreements', 0)} "
                  "test digits.", ""]
    if with_images and verdict["candidate"] is not None:
        links = [f"[candidate confusion matrix]({assets_url}{CONFUSION_PNG})"]
        if verdict["production"] is not None:
            links.append(f"[digits where the models disagree]({assets_url}{DISAGREEMENTS_PNG})")
        if "selective_risk" in verdict["candidate"]:
            links.append(f"[selective-risk and reliability curves]({assets_url}{HONESTY_PNG})")
        lines += ["Images: " + " · ".join(links), ""]
    lines += _details(verdict)
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > MAX_MARKDOWN_BYTES:  # only a pathological reason list can get here
        text = text.encode()[:MAX_MARKDOWN_BYTES - 200].decode(errors="ignore") + "\n\n_(report truncated)_\n"
    return text


def _details(verdict: dict) -> list[str]:
    h, p = verdict["hashes"], verdict["policy"]
    cand = verdict["candidate"] or {}
    out = ["<details><summary>Policy, hashes and verdict format</summary>", "",
           "| policy | value |", "| --- | --- |"]
    out += [f"| `{k}` | {v} |" for k, v in p.items()]
    out += ["", "| artifact | SHA-256 |", "| --- | --- |",
            f"| candidate model | `{h.get('candidate_model')}` |",
            f"| production model | `{h.get('production_model')}` |",
            f"| test set ({cand.get('n', '?')} images, {cand.get('test_set_source', '?')}) "
            f"| `{h.get('test_set')}` |",
            "", "verdict.json: `passed`, `status` (pass | fail | error), `reasons`, "
            "`checks` [name, passed, detail], `policy`, `candidate` / `production` (accuracy, log_loss, ece, "
            "per_class, groups, confusion_matrix, n, hashes), `mcnemar` {b, c, p_value}, `first_deploy`, "
            "`hashes`, `disagreements`.", "", "</details>"]
    return out


def write_report(path, verdict: dict, comparison=None, assets_url: str = "") -> dict:
    """Write the Markdown to ``path`` and, given a ``mnistlite.evaluation.Comparison``, the PNGs beside it.

    Returns {"markdown", "confusion", "disagreements", "honesty"}: each a path, or None when not drawn.
    """
    path = Path(path)
    out = {"markdown": path, "confusion": None, "disagreements": None, "honesty": None}
    images = comparison is not None and verdict["candidate"] is not None
    if images:
        matrix = verdict["candidate"]["confusion_matrix"]
        out["confusion"] = confusion_png(matrix, path.parent / CONFUSION_PNG)
        if "selective_risk" in verdict["candidate"]:
            out["honesty"] = honesty_png(verdict, path.parent / HONESTY_PNG)
        if comparison.pred_production is not None:
            out["disagreements"] = disagreement_png(
                comparison.test.images, comparison.test.labels, comparison.pred_candidate,
                comparison.pred_production, path.parent / DISAGREEMENTS_PNG)
    atomic_write_bytes(path, render_markdown(verdict, assets_url, with_images=images).encode())
    return out
