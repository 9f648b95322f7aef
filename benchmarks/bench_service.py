"""Benchmark the prediction service under real gunicorn on 127.0.0.1 and print one table.

Usage:
  python benchmarks/bench_service.py [--model M.npz] [--workers 2] [--concurrency 16] [--duration 10]
                                  [--latency-seconds 10] [--breakdown] [--json OUT.json]
  python benchmarks/bench_service.py --batch 256 [--model M.npz] [--latency-seconds 10]

Measures, for one 28x28 PNG sent as multipart field "file" (like `curl -F file=@digit.png`):
cold start (process start to the first 200 on /readiness), p50/p99 latency at concurrency 1 (a new
connection per request), p50/p99 and worker CPU per request at concurrency 1 on one kept-alive
connection (wrk), requests/s and p50/p99 at the given concurrency (wrk with benchmarks/wrk_multipart.lua
when installed, else a Python asyncio generator, which is slower than the server and so understates it),
and RSS/PSS per worker from /proc.
--breakdown adds in-process per-stage times of the request path. Without --model a quick
784-128-10 model is trained on MNIST (MNISTLITE_DATA_DIR). Every run is bounded in time.
--batch N measures instead OIP infer with N MNIST test digits a request, JSON tensors against binary
tensors, alternating (benchmarks/batch_tensors.py).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ is sys.path[0] when run as a script: the load generator and /proc readers live next door.
import batch_tensors
import loadgen


def breakdown(model_path: Path, png: bytes) -> dict:
    """Per-stage CPU microseconds in this process (best of 5 runs of 1000 calls), metrics in multiprocess
    mode."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnistlite-bench-metrics-")
    import mnistlite as ml
    from mnistlite.images.decode import decode_image
    from mnistlite.images.preprocess import preprocess_image, to_float, to_mnist
    from mnistlite.quality.detector import corruption_reasons
    from mnistlite.quality.honest import judge
    from service import parsing, resources
    from service.app import create_app
    from service.predictor import Predictor
    from service.settings import Settings

    model = ml.load(model_path)
    pred = Predictor(model)
    body = loadgen.multipart_body(png)
    ct = loadgen.MULTIPART_TYPE
    img = preprocess_image(png)
    x = to_float(img[None])
    verdict = judge(pred.model, img[None])
    app = create_app(pred, settings=Settings(), log_stream=open(os.devnull, "w"))
    environ = loadgen.predict_environ(body, ct)

    def wsgi_call():
        e = dict(environ)
        e["wsgi.input"] = io.BytesIO(body)
        return b"".join(app(e, lambda status, headers: None))

    assert b"predicted_class" in wsgi_call()
    stages = {
        "multipart parse (falcon)": lambda: parsing.multipart_file(body, ct),
        "decode_image (libspng for PNG)": lambda: decode_image(png),
        "to_mnist": (lambda g: lambda: to_mnist(g))(decode_image(png)),
        "corruption detector": lambda: corruption_reasons(img[None]),
        "logits + calibrated softmax": lambda: pred.proba(x),
        "judge (detector + softmax + reject rule)": lambda: judge(pred.model, img[None]),
        "answer dict + JSON": lambda: resources.media_json(pred.answers(verdict)[0]),
        "metrics observe+predicted (mmap)": lambda: (app_metrics.observe("/predict", "200", 0.0003),
                                                     app_metrics.predicted(one_answer)),
        "whole app call (WSGI, no server)": wsgi_call,
    }
    from service.prometheus_metrics import Metrics, multiprocess_dir

    app_metrics = Metrics("bench", "v", "s", [784, 10], 10, multiprocess_dir=multiprocess_dir())
    app_metrics.watch(pred)   # the drift window too, when the model file holds a training reference
    one_answer = [{"predicted_class": 6, "confidence": 0.97}]
    out = {}
    for name, fn in stages.items():
        for _ in range(100):
            fn()
        best = float("inf")
        for _ in range(5):
            t = time.thread_time()  # CPU time: other processes on the machine do not count
            for _ in range(1000):
                fn()
            best = min(best, (time.thread_time() - t) / 1000 * 1e6)
        out[name] = round(best, 1)
    shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="model .npz (default: train a quick one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=int, default=10, help="seconds of the concurrency run (<= 15)")
    ap.add_argument("--latency-seconds", type=float, default=10,
                    help="seconds of the concurrency-1 run (<= 15)")
    ap.add_argument("--python-load", action="store_true",
                    help="use the Python load generator even if wrk exists")
    ap.add_argument("--breakdown", action="store_true", help="also time each stage in-process")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--batch", type=int, metavar="N",
                    help="OIP batches of N digits: JSON tensors against binary tensors, alternating")
    args = ap.parse_args(argv)
    if args.batch is not None:
        return batch_mode(args)
    if not (1 <= args.duration <= 15 and 0 < args.latency_seconds <= 15 and args.workers >= 1):
        print("error: --duration and --latency-seconds must be in (0, 15], --workers >= 1", file=sys.stderr)
        return 2
    png = loadgen.digit_png()
    code, m, stages = _served(args, lambda *served: _measure_uploads(args, png, *served),
                              lambda model: breakdown(model, png) if args.breakdown else None)
    if code:
        return code
    _print_uploads(args, m, stages)
    if args.json:
        m["load"].pop("raw", None)
        if m["c1_keepalive"]:
            m["c1_keepalive"].pop("raw", None)
        m.pop("memory_before")
        args.json.write_text(json.dumps({**m, "stages_us": stages}, indent=2))
    return 0


def _measure_uploads(args, png: bytes, port: int, proc, cold: float, tmp: Path) -> dict:
    """One digit PNG as a multipart upload: warm-up, concurrency-1 latency, then load at --concurrency."""
    (tmp / "digit.png").write_bytes(png)
    raw = loadgen.multipart_request(png, port)
    for _ in range(200):  # warm every worker
        loadgen.roundtrip(port, raw)
    mem_before = loadgen.memory(proc.pid)
    lat = loadgen.latency_c1(port, raw, args.latency_seconds)
    workers = loadgen.children(proc.pid)
    url = f"http://127.0.0.1:{port}/predict"
    keep = None
    if shutil.which("wrk") and not args.python_load:
        cpu0 = loadgen.cpu_seconds(workers)
        keep = loadgen.load_wrk(url, tmp / "digit.png", 1, max(1, round(args.latency_seconds)))
        keep["worker_us"] = (loadgen.cpu_seconds(workers) - cpu0) / keep["requests"] * 1e6
    server0, client0 = loadgen.cpu_seconds(workers), loadgen.client_cpu()
    if keep is not None:
        load = loadgen.load_wrk(url, tmp / "digit.png", args.concurrency, args.duration)
    else:
        load = loadgen.load_python(port, raw, args.concurrency, args.duration)
    server_us = (loadgen.cpu_seconds(workers) - server0) / load["requests"] * 1e6
    client_us = (loadgen.client_cpu() - client0) / load["requests"] * 1e6
    return {"cold_start_s": cold, "c1": lat, "c1_keepalive": keep, "load": load, "memory_before": mem_before,
            "memory": loadgen.memory(proc.pid),
            "cpu_us_per_request": {"workers": server_us, "client": client_us}}


def _print_uploads(args, m: dict, stages) -> None:
    cold, lat, load, mem_before, mem = m["cold_start_s"], m["c1"], m["load"], m["memory_before"], m["memory"]
    keep = m["c1_keepalive"]
    server_us, client_us = m["cpu_us_per_request"]["workers"], m["cpu_us_per_request"]["client"]

    def fmt(xs):
        return ", ".join(f"{v:.1f}" for v in xs)

    rows = [
        ("cold start to first /readiness 200", f"{cold * 1000:.0f} ms", "<= 500 ms"),
        (f"c=1 p50 ({lat['requests']} requests)", f"{lat['p50_ms']:.2f} ms", "<= 1 ms"),
        ("c=1 p99", f"{lat['p99_ms']:.2f} ms", "<= 3 ms"),
        ("c=1 p90 / max", f"{lat['p90_ms']:.2f} / {lat['max_ms']:.1f} ms", ""),
    ] + ([
        (f"c=1 keep-alive (wrk) p50 / p99 ({keep['requests']} requests)", f"{keep['p50']} / {keep['p99']}",
         "p50 <= 0.4 ms"),
        ("c=1 keep-alive worker CPU per request", f"{keep['worker_us']:.0f} us", ""),
    ] if keep else []) + [
        (f"c={args.concurrency} throughput, {args.workers} workers ({load['tool']})",
         f"{load['rps']:.0f} req/s", ">= 3000 req/s"),
        (f"c={args.concurrency} latency p50 / p99", f"{load['p50']} / {load['p99']}", "p99 <= 10 ms"),
        ("CPU per request: workers / load generator", f"{server_us:.0f} / {client_us:.0f} us", ""),
        (f"=> ceiling on {os.cpu_count()} cores at that CPU cost",
         f"{os.cpu_count() * 1e6 / (server_us + client_us):.0f} req/s", ""),
        ("non-200 responses (c=1, c=N); socket errors (c=N)",
         f"{lat['non_200']}, {load['non_2xx']}; {load['socket_errors']}", "0; none"),
        ("RSS per worker after warm-up / after load",
         f"{fmt(mem_before['worker_rss_mb'])} / {fmt(mem['worker_rss_mb'])} MB", "<= 60 MB"),
        ("PSS per worker (shared pages split)", f"{fmt(mem['worker_pss_mb'])} MB", ""),
        ("master RSS", f"{mem['master_rss_mb']:.1f} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':{width}}  {'value':>24}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:>24}  {target}")
    if stages:
        print("\nin-process stage CPU times (us per call, best of 5 x 1000):")
        for name, us in stages.items():
            print(f"  {name:36} {us:8.1f}")


def _served(args, measure, after):
    """Serve --model (or a quick model trained for the run) under gunicorn on a free 127.0.0.1 port, call
    ``measure(port, proc, cold_start_s, tmp)`` while it serves and ``after(model)`` once it has stopped;
    returns (exit code, what measure returned, what after returned), the reason on stderr when not 0."""
    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-bench-"))
    try:
        problem = loadgen.preflight(args.model, need_wrk=False)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2, None, None
        model = args.model or loadgen.quick_model(tmp / "model.npz")
        port = loadgen.free_port()
        proc, cold = loadgen.start_server(model, port, args.workers, tmp / "gunicorn.log")
        try:
            measured = measure(port, proc, cold, tmp)
        finally:
            loadgen.stop(proc)
        return 0, measured, after(model)
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1, None, None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def batch_mode(args) -> int:
    """--batch N: OIP infer with N MNIST test digits a request, JSON tensors against binary tensors."""
    if not (1 <= args.batch <= 1000 and 0 < args.latency_seconds <= 15 and args.workers >= 1):
        print("error: --batch must be in 1..1000, --latency-seconds in (0, 15], --workers >= 1",
              file=sys.stderr)
        return 2
    import mnistlite as ml

    x = ml.load_mnist()[1][0][:args.batch]
    code, results, stages = _served(args, lambda port, *_: batch_tensors.run(port, x, args.latency_seconds),
                                    lambda model: batch_tensors.breakdown(x, model) if args.model else None)
    if code:
        return code
    print(batch_tensors.report(results, len(x)))
    if stages:
        print(f"\nin-process CPU per {len(x)}-image batch (ms, best of 5):")
        for name, ms in stages.items():
            print(f"  {name:40} {ms:7.2f}")
    if args.json:
        args.json.write_text(json.dumps({"batch": len(x), "results": results, "stages_ms": stages}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
