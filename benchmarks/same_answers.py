"""Do two checkouts answer the same uploads with the same bytes? The check behind every request-path cut.

Usage:
  python benchmarks/same_answers.py --model M.npz [--digits 600] CHECKOUT_A CHECKOUT_B

Builds one corpus of uploads with this checkout's generators: MNIST test digits as PNGs in both
polarities, every MNIST-C-style and cropped-digit kind, every pure-noise and non-digit kind, digits
crossed by lines reaching the border, and 280x280 RGBA drawings like the page's canvas. Then, for each
CHECKOUT in its own process (its code on PYTHONPATH), POSTs every upload to the in-process app
(multipart, a third with ``?explain=1``; every fifth also as a raw image body) and JSON instances of
1, 3 and 20 digits, and hashes each status line and body. Prints how many answers differ (0 expected)
and the first few that do; exits 1 when any does. Needs MNISTLITE_DATA_DIR.
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import loadgen  # noqa: F401  (puts this checkout on sys.path)

_CHILD = r"""
import hashlib, io, json, os, pickle, sys, tempfile
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnistlite-same-")
root, model, corpus, here = sys.argv[1:5]
import mnistlite as ml
from service.app import create_app
from service.predictor import Predictor
from service.settings import Settings
import service
assert service.__file__.startswith(root), service.__file__
# this benchmark's loadgen, imported after the checkout's packages (it puts its own root on sys.path):
# the same requests for both checkouts
sys.path.insert(0, here)
import loadgen
app = create_app(Predictor(ml.load(model)), settings=Settings(), log_stream=open(os.devnull, "w"))
def post(body, ctype, qs=""):
    env = {**loadgen.predict_environ(body, ctype, qs), "wsgi.input": io.BytesIO(body)}
    status = []
    out = b"".join(app(env, lambda s, h: status.append(s)))
    return hashlib.sha256(status[0].encode() + b"\n" + out).hexdigest()[:16]
uploads, instances = pickle.load(open(corpus, "rb"))
for i, data in enumerate(uploads):
    print(post(loadgen.multipart_body(data), loadgen.MULTIPART_TYPE, "explain=1" if i % 3 == 0 else ""))
    if i % 5 == 0:
        print(post(data, "image/png"))
for inst in instances:
    print(post(json.dumps({"instances": inst}).encode(), "application/json"))
"""


def corpus(n_digits: int) -> tuple[list, list]:
    """(uploads as image bytes, JSON instance lists) from the benchmarks' generators."""
    import io

    import noise_cases
    import nondigit_cases
    import numpy as np
    import realworld_crops
    import realworld_mnistc
    from PIL import Image

    import mnistlite as ml

    def png(a):
        buf = io.BytesIO()
        Image.fromarray(np.asarray(a, np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    _, (xt, _) = ml.load_mnist(as_float=False)
    rng = np.random.default_rng(7)
    out = [png(255 - d) for d in xt[:n_digits]] + [png(d) for d in xt[:n_digits]]
    out += [png(f(d, rng)) for f in realworld_mnistc.KINDS.values() for d in xt[1000:1030]]
    out += [png(f(d, rng)) for f in realworld_crops.KINDS.values() for d in xt[2000:2006]]
    for kind in noise_cases.KINDS:
        out += noise_cases.make(kind, 8, 0)
    for kind in nondigit_cases.KINDS:
        out += nondigit_cases.make(kind, 8, 0, xt[:100])
    for d in xt[3000:3100]:   # lines and specks reaching the border (declutter)
        a = 255 - d
        a[int(rng.integers(0, 28)), :] = rng.integers(0, 80)
        if rng.random() < 0.5:
            a[:, int(rng.integers(0, 28))] = 0
        out.append(png(a))
    for d in xt[3100:3160]:   # the page's canvas: 280x280 RGBA, dark ink on white
        out.append(png(np.asarray(Image.fromarray(255 - d).resize((280, 280), Image.Resampling.BILINEAR)
                                  .convert("RGBA"))))
    instances = [(xt[j:j + k].reshape(k, 784) / 255.0).round(4).tolist()
                 for k in (1, 3, 20) for j in range(0, 60, k)]
    return out, instances


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs=2, type=Path)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--digits", type=int, default=600, help="MNIST test digits sent in each polarity")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnistlite-same-") as tmp:
        path = Path(tmp) / "corpus.pkl"
        uploads, instances = corpus(args.digits)
        path.write_bytes(pickle.dumps((uploads, instances)))
        got = []
        for root in (c.resolve() for c in args.checkouts):
            cmd = [sys.executable, "-c", _CHILD, str(root), str(args.model.resolve()), str(path),
                   str(Path(__file__).resolve().parent)]
            run = subprocess.run(cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True,
                                 capture_output=True, text=True, timeout=1800)
            got.append(run.stdout.split())
    differ = [i for i, (a, b) in enumerate(zip(*got, strict=True)) if a != b]
    print(f"{len(got[0])} answers ({len(uploads)} uploads, {len(instances)} JSON requests): "
          f"{len(differ)} differ{' (first: ' + ', '.join(map(str, differ[:10])) + ')' if differ else ''}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
