"""Benchmark the prediction service under real gunicorn on 127.0.0.1 and print one table.

Usage:
  python scripts/bench_service.py [--model M.npz] [--workers 2] [--concurrency 16] [--duration 10]
                                  [--latency-seconds 10] [--breakdown] [--json OUT.json]

Measures, for one 28x28 PNG sent as multipart field "file" (like `curl -F file=@digit.png`):
cold start (process start to the first 200 on /readiness), p50/p99 latency at concurrency 1 (a new
connection per request: the sync worker closes after each response), requests/s at the given
concurrency (wrk with scripts/wrk_multipart.lua when installed, else a Python asyncio generator,
which is slower than the server and so understates it), and RSS/PSS per worker from /proc.
--breakdown adds in-process per-stage times of the request path. Without --model a quick
784-128-10 model is trained on MNIST (MNISTLITE_DATA_DIR). Every run is bounded in time.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BOUNDARY = "----mnistlite-bench"


def digit_png() -> bytes:
    """The service's self-test digit (a real MNIST "6") as dark ink on white, 28x28 PNG."""
    import base64
    import zlib

    import numpy as np
    from PIL import Image

    from service.predictor import SELF_TEST_DIGIT

    a = np.frombuffer(zlib.decompress(base64.b64decode(SELF_TEST_DIGIT)), np.uint8).reshape(28, 28)
    buf = io.BytesIO()
    Image.fromarray(255 - a).save(buf, format="PNG")
    return buf.getvalue()


def multipart_request(png: bytes, port: int) -> bytes:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def roundtrip(port: int, raw: bytes) -> bytes:
    """One request on a fresh connection; returns the whole response (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                return b"".join(chunks)
            chunks.append(c)


def quick_model(path: Path) -> Path:
    import mnistlite as ml

    (x, y), _ = ml.load_mnist()
    model = ml.MLP([784, 128, 10], seed=0)
    model.fit(x[:30000], y[:30000], epochs=2, batch_size=64, optimizer=ml.Adam(1e-3), verbose=False)
    return ml.save(model, path)


def start_server(model: Path, port: int, workers: int, log_path: Path) -> tuple[subprocess.Popen, float]:
    """Start gunicorn; return it and the seconds from Popen to the first 200 on /readiness."""
    env = {**os.environ, "MNISTLITE_MODEL": str(model), "MNISTLITE_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": str(workers)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ready = f"GET /readiness HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    t0 = time.perf_counter()
    proc = subprocess.Popen([gunicorn, "-c", "service/gunicorn.conf.py", "service.wsgi:app"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    while time.perf_counter() - t0 < 30:
        try:
            if roundtrip(port, ready).startswith(b"HTTP/1.1 200"):
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    proc.kill()
    raise RuntimeError(f"gunicorn did not become ready; see {log_path}")


def latency_c1(port: int, raw: bytes, seconds: float, max_requests: int = 20000) -> dict:
    times, bad = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(times) < max_requests:
        t = time.perf_counter()
        resp = roundtrip(port, raw)
        times.append(time.perf_counter() - t)
        bad += not resp.startswith(b"HTTP/1.1 200")
    times.sort()
    pct = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000  # noqa: E731
    return {"requests": len(times), "non_200": bad, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "max_ms": times[-1] * 1000, "rps": len(times) / sum(times)}


def load_wrk(url: str, png_path: Path, concurrency: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s",
                          str(ROOT / "scripts" / "wrk_multipart.lua"), url],
                         env={**os.environ, "MNISTLITE_BENCH_PNG": str(png_path)}, cwd=ROOT,
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = {q: m.group(2) for q, m in ((q, re.search(rf"\s({q})%\s+([\d.]+\w+)", out)) for q in ("50", "99")) if m}
    return {"tool": "wrk", "rps": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none", "p50": lat.get("50"), "p99": lat.get("99"),
            "raw": out}


async def _worker(port, raw, end, counts):
    while time.perf_counter() < end:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(raw)
        resp = await r.read()
        w.close()
        counts[resp.startswith(b"HTTP/1.1 200")] += 1


def load_python(port: int, raw: bytes, concurrency: int, seconds: int) -> dict:
    counts = [0, 0]
    t0 = time.perf_counter()

    async def main():
        end = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(port, raw, end, counts) for _ in range(concurrency)))

    asyncio.run(main())
    return {"tool": "python-asyncio", "rps": sum(counts) / (time.perf_counter() - t0), "requests": sum(counts),
            "non_2xx": counts[0],
            "socket_errors": "n/a", "p50": None, "p99": None}


def children(pid: int) -> list:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids) -> float:
    """User + system CPU of these processes so far (from /proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished children: wrk
    s = resource.getrusage(resource.RUSAGE_SELF)      # this process: the Python load generator
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


def memory(master: int) -> dict:
    def kb(path, key):
        try:
            m = re.search(rf"^{key}:\s+(\d+) kB", Path(path).read_text(), re.M)
            return int(m.group(1)) / 1024 if m else float("nan")
        except OSError:
            return float("nan")

    workers = children(master)
    return {"master_rss_mb": kb(f"/proc/{master}/status", "VmRSS"),
            "worker_rss_mb": [kb(f"/proc/{w}/status", "VmRSS") for w in workers],
            "worker_pss_mb": [kb(f"/proc/{w}/smaps_rollup", "Pss") for w in workers]}


def breakdown(model_path: Path, png: bytes) -> dict:
    """Per-stage CPU microseconds in this process (best of 5 runs of 1000 calls), metrics in multiprocess mode."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnistlite-bench-metrics-")
    import mnistlite as ml
    from mnistlite.data.detector import corruption_reasons
    from mnistlite.preprocess import decode_image, preprocess_image, to_float, to_mnist
    from service import parsing, resources
    from service.app import create_app
    from service.predictor import Predictor
    from service.settings import Settings

    model = ml.load(model_path)
    pred = Predictor(model)
    raw = multipart_request(png, 0)
    head, body = raw.split(b"\r\n\r\n", 1)
    ct = f"multipart/form-data; boundary={BOUNDARY}"
    img = preprocess_image(png)
    x = to_float(img[None])
    p = pred.proba(x)
    app = create_app(model, settings=Settings(), log_stream=open(os.devnull, "w"))
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/predict", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "CONTENT_TYPE": ct, "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
               "wsgi.errors": sys.stderr}

    def wsgi_call():
        e = dict(environ)
        e["wsgi.input"] = io.BytesIO(body)
        return b"".join(app(e, lambda status, headers: None))

    assert b"predicted_class" in wsgi_call()
    stages = {
        "multipart parse (falcon)": lambda: parsing.multipart_file(body, ct),
        "decode_image (Pillow)": lambda: decode_image(png),
        "to_mnist": (lambda g: lambda: to_mnist(g))(decode_image(png)),
        "corruption detector": lambda: corruption_reasons(img[None]),
        "logits + softmax": lambda: pred.proba(x),
        "answer dict + JSON": lambda: resources._media(pred.answers(p, [None])[0]),
        "metrics observe+predicted (mmap)": lambda: (app_metrics.observe("/predict", "200", 0.0003),
                                                     app_metrics.predicted([{"predicted_class": 6}])),
        "whole app call (WSGI, no server)": wsgi_call,
    }
    from service.metrics import Metrics, multiprocess_dir

    app_metrics = Metrics("bench", "v", "s", [784, 10], 10, multiprocess_dir=multiprocess_dir())
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
    ap.add_argument("--latency-seconds", type=float, default=10, help="seconds of the concurrency-1 run (<= 15)")
    ap.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    ap.add_argument("--breakdown", action="store_true", help="also time each stage in-process")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if not (1 <= args.duration <= 15 and 0 < args.latency_seconds <= 15 and args.workers >= 1):
        print("error: --duration and --latency-seconds must be in (0, 15], --workers >= 1", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-bench-"))
    try:
        if args.model and not args.model.is_file():
            print(f"error: no model file {args.model}", file=sys.stderr)
            return 2
        model = args.model or quick_model(tmp / "model.npz")
        png = digit_png()
        (tmp / "digit.png").write_bytes(png)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc, cold = start_server(model, port, args.workers, tmp / "gunicorn.log")
        try:
            raw = multipart_request(png, port)
            for _ in range(200):  # warm every worker
                roundtrip(port, raw)
            mem_before = memory(proc.pid)
            lat = latency_c1(port, raw, args.latency_seconds)
            workers = children(proc.pid)
            server0, client0 = cpu_seconds(workers), client_cpu()
            if shutil.which("wrk") and not args.python_load:
                load = load_wrk(f"http://127.0.0.1:{port}/predict", tmp / "digit.png", args.concurrency, args.duration)
            else:
                load = load_python(port, raw, args.concurrency, args.duration)
            server_us = (cpu_seconds(workers) - server0) / load["requests"] * 1e6
            client_us = (client_cpu() - client0) / load["requests"] * 1e6
            mem = memory(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stages = breakdown(model, png) if args.breakdown else None
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    fmt = lambda xs: ", ".join(f"{v:.1f}" for v in xs)  # noqa: E731
    rows = [
        ("cold start to first /readiness 200", f"{cold * 1000:.0f} ms", "<= 500 ms"),
        (f"c=1 p50 ({lat['requests']} requests)", f"{lat['p50_ms']:.2f} ms", "<= 1 ms"),
        ("c=1 p99", f"{lat['p99_ms']:.2f} ms", "<= 3 ms"),
        ("c=1 p90 / max", f"{lat['p90_ms']:.2f} / {lat['max_ms']:.1f} ms", ""),
        (f"c={args.concurrency} throughput, {args.workers} workers ({load['tool']})", f"{load['rps']:.0f} req/s",
         ">= 3000 req/s"),
        (f"c={args.concurrency} latency p50 / p99", f"{load['p50']} / {load['p99']}", ""),
        ("CPU per request: workers / load generator", f"{server_us:.0f} / {client_us:.0f} us", ""),
        (f"=> ceiling on {os.cpu_count()} cores at that CPU cost",
         f"{os.cpu_count() * 1e6 / (server_us + client_us):.0f} req/s", ""),
        ("non-200 responses (c=1, c=N)", f"{lat['non_200']}, {load['non_2xx']}", "0"),
        ("RSS per worker after warm-up / after load", f"{fmt(mem_before['worker_rss_mb'])} / {fmt(mem['worker_rss_mb'])} MB",
         "<= 60 MB"),
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
    if args.json:
        load.pop("raw", None)
        args.json.write_text(json.dumps({"cold_start_s": cold, "c1": lat, "load": load, "memory": mem,
                                         "cpu_us_per_request": {"workers": server_us, "client": client_us},
                                         "stages_us": stages}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
