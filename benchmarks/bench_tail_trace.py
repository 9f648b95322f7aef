"""Where each slow request's time went: per-request timestamps from wrk and from both workers, joined.

Usage: python benchmarks/bench_tail_trace.py --model M.npz [--concurrency 16] [--duration 8] [--root DIR]
                                             [--slow-ms 10] [gunicorn flags after --]
Serves ``--root`` (default this checkout; its .venv) with benchmarks/tail_probe_conf.py (the root's gunicorn
config plus recording hooks), drives wrk with benchmarks/tail_trace.lua (an X-Request-ID per request, its
send and answer times), and joins them by id. For each request: client send -> the worker's recv() of it
(whether the worker was already waiting for it) -> handler start -> handler end -> client receives. Prints
the latency distribution, where the slow requests' time went, whether they follow a reconnection, what
each worker did meanwhile, GC pauses, and per-worker CPU and run-queue wait. Environment passes through
(MNISTLITE_KEEPALIVE_REQUESTS, ...). Bounded in time; 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import loadgen  # noqa: E402 - benchmarks/ is sys.path[0] when run as a script

from mnistlite.cli.proc import free_port  # noqa: E402


def schedstat(pid: int) -> tuple:
    """(CPU seconds from /proc/PID/stat, run-queue wait seconds, time slices)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    run, wait, slices = (int(x) for x in open(f"/proc/{pid}/schedstat").read().split())
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), wait / 1e9, slices


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run(args, out: str) -> dict:
    root = Path(args.root).resolve()
    port = free_port()
    env = dict(os.environ, MNISTLITE_BIND=f"127.0.0.1:{port}", MNISTLITE_MODEL=str(args.model), PERF_OUT=out,
               PERF_TRACE="1", GUNICORN_LOGLEVEL="warning",
               PERF_BASE_CONF=str(root / "service/gunicorn.conf.py"))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [str(root / ".venv/bin/gunicorn"), "-c", str(HERE / "tail_probe_conf.py"),
           "--pythonpath", str(HERE), *args.gunicorn, "service.wsgi:app"]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(out, "gunicorn.err"), "w"))
    try:
        url = f"http://127.0.0.1:{port}"
        loadgen.wait_ready(proc, port, loadgen.ready_probe(port), time.perf_counter(), 30,
                           "gunicorn did not become ready")
        png = str(HERE.parent / "tests/data/digit_7.png")
        wenv = dict(os.environ, MNISTLITE_BENCH_PNG=png, MNISTLITE_TRACE_OUT=os.path.join(out, "client.txt"))
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-s", str(HERE / "wrk_multipart.lua"), f"{url}/predict"],
                       env=wenv, capture_output=True, timeout=30)  # warm both workers
        kids = [int(x) for x in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
        before = {k: schedstat(k) for k in kids}
        wrk = subprocess.run(["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration}s", "--latency", "-s",
                              str(HERE / "tail_trace.lua"), f"{url}/predict"], env=wenv, capture_output=True,
                             text=True, timeout=args.duration + 60).stdout
        after = {k: schedstat(k) for k in kids}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(40)
    sched = {k: [a - b for a, b in zip(after[k], before[k], strict=True)] for k in kids}
    return {"wrk": wrk, "kids": kids, "sched": sched}


def load(out: str):
    client = {}
    for line in open(os.path.join(out, "client.txt")):
        rid, send, recv, status = line.split()
        client[rid] = (float(send) / 1e9, float(recv) / 1e9, int(status))
    server = {}
    for f in glob.glob(os.path.join(out, "req-*.tsv")):
        for line in open(f):
            r = line.rstrip("\n").split("\t")
            server[r[0]] = {"pid": int(r[1]), "port": int(r[2]), "n": int(r[3]), "accepted": float(r[4]),
                            "called": float(r[5]), "returned": float(r[6]), "waited": r[7] == "1",
                            "head": float(r[8]), "end": float(r[9]), "cpu_us": float(r[10]),
                            "closing": r[11] == "1", "started": float(r[12])}
    gcs = []
    for f in glob.glob(os.path.join(out, "gcev-*.tsv")):
        pid = int(re.search(r"gcev-(\d+)", f).group(1))
        gcs += [(pid, float(a), float(b), int(c)) for a, b, c in (ln.split("\t") for ln in open(f))]
    return client, server, gcs


def report(res: dict, client, server, gcs, slow_ms: float) -> None:
    wrk = res["wrk"]
    m = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
    lat = dict(re.findall(r"\s(50|90|99)(?:\.000)?%\s+(\S+)", wrk))
    errs = re.findall(r"(Non-2xx.*|Socket errors.*)", wrk)
    print(f"wrk: {m.group(1) if m else '?'} req/s, p50 {lat.get('50')} p90 {lat.get('90')} "
          f"p99 {lat.get('99')} {' '.join(errs)}")
    rows = []
    for rid, (send, recv, status) in client.items():
        s = server.get(rid)
        if s:
            rows.append((send, recv, status, s))
    print(f"joined {len(rows)} of {len(client)} client records; {len(server)} server records")
    if not rows:
        return
    L = [(r[1] - r[0]) * 1e3 for r in rows]
    print("latency ms (trace): p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.1f" %
          (*(pct(L, q) for q in (0.5, 0.9, 0.99, 0.999)), max(L)))
    by_pid = collections.defaultdict(list)
    for r in rows:
        by_pid[r[3]["pid"]].append(r[3])
    heads = {pid: sorted(s["head"] for s in ss) for pid, ss in by_pid.items()}
    busy = {pid: sorted((s["head"], s["end"]) for s in ss) for pid, ss in by_pid.items()}

    def served(pid, a, b):
        h = heads[pid]
        return bisect.bisect_left(h, b) - bisect.bisect_left(h, a)

    def busy_ms(pid, a, b):
        return sum(max(0.0, min(e, b) - max(h, a)) for h, e in busy[pid] if e > a and h < b) * 1e3

    def parts(r):
        send, recv, _, s = r
        first = s["n"] == 1
        # the request reached the worker's recv(): from the later of send and the recv() call
        return {"to_recv": (s["returned"] - send) * 1e3, "recv_to_head": (s["head"] - s["returned"]) * 1e3,
                "handler": (s["end"] - s["head"]) * 1e3, "back": (recv - s["end"]) * 1e3, "first": first,
                "waited": s["waited"], "accept_wait": (s["accepted"] - send) * 1e3 if first else 0.0,
                "spawn_wait": (s["started"] - s["accepted"]) * 1e3 if first else 0.0}

    slow = [r for r, x in zip(rows, L, strict=True) if x > slow_ms]
    allp = [parts(r) for r in rows]
    slow_first = sum(parts(r)["first"] for r in slow) / max(1, len(slow))
    print(f"requests first on their connection: {sum(p['first'] for p in allp) / len(allp):.1%} of all, "
          f"{slow_first:.1%} of the {len(slow)} over {slow_ms} ms")
    print(f"recv() found the request already waiting (worker was busy): "
          f"{sum(not p['waited'] for p in allp) / len(allp):.1%} of all")
    for name, sel in (("all", rows), (f"over {slow_ms} ms", slow)):
        ps = [parts(r) for r in sel]
        if not ps:
            continue
        print(f"  {name:>14}: " + "  ".join(f"{k} p50 {pct([p[k] for p in ps], .5):.2f} p99 "
                                            f"{pct([p[k] for p in ps], .99):.2f}"
                                            for k in ("to_recv", "recv_to_head", "handler", "back")))
    # Requests its worker started between a request's sending and its own start: the queue it waited in,
    # counted in requests, so the same on a busy machine as on a quiet one.
    ahead = [served(r[3]["pid"], r[0], r[3]["head"]) for r in rows]
    ahead_new = [a for a, r in zip(ahead, rows, strict=True) if r[3]["n"] == 1]
    ahead_new = ahead_new or [0]
    print("requests its worker started before it: p50 %d p99 %d max %d; new connections: p50 %d p99 %d max %d"
          % (pct(ahead, .5), pct(ahead, .99), max(ahead),
             pct(ahead_new, .5), pct(ahead_new, .99), max(ahead_new)))
    firsts = [parts(r) for r in rows if r[3]["n"] == 1]
    if firsts:
        acc, spawn = [p["accept_wait"] for p in firsts], [p["spawn_wait"] for p in firsts]
        print("new connections: kernel accept queue ms p50 %.2f p99 %.2f; accept to its greenlet's start ms "
              "p50 %.2f p99 %.2f" % (pct(acc, .5), pct(acc, .99), pct(spawn, .5), pct(spawn, .99)))
    print("slowest 12: ms total = to_recv + recv_to_head + handler + back | first? accept_wait | pid: "
          "served meanwhile, busy ms | other: served, busy ms | gc ms in window")
    pids = sorted(by_pid)
    for r in sorted(rows, key=lambda r: r[0] - r[1])[:12]:
        p, s = parts(r), r[3]
        other = [q for q in pids if q != s["pid"]]
        a, b = r[0], s["head"]
        g = sum(ms for pid, t, ms, _ in gcs if pid == s["pid"] and a <= t <= b)
        o = other[0] if other else None
        print(f"  {(r[1] - r[0]) * 1e3:7.1f} = {p['to_recv']:6.1f} + {p['recv_to_head']:5.2f} + "
              f"{p['handler']:5.2f} + {p['back']:5.2f} | {'new' if p['first'] else 'n=%d' % s['n']:>5} "
              f"{p['accept_wait']:6.1f} | {s['pid']}: {served(s['pid'], a, b):4d}, "
              f"{busy_ms(s['pid'], a, b):6.1f}"
              f" | {served(o, a, b) if o else 0:4d}, {busy_ms(o, a, b) if o else 0:6.1f} | {g:.1f}")
    # connections per worker over time, and the longest run of one connection's requests in a row
    for pid in pids:
        ss = sorted(by_pid[pid], key=lambda s: s["head"])
        t0 = ss[0]["head"]
        per_sec = collections.defaultdict(set)
        for s in ss:
            per_sec[int(s["head"] - t0)].add(s["port"])
        streak, best, runs = 1, 1, []
        for x, y in zip(ss, ss[1:], strict=False):
            if x["port"] == y["port"]:
                streak += 1
            else:
                runs.append(streak)
                streak = 1
            best = max(best, streak)
        runs.append(streak)
        in_long = sum(r for r in runs if r >= 10) / len(ss)
        cpu, wait, slices = res["sched"][pid]
        g = [ms for p_, _, ms, _ in gcs if p_ == pid]
        cpu_us = pct([s["cpu_us"] for s in ss], .5)
        print(f"worker {pid}: {len(ss)} requests, distinct connections per second "
              f"{[len(per_sec[k]) for k in sorted(per_sec)]}, closes {sum(s['closing'] for s in ss)}, "
              f"longest run of one connection {best}, {in_long:.0%} of requests in runs >= 10; "
              f"handler CPU p50 {cpu_us:.0f} us; "
              f"process CPU {cpu:.2f} s, run-queue wait {wait:.2f} s over {slices} slices; "
              f"gc {len(g)} x, max {max(g or [0]):.2f} ms, total {sum(g):.0f} ms")
    print("load average", " ".join(open("/proc/loadavg").read().split()[:3]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--root", default=str(HERE.parent), help="checkout to serve (with its .venv)")
    ap.add_argument("--slow-ms", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true", help="keep the raw records (path printed)")
    ap.add_argument("--again", metavar="DIR", help="only report on the records kept in DIR")
    ap.add_argument("gunicorn", nargs="*", help="extra gunicorn flags (after --)")
    args = ap.parse_args(argv)
    if not 1 <= args.duration <= 30:
        print("error: --duration must be in 1..30", file=sys.stderr)
        return 2
    if args.again:
        out = args.again
        res = json.load(open(os.path.join(out, "run.json")))
        res["sched"] = {int(k): v for k, v in res["sched"].items()}
    else:
        out = tempfile.mkdtemp(prefix="mnistlite-trace-")
        res = run(args, out)
        json.dump(res, open(os.path.join(out, "run.json"), "w"))
    report(res, *load(out), args.slow_ms)
    if args.keep or args.again:
        print("records in", out)
    else:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
