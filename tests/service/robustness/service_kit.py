"""Helpers of the robustness tests: the service under real gunicorn without its access log, and raw HTTP
read from a socket."""
from __future__ import annotations

import re
import socket

import pytest


def start(gunicorn, model_path, **env):
    """The service under gunicorn without its access log (these tests send thousands of requests)."""
    return gunicorn(model_path, MNISTLITE_ACCESS_LOG="0", **env)


def closed_by_server(s: socket.socket, patience: float = 15) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    s.settimeout(patience)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail(f"the server kept the connection open; it sent {data[:200]!r}")
    return data


def read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"(?i)content-length: *(\d+)", data.partition(b"\r\n\r\n")[0]).group(1)):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
