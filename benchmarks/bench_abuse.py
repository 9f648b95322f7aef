"""Abuse suite: crafted uploads (benchmarks/abuse_cases.py) in-process and against the real gunicorn.

  python benchmarks/bench_abuse.py [--model M.npz] [--cases NAME ...] [--reps 3] [--seconds 20]

1. In-process: each case through ``preprocess_image`` in a forked child (``--reps`` times), after one read
   in the parent (a worker's steady state; ``--cold``: without): CPU time and extra peak RSS per request,
   the outcome, then the worst per input kind and the suite's p99. A refusal within 5 ms of CPU counts
   as in bounds; anything answered must stay <= 50 ms and <= 40 MB.
   The decode alone is measured too, so the table says which stage dominates.
2. gunicorn (service/gunicorn.conf.py as in production, 2 workers): every case sent by 4 concurrent
   senders (status and latency), then 4 senders looping the costliest accepted cases for ``--seconds``
   while one normal client posts a digit (p50/p99) and a prober asks /liveness every 100 ms (worst).
   Reports each worker's peak RSS (VmHWM) and whether any worker was replaced.
Without ``--model`` a small model is trained first (MNISTLITE_DATA_DIR). 127.0.0.1 only; every loop
is bounded in time. Prints the CPU model and load average: the machine may be shared.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "benchmarks", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import abuse_cases  # noqa: E402
import loadgen  # noqa: E402
import machine  # noqa: E402

CPU_MS, MEMORY_MB, REFUSE_MS = 50.0, 40.0, 5.0   # the bounds per request


def _p(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def in_process(cases, reps: int, warm: bool = True) -> dict:
    """name -> (cpu ms worst, peak MB worst, decode-only cpu ms worst, outcome) for each case."""
    from mnistlite.images.decode import _pillow, decode_image
    from mnistlite.images.preprocess import preprocess_image

    # Imports and caches as in a worker that has served a few uploads, in the parent before forking.
    _pillow()
    preprocess_image(loadgen.digit_png())
    out = {}
    for c in cases:
        if warm:   # the steady state of a worker that has read such an upload before (lazy imports, caches)
            try:
                preprocess_image(c.data)
            except Exception:  # noqa: BLE001 - refusals are measured below
                pass
        runs = [abuse_cases.probe(preprocess_image, c.data) for _ in range(reps)]
        dec = [abuse_cases.probe(lambda d: decode_image(d, reduce=384, copy=False), c.data)[0]
               for _ in range(reps)]
        out[c.name] = (max(r[0] for r in runs) * 1000, max(r[1] for r in runs), max(dec) * 1000, runs[0][2])
        cpu, mb, dms, outcome = out[c.name]
        ok = "ok" if outcome == "ok" else outcome.split(":", 1)[0]
        flag = "" if (cpu <= CPU_MS and mb <= MEMORY_MB) or (ok != "ok" and cpu <= REFUSE_MS) else "  OVER"
        print(f"  {c.name:28s} {c.kind:17s} {len(c.data):>9,d} B {cpu:7.1f} ms (decode {dms:6.1f}) "
              f"{mb:6.1f} MB  {ok}{flag}", flush=True)
    return out


def kinds_table(cases, results) -> None:
    by_kind = defaultdict(list)
    for c in cases:
        by_kind[c.kind].append(results[c.name])
    print(f"\n  {'input kind':17s} {'cases':>5s} {'worst CPU ms':>12s} {'worst +MB':>9s} {'refused':>7s}")
    for kind, rows in by_kind.items():
        refused = sum(r[3] != "ok" for r in rows)
        print(f"  {kind:17s} {len(rows):5d} {max(r[0] for r in rows):12.1f} {max(r[1] for r in rows):9.1f} "
              f"{refused:7d}")
    answered = [r for r in results.values() if r[3] == "ok"]
    refusals = [r for r in results.values() if r[3] != "ok"]
    print(f"\n  answered: {len(answered)}, p99 CPU {_p([r[0] for r in answered], .99):.1f} ms, "
          f"p99 extra peak {_p([r[1] for r in answered], .99):.1f} MB; refused: {len(refusals)}, p99 CPU "
          f"{_p([r[0] for r in refusals], .99):.1f} ms")
    pre = sum(r[0] - r[2] for r in answered)
    dec = sum(r[2] for r in answered)
    print(f"  CPU of the answered cases: decode {dec:.0f} ms in all, the rest of preprocessing {pre:.0f} ms "
          f"({'decode' if dec >= pre else 'to_mnist'} dominates)")


def _request(port: int, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection; status 0 when the connection failed."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        status = conn.getresponse().status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - t0


def post(port: int, body: bytes, path: str = "/predict", timeout: float = 60) -> tuple[int, float]:
    """(status, seconds) of one POST with a raw body on a new connection."""
    return _request(port, "POST", path, body, timeout)


def get(port: int, path: str, timeout: float = 10) -> tuple[int, float]:
    return _request(port, "GET", path, None, timeout)


def _hwm(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"^VmHWM:\s+(\d+)", text, re.M).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def served(model: Path, cases, results, seconds: float, log_dir: Path) -> None:
    port = loadgen.free_port()
    proc, _ = loadgen.start_server(model, port, 2, log_dir / "gunicorn.log",
                                   extra_env={"MNISTLITE_ACCESS_LOG": "0"})
    try:
        deadline = time.monotonic() + 10
        while len(loadgen.children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers0 = set(loadgen.children(proc.pid))
        print(f"\ngunicorn on 127.0.0.1:{port}, workers {sorted(workers0)}, RSS "
              f"{[round(_hwm(w)) for w in workers0]} MB at start")
        # Every case once, 4 senders at a time.
        todo, lock, answers = list(cases), threading.Lock(), []

        def sender():
            while True:
                with lock:
                    if not todo:
                        return
                    c = todo.pop()
                status, s = post(port, c.data)
                answers.append((c, status, s))

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        print(f"  {'case':28s} {'status':>6s} {'seconds':>8s}")
        for c, status, s in sorted(answers, key=lambda a: -a[2]):
            print(f"  {c.name:28s} {status:6d} {s:8.3f}")
        bad = [c.name for c, status, _ in answers if status >= 500 or status == 0]
        print(f"  5xx or no answer: {bad or 'none'}")
        # 4 bombs in flight: the costliest accepted cases, looped.
        accepted = sorted((c for c in cases if results[c.name][3] == "ok"), key=lambda c: -results[c.name][0])
        bombs = (accepted or list(cases))[:4]
        print(f"\n  bombs in flight ({seconds:.0f} s, 4 senders): {[b.name for b in bombs]}")
        stop = time.monotonic() + seconds
        normal, live, bomb_count = [], [], [0]
        digit = loadgen.digit_png()

        def bomber(c):
            while time.monotonic() < stop:
                post(port, c.data)
                bomb_count[0] += 1

        def client():
            while time.monotonic() < stop:
                status, s = post(port, digit)
                normal.append((status, s))

        def prober():
            while time.monotonic() < stop:
                live.append(get(port, "/liveness"))
                time.sleep(0.1)

        threads = [threading.Thread(target=bomber, args=(b,)) for b in bombs]
        threads += [threading.Thread(target=client), threading.Thread(target=prober)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        lat = [s * 1000 for status, s in normal if status == 200]
        print(f"  normal client: {len(lat)}/{len(normal)} answered 200, p50 {_p(lat, .5):.0f} ms, "
              f"p99 {_p(lat, .99):.0f} ms; bombs sent {bomb_count[0]}")
        ls = [s * 1000 for status, s in live if status == 200]
        print(f"  /liveness: {len(ls)}/{len(live)} answered 200, p50 {_p(ls, .5):.0f} ms, worst "
              f"{max(ls, default=float('nan')):.0f} ms")
        workers1 = set(loadgen.children(proc.pid))
        print(f"  worker peak RSS (VmHWM): {[round(_hwm(w)) for w in workers1]} MB; "
              f"replaced workers: {len(workers0 - workers1)}")
    finally:
        loadgen.stop(proc, timeout=40)
    log = (log_dir / "gunicorn.log").read_text(errors="replace")
    print(f"  gunicorn log: {log.count('WORKER TIMEOUT')} worker timeouts, "
          f"{log.count('Traceback')} tracebacks")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="model file (default: train a small one)")
    ap.add_argument("--cases", nargs="*", help=f"case names (default all): {' '.join(abuse_cases.names())}")
    ap.add_argument("--reps", type=int, default=3, help="forked runs per case in-process (worst kept)")
    ap.add_argument("--seconds", type=float, default=20, help="how long the 4 bombs stay in flight")
    ap.add_argument("--no-server", action="store_true", help="in-process part only")
    ap.add_argument("--cold", action="store_true", help="do not read each case once in the parent first: "
                    "the child then pays a fresh worker's one-time costs (copy-on-write, first calls)")
    args = ap.parse_args(argv)
    if args.reps < 1 or args.seconds <= 0:
        ap.error("--reps must be >= 1 and --seconds > 0")
    if args.model and not args.model.is_file():
        ap.error(f"no model file {args.model}")
    print(f"CPU: {machine.cpu_model()}, {os.cpu_count()} cores; load average "
          f"{open('/proc/loadavg').read().split()[:3]} (shared machine)")
    t0 = time.monotonic()
    cases = abuse_cases.cases(args.cases)
    print(f"{len(cases)} cases built in {time.monotonic() - t0:.1f} s\n\nin-process (preprocess_image; "
          f"bounds {CPU_MS:.0f} ms and {MEMORY_MB:.0f} MB, or a refusal in {REFUSE_MS:.0f} ms):")
    results = in_process(cases, args.reps, warm=not args.cold)
    kinds_table(cases, results)
    if args.no_server:
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
        model = args.model or loadgen.quick_model(Path(tmp) / "model.npz")
        served(model, cases, results, args.seconds, Path(tmp))
    print(f"\nload average at the end {open('/proc/loadavg').read().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
