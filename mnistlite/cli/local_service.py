#!/usr/bin/env python
"""Serve a model file as production does and check it: the repo's gunicorn config on a free 127.0.0.1 port.

  local_service.py MODEL.npz [--expect-sha256 HEX] [--image PNG --expect-class N]

Starts `MNISTLITE_MODEL=MODEL.npz gunicorn -c service/gunicorn.conf.py service.wsgi:app` bound to
127.0.0.1 (MNISTLITE_BIND), waits for /readiness, POSTs a digit to /predict (default: the MNIST 7 in
tests/data), compares /v1/model's sha256, stops the server. Exit 0 if all answered as expected, 1 if not.
`make pipeline` uses it for its serve and rollback stages.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .common import SOURCE_ROOT as ROOT
from .common import fail
from .proc import free_port, stop_group

DIGIT = ROOT / "tests" / "data" / "digit_7.png"
DIGIT_CLASS = 7


class ServiceError(RuntimeError):
    """The service did not start or did not answer as expected; the message says what it did."""




def multipart(path: Path) -> tuple[bytes, str]:
    """A multipart/form-data body with ``path`` as field ``file`` (what `curl -F file=@...` sends)."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class LocalService:
    """The service as production runs it: the repo's gunicorn config on a model file, on 127.0.0.1."""

    def __init__(self, log_dir: Path, env: dict, say):
        self.log_dir, self.env, self.say = log_dir, env, say
        self.proc: subprocess.Popen | None = None
        self.url = self.metrics_url = ""
        self.starts = 0

    def start(self, model: Path, timeout: float = 90.0) -> None:
        self.stop()
        self.starts += 1
        bind, metrics_bind = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        self.url, self.metrics_url = f"http://{bind}", f"http://{metrics_bind}"
        log = self.log_dir / f"gunicorn-{self.starts}.log"
        self.say(f"$ MNISTLITE_MODEL={model} MNISTLITE_BIND={bind} gunicorn -c service/gunicorn.conf.py "
                 f"service.wsgi:app   (log: {log})")
        env = {**self.env, "MNISTLITE_MODEL": str(model), "MNISTLITE_BIND": bind,
               "MNISTLITE_METRICS_BIND": metrics_bind}
        env.pop("PORT", None)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "service/gunicorn.conf.py",
                                          "service.wsgi:app"], cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        t0, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise ServiceError(f"gunicorn exited with {self.proc.returncode}: {' | '.join(tail)}")
            try:
                with urllib.request.urlopen(self.url + "/readiness", timeout=2) as r:
                    if r.status == 200:
                        self.say(f"service ready on {self.url} after {time.monotonic() - t0:.1f} s")
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ServiceError(f"the service on {self.url} was not ready within {timeout:.0f} s (log: {log})")

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def predict(self, image: Path) -> dict:
        body, ctype = multipart(image)
        req = urllib.request.Request(self.url + "/predict", data=body, headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def check(self, expected_sha: str, image: Path = DIGIT, expected_class: int = DIGIT_CLASS) -> str:
        """POST ``image`` and compare /v1/model's sha256 with ``expected_sha``; a one-line summary."""
        try:
            answer = self.predict(image)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ServiceError(f"POST /predict failed: {e}") from None
        got = answer.get("predicted_class")
        self.say(f"POST /predict {image.name} -> predicted_class {got} "
                 f"(confidence {answer.get('confidence')})")
        if got != expected_class:
            raise ServiceError(f"/predict answered {got} for {image.name}, expected {expected_class}")
        try:
            served = self.get_json("/v1/model").get("sha256")
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ServiceError(f"GET /v1/model failed: {e}") from None
        self.say(f"GET /v1/model -> sha256 {served}")
        if served != expected_sha:
            raise ServiceError(f"/v1/model serves {served}, expected {expected_sha}")
        return f"/predict -> {got}; /v1/model sha256 {served[:12]}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_group(proc, grace=20)




def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="the .npz model file to serve")
    p.add_argument("--expect-sha256", help="the sha256 /v1/model must report (default: the file's)")
    p.add_argument("--image", type=Path, default=DIGIT,
                   help=f"PNG to POST (default {DIGIT.relative_to(ROOT)})")
    p.add_argument("--expect-class", type=int, default=DIGIT_CLASS, help="the class /predict must answer")
    args = p.parse_args(argv)
    if not args.model.is_file():
        p.error(f"{args.model}: no such model file")
    import hashlib

    expected = args.expect_sha256 or hashlib.sha256(args.model.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="mnistlite-serve-") as logs:
        service = LocalService(Path(logs), dict(os.environ), lambda msg: print(msg, flush=True))
        try:
            service.start(args.model.resolve())
            print(service.check(expected, args.image, args.expect_class))
        except ServiceError as e:
            return fail(e)
        finally:
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
