"""What the service benchmarks share: the benchmark digit and a quick model, request building and one-shot
round trips, gunicorn start with cold-start timing, concurrency-1 latency sampling, wrk (with
benchmarks/wrk_multipart.lua) or a Python asyncio fallback for throughput, and /proc readers for CPU time
and RSS/PSS of the master and its workers. Every run is bounded in time; servers bind 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # mnistlite and service, when run from a checkout
    sys.path.insert(0, str(ROOT))
from mnistlite.cli.proc import free_port  # noqa: E402,F401  (the benchmarks' port helper)

BOUNDARY = "----mnistlite-bench"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def digit_png() -> bytes:
    """The service's self-test digit (a real MNIST "6") as dark ink on white, 28x28 PNG."""
    import base64
    import io
    import zlib

    import numpy as np
    from PIL import Image

    from service.predictor import SELF_TEST_DIGIT

    a = np.frombuffer(zlib.decompress(base64.b64decode(SELF_TEST_DIGIT)), np.uint8).reshape(28, 28)
    buf = io.BytesIO()
    Image.fromarray(255 - a).save(buf, format="PNG")
    return buf.getvalue()


def quick_model(path: Path) -> Path:
    """Train a 784-128-10 model briefly on MNIST (MNISTLITE_DATA_DIR) and save it to ``path``."""
    import mnistlite as ml

    (x, y), _ = ml.load_mnist()
    model = ml.MLP([784, 128, 10], seed=0)
    model.fit(x[:30000], y[:30000], epochs=2, batch_size=64, optimizer=ml.Adam(1e-3))
    return ml.save(model, path)


def multipart_body(data: bytes, field: str = "file") -> bytes:
    """``data`` as the one file field of a multipart/form-data body (content type ``MULTIPART_TYPE``)."""
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def predict_environ(body: bytes, content_type: str, query: str = "") -> dict:
    """A WSGI environ for an in-process POST /predict of ``body``, without ``wsgi.input`` (add a fresh
    ``io.BytesIO(body)`` for each call)."""
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/predict", "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": sys.stderr}


def multipart_request(png: bytes, port: int) -> bytes:
    """A whole HTTP/1.1 POST /predict carrying png as multipart field "file", as raw bytes (one per
    connection)."""
    body = multipart_body(png)
    # Connection: close so that a keep-alive server (the old-service replica) ends the exchange too.
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\nConnection: close\r\n"
            f"Content-Type: {MULTIPART_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body




def preflight(model: Path | None, *, need_wrk: bool = True) -> str | None:
    """Why a benchmark cannot start (wrk missing, no such model file), or None."""
    if need_wrk and not shutil.which("wrk"):
        return "wrk is not installed (apt-get install wrk)"
    if model and not model.is_file():
        return f"no model file {model}"
    return None


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a server (graceful stop), SIGKILL it if it is still there after ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def start_server(model: Path, port: int, workers: int, log_path: Path, *, app: str = "service.wsgi:app",
                 extra_env: dict | None = None, probe: bytes | None = None,
                 args=()) -> tuple[subprocess.Popen, float]:
    """Start gunicorn serving ``app``; return it and the seconds from Popen to the first 200 on ``probe``.

    ``probe`` is a whole raw request (default GET /readiness); ``extra_env`` is added to the environment,
    ``args`` to gunicorn's command line (e.g. ``["-k", "sync"]``).
    """
    env = {**os.environ, "MNISTLITE_MODEL": str(model), "MNISTLITE_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": str(workers), **(extra_env or {})}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ready = probe or ready_probe(port)
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    t0 = time.perf_counter()
    path = [] if app == "service.wsgi:app" else ["--pythonpath", str(ROOT / "benchmarks")]  # bench-only apps
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([gunicorn, "-c", "service/gunicorn.conf.py", *args, *path, app], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
    return proc, wait_ready(proc, port, ready, t0, 30, f"gunicorn did not become ready; see {log_path}")


def ready_probe(port: int) -> bytes:
    """A raw GET /readiness. Connection: close, or a keep-alive worker holds the connection until its idle
    deadline."""
    return (f"GET /readiness HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").encode()


def wait_ready(proc: subprocess.Popen, port: int, probe: bytes, t0: float, limit: float, failure: str,
               poll: float = 0.002) -> float:
    """Seconds from ``t0`` to the first 200 answer to ``probe``; kill ``proc`` and raise ``failure`` if
    none."""
    while time.perf_counter() - t0 < limit:
        try:
            if roundtrip(port, probe).startswith(b"HTTP/1.1 200"):
                return time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(poll)
    proc.kill()
    raise RuntimeError(failure)


def latency_c1(port: int, raw: bytes, seconds: float, max_requests: int = 20000) -> dict:
    """Sequential requests for `seconds`: count, non-200s, p50/p90/p99/max in ms and requests/s."""
    times, bad = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(times) < max_requests:
        t = time.perf_counter()
        resp = roundtrip(port, raw)
        times.append(time.perf_counter() - t)
        bad += not resp.startswith(b"HTTP/1.1 200")
    times.sort()

    def pct(q):
        return times[min(len(times) - 1, int(q * len(times)))] * 1000

    return {"requests": len(times), "non_200": bad, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "max_ms": times[-1] * 1000, "rps": len(times) / sum(times)}


def load_wrk(url: str, png_path: Path, concurrency: int, seconds: int) -> dict:
    """Run wrk with wrk_multipart.lua and parse its report (requests/s, totals, errors, p50/p99)."""
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s",
                          str(ROOT / "benchmarks" / "wrk_multipart.lua"), url],
                         env={**os.environ, "MNISTLITE_BENCH_PNG": str(png_path)}, cwd=ROOT,
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    found = ((q, re.search(rf"\s({q})%\s+([\d.]+\w+)", out)) for q in ("50", "99"))
    lat = {q: m.group(2) for q, m in found if m}
    return {"tool": "wrk", "rps": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none", "p50": lat.get("50"),
            "p99": lat.get("99"),
            "raw": out}


async def _worker(port, raw, end, counts):
    while time.perf_counter() < end:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(raw)
        resp = await r.read()
        w.close()
        counts[resp.startswith(b"HTTP/1.1 200")] += 1


def load_python(port: int, raw: bytes, concurrency: int, seconds: int) -> dict:
    """The wrk fallback: `concurrency` asyncio connections for `seconds`; slower than the server."""
    counts = [0, 0]
    t0 = time.perf_counter()

    async def main():
        end = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(port, raw, end, counts) for _ in range(concurrency)))

    asyncio.run(main())
    return {"tool": "python-asyncio", "rps": sum(counts) / (time.perf_counter() - t0),
            "requests": sum(counts),
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
    """RSS of the gunicorn master and RSS/PSS of each worker, in MB (nan when /proc can't say)."""
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
