"""bench_service.py --batch N: one batch of N MNIST test digits per OIP infer request, JSON tensors against
binary tensors (the binary tensor data extension), requests alternating between the two on one server.

Each request is built once, before timing, as a client would send it (JSON: the float32 pixels as JSON
numbers, outputs as JSON; binary: a JSON header plus 4 bytes a pixel, every output binary); timed is the
round trip on a fresh connection, which includes the server reading, checking and answering the body.
The client's cost of building each body is printed beside it, and the server's stages for one batch,
timed in-process, below.
"""
from __future__ import annotations

import json
import time

import loadgen
import numpy as np

HEADER = "Inference-Header-Content-Length"


def json_body(x: np.ndarray) -> tuple[bytes, dict]:
    doc = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                       "data": x.ravel().tolist()}]}
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def binary_body(x: np.ndarray) -> tuple[bytes, dict]:
    raw = np.ascontiguousarray(x, "<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return head + raw, {HEADER: str(len(head))}


BODIES = {"JSON tensors": json_body, "binary tensors": binary_body}


def raw_request(port: int, body: bytes, headers: dict, model: str = "mnistlite") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"{head}Content-Length: {len(body)}\r\n\r\n").encode() + body


def classes(response: bytes) -> list:
    """predicted_class of a whole HTTP infer response, JSON or binary."""
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"infer failed: {response[:300]!r}")
    fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    fields = {k.lower(): v for k, v in fields.items()}
    n = int(fields.get(HEADER.lower(), len(body)))
    doc, rest, at = json.loads(body[:n]), body[n:], 0
    for t in doc["outputs"]:
        size = (t.get("parameters") or {}).get("binary_data_size")
        if t["name"] == "predicted_class":
            return t["data"] if size is None else np.frombuffer(rest[at:at + size], "<i8").tolist()
        at += size or 0
    raise RuntimeError("no predicted_class output")


def _pct(times: list, q: float) -> float:
    return sorted(times)[min(len(times) - 1, int(q * len(times)))] * 1000


def run(port: int, x: np.ndarray, seconds: float, max_pairs: int = 2000) -> dict:
    """Alternate JSON and binary requests for ``seconds``; per mode: p50/p99 ms, images/s, body size,
    client build time. Refuses to time anything unless both modes give the same classes."""
    built, build_ms = {}, {}
    for mode, make in BODIES.items():
        t = time.perf_counter()
        body, headers = make(x)
        build_ms[mode] = (time.perf_counter() - t) * 1000
        built[mode] = (raw_request(port, body, headers), len(body))
    answers = {mode: classes(loadgen.roundtrip(port, raw)) for mode, (raw, _) in built.items()}
    if len({json.dumps(a) for a in answers.values()}) != 1:
        raise RuntimeError("JSON and binary tensors gave different classes")
    for raw, _ in built.values():  # warm both workers on both paths
        for _ in range(4):
            loadgen.roundtrip(port, raw)
    times = {mode: [] for mode in built}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(times["JSON tensors"]) < max_pairs:
        for mode, (raw, _) in built.items():
            t = time.perf_counter()
            loadgen.roundtrip(port, raw)
            times[mode].append(time.perf_counter() - t)
    return {mode: {"requests": len(ts), "p50_ms": _pct(ts, 0.5), "p99_ms": _pct(ts, 0.99),
                   "images_per_s": len(x) * len(ts) / sum(ts), "body_bytes": built[mode][1],
                   "client_build_ms": build_ms[mode]} for mode, ts in times.items()}


def breakdown(x: np.ndarray, model_path) -> dict:
    """In-process CPU ms (best of 5) of the server's stages for one batch, JSON against binary."""
    import mnistlite as ml
    from service.parsing import pixels
    from service.predictor import Predictor

    body = json_body(x)[0]
    data = json.loads(body)["inputs"][0]["data"]
    raw = np.ascontiguousarray(x, "<f4").tobytes()
    shape = list(x.shape)
    predictor = Predictor(ml.load(model_path))
    x32 = pixels(data, "data", len(x), shape=shape)
    stages = {
        "json.loads of the JSON body": lambda: json.loads(body),
        "JSON data -> checked float32 array": lambda: pixels(data, "data", len(x), shape=shape),
        "binary bytes -> checked float32 array": lambda: pixels(np.frombuffer(raw, "<f4").reshape(shape),
                                                                "data", len(x), shape=shape),
        "model + detector + answers (either)": lambda: predictor.predict(x32),
    }
    out = {}
    for name, fn in stages.items():
        best = float("inf")
        for _ in range(5):
            t = time.thread_time()  # CPU time: other processes on the machine do not count
            fn()
            best = min(best, time.thread_time() - t)
        out[name] = best * 1000
    return out


def report(results: dict, n: int) -> str:
    """The batch table, and the JSON/binary ratio of p50s."""
    lines = [f"{'OIP infer, ' + str(n) + ' images a request, c=1':34} {'p50':>9} {'p99':>9} {'images/s':>9} "
             f"{'body':>9} {'client build':>13}"]
    for mode, r in results.items():
        lines.append(f"{mode + ' (' + str(r['requests']) + ' requests)':34} {r['p50_ms']:7.1f}ms "
                     f"{r['p99_ms']:7.1f}ms {r['images_per_s']:9.0f} {r['body_bytes'] / 1e6:7.2f}MB "
                     f"{r['client_build_ms']:11.1f}ms")
    j, b = results["JSON tensors"], results["binary tensors"]
    lines.append(f"binary tensors cut the p50 of a {n}-image batch {j['p50_ms'] / b['p50_ms']:.1f}x "
                 f"(target >= 2x); p99 {j['p99_ms'] / b['p99_ms']:.1f}x")
    return "\n".join(lines)
