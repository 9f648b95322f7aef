"""Fixtures of the service tests: a fake predictor and apps around it (no MNIST, no training), image and
multipart makers, the JSON-error check, and the service under the repo's real gunicorn config."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from falcon import testing
from PIL import Image

from mnistlite.cli.proc import free_port
from service.app import create_app, create_apps
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
BOUNDARY = "----mnistlite-test-boundary"


# ---- a fake predictor -----------------------------------------------------------------------------

class FakePredictor:
    """A ``service.predictor.ServingModel`` without a model: the class is the count of inked pixels (> 0.5)
    modulo 10, at confidence 0.91. ``seen`` keeps every batch it was given as float32 (n, 784), so a
    test can check what reached the model; ``failure`` makes its self-test fail (the app is not ready).
    """

    version = "fa4e0000fa4e"
    sha256 = "fa4e" * 16
    layer_sizes = [784, 10]
    n_classes = 10

    def __init__(self, failure: str | None = None):
        self.failure, self.seen = failure, []

    def answer(self, row: np.ndarray) -> dict:
        """The answer for one float (784,) input."""
        c = int((row > 0.5).sum()) % self.n_classes
        probabilities = [0.91 if k == c else 0.01 for k in range(self.n_classes)]
        return {"predicted_class": c, "confidence": 0.91, "probabilities": probabilities,
                "model_version": self.version, "abstain": False}

    def predict(self, x: np.ndarray) -> list:
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 784, (x.dtype, x.shape)
        self.seen.append(x)
        return [self.answer(row) for row in x]

    def predict_images(self, images: np.ndarray, no_ink=None) -> list:
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28), (images.dtype, images.shape)
        return self.predict(images.reshape(len(images), 784).astype(np.float32) / 255)

    def describe(self) -> dict:
        return {"version": self.version, "sha256": self.sha256, "layer_sizes": self.layer_sizes,
                "activation": "fake", "created": "2026-01-02T03:04:05+00:00", "mnistlite_version": None,
                "preprocessing_version": None, "training_metrics": {"test_accuracy": 0.5}, "config": None}

    def self_test(self) -> str | None:
        return self.failure


@pytest.fixture(scope="session")
def make_fake():
    """``make_fake(failure=None)`` -> a new FakePredictor."""
    return FakePredictor


@pytest.fixture(scope="module")
def fake() -> FakePredictor:
    return FakePredictor()


@pytest.fixture(scope="module")
def log():
    return io.StringIO()


@pytest.fixture(scope="module")
def apps(fake, log):
    """(public, admin) apps around the module's fake predictor, default settings, one set of metrics."""
    return create_apps(fake, log_stream=log)


@pytest.fixture(scope="module")
def client(apps):
    """The public app around the module's fake predictor; its access log goes to ``log``."""
    return testing.TestClient(apps[0])


@pytest.fixture(scope="module")
def admin_client(apps):
    """The admin app (/metrics, the full /v1/model) beside ``client``."""
    return testing.TestClient(apps[1])


@pytest.fixture(scope="module")
def quiet_client(fake):
    """As ``client``, without the access log."""
    return testing.TestClient(create_app(fake, settings=Settings(access_log=False)))


# ---- inputs ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """20 digit-like uint8 (28, 28) images, white strokes on black like MNIST, each with its own ink."""
    out = np.zeros((20, 28, 28), np.uint8)
    for i, a in enumerate(out):
        a[4:24, 9 + i % 7:12 + i % 7] = 255           # a stem, moving right
        a[4 + i % 12:7 + i % 12, 6:8 + i] = 200       # a bar of growing length, moving down
        a[20:23, 12:14 + i // 2] = 255                # a foot
    return out


def _png(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def _multipart(fields: dict, boundary: str = BOUNDARY) -> tuple[bytes, str]:
    out = b""
    for name, data in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json
    assert set(body) >= {"title"} and isinstance(body["title"], str)
    return body


@pytest.fixture(scope="session")
def to_png():
    """``to_png(array, fmt="PNG")`` -> the encoded image bytes (Pillow)."""
    return _png


@pytest.fixture(scope="session")
def multipart():
    """``multipart({name: bytes}, boundary=BOUNDARY)`` -> (multipart/form-data body, content type);
    every field is sent as a file."""
    return _multipart


@pytest.fixture(scope="session")
def error_of():
    """``error_of(response, status)`` -> its JSON error body, after checking the status, the JSON
    content type and a string title."""
    return _error_of


# ---- the real gunicorn ----------------------------------------------------------------------------

class Gunicorn:
    """One ``gunicorn -c service/gunicorn.conf.py service.wsgi:app`` on 127.0.0.1; its output goes to
    a log file."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, metrics_port: int):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_port = metrics_port  # the admin listener: /metrics and the full /v1/model

    def workers(self) -> set[int]:
        pid = self.proc.pid
        try:
            return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
        except OSError:
            return set()

    def output(self) -> str:
        """What gunicorn and the app wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readiness", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful stop), SIGKILL if it is still there after ``timeout`` s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """Start the service: ``gunicorn(model_path, wait=True, **env)`` -> Gunicorn. With ``wait`` it returns
    once every worker is up and /readiness answers 200 (the test fails with the log if that never comes).
    Servers a test did not stop are stopped when the module ends."""
    started = []
    logs = tmp_path_factory.mktemp("gunicorn")

    def start(model_path, *, wait: bool = True, **env) -> Gunicorn:
        port, metrics_port = free_port(), free_port()
        environ = {**os.environ, "MNISTLITE_MODEL": str(model_path), "MNISTLITE_BIND": f"127.0.0.1:{port}",
                   "MNISTLITE_METRICS_BIND": f"127.0.0.1:{metrics_port}", "WEB_CONCURRENCY": "2", **env}
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = logs / f"gunicorn-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(GUNICORN), "-c", "service/gunicorn.conf.py", "service.wsgi:app"],
                                    cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
        server = Gunicorn(proc, port, log, metrics_port)
        started.append(server)
        deadline = time.monotonic() + 60
        while wait and (len(server.workers()) < int(environ["WEB_CONCURRENCY"]) or not server.ready()):
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop(5)
                pytest.fail(f"gunicorn did not become ready (exit {proc.returncode}): "
                            f"{server.output()[-3000:]}")
            time.sleep(0.05)
        return server

    yield start
    for server in started:
        server.stop()
