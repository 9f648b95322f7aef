"""What the reject rule can reach on held-out data: the validation split the model was calibrated on,
plus non-digits from the training generator (a fresh seed) and photo-sized noise uploads (own seed).

Usage:
  python benchmarks/bench_reject_frontier.py --model M.npz [--data DIR] [--n-other 150] [--n-noise 600]

For a few policies (the share of held-out digits ``min_logit`` may call "not a digit", the cap on all
rejections), thresholds are chosen on the validation split as ``recipe.calibrate`` does, then each line
prints the validation digits abstained and the error among the answered, and the shares of generated
non-digits and noise uploads rejected. Never reads the test set: use it to judge a policy before
bench_honest.py measures the chosen one on test uploads.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import mnistlite as ml  # noqa: E402
from mnistlite.images import nondigits  # noqa: E402
from mnistlite.images.preprocess import preprocess_image  # noqa: E402
from mnistlite.nn.arrays import to_model_input  # noqa: E402
from mnistlite.nn.calibration import POLICY, Calibration, choose_thresholds, decide  # noqa: E402
from mnistlite.recipe import split_validation  # noqa: E402


def noise_uploads(n: int, seed: int = 4242) -> np.ndarray:
    """``n`` noise PNGs of 100-800 px (uniform, Gaussian, specks either way), preprocessed:
    uint8 (n, 28, 28)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h = int(rng.integers(100, 800))
        s = (h, int(h * rng.uniform(0.7, 1.4)))
        k = i % 4
        if k == 0:
            a = rng.integers(0, 256, s).astype(np.float64)
        elif k == 1:
            a = rng.normal(rng.uniform(90, 170), rng.uniform(30, 80), s)
        else:
            ink, paper = (rng.uniform(0, 60), rng.uniform(200, 255))[::1 if k == 2 else -1]
            a = np.where(rng.random(s) < rng.uniform(0.02, 0.15), ink, paper)
        buf = io.BytesIO()
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "PNG")
        out.append(preprocess_image(buf.getvalue()))
    return np.stack(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data")
    ap.add_argument("--n-other", type=int, default=150, help="generated non-digits per kind")
    ap.add_argument("--n-noise", type=int, default=600, help="noise uploads")
    args = ap.parse_args(argv)
    model = ml.load(args.model)
    if model.calibration is None or not model.config.val_split:
        print(f"error: {args.model} has no calibration or no validation split", file=sys.stderr)
        return 2
    cfg, temperature = model.config, model.calibration.temperature
    (x, y), _ = ml.load_mnist(args.data, as_float=False)
    _, (vx, vy) = split_validation(to_model_input(x, 784), y.astype(np.int64), cfg.val_split,
                                   np.random.default_rng([cfg.seed, 1]))
    pv, tv = model.predict_scores(vx)
    rng, fonts = np.random.default_rng([999, 5]), nondigits.default_fonts()
    gen = np.stack([nondigits.draw_nondigit(k, rng, digits=x[:1000], fonts=fonts)
                    for k in nondigits.KINDS if k != "blank" for _ in range(args.n_other)])
    others = {"generated non-digits": gen, "noise uploads": noise_uploads(args.n_noise)}
    scored = {k: (*model.predict_scores(v), ~v.reshape(len(v), -1).any(1)) for k, v in others.items()}
    print(f"model {args.model}; validation digits {len(vy)}, accuracy {(pv.argmax(1) == vy).mean():.2%}")
    for q in (0.0, 0.005, 0.01):
        for cap in (0.015, 0.02):
            policy = {**POLICY, "max_not_a_digit": q, "max_reject": cap}
            cal = Calibration(temperature, **choose_thresholds(pv, vy, policy, tv))
            answered = decide(pv, cal, tv) == 0
            err = (pv.argmax(1)[answered] != vy[answered]).mean()
            rej = {k: ((decide(p, cal, t) > 0) | e).mean() for k, (p, t, e) in scored.items()}
            print(f"max_not_a_digit {q:.1%}, max_reject {cap:.1%}: abstained {1 - answered.mean():.2%}, "
                  f"error among answered {err:.3%}; " + ", ".join(f"{k} {v:.1%}" for k, v in rej.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
