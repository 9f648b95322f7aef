"""Side by side: the mnistlite service against a replica of the FastAPI + TensorFlow service it replaces.

Usage:
  python benchmarks/bench_old_service.py --old-python TF_VENV/bin/python [--model M.npz] [--duration 10]

The replica (benchmarks/old_service_app.py) needs its own venv: pip install tensorflow-cpu fastapi
python-multipart uvicorn pillow. Both services serve the same weights on 127.0.0.1 and get the same
requests (one 28x28 PNG as multipart "file"): cold start, concurrency-1 latency, wrk throughput at
concurrency 16, RSS per worker, and the answers to a text file, an empty upload and a 5000x5000 PNG.
mnistlite runs as bench_service.py runs it (gunicorn, 2 sync workers); the replica as the old service
ran (uvicorn, one worker). Each phase is bounded in time. Needs wrk.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loadgen


def start_old(python: str, weights: Path, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """Start the replica under uvicorn (one worker); return it and the seconds to its first 200 on
    /readiness."""
    env = {**os.environ, "OLD_SERVICE_WEIGHTS": str(weights), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    probe = b"GET /readiness HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    t0 = time.perf_counter()
    with open(log, "wb") as err:
        proc = subprocess.Popen([python, "-m", "uvicorn", "--app-dir", str(loadgen.ROOT / "benchmarks"),
                                 "old_service_app:app", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--log-level", "warning"],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    failure = f"the old-service replica did not start; see {log}"
    return proc, loadgen.wait_ready(proc, port, probe, t0, 180, failure, 0.05)


def bad_inputs(port: int) -> dict:
    """Status codes (and seconds) for a text file, an empty upload and a 5000x5000 PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (5000, 5000), 255).save(buf, format="PNG")
    out = {}
    for name, data in (("text file", b"hello, this is not an image\n"), ("empty upload", b""),
                       ("5000x5000 PNG", buf.getvalue())):
        t = time.perf_counter()
        resp = loadgen.roundtrip(port, loadgen.multipart_request(data, port))
        out[name] = f"{resp[9:12].decode()} in {(time.perf_counter() - t) * 1000:.0f} ms"
    return out


def measure(port: int, png_path: Path, seconds: float, master: int) -> dict:
    raw = loadgen.multipart_request(png_path.read_bytes(), port)
    for _ in range(50):
        loadgen.roundtrip(port, raw)
    lat = loadgen.latency_c1(port, raw, seconds)
    load = loadgen.load_wrk(f"http://127.0.0.1:{port}/predict", png_path, 16, int(seconds))
    return {"lat": lat, "load": load, "bad": bad_inputs(port), "rss": loadgen.memory(master)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-python", required=True,
                    help="python of a venv with tensorflow-cpu, fastapi, uvicorn")
    ap.add_argument("--model", type=Path, help="mnistlite model .npz (default: train a quick one)")
    ap.add_argument("--duration", type=int, default=10, help="seconds of each latency and load phase (<= 15)")
    args = ap.parse_args(argv)
    problem = "--duration must be in 1..15" if not 1 <= args.duration <= 15 else loadgen.preflight(args.model)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import mnistlite as ml

    tmp = Path(tempfile.mkdtemp(prefix="mnistlite-oldbench-"))
    results = {}
    try:
        model_path = args.model or loadgen.quick_model(tmp / "model.npz")
        model = ml.load(model_path)
        if getattr(model, "activation", "relu") != "relu":
            print("error: the replica builds ReLU Keras layers; pass a ReLU model", file=sys.stderr)
            return 2
        import numpy as np

        np.savez(tmp / "weights.npz", **{f"{k}{i}": a for i, (w, b) in enumerate(model.weights)
                                         for k, a in (("W", w), ("b", b))})
        png_path = tmp / "digit.png"
        png_path.write_bytes(loadgen.digit_png())
        for name in ("old replica", "mnistlite"):
            port = loadgen.free_port()
            if name == "mnistlite":
                proc, cold = loadgen.start_server(model_path, port, 2, tmp / "new.log")
            else:
                proc, cold = start_old(args.old_python, tmp / "weights.npz", port, tmp / "old.log")
            try:
                results[name] = {"cold": cold, **measure(port, png_path, args.duration, proc.pid)}
            finally:
                loadgen.stop(proc, timeout=20)
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    old, new = results["old replica"], results["mnistlite"]

    def rss(r):
        return max(r["rss"]["worker_rss_mb"] or [r["rss"]["master_rss_mb"]])

    rows = [
        ("requests/s, c=16 (wrk)", f"{old['load']['rps']:.0f}", f"{new['load']['rps']:.0f}",
         f"{new['load']['rps'] / old['load']['rps']:.0f}x"),
        ("p50 latency, c=1", f"{old['lat']['p50_ms']:.2f} ms", f"{new['lat']['p50_ms']:.2f} ms",
         f"{old['lat']['p50_ms'] / new['lat']['p50_ms']:.0f}x lower"),
        ("p99 latency, c=1", f"{old['lat']['p99_ms']:.2f} ms", f"{new['lat']['p99_ms']:.2f} ms",
         f"{old['lat']['p99_ms'] / new['lat']['p99_ms']:.0f}x lower"),
        ("RSS per worker", f"{rss(old):.0f} MB", f"{rss(new):.1f} MB", f"{rss(old) / rss(new):.0f}x less"),
        ("cold start to first 200", f"{old['cold']:.2f} s", f"{new['cold']:.2f} s", ""),
    ] + [(f"{k}", old["bad"][k], new["bad"][k], "") for k in old["bad"]]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':{width}}  {'old replica':>16}  {'mnistlite':>16}  ratio")
    for r in rows:
        print(f"{r[0]:{width}}  {r[1]:>16}  {r[2]:>16}  {r[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
