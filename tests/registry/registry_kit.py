"""Helpers of the registry tests: a plain S3 client for the registry's bucket, and the history-chain check."""
from __future__ import annotations

import hashlib
import itertools

import boto3

DIGESTS = [f"sha256:{hashlib.sha256(bytes([i])).hexdigest()}" for i in range(4)]
IMAGE = "ghcr.io/owner/mnistlite"


def client(reg):
    return boto3.client("s3", endpoint_url=reg.endpoint_url, region_name="us-east-1")


def assert_chain(reg):
    """History is versions 1..N, each entry's previous_sha256 is the entry before it, pointer = last."""
    hist = reg.history()
    assert [e["version"] for e in hist] == list(range(1, len(hist) + 1))
    assert hist[0]["previous_sha256"] is None
    for prev, cur in itertools.pairwise(hist):
        assert cur["previous_sha256"] == prev["sha256"]
    assert reg.show() == hist[-1]
    return hist
