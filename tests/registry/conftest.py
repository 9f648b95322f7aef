"""Fixtures of the registry tests, which run against the session's real S3 server (SeaweedFS on 127.0.0.1)."""
from __future__ import annotations

import pytest

import mnistlite as ml
from mnistlite.release.registry import Registry


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Ten distinct, valid model files (untrained: the registry does not judge quality)."""
    d = tmp_path_factory.mktemp("registry_models")
    return [ml.save(ml.MLP([784, 16, 10], seed=i), d / f"m{i}.npz", metadata={"seed": i}) for i in range(10)]


@pytest.fixture
def reg(s3_bucket):
    endpoint, bucket = s3_bucket
    return Registry(f"s3://{bucket}/team/mnist", endpoint)
