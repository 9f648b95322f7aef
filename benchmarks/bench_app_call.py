"""CPU of the whole in-process Falcon app call for one PNG upload, alternating between checkouts.

Usage:
  python benchmarks/bench_app_call.py --model M.npz [--rounds 4] [--pieces] CHECKOUT [CHECKOUT ...]

For every round and every CHECKOUT in turn, a fresh process with that checkout's code on PYTHONPATH
builds the app (``service.app.create_app``, access log to /dev/null, metrics in multiprocess mode as
under gunicorn) and times 1,000 WSGI calls of POST /predict with one 28x28 PNG as multipart field
"file", best of 5 (thread CPU time, so other processes on a shared machine count little). It prints the
call's CPU in µs and a hash of the response body (the same request must give the same bytes), and at
the end the median per checkout. ``--pieces`` also prints, for each checkout once, the CPU of each stage
measured inside the whole call (wrapped with a thread-CPU timer, ~1 µs added per stage): warm loops of
one stage alone understate them, since a whole call runs each stage with caches the others evicted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import collections, hashlib, io, os, sys, tempfile, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnistlite-appcall-")
import mnistlite as ml
tt, acc = time.thread_time, collections.Counter()
if sys.argv[3] == "pieces":
    from service import accesslog, predictor, prometheus_metrics, resources
    def wrap(owner, name, label):
        f = getattr(owner, name)
        def timed(*a, **k):
            t = tt(); r = f(*a, **k); acc[label] += tt() - t; return r
        setattr(owner, name, timed)
    for owner, name in [(resources, "image_bytes"), (resources, "preprocess_image"),
                        (resources, "media_json"), (predictor, "judge"), (predictor.Predictor, "answers"),
                        (prometheus_metrics.Metrics, "predicted"), (prometheus_metrics.Metrics, "observe"),
                        (accesslog.RequestLog, "process_request"), (accesslog.RequestLog, "process_response"),
                        (resources.Predict, "on_post")]:
        wrap(owner, name, getattr(owner, "__name__", "") + "." + name)
from service.app import create_app
from service.predictor import Predictor
from service.settings import Settings
import service
assert service.__file__.startswith(sys.argv[1]), service.__file__
# this benchmark's loadgen, imported after the checkout's packages (it puts its own root on sys.path):
# the same request for every checkout
sys.path.insert(0, sys.argv[4])
import loadgen
png = loadgen.digit_png()
body = loadgen.multipart_body(png)
app = create_app(Predictor(ml.load(sys.argv[2])), settings=Settings(), log_stream=open(os.devnull, "w"))
env = loadgen.predict_environ(body, loadgen.MULTIPART_TYPE)
def call():
    e = dict(env); e["wsgi.input"] = io.BytesIO(body)
    return b"".join(app(e, lambda status, headers: None))
out = call()
assert b"predicted_class" in out, out
for _ in range(300): call()
best, pieces = float("inf"), {}
for _ in range(5):
    acc.clear(); t = tt()
    for _ in range(1000): call()
    whole = (tt() - t) / 1000 * 1e6
    if whole < best:
        best, pieces = whole, {k: v / 1000 * 1e6 for k, v in acc.items()}
print(f"{best:.1f} {hashlib.sha256(out).hexdigest()[:12]}")
for k, v in sorted(pieces.items(), key=lambda kv: -kv[1]):
    print(f"  {k:36s} {v:6.1f} us")
"""


def run(checkout: Path, model: Path, mode: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return subprocess.run([sys.executable, "-c", _CHILD, str(checkout), str(model), mode,
                           str(Path(__file__).resolve().parent)], cwd=checkout,
                          env=env, check=True, capture_output=True, text=True, timeout=300).stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--pieces", action="store_true", help="also the CPU of each stage inside the call")
    args = ap.parse_args(argv)
    roots = [c.resolve() for c in args.checkouts]
    model = args.model.resolve()
    got: dict = {r: [] for r in roots}
    for i in range(args.rounds):
        for r in roots:
            us, digest = run(r, model, "whole").split()
            got[r].append(float(us))
            print(f"round {i + 1} {str(r):40s} whole app call {float(us):6.1f} us  body {digest}", flush=True)
    print(f"\nmedians over {args.rounds} rounds (load {os.getloadavg()[0]:.1f}):")
    for r in roots:
        print(f"  {str(r):40s} {statistics.median(got[r]):6.1f} us")
    if args.pieces:
        for r in roots:
            stages = run(r, model, "pieces")
            print(f"\n{r}: whole call and stages inside it (timers add ~1 us each)\n{stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
