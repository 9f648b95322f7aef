"""Oversized bodies for benchmarks/bench_robustness.py: 17 and 64 MiB sent by six kinds of client, each of
which must read a JSON 413 rather than a reset. Bounded in time; 127.0.0.1 only.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

MIB = 1 << 20


def _readable_413(status, body) -> bool:
    try:
        return status == 413 and "limit" in json.loads(body)["description"]
    except (ValueError, KeyError, TypeError):
        return False


def _raw(port, head: bytes, parts) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(head)
            for p in parts:
                s.sendall(p)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return False
    head_, _, body = data.partition(b"\r\n\r\n")
    return bool(head_) and _readable_413(int(head_.split()[1]), body)


def oversize_once(client: str, port: int, size: int, path: Path) -> bool:
    import requests

    url = f"http://127.0.0.1:{port}/predict"
    try:
        if client == "urllib":
            try:
                req = urllib.request.Request(url, data=bytes(size), headers={"Content-Type": "image/png"})
                urllib.request.urlopen(req, timeout=30)
                return False
            except urllib.error.HTTPError as e:
                return _readable_413(e.code, e.read())
        if client == "requests multipart":
            r = requests.post(url, files={"file": ("photo.jpg", bytes(size), "image/jpeg")}, timeout=30)
            return _readable_413(r.status_code, r.content)
        if client == "requests chunked":
            block = bytes(MIB)
            r = requests.post(url, data=(block for _ in range(size // MIB)),
                              headers={"Content-Type": "image/png"}, timeout=30)
            return _readable_413(r.status_code, r.content)
        if client == "curl -F":
            out = subprocess.run(["curl", "-sS", "-v", "-F", f"file=@{path}", url], capture_output=True,
                                 timeout=60)
            statuses = [ln.split()[2] for ln in out.stderr.decode(errors="replace").splitlines()
                        if ln.startswith("< HTTP/")]
            return statuses == ["413"] and _readable_413(413, out.stdout)
        if client == "raw Content-Length":
            head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    f"Content-Length: {size}\r\n\r\n").encode()
            return _raw(port, head, [bytes(size)])
        if client == "raw chunked":
            head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % MIB + bytes(MIB) + b"\r\n"
            return _raw(port, head, [chunk] * (size // MIB) + [b"0\r\n\r\n"])
    except (OSError, requests.RequestException, subprocess.TimeoutExpired):
        return False
    raise ValueError(client)


CLIENTS = ["urllib", "requests multipart", "requests chunked", "curl -F", "raw Content-Length", "raw chunked"]


def oversize(port: int, reps: int, tmp: Path, budget: float) -> dict:
    out = {}
    end = time.monotonic() + budget
    for size in (17 * MIB, 64 * MIB):
        path = tmp / f"upload-{size}.bin"
        path.write_bytes(bytes(size))
        for client in CLIENTS:
            if client == "curl -F" and not shutil.which("curl"):
                continue
            ok = n = 0
            while n < reps and time.monotonic() < end:
                ok += oversize_once(client, port, size, path)
                n += 1
            out[f"{client}, {size // MIB} MiB"] = (ok, n)
        path.unlink()
    return out
