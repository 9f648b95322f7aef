"""Where the service's throughput goes: /predict built up one stage at a time, each rung under gunicorn + wrk.

Usage:
  python benchmarks/bench_ladder.py [--model M.npz] [--rounds 3] [--duration 8] [--rungs gunicorn,falcon,...]

Every rung (see benchmarks/ladder_app.py) runs the request path up to one more stage of the real service:
bare gunicorn, Falcon routing, the request-log/metrics middleware, the multipart read, image decode,
to_mnist, the corruption detector, and the full app. Each is started under the service's own gunicorn
config (2 sync workers), warmed, and loaded by wrk at concurrency 16 on the same cores; rungs alternate
within each round so the machine's drift hits all of them alike. Prints median requests/s and the
workers' CPU per request, and what each stage adds. Needs wrk; without --model a quick model is trained.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import loadgen
from ladder_app import RUNGS


def measure(rung: str, model: Path, png_path: Path, tmp: Path, seconds: int,
            workers: int) -> tuple[float, float]:
    """(requests/s, worker CPU microseconds per request) of one rung under wrk -c16."""
    port = loadgen.free_port()
    raw = loadgen.multipart_request(png_path.read_bytes(), port)
    proc, _ = loadgen.start_server(model, port, workers, tmp / f"{rung}.log", app="ladder_app:app",
                                   extra_env={"LADDER_RUNG": rung}, probe=raw)
    try:
        for _ in range(300):
            loadgen.roundtrip(port, raw)
        pids = loadgen.children(proc.pid)
        cpu0 = loadgen.cpu_seconds(pids)
        load = loadgen.load_wrk(f"http://127.0.0.1:{port}/predict", png_path, 16, seconds)
        if load["non_2xx"]:
            raise RuntimeError(f"rung {rung}: {load['non_2xx']} non-2xx responses")
        return load["rps"], (loadgen.cpu_seconds(pids) - cpu0) / load["requests"] * 1e6
    finally:
        loadgen.stop(proc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="model .npz (default: train a quick one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="seconds of wrk per rung and round (<= 15)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rungs", default=",".join(RUNGS), help=f"comma-separated subset of {','.join(RUNGS)}")
    args = ap.parse_args(argv)
    rungs = [r for r in args.rungs.split(",") if r]
    bad = [r for r in rungs if r not in RUNGS]
    problem = loadgen.preflight(args.model)
    if bad or not (1 <= args.duration <= 15 and 1 <= args.rounds <= 10):
        problem = f"rungs must be among {', '.join(RUNGS)} (got {bad}); --duration 1..15, --rounds 1..10"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-ladder-"))
    try:
        model = args.model or loadgen.quick_model(tmp / "model.npz")
        png_path = tmp / "digit.png"
        png_path.write_bytes(loadgen.digit_png())
        results = {r: [] for r in rungs}
        for i in range(args.rounds):
            for rung in rungs:
                rps, cpu = measure(rung, model, png_path, tmp, args.duration, args.workers)
                results[rung].append((rps, cpu))
                print(f"round {i + 1}: {rung:10} {rps:7.0f} req/s  {cpu:5.0f} us/request", file=sys.stderr,
                      flush=True)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'rung':10}  {'req/s (median, range)':>24}  {'worker CPU/request':>18}  {'stage adds':>10}")
    prev = None
    for rung in rungs:
        rps = [r for r, _ in results[rung]]
        cpu = statistics.median(c for _, c in results[rung])
        adds = f"{cpu - prev:+.0f} us" if prev is not None else ""
        print(f"{rung:10}  {statistics.median(rps):7.0f} ({min(rps):.0f}-{max(rps):.0f})".ljust(38)
              + f"{cpu:10.0f} us  {adds:>10}")
        prev = cpu
    return 0


if __name__ == "__main__":
    sys.exit(main())
