"""Honest answers: calibration, abstentions on MNIST test uploads and rejection of non-digits.

Usage:
  python benchmarks/bench_honest.py --model M.npz [--data DIR] [--n-digits 10000] [--n-other 300]
         [--seed 23] [--kinds nondigit|noise|all] [--diagram docs/honest-reliability.png]
         [--grid docs/honest-rejected.png] [--out F.json]

Every MNIST test digit is sent as a PNG upload (dark ink on white) through ``preprocess_image`` and
``mnistlite.quality.honest.judge`` (the decision the service makes on POST /predict). Prints the ECE
(15 bins) and log loss before and after calibration, the share abstained, the error among the answered,
the share that must be rejected to reach 0.5% error, and, for each kind of non-digit built by
``nondigit_cases.py`` (its own generator and seed, not the training one), the share rejected; with
``--kinds noise`` or ``all``, also for each kind of pure noise in ``noise_cases.py`` (its mean and lowest
are printed apart, so the non-digit figures stay comparable).
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import noise_cases  # noqa: E402
import nondigit_cases  # noqa: E402
import numpy as np  # noqa: E402

import mnistlite as ml  # noqa: E402
from mnistlite.images.preprocess import preprocess_image  # noqa: E402
from mnistlite.nn.calibration import reject_for_error  # noqa: E402
from mnistlite.quality.honest import judge  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def upload(digit: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(255 - digit).save(buf, format="PNG")
    return buf.getvalue()


def reliability(y, p, path, n_bins=15):
    """A reliability diagram (calibrated and raw): accuracy against confidence per bin, as a PNG."""
    from PIL import Image, ImageDraw

    size, pad = 360, 40
    img = Image.new("RGB", (size + 2 * pad, size + 2 * pad), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([pad, pad, pad + size, pad + size], outline="black")
    d.line([(pad, pad + size), (pad + size, pad)], fill=(160, 160, 160))
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):   # ticks on both axes
        tx, ty = pad + t * size, pad + size - t * size
        d.line([(tx, pad + size), (tx, pad + size + 4)], fill="black")
        d.line([(pad - 4, ty), (pad, ty)], fill="black")
        d.text((tx - 8, pad + size + 6), f"{t:g}", fill="black")
        d.text((pad - 30, ty - 6), f"{t:g}", fill="black")
    for (name, q), colour in zip(p.items(), ((200, 60, 30), (30, 90, 200)), strict=True):
        conf, pred = q.max(1), q.argmax(1)
        bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
        pts = [(float(conf[bins == b].mean()), float((pred[bins == b] == y[bins == b]).mean()))
               for b in range(n_bins) if (bins == b).sum() >= 20]
        xy = [(pad + c * size, pad + size - a * size) for c, a in pts]
        d.line(xy, fill=colour, width=2)
        for x_, y_ in xy:
            d.ellipse([x_ - 3, y_ - 3, x_ + 3, y_ + 3], fill=colour)
        d.text((pad + 8, pad + 8 + 14 * list(p).index(name)), name, fill=colour)
    d.text((pad, pad + size + 20), "confidence ->   accuracy per bin (up; bins of >= 20); grey: perfect",
           fill="black")
    img.save(path)


def grid(shown, path, per_row=6):
    """One row per kind: its name, then rejected uploads as sent and the 28x28 image the model saw
    (framed in grey, so an all-black one still shows)."""
    import io

    from PIL import Image, ImageDraw, ImageOps

    kinds = list(dict.fromkeys(k for k, _, _ in shown))
    cell, label = 64, 110
    g = Image.new("L", (label + per_row * 2 * (cell + 4), len(kinds) * (cell + 8)), 255)
    d = ImageDraw.Draw(g)
    for r, kind in enumerate(kinds):
        y = r * (cell + 8) + 4
        d.text((4, y + cell // 2 - 6), kind, fill=0)
        for c, (_, blob, img) in enumerate([s for s in shown if s[0] == kind][:per_row]):
            x = label + c * 2 * (cell + 4)
            sent = ImageOps.pad(Image.open(io.BytesIO(blob)).convert("L"), (cell, cell), color=255)
            g.paste(sent, (x, y))
            g.paste(Image.fromarray(img).resize((cell, cell), Image.Resampling.NEAREST), (x + cell + 2, y))
            d.rectangle((x + cell + 1, y - 1, x + 2 * cell + 2, y + cell), outline=160)
    g.save(path)


def _kinds(model, cases, title, args, digits, out: dict, shown: list) -> list:
    """Each kind of ``cases`` through preprocess_image and judge: its shares into ``out``, a few rejected
    inputs onto ``shown``; returns the shares rejected."""
    print(f"| {title} kind | rejected | unsure | not a digit |")
    print("| --- | --- | --- | --- |")
    for kind in cases.KINDS:
        blobs = cases.make(kind, args.n_other, args.seed, digits=digits)
        imgs = np.stack([preprocess_image(b) for b in blobs])
        k = judge(model, imgs)
        rej = float((k.verdict > 0).mean())
        out[kind] = {"rejected": rej, "unsure": float((k.verdict == 1).mean()),
                     "not_a_digit": float((k.verdict == 2).mean())}
        print(f"| {kind} | {rej:.1%} | {(k.verdict == 1).mean():.1%} | {(k.verdict == 2).mean():.1%} |")
        shown += [(kind, blobs[i], imgs[i]) for i in np.flatnonzero(k.verdict > 0)[:6]]
    return [v["rejected"] for v in out.values()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data")
    ap.add_argument("--n-digits", type=int, default=10000)
    ap.add_argument("--n-other", type=int, default=300, help="inputs per non-digit kind")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--kinds", choices=("nondigit", "noise", "all"), default="nondigit",
                    help="non-digit kinds (nondigit_cases.py), pure noise kinds (noise_cases.py) or both")
    ap.add_argument("--diagram", help="reliability diagram PNG")
    ap.add_argument("--grid", help="PNG grid of rejected non-digits (what the model saw)")
    ap.add_argument("--out", help="figures as JSON")
    args = ap.parse_args(argv)

    model = ml.load(args.model)
    if model.calibration is None:
        print(f"note: {args.model} has no calibration (an older file): it never abstains")
    _, (xt, yt) = ml.load_mnist(args.data, as_float=False)
    xt, yt = xt[:args.n_digits], yt[:args.n_digits]
    t0 = time.perf_counter()
    seen = np.stack([preprocess_image(upload(d)) for d in xt])
    j = judge(model, seen)
    raw = model.predict_proba(seen.reshape(len(seen), -1).astype(np.float32) / 255, calibrated=False)
    answered = j.verdict == 0
    pred = j.proba.argmax(1)
    fig = {
        "model": args.model, "cpu": cpu_model(), "n_digits": int(len(yt)),
        "accuracy_all_answered": float((pred == yt).mean()),
        "ece": ml.expected_calibration_error(yt, j.proba),
        "ece_uncalibrated": ml.expected_calibration_error(yt, raw),
        "log_loss": ml.log_loss(yt, j.proba), "log_loss_uncalibrated": ml.log_loss(yt, raw),
        "abstained": float(1 - answered.mean()),
        "abstained_unsure": float((j.verdict == 1).mean()),
        "abstained_not_a_digit": float((j.verdict == 2).mean()),
        "error_answered": float((pred[answered] != yt[answered]).mean()),
        "reject_for_0.5pct_error": reject_for_error(j.proba, yt, 0.005),
        "temperature": model.calibration.temperature if model.calibration else None,
    }
    print(f"MNIST test uploads ({len(yt)}, {time.perf_counter() - t0:.0f} s): accuracy (all answered) "
          f"{fig['accuracy_all_answered']:.2%}; ECE {fig['ece_uncalibrated']:.2%} -> {fig['ece']:.2%}; "
          f"log loss {fig['log_loss_uncalibrated']:.4f} -> {fig['log_loss']:.4f}")
    print(f"  abstained {fig['abstained']:.2%} (unsure {fig['abstained_unsure']:.2%}, not a digit "
          f"{fig['abstained_not_a_digit']:.2%}); error among answered {fig['error_answered']:.2%}; "
          f"rejected for 0.5% error {fig['reject_for_0.5pct_error']:.2%}")
    if args.diagram:
        reliability(yt, {"calibrated": j.proba, "raw softmax": raw}, args.diagram)

    shown = []
    sets = {"nondigit": (nondigit_cases, "non-digit"), "noise": (noise_cases, "pure noise")}
    for name, (cases, title) in sets.items():
        if args.kinds not in (name, "all"):
            continue
        rates = _kinds(model, cases, title, args, xt, fig.setdefault("kinds" if name == "nondigit" else
                                                                     "noise_kinds", {}), shown)
        fig[f"{name}_mean_rejected"], fig[f"{name}_min_rejected"] = float(np.mean(rates)), float(min(rates))
        print(f"{title} rejected: mean {np.mean(rates):.1%}, lowest {min(rates):.1%}")
    if args.grid:
        grid(shown, args.grid)
    if args.out:
        Path(args.out).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
