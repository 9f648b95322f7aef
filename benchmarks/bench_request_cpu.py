"""Worker CPU per /predict request over HTTP, alternating between checkouts, on a machine that drifts.

Usage:
  python benchmarks/bench_request_cpu.py --model M.npz [--rounds 6] [--seconds 3] [--concurrency 1]
                                         CHECKOUT [CHECKOUT ...]

Serves ``--model`` from every CHECKOUT at once (its own gunicorn with the repository's config, 2 gevent
workers, on a free 127.0.0.1 port, its code on PYTHONPATH), warms each, then runs ``--rounds`` rounds; in
each, wrk (``benchmarks/wrk_multipart.lua``, one 28x28 PNG) loads every server in turn for ``--seconds``
on kept-alive connections. Per run it prints the workers' user and system CPU per request (from
/proc/PID/stat), requests/s, p50 and p99; at the end the median per checkout. Since the checkouts take
turns within each round, a machine whose speed drifts weighs on all of them alike. A CHECKOUT may carry
gunicorn flags after a ``|`` (e.g. ``".|--http-parser python"``). Needs wrk. Every run is bounded in time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loadgen


def _cpu(pids) -> tuple[float, float]:
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def _serve(spec: str, model: Path, log: Path) -> tuple[subprocess.Popen, int]:
    root, _, flags = spec.partition("|")
    port = loadgen.free_port()
    env = {**os.environ, "MNISTLITE_MODEL": str(model), "MNISTLITE_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "2", "PYTHONPATH": str(Path(root).resolve()), "GUNICORN_CMD_ARGS": flags}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with open(log, "wb") as err:
        proc = subprocess.Popen([gunicorn, "-c", "service/gunicorn.conf.py", "service.wsgi:app"], cwd=root,
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    loadgen.wait_ready(proc, port, loadgen.ready_probe(port), time.perf_counter(), 60,
                       f"{spec}: gunicorn did not become ready; see {log}")
    return proc, port


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="+", help="source trees to compare (with service/ and mnistlite/)")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=3, help="seconds of wrk per server and round (<= 15)")
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args(argv)
    if not (1 <= args.seconds <= 15 and 1 <= args.rounds <= 50 and args.concurrency >= 1):
        print("error: --seconds must be in 1..15, --rounds in 1..50, --concurrency >= 1", file=sys.stderr)
        return 2
    problem = loadgen.preflight(args.model)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-bench-"))
    png = loadgen.digit_png()
    (tmp / "digit.png").write_bytes(png)
    servers, runs = [], {spec: [] for spec in args.checkouts}
    try:
        for i, spec in enumerate(args.checkouts):
            proc, port = _serve(spec, args.model, tmp / f"gunicorn{i}.log")
            servers.append((spec, proc, port))
            raw = loadgen.multipart_request(png, port)
            for _ in range(300):
                loadgen.roundtrip(port, raw)
        for r in range(args.rounds):
            for spec, proc, port in servers:
                workers = loadgen.children(proc.pid)
                u0, s0 = _cpu(workers)
                url = f"http://127.0.0.1:{port}/predict"
                out = loadgen.load_wrk(url, tmp / "digit.png", args.concurrency, args.seconds)
                u1, s1 = _cpu(workers)
                n = max(out["requests"], 1)
                user, system = (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6
                runs[spec].append((user + system, user, system, out["rps"]))
                print(f"round {r + 1} {spec:30} worker CPU {user + system:5.0f} us/request "
                      f"(user {user:4.0f}, system {system:3.0f})  {out['rps']:6.0f} req/s  "
                      f"p50 {out['p50']}  p99 {out['p99']}  non-2xx {out['non_2xx']}  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        for _, proc, _ in servers:
            loadgen.stop(proc)
    print(f"\nmedians over {args.rounds} rounds, c={args.concurrency}:")
    for spec, rows in runs.items():
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(f"  {spec:30} worker CPU {med[0]:5.0f} us/request (user {med[1]:.0f}, system {med[2]:.0f}), "
              f"{med[3]:.0f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
