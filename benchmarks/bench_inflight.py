"""Many request bodies just under 1 MiB that stall: worker RSS before, at peak, and after the clients go.

Usage:
  python benchmarks/bench_inflight.py --model M.npz [--connections 400] [--body-bytes 1044480]
                                      [--sent-fraction 0.99] [--hold 8] [--settle 5] [--photos 4]
                                      [--json OUT.json]

Starts the real service (``gunicorn -c service/gunicorn.conf.py``, 2 workers, 127.0.0.1, a free port,
body deadline ``--hold`` + 10 s so no staller is cut off while held). Opens ``--connections`` connections,
each sending a POST /predict head with ``Content-Length: --body-bytes`` and then that fraction of the body,
then nothing (after 20 digits, so that the baseline counts what a worker's first requests load once).
Samples every worker's RSS every 0.2 s while they are held for ``--hold`` s, closes them all,
waits ``--settle`` s, and samples again; meanwhile a normal client POSTs a digit every 0.2 s and counts
its answers. Then ``--photos`` uploads of a ~12 MiB BMP (one at a time; a PNG that big is over the
decode budget), every worker's peak RSS over the whole run (VmHWM), and the master's RSS. Prints the
CPU model and load average: the figures depend on the machine. Bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "benchmarks", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import loadgen  # noqa: E402
from bench_robustness import cpu_model  # noqa: E402


def _rss(pid: int, key: str = "VmRSS") -> float:
    """A process's resident memory in MB (``VmHWM``: its peak so far)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def photo_uploads(port: int, n: int) -> list[str]:
    """``n`` uploads of a ~12 MiB BMP (a phone photo's size), one after another: read, not refused."""
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="BMP")
    raw = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/bmp\r\nConnection: close\r\n"
           f"Content-Length: {len(buf.getvalue())}\r\n\r\n").encode() + buf.getvalue()
    out = []
    for _ in range(n):
        answer = loadgen.roundtrip(port, raw)
        out.append(answer.split(b" ", 2)[1].decode() if answer else "closed")
    return out


def stallers(port: int, n: int, size: int, sent: int, deadline: float) -> list[socket.socket]:
    """``n`` connections that each send a head for ``size`` bytes and ``sent`` of them, then stall."""
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    body = bytes(sent)
    socks = []
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append([s, head + body])
    # Send round-robin without blocking: a server that stops reading must not stall this script.
    while time.monotonic() < deadline and any(rest for _, rest in socks):
        for item in socks:
            s, rest = item
            if rest:
                try:
                    item[1] = rest[s.send(rest[:256 << 10]):]
                except BlockingIOError:
                    pass
                except OSError:
                    item[1] = b""
        time.sleep(0.001)
    return [s for s, _ in socks]


def _post(png: bytes) -> bytes:
    """The bytes of one POST /predict of ``png`` on a connection closed after the answer."""
    return (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
            f"Content-Length: {len(png)}\r\n\r\n").encode() + png


def normal_client(port: int, png: bytes, stop: threading.Event, out: dict) -> None:
    raw = _post(png)
    while not stop.is_set():
        t = time.perf_counter()
        try:
            answer = loadgen.roundtrip(port, raw)
            status = answer.split(b" ", 2)[1].decode() if answer else "closed"
        except OSError as e:
            status = type(e).__name__
        out.setdefault(status, []).append(time.perf_counter() - t)
        stop.wait(0.2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--connections", type=int, default=400)
    p.add_argument("--body-bytes", type=int, default=(1 << 20) - 4096)
    p.add_argument("--sent-fraction", type=float, default=0.99)
    p.add_argument("--hold", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=5.0)
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    if not a.model.is_file():
        p.error(f"--model {a.model} is not a file; train one with scripts/train.py")
    port = loadgen.free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-inflight-{port}.log"
    env = {"MNISTLITE_ACCESS_LOG": "0", "MNISTLITE_BODY_TIMEOUT": str(a.hold + 10),
           "MNISTLITE_WORKER_CONNECTIONS": str(max(1000, a.connections + 50))}
    proc, _ = loadgen.start_server(a.model, port, 2, log, extra_env=env)
    result = {"cpu": cpu_model(), "connections": a.connections, "body_bytes": a.body_bytes}
    try:
        t_end = time.monotonic() + 10
        while len(loadgen.children(proc.pid)) < 2 and time.monotonic() < t_end:
            time.sleep(0.05)
        workers = loadgen.children(proc.pid)
        result["baseline_rss_mb"] = [round(_rss(w), 1) for w in workers]
        stop, answers = threading.Event(), {}
        client = threading.Thread(target=normal_client, args=(port, loadgen.digit_png(), stop, answers))
        client.start()
        # The baseline after each worker's first requests (imports and caches a request path fills once).
        warm = [loadgen.roundtrip(port, _post(loadgen.digit_png())) for _ in range(20)]
        result["warm_rss_mb"] = [round(_rss(w), 1) for w in workers]
        result["warm_answers"] = sum(b" 200 " in (x or b"")[:20] for x in warm)
        t0 = time.monotonic()
        socks = stallers(port, a.connections, a.body_bytes, int(a.body_bytes * a.sent_fraction),
                         t0 + a.hold)
        result["send_seconds"] = round(time.monotonic() - t0, 2)
        peak = [0.0] * len(workers)
        while time.monotonic() < t0 + a.hold:
            peak = [max(p, _rss(w)) for p, w in zip(peak, workers, strict=True)]
            time.sleep(0.2)
        result["peak_rss_mb"] = [round(x, 1) for x in peak]
        for s in socks:
            s.close()
        time.sleep(a.settle)
        stop.set()
        client.join(15)
        result["after_rss_mb"] = [round(_rss(w), 1) for w in workers]
        result["same_workers"] = loadgen.children(proc.pid) == workers
        result["normal_client"] = {k: {"n": len(v), "max_s": round(max(v), 3)} for k, v in answers.items()}
        result["photo_answers"] = photo_uploads(port, a.photos)
        result["worker_peak_mb"] = [round(_rss(w, "VmHWM"), 1) for w in workers]
        result["master_rss_mb"] = round(_rss(proc.pid), 1)
    finally:
        loadgen.stop(proc)
    result["load_average"] = os.getloadavg()
    for k, v in result.items():
        print(f"{k:16s} {v}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
