"""CPU of the worker's own steps around the app for one /predict, each timed alone, alternating between
checkouts: gunicorn's answer as the worker builds it with ``service.onewrite.OneWriteResponse``
(start_response, the head, one body write); with ``--hooks``, the config's ``pre_request`` and
``post_request`` hooks around the body's read (service/connection.py, service/handoff.py); with
``--parse``, gunicorn parsing the request from 127.0.0.1 with its default ``forwarded_allow_ips`` against
the service's (nobody trusted).

Usage:
  python benchmarks/bench_worker_path.py [--rounds 4] [--hooks] CHECKOUT [CHECKOUT ...]
  python benchmarks/bench_worker_path.py --parse [--rounds 4]

For every round and every CHECKOUT in turn, a fresh process with that checkout's code on PYTHONPATH runs
the step thousands of times (the answer: into a socket that takes every send), best of 7 (thread CPU
time). Prints µs per request and, at the end, the median per checkout.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from gunicorn.config import Config
import service.onewrite as ow
assert ow.__file__.startswith(sys.argv[1]), ow.__file__
class Sock:
    def send(self, d): return len(d)
    def sendall(self, d): pass
class Req:
    method, version = "POST", (1, 1)
    def should_close(self): return False
cfg, req, sock = Config(), Req(), Sock()
body = b'{"predicted_class":6,"confidence":0.999,"probabilities":[' + b"0.0," * 9 + b'0.999],"abstain":false}'
hdrs = [("content-type", "application/json"), ("content-length", str(len(body))),
        ("x-request-id", "0123456789abcdef0123456789abcdef")]
def one():
    r = ow.OneWriteResponse(req, sock, cfg)
    r.start_response("200 OK", list(hdrs))
    r.write(body)
    r.close()
best = []
for _ in range(7):
    t = time.thread_time()
    for _ in range(20000):
        one()
    best.append((time.thread_time() - t) / 20000 * 1e6)
print(min(best))
"""


_HOOKS = r"""
import os, runpy, sys, time
root = sys.argv[1]
sys.path.insert(0, root); sys.path.insert(0, os.path.join(root, "benchmarks"))
os.chdir(root)
import gevent, loadgen
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from gunicorn.workers.ggevent import GeventWorker
conf = runpy.run_path("service/gunicorn.conf.py")   # the checkout's hooks, as gunicorn loads them
raw = loadgen.multipart_request(loadgen.digit_png(), 8000).replace(b"Connection: close",
                                                                     b"Connection: keep-alive")
cfg = Config()
class Worker(GeventWorker):
    def __init__(self):
        pass
w = Worker()
w.handoff_board = conf["_board"]
w.handoff_slot = w.handoff_board.claim(set())
def run():
    best = []
    for _ in range(7):
        spent = 0.0
        for _ in range(3000):
            req = next(RequestParser(cfg, [raw], ("127.0.0.1", 40000)))
            t = time.thread_time()
            conf["pre_request"](w, req)
            req.body.read()
            conf["post_request"](w, req, None, None)
            spent += time.thread_time() - t
        best.append(spent / 3000 * 1e6)
    print(min(best))
gevent.spawn(run).join()
"""

_PARSE = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import loadgen
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
raw = loadgen.multipart_request(loadgen.digit_png(), 8000)
cfg = Config()
if sys.argv[2] != "default":
    cfg.set("forwarded_allow_ips", sys.argv[2])
best = []
for _ in range(7):
    t = time.thread_time()
    for _ in range(5000):
        next(RequestParser(cfg, [raw], ("127.0.0.1", 40000))).body.read()
    best.append((time.thread_time() - t) / 5000 * 1e6)
print(min(best))
"""


def parse_rounds(rounds: int) -> None:
    """Request parse CPU, gunicorn's default trust (127.0.0.1,::1) against nobody trusted, alternating."""
    here = os.path.dirname(os.path.abspath(__file__))
    got: dict = {"default": [], "": []}
    for r in range(1, rounds + 1):
        for allow in got:
            out = subprocess.run([sys.executable, "-c", _PARSE, here, allow or ""], capture_output=True,
                                 text=True, check=True)
            got[allow].append(float(out.stdout.split()[-1]))
            print(f"round {r} forwarded_allow_ips {allow or '(none)':8s} parse {got[allow][-1]:6.2f} us")
    print(f"\nmedians over {rounds} rounds (load {os.getloadavg()[0]:.1f}):")
    for allow, v in got.items():
        print(f"  forwarded_allow_ips {allow or '(none)':8s} {statistics.median(v):6.2f} us")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="*")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--parse", action="store_true", help="time the request parse by forwarded_allow_ips")
    ap.add_argument("--hooks", action="store_true", help="time the pre/post_request hooks and the body read")
    args = ap.parse_args(argv)
    if args.parse:
        parse_rounds(args.rounds)
        return 0
    got: dict = {c: [] for c in args.checkouts}
    what = "hooks + body read" if args.hooks else "answer head+body"
    for r in range(1, args.rounds + 1):
        for c in args.checkouts:
            out = subprocess.run([sys.executable, "-c", _HOOKS if args.hooks else _CHILD, os.path.abspath(c)],
                                 capture_output=True, text=True, check=True)
            us = float(out.stdout.split()[-1])
            got[c].append(us)
            print(f"round {r} {c:40s} {what} {us:6.2f} us", flush=True)
    print(f"\nmedians over {args.rounds} rounds (load {os.getloadavg()[0]:.1f}):")
    for c, v in got.items():
        print(f"  {c:40s} {statistics.median(v):6.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
