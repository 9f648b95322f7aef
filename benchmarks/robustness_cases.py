"""The cases of benchmarks/bench_robustness.py: a gunicorn to start and stop, slow clients, a phone-photo
upload, and reload/drain/kill under load (oversized bodies: oversize_cases.py). Every loop is bounded in time;
127.0.0.1 only.
"""
from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "benchmarks", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import loadgen  # noqa: E402

# The two connection models compared: the repository's config, and the same with the old sync worker.
CONFIGS = {"gevent": [], "sync": ["-k", "sync"]}


def start(model: Path, name: str, log_dir: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn with config ``name`` (2 workers, no access log), ready and with both workers up."""
    port = loadgen.free_port()
    proc, _ = loadgen.start_server(model, port, 2, log_dir / f"{name}-{port}.log",
                                   extra_env={"MNISTLITE_ACCESS_LOG": "0"}, args=CONFIGS[name])
    deadline = time.monotonic() + 10
    while len(workers(proc)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    loadgen.stop(proc, timeout=40)


def workers(proc) -> set:
    return set(loadgen.children(proc.pid))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


# --- slow clients ------------------------------------------------------------------------------------

def slow_clients(port: int, png: bytes, n: int, seconds: float) -> dict:
    end = time.monotonic() + seconds
    held, cuts, lock = [0], [0], threading.Lock()
    heads = [b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000,
             b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 4000\r\n\r\n"]

    def slow(i):
        kind = i % 3
        while time.monotonic() < end:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            with lock:
                held[0] += 1
            try:
                if kind == 2:
                    s.sendall(heads[2])
                data = heads[1] if kind == 1 else b"x" * 4000
                for k in range(len(data)):
                    if time.monotonic() > end:
                        break
                    if kind == 0:  # idle: only watch for the server closing
                        try:
                            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                                raise ConnectionResetError
                        except BlockingIOError:
                            pass
                    else:
                        s.send(data[k:k + 1])
                    time.sleep(1)
            except OSError:
                with lock:
                    cuts[0] += 1
            finally:
                with lock:
                    held[0] -= 1
                s.close()

    threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--b--\r\n")
    times, failed, samples = [], 0, []
    while time.monotonic() < end - 0.5:
        samples.append(held[0])
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/predict", body, {"Content-Type": "multipart/form-data; boundary=b"})
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        times.append(time.perf_counter() - t0)
        failed += not ok
        time.sleep(0.05)
    for t in threads:
        t.join(5)
    return {"slow": n, "held_median": pct(samples, 0.5), "held_min": min(samples, default=0),
            "cut_off": cuts[0], "requests": len(times), "failed": failed, "p50_ms": pct(times, 0.5) * 1e3,
            "p99_ms": pct(times, 0.99) * 1e3}


# --- a phone photo -----------------------------------------------------------------------------------

def photo_upload(proc, port: int) -> dict:
    """A ~12 MiB BMP (noise, 4000x3000): status, and each worker's peak RSS before/after. BMP, because
    its decoding fits the decode budget, so only the body limit could refuse it: as in the robustness test."""
    import numpy as np
    import requests
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="BMP")

    def hwm():
        out = {}
        for w in workers(proc):
            for line in Path(f"/proc/{w}/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    out[w] = int(line.split()[1]) / 1024
        return out

    before = hwm()
    statuses = [requests.post(f"http://127.0.0.1:{port}/predict", timeout=60,
                              files={"file": ("photo.bmp", buf.getvalue(), "image/bmp")}).status_code
                for _ in range(2)]
    after = hwm()
    return {"bytes": len(buf.getvalue()), "statuses": statuses,
            "peak_rss_mb_before": max(before.values()), "peak_rss_mb_after": max(after.values())}


# --- reload, drain, kill -----------------------------------------------------------------------------

def _client(port, png, stop_event, log, keep_alive):
    import requests

    session = requests.Session() if keep_alive else requests
    while not stop_event.is_set():
        t0 = time.monotonic()
        try:
            r = session.post(f"http://127.0.0.1:{port}/predict", data=png,
                             headers={"Content-Type": "image/png"}, timeout=15)
            log.append(("ok" if r.status_code == 200 else f"status {r.status_code}", t0))
        except requests.ConnectionError as e:
            refused = "refused" in str(e)
            log.append(("refused" if refused else "failed", t0))
            if refused:
                time.sleep(0.01)  # nothing listens any more: do not spin
        except requests.RequestException:
            log.append(("failed", t0))


def under_load(model: Path, log_dir: Path, png: bytes, event: str, clients: int = 8) -> dict:
    proc, port = start(model, "gevent", log_dir)
    stop_event, log = threading.Event(), []
    threads = [threading.Thread(target=_client, args=(port, png, stop_event, log, i % 2 == 0), daemon=True)
               for i in range(clients)]
    result = {"event": event}
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        before = workers(proc)
        t_event = time.monotonic()
        if event == "reload":
            proc.send_signal(signal.SIGHUP)
            time.sleep(3)
        elif event == "drain":
            proc.send_signal(signal.SIGTERM)
            proc.wait(40)
            result["exit_code"] = proc.returncode
            result["stop_seconds"] = time.monotonic() - t_event
        else:
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            replaced = None
            while time.monotonic() - t_event < 10:
                now = workers(proc)
                if len(now) == len(before) and victim not in now:
                    replaced = time.monotonic() - t_event
                    break
                time.sleep(0.002)
            result["replaced_after_s"] = replaced
            time.sleep(2)
        stop_event.set()
        for t in threads:
            t.join(20)
        if event == "reload":
            result["workers_replaced"] = workers(proc).isdisjoint(before)
    finally:
        stop_event.set()
        stop(proc)
    # Requests started before the event were accepted (or queued) by a running server: none may fail
    # (for kill: only those in flight on the killed worker). After SIGTERM the listener closes, so new
    # connections are refused, or reset if they were still in the kernel's accept queue: a Kubernetes
    # preStop delay keeps new connections away from a stopping pod, so these are counted apart.
    before = [k for k, t in log if t < t_event]
    after = [k for k, t in log if t >= t_event]
    result.update(sent_before=len(before), failed_before=len(before) - before.count("ok"),
                  sent_after=len(after), ok_after=after.count("ok"), refused_after=after.count("refused"),
                  failed_after=len(after) - after.count("ok") - after.count("refused"), clients=clients)
    return result


