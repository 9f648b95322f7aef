"""The service against slow clients, oversized bodies, reloads, drains and kills, and its throughput: one
table.

Usage:
  python benchmarks/bench_robustness.py --model M.npz [--slow 64] [--slow-seconds 15] [--reps 10]
                                        [--rounds 3] [--wrk-seconds 5] [--no-baseline] [--json OUT.json]

Every case runs against the real gunicorn (``gunicorn -c service/gunicorn.conf.py service.wsgi:app``, 2
workers, 127.0.0.1, a free port). The baseline column is the same config with ``-k sync``, the worker
the service used before (its hooks stand aside there), so both columns differ only in the connection model.

- slow clients: ``--slow`` connections per instance that send nothing, trickle a request head one byte a
  second, or send a head and trickle the body; each reconnects when cut off. Meanwhile a normal client
  POSTs a digit every 50 ms on a new connection (5 s timeout): its answers, failures, p50 and p99.
- oversized bodies: 17 MiB and 64 MiB to /predict from urllib, requests (multipart and chunked), curl -F
  (Expect: 100-continue) and raw sockets (Content-Length and chunked), ``--reps`` times each: the share
  of answers that are a readable JSON 413. Plus a ~12 MiB upload (a phone photo): status and the growth
  of the worker's peak RSS.
- reload (SIGHUP), drain (SIGTERM) and kill -9 of one worker, each under load from 8 clients (half on
  keep-alive sessions): requests sent, failed, and for kill the time until a new worker exists.
  After SIGTERM the listener closes: connections refused from then on were never accepted, and are
  counted apart from failures.
- throughput without attack: wrk (benchmarks use benchmarks/wrk_multipart.lua) at c=16 and c=1, the two
  configs alternating ``--rounds`` times: ranges of requests/s and p50.

Every loop is bounded in time. Prints the CPU model and load average: the figures depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "benchmarks", ROOT):
    sys.path.insert(0, str(_p))

import machine  # noqa: E402
from loadgen import digit_png, load_wrk  # noqa: E402
from oversize_cases import MIB, oversize  # noqa: E402
from robustness_cases import photo_upload, slow_clients, start, stop, under_load  # noqa: E402


def cpu_model() -> str:
    return f"{machine.cpu_model()}, {os.cpu_count()} cores"


# --- throughput --------------------------------------------------------------------------------------

def throughput(model: Path, log_dir: Path, png_path: Path, names, rounds: int, seconds: int) -> dict:
    runs = {}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):  # alternate which config goes first
            proc, port = start(model, name, log_dir)
            try:
                for c in (16, 1):
                    w = load_wrk(f"http://127.0.0.1:{port}/predict", png_path, c, seconds)
                    w.pop("raw", None)
                    runs.setdefault((name, c), []).append(w)
                    print(f"  round {r + 1} {name:6s} c={c:2d}: {w['rps']:7.0f} req/s"
                          f"  p50 {w['p50']}  p99 {w['p99']}  non-2xx {w['non_2xx']}"
                          f"  socket errors {w['socket_errors']}"
                          f"  (load average {os.getloadavg()[0]:.1f})", flush=True)
            finally:
                stop(proc)
    return runs


def _ms(text) -> float:
    if not text:
        return float("nan")
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * f
    return float("nan")


# --- the table ---------------------------------------------------------------------------------------

def table(res: dict) -> str:
    names = res["configs"]
    head = "| case | measure | " + " | ".join(f"{n} workers" if n == "gevent" else f"{n} (baseline)"
                                              for n in names) + " | target |"
    rows = [head, "| " + " | ".join(["---"] * (len(names) + 3)) + " |"]

    def row(case, measure, cells, target=""):
        values = " | ".join(cells.get(n, "-") for n in names)
        rows.append(f"| {case} | {measure} | {values} | {target} |")

    s = res["slow"]
    row(f"{s[names[0]]['slow']} slow clients", "held (median over the run) / cut off and reconnected",
        {n: f"{s[n]['held_median']} / {s[n]['cut_off']}" for n in s})
    row("", "normal client: answered / sent", {n: f"{s[n]['requests'] - s[n]['failed']} / {s[n]['requests']}"
                                               for n in s}, "every time")
    row("", "normal client: p50 / p99", {n: f"{s[n]['p50_ms']:.1f} / {s[n]['p99_ms']:.1f} ms" for n in s},
        "p99 <= 250 ms")
    for key in res["oversize"][names[0]]:
        row("oversized body", key, {n: "{} of {}".format(*res["oversize"][n][key]) for n in res["oversize"]
                                    if key in res["oversize"][n]}, "all readable JSON 413")
    p = res["photo"]
    row("phone photo",
        f"{p['bytes'] / MIB:.1f} MiB BMP, 4000x3000: statuses, worker peak RSS before -> after",
        {names[0]: f"{p['statuses']}, {p['peak_rss_mb_before']:.0f} -> {p['peak_rss_mb_after']:.0f} MB"},
        "200")
    for e in res["events"]:
        cell = (f"before: {e['sent_before']} / {e['failed_before']}; "
                f"after: {e['sent_after']} / {e['failed_after']}")
        target = "0 failed"
        if e["event"] == "kill":
            t = e.get("replaced_after_s")
            cell += f"; new worker after {t * 1000:.0f} ms" if t is not None else "; NOT replaced in 10 s"
            target = f"failed <= in flight (<= {e['clients']}); replaced < 1 s"
        if e["event"] == "drain":
            cell = (f"before SIGTERM: {e['sent_before']} / {e['failed_before']}; "
                    f"after: {e['ok_after']} served, {e['refused_after']} refused, "
                    f"{e['failed_after']} reset; exit {e.get('exit_code')} "
                    f"after {e.get('stop_seconds', 0):.1f} s")
            target = "0 failed before SIGTERM"
        row(e["event"], f"{e['clients']} clients: sent / failed", {names[0]: cell}, target)
    for c in (16, 1):
        cells = {}
        for n in names:
            ws = res["throughput"].get((n, c), [])
            if ws:
                rps = [w["rps"] for w in ws]
                p50 = [_ms(w["p50"]) for w in ws]
                cells[n] = f"{min(rps):,.0f}-{max(rps):,.0f} req/s, p50 {min(p50):.2f}-{max(p50):.2f} ms"
        row("throughput, no attack", f"wrk -t1 -c{c}, {len(ws)} runs", cells,
            ">= 3,000 req/s" if c == 16 else "p50 <= 1 ms")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--slow", type=int, default=64, help="slow connections held (per instance)")
    ap.add_argument("--slow-seconds", type=float, default=15)
    ap.add_argument("--reps", type=int, default=10, help="uploads per client and size")
    ap.add_argument("--oversize-budget", type=float, default=240,
                    help="seconds at most for the oversize cases")
    ap.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--no-baseline", action="store_true", help="skip the sync-worker column (slow, oversize)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not args.model.is_file():
        print(f"error: no model file {args.model}", file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-robust-"))
    png = digit_png()
    png_path = tmp / "digit.png"
    png_path.write_bytes(png)
    names = ["gevent"] if args.no_baseline else ["gevent", "sync"]
    print(f"CPU: {cpu_model()}; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    res = {"configs": names, "slow": {}, "oversize": {}, "events": []}
    try:
        for n in names:
            proc, port = start(args.model, n, tmp)
            try:
                print(f"slow clients against {n} ...", flush=True)
                res["slow"][n] = slow_clients(port, png, args.slow, args.slow_seconds)
                print(f"oversized bodies against {n} ...", flush=True)
                reps = args.reps if n == "gevent" else max(2, args.reps // 3)
                res["oversize"][n] = oversize(port, reps, tmp, args.oversize_budget)
            finally:
                stop(proc)
        proc, port = start(args.model, "gevent", tmp)  # a fresh server: peak RSS from this upload alone
        try:
            res["photo"] = photo_upload(proc, port)
        finally:
            stop(proc)
        for event in ("reload", "drain", "kill"):
            print(f"{event} under load ...", flush=True)
            res["events"].append(under_load(args.model, tmp, png, event))
        print("throughput (wrk, alternating) ...", flush=True)
        res["throughput"] = throughput(args.model, tmp, png_path, ["gevent", "sync"], args.rounds,
                                       args.wrk_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nCPU: {cpu_model()}; load average {os.getloadavg()[0]:.2f} at the end\n")
    print(table(res))
    if args.json:
        res["throughput"] = {f"{n} c={c}": v for (n, c), v in res["throughput"].items()}
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
